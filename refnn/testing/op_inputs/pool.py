"""Input strategies for the pool family (NCHW images, batch 1).

Window geometry: kernel 1..4, stride 1..kernel+2 (so strides larger than the kernel,
which skip pixels, occur), padding 0..kernel-1; H and W are odd and at least
kernel - 2 padding. Pixel values are a random permutation of 0, 0.05, 0.1, ... (centred):
every two pixels differ by >= 0.05, so no max window has a tie or a near-tie that a
numerical derivative (eps 1e-6) could cross.
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


INPUTS = {
    "max_pool2d": _window(avg=False),
    "avg_pool2d": _window(avg=True),
    "global_max_pool": _global(),
    "global_mean_pool": _global(),
    "global_sum_pool": _global(),
}
