"""cpu wrappers of the channelwise family: validate, allocate, call refnn._ext.channelwise.

Signatures and return conventions are those of refnn.ops.channelwise
(channelwise_conv2d: NCHW input, filter (C, 1, kh, kw); time_conv: time-major (T, N, C)
input, filters (F, K, C)). The geometry is checked by the reference's
``channelwise_geometry`` / ``time_conv_geometry`` -- the same rules and messages --
before any kernel runs.
"""
import numpy as np

from refnn._ext import channelwise as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import ShapeError
from refnn.ops.channelwise import channelwise_geometry, time_conv_geometry


def channelwise_conv2d_forward(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """y = channelwise_conv2d(x, w) (refnn.ops.channelwise), direct, OpenMP over N*C."""
    x = float_input("channelwise_conv2d", "x", x)
    w = float_input("channelwise_conv2d", "w", w, x.dtype)
    stride, padding, dilation, (Ho, Wo) = channelwise_geometry(
        x.shape, w.shape, stride, padding, dilation)
    N, C, H, W = x.shape
    kh, kw = w.shape[2:]
    geom = (N, C, H, W, kh, kw, *stride, *padding, *dilation, Ho, Wo)
    y = np.empty((N, C, Ho, Wo), x.dtype)
    if N:
        _k.channelwise_conv2d_forward(x, w, y, geom, n_threads())
    return y, (x, w, geom)


def channelwise_conv2d_backward(dy, saved):
    """(dx, dw) of channelwise_conv2d: dx per plane, dw per filter tap (OpenMP)."""
    x, w, geom = saved
    dy = float_input("channelwise_conv2d", "dy", dy, w.dtype)
    expected = x.shape[:2] + geom[-2:]
    if dy.shape != expected:
        raise ShapeError(f"channelwise_conv2d: dy must have shape {expected}, got {dy.shape}")
    dx = np.empty_like(x)
    dw = np.zeros_like(w)
    if x.shape[0]:
        _k.channelwise_conv2d_backward(dy, x, w, dx, dw, geom, n_threads())
    return dx, dw


def time_conv_forward(x, w, stride=1, padding_front=0, padding_back=0, dilation=1):
    """y = time_conv(x, w) (refnn.ops.channelwise.time_conv_forward): im2col over time,
    then one BLAS GEMM y = cols @ w^T."""
    x = float_input("time_conv", "x", x)
    w = float_input("time_conv", "w", w, x.dtype)
    stride, pf, pb, dilation, To = time_conv_geometry(
        x.shape, w.shape, stride, padding_front, padding_back, dilation)
    T, N, C = x.shape
    F, K, _ = w.shape
    geom = (T, N, C, K, stride, pf, dilation, To)
    y = np.empty((To, N, F), x.dtype)
    cols = np.empty((To * N, K * C), x.dtype)
    if N:
        _k.time_conv_forward(x, w, cols, y, geom, n_threads())
    return y, (x.shape, w, cols, geom)


def time_conv_backward(dy, saved):
    """(dx, dw) of time_conv: two BLAS GEMMs (dw = dy^T @ cols, dcols = dy @ w), then
    the col2im over time."""
    x_shape, w, cols, geom = saved
    N, To, F = geom[1], geom[-1], w.shape[0]
    dy = float_input("time_conv", "dy", dy, w.dtype)
    if dy.shape != (To, N, F):
        raise ShapeError(f"time_conv: dy must have shape {(To, N, F)}, got {dy.shape}")
    dx = np.zeros(x_shape, w.dtype)
    dw = np.zeros_like(w)
    if N:
        dcols = np.empty_like(cols)
        _k.time_conv_backward(dy, w, cols, dcols, dx, dw, geom, n_threads())
    return dx, dw
