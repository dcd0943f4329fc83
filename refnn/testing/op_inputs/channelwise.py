"""Input strategies for the channelwise family.

channelwise_conv2d: x (N, C, H, W), w (C, 1, kh, kw) and the geometry per axis: kernels
1..7, strides up to kernel + 2 (stride > kernel: windows that skip pixels), padding up
to kernel - 1, dilation 1..3 (1..2 for kernels above 4, to keep inputs small), odd
spatial sizes just large enough for the dilated kernel, batch 1..3 and 1..6 channels.
The OpenCL dw kernel reduces N*Ho*Wo terms per tap in 64-wide work-groups: the odd
sizes never fill a group evenly.

time_conv: x (T, N, C) time-major, w (F, K, C): filter sizes 1..7, strides up to
K + 2, padding_front / padding_back drawn separately in 0..K-1, dilation 1..3,
sequences from just long enough for one window up to 70 steps (long sequences: more
output rows than one OpenCL GEMM tile), 1..3 sequences, 1..5 features, 1..5 filters.
"""
from hypothesis import strategies as st

from refnn.testing import strategies as rst


def _axis(data):
    """(size, kernel, stride, padding, dilation) of one spatial axis."""
    k = data.draw(st.integers(1, 7), "kernel")
    s = data.draw(st.integers(1, k + 2), "stride")
    p = data.draw(st.integers(0, k - 1), "padding")
    d = data.draw(st.integers(1, 3 if k <= 4 else 2), "dilation")
    least = max(d * (k - 1) + 1 - 2 * p, 1)         # the padded input holds one window
    size = data.draw(st.sampled_from([n for n in range(least, least + 6) if n % 2]), "size")
    return size, k, s, p, d


@st.composite
def _channelwise_conv2d(draw):
    data = draw(st.data())
    (H, kh, sh, ph, dh), (W, kw, sw, pw, dw) = _axis(data), _axis(data)
    N = data.draw(st.integers(1, 3), "batch")
    C = data.draw(st.integers(1, 6), "channels")
    x = data.draw(rst.arrays((N, C, H, W)), "x")
    w = data.draw(rst.arrays((C, 1, kh, kw)), "w")
    params = {"stride": (sh, sw), "padding": (ph, pw), "dilation": (dh, dw)}
    if sh == sw and ph == pw and dh == dw and data.draw(st.booleans(), "int params"):
        params = {"stride": sh, "padding": ph, "dilation": dh}
    return (x, w), params


@st.composite
def _time_conv(draw):
    data = draw(st.data())
    K = data.draw(st.integers(1, 7), "filter_size")
    s = data.draw(st.integers(1, K + 2), "stride")
    pf = data.draw(st.integers(0, K - 1), "padding_front")
    pb = data.draw(st.integers(0, K - 1), "padding_back")
    d = data.draw(st.integers(1, 3), "dilation")
    least = max(d * (K - 1) + 1 - pf - pb, 1)       # the padded sequence holds one window
    T = data.draw(st.one_of(st.integers(least, least + 6), st.integers(least, 70)), "T")
    N = data.draw(st.integers(1, 3), "sequences")
    C = data.draw(st.integers(1, 5), "features")
    F = data.draw(st.integers(1, 5), "filters")
    x = data.draw(rst.arrays((T, N, C)), "x")
    w = data.draw(rst.arrays((F, K, C)), "w")
    params = {"stride": s, "padding_front": pf, "padding_back": pb, "dilation": d}
    return (x, w), params


INPUTS = {
    "channelwise_conv2d": _channelwise_conv2d(),
    "time_conv": _time_conv(),
}
