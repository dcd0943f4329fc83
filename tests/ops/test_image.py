"""Image family: properties beyond the generic contract of test_generic.py -- reorg
against a literal port of NeoML's C++ ReorgFunc, exact values of upsampling and
resize, the repeated-index rules of the pixel ops (last write wins, true gradients),
float64 fast paths, and the errors (bad parameters, out-of-range indices, wrong dtypes)
on every backend, the reference included.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import image as I
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param, dtype=np.float64)


def run(be, op, args, dy, **params):
    """(forward output, first gradient) as host arrays; int arrays stay int."""
    dev = [be.asarray(a, dtype=a.dtype) if isinstance(a, np.ndarray) else a for a in args]
    y, saved = be.op(op + ".forward")(*dev, **params)
    grads = be.op(op + ".backward")(be.asarray(dy), saved)
    return be.to_host(y), be.to_host(grads[0]), grads[1:]


# ------------------------------------------------------------------ reorg
def neoml_reorg_nhwc(src, stride, forward=True):
    """A line-by-line port of NeoML's ReorgFunc (CpuMathEngineDnn.cpp) on channels-last
    blobs: forward maps the input (B, H, W, C) to (B, H/s, W/s, C s^2); backward
    (forward=False, src = the output gradient) maps it back."""
    def repack(i, channels, height, width):
        x = i % width
        i //= width
        y = i % height
        i //= height
        c, b = i % channels, i // channels
        return c + channels * (x + width * (y + height * b))

    if forward:
        batch, height, width, channels = src.shape
        result = np.zeros((batch, height // stride, width // stride,
                           channels * stride * stride))
    else:
        batch, h2, w2, c2 = src.shape
        height, width, channels = h2 * stride, w2 * stride, c2 // (stride * stride)
        result = np.zeros((batch, height, width, channels))
    s, r = src.ravel(), result.reshape(-1)
    out_c = channels // (stride * stride)
    for b in range(batch):
        for c in range(channels):
            for h in range(height):
                for w in range(width):
                    i = w + width * (h + height * (c + channels * b))
                    i = repack(i, channels * stride * stride, height // stride,
                               width // stride)
                    oc, off = c % out_c, c // out_c
                    ow, oh = w * stride + off % stride, h * stride + off // stride
                    o = ow + width * stride * (oh + height * stride * (oc + out_c * b))
                    o = repack(o, channels, height, width)
                    if forward:
                        r[i] = s[o]
                    else:
                        r[o] = s[i]
    return result


@settings(max_examples=15)
@given(st.integers(1, 3), st.integers(1, 2), st.integers(1, 2), st.integers(1, 3),
       st.integers(1, 3))
def test_reorg_equals_neoml_reorgfunc(s, n, k, hb, wb):
    c, h, w = k * s * s, hb * s, wb * s
    x = np.arange(n * h * w * c, dtype=np.float64).reshape(n, h, w, c)     # NHWC blob
    y, saved = I.reorg_forward(x.transpose(0, 3, 1, 2), s)
    np.testing.assert_array_equal(y.transpose(0, 2, 3, 1), neoml_reorg_nhwc(x, s))
    dy = -np.arange(y.size, dtype=np.float64).reshape(y.shape)
    (dx,) = I.reorg_backward(dy, saved)
    np.testing.assert_array_equal(dx.transpose(0, 2, 3, 1),
                                  neoml_reorg_nhwc(dy.transpose(0, 2, 3, 1), s, False))


def test_reorg_is_a_permutation_on_every_backend(any_backend):
    x = np.arange(2 * 8 * 4 * 6, dtype=np.float64).reshape(2, 8, 4, 6)
    y, dx, _ = run(any_backend, "reorg", [x], np.arange(2 * 32 * 2 * 3.0).reshape(
        2, 32, 2, 3), stride=2)
    np.testing.assert_array_equal(y, I.reorg_forward(x, 2)[0])
    assert sorted(y.ravel()) == sorted(x.ravel())
    np.testing.assert_array_equal(
        dx, I.reorg_backward(np.arange(2 * 32 * 2 * 3.0).reshape(2, 32, 2, 3),
                             I.reorg_forward(x, 2)[1])[0])


# ------------------------------------------------------------------ exact values
def test_upsampling_repeats_and_sums(any_backend):
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dy = np.arange(12.0).reshape(1, 1, 2, 6)
    y, dx, _ = run(any_backend, "upsampling2d", [x], dy, height_copy_count=1,
                   width_copy_count=3)
    np.testing.assert_array_equal(y[0, 0], [[1, 1, 1, 2, 2, 2], [3, 3, 3, 4, 4, 4]])
    np.testing.assert_array_equal(dx[0, 0], [[0 + 1 + 2, 3 + 4 + 5], [6 + 7 + 8, 9 + 10 + 11]])


def test_image_resize_pads_and_crops(any_backend):
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    # left +1, right -2, top -1, bottom +2: Ho = 3 - 1 + 2 = 4, Wo = 4 + 1 - 2 = 3
    dy = np.arange(100.0, 112.0).reshape(1, 1, 4, 3)
    y, dx, _ = run(any_backend, "image_resize", [x], dy, deltas=(1, -2, -1, 2),
                   default_value=-7.0)
    np.testing.assert_array_equal(y[0, 0], [[-7, 4, 5], [-7, 8, 9], [-7, -7, -7],
                                            [-7, -7, -7]])
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0, 0], [101, 102, 0, 0],
                                             [104, 105, 0, 0]])


# ------------------------------------------------------------------ pixel ops
def test_pixel_to_image_last_write_wins_and_gets_the_gradient(any_backend):
    pixels = np.array([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]])     # (1, 3, 2)
    idx = np.array([[4, 1, 4]])                                        # entry 0 overwritten
    dy = np.arange(12.0).reshape(1, 2, 3, 2)
    y, dp, rest = run(any_backend, "pixel_to_image", [pixels, idx], dy, height=2, width=3)
    want = np.zeros((1, 6, 2))
    want[0, 1], want[0, 4] = (2, 20), (3, 30)
    np.testing.assert_array_equal(y, want.reshape(1, 2, 3, 2))
    np.testing.assert_array_equal(dp, [[[0, 0], [2, 3], [8, 9]]])
    assert rest == (None,)


def test_image_to_pixel_repeated_index_collects_every_gradient(any_backend):
    image = np.arange(12.0).reshape(2, 2, 3, 1)
    idx = np.array([[5, 5, 0], [2, 2, 2]])
    dy = np.array([[[1.0], [2.0], [4.0]], [[8.0], [16.0], [32.0]]])
    y, dimg, rest = run(any_backend, "image_to_pixel", [image, idx], dy)
    np.testing.assert_array_equal(y[..., 0], [[5, 5, 0], [8, 8, 8]])
    want = np.zeros((2, 6))
    want[0, 5], want[0, 0], want[1, 2] = 3, 4, 56
    np.testing.assert_array_equal(dimg.reshape(2, 6), want)
    assert rest == (None,)


@pytest.mark.parametrize("bad", [-1, 6, 2 ** 20])
def test_out_of_range_indices_raise_never_wrap(any_backend, bad):
    image, pixels = np.zeros((2, 2, 3, 1)), np.zeros((2, 2, 1))
    idx = np.array([[0, 1], [5, bad]])
    with pytest.raises(ParameterError, match=rf"image_to_pixel: indices .*\[0, 6\).*{bad}"):
        any_backend.op("image_to_pixel.forward")(any_backend.asarray(image), idx)
    with pytest.raises(ParameterError, match=rf"pixel_to_image: indices .*\[0, 6\).*{bad}"):
        any_backend.op("pixel_to_image.forward")(any_backend.asarray(pixels), idx, 2, 3)


@pytest.mark.parametrize("bad", [-3, 12])
def test_out_of_range_device_indices_raise(bad):
    pytest.importorskip("pyopencl")
    be = make_backend("opencl")
    idx = be.asarray(np.array([[0, 11, bad]], np.int32), dtype=np.int32)
    image = be.asarray(np.zeros((1, 3, 4, 2), np.float32))
    with pytest.raises(ParameterError, match=rf"image_to_pixel: indices .*\[0, 12\).*{bad}"):
        be.op("image_to_pixel.forward")(image, idx)
    ok = be.asarray(np.array([[0, 11, 11]], np.int32), dtype=np.int32)
    y, _ = be.op("image_to_pixel.forward")(image, ok)
    assert be.to_host(y).shape == (1, 3, 2)


def test_index_dtype_and_shape_errors(any_backend):
    image = any_backend.asarray(np.zeros((2, 2, 2, 1)))
    with pytest.raises(DTypeError, match="image_to_pixel: indices .*integer"):
        any_backend.op("image_to_pixel.forward")(image, np.array([[0.0], [1.0]]))
    with pytest.raises(ShapeError, match=r"image_to_pixel: indices must have shape \(2, 'L'\)"):
        any_backend.op("image_to_pixel.forward")(image, np.array([[0, 1, 2]]))
    pixels = any_backend.asarray(np.zeros((2, 3, 1)))
    with pytest.raises(ShapeError, match=r"pixel_to_image: indices must have shape \(2, 3\)"):
        any_backend.op("pixel_to_image.forward")(pixels, np.array([[0, 1], [1, 2]]), 2, 2)
    with pytest.raises(ParameterError, match="pixel_to_image: height must be >= 1"):
        any_backend.op("pixel_to_image.forward")(pixels, np.zeros((2, 3), int), 0, 2)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("op, shape, params, err, msg", [
    ("upsampling2d", (1, 1, 2, 2), {"height_copy_count": 0}, ParameterError,
     "upsampling2d: height_copy_count must be >= 1, got 0"),
    ("upsampling2d", (1, 2, 2), {}, ShapeError, r"upsampling2d: x must have shape"),
    ("image_resize", (1, 1, 3, 4), {"deltas": (0, 0, -3, 0)}, ShapeError,
     "image_resize: delta top=-3 removes the whole image"),
    ("image_resize", (1, 1, 3, 4), {"deltas": (-2, -2, 0, 0)}, ShapeError,
     r"image_resize: deltas \(-2, -2, 0, 0\) leave an empty image"),
    ("image_resize", (1, 1, 3, 4), {"deltas": (0, 0, 1)}, ParameterError,
     "image_resize: deltas must be 4 ints"),
    ("reorg", (1, 4, 3, 4), {"stride": 2}, ShapeError,
     r"reorg: H and W must be multiples of stride 2, got \(3, 4\)"),
    ("reorg", (1, 6, 4, 4), {"stride": 2}, ShapeError,
     "reorg: C must be a multiple of stride\\^2 = 4, got 6"),
    ("reorg", (1, 4, 4, 4), {"stride": 0}, ParameterError, "reorg: stride must be >= 1"),
])
def test_bad_parameters_name_the_op(any_backend, op, shape, params, err, msg):
    with pytest.raises(err, match=msg):
        any_backend.op(op + ".forward")(any_backend.asarray(np.zeros(shape)), **params)


def test_wrong_dy_shape_raises(any_backend):
    x = any_backend.asarray(np.zeros((1, 1, 2, 2)))
    _, saved = any_backend.op("upsampling2d.forward")(x, 2, 2)
    with pytest.raises(ShapeError, match=r"upsampling2d: dy must have shape \(1, 1, 4, 4\)"):
        any_backend.op("upsampling2d.backward")(any_backend.asarray(np.zeros((1, 1, 4, 3))),
                                                saved)
