"""OpenCL host wrappers of the pool family (kernels in kernels/pool.cl), NCHW.

Signatures are those of refnn.ops.pool with the backend first; arrays stay on the
device (the argmax indices too, as int32). The geometry is checked by
refnn.ops.pool.check_geometry, so every backend reports bad windows alike. Window
kernels take (H, W, Ho, Wo, kh, kw, sh, sw, ph, pw, n) after their buffers.
"""
import numpy as np

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, real
from refnn.errors import ShapeError
from refnn.ops import pool as ref


def _image(be, op, x):
    """A device (N, C, H, W) array of the backend's dtype with 32-bit indexable size."""
    shape = tuple(np.shape(x))
    ref.check_input4d(op, shape)
    x = device_input(be, op, "x", x)
    if x.size >= 2 ** 31:
        raise ShapeError(f"{op}: x must have fewer than 2**31 elements, got {x.size}")
    return x


def _grad(be, op, dy, shape, dtype):
    """dy on the device with the forward output's ``shape`` (checked first)."""
    if tuple(np.shape(dy)) != tuple(shape):
        raise ShapeError(f"{op}: dy must have shape {tuple(shape)}, got {tuple(np.shape(dy))}")
    return device_input(be, op, "dy", dy, dtype)


def _i32(*vals):
    return [np.int32(v) for v in vals]


def _launch(be, name, n, *args):
    be.kernel("pool", name)(be.queue, global_1d(n), (LOCAL_1D,), *args, np.uint32(n))


# ------------------------------------------------------------------ max_pool2d
def max_pool2d_forward(be, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
    x = _image(be, "max_pool2d", x)
    k, s, p, (ho, wo) = ref.check_geometry("max_pool2d", x.shape, kernel, stride, padding)
    y = be.empty(x.shape[:2] + (ho, wo))
    arg = be.empty(y.shape, np.int32)
    dims = _i32(x.shape[2], x.shape[3], ho, wo, *k, *s, *p)
    _launch(be, "max_pool2d_forward", y.size, x.data, y.data, arg.data, *dims)
    return y, (x.shape, x.dtype, arg, dims)


def max_pool2d_backward(be, dy, saved):
    shape, dtype, arg, dims = saved
    dy = _grad(be, "max_pool2d", dy, arg.shape, dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "max_pool2d_backward", dx.size, dy.data, arg.data, dx.data, *dims)
    return (dx,)


# ------------------------------------------------------------------ avg_pool2d
def avg_pool2d_forward(be, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                       count_include_pad=False):
    x = _image(be, "avg_pool2d", x)
    k, s, p, (ho, wo) = ref.check_geometry("avg_pool2d", x.shape, kernel, stride, padding)
    y = be.empty(x.shape[:2] + (ho, wo))
    include = np.int32(bool(count_include_pad))
    dims = _i32(x.shape[2], x.shape[3], ho, wo, *k, *s, *p)
    _launch(be, "avg_pool2d_forward", y.size, x.data, y.data, include, *dims)
    return y, (x.shape, x.dtype, y.shape, include, dims)


def avg_pool2d_backward(be, dy, saved):
    shape, dtype, out_shape, include, dims = saved
    dy = _grad(be, "avg_pool2d", dy, out_shape, dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "avg_pool2d_backward", dx.size, dy.data, include, dx.data, *dims)
    return (dx,)


# ------------------------------------------------------------------ global pools
def global_max_pool_forward(be, x):
    x = _image(be, "global_max_pool", x)
    planes, plane = x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]
    y = be.empty(x.shape[:2] + (1, 1))
    arg = be.empty((planes,), np.int32)
    _launch(be, "global_max_pool_forward", planes, x.data, y.data, arg.data, np.int32(plane))
    return y, (x.shape, x.dtype, arg)


def global_max_pool_backward(be, dy, saved):
    shape, dtype, arg = saved
    dy = _grad(be, "global_max_pool", dy, shape[:2] + (1, 1), dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "global_max_pool_backward", dx.size, dy.data, arg.data, dx.data,
            np.int32(shape[2] * shape[3]))
    return (dx,)


def _sum_forward(be, op, x, mean):
    x = _image(be, op, x)
    planes, plane = x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]
    scale = 1.0 / plane if mean else 1.0
    y = be.empty(x.shape[:2] + (1, 1))
    _launch(be, "global_sum_pool_forward", planes, x.data, y.data, real(be, scale),
            np.int32(plane))
    return y, (op, x.shape, x.dtype, scale)


def _sum_backward(be, dy, saved):
    op, shape, dtype, scale = saved
    dy = _grad(be, op, dy, shape[:2] + (1, 1), dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "global_sum_pool_backward", dx.size, dy.data, dx.data, real(be, scale),
            np.int32(shape[2] * shape[3]))
    return (dx,)


def global_mean_pool_forward(be, x):
    return _sum_forward(be, "global_mean_pool", x, mean=True)


def global_sum_pool_forward(be, x):
    return _sum_forward(be, "global_sum_pool", x, mean=False)


global_mean_pool_backward = _sum_backward
global_sum_pool_backward = _sum_backward


# ------------------------------------------------------------------ 3-D pools
def _volume(be, op, x):
    """A device (N, C, D, H, W) array of the backend's dtype with 32-bit indexable size."""
    ref.check_input5d(op, tuple(np.shape(x)))
    x = device_input(be, op, "x", x)
    if x.size >= 2 ** 31:
        raise ShapeError(f"{op}: x must have fewer than 2**31 elements, got {x.size}")
    return x


def max_pool3d_forward(be, x, kernel=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0)):
    x = _volume(be, "max_pool3d", x)
    k, s, p, out = ref.check_geometry3d("max_pool3d", x.shape, kernel, stride, padding)
    y = be.empty(x.shape[:2] + out)
    arg = be.empty(y.shape, np.int32)
    dims = _i32(*x.shape[2:], *out, *k, *s, *p)
    _launch(be, "max_pool3d_forward", y.size, x.data, y.data, arg.data, *dims)
    return y, (x.shape, x.dtype, arg, dims)


def max_pool3d_backward(be, dy, saved):
    shape, dtype, arg, dims = saved
    dy = _grad(be, "max_pool3d", dy, arg.shape, dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "max_pool3d_backward", dx.size, dy.data, arg.data, dx.data, *dims)
    return (dx,)


def avg_pool3d_forward(be, x, kernel=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0),
                       count_include_pad=False):
    x = _volume(be, "avg_pool3d", x)
    k, s, p, out = ref.check_geometry3d("avg_pool3d", x.shape, kernel, stride, padding)
    y = be.empty(x.shape[:2] + out)
    include = np.int32(bool(count_include_pad))
    dims = _i32(*x.shape[2:], *out, *k, *s, *p)
    _launch(be, "avg_pool3d_forward", y.size, x.data, y.data, include, *dims)
    return y, (x.shape, x.dtype, y.shape, include, dims)


def avg_pool3d_backward(be, dy, saved):
    shape, dtype, out_shape, include, dims = saved
    dy = _grad(be, "avg_pool3d", dy, out_shape, dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "avg_pool3d_backward", dx.size, dy.data, include, dx.data, *dims)
    return (dx,)


# ------------------------------------------------------------------ top-k global max
def global_max_pool_topk_forward(be, x, k=1):
    x = _image(be, "global_max_pool_topk", x)
    k = ref.check_topk("global_max_pool_topk", x.shape, k)
    planes, plane = x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]
    y = be.empty(x.shape[:2] + (1, k))
    arg = be.empty((planes, k), np.int32)
    _launch(be, "global_max_pool_topk_forward", planes, x.data, y.data, arg.data,
            *_i32(plane, k))
    return y, (x.shape, x.dtype, arg)


def global_max_pool_topk_backward(be, dy, saved):
    shape, dtype, arg = saved
    k = arg.shape[1]
    dy = _grad(be, "global_max_pool_topk", dy, shape[:2] + (1, k), dtype)
    dx = be.zeros(shape, dtype)
    _launch(be, "global_max_pool_topk_backward", arg.size, dy.data, arg.data, dx.data,
            *_i32(shape[2] * shape[3], k))
    return (dx,)


# ------------------------------------------------------------------ max over time
# x (T, N, C) is the single image (1, 1, T, N C): max_over_time is max_pool2d with the
# window (L, 1), stride (S, 1) and no padding, so it runs the max_pool2d kernels.
def max_over_time_forward(be, x, filter_len=0, stride_len=1):
    shape = tuple(np.shape(x))
    L, S, To = ref.check_over_time("max_over_time", shape, filter_len, stride_len)
    x = device_input(be, "max_over_time", "x", x)
    if x.size >= 2 ** 31:
        raise ShapeError(f"max_over_time: x must have fewer than 2**31 elements, got {x.size}")
    cols = shape[1] * shape[2]
    y = be.empty((To,) + shape[1:])
    arg = be.empty(y.shape, np.int32)
    dims = _i32(shape[0], cols, To, cols, L, 1, S, 1, 0, 0)
    _launch(be, "max_pool2d_forward", y.size, x.data, y.data, arg.data, *dims)
    return y, (shape, x.dtype, arg, dims)


def max_over_time_backward(be, dy, saved):
    shape, dtype, arg, dims = saved
    dy = _grad(be, "max_over_time", dy, arg.shape, dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "max_pool2d_backward", dx.size, dy.data, arg.data, dx.data, *dims)
    return (dx,)


# ------------------------------------------------------------------ projection pool
def _project(be, x, out_shape, L):
    y = be.empty(out_shape, x.dtype)
    A, B = x.shape[0], x.shape[2]
    _launch(be, "projection_pool", A * B, x.data, y.data, real(be, 1.0 / L),
            *_i32(x.shape[1], B, out_shape[1]))
    return y


def projection_pool_forward(be, x, original_size=False):
    shape = tuple(np.shape(x))
    if len(shape) != 3 or shape[1] < 1:
        raise ShapeError(f"projection_pool: x must have shape (A, L, B) with L >= 1, "
                         f"got {shape}")
    x = device_input(be, "projection_pool", "x", x)
    out = shape if original_size else (shape[0], 1, shape[2])
    return _project(be, x, out, shape[1]), (shape, x.dtype, out)


def projection_pool_backward(be, dy, saved):
    shape, dtype, out_shape = saved
    dy = _grad(be, "projection_pool", dy, out_shape, dtype)
    return (_project(be, dy, shape, shape[1]),)
