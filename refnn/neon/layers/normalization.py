"""Normalization layers (neon.layers.layer.BatchNorm, LRN) on refnn's ``norm`` ops.

Both go through the neon backend methods, as neon's own layers do:

* BatchNorm: ``be.compound_fprop_bn`` / ``be.compound_bprop_bn`` on the (nfm, -1) view
  of the (features, batch) tensor -- for (C, H, W) samples (convolution outputs) that
  is (C, H*W*N): one mean/variance, gamma and beta per channel; for (nfeatures,)
  samples one per feature. The backend transposes it to the ``batch_norm`` op's
  (H*W*N, C) rows.
* LRN: ``be.fprop_lrn`` / ``be.bprop_lrn`` on a ``be.lrn_layer`` (the ``lrn`` op over
  ``depth`` neighbouring channels).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neon.layers.layer import Layer


def _number(where, name, v, minimum=None, strict=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not np.isfinite(v):
        raise ParameterError(f"{where}: {name} must be a finite number, got {v!r}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise ParameterError(f"{where}: {name} must be {'>' if strict else '>='} {minimum}, "
                             f"got {v!r}")
    return float(v)


class BatchNorm(Layer):
    """Batch normalization (Ioffe & Szegedy 2015): per feature map c,

        y = gamma[c] (x - mean[c]) / sqrt(var[c] + eps) + beta[c]

    Training (``fprop(inference=False)``) uses the minibatch's mean and biased variance
    and updates the running averages gmean = rho gmean + (1 - rho) mean (gvar
    likewise; both start at 0 as in neon); inference uses gmean and gvar. beta (zeros)
    and gamma (ones) are the learned parameters (``get_params``), their gradients the
    sums over the batch (neon's optimizers divide by the batch size).
    """

    OPS = ("batch_norm", "batch_norm_infer")

    def __init__(self, rho=0.9, eps=1e-3, name=None, binary=False):
        super().__init__(name)
        where = f"{self.name} (BatchNorm)"
        self.rho = _number(where, "rho", rho, 0.0)
        if self.rho > 1.0:
            raise ParameterError(f"{where}: rho must be in [0, 1], got {rho!r}")
        self.eps = _number(where, "eps", eps, 0.0)
        if binary:
            raise ParameterError(f"{where}: binary=True (shift-based batch norm) is not "
                                 "provided")
        self.binary = False
        self.relu = False
        self.compute_batch_sum = True
        self.has_params = True
        self.owns_delta = True
        self.allparams = None
        self.states = [[], []]
        self.x = self.xsum = self.xvar = None

    def __str__(self):
        return f"BatchNorm Layer '{self.name}': {self.in_shape} inputs, {self.out_shape} outputs"

    def configure(self, in_obj):
        super().configure(in_obj)
        self.out_shape = self.in_shape
        shape = self.in_shape
        self.nfm = int(shape[0]) if isinstance(shape, (tuple, list)) else int(shape)
        self.bn_shape = (self.nfm, 1)
        return self

    def allocate(self, shared_outputs=None):
        if self.allparams is None:
            self.init_params(self.bn_shape)

    def init_params(self, dim0):
        be = self.be
        self.beta = be.zeros(dim0, name=f"{self.name}_beta")
        self.gamma = be.ones(dim0, name=f"{self.name}_gamma")
        self.params = [self.beta, self.gamma]
        self.grad_params = [be.zeros_like(p) for p in self.params]
        self.grad_beta, self.grad_gamma = self.grad_params
        self.gmean = be.zeros(dim0, name=f"{self.name}_gmean")
        self.gvar = be.zeros(dim0, name=f"{self.name}_gvar")
        self.inf_params = [self.gmean, self.gvar]
        self.allparams = self.params + self.inf_params
        self.xsum = be.zeros(dim0)
        self.xvar = be.zeros(dim0)
        self.plist = [((p, g), s) for p, g, s in zip(self.params, self.grad_params,
                                                     self.states)]

    def get_params(self):
        return self.plist

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        if self.allparams is None:
            self.allocate()
        be = self.be
        self.inputs = inputs
        self.x = inputs.reshape((self.nfm, -1))
        if self.outputs is None or self.outputs.shape != inputs.shape:
            self.outputs = be.empty(inputs.shape)
        self.y = self.outputs.reshape(self.x.shape)
        be.compound_fprop_bn(self.x, self.xsum, self.xvar, self.gmean, self.gvar,
                             self.gamma, self.beta, self.y, self.eps, self.rho,
                             self.compute_batch_sum, 0.0, self.relu, self.binary,
                             inference, self.outputs, self)
        return self.outputs

    def bprop(self, error):
        if self.x is None:
            raise ParameterError(f"{self.name} (BatchNorm): bprop before fprop")
        if error.shape != self.inputs.shape:
            raise ShapeError(f"{self.name} (BatchNorm): error must have shape "
                             f"{self.inputs.shape}, got {error.shape}")
        be = self.be
        if self.deltas is None or self.deltas.shape != error.shape:
            self.deltas = be.empty(error.shape)
        be.compound_bprop_bn(self.deltas.reshape(self.x.shape), self.grad_gamma,
                             self.grad_beta, error.reshape(self.x.shape), self.x, self.xsum,
                             self.xvar, self.gamma, self.eps, self.binary, self)
        return self.deltas

    def get_description(self, get_weights=False, keep_states=False):
        desc = super().get_description(False, keep_states)
        desc["config"].update(rho=self.rho, eps=self.eps)
        if get_weights and self.allparams is not None:
            desc["params"] = {"beta": self.beta.get(), "gamma": self.gamma.get(),
                              "gmean": self.gmean.get(), "gvar": self.gvar.get()}
        return desc


class LRN(Layer):
    """Local response normalization across channels (Krizhevsky et al. 2012, 3.3):

        y = x / (1 + ascale / depth * sum over the ``depth`` channels around c of x^2)
            ^ bpower

    ``depth`` must be odd (the window is centred). As in neon's backends, ``alpha`` and
    ``beta`` are kept but not used by the computation. Samples are (C, H, W) or
    (C, D, H, W); runs the ``lrn`` op through ``be.fprop_lrn``/``be.bprop_lrn``.
    """

    OPS = ("lrn",)

    def __init__(self, depth, alpha=1., beta=0., ascale=1., bpower=1., name=None):
        super().__init__(name)
        where = f"{self.name} (LRN)"
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) \
                or depth < 1 or depth % 2 != 1:
            raise ParameterError(f"{where}: depth must be an odd int >= 1, got {depth!r}")
        self.depth = int(depth)
        self.alpha = _number(where, "alpha", alpha)
        self.beta = _number(where, "beta", beta)
        self.ascale = _number(where, "ascale", ascale, 0.0)
        self.bpower = _number(where, "bpower", bpower)
        self.owns_delta = True
        self.nglayer = None
        self.denom = None

    def __str__(self):
        return f"LRN Layer '{self.name}': {self.in_shape} inputs, {self.out_shape} outputs"

    def configure(self, in_obj):
        super().configure(in_obj)
        shape = self.in_shape
        if not isinstance(shape, (tuple, list)) or len(shape) not in (3, 4):
            raise ShapeError(f"{self.name} (LRN): needs (C, H, W) or (C, D, H, W) samples "
                             f"(give the data an lshape), got in_shape {shape!r}")
        self.in_shape = tuple(int(v) for v in shape)
        self.out_shape = self.in_shape
        return self

    def allocate(self, shared_outputs=None):
        """Buffers follow the batch size of the inputs (allocated at fprop)."""

    def _layer(self, n):
        if self.nglayer is None or self.nglayer.N != n:
            shape = self.in_shape if len(self.in_shape) == 4 else \
                (self.in_shape[0], 1) + self.in_shape[1:]
            C, D, H, W = shape
            self.nglayer = self.be.lrn_layer(self.be.default_dtype, n, C, D, H, W,
                                             J=self.depth)
        return self.nglayer

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        be = self.be
        self.inputs = inputs
        layer = self._layer(inputs.shape[1])
        if self.outputs is None or self.outputs.shape != inputs.shape:
            self.outputs = be.empty(inputs.shape)
            self.denom = be.empty(inputs.shape)
        be.fprop_lrn(layer, inputs, self.outputs, self.denom, alpha=self.alpha,
                     beta=self.beta, ascale=self.ascale, bpower=self.bpower)
        return self.outputs

    def bprop(self, error):
        if self.inputs is None:
            raise ParameterError(f"{self.name} (LRN): bprop before fprop")
        be = self.be
        if self.deltas is None or self.deltas.shape != error.shape:
            self.deltas = be.empty(error.shape)
        be.bprop_lrn(self.nglayer, self.inputs, self.outputs, error, self.deltas,
                     self.denom, self.alpha, self.beta, self.ascale, self.bpower)
        return self.deltas


__all__ = ["BatchNorm", "LRN"]
