"""Input strategies for the conv family: x (N, C, H, W), w (F, C, kh, kw) and the
geometry (stride, padding, dilation), drawn per axis.

Kernels 1..4, strides up to kernel + 2 (so windows that skip pixels, stride > kernel,
are drawn too), padding up to kernel - 1, dilation 1..2, channel counts 1..5 and odd
spatial sizes just large enough for the dilated kernel: small, because the numerical
gradient costs two forward passes per input element.
"""
from hypothesis import strategies as st

from refnn.testing import strategies as rst


def _axis(data):
    """(size, kernel, stride, padding, dilation) of one spatial axis."""
    k = data.draw(st.integers(1, 4), "kernel")
    s = data.draw(st.integers(1, k + 2), "stride")
    p = data.draw(st.integers(0, k - 1), "padding")
    d = data.draw(st.integers(1, 2), "dilation")
    least = max(d * (k - 1) + 1 - 2 * p, 1)         # the padded input holds one window
    size = data.draw(st.sampled_from([n for n in range(least, least + 6) if n % 2]), "size")
    return size, k, s, p, d


@st.composite
def _conv2d(draw):
    data = draw(st.data())
    (H, kh, sh, ph, dh), (W, kw, sw, pw, dw) = _axis(data), _axis(data)
    N = data.draw(st.integers(1, 2), "batch")
    C = data.draw(st.integers(1, 5), "channels")
    F = data.draw(st.integers(1, 5), "filters")
    x = data.draw(rst.arrays((N, C, H, W)), "x")
    w = data.draw(rst.arrays((F, C, kh, kw)), "w")
    params = {"stride": (sh, sw), "padding": (ph, pw), "dilation": (dh, dw)}
    return (x, w), params


INPUTS = {
    "conv2d": _conv2d(),
}
