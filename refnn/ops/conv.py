"""Convolution family: 2-D and 3-D convolution (cross-correlation, as in every DL
framework) and their transposes (the adjoint maps, "deconvolution").

Canonical layout: NCHW. ``x`` is (N, C, H, W) -- N images of C channels of H x W pixels;
the filters ``w`` are (F, C, kh, kw) -- F filters, each one kh x kw window per input
channel (NeoML's and neon's layouts are converted by the facades). The output ``y`` is
(N, F, Ho, Wo) with, per axis,

    Ho = (H + 2 ph - dh (kh - 1) - 1) // sh + 1          (floor: a partial window is dropped)

where s is the stride, p the zero padding on each side and d the dilation (the gap
between the taps of a filter: d = 1 is an ordinary dense window).

    y[n,f,i,j] = sum_{c,p,q} w[f,c,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]

The reference computes this the way the fast paths do: ``im2col`` copies every window
into one column, then a single matrix product with the filters (flattened to rows) does
all the multiply-adds. The backward pass is the same two steps transposed: ``col2im``
adds each column back onto the pixels it was copied from.

3-D convolution (``conv3d``) is the same with one more spatial axis: x (N, C, D, H, W),
w (F, C, kd, kh, kw); ``vol2col``/``col2vol`` are im2col/col2im over every spatial axis.

Transposed convolution (``conv_transpose2d``/``conv_transpose3d``) is the adjoint of the
convolution with the same filters: x (N, F, H, W), w (F, C, kh, kw) -- the layout of the
conv2d that maps C -> F; this maps F -> C -- and, per axis,

    Ho = (H - 1) sh - 2 ph + dh (kh - 1) + 1 + oph        (oph: output_padding < sh)

Its forward is conv2d's backward-data (cols = W^T @ x[n], then col2im, the padding cut
off), its input gradient is conv2d's forward applied to dy, and its filter gradient comes
from the same im2col of dy.

``conv2d_geometry`` (and ``conv_geometry``/``conv_transpose_geometry`` for the other
ops) is the one validation of the arguments: every path calls it before any kernel runs.
"""
from itertools import product
from math import prod

import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.ops._spec import OpSpec


def _pair(where, what, v, minimum):
    """An int or an (int, int) pair -> (int, int), each >= minimum."""
    pair = (v, v) if np.isscalar(v) else tuple(v)
    if len(pair) != 2 or not all(isinstance(a, (int, np.integer)) for a in pair):
        raise ParameterError(f"{where}: {what} must be an int or a pair of ints, got {v!r}")
    if min(pair) < minimum:
        raise ParameterError(f"{where}: {what} must be >= {minimum}, got {v!r}")
    return int(pair[0]), int(pair[1])


def _ntuple(where, what, v, n, minimum):
    """An int or a tuple of n ints -> tuple of n ints, each >= minimum."""
    if n == 2:
        return _pair(where, what, v, minimum)
    t = (v,) * n if np.isscalar(v) else tuple(v)
    if len(t) != n or not all(isinstance(a, (int, np.integer)) for a in t):
        raise ParameterError(f"{where}: {what} must be an int or a tuple of {n} ints, "
                             f"got {v!r}")
    if min(t) < minimum:
        raise ParameterError(f"{where}: {what} must be >= {minimum}, got {v!r}")
    return tuple(int(a) for a in t)


def _shapes(axes, first="C"):
    """The spelled-out shapes of x and w for the messages: "(N, C, H, W)", "(F, C, kh, kw)"."""
    return (f"(N, {first}, {', '.join(axes)})",
            f"(F, C, {', '.join('k' + a.lower() for a in axes)})")


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, where="conv3d",
                  axes="DHW"):
    """Validate a convolution over the spatial ``axes`` ("HW" or "DHW"); return
    (stride, padding, dilation, output size), each a tuple with one entry per axis.

    Raises ShapeError for a wrong rank, mismatched channels or a (dilated) kernel
    larger than the padded input, ParameterError for a stride or dilation < 1 or a
    negative padding.
    """
    x_shape, w_shape, n = tuple(x_shape), tuple(w_shape), len(axes)
    xs, ws = _shapes(axes)
    if len(x_shape) != n + 2:
        raise ShapeError(f"{where}: x must have shape {xs}, got {x_shape}")
    if len(w_shape) != n + 2:
        raise ShapeError(f"{where}: w must have shape {ws}, got {w_shape}")
    if min(w_shape) < 1 or min(x_shape[1:]) < 1:
        names = ", ".join(("C",) + tuple(axes) + ("F",) + tuple("k" + a.lower() for a in axes))
        raise ShapeError(f"{where}: x {xs} and w {ws} need {names} >= 1, got x {x_shape} "
                         f"and w {w_shape}")
    if w_shape[1] != x_shape[1]:
        raise ShapeError(f"{where}: w must have shape (*, {x_shape[1]}{', *' * n}) for x "
                         f"with {x_shape[1]} channels, got {w_shape}")
    stride = _ntuple(where, "stride", stride, n, 1)
    padding = _ntuple(where, "padding", padding, n, 0)
    dilation = _ntuple(where, "dilation", dilation, n, 1)
    out = []
    for axis, size, k, s, p, d in zip(axes, x_shape[2:], w_shape[2:], stride, padding,
                                      dilation):
        span = d * (k - 1) + 1                     # the dilated kernel's extent
        if span > size + 2 * p:
            raise ShapeError(
                f"{where}: the kernel spans {span} pixels along {axis} (k={k}, "
                f"dilation={d}) but the padded input has only {size + 2 * p} "
                f"({axis}={size}, padding={p})")
        out.append((size + 2 * p - span) // s + 1)
    return stride, padding, dilation, tuple(out)


def conv2d_geometry(x_shape, w_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                    where="conv2d"):
    """Validate conv2d's arguments; return (stride, padding, dilation, (Ho, Wo)).

    Raises ShapeError for a wrong rank, mismatched channels or a (dilated) kernel
    larger than the padded input, ParameterError for a stride or dilation < 1 or a
    negative padding.
    """
    return conv_geometry(x_shape, w_shape, stride, padding, dilation, where, "HW")


def conv_transpose_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1,
                            output_padding=0, where="conv_transpose2d", axes="HW"):
    """Validate a transposed convolution; return (stride, padding, dilation,
    output_padding, output size), one entry per spatial axis, with

        out = (size - 1) s - 2 p + d (k - 1) + 1 + output_padding.

    x is (N, F, *spatial) and w (F, C, *kernel): x's channels are w's FIRST axis.
    output_padding must be smaller than the stride (it picks one of the s input sizes
    that the convolution maps to the same output size). Raises ShapeError for a wrong
    rank, mismatched channels or an empty output, ParameterError for bad parameters.
    """
    x_shape, w_shape, n = tuple(x_shape), tuple(w_shape), len(axes)
    xs, ws = _shapes(axes, first="F")
    if len(x_shape) != n + 2:
        raise ShapeError(f"{where}: x must have shape {xs}, got {x_shape}")
    if len(w_shape) != n + 2:
        raise ShapeError(f"{where}: w must have shape {ws}, got {w_shape}")
    if min(w_shape) < 1 or min(x_shape[1:]) < 1:
        raise ShapeError(f"{where}: x {xs} and w {ws} need every size but N >= 1, got x "
                         f"{x_shape} and w {w_shape}")
    if w_shape[0] != x_shape[1]:
        raise ShapeError(f"{where}: w must have shape ({x_shape[1]}{', *' * (n + 1)}) for x "
                         f"with {x_shape[1]} channels, got {w_shape}")
    stride = _ntuple(where, "stride", stride, n, 1)
    padding = _ntuple(where, "padding", padding, n, 0)
    dilation = _ntuple(where, "dilation", dilation, n, 1)
    output_padding = _ntuple(where, "output_padding", output_padding, n, 0)
    if any(op >= s for op, s in zip(output_padding, stride)):
        raise ParameterError(f"{where}: output_padding must be smaller than the stride on "
                             f"every axis, got output_padding={output_padding} and "
                             f"stride={stride}")
    out = []
    for axis, size, k, s, p, d, op in zip(axes, x_shape[2:], w_shape[2:], stride, padding,
                                          dilation, output_padding):
        o = (size - 1) * s - 2 * p + d * (k - 1) + 1 + op
        if o < 1:
            raise ShapeError(f"{where}: the output would have {o} pixels along {axis} "
                             f"({axis}={size}, k={k}, stride={s}, padding={p}, "
                             f"dilation={d}, output_padding={op}): the padding is too large")
        out.append(o)
    return stride, padding, dilation, output_padding, tuple(out)


def im2col(xpad, kh, kw, stride, dilation, out_hw):
    """Copy every window of ``xpad`` (N, C, Hp, Wp) into a column:

        cols[n, (c*kh + p)*kw + q, i*Wo + j] = xpad[n, c, i*sh + p*dh, j*sw + q*dw]

    -> cols (N, C*kh*kw, Ho*Wo). One strided slice per filter tap (p, q).
    """
    (sh, sw), (dh, dw), (Ho, Wo) = stride, dilation, out_hw
    N, C = xpad.shape[:2]
    cols = np.empty((N, C, kh, kw, Ho, Wo), xpad.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, :, p, q] = xpad[:, :, p * dh:p * dh + sh * (Ho - 1) + 1:sh,
                                    q * dw:q * dw + sw * (Wo - 1) + 1:sw]
    return cols.reshape(N, C * kh * kw, Ho * Wo)


def col2im(cols, xpad_shape, kh, kw, stride, dilation, out_hw):
    """The transpose of im2col: add every column entry back onto its pixel,

        dxpad[n, c, i*sh + p*dh, j*sw + q*dw] += cols[n, (c*kh + p)*kw + q, i*Wo + j]

    (pixels shared by overlapping windows collect several terms).
    """
    (sh, sw), (dh, dw), (Ho, Wo) = stride, dilation, out_hw
    N, C = xpad_shape[:2]
    cols = cols.reshape(N, C, kh, kw, Ho, Wo)
    dxpad = np.zeros(xpad_shape, cols.dtype)
    for p in range(kh):
        for q in range(kw):
            dxpad[:, :, p * dh:p * dh + sh * (Ho - 1) + 1:sh,
                  q * dw:q * dw + sw * (Wo - 1) + 1:sw] += cols[:, :, p, q]
    return dxpad


def conv2d_forward(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), need_dx=True):
    """y[n,f,i,j] = sum_{c,p,q} w[f,c,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw].

    x: (N, C, H, W), w: (F, C, kh, kw) -> y: (N, F, Ho, Wo); stride, padding and
    dilation are ints or (height, width) pairs; xpad is x with ``padding`` zeros on
    each side. As a matrix product: y[n] = w.reshape(F, C*kh*kw) @ im2col(xpad)[n].
    ``need_dx=False`` (the first layer of a network): backward returns (None, dw) and
    skips the col2im work.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv2d_forward(x, np.ones((1, 1, 2, 2)))[0][0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    stride, padding, dilation, out_hw = conv2d_geometry(
        x.shape, w.shape, stride, padding, dilation)
    (ph, pw), (F, _, kh, kw) = padding, w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = im2col(xpad, kh, kw, stride, dilation, out_hw)
    y = w.reshape(F, -1) @ cols                       # (N, F, Ho*Wo)
    saved = (cols, w, x.shape, xpad.shape, stride, padding, dilation, out_hw, need_dx)
    return y.reshape(x.shape[0], F, *out_hw), saved


def conv2d_backward(dy, saved):
    """dw[f,c,p,q] = sum_{n,i,j} dy[n,f,i,j] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]
                     (dW = sum_n dy[n] @ cols[n]^T),
    dx = col2im(W^T @ dy[n]) with the padding cut off again (None if not need_dx).
    """
    cols, w, x_shape, xpad_shape, stride, padding, dilation, out_hw, need_dx = saved
    (ph, pw), (F, _, kh, kw) = padding, w.shape
    dy = dy.reshape(x_shape[0], F, -1)                # (N, F, Ho*Wo)
    dw = (dy @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    if not need_dx:
        return None, dw
    dcols = w.reshape(F, -1).T @ dy                   # (N, C*kh*kw, Ho*Wo)
    dxpad = col2im(dcols, xpad_shape, kh, kw, stride, dilation, out_hw)
    dx = dxpad[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]
    return np.ascontiguousarray(dx), dw


# ----------------------------------------------------------------- N-d convolution
def vol2col(xpad, kernel, stride, dilation, out_size):
    """im2col over any number of spatial axes: for the taps t and output positions o,

        cols[n, c*K + t, o] = xpad[n, c, o_1 s_1 + t_1 d_1, ..., o_k s_k + t_k d_k]

    (taps and positions flattened row-major; K = prod(kernel)) -> (N, C*K, prod(out)).
    """
    N, C = xpad.shape[:2]
    cols = np.empty((N, C) + tuple(kernel) + tuple(out_size), xpad.dtype)
    for taps in product(*(range(k) for k in kernel)):
        window = tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                       for t, s, d, o in zip(taps, stride, dilation, out_size))
        cols[(slice(None), slice(None)) + taps] = xpad[(slice(None), slice(None)) + window]
    return cols.reshape(N, C * prod(kernel), prod(out_size))


def col2vol(cols, xpad_shape, kernel, stride, dilation, out_size):
    """The transpose of vol2col: add every column entry back onto its pixel."""
    N, C = xpad_shape[:2]
    cols = cols.reshape((N, C) + tuple(kernel) + tuple(out_size))
    dxpad = np.zeros(xpad_shape, cols.dtype)
    for taps in product(*(range(k) for k in kernel)):
        window = tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                       for t, s, d, o in zip(taps, stride, dilation, out_size))
        dxpad[(slice(None), slice(None)) + window] += cols[(slice(None), slice(None)) + taps]
    return dxpad


def _pad(x, padding):
    """Zero-pad every spatial axis of (N, C, *spatial) by padding[axis] on each side."""
    return np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding))


def _crop(xpad, padding, size):
    """Cut the padding off again: xpad[:, :, p:p + size, ...] per spatial axis."""
    return xpad[(slice(None), slice(None)) + tuple(slice(p, p + n)
                                                    for p, n in zip(padding, size))]


def conv3d_forward(x, w, stride=1, padding=0, dilation=1):
    """y[n,f,a,i,j] = sum_{c,o,p,q} w[f,c,o,p,q] *
                      xpad[n, c, a*sd + o*dd, i*sh + p*dh, j*sw + q*dw].

    x: (N, C, D, H, W), w: (F, C, kd, kh, kw) -> y: (N, F, Do, Ho, Wo); stride, padding
    and dilation are ints or (depth, height, width) triples; each output size is
    (size + 2 p - d (k - 1) - 1) // s + 1. As a matrix product:
    y[n] = w.reshape(F, C*kd*kh*kw) @ vol2col(xpad)[n].
    """
    stride, padding, dilation, out = conv_geometry(x.shape, w.shape, stride, padding,
                                                   dilation, "conv3d", "DHW")
    xpad = _pad(x, padding)
    cols = vol2col(xpad, w.shape[2:], stride, dilation, out)
    y = w.reshape(w.shape[0], -1) @ cols               # (N, F, Do*Ho*Wo)
    saved = (cols, w, x.shape, xpad.shape, stride, padding, dilation, out)
    return y.reshape((x.shape[0], w.shape[0]) + out), saved


def conv3d_backward(dy, saved):
    """dw = sum_n dy[n] @ vol2col(xpad)[n]^T, dx = col2vol(W^T @ dy[n]), padding cut off."""
    cols, w, x_shape, xpad_shape, stride, padding, dilation, out = saved
    F = w.shape[0]
    dy = dy.reshape(x_shape[0], F, -1)                # (N, F, Do*Ho*Wo)
    dw = (dy @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ dy                   # (N, C*kd*kh*kw, Do*Ho*Wo)
    dxpad = col2vol(dcols, xpad_shape, w.shape[2:], stride, dilation, out)
    return np.ascontiguousarray(_crop(dxpad, padding, x_shape[2:])), dw


def _conv_transpose_forward(x, w, stride, padding, dilation, output_padding, where, axes):
    """y = crop(col2vol(W^T @ x[n])): the adjoint of the convolution (see the module)."""
    stride, padding, dilation, output_padding, out = conv_transpose_geometry(
        x.shape, w.shape, stride, padding, dilation, output_padding, where, axes)
    N, F = x.shape[:2]
    C, kernel = w.shape[1], w.shape[2:]
    cols = w.reshape(F, -1).T @ x.reshape(N, F, -1)   # (N, C*prod(kernel), prod(x size))
    ypad_shape = (N, C) + tuple(o + 2 * p for o, p in zip(out, padding))
    ypad = col2vol(cols, ypad_shape, kernel, stride, dilation, x.shape[2:])
    saved = (x, w, stride, padding, dilation)
    return np.ascontiguousarray(_crop(ypad, padding, out)), saved


def _conv_transpose_backward(dy, saved):
    """dcols = vol2col(pad(dy)): dx[n] = W @ dcols[n] (the convolution of dy),
    dw = sum_n x[n] @ dcols[n]^T."""
    x, w, stride, padding, dilation = saved
    N, F = x.shape[:2]
    dcols = vol2col(_pad(dy, padding), w.shape[2:], stride, dilation, x.shape[2:])
    dx = (w.reshape(F, -1) @ dcols).reshape(x.shape)
    dw = (x.reshape(N, F, -1) @ dcols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    return dx, dw


def conv_transpose2d_forward(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                             output_padding=(0, 0)):
    """The transposed 2-D convolution (the adjoint of conv2d with the same w):

        y[n, c, i*sh + p*dh - ph, j*sw + q*dw - pw] += sum_f w[f,c,p,q] * x[n,f,i,j]

    x: (N, F, H, W), w: (F, C, kh, kw) -> y: (N, C, Ho, Wo) with
    Ho = (H - 1) sh - 2 ph + dh (kh - 1) + 1 + oph (positions in the padding dropped;
    output_padding < stride adds rows/columns at the end that no tap reaches).
    As matrices: y[n] = col2im(w.reshape(F, C*kh*kw)^T @ x[n]) -- conv2d's backward-data.

    >>> conv_transpose2d_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))[0][0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    return _conv_transpose_forward(x, w, stride, padding, dilation, output_padding,
                                   "conv_transpose2d", "HW")


def conv_transpose2d_backward(dy, saved):
    """dx = conv2d(dy, w) (same stride, padding, dilation), dw[f,c,p,q] =
    sum_{n,i,j} x[n,f,i,j] * dypad[n, c, i*sh + p*dh, j*sw + q*dw]."""
    return _conv_transpose_backward(dy, saved)


def conv_transpose3d_forward(x, w, stride=1, padding=0, dilation=1, output_padding=0):
    """The transposed 3-D convolution (the adjoint of conv3d with the same w):
    x: (N, F, D, H, W), w: (F, C, kd, kh, kw) -> y: (N, C, Do, Ho, Wo), per axis
    out = (size - 1) s - 2 p + d (k - 1) + 1 + output_padding;
    y[n] = crop(col2vol(w.reshape(F, -1)^T @ x[n]))."""
    return _conv_transpose_forward(x, w, stride, padding, dilation, output_padding,
                                   "conv_transpose3d", "DHW")


def conv_transpose3d_backward(dy, saved):
    """dx = conv3d(dy, w), dw = sum_n x[n] @ vol2col(pad(dy))[n]^T."""
    return _conv_transpose_backward(dy, saved)


SPECS = [
    OpSpec("conv2d", "conv", conv2d_forward, conv2d_backward, layout="NCHW"),
    OpSpec("conv3d", "conv", conv3d_forward, conv3d_backward, layout="NCDHW"),
    OpSpec("conv_transpose2d", "conv", conv_transpose2d_forward, conv_transpose2d_backward,
           layout="NCHW"),
    OpSpec("conv_transpose3d", "conv", conv_transpose3d_forward, conv_transpose3d_backward,
           layout="NCDHW"),
]
