"""neoml.Dnn.ChannelwiseConv against refnn's float64 reference channelwise_conv2d, on
every engine.

The layer's blobs are channels-last (N, H, W, C) and its filter blob is
(1, 1, 1, kh, kw, 1, C); the reference op is NCHW with the filter (C, 1, kh, kw), so the
test converts with NumPy transposes and compares the forward output, the input
gradient and the filter / free-term gradients (the layer protocol: ``_backward``
fills ``_grads``), then checks that ``learn`` moves the filter.
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import ParameterError, ShapeError
from refnn.ops import channelwise as K

RTOL, ATOL = 1e-3, 1e-4

CASES = [  # (N, H, W, C, filter, stride, padding)
    (2, 5, 6, 3, (3, 3), (1, 1), (0, 0)),
    (1, 7, 5, 2, (3, 4), (2, 1), (1, 2)),
    (3, 8, 9, 5, (2, 3), (4, 3), (1, 0)),
]


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


@pytest.mark.parametrize("case", CASES)
def test_forward_backward_vs_reference(engine, case):
    N, H, W, C, fsize, stride, pad = case
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (1, N, 1, H, W, 1, C)).astype(np.float32)
    filt = rng.normal(0, 0.5, (1, 1, 1) + fsize + (1, C)).astype(np.float32)
    b = rng.normal(0, 0.5, C).astype(np.float32)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(5))
    src = neoml.Dnn.Source(dnn, "x")
    cw = neoml.Dnn.ChannelwiseConv(src, C, fsize, stride, pad, name="cw")
    neoml.Dnn.Sink(cw, name="out")
    cw.filter = _blob(engine, filt)
    cw.free_term = _blob(engine, b.reshape(C, 1, 1, 1, 1, 1, 1))
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)

    x4 = x.reshape(N, H, W, C).transpose(0, 3, 1, 2).astype(np.float64)
    w4 = filt.reshape(*fsize, C).transpose(2, 0, 1)[:, None].astype(np.float64)
    y4, saved = K.channelwise_conv2d_forward(x4, w4, stride, pad)
    y4 = y4 + b[None, :, None, None]
    Ho, Wo = y4.shape[2:]
    assert got.shape == (1, N, 1, Ho, Wo, 1, C)
    np.testing.assert_allclose(got.reshape(N, Ho, Wo, C), y4.transpose(0, 2, 3, 1),
                               rtol=RTOL, atol=ATOL)

    be = engine.backend
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    cw._grads.clear()
    cw._forward(be, [be.asarray(x)], True)
    (dx,) = cw._backward(be, [be.asarray(dy)], [True])
    dy4 = dy.reshape(N, Ho, Wo, C).transpose(0, 3, 1, 2).astype(np.float64)
    dx4, dw4 = K.channelwise_conv2d_backward(dy4, saved)
    np.testing.assert_allclose(be.to_host(dx).reshape(N, H, W, C),
                               dx4.transpose(0, 2, 3, 1), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(cw._grads["filter"]), dw4, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(cw._grads["free_term"]), dy4.sum(axis=(0, 2, 3)),
                               rtol=RTOL, atol=ATOL)


def test_filter_blob_round_trip_is_channels_last(engine):
    dnn = neoml.Dnn.Dnn(engine)
    cw = neoml.Dnn.ChannelwiseConv(neoml.Dnn.Source(dnn, "x"), 3, (2, 2))
    filt = np.arange(12, dtype=np.float32).reshape(1, 1, 1, 2, 2, 1, 3)
    cw.filter = _blob(engine, filt)
    np.testing.assert_array_equal(cw.filter.asarray(keep_dims=True), filt)
    # channel c's window is filt[..., c]: a one-pixel image of channel values v_c gives
    # v_c * filt[0, 0, 0, 0, 0, 0, c] with padding 1 at the bottom-right tap (1, 1)
    cw.padding_size = (1, 1)
    neoml.Dnn.Sink(cw, name="out")
    x = np.array([1.0, 10.0, 100.0], np.float32).reshape(1, 1, 1, 1, 1, 1, 3)
    out = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    assert out.shape == (1, 1, 1, 2, 2, 1, 3)
    np.testing.assert_allclose(out[0, 0, 0, 0, 0, 0], x.ravel() * filt[0, 0, 0, 1, 1, 0])


def test_properties_and_defaults(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    cw = neoml.Dnn.ChannelwiseConv(src, 3)
    assert (cw.filter_count, cw.filter_size, cw.stride_size, cw.padding_size,
            cw.zero_free_term) == (3, (3, 3), (1, 1), (0, 0), False)
    assert cw.filter is None and cw.free_term is None
    assert cw.OPS == ("channelwise_conv2d", "bias")
    cw.filter_count, cw.filter_size = 2, (2, 2)
    cw.stride_size, cw.padding_size, cw.zero_free_term = (2, 1), (1, 1), True
    assert (cw.filter_count, cw.filter_size, cw.stride_size, cw.padding_size,
            cw.zero_free_term) == (2, (2, 2), (2, 1), (1, 1), True)
    neoml.Dnn.Sink(cw, name="out")
    x = np.ones((1, 2, 1, 4, 5, 1, 2), np.float32)
    out = dnn.run({"x": _blob(engine, x)})["out"]
    assert tuple(out.shape) == (1, 2, 1, 3, 6, 1, 2)
    assert tuple(cw.filter.shape) == (1, 1, 1, 2, 2, 1, 2)
    assert cw.free_term is None                     # zero free term: none is kept
    cw.zero_free_term = False
    dnn.run({"x": _blob(engine, x)})
    assert tuple(cw.free_term.shape) == (2, 1, 1, 1, 1, 1, 1)
    np.testing.assert_array_equal(cw.free_term.asarray(), 0)


def test_depth_times_channels_are_the_channels(engine):
    rng = np.random.default_rng(3)
    dnn = neoml.Dnn.Dnn(engine)
    cw = neoml.Dnn.ChannelwiseConv(neoml.Dnn.Source(dnn, "x"), 6, (2, 2), name="cw")
    neoml.Dnn.Sink(cw, name="out")
    x = rng.normal(size=(1, 2, 1, 3, 3, 2, 3)).astype(np.float32)
    out = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    assert out.shape == (1, 2, 1, 2, 2, 1, 6)
    w4 = cw.filter.asarray(keep_dims=True).reshape(2, 2, 6).transpose(2, 0, 1)[:, None]
    y4, _ = K.channelwise_conv2d_forward(
        x.reshape(2, 3, 3, 6).transpose(0, 3, 1, 2).astype(np.float64), w4)
    np.testing.assert_allclose(out.reshape(2, 2, 2, 6), y4.transpose(0, 2, 3, 1),
                               rtol=RTOL, atol=ATOL)


def test_bad_input_names_the_layer(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    cw = neoml.Dnn.ChannelwiseConv(src, 3, (5, 5), padding_size=(1, 1), name="dw5")
    neoml.Dnn.Sink(cw, name="out")
    x = np.ones((1, 1, 1, 2, 8, 1, 3), np.float32)
    with pytest.raises(ShapeError, match="ChannelwiseConv 'dw5'.*kernel spans 5.*only 4"):
        dnn.run({"x": _blob(engine, x)})
    x = np.ones((1, 1, 1, 6, 6, 1, 4), np.float32)
    with pytest.raises(ShapeError, match="ChannelwiseConv 'dw5'.*3 channels.*got 4"):
        dnn.run({"x": _blob(engine, x)})
    be = engine.backend
    with pytest.raises(ShapeError, match="ChannelwiseConv 'dw5'.*7-D blob"):
        cw._forward(be, [be.asarray(np.ones((1, 6, 6, 3), np.float32))], False)
    with pytest.raises(ShapeError, match="ChannelwiseConv 'dw5'.*filter must have shape"):
        cw.filter = _blob(engine, np.ones((1, 1, 1, 3, 3, 1, 3), np.float32))
    with pytest.raises(ShapeError, match="ChannelwiseConv 'dw5'.*filter must have shape"):
        cw.filter = _blob(engine, np.ones((1, 1, 1, 5, 5, 2, 3), np.float32))
    with pytest.raises(ShapeError, match="ChannelwiseConv 'dw5'.*filter must have shape"):
        cw.filter = _blob(engine, np.ones((1, 2, 1, 5, 5, 1, 3), np.float32))
    with pytest.raises(ShapeError, match="ChannelwiseConv 'dw5'.*free_term must have 3"):
        cw.free_term = _blob(engine, np.ones((4, 1, 1, 1, 1, 1, 1), np.float32))
    with pytest.raises(ParameterError, match="ChannelwiseConv 'dw5'.*stride_size"):
        cw.stride_size = (0, 1)
    cw.padding_size = (1, 5)                        # NeoML: padding < filter size
    x = np.ones((1, 1, 1, 8, 8, 1, 3), np.float32)
    with pytest.raises(ParameterError, match="ChannelwiseConv 'dw5'.*padding_size.*smaller"):
        dnn.run({"x": _blob(engine, x)})
    with pytest.raises(ParameterError, match="stride_size"):
        neoml.Dnn.ChannelwiseConv(src, 3, (3, 3), stride_size=(1, 0))
    with pytest.raises(ParameterError, match="filter_count"):
        neoml.Dnn.ChannelwiseConv(src, 0)
    with pytest.raises(ParameterError, match="padding_size"):
        neoml.Dnn.ChannelwiseConv(src, 2, padding_size=(-1, 0))


def test_filter_count_follows_the_filter_blob(engine):
    """As NeoML's SetFilterData: filter_count becomes the blob's channel count (and a
    free term of the old size is dropped, the next run makes a zero one)."""
    dnn = neoml.Dnn.Dnn(engine)
    cw = neoml.Dnn.ChannelwiseConv(neoml.Dnn.Source(dnn, "x"), 3, (2, 2), name="cw")
    neoml.Dnn.Sink(cw, name="out")
    cw.free_term = _blob(engine, np.ones((3, 1, 1, 1, 1, 1, 1), np.float32))
    cw.filter = _blob(engine, np.ones((1, 1, 1, 2, 2, 1, 4), np.float32))
    assert cw.filter_count == 4 and cw.free_term is None
    x = np.ones((1, 1, 1, 3, 3, 1, 4), np.float32)
    out = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    np.testing.assert_allclose(out, np.full((1, 1, 1, 2, 2, 1, 4), 4.0))
    assert tuple(cw.free_term.shape) == (4, 1, 1, 1, 1, 1, 1)


def test_initial_filter_uses_neoml_fan_in(engine):
    """Xavier draws N(0, 1/fan_in) with fan_in = kh*kw*C, the filter blob's object size."""
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    cw = neoml.Dnn.ChannelwiseConv(neoml.Dnn.Source(dnn, "x"), 64, (5, 5), name="cw")
    neoml.Dnn.Sink(cw, name="out")
    dnn.run({"x": _blob(engine, np.ones((1, 1, 1, 5, 5, 1, 64), np.float32))})
    std = cw.filter.asarray().std()
    assert abs(std - np.sqrt(1.0 / (5 * 5 * 64))) < 0.1 * np.sqrt(1.0 / (5 * 5 * 64))


def test_learn_moves_the_filter(engine):
    rng = np.random.default_rng(1)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(2))
    src = neoml.Dnn.Source(dnn, "x")
    lab = neoml.Dnn.Source(dnn, "t")
    cw = neoml.Dnn.ChannelwiseConv(src, 2, (3, 3), padding_size=(1, 1), name="cw")
    neoml.Dnn.EuclideanLoss((cw, lab), name="loss")
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.1, moment_decay_rate=0.0)
    x = rng.normal(0, 1, (1, 3, 1, 4, 4, 1, 2)).astype(np.float32)
    t = rng.normal(0, 1, (1, 3, 1, 4, 4, 1, 2)).astype(np.float32)
    inputs = {"x": _blob(engine, x), "t": _blob(engine, t)}
    dnn.run(inputs)
    w0, b0 = cw.filter.asarray(), cw.free_term.asarray()
    loss0 = dnn.layers["loss"].last_loss
    for _ in range(5):
        dnn.learn(inputs)
    assert not np.allclose(cw.filter.asarray(), w0)
    assert not np.allclose(cw.free_term.asarray(), b0)
    dnn.run(inputs)
    assert dnn.layers["loss"].last_loss < loss0


def test_several_inputs_share_the_filter_and_store_load(engine, tmp_path):
    rng = np.random.default_rng(4)
    dnn = neoml.Dnn.Dnn(engine)
    a, b = neoml.Dnn.Source(dnn, "a"), neoml.Dnn.Source(dnn, "b")
    cw = neoml.Dnn.ChannelwiseConv([a, b], 3, (2, 2), stride_size=(1, 2), name="cw")
    neoml.Dnn.Sink((cw, 0), name="ya")
    neoml.Dnn.Sink((cw, 1), name="yb")
    xa = rng.normal(0, 1, (1, 2, 1, 3, 4, 1, 3)).astype(np.float32)
    xb = rng.normal(0, 1, (2, 1, 1, 5, 3, 1, 3)).astype(np.float32)
    inputs = {"a": _blob(engine, xa), "b": _blob(engine, xb)}
    out = dnn.run(inputs)
    w4 = cw.filter.asarray(keep_dims=True).reshape(2, 2, 3).transpose(2, 0, 1)[:, None]
    for x, name in ((xa, "ya"), (xb, "yb")):
        n, h, w, c = x.shape[0] * x.shape[1], x.shape[3], x.shape[4], x.shape[6]
        y4, _ = K.channelwise_conv2d_forward(
            x.reshape(n, h, w, c).transpose(0, 3, 1, 2).astype(np.float64), w4, (1, 2))
        np.testing.assert_allclose(out[name].asarray(keep_dims=True).reshape(n, -1),
                                   y4.transpose(0, 2, 3, 1).reshape(n, -1),
                                   rtol=RTOL, atol=ATOL)
    dnn.store(str(tmp_path / "cw.pkl"))
    other = neoml.Dnn.Dnn(engine)
    other.load(str(tmp_path / "cw.pkl"))
    again = other.run(inputs)
    np.testing.assert_allclose(again["ya"].asarray(), out["ya"].asarray(), rtol=1e-6)
    loaded = other.layers["cw"]
    assert (loaded.filter_size, loaded.filter_count, loaded.stride_size) == ((2, 2), 3, (1, 2))
