"""Optimizers run the reference update ops with neon's gradient preparation;
schedules follow neon's formulas."""
import numpy as np
import pytest

from tests.neon.conftest import REFNN_NAME
from refnn.errors import ParameterError
from refnn.neon.initializers import Array
from refnn.neon.layers import Bias, Linear
from refnn.neon.optimizers import (Adadelta, Adagrad, Adam, ExpSchedule,
                                   GradientDescentMomentum, MultiOptimizer, PolySchedule,
                                   PowerSchedule, RMSProp, Schedule, StepSchedule)
from refnn.ops import optim as optim_ops
from refnn.testing import tolerance

rs = np.random.RandomState(5)
W0 = rs.randn(3, 4)
G = rs.randn(3, 4) * 10


def layer_with_grad(nbe, name="fc"):
    layer = Linear(nout=3, init=Array(W0), name=name)
    layer.configure(4)
    layer.allocate()
    layer.dW.set(G)
    return layer


def check(op, nbe, actual, expected):
    rtol, atol = tolerance(op, "float32", REFNN_NAME[nbe.backend_name])
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * 10)


CASES = [
    (lambda: GradientDescentMomentum(0.1, 0.9, wdecay=0.01, gradient_clip_value=0.5,
                                     nesterov=True), "gdm", 1,
     dict(learning_rate=0.1, momentum_coef=0.9, wdecay=0.01, nesterov=True, clip_value=0.5)),
    (lambda: RMSProp(learning_rate=0.01), "rmsprop", 1,
     dict(learning_rate=0.01, decay_rate=0.95, epsilon=1e-6)),
    (lambda: Adagrad(learning_rate=0.05), "adagrad", 1, dict(learning_rate=0.05, epsilon=1e-6)),
    (lambda: Adadelta(decay=0.9), "adadelta", 2, dict(decay=0.9, epsilon=1e-6)),
    (lambda: Adam(learning_rate=0.01), "adam", 2, dict(learning_rate=0.01, t=2)),
]


@pytest.mark.parametrize("make,op,n_states,hyper", CASES, ids=[c[1] for c in CASES])
def test_two_steps_equal_the_reference_update(nbe, make, op, n_states, hyper):
    layer = layer_with_grad(nbe)
    opt = make()
    param, states = W0.copy(), [np.zeros_like(W0) for _ in range(n_states)]
    for step in (1, 2):
        opt.optimize([layer], epoch=0)
        h = dict(hyper, grad_scale=1.0 / nbe.bsz)
        if op == "adam":
            h["t"] = step
        getattr(optim_ops, op + "_update")(param, G, *states, **h)
    check(op, nbe, layer.W.get(), param)
    assert opt.OPS == (op,)


def test_gradient_clip_norm_scales_the_step_like_neon(nbe):
    a, b = layer_with_grad(nbe, "a"), layer_with_grad(nbe, "b")
    GradientDescentMomentum(0.1, 0.0, gradient_clip_norm=1.0).optimize([a, b], epoch=0)
    norm = np.sqrt(2 * (G ** 2).sum()) / nbe.bsz
    expect = W0 - 0.1 * (1.0 / max(norm, 1.0)) * G / nbe.bsz
    check("gdm", nbe, a.W.get(), expect)
    check("gdm", nbe, b.W.get(), expect)


def test_param_clip_value(nbe):
    layer = layer_with_grad(nbe)
    GradientDescentMomentum(100.0, 0.0, param_clip_value=0.3).optimize([layer], epoch=0)
    assert np.abs(layer.W.get()).max() <= 0.3 + 1e-7


def test_multi_optimizer_maps_layer_names_then_classes(nbe):
    fc = layer_with_grad(nbe, "fc")
    out = layer_with_grad(nbe, "out")
    bias = Bias(init=Array(np.ones((3, 1))), name="b")
    bias.configure(3)
    bias.allocate()
    bias.dW.set(np.ones((3, 1)))
    slow, fast = GradientDescentMomentum(0.0, 0.0), GradientDescentMomentum(1.0, 0.0)
    MultiOptimizer({"default": slow, "out": fast, "Bias": fast}).optimize([fc, out, bias], 0)
    check("gdm", nbe, fc.W.get(), W0)
    check("gdm", nbe, out.W.get(), W0 - G / nbe.bsz)
    check("gdm", nbe, bias.W.get(), np.ones((3, 1)) - 1.0 / nbe.bsz)
    with pytest.raises(ParameterError, match="default"):
        MultiOptimizer({"fc": slow})


def test_schedules_follow_neon():
    assert Schedule().get_learning_rate(0.1, 7) == 0.1
    s = Schedule(step_config=2, change=0.5)
    assert [s.get_learning_rate(1.0, e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    s = Schedule(step_config=[1, 3], change=0.1)
    assert [s.get_learning_rate(1.0, e) for e in range(5)] == pytest.approx(
        [1, 0.1, 0.1, 0.01, 0.01])
    s = StepSchedule(step_config=[2, 4], change=[0.5, 0.25])
    assert [s.get_learning_rate(1.0, e) for e in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert PowerSchedule(step_config=2, change=0.5).get_learning_rate(1.0, 5) == 0.25
    assert ExpSchedule(decay=0.5).get_learning_rate(1.0, 2) == 0.5
    assert PolySchedule(total_epochs=10, power=2).get_learning_rate(1.0, 5) == 0.25
    with pytest.raises(ParameterError):
        StepSchedule(step_config=2, change=0.5)
    with pytest.raises(ParameterError):
        GradientDescentMomentum(0.1, 0.0, nesterov=True)
