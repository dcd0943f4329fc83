"""OpenCL host wrappers of the attention family (kernels in kernels/attention.cl).

Signatures are those of refnn.ops.attention with the backend first; arrays stay on the
device. Every product is one launch of the batched ``bgemm`` kernel (the batch in the
third NDRange dimension, 16 outputs per work-item in registers; transposed operands are
swapped strides, nothing is copied);
the softmax and its backward are one work-item per row.
"""
import math

import numpy as np

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, real
from refnn.errors import check_same_shape
from refnn.ops.attention import _check_heads, check_attention

_OP = "scaled_dot_attention"
#: outputs per work-item of bgemm (RN in attention.cl) and rows per work-group
_RN, _ROWS = 16, 8


def _u32(v):
    return np.uint32(v)


def _up(n, m):
    return (n + m - 1) // m * m


def _bgemm(be, Bt, M, N, K, alpha, a, sa, b, sb, c):
    """c[bt] (M, N) = alpha * A[bt] B[bt]; sa = (batch, row, col) strides of A(m, k),
    sb = (batch, row, col) strides of B(k, n), in elements."""
    item = be.dtype.itemsize
    be.kernel("attention", "bgemm")(
        be.queue, (-(-N // _RN), _up(M, _ROWS), Bt), (1, _ROWS, 1),
        _u32(M), _u32(N), _u32(K), real(be, alpha),
        a.base_data, _u32(a.offset // item), *map(_u32, sa),
        b.base_data, _u32(b.offset // item), *map(_u32, sb), c.data)


def scaled_dot_attention_forward(be, q, k, v, mask=None, keep=None, *, scale=None):
    """out = softmax(scale q k^T + mask) * keep @ v: bgemm, softmax_rows, (mul_keep),
    bgemm."""
    q = device_input(be, _OP, "q", q)
    k = device_input(be, _OP, "k", k)
    v = device_input(be, _OP, "v", v)
    B, Tq, Tk, d, dv = check_attention(_OP, q, k, v, mask, keep)
    if mask is not None:
        mask = device_input(be, _OP, "mask", mask)
    if keep is not None:
        keep = device_input(be, _OP, "keep", keep)
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    P = be.empty((B, Tq, Tk))
    _bgemm(be, B, Tq, Tk, d, scale, q, (Tq * d, d, 1), k, (Tk * d, 1, d), P)
    mstride = 0 if mask is None or mask.ndim == 2 else Tq * Tk
    be.kernel("attention", "softmax_rows")(
        be.queue, global_1d(B * Tq), (LOCAL_1D,), P.data,
        (mask if mask is not None else P).data, np.int32(mask is not None),
        _u32(Tq), _u32(Tk), _u32(mstride), _u32(B * Tq))
    A = P
    if keep is not None:
        A = be.empty(P.shape)
        be.kernel("attention", "mul_keep")(be.queue, global_1d(P.size), (LOCAL_1D,),
                                           P.data, keep.data, A.data, _u32(P.size))
    out = be.empty((B, Tq, dv))
    _bgemm(be, B, Tq, dv, Tk, 1.0, A, (Tq * Tk, Tk, 1), v, (Tk * dv, dv, 1), out)
    n_args = 3 + (mask is not None or keep is not None) + (keep is not None)
    return out, (q, k, v, P, A, keep, scale, n_args)


def scaled_dot_attention_backward(be, dout, saved):
    """dv = A^T dout, dA = dout v^T, dS = softmax backward of dA * keep,
    dq = scale dS k, dk = scale dS^T q (four bgemm launches)."""
    q, k, v, P, A, keep, scale, n_args = saved
    B, Tq, d = q.shape
    Tk, dv_ = k.shape[1], v.shape[2]
    check_same_shape(_OP, "dout", dout.shape, (B, Tq, dv_))
    dout = device_input(be, _OP, "dout", dout)
    dv = be.empty(v.shape)
    _bgemm(be, B, Tk, dv_, Tq, 1.0, A, (Tq * Tk, 1, Tk), dout, (Tq * dv_, dv_, 1), dv)
    dS = be.empty(P.shape)
    _bgemm(be, B, Tq, Tk, dv_, 1.0, dout, (Tq * dv_, dv_, 1), v, (Tk * dv_, 1, dv_), dS)
    be.kernel("attention", "softmax_backward_rows")(
        be.queue, global_1d(B * Tq), (LOCAL_1D,), dS.data, P.data,
        (keep if keep is not None else P).data, np.int32(keep is not None),
        _u32(Tk), _u32(B * Tq))
    dq = be.empty(q.shape)
    _bgemm(be, B, Tq, d, Tk, scale, dS, (Tq * Tk, Tk, 1), k, (Tk * d, d, 1), dq)
    dk = be.empty(k.shape)
    _bgemm(be, B, Tk, d, Tq, scale, dS, (Tq * Tk, 1, Tk), q, (Tq * d, d, 1), dk)
    return (dq, dk, dv) + (None,) * (n_args - 3)


# ------------------------------------------------------------------ head permutations
def _permute(be, op, x, heads, split):
    x = device_input(be, op, "x", x)
    A, T, F = _check_heads(op, x, heads, split)
    if split:
        d, shape = F // heads, (A * heads, T, F // heads)
    else:
        d, shape = F, (A // heads, T, heads * F)
    y = be.empty(shape)
    if y.size:
        be.kernel("attention", "permute_heads")(
            be.queue, global_1d(y.size), (LOCAL_1D,), x.data, y.data, _u32(T),
            _u32(heads), _u32(d), np.int32(split), _u32(y.size))
    return y


def split_heads_forward(be, x, *, heads):
    """(N, T, H*d) -> (N*H, T, d) with permute_heads."""
    return _permute(be, "split_heads", x, heads, True), (heads, tuple(x.shape))


def split_heads_backward(be, dy, saved):
    heads, shape = saved
    check_same_shape("split_heads", "dy", dy.shape,
                     (shape[0] * heads, shape[1], shape[2] // heads))
    return (_permute(be, "split_heads", dy, heads, False),)


def merge_heads_forward(be, x, *, heads):
    """(N*H, T, d) -> (N, T, H*d) with permute_heads."""
    return _permute(be, "merge_heads", x, heads, False), (heads, tuple(x.shape))


def merge_heads_backward(be, dy, saved):
    heads, shape = saved
    check_same_shape("merge_heads", "dy", dy.shape,
                     (shape[0] // heads, shape[1], shape[2] * heads))
    return (_permute(be, "merge_heads", dy, heads, True),)


# ------------------------------------------------------------------ additive attention
_ADD = "additive_attention"


def additive_attention_forward(be, q, k, v, w):
    """out = softmax(w . tanh(q_i + k_j)) v: additive_scores, softmax_rows, bgemm."""
    q = device_input(be, _ADD, "q", q)
    k = device_input(be, _ADD, "k", k)
    v = device_input(be, _ADD, "v", v)
    B, Tq, Tk, d, dv = check_attention(_ADD, q, k, v)
    w = device_input(be, _ADD, "w", w)
    check_same_shape(_ADD, "w", w.shape, (d,))
    P = be.empty((B, Tq, Tk))
    rows = B * Tq
    be.kernel("attention", "additive_scores")(
        be.queue, global_1d(rows), (LOCAL_1D,), q.data, k.data, w.data, P.data, _u32(Tq),
        _u32(Tk), _u32(d), _u32(rows))
    be.kernel("attention", "softmax_rows")(
        be.queue, global_1d(rows), (LOCAL_1D,), P.data, P.data, np.int32(0), _u32(Tq),
        _u32(Tk), _u32(0), _u32(rows))
    out = be.empty((B, Tq, dv))
    _bgemm(be, B, Tq, dv, Tk, 1.0, P, (Tq * Tk, Tk, 1), v, (Tk * dv, dv, 1), out)
    return out, (q, k, v, w, P)


def additive_attention_backward(be, dout, saved):
    """dv = P^T dout and dP = dout v^T (bgemm), dS (softmax_backward_rows), then dq, dk,
    dw each gathered by its own kernel (no atomics)."""
    q, k, v, w, P = saved
    B, Tq, d = q.shape
    Tk, dv_ = k.shape[1], v.shape[2]
    check_same_shape(_ADD, "dout", dout.shape, (B, Tq, dv_))
    dout = device_input(be, _ADD, "dout", dout)
    dv = be.empty(v.shape)
    _bgemm(be, B, Tk, dv_, Tq, 1.0, P, (Tq * Tk, 1, Tk), dout, (Tq * dv_, dv_, 1), dv)
    dS = be.empty(P.shape)
    _bgemm(be, B, Tq, Tk, dv_, 1.0, dout, (Tq * dv_, dv_, 1), v, (Tk * dv_, 1, dv_), dS)
    rows = B * Tq
    be.kernel("attention", "softmax_backward_rows")(
        be.queue, global_1d(rows), (LOCAL_1D,), dS.data, P.data, P.data, np.int32(0),
        _u32(Tk), _u32(rows))
    dq, dk, dw = be.empty(q.shape), be.empty(k.shape), be.empty((d,))
    be.kernel("attention", "additive_dq")(
        be.queue, global_1d(q.size), (LOCAL_1D,), dS.data, q.data, k.data, w.data, dq.data,
        _u32(Tq), _u32(Tk), _u32(d), _u32(q.size))
    be.kernel("attention", "additive_dk")(
        be.queue, global_1d(k.size), (LOCAL_1D,), dS.data, q.data, k.data, w.data, dk.data,
        _u32(Tq), _u32(Tk), _u32(d), _u32(k.size))
    be.kernel("attention", "additive_dw")(
        be.queue, global_1d(d), (LOCAL_1D,), dS.data, q.data, k.data, dw.data, _u32(Tq),
        _u32(Tk), _u32(d), _u32(rows))
    return dq, dk, dv, dw
