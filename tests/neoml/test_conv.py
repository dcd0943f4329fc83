"""neoml.Dnn.Conv against refnn's float64 reference conv2d, on every engine.

The layer's blobs are channels-last (N, H, W, C) and its filter blob is
(1, F, 1, kh, kw, 1, C); the reference op is NCHW with filters (F, C, kh, kw), so the
test converts with NumPy transposes and compares the forward output, the input
gradient and the filter / free-term gradients (the layer protocol: ``_backward``
fills ``_grads``), then checks that ``learn`` moves the filters.
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import ParameterError, ShapeError
from refnn.ops import conv as K

RTOL, ATOL = 1e-3, 1e-4

CASES = [  # (N, H, W, C, F, filter, stride, padding, dilation)
    (2, 5, 6, 3, 4, (3, 3), (1, 1), (0, 0), (1, 1)),
    (1, 7, 5, 2, 3, (3, 2), (2, 1), (1, 2), (1, 1)),
    (3, 8, 8, 1, 2, (2, 3), (1, 2), (1, 0), (2, 2)),
]


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _net(engine, shape, F, fsize, stride, pad, dil, zero_free=False):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(5))
    src = neoml.Dnn.Source(dnn, "x")
    conv = neoml.Dnn.Conv(src, F, fsize, stride, pad, dil, is_zero_free_term=zero_free,
                          name="conv")
    neoml.Dnn.Sink(conv, name="out")
    return dnn, conv


@pytest.mark.parametrize("case", CASES)
def test_forward_backward_vs_reference(engine, case):
    N, H, W, C, F, fsize, stride, pad, dil = case
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (1, N, 1, H, W, 1, C)).astype(np.float32)
    filt = rng.normal(0, 0.5, (1, F, 1) + fsize + (1, C)).astype(np.float32)
    b = rng.normal(0, 0.5, F).astype(np.float32)
    dnn, conv = _net(engine, x.shape, F, fsize, stride, pad, dil)
    conv.filter = _blob(engine, filt)
    conv.free_term = _blob(engine, b.reshape(F, 1, 1, 1, 1, 1, 1))
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)

    x4 = x.reshape(N, H, W, C).transpose(0, 3, 1, 2).astype(np.float64)
    w4 = filt.reshape(F, *fsize, C).transpose(0, 3, 1, 2).astype(np.float64)
    y4, saved = K.conv2d_forward(x4, w4, stride, pad, dil)
    y4 = y4 + b[None, :, None, None]
    Ho, Wo = y4.shape[2:]
    assert got.shape == (1, N, 1, Ho, Wo, 1, F)
    np.testing.assert_allclose(got.reshape(N, Ho, Wo, F), y4.transpose(0, 2, 3, 1),
                               rtol=RTOL, atol=ATOL)

    # backward through the layer protocol with an upstream gradient dy; fed by a Source
    # (nothing upstream learns) the layer skips dX ...
    be = engine.backend
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    dy4 = dy.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2).astype(np.float64)
    dx4, dw4 = K.conv2d_backward(dy4, saved)
    conv._grads.clear()
    conv._forward(be, [be.asarray(x)], True)
    assert conv._backward(be, [be.asarray(dy)], [False]) == [None]
    np.testing.assert_allclose(be.to_host(conv._grads["filter"]), dw4, rtol=RTOL, atol=ATOL)
    # ... and computes it when something upstream learns
    conv._needs_grad = lambda name, memo: True
    conv._grads.clear()
    conv._forward(be, [be.asarray(x)], True)
    (dx,) = conv._backward(be, [be.asarray(dy)], [True])
    np.testing.assert_allclose(be.to_host(dx).reshape(N, H, W, C),
                               dx4.transpose(0, 2, 3, 1), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(conv._grads["filter"]), dw4, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(conv._grads["free_term"]), dy4.sum(axis=(0, 2, 3)),
                               rtol=RTOL, atol=ATOL)


def test_properties_and_defaults(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    conv = neoml.Dnn.Conv(src)
    assert (conv.filter_count, conv.filter_size, conv.stride_size, conv.padding_size,
            conv.dilation_size, conv.zero_free_term) == (1, (3, 3), (1, 1), (0, 0), (1, 1),
                                                         True)
    assert conv.filter is None and conv.free_term is None
    conv.filter_count, conv.filter_size = 2, (2, 2)
    conv.stride_size, conv.padding_size, conv.dilation_size = (2, 1), (1, 1), (1, 2)
    conv.zero_free_term = False
    assert (conv.filter_count, conv.filter_size, conv.stride_size, conv.padding_size,
            conv.dilation_size, conv.zero_free_term) == (2, (2, 2), (2, 1), (1, 1), (1, 2),
                                                         False)
    neoml.Dnn.Sink(conv, name="out")
    x = np.ones((1, 2, 1, 4, 5, 1, 3), np.float32)
    out = dnn.run({"x": _blob(engine, x)})["out"]
    assert tuple(out.shape) == (1, 2, 1, 3, 5, 1, 2)
    assert tuple(conv.filter.shape) == (1, 2, 1, 2, 2, 1, 3)
    assert tuple(conv.free_term.shape) == (2, 1, 1, 1, 1, 1, 1)
    np.testing.assert_array_equal(conv.free_term.asarray(), 0)


def test_bad_geometry_names_the_layer(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    conv = neoml.Dnn.Conv(src, 2, (5, 5), padding_size=(1, 1), name="c5")
    neoml.Dnn.Sink(conv, name="out")
    x = np.ones((1, 1, 1, 2, 8, 1, 3), np.float32)
    with pytest.raises(ShapeError, match="Conv 'c5'.*kernel spans 5.*only 4"):
        dnn.run({"x": _blob(engine, x)})
    conv.filter = _blob(engine, np.ones((1, 2, 1, 5, 5, 1, 4), np.float32))
    x = np.ones((1, 1, 1, 6, 6, 1, 3), np.float32)
    with pytest.raises(ShapeError, match="Conv 'c5'.*4 channels.*got 3"):
        dnn.run({"x": _blob(engine, x)})
    with pytest.raises(ShapeError, match="Conv 'c5'.*filter must have shape"):
        conv.filter = _blob(engine, np.ones((1, 2, 1, 3, 3, 1, 4), np.float32))
    with pytest.raises(ParameterError, match="stride_size"):
        neoml.Dnn.Conv(src, 2, (3, 3), stride_size=(0, 1))
    with pytest.raises(ParameterError, match="filter_count"):
        neoml.Dnn.Conv(src, 0)


def test_learn_moves_the_filters(engine):
    rng = np.random.default_rng(1)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(2))
    src = neoml.Dnn.Source(dnn, "x")
    lab = neoml.Dnn.Source(dnn, "t")
    conv = neoml.Dnn.Conv(src, 2, (3, 3), padding_size=(1, 1), is_zero_free_term=False,
                          name="conv")
    neoml.Dnn.EuclideanLoss((conv, lab), name="loss")
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.1, moment_decay_rate=0.0)
    x = rng.normal(0, 1, (1, 3, 1, 4, 4, 1, 2)).astype(np.float32)
    t = rng.normal(0, 1, (1, 3, 1, 4, 4, 1, 2)).astype(np.float32)
    inputs = {"x": _blob(engine, x), "t": _blob(engine, t)}
    dnn.run(inputs)
    w0, b0 = conv.filter.asarray(), conv.free_term.asarray()
    loss0 = dnn.layers["loss"].last_loss
    for _ in range(5):
        dnn.learn(inputs)
    assert not np.allclose(conv.filter.asarray(), w0)
    assert not np.allclose(conv.free_term.asarray(), b0)
    dnn.run(inputs)
    assert dnn.layers["loss"].last_loss < loss0


def test_several_inputs_share_the_filters_and_store_load(engine, tmp_path):
    rng = np.random.default_rng(4)
    dnn = neoml.Dnn.Dnn(engine)
    a, b = neoml.Dnn.Source(dnn, "a"), neoml.Dnn.Source(dnn, "b")
    conv = neoml.Dnn.Conv([a, b], 2, (2, 2), is_zero_free_term=False, name="conv")
    neoml.Dnn.Sink((conv, 0), name="ya")
    neoml.Dnn.Sink((conv, 1), name="yb")
    xa = rng.normal(0, 1, (1, 2, 1, 3, 4, 1, 3)).astype(np.float32)
    xb = rng.normal(0, 1, (2, 1, 1, 5, 3, 1, 3)).astype(np.float32)
    inputs = {"a": _blob(engine, xa), "b": _blob(engine, xb)}
    out = dnn.run(inputs)
    filt = conv.filter.asarray(keep_dims=True)
    w4 = filt.reshape(2, 2, 2, 3).transpose(0, 3, 1, 2).astype(np.float64)
    for x, name in ((xa, "ya"), (xb, "yb")):
        n, h, w, c = x.shape[0] * x.shape[1], x.shape[3], x.shape[4], x.shape[6]
        y4, _ = K.conv2d_forward(x.reshape(n, h, w, c).transpose(0, 3, 1, 2), w4)
        np.testing.assert_allclose(out[name].asarray(keep_dims=True).reshape(y4.shape[0], -1),
                                   y4.transpose(0, 2, 3, 1).reshape(y4.shape[0], -1),
                                   rtol=RTOL, atol=ATOL)
    dnn.store(str(tmp_path / "conv.pkl"))
    other = neoml.Dnn.Dnn(engine)
    other.load(str(tmp_path / "conv.pkl"))
    again = other.run(inputs)
    np.testing.assert_allclose(again["ya"].asarray(), out["ya"].asarray(), rtol=1e-6)
    loaded = other.layers["conv"]
    assert (loaded.filter_size, loaded.filter_count, loaded.zero_free_term) == ((2, 2), 2,
                                                                               False)


def test_input_gradient_only_where_something_upstream_learns(engine):
    """conv2d's need_dx: the first Conv (fed by a Source) skips dX; a Conv fed by a
    learning layer computes it, and the chain's filter gradients match the reference."""
    rng = np.random.default_rng(6)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    src = neoml.Dnn.Source(dnn, "x")
    c1 = neoml.Dnn.Conv(src, 2, (2, 2), name="c1")
    c2 = neoml.Dnn.Conv(c1, 3, (2, 2), name="c2")
    neoml.Dnn.Sink(c2, name="out")
    x = rng.normal(0, 1, (1, 2, 1, 4, 5, 1, 2)).astype(np.float32)
    dnn.run({"x": _blob(engine, x)})
    assert not c1._needs_grad("x", {}) and c2._needs_grad("c1", {})
    be = engine.backend
    (y1,) = c1._forward(be, [be.asarray(x)], True)
    (y2,) = c2._forward(be, [y1], True)
    dy = rng.normal(0, 1, tuple(y2.shape)).astype(np.float32)
    c1._grads.clear()
    c2._grads.clear()
    (d1,) = c2._backward(be, [be.asarray(dy)], [True])
    assert d1 is not None
    assert c1._backward(be, [d1], [False]) == [None]
    w1 = c1.filter.asarray(keep_dims=True).reshape(2, 2, 2, 2).transpose(0, 3, 1, 2)
    w2 = c2.filter.asarray(keep_dims=True).reshape(3, 2, 2, 2).transpose(0, 3, 1, 2)
    x4 = x.reshape(2, 4, 5, 2).transpose(0, 3, 1, 2).astype(np.float64)
    a, sa = K.conv2d_forward(x4, w1.astype(np.float64))
    b, sb = K.conv2d_forward(a, w2.astype(np.float64))
    da, dw2 = K.conv2d_backward(dy.reshape(2, 2, 3, 3).transpose(0, 3, 1, 2), sb)
    _, dw1 = K.conv2d_backward(da, sa)
    np.testing.assert_allclose(be.to_host(c2._grads["filter"]), dw2, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(c1._grads["filter"]), dw1, rtol=RTOL, atol=ATOL)
