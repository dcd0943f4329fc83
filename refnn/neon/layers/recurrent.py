"""Recurrent layers (neon.layers.recurrent) and the LookupTable (neon.layers.layer).

Layout (neon's). A sequence tensor is (features, nsteps * batch) with time-major column
blocks: column ``t * N + n`` is step t of sample n. A layer's ``in_shape`` / ``out_shape``
is (features, nsteps). refnn's recurrent and sequence ops are time-major batch-first
(T, N, C), which is exactly the transpose of neon's tensor viewed as (T*N, C): a layer
converts at its edge with ``be.to_nc`` + a reshape, and back with a reshape +
``be.from_nc``. All the arithmetic is refnn's ops (``be.rb.op(...)``):

    Recurrent  -> rnn        LSTM, BiLSTM -> lstm     GRU -> gru     BiRNN -> rnn
    RecurrentSum / RecurrentMean / RecurrentLast -> seq_sum / seq_mean / seq_last
    LookupTable -> lookup (dense scatter-add gradient) and lookup_sgd (sparse SGD step)

Weights (neon's). One parameter ``W`` of shape (nin + nout + 1, ngates * nout) holds,
as in neon, ``W_input`` (ngates*nout, nin), ``W_recur`` (ngates*nout, nout) and the bias
``b`` (ngates*nout, 1) as reshaped views of its row blocks (BiRNN/BiLSTM: twice, forward
then backward: 2 * (nin + nout + 1) rows). The gate blocks are in neon's order and the
layer permutes them into the op's (NeoML's) order at the op edge, every call:

    LSTM  neon i, f, o, g      -> op g, f, i, o
    GRU   neon r, z, c (hcan)  -> op z', r, n  with z' = 1 - z

neon's GRU interpolates h = (1 - z) h_prev + z hcan, the op h = (1 - z') n + z' h_prev;
since 1 - sigmoid(a) = sigmoid(-a), z' is the op's update gate with the z block of
W_input, W_recur and b negated (and its gradients negated back). Both reset the previous
state *before* the recurrent product of the candidate, so nothing else changes.

Activations: ``activation`` (default Tanh) and ``gate_activation`` (default Logistic)
are any transform that maps onto a refnn activation -- Identity, Rectlin (relu, or
leaky_relu with its slope), Explin (elu), Tanh, Logistic -- and become the ops'
``activation`` / ``gate_activation``; ``None`` means the defaults. GRU's gate_activation
must be Logistic (its update gate is neon's 1 - z through sigmoid(-a), below).
Anything else (Softmax, Normalizer, ...) raises ParameterError naming the layer.

State (neon's ``reset_cells``). The final hidden state (and LSTM cell state) of a
minibatch is kept and is the initial state of the next one, unless ``reset_cells=True``
(then every minibatch starts from zeros). ``final_state()`` is that state (nout, N);
``fprop(..., init_state=h)`` sets the initial hidden state explicitly (sequence to
sequence models) and ``get_final_hidden_error()`` is the gradient w.r.t. the initial
hidden state after ``bprop``. Two deliberate differences from neon: neon forgets the
state whenever a *different input tensor object* arrives (refnn's layers return new
tensors each call, so the state is kept by call order instead), and neon leaves the
step-0 term dW_recur += delta_0 h_init^T out of its gradient when the state is carried
over; refnn's ops return the true gradient of the forward that was run.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neon.backends.backend import Tensor
from refnn.neon.layers.layer import Layer, ParameterLayer
from refnn.neon.transforms.activation import Logistic, Tanh
from refnn.ops.recurrent import CELL_ACTIVATIONS

_MAPPABLE = "Identity, Rectlin, Explin, Tanh, Logistic"

#: per cell: the op's gate blocks in its row order, each as (neon block, sign)
_BLOCKS = {
    "rnn": ((0, 1),),
    "lstm": ((3, 1), (1, 1), (0, 1), (2, 1)),    # neon i, f, o, g -> op g, f, i, o
    "gru": ((1, -1), (0, 1), (2, 1)),            # neon r, z, c -> op 1-z, r, n
}
_NGATES = {"rnn": 1, "lstm": 4, "gru": 3}


def interpret_in_shape(xshape):
    """(nin, nsteps) of a layer's in_shape: an int is one step; (nin, nsteps) as is;
    a longer tuple has nsteps last (neon's helper of the same name)."""
    if isinstance(xshape, (int, np.integer)):
        return int(xshape), 1
    xshape = tuple(int(s) for s in xshape)
    if len(xshape) == 1:
        return xshape[0], 1
    if len(xshape) == 2:
        return xshape
    return int(np.prod(xshape[:-1])), xshape[-1]


def _in_shape(layer):
    """(nin, nsteps) of the layer's configured in_shape; ShapeError naming the layer when
    it has no feature or no time step (a sequence of 0 steps would divide by zero)."""
    nin, nsteps = interpret_in_shape(layer.in_shape)
    if nin < 1 or nsteps < 1:
        raise ShapeError(f"{layer.name} ({type(layer).__name__}): in_shape "
                         f"{layer.in_shape!r} gives {nin} features and {nsteps} time steps; "
                         f"both must be >= 1")
    return int(nin), int(nsteps)


def _positive(layer, what, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{layer.name} ({type(layer).__name__}): {what} must be a "
                             f"positive integer, got {value!r}")
    return int(value)


def _op_activation(transform):
    """The op activation (name, {parameter: value}) of a neon transform that maps onto one
    of refnn.ops.recurrent.CELL_ACTIVATIONS (Identity, Rectlin, Explin, Tanh, Logistic),
    or None."""
    op = getattr(transform, "OP", None)
    if isinstance(op, str) and op in CELL_ACTIVATIONS:
        return op, dict(transform.op_params())
    return None


def _cell_activation(layer, activation):
    """The op's ``activation`` for neon's ``activation`` transform (None: Tanh)."""
    if activation is None:
        return "tanh"
    spec = _op_activation(activation)
    if spec is None:
        raise ParameterError(f"{layer.name} ({type(layer).__name__}): activation must be "
                             f"a transform that maps onto a refnn activation ({_MAPPABLE}), "
                             f"got {type(activation).__name__}")
    return spec


def _gate_activation(layer, gate_activation):
    """The op's ``gate_activation`` for neon's (None: Logistic). GRU takes Logistic only:
    the op's update gate is neon's 1 - z, computed as sigmoid(-a) (module docstring),
    which holds for no other transform."""
    if gate_activation is None:
        return "sigmoid"
    spec = _op_activation(gate_activation)
    if layer.CELL == "gru" and (spec is None or spec[0] != "sigmoid"):
        raise ParameterError(f"{layer.name} ({type(layer).__name__}): gate_activation must "
                             f"be Logistic (neon's update gate 1 - z is the op's gate "
                             f"through 1 - sigmoid(a) = sigmoid(-a)), got "
                             f"{type(gate_activation).__name__}")
    if spec is None:
        raise ParameterError(f"{layer.name} ({type(layer).__name__}): gate_activation must "
                             f"be a transform that maps onto a refnn activation "
                             f"({_MAPPABLE}), got {type(gate_activation).__name__}")
    return spec


def _check_sequence(layer, inputs, nin, nsteps):
    """inputs must be a (nin, nsteps * N) Tensor; returns N."""
    if not isinstance(inputs, Tensor):
        raise ParameterError(f"{layer.name} ({type(layer).__name__}): inputs must be a "
                             f"Tensor, got {type(inputs).__name__}")
    shape = inputs.shape
    if len(shape) != 2 or shape[0] != nin or shape[1] < nsteps or shape[1] % nsteps:
        raise ShapeError(f"{layer.name} ({type(layer).__name__}): inputs must have shape "
                         f"({nin}, {nsteps} * batch) (features, nsteps * batch, time-major "
                         f"column blocks), got {shape}")
    return shape[1] // nsteps


# ------------------------------------------------------------ the op edge
def _dense(be, t):
    """A neon Tensor (or backend array) as a C-contiguous backend array that starts at
    its buffer's beginning: device views of row blocks (W's gate blocks, one direction
    of a BiRNN's error) start at an offset that OpenCL kernels cannot take, so those are
    copied on the device; host arrays are returned as they are."""
    t = t if isinstance(t, Tensor) else be.wrap(t)
    a = t._data
    if getattr(a, "offset", 0) or not a.flags.c_contiguous:
        copy = be.empty(t.shape)
        copy[:] = t
        return copy._data
    return a


def _seq_in(be, t, T, N):
    """neon (C, T*N) Tensor -> the op's (T, N, C) array."""
    a = be.to_nc(be.wrap(_dense(be, t)))
    return be._reshape(a, (T, N, a.shape[1]))


def _seq_out(be, a):
    """The op's (T, N, C) array -> neon (C, T*N) Tensor."""
    T, N, C = a.shape
    return be.from_nc(be._reshape(a, (T * N, C)))


def _step_out(be, a, t):
    """Step t of the op's (T, N, C) array as a neon (C, N) Tensor (a copy)."""
    T, N, C = a.shape
    return be.from_nc(_dense(be, be._reshape(a, (T * N, C))[t * N:(t + 1) * N]))


def _to_op(be, src, blocks, H):
    """neon gate blocks (row blocks of H of the Tensor src) -> a backend array with
    the op's block order and signs (the rnn's single block: src itself, made dense)."""
    if blocks == _BLOCKS["rnn"]:
        return _dense(be, src)
    out = be.empty(src.shape)
    for j, (i, sign) in enumerate(blocks):
        block = src[i * H:(i + 1) * H]
        out[j * H:(j + 1) * H] = block if sign > 0 else -block
    return out._data


def _from_op(be, dst, a, blocks, H):
    """dst (a neon-order Tensor view) <- the op-order array a, blocks moved back."""
    src = be.wrap(be._reshape(a, dst.shape))
    for j, (i, sign) in enumerate(blocks):
        block = src[j * H:(j + 1) * H]
        dst[i * H:(i + 1) * H] = block if sign > 0 else -block


def _views(W, G, nout, nin, input_rows, recur_rows, bias_row):
    """neon's reshaped views of W's row blocks: W_input (G*nout, nin), W_recur
    (G*nout, nout), b (G*nout, 1)."""
    g_nout = G * nout
    return (W[input_rows[0]:input_rows[1]].reshape((g_nout, nin)),
            W[recur_rows[0]:recur_rows[1]].reshape((g_nout, nout)),
            W[bias_row:bias_row + 1].reshape((g_nout, 1)))


def _forward(layer, kind, x, Wi, Wr, b, h0, c0, reverse, activation="tanh",
             gate_activation="sigmoid"):
    """Run the cell's op on x (T, N, nin) with neon-order weight Tensors; returns
    (hs, cs or None, saved)."""
    be, H = layer.be, Wr.shape[1]
    blocks = _BLOCKS[kind]
    w, u = _to_op(be, Wi, blocks, H), _to_op(be, Wr, blocks, H)
    bb = be._reshape(_to_op(be, b, blocks, H), (b.shape[0],))
    if kind == "lstm":
        (hs, cs), saved = be.rb.op("lstm.forward")(x, w, u, bb, h0, c0, reverse=reverse,
                                                   gate_activation=gate_activation,
                                                   activation=activation)
        return hs, cs, saved
    params = {"activation": activation}
    if kind == "gru":
        params["gate_activation"] = gate_activation
    hs, saved = be.rb.op(f"{kind}.forward")(x, w, u, bb, h0, reverse=reverse, **params)
    return hs, None, saved


def _backward(layer, kind, dhs, saved, dWi, dWr, db):
    """BPTT through the cell's op; the weight gradients go into the neon-order views;
    returns (dx, dh0, dc0)."""
    be, H = layer.be, dWr.shape[1]
    blocks = _BLOCKS[kind]
    if kind == "lstm":
        dx, dw, du, dbo, dh0, dc0 = be.rb.op("lstm.backward")(
            (dhs, be.rb.zeros(dhs.shape)), saved)
    else:
        dx, dw, du, dbo, dh0 = be.rb.op(f"{kind}.backward")(dhs, saved)
        dc0 = None
    _from_op(be, dWi, dw, blocks, H)
    _from_op(be, dWr, du, blocks, H)
    _from_op(be, db, dbo, blocks, H)
    return dx, dh0, dc0


class _RecurrentBase(ParameterLayer):
    """What Recurrent/LSTM/GRU and BiRNN/BiLSTM share: arguments, W and its filling."""

    CELL = "rnn"

    def __init__(self, output_size, init, init_inner=None, activation=None,
                 gate_activation=None, reset_cells=False, name=None):
        super().__init__(init, name)
        self.nout = _positive(self, "output_size", output_size)
        self.output_size = self.h_nout = self.nout
        self.ngates = _NGATES[self.CELL]
        self.activation = activation if activation is not None else Tanh()
        self._act = _cell_activation(self, activation)
        self._gact = "sigmoid"
        if self.CELL != "rnn":
            self._gact = _gate_activation(self, gate_activation)
            self.gate_activation = gate_activation if gate_activation is not None \
                else Logistic()
        self.init_inner = init_inner
        self.reset_cells = bool(reset_cells)
        self.W_input = None
        self.nsteps = None
        self.owns_output = False        # outputs come from the op, not an iobuf

    def allocate(self, shared_outputs=None):
        if self.W is None:
            self.init_params(self.weight_shape)

    def _new_W(self, rows):
        if self.init is None:
            raise ParameterError(f"{self.name}: no initializer (init=) was given")
        self.W = self.be.empty((rows, self.ngates * self.nout), name=f"{self.name}_W")
        self.dW = self.be.zeros_like(self.W, name=f"{self.name}_dW")

    def _fill(self, W_input, W_recur, b):
        """neon's filling: each gate block of W_input with init, of W_recur with
        init_inner (init if None); b = 0."""
        H = self.nout
        inner = self.init if self.init_inner is None else self.init_inner
        for mat, fn in ((W_input, self.init), (W_recur, inner)):
            for g in range(self.ngates):
                fn.fill(mat[g * H:(g + 1) * H])
        b.fill(0.0)

    def _zeros_state(self, N):
        return self.be.zeros((self.nout, N))

    def _state_in(self, state, N):
        """The op's (N, H) initial state from a neon (H, N) state Tensor."""
        if state is None or self.reset_cells or state.shape != (self.nout, N):
            state = self._zeros_state(N)
        return self.be.to_nc(state)


class Recurrent(_RecurrentBase):
    """Basic recurrent layer, h_t = act(W_input x_t + W_recur h_{t-1} + b) (refnn ``rnn``).

    output_size: hidden units; init fills W_input (and W_recur unless init_inner is
    given); activation: Tanh (default) or another transform that maps onto a refnn
    activation (module docstring), e.g. Rectlin(); reset_cells=False keeps the final
    state for the next minibatch. Input (nin, nsteps * N), output (output_size,
    nsteps * N), time-major column blocks.
    """

    OPS = ("rnn",)
    CELL = "rnn"

    def __init__(self, output_size, init, init_inner=None, activation=None,
                 reset_cells=False, name=None):
        super().__init__(output_size, init, init_inner, activation, None, reset_cells,
                         name)
        self.h_last = self.c_last = None
        self.final_hidden_error = None

    def __str__(self):
        return (f"{type(self).__name__} Layer '{self.name}': {self.nin} inputs, "
                f"{self.nout} outputs, {self.nsteps} steps")

    def configure(self, in_obj):
        super().configure(in_obj)
        self.nin, self.nsteps = _in_shape(self)
        self.i_shape = (self.nin, self.nsteps)
        self.out_shape = (self.nout, self.nsteps)
        self.gate_shape = (self.nout * self.ngates, self.nsteps)
        self.weight_shape = (self.nout, self.nin)
        return self

    def init_params(self, shape):
        nout, nin = shape
        self._new_W(nin + nout + 1)
        self.W_input, self.W_recur, self.b = _views(self.W, self.ngates, nout, nin,
                                                   (0, nin), (nin, nin + nout), nin + nout)
        self.dW_input, self.dW_recur, self.db = _views(self.dW, self.ngates, nout, nin,
                                                      (0, nin), (nin, nin + nout),
                                                      nin + nout)
        self._fill(self.W_input, self.W_recur, self.b)

    def fprop(self, inputs, inference=False, init_state=None):
        """inputs (nin, nsteps * N) -> outputs (nout, nsteps * N)."""
        be = self.be
        N = _check_sequence(self, inputs, self.nin, self.nsteps)
        if init_state is not None:
            if not isinstance(init_state, Tensor) or init_state.shape != (self.nout, N):
                got = (f"a {type(init_state).__name__}" if not isinstance(init_state, Tensor)
                       else "shape") + f" {getattr(init_state, 'shape', '')}"
                raise ShapeError(f"{self.name} ({type(self).__name__}): init_state must "
                                 f"be a ({self.nout}, {N}) Tensor (output_size, batch), "
                                 f"got {got.rstrip()}")
            h0 = be.to_nc(init_state)
        else:
            h0 = self._state_in(self.h_last, N)
        c0 = self._state_in(self.c_last, N) if self.CELL == "lstm" else None
        self.inputs = inputs
        x = _seq_in(be, inputs, self.nsteps, N)
        hs, cs, self._saved = _forward(self, self.CELL, x, self.W_input, self.W_recur,
                                       self.b, h0, c0, False, self._act, self._gact)
        self.h_last = _step_out(be, hs, self.nsteps - 1)
        if cs is not None:
            self.c_last = _step_out(be, cs, self.nsteps - 1)
        self.outputs = _seq_out(be, hs)
        return self.outputs

    def bprop(self, error, alpha=1.0, beta=0.0):
        """error (nout, nsteps * N) -> deltas (nin, nsteps * N); fills dW."""
        be = self.be
        N = _check_sequence(self, error, self.nout, self.nsteps)
        dhs = _seq_in(be, error, self.nsteps, N)
        dx, dh0, _ = _backward(self, self.CELL, dhs, self._saved, self.dW_input,
                               self.dW_recur, self.db)
        self.final_hidden_error = be.from_nc(dh0)
        self.deltas = _seq_out(be, dx) if self.need_dx else None
        return self.deltas

    def final_state(self):
        """The last step's hidden state (nout, N): the next minibatch starts from it."""
        return self.h_last

    def get_final_hidden_error(self):
        """d cost / d (initial hidden state) (nout, N) of the last bprop."""
        return self.final_hidden_error


class _GatedRecurrent(Recurrent):
    """Recurrent with neon's gate_activation argument (LSTM, GRU)."""

    def __init__(self, output_size, init, init_inner=None, activation=None,
                 gate_activation=None, reset_cells=False, name=None):
        _RecurrentBase.__init__(self, output_size, init, init_inner, activation,
                                gate_activation, reset_cells, name)
        self.h_last = self.c_last = None
        self.final_hidden_error = None


class LSTM(_GatedRecurrent):
    """Long Short-Term Memory layer (refnn ``lstm``), neon's gates and equations:

        [i, f, o] = gate_activation(W_input x_t + W_recur h_{t-1} + b)   (blocks 0-2)
        g = activation(...)                                              (block 3)
        c_t = f * c_{t-1} + i * g,   h_t = o * activation(c_t)

    W's gate blocks are in neon's order i, f, o, g and are permuted into the op's
    g, f, i, o at the op edge. activation (default Tanh) and gate_activation (default
    Logistic): any mappable transform (module docstring).
    """

    OPS = ("lstm",)
    CELL = "lstm"

    def final_cell_state(self):
        """The last step's cell state (nout, N)."""
        return self.c_last


class GRU(_GatedRecurrent):
    """Gated Recurrent Unit (refnn ``gru``), neon's gates and equations:

        [r, z] = gate_activation(W_input x_t + W_recur h_{t-1} + b)      (blocks 0-1)
        hcan = activation(W_input_c x_t + W_recur_c (r * h_{t-1}) + b_c)  (block 2)
        h_t = (1 - z) * h_{t-1} + z * hcan

    The op's update gate is 1 - z: the z block is negated at the op edge (see the module
    docstring). activation: any mappable transform (default Tanh); gate_activation:
    Logistic (the default) only.
    """

    OPS = ("gru",)
    CELL = "gru"


# ------------------------------------------------------------ bidirectional
class BiRNN(_RecurrentBase):
    """Bidirectional recurrent layer (refnn ``rnn`` forward and ``reverse=True``).

    Output (2 * output_size, nsteps * N): rows [0, nout) the forward direction, rows
    [nout, 2 nout) the backward one (run from the last step to the first; its state at
    step t depends on steps t..T-1). With split_inputs=True the forward direction reads
    the first half of the input features and the backward one the second half (how
    DeepBiRNN stacks layers); otherwise both read all of it and the input deltas are
    summed. W is (2 * (nin + nout + 1), ngates * nout): W_input_f, W_input_b, W_recur_f,
    W_recur_b, b_f, b_b (neon's layout). Carried state: the forward direction's last
    step and the backward direction's first step.
    """

    OPS = ("rnn",)
    CELL = "rnn"

    def __init__(self, output_size, init, init_inner=None, activation=None,
                 reset_cells=False, split_inputs=False, name=None):
        super().__init__(output_size, init, init_inner, activation, None, reset_cells,
                         name)
        self.split_inputs = bool(split_inputs)
        self._states = {}

    def __str__(self):
        return (f"{type(self).__name__} Layer '{self.name}': {self.nin} inputs, "
                f"({self.nout} outputs) * 2, {self.nsteps} steps")

    def configure(self, in_obj):
        super().configure(in_obj)
        self.nin, self.nsteps = _in_shape(self)
        if self.split_inputs and self.nin % 2:
            raise ShapeError(f"{self.name} ({type(self).__name__}): split_inputs=True "
                             f"needs an even number of input features, got {self.nin}")
        self.out_shape = (2 * self.nout, self.nsteps)
        self.o_shape = (self.nout, self.nsteps)
        self.i_shape = (self.nin // 2 if self.split_inputs else self.nin, self.nsteps)
        self.weight_shape = (self.nout, self.nin)
        return self

    def init_params(self, shape):
        nout, nin = self.nout, self.i_shape[0]
        self._new_W(2 * (nin + nout + 1))
        G, v = self.ngates, _views
        for W, pre in ((self.W, ""), (self.dW, "d")):
            f = v(W, G, nout, nin, (0, nin), (2 * nin, 2 * nin + nout), 2 * (nin + nout))
            b = v(W, G, nout, nin, (nin, 2 * nin), (2 * nin + nout, 2 * nin + 2 * nout),
                  2 * (nin + nout) + 1)
            setattr(self, pre + "W_input_f", f[0])
            setattr(self, pre + "W_recur_f", f[1])
            setattr(self, pre + "b_f", f[2])
            setattr(self, pre + "W_input_b", b[0])
            setattr(self, pre + "W_recur_b", b[1])
            setattr(self, pre + "b_b", b[2])
        self.W_input = self.W_input_f
        self._fill(self.W_input_f, self.W_recur_f, self.b_f)
        self._fill(self.W_input_b, self.W_recur_b, self.b_b)

    def _halves(self, t):
        n = self.i_shape[0]
        return (t[:n], t[n:]) if self.split_inputs else (t, t)

    def fprop(self, inputs, inference=False):
        be, T, H = self.be, self.nsteps, self.nout
        N = _check_sequence(self, inputs, self.nin, T)
        self.inputs = inputs
        st = self._states
        lstm = self.CELL == "lstm"
        xf, xb = (_seq_in(be, t, T, N) for t in self._halves(inputs))
        hs_f, cs_f, self._saved_f = _forward(
            self, self.CELL, xf, self.W_input_f, self.W_recur_f, self.b_f,
            self._state_in(st.get("h_f"), N),
            self._state_in(st.get("c_f"), N) if lstm else None, False, self._act,
            self._gact)
        hs_b, cs_b, self._saved_b = _forward(
            self, self.CELL, xb, self.W_input_b, self.W_recur_b, self.b_b,
            self._state_in(st.get("h_b"), N),
            self._state_in(st.get("c_b"), N) if lstm else None, True, self._act,
            self._gact)
        st["h_f"], st["h_b"] = _step_out(be, hs_f, T - 1), _step_out(be, hs_b, 0)
        if lstm:
            st["c_f"], st["c_b"] = _step_out(be, cs_f, T - 1), _step_out(be, cs_b, 0)
        out = be.empty((2 * H, T * N))
        out[:H] = _seq_out(be, hs_f)
        out[H:] = _seq_out(be, hs_b)
        self.outputs = out
        return out

    def bprop(self, error, alpha=1.0, beta=0.0):
        be, T, H = self.be, self.nsteps, self.nout
        N = _check_sequence(self, error, 2 * H, T)
        dx_f, _, _ = _backward(self, self.CELL, _seq_in(be, error[:H], T, N),
                               self._saved_f, self.dW_input_f, self.dW_recur_f, self.db_f)
        dx_b, _, _ = _backward(self, self.CELL, _seq_in(be, error[H:], T, N),
                               self._saved_b, self.dW_input_b, self.dW_recur_b, self.db_b)
        if not self.need_dx:
            self.deltas = None
            return None
        deltas = be.empty((self.nin, T * N))
        if self.split_inputs:
            n = self.i_shape[0]
            deltas[:n] = _seq_out(be, dx_f)
            deltas[n:] = _seq_out(be, dx_b)
        else:
            deltas[:] = _seq_out(be, dx_f) + _seq_out(be, dx_b)
        self.deltas = deltas
        return deltas

    def final_state(self):
        """(forward direction's last-step state, backward direction's first-step state),
        each (nout, N)."""
        return self._states.get("h_f"), self._states.get("h_b")


class BiLSTM(BiRNN):
    """Bidirectional LSTM (refnn ``lstm`` forward and ``reverse=True``): BiRNN's layout
    with LSTM cells (neon's gate order i, f, o, g in W; see LSTM)."""

    OPS = ("lstm",)
    CELL = "lstm"

    def __init__(self, output_size, init, init_inner=None, activation=None,
                 gate_activation=None, reset_cells=False, split_inputs=False, name=None):
        _RecurrentBase.__init__(self, output_size, init, init_inner, activation,
                                gate_activation, reset_cells, name)
        self.split_inputs = bool(split_inputs)
        self._states = {}


def _depth(name, depth):
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ParameterError(f"{name}: depth must be a positive integer, got {depth!r}")


def _nout(name, nout):
    if isinstance(nout, bool) or not isinstance(nout, (int, np.integer)) or nout < 1:
        raise ParameterError(f"{name}: nout must be a positive integer, got {nout!r}")


class DeepBiRNN(list):
    """``depth`` stacked BiRNN layers: the first reads all its input, the next ones use
    split_inputs=True (forward reads the forward half, backward the backward half), as
    in neon. neon's batch_norm (BiBNRNN) and bi_sum (BiSum) variants are not provided."""

    def __init__(self, nout, init, init_inner=None, activation=None, reset_cells=False,
                 depth=1, batch_norm=False, bi_sum=False):
        super().__init__()
        _depth("DeepBiRNN", depth)
        _nout("DeepBiRNN", nout)
        if batch_norm or bi_sum:
            raise ParameterError("DeepBiRNN: batch_norm=True (BiBNRNN) and bi_sum=True "
                                 "(BiSum) are not provided")
        for k in range(depth):
            self.append(BiRNN(nout, init, init_inner, activation, reset_cells,
                              split_inputs=k > 0))


class DeepBiLSTM(list):
    """``depth`` stacked BiLSTM layers (the first reads all its input, the next ones use
    split_inputs=True), as in neon."""

    def __init__(self, nout, init, init_inner=None, activation=None, gate_activation=None,
                 reset_cells=False, depth=1):
        super().__init__()
        _depth("DeepBiLSTM", depth)
        _nout("DeepBiLSTM", nout)
        for k in range(depth):
            self.append(BiLSTM(nout, init, init_inner, activation, gate_activation,
                               reset_cells, split_inputs=k > 0))


# ------------------------------------------------------------ collapsing time
class RecurrentOutput(Layer):
    """Base of the layers that collapse the time axis: (nin, nsteps * N) -> (nin, N)
    through the sequence op named in ``OPS`` (no parameters). Use RecurrentSum,
    RecurrentMean or RecurrentLast."""

    OPS = ()

    def __init__(self, name=None):
        super().__init__(name)
        if not self.OPS:
            raise ParameterError(f"{self.name}: RecurrentOutput is the base class; use "
                                 "RecurrentSum, RecurrentMean or RecurrentLast")
        self.owns_output = False
        self.nin = self.nsteps = None

    def __str__(self):
        return (f"RecurrentOutput choice {self.name} : ({self.nin}, {self.nsteps}) inputs, "
                f"{self.nin} outputs")

    def configure(self, in_obj):
        super().configure(in_obj)
        self.nin, self.nsteps = _in_shape(self)
        self.out_shape = (self.nin, 1)
        return self

    def fprop(self, inputs, inference=False):
        be = self.be
        N = _check_sequence(self, inputs, self.nin, self.nsteps)
        self.inputs = inputs
        y, self._saved = be.rb.op(self.OPS[0] + ".forward")(
            _seq_in(be, inputs, self.nsteps, N))
        self.outputs = be.from_nc(y)
        return self.outputs

    def bprop(self, error, alpha=1.0, beta=0.0):
        be = self.be
        _check_sequence(self, error, self.nin, 1)
        (dx,) = be.rb.op(self.OPS[0] + ".backward")(be.to_nc(error), self._saved)
        self.deltas = _seq_out(be, dx)
        return self.deltas


class RecurrentSum(RecurrentOutput):
    """y = sum over the time steps (refnn ``seq_sum``)."""
    OPS = ("seq_sum",)


class RecurrentMean(RecurrentOutput):
    """y = mean over the time steps (refnn ``seq_mean``)."""
    OPS = ("seq_mean",)


class RecurrentLast(RecurrentOutput):
    """y = the last time step's output (refnn ``seq_last``)."""
    OPS = ("seq_last",)


# ------------------------------------------------------------ embeddings
class LookupTable(ParameterLayer):
    """A word embedding: integer ids (nin, N) (nin = ids per sample, e.g. the time steps
    of a sentence) -> (embedding_dim, nin * N) with time-major column blocks (column
    t * N + n embeds ids[t, n]); W is (vocab_size, embedding_dim) (neon's layout).

    fprop runs refnn ``lookup``; an id outside [0, vocab_size) raises (naming the layer).
    bprop (update=True) fills dW with the scatter-add of the error columns per id --
    neon's compound_bprop_lut -- so any optimizer trains W (rows not seen in the
    minibatch get a zero gradient); pad_idx's row is zeroed at allocation and never gets
    a gradient. update=False freezes the table (dW stays 0). ``sparse_update(lr)`` is
    the sparse alternative for large vocabularies: plain SGD (refnn ``lookup_sgd``) on
    the seen rows only, scaled by 1 / batch size like neon's optimizers -- call it after
    bprop instead of handing the table to an optimizer.
    """

    OPS = ("lookup", "lookup_sgd")

    def __init__(self, vocab_size, embedding_dim, init, update=True, pad_idx=None,
                 name=None):
        super().__init__(init, name)
        self.vocab_size = _positive(self, "vocab_size", vocab_size)
        self.embedding_dim = _positive(self, "embedding_dim", embedding_dim)
        if pad_idx is not None and not (isinstance(pad_idx, (int, np.integer))
                                        and 0 <= pad_idx < self.vocab_size):
            raise ParameterError(f"{self.name} (LookupTable): pad_idx must be None or an "
                                 f"id in [0, {self.vocab_size - 1}], got {pad_idx!r}")
        self.update = bool(update)
        self.pad_idx = pad_idx
        self.owns_output = False
        self.nin = self.nsteps = None

    def __str__(self):
        return (f"LookupTable Layer : {self.nin} inputs, ({self.embedding_dim}, {self.nin}) "
                "outputs size")

    def configure(self, in_obj):
        super().configure(in_obj)
        self.nin, self.nsteps = _in_shape(self)
        self.out_shape = (self.embedding_dim, self.nin)
        self.weight_shape = (self.vocab_size, self.embedding_dim)
        return self

    def allocate(self, shared_outputs=None):
        if self.W is None:
            self.init_params(self.weight_shape)
            if self.pad_idx is not None:
                self.W[self.pad_idx:self.pad_idx + 1] = 0.0

    def fprop(self, inputs, inference=False):
        be = self.be
        if not isinstance(inputs, Tensor) or len(inputs.shape) != 2 \
                or inputs.shape[0] != self.nin:
            raise ShapeError(f"{self.name} (LookupTable): inputs must be a ({self.nin}, "
                             f"batch) Tensor of ids, got "
                             f"{getattr(inputs, 'shape', type(inputs).__name__)}")
        N = inputs.shape[1]
        self.inputs = inputs
        flat = be._reshape(_dense(be, inputs), (self.nin * N, 1))
        self._check_float_ids(flat)
        self._ids = flat.astype(np.int32)
        self._id_row = be.wrap(be._reshape(flat, (1, self.nin * N)))
        try:
            y, self._saved = be.rb.op("lookup.forward")(self._ids, self.W._data)
        except (ParameterError, ShapeError) as e:
            raise type(e)(f"{self.name} (LookupTable): {e}") from None
        self._N = N
        self.outputs = be.from_nc(be._reshape(y, (self.nin * N, self.embedding_dim)))
        return self.outputs

    def _check_float_ids(self, flat):
        """Float ids are truncated to int (neon's cast) and the lookup op checks the
        ints; a float the cast cannot represent (NaN, inf, beyond int32) would become an
        arbitrary int (NaN -> INT_MIN on x86, 0 on some GPUs), so it raises here, with its
        value."""
        if np.dtype(flat.dtype).kind != "f":
            return
        host = np.asarray(self.be.rb.to_host(flat), np.float64).reshape(-1)
        bad = ~np.isfinite(host) | (host <= -2.0 ** 31 - 1) | (host >= 2.0 ** 31)
        if bad.any():
            raise ParameterError(f"{self.name} (LookupTable): lookup: ids must be in [0, "
                                 f"{self.vocab_size - 1}] (the table has {self.vocab_size} "
                                 f"rows), got id {float(host[np.argmax(bad)])}")

    def _error_rows(self, error):
        """The op's (nin*N, 1, D) upstream gradient; pad_idx's columns zeroed."""
        be = self.be
        if tuple(error.shape) != (self.embedding_dim, self.nin * self._N):
            raise ShapeError(f"{self.name} (LookupTable): error must have shape "
                             f"{(self.embedding_dim, self.nin * self._N)}, got "
                             f"{error.shape}")
        if self.pad_idx is not None:
            masked = be.empty(error.shape)
            masked[:] = error * (self._id_row != float(self.pad_idx))
            error = masked
        return be._reshape(be.to_nc(error), (self.nin * self._N, 1, self.embedding_dim))

    def bprop(self, error, alpha=1.0, beta=0.0):
        """Fills dW (update=True); ids have no gradient: returns None."""
        self._dy = None
        if self.update:
            self._dy = self._error_rows(error)
            _, dtable = self.be.rb.op("lookup.backward")(self._dy, self._saved)
            self.dW[:] = self.be.wrap(dtable)
        self.deltas = None
        return None

    def sparse_update(self, learning_rate):
        """W[id] -= learning_rate / N * (sum of the last bprop's error columns of id), on
        the ids of the last fprop only (refnn ``lookup_sgd``)."""
        if not self.update:
            raise ParameterError(f"{self.name} (LookupTable): update=False freezes the "
                                 "table; sparse_update needs update=True")
        if getattr(self, "_dy", None) is None:
            raise ParameterError(f"{self.name} (LookupTable): sparse_update needs a bprop "
                                 "first")
        self.be.rb.op("lookup_sgd.update")(self.W._data, self._ids, self._dy,
                                           learning_rate=float(learning_rate) / self._N)
