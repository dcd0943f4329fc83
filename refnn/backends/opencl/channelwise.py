"""OpenCL host wrappers of the channelwise family (kernels in kernels/channelwise.cl,
GEMM in dense.cl).

Signatures are those of refnn.ops.channelwise with the backend first; arrays stay on
the device. channelwise_conv2d is direct: one work-item per output (forward) or input
pixel (dx), one work-group per filter tap (dw). time_conv is an im2col over time, then
one GEMM for all To*N rows (forward), two GEMMs and a col2im over time (backward).
"""
import numpy as np

from refnn.backends.opencl import dense
from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d
from refnn.errors import ShapeError
from refnn.ops.channelwise import channelwise_geometry, time_conv_geometry

_CW_LOCAL = 64          # CW_LOCAL in channelwise.cl


def _i32(*vals):
    return [np.int32(v) for v in vals]


def _launch(be, name, n, *args):
    be.kernel("channelwise", name)(be.queue, global_1d(n), (LOCAL_1D,), *args,
                                   np.uint32(n))


def _small(where, *arrays):
    for a in arrays:
        if a.size >= 2 ** 31:
            raise ShapeError(f"{where}: arrays must have fewer than 2**31 elements, got "
                             f"shape {a.shape}")


# ----------------------------------------------------------------- channelwise_conv2d
def channelwise_conv2d_forward(be, x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """y = channelwise_conv2d(x, w) (refnn.ops.channelwise), one work-item per output."""
    x = device_input(be, "channelwise_conv2d", "x", x)
    w = device_input(be, "channelwise_conv2d", "w", w)
    stride, padding, dilation, (Ho, Wo) = channelwise_geometry(
        x.shape, w.shape, stride, padding, dilation)
    N, C, H, W = x.shape
    kh, kw = w.shape[2:]
    geom = _i32(C, H, W, kh, kw, *stride, *padding, *dilation, Ho, Wo)
    y = be.empty((N, C, Ho, Wo))
    _small("channelwise_conv2d", x, y)
    if y.size:
        _launch(be, "cw_forward", y.size, x.data, w.data, y.data, *geom)
    return y, (x, w, geom)


def channelwise_conv2d_backward(be, dy, saved):
    """(dx, dw) of channelwise_conv2d: dx gathered per pixel, dw reduced per tap."""
    x, w, geom = saved
    Ho, Wo = int(geom[-2]), int(geom[-1])
    dy = device_input(be, "channelwise_conv2d", "dy", dy)
    if dy.shape != x.shape[:2] + (Ho, Wo):
        raise ShapeError(f"channelwise_conv2d: dy must have shape "
                         f"{x.shape[:2] + (Ho, Wo)}, got {dy.shape}")
    dx = be.empty(x.shape)
    dw = be.zeros(w.shape)
    if x.size:
        _launch(be, "cw_backward_dx", dx.size, dy.data, w.data, dx.data, *geom)
        taps = w.size
        be.kernel("channelwise", "cw_backward_dw")(
            be.queue, (taps * _CW_LOCAL,), (_CW_LOCAL,), dy.data, x.data, dw.data,
            np.int32(x.shape[0]), *geom)
    return dx, dw


# ----------------------------------------------------------------------- time_conv
def time_conv_forward(be, x, w, stride=1, padding_front=0, padding_back=0, dilation=1):
    """y = time_conv(x, w) (refnn.ops.channelwise.time_conv_forward): im2col over time,
    then y = cols @ w^T in one GEMM."""
    x = device_input(be, "time_conv", "x", x)
    w = device_input(be, "time_conv", "w", w)
    stride, pf, pb, dilation, To = time_conv_geometry(
        x.shape, w.shape, stride, padding_front, padding_back, dilation)
    T, N, C = x.shape
    F, K, _ = w.shape
    geom = _i32(T, N, C, K, stride, pf, dilation)
    cols = be.empty((To * N, K * C))
    y = be.empty((To, N, F))
    _small("time_conv", x, cols)
    w2 = w.reshape(F, K * C)
    if cols.size:
        _launch(be, "time_im2col", cols.size, x.data, cols.data, *geom)
        dense.gemm(be, cols, w2.T, y.reshape(To * N, F))
    return y, (x.shape, w2, cols, geom, To)


def time_conv_backward(be, dy, saved):
    """(dx, dw) of time_conv: dw = dy^T @ cols, dcols = dy @ w (two GEMMs), then
    dx = time_col2im(dcols)."""
    x_shape, w2, cols, geom, To = saved
    T, N, C = x_shape
    F, KC = w2.shape
    dy = device_input(be, "time_conv", "dy", dy)
    if dy.shape != (To, N, F):
        raise ShapeError(f"time_conv: dy must have shape {(To, N, F)}, got {dy.shape}")
    dx = be.zeros(x_shape)
    dw = be.zeros((F, KC))
    if cols.size:
        dy2 = dy.reshape(To * N, F)
        dense.gemm(be, dy2.T, cols, dw)
        dcols = be.empty(cols.shape)
        dense.gemm(be, dy2, w2, dcols)
        _launch(be, "time_col2im", dx.size, dcols.data, dx.data, *geom, np.int32(To))
    return dx, dw.reshape(F, KC // C, C)
