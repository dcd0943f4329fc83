"""Pooling layers: MaxPooling, MeanPooling and the global poolings, through refnn's
``pool`` ops (max_pool2d, avg_pool2d, global_{max,mean,sum}_pool).

Layout at the edge: an input blob (BL, BW, LS, H, W, D, C) is N = BL*BW*LS images of
H x W pixels with D*C channels, channels last (NHWC). The pool ops are NCHW, so a layer
transposes in (NHWC -> NCHW) and out (NCHW -> NHWC). No padding (NeoML's 2-D poolings
have none), so MeanPooling divides by filter_height * filter_width:

    MaxPooling:  y[n, a, b, c] = max_{i < kh, j < kw} x[n, a sh + i, b sw + j, c]
    MeanPooling: y[n, a, b, c] = sum_{i < kh, j < kw} x[n, a sh + i, b sw + j, c] / (kh kw)
    Ho = (H - kh) // sh + 1, Wo = (W - kw) // sw + 1; output (BL, BW, LS, Ho, Wo, 1, D*C).

The global layers reduce each channel over the whole H x W x D image; the output is
(BL, BW, LS, 1, 1, 1, C) (GlobalMaxPooling: Width max_count).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Dnn._conv import _size_pair, _swap_last
from refnn.neoml.Dnn._layer import Layer
from refnn.ops.pool import check_geometry


class _Pool2d(Layer):
    """One input, one output: a 2-D window reduction of every channel."""

    OP = None

    def __init__(self, input_layers, filter_size=(3, 3), stride_size=(1, 1), name=None):
        where = f"{type(self).__name__} {name!r}"
        self._filter_size = _size_pair(where, "filter_size", filter_size, 1)
        self._stride_size = _size_pair(where, "stride_size", stride_size, 1)
        self._saved = None
        super().__init__(input_layers, name)

    # --------------------------------------------------------------- properties
    @property
    def filter_size(self):
        """The window size (height, width)."""
        return self._filter_size

    @filter_size.setter
    def filter_size(self, value):
        self._filter_size = _size_pair(self._where(), "filter_size", value, 1)

    @property
    def stride_size(self):
        """The window stride (vertical, horizontal)."""
        return self._stride_size

    @stride_size.setter
    def stride_size(self, value):
        self._stride_size = _size_pair(self._where(), "stride_size", value, 1)

    filter_height = property(lambda self: self._filter_size[0],
                             doc="The window height.")
    filter_width = property(lambda self: self._filter_size[1], doc="The window width.")
    stride_height = property(lambda self: self._stride_size[0],
                             doc="The vertical window stride.")
    stride_width = property(lambda self: self._stride_size[1],
                            doc="The horizontal window stride.")

    # ------------------------------------------------------------------ passes
    def _swap(self, a):
        engine = self._dnn.math_engine
        return _swap_last(engine.backend, engine.is_host, a)

    def _op_params(self):
        return {}

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        s = tuple(int(v) for v in x.shape)
        N, H, W, C = s[0] * s[1] * s[2], s[3], s[4], s[5] * s[6]
        kh, kw = self._filter_size
        if kh > H or kw > W:
            raise ShapeError(f"{self._where()}: filter_size {(kh, kw)} is larger than the "
                             f"input image (Height, Width) = {(H, W)} (blob shape {s})")
        _, _, _, (Ho, Wo) = check_geometry(self._where(), (N, C, H, W), self._filter_size,
                                           self._stride_size, (0, 0))
        x4 = self._swap(x.reshape(N, H * W, C)).reshape(N, C, H, W)
        y, saved = be.op(self.OP + ".forward")(x4, self._filter_size, self._stride_size,
                                               (0, 0), **self._op_params())
        self._saved = (s, saved)
        y = self._swap(y.reshape(N, C, Ho * Wo))
        return [y.reshape(s[:3] + (Ho, Wo, 1, C))]

    def _backward(self, be, dys, need_dx):
        s, saved = self._saved
        N, C = s[0] * s[1] * s[2], s[5] * s[6]
        _, _, _, Ho, Wo, _, _ = dys[0].shape
        dy4 = self._swap(dys[0].reshape(N, Ho * Wo, C)).reshape(N, C, Ho, Wo)
        (dx,) = be.op(self.OP + ".backward")(dy4, saved)
        dx = self._swap(dx.reshape(N, C, s[3] * s[4]))
        return [dx.reshape(s)]


class MaxPooling(_Pool2d):
    """``MaxPooling(input_layers, filter_size=(3, 3), stride_size=(1, 1), name=None)``:
    y = the maximum of each kh x kw window. The gradient goes to the first maximum of
    each window in row-major order. (Real NeoML's CPU backward sends the gradient of
    later windows in a row of windows to the wrong row; refnn computes the true
    gradient.)"""

    OP = "max_pool2d"
    OPS = ("max_pool2d",)


class MeanPooling(_Pool2d):
    """``MeanPooling(input_layers, filter_size=(3, 3), stride_size=(1, 1), name=None)``:
    y = the mean of each kh x kw window (sum / (kh kw))."""

    OP = "avg_pool2d"
    OPS = ("avg_pool2d",)

    def _op_params(self):
        return {"count_include_pad": True}


class _GlobalPool(Layer):
    """One input, one output: each channel reduced over the whole H x W x D image."""

    OP = None

    def __init__(self, input_layers, name=None):
        self._saved = None
        super().__init__(input_layers, name)

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        s = tuple(int(v) for v in x.shape)
        N, HWD, C = s[0] * s[1] * s[2], s[3] * s[4] * s[5], s[6]
        x4 = self._swap(x.reshape(N, HWD, C)).reshape(N, C, HWD, 1)
        y, saved = be.op(self.OP + ".forward")(x4)
        self._saved = (s, saved)
        return [y.reshape(s[:3] + (1, 1, 1, C))]      # (N, C, 1, 1) is already NHWC

    def _backward(self, be, dys, need_dx):
        s, saved = self._saved
        N, HWD, C = s[0] * s[1] * s[2], s[3] * s[4] * s[5], s[6]
        (dx,) = be.op(self.OP + ".backward")(dys[0].reshape(N, C, 1, 1), saved)
        return [self._swap(dx.reshape(N, C, HWD)).reshape(s)]

    _swap = _Pool2d._swap


class GlobalMaxPooling(_GlobalPool):
    """``GlobalMaxPooling(input_layers, max_count, name=None)``: y[c] = the maximum of
    channel c over the whole H x W x D image; output (BL, BW, LS, 1, max_count, 1, C).

    Only ``max_count == 1`` is supported: the ``global_max_pool`` op finds one maximum
    and refnn has no top-k op, so any other max_count raises ParameterError. The
    gradient goes to the first maximum (in H, W, D order). The optional second output
    (indices) is not provided.
    """

    OP = "global_max_pool"
    OPS = ("global_max_pool",)

    def __init__(self, input_layers, max_count=1, name=None):
        self._max_count = self._check_count(f"GlobalMaxPooling {name!r}", max_count)
        super().__init__(input_layers, name)

    @staticmethod
    def _check_count(where, v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(f"{where}: max_count must be an int > 0, got {v!r}")
        if v != 1:
            raise ParameterError(f"{where}: max_count must be 1 in refnn (the "
                                 f"global_max_pool op finds one maximum; there is no "
                                 f"top-k op), got {v}")
        return int(v)

    @property
    def max_count(self):
        """The number of largest elements to be found (always 1 here)."""
        return self._max_count

    @max_count.setter
    def max_count(self, value):
        self._max_count = self._check_count(self._where(), value)


class GlobalMeanPooling(_GlobalPool):
    """``GlobalMeanPooling(input_layers, name=None)``: y[c] = the mean of channel c over
    the whole H x W x D image; output (BL, BW, LS, 1, 1, 1, C)."""

    OP = "global_mean_pool"
    OPS = ("global_mean_pool",)


class GlobalSumPooling(_GlobalPool):
    """``GlobalSumPooling(input_layers, name=None)``: y[c] = the sum of channel c over
    the whole H x W x D image; output (BL, BW, LS, 1, 1, 1, C)."""

    OP = "global_sum_pool"
    OPS = ("global_sum_pool",)
