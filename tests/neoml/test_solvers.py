"""Solver rules of the NeoML notes, checked against hand computations.

The network is Source -> FullyConnected(1) -> EuclideanLoss with residuals below 1,
where NeoML's "Euclidean" (Huber) loss is d^2 / 2 per object: the gradient of the
mean loss w.r.t. [W, b] is  g = sum_n d_n [x_n, 1] / N  with d = x W^T + b - t.
"""
import numpy as np
import pytest

import refnn.neoml as neoml

X = np.array([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]], np.float32)
T = np.array([[0.3], [-0.2], [0.1]], np.float32)
W0 = np.array([[0.2, -0.1]], np.float32)
B0 = np.array([0.05], np.float32)
TOL = dict(rtol=1e-5, atol=1e-7)


def _net(engine, solver, names=("fc",)):
    dnn = neoml.Dnn.Dnn(engine)
    src, lab = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
    fcs = []
    for i, name in enumerate(names):
        fc = neoml.Dnn.FullyConnected(src, 1, name=name)
        fc.weights = neoml.Blob.asblob(engine, W0 * (4 ** i), (1, 1, 1, 1, 1, 1, 2), copy=True)
        fc.free_term = neoml.Blob.asblob(engine, B0, (1,) * 7, copy=True)
        neoml.Dnn.EuclideanLoss((fc, lab), name="loss_" + name)
        fcs.append(fc)
    dnn.solver = solver(engine)
    return dnn, fcs


def _inputs(engine, x=X, t=T):
    return {"x": neoml.Blob.asblob(engine, x, (1, len(x), 1, 1, 1, 1, 2), copy=True),
            "t": neoml.Blob.asblob(engine, t, (1, len(t), 1, 1, 1, 1, 1), copy=True)}


def _params(fc):
    return np.concatenate([fc.weights.asarray().reshape(-1), fc.free_term.asarray().reshape(-1)]
                          ).astype(np.float64)


def _grad(p, x=X, t=T):
    """d mean_n (d_n^2 / 2) / d[W, b] for residuals |d| < 1."""
    x1 = np.hstack([x.astype(np.float64), np.ones((len(x), 1))])
    d = x1 @ p - t[:, 0]
    assert np.all(np.abs(d) < 1)
    return x1.T @ d / len(x)


P0 = np.concatenate([W0[0], B0]).astype(np.float64)


def test_default_solver_is_simple_gradient_with_neoml_defaults(engine):
    s = neoml.Dnn.Dnn(engine).solver
    assert isinstance(s, neoml.Dnn.SimpleGradient)
    assert (s.learning_rate, s.moment_decay_rate, s.l1, s.l2, s.max_gradient_norm) == \
        (0.01, 0.9, 0.0, 0.0, -1.0)


def test_simple_gradient_momentum_and_regularisation(engine):
    lr, m, l1, l2 = 0.5, 0.7, 0.01, 0.2
    dnn, (fc,) = _net(engine, lambda e: neoml.Dnn.SimpleGradient(
        e, learning_rate=lr, l1=l1, l2=l2, moment_decay_rate=m))
    inputs = _inputs(engine)
    dnn.learn(inputs)
    # first step: plain SGD whatever the momentum (hist starts at 0)
    hist = -lr * (_grad(P0) + l2 * P0 + np.clip(P0, -l1, l1))
    p1 = P0 + hist
    np.testing.assert_allclose(_params(fc), p1, **TOL)
    dnn.learn(inputs)
    hist = m * hist - lr * (_grad(p1) + l2 * p1 + np.clip(p1, -l1, l1))
    np.testing.assert_allclose(_params(fc), p1 + hist, **TOL)


def test_run_and_backward_never_changes_weights_and_gradients_are_averaged(engine):
    lr = 0.3
    dnn, (fc,) = _net(engine, lambda e: neoml.Dnn.SimpleGradient(e, learning_rate=lr))
    xa, xb, xc = X, X[::-1].copy(), X * 0.5
    dnn.run_and_backward(_inputs(engine, xa))
    dnn.run_and_backward(_inputs(engine, xb))
    np.testing.assert_array_equal(_params(fc), P0.astype(np.float32))
    dnn.learn(_inputs(engine, xc))
    g = (_grad(P0, xa) + _grad(P0, xb) + _grad(P0, xc)) / 3
    np.testing.assert_allclose(_params(fc), P0 - lr * g, **TOL)
    dnn.learn(_inputs(engine, xa))               # the accumulators were cleared
    g1 = _grad(P0 - lr * g, xa)
    hist = 0.9 * (-lr * g) - lr * g1
    np.testing.assert_allclose(_params(fc), P0 - lr * g + hist, **TOL)


def test_max_gradient_norm_is_per_layer(engine):
    zeros = np.zeros_like(T)
    p_big = np.concatenate([W0[0] * 4, B0]).astype(np.float64)
    g_small, g_big = _grad(P0, t=zeros), _grad(p_big, t=zeros)
    lr, max_norm = 1.0, np.sqrt(np.linalg.norm(g_small) * np.linalg.norm(g_big))
    dnn, (small, big) = _net(engine, lambda e: neoml.Dnn.SimpleGradient(
        e, learning_rate=lr, max_gradient_norm=max_norm), names=("small", "big"))
    dnn.learn(_inputs(engine, t=zeros))
    assert np.linalg.norm(g_small) < max_norm < np.linalg.norm(g_big)
    np.testing.assert_allclose(_params(small), P0 - lr * g_small, **TOL)        # not clipped
    np.testing.assert_allclose(_params(big),
                               p_big - lr * g_big * max_norm / np.linalg.norm(g_big), **TOL)


def _adam_steps(p, steps, lr, b1, b2, eps, l2=0.0, amsgrad=False, decoupled=False):
    m = v = vmax = np.zeros_like(p)
    for t in range(1, steps + 1):
        g = _grad(p) + (0 if decoupled else l2 * p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        step = m / (np.sqrt(vmax if amsgrad else v) + eps)       # eps before the correction
        if decoupled:
            step = step + l2 * p
        p = p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * step
    return p


@pytest.mark.parametrize("opts", [dict(), dict(ams_grad=True), dict(decoupled_weight_decay=True)])
def test_adaptive_gradient(engine, opts):
    lr, l2 = 0.05, 0.1
    s = neoml.Dnn.AdaptiveGradient(engine)
    assert (s.moment_decay_rate, s.second_moment_decay_rate, s.epsilon) == (0.9, 0.99, 1e-6)
    dnn, (fc,) = _net(engine, lambda e: neoml.Dnn.AdaptiveGradient(
        e, learning_rate=lr, l2=l2, **opts))
    for _ in range(3):
        dnn.learn(_inputs(engine))
    expected = _adam_steps(P0, 3, lr, 0.9, 0.99, 1e-6, l2=l2, amsgrad=opts.get("ams_grad", False),
                           decoupled=opts.get("decoupled_weight_decay", False))
    np.testing.assert_allclose(_params(fc), expected, rtol=1e-4, atol=1e-6)


def test_nesterov_gradient(engine):
    lr, b1, b2, eps = 0.05, 0.9, 0.99, 1e-6
    dnn, (fc,) = _net(engine, lambda e: neoml.Dnn.NesterovGradient(e, learning_rate=lr))
    p, m, v, prod = P0.copy(), np.zeros(3), np.zeros(3), 1.0
    mu = lambda k: b1 * (1 - 0.5 * 0.96 ** (0.004 * k))     # noqa: E731
    for t in range(1, 4):
        dnn.learn(_inputs(engine))
        g = _grad(p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        prod *= mu(t)
        m_bar = (1 - mu(t)) / (1 - prod) * g + mu(t + 1) / (1 - prod * mu(t + 1)) * m
        p = p - lr * m_bar / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(_params(fc), p, rtol=1e-4, atol=1e-6)


def test_frozen_layer_is_not_updated(engine):
    dnn, (fc,) = _net(engine, lambda e: neoml.Dnn.SimpleGradient(e, learning_rate=1.0))
    fc.learning_enabled = False
    dnn.learn(_inputs(engine))
    np.testing.assert_array_equal(_params(fc), P0.astype(np.float32))
    fc.enable_learning()
    dnn.learn(_inputs(engine))
    assert not np.allclose(_params(fc), P0)
