"""OpenCL host wrappers of the conv family (kernels in kernels/conv.cl, GEMM in dense.cl).

Signatures are those of refnn.ops.conv with the backend first; arrays stay on the
device. conv2d is im2col + one GEMM per image (forward), and two GEMMs per image +
col2im (backward); the per-image matrices are row slices of one buffer, which
dense.gemm takes by offset (no copies). conv3d is the same on vol2col/col2vol. The
transposed convolutions swap the roles: forward = GEMM (w^T @ x[n]) + col2im/col2vol,
backward = im2col/vol2col of dy + two GEMMs per image.
"""
import numpy as np

from refnn.backends.opencl import dense
from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d
from refnn.errors import ShapeError
from refnn.ops.conv import conv2d_geometry, conv_geometry, conv_transpose_geometry


def _geom_args(geom):
    """The int32 geometry arguments of im2col/col2im (C, H, W, kh, ..., Ho, Wo)."""
    return [np.int32(v) for v in geom[1:]]


def conv2d_forward(be, x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), need_dx=True):
    """y = conv2d(x, w) (refnn.ops.conv.conv2d_forward): im2col, then y[n] = w @ cols[n]."""
    x = device_input(be, "conv2d", "x", x)
    w = device_input(be, "conv2d", "w", w)
    stride, padding, dilation, (Ho, Wo) = conv2d_geometry(
        x.shape, w.shape, stride, padding, dilation)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    geom = (N, C, H, W, kh, kw, *stride, *padding, *dilation, Ho, Wo)
    K, P = C * kh * kw, Ho * Wo
    cols = be.empty((N, K, P))
    y = be.empty((N, F, Ho, Wo))
    w2 = w.reshape(F, K)
    if N:
        be.kernel("conv", "im2col")(
            be.queue, global_1d(cols.size), (LOCAL_1D,), x.data, cols.data,
            *_geom_args(geom), np.uint32(cols.size))
        y3 = y.reshape(N, F, P)
        for n in range(N):
            dense.gemm(be, w2, cols[n], y3[n])
    return y, (x.shape, w2, cols, geom, bool(need_dx))


def conv2d_backward(be, dy, saved):
    """(dx, dw) of conv2d (refnn.ops.conv.conv2d_backward): dw = sum_n dy[n] @ cols[n]^T,
    dx = col2im(w^T @ dy[n]) (None, no dcols/col2im work, when not need_dx)."""
    x_shape, w2, cols, geom, need_dx = saved
    N, C, kh, kw, Ho, Wo = geom[0], geom[1], geom[4], geom[5], geom[-2], geom[-1]
    F, K = w2.shape
    dy = device_input(be, "conv2d", "dy", dy)
    if dy.shape != (N, F, Ho, Wo):
        raise ShapeError(f"conv2d: dy must have shape {(N, F, Ho, Wo)}, got {dy.shape}")
    dx = be.empty(x_shape) if need_dx else None
    dw = be.zeros((F, K))
    if N:
        dy3 = dy.reshape(N, F, Ho * Wo)
        for n in range(N):
            dense.gemm(be, dy3[n], cols[n].T, dw, beta=1.0)
    if N and need_dx:
        dcols = be.empty(cols.shape)
        for n in range(N):
            dense.gemm(be, w2.T, dy3[n], dcols[n])
        be.kernel("conv", "col2im")(
            be.queue, global_1d(dx.size), (LOCAL_1D,), dcols.data, dx.data,
            *_geom_args(geom), np.uint32(dx.size))
    return dx, dw.reshape(F, C, kh, kw)


def _geom3_args(C, size, kernel, stride, padding, dilation, out):
    """The int32 arguments of vol2col/col2vol: C, D, H, W, kd, ..., Do, Ho, Wo."""
    return [np.int32(v) for v in (C, *size, *kernel, *stride, *padding, *dilation, *out)]


def _cols_kernel(be, nd, name):
    """im2col/col2im for 2-D, vol2col/col2vol for 3-D."""
    return be.kernel("conv", {("im", 2): "im2col", ("im", 3): "vol2col",
                              ("col", 2): "col2im", ("col", 3): "col2vol"}[(name, nd)])


def conv3d_forward(be, x, w, stride=1, padding=0, dilation=1):
    """y = conv3d(x, w) (refnn.ops.conv.conv3d_forward): vol2col, then y[n] = w @ cols[n]."""
    x = device_input(be, "conv3d", "x", x)
    w = device_input(be, "conv3d", "w", w)
    stride, padding, dilation, out = conv_geometry(x.shape, w.shape, stride, padding,
                                                   dilation, "conv3d", "DHW")
    N, C = x.shape[:2]
    F = w.shape[0]
    args = _geom3_args(C, x.shape[2:], w.shape[2:], stride, padding, dilation, out)
    K, P = C * int(np.prod(w.shape[2:])), int(np.prod(out))
    cols = be.empty((N, K, P))
    y = be.empty((N, F) + out)
    w2 = w.reshape(F, K)
    if N:
        be.kernel("conv", "vol2col")(be.queue, global_1d(cols.size), (LOCAL_1D,), x.data,
                                     cols.data, *args, np.uint32(cols.size))
        y3 = y.reshape(N, F, P)
        for n in range(N):
            dense.gemm(be, w2, cols[n], y3[n])
    return y, (x.shape, w.shape, w2, cols, args)


def conv3d_backward(be, dy, saved):
    """(dx, dw) of conv3d: dw = sum_n dy[n] @ cols[n]^T, dx = col2vol(w^T @ dy[n])."""
    x_shape, w_shape, w2, cols, args = saved
    N, (F, K), P = x_shape[0], w2.shape, cols.shape[2]
    y_shape = (N, F) + tuple(int(a) for a in args[-3:])
    dy = device_input(be, "conv3d", "dy", dy)
    if dy.shape != y_shape:
        raise ShapeError(f"conv3d: dy must have shape {y_shape}, got {dy.shape}")
    dx = be.empty(x_shape)
    dw = be.zeros((F, K))
    if N:
        dy3 = dy.reshape(N, F, P)
        dcols = be.empty(cols.shape)
        for n in range(N):
            dense.gemm(be, dy3[n], cols[n].T, dw, beta=1.0)
            dense.gemm(be, w2.T, dy3[n], dcols[n])
        be.kernel("conv", "col2vol")(be.queue, global_1d(dx.size), (LOCAL_1D,), dcols.data,
                                     dx.data, *args, np.uint32(dx.size))
    return dx, dw.reshape(w_shape)


def _transpose_forward(be, op, axes, x, w, stride, padding, dilation, output_padding):
    x = device_input(be, op, "x", x)
    w = device_input(be, op, "w", w)
    stride, padding, dilation, _, out = conv_transpose_geometry(
        x.shape, w.shape, stride, padding, dilation, output_padding, op, axes)
    N, F = x.shape[:2]
    C, nd = w.shape[1], len(axes)
    args = _geom3_args(C, out, w.shape[2:], stride, padding, dilation, x.shape[2:])
    K, P = C * int(np.prod(w.shape[2:])), int(np.prod(x.shape[2:]))
    w2 = w.reshape(F, K)
    y = be.empty((N, C) + out)
    if N:
        x3 = x.reshape(N, F, P)
        cols = be.empty((N, K, P))
        for n in range(N):
            dense.gemm(be, w2.T, x3[n], cols[n])
        _cols_kernel(be, nd, "col")(be.queue, global_1d(y.size), (LOCAL_1D,), cols.data,
                                    y.data, *args, np.uint32(y.size))
    return y, (op, nd, x, w.shape, w2, args, y.shape)


def _transpose_backward(be, dy, saved):
    op, nd, x, w_shape, w2, args, y_shape = saved
    N, (F, K) = x.shape[0], w2.shape
    P = int(np.prod(x.shape[2:]))
    dy = device_input(be, op, "dy", dy)
    if dy.shape != y_shape:
        raise ShapeError(f"{op}: dy must have shape {y_shape}, got {dy.shape}")
    dx = be.empty(x.shape)
    dw = be.zeros((F, K))
    if N:
        dcols = be.empty((N, K, P))
        _cols_kernel(be, nd, "im")(be.queue, global_1d(dcols.size), (LOCAL_1D,), dy.data,
                                   dcols.data, *args, np.uint32(dcols.size))
        x3, dx3 = x.reshape(N, F, P), dx.reshape(N, F, P)
        for n in range(N):
            dense.gemm(be, w2, dcols[n], dx3[n])
            dense.gemm(be, x3[n], dcols[n].T, dw, beta=1.0)
    return dx, dw.reshape(w_shape)


def conv_transpose2d_forward(be, x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                             output_padding=(0, 0)):
    """y = conv_transpose2d(x, w) (refnn.ops.conv): cols[n] = w^T @ x[n], then col2im."""
    return _transpose_forward(be, "conv_transpose2d", "HW", x, w, stride, padding, dilation,
                              output_padding)


def conv_transpose2d_backward(be, dy, saved):
    """(dx, dw) of conv_transpose2d: dcols = im2col(dy), dx[n] = w @ dcols[n],
    dw = sum_n x[n] @ dcols[n]^T."""
    return _transpose_backward(be, dy, saved)


def conv_transpose3d_forward(be, x, w, stride=1, padding=0, dilation=1, output_padding=0):
    """y = conv_transpose3d(x, w) (refnn.ops.conv): cols[n] = w^T @ x[n], then col2vol."""
    return _transpose_forward(be, "conv_transpose3d", "DHW", x, w, stride, padding,
                              dilation, output_padding)


def conv_transpose3d_backward(be, dy, saved):
    """(dx, dw) of conv_transpose3d: dcols = vol2col(dy), dx[n] = w @ dcols[n],
    dw = sum_n x[n] @ dcols[n]^T."""
    return _transpose_backward(be, dy, saved)
