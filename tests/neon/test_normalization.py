"""neon BatchNorm and LRN layers against refnn's float64 reference norm ops, on every
backend; both inside a small Model trained one step; bad arguments name the layer.

neon tensors are (C*H*W, N): BatchNorm normalizes each channel over its (H*W*N) view,
the reference op over the rows of (H*W*N, C) -- the test converts with NumPy.
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.neon.callbacks import Callbacks
from refnn.neon.data import ArrayIterator
from refnn.neon.initializers import Gaussian
from refnn.neon.layers import (Activation, Affine, BatchNorm, Convolution, GeneralizedCost,
                               LRN, Sequential)
from refnn.neon.models import Model
from refnn.neon.optimizers import GradientDescentMomentum
from refnn.neon.transforms import CrossEntropyMulti, Rectlin, Softmax
from refnn.ops import norm as NM

RTOL, ATOL = 2e-4, 2e-4
N = 8


def _close(t, ref):
    np.testing.assert_allclose(t.get() if hasattr(t, "get") else t, ref, rtol=RTOL,
                               atol=ATOL)


def _rows(x, nfm):
    """neon (C*..., N) -> the reference's (...*N, C) rows (C's view (C, -1) transposed)."""
    return x.reshape(nfm, -1).T


# ------------------------------------------------------------------ BatchNorm
@pytest.mark.parametrize("in_shape", [(3, 4, 5), (6,), (2, 1, 1)])
def test_batchnorm_matches_reference(nbe, in_shape):
    rs = np.random.RandomState(0)
    nfm = in_shape[0]
    layer = BatchNorm(rho=0.8, eps=1e-3, name="bn")
    layer.configure(in_shape)
    layer.allocate()
    gamma, beta = rs.rand(nfm, 1) + 0.5, rs.randn(nfm, 1)
    layer.gamma.set(gamma)
    layer.beta.set(beta)
    x = rs.randn(int(np.prod(in_shape)), N) * 3 + 1
    y = layer.fprop(nbe.array(x)).get()
    (yr, mean, var), saved = NM.batch_norm_forward(_rows(x, nfm), gamma[:, 0], beta[:, 0],
                                                   1e-3)
    _close(y, yr.T.reshape(x.shape))
    _close(layer.gmean, 0.2 * mean[:, None])                # running stats start at 0
    _close(layer.gvar, 0.2 * var[:, None])
    e = rs.randn(*x.shape)
    dx = layer.bprop(nbe.array(e)).get()
    dxr, dgamma, dbeta = NM.batch_norm_backward((_rows(e, nfm), None, None), saved)
    _close(dx, dxr.T.reshape(x.shape))
    _close(layer.grad_gamma, dgamma[:, None])
    _close(layer.grad_beta, dbeta[:, None])
    # a second minibatch: the running averages keep rho of the old value
    x2 = rs.randn(*x.shape)
    layer.fprop(nbe.array(x2))
    (_, mean2, var2), _ = NM.batch_norm_forward(_rows(x2, nfm), gamma[:, 0], beta[:, 0],
                                                1e-3)
    gm = 0.8 * 0.2 * mean + 0.2 * mean2
    gv = 0.8 * 0.2 * var + 0.2 * var2
    _close(layer.gmean, gm[:, None])
    _close(layer.gvar, gv[:, None])
    # inference uses the running statistics and leaves them alone
    yi = layer.fprop(nbe.array(x), inference=True).get()
    yr, _ = NM.batch_norm_infer_forward(_rows(x, nfm), gamma[:, 0], beta[:, 0], gm, gv,
                                        1e-3)
    _close(yi, yr.T.reshape(x.shape))
    _close(layer.gmean, gm[:, None])
    assert BatchNorm.OPS == ("batch_norm", "batch_norm_infer")


def test_batchnorm_in_a_model_trains_one_step(nbe):
    rs = np.random.RandomState(1)
    C, H, W, K = 2, 5, 5, 3
    X = rs.randn(N, C * H * W).astype(np.float32)
    y = rs.randint(0, 4, N)
    train = ArrayIterator(X, y, nclass=4, lshape=(C, H, W))
    bn = BatchNorm(name="bn")
    layers = [Convolution((3, 3, K), init=Gaussian(scale=0.3), name="conv"), bn,
              Activation(Rectlin(), name="relu"),
              Affine(4, init=Gaussian(scale=0.3), activation=Softmax(), name="fc")]
    model = Model(layers=layers)
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    model.initialize(train, cost)
    assert bn.nfm == K and bn in model.layers_to_optimize
    assert [p[0][0] for p in bn.get_params()] == [bn.beta, bn.gamma]
    gamma0, beta0 = bn.gamma.get().copy(), bn.beta.get().copy()
    opt = GradientDescentMomentum(0.5, momentum_coef=0.0)
    model.fit(train, optimizer=opt, num_epochs=1, cost=cost, callbacks=Callbacks(model))
    # plain SGD: p -= lr * grad / batch size (neon's optimizers scale by 1 / bsz)
    _close(bn.gamma, gamma0 - 0.5 * bn.grad_gamma.get() / N)
    _close(bn.beta, beta0 - 0.5 * bn.grad_beta.get() / N)
    assert np.abs(bn.grad_gamma.get()).max() > 0
    assert np.abs(bn.gmean.get()).max() > 0                  # running mean moved
    out = model.get_outputs(train)                           # inference path
    assert out.shape == (N, 4) and np.allclose(out.sum(axis=1), 1, atol=1e-4)
    desc = bn.get_description(get_weights=True)
    assert set(desc["params"]) == {"beta", "gamma", "gmean", "gvar"}


@pytest.mark.parametrize("kwargs, match", [
    ({"rho": 1.5}, "rho must be in"), ({"rho": "a"}, "rho must be a finite number"),
    ({"eps": -1.0}, "eps must be >= 0"), ({"binary": True}, "binary=True"),
])
def test_batchnorm_bad_arguments_name_the_layer(kwargs, match):
    with pytest.raises(ParameterError, match=f"bn1 \\(BatchNorm\\): {match}"):
        BatchNorm(name="bn1", **kwargs)


def test_batchnorm_bad_inputs_name_the_layer(nbe):
    layer = BatchNorm(name="bn2").configure((3, 2, 2))
    layer.allocate()
    with pytest.raises(ShapeError, match=r"bn2 \(BatchNorm\): inputs must have shape \(12"):
        layer.fprop(nbe.array(np.zeros((11, N))))
    with pytest.raises(ParameterError, match=r"bn2 \(BatchNorm\): bprop before fprop"):
        layer.bprop(nbe.array(np.zeros((12, N))))
    layer.fprop(nbe.array(np.random.RandomState(0).randn(12, N)))
    with pytest.raises(ShapeError, match=r"bn2 \(BatchNorm\): error must have shape"):
        layer.bprop(nbe.array(np.zeros((12, N + 1))))


# ------------------------------------------------------------------ LRN
@pytest.mark.parametrize("in_shape, depth, ascale, bpower", [
    ((5, 3, 4), 3, 1.0, 0.75), ((7, 2, 2), 5, 2.0, 1.0), ((3, 2, 3, 2), 5, 0.5, 0.5),
    ((4, 1, 1), 1, 1.0, 0.75)])
def test_lrn_matches_reference(nbe, in_shape, depth, ascale, bpower):
    rs = np.random.RandomState(2)
    layer = LRN(depth, ascale=ascale, bpower=bpower, name="lrn")
    layer.configure(in_shape)
    layer.allocate()
    assert layer.out_shape == in_shape
    x = rs.randn(int(np.prod(in_shape)), N)
    x4 = x.T.reshape(N, in_shape[0], -1, in_shape[-1])        # (N, C, D*H, W)
    y = layer.fprop(nbe.array(x)).get()
    y4, saved = NM.lrn_forward(x4, size=depth, k=1.0, alpha=ascale, beta=bpower)
    _close(y, y4.reshape(N, -1).T)
    e = rs.randn(*x.shape)
    dx = layer.bprop(nbe.array(e)).get()
    (dx4,) = NM.lrn_backward(e.T.reshape(x4.shape), saved)
    _close(dx, dx4.reshape(N, -1).T)
    assert LRN.OPS == ("lrn",)


def test_lrn_in_a_model_trains_one_step(nbe):
    rs = np.random.RandomState(3)
    C, H, W = 3, 4, 4
    X = rs.randn(N, C * H * W).astype(np.float32)
    train = ArrayIterator(X, rs.randint(0, 2, N), nclass=2, lshape=(C, H, W))
    conv = Convolution((3, 3, 4), padding=1, init=Gaussian(scale=0.3), name="conv")
    model = Model(layers=[conv, LRN(3, ascale=0.5, bpower=0.75, name="lrn"),
                          Affine(2, init=Gaussian(scale=0.3), activation=Softmax(),
                                 name="fc")])
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    model.initialize(train, cost)
    w0 = conv.W.get().copy()
    model.fit(train, optimizer=GradientDescentMomentum(0.1, momentum_coef=0.0),
              num_epochs=1, cost=cost, callbacks=Callbacks(model))
    _close(conv.W, w0 - 0.1 * conv.dW.get() / N)
    assert np.abs(conv.dW.get()).max() > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"depth": 4}, "depth must be an odd int"), ({"depth": 0}, "depth must be an odd int"),
    ({"depth": 3, "ascale": -1.0}, "ascale must be >= 0"),
    ({"depth": 3, "bpower": float("nan")}, "bpower must be a finite number"),
])
def test_lrn_bad_arguments_name_the_layer(kwargs, match):
    with pytest.raises(ParameterError, match=f"n1 \\(LRN\\): {match}"):
        LRN(name="n1", **kwargs)


def test_lrn_bad_shapes_name_the_layer(nbe):
    with pytest.raises(ShapeError, match=r"n2 \(LRN\): needs \(C, H, W\)"):
        LRN(3, name="n2").configure(12)
    layer = LRN(3, name="n2").configure((3, 2, 2))
    with pytest.raises(ShapeError, match=r"n2 \(LRN\): inputs must have shape \(12"):
        layer.fprop(nbe.array(np.zeros((13, N))))
    with pytest.raises(ParameterError, match=r"n2 \(LRN\): bprop before fprop"):
        layer.bprop(nbe.array(np.zeros((12, N))))
    model = Sequential([LRN(3, name="n3")])
    model.configure((3, 2, 2))
    assert isinstance(model.layers[0], LRN)
