"""Input strategies for the recurrent family: x (T, N, I), w (G*H, I), u (G*H, H), b (G*H,)
and the optional initial states h0 (and c0 for the lstm), drawn present or absent;
indrnn's vector u (H,); the qrnn pooling's gates (T, N, G*H) for f, fo and ifo pooling.

Sequence lengths from 1 (and now and then long: 17 or 30 steps, where BPTT carries a
gradient through many products), batch from 1, hidden sizes that do not divide an
OpenCL tile (1, 2, 3, 5, 7, 13, 17), input sizes 1..5, reverse on or off. Recurrent
weights are scaled by 1/sqrt(H) and each gate block capped at spectral norm 0.9, so that
long sequences neither explode nor vanish.

Values: for tanh, lstm and gru (smooth everywhere) hypothesis draws the arrays (zeros
and other special values included). For the relu rnn the derivative jumps where a
pre-activation crosses 0, which a drawn all-zero input hits exactly: its arrays come
from a drawn seed (continuous normal values, a pre-activation within the numerical
derivative's step of 0 has probability ~1e-6 per element).

Activations (rnn ``activation``, lstm and gru ``gate_activation`` and ``activation``):
the defaults half of the time, else drawn from ACTIVATION_CHOICES (every activation of
refnn.ops.recurrent.CELL_ACTIVATIONS, some with non-default parameters). Gates take
the bounded ones only and so do long sequences: an unbounded gate such as
z = identity(a) compounds the state (x200 in 4 steps), and the float64 numerical
gradient of the small entries next to 1e4 ones is then off by more than rtol 1e-5.
(The unbounded gate activations are checked by tests/ops/test_recurrent.py.) With a
kinked activation (relu, leaky relu, elu, abs, hard tanh/sigmoid, hswish) the arrays
come from a seed and the example is kept only when every pre-activation of a kinked activation is at least 1e-4 from its kinks (100x the
numerical gradient's step; also far beyond float32 rounding, so no path takes the
other branch).

lstm and indrnn also draw their recurrent dropout mask ``h_mask``: absent, one (N, H)
mask for every step, or one per step (T, N, H); entries 0 or 1/keep with keep 0.5, 0.8
(exact reciprocals: the float32 paths see the same values) or 1 (all kept), from a seed.
"""
import numpy as np
from hypothesis import assume, strategies as st

from refnn.ops import recurrent as rec
from refnn.ops.recurrent import GATES, INDRNN_ACTIVATIONS, QRNN_GATES
from refnn.testing import strategies as rst

HIDDEN = (1, 2, 3, 5, 7, 13, 17)
#: bounded activations (any sequence length) and the others (short sequences only)
BOUNDED = ["sigmoid", "tanh", "hard_tanh", "hard_sigmoid",
           ("hard_sigmoid", {"slope": 0.2, "bias": 0.4}), ("relu", {"threshold": 0.7})]
UNBOUNDED = ["identity", "relu", ("leaky_relu", {"alpha": 0.1}), "elu",
             ("elu", {"alpha": 0.01}), "abs", ("power", {"exponent": 2.0}), "hswish",
             "gelu", ("gelu", {"form": "erf"})]
ACTIVATION_CHOICES = BOUNDED + UNBOUNDED


def kinks(spec):
    """The inputs where the derivative of activation_spec ``spec`` jumps."""
    name, params = spec
    params = dict(params)
    if name in ("leaky_relu", "elu", "abs"):
        return (0.0,)
    if name == "relu":
        return (0.0, params["threshold"]) if params["threshold"] > 0 else (0.0,)
    if name == "hard_tanh":
        return (-1.0, 1.0)
    if name == "hard_sigmoid":
        return (-params["bias"] / params["slope"], (1 - params["bias"]) / params["slope"])
    if name == "hswish":
        return (-3.0, 3.0)
    return ()


def _clear_of_kinks(op, args, params, margin=1e-4):
    """True when every pre-activation of a kinked activation is >= margin from its kinks
    (read from the reference's saved activation inputs)."""
    _, saved = getattr(rec, f"{op}_forward")(*args, **params)
    if op == "rnn":
        specs, per_step = [saved[5]], [[s] for s in saved[6]]
    elif op == "gru":
        specs, per_step = [saved[7], saved[8]], saved[9]
    else:                                 # lstm: (g, f, i, o, c) saved per step
        gact, act = saved[10], saved[11]
        specs = [act, gact, gact, gact, act]
        per_step = [s[:5] for s in saved[12]]
    for step in per_step:
        for spec, sv in zip(specs, step):
            for k in kinks(spec):
                if np.min(np.abs(sv[0] - k)) < margin:
                    return False
    return True


def _lengths():
    return st.one_of(st.integers(1, 4), st.sampled_from([17, 30]))


def _h_mask(draw, T, N, H):
    """None, or a recurrent dropout mask (N, H) or (T, N, H) of 0 and 1/keep."""
    shape = draw(st.sampled_from([None, (N, H), (T, N, H)]), "h_mask shape")
    if shape is None:
        return None
    keep = draw(st.sampled_from([0.5, 0.8, 1.0]), "h_mask keep")
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1), "h_mask seed"))
    return (rng.random(shape) < keep) / keep


def _contractive(u, G, H):
    """u with every (H, H) gate block of spectral norm <= 0.9: the 1/sqrt(H) scale alone
    lets a constant drawn block (norm 0.9 sqrt(H)) blow a 17-step BPTT up to ~1e5, where
    the float64 numerical gradient itself is no longer accurate."""
    norm = max(np.linalg.norm(u[g * H:(g + 1) * H], 2) for g in range(G))
    return u * (0.9 / norm) if norm > 0.9 else u


def _clear_of_relu_kinks(op, args, params):
    """True when every relu pre-activation of the sequence is at least 1e-3 from 0.

    Drawn from a seed, a pre-activation closer to 0 than the numerical gradient's step is
    rare per element but not per example (30 steps x 3 x 17 units): the float64 central
    difference then straddles the kink and is wrong, not the analytic gradient.
    """
    x, w, u, b = args[:4]
    h0 = args[4] if len(args) > 4 else None
    forward = rec.rnn_forward if op == "rnn" else rec.indrnn_forward
    hs, _ = forward(*args, **params)
    hprev = rec.previous_states(hs, h0, params["reverse"])
    mask = params.get("h_mask")
    for t in range(len(x)):
        h = hprev[t] if mask is None else rec.mask_at(mask, t) * hprev[t]
        a = x[t] @ w.T + (h @ u.T if op == "rnn" else u * h) + b
        if np.min(np.abs(a)) < 1e-3:
            return False
    return True


def _activations(draw, op, T):
    """{} (the defaults) or the drawn activation parameters of rnn / lstm / gru."""
    if op == "rnn":
        choices = ["tanh", "relu"] + (ACTIVATION_CHOICES if T <= 4 else BOUNDED)
        return {"activation": draw(st.sampled_from(choices), "activation")}
    if draw(st.booleans(), "default activations"):
        return {}
    choices = ACTIVATION_CHOICES if T <= 4 else BOUNDED
    return {"gate_activation": draw(st.sampled_from(BOUNDED), "gate_activation"),
            "activation": draw(st.sampled_from(choices), "activation")}


@st.composite
def _recurrent(draw, op):
    G = len(GATES[op])
    T = draw(_lengths(), "T")
    N = draw(st.integers(1, 3), "batch")
    I = draw(st.integers(1, 5), "input size")
    H = draw(st.sampled_from(HIDDEN), "hidden size")
    reverse = draw(st.booleans(), "reverse")
    acts = _activations(draw, op, T)
    kinked = any(kinks(rec.activation_spec(op, k, v)) for k, v in acts.items())
    n_states = 2 if op == "lstm" else 1
    given = [draw(st.booleans(), f"initial state {k} given") for k in range(n_states)]
    shapes = [((T, N, I), 1.0), ((G * H, I), 1 / np.sqrt(I)), ((G * H, H), 0.9 / np.sqrt(H)),
              ((G * H,), 0.5)] + [((N, H), 1.0)] * n_states
    if kinked:
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1), "seed"))
        arrays = [rng.standard_normal(s) * scale for s, scale in shapes]
    else:
        elements = st.floats(-1, 1, allow_nan=False, allow_infinity=False, width=32)
        arrays = [draw(rst.arrays(s, elements)) * scale for s, scale in shapes]
    x, w, u, b, *states = arrays
    u = _contractive(u, G, H)
    h0 = states[0] if given[0] else None
    if op == "lstm" and given[1]:
        args = (x, w, u, b, h0, states[1])           # h0 may be None: c0 alone
    else:
        args = (x, w, u, b) + (() if h0 is None else (h0,))
    params = {"reverse": reverse, **acts}
    if op == "lstm":
        h_mask = _h_mask(draw, T, N, H)
        if h_mask is not None:
            params["h_mask"] = h_mask
    if kinked:
        assume(_clear_of_kinks(op, args, params))
    return args, params


@st.composite
def _indrnn(draw):
    T = draw(_lengths(), "T")
    N = draw(st.integers(1, 3), "batch")
    I = draw(st.integers(1, 5), "input size")
    H = draw(st.sampled_from(HIDDEN), "hidden size")
    activation = draw(st.sampled_from(INDRNN_ACTIVATIONS), "activation")
    given = draw(st.booleans(), "h0 given")
    shapes = [((T, N, I), 1.0), ((H, I), 1 / np.sqrt(I)), ((H,), 0.9), ((H,), 0.5),
              ((N, H), 1.0)]
    if activation == "relu":             # kinks: values from a seed (module docstring)
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1), "seed"))
        arrays = [rng.uniform(-1, 1, s) * scale for s, scale in shapes]
    else:
        elements = st.floats(-1, 1, allow_nan=False, allow_infinity=False, width=32)
        arrays = [draw(rst.arrays(s, elements)) * scale for s, scale in shapes]
    args = tuple(arrays[:4]) + ((arrays[4],) if given else ())
    params = {"activation": activation, "reverse": draw(st.booleans(), "reverse")}
    h_mask = _h_mask(draw, T, N, H)
    if h_mask is not None:
        params["h_mask"] = h_mask
    if activation == "relu":
        assume(_clear_of_relu_kinks("indrnn", args, params))
    return args, params


@st.composite
def _qrnn(draw):
    T = draw(_lengths(), "T")
    N = draw(st.integers(1, 3), "batch")
    H = draw(st.sampled_from(HIDDEN), "hidden size")
    pooling = draw(st.sampled_from(sorted(QRNN_GATES)), "pooling")
    G = len(QRNN_GATES[pooling])
    z = draw(rst.arrays((T, N, H), st.floats(-1, 1, width=32)), "update gate z")
    rest = draw(rst.arrays((T, N, (G - 1) * H), st.floats(0.0625, 0.9375, width=32)),
                "sigmoid gates")
    gates = np.concatenate([z, rest], axis=2)
    h0 = draw(st.one_of(st.none(), rst.arrays((N, H), st.floats(-1, 1, width=32))), "h0")
    args = (gates,) + (() if h0 is None else (h0,))
    return args, {"pooling": pooling, "reverse": draw(st.booleans(), "reverse")}


INPUTS = {
    "rnn": _recurrent("rnn"),
    "lstm": _recurrent("lstm"),
    "gru": _recurrent("gru"),
    "indrnn": _indrnn(),
    "qrnn": _qrnn(),
}
