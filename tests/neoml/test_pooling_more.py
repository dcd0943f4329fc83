"""MaxPooling3D, MeanPooling3D, GlobalMaxPooling(max_count > 1), MaxOverTimePooling and
ProjectionPooling against refnn's float64 reference pool ops, on every engine.

Blobs are (BL, BW, LS, H, W, D, C), channels last. The test builds each op's canonical
input with NumPy (NC(HWD) volumes, (T, N, V) sequences, (A, L, B) projections) and
compares the forward output (through ``dnn.run``) and the input gradient (through the
layer protocol ``_forward`` / ``_backward``).
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import pool as P

RTOL, ATOL = 1e-4, 1e-5
D = neoml.Dnn


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _net(engine, make):
    dnn = D.Dnn(engine)
    src = D.Source(dnn, "x")
    layer = make(src)
    D.Sink(layer, name="out")
    return dnn, layer


def _run(engine, layer, dnn, x, dy_shape, rng):
    """(y via dnn.run, dy, dx via the layer protocol) as host arrays."""
    y = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    dy = rng.normal(0, 1, dy_shape or y.shape).astype(np.float32)
    be = engine.backend
    layer._forward(be, [be.asarray(x)], True)
    (dx,) = layer._backward(be, [be.asarray(dy)], [True])
    return y, dy, be.to_host(dx)


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------ 3-D
CASES_3D = [  # (N, H, W, Dp, C, filter (h, w, d), stride (h, w, d))
    (2, 5, 4, 3, 2, (3, 2, 2), (1, 1, 1)),        # overlapping
    (1, 6, 5, 7, 3, (2, 3, 3), (2, 1, 3)),
    (3, 4, 4, 4, 1, (4, 1, 2), (1, 3, 5)),        # stride > filter, whole height
]


@pytest.mark.parametrize("cls, op", [("MaxPooling3D", "max_pool3d"),
                                     ("MeanPooling3D", "avg_pool3d")])
@pytest.mark.parametrize("case", CASES_3D)
def test_pooling3d_vs_reference(engine, cls, op, case):
    N, H, W, Dp, C, fsize, stride = case
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (1, N, 1, H, W, Dp, C)).astype(np.float32)
    dnn, layer = _net(engine, lambda s: getattr(D, cls)(s, fsize, stride, name="p"))
    xc = x.reshape(N, H, W, Dp, C).transpose(0, 4, 1, 2, 3).astype(np.float64)
    kw = {"count_include_pad": True} if op == "avg_pool3d" else {}
    yc, saved = getattr(P, op + "_forward")(xc, fsize, stride, (0, 0, 0), **kw)
    out = yc.shape[2:]
    assert out == tuple((n - k) // s + 1 for n, k, s in zip((H, W, Dp), fsize, stride))
    y, dy, dx = _run(engine, layer, dnn, x, None, rng)
    assert y.shape == (1, N, 1) + out + (C,)
    _close(y.reshape((N,) + out + (C,)), yc.transpose(0, 2, 3, 4, 1))
    dyc = dy.reshape((N,) + out + (C,)).transpose(0, 4, 1, 2, 3).astype(np.float64)
    (dxc,) = getattr(P, op + "_backward")(dyc, saved)
    _close(dx.reshape(N, H, W, Dp, C), dxc.transpose(0, 2, 3, 4, 1))


def test_pooling3d_properties(engine):
    dnn = D.Dnn(engine)
    src = D.Source(dnn, "x")
    for cls, ops in ((D.MaxPooling3D, ("max_pool3d",)), (D.MeanPooling3D, ("avg_pool3d",))):
        p = cls(src)
        assert (p.filter_size, p.stride_size) == ((3, 3, 3), (1, 1, 1))
        p.filter_size, p.stride_size = (2, 4, 5), (3, 1, 2)
        assert (p.filter_height, p.filter_width, p.filter_depth) == (2, 4, 5)
        assert (p.stride_height, p.stride_width, p.stride_depth) == (3, 1, 2)
        assert cls.OPS == ops and cls in D.LAYERS
        with pytest.raises(ParameterError, match=f"{cls.__name__} .*stride_size"):
            p.stride_size = (1, 0, 1)
        with pytest.raises(ParameterError, match=f"{cls.__name__} .*filter_size"):
            p.filter_size = (2, 2)


@pytest.mark.parametrize("kwargs, what", [({"filter_size": (0, 2, 2)}, "filter_size"),
                                          ({"stride_size": (1, 1, 0)}, "stride_size"),
                                          ({"filter_size": (2, 2)}, "filter_size")])
def test_pooling3d_bad_parameters_name_the_layer(kwargs, what):
    dnn = D.Dnn(neoml.MathEngine.ReferenceMathEngine())
    src = D.Source(dnn, "x")
    with pytest.raises(ParameterError, match=f"MaxPooling3D 'm3'.*{what}"):
        D.MaxPooling3D(src, name="m3", **kwargs)


def test_pooling3d_filter_larger_than_volume_names_the_layer(engine):
    dnn, _ = _net(engine, lambda s: D.MeanPooling3D(s, (2, 2, 4), name="mean3"))
    x = np.zeros((1, 2, 1, 3, 5, 3, 2), np.float32)
    with pytest.raises(ShapeError, match=r"MeanPooling3D 'mean3'.*\(2, 2, 4\).*\(3, 5, 3\)"):
        dnn.run({"x": _blob(engine, x)})


def test_float64_blob_is_refused_naming_the_layer():
    engine = neoml.MathEngine.ReferenceMathEngine()
    dnn, layer = _net(engine, lambda s: D.MaxPooling3D(s, 1, name="m3"))
    with pytest.raises(DTypeError, match="MaxPooling3D 'm3'"):
        layer._forward(engine.backend, [np.zeros((1, 1, 1, 2, 2, 2, 1))], True)


# ------------------------------------------------------------------ GlobalMaxPooling k
@pytest.mark.parametrize("k", [2, 5, 24])
def test_global_max_topk_vs_reference(engine, k):
    rng = np.random.default_rng(4)
    BL, BW, H, W, Dp, C = 2, 2, 3, 4, 2, 3
    x = rng.normal(0, 1, (BL, BW, 1, H, W, Dp, C)).astype(np.float32)
    x[0, 0, 0, 0, 0, 0, 0] = x[0, 0, 0, 1, 1, 1, 0]         # a tie: first one first
    dnn, layer = _net(engine, lambda s: D.GlobalMaxPooling(s, k, name="g"))
    N, HWD = BL * BW, H * W * Dp
    x4 = x.reshape(N, HWD, C).transpose(0, 2, 1).reshape(N, C, HWD, 1).astype(np.float64)
    y4, saved = P.global_max_pool_topk_forward(x4, k)
    y, dy, dx = _run(engine, layer, dnn, x, None, rng)
    assert y.shape == (BL, BW, 1, 1, k, 1, C)
    got = y.reshape(N, k, C)
    _close(got, y4.reshape(N, C, k).transpose(0, 2, 1))
    assert np.all(np.diff(got, axis=1) <= 0)                 # descending along Width
    (dx4,) = P.global_max_pool_topk_backward(
        dy.reshape(N, k, C).transpose(0, 2, 1).reshape(N, C, 1, k).astype(np.float64), saved)
    _close(dx, dx4.reshape(N, C, HWD).transpose(0, 2, 1).reshape(x.shape))


def test_global_max_count_larger_than_image_names_the_layer(engine):
    dnn, _ = _net(engine, lambda s: D.GlobalMaxPooling(s, 7, name="g7"))
    x = np.zeros((1, 1, 1, 2, 3, 1, 2), np.float32)
    with pytest.raises(ShapeError, match="GlobalMaxPooling 'g7'.*max_count 7.*6"):
        dnn.run({"x": _blob(engine, x)})


# ------------------------------------------------------------------ MaxOverTimePooling
@pytest.mark.parametrize("T, filter_len, stride_len", [(7, 3, 2), (9, 2, 3), (5, 5, 1),
                                                       (6, 0, 4), (4, -1, 1), (1, 1, 1)])
def test_max_over_time_vs_reference(engine, T, filter_len, stride_len):
    rng = np.random.default_rng(5)
    BW, LS, H, W, Dp, C = 2, 1, 1, 3, 1, 2
    x = rng.normal(0, 1, (T, BW, LS, H, W, Dp, C)).astype(np.float32)
    dnn, layer = _net(engine, lambda s: D.MaxOverTimePooling(s, filter_len, stride_len,
                                                             name="mot"))
    x3 = x.reshape(T, BW * LS, -1).astype(np.float64)
    y3, saved = P.max_over_time_forward(x3, filter_len, stride_len)
    To = 1 if filter_len <= 0 else (T - filter_len) // stride_len + 1
    y, dy, dx = _run(engine, layer, dnn, x, None, rng)
    assert y.shape == (To,) + x.shape[1:]
    _close(y.reshape(y3.shape), y3)
    (dx3,) = P.max_over_time_backward(dy.reshape(y3.shape).astype(np.float64), saved)
    _close(dx, dx3.reshape(x.shape))


def test_max_over_time_properties_and_errors(engine):
    dnn, layer = _net(engine, lambda s: D.MaxOverTimePooling(s, 3, 2, name="mot"))
    assert (layer.filter_len, layer.stride_len) == (3, 2)
    assert layer.OPS == ("max_over_time",) and D.MaxOverTimePooling in D.LAYERS
    layer.filter_len, layer.stride_len = 5, 1
    assert (layer.filter_len, layer.stride_len) == (5, 1)
    x = np.zeros((4, 1, 1, 1, 1, 1, 2), np.float32)
    with pytest.raises(ShapeError, match=r"MaxOverTimePooling 'mot'.*filter_len 5.*4"):
        dnn.run({"x": _blob(engine, x)})
    with pytest.raises(ParameterError, match="MaxOverTimePooling 'mot'.*stride_len"):
        layer.stride_len = 0
    with pytest.raises(ParameterError, match="MaxOverTimePooling 'mot'.*filter_len"):
        layer.filter_len = 2.5
    src = dnn.layers["x"]
    with pytest.raises(ParameterError, match="MaxOverTimePooling 'z'.*stride_len"):
        D.MaxOverTimePooling(src, 2, 0, name="z")


# ------------------------------------------------------------------ ProjectionPooling
@pytest.mark.parametrize("dimension", ["batch_length", "list_size", "height", "width",
                                       "depth", "channels"])
@pytest.mark.parametrize("original_size", [False, True])
def test_projection_pooling_vs_reference(engine, dimension, original_size):
    rng = np.random.default_rng(6)
    shape = (2, 1, 3, 4, 2, 3, 5)
    x = rng.normal(0, 1, shape).astype(np.float32)
    dnn, layer = _net(engine, lambda s: D.ProjectionPooling(s, dimension, original_size,
                                                            name="pp"))
    axis = D._pooling._DIMENSIONS.index(dimension)
    want = x.astype(np.float64).mean(axis=axis, keepdims=True)
    if original_size:
        want = np.broadcast_to(want, shape)
    y, dy, dx = _run(engine, layer, dnn, x, None, rng)
    assert y.shape == want.shape
    _close(y, want)
    A, L, B = int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:]))
    _, saved = P.projection_pool_forward(x.reshape(A, L, B).astype(np.float64),
                                         original_size)
    (dx3,) = P.projection_pool_backward(dy.reshape(A, -1, B).astype(np.float64), saved)
    _close(dx, dx3.reshape(shape))


def test_projection_pooling_properties_and_errors():
    dnn = D.Dnn(neoml.MathEngine.ReferenceMathEngine())
    src = D.Source(dnn, "x")
    p = D.ProjectionPooling(src, "width", name="pp")
    assert (p.dimension, p.original_size) == ("width", False)
    assert p.OPS == ("projection_pool",) and D.ProjectionPooling in D.LAYERS
    p.dimension, p.original_size = "channels", True
    assert (p.dimension, p.original_size) == ("channels", True)
    with pytest.raises(ParameterError, match="ProjectionPooling 'pp'.*dimension"):
        p.dimension = "time"
    with pytest.raises(ParameterError, match="ProjectionPooling 'pp'.*original_size"):
        p.original_size = 1
    with pytest.raises(ParameterError, match="ProjectionPooling 'q'.*dimension"):
        D.ProjectionPooling(src, "rows", name="q")


@pytest.mark.parametrize("make", [
    lambda s: D.MaxPooling(s, 2, name="L"), lambda s: D.MeanPooling3D(s, 1, name="L"),
    lambda s: D.GlobalMaxPooling(s, 2, name="L"), lambda s: D.GlobalSumPooling(s, name="L"),
    lambda s: D.MaxOverTimePooling(s, 2, 1, name="L"),
    lambda s: D.ProjectionPooling(s, "width", name="L")])
def test_wrong_blob_rank_names_the_layer(make):
    engine = neoml.MathEngine.ReferenceMathEngine()
    dnn, layer = _net(engine, make)
    with pytest.raises(ShapeError, match=f"{type(layer).__name__} 'L'.*7-D blob.*\\(4, 4, 4\\)"):
        layer._forward(engine.backend, [np.zeros((4, 4, 4), np.float32)], True)


def test_learn_through_the_new_poolings(engine):
    """Conv -> MaxPooling3D -> GlobalMaxPooling(3) -> ProjectionPooling -> MaxOverTime
    -> EuclideanLoss: the gradient reaches the filters and the loss goes down."""
    rng = np.random.default_rng(7)
    dnn = D.Dnn(engine, neoml.Random.Random(3))
    src, lab = D.Source(dnn, "x"), D.Source(dnn, "t")
    conv = D.Conv(src, 2, (3, 3), padding_size=(1, 1), is_zero_free_term=False, name="c")
    p3 = D.MaxPooling3D(conv, (2, 2, 1), (1, 1, 1), name="p3")
    top = D.GlobalMaxPooling(p3, 3, name="top")
    proj = D.ProjectionPooling(top, "width", name="proj")
    mot = D.MaxOverTimePooling(proj, 2, 1, name="mot")
    D.EuclideanLoss((mot, lab), name="loss")
    dnn.solver = D.SimpleGradient(engine, learning_rate=0.05, moment_decay_rate=0.0)
    x = rng.normal(0, 1, (3, 2, 1, 4, 4, 1, 2)).astype(np.float32)
    t = rng.normal(0, 1, (2, 2, 1, 1, 1, 1, 2)).astype(np.float32)
    inputs = {"x": _blob(engine, x), "t": _blob(engine, t)}
    dnn.run(inputs)
    w0, loss0 = conv.filter.asarray(), dnn.layers["loss"].last_loss
    for _ in range(5):
        dnn.learn(inputs)
    assert not np.allclose(conv.filter.asarray(), w0)
    dnn.run(inputs)
    assert dnn.layers["loss"].last_loss < loss0
