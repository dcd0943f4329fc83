"""Recurrent layers of the NeoML facade: Lstm, Gru, Irnn, IndRnn and Qrnn through refnn's
``lstm``, ``gru``, ``rnn``, ``indrnn`` and ``qrnn`` ops (``refnn.ops.recurrent``: the gate
equations and BPTT live there; Qrnn adds ``time_conv`` for its gates).

Layout at the edge: an input blob (BatchLength, BatchWidth, ListSize, H, W, D, C) is
BW*LS sequences of T = BatchLength steps, each step an object of I = H*W*D*C numbers,
stored time-major -- exactly the ops' (T, N, I), so the layers only reshape. Every output
is (T, BW, LS, 1, 1, 1, hidden_size).

Weights are kept in the ops' layout and shown in NeoML's blob shapes by the properties
(``refnn/shared/spec/neoml-behaviour-notes.md`` "Weights"):

* Lstm: input weights (1, 4H, 1, 1, 1, 1, I), recurrent weights (1, 4H, 1, 1, 1, 1, H),
  each with its own free term (4H, 1, 1, 1, 1, 1, 1); gate blocks in NeoML's order main
  (tanh), forget, input, output -- the op's g, f, i, o. The op takes the sum of the two
  free terms; both receive its gradient (as in NeoML, where each fully connected part
  trains its own free term).
* Gru: gate weights (1, 2H, 1, 1, 1, 1, I+H) ([update; reset] over [x, h_prev]), main
  weights (1, H, 1, 1, 1, 1, I+H), free terms 2H and H. The op keeps w (3H, I),
  u (3H, H), b (3H,): the properties split and join the columns on the host.
* Irnn: input weights (1, H, 1, 1, 1, 1, I), recurrent weights (1, H, 1, 1, 1, 1, H),
  two free terms of H; the op is ``rnn`` with ``activation="relu"``.
* IndRnn: input weights (1, H, 1, 1, 1, 1, I), recurrent weights (1, 1, 1, 1, 1, 1, H)
  (a vector), bias (H, 1, 1, 1, 1, 1, 1).
* Qrnn: filter (1, G*H, 1, window_size, 1, 1, I) and free term G*H, gate blocks update,
  forget, output, input (G = 2, 3, 4 for 'f', 'fo', 'ifo' pooling).

Weights are empty until the first run; a weights property set before that is kept.
Errors raised by an op's checks are re-raised with the layer's name in front.
"""
import numpy as np

from refnn.errors import ParameterError, RefnnError, ShapeError
from refnn.neoml.Blob import Blob
from refnn.neoml.Dnn._fully_connected import FullyConnected
from refnn.neoml.Dnn._layer import Layer


def call_op(layer, be, name, *args, **params):
    """``be.op(name)(*args, **params)``; a refnn error of the op's checks comes back with
    the layer's name in front (same error class)."""
    try:
        return be.op(name)(*args, **params)
    except RefnnError as e:
        raise type(e)(f"{layer._where()}: {e}") from e


def positive_int(where, what, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ParameterError(f"{where}: {what} must be an int > 0, got {v!r}")
    return int(v)


def unit_rate(where, what, v):
    """A probability in [0, 1)."""
    try:
        r = float(v)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: {what} must be a number, got {v!r}") from None
    if not 0 <= r < 1:
        raise ParameterError(f"{where}: {what} must be in [0, 1), got {v!r}")
    return r


def sequence_shape(layer, x, what="input 0"):
    """(T, N, I) of a 7-D sequence blob; ShapeError naming the layer otherwise."""
    s = tuple(int(v) for v in x.shape)
    if len(s) != 7:
        raise ShapeError(f"{layer._where()}: {what} must be a 7-D blob (BatchLength, "
                         f"BatchWidth, ListSize, Height, Width, Depth, Channels), got shape {s}")
    return s[0], s[1] * s[2], int(np.prod(s[3:]))


def copy_array(be, a):
    return a.copy() if isinstance(a, np.ndarray) else a.copy(queue=be.queue)


def checked_property(attr, check, what, doc, *args, drops=False):
    """A property kept as ``attr``; a set value goes through
    ``check(self._where(), what, v, *args)`` (drops=True: setting it drops the weights)."""
    def set_(self, v):
        setattr(self, attr, check(self._where(), what, v, *args))
        if drops:
            self._drop_params()
    return property(lambda self: getattr(self, attr), set_, doc=doc)


def hidden_size_property(doc="The hidden layer size."):
    """``hidden_size`` (kept as ``_hidden``): a positive int; setting it drops the
    weights."""
    return checked_property("_hidden", positive_int, "hidden_size", doc, drops=True)


def input_weights_property(doc, gates=1):
    """``input_weights``: a (gates*H, I) parameter as a (1, gates*H, 1, 1, 1, 1, I) blob."""
    def set_(self, blob):
        R = gates * self._hidden
        self._set_param("input_weights", blob, R, -1, f"(1, {R}, 1, 1, 1, 1, InputSize)")
    return property(lambda self: self._matrix_blob("input_weights"), set_, doc=doc)


def vector_param_property(name, doc, rows=lambda self: self._hidden):
    """A vector parameter of ``rows(self)`` numbers as a (rows, 1, 1, 1, 1, 1, 1) blob."""
    def get(self):
        return self._param_blob(name, (rows(self), 1, 1, 1, 1, 1, 1))

    def set_(self, blob):
        R = rows(self)
        self._set_param(name, blob, R, None, f"({R}, 1, 1, 1, 1, 1, 1)")
    return property(get, set_, doc=doc)


def reverse_property():
    """``reverse_sequence`` (kept as ``_reverse``): a flag."""
    def set_(self, v):
        self._reverse = bool(v)
    return property(lambda self: self._reverse, set_,
                    doc="True: the sequence is processed from the last step.")


class _Weighted(Layer):
    """Shared helpers: parameters in the ops' layout, NeoML blob views of them."""

    _engine_backend = FullyConnected._engine_backend
    _host_float = FullyConnected._host_float
    _blob_of = FullyConnected._blob_of
    _accumulate = FullyConnected._accumulate

    @property
    def _trainable(self):
        return self._learning_enabled

    def _param_blob(self, name, shape):
        a = self._params.get(name)
        return None if a is None else self._blob_of(a, shape)

    def _matrix_blob(self, name):
        """A (rows, cols) parameter as a (1, rows, 1, 1, 1, 1, cols) blob; None if unset."""
        w = self._params.get(name)
        return None if w is None else self._blob_of(w, (1, w.shape[0], 1, 1, 1, 1, w.shape[1]))

    def _set_param(self, name, blob, rows, cols, text):
        """Store a weights blob of rows x cols numbers as the op's (rows, cols) array
        (cols None: a vector of ``rows``); None drops it."""
        be = self._engine_backend()
        self._grads.pop(name, None)
        if blob is None:
            self._params.pop(name, None)
            return
        host = self._host_float(blob, name)
        if cols is None:
            ok, shape = host.size == rows, (rows,)
        else:
            ok = int(blob.object_count) == rows and (cols < 0 or int(blob.object_size) == cols)
            shape = (rows, -1)
        if not ok:
            raise ShapeError(f"{self._where()}: {name} must be a blob of shape {text}, got "
                             f"{tuple(int(v) for v in blob.shape)}")
        self._params[name] = be.asarray(np.ascontiguousarray(host.reshape(shape)),
                                        dtype=np.float32)

    def _drop_params(self):
        self._params.clear()
        self._grads.clear()

    def _initial_state(self, be, x, xs, k, N, H, what):
        """Optional input k: a (1, BW, LS, ...) blob of H numbers per sequence -> (N, H)."""
        if len(xs) <= k:
            return None
        s = tuple(int(v) for v in xs[k].shape)
        self._check_float(xs[k], f"input {k} ({what})")
        if len(s) != 7 or s[0] != 1 or s[1:3] != tuple(x.shape[1:3]) \
                or int(np.prod(s[3:])) != H:
            raise ShapeError(f"{self._where()}: input {k} ({what}) must have shape "
                             f"(1, {x.shape[1]}, {x.shape[2]}, ...) with {H} (hidden_size) "
                             f"numbers per sequence, got {s}")
        return xs[k].reshape(N, H)

    def _check_input(self, be, xs):
        x = xs[0]
        T, N, I = sequence_shape(self, x)
        self._check_float(x, "input 0")
        return x, T, N, I

    def _check_input_size(self, name, I):
        w = self._params[name]
        if w.shape[1] != I:
            raise ShapeError(f"{self._where()}: input 0 must have object size (Height*Width*"
                             f"Depth*Channels) {w.shape[1]} like the input weights, got {I}")

    def _seq_output(self, a, x, H):
        return a.reshape(tuple(x.shape[:3]) + (1, 1, 1, H))

    def _input_dropout(self, be, x3, training):
        """Lstm's and IndRnn's dropout (learning only, rate ``_dropout``): a mask per
        element of the (T, N, I) input, then the one (N, H) recurrent mask.
        -> (x3, the dropout's saved state or None, h_mask or None)."""
        if not (training and self._dropout > 0):
            return x3, None, None
        T, N, I = x3.shape
        keep = 1.0 - self._dropout
        x2, drop = call_op(self, be, "dropout.forward", x3.reshape(T * N, I), keep=keep,
                           seed=self._dnn.random.seed32(), scale=1 / keep)
        h_mask = recurrent_dropout_mask(self, be, N, self._hidden, keep)
        return x2.reshape(T, N, I), drop, h_mask

    def _input_dropout_backward(self, be, dx, drop, T, N):
        """dx of the dropped input -> dx of the input (``drop`` None: no dropout)."""
        if drop is None:
            return dx
        return call_op(self, be, "dropout.backward", dx.reshape(T * N, -1), drop)[0]


def recurrent_dropout_mask(layer, be, N, H, keep):
    """NeoML's recurrent dropout: one (N, H) mask for every step of the sequence (its
    IndRnn draws a batch x hidden mask per run; its Dropout layer keeps one mask over a
    recurrent sequence), entries 0 or 1/keep. Drawn by the dropout op (the counter-based
    hash, the same mask on every backend) on ones, with a fresh seed of the network's
    Random -- drawn after the input dropout's seed."""
    ones = be.zeros((N, H), dtype=np.float32) + 1
    mask, _ = call_op(layer, be, "dropout.forward", ones, keep=keep,
                      seed=layer._dnn.random.seed32(), scale=1 / keep)
    return mask


# =========================================================================== Lstm
#: NeoML's recurrent activation name -> the lstm op's gate_activation (refnn activation,
#: NeoML's default parameters: CreateActivationLayer's)
LSTM_ACTIVATIONS = {
    "linear": "identity", "elu": ("elu", {"alpha": 0.01}), "relu": "relu",
    "leaky_relu": ("leaky_relu", {"alpha": 0.01}), "abs": "abs", "sigmoid": "sigmoid",
    "tanh": "tanh", "hard_tanh": "hard_tanh",
    "hard_sigmoid": ("hard_sigmoid", {"slope": 0.5, "bias": 0.5}),
    "power": ("power", {"exponent": 0.0}), "hswish": "hswish",
    "gelu": ("gelu", {"form": "sigmoid"})}


class Lstm(_Weighted):
    """The long short-term memory layer (``Lstm(input_layer, hidden_size=1,
    dropout_rate=0.0, activation='sigmoid', reverse_seq=False, name=None)``).

    Inputs: 0 the sequences; 1 (optional) the initial cell state; 2 (optional) the
    initial "previous output" h -- each (1, BW, LS, 1, 1, 1, hidden_size); absent means
    zeros. Outputs: 0 h of every step, 1 the cell state of every step.
    ``reverse_seq=True`` runs from the last step and keeps outputs in place.

    ``activation`` (``recurrent_activation``) is the activation of the input, forget
    and output gates (NeoML's CreateActivationLayer with its default parameters: the
    lstm op's ``gate_activation``, through LSTM_ACTIVATIONS; the main block and the
    cell output stay tanh): one of 'linear', 'elu', 'relu', 'leaky_relu', 'abs',
    'sigmoid', 'tanh', 'hard_tanh', 'hard_sigmoid', 'power', 'hswish', 'gelu'; another
    value raises ParameterError. 'power' has NeoML's default exponent 0: every gate is
    then 1. ``dropout_rate`` (learning
    only) drops the input sequence (a mask per element of every step) and the previous
    output h_{t-1} before the recurrent product (one (batch, hidden) mask for the whole
    sequence, the lstm op's ``h_mask``); kept values are scaled by 1/(1 - rate).
    """

    OPS = ("lstm", "dropout")
    N_INPUTS = (1, 3)
    N_OUTPUTS = 2

    def __init__(self, input_layer, hidden_size=1, dropout_rate=0.0, activation="sigmoid",
                 reverse_seq=False, name=None):
        where = f"Lstm {name!r}"
        self._hidden = positive_int(where, "hidden_size", hidden_size)
        self._dropout = unit_rate(where, "dropout_rate", dropout_rate)
        self._activation = self._check_activation(where, activation)
        self._reverse = bool(reverse_seq)
        self._saved = None
        super().__init__(input_layer, name)

    @staticmethod
    def _check_activation(where, v):
        if v not in LSTM_ACTIVATIONS:
            raise ParameterError(f"{where}: activation (recurrent_activation) must be one "
                                 f"of {tuple(LSTM_ACTIVATIONS)}, got {v!r}")
        return v

    # --------------------------------------------------------------- properties
    hidden_size = hidden_size_property(
        "The hidden layer size (the length of h and of the cell state).")

    dropout = checked_property(
        "_dropout", unit_rate, "dropout (dropout_rate)",
        "The dropout rate of the input and the recurrent data (learning only).")

    dropout_rate = dropout

    @property
    def activation(self):
        """The activation of the input, forget and output gates ('sigmoid' by default)."""
        return self._activation

    @activation.setter
    def activation(self, v):
        self._activation = self._check_activation(self._where(), v)

    recurrent_activation = activation

    reverse_sequence = reverse_property()

    reverse_seq = reverse_sequence

    input_weights = input_weights_property(
        "(1, 4H, 1, 1, 1, 1, I): gate blocks main, forget, input, output.", gates=4)

    @property
    def recurrent_weights(self):
        """(1, 4H, 1, 1, 1, 1, H): gate blocks main, forget, input, output."""
        return self._param_blob("recurrent_weights",
                                (1, 4 * self._hidden, 1, 1, 1, 1, self._hidden))

    @recurrent_weights.setter
    def recurrent_weights(self, blob):
        H, H4 = self._hidden, 4 * self._hidden
        self._set_param("recurrent_weights", blob, H4, H, f"(1, {H4}, 1, 1, 1, 1, {H})")

    input_free_term = vector_param_property("input_free_term", "(4H, 1, 1, 1, 1, 1, 1).",
                                 rows=lambda self: 4 * self._hidden)

    recurrent_free_term = vector_param_property("recurrent_free_term", "(4H, 1, 1, 1, 1, 1, 1).",
                                 rows=lambda self: 4 * self._hidden)

    # ------------------------------------------------------------------ passes
    def _init_params(self, be, I):
        H = self._hidden
        init = self._dnn.initializer
        for name, cols in (("input_weights", I), ("recurrent_weights", H)):
            if name not in self._params:
                w = init._draw((4 * H, cols), cols).astype(np.float32)
                self._params[name] = be.asarray(w, dtype=np.float32)
        for name in ("input_free_term", "recurrent_free_term"):
            if name not in self._params:
                self._params[name] = be.zeros((4 * H,), dtype=np.float32)

    def _forward(self, be, xs, training):
        x, T, N, I = self._check_input(be, xs)
        H = self._hidden
        c0 = self._initial_state(be, x, xs, 1, N, H, "initial cell state")
        h0 = self._initial_state(be, x, xs, 2, N, H, "initial previous output")
        self._init_params(be, I)
        self._check_input_size("input_weights", I)
        x3, drop, h_mask = self._input_dropout(be, x.reshape(T, N, I), training)
        p = self._params
        b = p["input_free_term"] + p["recurrent_free_term"]
        (hs, cs), saved = call_op(self, be, "lstm.forward", x3, p["input_weights"],
                                  p["recurrent_weights"], b, h0, c0, reverse=self._reverse,
                                  h_mask=h_mask,
                                  gate_activation=LSTM_ACTIVATIONS[self._activation])
        self._saved = (tuple(int(v) for v in x.shape), [tuple(a.shape) for a in xs], drop,
                       saved)
        return [self._seq_output(hs, x, H), self._seq_output(cs, x, H)]

    def _backward(self, be, dys, need_dx):
        x_shape, in_shapes, drop, saved = self._saved
        T, N, H = x_shape[0], x_shape[1] * x_shape[2], self._hidden
        dhs, dcs = ((be.zeros((T, N, H), dtype=np.float32) if d is None else d.reshape(T, N, H))
                    for d in dys)
        dx, dw, du, db, dh0, dc0 = call_op(self, be, "lstm.backward", (dhs, dcs), saved)
        self._accumulate("input_weights", dw)
        self._accumulate("recurrent_weights", du)
        self._accumulate("input_free_term", db)
        self._accumulate("recurrent_free_term", copy_array(be, db))
        dxs = [self._input_dropout_backward(be, dx, drop, T, N).reshape(x_shape)]
        for k, d in ((1, dc0), (2, dh0)):
            if k < len(in_shapes):
                dxs.append(None if d is None else d.reshape(in_shapes[k]))
        return dxs


# ============================================================================ Gru
class Gru(_Weighted):
    """The gated recurrent unit (``Gru(input_layer, hidden_size, name=None)``).

    Inputs: 0 the sequences; 1 (optional) the initial previous output, (1, BW, LS, ...)
    with hidden_size numbers per sequence (absent: zeros). The reset gate acts before
    the recurrent product (Cho et al. 2014; NeoML's rule, not PyTorch's).
    """

    OPS = ("gru",)
    N_INPUTS = (1, 2)

    def __init__(self, input_layer, hidden_size, name=None):
        self._hidden = positive_int(f"Gru {name!r}", "hidden_size", hidden_size)
        self._pending = {}            # NeoML-form host arrays set before the first run
        self._saved = None
        super().__init__(input_layer, name)

    @property
    def hidden_size(self):
        """The hidden layer size."""
        return self._hidden

    @hidden_size.setter
    def hidden_size(self, v):
        self._hidden = positive_int(self._where(), "hidden_size", v)
        self._drop_params()
        self._pending.clear()

    # NeoML form <-> op form: gate = [w_z; w_r | u_z; u_r], main = [w_n | u_n]
    def _neoml(self, name):
        """The NeoML-form host array of ``name`` (None when not set)."""
        if "w" not in self._params:
            return self._pending.get(name)
        be = self._engine_backend()
        H = self._hidden
        w, u, b = (be.to_host(self._params[k]) for k in ("w", "u", "b"))
        rows = slice(0, 2 * H) if name.startswith("gate") else slice(2 * H, 3 * H)
        if name.endswith("weights"):
            return np.concatenate([w[rows], u[rows]], axis=1)
        return b[rows].copy()

    def _set_neoml(self, name, blob):
        H = self._hidden
        n = 2 * H if name.startswith("gate") else H
        where = self._where()
        if blob is None:
            raise ParameterError(f"{where}: {name} cannot be removed (set a blob)")
        host = self._host_float(blob, name)
        if name.endswith("weights"):
            if int(blob.object_count) != n or int(blob.object_size) <= H:
                raise ShapeError(f"{where}: {name} must be a blob of shape (1, {n}, 1, 1, 1, "
                                 f"1, InputSize + {H}), got {tuple(int(v) for v in blob.shape)}")
            host = host.reshape(n, -1)
        elif host.size != n:
            raise ShapeError(f"{where}: {name} must have {n} elements, got blob shape "
                             f"{tuple(int(v) for v in blob.shape)}")
        else:
            host = host.reshape(n)
        if "w" not in self._params:
            self._pending[name] = host.astype(np.float32)
            return
        be = self._engine_backend()
        w, u, b = (be.to_host(self._params[k]).copy() for k in ("w", "u", "b"))
        rows = slice(0, 2 * H) if name.startswith("gate") else slice(2 * H, 3 * H)
        I = w.shape[1]
        if name.endswith("weights"):
            if host.shape[1] != I + H:
                raise ShapeError(f"{where}: {name} must have object size {I + H} (input "
                                 f"{I} + hidden {H}), got {host.shape[1]}")
            w[rows], u[rows] = host[:, :I], host[:, I:]
        else:
            b[rows] = host
        for k, a in (("w", w), ("u", u), ("b", b)):
            self._params[k] = be.asarray(np.ascontiguousarray(a), dtype=np.float32)
            self._grads.pop(k, None)

    def _neoml_blob(self, name):
        """``_neoml(name)`` as a blob: weights (1, rows, 1, 1, 1, 1, cols), free terms
        (rows, 1, 1, 1, 1, 1, 1); None when not set."""
        a = self._neoml(name)
        if a is None:
            return None
        shape = (1, a.shape[0], 1, 1, 1, 1, a.shape[1]) if a.ndim == 2 else \
            (a.shape[0], 1, 1, 1, 1, 1, 1)
        engine = self._dnn.math_engine
        return Blob._new(engine, engine.backend.asarray(a.reshape(shape), dtype=np.float32))

    def _neoml_property(name, doc):
        """A NeoML-form weights/free-term property (read and written through
        ``_neoml_blob`` / ``_set_neoml``)."""
        return property(lambda self: self._neoml_blob(name),
                        lambda self, blob: self._set_neoml(name, blob), doc=doc)

    gate_weights = _neoml_property(
        "gate_weights", "(1, 2H, 1, 1, 1, 1, I + H): [update; reset] rows over [x, h_prev] "
        "columns.")
    main_weights = _neoml_property(
        "main_weights", "(1, H, 1, 1, 1, 1, I + H): the main (tanh) rows over "
        "[x, r * h_prev].")
    gate_free_term = _neoml_property("gate_free_term", "(2H, 1, 1, 1, 1, 1, 1): update, reset.")
    main_free_term = _neoml_property("main_free_term", "(H, 1, 1, 1, 1, 1, 1).")
    del _neoml_property

    def _init_params(self, be, I):
        if "w" in self._params:
            return
        H = self._hidden
        pend = self._pending
        for name in ("gate_weights", "main_weights"):
            if name in pend and pend[name].shape[1] != I + H:
                raise ShapeError(f"{self._where()}: {name} set with object size "
                                 f"{pend[name].shape[1]}, but input {I} + hidden {H} = "
                                 f"{I + H}")
        init = self._dnn.initializer
        gate = pend.get("gate_weights")
        if gate is None:
            gate = init._draw((2 * H, I + H), I + H)
        main = pend.get("main_weights")
        if main is None:
            main = init._draw((H, I + H), I + H)
        b = np.concatenate([pend.get("gate_free_term", np.zeros(2 * H)),
                            pend.get("main_free_term", np.zeros(H))])
        wu = np.concatenate([gate, main], axis=0).astype(np.float32)
        for k, a in (("w", wu[:, :I]), ("u", wu[:, I:]), ("b", b.astype(np.float32))):
            self._params[k] = be.asarray(np.ascontiguousarray(a), dtype=np.float32)
        pend.clear()

    def _forward(self, be, xs, training):
        x, T, N, I = self._check_input(be, xs)
        H = self._hidden
        h0 = self._initial_state(be, x, xs, 1, N, H, "initial previous output")
        self._init_params(be, I)
        self._check_input_size("w", I)
        p = self._params
        hs, saved = call_op(self, be, "gru.forward", x.reshape(T, N, I), p["w"], p["u"],
                            p["b"], h0)
        self._saved = (tuple(int(v) for v in x.shape), [tuple(a.shape) for a in xs], saved)
        return [self._seq_output(hs, x, H)]

    def _backward(self, be, dys, need_dx):
        x_shape, in_shapes, saved = self._saved
        T, N, H = x_shape[0], x_shape[1] * x_shape[2], self._hidden
        dx, dw, du, db, dh0 = call_op(self, be, "gru.backward", dys[0].reshape(T, N, H), saved)
        for k, g in (("w", dw), ("u", du), ("b", db)):
            self._accumulate(k, g)
        dxs = [dx.reshape(x_shape)]
        if len(in_shapes) > 1:
            dxs.append(None if dh0 is None else dh0.reshape(in_shapes[1]))
        return dxs


# =========================================================================== Irnn
class Irnn(_Weighted):
    """IRNN (Le et al. 2015): y_t = ReLU(FC_input(x_t) + FC_recur(y_{t-1}))
    (``Irnn(input_layer, hidden_size=1, identity_scale=1.0, input_weight_std=0.001,
    reverse_seq=False, name=None)``).

    Initialisation is the point: input weights from N(0, input_weight_std^2) (the
    network's random generator), recurrent weights identity_scale * I, free terms 0.
    """

    OPS = ("rnn",)

    def __init__(self, input_layer, hidden_size=1, identity_scale=1.0, input_weight_std=0.001,
                 reverse_seq=False, name=None):
        where = f"Irnn {name!r}"
        self._hidden = positive_int(where, "hidden_size", hidden_size)
        self._scale = self._number(where, "identity_scale", identity_scale)
        self._std = self._number(where, "input_weight_std", input_weight_std, nonneg=True)
        self._reverse = bool(reverse_seq)
        self._saved = None
        super().__init__(input_layer, name)

    @staticmethod
    def _number(where, what, v, nonneg=False):
        try:
            r = float(v)
        except (TypeError, ValueError):
            raise ParameterError(f"{where}: {what} must be a number, got {v!r}") from None
        if nonneg and r < 0:
            raise ParameterError(f"{where}: {what} must be >= 0, got {v!r}")
        return r

    hidden_size = hidden_size_property()

    identity_scale = checked_property(
        "_scale", _number, "identity_scale",
        "The scale of the identity matrix the recurrent weights start from.")

    input_weight_std = checked_property(
        "_std", _number, "input_weight_std",
        "The standard deviation of the initial input weights.", True)

    reverse_sequence = reverse_property()

    reverse_seq = reverse_sequence

    input_weights = input_weights_property("(1, H, 1, 1, 1, 1, I).")

    @property
    def recurrent_weights(self):
        """(1, H, 1, 1, 1, 1, H)."""
        H = self._hidden
        return self._param_blob("recurrent_weights", (1, H, 1, 1, 1, 1, H))

    @recurrent_weights.setter
    def recurrent_weights(self, blob):
        H = self._hidden
        self._set_param("recurrent_weights", blob, H, H, f"(1, {H}, 1, 1, 1, 1, {H})")

    input_free_term = vector_param_property("input_free_term", "(H, 1, 1, 1, 1, 1, 1).")

    recurrent_free_term = vector_param_property("recurrent_free_term", "(H, 1, 1, 1, 1, 1, 1).")

    def _init_params(self, be, I):
        H, p = self._hidden, self._params
        if "input_weights" not in p:
            w = self._dnn.random.normal(0.0, self._std, (H, I)).astype(np.float32)
            p["input_weights"] = be.asarray(w, dtype=np.float32)
        if "recurrent_weights" not in p:
            u = (self._scale * np.eye(H)).astype(np.float32)
            p["recurrent_weights"] = be.asarray(u, dtype=np.float32)
        for name in ("input_free_term", "recurrent_free_term"):
            if name not in p:
                p[name] = be.zeros((H,), dtype=np.float32)

    def _forward(self, be, xs, training):
        x, T, N, I = self._check_input(be, xs)
        self._init_params(be, I)
        self._check_input_size("input_weights", I)
        p = self._params
        b = p["input_free_term"] + p["recurrent_free_term"]
        hs, saved = call_op(self, be, "rnn.forward", x.reshape(T, N, I), p["input_weights"],
                            p["recurrent_weights"], b, None, activation="relu",
                            reverse=self._reverse)
        self._saved = (tuple(int(v) for v in x.shape), saved)
        return [self._seq_output(hs, x, self._hidden)]

    def _backward(self, be, dys, need_dx):
        x_shape, saved = self._saved
        T, N = x_shape[0], x_shape[1] * x_shape[2]
        dx, dw, du, db, _ = call_op(self, be, "rnn.backward",
                                    dys[0].reshape(T, N, self._hidden), saved)
        self._accumulate("input_weights", dw)
        self._accumulate("recurrent_weights", du)
        self._accumulate("input_free_term", db)
        self._accumulate("recurrent_free_term", copy_array(be, db))
        return [dx.reshape(x_shape)]


# ========================================================================= IndRnn
class IndRnn(_Weighted):
    """Independently recurrent network (Li et al. 2018): h_t = act(W x_t + B + U * h_{t-1})
    with U a vector (``IndRnn(input_layer, hidden_size=1, dropout_rate=0.0,
    reverse_sequence=False, activation='relu', name=None)``), through refnn's ``indrnn`` op.

    Weights: ``input_weights`` (1, H, 1, 1, 1, 1, I), ``recurrent_weights``
    (1, 1, 1, 1, 1, 1, H), ``bias`` (H, 1, 1, 1, 1, 1, 1); the input weights and U start
    from the network's initializer (fan_in I and H), the bias at zero. ``activation`` is
    'relu' or 'sigmoid' (NeoML's two). ``dropout_rate`` (learning only) drops the input
    sequence (a mask per element) and, as NeoML, h_{t-1} inside the recurrence:
    Y_t = act(W X_t + B + U * (M * Y_{t-1})) with one (batch, hidden) mask M for the whole
    sequence (the indrnn op's ``h_mask``); kept values are scaled by 1/(1 - rate).
    """

    OPS = ("indrnn", "dropout")
    ACTIVATIONS = ("relu", "sigmoid")

    def __init__(self, input_layer, hidden_size=1, dropout_rate=0.0, reverse_sequence=False,
                 activation="relu", name=None):
        where = f"IndRnn {name!r}"
        self._hidden = positive_int(where, "hidden_size", hidden_size)
        self._dropout = unit_rate(where, "dropout_rate", dropout_rate)
        self._reverse = bool(reverse_sequence)
        self._activation = self._check_activation(where, activation)
        self._saved = None
        super().__init__(input_layer, name)

    @classmethod
    def _check_activation(cls, where, v):
        if v not in cls.ACTIVATIONS:
            raise ParameterError(f"{where}: activation must be one of {cls.ACTIVATIONS}, "
                                 f"got {v!r}")
        return v

    hidden_size = hidden_size_property()

    dropout_rate = checked_property(
        "_dropout", unit_rate, "dropout_rate",
        "The dropout rate of the input and the recurrent data (learning only).")

    reverse_sequence = reverse_property()

    @property
    def activation(self):
        """'relu' or 'sigmoid'."""
        return self._activation

    @activation.setter
    def activation(self, v):
        self._activation = self._check_activation(self._where(), v)

    input_weights = input_weights_property("(1, H, 1, 1, 1, 1, I).")

    @property
    def recurrent_weights(self):
        """(1, 1, 1, 1, 1, 1, H): one recurrent weight per hidden unit."""
        return self._param_blob("recurrent_weights", (1, 1, 1, 1, 1, 1, self._hidden))

    @recurrent_weights.setter
    def recurrent_weights(self, blob):
        H = self._hidden
        self._set_param("recurrent_weights", blob, H, None, f"(1, 1, 1, 1, 1, 1, {H})")

    bias = vector_param_property("bias", "(H, 1, 1, 1, 1, 1, 1).")

    def _init_params(self, be, I):
        H, p, init = self._hidden, self._params, self._dnn.initializer
        if "input_weights" not in p:
            p["input_weights"] = be.asarray(init._draw((H, I), I).astype(np.float32),
                                            dtype=np.float32)
        if "recurrent_weights" not in p:
            p["recurrent_weights"] = be.asarray(init._draw((H,), H).astype(np.float32),
                                                dtype=np.float32)
        if "bias" not in p:
            p["bias"] = be.zeros((H,), dtype=np.float32)

    def _forward(self, be, xs, training):
        x, T, N, I = self._check_input(be, xs)
        self._init_params(be, I)
        self._check_input_size("input_weights", I)
        x3, drop, h_mask = self._input_dropout(be, x.reshape(T, N, I), training)
        p = self._params
        hs, saved = call_op(self, be, "indrnn.forward", x3, p["input_weights"],
                            p["recurrent_weights"], p["bias"], None,
                            activation=self._activation, reverse=self._reverse,
                            h_mask=h_mask)
        self._saved = (tuple(int(v) for v in x.shape), drop, saved)
        return [self._seq_output(hs, x, self._hidden)]

    def _backward(self, be, dys, need_dx):
        x_shape, drop, saved = self._saved
        T, N = x_shape[0], x_shape[1] * x_shape[2]
        dx, dw, du, db, _ = call_op(self, be, "indrnn.backward",
                                    dys[0].reshape(T, N, self._hidden), saved)
        self._accumulate("input_weights", dw)
        self._accumulate("recurrent_weights", du)
        self._accumulate("bias", db)
        return [self._input_dropout_backward(be, dx, drop, T, N).reshape(x_shape)]


# =========================================================================== Qrnn
#: Qrnn pooling -> number of gate blocks (update, forget[, output[, input]])
QRNN_POOLINGS = {"f": 2, "fo": 3, "ifo": 4}
QRNN_MODES = ("direct", "reverse", "bidirectional_concat", "bidirectional_sum")
#: NeoML activation name -> (refnn op, its parameters with NeoML's defaults)
QRNN_ACTIVATIONS = {
    "linear": ("identity", {}), "elu": ("elu", {"alpha": 0.01}), "relu": ("relu", {}),
    "leaky_relu": ("leaky_relu", {"alpha": 0.01}), "abs": ("abs", {}),
    "sigmoid": ("sigmoid", {}), "tanh": ("tanh", {}), "hard_tanh": ("hard_tanh", {}),
    "hard_sigmoid": ("hard_sigmoid", {"slope": 0.5, "bias": 0.5}),
    "hswish": ("hswish", {}), "gelu": ("gelu", {"form": "sigmoid"})}


class Qrnn(_Weighted):
    """The quasi-recurrent layer (Bradbury et al. 2016; ``Qrnn(input_layers,
    pooling_type='f', hidden_size=1, window_size=1, stride=1, paddings=(0, 0),
    activation='tanh', dropout=0.0, mode='direct', name=None)``).

    As NeoML's CQrnnLayer: a time convolution (refnn's ``time_conv`` + ``bias``) gives
    G*H gate pre-activations per step, G = 2, 3, 4 for 'f', 'fo', 'ifo' pooling, blocks
    in the order update, forget, output, input; the update block goes through
    ``activation`` (tanh by default), the others through sigmoid; in training
    ``dropout`` acts on the forget gate as f' = 1 + mask * (f - 1) (one mask for all
    steps); the ``qrnn`` op runs the recurrent pooling. ``mode`` 'reverse' pools from the
    last step; the bidirectional modes pool both ways over the same gates and
    concatenate (2H channels) or add the two results.

    Inputs: 0 the sequences (To steps result, To = (T + paddings[0] + paddings[1] -
    window_size) // stride + 1); 1 (optional) the initial state of the (first) pooling,
    2 (optional, bidirectional modes) that of the reverse pooling, each (1, BW, LS, ...)
    with hidden_size numbers per sequence. Weights: ``filter`` (1, G*H, 1, window_size,
    1, 1, I) (fan_in window_size * I, as TimeConv) and ``free_term`` (G*H, 1, ..., 1).
    The gates of the pooling are joined column block by column block with the backend's
    column-block copy ``be.copy_columns``: the update block from the activation's output,
    the other blocks from the sigmoid's (the forget block after dropout); the backward
    pass copies each block of the gate gradient back to a zero (rows, G*H) gradient of
    the activation or sigmoid. 'bidirectional_concat' joins the two poolings' outputs
    the same way. The 'power' activation is not offered (NeoML's default exponent makes
    it a constant).
    """

    OPS = ("time_conv", "bias", "sigmoid", "dropout", "qrnn") + tuple(
        sorted({op for op, _ in QRNN_ACTIVATIONS.values()} - {"sigmoid"}))
    N_INPUTS = (1, 3)

    def __init__(self, input_layers, pooling_type="f", hidden_size=1, window_size=1, stride=1,
                 paddings=(0, 0), activation="tanh", dropout=0.0, mode="direct", name=None):
        where = f"Qrnn {name!r}"
        self._pooling = self._check_choice(where, "pooling_type", pooling_type, QRNN_POOLINGS)
        self._hidden = positive_int(where, "hidden_size", hidden_size)
        self._window = positive_int(where, "window_size", window_size)
        self._stride = positive_int(where, "stride", stride)
        self._pad_front, self._pad_back = self._check_paddings(where, paddings)
        self._activation = self._check_choice(where, "activation", activation,
                                              QRNN_ACTIVATIONS)
        self._dropout = self._check_dropout(where, dropout)
        self._mode = self._check_choice(where, "mode", mode, QRNN_MODES)
        self._saved = None
        super().__init__(input_layers, name)

    # --------------------------------------------------------------- checks
    @staticmethod
    def _check_choice(where, what, v, allowed):
        if v not in allowed:
            raise ParameterError(f"{where}: {what} must be one of {tuple(allowed)}, "
                                 f"got {v!r}")
        return v

    @staticmethod
    def _nonneg(where, what, v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ParameterError(f"{where}: {what} must be an int >= 0, got {v!r}")
        return int(v)

    @classmethod
    def _check_paddings(cls, where, v):
        if not isinstance(v, (tuple, list)) or len(v) != 2:
            raise ParameterError(f"{where}: paddings must be a pair (front, back), got {v!r}")
        return cls._nonneg(where, "paddings[0]", v[0]), cls._nonneg(where, "paddings[1]", v[1])

    @staticmethod
    def _check_dropout(where, v):
        try:
            r = float(v)
        except (TypeError, ValueError):
            raise ParameterError(f"{where}: dropout must be a number, got {v!r}") from None
        if not 0 <= r <= 1:
            raise ParameterError(f"{where}: dropout must be in [0, 1], got {v!r}")
        return r

    # --------------------------------------------------------------- properties
    pooling_type = checked_property("_pooling", _check_choice, "pooling_type",
                                    "'f', 'fo' or 'ifo'.", QRNN_POOLINGS, drops=True)

    hidden_size = hidden_size_property()

    window_size = checked_property("_window", positive_int, "window_size",
                                   "The time convolution's window (steps).", drops=True)

    stride = checked_property("_stride", positive_int, "stride",
                              "The time convolution's stride.")

    padding_front = checked_property("_pad_front", _nonneg, "padding_front",
                                     "Zero steps added before each sequence.")

    padding_back = checked_property("_pad_back", _nonneg, "padding_back",
                                    "Zero steps added after each sequence.")

    activation = checked_property("_activation", _check_choice, "activation",
                                  "The update gate's activation.", QRNN_ACTIVATIONS)

    @property
    def dropout(self):
        """The dropout rate of the forget gate."""
        return self._dropout

    @dropout.setter
    def dropout(self, v):
        self._dropout = self._check_dropout(self._where(), v)

    recurrent_mode = checked_property(
        "_mode", _check_choice, "recurrent_mode (mode)",
        "'direct', 'reverse', 'bidirectional_concat' or 'bidirectional_sum'.", QRNN_MODES)

    def _gate_rows(self):
        return QRNN_POOLINGS[self._pooling] * self._hidden

    @property
    def filter(self):
        """(1, G*H, 1, window_size, 1, 1, I): gate blocks update, forget, output, input."""
        w = self._params.get("filter")
        if w is None:
            return None
        F, K, E = w.shape
        return self._blob_of(w, (1, F, 1, K, 1, 1, E))

    @filter.setter
    def filter(self, blob):
        if blob is None:
            self._set_param("filter", None, 0, None, "")
            return
        GH, K = self._gate_rows(), self._window
        s = tuple(int(v) for v in blob.shape)
        if len(s) != 7 or s[0] * s[1] * s[2] != GH or s[3] != K or s[4] * s[5] != 1:
            raise ShapeError(f"{self._where()}: filter must have shape (1, {GH}, 1, {K}, 1, "
                             f"1, InputSize), got {s}")
        host = self._host_float(blob, "filter")
        self._params["filter"] = self._engine_backend().asarray(
            np.ascontiguousarray(host.reshape(GH, K, s[6])), dtype=np.float32)
        self._grads.pop("filter", None)

    free_term = vector_param_property("free_term", "(G*H, 1, 1, 1, 1, 1, 1).",
                                      rows=lambda self: self._gate_rows())

    # ------------------------------------------------------------------ passes
    def _init_params(self, be, I):
        GH, K, p = self._gate_rows(), self._window, self._params
        if "filter" not in p:
            w = self._dnn.initializer._draw((GH, K, I), K * I).astype(np.float32)
            p["filter"] = be.asarray(w, dtype=np.float32)
        if "free_term" not in p:
            p["free_term"] = be.zeros((GH,), dtype=np.float32)

    def _forward(self, be, xs, training):
        x, T, N, I = self._check_input(be, xs)
        H, G = self._hidden, QRNN_POOLINGS[self._pooling]
        GH = G * H
        bidir = self._mode.startswith("bidirectional")
        if len(xs) > 2 and not bidir:
            raise ShapeError(f"{self._where()}: input 2 (the reverse pooling's initial state) "
                             f"exists only in the bidirectional modes, mode is {self._mode!r}")
        h0s = [self._initial_state(be, x, xs, k, N, H, "initial state") for k in (1, 2)]
        self._init_params(be, I)
        w = self._params["filter"]
        if w.shape[2] != I:
            raise ShapeError(f"{self._where()}: input 0 must have object size (Height*Width*"
                             f"Depth*Channels) {w.shape[2]} like the filter, got {I}")
        a, s_tc = call_op(self, be, "time_conv.forward", x.reshape(T, N, I), w, self._stride,
                          self._pad_front, self._pad_back, 1)
        To = a.shape[0]
        a, s_bias = call_op(self, be, "bias.forward", a.reshape(To * N, GH),
                            self._params["free_term"])
        op, params = QRNN_ACTIVATIONS[self._activation]
        u, s_act = call_op(self, be, f"{op}.forward", a, **params)
        sg, s_sig = call_op(self, be, "sigmoid.forward", a)
        # gates = [update | forget | output | input] blocks of H columns
        gates = be.empty((To * N, GH), dtype=u.dtype)
        be.copy_columns(u, 0, gates, 0, H)
        drop = None
        if training and self._dropout > 0:
            keep = 1.0 - self._dropout
            fd, drop = self._forget_dropout(be, sg, To, N * GH, keep)
            be.copy_columns(fd, H, gates, H, H)
            be.copy_columns(sg, 2 * H, gates, 2 * H, GH - 2 * H)
        else:
            be.copy_columns(sg, H, gates, H, GH - H)
        g3 = gates.reshape(To, N, GH)
        if not bidir:
            hs, s_q = call_op(self, be, "qrnn.forward", g3, h0s[0], pooling=self._pooling,
                              reverse=self._mode == "reverse")
            pools, y, s_cat = [s_q], hs.reshape(To * N, H), None
        else:
            h1, s1 = call_op(self, be, "qrnn.forward", g3, h0s[0], pooling=self._pooling,
                             reverse=False)
            h2, s2 = call_op(self, be, "qrnn.forward", g3, h0s[1], pooling=self._pooling,
                             reverse=True)
            pools = [s1, s2]
            h1, h2 = h1.reshape(To * N, H), h2.reshape(To * N, H)
            if self._mode == "bidirectional_sum":
                y, s_cat = h1 + h2, None
            else:
                y, s_cat = be.empty((To * N, 2 * H), dtype=h1.dtype), True
                be.copy_columns(h1, 0, y, 0, H)
                be.copy_columns(h2, 0, y, H, H)
        self._saved = dict(x_shape=tuple(int(v) for v in x.shape),
                           in_shapes=[tuple(v.shape) for v in xs], To=To, s_tc=s_tc,
                           s_bias=s_bias, s_act=s_act, s_sig=s_sig, drop=drop,
                           pools=pools, s_cat=s_cat)
        Hout = 2 * H if self._mode == "bidirectional_concat" else H
        return [y.reshape((To,) + tuple(x.shape[1:3]) + (1, 1, 1, Hout))]

    def _forget_dropout(self, be, sg, To, M, keep):
        """f' = 1 + mask * (f - 1) on every step with one mask (the same seed per step)."""
        from refnn.neoml.Dnn._activation import _row
        seed = self._dnn.random.seed32()
        steps = (sg - 1).reshape(To, M)
        out, saved = be.empty(steps.shape, dtype=np.float32), []
        for t in range(To):
            y_t, s_t = call_op(self, be, "dropout.forward", _row(be, steps, t), keep=keep,
                               seed=seed, scale=1.0)
            out[t] = y_t
            saved.append(s_t)
        return (out + 1).reshape(sg.shape), saved

    def _backward(self, be, dys, need_dx):
        from refnn.neoml.Dnn._activation import _row
        sv = self._saved
        x_shape, To, H = sv["x_shape"], sv["To"], self._hidden
        N, GH = x_shape[1] * x_shape[2], self._gate_rows()
        dy = dys[0].reshape(To * N, -1)
        if len(sv["pools"]) == 1:
            dhs = [dy]
        elif sv["s_cat"] is None:
            dhs = [dy, dy]
        else:
            dhs = [be.copy_columns(dy, k * H, be.empty((To * N, H), dtype=dy.dtype), 0, H)
                   for k in (0, 1)]
        dgates, dh0s = None, []
        for dh, s_q in zip(dhs, sv["pools"]):
            dg, dh0 = call_op(self, be, "qrnn.backward", dh.reshape(To, N, H), s_q)
            dgates = dg if dgates is None else dgates + dg
            dh0s.append(dh0)
        dgates = dgates.reshape(To * N, GH)

        def block(col0, ncols):
            """dgates' columns [col0, col0 + ncols), zero elsewhere."""
            return be.copy_columns(dgates, col0, be.zeros(dgates.shape, dtype=dgates.dtype),
                                   col0, ncols)
        du = block(0, H)
        if sv["drop"] is not None:
            dsg = block(2 * H, GH - 2 * H)
            dfd = block(H, H).reshape(To, -1)
            dsteps = be.empty(dfd.shape, dtype=np.float32)
            for t, s_t in enumerate(sv["drop"]):
                dsteps[t] = call_op(self, be, "dropout.backward", _row(be, dfd, t), s_t)[0]
            dsg = dsg + dsteps.reshape(dsg.shape)
        else:
            dsg = block(H, GH - H)
        op, _ = QRNN_ACTIVATIONS[self._activation]
        da = call_op(self, be, f"{op}.backward", du, sv["s_act"])[0] + \
            call_op(self, be, "sigmoid.backward", dsg, sv["s_sig"])[0]
        da, db = call_op(self, be, "bias.backward", da, sv["s_bias"])
        self._accumulate("free_term", db)
        dx, dw = call_op(self, be, "time_conv.backward", da.reshape(To, N, GH), sv["s_tc"])
        self._accumulate("filter", dw)
        dxs = [dx.reshape(x_shape)]
        for k, dh0 in zip((1, 2), dh0s):
            if k < len(sv["in_shapes"]):
                dxs.append(None if dh0 is None else dh0.reshape(sv["in_shapes"][k]))
        while len(dxs) < len(sv["in_shapes"]):
            dxs.append(None)
        return dxs
