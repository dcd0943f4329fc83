"""The base Layer of refnn.neoml, plus Source and Sink.

A layer computes on backend arrays shaped as 7-D blobs; it reaches the math only
through ``be.op("<op>.forward")`` etc. Each class names the refnn ops it uses in
``OPS`` (read by ``refnn coverage``).

Layer protocol (used by :class:`refnn.neoml.Dnn.Dnn`):

* ``_forward(be, xs, training) -> list of output arrays`` (7-D), keeping what backward
  needs on ``self``;
* ``_backward(be, dys, need_dx) -> list of input gradients`` (None where not needed),
  adding the parameter gradients to ``self._grads``;
* ``_params``: name -> array in the op's layout (trainable layers only).
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError


def _as_link(item, where):
    """(layer, output_index) from a layer or a (layer, int) tuple."""
    if isinstance(item, Layer):
        return item, 0
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Layer) \
            and isinstance(item[1], (int, np.integer)) and not isinstance(item[1], bool):
        if item[1] < 0:
            raise ParameterError(f"{where}: output index must be >= 0, got {item[1]}")
        return item[0], int(item[1])
    raise ParameterError(f"{where}: an input must be a layer or a (layer, output_index) "
                         f"tuple, got {item!r}")


def parse_inputs(spec, where):
    """A list of (layer, output_index) from one input or a list/tuple of them."""
    if isinstance(spec, Layer) or (isinstance(spec, tuple) and len(spec) == 2
                                   and isinstance(spec[1], (int, np.integer))
                                   and isinstance(spec[0], Layer)):
        return [_as_link(spec, where)]
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ParameterError(f"{where}: needs at least one input layer, got none")
        return [_as_link(s, where) for s in spec]
    raise ParameterError(f"{where}: input_layer must be a layer, a (layer, output_index) "
                         f"tuple or a list of them, got {spec!r}")


class Layer:
    """The base class for a network layer (NeoML's ``neoml.Dnn.Layer``).

    Layer objects accept arbitrary Python attributes; ``dnn.layers[name]`` is the very
    object the user created.
    """

    #: the refnn ops this layer computes with (read by ``refnn coverage``)
    OPS = ()
    #: (min, max) number of inputs; max None = any number
    N_INPUTS = (1, 1)
    #: number of outputs (None: one per input)
    N_OUTPUTS = 1

    def __init__(self, input_layers=None, name=None, dnn=None):
        where = type(self).__name__ + (f" {name!r}" if name else "")
        if name is not None and not isinstance(name, str):
            raise ParameterError(f"{where}: name must be a str, got {name!r}")
        links = self._check_links(input_layers, where)
        dnn = self._network_of(links, dnn, where)
        self._name = name
        self._links = [(layer.name, index) for layer, index in links]
        self._learning_enabled = True
        self._dnn = None
        self._params = {}
        self._grads = {}
        dnn.add_layer(self)

    def _check_links(self, input_layers, where):
        """[(layer, output index)] from the constructor's input argument, counted."""
        links = [] if input_layers is None else parse_inputs(input_layers, where)
        lo, hi = self.N_INPUTS
        if lo and not links:
            raise ParameterError(f"{where}: is fed by nothing -- it needs {lo} input "
                                 f"layer(s), got {input_layers!r}")
        if len(links) < lo or (hi is not None and len(links) > hi):
            want = f"{lo}" if lo == hi else f"{lo} to {hi if hi is not None else 'any'}"
            raise ParameterError(f"{where}: takes {want} input(s), got {len(links)}")
        return links

    @staticmethod
    def _network_of(links, dnn, where):
        """The network the layer joins: ``dnn`` (Source) or that of its inputs."""
        from refnn.neoml.Dnn._dnn import Dnn
        if dnn is None and not links:
            raise ParameterError(f"{where}: needs a network: pass a neoml.Dnn.Dnn")
        if dnn is not None and not isinstance(dnn, Dnn):
            raise ParameterError(f"{where}: dnn must be a neoml.Dnn.Dnn, got {dnn!r}")
        if dnn is None:
            dnn = links[0][0]._dnn
            if dnn is None:
                raise ParameterError(f"{where}: input layer {links[0][0].name!r} "
                                     f"is in no network")
        for layer, _ in links:
            if layer._dnn is not dnn:
                raise ParameterError(f"{where}: input layer {layer.name!r} belongs to "
                                     f"another network")
        return dnn

    # ------------------------------------------------------------------ NeoML API
    @property
    def name(self):
        """The layer name."""
        return self._name

    @property
    def input_names(self):
        """The names of the layers connected to each input."""
        return tuple(n for n, _ in self._links)

    @property
    def input_links(self):
        """(layer name, output index) for each input."""
        return tuple(self._links)

    @property
    def learning_enabled(self):
        """Whether the weights are trained (False: frozen)."""
        return self._learning_enabled

    @learning_enabled.setter
    def learning_enabled(self, value):
        self._learning_enabled = bool(value)

    def enable_learning(self):
        self._learning_enabled = True

    def disable_learning(self):
        self._learning_enabled = False

    def connect(self, layer, output_index=0, input_index=0):
        """Connect ``layer``'s output ``output_index`` to this layer's input
        ``input_index`` (NeoML's semantics)."""
        where = f"{type(self).__name__} {self._name!r}.connect"
        if not isinstance(layer, Layer):
            raise ParameterError(f"{where}: layer must be a Layer, got {layer!r}")
        if output_index < 0 or input_index < 0:
            raise ParameterError(f"{where}: indices must be >= 0, got output_index="
                                 f"{output_index}, input_index={input_index}")
        hi = self.N_INPUTS[1]
        if hi is not None and input_index >= hi:
            raise ParameterError(f"{where}: input_index must be < {hi}, got {input_index}")
        if input_index > len(self._links):
            raise ParameterError(f"{where}: input_index {input_index} leaves input "
                                 f"{len(self._links)} unconnected")
        link = (layer.name, int(output_index))
        if input_index == len(self._links):
            self._links.append(link)
        else:
            self._links[input_index] = link

    # ------------------------------------------------------------ serialization
    #: attributes that belong to one pass or one network, never stored
    _TRANSIENT = ("_dnn", "_saved", "_grads", "_blob")

    def __getstate__(self):
        """Settings, user attributes and the parameters as host arrays."""
        state = {k: v for k, v in self.__dict__.items() if k not in self._TRANSIENT}
        be = self._dnn.math_engine.backend
        state["_params"] = {n: be.to_host(a) for n, a in self._params.items()}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._dnn, self._saved, self._grads, self._blob = None, None, {}, None

    def _attach_params(self, be):
        """Move host parameters (after loading) onto backend ``be``."""
        self._params = {n: be.asarray(a, dtype=a.dtype) for n, a in self._params.items()}

    # -------------------------------------------------------------- for the Dnn
    def _where(self):
        return f"{type(self).__name__} {self._name!r}"

    @property
    def _trainable(self):
        return bool(self._params) and self._learning_enabled

    def _n_outputs(self):
        return len(self._links) if self.N_OUTPUTS is None else self.N_OUTPUTS

    def _check_float(self, x, what="input"):
        if np.dtype(x.dtype) != np.float32:
            raise DTypeError(f"{self._where()}: {what} must be a float32 blob, "
                             f"got {np.dtype(x.dtype).name}")

    def _forward(self, be, xs, training):
        raise TypeError(f"{type(self).__name__} has no forward pass")

    def _backward(self, be, dys, need_dx):
        """No gradient flows through this layer (metrics, sinks)."""
        return [None] * len(self._links)

    def __repr__(self):
        return f"<neoml {type(self).__name__} {self._name!r}>"


class Source(Layer):
    """The source layer that passes a user blob into the network
    (``Source(dnn, name)``; ``set_blob``/``get_blob``; ``Dnn.run`` sets it from its dict).
    """

    N_INPUTS = (0, 0)

    def __init__(self, dnn, name=None):
        self._blob = None
        super().__init__(None, name, dnn=dnn)

    def set_blob(self, blob):
        from refnn.neoml.Blob import Blob
        if not isinstance(blob, Blob):
            raise ParameterError(f"{self._where()}: set_blob needs a neoml Blob, got {blob!r}")
        if self._dnn is not None and blob.math_engine is not self._dnn.math_engine:
            raise ParameterError(f"{self._where()}: the blob belongs to another math engine "
                                 f"({blob.math_engine!r}); create it on the network's engine")
        self._blob = blob

    def get_blob(self):
        return self._blob

    def _forward(self, be, xs, training):
        if self._blob is None:
            raise ParameterError(f"{self._where()}: no blob set (pass it in the inputs dict "
                                 f"of run/learn)")
        return [self._blob.data]

    def _backward(self, be, dys, need_dx):
        return []


class Sink(Layer):
    """The sink layer that passes a blob out of the network (``get_blob``)."""

    N_OUTPUTS = 0

    def __init__(self, input_layer, name=None):
        self._blob = None
        super().__init__(input_layer, name)

    def get_blob(self):
        """The blob of the last run (a view of the network's data on host engines)."""
        return self._blob

    def _forward(self, be, xs, training):
        from refnn.neoml.Blob import Blob
        self._blob = Blob._new(self._dnn.math_engine, xs[0], owned=False)
        return []

    def _backward(self, be, dys, need_dx):
        return [None]


def check_object_size(where, what, x, expected):
    """x (7-D) must hold objects of ``expected`` numbers."""
    size = int(np.prod(x.shape[3:]))
    if size != expected:
        raise ShapeError(f"{where}: {what} must have object size (Height*Width*Depth*"
                         f"Channels) {expected}, got {size} (blob shape {tuple(x.shape)})")


def rows(x):
    """A 7-D array seen as (object_count, object_size): the ops' batch-first layout."""
    s = x.shape
    return x.reshape(s[0] * s[1] * s[2], s[3] * s[4] * s[5] * s[6])
