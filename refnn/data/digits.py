"""The UCI hand-written digits (bundled): 1,797 grey 8x8 images of the digits 0-9.

Source: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits",
UCI Machine Learning Repository (https://archive.ics.uci.edu/dataset/80), licence CC BY 4.0.
The bundled ``digits.csv.gz`` is the repository's test set (``optdigits.tes``): one
image per row, 64 pixel counts 0..16 in row-major order, then the label.
See DIGITS_LICENSE.md beside this file.
"""
import gzip
from functools import lru_cache

import numpy as np

from refnn.data.registry import DataFile, Dataset, fetch, register
from refnn.errors import ParameterError

FILE = DataFile("digits.csv.gz",
                "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22")
N_FEATURES, N_CLASSES, MAX_PIXEL = 64, 10, 16.0
SPLITS = ("train", "test", "all")


@lru_cache(maxsize=1)
def _read(path):
    """All rows as (X float32 in [0, 1], y int64); parsed once per process."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    X = (table[:, :N_FEATURES] / MAX_PIXEL).astype(np.float32)
    y = table[:, N_FEATURES]
    X.flags.writeable = y.flags.writeable = False  # the cache is shared: hand out copies
    return X, y


def stratified_split(y, test_fraction, seed):
    """Indices (train, test): each class keeps round(test_fraction * count) for test.

    Deterministic for a given seed; both index arrays are shuffled.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(test_fraction * members.size))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _load(paths, split="train", seed=0, test_fraction=0.2):
    if split not in SPLITS:
        raise ParameterError(f"load_digits: split must be one of {SPLITS}, got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ParameterError(
            f"load_digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    X, y = _read(str(paths[FILE.name]))
    if split == "all":
        return X.copy(), y.copy()
    train, test = stratified_split(y, test_fraction, seed)
    rows = train if split == "train" else test
    return X[rows], y[rows]


DIGITS = register(Dataset(
    name="digits", files=(FILE,), loader=_load, bundled=True,
    source="E. Alpaydin, C. Kaynak: Optical Recognition of Handwritten Digits, "
           "UCI Machine Learning Repository, https://archive.ics.uci.edu/dataset/80",
    license="CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"))


def load_digits(split="train", seed=0, test_fraction=0.2):
    """The bundled digits as ``(X, y)``.

    X: float32, shape (N, 64), pixel counts / 16 so values lie in [0, 1];
       pixel (r, c) of the 8x8 image is column 8 r + c.
    y: int64, shape (N,), labels 0..9.
    split: "train" | "test" (a stratified split: every digit keeps the same share,
           reproducible from ``seed``) or "all" (the 1,797 images in file order).

    The file's SHA-256 is verified on every load (refnn.data.ChecksumError if not).

    >>> X, y = load_digits("test")
    >>> X.shape, X.dtype.name, int(y.min()), int(y.max())
    ((359, 64), 'float32', 0, 9)
    """
    return _load(fetch("digits"), split=split, seed=seed, test_fraction=test_fraction)
