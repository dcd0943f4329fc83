"""neoml.Dnn pooling layers against refnn's float64 reference pool ops, on every engine.

Blobs are channels-last (N, H, W, C); the reference ops are NCHW, so the test
converts with NumPy transposes and compares the forward output and the input gradient
(the layer protocol: ``_forward`` then ``_backward``).
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import ParameterError, ShapeError
from refnn.ops import pool as P

RTOL, ATOL = 1e-4, 1e-5

CASES = [  # (layer, ref op, extra ref kwargs, N, H, W, C, filter, stride)
    ("MaxPooling", "max_pool2d", {}, 2, 5, 6, 3, (3, 3), (1, 1)),      # overlapping
    ("MaxPooling", "max_pool2d", {}, 3, 7, 5, 2, (3, 2), (2, 1)),      # overlapping
    ("MaxPooling", "max_pool2d", {}, 1, 4, 4, 1, (2, 2), (2, 2)),
    ("MeanPooling", "avg_pool2d", {"count_include_pad": True}, 2, 5, 6, 3, (3, 3), (1, 1)),
    ("MeanPooling", "avg_pool2d", {"count_include_pad": True}, 3, 8, 7, 2, (2, 3), (3, 2)),
]


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _net(engine, make):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    layer = make(src)
    neoml.Dnn.Sink(layer, name="out")
    return dnn, layer


def _run(engine, layer, dnn, x, dy):
    """(forward via dnn.run, dx via the layer protocol) as host arrays."""
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    be = engine.backend
    layer._forward(be, [be.asarray(x)], True)
    (dx,) = layer._backward(be, [be.asarray(dy)], [True])
    return got, be.to_host(dx)


def _nchw(a):
    return a.transpose(0, 3, 1, 2).astype(np.float64)


@pytest.mark.parametrize("case", CASES)
def test_window_pooling_vs_reference(engine, case):
    cls, op, kw, N, H, W, C, fsize, stride = case
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (1, N, 1, H, W, 1, C)).astype(np.float32)
    dnn, layer = _net(engine, lambda s: getattr(neoml.Dnn, cls)(s, fsize, stride, name="p"))
    y4, saved = getattr(P, op + "_forward")(_nchw(x.reshape(N, H, W, C)), fsize, stride,
                                            (0, 0), **kw)
    Ho, Wo = y4.shape[2:]
    assert (Ho, Wo) == ((H - fsize[0]) // stride[0] + 1, (W - fsize[1]) // stride[1] + 1)
    dy = rng.normal(0, 1, (1, N, 1, Ho, Wo, 1, C)).astype(np.float32)
    got, dx = _run(engine, layer, dnn, x, dy)
    assert got.shape == (1, N, 1, Ho, Wo, 1, C)
    np.testing.assert_allclose(got.reshape(N, Ho, Wo, C), y4.transpose(0, 2, 3, 1),
                               rtol=RTOL, atol=ATOL)
    (dx4,) = getattr(P, op + "_backward")(_nchw(dy.reshape(N, Ho, Wo, C)), saved)
    np.testing.assert_allclose(dx.reshape(N, H, W, C), dx4.transpose(0, 2, 3, 1),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("cls, op", [("GlobalMaxPooling", "global_max_pool"),
                                     ("GlobalMeanPooling", "global_mean_pool"),
                                     ("GlobalSumPooling", "global_sum_pool")])
def test_global_pooling_vs_reference(engine, cls, op):
    rng = np.random.default_rng(2)
    BL, BW, H, W, D, C = 2, 3, 4, 5, 2, 3
    x = rng.normal(0, 1, (BL, BW, 1, H, W, D, C)).astype(np.float32)
    args = (1,) if cls == "GlobalMaxPooling" else ()    # max_count: required (spec)
    dnn, layer = _net(engine, lambda s: getattr(neoml.Dnn, cls)(s, *args, name="g"))
    N = BL * BW
    x4 = x.reshape(N, H * W * D, C).transpose(0, 2, 1).reshape(N, C, H * W * D, 1)
    y4, saved = getattr(P, op + "_forward")(x4.astype(np.float64))
    dy = rng.normal(0, 1, (BL, BW, 1, 1, 1, 1, C)).astype(np.float32)
    got, dx = _run(engine, layer, dnn, x, dy)
    assert got.shape == (BL, BW, 1, 1, 1, 1, C)
    np.testing.assert_allclose(got.reshape(N, C), y4.reshape(N, C), rtol=RTOL, atol=ATOL)
    (dx4,) = getattr(P, op + "_backward")(dy.reshape(N, C, 1, 1).astype(np.float64), saved)
    want = dx4.reshape(N, C, H * W * D).transpose(0, 2, 1).reshape(x.shape)
    np.testing.assert_allclose(dx, want, rtol=RTOL, atol=ATOL)


def test_properties_and_defaults(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    for cls in (neoml.Dnn.MaxPooling, neoml.Dnn.MeanPooling):
        p = cls(src)
        assert (p.filter_size, p.stride_size) == ((3, 3), (1, 1))
        p.filter_size, p.stride_size = (2, 4), (3, 1)
        assert (p.filter_height, p.filter_width, p.stride_height, p.stride_width) == \
            (2, 4, 3, 1)
        assert cls.OPS == (("max_pool2d",) if cls is neoml.Dnn.MaxPooling
                           else ("avg_pool2d",))
    g = neoml.Dnn.GlobalMaxPooling(src, 1)
    assert g.max_count == 1 and g.OPS == ("global_max_pool", "global_max_pool_topk")
    g.max_count = 4
    assert g.max_count == 4
    for cls in (neoml.Dnn.MaxPooling, neoml.Dnn.MeanPooling, neoml.Dnn.GlobalMaxPooling,
                neoml.Dnn.GlobalMeanPooling, neoml.Dnn.GlobalSumPooling):
        assert cls in neoml.Dnn.LAYERS


@pytest.mark.parametrize("kwargs, what", [({"filter_size": (0, 2)}, "filter_size"),
                                          ({"stride_size": (1, 0)}, "stride_size"),
                                          ({"filter_size": (2, 2, 2)}, "filter_size"),
                                          ({"stride_size": 1.5}, "stride_size")])
def test_bad_parameters_name_the_layer(kwargs, what):
    dnn = neoml.Dnn.Dnn(neoml.MathEngine.ReferenceMathEngine())
    src = neoml.Dnn.Source(dnn, "x")
    with pytest.raises(ParameterError, match=f"MaxPooling 'mp'.*{what}"):
        neoml.Dnn.MaxPooling(src, name="mp", **kwargs)


def test_filter_larger_than_image_names_the_layer(engine):
    dnn, _ = _net(engine, lambda s: neoml.Dnn.MeanPooling(s, (4, 2), name="mean"))
    x = np.zeros((1, 2, 1, 3, 5, 1, 2), np.float32)
    with pytest.raises(ShapeError, match=r"MeanPooling 'mean'.*\(4, 2\).*\(3, 5\)"):
        dnn.run({"x": _blob(engine, x)})


def test_global_max_count_must_be_a_positive_int():
    dnn = neoml.Dnn.Dnn(neoml.MathEngine.ReferenceMathEngine())
    src = neoml.Dnn.Source(dnn, "x")
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ParameterError, match="GlobalMaxPooling 'g'.*max_count"):
            neoml.Dnn.GlobalMaxPooling(src, bad, name="g")
    g = neoml.Dnn.GlobalMaxPooling(src, 3, name="g")
    with pytest.raises(ParameterError, match="GlobalMaxPooling 'g'.*max_count"):
        g.max_count = 0
