"""OpenCL host wrappers of the recurrent family (kernels in kernels/recurrent.cl, GEMM in
dense.cl).

Signatures are those of refnn.ops.recurrent with the backend first; arrays stay on the
device. The structure is the cpu path's: the input projection of all T steps is one
GEMM over T*N rows (on top of the free term, broadcast by fill_rows); each step is one
recurrent GEMM (two for the gru) on row slices of the sequence buffers (dense.gemm takes
them by offset) and one fused gate kernel (two for the gru); after the BPTT loop
dx, dw, du are GEMMs over all steps and db a column sum. A missing h0/c0 is a zero
buffer on the device.

Recurrent dropout (lstm, indrnn; keyword ``h_mask`` (N, H) or (T, N, H), uploaded in the
backend's dtype when it comes from the host): kernels read m_t at ``mask + t * mstep``
with mstep = 0 (one mask) or N*H (one per step). The lstm keeps the masked previous
states hpm[t] = m_t * h_{t-1} (mask_state) for its GEMMs, and mask_mul gates dh in BPTT.
"""
import numpy as np

from refnn.backends.opencl import dense
from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d
from refnn.errors import ShapeError
from refnn.ops.recurrent import (DEFAULT_LSTM_ACTS, INDRNN_ACTIVATIONS, QRNN_GATES,
                                  RNN_FAST, act_code, activation_spec, check_indrnn,
                                  check_mask, check_qrnn, check_sequence)


def _dev(be, op, what, a):
    """A C-contiguous device array at offset 0 (kernels take whole buffers)."""
    a = device_input(be, op, what, a)
    return a.copy(queue=be.queue) if a.offset else a


def _inputs(be, op, x, w, u, b, h0=None, c0=None):
    x, w, u, b = (_dev(be, op, n, a) for n, a in (("x", x), ("w", w), ("u", u), ("b", b)))
    h0 = None if h0 is None else _dev(be, op, "h0", h0)
    c0 = None if c0 is None else _dev(be, op, "c0", c0)
    dims = check_sequence(op, x.shape, w.shape, u.shape, b.shape,
                          None if h0 is None else h0.shape, None if c0 is None else c0.shape)
    return (x, w, u, b, h0, c0), dims


def _order(T, reverse):
    """[(t, tp)] in processing order; tp = the previous step, -1 for the first."""
    ts = list(range(T - 1, -1, -1) if reverse else range(T))
    return [(t, -1 if k == 0 else ts[k - 1]) for k, t in enumerate(ts)]


def _projection(be, x, w, b):
    """x_t w^T + b for every step: fill_rows (b), then one GEMM with beta = 1."""
    T, N, I = x.shape
    GH = w.shape[0]
    out = be.empty((T, N, GH))
    be.kernel("recurrent", "fill_rows")(be.queue, global_1d(out.size), (LOCAL_1D,), b.data,
                                        out.data, np.uint32(GH), np.uint32(out.size))
    dense.gemm(be, x.reshape(T * N, I), w.T, out.reshape(T * N, GH), beta=1.0)
    return out


def _mask(be, op, h_mask, T, N, H):
    """(mask on the device or None, mstep): mstep = N*H for a mask per step, else 0."""
    if h_mask is None:
        return None, np.uint32(0)
    mask = _dev(be, op, "h_mask", h_mask)
    check_mask(op, mask.shape, T, N, H)
    return mask, np.uint32(N * H if mask.ndim == 3 else 0)


def _state(be, s, N, H):
    return be.zeros((N, H)) if s is None else s


def _douts(be, op, d, what, shape):
    d = _dev(be, op, what, d)
    if d.shape != shape:
        raise ShapeError(f"{op}: {what} must have shape {shape}, got {d.shape}")
    return d


def _launch(be, name, n, *args):
    be.kernel("recurrent", name)(be.queue, global_1d(n), (LOCAL_1D,), *args)


def _col_sum(be, a2, out=None):
    """Column sums of a 2-D device array (dense.cl's col_sum)."""
    R, C = a2.shape
    out = be.empty((C,)) if out is None else out
    be.kernel("dense", "col_sum")(be.queue, global_1d(C), (LOCAL_1D,), a2.data, out.data,
                                  np.uint32(R), np.uint32(C))
    return out


def _input_grads(be, dz, x, w):
    """dx = dz w, dw = dz^T x (one GEMM each over all T*N rows), db = column sums."""
    T, N, I = x.shape
    dz2 = dz.reshape(T * N, dz.shape[2])
    dx = be.empty(x.shape)
    dense.gemm(be, dz2, w, dx.reshape(T * N, I))
    dw = dense.gemm(be, dz2.T, x.reshape(T * N, I))
    return dx, dw, _col_sum(be, dz2)


def _weight_grads(be, dz, x, w, hs, h0, reverse, rh=None, hpm=None):
    """dx, dw, du, db from dz (T, N, G*H); du as in refnn.backends.cpu.recurrent (the
    previous states are hs shifted by one step, h0 first; the gru's n rows use rh; with
    recurrent dropout du = dz^T hpm, the masked previous states, one GEMM)."""
    T, N, I = x.shape
    H = hs.shape[2]
    GH = dz.shape[2]
    dz2 = dz.reshape(T * N, GH)
    dx, dw, db = _input_grads(be, dz, x, w)
    if hpm is not None:
        return dx, dw, dense.gemm(be, dz2.T, hpm.reshape(T * N, H)), db
    du = be.zeros((GH, H))
    rows = GH if rh is None else GH - H
    first, rest, prev = ((T - 1, slice(0, T - 1), slice(1, T)) if reverse
                         else (0, slice(1, T), slice(0, T - 1)))
    if T > 1:
        dense.gemm(be, dz[rest].reshape((T - 1) * N, GH)[:, :rows].T,
                   hs[prev].reshape((T - 1) * N, H), du[:rows])
    if h0 is not None:
        dense.gemm(be, dz[first][:, :rows].T, h0, du[:rows], beta=1.0)
    if rh is not None:
        dense.gemm(be, dz2[:, rows:].T, rh.reshape(T * N, H), du[rows:])
    return dx, dw, du, db


# ----------------------------------------------------------------------------- rnn
def _codes(be, *specs):
    """Kernel arguments of activation specs: the codes (int32), then the parameters p, q
    of each, in ``real``."""
    real = np.dtype(be.dtype).type
    coded = [act_code(s) for s in specs]
    return (tuple(np.int32(c[0]) for c in coded)
            + tuple(real(v) for c in coded for v in c[1:]))


def rnn_forward(be, x, w, u, b, h0=None, activation="tanh", reverse=False):
    """hs = rnn(x) (refnn.ops.recurrent.rnn_forward); tanh and relu: rnn_act, other
    activations: rnn_act_k (pre keeps the pre-activations)."""
    (x, w, u, b, h0, _), (T, N, I, H) = _inputs(be, "rnn", x, w, u, b, h0)
    act = activation_spec("rnn", "activation", activation)
    codes = None if act in RNN_FAST else _codes(be, act)
    relu = np.int32(act[0] == "relu")
    pre = _projection(be, x, w, b)
    hs = be.empty((T, N, H))
    first = _state(be, h0, N, H)
    for t, tp in _order(T, reverse):
        dense.gemm(be, first if tp < 0 else hs[tp], u.T, pre[t], beta=1.0)
        if codes is None:
            _launch(be, "rnn_act", N * H, pre.data, hs.data, np.uint32(t), relu,
                    np.uint32(N * H))
        else:
            _launch(be, "rnn_act_k", N * H, pre.data, hs.data, np.uint32(t),
                    np.uint32(N * H), *codes)
    return hs, (x, w, u, h0, hs, relu, bool(reverse), pre, codes)


def rnn_backward(be, dhs, saved):
    """(dx, dw, du, db, dh0) of rnn (refnn.ops.recurrent.rnn_backward)."""
    x, w, u, h0, hs, relu, reverse, pre, codes = saved
    dhs = _douts(be, "rnn", dhs, "dhs", hs.shape)
    T, N, H = hs.shape
    dz = be.empty(hs.shape)
    dh = be.zeros((N, H))
    for t, _ in reversed(_order(T, reverse)):
        if codes is None:
            _launch(be, "rnn_dz", N * H, dhs.data, hs.data, dh.data, dz.data, np.uint32(t),
                    relu, np.uint32(N * H))
        else:
            _launch(be, "rnn_dz_k", N * H, dhs.data, pre.data, dh.data, dz.data,
                    np.uint32(t), np.uint32(N * H), *codes)
        dense.gemm(be, dz[t], u, dh)
    return (*_weight_grads(be, dz, x, w, hs, h0, reverse), None if h0 is None else dh)


# ---------------------------------------------------------------------------- lstm
def lstm_forward(be, x, w, u, b, h0=None, c0=None, reverse=False, h_mask=None,
                 gate_activation="sigmoid", activation="tanh"):
    """(hs, cs) = lstm(x) (refnn.ops.recurrent.lstm_forward). Default activations: the
    lstm_cell kernel; others: lstm_cell_act (codes and parameters as arguments)."""
    (x, w, u, b, h0, c0), (T, N, I, H) = _inputs(be, "lstm", x, w, u, b, h0, c0)
    acts = (activation_spec("lstm", "gate_activation", gate_activation),
            activation_spec("lstm", "activation", activation))
    mask, mstep = _mask(be, "lstm", h_mask, T, N, H)
    codes = None if acts == DEFAULT_LSTM_ACTS else _codes(be, *acts)
    gates = _projection(be, x, w, b)
    hs, cs = be.empty((T, N, H)), be.empty((T, N, H))
    first, c_first = _state(be, h0, N, H), _state(be, c0, N, H)
    hpm = None if mask is None else be.empty((T, N, H))
    for t, tp in _order(T, reverse):
        if mask is None:
            hprev = first if tp < 0 else hs[tp]
        else:
            _launch(be, "mask_state", N * H, first.data, hs.data, mask.data, hpm.data,
                    np.uint32(t), np.int32(tp), mstep, np.uint32(N * H))
            hprev = hpm[t]
        dense.gemm(be, hprev, u.T, gates[t], beta=1.0)
        cell = (gates.data, c_first.data, hs.data, cs.data, np.uint32(t), np.int32(tp),
                np.uint32(N), np.uint32(H))
        if codes is None:
            _launch(be, "lstm_cell", N * H, *cell)
        else:
            _launch(be, "lstm_cell_act", N * H, *cell, *codes)
    return (hs, cs), (x, w, u, h0, c0, c_first, hs, cs, gates, bool(reverse), mask, mstep,
                      hpm, codes)


def lstm_backward(be, douts, saved):
    """(dx, dw, du, db, dh0, dc0) of lstm (refnn.ops.recurrent.lstm_backward);
    douts = (dhs, dcs)."""
    x, w, u, h0, c0, c_first, hs, cs, gates, reverse, mask, mstep, hpm, codes = saved
    if not isinstance(douts, (tuple, list)) or len(douts) != 2:
        raise ShapeError("lstm: the upstream gradient must be a pair (dhs, dcs) for the "
                         "two outputs (hs, cs)")
    dhs = _douts(be, "lstm", douts[0], "dhs", hs.shape)
    dcs = _douts(be, "lstm", douts[1], "dcs", hs.shape)
    T, N, H = hs.shape
    dz = be.empty(gates.shape)
    dh, dc = be.zeros((N, H)), be.zeros((N, H))
    for t, tp in reversed(_order(T, reverse)):
        cell = (dhs.data, dcs.data, gates.data, cs.data, c_first.data, dh.data, dc.data,
                dz.data, np.uint32(t), np.int32(tp), np.uint32(N), np.uint32(H))
        if codes is None:
            _launch(be, "lstm_cell_backward", N * H, *cell)
        else:
            _launch(be, "lstm_cell_act_backward", N * H, *cell, *codes)
        dense.gemm(be, dz[t], u, dh)
        if mask is not None:
            _launch(be, "mask_mul", N * H, dh.data, mask.data, np.uint32(t), mstep,
                    np.uint32(N * H))
    return (*_weight_grads(be, dz, x, w, hs, h0, reverse, hpm=hpm),
            None if h0 is None else dh, None if c0 is None else dc)


# ----------------------------------------------------------------------------- gru
def gru_forward(be, x, w, u, b, h0=None, reverse=False, gate_activation="sigmoid",
                activation="tanh"):
    """hs = gru(x) (refnn.ops.recurrent.gru_forward); activations other than the default
    sigmoid/tanh: the *_act kernels (pre keeps the pre-activations)."""
    (x, w, u, b, h0, _), (T, N, I, H) = _inputs(be, "gru", x, w, u, b, h0)
    acts = (activation_spec("gru", "gate_activation", gate_activation),
            activation_spec("gru", "activation", activation))
    codes = None if acts == DEFAULT_LSTM_ACTS else _codes(be, *acts)
    gates = _projection(be, x, w, b)
    pre = None if codes is None else be.empty(gates.shape)
    hs, rh = be.empty((T, N, H)), be.empty((T, N, H))
    first = _state(be, h0, N, H)
    hu, rhu = be.empty((N, 2 * H)), be.empty((N, H))
    dims = (np.uint32(N), np.uint32(H))
    for t, tp in _order(T, reverse):
        dense.gemm(be, first if tp < 0 else hs[tp], u[:2 * H].T, hu)
        if codes is None:
            _launch(be, "gru_gates_zr", N * H, gates.data, hu.data, first.data, hs.data,
                    rh.data, np.uint32(t), np.int32(tp), *dims)
        else:
            _launch(be, "gru_gates_zr_act", N * H, gates.data, pre.data, hu.data,
                    first.data, hs.data, rh.data, np.uint32(t), np.int32(tp), *dims,
                    codes[0], codes[2], codes[3])
        dense.gemm(be, rh[t], u[2 * H:].T, rhu)
        if codes is None:
            _launch(be, "gru_gates_n", N * H, gates.data, rhu.data, first.data, hs.data,
                    np.uint32(t), np.int32(tp), *dims)
        else:
            _launch(be, "gru_gates_n_act", N * H, gates.data, pre.data, rhu.data,
                    first.data, hs.data, np.uint32(t), np.int32(tp), *dims, codes[1],
                    codes[4], codes[5])
    return hs, (x, w, u, h0, first, hs, gates, rh, bool(reverse), pre, codes)


def gru_backward(be, dhs, saved):
    """(dx, dw, du, db, dh0) of gru (refnn.ops.recurrent.gru_backward)."""
    x, w, u, h0, first, hs, gates, rh, reverse, pre, codes = saved
    dhs = _douts(be, "gru", dhs, "dhs", hs.shape)
    T, N, H = hs.shape
    dz = be.empty(gates.shape)
    dh, dhcur, drh = be.zeros((N, H)), be.empty((N, H)), be.empty((N, H))
    dims = (np.uint32(N), np.uint32(H))
    for t, tp in reversed(_order(T, reverse)):
        if codes is None:
            _launch(be, "gru_backward_zn", N * H, dhs.data, dh.data, gates.data,
                    first.data, hs.data, dz.data, dhcur.data, np.uint32(t), np.int32(tp),
                    *dims)
        else:
            _launch(be, "gru_backward_zn_act", N * H, dhs.data, dh.data, gates.data,
                    pre.data, first.data, hs.data, dz.data, dhcur.data, np.uint32(t),
                    np.int32(tp), *dims, *codes)
        dense.gemm(be, dz[t][:, 2 * H:], u[2 * H:], drh)
        if codes is None:
            _launch(be, "gru_backward_r", N * H, drh.data, dhcur.data, gates.data,
                    first.data, hs.data, dz.data, dh.data, np.uint32(t), np.int32(tp),
                    *dims)
        else:
            _launch(be, "gru_backward_r_act", N * H, drh.data, dhcur.data, gates.data,
                    pre.data, first.data, hs.data, dz.data, dh.data, np.uint32(t),
                    np.int32(tp), *dims, codes[0], codes[2], codes[3])
        dense.gemm(be, dz[t][:, :2 * H], u[:2 * H], dh, beta=1.0)
    return (*_weight_grads(be, dz, x, w, hs, h0, reverse, rh), None if h0 is None else dh)


# -------------------------------------------------------------------------- indrnn
def indrnn_forward(be, x, w, u, b, h0=None, activation="relu", reverse=False,
                   h_mask=None):
    """hs = indrnn(x) (refnn.ops.recurrent.indrnn_forward): the projection GEMM, then one
    launch for the whole elementwise recurrence."""
    x, w, u, b = (_dev(be, "indrnn", n, a) for n, a in (("x", x), ("w", w), ("u", u),
                                                          ("b", b)))
    h0 = None if h0 is None else _dev(be, "indrnn", "h0", h0)
    T, N, I, H = check_indrnn(x.shape, w.shape, u.shape, b.shape,
                              None if h0 is None else h0.shape, activation)
    mask, mstep = _mask(be, "indrnn", h_mask, T, N, H)
    act = np.int32(INDRNN_ACTIVATIONS.index(activation))
    pre = _projection(be, x, w, b)
    hs = be.empty((T, N, H))
    first = _state(be, h0, N, H)
    _launch(be, "indrnn_forward", N * H, pre.data, u.data, first.data, hs.data,
            (u if mask is None else mask).data, np.uint32(T), np.uint32(N * H),
            np.uint32(H), act, np.int32(bool(reverse)), np.int32(mask is not None), mstep)
    return hs, (x, w, u, h0, first, hs, act, bool(reverse), mask, mstep)


def indrnn_backward(be, dhs, saved):
    """(dx, dw, du, db, dh0) of indrnn (refnn.ops.recurrent.indrnn_backward)."""
    x, w, u, h0, first, hs, act, reverse, mask, mstep = saved
    dhs = _douts(be, "indrnn", dhs, "dhs", hs.shape)
    T, N, H = hs.shape
    dz = be.empty(hs.shape)
    dh, du_part = be.empty((N, H)), be.empty((N, H))
    _launch(be, "indrnn_backward", N * H, dhs.data, hs.data, first.data, u.data, dz.data,
            dh.data, du_part.data, (u if mask is None else mask).data, np.uint32(T),
            np.uint32(N * H), np.uint32(H), act, np.int32(reverse),
            np.int32(mask is not None), mstep)
    dx, dw, db = _input_grads(be, dz, x, w)
    return dx, dw, _col_sum(be, du_part), db, (None if h0 is None else dh)


# ---------------------------------------------------------------------------- qrnn
def qrnn_forward(be, gates, h0=None, pooling="f", reverse=False):
    """hs = qrnn pooling of gates (refnn.ops.recurrent.qrnn_forward), one launch."""
    gates = _dev(be, "qrnn", "gates", gates)
    h0 = None if h0 is None else _dev(be, "qrnn", "h0", h0)
    T, N, H = check_qrnn(gates.shape, None if h0 is None else h0.shape, pooling)
    G = np.int32(len(QRNN_GATES[pooling]))
    hs, cs = be.empty((T, N, H)), be.empty((T, N, H))
    first = _state(be, h0, N, H)
    _launch(be, "qrnn_forward", N * H, gates.data, first.data, hs.data, cs.data,
            np.uint32(T), np.uint32(N), np.uint32(H), G, np.int32(bool(reverse)))
    return hs, (gates, h0, first, cs, G, bool(reverse))


def qrnn_backward(be, dhs, saved):
    """(dgates, dh0) of the qrnn pooling (refnn.ops.recurrent.qrnn_backward)."""
    gates, h0, first, cs, G, reverse = saved
    dhs = _douts(be, "qrnn", dhs, "dhs", cs.shape)
    T, N, H = cs.shape
    dg, dh = be.empty(gates.shape), be.empty((N, H))
    _launch(be, "qrnn_backward", N * H, dhs.data, gates.data, cs.data, first.data, dg.data,
            dh.data, np.uint32(T), np.uint32(N), np.uint32(H), G, np.int32(reverse))
    return dg, (None if h0 is None else dh)
