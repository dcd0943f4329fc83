"""Recurrent family beyond the generic contract of test_generic.py: the cell equations
checked by hand on one or two steps, the state semantics (reverse, absent initial state,
continuing a sequence from its last state, the IRNN carry), benchmark-sized steps,
float64 agreement, and the errors (raised before any kernel runs)
on every backend, the reference included.
"""
import numpy as np
import pytest

from refnn.backends.base import BackendError
from refnn.errors import ParameterError, ShapeError
from refnn.ops import recurrent as R
from refnn.testing import assert_backends_agree, check_backward
from refnn.testing.compare import assert_matches_reference
from refnn.testing.pytest_plugin import backend_names, make_backend

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param)


def weights(op, T, N, I, H, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    G = GATES[op]
    return (rng.normal(size=(T, N, I)), rng.normal(size=(G * H, I)) * scale / np.sqrt(I),
            rng.normal(size=(G * H, H)) * scale / np.sqrt(H), rng.normal(size=G * H) * 0.3)


def inputs(op, T, N, I, H, seed=0):
    """The non-state positional inputs of ``op``: (x, w, u, b), or (gates,) for qrnn."""
    rng = np.random.default_rng(seed)
    if op == "indrnn":
        return (rng.normal(size=(T, N, I)), rng.normal(size=(H, I)) / np.sqrt(I),
                rng.uniform(-0.9, 0.9, H), rng.normal(size=H) * 0.3)
    if op == "qrnn":                                  # fo pooling: [z, f, o]
        return (np.concatenate([rng.uniform(-1, 1, (T, N, H)),
                                rng.uniform(0.1, 0.9, (T, N, 2 * H))], axis=2),)
    return weights(op, T, N, I, H, seed)


def n_states(op):
    return 2 if op == "lstm" else 1


def params_of(op):
    return {"pooling": "fo"} if op == "qrnn" else {}


def run(be, op, *args, **params):
    """Forward on backend ``be``; host arrays back (a tuple of outputs)."""
    dev = [None if a is None else be.asarray(a) for a in args]
    out, saved = be.op(op + ".forward")(*dev, **params)
    out = out if isinstance(out, tuple) else (out,)
    return tuple(be.to_host(o) for o in out), saved


def tol(be):
    return 1e-10 if be.dtype == np.float64 else 2e-4


def sig(a):
    return 1 / (1 + np.exp(-a))


# ------------------------------------------------------------------ one step by hand
def test_lstm_one_step_by_hand_in_neoml_gate_order(any_backend):
    x, w, u, b = weights("lstm", 1, 2, 3, 4, seed=1)
    rng = np.random.default_rng(2)
    h0, c0 = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    a = x[0] @ w.T + h0 @ u.T + b
    g, f, i, o = np.tanh(a[:, :4]), sig(a[:, 4:8]), sig(a[:, 8:12]), sig(a[:, 12:])
    c = f * c0 + i * g
    (hs, cs), _ = run(any_backend, "lstm", x, w, u, b, h0, c0)
    np.testing.assert_allclose(cs[0], c, rtol=tol(any_backend), atol=tol(any_backend))
    np.testing.assert_allclose(hs[0], o * np.tanh(c), rtol=tol(any_backend),
                               atol=tol(any_backend))


def test_gru_one_step_resets_before_the_recurrent_product(any_backend):
    x, w, u, b = weights("gru", 1, 2, 3, 4, seed=3)
    h0 = np.random.default_rng(4).normal(size=(2, 4))
    z = sig(x[0] @ w[:4].T + h0 @ u[:4].T + b[:4])
    r = sig(x[0] @ w[4:8].T + h0 @ u[4:8].T + b[4:8])
    n = np.tanh(x[0] @ w[8:].T + (r * h0) @ u[8:].T + b[8:])
    (hs,), _ = run(any_backend, "gru", x, w, u, b, h0)
    np.testing.assert_allclose(hs[0], (1 - z) * n + z * h0, rtol=tol(any_backend),
                               atol=tol(any_backend))
    # PyTorch's variant r * (h u_n^T) gives a different state: the test can tell them apart
    n_torch = np.tanh(x[0] @ w[8:].T + b[8:] + r * (h0 @ u[8:].T))
    assert np.abs((1 - z) * n_torch + z * h0 - hs[0]).max() > 1e-3


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_rnn_one_step_by_hand(any_backend, activation):
    x, w, u, b = weights("rnn", 1, 3, 2, 5, seed=5)
    h0 = np.random.default_rng(6).normal(size=(3, 5))
    z = x[0] @ w.T + h0 @ u.T + b
    want = np.tanh(z) if activation == "tanh" else np.maximum(z, 0)
    (hs,), _ = run(any_backend, "rnn", x, w, u, b, h0, activation=activation)
    np.testing.assert_allclose(hs[0], want, rtol=tol(any_backend), atol=tol(any_backend))


# ---------------------------------------------------------------- state semantics
ALL_OPS = ["rnn", "lstm", "gru", "indrnn", "qrnn"]


@pytest.mark.parametrize("op", ALL_OPS)
def test_reverse_is_the_forward_pass_of_the_flipped_sequence(any_backend, op):
    x, *rest = inputs(op, 6, 2, 3, 5, seed=7)
    back, _ = run(any_backend, op, x, *rest, reverse=True, **params_of(op))
    fwd, _ = run(any_backend, op, x[::-1].copy(), *rest, **params_of(op))
    for o_back, o_fwd in zip(back, fwd):
        np.testing.assert_allclose(o_back, o_fwd[::-1], rtol=tol(any_backend),
                                   atol=tol(any_backend))


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize("reverse", [False, True])
def test_absent_initial_state_is_zeros_and_has_no_gradient(any_backend, op, reverse):
    T, N, H = 4, 3, 7
    args = inputs(op, T, N, 2, H, seed=8)
    k = len(args)
    zeros = [np.zeros((N, H))] * n_states(op)
    be = any_backend
    d = np.random.default_rng(9).normal(size=(T, N, H))
    douts = (be.asarray(d), be.asarray(d)) if op == "lstm" else be.asarray(d)
    outs0, saved0 = run(be, op, *args, reverse=reverse, **params_of(op))
    outs1, saved1 = run(be, op, *args, *zeros, reverse=reverse, **params_of(op))
    for a, c in zip(outs0, outs1):
        np.testing.assert_array_equal(a, c)
    g0 = be.op(op + ".backward")(douts, saved0)
    g1 = be.op(op + ".backward")(douts, saved1)
    assert all(g is None for g in g0[k:]) and all(g is not None for g in g1[k:])
    for a, c in zip(g0[:k], g1[:k]):
        np.testing.assert_allclose(be.to_host(a), be.to_host(c), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["rnn", "lstm", "gru", "indrnn"])
def test_a_sequence_continues_from_its_last_state(any_backend, op):
    """Running steps 0..3 then 4..6 from the state after step 3 equals one run of 0..6
    (qrnn: its state is c, not the output; see test_qrnn_pooling_by_hand)."""
    x, *rest = inputs(op, 7, 2, 3, 5, seed=10)
    whole, _ = run(any_backend, op, x, *rest)
    first, _ = run(any_backend, op, x[:4].copy(), *rest)
    state = [o[-1] for o in first]              # h (and c) after step 3
    second, _ = run(any_backend, op, x[4:].copy(), *rest, *state)
    for k, o in enumerate(whole):
        np.testing.assert_allclose(o, np.concatenate([first[k], second[k]]),
                                   rtol=tol(any_backend), atol=tol(any_backend))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_indrnn_two_steps_by_hand(any_backend, activation):
    x, w, u, b = inputs("indrnn", 2, 3, 4, 5, seed=16)
    h0 = np.random.default_rng(17).normal(size=(3, 5))
    act = {"relu": lambda z: np.maximum(z, 0), "sigmoid": sig, "tanh": np.tanh}[activation]
    h1 = act(x[0] @ w.T + u * h0 + b)
    h2 = act(x[1] @ w.T + u * h1 + b)
    (hs,), _ = run(any_backend, "indrnn", x, w, u, b, h0, activation=activation)
    np.testing.assert_allclose(hs, np.stack([h1, h2]), rtol=tol(any_backend),
                               atol=tol(any_backend))


@pytest.mark.parametrize("pooling", ["f", "fo", "ifo"])
def test_qrnn_pooling_by_hand(any_backend, pooling):
    rng = np.random.default_rng(18)
    N, H = 2, 3
    z, f, o, i = (rng.uniform(-1, 1, (2, N, H)),) + tuple(rng.uniform(0.1, 0.9, (3, 2, N, H)))
    c0 = rng.normal(size=(N, H))
    gates = np.concatenate({"f": [z, f], "fo": [z, f, o], "ifo": [z, f, o, i]}[pooling], 2)
    ig = i if pooling == "ifo" else 1 - f
    c1 = f[0] * c0 + ig[0] * z[0]
    c2 = f[1] * c1 + ig[1] * z[1]
    want = np.stack([c1, c2]) if pooling == "f" else o * np.stack([c1, c2])
    (hs,), _ = run(any_backend, "qrnn", gates, c0, pooling=pooling)
    np.testing.assert_allclose(hs, want, rtol=tol(any_backend), atol=tol(any_backend))


def test_irnn_identity_recurrence_carries_the_state(any_backend):
    """IRNN: relu, u = I, w = 0, b = 0 -- a positive h0 is carried unchanged."""
    T, N, I, H = 5, 2, 3, 4
    h0 = np.random.default_rng(11).uniform(0.5, 2.0, size=(N, H))
    (hs,), _ = run(any_backend, "rnn", np.ones((T, N, I)), np.zeros((H, I)), np.eye(H),
                   np.zeros(H), h0, activation="relu")
    np.testing.assert_allclose(hs, np.broadcast_to(h0, (T, N, H)), rtol=1e-6)


def test_bptt_reaches_the_first_step():
    """The gradient of the last state w.r.t. x[0] is non-zero and numerically right."""
    x, w, u, b = weights("lstm", 12, 1, 2, 3, seed=12, scale=2.0)
    d = np.zeros((12, 1, 3))
    d[-1] = 1.0
    grads = check_backward(R.lstm_forward, R.lstm_backward, [x, w, u, b],
                           douts=(d, np.zeros_like(d)), name="lstm")
    assert np.abs(grads[0][0]).max() > 1e-6
    assert np.abs(grads[0][:-1]).max() > 0


# ------------------------------------------------------------------ sizes, dtypes
@pytest.mark.parametrize("op", ["rnn", "lstm", "gru"])
def test_large_steps(backend, op):
    """Benchmark-sized steps (N * G * H up to 16640 gate values, as many as multi-threaded
    BLAS splits), H not a multiple of any tile, reversed, with an initial state."""
    H = 520 if op == "rnn" else 130
    x, w, u, b = weights(op, 5, 32, 9, H, seed=13)
    assert_backends_agree(op, backend, (x, w, u, b, 0.5 * np.ones((32, H))),
                          {"reverse": True})


@pytest.fixture(scope="module", params=backend_names())
def float64_backend(request):
    try:
        return make_backend(request.param, np.float64)
    except BackendError as err:          # an OpenCL device without cl_khr_fp64
        pytest.skip(str(err))


@pytest.mark.parametrize("op", ALL_OPS)
def test_float64_fast_paths_match_reference(float64_backend, op):
    h0 = np.random.default_rng(15).normal(size=(3, 7))
    args = inputs(op, 9, 3, 4, 7, seed=14) + (h0,) + ((h0 * 0.5,) if op == "lstm" else ())
    params = {"reverse": True, **params_of(op)}
    if op == "indrnn":
        params["activation"] = "tanh"
    _, grads = assert_matches_reference(float64_backend, op, args, params,
                                        dtype=np.float64, rtol=1e-9, atol=1e-11)
    assert len(grads) == len(args) and all(g is not None for g in grads)


# ------------------------------------------------------------------------- errors
BAD = [
    ("rnn", dict(x=(5, 3)), ShapeError, r"rnn: x must be a time-major sequence"),
    ("lstm", dict(x=(2, 3, 4, 1)), ShapeError, r"lstm: x must be a time-major"),
    ("gru", dict(x=(0, 2, 3)), ShapeError, r"gru: x \(T, N, I\) needs T, N, I >= 1"),
    ("lstm", dict(H=0), ShapeError, r"lstm: the hidden size must be >= 1"),
    ("rnn", dict(H=0), ShapeError, r"rnn: the hidden size must be >= 1"),
    ("gru", dict(u=(6, 3)), ShapeError, r"gru: u must have shape \(3\*H, H\)"),
    ("lstm", dict(w=(16, 5)), ShapeError, r"lstm: w must have shape \(16, 3\)"),
    ("rnn", dict(b=(5,)), ShapeError, r"rnn: b must have shape \(4,\)"),
    ("lstm", dict(h0=(3, 4)), ShapeError, r"lstm: the initial state h0 must have shape "
                                          r"\(2, 4\)"),
    ("lstm", dict(c0=(2, 5)), ShapeError, r"lstm: the initial state c0 must have shape"),
    ("gru", dict(h0=(2, 4, 1)), ShapeError, r"gru: the initial state h0"),
]
BAD_ELEMENTWISE = [
    ("indrnn", [(4, 2, 3), (0, 3), (0,), (0,)], {}, ShapeError,
     r"indrnn: the hidden size must be >= 1"),
    ("indrnn", [(4, 2), (5, 2), (5,), (5,)], {}, ShapeError,
     r"indrnn: x must be a time-major sequence"),
    ("indrnn", [(4, 2, 3), (5, 3), (5, 5), (5,)], {}, ShapeError,
     r"indrnn: u must have shape \(5,\) \(one value per hidden unit\)"),
    ("indrnn", [(4, 2, 3), (5, 3), (5,), (5,), (2, 4)], {}, ShapeError,
     r"indrnn: the initial state h0 must have shape \(2, 5\)"),
    ("indrnn", [(4, 2, 3), (5, 3), (5,), (5,)], {"activation": "elu"}, ParameterError,
     r"indrnn: activation must be one of"),
    ("qrnn", [(4, 2, 7)], {"pooling": "fo"}, ShapeError,
     r"qrnn: fo-pooling needs gates of shape \(T, N, 3\*H\)"),
    ("qrnn", [(4, 2, 6), (2, 3)], {"pooling": "fo"}, ShapeError,
     r"qrnn: the initial state h0 must have shape \(2, 2\)"),
    ("qrnn", [(4, 6)], {}, ShapeError, r"qrnn: gates must be a time-major sequence"),
    ("qrnn", [(4, 2, 6)], {"pooling": "io"}, ParameterError, r"qrnn: pooling must be one of"),
]


@pytest.mark.parametrize("op,shapes,params,error,message", BAD_ELEMENTWISE)
def test_elementwise_cells_bad_input(any_backend, op, shapes, params, error, message):
    args = [any_backend.asarray(np.zeros(s)) for s in shapes]
    with pytest.raises(error, match=message):
        any_backend.op(op + ".forward")(*args, **params)


def _bad_args(op, x=(4, 2, 3), H=4, w=None, u=None, b=None, h0=None, c0=None):
    G = GATES[op]
    shapes = [x, w or (G * H, x[-1] if len(x) == 3 else 3), u or (G * H, H), b or (G * H,)]
    if h0 or c0:
        shapes.append(h0 or (x[1], H))
    if c0:
        shapes.append(c0)
    return [np.zeros(s) for s in shapes]


@pytest.mark.parametrize("op,bad,error,message", BAD)
def test_bad_shapes_raise_clear_errors(any_backend, op, bad, error, message):
    args = [any_backend.asarray(a) for a in _bad_args(op, **bad)]
    with pytest.raises(error, match=message):
        any_backend.op(op + ".forward")(*args)


def test_bad_activation(any_backend):
    be = any_backend
    x, w, u, b = (be.asarray(a) for a in weights("rnn", 3, 2, 2, 3))
    with pytest.raises(ParameterError, match=r"rnn: activation must be one of"):
        be.op("rnn.forward")(x, w, u, b, activation="softmax")


def test_bad_upstream_gradient(backend):
    """The fast paths check dout before their unchecked kernels read it."""
    be = backend
    x, w, u, b = (be.asarray(a) for a in weights("rnn", 3, 2, 2, 3))
    _, saved = be.op("rnn.forward")(x, w, u, b)
    with pytest.raises(ShapeError, match=r"rnn: dhs must have shape \(3, 2, 3\)"):
        be.op("rnn.backward")(be.asarray(np.zeros((3, 2, 4))), saved)
    _, saved = be.op("lstm.forward")(*(be.asarray(a) for a in weights("lstm", 3, 2, 2, 3)))
    with pytest.raises(ShapeError, match=r"lstm: the upstream gradient must be a pair"):
        be.op("lstm.backward")(be.asarray(np.zeros((3, 2, 3))), saved)
    with pytest.raises(ShapeError, match=r"lstm: dcs must have shape \(3, 2, 3\)"):
        be.op("lstm.backward")((be.asarray(np.zeros((3, 2, 3))),
                                be.asarray(np.zeros((3, 1, 3)))), saved)


# --------------------------------------------------------------- recurrent dropout
MASKED = ["lstm", "indrnn"]


def _masked_case(op, T=6, N=3, I=4, H=5, seed=20):
    """Inputs with h0 (and c0), a (T, N, H) 0/2 mask (keep 1/2) and douts."""
    rng = np.random.default_rng(seed)
    args = inputs(op, T, N, I, H, seed=seed) + (rng.normal(size=(N, H)),) * n_states(op)
    mask = (rng.random((T, N, H)) < 0.5) * 2.0
    d = rng.normal(size=(T, N, H))
    return args, mask, ((d, d * 0.5) if op == "lstm" else d)


def _fwd_bwd(be, op, args, douts, **params):
    outs, saved = run(be, op, *args, **params)
    d = tuple(be.asarray(x) for x in douts) if op == "lstm" else be.asarray(douts)
    grads = be.op(op + ".backward")(d, saved)
    return outs, tuple(be.to_host(g) for g in grads)


@pytest.mark.parametrize("op", MASKED)
@pytest.mark.parametrize("reverse", [False, True])
def test_mask_of_ones_is_no_dropout(any_backend, op, reverse):
    args, mask, douts = _masked_case(op)
    o0, g0 = _fwd_bwd(any_backend, op, args, douts, reverse=reverse)
    o1, g1 = _fwd_bwd(any_backend, op, args, douts, reverse=reverse,
                      h_mask=any_backend.asarray(np.ones(mask.shape[1:])))
    for a, c in zip(o0 + g0, o1 + g1):
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", MASKED)
@pytest.mark.parametrize("reverse", [False, True])
def test_one_mask_equals_the_same_mask_at_every_step(any_backend, op, reverse):
    args, mask, douts = _masked_case(op)
    T = mask.shape[0]
    o0, g0 = _fwd_bwd(any_backend, op, args, douts, reverse=reverse,
                      h_mask=any_backend.asarray(mask[0]))
    o1, g1 = _fwd_bwd(any_backend, op, args, douts, reverse=reverse,
                      h_mask=any_backend.asarray(np.repeat(mask[:1], T, axis=0)))
    for a, c in zip(o0 + g0, o1 + g1):
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", MASKED)
def test_mask_changes_the_result_and_the_reference_by_hand(any_backend, op):
    """Each masked step equals one unmasked step from the masked state m_t * h_{t-1}
    (the mask acts on the previous state only -- h0 included --, before the recurrent
    product; the cell state is not masked)."""
    args, mask, _ = _masked_case(op, T=2)
    x, w, u, b, h0, *c0 = args
    (o_plain, *_), _ = run(any_backend, op, *args)
    outs, _ = run(any_backend, op, *args, h_mask=any_backend.asarray(mask))
    step0, _ = run(any_backend, op, x[:1].copy(), w, u, b, h0 * mask[0], *c0)
    assert not np.allclose(outs[0][1], o_plain[1])
    # from step 0's state, masked by m_1, one unmasked step gives step 1
    prev = [step0[0][0] * mask[1]] + ([step0[1][0]] if op == "lstm" else [])
    step1, _ = run(any_backend, op, x[1:].copy(), w, u, b, *prev)
    np.testing.assert_allclose(outs[0][0], step0[0][0], rtol=tol(any_backend),
                               atol=tol(any_backend))
    for k in range(len(step1)):
        np.testing.assert_allclose(outs[k][1], step1[k][0], rtol=tol(any_backend),
                                   atol=tol(any_backend))


@pytest.mark.parametrize("op", MASKED)
def test_gradient_flows_only_through_kept_units(any_backend, op):
    """A dropped unit of h_{t-1} gets no gradient through the recurrent product: with one
    mask for all steps, dh0 is 0 exactly where the mask is, and so is the recurrent
    weights' gradient of a unit dropped everywhere (every row of every step)."""
    args, mask, douts = _masked_case(op)
    m = mask[0].copy()
    m[:, 0] = 0                                   # unit 0 dropped for the whole batch
    params = {"activation": "tanh"} if op == "indrnn" else {}   # relu: dead units too
    _, grads = _fwd_bwd(any_backend, op, args, douts, h_mask=any_backend.asarray(m),
                        **params)
    dh0 = grads[4]
    assert np.all(dh0[m == 0] == 0) and np.all(dh0[m != 0] != 0)
    du = grads[2]
    if op == "indrnn":
        assert du[0] == 0 and np.all(du[1:] != 0)
    else:                                          # column 0 of u reads h_{t-1}[:, 0]
        assert np.all(du[:, 0] == 0) and np.all(du[:, 1:] != 0)


@pytest.mark.parametrize("op", MASKED)
@pytest.mark.parametrize("per_step", [False, True])
def test_masked_reference_gradient_and_fast_paths(backend, op, per_step):
    args, mask, douts = _masked_case(op, T=5, N=2, I=3, H=7)
    params = {"reverse": per_step, "h_mask": mask if per_step else mask[2]}
    if op == "indrnn":
        params["activation"] = "tanh"
    check_backward(getattr(R, op + "_forward"), getattr(R, op + "_backward"), args, params,
                   name=op)
    assert_backends_agree(op, backend, args, params)


@pytest.mark.parametrize("op", MASKED)
def test_float64_masked_fast_paths_match_reference(float64_backend, op):
    args, mask, _ = _masked_case(op, T=9, N=3, I=4, H=7, seed=21)
    params = {"reverse": True, "h_mask": mask}
    if op == "indrnn":
        params["activation"] = "sigmoid"
    assert_matches_reference(float64_backend, op, args, params, dtype=np.float64,
                             rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("op", MASKED)
@pytest.mark.parametrize("shape", [(3, 5), (2, 4), (6, 2, 5), (4, 2, 5, 1)])
def test_bad_mask_shape_names_the_op(any_backend, op, shape):
    args, _, _ = _masked_case(op, T=4, N=2, I=3, H=5)
    dev = [any_backend.asarray(a) for a in args]
    with pytest.raises(ShapeError, match=rf"{op}: the recurrent dropout mask h_mask must "
                                         r"have shape \(2, 5\) .*or \(4, 2, 5\)"):
        any_backend.op(op + ".forward")(*dev, h_mask=any_backend.asarray(np.ones(shape)))


# ------------------------------------------------ cpu per-step products (block kernel)
@pytest.mark.parametrize("op", ["lstm", "gru", "lstm masked"])
@pytest.mark.parametrize("avx512", [True, False])
def test_cpu_step_products_blocks_and_remainders(op, avx512):
    """The cpu path's products: refnn._ext.recurrent's AVX-512 kernel on 6- and 4-row x
    64-column blocks (where the CPU has AVX-512F), BLAS on the remainder and everywhere
    with ``avx512_gemm(False)``. Batch 14 (two 6-row blocks + 2 rows) and hidden 70 leave
    remainder rows and columns in every product (lstm: 280 and 70 columns, gru: 140 and
    70); 90 steps make dw's and du's contraction (T * N = 1260) span three of the packed
    kernel's 512-k chunks; the big products' row chunks mix 6- and 4-row blocks."""
    from refnn._ext import recurrent as kernels
    name = op.split()[0]
    be = make_backend("cpu")
    before = kernels.avx512_gemm()
    try:
        assert kernels.avx512_gemm(avx512) == (avx512 and before)
        args, mask, _ = _masked_case(name, T=90, N=14, I=5, H=70, seed=22)
        params = {"reverse": avx512}
        if op == "lstm masked":
            params["h_mask"] = mask
        assert_backends_agree(name, be, args, params)
    finally:
        kernels.avx512_gemm(before)


# ------------------------------------------------------------------ activations
# (rnn ``activation``, lstm / gru ``gate_activation`` and ``activation``)
EVERY_ACTIVATION = ["identity", "relu", ("relu", {"threshold": 0.6}),
                    ("leaky_relu", {"alpha": 0.2}), "elu", ("elu", {"alpha": 0.01}), "abs",
                    "sigmoid", "tanh", "hard_tanh", ("hard_sigmoid", {"slope": 0.3}),
                    ("power", {"exponent": 2.0}), "hswish", "gelu", ("gelu", {"form": "erf"})]


def _act_id(a):
    return a if isinstance(a, str) else f"{a[0]}{list(a[1].values())}"


def _act_params(op, act, role):
    """lstm/gru: ``act`` in ``role`` (the gate or the cell activation), the other one
    non-default too, so the generic kernels always run; rnn: its activation."""
    if op == "rnn":
        return {"activation": act}
    other = "hard_tanh" if role == "gate_activation" else "hard_sigmoid"
    return {role: act, ("activation" if role == "gate_activation"
                        else "gate_activation"): other}


def _act_case(op, seed):
    """A short sequence (an unbounded gate activation compounds the state: see
    refnn/testing/op_inputs/recurrent.py), with both initial states."""
    x, w, u, b = weights(op, 3, 2, 3, 5, seed=seed, scale=0.6)
    rng = np.random.default_rng(seed + 1)
    states = (rng.normal(size=(2, 5)) * 0.5,) * n_states(op)
    return (x, w, u, b) + states


@pytest.mark.parametrize("op, role", [("rnn", "activation"), ("lstm", "gate_activation"),
                                      ("lstm", "activation"), ("gru", "gate_activation"),
                                      ("gru", "activation")])
@pytest.mark.parametrize("act", EVERY_ACTIVATION, ids=_act_id)
def test_every_activation_fast_paths_match_reference(float64_backend, op, act, role):
    """Every activation (unbounded gates included), in either role, on the per-element
    switch kernels: forward and every gradient, float64, reversed."""
    args = _act_case(op, seed=21)
    params = {"reverse": True, **_act_params(op, act, role)}
    assert_matches_reference(float64_backend, op, args, params, dtype=np.float64,
                             rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("op", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("act", EVERY_ACTIVATION, ids=_act_id)
def test_every_activation_reference_gradient(op, act):
    """The reference BPTT with each activation against central differences (values
    drawn away from every kink: seed chosen, checked below)."""
    from refnn.testing.op_inputs.recurrent import _clear_of_kinks
    args = _act_case(op, seed=23)
    role = "activation" if op == "rnn" else "gate_activation"
    params = _act_params(op, act, role)
    assert _clear_of_kinks(op, args, params, margin=1e-4)
    T, N, H = 3, 2, 5
    d = np.random.default_rng(24).normal(size=(T, N, H))
    check_backward(getattr(R, f"{op}_forward"), getattr(R, f"{op}_backward"), list(args),
                   params, douts=(d, 0.5 * d) if op == "lstm" else (d,), name=op)


def test_lstm_activations_one_step_by_hand(any_backend):
    """gate_activation hard_sigmoid and activation relu, one step:
    c = f c0 + i g, h = o relu(c) with f, i, o = clip(0.5 a + 0.5, 0, 1), g = relu(a_g)."""
    x, w, u, b = weights("lstm", 1, 2, 3, 4, seed=31)
    h0, c0 = np.full((2, 4), 0.5), np.full((2, 4), -0.25)
    (hs, cs), _ = run(any_backend, "lstm", x, w, u, b, h0, c0,
                      gate_activation="hard_sigmoid", activation="relu")
    a = x[0] @ w.T + h0 @ u.T + b
    hsig = lambda v: np.clip(0.5 * v + 0.5, 0, 1)        # noqa: E731
    g, f, i, o = np.maximum(a[:, :4], 0), hsig(a[:, 4:8]), hsig(a[:, 8:12]), hsig(a[:, 12:])
    c = f * c0 + i * g
    np.testing.assert_allclose(cs[0], c, rtol=tol(any_backend), atol=tol(any_backend))
    np.testing.assert_allclose(hs[0], o * np.maximum(c, 0), rtol=tol(any_backend),
                               atol=tol(any_backend))


def test_gru_activations_one_step_by_hand(any_backend):
    """gate_activation tanh, activation identity: z, r = tanh, n = a_n + (r h) u_n^T."""
    x, w, u, b = weights("gru", 1, 2, 3, 4, seed=32)
    h0 = np.random.default_rng(33).normal(size=(2, 4))
    (hs,), _ = run(any_backend, "gru", x, w, u, b, h0, gate_activation="tanh",
                   activation="identity")
    a = x[0] @ w.T + b
    z = np.tanh(a[:, :4] + h0 @ u[:4].T)
    r = np.tanh(a[:, 4:8] + h0 @ u[4:8].T)
    n = a[:, 8:] + (r * h0) @ u[8:].T
    np.testing.assert_allclose(hs[0], (1 - z) * n + z * h0, rtol=tol(any_backend),
                               atol=tol(any_backend))


def test_default_activations_spelled_out_are_the_defaults(any_backend):
    """('sigmoid', {}) / 'tanh' spelled out take the same (fused) path as the defaults."""
    args = weights("lstm", 4, 2, 3, 5, seed=34)
    want, _ = run(any_backend, "lstm", *args)
    got, _ = run(any_backend, "lstm", *args, gate_activation=("sigmoid", {}),
                 activation="tanh")
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("op, params, match", [
    ("lstm", {"gate_activation": "softmax"}, r"lstm: gate_activation must be one of"),
    ("gru", {"activation": "swish"}, r"gru: activation must be one of"),
    ("rnn", {"activation": ("relu", {"alpha": 0.1})},
     r"rnn: activation 'relu' takes the parameters \('threshold',\)"),
    ("lstm", {"activation": "leaky_relu"},
     r"lstm: activation 'leaky_relu' needs the parameter\(s\) \['alpha'\]"),
    ("gru", {"gate_activation": ("power", {})}, r"gru: gate_activation 'power' needs"),
    ("lstm", {"activation": ("gelu", {"form": "tanh"})}, r"gelu"),
])
def test_bad_activation_parameters(any_backend, op, params, match):
    be = any_backend
    args = [be.asarray(a) for a in weights(op, 2, 2, 2, 3)]
    with pytest.raises(ParameterError, match=match):
        be.op(op + ".forward")(*args, **params)
