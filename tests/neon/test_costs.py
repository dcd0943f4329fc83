"""Costs equal the reference loss ops; the shortcut pairs; metrics equal NumPy."""
import numpy as np
import pytest

from tests.neon.conftest import REFNN_NAME
from refnn.errors import ShapeError
from refnn.neon.layers import Activation, GeneralizedCost, Sequential
from refnn.neon.transforms import (Accuracy, CrossEntropyBinary, CrossEntropyMulti, Logistic,
                                   LogLoss, MeanSquared, Misclassification, Rectlin, Softmax,
                                   SumSquared, TopKMisclassification)
from refnn.ops import loss as loss_ops
from refnn.testing import tolerance

rs = np.random.RandomState(4)
C, N = 5, 8
P = rs.uniform(0.05, 1.0, (C, N))
P /= P.sum(axis=0)                               # probabilities per sample (column)
T = np.eye(C)[rs.randint(0, C, N)].T             # one-hot targets (C, N)


def check(op, nbe, actual, expected):
    rtol, atol = tolerance(op, "float32", REFNN_NAME[nbe.backend_name])
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * 10)


@pytest.mark.parametrize("cls,op", [(CrossEntropyMulti, "cross_entropy_multi"),
                                    (CrossEntropyBinary, "cross_entropy_binary"),
                                    (SumSquared, "sum_squared"),
                                    (MeanSquared, "mean_squared")])
def test_cost_and_true_gradient_match_the_loss_op(nbe, cls, op):
    cost = GeneralizedCost(costfunc=cls())
    y, t = nbe.array(P), nbe.array(T)
    l_ref, saved = getattr(loss_ops, op + "_forward")(P.T, T.T)
    dy_ref, _ = getattr(loss_ops, op + "_backward")(np.ones(N), saved)
    check(op, nbe, cost.get_cost(y, t).get()[0, 0], l_ref.mean())
    check(op, nbe, cost.get_errors(y, t).get(), dy_ref.T)


def test_softmax_crossentropy_pair_takes_neons_shortcut(nbe):
    """delta = y - t, and the Softmax layer passes it through: together the exact
    gradient of cross_entropy(softmax(z)) w.r.t. z (checked with the reference ops)."""
    from refnn.ops import activation as act_ops
    z = rs.randn(C, N)
    seq = Sequential([Activation(Softmax())])
    seq.configure(C)
    seq.allocate()
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    cost.initialize(seq)
    y = seq.fprop(nbe.array(z))
    dz = seq.bprop(cost.get_errors(y, nbe.array(T))).get()
    s, s_saved = act_ops.softmax_forward(z.T)
    _, l_saved = loss_ops.cross_entropy_multi_forward(s, T.T)
    dl, _ = loss_ops.cross_entropy_multi_backward(np.ones(N), l_saved)
    (dz_ref,) = act_ops.softmax_backward(dl, s_saved)
    check("softmax", nbe, dz, dz_ref.T)
    check("softmax", nbe, dz, s.T - T)


def test_logistic_binary_pair_and_unpaired_layers(nbe):
    act = Activation(Logistic())
    seq = Sequential([act])
    seq.configure(C)
    GeneralizedCost(costfunc=CrossEntropyBinary()).initialize(seq)
    assert act.pass_through
    other = Activation(Rectlin())
    seq2 = Sequential([other])
    seq2.configure(C)
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    cost.initialize(seq2)
    assert not other.pass_through and not cost.costfunc.shortcut
    assert Activation(Logistic(shortcut=True)).pass_through     # neon's explicit flag


def test_metrics_equal_numpy(nbe):
    y, t = nbe.array(P), nbe.array(T)
    miss = (P.argmax(0) != T.argmax(0)).astype(float)
    assert Misclassification()(y, t) == pytest.approx(miss.mean())
    assert Misclassification()(y, t, calcrange=slice(0, 3)) == pytest.approx(miss[:3].mean())
    assert Accuracy()(y, t) == pytest.approx(1 - miss.mean())
    correct = (P * T).sum(0)
    assert LogLoss()(y, t) == pytest.approx(-np.log(correct).mean(), rel=1e-5)
    k = 2
    rank = (P > correct).sum(0)
    topk = TopKMisclassification(k)(y, t)
    assert topk == pytest.approx([-np.log(correct).mean(), miss.mean(), (rank >= k).mean()],
                                 rel=1e-5)


def test_targets_of_the_wrong_shape(nbe):
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    with pytest.raises(ShapeError, match=r"CrossEntropyMulti.*\(5, 8\).*\(4, 8\)"):
        cost.get_cost(nbe.array(P), nbe.array(T[:4]))
    with pytest.raises(ShapeError, match="Misclassification"):
        Misclassification()(nbe.array(P), nbe.array(T[:4]))
