"""cpu wrappers of the loss family: validate, allocate, call refnn._ext.loss.

Each function has the signature and return convention of refnn.ops.loss (the same
``check_*`` helpers raise the same errors); kernels see only C-contiguous arrays of
one float dtype, int32 labels already checked to lie in [0, C), and a weight vector.
"""
import numpy as np

from refnn._ext import loss as _k
from refnn.backends.cpu._common import float_input, like, n_threads
from refnn.ops import loss as _ref

NEON_KINDS = {"cross_entropy_multi": 0, "cross_entropy_binary": 1,
              "sum_squared": 2, "mean_squared": 3}


def _x(op, x):
    x = float_input(op, "predictions x", x)
    _ref.check_predictions(op, x)
    return x


def _weights(op, x, weights):
    _ref.check_weights(op, x, weights)
    if weights is None:
        return np.ones(x.shape[0], dtype=x.dtype)
    return float_input(op, "weights", weights, x.dtype)


def _labels(op, x, labels):
    """(float labels (N, C), int32 labels (N,), is_int); the unused one is a dummy."""
    if _ref.check_labels(op, x, labels):
        if labels.size:
            _ref.check_label_range(op, int(labels.min()), int(labels.max()), x.shape[1])
        return np.zeros((1, 1), x.dtype), np.ascontiguousarray(labels, dtype=np.int32), True
    return like(op, "float labels", labels, x), np.zeros(1, np.int32), False


def _max_grad(op, max_gradient):
    _ref.check_max_gradient(op, max_gradient)
    return 0.0 if max_gradient is None else float(max_gradient)


# ------------------------------------------------------------------ neon costs
def _neon_forward(op, y, t):
    y = _x(op, y)
    _ref.check_targets(op, y, t)
    t = like(op, "targets t", t, y)
    l = np.empty(y.shape[0], dtype=y.dtype)
    _k.neon_forward(NEON_KINDS[op], y, t, l, _ref.SAFELOG_MIN, n_threads())
    return l, (op, y, t)


def _neon_backward(dl, saved):
    op, y, t = saved
    dl = like(op, "dl", dl, np.empty(y.shape[0], y.dtype))
    dy = np.empty_like(y)
    _k.neon_backward(NEON_KINDS[op], dl, y, t, dy, _ref.SAFELOG_MIN, n_threads())
    return dy, None


def cross_entropy_multi_forward(y, t):
    return _neon_forward("cross_entropy_multi", y, t)


def cross_entropy_binary_forward(y, t):
    return _neon_forward("cross_entropy_binary", y, t)


def sum_squared_forward(y, t):
    return _neon_forward("sum_squared", y, t)


def mean_squared_forward(y, t):
    return _neon_forward("mean_squared", y, t)


cross_entropy_multi_backward = cross_entropy_binary_backward = _neon_backward
sum_squared_backward = mean_squared_backward = _neon_backward


# ------------------------------------------------------------------ NeoML losses
def _dl(op, dl, x):
    return like(op, "dl", dl, np.empty(x.shape[0], x.dtype))


def cross_entropy_forward(x, labels, weights=None, softmax=True, max_gradient=None):
    op = "cross_entropy"
    x = _x(op, x)
    _ref.check_multiclass(op, x)
    yf, yi, is_int = _labels(op, x, labels)
    w = _weights(op, x, weights)
    mg = _max_grad(op, max_gradient)
    l, aux = np.empty(x.shape[0], x.dtype), np.empty(x.shape[0], x.dtype)
    _k.cross_entropy_forward(x, yf, yi, is_int, w, bool(softmax), _ref.FLT_EPSILON, l, aux,
                             n_threads())
    return l, (x, yf, yi, is_int, w, bool(softmax), aux, mg)


def cross_entropy_backward(dl, saved):
    x, yf, yi, is_int, w, softmax, aux, mg = saved
    dl = _dl("cross_entropy", dl, x)
    dx = np.empty_like(x)
    _k.cross_entropy_backward(dl, x, yf, yi, is_int, w, softmax, _ref.FLT_EPSILON, aux, mg,
                              dx, n_threads())
    return dx, None, None


def binary_cross_entropy_forward(x, y, weights=None, positive_weight=1.0, max_gradient=None):
    op = "binary_cross_entropy"
    x = _x(op, x)
    _ref.check_targets(op, x, y, "labels y")
    y = like(op, "labels y", y, x)
    w = _weights(op, x, weights)
    mg = _max_grad(op, max_gradient)
    l = np.empty(x.shape[0], x.dtype)
    _k.binary_cross_entropy_forward(x, y, w, float(positive_weight), l, n_threads())
    return l, (x, y, w, float(positive_weight), mg)


def binary_cross_entropy_backward(dl, saved):
    x, y, w, q, mg = saved
    dl = _dl("binary_cross_entropy", dl, x)
    dx = np.empty_like(x)
    _k.binary_cross_entropy_backward(dl, x, y, w, q, mg, dx, n_threads())
    return dx, None, None


def euclidean_forward(x, y, weights=None, max_gradient=None):
    op = "euclidean"
    x = _x(op, x)
    _ref.check_targets(op, x, y, "labels y")
    y = like(op, "labels y", y, x)
    w = _weights(op, x, weights)
    mg = _max_grad(op, max_gradient)
    l = np.empty(x.shape[0], x.dtype)
    _k.euclidean_forward(x, y, w, l, n_threads())
    return l, (x, y, w, mg)


def euclidean_backward(dl, saved):
    x, y, w, mg = saved
    dl = _dl("euclidean", dl, x)
    dx = np.empty_like(x)
    _k.euclidean_backward(dl, x, y, w, mg, dx, n_threads())
    return dx, None, None
