"""Sequence layers of the NeoML facade: SubSequence, ReverseSequence, SequenceSum, CumSum
through refnn's sequence ops (``refnn.ops.sequence``: the index rules live there).

Layout at the edge: a blob (BatchLength, BatchWidth, ListSize, H, W, D, C) is BW*LS
sequences of T = BatchLength steps, each an object of H*W*D*C numbers -- the ops'
time-major (T, N, C) without a copy. SubSequence and ReverseSequence work along
BatchLength, as NeoML's C++ layers do (``CSubSequenceLayer`` takes the sequence length
from ``BatchLength()``; the Python documentation's "numbered along the BatchWidth
dimension" describes the same axis loosely). CumSum takes any of the seven dimensions.
"""
import numpy as np

from refnn.errors import ParameterError
from refnn.neoml.Dnn._layer import Layer
from refnn.neoml.Dnn._recurrent import call_op, sequence_shape


def _int(where, what, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ParameterError(f"{where}: {what} must be an int, got {v!r}")
    return int(v)


class _TimeLayer(Layer):
    """A layer whose op sees the input as (T, N, C)."""

    def _seq(self, be, xs):
        x = xs[0]
        T, N, C = sequence_shape(self, x)
        self._check_float(x)
        return x, x.reshape(T, N, C)


class SubSequence(_TimeLayer):
    """Extracts a subsequence of every sequence (``SubSequence(input_layer, start_pos=0,
    length=1, name=None)``): start_pos counts from the end when negative, a negative
    length walks backwards. With M = BatchLength the layer takes, as NeoML,

        s = min(start_pos, M) (start_pos >= 0), max(0, M + start_pos) otherwise;
        L = min(length, M - s) (length >= 0), min(-max(length, -M), s + 1) otherwise.

    The output has BatchLength L; the other dimensions are the input's. A subsequence
    of 0 steps raises ParameterError naming the layer (NeoML has no empty blobs).
    """

    OPS = ("subsequence",)

    def __init__(self, input_layer, start_pos=0, length=1, name=None):
        where = f"SubSequence {name!r}"
        self._start = _int(where, "start_pos", start_pos)
        self._length = _int(where, "length", length)
        self._saved = None
        super().__init__(input_layer, name)

    @property
    def start_pos(self):
        """The first step of the subsequence (from the end when negative)."""
        return self._start

    @start_pos.setter
    def start_pos(self, v):
        self._start = _int(self._where(), "start_pos", v)

    @property
    def length(self):
        """The subsequence length (reversed order when negative)."""
        return self._length

    @length.setter
    def length(self, v):
        self._length = _int(self._where(), "length", v)

    def _forward(self, be, xs, training):
        x, x3 = self._seq(be, xs)
        y, saved = call_op(self, be, "subsequence.forward", x3, self._start, self._length)
        self._saved = (tuple(x.shape), saved)
        return [y.reshape((y.shape[0],) + tuple(x.shape[1:]))]

    def _backward(self, be, dys, need_dx):
        shape, saved = self._saved
        dy = dys[0]
        (dx,) = call_op(self, be, "subsequence.backward",
                        dy.reshape(dy.shape[0], shape[1] * shape[2], -1), saved)
        return [dx.reshape(shape)]


class ReverseSequence(_TimeLayer):
    """Reverses the order of the steps of every sequence (``ReverseSequence(input_layer,
    name=None)``): y[t] = x[BatchLength - 1 - t]."""

    OPS = ("reverse_sequence",)

    def __init__(self, input_layer, name=None):
        self._saved = None
        super().__init__(input_layer, name)

    def _forward(self, be, xs, training):
        x, x3 = self._seq(be, xs)
        y, saved = call_op(self, be, "reverse_sequence.forward", x3)
        self._saved = (tuple(x.shape), x3.shape, saved)
        return [y.reshape(x.shape)]

    def _backward(self, be, dys, need_dx):
        shape, shape3, saved = self._saved
        (dx,) = call_op(self, be, "reverse_sequence.backward", dys[0].reshape(shape3), saved)
        return [dx.reshape(shape)]


class SequenceSum(_TimeLayer):
    """Adds up the steps of every sequence (``SequenceSum(input_layer, name=None)``):
    y[n] = sum_t x[t, n]; the output has BatchLength 1, the other dimensions are the
    input's."""

    OPS = ("seq_sum",)

    def __init__(self, input_layer, name=None):
        self._saved = None
        super().__init__(input_layer, name)

    def _forward(self, be, xs, training):
        x, x3 = self._seq(be, xs)
        y, saved = call_op(self, be, "seq_sum.forward", x3)
        self._saved = (tuple(x.shape), x3.shape, saved)
        return [y.reshape((1,) + tuple(x.shape[1:]))]

    def _backward(self, be, dys, need_dx):
        shape, (T, N, C), saved = self._saved
        (dx,) = call_op(self, be, "seq_sum.backward", dys[0].reshape(N, C), saved)
        return [dx.reshape(shape)]


#: CumSum's dimension names -> axis of the 7-D blob
DIMENSIONS = ("batch_length", "batch_width", "list_size", "height", "width", "depth",
              "channels")


class CumSum(Layer):
    """Cumulative sums along one blob dimension (``CumSum(input_layer,
    dimension='channels', reverse=False, name=None)``): y[.., j, ..] = sum_{i <= j}
    x[.., i, ..], or sum_{i >= j} with ``reverse=True``. Float blobs only (refnn's
    ``cumsum`` op is a float op; an int blob raises DTypeError naming the layer)."""

    OPS = ("cumsum",)

    def __init__(self, input_layer, dimension="channels", reverse=False, name=None):
        self._axis = self._check_dimension(f"CumSum {name!r}", dimension)
        self._reverse = bool(reverse)
        self._saved = None
        super().__init__(input_layer, name)

    @staticmethod
    def _check_dimension(where, v):
        if v not in DIMENSIONS:
            raise ParameterError(f"{where}: dimension must be one of {DIMENSIONS}, got {v!r}")
        return DIMENSIONS.index(v)

    @property
    def dimension(self):
        """The dimension the sums run along."""
        return DIMENSIONS[self._axis]

    @dimension.setter
    def dimension(self, v):
        self._axis = self._check_dimension(self._where(), v)

    @property
    def reverse(self):
        """True: the sums run from the end."""
        return self._reverse

    @reverse.setter
    def reverse(self, v):
        self._reverse = bool(v)

    def _forward(self, be, xs, training):
        x = xs[0]
        sequence_shape(self, x)
        self._check_float(x)
        y, self._saved = call_op(self, be, "cumsum.forward", x, axis=self._axis,
                                 reverse=self._reverse)
        return [y]

    def _backward(self, be, dys, need_dx):
        (dx,) = call_op(self, be, "cumsum.backward", dys[0], self._saved)
        return [dx]
