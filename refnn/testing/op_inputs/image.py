"""Input strategies for the image family.

Every op only moves (or sums) values, so the pixel values are plain normals and the
strategies spend their effort on geometry: batch 1 and more, odd sizes, copy counts of
1 (identity) up to 4, resize deltas that pad, crop or both on each side (down to one
row or column left), reorg strides 1..3 with C = k s^2, and pixel lists that are short,
long (longer than the image: repeated indices are then certain), or hit the first and
last pixel. Image sizes are not multiples of the OpenCL work-group (64) on purpose.
"""
import numpy as np
from hypothesis import strategies as st


@st.composite
def _normal(draw, shape):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return np.random.default_rng(seed).standard_normal(shape)


@st.composite
def _upsampling(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x = draw(_normal((n, c, h, w)))
    return (x,), {"height_copy_count": draw(st.integers(1, 4)),
                  "width_copy_count": draw(st.integers(1, 4))}


@st.composite
def _side(draw, size):
    """Two deltas (a, b) on one axis with a, b > -size and size + a + b >= 1."""
    a = draw(st.integers(-(size - 1), 3))
    b = draw(st.integers(max(-(size - 1), 1 - size - a), 3))
    return a, b


@st.composite
def _resize(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    left, right = draw(_side(w))
    top, bottom = draw(_side(h))
    x = draw(_normal((n, c, h, w)))
    return (x,), {"deltas": (left, right, top, bottom),
                  "default_value": draw(st.sampled_from([0.0, -1.5, 2.25]))}


@st.composite
def _reorg(draw):
    s = draw(st.integers(1, 3))
    n = draw(st.integers(1, 2))
    c = s * s * draw(st.integers(1, 2))
    h, w = s * draw(st.integers(1, 3)), s * draw(st.integers(1, 3))
    return (draw(_normal((n, c, h, w))),), {"stride": s}


@st.composite
def _index_lists(draw, b, hw):
    """(B, L) int64 indices in [0, hw); L from 1 to beyond hw (so repeats occur)."""
    l = draw(st.integers(1, hw + 3))
    rows = [draw(st.lists(st.integers(0, hw - 1), min_size=l, max_size=l))
            for _ in range(b)]
    return np.array(rows, dtype=np.int64)


@st.composite
def _pixel_to_image(draw):
    b, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    idx = draw(_index_lists(b, h * w))
    pixels = draw(_normal((b, idx.shape[1], c)))
    return (pixels, idx), {"height": h, "width": w}


@st.composite
def _image_to_pixel(draw):
    b, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    idx = draw(_index_lists(b, h * w))
    return (draw(_normal((b, h, w, c))), idx), {}


INPUTS = {
    "upsampling2d": _upsampling(),
    "image_resize": _resize(),
    "reorg": _reorg(),
    "pixel_to_image": _pixel_to_image(),
    "image_to_pixel": _image_to_pixel(),
}
