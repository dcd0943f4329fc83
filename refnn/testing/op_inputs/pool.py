"""Input strategies for the pool family (NCHW images, batch 1).

Window geometry: kernel 1..4, stride 1..kernel+2 (so strides larger than the kernel,
which skip pixels, occur), padding 0..kernel-1; H and W are odd and at least
kernel - 2 padding. Pixel values are a random permutation of 0, 0.05, 0.1, ... (centred):
every two pixels differ by >= 0.05, so no max window has a tie or a near-tie that a
numerical derivative (eps 1e-6) could cross.

The 3-D pools draw the same per-axis geometry for each of D, H, W. max_over_time draws
sequences up to 40 steps (windows longer than the stride, shorter, and the whole
sequence with filter_len <= 0); projection_pool draws (A, L, B) with sizes 1..5;
global_max_pool_topk draws k from 1 to the whole plane.
"""
import numpy as np
from hypothesis import strategies as st

_ODD = (1, 3, 5, 7)
_STEP = 0.05


@st.composite
def distinct_images(draw, shape):
    """A float64 array of ``shape`` whose values are pairwise >= 0.05 apart."""
    n = int(np.prod(shape))
    perm = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    return ((perm - (n - 1) / 2) * _STEP).reshape(shape)


@st.composite
def _axis(draw):
    """(kernel, stride, padding, size) along one axis, size odd and >= k - 2 p."""
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, k + 2))
    p = draw(st.integers(0, k - 1))
    size = draw(st.sampled_from([v for v in _ODD if v + 2 * p >= k]))
    return k, s, p, size


@st.composite
def _window(draw, avg):
    (kh, sh, ph, h), (kw, sw, pw, w) = draw(_axis()), draw(_axis())
    c = draw(st.integers(1, 2))
    x = draw(distinct_images((1, c, h, w)))
    params = {"kernel": (kh, kw), "stride": (sh, sw), "padding": (ph, pw)}
    if avg:
        params["count_include_pad"] = draw(st.booleans())
    return (x,), params


@st.composite
def _global(draw):
    c, h, w = draw(st.integers(1, 3)), draw(st.sampled_from(_ODD)), draw(st.sampled_from(_ODD))
    return (draw(distinct_images((1, c, h, w))),), {}


@st.composite
def _window3d(draw, avg):
    axes = [draw(_axis()) for _ in range(3)]
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = draw(distinct_images((n, c) + tuple(a[3] for a in axes)))
    params = {name: tuple(a[i] for a in axes)
              for i, name in enumerate(("kernel", "stride", "padding"))}
    if avg:
        params["count_include_pad"] = draw(st.booleans())
    return (x,), params


@st.composite
def _topk(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.sampled_from(_ODD)), draw(st.sampled_from(_ODD))
    k = draw(st.integers(1, h * w))
    return (draw(distinct_images((n, c, h, w))),), {"k": k}


@st.composite
def _over_time(draw):
    t = draw(st.one_of(st.integers(1, 9), st.integers(30, 40)))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    filter_len = draw(st.one_of(st.integers(-2, 0), st.integers(1, t)))
    stride_len = draw(st.integers(1, max(filter_len, 1) + 3))
    x = draw(distinct_images((t, n, c)))
    return (x,), {"filter_len": filter_len, "stride_len": stride_len}


@st.composite
def _projection(draw):
    a, l, b = (draw(st.integers(1, 5)) for _ in range(3))
    x = draw(distinct_images((a, l, b)))
    return (x,), {"original_size": draw(st.booleans())}


INPUTS = {
    "max_pool2d": _window(avg=False),
    "avg_pool2d": _window(avg=True),
    "global_max_pool": _global(),
    "global_mean_pool": _global(),
    "global_sum_pool": _global(),
    "max_pool3d": _window3d(avg=False),
    "avg_pool3d": _window3d(avg=True),
    "global_max_pool_topk": _topk(),
    "max_over_time": _over_time(),
    "projection_pool": _projection(),
}
