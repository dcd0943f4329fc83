"""Activation layers, Softmax and Dropout: elementwise ops of refnn.ops.activation.

An elementwise layer hands its 7-D blob to the op as it is (the ops work on any
shape) and gets the same shape back. Where real NeoML's backward pass is wrong, refnn
computes the true gradient; the class docstrings say so.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Dnn._layer import Layer


def _float(value, where, what):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: {what} must be a number, got {value!r}") from None


class _Elementwise(Layer):
    """One input, one output of the same shape: ``y = f(x; params)``."""

    OP = None

    def __init__(self, input_layer, name=None):
        self._saved = None
        super().__init__(input_layer, name)

    def _op_params(self):
        return {}

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        y, self._saved = be.op(self.OP + ".forward")(x, **self._op_params())
        return [y]

    def _backward(self, be, dys, need_dx):
        (dx,) = be.op(self.OP + ".backward")(dys[0], self._saved)
        return [dx]


def _elementwise(cls_name, op, doc):
    cls = type(cls_name, (_Elementwise,), {"OP": op, "OPS": (op,), "__doc__": doc})
    cls.__module__ = __name__
    return cls


Abs = _elementwise("Abs", "abs", "y = |x| (gradient sign(x), 0 at 0).")
Sigmoid = _elementwise("Sigmoid", "sigmoid", "y = 1 / (1 + exp(-x)).")
Tanh = _elementwise("Tanh", "tanh", "y = tanh(x).")
HSwish = _elementwise("HSwish", "hswish", "y = x * clip(x + 3, 0, 6) / 6.")
Exp = _elementwise("Exp", "exp", "y = exp(x).")
Log = _elementwise("Log", "log", "y = log(x). Gradient dy / x (real NeoML run in place "
                                 "returns dy unchanged: a bug refnn does not copy).")
Erf = _elementwise("Erf", "erf", "y = erf(x). Gradient dy * 2/sqrt(pi) * exp(-x^2) (real "
                                 "NeoML's backward reads stale memory: not copied).")
HardTanh = _elementwise("HardTanh", "hard_tanh", "y = clip(x, -1, 1). Gradient dy * [-1 < x < "
                        "1] everywhere (real NeoML's CPU kernel lets the last size % 4 "
                        "elements through even where x is clipped: not copied).")


class Linear(_Elementwise):
    """y = multiplier * x + free_term."""

    OP = "linear_activation"
    OPS = ("linear_activation",)

    def __init__(self, input_layer, multiplier, free_term, name=None):
        self._multiplier = _float(multiplier, f"Linear {name!r}", "multiplier")
        self._free_term = _float(free_term, f"Linear {name!r}", "free_term")
        super().__init__(input_layer, name)

    multiplier = property(lambda self: self._multiplier)
    free_term = property(lambda self: self._free_term)

    @multiplier.setter
    def multiplier(self, v):
        self._multiplier = _float(v, self._where(), "multiplier")

    @free_term.setter
    def free_term(self, v):
        self._free_term = _float(v, self._where(), "free_term")

    def _op_params(self):
        return {"multiplier": self._multiplier, "free_term": self._free_term}


class _Alpha(_Elementwise):
    def __init__(self, input_layer, alpha, name=None):
        self._alpha = _float(alpha, f"{type(self).__name__} {name!r}", "alpha")
        super().__init__(input_layer, name)

    @property
    def alpha(self):
        return self._alpha

    @alpha.setter
    def alpha(self, v):
        self._alpha = _float(v, self._where(), "alpha")

    def _op_params(self):
        return {"alpha": self._alpha}


class ELU(_Alpha):
    """y = x for x > 0, alpha (exp(x) - 1) otherwise."""

    OP = "elu"
    OPS = ("elu",)


class LeakyReLU(_Alpha):
    """y = x for x > 0, alpha x otherwise."""

    OP = "leaky_relu"
    OPS = ("leaky_relu",)

    def __init__(self, input_layer, alpha=0.0, name=None):
        super().__init__(input_layer, alpha, name)


class ReLU(_Elementwise):
    """y = max(x, 0), clipped from above at ``threshold`` when threshold > 0 (0: no clip)."""

    OP = "relu"
    OPS = ("relu",)

    def __init__(self, input_layer, threshold=0.0, name=None):
        self._threshold = _float(threshold, f"ReLU {name!r}", "threshold")
        super().__init__(input_layer, name)

    @property
    def threshold(self):
        return self._threshold

    @threshold.setter
    def threshold(self, v):
        self._threshold = _float(v, self._where(), "threshold")

    def _op_params(self):
        return {"threshold": self._threshold}


class HardSigmoid(_Elementwise):
    """y = clip(slope x + bias, 0, 1) (slope > 0)."""

    OP = "hard_sigmoid"
    OPS = ("hard_sigmoid",)

    def __init__(self, input_layer, slope, bias, name=None):
        self._slope = _float(slope, f"HardSigmoid {name!r}", "slope")
        self._bias = _float(bias, f"HardSigmoid {name!r}", "bias")
        if not self._slope > 0:
            raise ParameterError(f"HardSigmoid {name!r}: slope must be > 0, got {slope!r}")
        super().__init__(input_layer, name)

    slope = property(lambda self: self._slope, doc="The slope of the linear component.")
    bias = property(lambda self: self._bias, doc="The shift of the linear component.")

    def _op_params(self):
        return {"slope": self._slope, "bias": self._bias}


class Power(_Elementwise):
    """y = x ** exponent. Gradient exponent * x ** (exponent - 1) (real NeoML derives it
    from the output, losing the sign / giving NaN for negative x: not copied)."""

    OP = "power"
    OPS = ("power",)

    def __init__(self, input_layer, exponent, name=None):
        self._exponent = _float(exponent, f"Power {name!r}", "exponent")
        super().__init__(input_layer, name)

    @property
    def exponent(self):
        return self._exponent

    @exponent.setter
    def exponent(self, v):
        self._exponent = _float(v, self._where(), "exponent")

    def _op_params(self):
        return {"exponent": self._exponent}


class GELU(_Elementwise):
    """GELU. NeoML's default is the fast form x * sigmoid(1.702 x)
    (``calculation_mode="sigmoid_approximate"``); ``calculation_mode="precise"`` gives
    0.5 x (1 + erf(x / sqrt 2))."""

    OP = "gelu"
    OPS = ("gelu",)
    MODES = {"sigmoid_approximate": "sigmoid", "precise": "erf"}

    def __init__(self, input_layer, name=None, calculation_mode="sigmoid_approximate"):
        if calculation_mode not in self.MODES:
            raise ParameterError(f"GELU {name!r}: calculation_mode must be one of "
                                 f"{', '.join(self.MODES)}, got {calculation_mode!r}")
        self._mode = calculation_mode
        super().__init__(input_layer, name)

    @property
    def calculation_mode(self):
        return self._mode

    def _op_params(self):
        return {"form": self.MODES[self._mode]}


# ----------------------------------------------------------------------- softmax
class Softmax(Layer):
    """Softmax over the vectors chosen by ``area``:

    * ``"object_size"`` (default): each object, H*W*D*C numbers;
    * ``"channel"`` (NeoML's spelling): each Channels vector;
    * ``"batch_length"``: along BatchLength (the blob is transposed for the op);
    * ``"list_size"``: along ListSize -- needs object size 1, as in NeoML.
    """

    OPS = ("softmax",)
    AREAS = ("object_size", "batch_length", "list_size", "channel")

    def __init__(self, input_layer, area="object_size", name=None):
        if area not in self.AREAS:
            raise ParameterError(f"Softmax {name!r}: area must be one of "
                                 f"{', '.join(self.AREAS)}, got {area!r}")
        self._area = area
        self._saved = None
        super().__init__(input_layer, name)

    @property
    def area(self):
        return self._area

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        s = x.shape
        self._shape = s
        if self._area == "object_size":
            m = x.reshape(s[0] * s[1] * s[2], -1)
        elif self._area == "channel":
            m = x.reshape(-1, s[6])
        elif self._area == "list_size":
            if np.prod(s[3:]) != 1:
                raise ShapeError(f"{self._where()}: area 'list_size' needs object size 1, "
                                 f"got blob shape {tuple(s)}")
            m = x.reshape(s[0] * s[1], s[2])
        else:
            m = be.transpose2d(x.reshape(s[0], -1))
        self._rows_shape = m.shape
        y, self._saved = be.op("softmax.forward")(m)
        if self._area == "batch_length":
            y = be.transpose2d(y)
        return [y.reshape(s)]

    def _backward(self, be, dys, need_dx):
        s = self._shape
        if self._area == "batch_length":
            dy = be.transpose2d(dys[0].reshape(s[0], -1))
            (dx,) = be.op("softmax.backward")(dy, self._saved)
            return [be.transpose2d(dx).reshape(s)]
        (dx,) = be.op("softmax.backward")(dys[0].reshape(self._rows_shape), self._saved)
        return [dx.reshape(s)]


# ----------------------------------------------------------------------- dropout
class Dropout(Layer):
    """Sets a ``rate`` share of the inputs to 0 and scales the rest by 1 / (1 - rate),
    during training only (``run_and_backward``/``learn``); ``run`` passes data through.

    The mask is the counter-based mask of refnn's ``dropout`` op, from a seed drawn from
    the network's random generator for each training pass, so one seed gives the same
    masks on every engine. As in NeoML, all BatchLength steps share one mask;
    ``batchwise=True`` shares one mask across all objects; ``spatial=True`` drops whole
    channels (one mask value per object and channel, shared over H, W, D).

    Batchwise and spatial masks are applied as a product with a diagonal matrix
    ``D = dropout(eye(C))`` through the ``linear`` op (one mask value per column).
    """

    OPS = ("dropout", "linear")

    def __init__(self, input_layer, rate=0.5, spatial=False, batchwise=False, name=None):
        self._rate = self._check_rate(rate, f"Dropout {name!r}")
        self._spatial, self._batchwise = bool(spatial), bool(batchwise)
        self._saved = None
        super().__init__(input_layer, name)

    @staticmethod
    def _check_rate(rate, where):
        rate = _float(rate, where, "rate")
        if not 0 <= rate < 1:
            raise ParameterError(f"{where}: rate must be in [0, 1), got {rate!r}")
        return rate

    @property
    def rate(self):
        return self._rate

    @rate.setter
    def rate(self, v):
        self._rate = self._check_rate(v, self._where())

    dropout_rate = rate
    spatial = property(lambda self: self._spatial, doc="Whole channels are dropped.")
    batchwise = property(lambda self: self._batchwise, doc="One mask for all objects.")

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        if not training or self._rate == 0:
            self._saved = None
            return [x]
        keep = 1.0 - self._rate
        seed = self._dnn.random.seed32()
        s = x.shape
        self._shape = s
        if not self._spatial and not self._batchwise:
            return [self._forward_steps(be, x, keep, seed)]
        self._C = s[6] if self._spatial else int(np.prod(s[3:]))
        eye = be.asarray(np.eye(self._C, dtype=np.float32), dtype=np.float32)
        if self._batchwise:
            return [self._forward_one_mask(be, x, eye, keep, seed)]
        return [self._forward_per_object(be, x, eye, keep, seed)]

    def _forward_one_mask(self, be, x, eye, keep, seed):
        """y = x (rows of C) @ D, D = dropout(eye(C)): one mask for every object."""
        D, _ = be.op("dropout.forward")(eye, keep=keep, seed=seed, scale=1 / keep)
        y, saved = be.op("linear.forward")(x.reshape(-1, self._C), D)
        self._saved = ("one", [saved])
        return y.reshape(x.shape)

    def _forward_per_object(self, be, x, eye, keep, seed):
        """Spatial, one mask per object o: y[t, o] = x[t, o] (H*W*D, C) @ D_o."""
        s = x.shape
        objects = s[1] * s[2]
        dropout, linear = be.op("dropout.forward"), be.op("linear.forward")
        Ds = [dropout(eye, keep=keep, seed=(seed + o) % 2 ** 32, scale=1 / keep)[0]
              for o in range(objects)]
        xr = x.reshape(s[0] * objects, -1, self._C)
        y = be.empty(xr.shape)
        saved = []
        for r in range(s[0] * objects):
            y_r, sv = linear(_row(be, xr, r), Ds[r % objects])
            y[r] = y_r
            saved.append(sv)
        self._saved = ("rows", saved)
        return y.reshape(s)

    def _forward_steps(self, be, x, keep, seed):
        """One mask for every BatchLength step: the op on each step with the same seed."""
        dropout = be.op("dropout.forward")
        steps = x.reshape(x.shape[0], -1)
        if x.shape[0] == 1:
            y, saved = dropout(steps, keep=keep, seed=seed, scale=1 / keep)
            self._saved = ("steps", [saved])
            return y.reshape(x.shape)
        y = be.empty(steps.shape)
        saved = []
        for t in range(x.shape[0]):
            y_t, sv = dropout(_row(be, steps, t), keep=keep, seed=seed, scale=1 / keep)
            y[t] = y_t
            saved.append(sv)
        self._saved = ("steps", saved)
        return y.reshape(x.shape)

    def _backward(self, be, dys, need_dx):
        dy = dys[0]
        if self._saved is None:
            return [dy]
        kind, saved = self._saved
        s = self._shape
        if kind == "steps":
            back = be.op("dropout.backward")
            d = dy.reshape(len(saved), -1)
            if len(saved) == 1:
                return [back(d, saved[0])[0].reshape(s)]
            dx = be.empty(d.shape)
            for t, sv in enumerate(saved):
                dx[t] = back(_row(be, d, t), sv)[0]
            return [dx.reshape(s)]
        back = be.op("linear.backward")
        C = self._C
        if kind == "one":
            return [back(dy.reshape(-1, C), saved[0])[0].reshape(s)]
        d = dy.reshape(len(saved), -1, C)
        dx = be.empty(d.shape)
        for r, sv in enumerate(saved):
            dx[r] = back(_row(be, d, r), sv)[0]
        return [dx.reshape(s)]


def _row(be, a, i):
    """a[i] as a C-contiguous array (a copy on OpenCL, where ops need offset 0)."""
    part = a[i]
    return part if isinstance(part, np.ndarray) else part.copy(queue=be.queue)
