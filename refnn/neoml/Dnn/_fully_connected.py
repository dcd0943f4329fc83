"""FullyConnected: y = x W^T + b on every object of every input.

Layout at the edge: an input blob (BL, BW, LS, H, W, D, C) is the ops' batch-first
matrix (BL*BW*LS, H*W*D*C) without a copy; the output is (BL, BW, LS, 1, 1, 1, n_out).
Weights are kept as the op's W (n_out, H*W*D*C) and b (n_out,); the ``weights`` and
``free_term`` properties show them in NeoML's blob shapes (1, n_out, 1, H, W, D, C)
and (n_out, 1, 1, 1, 1, 1, 1).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Blob import Blob
from refnn.neoml.Dnn._layer import Layer, check_object_size, rows


class FullyConnected(Layer):
    """The fully connected layer (``FullyConnected(input_layers, element_count,
    is_zero_free_term=False, name=None)``): one output per input, shared weights.

    Weights are empty (``None``) until the first run, when the network's initializer
    fills them (free term: zeros); setting ``weights``/``free_term`` before that is
    allowed and kept. Every input must have the object size of the weights.
    """

    OPS = ("linear", "bias")
    N_INPUTS = (1, None)
    N_OUTPUTS = None

    def __init__(self, input_layers, element_count, is_zero_free_term=False, name=None):
        if isinstance(element_count, bool) or not isinstance(element_count, (int, np.integer)) \
                or element_count < 1:
            raise ParameterError(f"FullyConnected {name!r}: element_count must be an int > 0, "
                                 f"got {element_count!r}")
        self._element_count = int(element_count)
        self._zero_free_term = bool(is_zero_free_term)
        self._in_dims = None          # (H, W, D, C) of the input objects
        self._saved = []
        super().__init__(input_layers, name)

    # --------------------------------------------------------------- properties
    @property
    def element_count(self):
        """The length of each output vector."""
        return self._element_count

    @property
    def zero_free_term(self):
        """True: the free term is zero and not trained."""
        return self._zero_free_term

    @zero_free_term.setter
    def zero_free_term(self, value):
        self._zero_free_term = bool(value)

    @property
    def weights(self):
        """A copy of the weights as a blob (1, n_out, 1, H, W, D, C); None before the
        first run unless set."""
        W = self._params.get("weights")
        if W is None:
            return None
        shape = (1, self._element_count, 1) + self._in_dims
        return self._blob_of(W, shape)

    @weights.setter
    def weights(self, blob):
        be = self._engine_backend()
        if blob is None:
            self._params.pop("weights", None)
            self._grads.pop("weights", None)
            return
        host = self._host_float(blob, "weights")
        if blob.object_count != self._element_count:
            raise ShapeError(f"{self._where()}: weights must hold element_count="
                             f"{self._element_count} objects (shape (1, {self._element_count}, "
                             f"1, H, W, D, C)), got blob shape "
                             f"{tuple(int(v) for v in blob.shape)}")
        if self._in_dims is not None and "weights" in self._params \
                and tuple(int(s) for s in blob.shape[3:]) != self._in_dims:
            raise ShapeError(f"{self._where()}: weights must have object shape "
                             f"{self._in_dims} (that of the input), got {tuple(blob.shape[3:])}")
        self._in_dims = tuple(int(s) for s in blob.shape[3:])
        self._params["weights"] = be.asarray(host.reshape(self._element_count, -1),
                                             dtype=np.float32)
        self._grads.pop("weights", None)

    @property
    def free_term(self):
        """A copy of the free term as a blob (n_out, 1, 1, 1, 1, 1, 1); None before the
        first run unless set."""
        return self._free_term_blob(self._element_count)

    @free_term.setter
    def free_term(self, blob):
        self._set_free_term(blob, self._element_count)

    def _free_term_blob(self, n):
        """The free term as an (n, 1, 1, 1, 1, 1, 1) blob copy, or None (shared with Conv)."""
        b = self._params.get("free_term")
        return None if b is None else self._blob_of(b, (n, 1, 1, 1, 1, 1, 1))

    def _set_free_term(self, blob, n):
        """Set (or with None, drop) the n-element free term; its gradient is discarded."""
        be = self._engine_backend()
        self._grads.pop("free_term", None)
        if blob is None:
            self._params.pop("free_term", None)
            return
        host = self._host_float(blob, "free_term")
        if host.size != n:
            raise ShapeError(f"{self._where()}: free_term must have {n} "
                             f"elements, got blob shape {tuple(int(v) for v in blob.shape)}")
        self._params["free_term"] = be.asarray(host.reshape(-1), dtype=np.float32)

    def _engine_backend(self):
        if self._dnn is None:
            raise ParameterError(f"{self._where()}: the layer is in no network")
        return self._dnn.math_engine.backend

    def _host_float(self, blob, what):
        if not isinstance(blob, Blob):
            got = (f"{type(blob).__name__} of shape {tuple(blob.shape)}"
                   if isinstance(blob, np.ndarray) else repr(blob))
            raise ParameterError(f"{self._where()}: {what} must be a neoml Blob, got {got}")
        if blob.dtype != "float32":
            self._check_float(blob.data, what)
        return blob.asarray(copy=True, keep_dims=True)

    def _blob_of(self, a, shape):
        engine = self._dnn.math_engine
        be = engine.backend
        copy = be.to_host(a).copy() if engine.is_host else a.copy(queue=be.queue)
        return Blob._new(engine, copy.reshape(shape))

    def apply_batch_normalization(self, layer):
        """Fold the trained BatchNormalization ``layer`` (fed by this layer) into the
        weights and free term: W' = diag(final_gamma) W, b' = final_gamma b + final_beta
        (the free term is trained from then on). Delete the batch norm from the network
        afterwards and connect its consumers to this layer, as in NeoML."""
        from refnn.neoml.Dnn._normalization import fold_batch_norm
        fold_batch_norm(self, layer, "weights", self._element_count)

    @property
    def _trainable(self):
        return self._learning_enabled

    # ------------------------------------------------------------------ passes
    def _init_params(self, be, x):
        dims = tuple(int(s) for s in x.shape[3:])
        fan_in = int(np.prod(dims))
        if "weights" not in self._params:
            W = self._dnn.initializer._draw((self._element_count, fan_in), fan_in)
            self._params["weights"] = be.asarray(W.astype(np.float32), dtype=np.float32)
            self._in_dims = dims
        if not self._zero_free_term and "free_term" not in self._params:
            self._params["free_term"] = be.zeros((self._element_count,), dtype=np.float32)

    def _forward(self, be, xs, training):
        for i, x in enumerate(xs):
            self._check_float(x, f"input {i}")
        self._init_params(be, xs[0])
        W = self._params["weights"]
        for i, x in enumerate(xs):
            check_object_size(self._where(), f"input {i}", x, W.shape[1])
        self._saved, ys = [], []
        for x in xs:
            y, saved_linear = be.op("linear.forward")(rows(x), W)
            saved_bias = None
            if not self._zero_free_term:
                y, saved_bias = be.op("bias.forward")(y, self._params["free_term"])
            self._saved.append((x.shape, saved_linear, saved_bias))
            ys.append(y.reshape(x.shape[:3] + (1, 1, 1, self._element_count)))
        return ys

    def _backward(self, be, dys, need_dx):
        dxs = []
        for (x_shape, saved_linear, saved_bias), dy, need in zip(self._saved, dys, need_dx):
            if dy is None:
                dxs.append(None)
                continue
            dy = rows(dy)
            if saved_bias is not None:
                dy, db = be.op("bias.backward")(dy, saved_bias)
                self._accumulate("free_term", db)
            dx, dW = be.op("linear.backward")(dy, saved_linear, need_dx=need)
            self._accumulate("weights", dW)
            dxs.append(None if dx is None else dx.reshape(x_shape))
        return dxs

    def _accumulate(self, name, g):
        if not self._learning_enabled:
            return
        if name in self._grads:
            self._grads[name] += g
        else:
            self._grads[name] = g
