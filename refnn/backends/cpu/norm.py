"""cpu wrappers of the norm family: validate, allocate, call refnn._ext.norm.

Each function has the signature and return convention of refnn.ops.norm: batch_norm
returns ``(y, mean, var)`` and its backward takes ``(dy, dmean, dvar)`` with dmean/dvar
possibly None; batch_norm_infer / layer_norm take (N, C) matrices, lrn NCHW images.
Shapes and parameters are checked by the reference's own validators (the same messages
on every backend); dtypes and contiguity here.
"""
import numpy as np

from refnn._ext import norm as _k
from refnn.backends.cpu._common import float_input, like, n_threads
from refnn.errors import check_same_shape
from refnn.ops import norm as ref


def _vec(where, what, a, dtype):
    return float_input(where, what, a, dtype)


def _part(n, width):
    """Per-thread partial column sums: (T, width) doubles, T = min(threads, rows)."""
    return np.empty((max(1, min(n_threads(), n)), width), np.float64)


def _grad(where, dy, shape, dtype):
    check_same_shape(where, "dy", np.shape(dy), shape)
    return float_input(where, "dy", dy, dtype)


# ------------------------------------------------------------------ batch_norm
def batch_norm_forward(x, gamma, beta, eps=1e-5):
    x = float_input("batch_norm", "x", x)
    gamma = _vec("batch_norm", "gamma", gamma, x.dtype)
    beta = _vec("batch_norm", "beta", beta, x.dtype)
    ref.check_bn_args("batch_norm", x.shape, (gamma.shape, beta.shape), ("gamma", "beta"))
    eps = ref._check_eps("batch_norm", eps)
    n, c = x.shape
    y = np.empty_like(x)
    mean, var, inv_std = (np.empty(c, x.dtype) for _ in range(3))
    _k.batch_norm_forward(x, gamma, beta, y, mean, var, inv_std, _part(n, c),
                          np.empty((3, c), np.float64), eps, n_threads())
    return (y, mean, var), (x, mean, inv_std, gamma)


def batch_norm_backward(dout, saved):
    x, mean, inv_std, gamma = saved
    dy, dmean, dvar = dout
    dy = _grad("batch_norm", dy, x.shape, x.dtype)
    c = x.shape[1]
    zero = np.zeros(c, x.dtype)
    dmean = zero if dmean is None else like("batch_norm", "dmean", dmean, zero)
    dvar = zero if dvar is None else like("batch_norm", "dvar", dvar, zero)
    dx = np.empty_like(x)
    dgamma, dbeta = np.empty(c, x.dtype), np.empty(c, x.dtype)
    _k.batch_norm_backward(dy, x, mean, inv_std, gamma, dmean, dvar, dx, dgamma, dbeta,
                           _part(x.shape[0], 2 * c), np.empty((4, c), np.float64),
                           n_threads())
    return dx, dgamma, dbeta


# ------------------------------------------------------------------ batch_norm_infer
def batch_norm_infer_forward(x, gamma, beta, mean, var, eps=1e-5):
    x = float_input("batch_norm_infer", "x", x)
    vecs = [_vec("batch_norm_infer", name, a, x.dtype)
            for name, a in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
    ref.check_bn_args("batch_norm_infer", x.shape, [v.shape for v in vecs],
                      ("gamma", "beta", "mean", "var"))
    eps = ref._check_eps("batch_norm_infer", eps)
    gamma, beta, mean, var = vecs
    inv_std = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(x.dtype)
    scale = gamma * inv_std
    shift = (beta - mean * scale).astype(x.dtype)
    y = np.empty_like(x)
    _k.affine_columns(x, scale, shift, y, n_threads())
    return y, (x, mean, inv_std, scale)


def batch_norm_infer_backward(dy, saved):
    x, mean, inv_std, scale = saved
    dy = _grad("batch_norm_infer", dy, x.shape, x.dtype)
    n, c = x.shape
    dx = np.empty_like(x)
    _k.affine_columns(dy, scale, np.zeros(c, x.dtype), dx, n_threads())
    dgamma, dbeta = np.empty(c, x.dtype), np.empty(c, x.dtype)
    _k.column_grads(dy, x, mean, inv_std, dgamma, dbeta, _part(n, 2 * c),
                    np.empty((2, c), np.float64), n_threads())
    return dx, dgamma, dbeta, None, None


# ------------------------------------------------------------------ layer_norm
def layer_norm_forward(x, scale, bias, eps=1e-5):
    x = float_input("layer_norm", "x", x)
    scale = _vec("layer_norm", "scale", scale, x.dtype)
    bias = _vec("layer_norm", "bias", bias, x.dtype)
    ref.check_bn_args("layer_norm", x.shape, (scale.shape, bias.shape), ("scale", "bias"))
    eps = ref._check_eps("layer_norm", eps)
    y, xhat = np.empty_like(x), np.empty_like(x)
    inv_std = np.empty(x.shape[0], x.dtype)
    _k.layer_norm_forward(x, scale, bias, y, xhat, inv_std, eps, n_threads())
    return y, (xhat, inv_std, scale)


def layer_norm_backward(dy, saved):
    xhat, inv_std, scale = saved
    dy = _grad("layer_norm", dy, xhat.shape, xhat.dtype)
    d = xhat.shape[1]
    dx = np.empty_like(xhat)
    dscale, dbias = np.empty(d, xhat.dtype), np.empty(d, xhat.dtype)
    _k.layer_norm_backward(dy, xhat, inv_std, scale, dx, n_threads())
    _k.column_grads(dy, xhat, np.zeros(d, xhat.dtype), np.ones(d, xhat.dtype), dscale, dbias,
                    _part(xhat.shape[0], 2 * d), np.empty((2, d), np.float64), n_threads())
    return dx, dscale, dbias


# ------------------------------------------------------------------ lrn
def _planes(a):
    return a.reshape(a.shape[0], a.shape[1], a.shape[2] * a.shape[3])


def lrn_forward(x, size=5, k=1.0, alpha=1e-4, beta=0.75):
    x = float_input("lrn", "x", x)
    ref.check_lrn_args("lrn", x.shape, size, k, alpha, beta)
    y, d = np.empty_like(x), np.empty_like(x)
    _k.lrn_forward(_planes(x), _planes(y), _planes(d), int(size), float(k), float(alpha),
                   float(beta), n_threads())
    return y, (x, d, int(size), float(alpha), float(beta))


def lrn_backward(dy, saved):
    x, d, size, alpha, beta = saved
    dy = _grad("lrn", dy, x.shape, x.dtype)
    dx, t = np.empty_like(x), np.empty_like(x)
    _k.lrn_backward(_planes(dy), _planes(x), _planes(d), _planes(t), _planes(dx), size,
                    alpha, beta, n_threads())
    return (dx,)
