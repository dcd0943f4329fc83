"""Activation family: elementwise functions y = f(x) on arrays of any shape.

Canonical layout: any (elementwise); softmax works over the LAST axis. Each op is
``<name>_forward(x, **params) -> (y, saved)`` and ``<name>_backward(dy, saved) -> (dx,)``
with dx = dy * f'(x) (softmax: the Jacobian-vector product of a row).

The fast paths (refnn/_ext/activation.pyx, refnn/backends/opencl/kernels/activation.cl)
mirror these functions one to one; parameter checks shared by every backend are the
``check_*`` helpers at the end of this module.
"""
import math

import numpy as np
from scipy.special import erf as _erf

# Python floats (weak scalars under NEP 50): float32 inputs stay float32.
SQRT2 = math.sqrt(2.0)
SQRT_2PI = math.sqrt(2.0 * math.pi)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

from refnn.errors import ParameterError, ShapeError
from refnn.ops._spec import OpSpec

#: GELU's fast form: x * sigmoid(GELU_SIGMOID_K * x) (NeoML's default)
GELU_SIGMOID_K = 1.702


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------- identity, relu
def identity_forward(x):
    """y = x"""
    return x.copy(), ()


def identity_backward(dy, saved):
    """dx = dy"""
    return (dy.copy(),)


def relu_forward(x, threshold=0.0):
    """y = max(x, 0), clipped from above at ``threshold`` when threshold > 0 (NeoML ReLU).

    >>> relu_forward(np.array([-1.0, 2.0]))[0]
    array([0., 2.])
    """
    y = np.maximum(x, 0)
    if threshold > 0:
        y = np.minimum(y, threshold)
    return y, (x, threshold)


def relu_backward(dy, saved):
    """dx = dy * [0 < x] (* [x < threshold] when a threshold is set)"""
    x, threshold = saved
    mask = x > 0
    if threshold > 0:
        mask &= x < threshold
    return (dy * mask,)


# ------------------------------------------------------------- piecewise linear
def leaky_relu_forward(x, alpha):
    """y = x if x > 0 else alpha * x  (neon Rectlin(slope=alpha), NeoML LeakyReLU).

    >>> leaky_relu_forward(np.array([-2.0, 3.0]), alpha=0.1)[0]
    array([-0.2,  3. ])
    """
    return np.where(x > 0, x, alpha * x), (x, alpha)


def leaky_relu_backward(dy, saved):
    """dx = dy * (1 if x > 0 else alpha)"""
    x, alpha = saved
    return (dy * np.where(x > 0, 1, alpha),)


def hard_sigmoid_forward(x, slope=0.5, bias=0.5):
    """y = clip(slope * x + bias, 0, 1)  (NeoML HardSigmoid; slope > 0).

    >>> hard_sigmoid_forward(np.array([-5.0, 0.0, 5.0]))[0]
    array([0. , 0.5, 1. ])
    """
    check_hard_sigmoid(slope)
    return np.clip(slope * x + bias, 0, 1), (x, slope, bias)


def hard_sigmoid_backward(dy, saved):
    """dx = dy * slope * [0 < slope * x + bias < 1]"""
    x, slope, bias = saved
    z = slope * x + bias
    return (dy * slope * ((z > 0) & (z < 1)),)


def hard_tanh_forward(x):
    """y = clip(x, -1, 1)  (NeoML HardTanh).

    >>> hard_tanh_forward(np.array([-2.0, 0.5, 2.0]))[0]
    array([-1. ,  0.5,  1. ])
    """
    return np.clip(x, -1, 1), (x,)


def hard_tanh_backward(dy, saved):
    """dx = dy * [-1 < x < 1]  (the true gradient: real NeoML's CPU kernel lets the last
    size % 4 elements through even where x is clipped)."""
    (x,) = saved
    return (dy * ((x > -1) & (x < 1)),)


def abs_forward(x):
    """y = |x|  (NeoML Abs)."""
    return np.abs(x), (x,)


def abs_backward(dy, saved):
    """dx = dy * sign(x)  (0 at x = 0)"""
    (x,) = saved
    return (dy * np.sign(x),)


def linear_activation_forward(x, multiplier, free_term):
    """y = multiplier * x + free_term  (NeoML Linear).

    >>> linear_activation_forward(np.array([1.0, 2.0]), multiplier=2.0, free_term=1.0)[0]
    array([3., 5.])
    """
    return multiplier * x + free_term, (multiplier,)


def linear_activation_backward(dy, saved):
    """dx = multiplier * dy"""
    (multiplier,) = saved
    return (multiplier * dy,)


def normalizer_forward(x, divisor):
    """y = x / divisor  (neon Normalizer; divisor != 0).

    >>> normalizer_forward(np.array([2.0, 4.0]), divisor=2.0)[0]
    array([1., 2.])
    """
    check_normalizer(divisor)
    return x / divisor, (divisor,)


def normalizer_backward(dy, saved):
    """dx = dy / divisor"""
    (divisor,) = saved
    return (dy / divisor,)


# ----------------------------------------------------------------------- smooth
def elu_forward(x, alpha=1.0):
    """y = x if x > 0 else alpha * (exp(x) - 1)  (neon Explin, NeoML ELU).

    >>> elu_forward(np.array([0.0, 2.0]))[0]
    array([0., 2.])
    """
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))), (x, alpha)


def elu_backward(dy, saved):
    """dx = dy * (1 if x > 0 else alpha * exp(x))"""
    x, alpha = saved
    return (dy * np.where(x > 0, 1, alpha * np.exp(np.minimum(x, 0))),)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x))  (neon Logistic, NeoML Sigmoid).

    >>> sigmoid_forward(np.array([0.0]))[0]
    array([0.5])
    """
    y = _sigmoid(x)
    return y, (y,)


def sigmoid_backward(dy, saved):
    """dx = dy * y * (1 - y)"""
    (y,) = saved
    return (dy * y * (1 - y),)


def tanh_forward(x):
    """y = tanh(x)  (neon Tanh, NeoML Tanh)."""
    y = np.tanh(x)
    return y, (y,)


def tanh_backward(dy, saved):
    """dx = dy * (1 - y^2)"""
    (y,) = saved
    return (dy * (1 - y * y),)


def hswish_forward(x):
    """y = x * relu6(x + 3) / 6 = x * clip(x + 3, 0, 6) / 6  (NeoML HSwish):
    0 for x <= -3, x (x + 3) / 6 in between, x for x >= 3.

    >>> hswish_forward(np.array([-4.0, 0.0, 4.0]))[0]
    array([-0.,  0.,  4.])
    """
    return x * np.clip(x + 3, 0, 6) / 6, (x,)


def hswish_backward(dy, saved):
    """dx = dy * (0 if x <= -3, (2x + 3) / 6 if -3 < x < 3, 1 if x >= 3)"""
    (x,) = saved
    d = np.where(x <= -3, 0, np.where(x >= 3, 1, (2 * x + 3) / 6))
    return (dy * d,)


def gelu_forward(x, form="sigmoid"):
    """GELU.  form="sigmoid" (NeoML's default fast form): y = x * sigmoid(1.702 x);
    form="erf" (the precise form): y = 0.5 x (1 + erf(x / sqrt 2)).

    >>> gelu_forward(np.array([0.0]))[0]
    array([0.])
    """
    check_gelu(form)
    if form == "sigmoid":
        return x * _sigmoid(GELU_SIGMOID_K * x), (x, form)
    return 0.5 * x * (1 + _erf(x / SQRT2)), (x, form)


def gelu_backward(dy, saved):
    """sigmoid form: dx = dy * (s + 1.702 x s (1 - s)), s = sigmoid(1.702 x);
    erf form: dx = dy * (0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi))"""
    x, form = saved
    if form == "sigmoid":
        s = _sigmoid(GELU_SIGMOID_K * x)
        return (dy * (s + GELU_SIGMOID_K * x * s * (1 - s)),)
    d = 0.5 * (1 + _erf(x / SQRT2)) + x * np.exp(-0.5 * x * x) / SQRT_2PI
    return (dy * d,)


def power_forward(x, exponent):
    """y = x ** exponent  (NeoML Power).

    Negative x with a non-integer exponent has no real power: y (and dx) are NaN there,
    as with NumPy and C ``pow`` -- no error is raised, every backend gives NaN.
    x = 0 with exponent < 1 gives inf in the gradient.

    >>> power_forward(np.array([2.0, 3.0]), exponent=2.0)[0]
    array([4., 9.])
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.power(x, exponent), (x, exponent)


def power_backward(dy, saved):
    """dx = dy * exponent * x ** (exponent - 1)  (the true gradient: real NeoML derives it
    from the output, y * exponent / x, which loses the sign / gives NaN for negative x)."""
    x, exponent = saved
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dy * exponent * np.power(x, exponent - 1),)


def exp_forward(x):
    """y = exp(x)  (NeoML Exp)."""
    y = np.exp(x)
    return y, (y,)


def exp_backward(dy, saved):
    """dx = dy * y"""
    (y,) = saved
    return (dy * y,)


def log_forward(x):
    """y = log(x) for x > 0  (NeoML Log); x <= 0 gives -inf / NaN, never an error."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(x), (x,)


def log_backward(dy, saved):
    """dx = dy / x  (the true gradient: real NeoML run in place returns dy)"""
    (x,) = saved
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dy / x,)


def erf_forward(x):
    """y = erf(x) = 2 / sqrt(pi) * integral_0^x exp(-t^2) dt  (NeoML Erf)."""
    return _erf(x), (x,)


def erf_backward(dy, saved):
    """dx = dy * 2 / sqrt(pi) * exp(-x^2)  (real NeoML reads stale memory here)"""
    (x,) = saved
    return (dy * TWO_OVER_SQRT_PI * np.exp(-x * x),)


# ---------------------------------------------------------------------- softmax
def softmax_forward(x):
    """y = exp(x - max(x)) / sum(exp(x - max(x))) over the LAST axis (rows); subtracting
    the row max changes nothing mathematically and keeps exp from overflowing.

    >>> softmax_forward(np.array([[0.0, 0.0]]))[0]
    array([[0.5, 0.5]])
    """
    check_softmax(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    return y, (y,)


def softmax_backward(dy, saved):
    """dx = y * (dy - sum(dy * y, last axis))"""
    (y,) = saved
    return (y * (dy - np.sum(dy * y, axis=-1, keepdims=True)),)


# ---------------------------------------------------------------------- dropout
def dropout_hash(seed, index):
    """The counter-based hash behind dropout: a 32-bit value per (seed, flat index).

        key = fmix32(seed xor 0x9E3779B9)
        h   = fmix32(key + index * 0x9E3779B9)          (all arithmetic mod 2^32)
        fmix32(h): h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; h *= 0xC2B2AE35; h ^= h >> 16

    (a splitmix-style counter finished by MurmurHash3's fmix32). The Cython and OpenCL
    kernels compute exactly the same integers, so every backend draws the same mask.
    """
    h = np.uint32(dropout_key(seed)) + np.asarray(index, dtype=np.uint32) * np.uint32(0x9E3779B9)
    return _fmix32(h)


def dropout_key(seed):
    """key = fmix32(seed xor 0x9E3779B9), a Python int (the fast paths get it as uint32)."""
    return _fmix32_int((int(seed) ^ 0x9E3779B9) & 0xFFFFFFFF)


def _fmix32(h):
    h = np.asarray(h, dtype=np.uint32)
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _fmix32_int(h):
    """fmix32 on a Python int (NumPy scalars would warn on the intended overflow)."""
    m = 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    return h ^ (h >> 16)


def dropout_threshold(keep):
    """Unit i is kept iff u_i < keep with u_i = (h_i >> 8) / 2^24 in [0, 1), i.e. iff the
    integer h_i >> 8 < ceil(keep * 2^24): backends compare integers, never rounded floats."""
    return int(np.ceil(keep * 2.0 ** 24))


def dropout_mask(shape, keep, seed):
    """Boolean keep-mask of ``shape``: mask[i] = (u(seed, i) < keep), i the C-order index."""
    index = np.arange(int(np.prod(shape)), dtype=np.uint32)
    h = dropout_hash(seed, index)
    return ((h >> np.uint32(8)) < dropout_threshold(keep)).reshape(shape)


def dropout_forward(x, keep, seed, scale=1.0, training=True):
    """y = x * mask * scale in training, y = x otherwise; mask[i] = (u(seed, i) < keep)
    with u the counter-based hash of :func:`dropout_hash` mapped to [0, 1).

    ``scale`` is the facade's convention: neon keeps units unscaled in training
    (scale = 1) and multiplies by keep at inference (the neon facade does that
    multiplication itself; training=False here is the identity); NeoML scales kept units
    by 1 / keep = 1 / (1 - rate) in training (scale = 1 / keep). The same seed gives the
    same mask on every backend; a new mask needs a new seed.

    >>> dropout_forward(np.ones(4), keep=1.0, seed=0, scale=2.0)[0]
    array([2., 2., 2., 2.])
    """
    check_dropout(x, keep, seed, scale)
    if not training:
        return x.copy(), (None, 1.0)
    mask = dropout_mask(x.shape, keep, seed)
    return x * mask * scale, (mask, scale)


def dropout_backward(dy, saved):
    """dx = dy * mask * scale (dx = dy when forward ran with training=False)"""
    mask, scale = saved
    if mask is None:
        return (dy.copy(),)
    return (dy * mask * scale,)


# ------------------------------------------------------ parameter checks (shared)
def check_hard_sigmoid(slope):
    if not slope > 0:
        raise ParameterError(f"hard_sigmoid: slope must be > 0, got {slope!r}")


def check_normalizer(divisor):
    if divisor == 0 or not np.isfinite(divisor):
        raise ParameterError(f"normalizer: divisor must be finite and non-zero, got {divisor!r}")


def check_gelu(form):
    if form not in ("sigmoid", "erf"):
        raise ParameterError(f"gelu: form must be 'sigmoid' or 'erf', got {form!r}")


def check_softmax(x):
    if np.ndim(x) < 1:
        raise ShapeError(f"softmax: x must have at least 1 dimension (rows over the last "
                         f"axis), got shape {np.shape(x)}")


def check_dropout(x, keep, seed, scale):
    if not 0 <= keep <= 1:
        raise ParameterError(f"dropout: keep must be in [0, 1], got {keep!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed < 2 ** 32:
        raise ParameterError(f"dropout: seed must be an integer in [0, 2**32), got {seed!r}")
    if not np.isfinite(scale):
        raise ParameterError(f"dropout: scale must be finite, got {scale!r}")
    if np.size(x) >= 2 ** 32:
        raise ShapeError(f"dropout: x must have fewer than 2**32 elements (32-bit counter), "
                         f"got {np.size(x)}")


SPECS = [
    OpSpec("identity", "activation", identity_forward, identity_backward),
    OpSpec("relu", "activation", relu_forward, relu_backward, kinks=(0.0,)),
    OpSpec("leaky_relu", "activation", leaky_relu_forward, leaky_relu_backward, kinks=(0.0,)),
    OpSpec("elu", "activation", elu_forward, elu_backward, kinks=(0.0,)),
    OpSpec("sigmoid", "activation", sigmoid_forward, sigmoid_backward),
    OpSpec("tanh", "activation", tanh_forward, tanh_backward),
    OpSpec("hard_sigmoid", "activation", hard_sigmoid_forward, hard_sigmoid_backward),
    OpSpec("hard_tanh", "activation", hard_tanh_forward, hard_tanh_backward,
           kinks=(-1.0, 1.0)),
    OpSpec("hswish", "activation", hswish_forward, hswish_backward, kinks=(-3.0, 3.0)),
    OpSpec("gelu", "activation", gelu_forward, gelu_backward),
    OpSpec("abs", "activation", abs_forward, abs_backward, kinks=(0.0,)),
    OpSpec("power", "activation", power_forward, power_backward, kinks=(0.0,)),
    OpSpec("exp", "activation", exp_forward, exp_backward),
    OpSpec("log", "activation", log_forward, log_backward, kinks=(0.0,)),
    OpSpec("erf", "activation", erf_forward, erf_backward),
    OpSpec("linear_activation", "activation", linear_activation_forward,
           linear_activation_backward),
    OpSpec("normalizer", "activation", normalizer_forward, normalizer_backward),
    OpSpec("softmax", "activation", softmax_forward, softmax_backward, layout="rows (last axis)"),
    OpSpec("dropout", "activation", dropout_forward, dropout_backward),
]
