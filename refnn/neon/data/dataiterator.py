"""Data iterators (neon.data.dataiterator).

``ArrayIterator`` keeps the whole dataset on the backend as (ndata, features) and
copies each minibatch into a (features, bsz) buffer -- neon's batch-last layout.
The last partial batch wraps around to the start of the data, and the next epoch
starts where the wrap ended (neon's behaviour); ``reset()`` starts again at 0.
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.neon._object import NervanaObject


class NervanaDataIterator(NervanaObject):
    """Abstract class for data iterators: iterate (inputs, targets) minibatches."""

    def __init__(self, name=None):
        super().__init__(name)

    def _batch_backend(self):
        """The backend, checked: gen_backend(...) was called with a batch_size > 0."""
        be, where = self.be, type(self).__name__
        if be is None:
            raise ParameterError(f"{where}: call gen_backend(...) first")
        if be.bsz <= 0:
            raise ParameterError(f"{where}: the backend's batch_size must be > 0 "
                                 "(gen_backend(batch_size=...))")
        return be

    @property
    def nbatches(self):
        raise NotImplementedError

    def reset(self):
        raise NotImplementedError

    def __iter__(self):
        raise NotImplementedError


def _numeric(where, a):
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise DTypeError(f"ArrayIterator: {where} must be numeric, got dtype {a.dtype}")
    return a


class ArrayIterator(NervanaDataIterator):
    """Iterates over minibatches of in-memory NumPy arrays.

    X:           (ndata, nfeatures) array (or a list of them); samples are rows.
    y:           labels: (ndata,) or (ndata, 1) class indices when ``make_onehot``
                 (one-hot into ``nclass`` rows), else an (ndata, ntargets) array.
    lshape:      the shape of one sample as layers see it (e.g. (C, H, W)).
    Yields (x, t) Tensors of shape (nfeatures, bsz) and (nclass, bsz); t is None
    without y.
    """

    def __init__(self, X, y=None, nclass=None, lshape=None, make_onehot=True, name=None):
        super().__init__(name)
        be = self._batch_backend()
        Xs = [_numeric("X", x) for x in (X if isinstance(X, list) else [X])]
        self.ndata = len(Xs[0])
        for x in Xs:
            if x.ndim != 2:
                raise ShapeError(f"ArrayIterator: X must have shape (ndata, nfeatures), "
                                 f"got {x.shape}")
            if len(x) != self.ndata:
                raise ShapeError(f"ArrayIterator: every X must have {self.ndata} rows, "
                                 f"got {len(x)}")
        if self.ndata < be.bsz:
            raise ParameterError(f"ArrayIterator: ndata ({self.ndata}) must be at least the "
                                 f"batch size ({be.bsz})")
        if lshape is not None and int(np.prod(lshape)) != Xs[0].shape[1]:
            raise ShapeError(f"ArrayIterator: lshape {lshape} does not hold "
                             f"{Xs[0].shape[1]} features")
        self.nclass = nclass
        self.start = 0
        self.make_onehot = make_onehot
        shapes = [x.shape[1] if lshape is None else tuple(lshape) for x in Xs]
        self.shape = shapes[0] if len(shapes) == 1 else shapes
        self.lshape = lshape
        self.Xdev = [be.array(x) for x in Xs]
        self.Xbuf = [be.iobuf(x.shape[1]) for x in Xs]
        self.ydev = self.ybuf = None
        if y is not None:
            self._setup_targets(_numeric("y", y), nclass, make_onehot)

    def _setup_targets(self, y, nclass, make_onehot):
        be = self.be
        if len(y) != self.ndata:
            raise ShapeError(f"ArrayIterator: y must have {self.ndata} rows (one per sample "
                             f"of X), got shape {y.shape}")
        if make_onehot:
            if nclass is None:
                raise ParameterError("ArrayIterator: nclass is required to make one-hot "
                                     "labels (or pass make_onehot=False)")
            if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
                raise ShapeError(f"ArrayIterator: labels must have shape ({self.ndata},) or "
                                 f"({self.ndata}, 1) for make_onehot, got {y.shape}")
            labels = y.reshape(-1)
            if labels.size and (labels.min() < 0 or labels.max() >= nclass
                                or np.any(labels != np.round(labels))):
                raise ParameterError(f"ArrayIterator: labels must be integers in "
                                     f"[0, {nclass - 1}], got values in "
                                     f"[{labels.min()}, {labels.max()}]")
            self.ydev = be.array(labels.reshape(-1, 1))
            self.ybuf = be.iobuf(nclass)
            self._yidx = be.iobuf(1)
        else:
            if y.ndim != 2:
                raise ShapeError(f"ArrayIterator: targets must have shape (ndata, ntargets) "
                                 f"without make_onehot, got {y.shape}")
            self.ydev = be.array(y)
            self.ybuf = be.iobuf(y.shape[1])

    @property
    def nbatches(self):
        """Minibatches in the next epoch: ceil((ndata - start) / bsz)."""
        return -((self.start - self.ndata) // self.be.bsz)

    def reset(self):
        self.start = 0

    def _fill(self, buf, dev, parts):
        for (islice, oslice) in parts:
            buf[:, islice] = dev[oslice].T

    def __iter__(self):
        bsz = self.be.bsz
        for i1 in range(self.start, self.ndata, bsz):
            n = min(bsz, self.ndata - i1)
            parts = [(slice(0, n), slice(i1, i1 + n))]
            if n < bsz:      # wrap around to the start of the data
                parts.append((slice(n, bsz), slice(0, bsz - n)))
                self.start = bsz - n
            for buf, dev in zip(self.Xbuf, self.Xdev):
                self._fill(buf, dev, parts)
            targets = None
            if self.ydev is not None:
                if self.make_onehot:
                    self._fill(self._yidx, self.ydev, parts)
                    self.be.onehot(self._yidx, axis=0, out=self.ybuf)
                else:
                    self._fill(self.ybuf, self.ydev, parts)
                targets = self.ybuf
            inputs = self.Xbuf[0] if len(self.Xbuf) == 1 else self.Xbuf
            yield inputs, targets
