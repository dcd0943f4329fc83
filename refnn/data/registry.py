"""A small registry of datasets: what files a dataset has, their checksums, how to load them.

Every dataset is one :class:`Dataset` record. :func:`fetch` returns the local paths of
its files after verifying each file's SHA-256, so a corrupted or substituted file is
never silently trained on. Files are looked up

1. inside the installed package (``refnn/data/``: bundled files such as the UCI digits),
2. in the cache directory :func:`data_home` (``$REFNN_DATA``, default
   ``~/.cache/refnn``), where downloaded datasets (MNIST, CIFAR-10, ...) will live.

refnn does not download anything yet: a dataset whose files are neither bundled nor in
the cache raises :class:`DatasetNotFound`, which says where to put the files and where
they come from. Adding MNIST later means adding one record (files, sha256, url, loader)
to :data:`DATASETS` and the download step to :func:`fetch`.
"""
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from refnn.errors import ParameterError, RefnnError

PACKAGE_DIR = Path(__file__).resolve().parent


class DatasetError(RefnnError, OSError):
    """A dataset file is missing or its checksum does not match."""


class DatasetNotFound(DatasetError, FileNotFoundError):
    """A dataset's file is neither bundled nor in the cache directory."""


class ChecksumError(DatasetError):
    """A dataset file's SHA-256 differs from the one in the registry."""


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its name, its SHA-256 and (for later) where it comes from."""

    name: str
    sha256: str
    url: Optional[str] = None


@dataclass(frozen=True)
class Dataset:
    """A dataset record.

    name:    registry key (``"digits"``).
    files:   the files the loader needs.
    loader:  ``loader(paths, **kwargs)`` -> data; ``paths`` maps file name -> Path.
    source, license: attribution shown to users (and in the licence file beside the data).
    """

    name: str
    files: Tuple[DataFile, ...]
    loader: Callable
    source: str = ""
    license: str = ""
    bundled: bool = False
    extra: Dict[str, str] = field(default_factory=dict, compare=False)


def data_home():
    """The cache directory for downloaded datasets: $REFNN_DATA or ~/.cache/refnn."""
    return Path(os.environ.get("REFNN_DATA") or Path.home() / ".cache" / "refnn")


def sha256_of(path, chunk=1 << 20):
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify(path, expected, dataset="?"):
    """Raise ChecksumError unless the file at ``path`` has SHA-256 ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"dataset {dataset!r}: file {path} has sha256 {actual}, expected {expected}; "
            "the file is corrupted or was replaced -- reinstall refnn (bundled data) "
            "or delete the file from the cache directory")
    return path


def locate(dataset, datafile):
    """Path of one file of ``dataset``: bundled first, then the cache directory."""
    candidates = [PACKAGE_DIR / datafile.name] if dataset.bundled else []
    candidates.append(data_home() / dataset.name / datafile.name)
    for path in candidates:
        if path.is_file():
            return path
    origin = f" (download it from {datafile.url})" if datafile.url else ""
    raise DatasetNotFound(
        f"dataset {dataset.name!r}: file {datafile.name!r} not found; looked in "
        f"{', '.join(str(p) for p in candidates)}{origin}")


def fetch(name):
    """Return {file name: Path} for dataset ``name``, every file checksum-verified."""
    dataset = get_dataset(name)
    return {f.name: verify(locate(dataset, f), f.sha256, dataset.name) for f in dataset.files}


def load(name, **kwargs):
    """fetch(name) then the dataset's loader(paths, **kwargs)."""
    return get_dataset(name).loader(fetch(name), **kwargs)


#: name -> Dataset; filled by the dataset modules (refnn/data/digits.py, ...)
DATASETS: Dict[str, Dataset] = {}


def register(dataset):
    if dataset.name in DATASETS:
        raise ValueError(f"dataset {dataset.name!r} is registered twice")
    DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name):
    try:
        return DATASETS[name]
    except KeyError:
        raise ParameterError(
            f"no dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None
