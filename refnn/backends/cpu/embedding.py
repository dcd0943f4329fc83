"""cpu wrappers of the embedding family: validate, allocate, call refnn._ext.embedding.

Signatures and return conventions are those of refnn.ops.embedding. The ids are checked
(integer dtype, shape (N, K), every value in [0, V)) by the reference's helpers *before*
any kernel runs -- the kernels index the table unchecked -- and handed over as int32.
The sinusoidal table is computed once per (T, D, dtype) in float64 and rounded.
"""
import functools

import numpy as np

from refnn._ext import embedding as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import ShapeError, check_same_shape
from refnn.ops import embedding as ref


def _table(op, table, what="table"):
    table = float_input(op, what, table)
    ref.check_table(op, table, what)
    if table.shape[0] >= 2 ** 31:
        raise ShapeError(f"{op}: {what} must have fewer than 2**31 rows, got {table.shape}")
    return table


def _ids(op, ids, V):
    ids = np.asarray(ids)
    ref.check_ids(op, ids, V)
    return np.ascontiguousarray(ids, dtype=np.int32)


def _grad(op, dy, shape, dtype):
    check_same_shape(op, "dy", np.shape(dy), shape)
    return float_input(op, "dy", dy, dtype)


# ------------------------------------------------------------------ lookup
def lookup_forward(ids, table):
    table = _table("lookup", table)
    ids = _ids("lookup", ids, table.shape[0])
    y = np.empty(ids.shape + table.shape[1:], table.dtype)
    _k.gather_rows(ids.ravel(), table, y.reshape(ids.size, -1), n_threads())
    return y, (ids, table.shape, table.dtype)


def lookup_backward(dy, saved):
    ids, shape, dtype = saved
    dy = _grad("lookup", dy, ids.shape + shape[1:], dtype)
    dtable = np.zeros(shape, dtype)
    _k.scatter_rows(ids.ravel(), dy.reshape(ids.size, -1), 1, 1.0, dtable, n_threads())
    return None, dtable


# ------------------------------------------------------------------ accumulative lookup
def accumulative_lookup_forward(ids, table):
    table = _table("accumulative_lookup", table)
    ids = _ids("accumulative_lookup", ids, table.shape[0])
    y = np.empty((ids.shape[0], table.shape[1]), table.dtype)
    _k.sum_rows(ids, table, y, n_threads())
    return y, (ids, table.shape, table.dtype)


def accumulative_lookup_backward(dy, saved):
    ids, shape, dtype = saved
    dy = _grad("accumulative_lookup", dy, (ids.shape[0], shape[1]), dtype)
    dtable = np.zeros(shape, dtype)
    _k.scatter_rows(ids.ravel(), dy, ids.shape[1], 1.0, dtable, n_threads())
    return None, dtable


# ------------------------------------------------------------------ sparse SGD
def lookup_sgd_update(table, ids, dy, learning_rate=0.01):
    """table[ids[n, k]] -= learning_rate * dy[n, k] (or dy[n]) in place."""
    op = "lookup_sgd"
    if not isinstance(table, np.ndarray) or not table.flags.c_contiguous:
        raise ValueError(f"{op}: table must be a C-contiguous NumPy array (it is updated "
                         f"in place)")
    table = _table(op, table)
    ids = _ids(op, ids, table.shape[0])
    D = table.shape[1]
    div = ref.sgd_ids_per_row(ids.shape, np.shape(dy), D)
    dy = float_input(op, "dy", dy, table.dtype)
    _k.scatter_rows(ids.ravel(), dy.reshape(-1, D), div, -float(learning_rate), table,
                    n_threads())


# ------------------------------------------------------------------ positional encodings
@functools.lru_cache(maxsize=32)
def _sinusoid(T, D, dtype):
    table = np.ascontiguousarray(ref.sinusoidal_table(T, D), dtype=dtype)
    table.flags.writeable = False
    return table


def _positional_x(op, x):
    x = float_input(op, "x", x)
    ref.check_positional(op, x)
    return x


def positional_sinusoidal_forward(x):
    x = _positional_x("positional_sinusoidal", x)
    y = np.empty_like(x)
    _k.add_rows(x, _sinusoid(x.shape[1], x.shape[2], x.dtype), y, n_threads())
    return y, (x.shape, x.dtype)


def positional_sinusoidal_backward(dy, saved):
    shape, dtype = saved
    return (_grad("positional_sinusoidal", dy, shape, dtype).copy(),)


def positional_learnable_forward(x, table):
    op = "positional_learnable"
    x = _positional_x(op, x)
    table = float_input(op, "table", table, x.dtype)
    ref.check_learnable(op, x, table)
    y = np.empty_like(x)
    _k.add_rows(x, table, y, n_threads())
    return y, (x.shape, table.shape, x.dtype)


def positional_learnable_backward(dy, saved):
    shape, table_shape, dtype = saved
    dy = _grad("positional_learnable", dy, shape, dtype)
    dtable = np.zeros(table_shape, dtype)
    _k.batch_sum(dy, dtable, n_threads())
    return dy.copy(), dtable
