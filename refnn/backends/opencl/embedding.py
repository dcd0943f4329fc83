"""OpenCL host wrappers of the embedding family (kernels in kernels/embedding.cl).

Signatures are those of refnn.ops.embedding with the backend first. Ids are checked
before any kernel indexes the table with them: host ids on the host (the reference's
check_ids) and then uploaded as int32; device ids (int32 or int64) are converted to int32
by a kernel that also reduces their min and max, and those two ints are the only thing
read back. The table-gradient scatter-add uses atomic adds (kernels/embedding.cl). The
sinusoidal table is computed once per (backend, T, D) in float64 and kept on the device.
"""
import weakref

import numpy as np
import pyopencl.array as cla

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, real
from refnn.errors import DTypeError, ShapeError, check_same_shape
from refnn.ops import embedding as ref

_SINUSOIDS = weakref.WeakKeyDictionary()      # backend -> {(T, D): device table}


def _launch(be, name, n, *args):
    be.kernel("embedding", name)(be.queue, global_1d(n), (LOCAL_1D,), *args, np.uint32(n))


def _table(be, op, table, what="table", dtype=None):
    ref.check_table(op, table, what)
    table = device_input(be, op, what, table, dtype)
    if table.size >= 2 ** 31:
        raise ShapeError(f"{op}: {what} must have fewer than 2**31 elements, got "
                         f"{table.shape}")
    return table


def _ids(be, op, ids, V):
    """Checked int32 ids on the device (see the module docstring)."""
    if not isinstance(ids, cla.Array):
        ids = np.asarray(ids)
        ref.check_ids(op, ids, V)
        return be.asarray(np.ascontiguousarray(ids, dtype=np.int32), dtype=np.int32)
    ref.check_id_shape(op, ids)
    if ids.dtype not in (np.int32, np.int64) or not ids.flags.c_contiguous:
        raise DTypeError(f"{op}: device ids must be a C-contiguous int32 or int64 array, "
                         f"got {ids.dtype}")
    out = be.empty(ids.shape, np.int32)
    mm = be.asarray(np.array([np.iinfo(np.int32).max, np.iinfo(np.int32).min], np.int32),
                    dtype=np.int32)
    name = "ids_from_int64" if ids.dtype == np.int64 else "ids_from_int32"
    _launch(be, name, ids.size, ids.data, out.data, mm.data)
    lo, hi = be.to_host(mm)
    ref.check_id_range(op, int(lo), int(hi), V)
    return out


def _grad(be, op, dy, shape, dtype):
    check_same_shape(op, "dy", np.shape(dy), shape)
    return device_input(be, op, "dy", dy, dtype)


def _scatter(be, ids, rows, dst, div, scale):
    D = dst.shape[1]
    _launch(be, "scatter_rows", ids.size * D, ids.data, rows.data, dst.data, np.int32(D),
            np.int32(div), real(be, scale))


# ------------------------------------------------------------------ lookup
def lookup_forward(be, ids, table):
    table = _table(be, "lookup", table)
    ids = _ids(be, "lookup", ids, table.shape[0])
    D = table.shape[1]
    y = be.empty(ids.shape + (D,))
    _launch(be, "gather_rows", y.size, ids.data, table.data, y.data, np.int32(D))
    return y, (ids, table.shape, table.dtype)


def lookup_backward(be, dy, saved):
    ids, shape, dtype = saved
    dy = _grad(be, "lookup", dy, ids.shape + shape[1:], dtype)
    dtable = be.zeros(shape, dtype)
    _scatter(be, ids, dy, dtable, 1, 1.0)
    return None, dtable


# ------------------------------------------------------------------ accumulative lookup
def accumulative_lookup_forward(be, ids, table):
    table = _table(be, "accumulative_lookup", table)
    ids = _ids(be, "accumulative_lookup", ids, table.shape[0])
    D = table.shape[1]
    y = be.empty((ids.shape[0], D))
    _launch(be, "sum_rows", y.size, ids.data, table.data, y.data, np.int32(ids.shape[1]),
            np.int32(D))
    return y, (ids, table.shape, table.dtype)


def accumulative_lookup_backward(be, dy, saved):
    ids, shape, dtype = saved
    dy = _grad(be, "accumulative_lookup", dy, (ids.shape[0], shape[1]), dtype)
    dtable = be.zeros(shape, dtype)
    _scatter(be, ids, dy, dtable, ids.shape[1], 1.0)
    return None, dtable


# ------------------------------------------------------------------ sparse SGD
def lookup_sgd_update(be, table, ids, dy, learning_rate=0.01):
    """table[ids[n, k]] -= learning_rate * dy[n, k] (or dy[n]) in place, on the device."""
    op = "lookup_sgd"
    if not isinstance(table, cla.Array):
        raise TypeError(f"{op}: table must be a device array of this backend (it is "
                        f"updated in place), got {type(table).__name__}")
    table = _table(be, op, table)
    div = ref.sgd_ids_per_row(np.shape(ids), np.shape(dy), table.shape[1])
    ids = _ids(be, op, ids, table.shape[0])
    dy = device_input(be, op, "dy", dy, table.dtype)
    _scatter(be, ids, dy, table, div, -float(learning_rate))


# ------------------------------------------------------------------ positional encodings
def _sinusoid(be, T, D):
    tables = _SINUSOIDS.setdefault(be, {})
    if (T, D) not in tables:
        tables[(T, D)] = be.asarray(ref.sinusoidal_table(T, D))
    return tables[(T, D)]


def _positional_x(be, op, x):
    ref.check_positional(op, x)
    x = device_input(be, op, "x", x)
    if x.size >= 2 ** 31:
        raise ShapeError(f"{op}: x must have fewer than 2**31 elements, got {x.shape}")
    return x


def _add_rows(be, x, table):
    y = be.empty(x.shape)
    _launch(be, "add_rows", y.size, x.data, table.data, y.data,
            np.int32(x.shape[1] * x.shape[2]))
    return y


def positional_sinusoidal_forward(be, x):
    x = _positional_x(be, "positional_sinusoidal", x)
    return _add_rows(be, x, _sinusoid(be, *x.shape[1:])), (x.shape, x.dtype)


def positional_sinusoidal_backward(be, dy, saved):
    shape, dtype = saved
    return (_grad(be, "positional_sinusoidal", dy, shape, dtype).copy(),)


def positional_learnable_forward(be, x, table):
    op = "positional_learnable"
    ref.check_learnable(op, x, table)
    x = _positional_x(be, op, x)
    table = _table(be, op, table, dtype=x.dtype)
    return _add_rows(be, x, table), (x.shape, table.shape, x.dtype)


def positional_learnable_backward(be, dy, saved):
    shape, table_shape, dtype = saved
    dy = _grad(be, "positional_learnable", dy, shape, dtype)
    dtable = be.empty(table_shape, dtype)
    _launch(be, "batch_sum", dtable.size, dy.data, dtable.data, np.int32(shape[0]),
            np.int32(shape[1] * shape[2]))
    return dy.copy(), dtable
