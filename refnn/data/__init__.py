"""Datasets: the bundled UCI digits, and the registry later datasets plug into.

>>> from refnn.data import load_digits
>>> X_train, y_train = load_digits("train")
>>> X_test, y_test = load_digits("test")

:mod:`refnn.data.registry` describes each dataset (files, SHA-256, loader) and
:func:`fetch` finds and verifies its files.
"""
from refnn.data.registry import (DATASETS, ChecksumError, DataFile, Dataset, DatasetError,
                                 DatasetNotFound, data_home, fetch, load)
from refnn.data.digits import load_digits

__all__ = ["load_digits", "fetch", "load", "data_home", "DATASETS", "Dataset", "DataFile",
           "DatasetError", "DatasetNotFound", "ChecksumError"]
