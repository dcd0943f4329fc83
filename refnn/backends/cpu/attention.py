"""cpu wrappers of the attention family: validate, allocate, call refnn._ext.attention.

Signatures and return conventions are those of refnn.ops.attention (q (B, Tq, d),
k (B, Tk, d), v (B, Tk, dv), optional additive mask (Tq, Tk) or (B, Tq, Tk) and
dropout multiplier keep (B, Tq, Tk)); shapes are checked by the reference's
``check_attention`` so every backend reports bad input alike.
"""
import math

import numpy as np

from refnn._ext import attention as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import check_same_shape
from refnn.ops.attention import _check_heads, check_attention

_OP = "scaled_dot_attention"


def scaled_dot_attention_forward(q, k, v, mask=None, keep=None, *, scale=None):
    """out = softmax(scale q k^T + mask) * keep @ v; per batch entry: 2 BLAS GEMMs and a
    fused row softmax, entries in parallel."""
    q = float_input(_OP, "q", q)
    k = float_input(_OP, "k", k, q.dtype)
    v = float_input(_OP, "v", v, q.dtype)
    B, Tq, Tk, d, dv = check_attention(_OP, q, k, v, mask, keep)
    if mask is not None:
        mask = float_input(_OP, "mask", mask, q.dtype)
    if keep is not None:
        keep = float_input(_OP, "keep", keep, q.dtype)
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    P = np.empty((B, Tq, Tk), q.dtype)
    A = np.empty((B, Tq, Tk), q.dtype) if keep is not None else None
    out = np.empty((B, Tq, dv), q.dtype)
    mstride = 0 if mask is None or mask.ndim == 2 else Tq * Tk
    _k.forward(q, k, v, mask, mstride, keep, P, A, out, scale, n_threads())
    n_args = 3 + (mask is not None or keep is not None) + (keep is not None)
    return out, (q, k, v, P, A, keep, scale, n_args)


def scaled_dot_attention_backward(dout, saved):
    """(dq, dk, dv) (+ None for mask/keep) through 4 BLAS GEMMs per batch entry."""
    q, k, v, P, A, keep, scale, n_args = saved
    check_same_shape(_OP, "dout", np.shape(dout), (q.shape[0], q.shape[1], v.shape[2]))
    dout = float_input(_OP, "dout", dout, q.dtype)
    dS = np.empty(P.shape, q.dtype)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    _k.backward(dout, q, k, v, P, A, keep, dS, dq, dk, dv, scale, n_threads())
    return (dq, dk, dv) + (None,) * (n_args - 3)


# ------------------------------------------------------------------ head permutations
def _permute(op, x, heads, split):
    x = float_input(op, "x", x)
    A, T, F = _check_heads(op, x, heads, split)
    if split:
        N, d, shape = A, F // heads, (A * heads, T, F // heads)
    else:
        N, d, shape = A // heads, F, (A // heads, T, heads * F)
    y = np.empty(shape, x.dtype)
    if y.size:
        _k.permute_heads(x, y, N, T, heads, d, split, n_threads())
    return y


def split_heads_forward(x, *, heads):
    """(N, T, H*d) -> (N*H, T, d) (refnn.ops.attention.split_heads_forward)."""
    return _permute("split_heads", x, heads, True), (heads, x.shape, x.dtype)


def split_heads_backward(dy, saved):
    heads, shape, dtype = saved
    check_same_shape("split_heads", "dy", np.shape(dy),
                     (shape[0] * heads, shape[1], shape[2] // heads))
    return (_permute("split_heads", float_input("split_heads", "dy", dy, dtype), heads,
                     False),)


def merge_heads_forward(x, *, heads):
    """(N*H, T, d) -> (N, T, H*d) (refnn.ops.attention.merge_heads_forward)."""
    return _permute("merge_heads", x, heads, False), (heads, x.shape, x.dtype)


def merge_heads_backward(dy, saved):
    heads, shape, dtype = saved
    check_same_shape("merge_heads", "dy", np.shape(dy),
                     (shape[0] // heads, shape[1], shape[2] * heads))
    return (_permute("merge_heads", float_input("merge_heads", "dy", dy, dtype), heads,
                     True),)


# ------------------------------------------------------------------ additive attention
_ADD = "additive_attention"


def additive_attention_forward(q, k, v, w):
    """out = softmax(w . tanh(q_i + k_j)) v (refnn.ops.attention.additive_attention_forward):
    fused scores and softmax per row, one BLAS GEMM per batch entry."""
    q = float_input(_ADD, "q", q)
    k = float_input(_ADD, "k", k, q.dtype)
    v = float_input(_ADD, "v", v, q.dtype)
    B, Tq, Tk, d, dv = check_attention(_ADD, q, k, v)
    w = float_input(_ADD, "w", w, q.dtype)
    check_same_shape(_ADD, "w", w.shape, (d,))
    P = np.empty((B, Tq, Tk), q.dtype)
    out = np.empty((B, Tq, dv), q.dtype)
    _k.additive_forward(q, k, v, w, P, out, n_threads())
    return out, (q, k, v, w, P)


def additive_attention_backward(dout, saved):
    """(dq, dk, dv, dw); dw summed from per-entry partial sums (no shared writes)."""
    q, k, v, w, P = saved
    check_same_shape(_ADD, "dout", np.shape(dout), (q.shape[0], q.shape[1], v.shape[2]))
    dout = float_input(_ADD, "dout", dout, q.dtype)
    dS = np.empty(P.shape, q.dtype)
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.empty_like(v)
    dw_part = np.zeros((q.shape[0], q.shape[2]), q.dtype)
    _k.additive_backward(dout, q, k, v, w, P, dS, dq, dk, dv, dw_part, n_threads())
    return dq, dk, dv, dw_part.sum(axis=0)
