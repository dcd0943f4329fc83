"""OpenCL host wrappers of the norm family (kernels in kernels/norm.cl).

Signatures are those of refnn.ops.norm with the backend first; arrays stay on the
device. batch_norm returns ``(y, mean, var)``; its backward takes ``(dy, dmean, dvar)``
(dmean/dvar None -> zeros on the device). Per-row reductions (layer norm) launch one
work-group of NORM_LOCAL items per row; per-column ones (batch norm statistics, every
dgamma/dbeta) add row chunks first (``_chunks``: about 16384 work-items, neighbours
reading neighbouring channels), then one item per column adds the chunk sums;
everything else is one work-item per element. Shapes and parameters
are checked by the reference's validators, so every backend reports them alike.
"""
import numpy as np

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, like, real
from refnn.errors import ShapeError
from refnn.ops import norm as ref

NORM_LOCAL = 64          # must equal NORM_LOCAL in kernels/norm.cl


def _elementwise(be, name, n, *args):
    be.kernel("norm", name)(be.queue, global_1d(n), (LOCAL_1D,), *args, np.uint32(n))


def _groups(be, name, groups, *args):
    """One work-group of NORM_LOCAL items per reduced vector."""
    be.kernel("norm", name)(be.queue, (groups * NORM_LOCAL,), (NORM_LOCAL,), *args)


def _chunks(n, c):
    """(K, R): K row chunks of R rows for the column sums, about 16384 work-items."""
    k = max(1, min(n, -(-16384 // c)))
    r = -(-n // k)
    return -(-n // r), r


def _column_grads(be, dy, x, mean, inv_std):
    """dgamma = inv_std sum_n dy (x - mean), dbeta = sum_n dy (two-step column sums)."""
    n, c = x.shape
    k, r = _chunks(n, c)
    pb, pg = be.empty((k, c)), be.empty((k, c))
    _elementwise(be, "col_partial_grads", k * c, dy.data, x.data, mean.data, pb.data,
                 pg.data, np.int32(n), np.int32(c), np.int32(r))
    dgamma, dbeta = be.empty((c,)), be.empty((c,))
    _elementwise(be, "col_finish_grads", c, pb.data, pg.data, inv_std.data, dgamma.data,
                 dbeta.data, np.int32(k), np.int32(c))
    return dgamma, dbeta


def _matrix(be, where, x):
    x = device_input(be, where, "x", x)
    if x.size >= 2 ** 31:
        raise ShapeError(f"{where}: x must have fewer than 2**31 elements, got {x.size}")
    return x


def _grad(be, where, dy, shape, dtype):
    if tuple(np.shape(dy)) != tuple(shape):
        raise ShapeError(f"{where}: dy must have shape {tuple(shape)}, got "
                         f"{tuple(np.shape(dy))}")
    return device_input(be, where, "dy", dy, dtype)


def _vecs(be, where, x, pairs):
    return [device_input(be, where, name, a, x.dtype) for name, a in pairs]


# ------------------------------------------------------------------ batch_norm
def batch_norm_forward(be, x, gamma, beta, eps=1e-5):
    ref.check_bn_args("batch_norm", np.shape(x), (np.shape(gamma), np.shape(beta)),
                      ("gamma", "beta"))
    eps = ref._check_eps("batch_norm", eps)
    x = _matrix(be, "batch_norm", x)
    gamma, beta = _vecs(be, "batch_norm", x, (("gamma", gamma), ("beta", beta)))
    n, c = x.shape
    mean, var, inv_std = be.empty((c,)), be.empty((c,)), be.empty((c,))
    k, r = _chunks(n, c)
    part = be.empty((k, c))
    dims = (np.int32(n), np.int32(c), np.int32(r))
    _elementwise(be, "col_partial_stats", k * c, x.data, mean.data, part.data, *dims,
                 np.int32(0))
    _elementwise(be, "bn_mean", c, x.data, part.data, mean.data, np.int32(k), np.int32(c),
                 np.int32(n))
    _elementwise(be, "col_partial_stats", k * c, x.data, mean.data, part.data, *dims,
                 np.int32(1))
    _elementwise(be, "bn_var", c, part.data, var.data, inv_std.data, np.int32(k),
                 np.int32(c), np.int32(n), real(be, eps))
    y = be.empty(x.shape)
    _elementwise(be, "bn_normalize", x.size, x.data, gamma.data, beta.data, mean.data,
                 inv_std.data, y.data, np.int32(c))
    return (y, mean, var), (x, mean, inv_std, gamma)


def batch_norm_backward(be, dout, saved):
    x, mean, inv_std, gamma = saved
    dy, dmean, dvar = dout
    dy = _grad(be, "batch_norm", dy, x.shape, x.dtype)
    n, c = x.shape
    dmean = be.zeros((c,)) if dmean is None else like(be, "batch_norm", "dmean", dmean, mean)
    dvar = be.zeros((c,)) if dvar is None else like(be, "batch_norm", "dvar", dvar, mean)
    dgamma, dbeta = _column_grads(be, dy, x, mean, inv_std)
    coef = be.empty((3, c))
    _elementwise(be, "bn_dx_coeffs", c, inv_std.data, gamma.data, dgamma.data, dbeta.data,
                 dmean.data, dvar.data, coef.data, np.int32(n))
    dx = be.empty(x.shape)
    _elementwise(be, "bn_backward_dx", x.size, dy.data, x.data, mean.data, coef.data,
                 dx.data, np.int32(c))
    return dx, dgamma, dbeta


# ------------------------------------------------------------------ batch_norm_infer
def batch_norm_infer_forward(be, x, gamma, beta, mean, var, eps=1e-5):
    names = ("gamma", "beta", "mean", "var")
    ref.check_bn_args("batch_norm_infer", np.shape(x),
                      [np.shape(a) for a in (gamma, beta, mean, var)], names)
    eps = ref._check_eps("batch_norm_infer", eps)
    x = _matrix(be, "batch_norm_infer", x)
    gamma, beta, mean, var = _vecs(be, "batch_norm_infer", x,
                                   zip(names, (gamma, beta, mean, var)))
    c = x.shape[1]
    inv_std, scale, shift = be.empty((c,)), be.empty((c,)), be.empty((c,))
    _elementwise(be, "bn_infer_coeffs", c, gamma.data, beta.data, mean.data, var.data,
                 inv_std.data, scale.data, shift.data, real(be, eps))
    y = be.empty(x.shape)
    _elementwise(be, "affine_columns", x.size, x.data, scale.data, shift.data, y.data,
                 np.int32(c))
    return y, (x, mean, inv_std, scale)


def batch_norm_infer_backward(be, dy, saved):
    x, mean, inv_std, scale = saved
    dy = _grad(be, "batch_norm_infer", dy, x.shape, x.dtype)
    n, c = x.shape
    dx = be.empty(x.shape)
    _elementwise(be, "affine_columns", x.size, dy.data, scale.data, be.zeros((c,)).data,
                 dx.data, np.int32(c))
    dgamma, dbeta = _column_grads(be, dy, x, mean, inv_std)
    return dx, dgamma, dbeta, None, None


# ------------------------------------------------------------------ layer_norm
def layer_norm_forward(be, x, scale, bias, eps=1e-5):
    ref.check_bn_args("layer_norm", np.shape(x), (np.shape(scale), np.shape(bias)),
                      ("scale", "bias"))
    eps = ref._check_eps("layer_norm", eps)
    x = _matrix(be, "layer_norm", x)
    scale, bias = _vecs(be, "layer_norm", x, (("scale", scale), ("bias", bias)))
    n, d = x.shape
    y, xhat, inv_std = be.empty(x.shape), be.empty(x.shape), be.empty((n,))
    _groups(be, "ln_forward", n, x.data, scale.data, bias.data, y.data, xhat.data,
            inv_std.data, np.int32(d), real(be, eps))
    return y, (xhat, inv_std, scale)


def layer_norm_backward(be, dy, saved):
    xhat, inv_std, scale = saved
    dy = _grad(be, "layer_norm", dy, xhat.shape, xhat.dtype)
    n, d = xhat.shape
    dx = be.empty(xhat.shape)
    _groups(be, "ln_backward_dx", n, dy.data, xhat.data, inv_std.data, scale.data,
            dx.data, np.int32(d))
    ones = be.asarray(np.ones(d, xhat.dtype), dtype=xhat.dtype)
    dscale, dbias = _column_grads(be, dy, xhat, be.zeros((d,)), ones)
    return dx, dscale, dbias


# ------------------------------------------------------------------ lrn
def lrn_forward(be, x, size=5, k=1.0, alpha=1e-4, beta=0.75):
    ref.check_lrn_args("lrn", np.shape(x), size, k, alpha, beta)
    x = _matrix(be, "lrn", x)
    _, c, h, w = x.shape
    y, d = be.empty(x.shape), be.empty(x.shape)
    _elementwise(be, "lrn_forward", x.size, x.data, y.data, d.data, np.int32(c),
                 np.int32(h * w), np.int32(size), real(be, k), real(be, alpha),
                 real(be, beta))
    return y, (x, d, int(size), float(alpha), float(beta))


def lrn_backward(be, dy, saved):
    x, d, size, alpha, beta = saved
    dy = _grad(be, "lrn", dy, x.shape, x.dtype)
    _, c, h, w = x.shape
    t, dx = be.empty(x.shape), be.empty(x.shape)
    _elementwise(be, "lrn_backward_t", x.size, dy.data, x.data, d.data, t.data,
                 real(be, beta))
    _elementwise(be, "lrn_backward_dx", x.size, dy.data, x.data, d.data, t.data, dx.data,
                 np.int32(c), np.int32(h * w), np.int32(size), real(be, alpha),
                 real(be, beta))
    return (dx,)
