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
