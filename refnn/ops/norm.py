"""Normalization family: batch normalization, layer (object) normalization, LRN.

Canonical layouts (facades convert at their edge):

* ``batch_norm`` / ``batch_norm_infer``: x is (N, C) batch-first -- N samples of C
  features, statistics per feature over the batch. Convolutional batch norm folds the
  spatial axes into N: NCHW -> (N*H*W, C) (NeoML's channels-last blob already is that
  matrix; neon's CHWN is its transpose).
* ``layer_norm``: x is (N, D) -- statistics per row (object) over its D features.
* ``lrn``: x is (N, C, H, W) -- a window over the channel axis at every pixel. A
  channels-last matrix (M, C) is the same op on the view (M, C, 1, 1).

Batch normalization, training mode (Ioffe & Szegedy 2015)::

    mean[c] = 1/N sum_n x[n,c]          var[c] = 1/N sum_n (x[n,c] - mean[c])^2   (biased)
    xhat[n,c] = (x[n,c] - mean[c]) / sqrt(var[c] + eps)
    y[n,c] = gamma[c] xhat[n,c] + beta[c]

``batch_norm`` has THREE outputs ``(y, mean, var)``: the facades feed the batch
statistics into their running averages (neon's gmean/gvar, NeoML's slow average and
variance) without a second pass over x. Its backward takes ``(dy, dmean, dvar)``;
``dmean`` and ``dvar`` may be ``None`` (meaning zero -- the usual case, the running
averages are not differentiated). The full gradient, with every path through mean and
var, is::

    dbeta[c]  = sum_n dy[n,c]
    dgamma[c] = sum_n dy[n,c] xhat[n,c]
    dx[n,c]   = gamma[c] / (N sqrt(var[c] + eps)) (N dy[n,c] - dbeta[c] - xhat[n,c] dgamma[c])
                + dmean[c] / N + dvar[c] 2 (x[n,c] - mean[c]) / N

Inference mode (``batch_norm_infer``) uses given statistics (the running averages)::

    y[n,c] = gamma[c] (x[n,c] - mean[c]) / sqrt(var[c] + eps) + beta[c]

and is differentiable in x, gamma and beta (mean and var are constants: their gradient
is None).

Layer normalization (NeoML's ObjectNormalization; Ba et al. 2016), per object n::

    mu[n] = 1/D sum_j x[n,j]            s2[n] = 1/D sum_j (x[n,j] - mu[n])^2      (biased)
    xhat[n,j] = (x[n,j] - mu[n]) / sqrt(s2[n] + eps)
    y[n,j] = scale[j] xhat[n,j] + bias[j]

    g = dy * scale
    dx[n,j] = (D g[n,j] - sum_j' g[n,j'] - xhat[n,j] sum_j' g[n,j'] xhat[n,j'])
              / (D sqrt(s2[n] + eps))

Local response normalization across channels (Krizhevsky et al. 2012, section 3.3)::

    S[n,c,h,w] = sum_{c' = c - (size-1)//2}^{c + size//2} x[n,c',h,w]^2   (clipped to 0..C-1)
    d = k + alpha / size * S
    y = x * d^(-beta)

Note ``alpha / size``: alpha is divided by the window size. Both APIs do this:
NeoML ``Lrn(window_size, bias, alpha, beta)`` -> size=window_size, k=bias, alpha=alpha,
beta=beta (its window for an even size reaches one channel further up than down, as
here); neon ``LRN(depth, alpha, beta, ascale, bpower)`` -> size=depth (odd only), k=1,
alpha=ascale, beta=bpower -- neon's own ``alpha`` and ``beta`` arguments are ignored by
its backends (its CPU backend computes ``1 + ascale / depth * S`` and raises that to
``-bpower``). Backward: the channel c' whose window holds c contributes to dx[c]::

    dx[c] = dy[c] d[c]^(-beta)
            - 2 alpha beta / size * x[c]
              * sum_{c' = c - size//2}^{c + (size-1)//2} dy[c'] x[c'] d[c']^(-beta-1)
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError, check_shape
from refnn.ops._spec import OpSpec


# ------------------------------------------------------------------ validation
def _check_eps(where, eps):
    if not np.isscalar(eps) or not np.isfinite(eps) or eps < 0:
        raise ParameterError(f"{where}: eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def check_bn_args(where, x_shape, vec_shapes, names):
    """x must be (N, C) with N >= 1 and every vector (C,); returns (N, C)."""
    x_shape = tuple(x_shape)
    if len(x_shape) != 2 or min(x_shape) < 1:
        raise ShapeError(f"{where}: x must have shape (N, C) with N, C >= 1 (fold the "
                         f"spatial axes into N), got {x_shape}")
    for name, shape in zip(names, vec_shapes):
        check_shape(where, name, shape, (x_shape[1],))
    return x_shape


def check_lrn_args(where, x_shape, size, k, alpha, beta):
    """x must be (N, C, H, W); size an int >= 1; k > 0, alpha >= 0 (so d > 0)."""
    x_shape = tuple(x_shape)
    if len(x_shape) != 4 or min(x_shape) < 1:
        raise ShapeError(f"{where}: x must have shape (N, C, H, W) with every size >= 1, "
                         f"got {x_shape}")
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) \
            or size < 1:
        raise ParameterError(f"{where}: size (the channel window) must be an int >= 1, "
                             f"got {size!r}")
    for name, v in (("k", k), ("alpha", alpha), ("beta", beta)):
        if not np.isscalar(v) or not np.isfinite(v):
            raise ParameterError(f"{where}: {name} must be a finite number, got {v!r}")
    if k <= 0 or alpha < 0:
        raise ParameterError(f"{where}: need k > 0 and alpha >= 0 (the denominator "
                             f"k + alpha/size*sum(x^2) must stay > 0), got k={k!r}, "
                             f"alpha={alpha!r}")
    return x_shape


# ------------------------------------------------------------------ batch norm
def batch_norm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode batch normalization of x (N, C) with the batch's own statistics.

    Returns ``(y, mean, var)`` -- y (N, C), mean (C,), biased var (C,) -- and the
    saved state. y = gamma (x - mean) / sqrt(var + eps) + beta.

    >>> (y, m, v), _ = batch_norm_forward(np.array([[1.0], [3.0]]), np.ones(1), np.zeros(1))
    >>> y.ravel().round(4), m, v
    (array([-1.,  1.]), array([2.]), array([1.]))
    """
    check_bn_args("batch_norm", x.shape, (gamma.shape, beta.shape), ("gamma", "beta"))
    eps = _check_eps("batch_norm", eps)
    mean = x.mean(axis=0)
    xc = x - mean
    var = (xc * xc).mean(axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = xc * inv_std
    y = gamma * xhat + beta
    return (y, mean, var), (xc, xhat, inv_std, gamma)


def batch_norm_backward(dout, saved):
    """dout = (dy, dmean, dvar), dmean/dvar may be None -> (dx, dgamma, dbeta).

    dx = gamma / (N sqrt(var + eps)) (N dy - sum_n dy - xhat sum_n dy xhat)
         + dmean / N + 2 dvar (x - mean) / N
    """
    dy, dmean, dvar = dout
    xc, xhat, inv_std, gamma = saved
    n = dy.shape[0]
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = gamma * inv_std / n * (n * dy - dbeta - xhat * dgamma)
    if dmean is not None:
        dx = dx + dmean / n
    if dvar is not None:
        dx = dx + dvar * 2.0 * xc / n
    return dx, dgamma, dbeta


def batch_norm_infer_forward(x, gamma, beta, mean, var, eps=1e-5):
    """Inference-mode batch norm of x (N, C) with given (running) mean and var (C,):

        y = gamma (x - mean) / sqrt(var + eps) + beta
    """
    check_bn_args("batch_norm_infer", x.shape,
                  (gamma.shape, beta.shape, mean.shape, var.shape),
                  ("gamma", "beta", "mean", "var"))
    eps = _check_eps("batch_norm_infer", eps)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    return gamma * xhat + beta, (xhat, inv_std, gamma)


def batch_norm_infer_backward(dy, saved):
    """dx = dy gamma / sqrt(var + eps); dgamma = sum_n dy xhat; dbeta = sum_n dy;
    mean and var get None (constants)."""
    xhat, inv_std, gamma = saved
    return dy * (gamma * inv_std), (dy * xhat).sum(axis=0), dy.sum(axis=0), None, None


# ------------------------------------------------------------------ layer norm
def layer_norm_forward(x, scale, bias, eps=1e-5):
    """Per-object normalization of x (N, D) (NeoML ObjectNormalization):

        y[n] = scale (x[n] - mu[n]) / sqrt(s2[n] + eps) + bias

    with mu, s2 the mean and biased variance of row n; scale, bias (D,). N = 1 is fine.
    """
    x_shape = tuple(x.shape)
    if len(x_shape) != 2 or min(x_shape) < 1:
        raise ShapeError(f"layer_norm: x must have shape (N, D) with N, D >= 1, got {x_shape}")
    check_shape("layer_norm", "scale", scale.shape, (x_shape[1],))
    check_shape("layer_norm", "bias", bias.shape, (x_shape[1],))
    eps = _check_eps("layer_norm", eps)
    xc = x - x.mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt((xc * xc).mean(axis=1, keepdims=True) + eps)
    xhat = xc * inv_std
    return scale * xhat + bias, (xhat, inv_std, scale)


def layer_norm_backward(dy, saved):
    """g = dy scale; dx = inv_std / D (D g - sum_j g - xhat sum_j g xhat);
    dscale = sum_n dy xhat; dbias = sum_n dy."""
    xhat, inv_std, scale = saved
    d = dy.shape[1]
    g = dy * scale
    dx = inv_std / d * (d * g - g.sum(axis=1, keepdims=True)
                        - xhat * (g * xhat).sum(axis=1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


# ------------------------------------------------------------------ LRN
def channel_window_sum(a, below, above):
    """out[:, c] = sum_{c' = c - below}^{c + above} a[:, c'] (clipped to 0..C-1), axis 1.

    One cumulative sum over the zero-padded channel axis; the window sum is the
    difference of two of its entries.
    """
    n, c = a.shape[:2]
    pad = [(0, 0), (below + 1, above)] + [(0, 0)] * (a.ndim - 2)
    cum = np.cumsum(np.pad(a, pad), axis=1)
    return cum[:, below + 1 + above:] - cum[:, :c]


def lrn_forward(x, size=5, k=1.0, alpha=1e-4, beta=0.75):
    """Local response normalization across channels of x (N, C, H, W):

        d = k + alpha / size * sum_{c' = c - (size-1)//2}^{c + size//2} x[c']^2
        y = x d^(-beta)

    (see the module docstring for how neon's and NeoML's arguments map onto these).
    """
    check_lrn_args("lrn", x.shape, size, k, alpha, beta)
    d = k + alpha / size * channel_window_sum(x * x, (size - 1) // 2, size // 2)
    y = x * d ** -beta
    return y, (x, d, size, alpha, beta)


def lrn_backward(dy, saved):
    """dx = dy d^(-beta) - 2 alpha beta / size x sum_{c' whose window holds c} dy x d^(-beta-1)
    (the window mirrored: c' from c - size//2 to c + (size-1)//2)."""
    x, d, size, alpha, beta = saved
    t = dy * x * d ** (-beta - 1.0)
    back = channel_window_sum(t, size // 2, (size - 1) // 2)
    return (dy * d ** -beta - 2.0 * alpha * beta / size * x * back,)


SPECS = [
    OpSpec("batch_norm", "norm", batch_norm_forward, batch_norm_backward, layout="NC"),
    OpSpec("batch_norm_infer", "norm", batch_norm_infer_forward, batch_norm_infer_backward,
           diff_args=(0, 1, 2), layout="NC"),
    OpSpec("layer_norm", "norm", layer_norm_forward, layer_norm_backward, layout="NC"),
    OpSpec("lrn", "norm", lrn_forward, lrn_backward, layout="NCHW"),
]
