"""cpu wrappers of the recurrent family: validate, allocate, call refnn._ext.recurrent.

Signatures and return conventions are those of refnn.ops.recurrent (time-major x
(T, N, I), weights (G*H, I) and (G*H, H), free term (G*H,), optional h0/c0). Shapes are
checked by refnn.ops.recurrent.check_sequence -- the reference's rules and messages.

Structure: everything that does not depend on the recurrence is one GEMM over all
T*N rows (the input projection x w^T + b before the loop; dx = dZ w, dw = dZ^T X,
du = dZ^T Hprev and db = column sums of dZ after it). The kernels run the time loop: one
recurrent GEMM per step and the fused gate math.

Recurrent dropout (lstm, indrnn): the keyword ``h_mask`` (N, H) or (T, N, H) goes to the
kernels as (1, N, H) or (T, N, H), cast to x's dtype (its entries are 0 and 1/keep); the
lstm kernel keeps the masked previous states m_t * h_{t-1} so that du stays one GEMM.
"""
import numpy as np

from refnn._ext import dense as _dense
from refnn._ext import recurrent as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import ShapeError
from refnn.ops.recurrent import (DEFAULT_LSTM_ACTS, INDRNN_ACTIVATIONS, QRNN_GATES,
                                  RNN_FAST, act_code, activation_spec, check_indrnn,
                                  check_mask, check_qrnn, check_sequence)


def _gemm(a, b, c, alpha, beta):
    """c = a @ b (alpha 1, beta 0 or 1: + c) through refnn._ext.recurrent.matmul: float32
    on AVX-512 CPUs by its register-blocked kernel (OpenBLAS runs its AVX2 kernels on CPUs
    it does not know, such as this Zen 5: half the speed), BLAS otherwise; on
    n_threads() cores (row chunks). a C-contiguous or a transposed C-contiguous matrix;
    b, c C-contiguous."""
    assert alpha == 1.0 and beta in (0.0, 1.0)
    _k.matmul(a, b, c, beta == 1.0, n_threads())


def _inputs(op, x, w, u, b, h0=None, c0=None):
    """C-contiguous arrays of x's dtype, shapes checked; returns (arrays, (T, N, I, H))."""
    x = float_input(op, "x", x)
    w, u, b = (float_input(op, n, a, x.dtype) for n, a in (("w", w), ("u", u), ("b", b)))
    h0 = None if h0 is None else float_input(op, "h0", h0, x.dtype)
    c0 = None if c0 is None else float_input(op, "c0", c0, x.dtype)
    dims = check_sequence(op, x.shape, w.shape, u.shape, b.shape,
                          None if h0 is None else h0.shape, None if c0 is None else c0.shape)
    return (x, w, u, b, h0, c0), dims


def _projection(x, w, b):
    """x_t w^T + b for every step as one GEMM: (T, N, G*H)."""
    T, N, I = x.shape
    out = np.empty((T, N, w.shape[0]), x.dtype)
    out2 = out.reshape(T * N, -1)
    out2[...] = b
    _gemm(x.reshape(T * N, I), np.ascontiguousarray(w.T), out2, 1.0, 1.0)
    return out


def _mask(op, h_mask, T, N, H, dtype):
    """(mask (Tm, N, H) C-contiguous of ``dtype``, masked); a (1, 1, 1) dummy when absent.
    Any float mask is accepted and cast: its values are 0 and 1/keep."""
    if h_mask is None:
        return np.zeros((1, 1, 1), dtype), False
    h_mask = float_input(op, "h_mask", h_mask)
    check_mask(op, h_mask.shape, T, N, H)
    return np.ascontiguousarray(h_mask.reshape((-1, N, H)), dtype=dtype), True


def _state(s, N, H, dtype):
    return np.zeros((N, H), dtype) if s is None else s


def _douts(op, d, what, shape, dtype):
    d = float_input(op, what, d, dtype)
    if d.shape != shape:
        raise ShapeError(f"{op}: {what} must have shape {shape}, got {d.shape}")
    return d


def _input_grads(dz, x, w):
    """dx = dz w, dw = dz^T x (one GEMM each over all T*N rows) and db = column sums."""
    T, N, I = x.shape
    GH = dz.shape[2]
    dz2 = dz.reshape(T * N, GH)
    dx = np.empty_like(x)
    _gemm(dz2, w, dx.reshape(T * N, I), 1.0, 0.0)
    dw = np.empty_like(w)
    _gemm(dz2.T, x.reshape(T * N, I), dw, 1.0, 0.0)
    db = np.empty(GH, x.dtype)
    _dense.col_sum(dz2, db, 1)     # one thread: see refnn/_ext/recurrent.pyx on threads
    return dx, dw, db


def _weight_grads(dz, x, w, hs, h0, reverse, rh=None, hpm=None):
    """dx, dw, du, db from the pre-activation gradients dz (T, N, G*H) of every step.

    du = sum_t dz_t^T hprev_t with hprev = hs shifted by one step (h0 first): two GEMMs
    on contiguous slices instead of a copy. For the gru, the n-block's recurrent
    product took r * h, so its rows of du use rh (T, N, H) instead. With recurrent
    dropout the product took hpm[t] = m_t * h_{t-1} (T, N, H): du = one GEMM over it.
    """
    T, N, I = x.shape
    H = hs.shape[2]
    GH = dz.shape[2]
    dx, dw, db = _input_grads(dz, x, w)
    du = np.zeros((GH, H), x.dtype)
    if hpm is not None:
        _gemm(dz.reshape(T * N, GH).T, hpm.reshape(T * N, H), du, 1.0, 0.0)
        return dx, dw, du, db
    rows = GH if rh is None else GH - H          # gru: the z, r rows only
    dzr = dz if rh is None else np.ascontiguousarray(dz[:, :, :rows])
    first, rest = (T - 1, slice(0, T - 1)) if reverse else (0, slice(1, T))
    prev = slice(1, T) if reverse else slice(0, T - 1)
    if T > 1:
        _gemm(dzr[rest].reshape(-1, rows).T, hs[prev].reshape(-1, H), du[:rows],
                    1.0, 0.0)
    if h0 is not None:
        _gemm(dzr[first].T, h0, du[:rows], 1.0, 1.0)
    if rh is not None:
        dn = np.ascontiguousarray(dz[:, :, rows:]).reshape(T * N, H)
        _gemm(dn.T, rh.reshape(T * N, H), du[rows:], 1.0, 0.0)
    return dx, dw, du, db


# ----------------------------------------------------------------------------- rnn
def rnn_forward(x, w, u, b, h0=None, activation="tanh", reverse=False):
    """hs = rnn(x) (refnn.ops.recurrent.rnn_forward): projection GEMM, then the loop
    (tanh and relu: the dedicated kernel; other activations: the per-element switch)."""
    (x, w, u, b, h0, _), (T, N, I, H) = _inputs("rnn", x, w, u, b, h0)
    act = activation_spec("rnn", "activation", activation)
    hs = _projection(x, w, b)
    if act in RNN_FAST:
        relu = act[0] == "relu"
        _k.rnn_forward(hs, u, _state(h0, N, H, x.dtype), relu, bool(reverse))
        return hs, (x, w, u, h0, hs, relu, bool(reverse), None, None)
    pre = np.empty_like(hs)
    code = act_code(act)
    _k.rnn_forward_act(hs, u, _state(h0, N, H, x.dtype), bool(reverse), pre, *code)
    return hs, (x, w, u, h0, hs, False, bool(reverse), pre, code)


def rnn_backward(dhs, saved):
    """(dx, dw, du, db, dh0) of rnn (refnn.ops.recurrent.rnn_backward)."""
    x, w, u, h0, hs, relu, reverse, pre, code = saved
    dhs = _douts("rnn", dhs, "dhs", hs.shape, hs.dtype)
    dz = np.empty_like(hs)
    dh = np.zeros(hs.shape[1:], hs.dtype)
    if code is None:
        _k.rnn_backward(dhs, hs, u, dz, dh, relu, reverse)
    else:
        _k.rnn_backward_act(dhs, pre, u, dz, dh, reverse, *code)
    return (*_weight_grads(dz, x, w, hs, h0, reverse), None if h0 is None else dh)


# ---------------------------------------------------------------------------- lstm
def lstm_forward(x, w, u, b, h0=None, c0=None, reverse=False, h_mask=None,
                 gate_activation="sigmoid", activation="tanh"):
    """(hs, cs) = lstm(x) (refnn.ops.recurrent.lstm_forward). The default activations
    (sigmoid gates, tanh) run the fused vectorized cell; others the per-element switch
    (refnn._ext.recurrent.lstm_forward_act; gates then keep the pre-activations)."""
    (x, w, u, b, h0, c0), (T, N, I, H) = _inputs("lstm", x, w, u, b, h0, c0)
    acts = (activation_spec("lstm", "gate_activation", gate_activation),
            activation_spec("lstm", "activation", activation))
    mask, masked = _mask("lstm", h_mask, T, N, H, x.dtype)
    gates = _projection(x, w, b)
    hs = np.empty((T, N, H), x.dtype)
    cs = np.empty((T, N, H), x.dtype)
    hpm = np.empty((T, N, H) if masked else (1, 1, 1), x.dtype)
    args = (gates, np.ascontiguousarray(u.T), _state(h0, N, H, x.dtype),
            _state(c0, N, H, x.dtype), hs, cs, bool(reverse), mask, hpm, masked)
    codes = None
    if acts == DEFAULT_LSTM_ACTS:
        _k.lstm_forward(*args)
    else:
        (gk, gp, gq), (ck, cp, cq) = act_code(acts[0]), act_code(acts[1])
        codes = (gk, ck, gp, gq, cp, cq)
        _k.lstm_forward_act(*args, *codes)
    return (hs, cs), (x, w, u, h0, c0, hs, cs, gates, bool(reverse), mask, masked, hpm,
                      codes)


def lstm_backward(douts, saved):
    """(dx, dw, du, db, dh0, dc0) of lstm (refnn.ops.recurrent.lstm_backward);
    douts = (dhs, dcs)."""
    x, w, u, h0, c0, hs, cs, gates, reverse, mask, masked, hpm, codes = saved
    if not isinstance(douts, (tuple, list)) or len(douts) != 2:
        raise ShapeError("lstm: the upstream gradient must be a pair (dhs, dcs) for the "
                         "two outputs (hs, cs)")
    dhs = _douts("lstm", douts[0], "dhs", hs.shape, hs.dtype)
    dcs = _douts("lstm", douts[1], "dcs", hs.shape, hs.dtype)
    N, H = hs.shape[1:]
    dz = np.empty_like(gates)
    dh, dc = np.zeros((N, H), hs.dtype), np.zeros((N, H), hs.dtype)
    args = (dhs, dcs, gates, cs, _state(c0, N, H, hs.dtype), u, dz, dh, dc, reverse, mask,
            masked)
    if codes is None:
        _k.lstm_backward(*args)
    else:
        _k.lstm_backward_act(*args, *codes)
    return (*_weight_grads(dz, x, w, hs, h0, reverse, hpm=hpm if masked else None),
            None if h0 is None else dh, None if c0 is None else dc)


# ----------------------------------------------------------------------------- gru
def gru_forward(x, w, u, b, h0=None, reverse=False, gate_activation="sigmoid",
                activation="tanh"):
    """hs = gru(x) (refnn.ops.recurrent.gru_forward); other activations than the default
    sigmoid/tanh through refnn._ext.recurrent.gru_forward_act (pre-activations kept)."""
    (x, w, u, b, h0, _), (T, N, I, H) = _inputs("gru", x, w, u, b, h0)
    acts = (activation_spec("gru", "gate_activation", gate_activation),
            activation_spec("gru", "activation", activation))
    gates = _projection(x, w, b)
    hs = np.empty((T, N, H), x.dtype)
    rh = np.empty((T, N, H), x.dtype)
    args = (gates, np.ascontiguousarray(u.T), _state(h0, N, H, x.dtype), hs, rh,
            bool(reverse))
    pre = codes = None
    if acts == DEFAULT_LSTM_ACTS:
        _k.gru_forward(*args)
    else:
        (gk, gp, gq), (ck, cp, cq) = act_code(acts[0]), act_code(acts[1])
        codes = (gk, ck, gp, gq, cp, cq)
        pre = np.empty_like(gates)
        _k.gru_forward_act(*args, pre, *codes)
    return hs, (x, w, u, h0, hs, gates, rh, bool(reverse), pre, codes)


def gru_backward(dhs, saved):
    """(dx, dw, du, db, dh0) of gru (refnn.ops.recurrent.gru_backward)."""
    x, w, u, h0, hs, gates, rh, reverse, pre, codes = saved
    dhs = _douts("gru", dhs, "dhs", hs.shape, hs.dtype)
    N, H = hs.shape[1:]
    dz = np.empty_like(gates)
    dh = np.zeros((N, H), hs.dtype)
    scratch = np.empty((2, N, H), hs.dtype)
    args = (dhs, gates, hs, _state(h0, N, H, hs.dtype), u, dz, dh, scratch[0], scratch[1],
            reverse)
    if codes is None:
        _k.gru_backward(*args)
    else:
        _k.gru_backward_act(*args, pre, *codes)
    return (*_weight_grads(dz, x, w, hs, h0, reverse, rh), None if h0 is None else dh)


# -------------------------------------------------------------------------- indrnn
def indrnn_forward(x, w, u, b, h0=None, activation="relu", reverse=False, h_mask=None):
    """hs = indrnn(x) (refnn.ops.recurrent.indrnn_forward): projection GEMM, then the
    elementwise recurrence."""
    x = float_input("indrnn", "x", x)
    w, u, b = (float_input("indrnn", n, a, x.dtype) for n, a in (("w", w), ("u", u),
                                                                 ("b", b)))
    h0 = None if h0 is None else float_input("indrnn", "h0", h0, x.dtype)
    T, N, I, H = check_indrnn(x.shape, w.shape, u.shape, b.shape,
                              None if h0 is None else h0.shape, activation)
    mask, masked = _mask("indrnn", h_mask, T, N, H, x.dtype)
    act = INDRNN_ACTIVATIONS.index(activation)
    hs = _projection(x, w, b)
    _k.indrnn_forward(hs, u, _state(h0, N, H, x.dtype), act, bool(reverse), mask, masked)
    return hs, (x, w, u, h0, hs, act, bool(reverse), mask, masked)


def indrnn_backward(dhs, saved):
    """(dx, dw, du, db, dh0) of indrnn (refnn.ops.recurrent.indrnn_backward)."""
    x, w, u, h0, hs, act, reverse, mask, masked = saved
    dhs = _douts("indrnn", dhs, "dhs", hs.shape, hs.dtype)
    N, H = hs.shape[1:]
    dz = np.empty_like(hs)
    dh = np.zeros((N, H), hs.dtype)
    du = np.zeros(H, hs.dtype)
    _k.indrnn_backward(dhs, hs, _state(h0, N, H, hs.dtype), u, dz, dh, du, act, reverse,
                       mask, masked)
    dx, dw, db = _input_grads(dz, x, w)
    return dx, dw, du, db, (None if h0 is None else dh)


# ---------------------------------------------------------------------------- qrnn
def qrnn_forward(gates, h0=None, pooling="f", reverse=False):
    """hs = qrnn pooling of gates (refnn.ops.recurrent.qrnn_forward)."""
    gates = float_input("qrnn", "gates", gates)
    h0 = None if h0 is None else float_input("qrnn", "h0", h0, gates.dtype)
    T, N, H = check_qrnn(gates.shape, None if h0 is None else h0.shape, pooling)
    hs = np.empty((T, N, H), gates.dtype)
    cs = np.empty((T, N, H), gates.dtype)
    G = len(QRNN_GATES[pooling])
    _k.qrnn_forward(gates, _state(h0, N, H, gates.dtype), hs, cs, G, bool(reverse))
    return hs, (gates, h0, cs, G, bool(reverse))


def qrnn_backward(dhs, saved):
    """(dgates, dh0) of the qrnn pooling (refnn.ops.recurrent.qrnn_backward)."""
    gates, h0, cs, G, reverse = saved
    dhs = _douts("qrnn", dhs, "dhs", cs.shape, cs.dtype)
    N, H = cs.shape[1:]
    dg = np.empty_like(gates)
    dc = np.zeros((N, H), cs.dtype)
    _k.qrnn_backward(dhs, gates, cs, _state(h0, N, H, cs.dtype), dg, dc, G, reverse)
    return dg, (None if h0 is None else dc)
