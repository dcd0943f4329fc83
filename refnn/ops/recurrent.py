"""Recurrent family: simple RNN, LSTM and GRU over a whole sequence, with backpropagation
through time (BPTT).

Canonical layout (time-major): the input ``x`` is (T, N, I) -- T time steps of a batch of
N vectors of I features; every op returns all hidden states ``hs`` (T, N, H). Weights of a
cell with G gate blocks (G = 1 for rnn, 4 for lstm, 3 for gru) are

    w (G*H, I)   input weights        u (G*H, H)   recurrent weights    b (G*H,)  free term

row block k of w, u and b belongs to gate k (the order is NeoML's, given per op below).
NeoML keeps one free term for the input and one for the recurrent product; they are only
ever added, so the op takes their sum ``b`` and the facades hand ``db`` to both.

Recurrent dropout: ``lstm`` and ``indrnn`` take an optional keyword ``h_mask``, a dropout
mask multiplied onto the previous state before the recurrent product (already scaled,
its entries 0 or 1/(1 - rate)). It is (N, H) -- one mask for every step of the sequence,
NeoML's variational dropout (its IndRnn draws one batch x hidden mask per sequence, its
Dropout layer keeps one mask over a recurrent sequence) -- or (T, N, H), a mask per
step (``h_mask[t]`` belongs to input step t, the step that reads the previous state).
``None`` (the default) means no dropout. The mask is not differentiable: the backward
returns the same gradients as without it.

Initial state: ``h0`` (N, H) (and ``c0`` (N, H) for the lstm) are optional positional
inputs; ``None`` (the default) means zeros, and the backward then returns ``None`` for
them. ``reverse=True`` runs the recurrence from the last step to the first (step t then
follows step t + 1); the outputs stay in place: ``hs[t]`` is still the state at input t.

Forward, one step (``h`` is the previous state in processing order):

    z_t = x_t w^T + h u^T + b            the G*H pre-activations of the gates

BPTT is the backward pass of the unrolled loop: walk the steps in the opposite order,
carrying ``dh`` (the gradient reaching the previous state through u) from step to step:

    dz_t = (dhs[t] + dh_next) * (gate derivatives)     dh_next = dz_t u
    dx_t = dz_t w      dw = sum_t dz_t^T x_t      du = sum_t dz_t^T h_{t-1}      db = sum_t,n dz_t

The fast paths do exactly this, but the input projection of all steps (and dx, dw, du,
db) is one matrix product over the T*N rows instead of T small ones.

Two cells are elementwise in time -- each of the N*H state entries has its own
recurrence, so there is no recurrent matrix product: ``indrnn`` (u is a vector) and
``qrnn`` (the recurrent pooling of a quasi-recurrent network, over gates computed
beforehand by a time convolution).

``check_sequence`` (``check_indrnn``, ``check_qrnn``) is the one validation: every path
calls it before any kernel runs.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.ops import activation as _act
from refnn.ops._spec import OpSpec

#: gate blocks per op, and their names in row order of w, u and b
GATES = {"rnn": ("h",), "lstm": ("g", "f", "i", "o"), "gru": ("z", "r", "n")}
ACTIVATIONS = ("tanh", "relu")
INDRNN_ACTIVATIONS = ("relu", "sigmoid", "tanh")
#: qrnn pooling -> its gate blocks, in the order of the gates input
QRNN_GATES = {"f": ("z", "f"), "fo": ("z", "f", "o"), "ifo": ("z", "f", "o", "i")}


def check_sequence(op, x_shape, w_shape, u_shape, b_shape, h0_shape=None, c0_shape=None):
    """Validate the shapes of a recurrent op; return (T, N, I, H).

    Raises ShapeError (naming ``op``) for a wrong rank, an empty sequence, batch, input
    or hidden size (hidden size 0 included), weights that do not fit x or each other,
    and an initial state that is not (N, H).
    """
    G = len(GATES[op])
    x_shape, w_shape, u_shape, b_shape = (tuple(s) for s in (x_shape, w_shape, u_shape,
                                                              b_shape))
    if len(x_shape) != 3:
        raise ShapeError(f"{op}: x must be a time-major sequence of shape (T, N, I), "
                         f"got shape {x_shape}")
    T, N, I = x_shape
    if min(x_shape) < 1:
        raise ShapeError(f"{op}: x (T, N, I) needs T, N, I >= 1, got {x_shape}")
    if len(u_shape) != 2 or u_shape[0] != G * u_shape[1]:
        raise ShapeError(f"{op}: u must have shape ({G}*H, H) (recurrent weights of "
                         f"{G} gate block{'s' if G > 1 else ''}), got {u_shape}")
    H = u_shape[1]
    if H < 1:
        raise ShapeError(f"{op}: the hidden size must be >= 1, got u of shape {u_shape}")
    if w_shape != (G * H, I):
        raise ShapeError(f"{op}: w must have shape {(G * H, I)} for x {x_shape} and "
                         f"hidden size {H}, got {w_shape}")
    if b_shape != (G * H,):
        raise ShapeError(f"{op}: b must have shape {(G * H,)}, got {b_shape}")
    for name, s in (("h0", h0_shape), ("c0", c0_shape)):
        if s is not None and tuple(s) != (N, H):
            raise ShapeError(f"{op}: the initial state {name} must have shape {(N, H)} "
                             f"(batch, hidden), got {tuple(s)}")
    return T, N, I, H


def check_mask(op, mask_shape, T, N, H):
    """The recurrent dropout mask ``h_mask`` must be (N, H) (one mask for every step) or
    (T, N, H) (one per step); None (no mask) passes. Raises ShapeError naming ``op``."""
    if mask_shape is None:
        return
    s = tuple(mask_shape)
    if s not in ((N, H), (T, N, H)):
        raise ShapeError(f"{op}: the recurrent dropout mask h_mask must have shape "
                         f"{(N, H)} (one mask for every step) or {(T, N, H)} (one per "
                         f"step), got {s}")


def mask_at(h_mask, t):
    """The mask of input step t: the (N, H) mask itself, or h_mask[t]."""
    return h_mask if h_mask.ndim == 2 else h_mask[t]


#: rnn, lstm and gru cell activations: refnn activation op -> its parameters (names, with defaults
#: or None where the parameter is required). The gates (lstm f, i, o) take
#: ``gate_activation`` (default sigmoid), the main block and the cell output
#: ``activation`` (default tanh); gru likewise (z, r: gate_activation; n: activation),
#: rnn's one ``activation``. NeoML's Lstm recurrent activation maps onto these.
CELL_ACTIVATIONS = {
    "identity": {}, "relu": {"threshold": 0.0}, "leaky_relu": {"alpha": None},
    "elu": {"alpha": 1.0}, "abs": {}, "sigmoid": {}, "tanh": {}, "hard_tanh": {},
    "hard_sigmoid": {"slope": 0.5, "bias": 0.5}, "power": {"exponent": None},
    "hswish": {}, "gelu": {"form": "sigmoid"}}


def activation_spec(op, what, value):
    """Normalise an rnn/lstm/gru activation argument -- a name of CELL_ACTIVATIONS, or a pair
    (name, {parameter: value}) -- into (name, ((parameter, value), ...)) with every
    parameter present (defaults filled in). Raises ParameterError naming ``op``."""
    name, params = (value, {}) if isinstance(value, str) else (value[0], dict(value[1]))
    if name not in CELL_ACTIVATIONS:
        raise ParameterError(f"{op}: {what} must be one of {tuple(CELL_ACTIVATIONS)} "
                             f"(or a pair (name, {{parameter: value}})), got {value!r}")
    allowed = CELL_ACTIVATIONS[name]
    unknown = set(params) - set(allowed)
    if unknown:
        raise ParameterError(f"{op}: {what} {name!r} takes the parameters "
                             f"{tuple(allowed)}, got {tuple(sorted(unknown))}")
    full = {**{k: v for k, v in allowed.items() if v is not None}, **params}
    missing = [k for k in allowed if k not in full]
    if missing:
        raise ParameterError(f"{op}: {what} {name!r} needs the parameter(s) {missing}")
    if name == "gelu":
        _act.check_gelu(full["form"])
    if name == "hard_sigmoid":
        _act.check_hard_sigmoid(full["slope"])
    return name, tuple((k, full[k]) for k in allowed)

#: lstm activation name -> the code of the fast paths' codes
#: (refnn/_ext/recurrent.pyx CA_*, kernels/recurrent.cl cact; gelu: by form)
ACT_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "abs": 4, "sigmoid": 5,
             "tanh": 6, "hard_tanh": 7, "hard_sigmoid": 8, "power": 9, "hswish": 10,
             ("gelu", "sigmoid"): 11, ("gelu", "erf"): 12}
#: the defaults (gate_activation, activation) of lstm and gru, which the fast paths'
#: fused cells compute; rnn's activations with a dedicated kernel (tanh, plain relu)
DEFAULT_LSTM_ACTS = (("sigmoid", ()), ("tanh", ()))
RNN_FAST = (("tanh", ()), ("relu", (("threshold", 0.0),)))


def act_code(spec):
    """(code, p, q) of an activation_spec for the fast paths' per-element switch (not
    used by the reference)."""
    name, params = spec
    params = dict(params)
    if name == "gelu":
        return ACT_CODES[("gelu", params["form"])], 0.0, 0.0
    values = [float(v) for v in params.values()] + [0.0, 0.0]
    return ACT_CODES[name], values[0], values[1]


def act_forward(spec, x):
    """(y, saved) of refnn's activation op ``spec`` = (name, params) on x."""
    name, params = spec
    return getattr(_act, f"{name}_forward")(x, **dict(params))


def act_backward(spec, dy, saved):
    """dy * act'(x) by the activation op's own backward (through the saved output for
    sigmoid/tanh, the saved input where the derivative needs it)."""
    return getattr(_act, f"{spec[0]}_backward")(dy, saved)[0]


def check_activation(op, activation, allowed=ACTIVATIONS):
    if activation not in allowed:
        raise ParameterError(f"{op}: activation must be one of {allowed}, "
                             f"got {activation!r}")


def _check_x(op, x_shape, what="x", layout="(T, N, I)"):
    x_shape = tuple(x_shape)
    if len(x_shape) != 3:
        raise ShapeError(f"{op}: {what} must be a time-major sequence of shape {layout}, "
                         f"got shape {x_shape}")
    if min(x_shape) < 1:
        raise ShapeError(f"{op}: {what} {layout} needs every size >= 1, got {x_shape}")
    return x_shape


def _check_h0(op, h0_shape, N, H, name="h0"):
    if h0_shape is not None and tuple(h0_shape) != (N, H):
        raise ShapeError(f"{op}: the initial state {name} must have shape {(N, H)} "
                         f"(batch, hidden), got {tuple(h0_shape)}")


def check_indrnn(x_shape, w_shape, u_shape, b_shape, h0_shape=None, activation="relu"):
    """Validate indrnn's shapes and activation; return (T, N, I, H)."""
    T, N, I = _check_x("indrnn", x_shape)
    w_shape = tuple(w_shape)
    if len(w_shape) != 2 or w_shape[1] != I:
        raise ShapeError(f"indrnn: w must have shape (H, {I}) for x {tuple(x_shape)}, "
                         f"got {w_shape}")
    H = w_shape[0]
    if H < 1:
        raise ShapeError(f"indrnn: the hidden size must be >= 1, got w of shape {w_shape}")
    for name, s in (("u", u_shape), ("b", b_shape)):
        if tuple(s) != (H,):
            raise ShapeError(f"indrnn: {name} must have shape {(H,)} (one value per hidden "
                             f"unit), got {tuple(s)}")
    _check_h0("indrnn", h0_shape, N, H)
    check_activation("indrnn", activation, INDRNN_ACTIVATIONS)
    return T, N, I, H


def check_qrnn(gates_shape, h0_shape=None, pooling="f"):
    """Validate qrnn's gates, state and pooling; return (T, N, H)."""
    if pooling not in QRNN_GATES:
        raise ParameterError(f"qrnn: pooling must be one of {tuple(QRNN_GATES)}, "
                             f"got {pooling!r}")
    G = len(QRNN_GATES[pooling])
    names = ", ".join(QRNN_GATES[pooling])
    T, N, GH = _check_x("qrnn", gates_shape, "gates", f"(T, N, {G}*H)")
    if GH % G:
        raise ShapeError(f"qrnn: {pooling}-pooling needs gates of shape (T, N, {G}*H) "
                         f"(blocks {names}), got {tuple(gates_shape)}")
    _check_h0("qrnn", h0_shape, N, GH // G)
    return T, N, GH // G


def steps(T, reverse):
    """The time indices in processing order."""
    return range(T - 1, -1, -1) if reverse else range(T)


def previous_states(hs, h0, reverse):
    """hprev[t] = the state step t started from: h0 (zeros) for the first processed step,
    else the state of the step processed just before it."""
    first = np.zeros_like(hs[0]) if h0 is None else h0
    if reverse:
        return np.concatenate([hs[1:], first[None]])
    return np.concatenate([first[None], hs[:-1]])


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# -------------------------------------------------------------------------- rnn
def rnn_forward(x, w, u, b, h0=None, activation="tanh", reverse=False):
    """h_t = act(x_t w^T + h_{t-1} u^T + b),  act = ``activation``: tanh (the default),
    relu or any other of CELL_ACTIVATIONS (a name or a pair (name, {parameter: value})).

    x (T, N, I), w (H, I), u (H, H), b (H,), h0 (N, H) or None (zeros) -> hs (T, N, H).
    With relu and u initialised to the identity this is the IRNN (Le et al. 2015):
    that is an initialisation choice of the facades, the op is the same.
    """
    check_sequence("rnn", x.shape, w.shape, u.shape, b.shape,
                   None if h0 is None else h0.shape)
    act = activation_spec("rnn", "activation", activation)
    T, N, _ = x.shape
    hs = np.empty((T, N, u.shape[0]), np.result_type(x, w))
    acts = [None] * T                  # per step: what the activation's backward needs
    h = np.zeros((N, u.shape[0]), hs.dtype) if h0 is None else h0
    for t in steps(T, reverse):
        z = x[t] @ w.T + h @ u.T + b
        h, acts[t] = act_forward(act, z)
        hs[t] = h
    return hs, (x, w, u, h0, hs, act, acts, reverse)


def rnn_backward(dhs, saved):
    """BPTT: in reverse processing order, with dh_next = 0 after the last step,

        dz_t = (dhs[t] + dh_next) * act'(z_t)     act' = 1 - h_t^2 (tanh), [z_t > 0] (relu)
        dh_next = dz_t u,   dx_t = dz_t w,   dw += dz_t^T x_t,   du += dz_t^T h_{t-1},
        db += sum_n dz_t;   dh0 = the last dh_next.

    Returns (dx, dw, du, db, dh0) (dh0 None when h0 was None).
    """
    x, w, u, h0, hs, act, acts, reverse = saved
    hprev = previous_states(hs, h0, reverse)
    dx, dw, du, db = (np.zeros_like(a) for a in (x, w, u, u[:, 0]))
    dh_next = np.zeros_like(hs[0])
    for t in reversed(steps(len(x), reverse)):
        dz = act_backward(act, dhs[t] + dh_next, acts[t])
        dx[t] = dz @ w
        dw += dz.T @ x[t]
        du += dz.T @ hprev[t]
        db += dz.sum(axis=0)
        dh_next = dz @ u
    return dx, dw, du, db, (None if h0 is None else dh_next)


# ------------------------------------------------------------------------- lstm
def lstm_forward(x, w, u, b, h0=None, c0=None, reverse=False, h_mask=None,
                 gate_activation="sigmoid", activation="tanh"):
    """NeoML's Lstm. Gate blocks (rows of w, u, b) in NeoML's order g, f, i, o:

        [a_g, a_f, a_i, a_o] = x_t w^T + (m_t * h_{t-1}) u^T + b
        g = act(a_g)  (the "main" block)     f = gact(a_f)   (forget)
        i = gact(a_i)   (input)              o = gact(a_o)   (output)
        c_t = f * c_{t-1} + i * g
        h_t = o * act(c_t)

    gact = ``gate_activation`` (sigmoid by default, NeoML's recurrent activation), act =
    ``activation`` (tanh by default): names of refnn's activation family, or pairs
    (name, {parameter: value}) (see CELL_ACTIVATIONS; e.g. ("elu", {"alpha": 0.01})).

    x (T, N, I), w (4H, I), u (4H, H), b (4H,), h0, c0 (N, H) or None (zeros)
    -> (hs, cs), both (T, N, H): the hidden and the cell state of every step (NeoML's
    outputs 0 and 1; the last cell state is cs[-1], or cs[0] when reversed).
    m_t is the recurrent dropout mask ``h_mask`` (module docstring; None: m_t = 1).
    """
    check_sequence("lstm", x.shape, w.shape, u.shape, b.shape,
                   None if h0 is None else h0.shape, None if c0 is None else c0.shape)
    gact = activation_spec("lstm", "gate_activation", gate_activation)
    act = activation_spec("lstm", "activation", activation)
    T, N, _ = x.shape
    check_mask("lstm", None if h_mask is None else h_mask.shape, T, N, u.shape[1])
    H = u.shape[1]
    dtype = np.result_type(x, w)
    hs, cs = np.empty((T, N, H), dtype), np.empty((T, N, H), dtype)
    gates = np.empty((T, N, 4 * H), dtype)             # g, f, i, o after activation
    acts = [None] * T                  # per step: what each activation's backward needs
    h = np.zeros((N, H), dtype) if h0 is None else h0
    c = np.zeros((N, H), dtype) if c0 is None else c0
    for t in steps(T, reverse):
        hm = h if h_mask is None else h * mask_at(h_mask, t)
        a = x[t] @ w.T + hm @ u.T + b
        (g, sg), (f, sf), (i, si), (o, so) = (
            act_forward(act if k == 0 else gact, a[:, k * H:(k + 1) * H]) for k in range(4))
        c = f * c + i * g
        ac, sc = act_forward(act, c)
        h = o * ac
        hs[t], cs[t], gates[t] = h, c, np.concatenate([g, f, i, o], axis=1)
        acts[t] = (sg, sf, si, so, sc, ac)
    return (hs, cs), (x, w, u, h0, c0, hs, cs, gates, reverse, h_mask, gact, act, acts)


def lstm_backward(douts, saved):
    """BPTT of lstm_forward, for douts = (dhs, dcs). In reverse processing order, with
    dh_next = dc_next = 0 after the last step (act', gact' the activations' derivatives
    at the step's pre-activations; 1 - tanh^2 and s (1 - s) by default):

        dh = dhs[t] + dh_next
        dc = dcs[t] + dc_next + dh * o * act'(c_t)
        dg = dc * i,  df = dc * c_{t-1},  di = dc * g,  do = dh * act(c_t)
        dz_t = [dg act'(a_g), df gact'(a_f), di gact'(a_i), do gact'(a_o)]
        dh_next = (dz_t u) * m_t,   dc_next = dc * f
        dx_t = dz_t w,  dw += dz_t^T x_t,  du += dz_t^T (m_t * h_{t-1}),  db += sum_n dz_t

    (m_t = 1 without a recurrent dropout mask: the mask gates the gradient to h_{t-1}).

    Returns (dx, dw, du, db, dh0, dc0) (dh0/dc0 None when h0/c0 were None).
    """
    dhs, dcs = douts
    x, w, u, h0, c0, hs, cs, gates, reverse, h_mask, gact, act, acts = saved
    H = u.shape[1]
    hprev = previous_states(hs, h0, reverse)
    cprev = previous_states(cs, c0, reverse)
    dx, dw, du, db = (np.zeros_like(a) for a in (x, w, u, u[:, 0]))
    dh_next, dc_next = np.zeros_like(hs[0]), np.zeros_like(hs[0])
    for t in reversed(steps(len(x), reverse)):
        g, f, i, o = (gates[t][:, k * H:(k + 1) * H] for k in range(4))
        sg, sf, si, so, sc, ac = acts[t]
        dh = dhs[t] + dh_next
        dc = dcs[t] + dc_next + act_backward(act, dh * o, sc)
        dz = np.concatenate([act_backward(act, dc * i, sg),
                             act_backward(gact, dc * cprev[t], sf),
                             act_backward(gact, dc * g, si),
                             act_backward(gact, dh * ac, so)], axis=1)
        m = 1 if h_mask is None else mask_at(h_mask, t)
        dx[t] = dz @ w
        dw += dz.T @ x[t]
        du += dz.T @ (hprev[t] * m)
        db += dz.sum(axis=0)
        dh_next, dc_next = (dz @ u) * m, dc * f
    return (dx, dw, du, db, None if h0 is None else dh_next,
            None if c0 is None else dc_next)


# -------------------------------------------------------------------------- gru
def gru_forward(x, w, u, b, h0=None, reverse=False, gate_activation="sigmoid",
                activation="tanh"):
    """NeoML's Gru (Cho et al. 2014: the reset gate acts *before* the recurrent product).
    Gate blocks (rows of w, u, b) in NeoML's order z (update), r (reset), n (main):

        z = gact(x_t w_z^T + h_{t-1} u_z^T + b_z)
        r = gact(x_t w_r^T + h_{t-1} u_r^T + b_r)
        n = act(x_t w_n^T + (r * h_{t-1}) u_n^T + b_n)
        h_t = (1 - z) * n + z * h_{t-1}

    gact = ``gate_activation`` (sigmoid by default), act = ``activation`` (tanh by
    default), as for lstm_forward (CELL_ACTIVATIONS).
    x (T, N, I), w (3H, I), u (3H, H), b (3H,), h0 (N, H) or None (zeros) -> hs (T, N, H).
    NeoML stores [w_z; w_r | u_z; u_r] as one (2H, I+H) gate matrix over [x, h] and
    [w_n | u_n] as one (H, I+H) main matrix: the facades split the columns.
    PyTorch differs: its n = tanh(x w_n^T + b_in + r * (h u_n^T + b_hn)).
    """
    check_sequence("gru", x.shape, w.shape, u.shape, b.shape,
                   None if h0 is None else h0.shape)
    gact = activation_spec("gru", "gate_activation", gate_activation)
    act = activation_spec("gru", "activation", activation)
    T, N, _ = x.shape
    H = u.shape[1]
    dtype = np.result_type(x, w)
    hs = np.empty((T, N, H), dtype)
    gates = np.empty((T, N, 3 * H), dtype)             # z, r, n after activation
    acts = [None] * T                  # per step: what each activation's backward needs
    h = np.zeros((N, H), dtype) if h0 is None else h0
    for t in steps(T, reverse):
        a = x[t] @ w.T + b
        zr, szr = act_forward(gact, a[:, :2 * H] + h @ u[:2 * H].T)
        z, r = zr[:, :H], zr[:, H:]
        n, sn = act_forward(act, a[:, 2 * H:] + (r * h) @ u[2 * H:].T)
        h = (1 - z) * n + z * h
        hs[t], gates[t], acts[t] = h, np.concatenate([z, r, n], axis=1), (szr, sn)
    return hs, (x, w, u, h0, hs, gates, reverse, gact, act, acts)


def gru_backward(dhs, saved):
    """BPTT of gru_forward. In reverse processing order, with dh_next = 0 after the last
    step (h = h_{t-1}; act', gact' at the step's pre-activations: 1 - n^2 and s (1 - s)
    by default):

        dh = dhs[t] + dh_next
        dn = dh * (1 - z) * act'(a_n)              (the main block's pre-activation)
        drh = dn u_n                               (gradient of r * h)
        dz = dh * (h - n) * gact'(a_z),   dr = drh * h * gact'(a_r)
        dh_next = dh * z + drh * r + [dz, dr] u_zr
        dx_t = [dz, dr, dn] w,  dw += [dz, dr, dn]^T x_t,  db += sum_n [dz, dr, dn]
        du_zr += [dz, dr]^T h,  du_n += dn^T (r * h)

    Returns (dx, dw, du, db, dh0) (dh0 None when h0 was None).
    """
    x, w, u, h0, hs, gates, reverse, gact, act, acts = saved
    H = u.shape[1]
    hprev = previous_states(hs, h0, reverse)
    dx, dw, du, db = (np.zeros_like(a) for a in (x, w, u, u[:, 0]))
    dh_next = np.zeros_like(hs[0])
    for t in reversed(steps(len(x), reverse)):
        z, r, n = (gates[t][:, k * H:(k + 1) * H] for k in range(3))
        szr, sn = acts[t]
        h = hprev[t]
        dh = dhs[t] + dh_next
        dn = act_backward(act, dh * (1 - z), sn)
        drh = dn @ u[2 * H:]
        dzr = act_backward(gact, np.concatenate([dh * (h - n), drh * h], axis=1), szr)
        da = np.concatenate([dzr, dn], axis=1)
        dx[t] = da @ w
        dw += da.T @ x[t]
        db += da.sum(axis=0)
        du[:2 * H] += dzr.T @ h
        du[2 * H:] += dn.T @ (r * h)
        dh_next = dh * z + drh * r + dzr @ u[:2 * H]
    return dx, dw, du, db, (None if h0 is None else dh_next)


# ----------------------------------------------------------------------- indrnn
def _indrnn_act(z, activation):
    if activation == "relu":
        return np.maximum(z, 0)
    return sigmoid(z) if activation == "sigmoid" else np.tanh(z)


def _indrnn_dact(h, activation):
    """act'(z) from h = act(z)."""
    if activation == "relu":
        return h > 0
    return h * (1 - h) if activation == "sigmoid" else 1 - h ** 2


def indrnn_forward(x, w, u, b, h0=None, activation="relu", reverse=False, h_mask=None):
    """IndRNN (Li et al. 2018; NeoML's IndRnn): the recurrent weights are a vector,

        h_t = act(x_t w^T + u * (m_t * h_{t-1}) + b)      act = relu (NeoML's default),
                                                          sigmoid or tanh

    so every hidden unit has its own one-dimensional recurrence. x (T, N, I), w (H, I),
    u (H,), b (H,), h0 (N, H) or None (zeros) -> hs (T, N, H). m_t is the recurrent
    dropout mask ``h_mask`` (module docstring; None: m_t = 1); NeoML's IndRnn draws one
    (N, H) mask per sequence. Its input dropout is the facade's (a mask before the op).
    """
    check_indrnn(x.shape, w.shape, u.shape, b.shape, None if h0 is None else h0.shape,
                 activation)
    T, N, _ = x.shape
    check_mask("indrnn", None if h_mask is None else h_mask.shape, T, N, w.shape[0])
    hs = np.empty((T, N, w.shape[0]), np.result_type(x, w))
    h = np.zeros((N, w.shape[0]), hs.dtype) if h0 is None else h0
    for t in steps(T, reverse):
        hm = h if h_mask is None else h * mask_at(h_mask, t)
        h = _indrnn_act(x[t] @ w.T + u * hm + b, activation)
        hs[t] = h
    return hs, (x, w, u, h0, hs, activation, reverse, h_mask)


def indrnn_backward(dhs, saved):
    """BPTT of indrnn_forward: in reverse processing order, dh_next = 0 after the last step,

        dz_t = (dhs[t] + dh_next) * act'(z_t)      dh_next = dz_t * u * m_t
        dx_t = dz_t w,  dw += dz_t^T x_t,  du += sum_n dz_t * m_t * h_{t-1},
        db += sum_n dz_t                           (m_t = 1 without a dropout mask)

    Returns (dx, dw, du, db, dh0) (dh0 None when h0 was None).
    """
    x, w, u, h0, hs, activation, reverse, h_mask = saved
    hprev = previous_states(hs, h0, reverse)
    dx, dw, du, db = (np.zeros_like(a) for a in (x, w, u, u))
    dh_next = np.zeros_like(hs[0])
    for t in reversed(steps(len(x), reverse)):
        dz = (dhs[t] + dh_next) * _indrnn_dact(hs[t], activation)
        m = 1 if h_mask is None else mask_at(h_mask, t)
        dx[t] = dz @ w
        dw += dz.T @ x[t]
        du += (dz * m * hprev[t]).sum(axis=0)
        db += dz.sum(axis=0)
        dh_next = dz * u * m
    return dx, dw, du, db, (None if h0 is None else dh_next)


# ------------------------------------------------------------------------- qrnn
def qrnn_forward(gates, h0=None, pooling="f", reverse=False):
    """The recurrent pooling of a quasi-recurrent network (Bradbury et al. 2016; NeoML's
    Qrnn). The gates come from a time convolution and their activations, computed by the
    caller: ``gates`` (T, N, G*H) holds the blocks

        f-pooling:   [z, f]         c_t = f * c_{t-1} + (1 - f) * z,   h_t = c_t
        fo-pooling:  [z, f, o]      c_t = f * c_{t-1} + (1 - f) * z,   h_t = o * c_t
        ifo-pooling: [z, f, o, i]   c_t = f * c_{t-1} + i * z,         h_t = o * c_t

    (z the update -- NeoML's "update" activation, tanh by default --, f the forget, o the
    output and i the input gate, the last three usually sigmoids; NeoML's filter order is
    update, forget, output). h0 (N, H) or None (zeros) is the state c before the first
    step -> hs (T, N, H). Bidirectional modes are a forward and a reversed op.
    """
    check_qrnn(gates.shape, None if h0 is None else h0.shape, pooling)
    T, N, GH = gates.shape
    H = GH // len(QRNN_GATES[pooling])
    hs, cs = np.empty((T, N, H), gates.dtype), np.empty((T, N, H), gates.dtype)
    c = np.zeros((N, H), gates.dtype) if h0 is None else h0
    for t in steps(T, reverse):
        z, f = gates[t][:, :H], gates[t][:, H:2 * H]
        i = gates[t][:, 3 * H:] if pooling == "ifo" else 1 - f
        c = f * c + i * z
        cs[t] = c
        hs[t] = c if pooling == "f" else gates[t][:, 2 * H:3 * H] * c
    return hs, (gates, h0, cs, pooling, reverse)


def qrnn_backward(dhs, saved):
    """BPTT of qrnn_forward: in reverse processing order, dc_next = 0 after the last step,

        dc = dhs[t] * o + dc_next        (o = 1 for f-pooling)
        dz = dc * i,  df = dc * (c_{t-1} - z) [f, fo]  or  dc * c_{t-1} [ifo],
        di = dc * z,  do = dhs[t] * c_t,  dc_next = dc * f

    (for f and fo pooling i = 1 - f). Returns (dgates, dh0) (dh0 None when h0 was None).
    """
    gates, h0, cs, pooling, reverse = saved
    H = cs.shape[2]
    cprev = previous_states(cs, h0, reverse)
    dgates = np.zeros_like(gates)
    dc_next = np.zeros_like(cs[0])
    for t in reversed(steps(len(gates), reverse)):
        z, f = gates[t][:, :H], gates[t][:, H:2 * H]
        o = 1 if pooling == "f" else gates[t][:, 2 * H:3 * H]
        dc = dhs[t] * o + dc_next
        if pooling == "ifo":
            i = gates[t][:, 3 * H:]
            dgates[t][:, :H], dgates[t][:, H:2 * H] = dc * i, dc * cprev[t]
            dgates[t][:, 3 * H:] = dc * z
        else:
            dgates[t][:, :H], dgates[t][:, H:2 * H] = dc * (1 - f), dc * (cprev[t] - z)
        if pooling != "f":
            dgates[t][:, 2 * H:3 * H] = dhs[t] * cs[t]
        dc_next = dc * f
    return dgates, (None if h0 is None else dc_next)


SPECS = [
    OpSpec("rnn", "recurrent", rnn_forward, rnn_backward, kinks=(0.0,), layout="TNI"),
    OpSpec("lstm", "recurrent", lstm_forward, lstm_backward, layout="TNI"),
    OpSpec("gru", "recurrent", gru_forward, gru_backward, layout="TNI"),
    OpSpec("indrnn", "recurrent", indrnn_forward, indrnn_backward, kinks=(0.0,),
           layout="TNI"),
    OpSpec("qrnn", "recurrent", qrnn_forward, qrnn_backward, layout="TNI"),
]
