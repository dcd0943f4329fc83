"""Channelwise family: depthwise 2-D convolution and NeoML's time convolution.

**channelwise_conv2d** (depthwise convolution). Canonical layout NCHW: ``x`` is
(N, C, H, W) and the filter ``w`` is (C, 1, kh, kw) -- one kh x kw window per channel,
which sees only its own channel (no sum over channels, unlike conv2d). The output ``y``
is (N, C, Ho, Wo) with, per axis (as for conv2d, refnn.ops.conv),

    Ho = (H + 2 ph - dh (kh - 1) - 1) // sh + 1

    y[n,c,i,j] = sum_{p,q} w[c,0,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]

where xpad is x with ``padding`` zeros on each side. The backward pass:

    dw[c,0,p,q] = sum_{n,i,j} dy[n,c,i,j] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]
    dxpad[n, c, i*sh + p*dh, j*sw + q*dw] += w[c,0,p,q] * dy[n,c,i,j]

**time_conv** (NeoML's ``TimeConv``): a 1-D convolution along the sequence axis.
Canonical layout *time-major*, as NeoML stores a sequence blob (BatchLength = T
first): ``x`` is (T, N, C) -- T steps of N sequences of C features; the filters ``w``
are (F, K, C) -- F filters of K taps, each tap a C-vector, exactly NeoML's filter blob
(1, F, 1, K, 1, 1, C) without its unit axes. With ``padding_front`` (pf) zeros before
the first step and ``padding_back`` (pb) zeros after the last one (xpad, T + pf + pb
steps), stride s and dilation d:

    To = (T + pf + pb - (1 + d (K - 1))) // s + 1

    y[t,n,f] = sum_{k,c} w[f,k,c] * xpad[t*s + k*d, n, c]          -> y (To, N, F)

This is the output length of NeoML's ``CTimeConvLayer`` (the spec's formula,
``(padding_front + padding_back + BatchLength - (1 + dilation * (filter_size - 1))) /
stride + 1``, with C integer division); the free term is the facade's (``bias`` op).
The reference computes it as the fast paths do: an im2col over time copies every
window into one row (the K taps' C-vectors side by side) and one matrix product with
the filters does all the multiply-adds; time-major makes that a single GEMM over all
(t, n) rows at once.

The ``*_geometry`` functions are the one validation of the arguments: every path calls
them before any kernel runs.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.ops._spec import OpSpec
from refnn.ops.conv import conv2d_geometry


# ----------------------------------------------------------------- channelwise_conv2d
def channelwise_geometry(x_shape, w_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                         where="channelwise_conv2d"):
    """Validate channelwise_conv2d's arguments; return (stride, padding, dilation,
    (Ho, Wo)). The per-axis rules (and messages) are conv2d's."""
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) != 4:
        raise ShapeError(f"{where}: x must have shape (N, C, H, W), got {x_shape}")
    if len(w_shape) != 4 or w_shape[1] != 1:
        raise ShapeError(f"{where}: w must have shape (C, 1, kh, kw), got {w_shape}")
    if w_shape[0] != x_shape[1]:
        raise ShapeError(f"{where}: w must have shape ({x_shape[1]}, 1, kh, kw) for x with "
                         f"{x_shape[1]} channels, got {w_shape}")
    # one channel of conv2d: the same geometry checks, the same output size
    return conv2d_geometry((x_shape[0], 1) + x_shape[2:], (1, 1) + w_shape[2:], stride,
                           padding, dilation, where=where)


def _window(xpad, p, q, stride, dilation, out_hw):
    """The view xpad[:, :, i*sh + p*dh, j*sw + q*dw] over all (i, j): tap (p, q)."""
    (sh, sw), (dh, dw), (Ho, Wo) = stride, dilation, out_hw
    return xpad[:, :, p * dh:p * dh + sh * (Ho - 1) + 1:sh,
                q * dw:q * dw + sw * (Wo - 1) + 1:sw]


def channelwise_conv2d_forward(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """y[n,c,i,j] = sum_{p,q} w[c,0,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw].

    x: (N, C, H, W), w: (C, 1, kh, kw) -> y: (N, C, Ho, Wo); stride, padding and
    dilation are ints or (height, width) pairs. One multiply-add of a strided view per
    filter tap (p, q).

    >>> x = np.arange(18.0).reshape(1, 2, 3, 3)
    >>> w = np.stack([np.ones((1, 2, 2)), -np.ones((1, 2, 2))])
    >>> channelwise_conv2d_forward(x, w)[0][0]
    array([[[  8.,  12.],
            [ 20.,  24.]],
    <BLANKLINE>
           [[-44., -48.],
            [-56., -60.]]])
    """
    stride, padding, dilation, out_hw = channelwise_geometry(
        x.shape, w.shape, stride, padding, dilation)
    (ph, pw), (_, _, kh, kw) = padding, w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros(x.shape[:2] + out_hw, np.result_type(x, w))
    for p in range(kh):
        for q in range(kw):
            y += w[None, :, 0, p, q, None, None] * _window(xpad, p, q, stride, dilation,
                                                            out_hw)
    return y, (xpad, w, x.shape, stride, padding, dilation, out_hw)


def channelwise_conv2d_backward(dy, saved):
    """dw[c,0,p,q] = sum_{n,i,j} dy[n,c,i,j] * xpad[n, c, i*sh + p*dh, j*sw + q*dw],
    dxpad[n, c, i*sh + p*dh, j*sw + q*dw] += w[c,0,p,q] * dy[n,c,i,j]
    (dx = dxpad with the padding cut off)."""
    xpad, w, x_shape, stride, padding, dilation, out_hw = saved
    (ph, pw), (_, _, kh, kw) = padding, w.shape
    dw = np.zeros(w.shape, np.result_type(dy, xpad))
    dxpad = np.zeros(xpad.shape, np.result_type(dy, w))
    for p in range(kh):
        for q in range(kw):
            dw[:, 0, p, q] = (dy * _window(xpad, p, q, stride, dilation, out_hw)).sum(
                axis=(0, 2, 3))
            _window(dxpad, p, q, stride, dilation, out_hw)[...] += \
                w[None, :, 0, p, q, None, None] * dy
    dx = dxpad[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]
    return np.ascontiguousarray(dx), dw


# ----------------------------------------------------------------------- time_conv
def _int(where, what, v, minimum):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ParameterError(f"{where}: {what} must be an int, got {v!r}")
    if v < minimum:
        raise ParameterError(f"{where}: {what} must be >= {minimum}, got {v!r}")
    return int(v)


def time_conv_geometry(x_shape, w_shape, stride=1, padding_front=0, padding_back=0,
                       dilation=1, where="time_conv"):
    """Validate time_conv's arguments; return (stride, padding_front, padding_back,
    dilation, To).

    Raises ShapeError for a wrong rank, mismatched features or a (dilated) filter
    longer than the padded sequence, ParameterError for a stride or dilation < 1 or a
    negative padding.
    """
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) != 3:
        raise ShapeError(f"{where}: x must have shape (T, N, C) (time-major), got {x_shape}")
    if len(w_shape) != 3:
        raise ShapeError(f"{where}: w must have shape (F, K, C), got {w_shape}")
    if min(w_shape) < 1 or x_shape[2] < 1:
        raise ShapeError(f"{where}: x (T, N, C) and w (F, K, C) need C, F, K >= 1, got x "
                         f"{x_shape} and w {w_shape}")
    if w_shape[2] != x_shape[2]:
        raise ShapeError(f"{where}: w must have shape (*, *, {x_shape[2]}) for x with "
                         f"{x_shape[2]} features, got {w_shape}")
    stride = _int(where, "stride", stride, 1)
    padding_front = _int(where, "padding_front", padding_front, 0)
    padding_back = _int(where, "padding_back", padding_back, 0)
    dilation = _int(where, "dilation", dilation, 1)
    T, K = x_shape[0], w_shape[1]
    span, padded = dilation * (K - 1) + 1, x_shape[0] + padding_front + padding_back
    if span > padded:
        raise ShapeError(
            f"{where}: the filter spans {span} steps (filter_size={K}, dilation="
            f"{dilation}) but the padded sequence has only {padded} (length={T}, "
            f"padding_front={padding_front}, padding_back={padding_back})")
    return stride, padding_front, padding_back, dilation, (padded - span) // stride + 1


def time_im2col(xpad, K, stride, dilation, To):
    """cols[t, n, k, c] = xpad[t*s + k*d, n, c] -> (To*N, K*C): row t*N + n holds the
    window of output step t of sequence n. One strided slice per tap k."""
    T, N, C = xpad.shape
    cols = np.empty((To, N, K, C), xpad.dtype)
    for k in range(K):
        cols[:, :, k] = xpad[k * dilation:k * dilation + stride * (To - 1) + 1:stride]
    return cols.reshape(To * N, K * C)


def time_col2im(dcols, xpad_shape, K, stride, dilation, To):
    """The transpose of time_im2col: dxpad[t*s + k*d, n, c] += dcols[t*N + n, k*C + c]."""
    T, N, C = xpad_shape
    dcols = dcols.reshape(To, N, K, C)
    dxpad = np.zeros(xpad_shape, dcols.dtype)
    for k in range(K):
        dxpad[k * dilation:k * dilation + stride * (To - 1) + 1:stride] += dcols[:, :, k]
    return dxpad


def time_conv_forward(x, w, stride=1, padding_front=0, padding_back=0, dilation=1):
    """y[t,n,f] = sum_{k,c} w[f,k,c] * xpad[t*s + k*d, n, c]  (NeoML's TimeConv).

    x: (T, N, C) time-major, w: (F, K, C) -> y: (To, N, F); xpad is x with
    ``padding_front`` zero steps before and ``padding_back`` after. As a matrix
    product: y = time_im2col(xpad) @ w.reshape(F, K*C)^T.

    >>> x = np.arange(4.0).reshape(4, 1, 1)
    >>> time_conv_forward(x, np.ones((1, 2, 1)), padding_front=1)[0][:, 0, 0]
    array([0., 1., 3., 5.])
    """
    stride, pf, pb, dilation, To = time_conv_geometry(
        x.shape, w.shape, stride, padding_front, padding_back, dilation)
    F, K, C = w.shape
    xpad = np.pad(x, ((pf, pb), (0, 0), (0, 0)))
    cols = time_im2col(xpad, K, stride, dilation, To)
    y = cols @ w.reshape(F, K * C).T                   # (To*N, F)
    saved = (cols, w, x.shape, xpad.shape, stride, pf, dilation, To)
    return y.reshape(To, x.shape[1], F), saved


def time_conv_backward(dy, saved):
    """dw[f,k,c] = sum_{t,n} dy[t,n,f] * xpad[t*s + k*d, n, c]  (dW = dY^T @ cols),
    dx = time_col2im(dY @ W) with the padding cut off again."""
    cols, w, x_shape, xpad_shape, stride, pf, dilation, To = saved
    F, K, C = w.shape
    dy = dy.reshape(-1, F)                             # (To*N, F)
    dw = (dy.T @ cols).reshape(w.shape)
    dxpad = time_col2im(dy @ w.reshape(F, K * C), xpad_shape, K, stride, dilation, To)
    return np.ascontiguousarray(dxpad[pf:pf + x_shape[0]]), dw


SPECS = [
    OpSpec("channelwise_conv2d", "channelwise", channelwise_conv2d_forward,
           channelwise_conv2d_backward, layout="NCHW"),
    OpSpec("time_conv", "channelwise", time_conv_forward, time_conv_backward,
           layout="TNC"),
]
