"""cpu wrappers of the pool family: validate, allocate, call refnn._ext.pool.

Each function has the signature and return convention of refnn.ops.pool (NCHW). The
geometry is checked by refnn.ops.pool.check_geometry (the same messages on every
backend); images are handed to the kernels as (N C, H, W) planes.
"""
import numpy as np

from refnn._ext import pool as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import ShapeError, check_same_shape
from refnn.ops import pool as ref


def _image(op, x):
    """A C-contiguous float (N, C, H, W) array whose plane fits the int32 indices."""
    x = float_input(op, "x", x).reshape(np.shape(x))
    ref.check_input4d(op, x.shape)
    if x.shape[2] * x.shape[3] >= 2 ** 31:
        raise ShapeError(f"{op}: H * W must be below 2**31, got {x.shape}")
    return x


def _grad(op, dy, shape, dtype):
    """dy with the forward output's ``shape`` and ``dtype``, C-contiguous."""
    check_same_shape(op, "dy", np.shape(dy), shape)
    return float_input(op, "dy", dy, dtype).reshape(shape)


def _planes(a):
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2], a.shape[3])


# ------------------------------------------------------------------ max_pool2d
def max_pool2d_forward(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
    x = _image("max_pool2d", x)
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = ref.check_geometry(
        "max_pool2d", x.shape, kernel, stride, padding)
    y = np.empty(x.shape[:2] + (ho, wo), x.dtype)
    arg = np.empty(y.shape, np.int32)
    _k.max_pool2d_forward(_planes(x), _planes(y), _planes(arg),
                          kh, kw, sh, sw, ph, pw, n_threads())
    return y, (x.shape, x.dtype, arg)


def max_pool2d_backward(dy, saved):
    shape, dtype, arg = saved
    dy = _grad("max_pool2d", dy, arg.shape, dtype)
    dx = np.zeros(shape, dtype)
    _k.max_pool2d_backward(_planes(dy), _planes(arg),
                           dx.reshape(shape[0] * shape[1], -1), n_threads())
    return (dx,)


# ------------------------------------------------------------------ avg_pool2d
def avg_pool2d_forward(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                       count_include_pad=False):
    x = _image("avg_pool2d", x)
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = ref.check_geometry(
        "avg_pool2d", x.shape, kernel, stride, padding)
    count = np.ascontiguousarray(ref.window_counts(
        x.shape, (kh, kw), (sh, sw), (ph, pw), (ho, wo), bool(count_include_pad)))
    y = np.empty(x.shape[:2] + (ho, wo), x.dtype)
    geometry = (kh, kw, sh, sw, ph, pw)
    _k.avg_pool2d_forward(_planes(x), _planes(y), count, *geometry, n_threads())
    return y, (x.shape, x.dtype, y.shape, count, geometry)


def avg_pool2d_backward(dy, saved):
    shape, dtype, out_shape, count, geometry = saved
    dy = _grad("avg_pool2d", dy, out_shape, dtype)
    dx = np.zeros(shape, dtype)
    _k.avg_pool2d_backward(_planes(dy), count, _planes(dx), *geometry, n_threads())
    return (dx,)


# ------------------------------------------------------------------ global pools
def _flat(x):
    return x.reshape(x.shape[0] * x.shape[1], x.shape[2] * x.shape[3])


def global_max_pool_forward(x):
    x = _image("global_max_pool", x)
    y = np.empty(x.shape[:2] + (1, 1), x.dtype)
    arg = np.empty(x.shape[0] * x.shape[1], np.int32)
    _k.global_max_pool_forward(_flat(x), y.reshape(-1), arg, n_threads())
    return y, (x.shape, x.dtype, arg)


def global_max_pool_backward(dy, saved):
    shape, dtype, arg = saved
    dy = _grad("global_max_pool", dy, shape[:2] + (1, 1), dtype)
    dx = np.zeros(shape, dtype)
    _k.global_max_pool_backward(dy.reshape(-1), arg, _flat(dx), n_threads())
    return (dx,)


def _sum_forward(op, x, mean):
    x = _image(op, x)
    scale = 1.0 / (x.shape[2] * x.shape[3]) if mean else 1.0
    y = np.empty(x.shape[:2] + (1, 1), x.dtype)
    _k.global_sum_pool_forward(_flat(x), y.reshape(-1), scale, n_threads())
    return y, (op, x.shape, x.dtype, scale)


def _sum_backward(dy, saved):
    op, shape, dtype, scale = saved
    dy = _grad(op, dy, shape[:2] + (1, 1), dtype)
    dx = np.empty(shape, dtype)
    _k.global_sum_pool_backward(dy.reshape(-1), _flat(dx), scale, n_threads())
    return (dx,)


def global_mean_pool_forward(x):
    return _sum_forward("global_mean_pool", x, mean=True)


def global_sum_pool_forward(x):
    return _sum_forward("global_sum_pool", x, mean=False)


global_mean_pool_backward = _sum_backward
global_sum_pool_backward = _sum_backward


# ------------------------------------------------------------------ 3-D pools
def _volume(op, x):
    """A C-contiguous float (N, C, D, H, W) array whose volume fits the int32 indices."""
    x = float_input(op, "x", x).reshape(np.shape(x))
    ref.check_input5d(op, x.shape)
    if x.shape[2] * x.shape[3] * x.shape[4] >= 2 ** 31:
        raise ShapeError(f"{op}: D * H * W must be below 2**31, got {x.shape}")
    return x


def _vols(a):
    return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])


def max_pool3d_forward(x, kernel=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0)):
    x = _volume("max_pool3d", x)
    k, s, p, out = ref.check_geometry3d("max_pool3d", x.shape, kernel, stride, padding)
    y = np.empty(x.shape[:2] + out, x.dtype)
    arg = np.empty(y.shape, np.int32)
    _k.max_pool3d_forward(_vols(x), _vols(y), _vols(arg), *k, *s, *p, n_threads())
    return y, (x.shape, x.dtype, arg)


def max_pool3d_backward(dy, saved):
    shape, dtype, arg = saved
    dy = _grad("max_pool3d", dy, arg.shape, dtype)
    dx = np.zeros(shape, dtype)
    planes = shape[0] * shape[1]
    _k.max_pool3d_backward(dy.reshape(planes, -1), arg.reshape(planes, -1),
                           dx.reshape(planes, -1), n_threads())
    return (dx,)


def avg_pool3d_forward(x, kernel=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0),
                       count_include_pad=False):
    x = _volume("avg_pool3d", x)
    k, s, p, out = ref.check_geometry3d("avg_pool3d", x.shape, kernel, stride, padding)
    count = np.ascontiguousarray(ref.window_counts3d(x.shape, k, s, p, out,
                                                     bool(count_include_pad)))
    y = np.empty(x.shape[:2] + out, x.dtype)
    geometry = k + s + p
    _k.avg_pool3d_forward(_vols(x), _vols(y), count, *geometry, n_threads())
    return y, (x.shape, x.dtype, y.shape, count, geometry)


def avg_pool3d_backward(dy, saved):
    shape, dtype, out_shape, count, geometry = saved
    dy = _grad("avg_pool3d", dy, out_shape, dtype)
    dx = np.zeros(shape, dtype)
    _k.avg_pool3d_backward(_vols(dy), count, _vols(dx), *geometry, n_threads())
    return (dx,)


# ------------------------------------------------------------------ top-k global max
def global_max_pool_topk_forward(x, k=1):
    x = _image("global_max_pool_topk", x)
    k = ref.check_topk("global_max_pool_topk", x.shape, k)
    y = np.empty(x.shape[:2] + (1, k), x.dtype)
    arg = np.empty((x.shape[0] * x.shape[1], k), np.int32)
    _k.global_max_pool_topk_forward(_flat(x), y.reshape(-1, k), arg, n_threads())
    return y, (x.shape, x.dtype, arg)


def global_max_pool_topk_backward(dy, saved):
    shape, dtype, arg = saved
    k = arg.shape[1]
    dy = _grad("global_max_pool_topk", dy, shape[:2] + (1, k), dtype)
    dx = np.zeros(shape, dtype)
    _k.global_max_pool_topk_backward(dy.reshape(-1, k), arg, _flat(dx), n_threads())
    return (dx,)


# ------------------------------------------------------------------ max over time
def max_over_time_forward(x, filter_len=0, stride_len=1):
    x = float_input("max_over_time", "x", x).reshape(np.shape(x))
    L, S, To = ref.check_over_time("max_over_time", x.shape, filter_len, stride_len)
    y = np.empty((To,) + x.shape[1:], x.dtype)
    arg = np.empty((To, x.shape[1] * x.shape[2]), np.int32)
    _k.max_over_time_forward(x.reshape(x.shape[0], -1), y.reshape(To, -1), arg, L, S,
                             n_threads())
    return y, (x.shape, x.dtype, y.shape, S, arg)


def max_over_time_backward(dy, saved):
    shape, dtype, out_shape, S, arg = saved
    dy = _grad("max_over_time", dy, out_shape, dtype)
    dx = np.zeros(shape, dtype)
    _k.max_over_time_backward(dy.reshape(out_shape[0], -1), arg,
                              dx.reshape(shape[0], -1), S, n_threads())
    return (dx,)


# ------------------------------------------------------------------ projection pool
def projection_pool_forward(x, original_size=False):
    x = float_input("projection_pool", "x", x).reshape(np.shape(x))
    if x.ndim != 3 or x.shape[1] < 1:
        raise ShapeError(f"projection_pool: x must have shape (A, L, B) with L >= 1, "
                         f"got {x.shape}")
    original_size = bool(original_size)
    y = np.empty(x.shape if original_size else (x.shape[0], 1, x.shape[2]), x.dtype)
    _k.projection_pool(x, y, 1.0 / x.shape[1], n_threads())
    return y, (x.shape, x.dtype, y.shape)


def projection_pool_backward(dy, saved):
    shape, dtype, out_shape = saved
    dy = _grad("projection_pool", dy, out_shape, dtype)
    dx = np.empty(shape, dtype)
    _k.projection_pool(dy, dx, 1.0 / shape[1], n_threads())
    return (dx,)
