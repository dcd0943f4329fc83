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
* global_max_pool_topk: the k largest values of each plane, sorted descending, laid out
  along the width: (N, C, 1, k) (NeoML's GlobalMaxPooling with max_count = k). Equal
  values keep their row-major order (a stable sort), so the first of tied pixels comes
  first; the gradient of output j goes to the pixel it was taken from.

Volumes: ``max_pool3d`` / ``avg_pool3d`` take x (N, C, D, H, W) and triples
``kernel=(kd, kh, kw)``, ``stride``, ``padding`` (an int means all three); the geometry
rules and tie/count conventions are those of the 2-D ops, axis by axis
(``check_geometry3d``). The three spatial axes play symmetric roles, so a caller whose
volume is (H, W, D) may pass it in that order with its kernel in the same order.

Two more reductions with their own layouts:

* max_over_time (NeoML MaxOverTimePooling): x (T, N, C) = T time steps of N sequences
  of C-vectors. With ``filter_len > 0``: y[t] = max_{i < L} x[t S + i] elementwise,
  To = (T - L) // S + 1 (L = filter_len <= T, S = stride_len >= 1); with
  ``filter_len <= 0`` the window is the whole sequence (To = 1, stride ignored).
  Ties go to the first (earliest) maximum.
* projection_pool (NeoML ProjectionPooling): x (A, L, B); the mean over the middle axis,
  y[a, 0, b] = (1 / L) sum_l x[a, l, b] with shape (A, 1, B), or, with
  ``original_size=True``, the mean broadcast back to (A, L, B). Any axis of any blob
  becomes the middle one by reshaping (A = the product of the axes before it, B = the
  product of the axes after it).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError, check_same_shape
from refnn.ops._spec import OpSpec


# ------------------------------------------------------------------ geometry
def _pair(op, name, v, n=2):
    """An int or a pair (``n`` = 3: a triple) of ints -> a tuple of Python ints."""
    vals = (v,) * n if np.ndim(v) == 0 else tuple(v)
    if len(vals) != n:
        what = "a pair" if n == 2 else "a triple"
        raise ParameterError(f"{op}: {name} must be an int or {what} of ints, got {v!r}")
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


def check_input5d(op, shape):
    """x must be 5-D (N, C, D, H, W) with at least one voxel per volume."""
    shape = tuple(shape)
    if len(shape) != 5:
        raise ShapeError(f"{op}: x must have shape (N, C, D, H, W), got {shape}")
    if min(shape[2:]) < 1:
        raise ShapeError(f"{op}: x must have D, H, W >= 1, got {shape}")
    return shape


def check_geometry3d(op, shape, kernel, stride, padding):
    """Validate a 3-D pooling window on input ``shape`` (N, C, D, H, W): the rules of
    ``check_geometry`` on each of the three axes.

    Returns (kernel, stride, padding, out) as triples of ints.
    """
    size = check_input5d(op, shape)[2:]
    k = _pair(op, "kernel", kernel, 3)
    s = _pair(op, "stride", stride, 3)
    p = _pair(op, "padding", padding, 3)
    if min(k) < 1:
        raise ParameterError(f"{op}: kernel must be >= 1, got {k}")
    if min(s) < 1:
        raise ParameterError(f"{op}: stride must be >= 1, got {s}")
    if any(pi < 0 or pi >= ki for pi, ki in zip(p, k)):
        raise ParameterError(f"{op}: padding must satisfy 0 <= padding < kernel {k}, got {p}")
    padded = tuple(n + 2 * pi for n, pi in zip(size, p))
    if any(ki > n for ki, n in zip(k, padded)):
        raise ShapeError(f"{op}: kernel {k} is larger than the padded input {padded} "
                         f"(input {size}, padding {p})")
    out = tuple((n - ki) // si + 1 for n, ki, si in zip(padded, k, s))
    return k, s, p, out


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


# ------------------------------------------------------------------ 3-D pools
def _pad3(x, p, value):
    return np.pad(x, ((0, 0), (0, 0)) + tuple((q, q) for q in p), constant_values=value)


def _tap3(xp, ijk, s, out):
    """The (N, C, Do, Ho, Wo) view of padded voxel (i, j, k) of every window."""
    return xp[(slice(None), slice(None)) + tuple(
        slice(i, i + si * (o - 1) + 1, si) for i, si, o in zip(ijk, s, out))]


def _offsets(k):
    """The window positions (i, j, l) in row-major order."""
    return [(i, j, l) for i in range(k[0]) for j in range(k[1]) for l in range(k[2])]


def max_pool3d_forward(x, kernel=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0)):
    """y[n, c, a, b, e] = max_{i, j, l} xp[n, c, a sd + i, b sh + j, e sw + l]

    xp is x padded with -inf; ties go to the first maximum in row-major window order
    (the recorded position is the window offset index (i kh + j) kw + l).
    """
    k, s, p, out = check_geometry3d("max_pool3d", x.shape, kernel, stride, padding)
    xp = _pad3(x, p, -np.inf)
    best = _tap3(xp, (0, 0, 0), s, out).copy()
    arg = np.zeros(best.shape, dtype=np.int64)
    for t, ijk in enumerate(_offsets(k)):
        v = _tap3(xp, ijk, s, out)
        better = v > best                          # strict: ties keep the earlier one
        best = np.where(better, v, best)
        arg = np.where(better, t, arg)
    return best, (x.shape, k, s, p, arg)


def max_pool3d_backward(dy, saved):
    """dx[.., a sd + i - pd, b sh + j - ph, e sw + l - pw] += dy[.., a, b, e] where
    (i, j, l) is the argmax of window (a, b, e); padding cells are dropped."""
    shape, k, s, p, arg = saved
    _check_dy("max_pool3d", dy, arg.shape)
    dxp = np.zeros(shape[:2] + tuple(n + 2 * q for n, q in zip(shape[2:], p)), dy.dtype)
    for t, ijk in enumerate(_offsets(k)):
        _tap3(dxp, ijk, s, arg.shape[2:])[...] += dy * (arg == t)
    return (dxp[(slice(None), slice(None)) + tuple(
        slice(q, q + n) for q, n in zip(p, shape[2:]))].copy(),)


def window_counts3d(shape, kernel, stride, padding, out, count_include_pad):
    """(Do, Ho, Wo) divisors: kd kh kw, or the real voxels in each window."""
    if count_include_pad:
        return np.full(out, float(np.prod(kernel)))
    real = _pad3(np.ones((1, 1) + tuple(shape[2:])), padding, 0)
    return sum(_tap3(real, ijk, stride, out) for ijk in _offsets(kernel))[0, 0]


def avg_pool3d_forward(x, kernel=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0),
                       count_include_pad=False):
    """y[n, c, a, b, e] = (sum_{i, j, l} xp[n, c, a sd + i, b sh + j, e sw + l])
    / count[a, b, e]; xp is x padded with zeros and count is kd kh kw
    (count_include_pad) or the number of real voxels of the window."""
    k, s, p, out = check_geometry3d("avg_pool3d", x.shape, kernel, stride, padding)
    xp = _pad3(x, p, 0)
    total = sum(_tap3(xp, ijk, s, out) for ijk in _offsets(k))
    count = window_counts3d(x.shape, k, s, p, out, count_include_pad).astype(x.dtype)
    return total / count, (x.shape, k, s, p, count)


def avg_pool3d_backward(dy, saved):
    """dx[.., a sd + i - pd, b sh + j - ph, e sw + l - pw] += dy[.., a, b, e] / count
    for every (i, j, l) of the window; padding cells are dropped."""
    shape, k, s, p, count = saved
    _check_dy("avg_pool3d", dy, shape[:2] + count.shape)
    g = dy / count
    dxp = np.zeros(shape[:2] + tuple(n + 2 * q for n, q in zip(shape[2:], p)), dy.dtype)
    for ijk in _offsets(k):
        _tap3(dxp, ijk, s, count.shape)[...] += g
    return (dxp[(slice(None), slice(None)) + tuple(
        slice(q, q + n) for q, n in zip(p, shape[2:]))].copy(),)


# ------------------------------------------------------------------ top-k global max
def check_topk(op, shape, k):
    """x (N, C, H, W) and 1 <= k <= H W (an int)."""
    shape = check_input4d(op, shape)
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise ParameterError(f"{op}: k must be an int, got {k!r}")
    if not 1 <= k <= shape[2] * shape[3]:
        raise ParameterError(f"{op}: k must satisfy 1 <= k <= H W = "
                             f"{shape[2] * shape[3]}, got {k}")
    return int(k)


def global_max_pool_topk_forward(x, k=1):
    """y[n, c, 0, j] = the j-th largest value of plane x[n, c] (j = 0 is the maximum).

    A stable sort: equal values keep their row-major order. Records the flat position
    h W + w each output came from.
    """
    k = check_topk("global_max_pool_topk", x.shape, k)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    arg = np.argsort(-flat, axis=2, kind="stable")[:, :, :k]
    y = np.take_along_axis(flat, arg, axis=2)
    return y.reshape(x.shape[0], x.shape[1], 1, k), (x.shape, arg)


def global_max_pool_topk_backward(dy, saved):
    """dx[n, c, pos_j] = dy[n, c, 0, j] for the position pos_j of each of the k values."""
    shape, arg = saved
    _check_dy("global_max_pool_topk", dy, shape[:2] + (1, arg.shape[2]))
    dx = np.zeros((shape[0], shape[1], shape[2] * shape[3]), dy.dtype)
    np.put_along_axis(dx, arg, dy.reshape(arg.shape), axis=2)
    return (dx.reshape(shape),)


# ------------------------------------------------------------------ max over time
def check_over_time(op, shape, filter_len, stride_len):
    """x (T, N, C); returns (L, S, To): the window length (T when filter_len <= 0), the
    stride (1 for the whole sequence) and the output length."""
    shape = tuple(shape)
    if len(shape) != 3 or shape[0] < 1:
        raise ShapeError(f"{op}: x must have shape (T, N, C) with T >= 1, got {shape}")
    for name, v in (("filter_len", filter_len), ("stride_len", stride_len)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ParameterError(f"{op}: {name} must be an int, got {v!r}")
    if filter_len <= 0:
        return shape[0], 1, 1
    if stride_len < 1:
        raise ParameterError(f"{op}: stride_len must be >= 1, got {stride_len}")
    if filter_len > shape[0]:
        raise ShapeError(f"{op}: filter_len {filter_len} is longer than the sequence "
                         f"(T = {shape[0]})")
    return int(filter_len), int(stride_len), (shape[0] - filter_len) // stride_len + 1


def max_over_time_forward(x, filter_len=0, stride_len=1):
    """y[t, n, c] = max_{0 <= i < L} x[t S + i, n, c]  (L = T, To = 1 if filter_len <= 0)

    Ties go to the earliest time step; records the offset i of the maximum.
    """
    L, S, To = check_over_time("max_over_time", x.shape, filter_len, stride_len)
    best = x[0:S * (To - 1) + 1:S].copy()
    arg = np.zeros(best.shape, dtype=np.int64)
    for i in range(1, L):
        v = x[i:i + S * (To - 1) + 1:S]
        better = v > best
        best = np.where(better, v, best)
        arg = np.where(better, i, arg)
    return best, (x.shape, S, arg)


def max_over_time_backward(dy, saved):
    """dx[t S + i, n, c] += dy[t, n, c] where i is the argmax offset of window t."""
    shape, S, arg = saved
    _check_dy("max_over_time", dy, arg.shape)
    dx = np.zeros(shape, dy.dtype)
    To = arg.shape[0]
    for i in range(int(arg.max(initial=0)) + 1):
        dx[i:i + S * (To - 1) + 1:S] += dy * (arg == i)
    return (dx,)


# ------------------------------------------------------------------ projection pool
def projection_pool_forward(x, original_size=False):
    """y[a, 0, b] = (1 / L) sum_l x[a, l, b]; with original_size, y[a, l, b] is that mean
    for every l (shape (A, L, B))."""
    if np.ndim(x) != 3 or x.shape[1] < 1:
        raise ShapeError(f"projection_pool: x must have shape (A, L, B) with L >= 1, "
                         f"got {np.shape(x)}")
    y = x.mean(axis=1, keepdims=True)
    if original_size:
        y = np.broadcast_to(y, x.shape).copy()
    return y, (x.shape, bool(original_size))


def projection_pool_backward(dy, saved):
    """dx[a, l, b] = (1 / L) sum_l' dy[a, l', b] (original_size), else dy[a, 0, b] / L."""
    shape, original_size = saved
    _check_dy("projection_pool", dy, shape if original_size else (shape[0], 1, shape[2]))
    g = dy.sum(axis=1, keepdims=True) / shape[1]
    return (np.broadcast_to(g, shape).copy(),)


SPECS = [
    OpSpec("max_pool2d", "pool", max_pool2d_forward, max_pool2d_backward, layout="NCHW"),
    OpSpec("avg_pool2d", "pool", avg_pool2d_forward, avg_pool2d_backward, layout="NCHW"),
    OpSpec("global_max_pool", "pool", global_max_pool_forward, global_max_pool_backward,
           layout="NCHW"),
    OpSpec("global_mean_pool", "pool", global_mean_pool_forward, global_mean_pool_backward,
           layout="NCHW"),
    OpSpec("global_sum_pool", "pool", global_sum_pool_forward, global_sum_pool_backward,
           layout="NCHW"),
    OpSpec("max_pool3d", "pool", max_pool3d_forward, max_pool3d_backward, layout="NCDHW"),
    OpSpec("avg_pool3d", "pool", avg_pool3d_forward, avg_pool3d_backward, layout="NCDHW"),
    OpSpec("global_max_pool_topk", "pool", global_max_pool_topk_forward,
           global_max_pool_topk_backward, layout="NCHW"),
    OpSpec("max_over_time", "pool", max_over_time_forward, max_over_time_backward,
           layout="TNC"),
    OpSpec("projection_pool", "pool", projection_pool_forward, projection_pool_backward,
           layout="ALB"),
]
