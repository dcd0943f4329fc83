"""Attention family: scaled dot-product and additive (Bahdanau) attention, batched, and
the head permutations of multi-head layers.

Canonical layout: batch-first, one (rows, features) matrix per batch entry b:

    q (B, Tq, d)    Tq queries of d features
    k (B, Tk, d)    Tk keys of d features
    v (B, Tk, dv)   one value of dv features per key
    out (B, Tq, dv)

Heads are folded into the batch by the caller: a layer with H heads of a batch of N
turns its projections (N, T, H * d) into (N * H, T, d) with ``split_heads`` before the
op and the op's output back with ``merge_heads`` (two pure permutations, each the
other's backward): head h of sample n is batch entry n * H + h and reads features
h * d ... (h + 1) * d - 1 of every step.

Optional positional inputs (not differentiable; their gradients are ``None``):

* ``mask``: an ADDITIVE float mask added to the scaled scores before the softmax,
  shape (Tq, Tk) (shared by the whole batch) or (B, Tq, Tk). A boolean "blocked"
  mask is passed as ``additive_mask(blocked)``: 0 where allowed and ``-1e9`` where
  blocked (NeoML's MultiheadAttention multiplies its 0/1 mask by -1e9 the same way);
  ``exp`` of a score 1e9 below the row maximum is exactly 0, so blocked keys get zero
  weight without the NaN a ``-inf`` gives on a fully blocked row.
* ``keep``: a (B, Tq, Tk) multiplier applied to the attention weights after the
  softmax -- dropout on the weights (0 for a dropped weight, 1 / keep_rate for a kept
  one, as the ``dropout`` op makes it). Pass ``mask=None`` to give ``keep`` alone.
"""
import numpy as np

from refnn.errors import ShapeError, check_shape
from refnn.ops._spec import OpSpec

#: the score added where a boolean mask blocks a key (NeoML's constant)
MASK_VALUE = -1e9


def additive_mask(blocked, value=MASK_VALUE):
    """The additive mask of a boolean/0-1 mask: ``value`` where blocked, 0 elsewhere."""
    return np.where(np.asarray(blocked) != 0, value, 0.0)


def check_attention(op, q, k, v, mask=None, keep=None):
    """Check the shapes (of arrays or shape tuples) of scaled dot-product attention;
    every backend calls this first, so bad input reads the same everywhere.
    Returns (B, Tq, Tk, d, dv)."""
    q, k, v = (tuple(np.shape(a)) if not isinstance(a, tuple) else a for a in (q, k, v))
    if len(q) != 3:
        raise ShapeError(f"{op}: q must have shape (B, Tq, d), got {q}")
    B, Tq, d = q
    if min(q) < 1:
        raise ShapeError(f"{op}: q must have B, Tq, d >= 1, got shape {q}")
    if len(k) != 3 or k[0] != B or k[2] != d or k[1] < 1:
        raise ShapeError(f"{op}: k must have shape ({B}, Tk >= 1, {d}) for q of shape {q}, "
                         f"got {k}")
    Tk = k[1]
    if len(v) != 3 or v[0] != B or v[1] != Tk or v[2] < 1:
        raise ShapeError(f"{op}: v must have shape ({B}, {Tk}, dv >= 1) for k of shape {k}, "
                         f"got {v}")
    if mask is not None:
        m = tuple(np.shape(mask)) if not isinstance(mask, tuple) else mask
        if m != (Tq, Tk) and m != (B, Tq, Tk):
            raise ShapeError(f"{op}: mask must have shape {(Tq, Tk)} or {(B, Tq, Tk)}, "
                             f"got {m}")
    if keep is not None:
        check_shape(op, "keep", tuple(np.shape(keep)) if not isinstance(keep, tuple)
                    else keep, (B, Tq, Tk))
    return B, Tq, Tk, d, v[2]


def _softmax_rows(s):
    """p_ij = exp(s_ij - max_j s_ij) / sum_j exp(s_ij - max_j s_ij) over the last axis."""
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def scaled_dot_attention_forward(q, k, v, mask=None, keep=None, *, scale=None):
    """out = softmax(q k^T * scale + mask) * keep @ v, batch by batch:

        S_bij = scale * sum_c q_bic k_bjc + mask_(b)ij     (B, Tq, Tk) scores
        P_bij = exp(S_bij) / sum_j' exp(S_bij')            softmax over the keys j
        A_bij = P_bij * keep_bij                           (A = P without keep)
        out_bic = sum_j A_bij v_bjc                        (B, Tq, dv)

    scale defaults to 1 / sqrt(d) (Vaswani et al. 2017).

    >>> q = k = np.zeros((1, 1, 4)); v = np.array([[[1.0], [3.0]]])
    >>> scaled_dot_attention_forward(q, np.zeros((1, 2, 4)), v)[0]
    array([[[2.]]])
    """
    check_attention("scaled_dot_attention", q, k, v, mask, keep)
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1])
    S = scale * (q @ k.transpose(0, 2, 1))
    if mask is not None:
        S = S + mask
    P = _softmax_rows(S)
    A = P if keep is None else P * keep
    n_args = 3 + (mask is not None or keep is not None) + (keep is not None)
    return A @ v, (q, k, v, P, keep, scale, n_args)


def scaled_dot_attention_backward(dout, saved):
    """With A = P * keep (A = P without keep):

        dv_bjc = sum_i A_bij dout_bic              (dv = A^T dout)
        dA_bij = sum_c dout_bic v_bjc              (dA = dout v^T)
        dP_bij = dA_bij * keep_bij
        dS_bij = P_bij (dP_bij - sum_j' P_bij' dP_bij')     (softmax backward)
        dq = scale * dS k,   dk = scale * dS^T q

    Returns (dq, dk, dv) followed by None for each of mask and keep that was given.
    """
    q, k, v, P, keep, scale, n_args = saved
    A = P if keep is None else P * keep
    dv = A.transpose(0, 2, 1) @ dout
    dP = dout @ v.transpose(0, 2, 1)
    if keep is not None:
        dP = dP * keep
    dS = P * (dP - (P * dP).sum(axis=-1, keepdims=True))
    dq = scale * (dS @ k)
    dk = scale * (dS.transpose(0, 2, 1) @ q)
    return (dq, dk, dv) + (None,) * (n_args - 3)


def additive_attention_forward(q, k, v, w):
    """Additive (Bahdanau) attention: out = softmax(w . tanh(q_i + k_j)) v, batch by batch:

        E_bijc = tanh(q_bic + k_bjc)                   (B, Tq, Tk, d)
        S_bij = sum_c w_c E_bijc                       scores
        P_bij = exp(S_bij) / sum_j' exp(S_bij')        softmax over the keys j
        out_bic = sum_j P_bij v_bjc                    (B, Tq, dv)

    q (B, Tq, d) and k (B, Tk, d) are already projected (W_q q and W_k k of Bahdanau et
    al. 2015 are ``linear`` ops before this one), w (d,) is the score vector.

    >>> q, k = np.zeros((1, 1, 2)), np.zeros((1, 3, 2)); v = np.arange(3.0).reshape(1, 3, 1)
    >>> additive_attention_forward(q, k, v, np.ones(2))[0]
    array([[[1.]]])
    """
    check_attention("additive_attention", q, k, v)
    check_shape("additive_attention", "w", np.shape(w), (q.shape[2],))
    E = np.tanh(q[:, :, None, :] + k[:, None, :, :])
    P = _softmax_rows(E @ w)
    return P @ v, (q, k, v, w, E, P)


def additive_attention_backward(dout, saved):
    """dv = P^T dout,  dP = dout v^T,  dS = P (dP - sum_j' P dP),
    G_bijc = dS_bij w_c (1 - E_bijc^2):
    dq_bic = sum_j G_bijc,  dk_bjc = sum_i G_bijc,  dw_c = sum_bij dS_bij E_bijc."""
    q, k, v, w, E, P = saved
    dv = P.transpose(0, 2, 1) @ dout
    dP = dout @ v.transpose(0, 2, 1)
    dS = P * (dP - (P * dP).sum(axis=-1, keepdims=True))
    G = dS[..., None] * w * (1 - E * E)
    return G.sum(axis=2), G.sum(axis=1), dv, (dS[..., None] * E).sum(axis=(0, 1, 2))


def _check_heads(op, x, heads, split):
    if isinstance(heads, bool) or not isinstance(heads, (int, np.integer)) or heads < 1:
        raise ShapeError(f"{op}: heads must be an int >= 1, got {heads!r}")
    shape = tuple(np.shape(x))
    if len(shape) != 3:
        want = "(B, T, heads * d)" if split else "(B * heads, T, d)"
        raise ShapeError(f"{op}: x must have shape {want}, got {shape}")
    n = shape[2] if split else shape[0]
    if n % heads:
        what = "the feature count" if split else "the batch"
        raise ShapeError(f"{op}: {what} {n} of x (shape {shape}) is not a multiple of "
                         f"heads={heads}")
    return shape


def split_heads_forward(x, *, heads):
    """y[n * H + h, t, c] = x[n, t, h * d + c]:  x (N, T, H * d) -> y (N * H, T, d)."""
    N, T, F = _check_heads("split_heads", x, heads, True)
    d = F // heads
    y = x.reshape(N, T, heads, d).transpose(0, 2, 1, 3).reshape(N * heads, T, d)
    return y.copy(), (heads,)


def split_heads_backward(dy, saved):
    """dx = merge_heads(dy): the permutation read backwards."""
    (heads,) = saved
    return (merge_heads_forward(dy, heads=heads)[0],)


def merge_heads_forward(x, *, heads):
    """y[n, t, h * d + c] = x[n * H + h, t, c]:  x (N * H, T, d) -> y (N, T, H * d)."""
    NH, T, d = _check_heads("merge_heads", x, heads, False)
    N = NH // heads
    y = x.reshape(N, heads, T, d).transpose(0, 2, 1, 3).reshape(N, T, heads * d)
    return y.copy(), (heads,)


def merge_heads_backward(dy, saved):
    """dx = split_heads(dy)."""
    (heads,) = saved
    return (split_heads_forward(dy, heads=heads)[0],)


SPECS = [
    OpSpec("scaled_dot_attention", "attention", scaled_dot_attention_forward,
           scaled_dot_attention_backward, diff_args=(0, 1, 2), layout="BTC"),
    OpSpec("additive_attention", "attention", additive_attention_forward,
           additive_attention_backward, layout="BTC"),
    OpSpec("split_heads", "attention", split_heads_forward, split_heads_backward,
           layout="BTC"),
    OpSpec("merge_heads", "attention", merge_heads_forward, merge_heads_backward,
           layout="BTC"),
]
