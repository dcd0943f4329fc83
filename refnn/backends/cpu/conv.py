"""cpu wrappers of the conv family: validate, allocate, call refnn._ext.conv.

Signatures and return conventions are those of refnn.ops.conv (NCHW / NCDHW input,
filters (F, C, kh, kw) / (F, C, kd, kh, kw)). The geometry is checked by
refnn.ops.conv's conv2d_geometry / conv_geometry / conv_transpose_geometry -- the same
rules and messages as the reference -- before any kernel runs. conv3d and both
transposed convolutions share the 3-D kernels (a 2-D problem is a 3-D one with depth 1).
"""
import numpy as np

from refnn._ext import conv as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import ShapeError
from refnn.ops.conv import conv2d_geometry, conv_geometry, conv_transpose_geometry


def conv2d_forward(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), need_dx=True):
    """y = conv2d(x, w) (refnn.ops.conv.conv2d_forward): im2col of the whole batch into
    one (C*kh*kw, N*Ho*Wo) matrix, then one BLAS GEMM."""
    x = float_input("conv2d", "x", x)
    w = float_input("conv2d", "w", w, x.dtype)
    stride, padding, dilation, (Ho, Wo) = conv2d_geometry(
        x.shape, w.shape, stride, padding, dilation)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    geom = (N, C, H, W, kh, kw, *stride, *padding, *dilation, Ho, Wo)
    y = np.empty((N, F, Ho, Wo), x.dtype)
    cols = np.empty((C * kh * kw, N * Ho * Wo), x.dtype)     # the batch side by side
    if N:
        yw = np.empty((F, N * Ho * Wo), x.dtype)
        _k.conv2d_forward(x, w, cols, yw, y, geom, n_threads())
    return y, (x.shape, w, cols, geom, bool(need_dx))


def conv2d_backward(dy, saved):
    """(dx, dw) of conv2d (refnn.ops.conv.conv2d_backward) via BLAS GEMM + col2im."""
    x_shape, w, cols, geom, need_dx = saved
    N, Ho, Wo = geom[0], geom[-2], geom[-1]
    dy = float_input("conv2d", "dy", dy, w.dtype)
    if dy.shape != (N, w.shape[0], Ho, Wo):
        raise ShapeError(f"conv2d: dy must have shape {(N, w.shape[0], Ho, Wo)}, "
                         f"got {dy.shape}")
    dx = np.empty(x_shape, w.dtype) if need_dx else None
    dw = np.empty_like(w)
    if N:
        dyw = np.empty((w.shape[0], cols.shape[1]), w.dtype)
        dcols = np.empty_like(cols) if need_dx else cols   # untouched without need_dx
        _k.conv2d_backward(dy, w, cols, dyw, dcols, dx if need_dx else dw, dw, geom,
                           n_threads(), need_dx)
    else:
        dw.fill(0)
    return dx, dw


def _geom3(N, C, size, kernel, stride, padding, dilation, out):
    """The 20-int geometry of refnn._ext.conv's 3-D kernels; 2-D gets a depth axis of 1."""
    pad = (1,) * (3 - len(size))
    zero = (0,) * (3 - len(size))
    return (N, C, *pad, *size, *pad, *kernel, *pad, *stride, *zero, *padding, *pad,
            *dilation, *pad, *out)


def conv3d_forward(x, w, stride=1, padding=0, dilation=1):
    """y = conv3d(x, w) (refnn.ops.conv.conv3d_forward) via vol2col + BLAS GEMM."""
    x = float_input("conv3d", "x", x)
    w = float_input("conv3d", "w", w, x.dtype)
    stride, padding, dilation, out = conv_geometry(x.shape, w.shape, stride, padding,
                                                   dilation, "conv3d", "DHW")
    N, C = x.shape[:2]
    F, kernel = w.shape[0], w.shape[2:]
    geom = _geom3(N, C, x.shape[2:], kernel, stride, padding, dilation, out)
    y = np.empty((N, F) + out, x.dtype)
    w2 = w.reshape(F, -1)
    cols = np.empty((N, w2.shape[1], int(np.prod(out))), x.dtype)
    if N:
        _k.conv3d_forward(x, w2, cols, y, geom, n_threads())
    return y, (x.shape, w2, cols, geom, w.shape)


def conv3d_backward(dy, saved):
    """(dx, dw) of conv3d (refnn.ops.conv.conv3d_backward) via BLAS GEMM + col2vol."""
    x_shape, w2, cols, geom, w_shape = saved
    y_shape = (x_shape[0], w_shape[0]) + tuple(geom[-3:])
    dy = float_input("conv3d", "dy", dy, w2.dtype)
    if dy.shape != y_shape:
        raise ShapeError(f"conv3d: dy must have shape {y_shape}, got {dy.shape}")
    dx = np.empty(x_shape, w2.dtype)
    dw = np.zeros(w2.shape, w2.dtype)
    if x_shape[0]:
        dcols = np.empty_like(cols)
        _k.conv3d_backward(dy, w2, cols, dcols, dx, dw, geom, n_threads())
    return dx, dw.reshape(w_shape)


def _transpose_forward(op, axes, x, w, stride, padding, dilation, output_padding):
    x = float_input(op, "x", x)
    w = float_input(op, "w", w, x.dtype)
    stride, padding, dilation, _, out = conv_transpose_geometry(
        x.shape, w.shape, stride, padding, dilation, output_padding, op, axes)
    N, F = x.shape[:2]
    C, kernel = w.shape[1], w.shape[2:]
    geom = _geom3(N, C, out, kernel, stride, padding, dilation, x.shape[2:])
    y = np.empty((N, C) + out, x.dtype)
    w2 = w.reshape(F, -1)
    cols = np.empty((N, w2.shape[1], int(np.prod(x.shape[2:]))), x.dtype)
    if N:
        _k.conv_transpose_forward(x, w2, cols, y, geom, n_threads())
    return y, (op, x, w2, geom, w.shape, y.shape)


def _transpose_backward(dy, saved):
    op, x, w2, geom, w_shape, y_shape = saved
    dy = float_input(op, "dy", dy, w2.dtype)
    if dy.shape != y_shape:
        raise ShapeError(f"{op}: dy must have shape {y_shape}, got {dy.shape}")
    dx = np.empty(x.shape, w2.dtype)
    dw = np.zeros(w2.shape, w2.dtype)
    if x.shape[0]:
        dcols = np.empty((x.shape[0], w2.shape[1], int(np.prod(x.shape[2:]))), w2.dtype)
        _k.conv_transpose_backward(dy, x, w2, dcols, dx, dw, geom, n_threads())
    return dx, dw.reshape(w_shape)


def conv_transpose2d_forward(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                             output_padding=(0, 0)):
    """y = conv_transpose2d(x, w) (refnn.ops.conv): cols = w^T @ x[n], then col2im."""
    return _transpose_forward("conv_transpose2d", "HW", x, w, stride, padding, dilation,
                              output_padding)


def conv_transpose2d_backward(dy, saved):
    """(dx, dw) of conv_transpose2d: dx = conv2d(dy, w), dw = sum_n x[n] @ im2col(dy)^T."""
    return _transpose_backward(dy, saved)


def conv_transpose3d_forward(x, w, stride=1, padding=0, dilation=1, output_padding=0):
    """y = conv_transpose3d(x, w) (refnn.ops.conv): cols = w^T @ x[n], then col2vol."""
    return _transpose_forward("conv_transpose3d", "DHW", x, w, stride, padding, dilation,
                              output_padding)


def conv_transpose3d_backward(dy, saved):
    """(dx, dw) of conv_transpose3d: dx = conv3d(dy, w), dw = sum_n x[n] @ vol2col(dy)^T."""
    return _transpose_backward(dy, saved)
