"""Normalization layers: BatchNormalization, ObjectNormalization, Lrn (refnn.ops.norm).

Layout at the edge: a blob (BL, BW, LS, H, W, D, C) is, without a copy,

* for a channel-based BatchNormalization and for Lrn: the matrix (BL*BW*LS*H*W*D, C)
  -- every pixel of every object is one row, statistics (or the LRN window) run over
  the C channels (Lrn hands it to the ``lrn`` op as (rows, C, 1, 1));
* for ObjectNormalization and a BatchNormalization with ``channel_based=False``: the
  matrix (BL*BW*LS, H*W*D*C) -- one row per object.

BatchNormalization follows NeoML's CBatchNormalizationLayer (learn mode = a
``learn``/``run_and_backward`` pass of a layer whose learning is enabled):

* learn mode: y = gamma (x - mean) / sqrt(var + 1e-12) + beta with the batch's mean
  and biased variance (the ``batch_norm`` op); at least 8 rows are required, as NeoML
  requires. gamma = 1 and beta = 0 before the first learn. After each learn-mode pass
  the slow averages move (r = slow_convergence_rate, n = rows; they start at 0 and 1)::

      slow_mean = (1 - r) slow_mean + r mean
      slow_var  = (1 - r) slow_var  + r n / (n - 1) var        (unbiased; 0 when n = 1)

* run mode (``run``, or learning disabled): y = final_gamma x + final_beta with
  ``final_params`` = (final_gamma, final_beta) = (gamma / sqrt(slow_var + 1e-12),
  beta - final_gamma slow_mean) (the ``batch_norm_infer`` op with mean 0, var 1, eps 0);
  its backward is dx = final_gamma dy.

As in NeoML (whose CBatchNormalizationLayer sets its base l1/l2 regularisation
multipliers to 0), the solver's l1/l2 regularisation never touches gamma and beta
(``_l1_mult = _l2_mult = 0``, read by the solver). Difference from NeoML: its
recurrent-mode batch size correction does not exist (refnn.neoml has no recurrent mode).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Blob import Blob
from refnn.neoml.Dnn._fully_connected import FullyConnected
from refnn.neoml.Dnn._layer import Layer, rows

#: NeoML's variance epsilon and minimum batch of BatchNormalization
VARIANCE_EPSILON = 1e-12
MIN_BATCH_SIZE = 8


def _number(where, what, value):
    if isinstance(value, bool):
        raise ParameterError(f"{where}: {what} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: {what} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise ParameterError(f"{where}: {what} must be finite, got {value!r}")
    return v


class _ParamLayer(Layer):
    """Helpers shared with FullyConnected: blobs <-> backend arrays, gradient sums."""

    _engine_backend = FullyConnected._engine_backend
    _host_float = FullyConnected._host_float
    _blob_of = FullyConnected._blob_of
    _accumulate = FullyConnected._accumulate

    #: backend arrays kept outside ``_params`` (not trained) but stored with the layer
    _STATE = ()

    def __getstate__(self):
        state = super().__getstate__()
        be = self._dnn.math_engine.backend
        for k in self._STATE:
            if state.get(k) is not None:
                state[k] = be.to_host(state[k])
        return state

    def _attach_params(self, be):
        super()._attach_params(be)
        for k in self._STATE:
            a = getattr(self, k, None)
            if a is not None:
                setattr(self, k, be.asarray(a, dtype=a.dtype))

    def _blob_from_host(self, host, shape):
        """A new blob of ``shape`` holding the NumPy array ``host`` (copied)."""
        engine = self._dnn.math_engine
        data = np.array(host, np.float32).reshape(shape)
        if not engine.is_host:
            data = engine.backend.asarray(data, dtype=np.float32)
        return Blob._new(engine, data)


class BatchNormalization(_ParamLayer):
    """Batch normalization (``BatchNormalization(input_layer, channel_based=True,
    zero_free_term=False, slow_convergence_rate=1.0, name=None)``); see the module
    docstring for the exact learn/run rules."""

    OPS = ("batch_norm", "batch_norm_infer")
    _STATE = ("_slow_mean", "_slow_var", "_final_gamma", "_final_beta")
    #: NeoML's base regularisation multipliers: no l1/l2 decay of gamma/beta
    _l1_mult = 0.0
    _l2_mult = 0.0

    def __init__(self, input_layer, channel_based=True, zero_free_term=False,
                 slow_convergence_rate=1.0, name=None):
        where = f"BatchNormalization {name!r}"
        self._channel_based = bool(channel_based)
        self._zero_free_term = bool(zero_free_term)
        self._rate = self._check_rate(where, slow_convergence_rate)
        self._use_final = False
        self._obj_dims = None          # (H, W, D, C) of the input
        self._slow_mean = self._slow_var = None
        self._final_gamma = self._final_beta = None      # run-mode parameters (P,)
        self._final_dirty = False
        self._saved = None
        super().__init__(input_layer, name)

    @staticmethod
    def _check_rate(where, rate):
        r = _number(where, "slow_convergence_rate", rate)
        if not 0 < r <= 1:
            raise ParameterError(f"{where}: slow_convergence_rate must be in (0, 1], got {rate!r}")
        return r

    # --------------------------------------------------------------- properties
    @property
    def channel_based(self):
        """True: statistics per channel over every pixel of every object."""
        return self._channel_based

    @channel_based.setter
    def channel_based(self, value):
        if bool(value) != self._channel_based:
            self._reset()
        self._channel_based = bool(value)

    @property
    def zero_free_term(self):
        """True: beta is zero and not trained."""
        return self._zero_free_term

    @zero_free_term.setter
    def zero_free_term(self, value):
        self._zero_free_term = bool(value)
        if self._zero_free_term:
            self._params.pop("beta", None)
            self._grads.pop("beta", None)
        self._final_dirty = self._slow_mean is not None

    @property
    def slow_convergence_rate(self):
        """The coefficient r of the exponential moving mean and variance."""
        return self._rate

    @slow_convergence_rate.setter
    def slow_convergence_rate(self, value):
        self._rate = self._check_rate(self._where(), value)

    @property
    def use_final_params_for_init(self):
        """True: the next learn starts from ``final_params`` (NeoML's rule: gamma =
        slow_var = final_gamma^2, beta = slow_mean = final_beta / (1 - final_gamma))."""
        return self._use_final

    @use_final_params_for_init.setter
    def use_final_params_for_init(self, value):
        self._use_final = bool(value)

    @property
    def final_params(self):
        """The run-mode parameters as a blob (1, 2, 1, 1, 1, 1, C) (channel-based) or
        (1, 2, 1, H, W, D, C): object 0 is final_gamma, object 1 final_beta. None
        before the layer has seen an input unless set."""
        if self._obj_dims is None:
            return None
        self._update_final()
        be = self._engine_backend()
        host = np.stack([be.to_host(self._final_gamma), be.to_host(self._final_beta)])
        return self._blob_from_host(host, self._param_blob_shape(2))

    @final_params.setter
    def final_params(self, blob):
        be = self._engine_backend()
        host = self._host_float(blob, "final_params")
        s = tuple(int(v) for v in blob.shape)
        if s[0] * s[1] * s[2] != 2:
            raise ShapeError(f"{self._where()}: final_params must hold 2 objects (final "
                             f"gamma and beta: shape (1, 2, 1, ...)), got blob shape {s}")
        if self._obj_dims is not None and host.size != 2 * self._param_size():
            raise ShapeError(f"{self._where()}: final_params must have shape "
                             f"{self._param_blob_shape(2)}, got {s}")
        if self._obj_dims is None:
            self._obj_dims = s[3:] if not self._channel_based else (1, 1, 1, s[6])
        host = host.reshape(2, -1)
        self._final_gamma = be.asarray(host[0].copy(), dtype=np.float32)
        self._final_beta = be.asarray(host[1].copy(), dtype=np.float32)
        self._final_dirty = False

    def _param_size(self):
        h, w, d, c = self._obj_dims
        return c if self._channel_based else h * w * d * c

    def _param_blob_shape(self, n):
        dims = (1, 1, 1, self._obj_dims[3]) if self._channel_based else self._obj_dims
        return (1, n, 1) + tuple(dims)

    def _reset(self):
        for k in ("gamma", "beta"):
            self._params.pop(k, None)
            self._grads.pop(k, None)
        self._slow_mean = self._slow_var = self._final_gamma = self._final_beta = None
        self._obj_dims = None

    # ------------------------------------------------------------------ passes
    def _matrix(self, x):
        return x.reshape(-1, x.shape[6]) if self._channel_based else rows(x)

    def _check_input(self, be, x):
        self._check_float(x)
        dims = tuple(int(v) for v in x.shape[3:])
        if self._obj_dims is not None:
            want = self._param_size()
            got = dims[3] if self._channel_based else int(np.prod(dims))
            if got != want:
                what = "Channels" if self._channel_based else "Height*Width*Depth*Channels"
                raise ShapeError(f"{self._where()}: the input must have {what} = {want} "
                                 f"(as the layer's parameters), got blob shape "
                                 f"{tuple(x.shape)}")
        else:
            self._obj_dims = dims
        if self._final_gamma is None:
            p = self._param_size()
            self._final_gamma = be.asarray(np.ones(p, np.float32), dtype=np.float32)
            self._final_beta = be.zeros((p,), dtype=np.float32)

    def _init_learning(self, be):
        """gamma = 1, beta = 0 and slow stats 0/1 on the first learn (or NeoML's
        initialisation from final_params)."""
        p = self._param_size()
        if "gamma" not in self._params or self._use_final:
            if self._use_final:
                fg = be.to_host(self._final_gamma).astype(np.float64)
                fb = be.to_host(self._final_beta).astype(np.float64)
                gamma, mean = fg * fg, fb / (1.0 - fg)
                self._slow_var = be.asarray(gamma.astype(np.float32), dtype=np.float32)
                self._slow_mean = be.asarray(mean.astype(np.float32), dtype=np.float32)
                beta = mean
                self._use_final = False
            else:
                gamma, beta = np.ones(p), np.zeros(p)
                self._slow_mean = be.zeros((p,), dtype=np.float32)
                self._slow_var = be.asarray(np.ones(p, np.float32), dtype=np.float32)
            self._params["gamma"] = be.asarray(gamma.astype(np.float32), dtype=np.float32)
            if not self._zero_free_term:
                self._params["beta"] = be.asarray(beta.astype(np.float32), dtype=np.float32)
        if self._zero_free_term:
            self._params.pop("beta", None)

    def _update_final(self):
        """final_gamma = gamma / sqrt(slow_var + eps); final_beta = beta - final_gamma
        slow_mean (0 with zero_free_term) -- elementwise on the backend arrays."""
        if not self._final_dirty:
            return
        gamma = self._params["gamma"]
        fg = gamma * (self._slow_var + np.float32(VARIANCE_EPSILON)) ** np.float32(-0.5)
        if self._zero_free_term:
            fb = fg * np.float32(0)
        else:
            fb = self._params["beta"] - fg * self._slow_mean
        self._final_gamma, self._final_beta = fg, fb
        self._final_dirty = False

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_input(be, x)
        m = self._matrix(x)
        self._learn_mode = bool(training) and self._learning_enabled
        if self._learn_mode:
            if m.shape[0] < MIN_BATCH_SIZE:
                raise ShapeError(f"{self._where()}: learning needs a batch of at least "
                                 f"{MIN_BATCH_SIZE} vectors (rows of the normalized matrix), "
                                 f"got {m.shape[0]} (blob shape {tuple(x.shape)})")
            self._init_learning(be)
            gamma = self._params["gamma"]
            beta = self._params.get("beta")
            if beta is None:
                beta = be.zeros(gamma.shape, dtype=np.float32)
            (y, mean, var), self._saved = be.op("batch_norm.forward")(
                m, gamma, beta, eps=VARIANCE_EPSILON)
            n, r = m.shape[0], self._rate
            norm = n / (n - 1) if n > 1 else 0.0
            self._slow_mean = self._slow_mean * np.float32(1 - r) + mean * np.float32(r)
            self._slow_var = self._slow_var * np.float32(1 - r) + var * np.float32(r * norm)
            self._final_dirty = True
        else:
            self._update_final()
            fg, fb = self._final_gamma, self._final_beta
            p = fg.shape[0]
            zeros = be.zeros((p,), dtype=np.float32)
            ones = be.asarray(np.ones(p, np.float32), dtype=np.float32)
            y, self._saved = be.op("batch_norm_infer.forward")(m, fg, fb, zeros, ones, eps=0.0)
        return [y.reshape(x.shape)]

    def _backward(self, be, dys, need_dx):
        (dy,) = dys
        shape = dy.shape
        dm = self._matrix(dy)
        if self._learn_mode:
            dx, dgamma, dbeta = be.op("batch_norm.backward")((dm, None, None), self._saved)
            self._accumulate("gamma", dgamma)
            if not self._zero_free_term:
                self._accumulate("beta", dbeta)
        else:
            dx = be.op("batch_norm_infer.backward")(dm, self._saved)[0]
        return [dx.reshape(shape)]

    @property
    def _trainable(self):
        return self._learning_enabled


class ObjectNormalization(_ParamLayer):
    """Per-object normalization (``ObjectNormalization(input_layer, epsilon=1e-5,
    name=None)``): y[i][j] = (x[i][j] - mean[i]) / sqrt(var[i] + epsilon) * scale[j] +
    bias[j], mean and (biased) var over the H*W*D*C features of object i (the
    ``layer_norm`` op). scale = 1 and bias = 0 until trained or set."""

    OPS = ("layer_norm",)

    def __init__(self, input_layer, epsilon=1e-5, name=None):
        self._epsilon = self._check_eps(f"ObjectNormalization {name!r}", epsilon)
        self._obj_dims = None
        self._saved = None
        super().__init__(input_layer, name)

    @staticmethod
    def _check_eps(where, eps):
        v = _number(where, "epsilon", eps)
        if v <= 0:
            raise ParameterError(f"{where}: epsilon must be > 0, got {eps!r}")
        return v

    @property
    def epsilon(self):
        """The small value added to the variance."""
        return self._epsilon

    @epsilon.setter
    def epsilon(self, value):
        self._epsilon = self._check_eps(self._where(), value)

    def _vector_blob(self, name):
        a = self._params.get(name)
        if a is None:
            return None
        return self._blob_of(a, (1, 1, 1) + self._obj_dims)

    def _set_vector(self, name, blob):
        be = self._engine_backend()
        if blob is None:
            self._params.pop(name, None)
            self._grads.pop(name, None)
            return
        host = self._host_float(blob, name)
        if self._obj_dims is not None and host.size != int(np.prod(self._obj_dims)):
            raise ShapeError(f"{self._where()}: {name} must have "
                             f"{int(np.prod(self._obj_dims))} elements (the object size), "
                             f"got blob shape {tuple(int(v) for v in blob.shape)}")
        if self._obj_dims is None:
            self._obj_dims = tuple(int(v) for v in blob.shape[3:])
        self._params[name] = be.asarray(host.reshape(-1), dtype=np.float32)
        self._grads.pop(name, None)

    @property
    def scale(self):
        """scale as a blob (1, 1, 1, H, W, D, C); None before the first run unless set."""
        return self._vector_blob("scale")

    @scale.setter
    def scale(self, blob):
        self._set_vector("scale", blob)

    @property
    def bias(self):
        """bias as a blob (1, 1, 1, H, W, D, C); None before the first run unless set."""
        return self._vector_blob("bias")

    @bias.setter
    def bias(self, blob):
        self._set_vector("bias", blob)

    @property
    def _trainable(self):
        return self._learning_enabled

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        dims = tuple(int(v) for v in x.shape[3:])
        size = int(np.prod(dims))
        if self._obj_dims is not None and int(np.prod(self._obj_dims)) != size:
            raise ShapeError(f"{self._where()}: the input must have object size "
                             f"(Height*Width*Depth*Channels) {int(np.prod(self._obj_dims))}, "
                             f"got {size} (blob shape {tuple(x.shape)})")
        if self._obj_dims is None:
            self._obj_dims = dims
        if "scale" not in self._params:
            self._params["scale"] = be.asarray(np.ones(size, np.float32), dtype=np.float32)
        if "bias" not in self._params:
            self._params["bias"] = be.zeros((size,), dtype=np.float32)
        y, self._saved = be.op("layer_norm.forward")(
            rows(x), self._params["scale"], self._params["bias"], eps=self._epsilon)
        return [y.reshape(x.shape)]

    def _backward(self, be, dys, need_dx):
        (dy,) = dys
        dx, dscale, dbias = be.op("layer_norm.backward")(rows(dy), self._saved)
        self._accumulate("scale", dscale)
        self._accumulate("bias", dbias)
        return [dx.reshape(dy.shape)]


class Lrn(Layer):
    """Local response normalization across channels (``Lrn(input_layer, window_size=1,
    bias=1.0, alpha=1e-4, beta=0.75, name=None)``)::

        y[obj][ch] = x[obj][ch] / (bias + alpha / window_size * sqrSum[obj][ch]) ^ beta

    with sqrSum the sum of x^2 over channels ch - (window_size-1)//2 .. ch + window_size//2
    (clipped) at the same pixel -- the ``lrn`` op with size=window_size, k=bias. Needs
    bias > 0 and alpha >= 0 (a positive denominator)."""

    OPS = ("lrn",)

    def __init__(self, input_layer, window_size=1, bias=1.0, alpha=1e-4, beta=0.75,
                 name=None):
        where = f"Lrn {name!r}"
        self._window_size = self._check_window(where, window_size)
        self._bias = _number(where, "bias", bias)
        self._alpha = _number(where, "alpha", alpha)
        self._beta = _number(where, "beta", beta)
        self._check_denominator(where)
        self._saved = None
        super().__init__(input_layer, name)

    @staticmethod
    def _check_window(where, v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(f"{where}: window_size must be an int >= 1, got {v!r}")
        return int(v)

    def _check_denominator(self, where):
        if self._bias <= 0 or self._alpha < 0:
            raise ParameterError(f"{where}: needs bias > 0 and alpha >= 0 (a positive "
                                 f"denominator), got bias={self._bias}, alpha={self._alpha}")

    window_size = property(lambda self: self._window_size, doc="The channel window.")
    bias = property(lambda self: self._bias, doc="The value added to the scaled sum.")
    alpha = property(lambda self: self._alpha, doc="The scale of the sum of squares.")
    beta = property(lambda self: self._beta, doc="The exponent.")

    @window_size.setter
    def window_size(self, v):
        self._window_size = self._check_window(self._where(), v)

    @bias.setter
    def bias(self, v):
        old, self._bias = self._bias, _number(self._where(), "bias", v)
        try:
            self._check_denominator(self._where())
        except ParameterError:
            self._bias = old
            raise

    @alpha.setter
    def alpha(self, v):
        old, self._alpha = self._alpha, _number(self._where(), "alpha", v)
        try:
            self._check_denominator(self._where())
        except ParameterError:
            self._alpha = old
            raise

    @beta.setter
    def beta(self, v):
        self._beta = _number(self._where(), "beta", v)

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_float(x)
        c = x.shape[6]
        y, self._saved = be.op("lrn.forward")(
            x.reshape(-1, c, 1, 1), size=self._window_size, k=self._bias, alpha=self._alpha,
            beta=self._beta)
        return [y.reshape(x.shape)]

    def _backward(self, be, dys, need_dx):
        (dy,) = dys
        (dx,) = be.op("lrn.backward")(dy.reshape(-1, dy.shape[6], 1, 1), self._saved)
        return [dx.reshape(dy.shape)]


def fold_batch_norm(owner, layer, weight_name, n, axis=0):
    """Fold ``layer`` (a BatchNormalization fed by ``owner``) into ``owner``'s weights:
    every output channel f of ``owner`` is scaled by final_gamma[f], and its free term
    becomes final_gamma[f] b[f] + final_beta[f] (b = 0 with a zero free term), so that
    owner-then-batch-norm in run mode equals the folded owner alone. ``weight_name`` is
    the owner's parameter whose axis ``axis`` is the n output channels (0 for
    FullyConnected / Conv / Conv3D / ChannelwiseConv, 1 for the transposed convolutions,
    whose op filters are (C_in, F, ...)). Host arithmetic: a one-off edit of the weights
    at the API edge."""
    where = f"{owner._where()}.apply_batch_normalization"
    if not isinstance(layer, BatchNormalization):
        raise ParameterError(f"{where}: layer must be a neoml.Dnn.BatchNormalization, "
                             f"got {layer!r}")
    if layer._dnn is not owner._dnn or owner._dnn is None:
        raise ParameterError(f"{where}: {layer.name!r} is not in this layer's network")
    if owner.name not in layer.input_names:
        raise ParameterError(f"{where}: {layer.name!r} is not fed by {owner.name!r} "
                             f"(its input is {layer.input_names})")
    w = owner._params.get(weight_name)
    params = layer.final_params
    if w is None or params is None:
        raise ParameterError(f"{where}: run the network first (the {weight_name} and the "
                             f"batch norm's final_params must exist)")
    host = params.asarray(copy=True, keep_dims=False).astype(np.float64).reshape(2, -1)
    if host.shape[1] != n:
        raise ShapeError(f"{where}: the batch norm has {host.shape[1]} parameters per "
                         f"row, this layer {n} output channels (a batch norm to fold must "
                         f"normalize per channel)")
    be = owner._engine_backend()
    fg, fb = host
    wh = be.to_host(w).astype(np.float64)
    shape = [1] * wh.ndim
    shape[axis] = n
    wh = wh * fg.reshape(shape)
    b = owner._params.get("free_term")
    bh = np.zeros(n) if b is None else be.to_host(b).astype(np.float64)
    owner._params[weight_name] = be.asarray(wh.astype(np.float32), dtype=np.float32)
    owner._params["free_term"] = be.asarray((fg * bh + fb).astype(np.float32),
                                            dtype=np.float32)
    owner._zero_free_term = False
    for name in (weight_name, "free_term"):
        owner._grads.pop(name, None)
