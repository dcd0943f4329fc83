"""Hypothesis strategies for shapes, hyper-parameters and values (imports hypothesis).

Building blocks used by ``refnn.testing.op_inputs`` and by anyone testing their own
layer: small shapes that include batch 1 and odd sizes, floats kept a margin away from
an op's kinks (where a numerical derivative is meaningless), positive floats, labels.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: sizes that are deliberately not multiples of OpenCL tile sizes (and include 1)
ODD_SIZES = (1, 3, 5, 7, 13, 17, 33)


def sizes(min_value=1, max_value=8):
    """An int size that reaches 1 and odd values."""
    return st.integers(min_value, max_value)


def shapes(min_dims=1, max_dims=4, min_side=1, max_side=6):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                            min_side=min_side, max_side=max_side)


def floats_away_from(kinks=(), min_value=-3.0, max_value=3.0, margin=1e-2):
    """Finite floats in [min_value, max_value] at least ``margin`` from every kink."""
    base = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, width=32)
    if not kinks:
        return base
    return base.filter(lambda v: all(abs(v - k) > margin for k in kinks))


def arrays(shape, elements=None, dtype=np.float64):
    """A float64 array of ``shape`` with ``elements`` (default: floats in [-3, 3])."""
    return hnp.arrays(dtype, shape, elements=elements if elements is not None
                      else floats_away_from())


def positive_arrays(shape, min_value=0.1, max_value=3.0):
    return arrays(shape, st.floats(min_value, max_value))


def probabilities(shape):
    """Rows (last axis) of positive values summing to 1 (e.g. network outputs)."""
    return positive_arrays(shape, 0.05, 1.0).map(lambda a: a / a.sum(axis=-1, keepdims=True))


def one_hot(n, c):
    """An (n, c) float64 one-hot matrix drawn from random labels."""
    return st.lists(st.integers(0, c - 1), min_size=n, max_size=n).map(
        lambda ys: np.eye(c)[np.array(ys, dtype=np.int64)])


def labels(n, c):
    """An (n,) int32 vector of class indices in [0, c)."""
    return hnp.arrays(np.int32, (n,), elements=st.integers(0, c - 1))


def batch_and_features(max_batch=9, max_features=17):
    """(N, C) with N reaching 1 and C reaching sizes that are not tile multiples."""
    return st.tuples(st.integers(1, max_batch), st.integers(1, max_features))
