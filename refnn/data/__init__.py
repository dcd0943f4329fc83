"""Datasets: the bundled UCI digits and text, and the registry later datasets plug into.

>>> from refnn.data import load_alice, load_digits
>>> X_train, y_train = load_digits("train")
>>> X_test, y_test = load_digits("test")
>>> text = load_alice()            # Alice's Adventures in Wonderland, one str

:mod:`refnn.data.registry` describes each dataset (files, SHA-256, loader) and
:func:`fetch` finds and verifies its files.
"""
from refnn.data.registry import (DATASETS, ChecksumError, DataFile, Dataset, DatasetError,
                                 DatasetNotFound, data_home, fetch, load)
from refnn.data.digits import load_digits
from refnn.data.text import load_alice, unigram_entropy

__all__ = ["load_digits", "load_alice", "unigram_entropy", "fetch", "load", "data_home",
           "DATASETS", "Dataset", "DataFile", "DatasetError", "DatasetNotFound", "ChecksumError"]
