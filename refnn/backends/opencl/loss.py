"""OpenCL host wrappers of the loss family (kernels in kernels/loss.cl).

Signatures are those of refnn.ops.loss with the backend first; the same ``check_*``
helpers of refnn.ops.loss raise the same errors before anything is uploaded. Arrays
stay on the device; integer labels are range-checked (on the device when they live
there) before any kernel indexes with them.
"""
import numpy as np
import pyopencl.array as cla

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, like, real
from refnn.errors import ShapeError
from refnn.ops import loss as _ref

NEON_KINDS = {"cross_entropy_multi": 0, "cross_entropy_binary": 1,
              "sum_squared": 2, "mean_squared": 3}


def _launch(be, name, N, *args):
    be.kernel("loss", name)(be.queue, global_1d(N), (LOCAL_1D,), *args)


def _x(be, op, x):
    _ref.check_predictions(op, x)
    return device_input(be, op, "predictions x", x)


def _sizes(x):
    return np.uint32(x.shape[0]), np.uint32(x.shape[1])


def _weights(be, op, x, weights):
    _ref.check_weights(op, x, weights)
    if weights is None:
        w = be.empty(x.shape[0])
        w.fill(1)
        return w
    return device_input(be, op, "weights", weights)


def _labels(be, op, x, labels):
    """(float labels, int32 labels, is_int) on the device; the unused one is a dummy."""
    if not _ref.check_labels(op, x, labels):
        return like(be, op, "float labels", labels, x), be.zeros(1, np.int32), False
    if not isinstance(labels, cla.Array):
        if labels.size:
            _ref.check_label_range(op, int(labels.min()), int(labels.max()), x.shape[1])
        return be.zeros(1), be.asarray(np.ascontiguousarray(labels, dtype=np.int32),
                                       dtype=np.int32), True
    yi = device_input(be, op, "integer labels", labels, np.int32)
    if yi.size:
        mm = be.asarray(np.array([np.iinfo(np.int32).max, np.iinfo(np.int32).min], np.int32),
                        dtype=np.int32)
        _launch(be, "label_range", yi.size, yi.data, mm.data, np.uint32(yi.size))
        lo, hi = be.to_host(mm)
        _ref.check_label_range(op, int(lo), int(hi), x.shape[1])
    return be.zeros(1), yi, True


def _max_grad(be, op, max_gradient):
    _ref.check_max_gradient(op, max_gradient)
    return real(be, 0.0 if max_gradient is None else max_gradient)


def _dl(be, op, dl, x):
    dl = device_input(be, op, "dl", dl)
    if tuple(dl.shape) != (x.shape[0],):
        raise ShapeError(f"{op}: dl must have shape ({x.shape[0]},), got {tuple(dl.shape)}")
    return dl


# ------------------------------------------------------------------ neon costs
def _neon_forward(be, op, y, t):
    y = _x(be, op, y)
    _ref.check_targets(op, y, t)
    t = like(be, op, "targets t", t, y)
    l = be.empty(y.shape[0])
    _launch(be, "neon_forward", y.shape[0], np.int32(NEON_KINDS[op]), y.data, t.data, l.data,
            real(be, _ref.SAFELOG_MIN), *_sizes(y))
    return l, (op, y, t)


def _neon_backward(be, dl, saved):
    op, y, t = saved
    dl = _dl(be, op, dl, y)
    dy = be.empty(y.shape)
    _launch(be, "neon_backward", y.shape[0], np.int32(NEON_KINDS[op]), dl.data, y.data, t.data,
            dy.data, real(be, _ref.SAFELOG_MIN), *_sizes(y))
    return dy, None


def cross_entropy_multi_forward(be, y, t):
    return _neon_forward(be, "cross_entropy_multi", y, t)


def cross_entropy_binary_forward(be, y, t):
    return _neon_forward(be, "cross_entropy_binary", y, t)


def sum_squared_forward(be, y, t):
    return _neon_forward(be, "sum_squared", y, t)


def mean_squared_forward(be, y, t):
    return _neon_forward(be, "mean_squared", y, t)


cross_entropy_multi_backward = cross_entropy_binary_backward = _neon_backward
sum_squared_backward = mean_squared_backward = _neon_backward


# ------------------------------------------------------------------ NeoML losses
def cross_entropy_forward(be, x, labels, weights=None, softmax=True, max_gradient=None):
    op = "cross_entropy"
    _ref.check_predictions(op, x)
    _ref.check_multiclass(op, x)
    yf, yi, is_int = _labels(be, op, x, labels)
    w = _weights(be, op, x, weights)
    mg = _max_grad(be, op, max_gradient)
    x = device_input(be, op, "predictions x", x)
    l, aux = be.empty(x.shape[0]), be.empty(x.shape[0])
    _launch(be, "cross_entropy_forward", x.shape[0], x.data, yf.data, yi.data,
            np.int32(is_int), w.data, np.int32(bool(softmax)), real(be, _ref.FLT_EPSILON),
            l.data, aux.data, *_sizes(x))
    return l, (x, yf, yi, is_int, w, bool(softmax), aux, mg)


def cross_entropy_backward(be, dl, saved):
    x, yf, yi, is_int, w, softmax, aux, mg = saved
    dl = _dl(be, "cross_entropy", dl, x)
    dx = be.empty(x.shape)
    _launch(be, "cross_entropy_backward", x.shape[0], dl.data, x.data, yf.data, yi.data,
            np.int32(is_int), w.data, np.int32(softmax), real(be, _ref.FLT_EPSILON), aux.data,
            mg, dx.data, *_sizes(x))
    return dx, None, None


def binary_cross_entropy_forward(be, x, y, weights=None, positive_weight=1.0,
                                 max_gradient=None):
    op = "binary_cross_entropy"
    x = _x(be, op, x)
    _ref.check_targets(op, x, y, "labels y")
    y = like(be, op, "labels y", y, x)
    w = _weights(be, op, x, weights)
    mg = _max_grad(be, op, max_gradient)
    q = real(be, positive_weight)
    l = be.empty(x.shape[0])
    _launch(be, "binary_cross_entropy_forward", x.shape[0], x.data, y.data, w.data, q, l.data,
            *_sizes(x))
    return l, (x, y, w, q, mg)


def binary_cross_entropy_backward(be, dl, saved):
    x, y, w, q, mg = saved
    dl = _dl(be, "binary_cross_entropy", dl, x)
    dx = be.empty(x.shape)
    _launch(be, "binary_cross_entropy_backward", x.shape[0], dl.data, x.data, y.data, w.data,
            q, mg, dx.data, *_sizes(x))
    return dx, None, None


def euclidean_forward(be, x, y, weights=None, max_gradient=None):
    op = "euclidean"
    x = _x(be, op, x)
    _ref.check_targets(op, x, y, "labels y")
    y = like(be, op, "labels y", y, x)
    w = _weights(be, op, x, weights)
    mg = _max_grad(be, op, max_gradient)
    l = be.empty(x.shape[0])
    _launch(be, "euclidean_forward", x.shape[0], x.data, y.data, w.data, l.data, *_sizes(x))
    return l, (x, y, w, mg)


def euclidean_backward(be, dl, saved):
    x, y, w, mg = saved
    dl = _dl(be, "euclidean", dl, x)
    dx = be.empty(x.shape)
    _launch(be, "euclidean_backward", x.shape[0], dl.data, x.data, y.data, w.data, mg,
            dx.data, *_sizes(x))
    return dx, None, None
