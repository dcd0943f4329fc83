"""TimeConv: NeoML's convolution along the sequence axis through refnn's ``time_conv`` op.

Layout at the edge: an input blob (BL, BW, LS, H, W, D, C) is BW*LS sequences of BL
steps, each step an object of E = H*W*D*C numbers, stored time-major -- exactly the
op's canonical (T, N, C) layout, so the layer only reshapes (no copies, no
transposes). The output blob is (To, BW, LS, 1, 1, 1, F) with NeoML's

    To = (padding_front + padding_back + BL - (1 + dilation * (filter_size - 1)))
         // stride + 1.

The free term is the ``bias`` op on the (To*BW*LS, F) rows of the output (TimeConv
always has one, trained like the filters).

Weights are kept in the op's layout, filters (F, K, E) and free term (F,): the
``filter`` blob (1, F, 1, K, 1, 1, E) has the same memory order, so the properties
only reshape; the free term blob is (F, 1, 1, 1, 1, 1, 1). As NeoML's CTimeConvLayer the
filters are initialised with fan_in = filter_size * E. Two deliberate differences
from that C++ layer: the "filter bigger than input" check uses the dilated span
1 + dilation * (filter_size - 1) (NeoML's ignores the dilation, and a too-long dilated
filter would give a non-positive output length), and the output keeps the input's
ListSize as the spec says (the C++ Reshape leaves it at 1).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Dnn._conv import _FilterLayer, _filter_count
from refnn.ops.channelwise import time_conv_geometry


def _int_param(where, what, v, minimum):
    """An int >= minimum (filter_size, padding, dilation, stride)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ParameterError(f"{where}: {what} must be an int, got {v!r}")
    if v < minimum:
        raise ParameterError(f"{where}: {what} must be >= {minimum}, got {v!r}")
    return int(v)


class TimeConv(_FilterLayer):
    """The time convolution layer (``TimeConv(input_layers, filter_count, filter_size,
    padding_front=0, padding_back=0, dilation=1, stride=1, name=None)``): one output per
    input, shared filters, a 1-D convolution over BatchLength (the sequence steps) with
    ``padding_front`` zero steps before and ``padding_back`` after each sequence.

    Filters are empty (``None``) until the first run, when the network's initializer
    fills them (fan_in = filter_size * E; free term: zeros); setting ``filter`` /
    ``free_term`` before that is allowed and kept. Every input must have the filters'
    object size E = Height*Width*Depth*Channels.
    """

    OPS = ("time_conv", "bias")
    N_INPUTS = (1, None)
    N_OUTPUTS = None

    def __init__(self, input_layers, filter_count, filter_size, padding_front=0,
                 padding_back=0, dilation=1, stride=1, name=None):
        where = f"TimeConv {name!r}"
        self._filter_count = _filter_count(where, filter_count)
        self._filter_size = _int_param(where, "filter_size", filter_size, 1)
        self._padding_front = _int_param(where, "padding_front", padding_front, 0)
        self._padding_back = _int_param(where, "padding_back", padding_back, 0)
        self._dilation = _int_param(where, "dilation", dilation, 1)
        self._stride = _int_param(where, "stride", stride, 1)
        self._saved = []
        super().__init__(input_layers, name)

    # --------------------------------------------------------------- properties
    @property
    def filter_size(self):
        """The filter size (steps)."""
        return self._filter_size

    @filter_size.setter
    def filter_size(self, value):
        self._filter_size = _int_param(self._where(), "filter_size", value, 1)
        self._drop_params()

    @property
    def padding_front(self):
        """The number of zero steps added before each sequence."""
        return self._padding_front

    @padding_front.setter
    def padding_front(self, value):
        self._padding_front = _int_param(self._where(), "padding_front", value, 0)

    @property
    def padding_back(self):
        """The number of zero steps added after each sequence."""
        return self._padding_back

    @padding_back.setter
    def padding_back(self, value):
        self._padding_back = _int_param(self._where(), "padding_back", value, 0)

    @property
    def dilation(self):
        """The step between filter taps; 1 is no dilation."""
        return self._dilation

    @dilation.setter
    def dilation(self, value):
        self._dilation = _int_param(self._where(), "dilation", value, 1)

    @property
    def stride(self):
        """The convolution stride."""
        return self._stride

    @stride.setter
    def stride(self, value):
        self._stride = _int_param(self._where(), "stride", value, 1)

    @property
    def filter(self):
        """A copy of the filters as a blob (1, F, 1, filter_size, 1, 1, E); None before
        the first run unless set."""
        w = self._params.get("filter")
        if w is None:
            return None
        F, K, E = w.shape
        return self._blob_of(w, (1, F, 1, K, 1, 1, E))

    @filter.setter
    def filter(self, blob):
        be = self._engine_backend()
        if blob is None:
            self._params.pop("filter", None)
            self._grads.pop("filter", None)
            return
        host = self._host_float(blob, "filter")
        F, K = self._filter_count, self._filter_size
        s = tuple(int(v) for v in blob.shape)
        if len(s) != 7 or s[0] * s[1] * s[2] != F or s[3] != K or s[4] * s[5] != 1:
            raise ShapeError(f"{self._where()}: filter must have shape (1, {F}, 1, {K}, 1, "
                             f"1, E), got blob shape {s}")
        w = np.ascontiguousarray(host.reshape(F, K, s[6]))
        self._params["filter"] = be.asarray(w, dtype=np.float32)
        self._grads.pop("filter", None)

    # ------------------------------------------------------------------ passes
    def _init_params(self, be, x):
        E = int(np.prod(x.shape[3:]))
        F, K = self._filter_count, self._filter_size
        if "filter" not in self._params:
            w = self._dnn.initializer._draw((F, K, E), K * E)
            self._params["filter"] = be.asarray(w.astype(np.float32), dtype=np.float32)
        if "free_term" not in self._params:
            self._params["free_term"] = be.zeros((F,), dtype=np.float32)

    def _geometry(self, x, w, i):
        """time_conv's checks with this layer's name, before any kernel runs."""
        where = f"{self._where()} input {i}"
        if len(x.shape) != 7:
            raise ShapeError(f"{where}: must be a 7-D blob (BatchLength, BatchWidth, "
                             f"ListSize, Height, Width, Depth, Channels), got shape "
                             f"{tuple(x.shape)}")
        E = int(np.prod(x.shape[3:]))
        if w is not None and E != w.shape[2]:
            raise ShapeError(f"{where}: must have object size (Height*Width*Depth*Channels) "
                             f"{w.shape[2]} like the filter, got {E} (blob shape "
                             f"{tuple(x.shape)})")
        x3 = (x.shape[0], x.shape[1] * x.shape[2], E)
        return time_conv_geometry(x3, (self._filter_count, self._filter_size, E),
                                  self._stride, self._padding_front, self._padding_back,
                                  self._dilation, where=where)

    def _forward(self, be, xs, training):
        w = self._params.get("filter")
        geoms = [self._geometry(x, w, i) for i, x in enumerate(xs)]
        for i, x in enumerate(xs):
            self._check_float(x, f"input {i}")
        self._init_params(be, xs[0])
        w = self._params["filter"]
        for i, x in enumerate(xs):          # every input against the (new) filters
            self._geometry(x, w, i)
        F = self._filter_count
        self._saved, ys = [], []
        for x, geom in zip(xs, geoms):
            s, To = x.shape, geom[-1]
            x3 = x.reshape(s[0], s[1] * s[2], -1)
            y, saved_tc = be.op("time_conv.forward")(
                x3, w, self._stride, self._padding_front, self._padding_back,
                self._dilation)
            y, saved_bias = be.op("bias.forward")(y.reshape(-1, F),
                                                  self._params["free_term"])
            self._saved.append((s, saved_tc, saved_bias))
            ys.append(y.reshape((To,) + s[1:3] + (1, 1, 1, F)))
        return ys

    def _backward(self, be, dys, need_dx):
        dxs = []
        for (x_shape, saved_tc, saved_bias), dy in zip(self._saved, dys):
            if dy is None:
                dxs.append(None)
                continue
            To, F = dy.shape[0], dy.shape[6]
            dy, db = be.op("bias.backward")(dy.reshape(-1, F), saved_bias)
            self._accumulate("free_term", db)
            dx, dw = be.op("time_conv.backward")(dy.reshape(To, -1, F), saved_tc)
            self._accumulate("filter", dw)
            dxs.append(dx.reshape(x_shape))
        return dxs
