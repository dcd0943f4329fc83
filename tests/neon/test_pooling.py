"""neon Pooling against refnn's float64 reference pool ops, on every backend.

neon tensors are (C*H*W, N) (CHWN); the reference ops are NCHW, so the test converts
with NumPy transposes and compares fprop and the deltas of bprop; then checks neon's
defaults (stride = window), fshape='all', a Sequential model and the errors.
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.neon.initializers import Array
from refnn.neon.layers import Convolution, Pooling, Sequential
from refnn.ops import pool as P

RTOL, ATOL = 1e-4, 1e-5
N = 8

CASES = [  # (C, H, W, fshape, op, strides, padding) -> (kernel, stride, pad)
    (3, 5, 6, 3, "max", 1, {}, ((3, 3), (1, 1), (0, 0))),                # overlapping
    (2, 7, 5, (3, 2), "max", {"str_h": 2, "str_w": 1}, {"pad_h": 1, "pad_w": 1},
     ((3, 2), (2, 1), (1, 1))),
    (2, 6, 6, 2, "max", {}, {}, ((2, 2), (2, 2), (0, 0))),                # stride = window
    (3, 5, 6, 3, "avg", 1, 1, ((3, 3), (1, 1), (1, 1))),                  # overlap + pad
    (2, 7, 5, (3, 2), "avg", {"str_w": 1}, {"pad_h": 2},
     ((3, 2), (3, 1), (2, 0))),
]


def _ref(op, x4, kernel, stride, pad):
    if op == "max":
        return P.max_pool2d_forward(x4, kernel, stride, pad), P.max_pool2d_backward
    return (P.avg_pool2d_forward(x4, kernel, stride, pad, count_include_pad=False),
            P.avg_pool2d_backward)


def _fprop_bprop(nbe, layer, x4, err4):
    y = layer.fprop(nbe.array(x4.reshape(N, -1).T)).get()
    dx = layer.bprop(nbe.array(err4.reshape(N, -1).T)).get()
    return y, dx


@pytest.mark.parametrize("case", CASES)
def test_pooling_matches_reference_ops(nbe, case):
    C, H, W, fshape, op, strides, padding, (kernel, stride, pad) = case
    rs = np.random.RandomState(0)
    x4 = rs.randn(N, C, H, W)
    layer = Pooling(fshape, op=op, strides=strides, padding=padding, name="pool")
    layer.configure((C, H, W))
    layer.allocate()
    (y4, saved), backward = _ref(op, x4, kernel, stride, pad)
    assert layer.out_shape == y4.shape[1:]
    err4 = rs.randn(*y4.shape)
    y, dx = _fprop_bprop(nbe, layer, x4, err4)
    np.testing.assert_allclose(y, y4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    (dx4,) = backward(err4, saved)
    np.testing.assert_allclose(dx, dx4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op, fwd, bwd", [
    ("max", P.global_max_pool_forward, P.global_max_pool_backward),
    ("avg", P.global_mean_pool_forward, P.global_mean_pool_backward)])
def test_fshape_all_is_global_pooling(nbe, op, fwd, bwd):
    C, H, W = 3, 4, 5
    rs = np.random.RandomState(1)
    x4 = rs.randn(N, C, H, W)
    layer = Pooling("all", op=op, name="gp")
    layer.configure((C, H, W))
    assert layer.out_shape == (C, 1, 1)
    y4, saved = fwd(x4)
    err4 = rs.randn(N, C, 1, 1)
    y, dx = _fprop_bprop(nbe, layer, x4, err4)
    np.testing.assert_allclose(y, y4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, bwd(err4, saved)[0].reshape(N, -1).T, rtol=RTOL,
                               atol=ATOL)


def test_fshape_all_with_padding_uses_the_window_op(nbe):
    C, H, W = 2, 4, 3
    rs = np.random.RandomState(2)
    x4 = rs.randn(N, C, H, W)
    layer = Pooling("all", op="avg", padding=1, strides=1, name="gp")
    layer.configure((C, H, W))
    y4, saved = P.avg_pool2d_forward(x4, (H, W), 1, 1)
    assert layer.out_shape == y4.shape[1:] == (C, 3, 3)
    err4 = rs.randn(*y4.shape)
    y, dx = _fprop_bprop(nbe, layer, x4, err4)
    np.testing.assert_allclose(y, y4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, P.avg_pool2d_backward(err4, saved)[0].reshape(N, -1).T,
                               rtol=RTOL, atol=ATOL)


def test_pooling_after_convolution_in_a_model(nbe):
    C, H, W, K = 2, 6, 6, 3
    rs = np.random.RandomState(3)
    w = rs.randn(C * 9, K)
    model = Sequential([Convolution((3, 3, K), padding=1, init=Array(w), name="c"),
                        Pooling(2, name="p")])
    model.configure((C, H, W))
    model.allocate()
    assert model.layers[1].out_shape == (K, 3, 3)
    x = rs.randn(C * H * W, N)
    y = model.fprop(nbe.array(x)).get()
    conv = model.layers[0].outputs.get().T.reshape(N, K, H, W)
    y4, _ = P.max_pool2d_forward(conv, 2, 2)
    np.testing.assert_allclose(y, y4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    assert Pooling.OPS == ("max_pool2d", "avg_pool2d", "global_max_pool",
                           "global_mean_pool", "max_pool3d", "avg_pool3d")


@pytest.mark.parametrize("kwargs, match", [
    ({"fshape": 2, "op": "min"}, "op must be 'max' or 'avg'"),
    ({"fshape": (2, 2, 2, 2)}, "fshape"),
    ({"fshape": 2, "strides": {"str_d": 0}}, "strides must be >= 1"),
    ({"fshape": 2, "padding": {"pad_d": 1.5}}, "padding values must be ints"),
    ({"fshape": 0}, "fshape must be >= 1"),
    ({"fshape": "some"}, "fshape"),
    ({"fshape": 2, "strides": {"str_x": 1}}, "unknown keys"),
    ({"fshape": 2, "strides": 0}, "strides must be >= 1"),
])
def test_bad_parameters_name_the_layer(kwargs, match):
    with pytest.raises(ParameterError, match=f"pl.*{match}"):
        Pooling(name="pl", **kwargs)


def test_bad_geometry_names_the_layer(nbe):
    with pytest.raises(ShapeError, match=r"pl.*kernel \(5, 5\).*larger"):
        Pooling(5, name="pl").configure((3, 4, 8))
    with pytest.raises(ParameterError, match=r"pl.*padding.*\(2, 2\)"):
        Pooling(2, padding=2, name="pl").configure((3, 4, 4))
    with pytest.raises(ShapeError, match=r"pl.*\(C, H, W\)"):
        Pooling(2, name="pl").configure(12)
    layer = Pooling(2, name="pl").configure((3, 4, 4))
    with pytest.raises(ShapeError, match=r"pl \(Pooling\).*\(48, batch\)"):
        layer.fprop(nbe.array(np.zeros((47, N))))


CASES_3D = [  # (C, D, H, W, fshape, op, strides, padding) -> (kernel, stride, pad), out_shape
    (2, 4, 5, 6, (2, 3, 3), "max", 1, {"pad_d": 1}, ((2, 3, 3), (2, 1, 1), (1, 0, 0)),
     (2, 3, 3, 4)),                                # an int stride leaves str_d = T
    (2, 4, 5, 6, (2, 3, 3), "max", {"str_d": 1, "str_h": 1, "str_w": 2}, {"pad_d": 1},
     ((2, 3, 3), (1, 1, 2), (1, 0, 0)), (2, 5, 3, 2)),
    (3, 5, 4, 4, (3, 2, 2), "avg", {"str_d": 2}, {"pad_d": 1, "pad_h": 1},
     ((3, 2, 2), (2, 2, 2), (1, 1, 0)), (3, 3, 3, 2)),
    (2, 3, 6, 5, 2, "max", {}, {}, ((1, 2, 2), (1, 2, 2), (0, 0, 0)), (2, 3, 3, 2)),
    (2, 3, 4, 4, (3, 2, 2), "avg", {}, 1, ((3, 2, 2), (3, 2, 2), (0, 1, 1)), (2, 3, 3)),
]


@pytest.mark.parametrize("case", CASES_3D)
def test_pooling_3d_samples_match_reference_ops(nbe, case):
    C, D, H, W, fshape, op, strides, padding, (kernel, stride, pad), out_shape = case
    rs = np.random.RandomState(5)
    x5 = rs.randn(N, C, D, H, W)
    layer = Pooling(fshape, op=op, strides=strides, padding=padding, name="pool3")
    layer.configure((C, D, H, W))
    layer.allocate()
    if op == "max":
        y5, saved = P.max_pool3d_forward(x5, kernel, stride, pad)
        backward = P.max_pool3d_backward
    else:
        y5, saved = P.avg_pool3d_forward(x5, kernel, stride, pad, count_include_pad=False)
        backward = P.avg_pool3d_backward
    assert layer.out_shape == out_shape            # (C, M, P, Q), or (C, P, Q) if M = 1
    assert int(np.prod(out_shape)) == int(np.prod(y5.shape[1:]))
    err5 = rs.randn(*y5.shape)
    y, dx = _fprop_bprop(nbe, layer, x5, err5)
    np.testing.assert_allclose(y, y5.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    (dx5,) = backward(err5, saved)
    np.testing.assert_allclose(dx, dx5.reshape(N, -1).T, rtol=RTOL, atol=ATOL)


def test_depth_window_needs_volume_samples():
    with pytest.raises(ShapeError, match=r"pl \(Pooling\).*T = 2.*\(C, D, H, W\)"):
        Pooling((2, 2, 2), name="pl").configure((3, 4, 4))
    with pytest.raises(ShapeError, match=r"pl \(Pooling\).*pad_d = 1"):
        Pooling(2, padding={"pad_d": 1}, name="pl").configure((3, 4, 4))
    with pytest.raises(ShapeError, match=r"pl \(Pooling\).*kernel \(3, 2, 2\).*larger"):
        Pooling((3, 2, 2), name="pl").configure((1, 2, 4, 4))
    with pytest.raises(ShapeError, match=r"pl \(Pooling\).*\(C, D, H, W\)"):
        Pooling(2, name="pl").configure((1, 2, 2, 4, 4))
