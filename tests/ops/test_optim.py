"""Optimizer family: special properties beyond the generic one-step contract of
test_generic.py -- hand-computed steps, neon's gradient preparation order, NeoML's
rules (first SimpleGradient step is plain SGD, epsilon before the bias correction,
AMSGrad keeps the maximum, decoupled weight decay, NAdam's schedule), several steps
with the state carried on the device, and the errors.
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.ops import optim as O
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param)


def step(be, op, param, grad, *states, **hyper):
    """One update on backend ``be``; returns the host copies of param and states."""
    dev = [be.asarray(np.asarray(a, dtype=be.dtype)) for a in (param, grad, *states)]
    be.op(op + ".update")(*dev, **hyper)
    return [be.to_host(a) for a in (dev[0], *dev[2:])]


W, G = np.array([0.5, -1.0, 2.0]), np.array([0.25, 0.5, -4.0])
Z = np.zeros(3)


# ------------------------------------------------------------------ neon
def test_gdm_known_step(any_backend):
    w, v = step(any_backend, "gdm", W, G, np.array([0.1, 0.0, -0.1]), learning_rate=0.1,
                momentum_coef=0.9, wdecay=0.01)
    g = G + 0.01 * W
    want_v = 0.9 * np.array([0.1, 0.0, -0.1]) - 0.1 * g
    np.testing.assert_allclose(v, want_v, rtol=1e-6)
    np.testing.assert_allclose(w, W + want_v, rtol=1e-6)
    w, _ = step(any_backend, "gdm", W, G, np.array([0.1, 0.0, -0.1]), learning_rate=0.1,
                momentum_coef=0.9, nesterov=True)
    want_v = 0.9 * np.array([0.1, 0.0, -0.1]) - 0.1 * G
    np.testing.assert_allclose(w, W + 0.9 * want_v - 0.1 * G, rtol=1e-6)


def test_neon_gradient_preparation_order(any_backend):
    """neon: grad / bsz, then clip to +-clip_value, then * the norm-clip factor; in
    rmsprop the factor scales the step, not the running average."""
    w, _ = step(any_backend, "gdm", W, G, Z, learning_rate=1.0, momentum_coef=0.0,
                grad_scale=0.5, clip_value=1.0, norm_scale=0.5)
    np.testing.assert_allclose(w, W - 0.5 * np.clip(G * 0.5, -1, 1), rtol=1e-6)
    w, s = step(any_backend, "rmsprop", W, G, Z, learning_rate=0.1, decay_rate=0.5,
                epsilon=1e-6, grad_scale=0.5, clip_value=1.0, norm_scale=0.5)
    g = np.clip(G * 0.5, -1, 1)
    np.testing.assert_allclose(s, 0.5 * g * g, rtol=1e-6)
    np.testing.assert_allclose(w, W - 0.5 * 0.1 * g / (np.sqrt(0.5 * g * g + 1e-6) + 1e-6),
                               rtol=1e-5)


def test_adagrad_and_adadelta_known_step(any_backend):
    w, s = step(any_backend, "adagrad", W, G, np.ones(3), learning_rate=0.1, epsilon=1e-6)
    np.testing.assert_allclose(s, 1 + G * G, rtol=1e-6)
    np.testing.assert_allclose(w, W - 0.1 * G / np.sqrt(1 + G * G + 1e-6), rtol=1e-6)
    w, eg2, edx2 = step(any_backend, "adadelta", W, G, Z, Z, decay=0.5, epsilon=1e-6)
    dx = np.sqrt(1e-6 / (0.5 * G * G + 1e-6)) * G
    np.testing.assert_allclose(eg2, 0.5 * G * G, rtol=1e-6)
    np.testing.assert_allclose(edx2, 0.5 * dx * dx, rtol=1e-5)
    np.testing.assert_allclose(w, W - dx, rtol=1e-6)


def test_adam_first_step_is_about_lr(any_backend):
    """With bias correction the first Adam step is lr * sign(g) (up to epsilon)."""
    w, m, v = step(any_backend, "adam", W, G, Z, Z, learning_rate=0.01, t=1)
    np.testing.assert_allclose(w, W - 0.01 * np.sign(G), rtol=1e-5)
    np.testing.assert_allclose(m, 0.1 * G, rtol=1e-6)
    # 1 - beta_2 = 0.001 is computed in the device's float32: ~1e-5 relative error
    np.testing.assert_allclose(v, 0.001 * G * G, rtol=1e-4)


# ------------------------------------------------------------------ NeoML
def test_simple_gradient_first_step_is_plain_sgd(any_backend):
    w, h = step(any_backend, "simple_gradient", W, G, Z, learning_rate=0.1,
                moment_decay_rate=0.9, l1=0.75, l2=0.01)
    reg = 0.01 * W + np.clip(W, -0.75, 0.75)
    np.testing.assert_allclose(h, -0.1 * (G + reg), rtol=1e-6)
    np.testing.assert_allclose(w, W - 0.1 * (G + reg), rtol=1e-6)


def test_adaptive_gradient_epsilon_before_bias_correction(any_backend):
    eps, b1, b2, lr = 0.1, 0.9, 0.99, 0.01
    w, m, v = step(any_backend, "adaptive_gradient", W, G, Z, Z, learning_rate=lr,
                   moment_decay_rate=b1, second_moment_decay_rate=b2, epsilon=eps, t=1)
    step_ = lr * np.sqrt(1 - b2) / (1 - b1) * (1 - b1) * G / (np.sqrt((1 - b2) * G * G) + eps)
    np.testing.assert_allclose(w, W - step_, rtol=1e-5)
    # the textbook placement (epsilon after the correction) would give a different step
    textbook = lr * G / (np.abs(G) + eps)
    assert not np.allclose(W - textbook, w, rtol=1e-3)


def test_amsgrad_keeps_the_maximum(any_backend):
    vmax = np.array([5.0, 0.0, 0.0])
    w, m, v, vm = step(any_backend, "adaptive_gradient", W, G, Z, Z, vmax,
                       amsgrad=True, t=3)
    np.testing.assert_allclose(vm, np.maximum(vmax, 0.01 * G * G), rtol=1e-6)
    w_off, *_ = step(any_backend, "adaptive_gradient", W, G, Z, Z, amsgrad=False, t=3)
    assert abs(w[0] - W[0]) < abs(w_off[0] - W[0])       # larger denominator, smaller step
    np.testing.assert_allclose(w[1:], w_off[1:], rtol=1e-6)


def test_decoupled_weight_decay(any_backend):
    """Zero gradient and state: coupled decay moves w through Adam's normalisation
    (about lr * sign(w)); decoupled decay moves it by rate * l2 * w."""
    hyper = dict(learning_rate=0.1, l2=0.5, t=1, epsilon=1e-6)
    w_dec, m, v = step(any_backend, "adaptive_gradient", W, Z, Z, Z,
                       decoupled_weight_decay=True, **hyper)
    np.testing.assert_allclose(m, 0, atol=0)
    rate = O.adam_rate(0.1, 0.9, 0.99, 1)
    np.testing.assert_allclose(w_dec, W - rate * 0.5 * W, rtol=1e-5)
    w_cpl, *_ = step(any_backend, "adaptive_gradient", W, Z, Z, Z, **hyper)
    np.testing.assert_allclose(w_cpl, W - 0.1 * np.sign(W), rtol=1e-4)


def test_nesterov_gradient_first_step(any_backend):
    b1, b2, lr, eps = 0.9, 0.99, 0.01, 1e-6
    w, m, v = step(any_backend, "nesterov_gradient", W, G, Z, Z, learning_rate=lr, t=1)
    mu1 = b1 * (1 - 0.5 * 0.96 ** 0.004)
    mu2 = b1 * (1 - 0.5 * 0.96 ** 0.008)
    m_bar = G + mu2 / (1 - mu1 * mu2) * (1 - b1) * G
    np.testing.assert_allclose(w, W - lr * m_bar / (np.abs(G) + eps), rtol=1e-5)


@pytest.mark.parametrize("op,n_states,hyper", [
    ("gdm", 1, dict(learning_rate=0.1, momentum_coef=0.9, nesterov=True)),
    ("rmsprop", 1, {}), ("adagrad", 1, {}), ("adadelta", 2, {}),
    ("adam", 2, dict(learning_rate=0.05)),
    ("simple_gradient", 1, dict(l1=0.01, l2=0.01)),
    ("adaptive_gradient", 3, dict(amsgrad=True, l2=0.01)),
    ("nesterov_gradient", 3, dict(amsgrad=True, decoupled_weight_decay=True, l2=0.01)),
])
def test_several_steps_carry_the_state(backend, op, n_states, hyper):
    """Five updates with the state kept on the backend equal five reference updates."""
    rng = np.random.default_rng(1)
    shape = (5, 7)
    w_ref = rng.standard_normal(shape).astype(np.float32).astype(np.float64)
    states_ref = [np.zeros(shape) for _ in range(n_states)]
    w_dev = backend.asarray(w_ref)
    states_dev = [backend.zeros(shape) for _ in range(n_states)]
    update = backend.op(op + ".update")
    for k in range(1, 6):
        g = rng.standard_normal(shape).astype(np.float32)
        h = dict(hyper, t=k) if op in ("adam", "adaptive_gradient", "nesterov_gradient") else hyper
        O.__dict__[op + "_update"](w_ref, g.astype(np.float64), *states_ref, **h)
        update(w_dev, backend.asarray(g), *states_dev, **h)
    np.testing.assert_allclose(backend.to_host(w_dev), w_ref, rtol=1e-4, atol=1e-5)
    for s_dev, s_ref in zip(states_dev, states_ref):
        np.testing.assert_allclose(backend.to_host(s_dev), s_ref, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ errors
def test_errors(any_backend):
    with pytest.raises(ParameterError, match=r"adam: t .* must be an integer >= 1, got 0"):
        step(any_backend, "adam", W, G, Z, Z, t=0)
    with pytest.raises(ParameterError, match="adaptive_gradient: amsgrad=True needs the state"):
        step(any_backend, "adaptive_gradient", W, G, Z, Z, amsgrad=True)
    with pytest.raises(ParameterError, match="gdm: nesterov=True requires momentum_coef > 0"):
        step(any_backend, "gdm", W, G, Z, learning_rate=0.1, momentum_coef=0.0, nesterov=True)


def test_state_of_the_wrong_shape(backend):
    with pytest.raises(ShapeError, match=r"rmsprop: state must have shape \(3,\).*got \(4,\)"):
        step(backend, "rmsprop", W, G, np.zeros(4))
    with pytest.raises(ShapeError, match=r"adam: grad must have shape \(3,\).*got \(2,\)"):
        step(backend, "adam", W, G[:2], Z, Z)


def test_param_must_be_updatable_in_place():
    cpu = make_backend("cpu")
    w = np.zeros((4, 4), np.float32)[:, ::2]            # a non-contiguous view
    with pytest.raises(ShapeError, match="param must be C-contiguous"):
        cpu.op("simple_gradient.update")(w, np.zeros((4, 2), np.float32),
                                         np.zeros((4, 2), np.float32))
    ocl = make_backend("opencl")
    with pytest.raises(ShapeError, match="param must be a device array"):
        ocl.op("simple_gradient.update")(np.zeros(3, np.float32), np.zeros(3, np.float32),
                                         ocl.zeros(3))
