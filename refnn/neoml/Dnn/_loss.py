"""Loss layers (CrossEntropyLoss, BinaryCrossEntropyLoss, EuclideanLoss) and Accuracy.

NeoML's rules (see the behaviour notes): the per-object losses l_n come from the op
(object weights already applied); ``last_loss = sum_n l_n / N`` WITHOUT ``loss_weight``;
the gradient is that of ``loss_weight * sum_n l_n / N``, clipped to +-``max_gradient``
(1e6): the layer hands the op ``dl = loss_weight / N`` for every object.

Inputs: 0 the network response (N objects of C numbers), 1 the labels, 2 (optional)
the object weights (BatchLength, BatchWidth, ListSize as input 0, object size 1).
"""
import abc

import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.neoml.Dnn._layer import Layer, rows


def _number(v, where, what):
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: {what} must be a number, got {v!r}") from None


class CustomLossCalculatorBase(abc.ABC):
    """The abstract base class of user loss calculators (``calc(data, labels)``), as in
    NeoML. refnn has no autodiff blobs, so refnn.neoml has no CustomLoss layer to use a
    subclass with; the class exists so that code that subclasses it at import works.
    """

    @abc.abstractmethod
    def calc(self, data, labels):
        """Return the per-object loss blob for ``data`` and ``labels``."""


class _Loss(Layer):
    """Shared machinery of the loss layers (``OP``: the refnn loss op)."""

    N_INPUTS = (2, 3)
    N_OUTPUTS = 0
    OP = None
    INT_LABELS = False

    def __init__(self, input_layers, loss_weight=1.0, name=None):
        self._loss_weight = _number(loss_weight, f"{type(self).__name__} {name!r}",
                                    "loss_weight")
        self._max_gradient = 1e6
        self._last_loss = 0.0
        self._train_labels = False
        self._saved = None
        super().__init__(input_layers, name)

    # ----------------------------------------------------------------- properties
    @property
    def last_loss(self):
        """sum_n l_n / N of the last run (loss_weight not applied, as in NeoML)."""
        return self._last_loss

    @property
    def loss_weight(self):
        """Multiplies the gradient (not last_loss)."""
        return self._loss_weight

    @loss_weight.setter
    def loss_weight(self, v):
        self._loss_weight = _number(v, self._where(), "loss_weight")

    @property
    def max_gradient(self):
        """The gradient is clipped to +-max_gradient (NeoML: 1e6)."""
        return self._max_gradient

    @max_gradient.setter
    def max_gradient(self, v):
        v = _number(v, self._where(), "max_gradient")
        if not v > 0:
            raise ParameterError(f"{self._where()}: max_gradient must be > 0, got {v}")
        self._max_gradient = v

    @property
    def train_labels(self):
        """Whether a gradient is passed to the labels input. refnn's loss ops give no
        label gradients, so only False is accepted."""
        return self._train_labels

    @train_labels.setter
    def train_labels(self, v):
        if v:
            raise ParameterError(f"{self._where()}: train_labels=True is not available in "
                                 f"refnn (its loss ops differentiate the response only)")
        self._train_labels = False

    # ---------------------------------------------------------------------- passes
    def _labels(self, x, labels):
        """Labels in the op's layout: float (N, C) like x, or int (N,) where allowed."""
        N, C = x.shape[0] * x.shape[1] * x.shape[2], int(np.prod(x.shape[3:]))
        kind = np.dtype(labels.dtype)
        if kind == np.int32 and self.INT_LABELS:
            if tuple(labels.shape[:3]) != tuple(x.shape[:3]) or np.prod(labels.shape[3:]) != 1:
                raise ShapeError(f"{self._where()}: int labels must have shape "
                                 f"{tuple(x.shape[:3]) + (1, 1, 1, 1)} (one class index per "
                                 f"object of the response {tuple(x.shape)}), got "
                                 f"{tuple(labels.shape)}")
            return labels.reshape(N)
        if kind != np.float32:
            allowed = "float32 or int32" if self.INT_LABELS else "float32"
            raise DTypeError(f"{self._where()}: labels must be a {allowed} blob, got {kind.name}")
        if tuple(labels.shape) != tuple(x.shape):
            raise ShapeError(f"{self._where()}: float labels must have the response's shape "
                             f"{tuple(x.shape)}, got {tuple(labels.shape)}")
        return labels.reshape(N, C)

    def _weights(self, x, w):
        self._check_float(w, "weights (input 2)")
        N = x.shape[0] * x.shape[1] * x.shape[2]
        if tuple(w.shape[:3]) != tuple(x.shape[:3]) or np.prod(w.shape[3:]) != 1:
            raise ShapeError(f"{self._where()}: weights must have shape "
                             f"{tuple(x.shape[:3]) + (1, 1, 1, 1)}, got {tuple(w.shape)}")
        return w.reshape(N)

    def _op_params(self):
        return {}

    def _forward(self, be, xs, training):
        x = xs[0]
        self._check_float(x, "the response (input 0)")
        labels = self._labels(x, xs[1])
        weights = self._weights(x, xs[2]) if len(xs) > 2 else None
        self._shape = x.shape
        l, self._saved = be.op(self.OP + ".forward")(
            rows(x), labels, weights, max_gradient=self._max_gradient, **self._op_params())
        N = rows(x).shape[0]
        self._n = N
        self._last_loss = float(np.sum(be.to_host(l), dtype=np.float64)) / N
        return []

    def _backward(self, be, dys, need_dx):
        dl = be.asarray(np.full(self._n, self._loss_weight / self._n, dtype=np.float32),
                        dtype=np.float32)
        dx = be.op(self.OP + ".backward")(dl, self._saved)[0]
        return [dx.reshape(self._shape)] + [None] * (len(self._links) - 1)


class CrossEntropyLoss(_Loss):
    """Cross-entropy between the response and the labels (int class indices, one per
    object, or float one-hot/weight rows of the response's shape). ``softmax=True``
    applies softmax to the response first; with ``softmax=False`` the response must be
    probabilities, clipped to [FLT_EPSILON, 1 - FLT_EPSILON] as in NeoML."""

    OP = "cross_entropy"
    OPS = ("cross_entropy",)
    INT_LABELS = True

    def __init__(self, input_layers, softmax=True, loss_weight=1.0, name=None):
        self._softmax = bool(softmax)
        super().__init__(input_layers, loss_weight, name)

    @property
    def apply_softmax(self):
        return self._softmax

    @apply_softmax.setter
    def apply_softmax(self, v):
        self._softmax = bool(v)

    def _op_params(self):
        return {"softmax": self._softmax}


class BinaryCrossEntropyLoss(_Loss):
    """Binary cross-entropy on logits with labels +-1 (BCE-with-logits with a positive
    weight on (y + 1) / 2)."""

    OP = "binary_cross_entropy"
    OPS = ("binary_cross_entropy",)

    def __init__(self, input_layers, positive_weight=1.0, loss_weight=1.0, name=None):
        self._positive_weight = _number(positive_weight, f"BinaryCrossEntropyLoss {name!r}",
                                        "positive_weight")
        super().__init__(input_layers, loss_weight, name)

    @property
    def positive_weight(self):
        return self._positive_weight

    @positive_weight.setter
    def positive_weight(self, v):
        self._positive_weight = _number(v, self._where(), "positive_weight")

    def _op_params(self):
        return {"positive_weight": self._positive_weight}


class EuclideanLoss(_Loss):
    """NeoML's EuclideanLoss is in fact the Huber loss (delta 1) on x - y, summed over
    each object's numbers and averaged over objects -- refnn computes the same."""

    OP = "euclidean"
    OPS = ("euclidean",)


class Accuracy(Layer):
    """The share of correctly classified objects, as a one-element blob.

    Inputs: the response (N objects of C scores) and the labels (float, the response's
    shape: one-hot rows, or +-1 for C = 1; int class indices are accepted too). C = 1:
    correct when (x > 0) == (label > 0); C > 1: argmax(x) == argmax(label). With
    ``reset=False`` the statistics accumulate over runs. Counting is done on the host
    (it is a metric: no op, no gradient).
    """

    OPS = ()
    N_INPUTS = (2, 2)

    def __init__(self, input_layers, reset=True, name=None):
        self._reset = bool(reset)
        self._correct = 0
        self._total = 0
        super().__init__(input_layers, name)

    @property
    def reset(self):
        return self._reset

    @reset.setter
    def reset(self, v):
        self._reset = bool(v)

    def _forward(self, be, xs, training):
        x, labels = xs
        self._check_float(x, "the response (input 0)")
        scores = rows(be.to_host(x))
        host_labels = be.to_host(labels)
        N, C = scores.shape
        if np.dtype(host_labels.dtype) == np.int32 and host_labels.size == N:
            truth = host_labels.reshape(N)
        elif tuple(host_labels.shape) == tuple(x.shape):
            lab = rows(host_labels)
            truth = (lab[:, 0] > 0) if C == 1 else lab.argmax(axis=1)
        else:
            raise ShapeError(f"{self._where()}: labels must have the response's shape "
                             f"{tuple(x.shape)} (or one int class per object), got "
                             f"{tuple(host_labels.shape)}")
        guess = (scores[:, 0] > 0) if C == 1 else scores.argmax(axis=1)
        if self._reset:
            self._correct = self._total = 0
        self._correct += int(np.sum(guess == truth))
        self._total += N
        value = np.full((1,) * 7, self._correct / max(self._total, 1), dtype=np.float32)
        return [be.asarray(value, dtype=np.float32)]
