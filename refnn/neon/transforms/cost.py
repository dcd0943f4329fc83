"""Costs and metrics (neon.transforms.cost).

A cost maps outputs y and targets t, both (features, batch), to the per-sample loss
(1, batch) through a refnn loss op (batch-first: the facade transposes at its edge);
``GeneralizedCost`` averages it over the batch. ``bprop`` is the per-sample gradient
dl/dy (NOT divided by the batch size: neon's optimizers divide by it).

neon's shortcut: when the output layer is Softmax and the cost CrossEntropyMulti (or
Logistic and CrossEntropyBinary), ``GeneralizedCost`` sets ``shortcut`` and the delta
is ``scale * (y - t)`` -- the exact gradient of the pair w.r.t. the activation's input,
without dividing by y -- and the output layer passes it through unchanged.
"""
import numpy as np

from refnn.errors import ShapeError
from refnn.neon.backends.backend import Tensor
from refnn.neon.transforms.transform import Transform


class Cost(Transform):
    """Base class for cost functions: ``cost(y, t)`` -> (1, batch), ``bprop(y, t)``."""

    def __init__(self, scale=1.0, name=None):
        super().__init__(name)
        self.scale = float(scale)
        self.shortcut = False
        self._dl = {}

    def _check(self, y, t):
        if tuple(y.shape) != tuple(t.shape):
            raise ShapeError(f"{type(self).__name__}: targets must have the outputs' shape "
                             f"{tuple(y.shape)} (features, batch), got {tuple(t.shape)}")

    def _forward(self, y, t):
        self._check(y, t)
        be = self.be
        loss, saved = be.rb.op(self.OP + ".forward")(be.to_nc(y), be.to_nc(t))
        return loss, saved

    def __call__(self, y, t):
        """Per-sample cost, a (1, batch) Tensor (times ``scale``)."""
        loss, _ = self._forward(y, t)
        out = Tensor(self.be, loss.reshape((1, loss.shape[0])))
        return out if self.scale == 1.0 else out * self.scale

    def _ones(self, n):
        """dl = scale for every sample (cached per batch size)."""
        if n not in self._dl:
            self._dl[n] = self.be.rb.asarray(np.full(n, self.scale, dtype=self.be.default_dtype))
        return self._dl[n]

    def bprop(self, y, t):
        """d(scale * l_n)/dy for each sample (features, batch); y - t with the shortcut."""
        if self.shortcut:
            self._check(y, t)
            return (y - t) * self.scale if self.scale != 1.0 else y - t
        _, saved = self._forward(y, t)
        dy = self.be.rb.op(self.OP + ".backward")(self._ones(y.shape[1]), saved)[0]
        return self.be.from_nc(dy)


class CrossEntropyMulti(Cost):
    """Multi-class cross-entropy: l = -sum_c t_c safelog(y_c) (``cross_entropy_multi``).

    ``usebits=True`` measures in bits (divides by ln 2).
    """
    OP = "cross_entropy_multi"
    OPS = ("cross_entropy_multi",)

    def __init__(self, scale=1, usebits=False, name=None):
        super().__init__(scale / np.log(2.0) if usebits else scale, name)
        self.usebits = usebits


class CrossEntropyBinary(Cost):
    """Binary cross-entropy: l = -sum_c [t safelog(y) + (1 - t) safelog(1 - y)]."""
    OP = "cross_entropy_binary"
    OPS = ("cross_entropy_binary",)

    def __init__(self, scale=1, name=None):
        super().__init__(scale, name)


class SumSquared(Cost):
    """Total squared error: l = sum_c (y_c - t_c)^2 / 2; dl/dy = y - t."""
    OP = "sum_squared"
    OPS = ("sum_squared",)

    def __init__(self, name=None):
        super().__init__(1.0, name)


class MeanSquared(Cost):
    """Average squared error: l = mean_c (y_c - t_c)^2 / 2; dl/dy = (y - t) / C."""
    OP = "mean_squared"
    OPS = ("mean_squared",)

    def __init__(self, name=None):
        super().__init__(1.0, name)


# --------------------------------------------------------------------- metrics
class Metric(Cost):
    """Base class for metrics: ``metric(y, t, calcrange)`` -> NumPy value(s) averaged
    over the samples in ``calcrange``; ``metric_names`` names them. Metrics are
    op-trees on the backend (argmax, comparisons, sums), not refnn ops."""

    OPS = ()

    metric_names = []

    def _buffers(self, n):
        if getattr(self, "_n", None) != n:
            self._n = n
            self.outputs = self.be.empty((1, n))
        return self.outputs


class Misclassification(Metric):
    """Fraction of samples whose argmax over the features differs from the target's."""

    def __init__(self, steps=1, name=None):
        super().__init__(name=name)
        self.metric_names = ["Top1Misclass"]

    def __call__(self, y, t, calcrange=slice(0, None)):
        self._check(y, t)
        out = self._buffers(y.shape[1])
        out[:] = self.be.not_equal(self.be.argmax(y, axis=0), self.be.argmax(t, axis=0))
        return float(out.get()[:, calcrange].mean())


class Accuracy(Metric):
    """Fraction of samples classified correctly (1 - Misclassification)."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.metric_names = ["Accuracy"]

    def __call__(self, y, t, calcrange=slice(0, None)):
        self._check(y, t)
        out = self._buffers(y.shape[1])
        out[:] = self.be.equal(self.be.argmax(y, axis=0), self.be.argmax(t, axis=0))
        return float(out.get()[:, calcrange].mean())


class LogLoss(Metric):
    """-safelog(probability given to the correct class), averaged."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.metric_names = ["LogLoss"]

    def __call__(self, y, t, calcrange=slice(0, None)):
        self._check(y, t)
        out = self._buffers(y.shape[1])
        out[:] = -self.be.safelog(self.be.sum(y * t, axis=0))
        return float(out.get()[:, calcrange].mean())


class TopKMisclassification(Metric):
    """[LogLoss, Top1Misclass, TopKMisclass] as neon computes them (ties share credit)."""

    def __init__(self, k, name=None):
        super().__init__(name=name)
        self.k = int(k)
        self.metric_names = ["LogLoss", "Top1Misclass", f"Top{self.k}Misclass"]

    def __call__(self, y, t, calcrange=slice(0, None)):
        self._check(y, t)
        be, n = self.be, y.shape[1]
        if getattr(self, "_n", None) != n:
            self._n = n
            self.correct, self.n_slots, self.n_eq, self.topk, self.top1, self.logloss = (
                be.empty((1, n)) for _ in range(6))
        self.correct[:] = be.sum(y * t, axis=0)
        self.n_slots[:] = self.k - be.sum(y > self.correct, axis=0)
        self.n_eq[:] = be.sum(y == self.correct, axis=0)
        self.topk[:] = 1. - (self.n_slots > 0) * (
            (self.n_eq <= self.n_slots) * (1 - self.n_slots / self.n_eq)
            + self.n_slots / self.n_eq)
        self.top1[:] = 1. - (be.max(y, axis=0) == self.correct) / self.n_eq
        self.logloss[:] = -be.safelog(self.correct)
        return np.array([float(a.get()[:, calcrange].mean())
                         for a in (self.logloss, self.top1, self.topk)])
