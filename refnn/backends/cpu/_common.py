"""Validation shared by the cpu wrappers: everything a kernel relies on is checked here."""
import numpy as np

from refnn.errors import check_dtype, check_same_shape

FLOATS = (np.float32, np.float64)


def n_threads():
    from refnn._ext._threads import max_threads
    return max_threads()


def float_input(where, what, a, dtype=None):
    """A C-contiguous float32/float64 array (copied only when it is not one already)."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    check_dtype(where, what, a.dtype, FLOATS if dtype is None else (dtype,))
    return np.ascontiguousarray(a)


def like(where, what, a, ref):
    """``a`` must have ``ref``'s shape and dtype; returned C-contiguous."""
    a = float_input(where, what, a, ref.dtype)
    check_same_shape(where, what, a.shape, ref.shape)
    return a
