"""neon layers after a recurrent layer: in_shape (nfeatures, nsteps), tensors
(nfeatures, nsteps * N) time-major (column t * N + n). As in neon, Linear / Bias /
Activation / Affine treat the steps as extra batch (the same weights at every step)."""
import numpy as np
import pytest

from tests.neon.conftest import REFNN_NAME
from refnn.errors import ShapeError
from refnn.neon.initializers import Array
from refnn.neon.layers import Activation, Bias, Linear
from refnn.neon.transforms import Softmax
from refnn.ops import activation as act_ops
from refnn.ops import dense as dense_ops
from refnn.testing import tolerance

rs = np.random.RandomState(11)


def check(op, nbe, actual, expected):
    rtol, atol = tolerance(op, "float32", REFNN_NAME[nbe.backend_name])
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * 10)


@pytest.mark.parametrize("nin,nout,T,N", [(5, 3, 4, 8), (3, 7, 1, 8), (6, 2, 9, 1)])
def test_linear_per_step_matches_reference(nbe, nin, nout, T, N):
    nbe.bsz = N
    W = rs.randn(nout, nin)
    x = rs.randn(nin, T * N)
    err = rs.randn(nout, T * N)
    layer = Linear(nout, init=Array(W), name="fc_td")
    layer.configure((nin, T))
    assert layer.out_shape == (nout, T) and layer.weight_shape == (nout, nin)
    layer.allocate()
    assert layer.outputs.shape == (nout, T * N)
    y = layer.fprop(nbe.array(x)).get()
    dx = layer.bprop(nbe.array(err)).get()
    for t in range(T):                       # y[:, t*N:(t+1)*N] = W x_t
        cols = slice(t * N, (t + 1) * N)
        y_ref, _ = dense_ops.linear_forward(x[:, cols].T, W)
        check("linear", nbe, y[:, cols], y_ref.T)
    _, saved = dense_ops.linear_forward(x.T, W)
    dx_ref, dW_ref = dense_ops.linear_backward(err.T, saved)   # dW sums over all steps
    check("linear", nbe, dx, dx_ref.T)
    check("linear", nbe, layer.dW.get(), dW_ref)


def test_bias_and_softmax_per_step(nbe):
    F, T, N = 4, 3, 8
    b = rs.randn(F, 1)
    x = rs.randn(F, T * N)
    bias = Bias(init=Array(b), name="b_td").configure((F, T))
    bias.allocate()
    y = bias.fprop(nbe.array(x)).get()
    y_ref, _ = dense_ops.bias_forward(x.T, b[:, 0])
    check("bias", nbe, y, y_ref.T)
    assert bias.out_shape == (F, T) and bias.W.shape == (F, 1)
    act = Activation(Softmax(), name="sm_td").configure((F, T))
    s = act.fprop(nbe.array(x)).get()
    s_ref, _ = act_ops.softmax_forward(x.T)      # over the features of each column
    check("softmax", nbe, s, s_ref.T)


def test_wrong_sequence_shape_names_layer(nbe):
    layer = Linear(3, init=Array(rs.randn(3, 5)), name="fc_bad").configure((5, 4))
    layer.allocate()
    with pytest.raises(ShapeError, match=r"fc_bad.*\(5, 4 \* batch\)"):
        layer.fprop(nbe.array(rs.randn(5, 4 * 8 + 1)))
    with pytest.raises(ShapeError, match="fc_bad"):
        layer.fprop(nbe.array(rs.randn(20, 8)))        # flattened (nin*nsteps, N)
