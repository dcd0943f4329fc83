"""Conv: 2-D convolution of channels-last images through refnn's ``conv2d`` op.

Layout at the edge: an input blob (BL, BW, LS, H, W, D, C) is N = BL*BW*LS images of
H x W pixels with D*C channels, channels last (NHWC). The ``conv2d`` op is NCHW, so the
layer transposes in (NHWC -> NCHW) and out (NCHW -> NHWC); the output blob is
(BL, BW, LS, Ho, Wo, 1, F) with, per axis, Ho = (H + 2 p - (1 + d (k - 1))) // s + 1.
The per-filter free term is the ``bias`` op on the (N*Ho*Wo, F) rows of the output.

Weights are kept in the op's layout: filters (F, C, kh, kw) and free term (F,); the
``filter`` and ``free_term`` properties show them in NeoML's blob shapes
(1, F, 1, kh, kw, 1, C) and (F, 1, 1, 1, 1, 1, 1).

Conv3D (``conv3d``) and, in _transposed_conv.py, TransposedConv / TransposedConv3D
(``conv_transpose2d`` / ``conv_transpose3d``) share ``_ConvLayer``: a 3-D image blob is
(BL, BW, LS, H, W, D, C), channels last, and goes to the op as (N, C, H, W, D) -- the
op's three spatial axes are NeoML's (height, width, depth), in that order.

What the filter layers share lives in two bases here: ``_FilterLayer`` (filter_count,
the free term, FullyConnected's parameter helpers; also TimeConv's) and
``_ImageFilterLayer`` (the size tuples, zero_free_term, batch-norm folding; also
ChannelwiseConv's).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Dnn._fully_connected import FullyConnected
from refnn.neoml.Dnn._layer import Layer
from refnn.ops.conv import conv2d_geometry, conv_geometry, conv_transpose_geometry


def _size_tuple(where, what, v, n, minimum):
    """A tuple of n ints (NeoML's tuples; an int is repeated), each >= minimum."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (v,) * n
    if not isinstance(v, (tuple, list)) or len(v) != n or any(
            isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in v):
        raise ParameterError(f"{where}: {what} must be a tuple of {n} ints, got {v!r}")
    if min(v) < minimum:
        raise ParameterError(f"{where}: {what} must be >= {minimum}, got {tuple(v)!r}")
    return tuple(int(a) for a in v)


def _filter_count(where, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ParameterError(f"{where}: filter_count must be an int > 0, got {v!r}")
    return int(v)


def _swap_last(be, is_host, a):
    """(N, R, C) -> a C-contiguous (N, C, R): one 2-D transpose per image."""
    if is_host:
        return np.ascontiguousarray(np.swapaxes(a, 1, 2))
    N, R, C = a.shape
    out = be.empty((N, C, R), dtype=a.dtype)
    for n in range(N):
        out[n] = be.transpose2d(a[n].copy())       # a[n] starts at an offset: copy first
    return out


class _FilterLayer(Layer):
    """What every filter layer here shares (Conv, ChannelwiseConv, TimeConv and
    ``_ConvLayer``'s Conv3D / TransposedConv / TransposedConv3D): one output per input,
    ``filter_count`` (a new count drops the filters), the (F,) free term shown as an
    (F, 1, 1, 1, 1, 1, 1) blob, and FullyConnected's parameter helpers."""

    N_INPUTS = (1, None)
    N_OUTPUTS = None

    @property
    def filter_count(self):
        """The number of filters (ChannelwiseConv: the filter's channels, = the inputs'
        Depth*Channels)."""
        return self._filter_count

    @filter_count.setter
    def filter_count(self, value):
        self._filter_count = _filter_count(self._where(), value)
        self._drop_params()

    @property
    def free_term(self):
        """A copy of the free term as a blob (F, 1, 1, 1, 1, 1, 1); None before the first
        run unless set."""
        return self._free_term_blob(self._filter_count)

    @free_term.setter
    def free_term(self, blob):
        self._set_free_term(blob, self._filter_count)

    def _drop_params(self):
        """A new filter geometry: the old filters no longer fit."""
        for name in ("filter", "free_term"):
            self._params.pop(name, None)
            self._grads.pop(name, None)

    _engine_backend = FullyConnected._engine_backend
    _host_float = FullyConnected._host_float
    _blob_of = FullyConnected._blob_of
    _free_term_blob = FullyConnected._free_term_blob
    _set_free_term = FullyConnected._set_free_term
    _accumulate = FullyConnected._accumulate

    def _swap(self, a):
        engine = self._dnn.math_engine
        return _swap_last(engine.backend, engine.is_host, a)

    @property
    def _trainable(self):
        return self._learning_enabled


class _ImageFilterLayer(_FilterLayer):
    """A filter layer over ND-D images (Conv, ChannelwiseConv, ``_ConvLayer``): the
    filter_size / stride_size / padding_size tuples (an int is repeated), checked as
    NeoML's, the is_zero_free_term flag and folding a batch norm into the filters.
    Subclasses set ND (2 or 3) and TRANSPOSED (the op's filter is (C_in, F, ...))."""

    ND, TRANSPOSED = 2, False

    def __init__(self, input_layers, filter_count, filter_size, stride_size, padding_size,
                 dilation_size, is_zero_free_term, name):
        where = f"{type(self).__name__} {name!r}"
        n = self.ND
        self._filter_count = _filter_count(where, filter_count)
        self._filter_size = _size_tuple(where, "filter_size", filter_size, n, 1)
        self._stride_size = _size_tuple(where, "stride_size", stride_size, n, 1)
        self._padding_size = _size_tuple(where, "padding_size", padding_size, n, 0)
        self._dilation_size = _size_tuple(where, "dilation_size", dilation_size, n, 1)
        self._zero_free_term = bool(is_zero_free_term)
        self._saved = []
        super().__init__(input_layers, name)

    def _sizes(self, what, value, minimum):
        return _size_tuple(self._where(), what, value, self.ND, minimum)

    @property
    def filter_size(self):
        """The filter size ((height, width) or (height, width, depth))."""
        return self._filter_size

    @filter_size.setter
    def filter_size(self, value):
        self._filter_size = self._sizes("filter_size", value, 1)
        self._drop_params()

    @property
    def stride_size(self):
        """The convolution stride (vertical, horizontal[, depth])."""
        return self._stride_size

    @stride_size.setter
    def stride_size(self, value):
        self._stride_size = self._sizes("stride_size", value, 1)

    @property
    def padding_size(self):
        """The zero padding on each side (vertical, horizontal[, depth])."""
        return self._padding_size

    @padding_size.setter
    def padding_size(self, value):
        self._padding_size = self._sizes("padding_size", value, 0)

    zero_free_term = FullyConnected.zero_free_term

    def apply_batch_normalization(self, layer):
        """Fold the trained channel-based BatchNormalization ``layer`` (fed by this
        layer) into the filters and free term: output channel f's filter (ChannelwiseConv:
        channel f's) scaled by final_gamma[f], b' = final_gamma b + final_beta (a
        transposed filter folds along its F axis). Delete the batch norm afterwards, as
        in NeoML."""
        from refnn.neoml.Dnn._normalization import fold_batch_norm
        fold_batch_norm(self, layer, "filter", self._filter_count,
                        axis=1 if self.TRANSPOSED else 0)


class Conv(_ImageFilterLayer):
    """The convolution layer (``Conv(input_layers, filter_count=1, filter_size=(3, 3),
    stride_size=(1, 1), padding_size=(0, 0), dilation_size=(1, 1),
    is_zero_free_term=True, name=None)``): one output per input, shared filters.

    Filters are empty (``None``) until the first run, when the network's initializer
    fills them (fan_in = C*kh*kw; free term: zeros); setting ``filter``/``free_term``
    before that is allowed and kept. Every input must have the filters' channel count.
    An input fed only by layers that learn nothing (a Source: the first layer of a
    network) gets no input gradient: conv2d runs with need_dx=False.
    """

    OPS = ("conv2d", "bias")

    def __init__(self, input_layers, filter_count=1, filter_size=(3, 3), stride_size=(1, 1),
                 padding_size=(0, 0), dilation_size=(1, 1), is_zero_free_term=True,
                 name=None):
        super().__init__(input_layers, filter_count, filter_size, stride_size, padding_size,
                         dilation_size, is_zero_free_term, name)

    # --------------------------------------------------------------- properties
    @property
    def dilation_size(self):
        """The dilation (vertical, horizontal); (1, 1) is no dilation."""
        return self._dilation_size

    @dilation_size.setter
    def dilation_size(self, value):
        self._dilation_size = self._sizes("dilation_size", value, 1)

    @property
    def filter(self):
        """A copy of the filters as a blob (1, F, 1, kh, kw, 1, C); None before the first
        run unless set."""
        w = self._params.get("filter")
        if w is None:
            return None
        F, C, kh, kw = w.shape
        return self._blob_of(self._swap(w.reshape(F, C, kh * kw)), (1, F, 1, kh, kw, 1, C))

    @filter.setter
    def filter(self, blob):
        be = self._engine_backend()
        if blob is None:
            self._params.pop("filter", None)
            self._grads.pop("filter", None)
            return
        host = self._host_float(blob, "filter")
        F, (kh, kw) = self._filter_count, self._filter_size
        s = tuple(int(v) for v in blob.shape)
        if s[0] * s[1] * s[2] != F or s[3:5] != (kh, kw):
            raise ShapeError(f"{self._where()}: filter must have shape (1, {F}, 1, {kh}, "
                             f"{kw}, 1, C), got blob shape {s}")
        C = s[5] * s[6]
        w = np.ascontiguousarray(host.reshape(F, kh, kw, C).transpose(0, 3, 1, 2))
        self._params["filter"] = be.asarray(w, dtype=np.float32)
        self._grads.pop("filter", None)

    def _needs_grad(self, name, memo):
        """Whether the network's backward pass wants the gradient of layer ``name``'s
        output (the Dnn's rule: it, or a layer upstream of it, learns). When no input
        does -- the first layer of a network -- conv2d skips dX (need_dx=False)."""
        if name not in memo:
            layer = self._dnn.layers[name]
            memo[name] = layer._trainable or any(self._needs_grad(src, memo)
                                                  for src, _ in layer._links)
        return memo[name]

    # ------------------------------------------------------------------ passes
    def _init_params(self, be, x):
        C = int(x.shape[5] * x.shape[6])
        F, (kh, kw) = self._filter_count, self._filter_size
        if "filter" not in self._params:
            fan_in = C * kh * kw
            w = self._dnn.initializer._draw((F, C, kh, kw), fan_in)
            self._params["filter"] = be.asarray(w.astype(np.float32), dtype=np.float32)
        if not self._zero_free_term and "free_term" not in self._params:
            self._params["free_term"] = be.zeros((F,), dtype=np.float32)

    def _geometry(self, x, w, i):
        """conv2d's checks with this layer's name, before any kernel runs."""
        N, (H, W), C = x.shape[0] * x.shape[1] * x.shape[2], x.shape[3:5], \
            x.shape[5] * x.shape[6]
        if C != w.shape[1]:
            raise ShapeError(f"{self._where()}: input {i} must have {w.shape[1]} channels "
                             f"(Depth*Channels) like the filter, got {C} (blob shape "
                             f"{tuple(x.shape)})")
        return conv2d_geometry((N, C, H, W), w.shape, self._stride_size, self._padding_size,
                               self._dilation_size, where=f"{self._where()} input {i}")

    def _forward(self, be, xs, training):
        for i, x in enumerate(xs):
            self._check_float(x, f"input {i}")
        self._init_params(be, xs[0])
        w = self._params["filter"]
        F = w.shape[0]
        geoms = [self._geometry(x, w, i) for i, x in enumerate(xs)]
        self._saved, ys = [], []
        for (src, _), x, (_, _, _, (Ho, Wo)) in zip(self._links, xs, geoms):
            s = x.shape
            N, H, W, C = s[0] * s[1] * s[2], s[3], s[4], s[5] * s[6]
            x4 = self._swap(x.reshape(N, H * W, C)).reshape(N, C, H, W)
            y, saved_conv = be.op("conv2d.forward")(
                x4, w, self._stride_size, self._padding_size, self._dilation_size,
                need_dx=training and self._needs_grad(src, {}))
            y = self._swap(y.reshape(N, F, Ho * Wo)).reshape(N * Ho * Wo, F)
            saved_bias = None
            if not self._zero_free_term:
                y, saved_bias = be.op("bias.forward")(y, self._params["free_term"])
            self._saved.append((s, saved_conv, saved_bias))
            ys.append(y.reshape(s[:3] + (Ho, Wo, 1, F)))
        return ys

    def _backward(self, be, dys, need_dx):
        dxs = []
        for (x_shape, saved_conv, saved_bias), dy in zip(self._saved, dys):
            if dy is None:
                dxs.append(None)
                continue
            N = x_shape[0] * x_shape[1] * x_shape[2]
            _, _, _, Ho, Wo, _, F = dy.shape
            dy = dy.reshape(N * Ho * Wo, F)
            if saved_bias is not None:
                dy, db = be.op("bias.backward")(dy, saved_bias)
                self._accumulate("free_term", db)
            dy4 = self._swap(dy.reshape(N, Ho * Wo, F)).reshape(N, F, Ho, Wo)
            dx, dw = be.op("conv2d.backward")(dy4, saved_conv)
            self._accumulate("filter", dw)
            if dx is None:                  # fed by layers that learn nothing
                dxs.append(None)
                continue
            C = x_shape[5] * x_shape[6]
            dx = self._swap(dx.reshape(N, C, x_shape[3] * x_shape[4]))
            dxs.append(dx.reshape(x_shape))
        return dxs


# ------------------------------------------------------------ Conv3D and the transposes
class _ConvLayer(_ImageFilterLayer):
    """Shared body of Conv3D, TransposedConv and TransposedConv3D.

    Subclasses set ND (2 or 3 spatial axes), OP (the refnn op) and TRANSPOSED. The op's
    filters are (A, B, *kernel) with A = filter_count, B = input channels for a
    convolution and A = input channels, B = filter_count for a transposed one; NeoML's
    filter blob is (1, A, 1, kh, kw, kd, B) either way (kd = 1 in 2-D).
    """

    ND, OP, TRANSPOSED, HAS_DILATION = 3, "conv3d", False, False

    def _kernel3(self):
        """The filter size padded to (kh, kw, kd) for the blob shape."""
        return self._filter_size + (1,) * (3 - self.ND)

    @property
    def filter(self):
        """A copy of the filters as a blob (1, A, 1, kh, kw, kd, B) (see the class); None
        before the first run unless set."""
        w = self._params.get("filter")
        if w is None:
            return None
        A, B = w.shape[:2]
        K = int(np.prod(self._filter_size))
        return self._blob_of(self._swap(w.reshape(A, B, K)), (1, A, 1) + self._kernel3() + (B,))

    @filter.setter
    def filter(self, blob):
        be = self._engine_backend()
        if blob is None:
            self._params.pop("filter", None)
            self._grads.pop("filter", None)
            return
        host = self._host_float(blob, "filter")
        s = tuple(int(v) for v in blob.shape)
        k3, F = self._kernel3(), self._filter_count
        A, B = s[0] * s[1] * s[2], s[6]
        want = f"(1, C, 1, {', '.join(map(str, k3))}, {F})" if self.TRANSPOSED else \
            f"(1, {F}, 1, {', '.join(map(str, k3))}, C)"
        if s[3:6] != k3 or (B if self.TRANSPOSED else A) != F:
            raise ShapeError(f"{self._where()}: filter must have shape {want}, got blob "
                             f"shape {s}")
        K = int(np.prod(k3))
        w = np.ascontiguousarray(host.reshape(A, K, B).transpose(0, 2, 1))
        w = w.reshape((A, B) + self._filter_size)
        self._params["filter"] = be.asarray(w, dtype=np.float32)
        self._grads.pop("filter", None)

    # ------------------------------------------------------------------ passes
    def _image(self, x):
        """(N, spatial, channels) of a 7-D input blob shape."""
        if len(x.shape) != 7:
            raise ShapeError(f"{self._where()}: inputs must be 7-D blobs, got shape "
                             f"{tuple(x.shape)}")
        s = tuple(int(v) for v in x.shape)
        N = s[0] * s[1] * s[2]
        if self.ND == 2:
            return N, s[3:5], s[5] * s[6]
        return N, s[3:6], s[6]

    def _init_params(self, be, x):
        _, _, C = self._image(x)
        F, k = self._filter_count, self._filter_size
        if "filter" not in self._params:
            shape = (C, F) + k if self.TRANSPOSED else (F, C) + k
            # NeoML's fan-in: the filter blob's object size (kernel * its last axis)
            fan_in = int(np.prod(k)) * shape[1]
            w = self._dnn.initializer._draw(shape, fan_in)
            self._params["filter"] = be.asarray(w.astype(np.float32), dtype=np.float32)
        if not self._zero_free_term and "free_term" not in self._params:
            self._params["free_term"] = be.zeros((F,), dtype=np.float32)

    def _geometry(self, x, w, i):
        """The op's checks with this layer's name (axes named as NeoML's), before any
        kernel runs; returns the output's spatial size."""
        N, size, C = self._image(x)
        need = w.shape[0] if self.TRANSPOSED else w.shape[1]
        if C != need:
            what = "Depth*Channels" if self.ND == 2 else "Channels"
            raise ShapeError(f"{self._where()}: input {i} must have {need} channels "
                             f"({what}) like the filter, got {C} (blob shape "
                             f"{tuple(x.shape)})")
        where, axes = f"{self._where()} input {i}", "HWD"[:self.ND]
        if self.TRANSPOSED:
            return conv_transpose_geometry((N, C) + size, w.shape, self._stride_size,
                                           self._padding_size, self._dilation_size, 0,
                                           where, axes)[-1]
        return conv_geometry((N, C) + size, w.shape, self._stride_size, self._padding_size,
                             self._dilation_size, where, axes)[-1]

    def _op_params(self):
        p = {"stride": self._stride_size, "padding": self._padding_size}
        if self.HAS_DILATION:
            p["dilation"] = self._dilation_size
        return p

    def _forward(self, be, xs, training):
        for i, x in enumerate(xs):
            self._check_float(x, f"input {i}")
        self._init_params(be, xs[0])
        w = self._params["filter"]
        F = self._filter_count
        outs = [self._geometry(x, w, i) for i, x in enumerate(xs)]
        self._saved, ys = [], []
        for x, out in zip(xs, outs):
            N, size, C = self._image(x)
            S, P = int(np.prod(size)), int(np.prod(out))
            xo = self._swap(x.reshape(N, S, C)).reshape((N, C) + size)
            y, saved_op = be.op(self.OP + ".forward")(xo, w, **self._op_params())
            y = self._swap(y.reshape(N, F, P)).reshape(N * P, F)
            saved_bias = None
            if not self._zero_free_term:
                y, saved_bias = be.op("bias.forward")(y, self._params["free_term"])
            self._saved.append((tuple(x.shape), out, saved_op, saved_bias))
            out3 = out + (1,) * (3 - self.ND)
            ys.append(y.reshape(tuple(x.shape[:3]) + out3 + (F,)))
        return ys

    def _backward(self, be, dys, need_dx):
        dxs = []
        F = self._filter_count
        for (x_shape, out, saved_op, saved_bias), dy in zip(self._saved, dys):
            if dy is None:
                dxs.append(None)
                continue
            N, size, C = self._image(_Shape(x_shape))
            P = int(np.prod(out))
            dy = dy.reshape(N * P, F)
            if saved_bias is not None:
                dy, db = be.op("bias.backward")(dy, saved_bias)
                self._accumulate("free_term", db)
            dyo = self._swap(dy.reshape(N, P, F)).reshape((N, F) + out)
            dx, dw = be.op(self.OP + ".backward")(dyo, saved_op)
            self._accumulate("filter", dw)
            dx = self._swap(dx.reshape(N, C, int(np.prod(size))))
            dxs.append(dx.reshape(x_shape))
        return dxs


class _Shape:
    """A stand-in with only ``.shape`` (``_image`` of a stored shape)."""

    def __init__(self, shape):
        self.shape = shape


class Conv3D(_ConvLayer):
    """The 3-D convolution layer (``Conv3D(input_layers, filter_count=1,
    filter_size=(3, 3, 3), stride_size=(1, 1, 1), padding_size=(0, 0, 0),
    is_zero_free_term=False, name=None)``) on refnn's ``conv3d`` op.

    Inputs (BL, BW, LS, H, W, D, C) -> outputs (BL, BW, LS, Ho, Wo, Do, F) with
    Ho = (2 p + H - kh) // s + 1 per axis (NeoML's Conv3D has no dilation). Filter blob
    (1, F, 1, kh, kw, kd, C) (``filter_count`` objects of the input's channels), free
    term (F, 1, 1, 1, 1, 1, 1); filters start from the initializer with fan-in
    kh*kw*kd*C at the first run, the free term at zero.
    """

    OPS = ("conv3d", "bias")
    ND, OP, TRANSPOSED, HAS_DILATION = 3, "conv3d", False, False

    def __init__(self, input_layers, filter_count=1, filter_size=(3, 3, 3),
                 stride_size=(1, 1, 1), padding_size=(0, 0, 0), is_zero_free_term=False,
                 name=None):
        super().__init__(input_layers, filter_count, filter_size, stride_size, padding_size,
                         1, is_zero_free_term, name)
