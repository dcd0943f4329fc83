"""OpenCL host wrappers of the activation family (kernels in kernels/activation.cl).

Signatures are those of refnn.ops.activation with the backend first; arrays stay on
the device. The pointwise kernels ``<op>_forward``/``<op>_backward`` of activation.cl
share one argument list (x, y, a, b, n / dy, x, y, dx, a, b, n; a, b are the op's
parameters), so ``_forward``/``_backward`` launch them all; relu, softmax and dropout
have argument lists of their own.
"""
import numpy as np

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, real
from refnn.errors import ParameterError, ShapeError
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


def _input(be, op, x, what="x"):
    """Device input keeping its shape (host 0-d data would arrive as shape (1,)) and
    with an element count that fits the kernels' 32-bit index."""
    shape = tuple(np.shape(x))
    x = device_input(be, op, what, x)
    if x.shape != shape:
        x = x.reshape(shape)
    if x.size >= 2 ** 32:
        raise ShapeError(f"{op}: {what} must have fewer than 2**32 elements, got {x.size}")
    return x


def _like(be, op, dy, x, shape=None):
    """dy on the device with x's (or ``shape``'s) shape and x's dtype; the shape is
    checked first, so 0-d stays 0-d."""
    shape = tuple(x.shape if shape is None else shape)
    if tuple(np.shape(dy)) != shape:
        raise ShapeError(f"{op}: dy must have shape {shape}, got {tuple(np.shape(dy))}")
    dy = device_input(be, op, "dy", dy, be.dtype if x is None else x.dtype)
    return dy if dy.shape == shape else dy.reshape(shape)


def _forward(be, op, x, kernel=None, a=0.0, b=0.0):
    """y = f(x) with the pointwise kernels ``<kernel>_forward``/``_backward`` of
    activation.cl (default kernel: the op's own name)."""
    kernel = kernel or op
    x = _input(be, op, x)
    y = be.empty(x.shape)
    be.kernel("activation", kernel + "_forward")(
        be.queue, global_1d(x.size), (LOCAL_1D,), x.data, y.data,
        real(be, a), real(be, b), np.uint32(x.size))
    return y, (op, kernel, x, y, a, b)


def _backward(be, dy, saved):
    """dx = dy * f'(x) with the pointwise kernel saved by _forward."""
    op, kernel, x, y, a, b = saved
    dy = _like(be, op, dy, x)
    dx = be.empty(x.shape)
    be.kernel("activation", kernel + "_backward")(
        be.queue, global_1d(x.size), (LOCAL_1D,), dy.data, x.data, y.data, dx.data,
        real(be, a), real(be, b), np.uint32(x.size))
    return (dx,)


# ----------------------------------------------------------------- identity, relu
def identity_forward(be, x):
    x = _input(be, "identity", x)
    return x.copy(queue=be.queue), ()


def identity_backward(be, dy, saved):
    return (_input(be, "identity", dy, "dy").copy(queue=be.queue),)


def relu_forward(be, x, threshold=0.0):
    x = _input(be, "relu", x)
    threshold = _param("relu", "threshold", threshold)
    y = be.empty(x.shape)
    be.kernel("activation", "relu_forward")(
        be.queue, global_1d(x.size), (LOCAL_1D,), x.data, y.data,
        real(be, threshold), np.uint32(x.size))
    return y, (x, threshold)


def relu_backward(be, dy, saved):
    x, threshold = saved
    dy = _like(be, "relu", dy, x)
    dx = be.empty(x.shape)
    be.kernel("activation", "relu_backward")(
        be.queue, global_1d(x.size), (LOCAL_1D,), dy.data, x.data, dx.data,
        real(be, threshold), np.uint32(x.size))
    return (dx,)


# ------------------------------------------------------------ pointwise kernels
def leaky_relu_forward(be, x, alpha):
    return _forward(be, "leaky_relu", x, a=_param("leaky_relu", "alpha", alpha))


def elu_forward(be, x, alpha=1.0):
    return _forward(be, "elu", x, a=_param("elu", "alpha", alpha))


def sigmoid_forward(be, x):
    return _forward(be, "sigmoid", x)


def tanh_forward(be, x):
    return _forward(be, "tanh", x)


def hard_sigmoid_forward(be, x, slope=0.5, bias=0.5):
    slope = _param("hard_sigmoid", "slope", slope)
    ref.check_hard_sigmoid(slope)
    return _forward(be, "hard_sigmoid", x, a=slope, b=_param("hard_sigmoid", "bias", bias))


def hard_tanh_forward(be, x):
    return _forward(be, "hard_tanh", x)


def hswish_forward(be, x):
    return _forward(be, "hswish", x)


def gelu_forward(be, x, form="sigmoid"):
    ref.check_gelu(form)
    return _forward(be, "gelu", x, kernel="gelu_" + form)


def abs_forward(be, x):
    return _forward(be, "abs", x)


def power_forward(be, x, exponent):
    return _forward(be, "power", x, a=_param("power", "exponent", exponent))


def exp_forward(be, x):
    return _forward(be, "exp", x)


def log_forward(be, x):
    return _forward(be, "log", x)


def erf_forward(be, x):
    return _forward(be, "erf", x)


def linear_activation_forward(be, x, multiplier, free_term):
    return _forward(be, "linear_activation", x,
                    a=_param("linear_activation", "multiplier", multiplier),
                    b=_param("linear_activation", "free_term", free_term))


def normalizer_forward(be, x, divisor):
    divisor = _param("normalizer", "divisor", divisor)
    ref.check_normalizer(divisor)
    return _forward(be, "normalizer", x, a=divisor)


# every pointwise op's backward is the shared one (the saved tuple names the op)
leaky_relu_backward = elu_backward = sigmoid_backward = tanh_backward = _backward
hard_sigmoid_backward = hard_tanh_backward = hswish_backward = gelu_backward = _backward
abs_backward = power_backward = exp_backward = log_backward = erf_backward = _backward
linear_activation_backward = normalizer_backward = _backward


# ---------------------------------------------------------------------- softmax
def softmax_forward(be, x):
    x = _input(be, "softmax", x)
    ref.check_softmax(x)
    y = be.empty(x.shape)
    if x.size:
        c = x.shape[-1]
        rows = x.size // c
        be.kernel("activation", "softmax_forward")(
            be.queue, global_1d(rows), (LOCAL_1D,), x.data, y.data,
            np.uint32(rows), np.uint32(c))
    return y, (y,)


def softmax_backward(be, dy, saved):
    (y,) = saved
    dy = _like(be, "softmax", dy, y)
    dx = be.empty(y.shape)
    if y.size:
        c = y.shape[-1]
        rows = y.size // c
        be.kernel("activation", "softmax_backward")(
            be.queue, global_1d(rows), (LOCAL_1D,), dy.data, y.data, dx.data,
            np.uint32(rows), np.uint32(c))
    return (dx,)


# ---------------------------------------------------------------------- dropout
def dropout_forward(be, x, keep, seed, scale=1.0, training=True):
    x = _input(be, "dropout", x)
    keep = _param("dropout", "keep", keep)
    scale = _param("dropout", "scale", scale)
    ref.check_dropout(x, keep, seed, scale)
    if not training:
        return x.copy(queue=be.queue), None
    key, threshold = np.uint32(ref.dropout_key(seed)), np.uint32(ref.dropout_threshold(keep))
    y = be.empty(x.shape)
    be.kernel("activation", "dropout_forward")(
        be.queue, global_1d(x.size), (LOCAL_1D,), x.data, y.data, key, threshold,
        real(be, scale), np.uint32(x.size))
    return y, (x.shape, key, threshold, scale)


def dropout_backward(be, dy, saved):
    if saved is None:                       # forward ran with training=False
        return (_input(be, "dropout", dy, "dy").copy(queue=be.queue),)
    shape, key, threshold, scale = saved
    dy = _like(be, "dropout", dy, None, shape)
    dx = be.empty(dy.shape)
    be.kernel("activation", "dropout_backward")(
        be.queue, global_1d(dy.size), (LOCAL_1D,), dy.data, dx.data, key, threshold,
        real(be, scale), np.uint32(dy.size))
    return (dx,)
