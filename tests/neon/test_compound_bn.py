"""neon compound layers with batch_norm=True (Conv, Affine, Deconv), on every backend.

As in neon, ``batch_norm=True`` puts a BatchNorm (named "<name>_bnorm") where the Bias
would be: Convolution -> BatchNorm -> Activation. Each compound is run through a
Sequential and compared with refnn's float64 reference ops chained by hand (conv2d /
linear / conv_transpose2d -> batch_norm over each channel's (H*W*N) values -> relu):
outputs, deltas, the filter gradient and gamma/beta gradients. Then a small Model with
two batch-normed compounds trains a few SGD steps and its cost goes down.
"""
import numpy as np
import pytest

from refnn.errors import ParameterError
from refnn.neon.callbacks import Callbacks
from refnn.neon.data import ArrayIterator
from refnn.neon.initializers import Array, Constant, Gaussian
from refnn.neon.layers import (Activation, Affine, BatchNorm, Bias, Conv, Convolution,
                               Deconv, Deconvolution, GeneralizedCost, Linear, Pooling,
                               Sequential)
from refnn.neon.models import Model
from refnn.neon.optimizers import GradientDescentMomentum
from refnn.neon.transforms import CrossEntropyMulti, Rectlin, Softmax
from refnn.ops import activation as A
from refnn.ops import conv as K_ops
from refnn.ops import dense as D
from refnn.ops import norm as NM

RTOL, ATOL = 2e-3, 2e-3
N = 8
EPS = 1e-3                    # neon BatchNorm's default eps


def _close(actual, expected):
    a = actual.get() if hasattr(actual, "get") else actual
    np.testing.assert_allclose(a, expected, rtol=RTOL, atol=ATOL)


def _bn_relu_ref(y4, gamma, beta):
    """Reference batch_norm over each channel of an (N, C, ...) array, then relu.
    Returns z4 and the saved state of both ops."""
    n, c = y4.shape[:2]
    rows = np.moveaxis(y4, 1, -1).reshape(-1, c)                  # (N*..., C)
    (bn, _, _), bn_saved = NM.batch_norm_forward(rows, gamma, beta, EPS)
    z, relu_saved = A.relu_forward(bn)
    z4 = np.moveaxis(z.reshape((n,) + y4.shape[2:] + (c,)), -1, 1)
    return z4, (bn_saved, relu_saved)


def _bn_relu_ref_back(dz4, saved):
    bn_saved, relu_saved = saved
    n, c = dz4.shape[:2]
    rows = np.moveaxis(dz4, 1, -1).reshape(-1, c)
    (dbn,) = A.relu_backward(rows, relu_saved)
    dy, dgamma, dbeta = NM.batch_norm_backward((dbn, None, None), bn_saved)
    dy4 = np.moveaxis(dy.reshape((n,) + dz4.shape[2:] + (c,)), -1, 1)
    return dy4, dgamma, dbeta


def _chwn(a4):
    """(N, C, ...) -> neon's (C*..., N)."""
    return a4.reshape(a4.shape[0], -1).T


def _set_bn(bn, gamma, beta):
    bn.gamma.set(gamma[:, None])
    bn.beta.set(beta[:, None])


# ------------------------------------------------------------------ structure
@pytest.mark.parametrize("make, first", [
    (lambda **k: Conv((3, 3, 4), init=Gaussian(), **k), Convolution),
    (lambda **k: Affine(5, init=Gaussian(), **k), Linear),
    (lambda **k: Deconv((2, 2, 3), init=Gaussian(), **k), Deconvolution)])
def test_batch_norm_replaces_the_bias(make, first):
    layers = make(batch_norm=True, activation=Rectlin(), name="blk")
    assert [type(l) for l in layers] == [first, BatchNorm, Activation]
    assert [l.name for l in layers] == ["blk", "blk_bnorm", "blk_Rectlin"]
    assert layers.batch_norm is True and layers.bias is None
    layers = make(batch_norm=True, name="nb")                  # no activation
    assert [l.name for l in layers] == ["nb", "nb_bnorm"]
    layers = make(bias=Constant(0.0), name="b")                # the default: Bias
    assert [type(l) for l in layers] == [first, Bias]
    assert not any(isinstance(l, BatchNorm) for l in make(name="plain"))


@pytest.mark.parametrize("make", [
    lambda **k: Conv((3, 3, 4), init=Gaussian(), **k),
    lambda **k: Affine(5, init=Gaussian(), **k),
    lambda **k: Deconv((2, 2, 3), init=Gaussian(), **k)])
def test_batch_norm_with_bias_names_the_layer(make):
    with pytest.raises(ParameterError, match=r"'blk2'.*batch_norm=True and bias=.*cannot "
                                             r"be combined"):
        make(bias=Constant(0.0), batch_norm=True, name="blk2")


# ------------------------------------------------------------------ vs the reference
@pytest.mark.parametrize("C, H, W, R, S, K, stride, pad", [
    (2, 6, 5, 3, 3, 4, 1, 1), (3, 7, 7, 2, 3, 3, 2, 0), (1, 4, 4, 4, 4, 2, 1, 0)])
def test_conv_batch_norm_matches_reference(nbe, C, H, W, R, S, K, stride, pad):
    rs = np.random.RandomState(0)
    x4, w4 = rs.randn(N, C, H, W), rs.randn(K, C, R, S) * 0.5
    gamma, beta = rs.rand(K) + 0.5, rs.randn(K)
    layers = Conv((R, S, K), init=Array(w4.reshape(K, -1).T), strides=stride,
                  padding=pad, batch_norm=True, activation=Rectlin(), name="c")
    model = Sequential(layers)
    model.configure((C, H, W))
    layers[0].need_dx = True        # first of a Sequential: dx skipped otherwise
    model.allocate()
    _set_bn(layers[1], gamma, beta)
    y4, conv_saved = K_ops.conv2d_forward(x4, w4, (stride,) * 2, (pad,) * 2)
    z4, saved = _bn_relu_ref(y4, gamma, beta)
    _close(model.fprop(nbe.array(_chwn(x4))), _chwn(z4))
    dz4 = rs.randn(*z4.shape)
    dx = model.bprop(nbe.array(_chwn(dz4)))
    dy4, dgamma, dbeta = _bn_relu_ref_back(dz4, saved)
    dx4, dw4 = K_ops.conv2d_backward(dy4, conv_saved)
    _close(dx, _chwn(dx4))
    _close(layers[0].dW, dw4.reshape(K, -1).T)
    _close(layers[1].grad_gamma, dgamma[:, None])
    _close(layers[1].grad_beta, dbeta[:, None])


@pytest.mark.parametrize("nin, nout", [(6, 5), (3, 1), (17, 9)])
def test_affine_batch_norm_matches_reference(nbe, nin, nout):
    rs = np.random.RandomState(1)
    x, w = rs.randn(N, nin), rs.randn(nout, nin) * 0.5
    gamma, beta = rs.rand(nout) + 0.5, rs.randn(nout)
    layers = Affine(nout, init=Array(w), batch_norm=True, activation=Rectlin(), name="fc")
    model = Sequential(layers)
    model.configure(nin)
    layers[0].need_dx = True        # first of a Sequential: dx skipped otherwise
    model.allocate()
    _set_bn(layers[1], gamma, beta)
    y, lin_saved = D.linear_forward(x, w)
    z, saved = _bn_relu_ref(y, gamma, beta)
    _close(model.fprop(nbe.array(x.T)), z.T)
    dz = rs.randn(*z.shape)
    dx = model.bprop(nbe.array(dz.T))
    dy, dgamma, dbeta = _bn_relu_ref_back(dz, saved)
    dxr, dwr = D.linear_backward(dy, lin_saved)
    _close(dx, dxr.T)
    _close(layers[0].dW, dwr)
    _close(layers[1].grad_gamma, dgamma[:, None])
    _close(layers[1].grad_beta, dbeta[:, None])


@pytest.mark.parametrize("K, P, Q, R, S, C, stride", [(2, 3, 3, 2, 2, 3, 2),
                                                      (3, 4, 2, 3, 1, 2, 1)])
def test_deconv_batch_norm_matches_reference(nbe, K, P, Q, R, S, C, stride):
    rs = np.random.RandomState(2)
    x4, w4 = rs.randn(N, K, P, Q), rs.randn(K, C, R, S) * 0.5
    gamma, beta = rs.rand(C) + 0.5, rs.randn(C)
    layers = Deconv((R, S, C), init=Array(w4.reshape(K, -1).T), strides=stride,
                    batch_norm=True, activation=Rectlin(), name="d")
    model = Sequential(layers)
    model.configure((K, P, Q))
    layers[0].need_dx = True        # first of a Sequential: dx skipped otherwise
    model.allocate()
    _set_bn(layers[1], gamma, beta)
    y4, dc_saved = K_ops.conv_transpose2d_forward(x4, w4, (stride,) * 2)
    z4, saved = _bn_relu_ref(y4, gamma, beta)
    _close(model.fprop(nbe.array(_chwn(x4))), _chwn(z4))
    dz4 = rs.randn(*z4.shape)
    dx = model.bprop(nbe.array(_chwn(dz4)))
    dy4, dgamma, dbeta = _bn_relu_ref_back(dz4, saved)
    dx4, dw4 = K_ops.conv_transpose2d_backward(dy4, dc_saved)
    _close(dx, _chwn(dx4))
    _close(layers[0].dW, dw4.reshape(K, -1).T)
    _close(layers[1].grad_gamma, dgamma[:, None])
    _close(layers[1].grad_beta, dbeta[:, None])


# ------------------------------------------------------------------ training
def test_model_with_batch_norm_compounds_trains(nbe):
    rs = np.random.RandomState(3)
    C, H, W, ncls = 1, 8, 8, 3
    y = rs.randint(0, ncls, N)
    X = (rs.randn(N, C * H * W) * 0.3 + y[:, None] * 0.5).astype(np.float32)
    train = ArrayIterator(X, y, nclass=ncls, lshape=(C, H, W))
    conv = Conv((3, 3, 4), init=Gaussian(scale=0.3), padding=1, batch_norm=True,
                activation=Rectlin(), name="c1")
    fc = Affine(6, init=Gaussian(scale=0.3), batch_norm=True, activation=Rectlin(),
                name="f1")
    layers = [conv, Pooling(2, name="p1"), fc,
              Affine(ncls, init=Gaussian(scale=0.3), bias=Constant(0.0),
                     activation=Softmax(), name="out")]
    model = Model(layers=layers)
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    model.initialize(train, cost)
    bns = [conv[1], fc[1]]
    assert all(bn in model.layers_to_optimize for bn in bns)
    assert [bn.nfm for bn in bns] == [4, 6]
    x, t = next(iter(train))
    out = model.fprop(x)
    first = float(cost.get_cost(out, t).get()[0, 0])
    gammas = [bn.gamma.get().copy() for bn in bns]
    opt = GradientDescentMomentum(0.1, momentum_coef=0.0)
    model.fit(train, optimizer=opt, num_epochs=5, cost=cost, callbacks=Callbacks(model))
    last = float(cost.get_cost(model.fprop(x), t).get()[0, 0])
    assert np.isfinite(last) and last < first
    assert all(not np.allclose(bn.gamma.get(), g) for bn, g in zip(bns, gammas))
    assert all(np.abs(bn.gmean.get()).max() > 0 for bn in bns)   # running stats moved
    out = model.get_outputs(train)                                # inference path
    assert out.shape == (N, ncls) and np.allclose(out.sum(axis=1), 1, atol=1e-4)


# ------------------------------------------------------------------ the NC hand-over
# Convolution, Deconvolution, Pooling, Linear and Bias take their inputs as zero-copy
# transposed views of the previous op's batch-first result (TAKES_NC); the math must
# be the same as with a transposed copy at every layer edge.
def _chain(C, H, W, rs):
    K1, K2, F = 4, 3, 5
    w1, w2 = rs.randn(C * 9, K1) * 0.4, rs.randn(K1 * 4, K2) * 0.4
    b1, b2 = rs.randn(K1, 1), rs.randn(K2, 1)
    wf, bf = rs.randn(F, K2 * 2 * 2) * 0.4, rs.randn(F, 1)
    wo, bo = rs.randn(3, F) * 0.4, rs.randn(3, 1)
    wd = rs.randn(K1 * 4, K2) * 0.4
    return [Conv((3, 3, K1), init=Array(w1), padding=1, bias=Array(b1), name="c1"),
            Pooling(2, name="p1"),
            Conv((2, 2, K2), init=Array(w2), bias=Array(b2), activation=Rectlin(),
                 name="c2"),
            Deconv((2, 2, K1), init=Array(wd), strides=1, bias=Array(b1), name="d1"),
            Conv((2, 2, K2), init=Array(w2), strides=2, batch_norm=True, name="c3"),
            Pooling(1, op="avg", name="p2"),
            Affine(F, init=Array(wf), bias=Array(bf), activation=Rectlin(), name="f1"),
            Affine(3, init=Array(wo), bias=Array(bo), name="f2")]


def _run_chain(nbe, x, err):
    rs = np.random.RandomState(5)
    C, H, W = 2, 8, 8
    model = Sequential(_chain(C, H, W, rs))
    model.configure((C, H, W))
    model.layers[0].need_dx = True
    model.allocate()
    y = model.fprop(nbe.array(x)).get()
    dx = model.bprop(nbe.array(err)).get()
    grads = [g.get().copy() for (_, g), _ in model.get_params()]
    layout = [l.outputs._data.flags.c_contiguous for l in model.layers]
    return y, dx, grads, layout


def test_nc_handover_gives_the_same_math(nbe, monkeypatch):
    rs = np.random.RandomState(4)
    x, err = rs.randn(2 * 8 * 8, N), rs.randn(3, N)
    y, dx, grads, layout = _run_chain(nbe, x, err)
    for cls in (Convolution, Deconvolution, Pooling, Linear, Bias):
        monkeypatch.setattr(cls, "TAKES_NC", False)
    y0, dx0, grads0, layout0 = _run_chain(nbe, x, err)
    assert all(layout0)                          # without it: neon layout everywhere
    if nbe.backend_name != "gpu":
        # host backends: c1, its bias, p1, ... hand over transposed views; the last
        # layer (read by the cost) and those before a BatchNorm / Activation do not
        assert layout[-1] and not all(layout)
        assert not layout[0] and not layout[1] and not layout[2]
    np.testing.assert_allclose(y, y0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dx0, rtol=1e-5, atol=1e-6)
    assert len(grads) == len(grads0) == 13          # 6 W, 5 biases, beta, gamma
    for g, g0 in zip(grads, grads0):
        np.testing.assert_allclose(g, g0, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("in_shape", [(3, 4, 5), (6,), (4, 3)])
def test_bias_on_neon_layout_inputs_matches_the_bias_op(nbe, in_shape):
    """A Bias fed neon-layout (C-ordered) tensors: per row of the (bias_size, -1) view
    -- per channel for (C, H, W), per feature for (F,), per feature at every step for
    a recurrent (F, nsteps) shape -- against the reference bias op on the rows."""
    rs = np.random.RandomState(6)
    size, cols = in_shape[0], (in_shape[1] if len(in_shape) == 2 else 1) * N
    layer = Bias(init=Array(rs.randn(size, 1)), name="b")
    layer.configure(in_shape)
    layer.allocate()
    rows = int(np.prod(in_shape)) if len(in_shape) != 2 else in_shape[0]
    x, e = rs.randn(rows, cols), rs.randn(rows, cols)
    y = layer.fprop(nbe.array(x)).get()
    yr, saved = D.bias_forward(x.reshape(size, -1).T, layer.W.get()[:, 0])
    _close(y, yr.T.reshape(x.shape))
    dx = layer.bprop(nbe.array(e)).get()
    dxr, db = D.bias_backward(e.reshape(size, -1).T, saved)
    _close(dx, dxr.T.reshape(e.shape))
    _close(layer.dW, db[:, None])
