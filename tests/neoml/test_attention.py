"""neoml.Dnn.MultiheadAttention against refnn's float64 reference ops, on every engine.

The oracle is an independent per-head NumPy loop of NeoML's formula
(softmax(Q_h K_h^T / sqrt(hidden_size) - 1e9 mask) V_h, heads concatenated, then W_O);
a second check runs the reference op chain (linear, bias, split_heads,
scaled_dot_attention, merge_heads) forward and backward and compares the layer's input
and weight gradients with it.
"""
import math

import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import ParameterError, ShapeError
from refnn.ops import attention as A
from refnn.ops import dense as D

RTOL, ATOL = 2e-3, 2e-4

CASES = [  # (BL, BW, Lq, Lk, Q object (H, W, D, C), Ck, Cv, heads, hidden, out, use_mask)
    (1, 2, 5, 7, (1, 1, 1, 6), 4, 3, 2, 8, 5, False),
    (1, 1, 1, 1, (1, 1, 1, 3), 3, 3, 1, 4, 2, True),
    (2, 3, 4, 6, (1, 1, 1, 5), 5, 2, 4, 12, 3, True),
    (1, 2, 3, 17, (2, 1, 1, 3), 7, 9, 3, 9, 4, False),
]


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _net(engine, case, rng):
    BL, BW, Lq, Lk, qobj, Ck, Cv, H, hid, out, use_mask = case
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    srcs = [neoml.Dnn.Source(dnn, n) for n in ("q", "k", "v", "m")[:4 if use_mask else 3]]
    mha = neoml.Dnn.MultiheadAttention(srcs, H, hid, out, -1, name="mha")
    mha.use_mask = use_mask
    neoml.Dnn.Sink(mha, name="out")
    x = {"q": rng.normal(0, 1, (BL, BW, Lq) + qobj),
         "k": rng.normal(0, 1, (BL, BW, Lk, 1, 1, 1, Ck)),
         "v": rng.normal(0, 1, (BL, BW, Lk, 1, 1, 1, Cv))}
    if use_mask:
        m = (rng.random((Lq, Lk)) < 0.4).astype(float)
        m[:, 0] = 0                                  # every query keeps a key
        x["m"] = m.reshape(1, 1, 1, 1, Lq, 1, Lk)
    x = {n: a.astype(np.float32) for n, a in x.items()}
    Cq = int(np.prod(qobj))
    W = {"q": rng.normal(0, 0.4, (hid, Cq)), "k": rng.normal(0, 0.4, (hid, Ck)),
         "v": rng.normal(0, 0.4, (hid, Cv)), "output": rng.normal(0, 0.4, (out, hid))}
    b = {p: rng.normal(0, 0.3, W[p].shape[0]) for p in W}
    W = {p: w.astype(np.float32) for p, w in W.items()}
    b = {p: v.astype(np.float32) for p, v in b.items()}
    mha.q_weights = _blob(engine, W["q"].reshape((1, hid, 1) + qobj))
    mha.k_weights = _blob(engine, W["k"].reshape(1, hid, 1, 1, 1, 1, Ck))
    mha.v_weights = _blob(engine, W["v"].reshape(1, hid, 1, 1, 1, 1, Cv))
    mha.output_weights = _blob(engine, W["output"].reshape(1, out, 1, 1, 1, 1, hid))
    for p in W:
        setattr(mha, f"{p}_free_term", _blob(engine, b[p].reshape(-1, 1, 1, 1, 1, 1, 1)))
    return dnn, mha, x, W, b


def _oracle(case, x, W, b):
    """NeoML's formula, one head at a time, float64."""
    BL, BW, Lq, Lk, qobj, Ck, Cv, H, hid, out, use_mask = case
    N, dk = BL * BW, hid // H
    q = x["q"].reshape(N, Lq, -1) @ W["q"].T.astype(float) + b["q"]
    k = x["k"].reshape(N, Lk, -1) @ W["k"].T.astype(float) + b["k"]
    v = x["v"].reshape(N, Lk, -1) @ W["v"].T.astype(float) + b["v"]
    heads = []
    for h in range(H):
        sl = slice(h * dk, (h + 1) * dk)
        s = q[:, :, sl] @ k[:, :, sl].transpose(0, 2, 1) / math.sqrt(hid)
        if use_mask:
            s = s - 1e9 * x["m"].reshape(Lq, Lk)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        heads.append(p @ v[:, :, sl])
    y = np.concatenate(heads, axis=-1) @ W["output"].T.astype(float) + b["output"]
    return y.reshape(BL, BW, Lq, 1, 1, 1, out)


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_the_per_head_formula(engine, case):
    rng = np.random.default_rng(0)
    dnn, mha, x, W, b = _net(engine, case, rng)
    got = dnn.run({n: _blob(engine, a) for n, a in x.items()})["out"].asarray(keep_dims=True)
    np.testing.assert_allclose(got, _oracle(case, x, W, b), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", CASES)
def test_backward_matches_the_reference_ops(engine, case):
    BL, BW, Lq, Lk, qobj, Ck, Cv, H, hid, out, use_mask = case
    rng = np.random.default_rng(1)
    dnn, mha, x, W, b = _net(engine, case, rng)
    N = BL * BW
    # the reference chain in float64
    f64 = {n: a.astype(np.float64) for n, a in x.items()}
    sv, heads = {}, []
    for p, L in (("q", Lq), ("k", Lk), ("v", Lk)):
        y, s_lin = D.linear_forward(f64[p].reshape(N * L, -1), W[p].astype(float))
        y, _ = D.bias_forward(y, b[p].astype(float))
        yh, s_split = A.split_heads_forward(y.reshape(N, L, hid), heads=H)
        sv[p] = (s_lin, s_split)
        heads.append(yh)
    mask = -1e9 * f64["m"].reshape(Lq, Lk) if use_mask else None
    att, s_att = A.scaled_dot_attention_forward(*heads, mask, scale=1 / math.sqrt(hid))
    merged, s_merge = A.merge_heads_forward(att, heads=H)
    y, s_out = D.linear_forward(merged.reshape(N * Lq, hid), W["output"].astype(float))
    y = y + b["output"]
    dy = rng.normal(0, 1, (BL, BW, Lq, 1, 1, 1, out)).astype(np.float32)
    d = dy.reshape(N * Lq, out).astype(float)
    want = {"output_free_term": d.sum(0)}
    d, want["output_weights"] = D.linear_backward(d, s_out)
    (d,) = A.merge_heads_backward(d.reshape(N, Lq, hid), s_merge)
    g = A.scaled_dot_attention_backward(d, s_att)
    want_dx = {}
    for p, gh in zip(("q", "k", "v"), g[:3]):
        (dp,) = A.split_heads_backward(gh, sv[p][1])
        dp = dp.reshape(-1, hid)
        want[f"{p}_free_term"] = dp.sum(0)
        want_dx[p], want[f"{p}_weights"] = D.linear_backward(dp, sv[p][0])

    be = engine.backend
    xs = [be.asarray(x[n]) for n in ("q", "k", "v", "m")[:4 if use_mask else 3]]
    mha._grads.clear()
    (y_got,) = mha._forward(be, xs, True)
    np.testing.assert_allclose(be.to_host(y_got).reshape(N * Lq, out), y, rtol=RTOL, atol=ATOL)
    dxs = mha._backward(be, [be.asarray(dy)], [True] * len(xs))
    for p, dx in zip(("q", "k", "v"), dxs):
        assert tuple(dx.shape) == x[p].shape
        np.testing.assert_allclose(be.to_host(dx).reshape(want_dx[p].shape), want_dx[p],
                                   rtol=RTOL, atol=ATOL, err_msg=f"d{p}")
    if use_mask:
        assert dxs[3] is None
    for name, w in want.items():
        np.testing.assert_allclose(be.to_host(mha._grads[name]).reshape(w.shape), w,
                                   rtol=RTOL, atol=ATOL, err_msg=name)


def test_mask_one_blocks_a_key(engine):
    """A masked key (mask 1) gets no weight: the result equals attention without it."""
    rng = np.random.default_rng(2)
    case = (1, 2, 3, 4, (1, 1, 1, 4), 4, 4, 2, 4, 3, True)
    dnn, mha, x, W, b = _net(engine, case, rng)
    x["m"] = np.zeros((1, 1, 1, 1, 3, 1, 4), np.float32)
    x["m"][..., 3] = 1                                   # key 3 blocked for every query
    got = dnn.run({n: _blob(engine, a) for n, a in x.items()})["out"].asarray(keep_dims=True)
    short = dict(x, k=x["k"][:, :, :3], v=x["v"][:, :, :3], m=x["m"][..., :3])
    want = _oracle((1, 2, 3, 3, (1, 1, 1, 4), 4, 4, 2, 4, 3, True), short, W, b)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_properties_weights_and_settings(engine):
    dnn = neoml.Dnn.Dnn(engine)
    srcs = [neoml.Dnn.Source(dnn, n) for n in "qkv"]
    mha = neoml.Dnn.MultiheadAttention(srcs, 2, 6, 5, 0.25, name="att")
    assert (mha.head_count, mha.hidden_size, mha.output_size, mha.dropout_rate,
            mha.use_mask) == (2, 6, 5, 0.25, False)
    assert "scaled_dot_attention" in mha.OPS
    assert mha.q_weights is None and mha.output_free_term is None
    neoml.Dnn.Sink(mha, name="out")
    x = {n: np.ones((1, 2, L, 1, 1, 1, C), np.float32)
         for n, L, C in (("q", 3, 4), ("k", 5, 7), ("v", 5, 2))}
    out = dnn.run({n: _blob(engine, a) for n, a in x.items()})["out"]
    assert tuple(out.shape) == (1, 2, 3, 1, 1, 1, 5)
    assert tuple(mha.q_weights.shape) == (1, 6, 1, 1, 1, 1, 4)
    assert tuple(mha.k_weights.shape) == (1, 6, 1, 1, 1, 1, 7)
    assert tuple(mha.v_weights.shape) == (1, 6, 1, 1, 1, 1, 2)
    assert tuple(mha.output_weights.shape) == (1, 5, 1, 1, 1, 1, 6)
    assert tuple(mha.q_free_term.shape) == (6, 1, 1, 1, 1, 1, 1)
    np.testing.assert_array_equal(mha.output_free_term.asarray(), 0)
    w = mha.q_weights.asarray()                          # Xavier: N(0, 1/fan_in)
    assert 0 < np.std(w) < 1.5
    mha.head_count = 3                                   # NeoML rebuilds: weights go
    assert mha.q_weights is None and mha.head_count == 3
    for attr, v in (("hidden_size", 9), ("output_size", 2), ("dropout_rate", -1),
                    ("use_mask", True)):
        setattr(mha, attr, v)
        assert getattr(mha, attr) == v
    mha.use_mask = False
    out = dnn.run({n: _blob(engine, a) for n, a in x.items()})["out"]
    assert tuple(out.shape) == (1, 2, 3, 1, 1, 1, 2)
    assert tuple(mha.q_weights.shape) == (1, 9, 1, 1, 1, 1, 4)


def test_dropout_only_when_learning(engine):
    rng = np.random.default_rng(4)
    case = (1, 2, 4, 6, (1, 1, 1, 3), 3, 3, 2, 4, 3, False)
    dnn, mha, x, W, b = _net(engine, case, rng)
    blobs = {n: _blob(engine, a) for n, a in x.items()}
    clean = dnn.run(blobs)["out"].asarray()
    np.testing.assert_allclose(clean, _oracle(case, x, W, b).reshape(clean.shape),
                               rtol=RTOL, atol=ATOL)
    mha.dropout_rate = 0.5                              # drops the weights (NeoML)...
    dnn2, mha2, x2, W2, b2 = _net(engine, case, np.random.default_rng(4))
    mha2.dropout_rate = 0.5
    dnn2, mha2, x2, W2, b2 = dnn2, mha2, x2, W2, b2
    for p in W2:                                        # ...so set them again
        setattr(mha2, f"{p}_weights", _blob(engine, W2[p].reshape(
            (1, W2[p].shape[0], 1) + ((1, 1, 1, W2[p].shape[1]) if p != "q"
                                      else (1, 1, 1, 3)))))
        setattr(mha2, f"{p}_free_term", _blob(engine, b2[p].reshape(-1, 1, 1, 1, 1, 1, 1)))
    blobs2 = {n: _blob(engine, a) for n, a in x2.items()}
    np.testing.assert_allclose(dnn2.run(blobs2)["out"].asarray(), clean, rtol=RTOL,
                               atol=ATOL)                # inference: no dropout
    be = engine.backend
    (y,) = mha2._forward(be, [be.asarray(x2[n]) for n in "qkv"], True)
    assert not np.allclose(be.to_host(y).reshape(clean.shape), clean, atol=1e-3)


def test_learn_reduces_a_loss(engine):
    rng = np.random.default_rng(5)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(1))
    srcs = [neoml.Dnn.Source(dnn, n) for n in "qkv"]
    mha = neoml.Dnn.MultiheadAttention(srcs, 2, 8, 3, -1, name="mha")
    lab = neoml.Dnn.Source(dnn, "y")
    loss = neoml.Dnn.EuclideanLoss((mha, lab), name="loss")
    dnn.solver = neoml.Dnn.AdaptiveGradient(dnn.math_engine, learning_rate=0.02)
    x = {"q": rng.normal(0, 1, (1, 4, 5, 1, 1, 1, 3)),
         "k": rng.normal(0, 1, (1, 4, 6, 1, 1, 1, 3)),
         "v": rng.normal(0, 1, (1, 4, 6, 1, 1, 1, 2)),
         "y": rng.normal(0, 0.5, (1, 4, 5, 1, 1, 1, 3))}
    blobs = {n: _blob(engine, a.astype(np.float32)) for n, a in x.items()}
    dnn.learn(blobs)
    first = loss.last_loss
    for _ in range(30):
        dnn.learn(blobs)
    assert loss.last_loss < 0.7 * first


def test_bad_input_names_the_layer(engine):
    dnn = neoml.Dnn.Dnn(engine)
    srcs = [neoml.Dnn.Source(dnn, n) for n in "qkv"]
    with pytest.raises(ParameterError, match="MultiheadAttention 'a'.*multiple of head_count"):
        neoml.Dnn.MultiheadAttention(srcs[:3], 3, 8, 4, -1, name="a")
    with pytest.raises(ParameterError, match="MultiheadAttention 'a'.*hidden_size.*> 0.*0"):
        neoml.Dnn.MultiheadAttention(srcs[:3], 1, 0, 4, -1, name="a")
    with pytest.raises(ParameterError, match="MultiheadAttention 'a'.*dropout_rate.*< 1"):
        neoml.Dnn.MultiheadAttention(srcs[:3], 1, 4, 4, 1.0, name="a")
    with pytest.raises(ParameterError, match="takes 3 to 4 input"):
        neoml.Dnn.MultiheadAttention(srcs[:2], 1, 4, 4, -1, name="a")
    mha = neoml.Dnn.MultiheadAttention(srcs[:3], 2, 4, 4, -1, name="b")
    with pytest.raises(ParameterError, match="MultiheadAttention 'b'.*multiple of head_count"):
        mha.hidden_size = 5
    with pytest.raises(ParameterError, match="MultiheadAttention 'b'.*head_count"):
        mha.head_count = 0
    assert (mha.head_count, mha.hidden_size) == (2, 4)
    neoml.Dnn.Sink(mha, name="out")
    ok = {"q": (1, 2, 3, 1, 1, 1, 4), "k": (1, 2, 5, 1, 1, 1, 4), "v": (1, 2, 5, 1, 1, 1, 4)}

    def run(**shapes):
        blobs = {n: _blob(engine, np.ones(s, np.float32)) for n, s in {**ok, **shapes}.items()}
        return dnn.run(blobs)

    with pytest.raises(ShapeError, match="MultiheadAttention 'b'.*V must have K's ListSize 5"):
        run(v=(1, 2, 4, 1, 1, 1, 4))
    with pytest.raises(ShapeError, match="MultiheadAttention 'b'.*K must have Q's BatchLength"):
        run(k=(1, 3, 5, 1, 1, 1, 4))
    run()
    with pytest.raises(ShapeError, match="MultiheadAttention 'b'.*Q must have object size.* 4 "):
        run(q=(1, 2, 3, 1, 1, 1, 6))
    be = engine.backend
    with pytest.raises(ShapeError, match="MultiheadAttention 'b'.*7-D blob"):
        mha._forward(be, [be.asarray(np.ones((2, 3, 4), np.float32))] * 3, False)
    mha.use_mask = True
    with pytest.raises(ParameterError, match="MultiheadAttention 'b'.*takes 4 inputs"):
        run()
    mha.connect(neoml.Dnn.Source(dnn, "m"), 0, 3)
    with pytest.raises(ShapeError, match="MultiheadAttention 'b'.*mask must hold.*3 x 5"):
        run(m=(1, 1, 1, 1, 5, 1, 3 + 1))
    out = run(m=(1, 1, 1, 1, 3, 1, 5))["out"]
    assert tuple(out.shape) == (1, 2, 3, 1, 1, 1, 4)


# ------------------------------------------------------------------ AttentionDecoder
def _sig(a):
    return 1 / (1 + np.exp(-a))


def _softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _decoder_oracle(X, y0, p, score, L):
    """NeoML's attention decoder equations in float64 (X (T, N, C), y0 (N, O)); p holds the
    layer's parameters, the GRU block in the gru op's rows (z = 1 - u, r, n)."""
    T, N, C = X.shape
    H = p["p_w"].shape[0]
    Xn = X.transpose(1, 0, 2)                                     # (N, T, C)
    P = Xn @ p["p_w"].T + p["p_b"]
    s, y, outs = np.tanh(X[0] @ p["i_w"].T), y0, []
    w, u, b = p["gru_w"], p["gru_u"], p["gru_b"]
    for _ in range(L):
        if score == "additive":
            h = s @ p["s_w"].T
            sc = np.tanh(P + h[:, None, :]) @ p["score_w"]
        else:
            sc = np.einsum("ntc,nc->nt", P, s)
        c = np.einsum("nt,ntc->nc", _softmax(sc), Xn)
        xt = np.concatenate([c, y], axis=1)
        upd = _sig(-(xt @ w[:H].T + s @ u[:H].T + b[:H]))        # NeoML's update gate
        r = _sig(xt @ w[H:2 * H].T + s @ u[H:2 * H].T + b[H:2 * H])
        m = np.tanh(xt @ w[2 * H:].T + (r * s) @ u[2 * H:].T + b[2 * H:])
        y = _softmax(xt @ p["o_wx"].T + s @ p["o_ws"].T + p["o_b"])
        s = upd * m + (1 - upd) * s
        outs.append(y)
    return np.stack(outs)


def _decoder(engine, score, T=5, N=2, C=4, H=3, n_out=3, L=4, seed=0):
    rng = np.random.default_rng(seed)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(2))
    x, y0 = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "y0")
    dec = neoml.Dnn.AttentionDecoder([x, y0], score, H, n_out, L, name="dec")
    neoml.Dnn.Sink(dec, name="out")
    X = rng.normal(0, 1, (T, N, 1, 1, 1, 1, C)).astype(np.float32)
    Y0 = rng.random((1, N, 1, 1, 1, 1, n_out)).astype(np.float32)
    dnn.run({"x": _blob(engine, X), "y0": _blob(engine, Y0)})       # draws the weights
    be = engine.backend
    for k in list(dec._params):                                     # O(1) free terms too
        if k.endswith("_b"):
            dec._params[k] = be.asarray(rng.normal(0, 0.5, dec._params[k].shape)
                                        .astype(np.float32))
    return dnn, dec, X, Y0


@pytest.mark.parametrize("score", ["additive", "dot_product"])
def test_decoder_forward_matches_neoml_equations(engine, score):
    dnn, dec, X, Y0 = _decoder(engine, score)
    be = engine.backend
    p = {k: be.to_host(v).astype(np.float64) for k, v in dec._params.items()}
    got = dnn.run({"x": _blob(engine, X), "y0": _blob(engine, Y0)})["out"].asarray(
        keep_dims=True)
    want = _decoder_oracle(X[:, :, 0, 0, 0, 0].astype(float), Y0.reshape(2, 3).astype(float),
                           p, score, 4)
    assert got.shape == (4, 2, 1, 1, 1, 1, 3)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("score", ["additive", "dot_product"])
def test_decoder_backward_matches_numerical_gradient(engine, score):
    """Input and weight gradients vs central differences of the float64 equations."""
    dnn, dec, X, Y0 = _decoder(engine, score, seed=1)
    be = engine.backend
    p = {k: be.to_host(v).astype(np.float64) for k, v in dec._params.items()}
    X64, y64 = X[:, :, 0, 0, 0, 0].astype(float), Y0.reshape(2, 3).astype(float)
    dy = np.random.default_rng(2).normal(size=(4, 2, 3))

    def loss(Xa=X64, **over):
        return float((_decoder_oracle(Xa, y64, {**p, **over}, score, 4) * dy).sum())

    def numerical(f, a, eps=1e-6):
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            a2 = a.copy()
            a2[i] += eps
            up = f(a2)
            a2[i] -= 2 * eps
            g[i] = (up - f(a2)) / (2 * eps)
        return g

    dec._grads.clear()
    dec._forward(be, [be.asarray(X), be.asarray(Y0)], True)
    dx, dy0 = dec._backward(be, [be.asarray(dy.reshape(4, 2, 1, 1, 1, 1, 3)
                                            .astype(np.float32))], [True, True])
    assert dy0 is None
    np.testing.assert_allclose(be.to_host(dx).reshape(X64.shape),
                               numerical(lambda a: loss(a), X64), rtol=5e-3, atol=5e-4)
    names = ["p_w", "p_b", "i_w", "gru_w", "gru_u", "gru_b", "o_wx", "o_ws", "o_b"]
    names += ["s_w", "score_w"] if score == "additive" else []
    for k in names:
        want = numerical(lambda a: loss(**{k: a}), p[k])
        np.testing.assert_allclose(be.to_host(dec._grads[k]).reshape(want.shape), want,
                                   rtol=5e-3, atol=5e-4, err_msg=k)


def test_decoder_ops_and_the_column_join(engine):
    """The ops the decoder calls (both scores, forward + backward) are exactly its OPS;
    x_t = [c, y_{t-1}] is joined and dx_t split with be.copy_columns (2 + 2 per step)."""
    be = engine.backend
    called, copies = set(), []
    original_op, original_copy = be.op, be.copy_columns

    def op(name):
        called.add(name.split(".")[0])
        return original_op(name)

    def copy_columns(src, src_col0, dst, dst_col0, ncols):
        copies.append((tuple(src.shape), src_col0, tuple(dst.shape), dst_col0, ncols))
        return original_copy(src, src_col0, dst, dst_col0, ncols)

    be.op, be.copy_columns = op, copy_columns
    try:
        for score in ("additive", "dot_product"):
            dnn, dec, X, Y0 = _decoder(engine, score)            # T 5, N 2, C 4, O 3, L 4
            copies.clear()
            dec._forward(be, [be.asarray(X), be.asarray(Y0)], True)
            dec._backward(be, [be.asarray(np.ones((4, 2, 1, 1, 1, 1, 3), np.float32))],
                          [True, True])
            assert copies == [((2, 4), 0, (2, 7), 0, 4), ((2, 3), 0, (2, 7), 4, 3)] * 4 \
                + [((2, 7), 0, (2, 4), 0, 4), ((2, 7), 4, (2, 3), 0, 3)] * 4, score
    finally:
        del be.op, be.copy_columns
    assert called == set(neoml.Dnn.AttentionDecoder.OPS)


def test_decoder_properties_special_character_and_errors(engine):
    dnn = neoml.Dnn.Dnn(engine)
    x, y0 = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "y0")
    with pytest.raises(ParameterError, match="AttentionDecoder 'd'.*score must be"):
        neoml.Dnn.AttentionDecoder([x, y0], "cosine", 4, 3, 2, name="d")
    with pytest.raises(ParameterError, match="AttentionDecoder 'd'.*hidden_size.*> 0.*0"):
        neoml.Dnn.AttentionDecoder([x, y0], "additive", 0, 3, 2, name="d")
    dec = neoml.Dnn.AttentionDecoder([x, y0], "additive", 4, 3, 2, name="dec")
    assert (dec.score, dec.hidden_layer_size, dec.output_object_size, dec.output_seq_len) \
        == ("additive", 4, 3, 2)
    assert "gru" in dec.OPS and "additive_attention" in dec.OPS
    neoml.Dnn.Sink(dec, name="out")
    X = np.random.default_rng(0).normal(size=(3, 2, 1, 1, 1, 1, 5)).astype(np.float32)

    def run(y0_shape, x=X):
        y = np.full(y0_shape, 0.5, np.float32)
        return dnn.run({"x": _blob(engine, x), "y0": _blob(engine, y)})["out"].asarray()

    a = run((1, 1, 1, 1, 1, 1, 1))                   # one number for everything
    b = run((1, 1, 1, 1, 1, 1, 3))                   # one object for every sequence
    c = run((1, 2, 1, 1, 1, 1, 3))                   # one object per sequence
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(a, c, rtol=1e-6)
    dec.output_seq_len = 5                           # keeps the weights
    assert "p_w" in dec._params and run((1, 1, 1, 1, 1, 1, 1)).shape == (5, 2, 3)
    dec.score = "dot_product"                        # NeoML rebuilds: weights drop
    assert not dec._params and dec.score == "dot_product"
    dec.hidden_layer_size, dec.output_object_size = 6, 2
    assert (dec.hidden_layer_size, dec.output_object_size) == (6, 2)
    assert run((1, 1, 1, 1, 1, 1, 1)).shape == (5, 2, 2)
    with pytest.raises(ShapeError, match="AttentionDecoder 'dec'.*special character must "
                                         "hold 1, output_object_size=2"):
        run((1, 1, 1, 1, 1, 1, 3))
    with pytest.raises(ShapeError, match="AttentionDecoder 'dec'.*object size.*5.*got 4"):
        run((1, 1, 1, 1, 1, 1, 1), X[..., :4].copy())
    with pytest.raises(ShapeError, match="AttentionDecoder 'dec'.*ListSize 1"):
        run((1, 1, 1, 1, 1, 1, 1), np.zeros((3, 1, 2, 1, 1, 1, 5), np.float32))
    be = engine.backend
    with pytest.raises(ShapeError, match="AttentionDecoder 'dec'.*7-D blob"):
        dec._forward(be, [be.asarray(np.zeros((3, 5), np.float32))] * 2, False)
    with pytest.raises(ParameterError, match="AttentionDecoder 'dec'.*output_seq_len"):
        dec.output_seq_len = 0


def test_decoder_learns(engine):
    """A few Adam steps lower a loss through the decoder (gradients reach every weight)."""
    rng = np.random.default_rng(3)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(4))
    x, y0, lab = (neoml.Dnn.Source(dnn, n) for n in ("x", "y0", "lab"))
    dec = neoml.Dnn.AttentionDecoder([x, y0], "additive", 8, 3, 3, name="dec")
    loss = neoml.Dnn.EuclideanLoss((dec, lab), name="loss")
    dnn.solver = neoml.Dnn.AdaptiveGradient(dnn.math_engine, learning_rate=0.05)
    target = np.zeros((3, 4, 1, 1, 1, 1, 3), np.float32)
    target[..., 0] = 1
    blobs = {"x": _blob(engine, rng.normal(size=(5, 4, 1, 1, 1, 1, 2)).astype(np.float32)),
             "y0": _blob(engine, np.zeros((1, 1, 1, 1, 1, 1, 1), np.float32)),
             "lab": _blob(engine, target)}
    dnn.learn(blobs)
    first = loss.last_loss
    for _ in range(25):
        dnn.learn(blobs)
    assert loss.last_loss < 0.5 * first


def test_store_and_load_keep_both_layers_results(engine, tmp_path):
    def build():
        dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(0))
        x, y0 = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "y0")
        neoml.Dnn.Sink(neoml.Dnn.AttentionDecoder([x, y0], "additive", 5, 3, 4, name="dec"),
                       name="out")
        neoml.Dnn.Sink(neoml.Dnn.MultiheadAttention([x, x, x], 2, 4, 2, -1, name="mha"),
                       name="out2")
        return dnn
    X = np.random.default_rng(0).normal(size=(6, 2, 1, 1, 1, 1, 7)).astype(np.float32)
    inputs = {"x": _blob(engine, X), "y0": _blob(engine, np.zeros((1,) * 7, np.float32))}
    dnn = build()
    first = {k: v.asarray() for k, v in dnn.run(inputs).items()}
    dnn.store(str(tmp_path / "att.pkl"))
    other = neoml.Dnn.Dnn(engine)
    other.load(str(tmp_path / "att.pkl"))
    again = other.run(inputs)
    for k in ("out", "out2"):
        np.testing.assert_array_equal(again[k].asarray(), first[k])
