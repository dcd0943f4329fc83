"""neoml.Dnn image conversion layers against refnn's float64 reference image ops, on every
engine (reference, cpu, OpenCL): Upsampling2D, ImageResize, Reorg, PixelToImage,
ImageToPixel. Blobs are channels-last; the reference ops of the first three are NCHW, so
the test converts with NumPy transposes. Each test compares the forward output (through
dnn.run) and the input gradient (the layer protocol: ``_forward`` then ``_backward``).
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import image as I

RTOL, ATOL = 1e-5, 1e-6


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _net(engine, make, n_sources=1):
    dnn = neoml.Dnn.Dnn(engine)
    srcs = [neoml.Dnn.Source(dnn, f"x{i}") for i in range(n_sources)]
    layer = make(srcs[0] if n_sources == 1 else srcs)
    return dnn, layer


def _run(engine, dnn, layer, xs, dys, n_out=1):
    """(outputs via dnn.run, input gradients via the layer protocol) as host arrays."""
    sinks = [neoml.Dnn.Sink((layer, k), name=f"out{k}") for k in range(n_out)]
    got = dnn.run({f"x{i}": _blob(engine, x) for i, x in enumerate(xs)})
    outs = [got[s.name].asarray(keep_dims=True) for s in sinks]
    be = engine.backend
    layer._forward(be, [be.asarray(x, dtype=x.dtype) for x in xs], True)
    dxs = layer._backward(be, [be.asarray(d) for d in dys], [True] * len(xs))
    return outs, [None if d is None else be.to_host(d) for d in dxs]


def _nchw(a):          # (N, H, W, C) -> (N, C, H, W) float64
    return a.transpose(0, 3, 1, 2).astype(np.float64)


def _nhwc(a):
    return a.transpose(0, 2, 3, 1)


# ------------------------------------------------------------------ Upsampling2D
def test_upsampling2d_two_inputs_vs_reference(engine):
    rng = np.random.default_rng(0)
    shapes = [(2, 1, 3, 3, 2, 2, 3), (1, 3, 1, 1, 4, 1, 1)]       # D*C = 6 and 1
    xs = [rng.normal(size=s).astype(np.float32) for s in shapes]
    dnn, layer = _net(engine, lambda s: neoml.Dnn.Upsampling2D(s, 2, 3, name="up"), 2)
    dys = [rng.normal(size=s[:3] + (s[3] * 2, s[4] * 3) + s[5:]).astype(np.float32)
           for s in shapes]
    outs, dxs = _run(engine, dnn, layer, xs, dys, n_out=2)
    for x, dy, y, dx in zip(xs, dys, outs, dxs):
        s = x.shape
        n, h, w, c = s[0] * s[1] * s[2], s[3], s[4], s[5] * s[6]
        y4, saved = I.upsampling2d_forward(_nchw(x.reshape(n, h, w, c)), 2, 3)
        assert y.shape == s[:3] + (2 * h, 3 * w) + s[5:]
        np.testing.assert_allclose(y.reshape(n, 2 * h, 3 * w, c), _nhwc(y4), RTOL, ATOL)
        (dx4,) = I.upsampling2d_backward(_nchw(dy.reshape(n, 2 * h, 3 * w, c)), saved)
        np.testing.assert_allclose(dx.reshape(n, h, w, c), _nhwc(dx4), RTOL, ATOL)


# ------------------------------------------------------------------ ImageResize
@pytest.mark.parametrize("deltas", [(1, 2, 0, 3), (-1, 2, -2, 1), (0, -3, 1, -1)])
def test_image_resize_vs_reference(engine, deltas):
    rng = np.random.default_rng(1)
    s = (1, 2, 1, 4, 5, 1, 3)
    x = rng.normal(size=s).astype(np.float32)
    left, right, top, bottom = deltas
    ho, wo = 4 + top + bottom, 5 + left + right
    dy = rng.normal(size=(1, 2, 1, ho, wo, 1, 3)).astype(np.float32)
    dnn, layer = _net(engine, lambda src: neoml.Dnn.ImageResize(src, deltas, -0.5, name="r"))
    (y,), (dx,) = _run(engine, dnn, layer, [x], [dy])
    y4, saved = I.image_resize_forward(_nchw(x.reshape(2, 4, 5, 3)), deltas, -0.5)
    np.testing.assert_allclose(y.reshape(2, ho, wo, 3), _nhwc(y4), RTOL, ATOL)
    (dx4,) = I.image_resize_backward(_nchw(dy.reshape(2, ho, wo, 3)), saved)
    np.testing.assert_allclose(dx.reshape(2, 4, 5, 3), _nhwc(dx4), RTOL, ATOL)


# ------------------------------------------------------------------ Reorg
@pytest.mark.parametrize("stride, c", [(1, 3), (2, 4), (2, 8), (3, 9)])
def test_reorg_vs_reference(engine, stride, c):
    rng = np.random.default_rng(2)
    h, w = 2 * stride, 3 * stride
    x = rng.normal(size=(2, 1, 1, h, w, 1, c)).astype(np.float32)
    dy = rng.normal(size=(2, 1, 1, h // stride, w // stride, 1, c * stride ** 2)).astype(
        np.float32)
    dnn, layer = _net(engine, lambda s: neoml.Dnn.Reorg(s, stride, name="reorg"))
    (y,), (dx,) = _run(engine, dnn, layer, [x], [dy])
    y4, saved = I.reorg_forward(_nchw(x.reshape(2, h, w, c)), stride)
    assert y.shape == dy.shape
    np.testing.assert_allclose(y.reshape(2, h // stride, w // stride, -1), _nhwc(y4),
                               RTOL, ATOL)
    (dx4,) = I.reorg_backward(_nchw(dy.reshape(2, h // stride, w // stride, -1)), saved)
    np.testing.assert_allclose(dx.reshape(2, h, w, c), _nhwc(dx4), RTOL, ATOL)


# ------------------------------------------------------------------ pixel layers
IDX = np.array([[0, 5, 5, 11], [7, 2, 3, 2], [11, 10, 9, 0]], np.int32)   # B = 3, L = 4


@pytest.mark.parametrize("idx_shape", [(1, 3, 4, 1, 1, 1, 1), (1, 3, 1, 1, 1, 1, 4)])
def test_pixel_to_image_vs_reference(engine, idx_shape):
    rng = np.random.default_rng(3)
    pix = rng.normal(size=(1, 3, 4, 1, 1, 1, 2)).astype(np.float32)
    dy = rng.normal(size=(1, 3, 1, 3, 4, 1, 2)).astype(np.float32)
    dnn, layer = _net(engine, lambda s: neoml.Dnn.PixelToImage(s, 3, 4, name="p2i"), 2)
    (y,), (dp, didx) = _run(engine, dnn, layer, [pix, IDX.reshape(idx_shape)], [dy])
    y3, saved = I.pixel_to_image_forward(pix.reshape(3, 4, 2).astype(np.float64), IDX, 3, 4)
    assert y.shape == (1, 3, 1, 3, 4, 1, 2) and didx is None
    np.testing.assert_allclose(y.reshape(3, 3, 4, 2), y3, RTOL, ATOL)
    dp3, _ = I.pixel_to_image_backward(dy.reshape(3, 3, 4, 2).astype(np.float64), saved)
    np.testing.assert_allclose(dp.reshape(3, 4, 2), dp3, RTOL, ATOL)
    assert np.all(dp.reshape(3, 4, 2)[0, 1] == 0)          # entry overwritten by entry 2


def test_image_to_pixel_vs_reference(engine):
    rng = np.random.default_rng(4)
    img = rng.normal(size=(1, 3, 1, 3, 4, 1, 2)).astype(np.float32)
    dy = rng.normal(size=(1, 3, 4, 1, 1, 1, 2)).astype(np.float32)
    dnn, layer = _net(engine, lambda s: neoml.Dnn.ImageToPixel(s, name="i2p"), 2)
    (y,), (dimg, didx) = _run(engine, dnn, layer, [img, IDX.reshape(1, 3, 4, 1, 1, 1, 1)],
                              [dy])
    y3, saved = I.image_to_pixel_forward(img.reshape(3, 3, 4, 2).astype(np.float64), IDX)
    assert y.shape == (1, 3, 4, 1, 1, 1, 2) and didx is None
    np.testing.assert_allclose(y.reshape(3, 4, 2), y3, RTOL, ATOL)
    di3, _ = I.image_to_pixel_backward(dy.reshape(3, 4, 2).astype(np.float64), saved)
    np.testing.assert_allclose(dimg.reshape(3, 3, 4, 2), di3, RTOL, ATOL)


def test_pixel_layers_chain_in_a_network(engine):
    """ImageToPixel then PixelToImage with the same int index Source: the picked pixels
    land back at their positions of a larger (3 x 4) image."""
    dnn, layer = _net(engine, lambda s: neoml.Dnn.ImageToPixel(s, name="i2p"), 2)
    p2i = neoml.Dnn.PixelToImage([layer, dnn.layers["x1"]], 3, 4, name="p2i")
    sink = neoml.Dnn.Sink(p2i, name="out")
    img = np.arange(24, dtype=np.float32).reshape(1, 3, 1, 2, 4, 1, 1)
    idx = np.array([[1, 7, 0, 4]] * 3, np.int32).reshape(1, 3, 4, 1, 1, 1, 1)
    out = dnn.run({"x0": _blob(engine, img), "x1": _blob(engine, idx)})[sink.name]
    got = out.asarray(keep_dims=True).reshape(3, 12)
    want = np.zeros((3, 12), np.float32)
    for b in range(3):
        want[b, [1, 7, 0, 4]] = img.reshape(3, 8)[b, [1, 7, 0, 4]]
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ properties
def test_properties_readable_and_settable():
    dnn = neoml.Dnn.Dnn(neoml.MathEngine.ReferenceMathEngine())
    src, idx = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "i")
    up = neoml.Dnn.Upsampling2D(src, 2, 3)
    assert (up.height_copy_count, up.width_copy_count) == (2, 3)
    up.height_copy_count, up.width_copy_count = 4, 1
    assert (up.height_copy_count, up.width_copy_count) == (4, 1)
    r = neoml.Dnn.ImageResize(src, [1, -2, 3, 0])
    assert r.deltas == (1, -2, 3, 0) and r.default_value == 0.0
    r.deltas, r.default_value = (0, 0, -1, 2), 2.5
    assert r.deltas == (0, 0, -1, 2) and r.default_value == 2.5
    g = neoml.Dnn.Reorg(src)
    assert g.stride == 1
    g.stride = 2
    assert g.stride == 2
    p = neoml.Dnn.PixelToImage([src, idx], 5, 6)
    assert (p.height, p.width) == (5, 6)
    p.height, p.width = 2, 9
    assert (p.height, p.width) == (2, 9)
    neoml.Dnn.ImageToPixel([src, idx])
    for cls, op in ((neoml.Dnn.Upsampling2D, "upsampling2d"),
                    (neoml.Dnn.ImageResize, "image_resize"), (neoml.Dnn.Reorg, "reorg"),
                    (neoml.Dnn.PixelToImage, "pixel_to_image"),
                    (neoml.Dnn.ImageToPixel, "image_to_pixel")):
        assert cls.OPS == (op,) and cls in neoml.Dnn.LAYERS


# ------------------------------------------------------------------ errors
def test_bad_parameters_name_the_layer():
    dnn = neoml.Dnn.Dnn(neoml.MathEngine.ReferenceMathEngine())
    src, idx = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "i")
    with pytest.raises(ParameterError, match="Upsampling2D 'u'.*height_copy_count.*0"):
        neoml.Dnn.Upsampling2D(src, 0, 1, name="u")
    up = neoml.Dnn.Upsampling2D(src, 1, 1, name="u")
    with pytest.raises(ParameterError, match="Upsampling2D 'u'.*width_copy_count"):
        up.width_copy_count = -2
    with pytest.raises(ParameterError, match="ImageResize 'r'.*4 elements"):
        neoml.Dnn.ImageResize(src, (1, 2, 3), name="r")
    with pytest.raises(ParameterError, match="Reorg 'g'.*stride"):
        neoml.Dnn.Reorg(src, 0, name="g")
    with pytest.raises(ParameterError, match="PixelToImage 'p'.*height"):
        neoml.Dnn.PixelToImage([src, idx], 0, 3, name="p")
    with pytest.raises(ParameterError, match="ImageToPixel 'q'.*takes 2 input"):
        neoml.Dnn.ImageToPixel(src, name="q")


def test_bad_inputs_name_the_layer(engine):
    x = np.zeros((1, 1, 1, 3, 4, 1, 4), np.float32)
    dnn, _ = _net(engine, lambda s: neoml.Dnn.Reorg(s, 2, name="g"))
    with pytest.raises(ShapeError, match=r"Reorg 'g'.*multiples of stride 2, got \(3, 4\)"):
        dnn.run({"x0": _blob(engine, x)})
    dnn, _ = _net(engine, lambda s: neoml.Dnn.ImageResize(s, (0, 0, -3, 0), name="r"))
    with pytest.raises(ShapeError, match="ImageResize 'r'.*top=-3 removes the whole image"):
        dnn.run({"x0": _blob(engine, x)})
    img = np.zeros((1, 2, 1, 3, 4, 1, 1), np.float32)
    for bad in (-1, 12):
        dnn, _ = _net(engine, lambda s: neoml.Dnn.ImageToPixel(s, name="q"), 2)
        idx = np.array([[0, 1], [bad, 2]], np.int32).reshape(1, 2, 2, 1, 1, 1, 1)
        with pytest.raises(ParameterError, match=rf"ImageToPixel 'q'.*\[0, 12\).*{bad}"):
            dnn.run({"x0": _blob(engine, img), "x1": _blob(engine, idx)})
    dnn, _ = _net(engine, lambda s: neoml.Dnn.ImageToPixel(s, name="q"), 2)
    with pytest.raises(DTypeError, match="ImageToPixel 'q'.*int32"):
        dnn.run({"x0": _blob(engine, img), "x1": _blob(engine, img)})
    dnn, _ = _net(engine, lambda s: neoml.Dnn.PixelToImage(s, 2, 2, name="p"), 2)
    pix = np.zeros((1, 2, 3, 1, 1, 1, 1), np.float32)
    idx = np.zeros((1, 2, 2, 1, 1, 1, 1), np.int32)
    with pytest.raises(ShapeError, match="PixelToImage 'p'.*3 positions"):
        dnn.run({"x0": _blob(engine, pix), "x1": _blob(engine, idx)})
