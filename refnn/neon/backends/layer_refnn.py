"""neon's backend layer methods (conv, deconv, pool, LRN, batch norm) on refnn's ops.

neon's backends (NervanaCPU/NervanaGPU) expose convolution, pooling, LRN and batch norm
as methods taking a *layer parameter object* (``be.conv_layer(...)`` etc.) and tensors in
neon's CHWN layout: a (C, D, H, W, N) array flattened to a (C*D*H*W, N) tensor, filters
(C, T, R, S, K) flattened to (C*T*R*S, K). The refnn ops are batch-first (NCHW /
NCDHW, filters (K, C, R, S) / (K, C, T, R, S)), so every method

1. converts with one 2-D transpose each way: (C*D*H*W, N) -> (N, C*D*H*W) = NC(D)HW, and
   the filters (C*T*R*S, K) -> (K, C*T*R*S) = (K, C, (T,) R, S);
2. calls the op through the refnn backend (``be.rb.op("conv2d.forward")``) -- the
   arithmetic is never re-implemented here;
3. writes the result into neon's output tensor with neon's compounding
   (``alpha``/``beta`` accumulation, bias, relu, ...) as a backend op-tree.

Which op runs:

=====================  =================================================================
``fprop_conv``         ``conv2d`` (``conv3d`` when D, T > 1 or pad_d > 0)
``bprop_conv``         ``conv_transpose2d``/``3d`` of E with the same filters (conv's
                       backward-data; neon's Deconvolution layer calls it as its fprop)
``update_conv``        the filter gradient of ``conv2d``/``conv3d`` (forward on I, backward
                       with E)
``fprop_pool``         ``max_pool2d``/``avg_pool2d`` (``*_pool3d`` for 3-D windows); avg
                       divides by the in-bounds pixels of the window as neon's CPU backend
``fprop_lrn``          ``lrn`` with size=J, k=1, alpha=ascale, beta=bpower
``compound_fprop_bn``  ``batch_norm`` (training) / ``batch_norm_infer`` (inference) on the
                       (C, everything) view, transposed to (everything, C)
=====================  =================================================================

State between calls: ``bprop_pool`` has no input tensor in neon's signature (neon keeps
the argmax from fprop), so ``fprop_pool`` keeps the op's saved state on the layer object
and ``bprop_pool`` uses it. Every other method is a pure function of its arguments:
``bprop_lrn`` and ``compound_bprop_bn`` re-run the (cheap) forward on the given input to
obtain the op's saved state.

Not provided (a clear error names the method): pooling across channels (J > 1), 'l2'
pooling, shift-based (binary) batch norm, relu fused into batch norm.
"""
from functools import reduce
from operator import mul

import numpy as np

from refnn.backends.base import BackendError
from refnn.errors import ParameterError, ShapeError
from refnn.neon.backends.backend import Tensor


def _prod(shape):
    return reduce(mul, shape, 1)


def _ints(where, **values):
    for name, v in values.items():
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ParameterError(f"{where}: {name} must be an int, got {v!r}")
    return {k: int(v) for k, v in values.items()}


def _at_least(where, minimum, **values):
    for name, v in values.items():
        if v < minimum:
            raise ParameterError(f"{where}: {name} must be >= {minimum}, got {v}")


def _check_dtype(where, dtype):
    if dtype is not None and np.dtype(dtype) not in (np.float32, np.float64):
        raise ParameterError(f"{where}: dtype must be float32 or float64, got {dtype!r}")


class ConvLayer:
    """Convolution parameter object (neon's ConvLayer): the sizes of one conv layer.

    N images, C input and K output feature maps; input D x H x W, filter T x R x S,
    output M x P x Q with M = output_dim(D, T, pad_d, str_d, dilation=dil_d) etc.
    dimI = (C, D, H, W, N), dimF = (C, T, R, S, K), dimO = (K, M, P, Q, N); the neon
    tensors are their 2-D flattenings dimI2, dimF2, dimO2.
    """

    def __init__(self, lib, dtype, N, C, K, D=1, H=1, W=1, T=1, R=1, S=1,
                 pad_d=0, pad_h=0, pad_w=0, str_d=1, str_h=1, str_w=1,
                 dil_d=1, dil_h=1, dil_w=1, where="conv_layer"):
        v = _ints(where, N=N, C=C, K=K, D=D, H=H, W=W, T=T, R=R, S=S, pad_d=pad_d,
                  pad_h=pad_h, pad_w=pad_w, str_d=str_d, str_h=str_h, str_w=str_w,
                  dil_d=dil_d, dil_h=dil_h, dil_w=dil_w)
        _check_dtype(where, dtype)
        _at_least(where, 1, **{k: v[k] for k in ("N", "C", "K", "D", "H", "W", "T", "R", "S",
                                                 "str_d", "str_h", "str_w", "dil_d",
                                                 "dil_h", "dil_w")})
        _at_least(where, 0, pad_d=v["pad_d"], pad_h=v["pad_h"], pad_w=v["pad_w"])
        self.where = where
        self.dtype = dtype
        self.N, self.C, self.K = v["N"], v["C"], v["K"]
        self.DHW = (v["D"], v["H"], v["W"])
        self.TRS = (v["T"], v["R"], v["S"])
        self.padding = (v["pad_d"], v["pad_h"], v["pad_w"])
        self.strides = (v["str_d"], v["str_h"], v["str_w"])
        self.dilation = (v["dil_d"], v["dil_h"], v["dil_w"])
        self.MPQ = tuple(_dim(lib, where, axis, x, s, p, st, d)
                         for axis, x, s, p, st, d in zip("DHW", self.DHW, self.TRS,
                                                         self.padding, self.strides,
                                                         self.dilation))
        self._dims()

    def _dims(self):
        N, C, K = self.N, self.C, self.K
        self.M, self.P, self.Q = self.MPQ
        self.NCK = (N, C, K)
        self.dimI = (C,) + self.DHW + (N,)
        self.dimF = (C,) + self.TRS + (K,)
        self.dimO = (K,) + self.MPQ + (N,)
        self.dimS = (K, 1)
        self.dimI2 = (_prod(self.dimI[:-1]), N)
        self.dimF2 = (_prod(self.dimF[:-1]), K)
        self.dimO2 = (_prod(self.dimO[:-1]), N)
        self.sizeI, self.sizeF, self.sizeO = (_prod(self.dimI), _prod(self.dimF),
                                              _prod(self.dimO))
        self.nOut = _prod(self.MPQ) * K
        # a depth axis of 1 with no padding -> the 2-D ops on (N, C, H, W)
        self.is3d = not (self.DHW[0] == 1 and self.TRS[0] == 1 and self.padding[0] == 0)

    # -- the op's view of the sizes
    def spatial(self, triple):
        return tuple(triple) if self.is3d else tuple(triple[1:])

    def x_shape(self):
        return (self.N, self.C) + self.spatial(self.DHW)

    def y_shape(self):
        return (self.N, self.K) + self.spatial(self.MPQ)

    def w_shape(self):
        return (self.K, self.C) + self.spatial(self.TRS)

    def geometry(self):
        return (self.spatial(self.strides), self.spatial(self.padding),
                self.spatial(self.dilation))

    def output_padding(self):
        """Per axis, what conv_transpose must add so that its output is D x H x W again."""
        out = []
        for x, s, p, st, d, m in zip(self.DHW, self.TRS, self.padding, self.strides,
                                     self.dilation, self.MPQ):
            out.append(x - ((m - 1) * st - 2 * p + d * (s - 1) + 1))
        return self.spatial(out)

    def __str__(self):
        return (f"{type(self).__name__}: NCK: {self.NCK} DHW: {self.DHW} TRS: {self.TRS} "
                f"MPQ: {self.MPQ}")


class DeconvLayer(ConvLayer):
    """Deconvolution parameter object (neon's DeconvLayer).

    The input has K feature maps of M x P x Q, the output C maps of D x H x W with
    H = (P - 1) str_h - 2 pad_h + dil_h (R - 1) + 1 (likewise D, W): the layer is the
    ConvLayer that maps D x H x W back to M x P x Q, so dimI is the deconv *output* and
    dimO its input (neon keeps those names). neon's Deconvolution layer runs
    ``bprop_conv`` as its fprop, ``fprop_conv`` as its bprop and ``update_conv(layer,
    error, inputs, dW)``.
    """

    def __init__(self, lib, dtype, N, C, K, M=1, P=1, Q=1, T=1, R=1, S=1,
                 pad_d=0, pad_h=0, pad_w=0, str_d=1, str_h=1, str_w=1,
                 dil_d=1, dil_h=1, dil_w=1):
        where = "deconv_layer"
        v = _ints(where, M=M, P=P, Q=Q, T=T, R=R, S=S, pad_d=pad_d, pad_h=pad_h,
                  pad_w=pad_w, str_d=str_d, str_h=str_h, str_w=str_w, dil_d=dil_d,
                  dil_h=dil_h, dil_w=dil_w)
        _at_least(where, 1, **{k: v[k] for k in ("M", "P", "Q", "T", "R", "S", "str_d",
                                                 "str_h", "str_w", "dil_d", "dil_h",
                                                 "dil_w")})
        _at_least(where, 0, pad_d=v["pad_d"], pad_h=v["pad_h"], pad_w=v["pad_w"])
        size = []
        for axis, x, s, p, st, d in zip("DHW", (v["M"], v["P"], v["Q"]), (v["T"], v["R"],
                                        v["S"]), (v["pad_d"], v["pad_h"], v["pad_w"]),
                                        (v["str_d"], v["str_h"], v["str_w"]),
                                        (v["dil_d"], v["dil_h"], v["dil_w"])):
            out = (x - 1) * st - 2 * p + d * (s - 1) + 1
            if out < 1:
                raise ShapeError(f"{where}: the output {axis} = ({x} - 1) * {st} - 2 * {p} "
                                 f"+ {d} * ({s} - 1) + 1 = {out} is < 1")
            size.append(out)
        D, H, W = size
        super().__init__(lib, dtype, N, C, K, D, H, W, T, R, S, pad_d, pad_h, pad_w,
                         str_d, str_h, str_w, dil_d, dil_h, dil_w, where=where)
        self.H, self.W = H, W
        self.nOut = _prod(self.DHW) * self.C


def _dim(lib, where, axis, X, S, padding, strides, dilation=1, pooling=False):
    try:
        return lib.output_dim(X, S, padding, strides, pooling=pooling, dilation=dilation)
    except ShapeError as e:
        raise ShapeError(f"{where}: along {axis}: {e}") from None
    except ParameterError as e:
        raise ParameterError(f"{where}: along {axis}: {e}") from None


class PoolLayer:
    """Pooling parameter object (neon's PoolLayer): op ('max', 'avg'), N images of C maps
    of D x H x W, a J x T x R x S window (J over channels), padding and strides per axis
    (strides default to the window: non-overlapping). dimI = (C, D, H, W, N),
    dimO = (K, M, P, Q, N).
    """

    def __init__(self, lib, dtype, op, N, C, D=1, H=1, W=1, J=1, T=1, R=1, S=1,
                 pad_c=0, pad_d=0, pad_h=0, pad_w=0, str_c=None, str_d=None, str_h=None,
                 str_w=None, where="pool_layer"):
        str_c = J if str_c is None else str_c
        str_d = T if str_d is None else str_d
        str_h = R if str_h is None else str_h
        str_w = S if str_w is None else str_w
        v = _ints(where, N=N, C=C, D=D, H=H, W=W, J=J, T=T, R=R, S=S, pad_c=pad_c,
                  pad_d=pad_d, pad_h=pad_h, pad_w=pad_w, str_c=str_c, str_d=str_d,
                  str_h=str_h, str_w=str_w)
        _check_dtype(where, dtype)
        _at_least(where, 1, **{k: v[k] for k in ("N", "C", "D", "H", "W", "J", "T", "R", "S",
                                                 "str_c", "str_d", "str_h", "str_w")})
        _at_least(where, 0, pad_c=v["pad_c"], pad_d=v["pad_d"], pad_h=v["pad_h"],
                  pad_w=v["pad_w"])
        self.where, self.op, self.dtype = where, op, dtype
        self.N, self.C = v["N"], v["C"]
        self.JTRS = (v["J"], v["T"], v["R"], v["S"])
        self.DHW = (v["D"], v["H"], v["W"])
        self.padding = (v["pad_c"], v["pad_d"], v["pad_h"], v["pad_w"])
        self.strides = (v["str_c"], v["str_d"], v["str_h"], v["str_w"])
        self.K = _dim(lib, where, "C", self.C, v["J"], v["pad_c"], v["str_c"], pooling=True)
        self.MPQ = tuple(_dim(lib, where, axis, x, s, p, st, pooling=True)
                         for axis, x, s, p, st in zip("DHW", self.DHW, self.JTRS[1:],
                                                      self.padding[1:], self.strides[1:]))
        self.M, self.P, self.Q = self.MPQ
        self.dimI = (self.C,) + self.DHW + (self.N,)
        self.dimO = (self.K,) + self.MPQ + (self.N,)
        self.dimF2 = None
        self.dimI2 = (_prod(self.dimI[:-1]), self.N)
        self.dimO2 = (_prod(self.dimO[:-1]), self.N)
        self.sizeI, self.sizeO = _prod(self.dimI), _prod(self.dimO)
        self.nOut = _prod(self.MPQ) * self.K
        self.is3d = not (self.DHW[0] == 1 and self.JTRS[1] == 1 and self.padding[1] == 0)
        self.saved = None      # the pool op's saved state of the last fprop_pool

    def spatial(self, values):
        return tuple(values) if self.is3d else tuple(values[1:])

    def __str__(self):
        return (f"PoolLayer {self.op!r}: NC: {(self.N, self.C)} DHW: {self.DHW} "
                f"JTRS: {self.JTRS} MPQ: {self.MPQ}")


class LayerOpsMixin:
    """conv/deconv/pool/lrn/batch-norm methods of a neon backend (mixed into NervanaRefnn)."""

    # ---------------------------------------------------------------- helpers
    def output_dim(self, X, S, padding, strides, pooling=False, dilation=1):
        """The output size along one axis: (X - S' + 2 padding) // strides + 1 with
        S' = dilation (S - 1) + 1 the dilated window; pooling windows need padding < S'."""
        v = _ints("output_dim", X=X, S=S, padding=padding, strides=strides,
                  dilation=dilation)
        _at_least("output_dim", 1, X=v["X"], S=v["S"], strides=v["strides"],
                  dilation=v["dilation"])
        _at_least("output_dim", 0, padding=v["padding"])
        span = v["dilation"] * (v["S"] - 1) + 1
        if pooling and v["padding"] >= span:
            raise ParameterError(f"output_dim: padding {v['padding']} must be smaller than "
                                 f"the pooling window {span}")
        size = (v["X"] - span + 2 * v["padding"]) // v["strides"] + 1
        if size < 1:
            raise ShapeError(f"output_dim: the window spans {span} (S={v['S']}, dilation="
                             f"{v['dilation']}) but the padded input has only "
                             f"{v['X'] + 2 * v['padding']} (X={v['X']}, padding="
                             f"{v['padding']})")
        return size

    def _layer_op(self, method, name):
        try:
            return self.rb.op(name)
        except BackendError as e:
            raise BackendError(f"{method}: {e}") from None

    def _tensor(self, method, what, t, shape):
        """t must be a Tensor holding prod(shape) values; returns it viewed as ``shape``."""
        if not isinstance(t, Tensor):
            raise ParameterError(f"{method}: {what} must be a Tensor, got {type(t).__name__}")
        if t.size != _prod(shape):
            raise ShapeError(f"{method}: {what} must have shape {tuple(shape)} (or hold "
                             f"{_prod(shape)} values), got {t.shape}")
        return t if t.shape == tuple(shape) else t.reshape(shape)

    def _nc(self, t, shape):
        """neon (features, N) Tensor -> contiguous batch-first array reshaped to ``shape``."""
        return self._reshape(self.to_nc(t), shape)

    def _filters(self, F, layer):
        """neon filters (C*T*R*S, K) -> the op's (K, C, (T,) R, S) array."""
        return self._reshape(self.rb.transpose2d(self._contiguous(F)), layer.w_shape())

    def _from_op(self, a, features):
        """An op's (N, ...) result -> neon (features, N) Tensor."""
        return self.from_nc(self._reshape(a, (a.shape[0], features)))

    def _write(self, out, value, X=None, alpha=1.0, beta=0.0):
        """out = alpha * value + beta * X (X defaults to out), as one op-tree."""
        tree = value if alpha == 1.0 else value * alpha
        if beta:
            tree = tree + (out if X is None else X) * beta
        out[:] = tree

    def _compound(self, method, O, X, bias, bsum, relu, brelu, slope, nfm):
        """neon's compounding after a conv: + bias (per feature map), relu or brelu
        (with ``slope``), bsum = the per-map sum of the result."""
        rows = O.reshape((nfm, -1))
        if bias is not None:
            bias = self._tensor(method, "bias", bias, (nfm, 1))
            rows[:] = rows + bias
        if relu and brelu:
            raise ParameterError(f"{method}: relu and brelu are exclusive")
        if relu:
            rows[:] = self.maximum(rows, 0.0) + self.minimum(rows, 0.0) * slope \
                if slope else self.maximum(rows, 0.0)
        elif brelu:
            if X is None:
                raise ParameterError(f"{method}: brelu needs X (the forward activations)")
            Xr = self._tensor(method, "X", X, O.shape).reshape((nfm, -1))
            rows[:] = rows * ((Xr > 0.0) + (Xr < 0.0) * slope) if slope else rows * (Xr > 0.0)
        if bsum is not None:
            bsum = self._tensor(method, "bsum", bsum, (nfm, 1))
            bsum[:] = self.sum(rows, axis=1)

    # ------------------------------------------------------------ convolution
    def conv_layer(self, dtype, N, C, K, D=1, H=1, W=1, T=1, R=1, S=1, pad_d=0, pad_h=0,
                   pad_w=0, str_d=1, str_h=1, str_w=1, dil_d=1, dil_h=1, dil_w=1):
        """A ConvLayer parameter object: N images of C maps D x H x W, K filters T x R x S;
        output dims in ``.MPQ``/``.dimO``. Runs ``conv2d`` (``conv3d`` if D, T > 1)."""
        return ConvLayer(self, dtype, N, C, K, D, H, W, T, R, S, pad_d, pad_h, pad_w,
                         str_d, str_h, str_w, dil_d, dil_h, dil_w)

    def deconv_layer(self, dtype, N, C, K, M=1, P=1, Q=1, T=1, R=1, S=1, pad_d=0, pad_h=0,
                     pad_w=0, str_d=1, str_h=1, str_w=1, dil_d=1, dil_h=1, dil_w=1):
        """A DeconvLayer parameter object: K input maps M x P x Q -> C output maps
        D x H x W, H = (P - 1) str_h - 2 pad_h + dil_h (R - 1) + 1."""
        return DeconvLayer(self, dtype, N, C, K, M, P, Q, T, R, S, pad_d, pad_h, pad_w,
                           str_d, str_h, str_w, dil_d, dil_h, dil_w)

    def _check_conv_layer(self, method, layer):
        if not isinstance(layer, ConvLayer):
            raise ParameterError(f"{method}: layer must come from be.conv_layer or "
                                 f"be.deconv_layer, got {type(layer).__name__}")

    def fprop_conv(self, layer, I, F, O, X=None, bias=None, bsum=None, alpha=1.0,
                   beta=0.0, relu=False, brelu=False, slope=0.0):
        """O = alpha * conv(I, F) + beta * X (X defaults to O), then + bias (K, 1),
        relu / brelu with ``slope``, and bsum = sum of O per filter.

        I (C*D*H*W, N), F (C*T*R*S, K), O (K*M*P*Q, N) -- ``conv2d``/``conv3d``.
        """
        m = "fprop_conv"
        self._check_conv_layer(m, layer)
        I = self._tensor(m, "I", I, layer.dimI2)
        F = self._tensor(m, "F", F, layer.dimF2)
        O = self._tensor(m, "O", O, layer.dimO2)
        op = "conv3d" if layer.is3d else "conv2d"
        y, _ = self._layer_op(m, op + ".forward")(
            self._nc(I, layer.x_shape()), self._filters(F, layer), *layer.geometry())
        self._write(O, self._from_op(y, layer.dimO2[0]), X, alpha, beta)
        self._compound(m, O, X, bias, bsum, relu, brelu, slope, layer.K)

    def bprop_conv(self, layer, F, E, grad_I, X=None, bias=None, bsum=None, alpha=1.0,
                   beta=0.0, relu=False, brelu=False, slope=0.0):
        """grad_I = alpha * conv^T(E, F) + beta * X (X defaults to grad_I), then the same
        compounding as fprop_conv per input map (bias/bsum (C, 1)).

        conv^T is the gradient of the convolution w.r.t. its input: ``conv_transpose2d``
        (``3d``) of E (K*M*P*Q, N) with the filters F (C*T*R*S, K) -> (C*D*H*W, N).
        """
        m = "bprop_conv"
        self._check_conv_layer(m, layer)
        F = self._tensor(m, "F", F, layer.dimF2)
        E = self._tensor(m, "E", E, layer.dimO2)
        grad_I = self._tensor(m, "grad_I", grad_I, layer.dimI2)
        op = "conv_transpose3d" if layer.is3d else "conv_transpose2d"
        dx, _ = self._layer_op(m, op + ".forward")(
            self._nc(E, layer.y_shape()), self._filters(F, layer), *layer.geometry(),
            layer.output_padding())
        self._write(grad_I, self._from_op(dx, layer.dimI2[0]), X, alpha, beta)
        self._compound(m, grad_I, X, bias, bsum, relu, brelu, slope, layer.C)

    def update_conv(self, layer, I, E, U, alpha=1.0, beta=0.0, grad_bias=None):
        """U = alpha * dF + beta * U: dF (C*T*R*S, K) the filter gradient of the
        convolution of I (C*D*H*W, N) given the output errors E (K*M*P*Q, N);
        grad_bias (K, 1) = the sum of E per filter."""
        m = "update_conv"
        self._check_conv_layer(m, layer)
        I = self._tensor(m, "I", I, layer.dimI2)
        E = self._tensor(m, "E", E, layer.dimO2)
        U = self._tensor(m, "U", U, layer.dimF2)
        op = "conv3d" if layer.is3d else "conv2d"
        # dF does not depend on the filters: the forward only records I's columns
        w = self.rb.zeros(layer.w_shape())
        extra = {} if layer.is3d else {"need_dx": False}      # conv2d skips col2im
        _, saved = self._layer_op(m, op + ".forward")(
            self._nc(I, layer.x_shape()), w, *layer.geometry(), **extra)
        _, dw = self._layer_op(m, op + ".backward")(self._nc(E, layer.y_shape()), saved)
        dF = Tensor(self, self.rb.transpose2d(self._reshape(dw, (layer.K, -1))))
        self._write(U, dF, None, alpha, beta)
        if grad_bias is not None:
            grad_bias = self._tensor(m, "grad_bias", grad_bias, (layer.K, 1))
            grad_bias[:] = self.sum(E.reshape((layer.K, -1)), axis=1)

    # ---------------------------------------------------------------- pooling
    def pool_layer(self, dtype, op, N, C, D=1, H=1, W=1, J=1, T=1, R=1, S=1, pad_c=0,
                   pad_d=0, pad_h=0, pad_w=0, str_c=None, str_d=None, str_h=None,
                   str_w=None):
        """A PoolLayer parameter object; op 'max' or 'avg' over a T x R x S window of
        each map (strides default to the window). Pooling across maps (J > 1) and 'l2'
        have no refnn op."""
        where = "pool_layer"
        if op not in ("max", "avg"):
            raise ParameterError(f"{where}: op must be 'max' or 'avg' (refnn has no "
                                 f"{op!r} pooling op), got {op!r}")
        if J != 1 or pad_c != 0 or str_c not in (None, 1):
            raise ParameterError(f"{where}: pooling across feature maps (J={J}, pad_c="
                                 f"{pad_c}, str_c={str_c}) has no refnn op; need J=1, "
                                 "pad_c=0")
        return PoolLayer(self, dtype, op, N, C, D, H, W, J, T, R, S, pad_c, pad_d, pad_h,
                         pad_w, str_c, str_d, str_h, str_w)

    def _check_pool_layer(self, method, layer):
        if not isinstance(layer, PoolLayer) or layer.op not in ("max", "avg"):
            raise ParameterError(f"{method}: layer must come from be.pool_layer, got "
                                 f"{layer!r}")

    def fprop_pool(self, layer, I, O, argmax=None, beta=0.0):
        """O = pool(I) + beta * O; I (C*D*H*W, N), O (C*M*P*Q, N).

        'max' runs ``max_pool2d``/``3d``, 'avg' ``avg_pool2d``/``3d`` with
        count_include_pad=False (neon's CPU backend averages the in-bounds part of the
        window). The op's argmax record stays in its saved state on ``layer`` (each
        refnn backend keeps it in its own layout) and ``bprop_pool`` reads it there;
        ``argmax`` is accepted for neon's signature and left untouched.
        """
        m = "fprop_pool"
        self._check_pool_layer(m, layer)
        I = self._tensor(m, "I", I, layer.dimI2)
        O = self._tensor(m, "O", O, layer.dimO2)
        name = f"{layer.op}_pool{'3d' if layer.is3d else '2d'}"
        extra = {"count_include_pad": False} if layer.op == "avg" else {}
        x = self._nc(I, (layer.N, layer.C) + layer.spatial(layer.DHW))
        y, layer.saved = self._layer_op(m, name + ".forward")(
            x, layer.spatial(layer.JTRS[1:]), layer.spatial(layer.strides[1:]),
            layer.spatial(layer.padding[1:]), **extra)
        layer.saved_op = name
        self._write(O, self._from_op(y, layer.dimO2[0]), None, 1.0, beta)

    def bprop_pool(self, layer, I, O, argmax=None, alpha=1.0, beta=0.0):
        """O = alpha * dpool(I) + beta * O: I the errors (C*M*P*Q, N), O the deltas
        (C*D*H*W, N), through the op's backward with the state of the last fprop_pool
        on this layer."""
        m = "bprop_pool"
        self._check_pool_layer(m, layer)
        I = self._tensor(m, "I", I, layer.dimO2)
        O = self._tensor(m, "O", O, layer.dimI2)
        if layer.saved is None:
            raise ParameterError(f"{m}: run fprop_pool on this layer first (bprop_pool "
                                 "uses the argmax/window state it records)")
        dy = self._nc(I, (layer.N, layer.K) + layer.spatial(layer.MPQ))
        (dx,) = self._layer_op(m, layer.saved_op + ".backward")(dy, layer.saved)
        self._write(O, self._from_op(dx, layer.dimI2[0]), None, alpha, beta)

    # -------------------------------------------------------------------- LRN
    def lrn_layer(self, dtype, N, C, D=1, H=1, W=1, J=1):
        """A PoolLayer for local response normalization over J (odd) neighbouring maps."""
        J = _ints("lrn_layer", J=J)["J"]
        if J < 1 or J % 2 != 1:
            raise ParameterError(f"lrn_layer: the window J must be odd and >= 1 (as in "
                                 f"neon), got {J}")
        return PoolLayer(self, dtype, "lrn", N, C, D, H, W, J, 1, 1, 1, J // 2, 0, 0, 0,
                         1, 1, 1, 1, where="lrn_layer")

    def _check_lrn_layer(self, method, layer):
        if not isinstance(layer, PoolLayer) or layer.op != "lrn":
            raise ParameterError(f"{method}: layer must come from be.lrn_layer, got "
                                 f"{layer!r}")

    def _lrn(self, method, layer, I, ascale, bpower):
        """Run ``lrn.forward`` on I viewed as (N, C, D*H, W): the window only spans maps."""
        D, H, W = layer.DHW
        x = self._nc(I, (layer.N, layer.C, D * H, W))
        return self._layer_op(method, "lrn.forward")(x, size=layer.JTRS[0], k=1.0,
                                                     alpha=float(ascale),
                                                     beta=float(bpower))

    def fprop_lrn(self, layer, I, O, denom, alpha=None, beta=None, ascale=1, bpower=1):
        """O = I * (1 + ascale / J * sum over the J maps around c of I^2) ^ -bpower
        (``lrn`` with size=J, k=1, alpha=ascale, beta=bpower). neon's backends ignore
        ``alpha`` and ``beta`` here, so does refnn; the denominator lives in the op's
        saved state, ``denom`` is accepted for neon's signature and left untouched."""
        m = "fprop_lrn"
        self._check_lrn_layer(m, layer)
        I = self._tensor(m, "I", I, layer.dimI2)
        O = self._tensor(m, "O", O, layer.dimO2)
        y, _ = self._lrn(m, layer, I, ascale, bpower)
        O[:] = self._from_op(y, layer.dimO2[0])

    def bprop_lrn(self, layer, I, O, E, delta, denom, alpha=None, beta=None, ascale=1,
                  bpower=1):
        """delta = the gradient of fprop_lrn w.r.t. I given the errors E (``lrn.backward``
        after re-running its forward on I)."""
        m = "bprop_lrn"
        self._check_lrn_layer(m, layer)
        I = self._tensor(m, "I", I, layer.dimI2)
        E = self._tensor(m, "E", E, layer.dimO2)
        delta = self._tensor(m, "delta", delta, layer.dimI2)
        _, saved = self._lrn(m, layer, I, ascale, bpower)
        D, H, W = layer.DHW
        (dx,) = self._layer_op(m, "lrn.backward")(
            self._nc(E, (layer.N, layer.K, D * H, W)), saved)
        delta[:] = self._from_op(dx, layer.dimI2[0])

    # ------------------------------------------------------------- batch norm
    def _bn_vec(self, method, name, t, C):
        return self._tensor(method, name, t, (C, 1)).reshape((C,))._data

    def compound_fprop_bn(self, x, xsum, xvar, gmean, gvar, gamma, beta, y, eps, rho,
                          compute_batch_sum=True, accumbeta=0.0, relu=False, binary=False,
                          inference=False, outputs=None, layer=None):
        """Batch normalization of x (C, M): statistics per row over its M columns.

        Training: ``batch_norm`` on x^T gives y, the batch mean (stored in ``xsum`` as
        neon does) and biased variance (``xvar``); gmean = rho gmean + (1 - rho) mean,
        gvar likewise; y = gamma (x - mean) / sqrt(var + eps) + beta + accumbeta * y.
        Inference: ``batch_norm_infer`` with gmean/gvar. ``compute_batch_sum`` is
        accepted for neon's signature (the op always computes the statistics itself).
        """
        m = "compound_fprop_bn"
        if binary:
            raise ParameterError(f"{m}: binary (shift-based) batch norm is not provided")
        if relu:
            raise ParameterError(f"{m}: relu fused into batch norm is not provided; add an "
                                 "Activation layer")
        if not isinstance(x, Tensor) or len(x.shape) != 2:
            raise ShapeError(f"{m}: x must be a (C, M) Tensor, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        C = x.shape[0]
        y = self._tensor(m, "y", y, x.shape)
        g = self._bn_vec(m, "gamma", gamma, C)
        b = self._bn_vec(m, "beta", beta, C)
        xnc = self.to_nc(x)
        if inference:
            out, _ = self._layer_op(m, "batch_norm_infer.forward")(
                xnc, g, b, self._bn_vec(m, "gmean", gmean, C),
                self._bn_vec(m, "gvar", gvar, C), eps)
        else:
            xsum = self._tensor(m, "xsum", xsum, (C, 1))
            xvar = self._tensor(m, "xvar", xvar, (C, 1))
            gmean = self._tensor(m, "gmean", gmean, (C, 1))
            gvar = self._tensor(m, "gvar", gvar, (C, 1))
            (out, mean, var), _ = self._layer_op(m, "batch_norm.forward")(xnc, g, b, eps)
            xsum[:] = Tensor(self, self._reshape(mean, (C, 1)))
            xvar[:] = Tensor(self, self._reshape(var, (C, 1)))
            gmean[:] = gmean * rho + xsum * (1.0 - rho)
            gvar[:] = gvar * rho + xvar * (1.0 - rho)
        self._write(y, self.from_nc(out), None, 1.0, accumbeta)

    def compound_bprop_bn(self, delta_out, grad_gamma, grad_beta, delta_in, x, xsum, xvar,
                          gamma, eps, binary=False, layer=None):
        """The gradients of training-mode batch norm (``batch_norm.backward``):
        grad_beta = sum_m delta_in, grad_gamma = sum_m delta_in xhat and delta_out =
        gamma / sqrt(var + eps) (delta_in - (xhat grad_gamma + grad_beta) / M).
        The op's state comes from re-running ``batch_norm.forward`` on x, whose
        statistics are the batch's ``xsum`` (mean) and ``xvar`` of compound_fprop_bn."""
        m = "compound_bprop_bn"
        if binary:
            raise ParameterError(f"{m}: binary (shift-based) batch norm is not provided")
        if not isinstance(x, Tensor) or len(x.shape) != 2:
            raise ShapeError(f"{m}: x must be a (C, M) Tensor, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        C = x.shape[0]
        delta_in = self._tensor(m, "delta_in", delta_in, x.shape)
        delta_out = self._tensor(m, "delta_out", delta_out, x.shape)
        grad_gamma = self._tensor(m, "grad_gamma", grad_gamma, (C, 1))
        grad_beta = self._tensor(m, "grad_beta", grad_beta, (C, 1))
        g = self._bn_vec(m, "gamma", gamma, C)
        _, saved = self._layer_op(m, "batch_norm.forward")(
            self.to_nc(x), g, self.rb.zeros((C,)), eps)
        dx, dgamma, dbeta = self._layer_op(m, "batch_norm.backward")(
            (self.to_nc(delta_in), None, None), saved)
        grad_gamma[:] = Tensor(self, self._reshape(dgamma, (C, 1)))
        grad_beta[:] = Tensor(self, self._reshape(dbeta, (C, 1)))
        delta_out[:] = self.from_nc(dx)


__all__ = ["ConvLayer", "DeconvLayer", "PoolLayer", "LayerOpsMixin"]
