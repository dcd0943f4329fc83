"""cpu wrappers of the conv family: validate, allocate, call refnn._ext.conv.

Signatures and return conventions are those of refnn.ops.conv (NCHW input, filters
(F, C, kh, kw)). The geometry is checked by refnn.ops.conv.conv2d_geometry -- the same
rules and messages as the reference -- before any kernel runs.
"""
import numpy as np

from refnn._ext import conv as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import ShapeError
from refnn.ops.conv import conv2d_geometry


def conv2d_forward(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """y = conv2d(x, w) (refnn.ops.conv.conv2d_forward) via im2col + BLAS GEMM."""
    x = float_input("conv2d", "x", x)
    w = float_input("conv2d", "w", w, x.dtype)
    stride, padding, dilation, (Ho, Wo) = conv2d_geometry(
        x.shape, w.shape, stride, padding, dilation)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    geom = (N, C, H, W, kh, kw, *stride, *padding, *dilation, Ho, Wo)
    y = np.empty((N, F, Ho, Wo), x.dtype)
    cols = np.empty((N, C * kh * kw, Ho * Wo), x.dtype)
    if N:
        _k.conv2d_forward(x, w, cols, y, geom, n_threads())
    return y, (x.shape, w, cols, geom)


def conv2d_backward(dy, saved):
    """(dx, dw) of conv2d (refnn.ops.conv.conv2d_backward) via BLAS GEMM + col2im."""
    x_shape, w, cols, geom = saved
    N, Ho, Wo = geom[0], geom[-2], geom[-1]
    dy = float_input("conv2d", "dy", dy, w.dtype)
    if dy.shape != (N, w.shape[0], Ho, Wo):
        raise ShapeError(f"conv2d: dy must have shape {(N, w.shape[0], Ho, Wo)}, "
                         f"got {dy.shape}")
    dx = np.empty(x_shape, w.dtype)
    dw = np.empty_like(w)
    if N:
        dcols = np.empty_like(cols)
        _k.conv2d_backward(dy, w, cols, dcols, dx, dw, geom, n_threads())
    else:
        dw.fill(0)
    return dx, dw
