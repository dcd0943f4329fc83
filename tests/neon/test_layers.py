"""Each neon layer gives the reference op's result (float64 NumPy, batch-first) on
every neon backend; bad inputs raise errors naming the layer."""
import numpy as np
import pytest

from tests.neon.conftest import REFNN_NAME
from refnn.errors import ParameterError, ShapeError
from refnn.neon.initializers import Array, Constant, Gaussian
from refnn.neon.layers import Activation, Affine, Bias, Dropout, Linear, Sequential
from refnn.neon.transforms import (Explin, Identity, Logistic, Normalizer, Rectlin,
                                   Softmax, Tanh)
from refnn.ops import activation as act_ops
from refnn.ops import dense as dense_ops
from refnn.testing import tolerance

NIN, NOUT, N = 6, 4, 8
rs = np.random.RandomState(3)
X = rs.randn(NIN, N)              # neon layout (features, batch)
W = rs.randn(NOUT, NIN)
B = rs.randn(NOUT, 1)
ERR = rs.randn(NOUT, N)


def check(op, nbe, actual, expected):
    rtol, atol = tolerance(op, "float32", REFNN_NAME[nbe.backend_name])
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * 10)


def run(layer, nbe, x, err, in_shape):
    layer.configure(in_shape)
    layer.allocate()
    y = layer.fprop(nbe.array(x))
    dx = layer.bprop(nbe.array(err))
    return y.get(), None if dx is None else dx.get()


def test_linear_matches_reference_linear_op(nbe):
    layer = Linear(nout=NOUT, init=Array(W), name="fc")
    y, dx = run(layer, nbe, X, ERR, NIN)
    y_ref, saved = dense_ops.linear_forward(X.T, W)
    dx_ref, dW_ref = dense_ops.linear_backward(ERR.T, saved)
    check("linear", nbe, y, y_ref.T)
    check("linear", nbe, dx, dx_ref.T)
    check("linear", nbe, layer.dW.get(), dW_ref)
    assert Linear.OPS == ("linear",)


def test_bias_matches_reference_bias_op(nbe):
    layer = Bias(init=Array(B), name="b")
    y, dx = run(layer, nbe, ERR, ERR * 2, NOUT)
    y_ref, saved = dense_ops.bias_forward(ERR.T, B[:, 0])
    dx_ref, db_ref = dense_ops.bias_backward(2 * ERR.T, saved)
    check("bias", nbe, y, y_ref.T)
    check("bias", nbe, dx, dx_ref.T)
    check("bias", nbe, layer.dW.get(), db_ref[:, None])


TRANSFORMS = [
    (Identity(), "identity", {}),
    (Rectlin(), "relu", {}),
    (Rectlin(slope=0.2), "leaky_relu", {"alpha": 0.2}),
    (Explin(alpha=0.7), "elu", {"alpha": 0.7}),
    (Logistic(), "sigmoid", {}),
    (Tanh(), "tanh", {}),
    (Normalizer(divisor=4.0), "normalizer", {"divisor": 4.0}),
    (Softmax(), "softmax", {}),
]


@pytest.mark.parametrize("transform,op,params", TRANSFORMS, ids=[t[1] for t in TRANSFORMS])
def test_activation_matches_reference_op(nbe, transform, op, params):
    layer = Activation(transform, name="act")
    y, dx = run(layer, nbe, ERR, ERR[::-1] * 0.5, NOUT)
    fwd, bwd = getattr(act_ops, op + "_forward"), getattr(act_ops, op + "_backward")
    # the ops are batch-first: softmax normalizes each sample over its features
    y_ref, saved = fwd(ERR.T, **params)
    (dx_ref,) = bwd((ERR[::-1] * 0.5).T, saved)
    check(op, nbe, y, y_ref.T)
    check(op, nbe, dx, dx_ref.T)
    assert op in Activation.OPS


def test_dropout_uses_the_dropout_op_and_neon_inference_scaling(nbe):
    layer = Dropout(keep=0.6, name="drop")
    layer.configure(NOUT)
    nbe.rng = np.random.RandomState(5)
    y = layer.fprop(nbe.array(ERR)).get()
    seed = int(np.random.RandomState(5).randint(0, 2 ** 32, dtype=np.uint64))
    mask = act_ops.dropout_mask(ERR.shape, 0.6, seed)
    check("dropout", nbe, y, ERR * mask)                 # neon: no 1/keep in training
    check("dropout", nbe, layer.bprop(nbe.array(ERR)).get(), ERR * mask)
    check("dropout", nbe, layer.fprop(nbe.array(ERR), inference=True).get(), ERR * 0.6)


def test_affine_is_linear_bias_activation_with_neon_names(nbe):
    aff = Affine(nout=3, init=Gaussian(), bias=Constant(0.5), activation=Rectlin(), name="fc1")
    assert [type(l).__name__ for l in aff] == ["Linear", "Bias", "Activation"]
    assert [l.name for l in aff] == ["fc1", "fc1_bias", "fc1_Rectlin"]
    seq = Sequential([aff, Affine(nout=2, init=Gaussian(), activation=Softmax())])
    assert len(seq.layers) == 5
    seq.configure(NIN)
    seq.allocate()
    y = seq.fprop(nbe.array(X))
    np.testing.assert_allclose(y.get().sum(axis=0), 1.0, rtol=1e-5)
    assert [l.name for l in seq.layers_to_optimize] == ["fc1", "fc1_bias", seq.layers[3].name]


def test_wrong_input_width_names_the_layer(nbe):
    layer = Linear(nout=NOUT, init=Gaussian(), name="hidden1")
    layer.configure(NIN)
    layer.allocate()
    with pytest.raises(ShapeError, match=r"hidden1.*\(6, batch\).*\(5, 8\)"):
        layer.fprop(nbe.array(np.ones((5, 8))))


def test_bad_layer_parameters(nbe):
    with pytest.raises(ParameterError, match="nout"):
        Linear(nout=0, init=Gaussian())
    with pytest.raises(ParameterError, match="keep"):
        Dropout(keep=0.0)
    with pytest.raises(ParameterError, match="batch_norm"):
        Affine(nout=3, init=Gaussian(), bias=Gaussian(), batch_norm=True)
    with pytest.raises(ParameterError, match="transform"):
        Activation("relu")
    layer = Linear(nout=2, init=None, name="noinit")
    layer.configure(3)
    with pytest.raises(ParameterError, match="noinit.*initializer"):
        layer.allocate()
