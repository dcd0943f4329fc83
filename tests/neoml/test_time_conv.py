"""neoml.Dnn.TimeConv against refnn's float64 reference time_conv, on every engine.

The layer's input blob is (BatchLength = T, BatchWidth, ListSize, H, W, D, C): T steps of
BW*LS sequences of E = H*W*D*C numbers, time-major like the op's (T, N, E); its filter
blob (1, F, 1, K, 1, 1, E) is the op's (F, K, E). The test compares the forward output,
the input gradient and the filter / free-term gradients (the layer protocol:
``_backward`` fills ``_grads``), then checks that ``learn`` moves the filters.
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import ParameterError, ShapeError
from refnn.ops import channelwise as K

RTOL, ATOL = 1e-3, 1e-4

CASES = [  # (T, BW, LS, object dims (H, W, D, C), F, K, padding_front, padding_back,
    #          dilation, stride)
    (7, 2, 1, (1, 1, 1, 3), 4, 3, 0, 0, 1, 1),
    (9, 1, 2, (2, 1, 1, 2), 3, 2, 1, 3, 2, 2),
    (5, 3, 1, (1, 1, 1, 1), 2, 4, 3, 1, 1, 5),
    (1, 2, 1, (1, 1, 2, 2), 3, 3, 2, 0, 1, 1),
]


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


@pytest.mark.parametrize("case", CASES)
def test_forward_backward_vs_reference(engine, case):
    T, BW, LS, obj, F, Kf, pf, pb, d, s = case
    E, N = int(np.prod(obj)), BW * LS
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (T, BW, LS) + obj).astype(np.float32)
    filt = rng.normal(0, 0.5, (1, F, 1, Kf, 1, 1, E)).astype(np.float32)
    b = rng.normal(0, 0.5, F).astype(np.float32)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(5))
    src = neoml.Dnn.Source(dnn, "x")
    tc = neoml.Dnn.TimeConv(src, F, Kf, pf, pb, d, s, name="tc")
    neoml.Dnn.Sink(tc, name="out")
    tc.filter = _blob(engine, filt)
    tc.free_term = _blob(engine, b.reshape(F, 1, 1, 1, 1, 1, 1))
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)

    x3 = x.reshape(T, N, E).astype(np.float64)
    w3 = filt.reshape(F, Kf, E).astype(np.float64)
    y3, saved = K.time_conv_forward(x3, w3, s, pf, pb, d)
    To = y3.shape[0]
    assert To == (pf + pb + T - (1 + d * (Kf - 1))) // s + 1     # the spec's BatchLength
    assert got.shape == (To, BW, LS, 1, 1, 1, F)
    np.testing.assert_allclose(got.reshape(To, N, F), y3 + b, rtol=RTOL, atol=ATOL)

    be = engine.backend
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    tc._grads.clear()
    tc._forward(be, [be.asarray(x)], True)
    (dx,) = tc._backward(be, [be.asarray(dy)], [True])
    dy3 = dy.reshape(To, N, F).astype(np.float64)
    dx3, dw3 = K.time_conv_backward(dy3, saved)
    assert tuple(dx.shape) == x.shape
    np.testing.assert_allclose(be.to_host(dx).reshape(T, N, E), dx3, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(tc._grads["filter"]), dw3, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(tc._grads["free_term"]), dy3.sum(axis=(0, 1)),
                               rtol=RTOL, atol=ATOL)


def test_properties_and_defaults(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    tc = neoml.Dnn.TimeConv(src, 3, 2)
    assert (tc.filter_count, tc.filter_size, tc.padding_front, tc.padding_back, tc.dilation,
            tc.stride) == (3, 2, 0, 0, 1, 1)
    assert tc.filter is None and tc.free_term is None
    assert tc.OPS == ("time_conv", "bias")
    tc.filter_count, tc.filter_size = 2, 3
    tc.padding_front, tc.padding_back, tc.dilation, tc.stride = 2, 1, 2, 3
    assert (tc.filter_count, tc.filter_size, tc.padding_front, tc.padding_back, tc.dilation,
            tc.stride) == (2, 3, 2, 1, 2, 3)
    neoml.Dnn.Sink(tc, name="out")
    x = np.ones((6, 2, 1, 1, 1, 1, 4), np.float32)
    out = dnn.run({"x": _blob(engine, x)})["out"]
    assert tuple(out.shape) == ((2 + 1 + 6 - 5) // 3 + 1, 2, 1, 1, 1, 1, 2)
    assert tuple(tc.filter.shape) == (1, 2, 1, 3, 1, 1, 4)
    assert tuple(tc.free_term.shape) == (2, 1, 1, 1, 1, 1, 1)
    np.testing.assert_array_equal(tc.free_term.asarray(), 0)
    tc.filter_size = 2                      # a new geometry drops the old filters
    assert tc.filter is None


def test_filter_blob_is_the_op_layout(engine):
    dnn = neoml.Dnn.Dnn(engine)
    tc = neoml.Dnn.TimeConv(neoml.Dnn.Source(dnn, "x"), 1, 2, name="tc")
    neoml.Dnn.Sink(tc, name="out")
    # filter tap 0 reads step t, tap 1 step t + 1; features weighted 1 and 10
    tc.filter = _blob(engine, np.array([1, 10, 100, 1000], np.float32).reshape(
        1, 1, 1, 2, 1, 1, 2))
    np.testing.assert_array_equal(tc.filter.asarray().ravel(), [1, 10, 100, 1000])
    x = np.arange(6, dtype=np.float32).reshape(3, 1, 1, 1, 1, 1, 2)
    out = dnn.run({"x": _blob(engine, x)})["out"].asarray().ravel()
    np.testing.assert_allclose(out, [0 + 10 + 200 + 3000, 2 + 30 + 400 + 5000])


def test_bad_input_names_the_layer(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    tc = neoml.Dnn.TimeConv(src, 2, 4, padding_front=1, name="t4")
    neoml.Dnn.Sink(tc, name="out")
    x = np.ones((2, 1, 1, 1, 1, 1, 3), np.float32)
    with pytest.raises(ShapeError, match="TimeConv 't4'.*filter spans 4.*only 3"):
        dnn.run({"x": _blob(engine, x)})
    tc.filter = _blob(engine, np.ones((1, 2, 1, 4, 1, 1, 3), np.float32))
    x = np.ones((6, 1, 1, 1, 1, 1, 5), np.float32)
    with pytest.raises(ShapeError, match="TimeConv 't4'.*object size.*3 like the filter.*5"):
        dnn.run({"x": _blob(engine, x)})
    be = engine.backend
    with pytest.raises(ShapeError, match="TimeConv 't4'.*7-D blob"):
        tc._forward(be, [be.asarray(np.ones((6, 1, 3), np.float32))], False)
    with pytest.raises(ShapeError, match="TimeConv 't4'.*filter must have shape"):
        tc.filter = _blob(engine, np.ones((1, 2, 1, 3, 1, 1, 3), np.float32))
    with pytest.raises(ShapeError, match="TimeConv 't4'.*free_term must have 2"):
        tc.free_term = _blob(engine, np.ones((3, 1, 1, 1, 1, 1, 1), np.float32))
    with pytest.raises(ParameterError, match="TimeConv 't4'.*stride must be >= 1"):
        tc.stride = 0
    with pytest.raises(ParameterError, match="padding_back"):
        tc.padding_back = -1
    with pytest.raises(ParameterError, match="stride"):
        neoml.Dnn.TimeConv(src, 2, 3, stride=0)
    with pytest.raises(ParameterError, match="filter_size"):
        neoml.Dnn.TimeConv(src, 2, 0)
    with pytest.raises(ParameterError, match="filter_count"):
        neoml.Dnn.TimeConv(src, 0, 3)
    with pytest.raises(ParameterError, match="dilation must be an int"):
        neoml.Dnn.TimeConv(src, 2, 3, dilation=1.5)


def test_learn_moves_the_filters(engine):
    rng = np.random.default_rng(1)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(2))
    src = neoml.Dnn.Source(dnn, "x")
    lab = neoml.Dnn.Source(dnn, "t")
    tc = neoml.Dnn.TimeConv(src, 2, 3, padding_front=1, padding_back=1, name="tc")
    neoml.Dnn.EuclideanLoss((tc, lab), name="loss")
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.05, moment_decay_rate=0.0)
    x = rng.normal(0, 1, (6, 3, 1, 1, 1, 1, 4)).astype(np.float32)
    t = rng.normal(0, 1, (6, 3, 1, 1, 1, 1, 2)).astype(np.float32)
    inputs = {"x": _blob(engine, x), "t": _blob(engine, t)}
    dnn.run(inputs)
    w0, b0 = tc.filter.asarray(), tc.free_term.asarray()
    loss0 = dnn.layers["loss"].last_loss
    for _ in range(5):
        dnn.learn(inputs)
    assert not np.allclose(tc.filter.asarray(), w0)
    assert not np.allclose(tc.free_term.asarray(), b0)
    dnn.run(inputs)
    assert dnn.layers["loss"].last_loss < loss0


def test_several_inputs_share_the_filters_and_store_load(engine, tmp_path):
    rng = np.random.default_rng(4)
    dnn = neoml.Dnn.Dnn(engine)
    a, b = neoml.Dnn.Source(dnn, "a"), neoml.Dnn.Source(dnn, "b")
    tc = neoml.Dnn.TimeConv([a, b], 3, 2, padding_back=1, stride=2, name="tc")
    neoml.Dnn.Sink((tc, 0), name="ya")
    neoml.Dnn.Sink((tc, 1), name="yb")
    xa = rng.normal(0, 1, (5, 2, 1, 1, 1, 1, 3)).astype(np.float32)
    xb = rng.normal(0, 1, (8, 1, 3, 1, 1, 1, 3)).astype(np.float32)
    inputs = {"a": _blob(engine, xa), "b": _blob(engine, xb)}
    out = dnn.run(inputs)
    w3 = tc.filter.asarray(keep_dims=True).reshape(3, 2, 3).astype(np.float64)
    for x, name in ((xa, "ya"), (xb, "yb")):
        y3, _ = K.time_conv_forward(x.reshape(x.shape[0], -1, 3).astype(np.float64), w3,
                                    stride=2, padding_back=1)
        got = out[name].asarray(keep_dims=True)
        assert got.shape == (y3.shape[0],) + x.shape[1:3] + (1, 1, 1, 3)
        np.testing.assert_allclose(got.reshape(y3.shape), y3, rtol=RTOL, atol=ATOL)
    dnn.store(str(tmp_path / "tc.pkl"))
    other = neoml.Dnn.Dnn(engine)
    other.load(str(tmp_path / "tc.pkl"))
    again = other.run(inputs)
    np.testing.assert_allclose(again["yb"].asarray(), out["yb"].asarray(), rtol=1e-6)
    loaded = other.layers["tc"]
    assert (loaded.filter_count, loaded.filter_size, loaded.padding_back, loaded.stride) == (
        3, 2, 1, 2)
