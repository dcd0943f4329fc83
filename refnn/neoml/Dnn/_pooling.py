"""Pooling layers: MaxPooling, MeanPooling, MaxPooling3D, MeanPooling3D, the global
poolings, MaxOverTimePooling and ProjectionPooling, through refnn's
``pool`` ops (max_pool2d, avg_pool2d, max_pool3d, avg_pool3d, global_{max,mean,sum}_pool,
global_max_pool_topk, max_over_time, projection_pool).

Layout at the edge: an input blob (BL, BW, LS, H, W, D, C) is N = BL*BW*LS images of
H x W pixels with D*C channels, channels last (NHWC). The pool ops are NCHW, so a layer
transposes in (NHWC -> NCHW) and out (NCHW -> NHWC). No padding (NeoML's 2-D poolings
have none), so MeanPooling divides by filter_height * filter_width:

    MaxPooling:  y[n, a, b, c] = max_{i < kh, j < kw} x[n, a sh + i, b sw + j, c]
    MeanPooling: y[n, a, b, c] = sum_{i < kh, j < kw} x[n, a sh + i, b sw + j, c] / (kh kw)
    Ho = (H - kh) // sh + 1, Wo = (W - kw) // sw + 1; output (BL, BW, LS, Ho, Wo, D, C)
    (Depth and Channels of the input, as the spec says).

MaxPooling3D / MeanPooling3D pool the H x W x D volume of each channel with a
(height, width, depth) window: the blob's (H, W, D) order is kept and handed to
max_pool3d / avg_pool3d as their three spatial axes (the 3-D ops treat them alike).

The global layers reduce each channel over the whole H x W x D image; the output is
(BL, BW, LS, 1, 1, 1, C) (GlobalMaxPooling: Width max_count, the max_count largest
values in descending order, via ``global_max_pool_topk`` when max_count > 1).

MaxOverTimePooling views the blob as (T, N, V) = (BatchLength, BatchWidth * ListSize,
H W D C), exactly max_over_time's layout (no transpose); ProjectionPooling views it as
(A, L, B) around the pooled dimension, projection_pool's layout.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Dnn._conv import _swap_last
from refnn.neoml.Dnn._layer import Layer
from refnn.ops.pool import check_geometry, check_geometry3d


def _sizes(where, what, v, n):
    """A tuple of ``n`` ints >= 1 from an int or a tuple (NeoML's size tuples)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (v,) * n
    if not isinstance(v, (tuple, list)) or len(v) != n or any(
            isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in v):
        raise ParameterError(f"{where}: {what} must be a tuple of {n} ints, got {v!r}")
    if min(v) < 1:
        raise ParameterError(f"{where}: {what} must be >= 1, got {tuple(v)!r}")
    return tuple(int(a) for a in v)


def _blob_shape(layer, x):
    """The 7-D shape (BL, BW, LS, H, W, D, C) of an input blob, or a ShapeError naming
    the layer."""
    s = tuple(int(v) for v in x.shape)
    if len(s) != 7:
        raise ShapeError(f"{layer._where()}: the input must be a 7-D blob (BatchLength, "
                         f"BatchWidth, ListSize, Height, Width, Depth, Channels), got "
                         f"shape {s}")
    return s


class _Sizes:
    """A validated size-tuple property (``filter_size``, ``stride_size``) stored in
    ``_<name>``, plus its components as properties (``component(i)``; NeoML's
    ``filter_height`` etc., readable and settable)."""

    def __init__(self, doc):
        self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.name, self.attr = name, "_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.attr)

    def __set__(self, obj, value):
        setattr(obj, self.attr, _sizes(obj._where(), self.name, value, obj.DIMS))

    @staticmethod
    def component(attr, i, doc, name):
        def fset(self, value):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ParameterError(f"{self._where()}: {name} must be an int, got {value!r}")
            if value < 1:
                raise ParameterError(f"{self._where()}: {name} must be >= 1, got {value!r}")
            sizes = list(getattr(self, attr))
            sizes[i] = int(value)
            setattr(self, attr, tuple(sizes))
        return property(lambda self: getattr(self, attr)[i], fset, doc=doc)


class _Pool2d(Layer):
    """One input, one output: a 2-D window reduction of every channel."""

    OP = None
    DIMS = 2

    filter_size = _Sizes("The window size (height, width).")
    stride_size = _Sizes("The window stride (vertical, horizontal).")
    filter_height = _Sizes.component("_filter_size", 0, "The window height.",
                                      "filter_height")
    filter_width = _Sizes.component("_filter_size", 1, "The window width.",
                                     "filter_width")
    stride_height = _Sizes.component("_stride_size", 0, "The vertical window stride.",
                                      "stride_height")
    stride_width = _Sizes.component("_stride_size", 1, "The horizontal window stride.",
                                     "stride_width")

    def __init__(self, input_layers, filter_size=(3, 3), stride_size=(1, 1), name=None):
        where = f"{type(self).__name__} {name!r}"
        self._filter_size = _sizes(where, "filter_size", filter_size, self.DIMS)
        self._stride_size = _sizes(where, "stride_size", stride_size, self.DIMS)
        self._saved = None
        super().__init__(input_layers, name)

    # ------------------------------------------------------------------ passes
    def _swap(self, a):
        engine = self._dnn.math_engine
        return _swap_last(engine.backend, engine.is_host, a)

    def _op_params(self):
        return {}

    def _split(self, s):
        """(N, spatial, C): the images, the pooled axes and the channels of blob shape s
        (2-D: (H, W) with D*C channels; 3-D: (H, W, D) with C channels)."""
        spatial = s[3:3 + self.DIMS]
        return s[0] * s[1] * s[2], spatial, int(np.prod(s[3 + self.DIMS:]))

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        s = _blob_shape(self, x)
        N, spatial, C = self._split(s)
        names = ("Height", "Width", "Depth")[:self.DIMS]
        if any(k > n for k, n in zip(self._filter_size, spatial)):
            raise ShapeError(f"{self._where()}: filter_size {self._filter_size} is larger "
                             f"than the input image ({', '.join(names)}) = {spatial} "
                             f"(blob shape {s})")
        check = check_geometry if self.DIMS == 2 else check_geometry3d
        out = tuple(check(self._where(), (N, C) + spatial, self._filter_size,
                          self._stride_size, (0,) * self.DIMS)[3])
        xc = self._swap(x.reshape(N, int(np.prod(spatial)), C)).reshape((N, C) + spatial)
        y, saved = be.op(self.OP + ".forward")(xc, self._filter_size, self._stride_size,
                                               (0,) * self.DIMS, **self._op_params())
        self._saved = (s, out, saved)
        y = self._swap(y.reshape(N, C, int(np.prod(out))))
        # NeoML keeps Depth and Channels of the input (2-D: D*C pooled as channels)
        return [y.reshape(s[:3] + out + s[3 + self.DIMS:])]

    def _backward(self, be, dys, need_dx):
        s, out, saved = self._saved
        N, spatial, C = self._split(s)
        dyc = self._swap(dys[0].reshape(N, int(np.prod(out)), C)).reshape((N, C) + out)
        (dx,) = be.op(self.OP + ".backward")(dyc, saved)
        dx = self._swap(dx.reshape(N, C, int(np.prod(spatial))))
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


class _Pool3d(_Pool2d):
    """A 3-D window reduction of every channel over the (H, W, D) volume."""

    DIMS = 3

    filter_size = _Sizes("The window size (height, width, depth).")
    stride_size = _Sizes("The window stride (vertical, horizontal, depth).")
    filter_depth = _Sizes.component("_filter_size", 2, "The window depth.",
                                     "filter_depth")
    stride_depth = _Sizes.component("_stride_size", 2, "The window stride along the depth.",
                                     "stride_depth")

    def __init__(self, input_layers, filter_size=(3, 3, 3), stride_size=(1, 1, 1),
                 name=None):
        super().__init__(input_layers, filter_size, stride_size, name)


class MaxPooling3D(_Pool3d):
    """``MaxPooling3D(input_layers, filter_size=(3, 3, 3), stride_size=(1, 1, 1),
    name=None)``: y = the maximum of each (height, width, depth) window of every channel;
    output (BL, BW, LS, Ho, Wo, Do, C) with Ho = (H - kh) // sh + 1 (and so on). The
    gradient goes to the first maximum of each window (row-major over H, W, D)."""

    OP = "max_pool3d"
    OPS = ("max_pool3d",)


class MeanPooling3D(_Pool3d):
    """``MeanPooling3D(input_layers, filter_size=(3, 3, 3), stride_size=(1, 1, 1),
    name=None)``: y = the mean of each (height, width, depth) window (sum / (kh kw kd))."""

    OP = "avg_pool3d"
    OPS = ("avg_pool3d",)

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
        s = _blob_shape(self, x)
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
    """``GlobalMaxPooling(input_layers, max_count, name=None)``: the max_count largest
    values of each channel over the whole H x W x D image, in descending order;
    output (BL, BW, LS, 1, max_count, 1, C).

    max_count = 1 runs ``global_max_pool``, larger counts ``global_max_pool_topk``
    (equal values keep their (H, W, D) order). The gradient of each output goes to the
    element it was taken from. max_count larger than H W D raises ShapeError. The
    optional second output (indices) is not provided.
    """

    OP = "global_max_pool"
    OPS = ("global_max_pool", "global_max_pool_topk")

    def __init__(self, input_layers, max_count, name=None):
        self._max_count = self._check_count(f"GlobalMaxPooling {name!r}", max_count)
        super().__init__(input_layers, name)

    @staticmethod
    def _check_count(where, v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(f"{where}: max_count must be an int > 0, got {v!r}")
        return int(v)

    @property
    def max_count(self):
        """The number of largest elements to be found."""
        return self._max_count

    @max_count.setter
    def max_count(self, value):
        self._max_count = self._check_count(self._where(), value)

    def _forward(self, be, xs, training):
        k = self._max_count
        if k == 1:
            return super()._forward(be, xs, training)
        (x,) = xs
        self._check_float(x)
        s = _blob_shape(self, x)
        N, HWD, C = s[0] * s[1] * s[2], s[3] * s[4] * s[5], s[6]
        if k > HWD:
            raise ShapeError(f"{self._where()}: max_count {k} is larger than the image "
                             f"(Height * Width * Depth = {HWD}, blob shape {s})")
        x4 = self._swap(x.reshape(N, HWD, C)).reshape(N, C, HWD, 1)
        y, saved = be.op("global_max_pool_topk.forward")(x4, k)
        self._saved = (s, saved)
        return [self._swap(y.reshape(N, C, k)).reshape(s[:3] + (1, k, 1, C))]

    def _backward(self, be, dys, need_dx):
        k = dys[0].shape[4]
        if k == 1:
            return super()._backward(be, dys, need_dx)
        s, saved = self._saved
        N, HWD, C = s[0] * s[1] * s[2], s[3] * s[4] * s[5], s[6]
        dy4 = self._swap(dys[0].reshape(N, k, C)).reshape(N, C, 1, k)
        (dx,) = be.op("global_max_pool_topk.backward")(dy4, saved)
        return [self._swap(dx.reshape(N, C, HWD)).reshape(s)]


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


class MaxOverTimePooling(Layer):
    """``MaxOverTimePooling(input_layers, filter_len, stride_len, name=None)``: the
    elementwise maximum over windows of filter_len consecutive steps along BatchLength
    (the time axis), every stride_len steps; filter_len <= 0 takes the maximum over the
    whole sequence (output BatchLength 1; stride_len is then not used). Output
    BatchLength (BatchLength - filter_len) // stride_len + 1, other dimensions as the
    input. The gradient goes to the first (earliest) maximum of each window."""

    OPS = ("max_over_time",)

    def __init__(self, input_layers, filter_len, stride_len, name=None):
        where = f"MaxOverTimePooling {name!r}"
        self._filter_len = self._check_len(where, "filter_len", filter_len, None)
        self._stride_len = self._check_len(where, "stride_len", stride_len, 1)
        self._saved = None
        super().__init__(input_layers, name)

    @staticmethod
    def _check_len(where, what, v, minimum):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ParameterError(f"{where}: {what} must be an int, got {v!r}")
        if minimum is not None and v < minimum:
            raise ParameterError(f"{where}: {what} must be >= {minimum}, got {v}")
        return int(v)

    @property
    def filter_len(self):
        """The window size (<= 0: the whole sequence)."""
        return self._filter_len

    @filter_len.setter
    def filter_len(self, value):
        self._filter_len = self._check_len(self._where(), "filter_len", value, None)

    @property
    def stride_len(self):
        """The window stride."""
        return self._stride_len

    @stride_len.setter
    def stride_len(self, value):
        self._stride_len = self._check_len(self._where(), "stride_len", value, 1)

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        s = _blob_shape(self, x)
        if self._filter_len > s[0]:
            raise ShapeError(f"{self._where()}: filter_len {self._filter_len} is longer "
                             f"than the sequence (BatchLength = {s[0]}, blob shape {s})")
        y, saved = be.op("max_over_time.forward")(
            x.reshape(s[0], s[1] * s[2], -1), self._filter_len, self._stride_len)
        self._saved = (s, saved)
        return [y.reshape((y.shape[0],) + s[1:])]

    def _backward(self, be, dys, need_dx):
        s, saved = self._saved
        dy = dys[0]
        (dx,) = be.op("max_over_time.backward")(dy.reshape(dy.shape[0], s[1] * s[2], -1),
                                                saved)
        return [dx.reshape(s)]


_DIMENSIONS = ("batch_length", "batch_width", "list_size", "height", "width", "depth",
               "channels")


class ProjectionPooling(Layer):
    """``ProjectionPooling(input_layers, dimension, original_size=False, name=None)``:
    the mean over one blob dimension (``dimension`` in "batch_length", "batch_width",
    "list_size", "height", "width", "depth", "channels"). The dimension becomes 1, or,
    with original_size=True, keeps its length with every element equal to the mean.
    The blob is viewed as (A, L, B) around that dimension (``projection_pool``)."""

    OPS = ("projection_pool",)

    def __init__(self, input_layers, dimension, original_size=False, name=None):
        where = f"ProjectionPooling {name!r}"
        self._dimension = self._check_dimension(where, dimension)
        self._original_size = self._check_bool(where, original_size)
        self._saved = None
        super().__init__(input_layers, name)

    @staticmethod
    def _check_dimension(where, v):
        if v not in _DIMENSIONS:
            raise ParameterError(f"{where}: dimension must be one of {_DIMENSIONS}, "
                                 f"got {v!r}")
        return v

    @staticmethod
    def _check_bool(where, v):
        if not isinstance(v, (bool, np.bool_)):
            raise ParameterError(f"{where}: original_size must be a bool, got {v!r}")
        return bool(v)

    @property
    def dimension(self):
        """The dimension along which the average is taken."""
        return self._dimension

    @dimension.setter
    def dimension(self, value):
        self._dimension = self._check_dimension(self._where(), value)

    @property
    def original_size(self):
        """Whether the pooled dimension keeps its length (the mean broadcast along it)."""
        return self._original_size

    @original_size.setter
    def original_size(self, value):
        self._original_size = self._check_bool(self._where(), value)

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        s = _blob_shape(self, x)
        axis = _DIMENSIONS.index(self._dimension)
        A, L, B = int(np.prod(s[:axis])), s[axis], int(np.prod(s[axis + 1:]))
        y, saved = be.op("projection_pool.forward")(x.reshape(A, L, B), self._original_size)
        out = s if self._original_size else s[:axis] + (1,) + s[axis + 1:]
        self._saved = (s, saved)
        return [y.reshape(out)]

    def _backward(self, be, dys, need_dx):
        s, saved = self._saved
        axis = _DIMENSIONS.index(self._dimension)
        A, B = int(np.prod(s[:axis])), int(np.prod(s[axis + 1:]))
        (dx,) = be.op("projection_pool.backward")(dys[0].reshape(A, -1, B), saved)
        return [dx.reshape(s)]
