"""Layers (neon.layers.layer): configure / allocate / fprop / bprop / get_params.

Tensors are neon's (features, batch). After a recurrent layer (or a LookupTable) a
layer's ``in_shape`` is (nfeatures, nsteps) and its input (nfeatures, nsteps * batch),
time-major (column t * N + n is step t of sample n): as in neon, every layer here treats
the steps as extra batch (Linear is y = W x over all nsteps * N columns, out_shape
(nout, nsteps); Bias, Activation, Dropout keep (nfeatures, nsteps)).

Every layer's arithmetic is a refnn op called through the backend
(``self.be.rb.op("linear.forward")``); the class attribute ``OPS``
names the ops a layer uses (read by ``refnn coverage``). The ops are batch-first, so
a layer converts at its edge with ``be.to_nc`` / ``be.from_nc`` where the op needs it
(linear, bias, softmax); elementwise ops take neon's tensors as they are. Between two
layers that both work batch-first (``TAKES_NC``) the hand-over on host backends is a
zero-copy transposed view, which ``be.to_nc`` undoes for free.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neon._object import NervanaObject
from refnn.neon.backends.backend import Tensor


def _nfeatures(shape):
    return int(np.prod(shape)) if isinstance(shape, (tuple, list)) else int(shape)


def _time_distributed(shape):
    """(nfeatures, nsteps) of an in_shape, neon's rule: a 2-tuple is (nfeatures, nsteps)
    (the output of a recurrent layer: tensors (nfeatures, nsteps * batch)); an int or
    any other tuple is nfeatures = prod(shape) in one step (tensors (nfeatures, batch))."""
    if isinstance(shape, (tuple, list)) and len(shape) == 2:
        return int(shape[0]), int(shape[1])
    return _nfeatures(shape), 1


class Layer(NervanaObject):
    """Top level generic neural network layer class.

    ``TAKES_NC``: the layer reads its inputs (and errors) only through ``be.to_nc``
    (or otherwise handles F-ordered tensors), so the layer before it may hand over
    the op's batch-first result as a zero-copy transposed view (``_to_next``,
    ``_to_prev``) instead of transposing it into neon's layout: on host backends a
    Convolution -> Bias -> Pooling -> ... -> Linear chain then never transposes.
    """

    OPS = ()
    TAKES_NC = False

    def __init__(self, name=None, parallelism="Unknown"):
        super().__init__(name)
        self.outputs = None
        self.has_params = False
        self.inputs = None
        self.owns_output = True
        self.owns_delta = False
        self.deltas = None
        self.parallelism = parallelism
        self.prev_layer = None
        self.next_layer = None
        self.in_shape = None
        self.out_shape = None
        self.need_dx = True
        self.nc_out = False     # the next layer TAKES_NC (set by its configure)

    def __str__(self):
        return f"Layer '{self.name}': {type(self).__name__}"

    def configure(self, in_obj):
        """Set ``in_shape`` from the previous layer, a shape, or a data iterator (and
        tell the previous layer whether this one takes its outputs as NC views)."""
        self.nc_out = False
        if isinstance(in_obj, Layer):
            self.prev_layer = in_obj
            in_obj.nc_out = type(self).TAKES_NC
            self.in_shape = in_obj.out_shape
        else:
            self.prev_layer = None
            if isinstance(in_obj, (tuple, int)):
                self.in_shape = in_obj
            elif isinstance(in_obj, Tensor):
                self.in_shape = (in_obj.shape[0],)
            elif hasattr(in_obj, "shape"):
                self.in_shape = in_obj.shape   # a data iterator
            else:
                raise ParameterError(f"{self.name}: cannot configure from a "
                                     f"{type(in_obj).__name__}")
        return self

    def allocate(self, shared_outputs=None):
        """Allocate the output buffer (custom layers may assign into it): (nfeatures,
        batch), or (nfeatures, nsteps * batch) for a (nfeatures, nsteps) out_shape."""
        if self.outputs is None and self.owns_output and self.out_shape is not None:
            rows, nsteps = _time_distributed(self.out_shape)
            if nsteps == 1:
                self.outputs = self.be.iobuf(self.out_shape, shared=shared_outputs)
            else:
                buf = self.be.iobuf(rows * nsteps, shared=shared_outputs)
                self.outputs = buf.reshape((rows, nsteps * self.be.bsz))

    def set_deltas(self, delta_buffers):
        """neon shares delta buffers between layers; refnn layers own theirs."""

    def fprop(self, inputs, inference=False):
        raise NotImplementedError(f"{type(self).__name__} must implement fprop")

    def bprop(self, error):
        raise NotImplementedError(f"{type(self).__name__} must implement bprop")

    def get_params(self):
        """[((param, grad), states), ...] of the layer (none for plain layers)."""
        return []

    def get_terminal(self):
        return self

    def get_description(self, get_weights=False, keep_states=False):
        desc = {"type": f"{type(self).__module__}.{type(self).__name__}",
                "config": {"name": self.name}}
        if get_weights and self.has_params:
            desc["params"] = {"W": self.W.get()}
        return desc

    def _to_next(self, a):
        """The op's batch-first (N, F) output as this layer's neon (F, N) outputs: a
        zero-copy transposed view if the next layer TAKES_NC, else a transposed copy."""
        return self.be.from_nc(a, view=self.nc_out)

    def _to_prev(self, a):
        """The op's batch-first (N, F) dX as this layer's neon (F, N) deltas: a
        zero-copy transposed view if the previous layer TAKES_NC, else a copy."""
        return self.be.from_nc(a, view=getattr(type(self.prev_layer), "TAKES_NC", False))

    def _check_input(self, inputs):
        """inputs must be a (nfeatures, batch) Tensor, or (nfeatures, nsteps * batch) for
        a (nfeatures, nsteps) in_shape."""
        if not isinstance(inputs, Tensor):
            raise ParameterError(f"{self.name}: inputs must be a Tensor, got "
                                 f"{type(inputs).__name__}")
        n, nsteps = _time_distributed(self.in_shape)
        shape = tuple(inputs.shape)
        if nsteps == 1:
            if len(shape) != 2 or shape[0] != n:
                raise ShapeError(f"{self.name} ({type(self).__name__}): inputs must have "
                                 f"shape ({n}, batch), got {shape}")
        elif len(shape) != 2 or shape[0] != n or shape[1] < nsteps or shape[1] % nsteps:
            raise ShapeError(f"{self.name} ({type(self).__name__}): inputs must have shape "
                             f"({n}, {nsteps} * batch) (in_shape {tuple(self.in_shape)}: "
                             f"features, nsteps * batch, time-major), got {shape}")


class ParameterLayer(Layer):
    """A layer with weights ``W`` (filled by ``init``) and their gradient ``dW``."""

    def __init__(self, init=None, name=None, parallelism="Unknown"):
        super().__init__(name, parallelism)
        self.has_params = True
        self.init = init
        self.W = None
        self.dW = None
        self.weight_shape = None
        self.states = []

    def allocate(self, shared_outputs=None):
        super().allocate(shared_outputs)
        if self.W is None:
            self.init_params(self.weight_shape)

    def init_params(self, shape):
        if self.init is None:
            raise ParameterError(f"{self.name}: no initializer (init=) was given")
        self.W = self.be.empty(shape, name=f"{self.name}_W")
        self.init.fill(self.W)
        self.dW = self.be.zeros_like(self.W, name=f"{self.name}_dW")

    def get_params(self):
        return [((self.W, self.dW), self.states)]

    def _store_grad(self, grad):
        d = self.dW._data
        if isinstance(d, np.ndarray) and isinstance(grad, np.ndarray):   # host: one copy
            np.copyto(d, grad.reshape(d.shape))
        else:
            self.dW[:] = Tensor(self.be, grad).reshape(self.dW.shape)


class Linear(ParameterLayer):
    """Fully connected layer, y = W x: W is (nout, nin), x is (nin, batch).

    Runs refnn's ``linear`` op (batch-first: x^T is transposed in and y^T out).
    After a recurrent layer (in_shape (nin, nsteps), x (nin, nsteps * batch)) the steps
    are extra batch, as in neon: the same W at every step, y (nout, nsteps * batch),
    out_shape (nout, nsteps). Any other in_shape is flattened: nin = prod(in_shape).
    """

    OPS = ("linear",)
    TAKES_NC = True

    def __init__(self, nout, init, bsum=False, name=None):
        super().__init__(init, name)
        if int(nout) <= 0:
            raise ParameterError(f"{self.name}: nout must be a positive integer, got {nout!r}")
        if bsum:
            raise ParameterError(f"{self.name}: bsum (fused batch-norm sums) is not provided")
        self.nout = int(nout)

    def __str__(self):
        return f"Linear Layer '{self.name}': {self.nin} inputs, {self.nout} outputs"

    def configure(self, in_obj):
        super().configure(in_obj)
        self.nin, self.nsteps = _time_distributed(self.in_shape)
        two = isinstance(self.in_shape, (tuple, list)) and len(self.in_shape) == 2
        self.out_shape = (self.nout, self.nsteps) if two else (self.nout,)
        self.weight_shape = (self.nout, self.nin)
        return self

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        be = self.be
        self.inputs = inputs
        y, self._saved = be.rb.op("linear.forward")(be.to_nc(inputs), self.W._data)
        self.outputs = self._to_next(y)
        return self.outputs

    def bprop(self, error):
        be = self.be
        dx, dW = be.rb.op("linear.backward")(be.to_nc(error), self._saved,
                                             need_dx=self.need_dx)
        self._store_grad(dW)
        self.deltas = None if dx is None else self._to_prev(dx)
        return self.deltas


class Bias(ParameterLayer):
    """Adds a learned bias b (bias_size, 1) to every sample: y = x + b, db = the sum of
    dy over everything but the feature, dx = dy (the math of refnn's ``bias`` op).

    As in neon, bias_size is ``in_shape[0]``: for (C, H, W) samples (convolution
    outputs) one bias per channel, added over the (C, H*W*N) view of the tensor; for
    (nfeatures,) samples one per feature; after a recurrent layer ((nfeatures, nsteps),
    tensors (nfeatures, nsteps * N)) one per feature, the same at every step.

    The ``bias`` op is batch-first (x (rows, C), one bias per column). Where the
    inputs are already batch-first -- the previous layer handed over an (N, F) op
    result as a transposed view (``TAKES_NC``) and there is one bias per feature --
    the op runs on them as they are. Per-channel biases (conv outputs) and neon-layout
    inputs on host backends are one broadcast add per row of the (C, H*W*N) view (or
    per channel of the (N, C, H*W) batch-first array) and one sum per channel, as
    neon's own Bias layer does with its backend: the op would need two transposes of
    the whole tensor each way. On OpenCL the tensors are transposed into the op.
    """

    OPS = ("bias",)
    TAKES_NC = True

    def __init__(self, init, name=None):
        super().__init__(init, name)

    def configure(self, in_obj):
        super().configure(in_obj)
        self.out_shape = self.in_shape
        shape = self.in_shape
        self.bias_size = int(shape[0]) if isinstance(shape, (tuple, list)) else int(shape)
        self.weight_shape = (self.bias_size, 1)
        return self

    def _rows(self, t):
        """(features, batch) Tensor -> batch-first (N*H*W, bias_size) rows."""
        a = self.be._contiguous(t)
        return self.be.rb.transpose2d(a.reshape(self.bias_size, -1))

    def _unrows(self, a, shape):
        return Tensor(self.be, self.be.rb.transpose2d(a).reshape(shape))

    def _split(self, a):
        """A host array (F, M) -> ('nc', (M, bias_size, F // bias_size) batch-first
        view) when it is the transposed view of an (M, F) array, else ('cn',
        (bias_size, F // bias_size * M) view of the C-contiguous array); None for
        device arrays."""
        if not isinstance(a, np.ndarray):
            return None
        if a.T.flags.c_contiguous and not (a.flags.c_contiguous and a.shape[1] > 1):
            return "nc", a.T.reshape(a.shape[1], self.bias_size, -1)
        if a.flags.c_contiguous:
            return "cn", a.reshape(self.bias_size, -1)
        return "cn", self.be._contiguous(a).reshape(self.bias_size, -1)

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        be = self.be
        self.inputs = inputs
        b = self.W._data.reshape(self.bias_size)
        self._host = split = self._split(inputs._data)
        if split is None:                                   # device: through the op
            y, self._saved = be.rb.op("bias.forward")(self._rows(inputs), b)
            self.outputs = self._unrows(y, inputs.shape)
        elif split[0] == "nc" and split[1].shape[2] == 1:   # (N, F) rows: the op itself
            x = split[1].reshape(split[1].shape[:2])
            y, self._saved = be.rb.op("bias.forward")(x, b)
            self.outputs = self._to_next(y)
        elif split[0] == "nc":                              # (N, C, H*W): per channel
            x = split[1]
            y = np.add(x, b[:, None], dtype=x.dtype)
            self.outputs = self._to_next(y.reshape(x.shape[0], -1))
        else:                                               # (C, H*W*N): per row
            x = split[1]
            y = np.add(x, b[:, None], dtype=x.dtype)
            self.outputs = Tensor(be, y.reshape(inputs.shape))
        return self.outputs

    def bprop(self, error):
        be = self.be
        split = self._split(error._data)
        if split is None:
            dx, db = be.rb.op("bias.backward")(self._rows(error), self._saved)
            self._store_grad(db)
            self.deltas = self._unrows(dx, error.shape)
            return self.deltas
        kind, e = split
        if kind == "nc" and self._host[0] == "nc" and e.shape[2] == 1:
            dx, db = be.rb.op("bias.backward")(e.reshape(e.shape[:2]), self._saved)
            self._store_grad(db)
            self.deltas = self._to_prev(dx)
            return self.deltas
        db = e.sum(axis=(0, 2)) if kind == "nc" else e.sum(axis=1)
        self._store_grad(db.astype(e.dtype, copy=False))
        # dx = dy: pass the error on, as a neon-layout copy only if it is a transposed
        # view and the previous layer cannot read one
        if kind == "nc" and not getattr(type(self.prev_layer), "TAKES_NC", False):
            self.deltas = be.from_nc(error._data.T)
        else:
            self.deltas = error
        return self.deltas


class Activation(Layer):
    """Applies ``transform`` (a neon.transforms activation) to its inputs.

    The op is the transform's (``relu``, ``leaky_relu``, ``elu``, ``sigmoid``, ``tanh``,
    ``softmax``, ``normalizer``, ``identity``). With ``pass_through`` (set by
    GeneralizedCost for Softmax + CrossEntropyMulti and Logistic + CrossEntropyBinary,
    or by ``Logistic(shortcut=True)``) bprop returns the error unchanged: the cost's
    delta y - t already is the gradient w.r.t. this layer's input.
    """

    OPS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax",
           "normalizer")

    def __init__(self, transform, name=None):
        super().__init__(name)
        if not hasattr(transform, "forward") or not hasattr(transform, "OP"):
            raise ParameterError(f"{self.name}: transform must be a neon.transforms "
                                 f"activation, got {transform!r}")
        self.transform = transform
        self.pass_through = bool(getattr(transform, "shortcut", False))

    def __str__(self):
        return f"Activation Layer '{self.name}': {type(self.transform).__name__}"

    def configure(self, in_obj):
        super().configure(in_obj)
        self.out_shape = self.in_shape
        return self

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        self.inputs = inputs
        self.outputs, self._saved = self.transform.forward(inputs)
        return self.outputs

    def bprop(self, error):
        if self.pass_through:
            self.deltas = error
        else:
            self.deltas = self.transform.backward(error, self._saved)
        return self.deltas


class Dropout(Layer):
    """Keeps each unit with probability ``keep`` in training (refnn's ``dropout`` op with
    scale 1, a fresh seed from ``be.rng`` per minibatch) and multiplies by ``keep`` at
    inference -- neon's convention (kept units are not rescaled in training)."""

    OPS = ("dropout",)

    def __init__(self, keep=0.5, name=None):
        super().__init__(name)
        if not 0 < keep <= 1:
            raise ParameterError(f"{self.name}: keep must be in (0, 1], got {keep!r}")
        self.keep = float(keep)

    def configure(self, in_obj):
        super().configure(in_obj)
        self.out_shape = self.in_shape
        return self

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        be = self.be
        self.inputs = inputs
        if inference:
            self.outputs = be.empty(inputs.shape)
            self.outputs[:] = inputs * self.keep
            return self.outputs
        seed = int(be.rng.randint(0, 2 ** 32, dtype=np.uint64))
        y, self._saved = be.rb.op("dropout.forward")(
            be._contiguous(inputs), keep=self.keep, seed=seed, scale=1.0, training=True)
        self.outputs = Tensor(be, y)
        return self.outputs

    def bprop(self, error):
        (dx,) = self.be.rb.op("dropout.backward")(self.be._contiguous(error), self._saved)
        self.deltas = Tensor(self.be, dx)
        return self.deltas


class DataTransform(Layer):
    """Applies ``transform`` (a neon.transforms activation, e.g. Normalizer) to the data
    in fprop only; bprop passes the error through unchanged (neon puts this layer first,
    where nothing consumes its deltas). The op is the transform's."""

    OPS = Activation.OPS

    def __init__(self, transform, name=None):
        super().__init__(name)
        if not callable(transform) or not hasattr(transform, "OP"):
            raise ParameterError(f"{self.name} (DataTransform): transform must be a "
                                 f"neon.transforms activation, got {transform!r}")
        self.transform = transform

    def __str__(self):
        return f"DataTransform Layer '{self.name}': {type(self.transform).__name__}"

    def configure(self, in_obj):
        super().configure(in_obj)
        self.out_shape = self.in_shape
        return self

    def fprop(self, inputs, inference=False):
        self._check_input(inputs)
        self.inputs = inputs
        out = self.transform(inputs)
        if not isinstance(out, Tensor):             # an op-tree: evaluate it
            buf = self.be.empty(inputs.shape)
            buf[:] = out
            out = buf
        self.outputs = out
        return self.outputs

    def bprop(self, error):
        self.deltas = error
        return self.deltas


class CompoundLayer(list):
    """Base class for macro layers: a list of layers that Sequential flattens."""

    def __init__(self, bias=None, batch_norm=False, activation=None, name=None):
        super().__init__()
        if batch_norm and bias is not None:
            # neon: AttributeError('Batchnorm and bias cannot be combined')
            raise ParameterError(f"{type(self).__name__} {name!r}: batch_norm=True and "
                                 f"bias={bias!r} cannot be combined (BatchNorm's beta "
                                 "replaces the bias); give one of them")
        self.activation = activation
        self.batch_norm = bool(batch_norm)
        self.bias = bias
        self.base_name = name

    def add_postfilter_layers(self):
        """Append (Bias if bias= else BatchNorm if batch_norm=) and the Activation, as
        neon: named "<name>_bias" / "<name>_bnorm" and "<name>_<Act>"."""
        from refnn.neon.layers.normalization import BatchNorm   # imports this module
        name = self[-1].name
        if self.bias is not None:
            self.append(Bias(init=self.bias, name=f"{name}_bias"))
        if self.batch_norm:
            self.append(BatchNorm(name=f"{name}_bnorm"))
        if self.activation is not None:
            self.append(Activation(transform=self.activation,
                                   name=f"{name}_{type(self.activation).__name__}"))


class Affine(CompoundLayer):
    """Linear -> (Bias, or BatchNorm with batch_norm=True) -> Activation, named
    "<name>", "<name>_bias" / "<name>_bnorm", "<name>_<Act>"."""

    def __init__(self, nout, init, bias=None, batch_norm=False, activation=None, name=None):
        super().__init__(bias=bias, batch_norm=batch_norm, activation=activation, name=name)
        self.append(Linear(nout, init=init, name=name))
        self.add_postfilter_layers()


class GeneralizedCost(NervanaObject):
    """A cost layer: applies ``costfunc`` to the outputs and targets.

    ``get_cost`` returns the batch-mean cost as a (1, 1) Tensor; ``get_errors`` the
    per-sample deltas (the optimizers divide gradients by the batch size, as in neon).
    After a recurrent layer (outputs (nclass, nsteps * N)) every column is a sample of
    the mean, as in neon.
    """

    def __init__(self, costfunc, name=None):
        super().__init__(name)
        if not hasattr(costfunc, "bprop"):
            raise ParameterError(f"GeneralizedCost: costfunc must be a neon cost, got "
                                 f"{costfunc!r}")
        self.costfunc = costfunc
        self.outputs = self.deltas = self.cost = None

    def initialize(self, in_obj):
        """Allocate buffers; take neon's shortcut for Softmax/Logistic output layers."""
        from refnn.neon.transforms.activation import Logistic, Softmax
        from refnn.neon.transforms.cost import CrossEntropyBinary, CrossEntropyMulti
        last = in_obj.get_terminal() if hasattr(in_obj, "get_terminal") else in_obj
        self.prev_layer = last
        if isinstance(last, Activation):
            pair = ((isinstance(last.transform, Softmax)
                     and isinstance(self.costfunc, CrossEntropyMulti))
                    or (isinstance(last.transform, Logistic)
                        and isinstance(self.costfunc, CrossEntropyBinary)))
            if pair:
                last.pass_through = True
                self.costfunc.shortcut = True
        self.cost = self.be.empty((1, 1))
        rows, nsteps = _time_distributed(last.out_shape)     # one cost per column
        self.outputs = self.be.empty((1, nsteps * self.be.bsz))
        self.deltas = self.be.empty((rows, nsteps * self.be.bsz))

    def _buffers(self, inputs):
        if self.cost is None:
            self.cost = self.be.empty((1, 1))
        if self.outputs is None or self.outputs.shape[1] != inputs.shape[1]:
            self.outputs = self.be.empty((1, inputs.shape[1]))
        if self.deltas is None or self.deltas.shape != inputs.shape:
            self.deltas = self.be.empty(inputs.shape)

    def get_cost(self, inputs, targets):
        self._buffers(inputs)
        self.outputs[:] = self.costfunc(inputs, targets)
        self.cost[:] = self.be.mean(self.outputs, axis=1)
        return self.cost

    def get_errors(self, inputs, targets):
        self._buffers(inputs)
        self.deltas[:] = self.costfunc.bprop(inputs, targets)
        return self.deltas
