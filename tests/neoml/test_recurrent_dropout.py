"""Recurrent dropout of neoml.Dnn.Lstm and IndRnn on every engine.

With ``dropout_rate`` > 0, learning drops the input sequence (a dropout-op mask per
element, first seed) and the previous output h_{t-1} before the recurrent product (one
(batch, hidden) mask for the whole sequence, next seed; the ops' ``h_mask``), both
scaled by 1/(1 - rate). The network's seeds are replaced by known ones so that the
masks can be rebuilt from refnn.ops.activation.dropout_mask and the layer compared with
the float64 reference ops.
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.neoml.Dnn._recurrent import recurrent_dropout_mask
from refnn.ops import recurrent as R
from refnn.ops.activation import dropout_mask

RTOL, ATOL = 2e-3, 2e-4
SEEDS = (1234567, 7654321)                    # input mask, recurrent mask


def _blob(engine, a):
    a = np.asarray(a)
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _host(be, a):
    return np.asarray(be.to_host(a), np.float64)


def _layer(engine, kind, H, rate, reverse=False, activation=None, seed=0):
    """A layer with weights set through its NeoML properties; returns (layer, weights)."""
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    src = neoml.Dnn.Source(dnn, "s0")
    rng = np.random.default_rng(seed)
    if kind == "lstm":
        layer = neoml.Dnn.Lstm(src, H, dropout_rate=rate, reverse_seq=reverse, name="l")
        return layer, rng
    layer = neoml.Dnn.IndRnn(src, H, dropout_rate=rate, reverse_sequence=reverse,
                             activation=activation or "sigmoid", name="l")
    return layer, rng


def _set_weights(engine, layer, kind, I, H, rng):
    """Random weights through the properties; returns the reference op's (w, u, b)."""
    if kind == "lstm":
        W = rng.normal(0, 0.5, (4 * H, I)).astype(np.float32)
        U = rng.normal(0, 0.5, (4 * H, H)).astype(np.float32)
        bi, br = (rng.normal(0, 0.5, 4 * H).astype(np.float32) for _ in range(2))
        layer.input_weights = _blob(engine, W.reshape(1, 4 * H, 1, 1, 1, 1, I))
        layer.recurrent_weights = _blob(engine, U.reshape(1, 4 * H, 1, 1, 1, 1, H))
        layer.input_free_term = _blob(engine, bi.reshape(4 * H, 1, 1, 1, 1, 1, 1))
        layer.recurrent_free_term = _blob(engine, br.reshape(4 * H, 1, 1, 1, 1, 1, 1))
        return W, U, bi + br
    W = rng.normal(0, 0.5, (H, I)).astype(np.float32)
    U = rng.uniform(-0.9, 0.9, H).astype(np.float32)
    b = rng.normal(0, 0.5, H).astype(np.float32)
    layer.input_weights = _blob(engine, W.reshape(1, H, 1, 1, 1, 1, I))
    layer.recurrent_weights = _blob(engine, U.reshape(1, 1, 1, 1, 1, 1, H))
    layer.bias = _blob(engine, b.reshape(H, 1, 1, 1, 1, 1, 1))
    return W, U, b


def _fixed_seeds(layer, seeds=SEEDS):
    it = iter(seeds)
    layer._dnn.random.seed32 = lambda: next(it)


def _reference(kind, x3, W, U, b, reverse, h_mask, activation="sigmoid"):
    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    if kind == "lstm":
        (hs, cs), saved = R.lstm_forward(f64(x3), f64(W), f64(U), f64(b), reverse=reverse,
                                         h_mask=h_mask)
        return (hs, cs), saved
    hs, saved = R.indrnn_forward(f64(x3), f64(W), f64(U), f64(b), activation=activation,
                                 reverse=reverse, h_mask=h_mask)
    return (hs,), saved


def _douts(kind, T, N, H, rng):
    d = [rng.normal(0, 1, (T, N, 1, 1, 1, 1, H)).astype(np.float32)]
    return d + ([rng.normal(0, 1, d[0].shape).astype(np.float32)] if kind == "lstm" else [])


def _weight_grads(kind, layer, be):
    g = {k: _host(be, v) for k, v in layer._grads.items()}
    if kind == "lstm":
        return g["input_weights"], g["recurrent_weights"], g["input_free_term"]
    return g["input_weights"], g["recurrent_weights"], g["bias"]


@pytest.mark.parametrize("kind", ["lstm", "indrnn"])
@pytest.mark.parametrize("reverse", [False, True])
def test_learning_equals_the_reference_op_with_the_layers_masks(engine, kind, reverse):
    T, N, I, H, rate = 6, 3, 4, 5, 0.4
    keep = 1 - rate
    layer, rng = _layer(engine, kind, H, rate, reverse)
    W, U, b = _set_weights(engine, layer, kind, I, H, rng)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    be = engine.backend
    _fixed_seeds(layer)
    outs = layer._forward(be, [be.asarray(x)], True)
    in_mask = dropout_mask((T * N, I), keep, SEEDS[0]).reshape(T, N, I) / keep
    h_mask = dropout_mask((N, H), keep, SEEDS[1]) / keep
    assert 0 < np.count_nonzero(h_mask) < h_mask.size
    ref, saved = _reference(kind, x.reshape(T, N, I) * in_mask, W, U, b, reverse, h_mask)
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(_host(be, o).reshape(T, N, H), r, rtol=RTOL, atol=ATOL)
    # the recurrent mask matters: without it the reference differs
    plain, _ = _reference(kind, x.reshape(T, N, I) * in_mask, W, U, b, reverse, None)
    assert not np.allclose(plain[0], ref[0], rtol=RTOL, atol=ATOL)

    douts = _douts(kind, T, N, H, rng)
    layer._grads.clear()
    (dx,) = layer._backward(be, [be.asarray(d) for d in douts], [True])
    d64 = tuple(d.reshape(T, N, H).astype(np.float64) for d in douts)
    grads = (R.lstm_backward(d64, saved) if kind == "lstm" else
             R.indrnn_backward(d64[0], saved))
    np.testing.assert_allclose(_host(be, dx).reshape(T, N, I), grads[0] * in_mask,
                               rtol=RTOL, atol=ATOL)
    for got, want in zip(_weight_grads(kind, layer, be), grads[1:4]):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", ["lstm", "indrnn"])
def test_rate_zero_is_no_mask_and_draws_no_seed(engine, kind):
    T, N, I, H = 5, 2, 3, 4
    layer, rng = _layer(engine, kind, H, 0.0)
    W, U, b = _set_weights(engine, layer, kind, I, H, rng)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    be = engine.backend
    _fixed_seeds(layer, ())                    # any draw would raise StopIteration
    outs = layer._forward(be, [be.asarray(x)], True)
    ref, _ = _reference(kind, x.reshape(T, N, I), W, U, b, False, None)
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(_host(be, o).reshape(T, N, H), r, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", ["lstm", "indrnn"])
def test_run_mode_has_no_dropout(engine, kind):
    T, N, I, H = 4, 3, 3, 5
    layer, rng = _layer(engine, kind, H, 0.5)
    W, U, b = _set_weights(engine, layer, kind, I, H, rng)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    be = engine.backend
    _fixed_seeds(layer, ())
    outs = layer._forward(be, [be.asarray(x)], False)
    ref, _ = _reference(kind, x.reshape(T, N, I), W, U, b, False, None)
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(_host(be, o).reshape(T, N, H), r, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.75])
def test_dropped_fraction_is_close_to_the_rate(engine, rate):
    layer, _ = _layer(engine, "indrnn", 2, rate)
    be = engine.backend
    N, H = 128, 96
    keep = 1 - rate
    masks = [_host(be, recurrent_dropout_mask(layer, be, N, H, keep)) for _ in range(2)]
    for m in masks:
        assert m.shape == (N, H)
        np.testing.assert_allclose(np.unique(m), [0.0, 1 / keep], rtol=1e-6)
        # binomial: 4 standard deviations of the dropped fraction
        assert abs(np.mean(m == 0) - rate) < 4 * np.sqrt(rate * keep / m.size)
    assert not np.array_equal(masks[0], masks[1])   # a fresh seed per draw


@pytest.mark.parametrize("kind", ["lstm", "indrnn"])
def test_gradient_flows_only_through_kept_recurrent_units(engine, kind):
    """Batch 1: a hidden unit dropped by the recurrent mask never reaches the recurrent
    product, so its recurrent weights (lstm: column j of U; indrnn: u_j) get exactly
    zero gradient, and every kept unit's do not."""
    T, N, I, H, rate = 5, 1, 3, 8, 0.5
    layer, rng = _layer(engine, kind, H, rate, seed=5)
    _set_weights(engine, layer, kind, I, H, rng)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    be = engine.backend
    _fixed_seeds(layer)
    layer._forward(be, [be.asarray(x)], True)
    layer._grads.clear()
    layer._backward(be, [be.asarray(d) for d in _douts(kind, T, N, H, rng)], [True])
    kept = dropout_mask((N, H), 1 - rate, SEEDS[1])[0]
    assert kept.any() and not kept.all()
    du = _weight_grads(kind, layer, be)[1]
    du = du.reshape(-1, H) if kind == "lstm" else du.reshape(1, H)
    assert np.all(du[:, ~kept] == 0)
    assert np.all(np.abs(du[:, kept]).max(axis=0) > 0)
