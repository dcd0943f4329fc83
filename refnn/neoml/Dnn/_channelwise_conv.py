"""ChannelwiseConv: depthwise 2-D convolution of channels-last images through refnn's
``channelwise_conv2d`` op.

Layout at the edge: an input blob (BL, BW, LS, H, W, D, C) is N = BL*BW*LS images of
H x W pixels with D*C channels, channels last (NHWC). The op is NCHW, so the layer
transposes in (NHWC -> NCHW) and out, as Conv does (with Conv's helpers); the output
blob is (BL, BW, LS, Ho, Wo, 1, C) with, per axis, Ho = (H + 2 p - k) // s + 1 (NeoML's
ChannelwiseConv has no dilation). The per-channel free term is the ``bias`` op on the
(N*Ho*Wo, C) rows of the output.

Weights are kept in the op's layout: filter (C, 1, kh, kw) and free term (C,); the
``filter`` and ``free_term`` properties show them in NeoML's blob shapes
(1, 1, 1, kh, kw, 1, C) and (C, 1, 1, 1, 1, 1, 1).

As NeoML's CChannelwiseConvLayer: padding must be smaller than the filter (checked at
run time), the filter is initialised with fan_in = kh*kw*C (the filter blob's object
size, what NeoML passes to the initializer), and setting ``filter`` sets
``filter_count`` to the blob's channel count. Unlike NeoML's C++ layer (Depth == 1
only), Depth*Channels are the channels, as the spec's input description says.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Dnn._conv import _ImageFilterLayer
from refnn.ops.channelwise import channelwise_geometry


class ChannelwiseConv(_ImageFilterLayer):
    """The channelwise convolution layer (``ChannelwiseConv(input_layers, filter_count,
    filter_size=(3, 3), stride_size=(1, 1), padding_size=(0, 0), is_zero_free_term=False,
    name=None)``): each channel of the input is convolved with its own channel of the
    filter; one output per input, shared filter.

    ``filter_count`` is the number of channels of the filter and must equal every
    input's Depth*Channels. The filter is empty (``None``) until the first run, when the
    network's initializer fills it (fan_in = kh*kw*C, as NeoML; free term: zeros);
    setting ``filter``/``free_term`` before that is allowed and kept (a filter blob of
    another channel count changes ``filter_count``, as in NeoML).
    """

    OPS = ("channelwise_conv2d", "bias")

    def __init__(self, input_layers, filter_count, filter_size=(3, 3), stride_size=(1, 1),
                 padding_size=(0, 0), is_zero_free_term=False, name=None):
        super().__init__(input_layers, filter_count, filter_size, stride_size, padding_size,
                         1, is_zero_free_term, name)

    # --------------------------------------------------------------- properties
    @property
    def filter(self):
        """A copy of the filter as a blob (1, 1, 1, kh, kw, 1, C); None before the first
        run unless set."""
        w = self._params.get("filter")
        if w is None:
            return None
        C, _, kh, kw = w.shape
        return self._blob_of(self._swap(w.reshape(1, C, kh * kw)), (1, 1, 1, kh, kw, 1, C))

    @filter.setter
    def filter(self, blob):
        be = self._engine_backend()
        if blob is None:
            self._params.pop("filter", None)
            self._grads.pop("filter", None)
            return
        host = self._host_float(blob, "filter")
        kh, kw = self._filter_size
        s = tuple(int(v) for v in blob.shape)
        if len(s) != 7 or s[0] * s[1] * s[2] != 1 or s[3:5] != (kh, kw) or s[5] != 1:
            raise ShapeError(f"{self._where()}: filter must have shape (1, 1, 1, {kh}, {kw}, "
                             f"1, C), got blob shape {s}")
        C = s[6]
        if C != self._filter_count:         # NeoML: filter_count follows the filter
            self._filter_count = C
            self._params.pop("free_term", None)
            self._grads.pop("free_term", None)
        w = np.ascontiguousarray(host.reshape(kh * kw, C).T).reshape(C, 1, kh, kw)
        self._params["filter"] = be.asarray(w, dtype=np.float32)
        self._grads.pop("filter", None)

    # ------------------------------------------------------------------ passes
    def _init_params(self, be):
        C, (kh, kw) = self._filter_count, self._filter_size
        if "filter" not in self._params:
            w = self._dnn.initializer._draw((C, 1, kh, kw), kh * kw * C)
            self._params["filter"] = be.asarray(w.astype(np.float32), dtype=np.float32)
        if not self._zero_free_term and "free_term" not in self._params:
            self._params["free_term"] = be.zeros((C,), dtype=np.float32)

    def _geometry(self, x, i):
        """channelwise_conv2d's checks with this layer's name, before any kernel runs."""
        where = f"{self._where()} input {i}"
        if len(x.shape) != 7:
            raise ShapeError(f"{where}: must be a 7-D blob (BatchLength, BatchWidth, "
                             f"ListSize, Height, Width, Depth, Channels), got shape "
                             f"{tuple(x.shape)}")
        N, (H, W), C = x.shape[0] * x.shape[1] * x.shape[2], x.shape[3:5], \
            x.shape[5] * x.shape[6]
        if any(p >= k for p, k in zip(self._padding_size, self._filter_size)):
            raise ParameterError(f"{where}: padding_size {self._padding_size} must be smaller "
                                 f"than filter_size {self._filter_size} (as in NeoML)")
        if C != self._filter_count:
            raise ShapeError(f"{where}: must have {self._filter_count} channels "
                             f"(Depth*Channels) like the filter (filter_count), got {C} "
                             f"(blob shape {tuple(x.shape)})")
        return channelwise_geometry((N, C, H, W), (C, 1) + self._filter_size,
                                    self._stride_size, self._padding_size, where=where)

    def _forward(self, be, xs, training):
        geoms = [self._geometry(x, i) for i, x in enumerate(xs)]
        for i, x in enumerate(xs):
            self._check_float(x, f"input {i}")
        self._init_params(be)
        w = self._params["filter"]
        C = self._filter_count
        self._saved, ys = [], []
        for x, (_, _, _, (Ho, Wo)) in zip(xs, geoms):
            s = x.shape
            N, H, W = s[0] * s[1] * s[2], s[3], s[4]
            x4 = self._swap(x.reshape(N, H * W, C)).reshape(N, C, H, W)
            y, saved_cw = be.op("channelwise_conv2d.forward")(
                x4, w, self._stride_size, self._padding_size, (1, 1))
            y = self._swap(y.reshape(N, C, Ho * Wo)).reshape(N * Ho * Wo, C)
            saved_bias = None
            if not self._zero_free_term:
                y, saved_bias = be.op("bias.forward")(y, self._params["free_term"])
            self._saved.append((s, saved_cw, saved_bias))
            ys.append(y.reshape(s[:3] + (Ho, Wo, 1, C)))
        return ys

    def _backward(self, be, dys, need_dx):
        dxs = []
        for (x_shape, saved_cw, saved_bias), dy in zip(self._saved, dys):
            if dy is None:
                dxs.append(None)
                continue
            N = x_shape[0] * x_shape[1] * x_shape[2]
            _, _, _, Ho, Wo, _, C = dy.shape
            dy = dy.reshape(N * Ho * Wo, C)
            if saved_bias is not None:
                dy, db = be.op("bias.backward")(dy, saved_bias)
                self._accumulate("free_term", db)
            dy4 = self._swap(dy.reshape(N, Ho * Wo, C)).reshape(N, C, Ho, Wo)
            dx, dw = be.op("channelwise_conv2d.backward")(dy4, saved_cw)
            self._accumulate("filter", dw)
            dx = self._swap(dx.reshape(N, C, x_shape[3] * x_shape[4]))
            dxs.append(dx.reshape(x_shape))
        return dxs
