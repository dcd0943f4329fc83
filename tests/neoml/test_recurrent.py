"""neoml.Dnn.Lstm, Gru and Irnn against refnn's float64 reference recurrent ops, on every
engine.

A sequence blob (T, BW, LS, H, W, D, C) is the ops' time-major (T, BW*LS, H*W*D*C). Each
test sets the weights through the NeoML properties (NeoML blob shapes and gate order),
runs the layer's ``_forward``/``_backward`` and compares outputs, input gradients,
initial-state gradients and weight gradients with the reference op in float64.
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.neoml.Dnn._recurrent import LSTM_ACTIVATIONS
from refnn.ops import recurrent as R

RTOL, ATOL = 2e-3, 2e-4


def _blob(engine, a):
    a = np.asarray(a)
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _host(be, a):
    return np.asarray(be.to_host(a), np.float64)


def _net(engine, n_sources=1):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    srcs = [neoml.Dnn.Source(dnn, f"s{k}") for k in range(n_sources)]
    return dnn, srcs


LSTM_CASES = [  # T, BW, LS, object dims, H, reverse, initial states
    (5, 2, 1, (1, 1, 1, 3), 4, False, False),
    (1, 1, 1, (1, 1, 1, 2), 3, False, True),
    (6, 2, 2, (2, 1, 1, 2), 5, True, True),
    (4, 3, 1, (1, 1, 1, 1), 17, True, False),
]


@pytest.mark.parametrize("case", LSTM_CASES)
def test_lstm_vs_reference(engine, case):
    _lstm_vs_reference(engine, case)


@pytest.mark.parametrize("activation", sorted(LSTM_ACTIVATIONS))
def test_lstm_recurrent_activation_vs_reference(engine, activation):
    """Every NeoML recurrent activation: the input, forget and output gates take it (with
    NeoML's default parameters), the main block and the cell output stay tanh."""
    _lstm_vs_reference(engine, (4, 2, 1, (1, 1, 1, 3), 5, True, True), activation)


def test_lstm_recurrent_activation_maps_onto_the_op():
    assert LSTM_ACTIVATIONS["linear"] == "identity"
    assert LSTM_ACTIVATIONS["elu"] == ("elu", {"alpha": 0.01})
    assert LSTM_ACTIVATIONS["power"] == ("power", {"exponent": 0.0})   # gates of 1
    assert set(LSTM_ACTIVATIONS) == {"linear", "elu", "relu", "leaky_relu", "abs",
                                     "sigmoid", "tanh", "hard_tanh", "hard_sigmoid",
                                     "power", "hswish", "gelu"}


def _lstm_vs_reference(engine, case, activation="sigmoid"):
    T, BW, LS, obj, H, reverse, init = case
    N, I = BW * LS, int(np.prod(obj))
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (T, BW, LS) + obj).astype(np.float32)
    W = rng.normal(0, 0.5, (4 * H, I)).astype(np.float32)
    U = rng.normal(0, 0.5, (4 * H, H)).astype(np.float32)
    bi, br = (rng.normal(0, 0.5, 4 * H).astype(np.float32) for _ in range(2))
    c0 = rng.normal(0, 1, (1, BW, LS, 1, 1, 1, H)).astype(np.float32)
    h0 = rng.normal(0, 1, (1, BW, LS, 1, 1, 1, H)).astype(np.float32)
    dnn, srcs = _net(engine, 3 if init else 1)
    lstm = neoml.Dnn.Lstm(srcs, H, reverse_seq=reverse, activation=activation, name="lstm")
    assert lstm.recurrent_activation == activation
    lstm.input_weights = _blob(engine, W.reshape(1, 4 * H, 1, 1, 1, 1, I))
    lstm.recurrent_weights = _blob(engine, U.reshape(1, 4 * H, 1, 1, 1, 1, H))
    lstm.input_free_term = _blob(engine, bi.reshape(4 * H, 1, 1, 1, 1, 1, 1))
    lstm.recurrent_free_term = _blob(engine, br.reshape(4 * H, 1, 1, 1, 1, 1, 1))
    neoml.Dnn.Sink((lstm, 0), name="h")
    neoml.Dnn.Sink((lstm, 1), name="c")
    feeds = {"s0": _blob(engine, x)}
    if init:
        feeds.update(s1=_blob(engine, c0), s2=_blob(engine, h0))
    out = dnn.run(feeds)

    f64 = lambda a: a.astype(np.float64)
    ref_h0 = f64(h0.reshape(N, H)) if init else None
    ref_c0 = f64(c0.reshape(N, H)) if init else None
    (hs, cs), saved = R.lstm_forward(f64(x.reshape(T, N, I)), f64(W), f64(U), f64(bi + br),
                                     ref_h0, ref_c0, reverse=reverse,
                                     gate_activation=LSTM_ACTIVATIONS[activation])
    assert out["h"].asarray(keep_dims=True).shape == (T, BW, LS, 1, 1, 1, H)
    np.testing.assert_allclose(out["h"].asarray().reshape(T, N, H), hs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out["c"].asarray().reshape(T, N, H), cs, rtol=RTOL, atol=ATOL)

    be = engine.backend
    dh = rng.normal(0, 1, (T, BW, LS, 1, 1, 1, H)).astype(np.float32)
    dc = rng.normal(0, 1, (T, BW, LS, 1, 1, 1, H)).astype(np.float32)
    xs = [be.asarray(x)] + ([be.asarray(c0), be.asarray(h0)] if init else [])
    lstm._grads.clear()
    lstm._forward(be, xs, False)
    dxs = lstm._backward(be, [be.asarray(dh), be.asarray(dc)], [True] * len(xs))
    dx, dW, dU, db, dh0, dc0 = R.lstm_backward(
        (f64(dh.reshape(T, N, H)), f64(dc.reshape(T, N, H))), saved)
    np.testing.assert_allclose(_host(be, dxs[0]).reshape(T, N, I), dx, rtol=RTOL, atol=ATOL)
    g = {k: _host(be, v) for k, v in lstm._grads.items()}
    np.testing.assert_allclose(g["input_weights"], dW, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g["recurrent_weights"], dU, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g["input_free_term"], db, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(g["recurrent_free_term"], db, rtol=RTOL, atol=ATOL)
    if init:
        np.testing.assert_allclose(_host(be, dxs[1]).reshape(N, H), dc0, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(_host(be, dxs[2]).reshape(N, H), dh0, rtol=RTOL, atol=ATOL)
    # a second backward pass accumulates (the two free terms must not share memory)
    lstm._forward(be, xs, False)
    lstm._backward(be, [be.asarray(dh), be.asarray(dc)], [True] * len(xs))
    np.testing.assert_allclose(_host(be, lstm._grads["input_free_term"]), 2 * db,
                               rtol=RTOL, atol=2 * ATOL)
    np.testing.assert_allclose(_host(be, lstm._grads["recurrent_free_term"]), 2 * db,
                               rtol=RTOL, atol=2 * ATOL)


def test_lstm_unused_cell_output_gets_zero_gradient(engine):
    """Only output 0 reaches a loss: the cell-state gradient is taken as zero."""
    T, N, I, H = 3, 2, 2, 3
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    dnn, (src,) = _net(engine)
    lstm = neoml.Dnn.Lstm(src, H)
    dnn.run({"s0": _blob(engine, x)})
    be = engine.backend
    p = {k: _host(be, v) for k, v in lstm._params.items()}
    dh = rng.normal(0, 1, (T, N, 1, 1, 1, 1, H)).astype(np.float32)
    (_, _), saved = R.lstm_forward(x.reshape(T, N, I).astype(np.float64), p["input_weights"],
                                   p["recurrent_weights"],
                                   p["input_free_term"] + p["recurrent_free_term"])
    lstm._forward(be, [be.asarray(x)], False)
    (dx,) = lstm._backward(be, [be.asarray(dh), None], [True])
    ref = R.lstm_backward((dh.reshape(T, N, H).astype(np.float64), np.zeros((T, N, H))),
                          saved)[0]
    np.testing.assert_allclose(_host(be, dx).reshape(T, N, I), ref, rtol=RTOL, atol=ATOL)


GRU_CASES = [(4, 2, 1, (1, 1, 1, 3), 2, False), (1, 1, 2, (1, 2, 1, 1), 5, True),
             (7, 3, 1, (1, 1, 1, 2), 17, True)]


@pytest.mark.parametrize("case", GRU_CASES)
def test_gru_vs_reference(engine, case):
    T, BW, LS, obj, H, init = case
    N, I = BW * LS, int(np.prod(obj))
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (T, BW, LS) + obj).astype(np.float32)
    gate = rng.normal(0, 0.5, (2 * H, I + H)).astype(np.float32)
    main = rng.normal(0, 0.5, (H, I + H)).astype(np.float32)
    gb, mb = rng.normal(0, 0.5, 2 * H).astype(np.float32), rng.normal(0, .5, H).astype(np.float32)
    h0 = rng.normal(0, 1, (1, BW, LS, 1, 1, 1, H)).astype(np.float32)
    dnn, srcs = _net(engine, 2 if init else 1)
    gru = neoml.Dnn.Gru(srcs, H, name="gru")
    # set before the first run: kept, and used for the op's (w, u, b)
    gru.gate_weights = _blob(engine, gate.reshape(1, 2 * H, 1, 1, 1, 1, I + H))
    gru.main_weights = _blob(engine, main.reshape(1, H, 1, 1, 1, 1, I + H))
    gru.gate_free_term = _blob(engine, gb.reshape(2 * H, 1, 1, 1, 1, 1, 1))
    gru.main_free_term = _blob(engine, mb.reshape(H, 1, 1, 1, 1, 1, 1))
    neoml.Dnn.Sink(gru, name="out")
    feeds = {"s0": _blob(engine, x)}
    if init:
        feeds["s1"] = _blob(engine, h0)
    got = dnn.run(feeds)["out"].asarray(keep_dims=True)
    assert got.shape == (T, BW, LS, 1, 1, 1, H)
    # the properties give back what was set, after the first run too
    np.testing.assert_array_equal(gru.gate_weights.asarray().reshape(2 * H, I + H), gate)
    np.testing.assert_array_equal(gru.main_free_term.asarray().reshape(H), mb)

    wu = np.concatenate([gate, main]).astype(np.float64)
    w, u, b = wu[:, :I], wu[:, I:], np.concatenate([gb, mb]).astype(np.float64)
    ref_h0 = h0.reshape(N, H).astype(np.float64) if init else None
    hs, saved = R.gru_forward(x.reshape(T, N, I).astype(np.float64), w, u, b, ref_h0)
    np.testing.assert_allclose(got.reshape(T, N, H), hs, rtol=RTOL, atol=ATOL)

    be = engine.backend
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    xs = [be.asarray(x)] + ([be.asarray(h0)] if init else [])
    gru._grads.clear()
    gru._forward(be, xs, False)
    dxs = gru._backward(be, [be.asarray(dy)], [True] * len(xs))
    dx, dw, du, db, dh0 = R.gru_backward(dy.reshape(T, N, H).astype(np.float64), saved)
    np.testing.assert_allclose(_host(be, dxs[0]).reshape(T, N, I), dx, rtol=RTOL, atol=ATOL)
    for k, ref in (("w", dw), ("u", du), ("b", db)):
        np.testing.assert_allclose(_host(be, gru._grads[k]), ref, rtol=RTOL, atol=ATOL)
    if init:
        np.testing.assert_allclose(_host(be, dxs[1]).reshape(N, H), dh0, rtol=RTOL, atol=ATOL)

    # setting a weights property after the first run rewrites the op's rows
    gru.main_weights = _blob(engine, np.zeros((1, H, 1, 1, 1, 1, I + H), np.float32))
    assert np.all(_host(be, gru._params["w"])[2 * H:] == 0)
    np.testing.assert_array_equal(_host(be, gru._params["w"])[:2 * H], gate[:, :I])


def test_irnn_initialisation_and_forward(engine):
    T, N, I, H = 5, 3, 4, 6
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    dnn, (src,) = _net(engine)
    irnn = neoml.Dnn.Irnn(src, H, identity_scale=0.5, input_weight_std=0.1, reverse_seq=True)
    neoml.Dnn.Sink(irnn, name="out")
    got = dnn.run({"s0": _blob(engine, x)})["out"].asarray()
    U = irnn.recurrent_weights.asarray(keep_dims=True)
    assert U.shape == (1, H, 1, 1, 1, 1, H)
    np.testing.assert_array_equal(U.reshape(H, H), 0.5 * np.eye(H, dtype=np.float32))
    W = irnn.input_weights.asarray(keep_dims=True)
    assert W.shape == (1, H, 1, 1, 1, 1, I)
    assert 0.03 < W.std() < 0.25               # N(0, 0.1^2), 24 draws
    assert np.all(irnn.input_free_term.asarray() == 0)

    be = engine.backend
    b = _host(be, irnn._params["input_free_term"]) + _host(be, irnn._params["recurrent_free_term"])
    hs, saved = R.rnn_forward(x.reshape(T, N, I).astype(np.float64), W.reshape(H, I).astype(
        np.float64), U.reshape(H, H).astype(np.float64), b, None, activation="relu",
        reverse=True)
    np.testing.assert_allclose(got.reshape(T, N, H), hs, rtol=RTOL, atol=ATOL)
    dy = rng.normal(0, 1, (T, N, 1, 1, 1, 1, H)).astype(np.float32)
    irnn._forward(be, [be.asarray(x)], False)
    (dx,) = irnn._backward(be, [be.asarray(dy)], [True])
    rdx, rdw, rdu, rdb, _ = R.rnn_backward(dy.reshape(T, N, H).astype(np.float64), saved)
    np.testing.assert_allclose(_host(be, dx).reshape(T, N, I), rdx, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_host(be, irnn._grads["recurrent_weights"]), rdu, rtol=RTOL,
                               atol=ATOL)
    np.testing.assert_allclose(_host(be, irnn._grads["recurrent_free_term"]), rdb, rtol=RTOL,
                               atol=ATOL)


def test_properties_readable_and_settable(engine):
    dnn, (src,) = _net(engine)
    lstm = neoml.Dnn.Lstm(src)
    assert (lstm.hidden_size, lstm.dropout, lstm.activation, lstm.reverse_sequence) == \
        (1, 0.0, "sigmoid", False)
    assert lstm.input_weights is None and lstm.recurrent_free_term is None
    lstm.hidden_size, lstm.dropout_rate, lstm.reverse_sequence = 4, 0.25, True
    lstm.recurrent_activation = "sigmoid"
    assert (lstm.hidden_size, lstm.dropout, lstm.dropout_rate, lstm.reverse_seq,
            lstm.recurrent_activation) == (4, 0.25, 0.25, True, "sigmoid")
    assert lstm.OPS == ("lstm", "dropout") and neoml.Dnn.Lstm in neoml.Dnn.LAYERS
    gru = neoml.Dnn.Gru(src, 3)
    assert gru.hidden_size == 3 and gru.gate_weights is None and gru.OPS == ("gru",)
    gru.hidden_size = 2
    assert gru.hidden_size == 2
    irnn = neoml.Dnn.Irnn(src)
    assert (irnn.hidden_size, irnn.identity_scale, irnn.input_weight_std,
            irnn.reverse_sequence) == (1, 1.0, 0.001, False)
    irnn.hidden_size, irnn.identity_scale, irnn.input_weight_std = 3, 2.0, 0.5
    irnn.reverse_sequence = True
    assert (irnn.hidden_size, irnn.identity_scale, irnn.input_weight_std,
            irnn.reverse_seq) == (3, 2.0, 0.5, True)
    assert irnn.OPS == ("rnn",)
    # changing the hidden size drops weights that no longer fit
    x = np.ones((2, 1, 1, 1, 1, 1, 2), np.float32)
    dnn.run({"s0": _blob(engine, x)})
    assert lstm.input_weights.asarray(keep_dims=True).shape == (1, 16, 1, 1, 1, 1, 2)
    lstm.hidden_size = 2
    assert lstm.input_weights is None


def test_lstm_dropout_only_in_training(engine):
    dnn, (src,) = _net(engine)
    lstm = neoml.Dnn.Lstm(src, 3, dropout_rate=0.5)
    x = np.ones((4, 8, 1, 1, 1, 1, 5), np.float32)
    be = engine.backend
    dnn.run({"s0": _blob(engine, x)})                    # the first run fills the weights
    a = _host(be, lstm._forward(be, [be.asarray(x)], False)[0])
    b = _host(be, lstm._forward(be, [be.asarray(x)], False)[0])
    np.testing.assert_array_equal(a, b)                       # run: no dropout
    c = _host(be, lstm._forward(be, [be.asarray(x)], True)[0])
    assert not np.allclose(b, c)                              # training: inputs dropped
    (dx,) = lstm._backward(be, [be.asarray(np.ones_like(c, dtype=np.float32)), None], [True])
    dx = _host(be, dx)
    assert np.any(dx == 0) and np.any(dx != 0)                # dropped inputs get no gradient


def test_lstm_learns_a_toy_sequence_task(engine):
    """Remember the first step: target = the sign of x[0] read after the last step."""
    T, N, H = 5, 16, 8
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], size=(T, N, 1, 1, 1, 1, 1)).astype(np.float32)
    x[1:] *= 0.3
    t = x[0].reshape(1, N, 1, 1, 1, 1, 1).copy()
    dnn, (xs, ts) = _net(engine, 2)
    lstm = neoml.Dnn.Lstm(xs, H)
    last = neoml.Dnn.SubSequence(lstm, start_pos=-1, length=1)
    fc = neoml.Dnn.FullyConnected(last, 1)
    loss = neoml.Dnn.EuclideanLoss([fc, ts])
    dnn.solver = neoml.Dnn.AdaptiveGradient(engine, learning_rate=0.05)
    feeds = {"s0": _blob(engine, x), "s1": _blob(engine, t)}
    losses = []
    for _ in range(60):
        dnn.learn(feeds)
        losses.append(loss.last_loss)
    assert losses[-1] < 0.25 * losses[0], losses[::10]


def test_errors_name_the_layer(engine):
    dnn, (src,) = _net(engine, 1)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ParameterError, match=r"Lstm 'l'.*hidden_size"):
            neoml.Dnn.Lstm(src, bad, name="l")
        with pytest.raises(ParameterError, match=r"Gru 'g'.*hidden_size"):
            neoml.Dnn.Gru(src, bad, name="g")
        with pytest.raises(ParameterError, match=r"Irnn 'i'.*hidden_size"):
            neoml.Dnn.Irnn(src, bad, name="i")
    with pytest.raises(ParameterError, match=r"Lstm 'l'.*activation.*'softmax'"):
        neoml.Dnn.Lstm(src, 2, activation="softmax", name="l")
    with pytest.raises(ParameterError, match=r"Lstm 'l'.*activation.*'swish'"):
        neoml.Dnn.Lstm(src, 2, name="l").recurrent_activation = "swish"
    with pytest.raises(ParameterError, match=r"Lstm 'l'.*dropout_rate"):
        neoml.Dnn.Lstm(src, 2, dropout_rate=1.0, name="l")

    dnn, srcs = _net(engine, 3)
    lstm = neoml.Dnn.Lstm(srcs, 3, name="lstm")
    neoml.Dnn.Sink(lstm, name="out")
    x = np.ones((4, 2, 1, 1, 1, 1, 5), np.float32)
    good = np.zeros((1, 2, 1, 1, 1, 1, 3), np.float32)
    for bad in (np.zeros((1, 2, 1, 1, 1, 1, 4), np.float32),     # wrong hidden size
                np.zeros((1, 3, 1, 1, 1, 1, 3), np.float32),     # wrong batch width
                np.zeros((2, 2, 1, 1, 1, 1, 3), np.float32)):    # BatchLength not 1
        with pytest.raises(ShapeError, match=r"Lstm 'lstm': input 2 \(initial previous "
                                             r"output\) must have shape"):
            dnn.run({"s0": _blob(engine, x), "s1": _blob(engine, good),
                     "s2": _blob(engine, bad)})
    with pytest.raises(ShapeError, match=r"Lstm 'lstm': input 1 \(initial cell state\)"):
        dnn.run({"s0": _blob(engine, x), "s1": _blob(engine, good[:, :1]),
                 "s2": _blob(engine, good)})
    with pytest.raises(DTypeError, match=r"Lstm 'lstm'.*float32"):
        dnn.run({"s0": _blob(engine, x.astype(np.int32)), "s1": _blob(engine, good),
                 "s2": _blob(engine, good)})
    dnn.run({"s0": _blob(engine, x), "s1": _blob(engine, good), "s2": _blob(engine, good)})
    with pytest.raises(ShapeError, match=r"Lstm 'lstm': input 0 must have object size.* 5"):
        dnn.run({"s0": _blob(engine, np.ones((4, 2, 1, 1, 1, 1, 6), np.float32)),
                 "s1": _blob(engine, good), "s2": _blob(engine, good)})
    be = engine.backend
    for layer in (lstm, neoml.Dnn.Gru(srcs[0], 2, name="gru"),
                  neoml.Dnn.Irnn(srcs[0], 2, name="irnn")):
        with pytest.raises(ShapeError, match=rf"{type(layer).__name__} '{layer.name}': input 0 "
                                             r"must be a 7-D blob"):
            layer._forward(be, [be.asarray(np.ones((4, 2, 5), np.float32))], False)
    with pytest.raises(ShapeError, match=r"Lstm 'lstm': recurrent_weights must be a blob"):
        lstm.recurrent_weights = _blob(engine, np.ones((1, 12, 1, 1, 1, 1, 2), np.float32))
    gru = dnn.layers["gru"]
    with pytest.raises(ShapeError, match=r"Gru 'gru': gate_weights must be a blob"):
        gru.gate_weights = _blob(engine, np.ones((1, 3, 1, 1, 1, 1, 7), np.float32))


def test_store_and_load_keep_the_weights(engine, tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (3, 2, 1, 1, 1, 1, 4)).astype(np.float32)
    dnn, (src,) = _net(engine)
    lstm = neoml.Dnn.Lstm(src, 3, name="lstm")
    gru = neoml.Dnn.Gru(lstm, 2, name="gru")
    neoml.Dnn.Sink(gru, name="out")
    before = dnn.run({"s0": _blob(engine, x)})["out"].asarray().copy()
    dnn.store(str(tmp_path / "net.pkl"))
    dnn2, _ = _net(engine)
    dnn2.load(str(tmp_path / "net.pkl"))
    after = dnn2.run({"s0": _blob(engine, x)})["out"].asarray()
    np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(dnn2.layers["gru"].gate_weights.asarray(),
                                  gru.gate_weights.asarray())


def _train_small_net(engine, steps=3):
    """Lstm -> Gru -> Irnn -> SequenceSum -> loss, a few learns from the same seed."""
    rng = np.random.default_rng(9)
    x = rng.normal(0, 1, (4, 3, 1, 1, 1, 1, 2)).astype(np.float32)
    t = rng.normal(0, 1, (1, 3, 1, 1, 1, 1, 2)).astype(np.float32)
    dnn, (xs, ts) = _net(engine, 2)
    y = neoml.Dnn.Lstm(xs, 3, reverse_seq=True, name="lstm")
    y = neoml.Dnn.Gru(y, 4, name="gru")
    y = neoml.Dnn.Irnn(y, 2, input_weight_std=0.3, name="irnn")
    y = neoml.Dnn.SequenceSum(y)
    neoml.Dnn.EuclideanLoss([y, ts])
    feeds = {"s0": _blob(engine, x), "s1": _blob(engine, t)}
    for _ in range(steps):
        dnn.learn(feeds)
    be = engine.backend
    return {(n, k): _host(be, a) for n in ("lstm", "gru", "irnn")
            for k, a in dnn.layers[n]._params.items()}


def test_same_seed_same_training_on_every_engine(fast_engine):
    """One seed gives the same initial weights and (to float32 rounding) the same three
    SGD steps on the reference, cpu and OpenCL engines."""
    ref = _train_small_net(neoml.MathEngine.ReferenceMathEngine())
    got = _train_small_net(fast_engine)
    start = _train_small_net(neoml.MathEngine.ReferenceMathEngine(), steps=1)
    assert all(not np.allclose(start[k], ref[k]) for k in ref if "weights" in k[1]
               or k[1] == "w")                    # the steps did move every weight matrix
    assert ref.keys() == got.keys()
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=str(k))


# ============================================================= IndRnn and Qrnn
from refnn.ops import channelwise as CW  # noqa: E402


@pytest.mark.parametrize("activation,reverse", [("relu", False), ("sigmoid", True)])
def test_indrnn_vs_reference(engine, activation, reverse):
    T, BW, LS, I, H = 5, 2, 2, 3, 17
    N = BW * LS
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, (T, BW, LS, 1, 1, 1, I)).astype(np.float32)
    W = rng.normal(0, 0.5, (H, I)).astype(np.float32)
    u = rng.uniform(-1, 1, H).astype(np.float32)
    b = rng.normal(0, 0.5, H).astype(np.float32)
    dnn, (src,) = _net(engine)
    ind = neoml.Dnn.IndRnn(src, H, reverse_sequence=reverse, activation=activation,
                           name="ind")
    ind.input_weights = _blob(engine, W.reshape(1, H, 1, 1, 1, 1, I))
    ind.recurrent_weights = _blob(engine, u.reshape(1, 1, 1, 1, 1, 1, H))
    ind.bias = _blob(engine, b.reshape(H, 1, 1, 1, 1, 1, 1))
    neoml.Dnn.Sink(ind, name="out")
    got = dnn.run({"s0": _blob(engine, x)})["out"].asarray(keep_dims=True)
    assert got.shape == (T, BW, LS, 1, 1, 1, H)
    f64 = lambda a: a.astype(np.float64)
    hs, saved = R.indrnn_forward(f64(x.reshape(T, N, I)), f64(W), f64(u), f64(b), None,
                                 activation=activation, reverse=reverse)
    np.testing.assert_allclose(got.reshape(T, N, H), hs, rtol=RTOL, atol=ATOL)
    be = engine.backend
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    ind._grads.clear()
    ind._forward(be, [be.asarray(x)], False)
    (dx,) = ind._backward(be, [be.asarray(dy)], [True])
    rdx, rdw, rdu, rdb, _ = R.indrnn_backward(f64(dy.reshape(T, N, H)), saved)
    np.testing.assert_allclose(_host(be, dx).reshape(T, N, I), rdx, rtol=RTOL, atol=ATOL)
    for k, ref in (("input_weights", rdw), ("recurrent_weights", rdu), ("bias", rdb)):
        np.testing.assert_allclose(_host(be, ind._grads[k]), ref, rtol=RTOL, atol=ATOL)
    assert ind.bias.asarray(keep_dims=True).shape == (H, 1, 1, 1, 1, 1, 1)
    assert ind.recurrent_weights.asarray(keep_dims=True).shape == (1, 1, 1, 1, 1, 1, H)


def _qrnn_reference(x3, w, b, pooling, mode, h0a, h0b, H, activation="tanh", stride=1,
                    pads=(0, 0)):
    """float64 oracle: time_conv + bias, activations per block, qrnn pooling(s)."""
    a, s_tc = CW.time_conv_forward(x3, w, stride, pads[0], pads[1], 1)
    a = a + b
    To, N, GH = a.shape
    act = {"tanh": np.tanh, "linear": lambda v: v, "relu": lambda v: np.maximum(v, 0)}
    g = 1 / (1 + np.exp(-a))
    g[:, :, :H] = act[activation](a[:, :, :H])
    if mode in ("direct", "reverse"):
        hs, sq = R.qrnn_forward(g, h0a, pooling, reverse=mode == "reverse")
        return hs, (s_tc, a, g, [sq])
    h1, s1 = R.qrnn_forward(g, h0a, pooling, reverse=False)
    h2, s2 = R.qrnn_forward(g, h0b, pooling, reverse=True)
    y = h1 + h2 if mode == "bidirectional_sum" else np.concatenate([h1, h2], axis=2)
    return y, (s_tc, a, g, [s1, s2])


def _qrnn_reference_backward(dy, saved, mode, H, activation="tanh"):
    s_tc, a, g, pools = saved
    if len(pools) == 1:
        dhs = [dy]
    elif mode == "bidirectional_sum":
        dhs = [dy, dy]
    else:
        dhs = [dy[:, :, :H], dy[:, :, H:]]
    dg, dh0s = 0, []
    for dh, sq in zip(dhs, pools):
        d, dh0 = R.qrnn_backward(dh, sq)
        dg, dh0s = dg + d, dh0s + [dh0]
    da = dg * g * (1 - g)
    dact = {"tanh": lambda: 1 - g[:, :, :H] ** 2, "linear": lambda: 1.0,
            "relu": lambda: (a[:, :, :H] > 0) * 1.0}[activation]()
    da[:, :, :H] = dg[:, :, :H] * dact
    dx, dw = CW.time_conv_backward(da, s_tc)
    return dx, dw, da.sum(axis=(0, 1)), dh0s


QRNN_CASES = [  # pooling, mode, T, N, I, H, window, stride, paddings, initial states
    ("f", "direct", 6, 2, 3, 4, 2, 1, (1, 0), False),
    ("fo", "reverse", 5, 1, 2, 3, 1, 1, (0, 0), True),
    ("ifo", "bidirectional_concat", 7, 3, 2, 5, 3, 2, (2, 1), True),
    ("fo", "bidirectional_sum", 4, 2, 1, 17, 2, 3, (1, 2), False),
    ("ifo", "direct", 1, 1, 1, 1, 1, 1, (0, 0), True),
]


@pytest.mark.parametrize("case", QRNN_CASES)
def test_qrnn_vs_reference(engine, case):
    pooling, mode, T, N, I, H, K, stride, pads, init = case
    G = {"f": 2, "fo": 3, "ifo": 4}[pooling]
    rng = np.random.default_rng(12)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    w = rng.normal(0, 0.5, (G * H, K, I)).astype(np.float32)
    b = rng.normal(0, 0.5, G * H).astype(np.float32)
    h0a = rng.normal(0, 1, (1, N, 1, 1, 1, 1, H)).astype(np.float32)
    h0b = rng.normal(0, 1, (1, N, 1, 1, 1, 1, H)).astype(np.float32)
    bidir = mode.startswith("bidirectional")
    n_in = (3 if bidir else 2) if init else 1
    dnn, srcs = _net(engine, n_in)
    q = neoml.Dnn.Qrnn(srcs, pooling, H, K, stride, pads, mode=mode, name="q")
    q.filter = _blob(engine, w.reshape(1, G * H, 1, K, 1, 1, I))
    q.free_term = _blob(engine, b.reshape(G * H, 1, 1, 1, 1, 1, 1))
    neoml.Dnn.Sink(q, name="out")
    feeds = {"s0": _blob(engine, x)}
    if init:
        feeds["s1"] = _blob(engine, h0a)
        if bidir:
            feeds["s2"] = _blob(engine, h0b)
    got = dnn.run(feeds)["out"].asarray(keep_dims=True)
    f64 = lambda a: a.astype(np.float64)
    ra = f64(h0a.reshape(N, H)) if init else None
    rb = f64(h0b.reshape(N, H)) if init and bidir else None
    y, saved = _qrnn_reference(f64(x.reshape(T, N, I)), f64(w), f64(b), pooling, mode, ra,
                               rb, H, stride=stride, pads=pads)
    To = (T + pads[0] + pads[1] - K) // stride + 1
    Hout = 2 * H if mode == "bidirectional_concat" else H
    assert got.shape == (To, N, 1, 1, 1, 1, Hout) and y.shape == (To, N, Hout)
    np.testing.assert_allclose(got.reshape(y.shape), y, rtol=RTOL, atol=ATOL)

    be = engine.backend
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    xs = [be.asarray(x)] + [be.asarray(h) for h in (h0a, h0b)[:n_in - 1]]
    q._grads.clear()
    q._forward(be, xs, False)
    dxs = q._backward(be, [be.asarray(dy)], [True] * n_in)
    rdx, rdw, rdb, rdh0 = _qrnn_reference_backward(f64(dy.reshape(y.shape)), saved, mode, H)
    np.testing.assert_allclose(_host(be, dxs[0]).reshape(T, N, I), rdx, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_host(be, q._grads["filter"]), rdw, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_host(be, q._grads["free_term"]), rdb, rtol=RTOL, atol=ATOL)
    for k in range(1, n_in):
        np.testing.assert_allclose(_host(be, dxs[k]).reshape(N, H), rdh0[k - 1], rtol=RTOL,
                                   atol=ATOL)


@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_qrnn_update_activation(engine, activation):
    T, N, I, H = 4, 2, 3, 2
    rng = np.random.default_rng(13)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    dnn, (src,) = _net(engine)
    q = neoml.Dnn.Qrnn(src, "fo", H, activation=activation, name="q")
    neoml.Dnn.Sink(q, name="out")
    got = dnn.run({"s0": _blob(engine, x)})["out"].asarray()
    be = engine.backend
    w, b = _host(be, q._params["filter"]), _host(be, q._params["free_term"])
    y, _ = _qrnn_reference(x.reshape(T, N, I).astype(np.float64), w, b, "fo", "direct", None,
                           None, H, activation=activation)
    np.testing.assert_allclose(got.reshape(y.shape), y, rtol=RTOL, atol=ATOL)
    assert q.filter.asarray(keep_dims=True).shape == (1, 3 * H, 1, 1, 1, 1, I)


def test_qrnn_forget_dropout(engine):
    """Training: f' = 1 + mask * (f - 1) with one mask for every step -- a dropped unit
    keeps its state (f' = 1); run(): no dropout."""
    T, N, I, H = 5, 4, 2, 3
    rng = np.random.default_rng(14)
    x = rng.normal(0, 1, (T, N, 1, 1, 1, 1, I)).astype(np.float32)
    dnn, (src,) = _net(engine)
    q = neoml.Dnn.Qrnn(src, "f", H, dropout=0.5, name="q")
    dnn.run({"s0": _blob(engine, x)})
    be = engine.backend
    plain = _host(be, q._forward(be, [be.asarray(x)], False)[0]).reshape(T, N, H)
    w, b = _host(be, q._params["filter"]), _host(be, q._params["free_term"])
    y, _ = _qrnn_reference(x.reshape(T, N, I).astype(np.float64), w, b, "f", "direct", None,
                           None, H)
    np.testing.assert_allclose(plain, y, rtol=RTOL, atol=ATOL)
    dropped = _host(be, q._forward(be, [be.asarray(x)], True)[0]).reshape(T, N, H)
    kept = np.isclose(dropped, plain, rtol=1e-4, atol=1e-6)
    frozen = np.all(np.isclose(dropped, 0, atol=1e-7), axis=0)   # f' = 1 from c0 = 0
    assert np.all(kept.all(axis=0) | frozen)          # every unit: one mask for all steps
    assert frozen.any() and (~frozen).any()
    dx = q._backward(be, [be.asarray(np.ones((T, N, 1, 1, 1, 1, H), np.float32))], [True])[0]
    assert np.all(np.isfinite(_host(be, dx)))


def test_qrnn_and_indrnn_properties_and_errors(engine):
    dnn, srcs = _net(engine, 3)
    q = neoml.Dnn.Qrnn(srcs[0], name="q")
    assert (q.pooling_type, q.hidden_size, q.window_size, q.stride, q.padding_front,
            q.padding_back, q.activation, q.dropout, q.recurrent_mode) == \
        ("f", 1, 1, 1, 0, 0, "tanh", 0.0, "direct")
    q.pooling_type, q.hidden_size, q.window_size, q.stride = "ifo", 3, 2, 2
    q.padding_front, q.padding_back, q.activation, q.dropout = 1, 2, "relu", 0.3
    q.recurrent_mode = "bidirectional_sum"
    assert (q.pooling_type, q.hidden_size, q.window_size, q.stride, q.padding_front,
            q.padding_back, q.activation, q.dropout, q.recurrent_mode) == \
        ("ifo", 3, 2, 2, 1, 2, "relu", 0.3, "bidirectional_sum")
    assert q.filter is None and q.free_term is None and "qrnn" in q.OPS
    ind = neoml.Dnn.IndRnn(srcs[0], name="ind")
    assert (ind.hidden_size, ind.dropout_rate, ind.reverse_sequence, ind.activation) == \
        (1, 0.0, False, "relu")
    ind.hidden_size, ind.dropout_rate, ind.reverse_sequence, ind.activation = 4, 0.2, True, \
        "sigmoid"
    assert (ind.hidden_size, ind.dropout_rate, ind.reverse_sequence, ind.activation) == \
        (4, 0.2, True, "sigmoid")
    assert ind.OPS == ("indrnn", "dropout")
    for cls in (neoml.Dnn.IndRnn, neoml.Dnn.Qrnn):
        assert cls in neoml.Dnn.LAYERS

    with pytest.raises(ParameterError, match=r"Qrnn 'x'.*pooling_type"):
        neoml.Dnn.Qrnn(srcs[0], "o", name="x")
    with pytest.raises(ParameterError, match=r"Qrnn 'x'.*hidden_size"):
        neoml.Dnn.Qrnn(srcs[0], "f", 0, name="x")
    with pytest.raises(ParameterError, match=r"Qrnn 'x'.*mode"):
        neoml.Dnn.Qrnn(srcs[0], mode="both", name="x")
    with pytest.raises(ParameterError, match=r"Qrnn 'x'.*activation"):
        neoml.Dnn.Qrnn(srcs[0], activation="power", name="x")
    with pytest.raises(ParameterError, match=r"Qrnn 'x'.*paddings"):
        neoml.Dnn.Qrnn(srcs[0], paddings=(1,), name="x")
    with pytest.raises(ParameterError, match=r"IndRnn 'x'.*hidden_size"):
        neoml.Dnn.IndRnn(srcs[0], 0, name="x")
    with pytest.raises(ParameterError, match=r"IndRnn 'x'.*activation"):
        neoml.Dnn.IndRnn(srcs[0], 2, activation="tanh", name="x")

    dnn, srcs = _net(engine, 3)
    q = neoml.Dnn.Qrnn(srcs, "fo", 2, window_size=3, name="q")
    neoml.Dnn.Sink(q, name="out")
    x = np.ones((4, 2, 1, 1, 1, 1, 3), np.float32)
    h = np.zeros((1, 2, 1, 1, 1, 1, 2), np.float32)
    with pytest.raises(ShapeError, match=r"Qrnn 'q': input 2 .*bidirectional"):
        dnn.run({"s0": _blob(engine, x), "s1": _blob(engine, h), "s2": _blob(engine, h)})
    q.recurrent_mode = "bidirectional_concat"
    with pytest.raises(ShapeError, match=r"Qrnn 'q': input 1 \(initial state\) must have"):
        dnn.run({"s0": _blob(engine, x), "s1": _blob(engine, h[..., :1]),
                 "s2": _blob(engine, h)})
    with pytest.raises(ShapeError, match=r"Qrnn 'q'.*time_conv"):
        dnn.run({"s0": _blob(engine, x[:2]), "s1": _blob(engine, h), "s2": _blob(engine, h)})
    be = engine.backend
    with pytest.raises(ShapeError, match=r"Qrnn 'q': input 0 must be a 7-D blob"):
        q._forward(be, [be.asarray(np.ones((4, 2, 3), np.float32))], False)
    with pytest.raises(ShapeError, match=r"Qrnn 'q': filter must have shape"):
        q.filter = _blob(engine, np.ones((1, 5, 1, 3, 1, 1, 3), np.float32))


def test_qrnn_learns(engine):
    """Bidirectional Qrnn -> SequenceSum -> FullyConnected: the loss falls."""
    rng = np.random.default_rng(15)
    x = rng.normal(0, 1, (6, 8, 1, 1, 1, 1, 2)).astype(np.float32)
    t = np.sign(x[0, :, :, :, :, :, :1]).reshape(1, 8, 1, 1, 1, 1, 1).astype(np.float32)
    dnn, (xs, ts) = _net(engine, 2)
    q = neoml.Dnn.Qrnn(xs, "ifo", 6, window_size=2, paddings=(1, 0),
                       mode="bidirectional_concat", dropout=0.1)
    y = neoml.Dnn.FullyConnected(neoml.Dnn.SequenceSum(q), 1)
    loss = neoml.Dnn.EuclideanLoss([y, ts])
    dnn.solver = neoml.Dnn.AdaptiveGradient(engine, learning_rate=0.03)
    feeds = {"s0": _blob(engine, x), "s1": _blob(engine, t)}
    losses = []
    for _ in range(40):
        dnn.learn(feeds)
        losses.append(loss.last_loss)
    assert losses[-1] < 0.5 * losses[0], losses[::8]
