"""OpenCL host wrappers of the conv family (kernels in kernels/conv.cl, GEMM in dense.cl).

Signatures are those of refnn.ops.conv with the backend first; arrays stay on the
device. conv2d is im2col + one GEMM per image (forward), and two GEMMs per image +
col2im (backward); the per-image matrices are row slices of one buffer, which
dense.gemm takes by offset (no copies).
"""
import numpy as np

from refnn.backends.opencl import dense
from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d
from refnn.errors import ShapeError
from refnn.ops.conv import conv2d_geometry


def _geom_args(geom):
    """The int32 geometry arguments of im2col/col2im (C, H, W, kh, ..., Ho, Wo)."""
    return [np.int32(v) for v in geom[1:]]


def conv2d_forward(be, x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
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
    return y, (x.shape, w2, cols, geom)


def conv2d_backward(be, dy, saved):
    """(dx, dw) of conv2d (refnn.ops.conv.conv2d_backward): dw = sum_n dy[n] @ cols[n]^T,
    dx = col2im(w^T @ dy[n])."""
    x_shape, w2, cols, geom = saved
    N, C, kh, kw, Ho, Wo = geom[0], geom[1], geom[4], geom[5], geom[-2], geom[-1]
    F, K = w2.shape
    dy = device_input(be, "conv2d", "dy", dy)
    if dy.shape != (N, F, Ho, Wo):
        raise ShapeError(f"conv2d: dy must have shape {(N, F, Ho, Wo)}, got {dy.shape}")
    dx = be.empty(x_shape)
    dw = be.zeros((F, K))
    if N:
        dy3 = dy.reshape(N, F, Ho * Wo)
        dcols = be.empty(cols.shape)
        for n in range(N):
            dense.gemm(be, dy3[n], cols[n].T, dw, beta=1.0)
            dense.gemm(be, w2.T, dy3[n], dcols[n])
        be.kernel("conv", "col2im")(
            be.queue, global_1d(dx.size), (LOCAL_1D,), dcols.data, dx.data,
            *_geom_args(geom), np.uint32(dx.size))
    return dx, dw.reshape(F, C, kh, kw)
