"""neon Deconvolution / Deconv against refnn's float64 reference conv_transpose2d, on
every backend.

neon tensors are (K*P*Q, N) and the deconvolution's W is (C*R*S, K) -- the filters of
the Convolution (C -> K) it transposes -- so the reference op gets x (N, K, P, Q) and
w = W^T reshaped (K, C, R, S); the output is (C*H*W, N).
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.neon.callbacks import Callbacks
from refnn.neon.data import ArrayIterator
from refnn.neon.initializers import Array, Constant, Gaussian
from refnn.neon.layers import (Convolution, Deconv, Deconvolution, GeneralizedCost,
                               Sequential)
from refnn.neon.models import Model
from refnn.neon.optimizers import GradientDescentMomentum
from refnn.neon.transforms import Rectlin, SumSquared
from refnn.ops import conv as K_ops

RTOL, ATOL = 1e-3, 1e-4
N = 6

CASES = [  # (K, P, Q, (R, S, C), strides, padding, dilation)
    (3, 4, 5, (3, 3, 2), 1, 0, 1),
    (2, 3, 4, (3, 2, 3), {"str_h": 2, "str_w": 3}, {"pad_h": 1}, {"dil_w": 2}),
    (1, 5, 3, (2, 4, 2), 2, {"pad_h": 1, "pad_w": 2}, 1),
]


def _pairs(strides, padding, dilation):
    def hw(v, keys, d):
        return (v, v) if isinstance(v, int) else tuple(v.get(k, d) for k in keys)
    return (hw(strides, ("str_h", "str_w"), 1), hw(padding, ("pad_h", "pad_w"), 0),
            hw(dilation, ("dil_h", "dil_w"), 1))


@pytest.mark.parametrize("case", CASES)
def test_deconvolution_matches_reference(nbe, case):
    K, P, Q, (R, S, C), strides, padding, dilation = case
    rs = np.random.RandomState(0)
    x4 = rs.randn(N, K, P, Q)
    w4 = rs.randn(K, C, R, S) * 0.5
    layer = Deconvolution((R, S, C), strides, padding, dilation,
                          init=Array(w4.reshape(K, -1).T), name="deconv")
    layer.configure((K, P, Q))
    layer.allocate()
    stride, pad, dil = _pairs(strides, padding, dilation)
    y4, saved = K_ops.conv_transpose2d_forward(x4, w4, stride, pad, dil)
    assert layer.out_shape == y4.shape[1:]
    assert layer.weight_shape == (C * R * S, K)
    y = layer.fprop(nbe.array(x4.reshape(N, -1).T)).get()
    np.testing.assert_allclose(y, y4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    err4 = rs.randn(*y4.shape)
    dx = layer.bprop(nbe.array(err4.reshape(N, -1).T)).get()
    dx4, dw4 = K_ops.conv_transpose2d_backward(err4, saved)
    np.testing.assert_allclose(dx, dx4.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(layer.dW.get(), dw4.reshape(K, -1).T, rtol=RTOL, atol=ATOL)
    assert Deconvolution.OPS == ("conv_transpose2d",)


def test_deconvolution_is_the_adjoint_of_convolution(nbe):
    """With the same W, <Convolution(z), x> = <z, Deconvolution(x)>."""
    rs = np.random.RandomState(3)
    C, H, W, R, S, K = 2, 7, 6, 3, 2, 3
    Wn = rs.randn(C * R * S, K)
    conv = Convolution((R, S, K), strides=2, padding=1, init=Array(Wn), name="c")
    conv.configure((C, H, W))
    conv.allocate()
    deconv = Deconvolution((R, S, C), strides=2, padding=1, init=Array(Wn), name="d")
    deconv.configure(conv.out_shape)
    deconv.allocate()
    assert deconv.out_shape == (C, H, W)
    z = rs.randn(C * H * W, N)
    x = rs.randn(int(np.prod(conv.out_shape)), N)
    cz = conv.fprop(nbe.array(z)).get()
    dx = deconv.fprop(nbe.array(x)).get()
    np.testing.assert_allclose(np.sum(cz * x), np.sum(z * dx), rtol=1e-3)


def test_deconv_compound_adds_one_bias_per_output_channel(nbe):
    K, P, Q, R, S, C = 2, 3, 3, 2, 2, 3
    rs = np.random.RandomState(1)
    x4, w4, b = rs.randn(N, K, P, Q), rs.randn(K, C, R, S), rs.randn(C)
    layers = Deconv((R, S, C), init=Array(w4.reshape(K, -1).T), strides=2,
                    bias=Array(b[:, None]), activation=Rectlin(), name="d")
    assert [l.name for l in layers] == ["d", "d_bias", "d_Rectlin"]
    model = Sequential(layers)
    model.configure((K, P, Q))
    model.allocate()
    y = model.fprop(nbe.array(x4.reshape(N, -1).T)).get()
    y4, _ = K_ops.conv_transpose2d_forward(x4, w4, 2)
    expected = np.maximum(y4 + b[None, :, None, None], 0)
    assert y4.shape[1:] == (C, 6, 6)
    np.testing.assert_allclose(y, expected.reshape(N, -1).T, rtol=RTOL, atol=ATOL)


def test_bad_geometry_names_the_layer(nbe):
    layer = Deconvolution((1, 3, 2), padding={"pad_h": 1}, init=Gaussian(), name="d1")
    with pytest.raises(ShapeError, match="d1 \\(Deconvolution\\).*-1 pixels along H"):
        layer.configure((3, 1, 8))
    layer = Deconvolution((3, 3, 2), init=Gaussian(), name="d3")
    with pytest.raises(ShapeError, match="d3.*\\(K, P, Q\\)"):
        layer.configure(12)
    layer.configure((3, 4, 4))
    layer.allocate()
    with pytest.raises(ShapeError, match="d3.*inputs must have shape \\(48, batch\\)"):
        layer.fprop(nbe.array(np.ones((2 * 16, N))))
    with pytest.raises(ParameterError, match="Deconvolution.*fshape"):
        Deconvolution((3, 3), init=Gaussian())
    with pytest.raises(ParameterError, match="strides"):
        Deconvolution((3, 3, 2), strides={"str_x": 2}, init=Gaussian())
    with pytest.raises(ParameterError, match="Deconvolution.*strides"):
        Deconvolution((3, 3, 2), strides=0, init=Gaussian())
    with pytest.raises(ParameterError, match="bsum"):
        Deconvolution((3, 3, 2), init=Gaussian(), bsum=True)


def test_training_step_changes_the_weights(nbe):
    rs = np.random.RandomState(2)
    X = rs.randn(12, 2 * 3 * 3).astype(np.float32)
    Y = rs.randn(12, 3 * 5 * 5).astype(np.float32)
    train = ArrayIterator(X, Y, make_onehot=False, lshape=(2, 3, 3))
    layers = Deconv((3, 3, 3), init=Gaussian(scale=0.3), bias=Constant(0.0), name="d")
    model = Model(layers=Sequential(layers))
    cost = GeneralizedCost(costfunc=SumSquared())
    model.initialize(train, cost)
    w0, b0 = layers[0].W.get().copy(), layers[1].W.get().copy()
    opt = GradientDescentMomentum(0.02, momentum_coef=0.0)
    model.fit(train, optimizer=opt, num_epochs=2, cost=cost, callbacks=Callbacks(model))
    assert not np.allclose(layers[0].W.get(), w0)
    assert not np.allclose(layers[1].W.get(), b0)


def test_first_convolution_of_a_model_skips_dx(nbe):
    """Sequential marks its first layer need_dx=False: Convolution asks conv2d for dW
    only (deltas None); the second one still returns its deltas. dW equals the
    reference's either way."""
    rs = np.random.RandomState(4)
    C, H, W = 2, 6, 5
    w1, w2 = rs.randn(3, C, 3, 3) * 0.5, rs.randn(2, 3, 2, 2) * 0.5
    first = Convolution((3, 3, 3), padding=1, init=Array(w1.reshape(3, -1).T), name="c1")
    second = Convolution((2, 2, 2), init=Array(w2.reshape(2, -1).T), name="c2")
    model = Sequential([first, second])
    model.configure((C, H, W))
    model.allocate()
    assert (first.need_dx, second.need_dx) == (False, True)
    x4 = rs.randn(N, C, H, W)
    y = model.fprop(nbe.array(x4.reshape(N, -1).T)).get()
    y1, s1 = K_ops.conv2d_forward(x4, w1, 1, 1)
    y2, s2 = K_ops.conv2d_forward(y1, w2)
    np.testing.assert_allclose(y, y2.reshape(N, -1).T, rtol=RTOL, atol=ATOL)
    err4 = rs.randn(*y2.shape)
    model.bprop(nbe.array(err4.reshape(N, -1).T))
    d1, dw2 = K_ops.conv2d_backward(err4, s2)
    _, dw1 = K_ops.conv2d_backward(d1, s1)
    assert first.deltas is None and second.deltas is not None
    np.testing.assert_allclose(first.dW.get(), dw1.reshape(3, -1).T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(second.dW.get(), dw2.reshape(2, -1).T, rtol=RTOL, atol=ATOL)
