"""cpu wrappers of the activation family: validate, allocate, call refnn._ext.activation.

Each function has the signature and return convention of refnn.ops.activation. The
pointwise kernels share one signature (``_k.<op>_forward(x, y, a, b, n_threads)``,
``_k.<op>_backward(dy, x, y, dx, a, b, n_threads)``), so ``_forward``/``_backward`` run
them all; relu, softmax and dropout have signatures of their own.
"""
import numpy as np

from refnn._ext import activation as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import ParameterError, check_same_shape
from refnn.ops import activation as ref


def _param(op, name, v):
    """A finite float hyper-parameter, or ParameterError naming the op."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ParameterError(f"{op}: {name} must be a real number, got {v!r}") from None
    if not np.isfinite(v):
        raise ParameterError(f"{op}: {name} must be finite, got {v!r}")
    return v


def _input(op, x):
    """float_input keeping the shape (np.ascontiguousarray turns 0-d into (1,))."""
    return float_input(op, "x", x).reshape(np.shape(x))


def _like(op, dy, x):
    """dy with x's shape and dtype, C-contiguous (shape checked first: 0-d stays 0-d)."""
    check_same_shape(op, "dy", np.shape(dy), x.shape)
    return float_input(op, "dy", dy, x.dtype).reshape(x.shape)


def _forward(op, x, forward, backward, a=0.0, b=0.0):
    """y = f(x) with the pointwise kernel ``forward``; saves what ``backward`` needs."""
    x = _input(op, x)
    y = np.empty_like(x)
    forward(x.reshape(-1), y.reshape(-1), a, b, n_threads())
    return y, (op, backward, x, y, a, b)


def _backward(dy, saved):
    """dx = dy * f'(x) with the pointwise backward kernel saved by _forward."""
    op, backward, x, y, a, b = saved
    dy = _like(op, dy, x)
    dx = np.empty_like(x)
    backward(dy.reshape(-1), x.reshape(-1), y.reshape(-1), dx.reshape(-1), a, b, n_threads())
    return (dx,)


# ----------------------------------------------------------------- identity, relu
def identity_forward(x):
    x = _input("identity", x)
    return x.copy(), ()


def identity_backward(dy, saved):
    return (np.array(dy, copy=True),)


def relu_forward(x, threshold=0.0):
    x = _input("relu", x)
    threshold = _param("relu", "threshold", threshold)
    y = np.empty_like(x)
    _k.relu_forward(x.reshape(-1), y.reshape(-1), threshold, n_threads())
    return y, (x, threshold)


def relu_backward(dy, saved):
    x, threshold = saved
    dy = _like("relu", dy, x)
    dx = np.empty_like(x)
    _k.relu_backward(dy.reshape(-1), x.reshape(-1), dx.reshape(-1), threshold, n_threads())
    return (dx,)


# ------------------------------------------------------------ pointwise kernels
def leaky_relu_forward(x, alpha):
    return _forward("leaky_relu", x, _k.leaky_relu_forward, _k.leaky_relu_backward,
                    a=_param("leaky_relu", "alpha", alpha))


def elu_forward(x, alpha=1.0):
    return _forward("elu", x, _k.elu_forward, _k.elu_backward,
                    a=_param("elu", "alpha", alpha))


def sigmoid_forward(x):
    return _forward("sigmoid", x, _k.sigmoid_forward, _k.sigmoid_backward)


def tanh_forward(x):
    return _forward("tanh", x, _k.tanh_forward, _k.tanh_backward)


def hard_sigmoid_forward(x, slope=0.5, bias=0.5):
    slope = _param("hard_sigmoid", "slope", slope)
    ref.check_hard_sigmoid(slope)
    return _forward("hard_sigmoid", x, _k.hard_sigmoid_forward, _k.hard_sigmoid_backward,
                    a=slope, b=_param("hard_sigmoid", "bias", bias))


def hard_tanh_forward(x):
    return _forward("hard_tanh", x, _k.hard_tanh_forward, _k.hard_tanh_backward)


def hswish_forward(x):
    return _forward("hswish", x, _k.hswish_forward, _k.hswish_backward)


def gelu_forward(x, form="sigmoid"):
    ref.check_gelu(form)
    if form == "sigmoid":
        return _forward("gelu", x, _k.gelu_sigmoid_forward, _k.gelu_sigmoid_backward)
    return _forward("gelu", x, _k.gelu_erf_forward, _k.gelu_erf_backward)


def abs_forward(x):
    return _forward("abs", x, _k.abs_forward, _k.abs_backward)


def power_forward(x, exponent):
    return _forward("power", x, _k.power_forward, _k.power_backward,
                    a=_param("power", "exponent", exponent))


def exp_forward(x):
    return _forward("exp", x, _k.exp_forward, _k.exp_backward)


def log_forward(x):
    return _forward("log", x, _k.log_forward, _k.log_backward)


def erf_forward(x):
    return _forward("erf", x, _k.erf_forward, _k.erf_backward)


def linear_activation_forward(x, multiplier, free_term):
    return _forward("linear_activation", x,
                    _k.linear_activation_forward, _k.linear_activation_backward,
                    a=_param("linear_activation", "multiplier", multiplier),
                    b=_param("linear_activation", "free_term", free_term))


def normalizer_forward(x, divisor):
    divisor = _param("normalizer", "divisor", divisor)
    ref.check_normalizer(divisor)
    return _forward("normalizer", x, _k.normalizer_forward, _k.normalizer_backward, a=divisor)


# every pointwise op's backward is the shared one (the saved tuple holds its kernel)
leaky_relu_backward = elu_backward = sigmoid_backward = tanh_backward = _backward
hard_sigmoid_backward = hard_tanh_backward = hswish_backward = gelu_backward = _backward
abs_backward = power_backward = exp_backward = log_backward = erf_backward = _backward
linear_activation_backward = normalizer_backward = _backward


# ---------------------------------------------------------------------- softmax
def _rows(a):
    """(R, C) view of a C-contiguous array whose last axis is the row."""
    return a.reshape(-1, a.shape[-1])


def softmax_forward(x):
    x = _input("softmax", x)
    ref.check_softmax(x)
    y = np.empty_like(x)
    if x.size:
        _k.softmax_forward(_rows(x), _rows(y), n_threads())
    return y, (y,)


def softmax_backward(dy, saved):
    (y,) = saved
    dy = _like("softmax", dy, y)
    dx = np.empty_like(y)
    if y.size:
        _k.softmax_backward(_rows(dy), _rows(y), _rows(dx), n_threads())
    return (dx,)


# ---------------------------------------------------------------------- dropout
def dropout_forward(x, keep, seed, scale=1.0, training=True):
    x = _input("dropout", x)
    keep = _param("dropout", "keep", keep)
    scale = _param("dropout", "scale", scale)
    ref.check_dropout(x, keep, seed, scale)
    if not training:
        return x.copy(), None
    key, threshold = ref.dropout_key(seed), ref.dropout_threshold(keep)
    y = np.empty_like(x)
    _k.dropout_forward(x.reshape(-1), y.reshape(-1), key, threshold, scale, n_threads())
    return y, (x.shape, x.dtype, key, threshold, scale)


def dropout_backward(dy, saved):
    if saved is None:                       # forward ran with training=False
        return (np.array(dy, copy=True),)
    shape, dtype, key, threshold, scale = saved
    check_same_shape("dropout", "dy", np.shape(dy), shape)
    dy = float_input("dropout", "dy", dy, dtype).reshape(shape)
    dx = np.empty_like(dy)
    _k.dropout_backward(dy.reshape(-1), dx.reshape(-1), key, threshold, scale, n_threads())
    return (dx,)
