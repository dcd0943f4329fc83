"""Loss family: one loss value per object.

Canonical layout: batch-first. Predictions ``x`` are (N, C) -- N objects of C values;
targets are (N, C) floats or, where an op says so, (N,) int32 class indices; object
weights are (N,). Every ``<op>_forward`` returns the PER-OBJECT loss vector ``l``
(N,) and every ``<op>_backward(dl, saved)`` takes ``dl`` (N,) and returns
``(dx, None, ...)`` -- None for targets, labels and weights, which are not
differentiated. Reducing ``l`` to one number is the facades' business: neon means it
over the batch, NeoML computes sum_n l_n / N with ``loss_weight`` applied to the
gradient (see below).

neon costs (``neon.transforms.cost``): ``cross_entropy_multi``, ``cross_entropy_binary``,
``sum_squared``, ``mean_squared``. neon logs through ``safelog(a) = log(max(a, e^-50))``.
The gradients here are the TRUE gradients of these costs; neon's own ``bprop`` uses the
shortcut ``y - t``, valid only after a Softmax/Logistic output layer -- applying that
shortcut is the neon facade's business.

NeoML losses (``neoml.Dnn``): ``cross_entropy``, ``binary_cross_entropy``, ``euclidean``.
They take optional object weights ``w`` (N,) that multiply l_n, and the keyword
``max_gradient``: NeoML scales the gradient by ``loss_weight / N`` and clips it to
[-max_gradient, max_gradient] (1e6 in NeoML). The NeoML facade passes
``dl = full(N, loss_weight / N)`` and ``max_gradient=1e6``; with the default
``max_gradient=None`` backward returns the exact gradient.

The ``check_*`` helpers validate shapes, dtypes and label ranges; every backend calls
them before its arithmetic, so a bad input fails with the same message everywhere.
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops._spec import OpSpec

#: neon's safelog floor: log(max(a, e^-50))
SAFELOG_MIN = float(np.exp(-50.0))
#: NeoML clips probabilities to [FLT_EPSILON, 1 - FLT_EPSILON] when softmax=False
FLT_EPSILON = float(np.finfo(np.float32).eps)


# ------------------------------------------------------------------ validation
def check_predictions(op, x):
    """x must be a 2-D float (N, C) array."""
    if len(x.shape) != 2:
        raise ShapeError(f"{op}: predictions x must have shape (N, C), got {tuple(x.shape)}")
    if np.dtype(x.dtype).kind != "f":
        raise DTypeError(f"{op}: predictions x must be a float array, got {np.dtype(x.dtype).name}")


def check_targets(op, x, t, what="targets t"):
    """Float targets with exactly x's shape."""
    if np.dtype(t.dtype).kind != "f":
        raise DTypeError(f"{op}: {what} must be a float array, got {np.dtype(t.dtype).name}")
    if tuple(t.shape) != tuple(x.shape):
        raise ShapeError(f"{op}: {what} must have shape {tuple(x.shape)} (that of x), "
                         f"got {tuple(t.shape)}")


def check_multiclass(op, x):
    """NeoML's CrossEntropyLoss needs at least two classes."""
    if x.shape[1] < 2:
        raise ShapeError(f"{op}: works only with multi-class classification: x must have "
                         f"C >= 2 classes, got shape {tuple(x.shape)}")


def check_labels(op, x, labels):
    """Labels are float (N, C) like x, or integer class indices (N,). Returns True for
    integer labels (their range is checked by :func:`check_label_range`)."""
    N, C = x.shape
    if np.dtype(labels.dtype).kind in "iu":
        if tuple(labels.shape) != (N,):
            raise ShapeError(f"{op}: integer labels must have shape ({N},) (one class index "
                             f"per object of x {tuple(x.shape)}), got {tuple(labels.shape)}")
        return True
    check_targets(op, x, labels, "float labels")
    return False


def check_label_range(op, lo, hi, C):
    """Integer labels must lie in [0, C); ``lo``/``hi`` are their min and max."""
    if lo < 0 or hi >= C:
        raise ParameterError(f"{op}: labels must be class indices in [0, {C - 1}], "
                             f"got values in [{lo}, {hi}]")


def check_weights(op, x, weights):
    """Object weights: None or a float (N,) vector."""
    if weights is None:
        return
    if np.dtype(weights.dtype).kind != "f":
        raise DTypeError(f"{op}: weights must be a float array, got {np.dtype(weights.dtype).name}")
    if tuple(weights.shape) != (x.shape[0],):
        raise ShapeError(f"{op}: weights must have shape ({x.shape[0]},) (one per object), "
                         f"got {tuple(weights.shape)}")


def check_max_gradient(op, max_gradient):
    if max_gradient is not None and not max_gradient > 0:
        raise ParameterError(f"{op}: max_gradient must be None or > 0, got {max_gradient!r}")


def _check_int_labels(op, x, labels):
    """Reference-side label check (NumPy): shape, then range; returns is_int."""
    is_int = check_labels(op, x, labels)
    if is_int and labels.size:
        check_label_range(op, int(labels.min()), int(labels.max()), x.shape[1])
    return is_int


def _ones_or(weights, x):
    return np.ones(x.shape[0], dtype=x.dtype) if weights is None else weights


def _clip_gradient(dx, max_gradient):
    return dx if max_gradient is None else np.clip(dx, -max_gradient, max_gradient)


def _safelog(a):
    return np.log(np.maximum(a, SAFELOG_MIN))


# ------------------------------------------------------------------ neon costs
def cross_entropy_multi_forward(y, t):
    """neon CrossEntropyMulti: l_n = -sum_c t_nc safelog(y_nc).

    y, t: (N, C) -> l: (N,).

    >>> cross_entropy_multi_forward(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]))[0]
    array([0.69314718])
    """
    check_predictions("cross_entropy_multi", y)
    check_targets("cross_entropy_multi", y, t)
    return -np.sum(t * _safelog(y), axis=1), (y, t)


def cross_entropy_multi_backward(dl, saved):
    """dy_nc = -dl_n t_nc / y_nc  (0 where y_nc <= e^-50: safelog is flat there)."""
    y, t = saved
    inside = y > SAFELOG_MIN
    return -dl[:, None] * np.where(inside, t / np.where(inside, y, 1), 0), None


def cross_entropy_binary_forward(y, t):
    """neon CrossEntropyBinary: l_n = -sum_c [t safelog(y) + (1 - t) safelog(1 - y)].

    y, t: (N, C) -> l: (N,).
    """
    check_predictions("cross_entropy_binary", y)
    check_targets("cross_entropy_binary", y, t)
    return -np.sum(t * _safelog(y) + (1 - t) * _safelog(1 - y), axis=1), (y, t)


def cross_entropy_binary_backward(dl, saved):
    """dy = dl_n [-t / y + (1 - t) / (1 - y)] (each term 0 where its safelog is flat)."""
    y, t = saved
    pos, neg = y > SAFELOG_MIN, (1 - y) > SAFELOG_MIN
    d = (-np.where(pos, t / np.where(pos, y, 1), 0)
         + np.where(neg, (1 - t) / np.where(neg, 1 - y, 1), 0))
    return dl[:, None] * d, None


def sum_squared_forward(y, t):
    """neon SumSquared: l_n = sum_c (y_nc - t_nc)^2 / 2.

    >>> sum_squared_forward(np.array([[1.0, 3.0]]), np.array([[0.0, 1.0]]))[0]
    array([2.5])
    """
    check_predictions("sum_squared", y)
    check_targets("sum_squared", y, t)
    return np.sum((y - t) ** 2, axis=1) / 2, (y, t)


def sum_squared_backward(dl, saved):
    """dy = dl_n (y - t)"""
    y, t = saved
    return dl[:, None] * (y - t), None


def mean_squared_forward(y, t):
    """neon MeanSquared: l_n = mean_c (y_nc - t_nc)^2 / 2."""
    check_predictions("mean_squared", y)
    check_targets("mean_squared", y, t)
    return np.mean((y - t) ** 2, axis=1) / 2, (y, t)


def mean_squared_backward(dl, saved):
    """dy = dl_n (y - t) / C"""
    y, t = saved
    return dl[:, None] * (y - t) / y.shape[1], None


# ------------------------------------------------------------------ NeoML losses
def _label_matrix(x, labels, is_int):
    """(N, C) float labels: one-hot rows for integer class indices."""
    return np.eye(x.shape[1], dtype=x.dtype)[labels] if is_int else labels


def cross_entropy_forward(x, labels, weights=None, softmax=True, max_gradient=None):
    """NeoML CrossEntropyLoss, per object, with y = labels as an (N, C) matrix
    (one-hot rows for int labels (N,)):

    softmax=True:  l_n = w_n * -sum_c y_nc log softmax(x_n)_c
    softmax=False: l_n = w_n * -sum_c y_nc log(clip(x_nc, eps, 1 - eps) / sum_c' x_nc')
                   with eps = FLT_EPSILON. For x rows summing to 1 (NeoML's stated
                   precondition) this is NeoML's -sum y log(clip(x)); the normalising
                   term makes NeoML's gradient, (1 - y / x) sum(y), the true gradient.

    x: (N, C) with C >= 2, labels: (N, C) float or (N,) int, weights: (N,) or None.

    >>> cross_entropy_forward(np.zeros((1, 2)), np.array([1]))[0]
    array([0.69314718])
    """
    op = "cross_entropy"
    check_predictions(op, x)
    check_multiclass(op, x)
    is_int = _check_int_labels(op, x, labels)
    check_weights(op, x, weights)
    check_max_gradient(op, max_gradient)
    y, w = _label_matrix(x, labels, is_int), _ones_or(weights, x)
    ysum = y.sum(axis=1)
    if softmax:
        m = x.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))       # log sum_c exp(x_c)
        loss = lse * ysum - np.sum(y * x, axis=1)
        p = np.exp(x - lse[:, None])
    else:
        p = np.clip(x, FLT_EPSILON, 1 - FLT_EPSILON)
        loss = -np.sum(y * np.log(p), axis=1) + ysum * np.log(x.sum(axis=1))
    return w * loss, (x, p, y, ysum, w, softmax, max_gradient)


def cross_entropy_backward(dl, saved):
    """softmax=True:  dx_nc = dl_n w_n (p_nc sum(y_n) - y_nc),  p = softmax(x_n)
    softmax=False: dx_nc = dl_n w_n (-y_nc / x_nc [eps < x_nc < 1 - eps] + sum(y_n) / sum(x_n))
    then clipped to +-max_gradient when given (NeoML's rule)."""
    x, p, y, ysum, w, softmax, max_gradient = saved
    if softmax:
        d = p * ysum[:, None] - y
    else:
        inside = (x > FLT_EPSILON) & (x < 1 - FLT_EPSILON)
        d = -np.where(inside, y / p, 0) + (ysum / x.sum(axis=1))[:, None]
    return _clip_gradient((dl * w)[:, None] * d, max_gradient), None, None


def binary_cross_entropy_forward(x, y, weights=None, positive_weight=1.0, max_gradient=None):
    """NeoML BinaryCrossEntropyLoss on logits x with labels y = +-1, per object:

        z = (y + 1) / 2,  c = 1 + (positive_weight - 1) z
        l_n = w_n * sum_c [(1 - z) x + c log(1 + exp(-x))]

    (BCE-with-logits with a positive weight; log(1 + e^-x) computed as
    log(1 + e^-|x|) + max(-x, 0)). x, y: (N, C) (NeoML: C = 1), weights: (N,) or None.
    """
    op = "binary_cross_entropy"
    check_predictions(op, x)
    check_targets(op, x, y, "labels y")
    check_weights(op, x, weights)
    check_max_gradient(op, max_gradient)
    z = (y + 1) / 2
    c = 1 + (positive_weight - 1) * z
    softplus_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)
    w = _ones_or(weights, x)
    return w * np.sum((1 - z) * x + c * softplus_neg, axis=1), (x, z, c, w, max_gradient)


def binary_cross_entropy_backward(dl, saved):
    """dx = dl_n w_n [(1 - z) - c sigmoid(-x)], clipped to +-max_gradient when given."""
    x, z, c, w, max_gradient = saved
    sig_neg = np.exp(-np.maximum(x, 0)) / (1 + np.exp(-np.abs(x)))   # sigmoid(-x), stable
    return _clip_gradient((dl * w)[:, None] * ((1 - z) - c * sig_neg), max_gradient), None, None


def euclidean_forward(x, y, weights=None, max_gradient=None):
    """NeoML EuclideanLoss -- in fact the Huber loss (delta 1) on d = x - y, per object:

        l_n = w_n * sum_c huber(d_nc),  huber(d) = d^2 / 2 if |d| < 1 else |d| - 1/2

    x, y: (N, C), weights: (N,) or None.

    >>> euclidean_forward(np.array([[0.5, 3.0]]), np.zeros((1, 2)))[0]
    array([2.625])
    """
    op = "euclidean"
    check_predictions(op, x)
    check_targets(op, x, y, "labels y")
    check_weights(op, x, weights)
    check_max_gradient(op, max_gradient)
    d = x - y
    huber = np.where(np.abs(d) < 1, d * d / 2, np.abs(d) - 0.5)
    w = _ones_or(weights, x)
    return w * huber.sum(axis=1), (d, w, max_gradient)


def euclidean_backward(dl, saved):
    """dx = dl_n w_n clip(d, -1, 1), clipped to +-max_gradient when given."""
    d, w, max_gradient = saved
    return _clip_gradient((dl * w)[:, None] * np.clip(d, -1, 1), max_gradient), None, None


SPECS = [
    OpSpec("cross_entropy_multi", "loss", cross_entropy_multi_forward,
           cross_entropy_multi_backward, diff_args=(0,), layout="NC"),
    OpSpec("cross_entropy_binary", "loss", cross_entropy_binary_forward,
           cross_entropy_binary_backward, diff_args=(0,), layout="NC"),
    OpSpec("sum_squared", "loss", sum_squared_forward, sum_squared_backward,
           diff_args=(0,), layout="NC"),
    OpSpec("mean_squared", "loss", mean_squared_forward, mean_squared_backward,
           diff_args=(0,), layout="NC"),
    OpSpec("cross_entropy", "loss", cross_entropy_forward, cross_entropy_backward,
           diff_args=(0,), layout="NC"),
    OpSpec("binary_cross_entropy", "loss", binary_cross_entropy_forward,
           binary_cross_entropy_backward, diff_args=(0,), layout="NC"),
    OpSpec("euclidean", "loss", euclidean_forward, euclidean_backward,
           diff_args=(0,), layout="NC"),
]
