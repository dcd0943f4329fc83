"""Convolution family: 2-D convolution (cross-correlation, as in every DL framework).

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

``conv2d_geometry`` is the one validation of the arguments: every path calls it before
any kernel runs.
"""
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


def conv2d_geometry(x_shape, w_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                    where="conv2d"):
    """Validate conv2d's arguments; return (stride, padding, dilation, (Ho, Wo)).

    Raises ShapeError for a wrong rank, mismatched channels or a (dilated) kernel
    larger than the padded input, ParameterError for a stride or dilation < 1 or a
    negative padding.
    """
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) != 4:
        raise ShapeError(f"{where}: x must have shape (N, C, H, W), got {x_shape}")
    if len(w_shape) != 4:
        raise ShapeError(f"{where}: w must have shape (F, C, kh, kw), got {w_shape}")
    if min(w_shape) < 1 or min(x_shape[1:]) < 1:
        raise ShapeError(f"{where}: x (N, C, H, W) and w (F, C, kh, kw) need C, H, W, F, "
                         f"kh, kw >= 1, got x {x_shape} and w {w_shape}")
    if w_shape[1] != x_shape[1]:
        raise ShapeError(f"{where}: w must have shape (*, {x_shape[1]}, *, *) for x with "
                         f"{x_shape[1]} channels, got {w_shape}")
    stride = _pair(where, "stride", stride, 1)
    padding = _pair(where, "padding", padding, 0)
    dilation = _pair(where, "dilation", dilation, 1)
    out = []
    for axis, size, k, s, p, d in zip("HW", x_shape[2:], w_shape[2:], stride, padding,
                                      dilation):
        span = d * (k - 1) + 1                     # the dilated kernel's extent
        if span > size + 2 * p:
            raise ShapeError(
                f"{where}: the kernel spans {span} pixels along {axis} (k={k}, "
                f"dilation={d}) but the padded input has only {size + 2 * p} "
                f"({axis}={size}, padding={p})")
        out.append((size + 2 * p - span) // s + 1)
    return stride, padding, dilation, tuple(out)


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


def conv2d_forward(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """y[n,f,i,j] = sum_{c,p,q} w[f,c,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw].

    x: (N, C, H, W), w: (F, C, kh, kw) -> y: (N, F, Ho, Wo); stride, padding and
    dilation are ints or (height, width) pairs; xpad is x with ``padding`` zeros on
    each side. As a matrix product: y[n] = w.reshape(F, C*kh*kw) @ im2col(xpad)[n].

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
    saved = (cols, w, x.shape, xpad.shape, stride, padding, dilation, out_hw)
    return y.reshape(x.shape[0], F, *out_hw), saved


def conv2d_backward(dy, saved):
    """dw[f,c,p,q] = sum_{n,i,j} dy[n,f,i,j] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]
                     (dW = sum_n dy[n] @ cols[n]^T),
    dx = col2im(W^T @ dy[n]) with the padding cut off again.
    """
    cols, w, x_shape, xpad_shape, stride, padding, dilation, out_hw = saved
    (ph, pw), (F, _, kh, kw) = padding, w.shape
    dy = dy.reshape(x_shape[0], F, -1)                # (N, F, Ho*Wo)
    dw = (dy @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ dy                   # (N, C*kh*kw, Ho*Wo)
    dxpad = col2im(dcols, xpad_shape, kh, kw, stride, dilation, out_hw)
    dx = dxpad[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]
    return np.ascontiguousarray(dx), dw


SPECS = [
    OpSpec("conv2d", "conv", conv2d_forward, conv2d_backward, layout="NCHW"),
]
