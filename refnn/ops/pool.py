"""Pooling family: window reductions over the spatial axes of NCHW images.

Canonical layout: NCHW -- x has shape (N, C, H, W) (batch, channels, height, width);
every channel of every image (a "plane") is pooled on its own. Facades convert their
own layouts (neon's CHWN, NeoML's channels-last blobs) at their edge.

Window geometry (``kernel=(kh, kw)``, ``stride=(sh, sw)``, ``padding=(ph, pw)``; a single
int means the same value for both axes). The input is padded by ph rows above and below
and pw columns left and right; output pixel (i, j) reduces the window whose top-left
corner is at padded position (i sh, j sw)::

    Ho = floor((H + 2 ph - kh) / sh) + 1        Wo = floor((W + 2 pw - kw) / sw) + 1

Rules, checked by every backend before anything runs (``check_geometry``): kernel and
stride >= 1, 0 <= padding < kernel, kernel <= padded input. Because padding < kernel,
every window holds at least one real input pixel.

* max_pool2d:  y[i, j] = max over the window (padding counts as -inf). The gradient goes
  to the argmax of each window; on ties, to the FIRST maximum in row-major window order
  (top row first, left to right) -- every backend scans windows in that order with a
  strict ``>``.
* avg_pool2d:  y[i, j] = sum over the window / count, where padding contributes 0 and
  count = kh kw when ``count_include_pad`` else the number of real pixels in the window.
  The neon docs (Pooling op="avg") do not say what the mean counts; neon's reference CPU
  backend averages over the in-bounds part of the window, so the default here is
  ``count_include_pad=False`` (NeoML's MeanPooling has no padding, where both agree).
* global_{max,mean,sum}_pool: one window = the whole H x W plane; the output keeps the
  NCHW layout with shape (N, C, 1, 1).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError, check_same_shape
from refnn.ops._spec import OpSpec


# ------------------------------------------------------------------ geometry
def _pair(op, name, v):
    """An int or a pair of ints -> a tuple (a, b) of Python ints."""
    vals = (v, v) if np.ndim(v) == 0 else tuple(v)
    if len(vals) != 2:
        raise ParameterError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    out = []
    for a in vals:
        if isinstance(a, (bool, np.bool_)) or int(a) != a:
            raise ParameterError(f"{op}: {name} must hold integers, got {v!r}")
        out.append(int(a))
    return tuple(out)


def check_input4d(op, shape):
    """x must be 4-D (N, C, H, W) with at least one pixel per plane."""
    shape = tuple(shape)
    if len(shape) != 4:
        raise ShapeError(f"{op}: x must have shape (N, C, H, W), got {shape}")
    if shape[2] < 1 or shape[3] < 1:
        raise ShapeError(f"{op}: x must have H >= 1 and W >= 1, got {shape}")
    return shape


def check_geometry(op, shape, kernel, stride, padding):
    """Validate a 2-D pooling window on input ``shape`` (N, C, H, W).

    Returns ((kh, kw), (sh, sw), (ph, pw), (Ho, Wo)); raises ShapeError/ParameterError
    naming ``op`` and the offending values.
    """
    n, c, h, w = check_input4d(op, shape)
    kh, kw = _pair(op, "kernel", kernel)
    sh, sw = _pair(op, "stride", stride)
    ph, pw = _pair(op, "padding", padding)
    if kh < 1 or kw < 1:
        raise ParameterError(f"{op}: kernel must be >= 1, got {(kh, kw)}")
    if sh < 1 or sw < 1:
        raise ParameterError(f"{op}: stride must be >= 1, got {(sh, sw)}")
    if ph < 0 or pw < 0 or ph >= kh or pw >= kw:
        raise ParameterError(f"{op}: padding must satisfy 0 <= padding < kernel "
                             f"{(kh, kw)}, got {(ph, pw)}")
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ShapeError(f"{op}: kernel {(kh, kw)} is larger than the padded input "
                         f"{(h + 2 * ph, w + 2 * pw)} (input {(h, w)}, padding {(ph, pw)})")
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (w + 2 * pw - kw) // sw + 1
    return (kh, kw), (sh, sw), (ph, pw), (ho, wo)


def _check_dy(op, dy, shape):
    check_same_shape(op, "dy", np.shape(dy), shape)


def _pad(x, ph, pw, value):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _tap(xp, i, j, sh, sw, ho, wo):
    """The (N, C, Ho, Wo) view of padded pixel (i, j) of every window:
    tap[.., a, b] = xp[.., a sh + i, b sw + j]."""
    return xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


# ------------------------------------------------------------------ max_pool2d
def max_pool2d_forward(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
    """y[n, c, a, b] = max_{0 <= i < kh, 0 <= j < kw} xp[n, c, a sh + i, b sw + j]

    xp is x padded with -inf. Also records, for each output, the window position
    i kw + j of its first (row-major) maximum.

    >>> max_pool2d_forward(np.arange(16.0).reshape(1, 1, 4, 4), (2, 2), (2, 2))[0]
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = check_geometry(
        "max_pool2d", x.shape, kernel, stride, padding)
    xp = _pad(x, ph, pw, -np.inf)
    best = _tap(xp, 0, 0, sh, sw, ho, wo).copy()
    arg = np.zeros(best.shape, dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            v = _tap(xp, i, j, sh, sw, ho, wo)
            better = v > best                      # strict: ties keep the earlier one
            best = np.where(better, v, best)
            arg = np.where(better, i * kw + j, arg)
    return best, (x.shape, (kh, kw), (sh, sw), (ph, pw), arg)


def max_pool2d_backward(dy, saved):
    """dx[n, c, a sh + i - ph, b sw + j - pw] += dy[n, c, a, b] where (i, j) is the
    argmax of window (a, b); the gradient of a padding cell is dropped."""
    shape, (kh, kw), (sh, sw), (ph, pw), arg = saved
    _check_dy("max_pool2d", dy, arg.shape)
    ho, wo = arg.shape[2:]
    dxp = np.zeros((shape[0], shape[1], shape[2] + 2 * ph, shape[3] + 2 * pw), dy.dtype)
    for i in range(kh):
        for j in range(kw):
            _tap(dxp, i, j, sh, sw, ho, wo)[...] += dy * (arg == i * kw + j)
    return (dxp[:, :, ph:ph + shape[2], pw:pw + shape[3]].copy(),)


# ------------------------------------------------------------------ avg_pool2d
def avg_pool2d_forward(x, kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                       count_include_pad=False):
    """y[n, c, a, b] = (sum_{i, j} xp[n, c, a sh + i, b sw + j]) / count[a, b]

    xp is x padded with zeros; count = kh kw if count_include_pad, else the number of
    real (non-padding) pixels of window (a, b).

    >>> avg_pool2d_forward(np.ones((1, 1, 3, 3)), (2, 2), (2, 2), (1, 1))[0]
    array([[[[1., 1.],
             [1., 1.]]]])
    """
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = check_geometry(
        "avg_pool2d", x.shape, kernel, stride, padding)
    xp = _pad(x, ph, pw, 0)
    total = sum(_tap(xp, i, j, sh, sw, ho, wo) for i in range(kh) for j in range(kw))
    count = window_counts(x.shape, (kh, kw), (sh, sw), (ph, pw), (ho, wo),
                           count_include_pad).astype(x.dtype)
    return total / count, (x.shape, (kh, kw), (sh, sw), (ph, pw), count)


def window_counts(shape, kernel, stride, padding, out_hw, count_include_pad):
    """(Ho, Wo) divisors: kh kw, or the real pixels in each window."""
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = kernel, stride, padding, out_hw
    if count_include_pad:
        return np.full((ho, wo), float(kh * kw))
    real = _pad(np.ones((1, 1) + tuple(shape[2:])), ph, pw, 0)
    return sum(_tap(real, i, j, sh, sw, ho, wo) for i in range(kh) for j in range(kw))[0, 0]


def avg_pool2d_backward(dy, saved):
    """dx[n, c, a sh + i - ph, b sw + j - pw] += dy[n, c, a, b] / count[a, b]
    for every (i, j) of the window; padding cells are dropped."""
    shape, (kh, kw), (sh, sw), (ph, pw), count = saved
    ho, wo = count.shape
    _check_dy("avg_pool2d", dy, shape[:2] + (ho, wo))
    g = dy / count
    dxp = np.zeros((shape[0], shape[1], shape[2] + 2 * ph, shape[3] + 2 * pw), dy.dtype)
    for i in range(kh):
        for j in range(kw):
            _tap(dxp, i, j, sh, sw, ho, wo)[...] += g
    return (dxp[:, :, ph:ph + shape[2], pw:pw + shape[3]].copy(),)


# ------------------------------------------------------------------ global pools
def global_max_pool_forward(x):
    """y[n, c, 0, 0] = max_{h, w} x[n, c, h, w]  (the first maximum in row-major order
    gets the gradient)."""
    check_input4d("global_max_pool", x.shape)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    arg = np.argmax(flat, axis=2)                  # argmax returns the first maximum
    y = np.take_along_axis(flat, arg[:, :, None], axis=2)
    return y.reshape(x.shape[0], x.shape[1], 1, 1), (x.shape, arg)


def global_max_pool_backward(dy, saved):
    """dx[n, c, h, w] = dy[n, c, 0, 0] at the argmax (h, w), 0 elsewhere"""
    shape, arg = saved
    _check_dy("global_max_pool", dy, shape[:2] + (1, 1))
    dx = np.zeros((shape[0], shape[1], shape[2] * shape[3]), dy.dtype)
    np.put_along_axis(dx, arg[:, :, None], dy.reshape(shape[0], shape[1], 1), axis=2)
    return (dx.reshape(shape),)


def global_mean_pool_forward(x):
    """y[n, c, 0, 0] = (1 / (H W)) sum_{h, w} x[n, c, h, w]"""
    check_input4d("global_mean_pool", x.shape)
    return x.mean(axis=(2, 3), keepdims=True), (x.shape,)


def global_mean_pool_backward(dy, saved):
    """dx[n, c, h, w] = dy[n, c, 0, 0] / (H W)"""
    (shape,) = saved
    _check_dy("global_mean_pool", dy, shape[:2] + (1, 1))
    return (np.broadcast_to(dy / (shape[2] * shape[3]), shape).copy(),)


def global_sum_pool_forward(x):
    """y[n, c, 0, 0] = sum_{h, w} x[n, c, h, w]"""
    check_input4d("global_sum_pool", x.shape)
    return x.sum(axis=(2, 3), keepdims=True), (x.shape,)


def global_sum_pool_backward(dy, saved):
    """dx[n, c, h, w] = dy[n, c, 0, 0]"""
    (shape,) = saved
    _check_dy("global_sum_pool", dy, shape[:2] + (1, 1))
    return (np.broadcast_to(dy, shape).copy(),)


SPECS = [
    OpSpec("max_pool2d", "pool", max_pool2d_forward, max_pool2d_backward, layout="NCHW"),
    OpSpec("avg_pool2d", "pool", avg_pool2d_forward, avg_pool2d_backward, layout="NCHW"),
    OpSpec("global_max_pool", "pool", global_max_pool_forward, global_max_pool_backward,
           layout="NCHW"),
    OpSpec("global_mean_pool", "pool", global_mean_pool_forward, global_mean_pool_backward,
           layout="NCHW"),
    OpSpec("global_sum_pool", "pool", global_sum_pool_forward, global_sum_pool_backward,
           layout="NCHW"),
]
