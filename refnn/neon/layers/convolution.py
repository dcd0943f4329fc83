"""Convolution layers (neon.layers.layer.Convolution, Conv) on refnn's ``conv2d`` op and
deconvolution layers (Deconvolution, Deconv) on its adjoint ``conv_transpose2d``.

neon's layout is CHWN: a layer sees a (C*H*W, N) tensor whose samples have shape
``in_shape`` = (C, H, W) (an ArrayIterator's ``lshape`` or the previous layer's
``out_shape``). The op is NCHW, so the layer converts at its edge with one 2-D
transpose each way: (C*H*W, N) -> (N, C*H*W) = NCHW, and the (N, K*P*Q) output back to
(K*P*Q, N) -- on host backends a zero-copy transposed view when the next layer takes
those (``Layer.TAKES_NC``: Bias, Pooling, Convolution, Linear read it back as NCHW for
free), likewise the deltas. The filters are neon's W (C*R*S, K) -- the (C, R, S, K) tensor flattened
-- and the op's filters are its transpose (K, C, R, S).

Deconvolution is neon's transposed convolution: fshape = (R, S, C) with C the OUTPUT
channels; the (K, P, Q) input maps to (C, H, W), H = (P - 1) str_h - 2 pad_h +
dil_h (R - 1) + 1. Its W is (C*R*S, K) like the Convolution it transposes (which maps
C -> K), so the op's filters are again W^T reshaped to (K, C, R, S).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neon.layers.layer import CompoundLayer, ParameterLayer
from refnn.ops.conv import conv2d_geometry, conv_transpose_geometry


def _hw(where, what, value, keys, default):
    """neon's int or {'<key>_h': .., '<key>_w': ..} dict -> (h, w)."""
    if isinstance(value, dict):
        unknown = set(value) - set(keys)
        if unknown:
            raise ParameterError(f"{where}: {what} has unknown keys {sorted(unknown)}; "
                                 f"expected {list(keys)}")
        value = tuple(value.get(k, default) for k in keys)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    else:
        raise ParameterError(f"{where}: {what} must be an int or a dict with keys "
                             f"{list(keys)}, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value):
        raise ParameterError(f"{where}: {what} values must be ints, got {value!r}")
    return int(value[0]), int(value[1])


class _ConvBase(ParameterLayer):
    """What Convolution and Deconvolution share: the arguments, the W (C*R*S, K) <->
    op filters (K, C, R, S) edge and fprop/bprop on the op named ``OPS[0]``.
    Subclasses set ``_FSHAPE`` (fshape's letters) and ``_geometry`` (in_shape ->
    out_shape and the op filters' shape)."""

    TAKES_NC = True
    _FSHAPE = "(R, S, K)"

    def __init__(self, fshape, strides, padding, dilation, init, bsum, name):
        super().__init__(init, name)
        where = f"{self.name} ({type(self).__name__})"
        if not isinstance(fshape, (tuple, list)) or len(fshape) != 3 or any(
                isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                for v in fshape):
            raise ParameterError(f"{where}: fshape must be {self._FSHAPE}, three ints > 0, "
                                 f"got {fshape!r}")
        if bsum:
            raise ParameterError(f"{where}: bsum (fused batch-norm sums) is not provided")
        self.fshape = tuple(int(v) for v in fshape)
        self.strides = _hw(where, "strides", strides, ("str_h", "str_w"), 1)
        self.padding = _hw(where, "padding", padding, ("pad_h", "pad_w"), 0)
        self.dilation = _hw(where, "dilation", dilation, ("dil_h", "dil_w"), 1)
        if min(self.strides) < 1 or min(self.dilation) < 1 or min(self.padding) < 0:
            raise ParameterError(f"{where}: strides and dilation must be >= 1 and padding "
                                 f">= 0, got strides={self.strides}, padding="
                                 f"{self.padding}, dilation={self.dilation}")
        self.nglayer = None

    def __str__(self):
        return (f"{type(self).__name__} Layer '{self.name}': {self.in_shape} inputs, "
                f"{self.out_shape} outputs")

    def configure(self, in_obj):
        super().configure(in_obj)
        shape = self.in_shape
        if not isinstance(shape, (tuple, list)) or len(shape) != 3:
            raise ShapeError(f"{self.name} ({type(self).__name__}): needs {self._IN} "
                             f"samples (give the data an lshape), got in_shape {shape!r}")
        self.in_shape = tuple(int(v) for v in shape)
        self.out_shape, self._wshape = self._geometry(*self.in_shape)
        K, C, R, S = self._wshape
        self.weight_shape = (C * R * S, K)
        return self

    def _forward_kwargs(self):
        return {}

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        be, rb = self.be, self.be.rb
        self.inputs = inputs
        N = inputs.shape[1]
        x = be.to_nc(inputs).reshape((N,) + self.in_shape)            # NCHW
        w = rb.transpose2d(self.W._data).reshape(self._wshape)
        y, self._saved = rb.op(self.OPS[0] + ".forward")(
            x, w, self.strides, self.padding, self.dilation, **self._forward_kwargs())
        self.outputs = self._to_next(y.reshape(N, -1))
        return self.outputs

    def bprop(self, error):
        be, rb = self.be, self.be.rb
        N = error.shape[1]
        dy = be.to_nc(error).reshape((N,) + self.out_shape)
        dx, dw = rb.op(self.OPS[0] + ".backward")(dy, self._saved)
        self._store_grad(rb.transpose2d(dw.reshape(self._wshape[0], -1)))
        # the first layer of a model (need_dx False) skips dX: no col2im, deltas None
        self.deltas = None if dx is None else self._to_prev(dx.reshape(N, -1))
        return self.deltas


class Convolution(_ConvBase):
    """Convolutional layer: K filters of R x S over (C, H, W) samples -> (K, P, Q).

    ``fshape`` = (R, S, K); ``strides``, ``padding``, ``dilation``: an int or a dict
    ({'str_h', 'str_w'}, {'pad_h', 'pad_w'}, {'dil_h', 'dil_w'}); defaults 1, 0, 1.
    P = (H + 2 pad_h - dil_h (R - 1) - 1) // str_h + 1, likewise Q. Runs refnn's
    ``conv2d`` op; as the first layer of a model (``need_dx`` False) it asks the op for
    dW only.
    """

    OPS = ("conv2d",)
    _IN = "(C, H, W)"

    def __init__(self, fshape, strides={}, padding={}, dilation={}, init=None, bsum=False,
                 name=None):
        super().__init__(fshape, strides, padding, dilation, init, bsum, name)

    def _geometry(self, C, H, W):
        R, S, K = self.fshape
        _, _, _, (P, Q) = conv2d_geometry(
            (1, C, H, W), (K, C, R, S), self.strides, self.padding, self.dilation,
            where=f"{self.name} (Convolution)")
        return (K, P, Q), (K, C, R, S)

    def _forward_kwargs(self):
        return {"need_dx": self.need_dx}


class Conv(CompoundLayer):
    """Convolution -> (Bias, one per filter, or BatchNorm with batch_norm=True, one
    mean/variance, gamma and beta per filter) -> Activation, named "<name>",
    "<name>_bias" / "<name>_bnorm", "<name>_<Act>"."""

    def __init__(self, fshape, init, strides={}, padding={}, dilation={}, bias=None,
                 batch_norm=False, activation=None, name=None):
        super().__init__(bias=bias, batch_norm=batch_norm, activation=activation, name=name)
        self.append(Convolution(fshape=fshape, strides=strides, padding=padding,
                                dilation=dilation, init=init, name=name))
        self.add_postfilter_layers()


class Deconvolution(_ConvBase):
    """Deconvolutional (transposed convolution) layer: (K, P, Q) samples -> (C, H, W).

    ``fshape`` = (R, S, C) (C: the output channels); ``strides``, ``padding``,
    ``dilation``: an int or a dict ({'str_h', 'str_w'}, {'pad_h', 'pad_w'},
    {'dil_h', 'dil_w'}). H = (P - 1) str_h - 2 pad_h + dil_h (R - 1) + 1, likewise W.
    The adjoint of a Convolution with the same W (C*R*S, K); runs refnn's
    ``conv_transpose2d`` op.
    """

    OPS = ("conv_transpose2d",)
    _FSHAPE = "(R, S, C)"
    _IN = "(K, P, Q)"

    def __init__(self, fshape, strides=1, padding=0, dilation=1, init=None, bsum=False,
                 name=None):
        super().__init__(fshape, strides, padding, dilation, init, bsum, name)

    def _geometry(self, K, P, Q):
        R, S, C = self.fshape
        H, W = conv_transpose_geometry(
            (1, K, P, Q), (K, C, R, S), self.strides, self.padding, self.dilation, 0,
            where=f"{self.name} (Deconvolution)")[-1]
        return (C, H, W), (K, C, R, S)


class Deconv(CompoundLayer):
    """Deconvolution -> (Bias, one per output channel, or BatchNorm with
    batch_norm=True) -> Activation, named "<name>", "<name>_bias" / "<name>_bnorm",
    "<name>_<Act>"."""

    def __init__(self, fshape, init, strides=1, padding=0, dilation=1, bias=None,
                 batch_norm=False, activation=None, name=None):
        super().__init__(bias=bias, batch_norm=batch_norm, activation=activation, name=name)
        self.append(Deconvolution(fshape=fshape, strides=strides, padding=padding,
                                  dilation=dilation, init=init, name=name))
        self.add_postfilter_layers()
