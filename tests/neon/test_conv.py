"""neon Convolution / Conv against refnn's float64 reference conv2d, on every backend.

neon tensors are (C*H*W, N) (CHWN) and the filters W are (C*R*S, K); the reference op
is NCHW with filters (K, C, R, S), so the test converts with NumPy transposes and
compares fprop, the deltas and dW, then checks the per-channel bias of the compound
Conv and that a training step changes the weights.
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.neon.data import ArrayIterator
from refnn.neon.initializers import Array, Constant, Gaussian
from refnn.neon.layers import Conv, Convolution, GeneralizedCost, Sequential
from refnn.neon.models import Model
from refnn.neon.optimizers import GradientDescentMomentum
from refnn.neon.transforms import Rectlin, SumSquared
from refnn.ops import conv as K_ops

RTOL, ATOL = 1e-3, 1e-4
N = 8

CASES = [  # (C, H, W, (R, S, K), strides, padding, dilation)
    (3, 5, 6, (3, 3, 4), {}, {}, {}),
    (2, 7, 5, (3, 2, 3), {"str_h": 2, "str_w": 1}, {"pad_h": 1, "pad_w": 2}, 1),
    (1, 8, 8, (2, 3, 2), 1, {"pad_h": 1}, {"dil_h": 2, "dil_w": 2}),
]


def _pairs(strides, padding, dilation):
    def hw(v, keys, d):
        return (v, v) if isinstance(v, int) else tuple(v.get(k, d) for k in keys)
    return (hw(strides, ("str_h", "str_w"), 1), hw(padding, ("pad_h", "pad_w"), 0),
            hw(dilation, ("dil_h", "dil_w"), 1))


@pytest.mark.parametrize("case", CASES)
def test_convolution_matches_reference_conv2d(nbe, case):
    C, H, W, (R, S, K), strides, padding, dilation = case
    rs = np.random.RandomState(0)
    x4 = rs.randn(N, C, H, W)
    w4 = rs.randn(K, C, R, S) * 0.5
    Wneon = w4.reshape(K, -1).T                           # (C*R*S, K)
    layer = Convolution((R, S, K), strides, padding, dilation, init=Array(Wneon),
                        name="conv")
    layer.configure((C, H, W))
    layer.allocate()
    stride, pad, dil = _pairs(strides, padding, dilation)
    y4, saved = K_ops.conv2d_forward(x4, w4, stride, pad, dil)
    assert layer.out_shape == y4.shape[1:]
    y = layer.fprop(nbe.array(x4.reshape(N, -1).T)).get()
    np.testing.assert_allclose(y, y4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    err4 = rs.randn(*y4.shape)
    dx = layer.bprop(nbe.array(err4.reshape(N, -1).T)).get()
    dx4, dw4 = K_ops.conv2d_backward(err4, saved)
    np.testing.assert_allclose(dx, dx4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(layer.dW.get(), dw4.reshape(K, -1).T, rtol=RTOL, atol=ATOL)
    assert Convolution.OPS == ("conv2d",)


def test_conv_compound_adds_one_bias_per_filter(nbe):
    C, H, W, R, S, K = 2, 4, 4, 3, 3, 3
    rs = np.random.RandomState(1)
    x4, w4, b = rs.randn(N, C, H, W), rs.randn(K, C, R, S), rs.randn(K)
    layers = Conv((R, S, K), init=Array(w4.reshape(K, -1).T), padding=1,
                  bias=Array(b[:, None]), activation=Rectlin(), name="c")
    assert [l.name for l in layers] == ["c", "c_bias", "c_Rectlin"]
    model = Sequential(layers)
    model.configure((C, H, W))
    model.allocate()
    y = model.fprop(nbe.array(x4.reshape(N, -1).T)).get()
    y4, _ = K_ops.conv2d_forward(x4, w4, 1, 1, 1)
    expected = np.maximum(y4 + b[None, :, None, None], 0)
    np.testing.assert_allclose(y, expected.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    err = rs.randn(K * H * W, N)
    model.bprop(nbe.array(err))
    bias = layers[1]
    mask = (y4 + b[None, :, None, None] > 0).reshape(N, -1).T
    db = (err * mask).reshape(K, H * W, N).sum(axis=(1, 2))
    np.testing.assert_allclose(bias.dW.get()[:, 0], db, rtol=RTOL, atol=ATOL)


def test_bad_geometry_names_the_layer(nbe):
    layer = Convolution((5, 5, 2), padding=1, init=Gaussian(), name="c5")
    with pytest.raises(ShapeError, match="c5.*kernel spans 5.*only 4"):
        layer.configure((3, 2, 8))
    layer = Convolution((3, 3, 2), init=Gaussian(), name="c3")
    with pytest.raises(ShapeError, match="c3.*\\(C, H, W\\)"):
        layer.configure(12)
    layer.configure((3, 4, 4))
    layer.allocate()
    with pytest.raises(ShapeError, match="c3.*inputs must have shape \\(48, batch\\)"):
        layer.fprop(nbe.array(np.ones((2 * 16, N))))      # 2 channels instead of 3
    with pytest.raises(ParameterError, match="fshape"):
        Convolution((3, 3), init=Gaussian())
    with pytest.raises(ParameterError, match="strides"):
        Convolution((3, 3, 2), strides={"str_x": 2}, init=Gaussian())
    with pytest.raises(ParameterError, match="strides"):
        Convolution((3, 3, 2), strides=0, init=Gaussian())


def test_training_step_changes_the_weights(nbe):
    rs = np.random.RandomState(2)
    X = rs.randn(16, 2 * 5 * 5).astype(np.float32)
    Y = rs.randn(16, 3 * 3 * 3).astype(np.float32)
    train = ArrayIterator(X, Y, make_onehot=False, lshape=(2, 5, 5))
    layers = Conv((3, 3, 3), init=Gaussian(scale=0.3), bias=Constant(0.0), name="c")
    model = Model(layers=Sequential(layers))
    cost = GeneralizedCost(costfunc=SumSquared())
    model.initialize(train, cost)
    w0, b0 = layers[0].W.get().copy(), layers[1].W.get().copy()
    opt = GradientDescentMomentum(0.05, momentum_coef=0.0)
    from refnn.neon.callbacks import Callbacks
    model.fit(train, optimizer=opt, num_epochs=2, cost=cost, callbacks=Callbacks(model))
    assert not np.allclose(layers[0].W.get(), w0)
    assert not np.allclose(layers[1].W.get(), b0)
