"""neoml.Dnn.SubSequence, ReverseSequence, SequenceSum and CumSum against refnn's float64
reference sequence ops, on every engine (a blob (T, BW, LS, H, W, D, C) is the ops'
(T, BW*LS, H*W*D*C)); learn() through a sequence pipeline; errors name the layer."""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import sequence as S

RTOL, ATOL = 1e-5, 1e-5
SHAPES = [(5, 2, 1, 1, 1, 1, 3), (1, 1, 1, 1, 1, 1, 1), (7, 3, 2, 2, 1, 1, 2)]


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _check(engine, layer_cls, kwargs, ref_fwd, ref_bwd, x, to3=True):
    """Forward via Dnn.run and backward via the layer protocol vs the reference op."""
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    layer = layer_cls(src, name="L", **kwargs)
    neoml.Dnn.Sink(layer, name="out")
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    T, N = x.shape[0], x.shape[1] * x.shape[2]
    xr = x.reshape(T, N, -1).astype(np.float64) if to3 else x.astype(np.float64)
    y, saved = ref_fwd(xr)
    np.testing.assert_allclose(got.reshape(y.shape), y, rtol=RTOL, atol=ATOL)
    be = engine.backend
    dy = np.random.default_rng(1).normal(0, 1, got.shape).astype(np.float32)
    layer._forward(be, [be.asarray(x)], True)
    (dx,) = layer._backward(be, [be.asarray(dy)], [True])
    (rdx,) = ref_bwd(dy.reshape(y.shape).astype(np.float64), saved)
    assert tuple(dx.shape) == x.shape
    np.testing.assert_allclose(be.to_host(dx).reshape(rdx.shape), rdx, rtol=RTOL, atol=ATOL)
    return got, layer


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("start,length", [(0, 1), (1, 3), (-2, -3), (-1, 1), (0, -1),
                                          (2, 100)])
def test_subsequence(engine, shape, start, length):
    x = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    T = shape[0]
    s = min(start, T) if start >= 0 else max(0, T + start)
    if (length >= 0 and s >= T) or (length < 0 and s >= T):
        with pytest.raises(ParameterError, match="SubSequence 'L'"):
            _check(engine, neoml.Dnn.SubSequence, dict(start_pos=start, length=length),
                   lambda a: S.subsequence_forward(a, start, length), S.subsequence_backward,
                   x)
        return
    got, layer = _check(engine, neoml.Dnn.SubSequence, dict(start_pos=start, length=length),
                        lambda a: S.subsequence_forward(a, start, length),
                        S.subsequence_backward, x)
    assert got.shape[1:] == shape[1:]
    assert (layer.start_pos, layer.length) == (start, length)


@pytest.mark.parametrize("shape", SHAPES)
def test_reverse_sequence(engine, shape):
    x = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    got, _ = _check(engine, neoml.Dnn.ReverseSequence, {}, S.reverse_sequence_forward,
                    S.reverse_sequence_backward, x)
    np.testing.assert_array_equal(got, x[::-1])


@pytest.mark.parametrize("shape", SHAPES)
def test_sequence_sum(engine, shape):
    x = np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)
    got, _ = _check(engine, neoml.Dnn.SequenceSum, {}, S.seq_sum_forward,
                    S.seq_sum_backward, x)
    assert got.shape == (1,) + shape[1:]


@pytest.mark.parametrize("dimension", ["batch_length", "batch_width", "list_size", "height",
                                       "width", "depth", "channels"])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum(engine, dimension, reverse):
    x = np.random.default_rng(0).normal(0, 1, (3, 2, 2, 3, 2, 2, 3)).astype(np.float32)
    axis = neoml.Dnn._sequence.DIMENSIONS.index(dimension)
    got, layer = _check(engine, neoml.Dnn.CumSum, dict(dimension=dimension, reverse=reverse),
                        lambda a: S.cumsum_forward(a, axis, reverse), S.cumsum_backward, x,
                        to3=False)
    assert (layer.dimension, layer.reverse) == (dimension, reverse)
    ref = np.flip(np.cumsum(np.flip(x, axis), axis), axis) if reverse else np.cumsum(x, axis)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_properties_settable(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    sub = neoml.Dnn.SubSequence(src)
    assert (sub.start_pos, sub.length) == (0, 1)
    sub.start_pos, sub.length = -3, -2
    assert (sub.start_pos, sub.length) == (-3, -2)
    cs = neoml.Dnn.CumSum(src)
    assert (cs.dimension, cs.reverse) == ("channels", False)
    cs.dimension, cs.reverse = "list_size", True
    assert (cs.dimension, cs.reverse) == ("list_size", True)
    for cls, op in ((neoml.Dnn.SubSequence, "subsequence"),
                    (neoml.Dnn.ReverseSequence, "reverse_sequence"),
                    (neoml.Dnn.SequenceSum, "seq_sum"), (neoml.Dnn.CumSum, "cumsum")):
        assert cls.OPS == (op,) and cls in neoml.Dnn.LAYERS


def test_learn_through_sequence_layers(engine):
    """FullyConnected -> ReverseSequence -> SubSequence -> CumSum -> SequenceSum -> loss:
    the gradient reaches the weights and the loss falls."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (6, 4, 1, 1, 1, 1, 3)).astype(np.float32)
    t = rng.normal(0, 1, (1, 4, 1, 1, 1, 1, 2)).astype(np.float32)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(1))
    xs, ts = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
    fc = neoml.Dnn.FullyConnected(xs, 2)
    y = neoml.Dnn.ReverseSequence(fc)
    y = neoml.Dnn.SubSequence(y, start_pos=1, length=4)
    y = neoml.Dnn.CumSum(y, dimension="batch_length")
    y = neoml.Dnn.SequenceSum(y)
    loss = neoml.Dnn.EuclideanLoss([y, ts])
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.01)
    feeds = {"x": _blob(engine, x), "t": _blob(engine, t)}
    first = None
    for _ in range(40):
        dnn.learn(feeds)
        first = loss.last_loss if first is None else first
    assert loss.last_loss < 0.5 * first


def test_errors_name_the_layer(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    with pytest.raises(ParameterError, match=r"SubSequence 's'.*start_pos must be an int"):
        neoml.Dnn.SubSequence(src, start_pos=1.5, name="s")
    with pytest.raises(ParameterError, match=r"CumSum 'c'.*dimension must be one of"):
        neoml.Dnn.CumSum(src, dimension="time", name="c")
    sub = neoml.Dnn.SubSequence(src, start_pos=5, length=2, name="sub")
    neoml.Dnn.Sink(sub, name="out")
    with pytest.raises(ParameterError, match=r"SubSequence 'sub': subsequence"):
        dnn.run({"x": _blob(engine, np.ones((3, 1, 1, 1, 1, 1, 2), np.float32))})
    be = engine.backend
    for layer in (sub, neoml.Dnn.ReverseSequence(src, name="r"),
                  neoml.Dnn.SequenceSum(src, name="ss"), neoml.Dnn.CumSum(src, name="cs")):
        with pytest.raises(ShapeError, match=rf"{type(layer).__name__} '{layer.name}': "
                                             r"input 0 must be a 7-D blob"):
            layer._forward(be, [be.asarray(np.ones((3, 2, 4), np.float32))], False)
        with pytest.raises(DTypeError, match=rf"{type(layer).__name__} '{layer.name}'"):
            layer._forward(be, [be.asarray(np.ones((3, 2, 1, 1, 1, 1, 4), np.int32),
                                           dtype=np.int32)], False)
