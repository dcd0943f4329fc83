"""Pooling layer (neon.layers.layer.Pooling) on refnn's ``pool`` ops.

neon's layout is CHWN: a layer sees a (C*H*W, N) tensor whose samples have shape
``in_shape`` = (C, H, W). The ops are NCHW, so the layer converts at its edge with one
2-D transpose each way ((C*H*W, N) -> (N, C*H*W) = NCHW and back). Every channel is
pooled on its own: out_shape = (C, P, Q) with

    P = (H + 2 pad_h - R) // str_h + 1        Q = (W + 2 pad_w - S) // str_w + 1

* op='max': y = the window maximum (padding counts as -inf); ``max_pool2d``.
* op='avg': y = the window sum / the number of real (non-padding) pixels in the window,
  as neon's CPU backend does; ``avg_pool2d(count_include_pad=False)``.
* fshape='all': the window is the whole H x W image -> (C, 1, 1); with no padding this
  runs ``global_max_pool`` / ``global_mean_pool``.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neon.layers.convolution import _hw
from refnn.neon.layers.layer import Layer
from refnn.ops.pool import check_geometry

_OPS = {"max": ("max_pool2d", "global_max_pool"), "avg": ("avg_pool2d", "global_mean_pool")}


def _int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _strides(where, strides):
    """(str_h, str_w) from an int or a dict; a missing key is None (= the window)."""
    keys = ("str_h", "str_w")
    hw = _hw(where, "strides", strides, keys, 1)
    if min(hw) < 1:
        raise ParameterError(f"{where}: strides must be >= 1, got {strides!r}")
    if isinstance(strides, dict):
        hw = tuple(v if k in strides else None for k, v in zip(keys, hw))
    return hw


class Pooling(Layer):
    """Pools each channel over an R x S window with ``op`` ('max' or 'avg').

    ``fshape``: an int R (R = S), a tuple (R, S), or 'all' (the whole image);
    ``strides``: an int or {'str_h', 'str_w'} -- by default the window size
    (non-overlapping windows, as in neon); ``padding``: an int or {'pad_h', 'pad_w'},
    default 0, and it must be smaller than the window.
    """

    OPS = ("max_pool2d", "avg_pool2d", "global_max_pool", "global_mean_pool")

    def __init__(self, fshape, op="max", strides={}, padding={}, name=None):
        super().__init__(name)
        where = f"{self.name} (Pooling)"
        if op not in _OPS:
            raise ParameterError(f"{where}: op must be 'max' or 'avg', got {op!r}")
        if fshape == "all":
            window = None
        elif _int(fshape):
            window = (int(fshape), int(fshape))
        elif isinstance(fshape, (tuple, list)) and len(fshape) == 2 and all(map(_int, fshape)):
            window = tuple(int(v) for v in fshape)
        else:
            raise ParameterError(f"{where}: fshape must be an int, a tuple (R, S) or 'all', "
                                 f"got {fshape!r}")
        if window is not None and min(window) < 1:
            raise ParameterError(f"{where}: fshape must be >= 1, got {fshape!r}")
        self.op, self.fshape = op, fshape
        self.window = window
        self.strides = _strides(where, strides)
        self.padding = _hw(where, "padding", padding, ("pad_h", "pad_w"), 0)
        self.owns_delta = True
        self._geometry = None

    def __str__(self):
        return (f"Pooling Layer '{self.name}': {self.in_shape} inputs, "
                f"{self.out_shape} outputs")

    def configure(self, in_obj):
        super().configure(in_obj)
        shape = self.in_shape
        if not isinstance(shape, (tuple, list)) or len(shape) != 3:
            raise ShapeError(f"{self.name} (Pooling): needs (C, H, W) samples (give the "
                             f"data an lshape), got in_shape {shape!r}")
        C, H, W = (int(v) for v in shape)
        self.in_shape = (C, H, W)
        kernel = self.window or (H, W)
        stride = tuple(k if s is None else s for k, s in zip(kernel, self.strides))
        kernel, stride, pad, (P, Q) = check_geometry(
            f"{self.name} (Pooling)", (1, C, H, W), kernel, stride, self.padding)
        self._geometry = (kernel, stride, pad)
        self._global = self.window is None and pad == (0, 0)
        self.out_shape = (C, P, Q)
        return self

    def _op(self):
        window_op, global_op = _OPS[self.op]
        return global_op if self._global else window_op

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        be, rb = self.be, self.be.rb
        self.inputs = inputs
        N = inputs.shape[1]
        x = be.to_nc(inputs).reshape((N,) + self.in_shape)             # NCHW
        if self._global:
            y, self._saved = rb.op(self._op() + ".forward")(x)
        else:
            extra = {"count_include_pad": False} if self.op == "avg" else {}
            y, self._saved = rb.op(self._op() + ".forward")(x, *self._geometry, **extra)
        self.outputs = be.from_nc(y.reshape(N, -1))
        return self.outputs

    def bprop(self, error):
        be, rb = self.be, self.be.rb
        N = error.shape[1]
        dy = be.to_nc(error).reshape((N,) + self.out_shape)
        (dx,) = rb.op(self._op() + ".backward")(dy, self._saved)
        self.deltas = be.from_nc(dx.reshape(N, -1))
        return self.deltas
