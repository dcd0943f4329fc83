"""Input strategies for the conv family: x (N, C, H, W), w (F, C, kh, kw) and the
geometry (stride, padding, dilation), drawn per axis; the same for conv3d (three axes,
smaller), and for the transposed convolutions x (N, F, *size), w (F, C, *kernel) plus
an output_padding < stride, with input sizes from 1 up (the output must hold a pixel).

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


def _axis3(data):
    """(size, kernel, stride, padding, dilation) of one axis of a 3-D convolution."""
    k = data.draw(st.integers(1, 3), "kernel")
    s = data.draw(st.integers(1, k + 2), "stride")
    p = data.draw(st.integers(0, k - 1), "padding")
    d = data.draw(st.integers(1, 2), "dilation")
    least = max(d * (k - 1) + 1 - 2 * p, 1)
    size = data.draw(st.integers(least, least + 2), "size")
    return size, k, s, p, d


@st.composite
def _conv3d(draw):
    data = draw(st.data())
    size, kernel, stride, padding, dilation = zip(*(_axis3(data) for _ in range(3)))
    N = data.draw(st.integers(1, 2), "batch")
    C = data.draw(st.integers(1, 3), "channels")
    F = data.draw(st.integers(1, 3), "filters")
    x = data.draw(rst.arrays((N, C) + size), "x")
    w = data.draw(rst.arrays((F, C) + kernel), "w")
    return (x, w), {"stride": stride, "padding": padding, "dilation": dilation}


def _transposed_axis(data, kmax, extra):
    """(size, kernel, stride, padding, dilation, output_padding) of one axis of a
    transposed convolution: the output (size-1) s - 2p + d (k-1) + 1 + op is >= 1."""
    k = data.draw(st.integers(1, kmax), "kernel")
    s = data.draw(st.integers(1, k + 2), "stride")
    p = data.draw(st.integers(0, k - 1), "padding")
    d = data.draw(st.integers(1, 2), "dilation")
    op = data.draw(st.integers(0, s - 1), "output_padding")
    least = 1
    while (least - 1) * s - 2 * p + d * (k - 1) + 1 + op < 1:
        least += 1
    size = data.draw(st.integers(least, least + extra), "size")
    return size, k, s, p, d, op


def _conv_transpose(nd):
    kmax, extra, cmax = (4, 5, 4) if nd == 2 else (3, 2, 3)

    @st.composite
    def strategy(draw):
        data = draw(st.data())
        size, kernel, stride, padding, dilation, output_padding = zip(
            *(_transposed_axis(data, kmax, extra) for _ in range(nd)))
        N = data.draw(st.integers(1, 2), "batch")
        F = data.draw(st.integers(1, cmax), "input channels")
        C = data.draw(st.integers(1, cmax), "output channels")
        x = data.draw(rst.arrays((N, F) + size), "x")
        w = data.draw(rst.arrays((F, C) + kernel), "w")
        return (x, w), {"stride": stride, "padding": padding, "dilation": dilation,
                        "output_padding": output_padding}

    return strategy()


INPUTS = {
    "conv2d": _conv2d(),
    "conv3d": _conv3d(),
    "conv_transpose2d": _conv_transpose(2),
    "conv_transpose3d": _conv_transpose(3),
}
