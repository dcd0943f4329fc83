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

Volumes, as neon's Pooling: samples given a 4-D in_shape (C, D, H, W) are pooled by
``max_pool3d`` / ``avg_pool3d`` with the window (T, R, S): fshape (T, R, S) sets all
three, an int R or a pair (R, S) or 'all' leave T = 1 (neon's default: no pooling
along the depth unless asked). strides / padding take 'str_d' / 'pad_d' in their dicts
(an int sets only the height and width, as in neon); str_d defaults to T, pad_d to 0.
The output is (C, M, P, Q), or (C, P, Q) when M = 1 -- neon's own out_shape rule.
A T > 1 window (or pad_d > 0) on (C, H, W) samples is refused.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neon.layers.layer import Layer
from refnn.ops.pool import check_geometry, check_geometry3d

_OPS = {"max": ("max_pool2d", "global_max_pool", "max_pool3d"),
        "avg": ("avg_pool2d", "global_mean_pool", "avg_pool3d")}


def _int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _dhw(where, what, value, prefix, default):
    """neon's int (sets height and width only) or {'<p>_d', '<p>_h', '<p>_w'} dict
    -> (d, h, w); a missing entry is ``default``."""
    keys = (prefix + "_d", prefix + "_h", prefix + "_w")
    if isinstance(value, dict):
        unknown = set(value) - set(keys)
        if unknown:
            raise ParameterError(f"{where}: {what} has unknown keys {sorted(unknown)}; "
                                 f"expected {list(keys)}")
        vals = tuple(value.get(k, default) for k in keys)
    elif _int(value):
        vals = (default, value, value)
    else:
        raise ParameterError(f"{where}: {what} must be an int or a dict with keys "
                             f"{list(keys)}, got {value!r}")
    if any(v is not None and not _int(v) for v in vals):
        raise ParameterError(f"{where}: {what} values must be ints, got {value!r}")
    return tuple(None if v is None else int(v) for v in vals)


def _strides(where, strides):
    """(str_d, str_h, str_w) from an int or a dict; a missing key is None (= the window)."""
    dhw = _dhw(where, "strides", strides, "str", None)
    if any(v is not None and v < 1 for v in dhw):
        raise ParameterError(f"{where}: strides must be >= 1, got {strides!r}")
    return dhw


class Pooling(Layer):
    """Pools each channel over an R x S (or T x R x S) window with ``op`` ('max' or 'avg').

    ``fshape``: an int R (R = S), a tuple (R, S) or (T, R, S), or 'all' (the whole
    H x W image); ``strides``: an int or {'str_d', 'str_h', 'str_w'} -- by default the
    window size (non-overlapping windows, as in neon); ``padding``: an int or
    {'pad_d', 'pad_h', 'pad_w'}, default 0, and it must be smaller than the window.
    """

    OPS = ("max_pool2d", "avg_pool2d", "global_max_pool", "global_mean_pool",
           "max_pool3d", "avg_pool3d")
    TAKES_NC = True

    def __init__(self, fshape, op="max", strides={}, padding={}, name=None):
        super().__init__(name)
        where = f"{self.name} (Pooling)"
        if op not in _OPS:
            raise ParameterError(f"{where}: op must be 'max' or 'avg', got {op!r}")
        if isinstance(fshape, str) and fshape == "all":
            window = None
        elif _int(fshape):
            window = (1, int(fshape), int(fshape))
        elif isinstance(fshape, (tuple, list)) and len(fshape) in (2, 3) and all(
                map(_int, fshape)):
            window = (1,) * (3 - len(fshape)) + tuple(int(v) for v in fshape)
        else:
            raise ParameterError(f"{where}: fshape must be an int, a tuple (R, S) or "
                                 f"(T, R, S), or 'all', got {fshape!r}")
        if window is not None and min(window) < 1:
            raise ParameterError(f"{where}: fshape must be >= 1, got {fshape!r}")
        self.op, self.fshape = op, fshape
        self.window = window                       # (T, R, S), None for 'all'
        self.strides = _strides(where, strides)    # (str_d, str_h, str_w), None = window
        self.padding = _dhw(where, "padding", padding, "pad", 0)
        self.owns_delta = True
        self._geometry = None

    def __str__(self):
        return (f"Pooling Layer '{self.name}': {self.in_shape} inputs, "
                f"{self.out_shape} outputs")

    def configure(self, in_obj):
        super().configure(in_obj)
        where = f"{self.name} (Pooling)"
        shape = self.in_shape
        if not isinstance(shape, (tuple, list)) or len(shape) not in (3, 4):
            raise ShapeError(f"{where}: needs (C, H, W) or (C, D, H, W) samples (give the "
                             f"data an lshape), got in_shape {shape!r}")
        shape = tuple(int(v) for v in shape)
        self.in_shape = shape
        self._3d = len(shape) == 4
        C, (H, W) = shape[0], shape[-2:]
        window = self.window or (1, H, W)
        stride = tuple(k if s is None else s for k, s in zip(window, self.strides))
        if self._3d:
            kernel, stride, pad, out = check_geometry3d(where, (1,) + shape, window, stride,
                                                        self.padding)
            self.out_shape = (C,) + out if out[0] != 1 else (C,) + out[1:]
        else:
            if window[0] != 1 or self.padding[0] != 0:
                raise ShapeError(f"{where}: a depth window T = {window[0]} or pad_d = "
                                 f"{self.padding[0]} needs (C, D, H, W) samples, got "
                                 f"in_shape {shape}")
            kernel, stride, pad, out = check_geometry(where, (1,) + shape, window[1:],
                                                      stride[1:], self.padding[1:])
            self.out_shape = (C,) + out
        self._geometry = (kernel, stride, pad)
        self._out = (C,) + out
        self._global = self.window is None and not self._3d and pad == (0, 0)
        return self

    def _op(self):
        window_op, global_op, volume_op = _OPS[self.op]
        return global_op if self._global else volume_op if self._3d else window_op

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
        self.outputs = self._to_next(y.reshape(N, -1))
        return self.outputs

    def bprop(self, error):
        be, rb = self.be, self.be.rb
        N = error.shape[1]
        dy = be.to_nc(error).reshape((N,) + self._out)
        (dx,) = rb.op(self._op() + ".backward")(dy, self._saved)
        self.deltas = self._to_prev(dx.reshape(N, -1))
        return self.deltas
