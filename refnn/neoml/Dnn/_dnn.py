"""neoml.Dnn.Dnn: the network graph, its forward/backward passes and learning.

``run(inputs)`` runs the layers in topological order; ``run_and_backward(inputs)``
also runs the backward pass and ADDS the parameter gradients to the layers'
accumulators (it never changes the weights); ``learn(inputs)`` is
``run_and_backward`` followed by one solver step that uses the average of the
gradients accumulated since the last step (NeoML's rule), then clears them.
Dropout is active in ``run_and_backward``/``learn`` only.

``store``/``load`` (and the ``_checkpoint`` variants, which add the solver, its moments
and the random generator) write Python pickles, not NeoML's binary archives: files are
exchanged between refnn networks (any engine), and -- as with any pickle -- only files
you trust should be loaded.

Several threads may each build and run their own network at the same time: a
network holds no global state (each has its own engine, random generator, solver).
"""
import pickle

from refnn.errors import ParameterError
from refnn.neoml.Blob import Blob
from refnn.neoml.Dnn._layer import Layer, Source, Sink
from refnn.neoml.Random import Random


class Dnn:
    """Neural network (``Dnn(math_engine, random=None)``; ``random``: a
    :class:`neoml.Random.Random`, default ``Random()`` with NeoML's fixed seed)."""

    def __init__(self, math_engine, random=None):
        from refnn.neoml.MathEngine import MathEngine
        from refnn.neoml.Dnn._initializer import Xavier
        from refnn.neoml.Dnn._solver import SimpleGradient
        if not isinstance(math_engine, MathEngine):
            raise ParameterError(f"Dnn: math_engine must be a neoml MathEngine, "
                                 f"got {math_engine!r}")
        if random is not None and not isinstance(random, Random):
            raise ParameterError(f"Dnn: random must be a neoml.Random.Random, got {random!r}")
        self._engine = math_engine
        self._random = random if random is not None else Random()
        self._layers = {}
        self._initializer = Xavier(self._random)
        self._solver = SimpleGradient(math_engine)
        self._backward_count = 0

    # ------------------------------------------------------------------ graph
    def add_layer(self, layer):
        """Add ``layer`` (its name must be unique in the network)."""
        if not isinstance(layer, Layer):
            raise ParameterError(f"Dnn.add_layer: expected a neoml layer, got {layer!r}")
        if layer._dnn is not None:
            raise ParameterError(f"Dnn.add_layer: layer {layer.name!r} is already in a network")
        if layer._name is None:
            layer._name = self._free_name(type(layer).__name__)
        if layer._name in self._layers:
            raise ParameterError(f"Dnn.add_layer: a layer named {layer._name!r} already exists "
                                 f"in this network ({type(self._layers[layer._name]).__name__}); "
                                 f"layer names must be unique")
        self._layers[layer._name] = layer
        layer._dnn = self

    def _free_name(self, base):
        k = 1
        while f"{base}{k}" in self._layers:
            k += 1
        return f"{base}{k}"

    def delete_layer(self, layer):
        """Delete a layer (object or name)."""
        name = layer.name if isinstance(layer, Layer) else layer
        if name not in self._layers:
            raise ParameterError(f"Dnn.delete_layer: no layer {name!r} in this network")
        self._layers.pop(name)._dnn = None

    @property
    def layers(self):
        """{name: layer} -- the very layer objects of the network."""
        return dict(self._layers)

    @property
    def input_layers(self):
        """{name: Source} of all source layers."""
        return {n: l for n, l in self._layers.items() if isinstance(l, Source)}

    @property
    def output_layers(self):
        """{name: Sink} of all sink layers."""
        return {n: l for n, l in self._layers.items() if isinstance(l, Sink)}

    @property
    def math_engine(self):
        return self._engine

    @property
    def random(self):
        return self._random

    @property
    def solver(self):
        """The optimizer (default: SimpleGradient with NeoML's defaults)."""
        return self._solver

    @solver.setter
    def solver(self, solver):
        from refnn.neoml.Dnn._solver import Solver
        if not isinstance(solver, Solver):
            raise ParameterError(f"Dnn.solver: expected a neoml solver, got {solver!r}")
        self._solver = solver

    @property
    def initializer(self):
        """Fills new weights before the first run (default: Xavier with the network's
        random generator). Free terms start at zero."""
        return self._initializer

    @initializer.setter
    def initializer(self, initializer):
        from refnn.neoml.Dnn._initializer import Initializer
        if not isinstance(initializer, Initializer):
            raise ParameterError(f"Dnn.initializer: expected a neoml initializer, "
                                 f"got {initializer!r}")
        self._initializer = initializer

    # ---------------------------------------------------------------- passes
    def _order(self):
        """Layers in topological order; checks every link."""
        order, state = [], {}

        def visit(layer):
            if state.get(layer.name) == "done":
                return
            if state.get(layer.name) == "active":
                raise ParameterError(f"Dnn: the network has a cycle through {layer.name!r}")
            state[layer.name] = "active"
            lo = layer.N_INPUTS[0]
            if len(layer._links) < lo:
                raise ParameterError(f"{layer._where()}: is fed by nothing -- needs {lo} "
                                     f"input(s), has {len(layer._links)}")
            for i, (src, out) in enumerate(layer._links):
                producer = self._layers.get(src)
                if producer is None:
                    raise ParameterError(f"{layer._where()}: input {i} is connected to "
                                         f"{src!r}, which is not in the network")
                if out >= producer._n_outputs():
                    raise ParameterError(f"{layer._where()}: input {i} is connected to output "
                                         f"{out} of {src!r}, which has "
                                         f"{producer._n_outputs()} output(s)")
                visit(producer)
            state[layer.name] = "done"
            order.append(layer)

        for layer in self._layers.values():
            visit(layer)
        return order

    def _set_inputs(self, inputs):
        if not isinstance(inputs, dict):
            raise ParameterError(f"Dnn: inputs must be a dict {{source name: Blob}}, "
                                 f"got {type(inputs).__name__}")
        sources = self.input_layers
        for name, blob in inputs.items():
            if name not in sources:
                raise ParameterError(f"Dnn: no source layer {name!r} (sources: "
                                     f"{', '.join(sorted(sources)) or 'none'})")
            if not isinstance(blob, Blob):
                raise ParameterError(f"Dnn: inputs[{name!r}] must be a neoml Blob, got "
                                     f"{type(blob).__name__}")
            sources[name].set_blob(blob)
        missing = [n for n, s in sources.items() if s._blob is None]
        if missing:
            raise ParameterError(f"Dnn: no blob for source layer(s) {', '.join(missing)}")

    def _forward(self, inputs, training):
        self._set_inputs(inputs)
        order = self._order()
        be = self._engine.backend
        outputs = {}
        for layer in order:
            xs = [outputs[src][out] for src, out in layer._links]
            outputs[layer.name] = layer._forward(be, xs, training)
        return order

    def _sink_blobs(self):
        return {n: s.get_blob() for n, s in self.output_layers.items()}

    def run(self, inputs):
        """Run the network; returns {sink name: Blob}."""
        self._forward(inputs, training=False)
        return self._sink_blobs()

    def run_and_backward(self, inputs):
        """Run forward and backward; gradients are accumulated (weights unchanged).
        Returns {sink name: Blob}."""
        order = self._forward(inputs, training=True)
        self._backward(order)
        self._backward_count += 1
        return self._sink_blobs()

    def _backward(self, order):
        be = self._engine.backend
        needs = {}
        for layer in order:
            needs[layer.name] = layer._trainable or any(needs[src] for src, _ in layer._links)
        grads = {}
        for layer in reversed(order):
            if not needs[layer.name]:
                continue
            dys = [grads.get((layer.name, k)) for k in range(layer._n_outputs())]
            if dys and all(dy is None for dy in dys):
                continue            # its outputs reach no loss: nothing to propagate
            need_dx = [needs[src] for src, _ in layer._links]
            dxs = layer._backward(be, dys, need_dx)
            for (src, out), dx, need in zip(layer._links, dxs, need_dx):
                if dx is None or not need:
                    continue
                key = (src, out)
                grads[key] = dx if key not in grads else grads[key] + dx

    def learn(self, inputs):
        """Run, backward, and one solver step with the averaged accumulated gradients."""
        self.run_and_backward(inputs)
        self._solver._train(self, self._backward_count)
        self._backward_count = 0

    def __repr__(self):
        return f"<neoml Dnn {len(self._layers)} layers on {self._engine!r}>"

    # --------------------------------------------------------- serialization
    FORMAT = "refnn.neoml.Dnn/1"

    def _dump(self, path, checkpoint):
        content = {"format": self.FORMAT, "layers": list(self._layers.values())}
        if checkpoint:
            content.update(solver=self._solver, random=self._random,
                           backward_count=self._backward_count)
        with open(path, "wb") as f:
            pickle.dump(content, f, protocol=pickle.HIGHEST_PROTOCOL)

    def _restore(self, path):
        with open(path, "rb") as f:
            content = pickle.load(f)
        if not isinstance(content, dict) or content.get("format") != self.FORMAT:
            raise ParameterError(f"Dnn.load: {path!r} is not a network stored by refnn.neoml "
                                 f"(format {self.FORMAT})")
        for layer in list(self._layers.values()):
            self.delete_layer(layer)
        be = self._engine.backend
        for layer in content["layers"]:
            layer._attach_params(be)
            self.add_layer(layer)
        return content

    def store(self, path):
        """Store the layers and their weights (a pickle; see the module docstring)."""
        self._dump(path, checkpoint=False)

    def load(self, path):
        """Replace this network's layers by those stored at ``path`` (on this engine)."""
        self._restore(path)
        self._backward_count = 0

    def store_checkpoint(self, path):
        """Store the layers, weights, solver (with its moments) and random generator."""
        self._dump(path, checkpoint=True)

    def load_checkpoint(self, path):
        """Load a checkpoint: layers, weights, a new solver with the stored moments,
        and the stored random generator."""
        content = self._restore(path)
        if "solver" not in content:
            raise ParameterError(f"Dnn.load_checkpoint: {path!r} was written by store, not "
                                 f"store_checkpoint (it has no solver)")
        content["solver"]._attach(self._engine)
        self._solver = content["solver"]
        self._random = content["random"]
        self._backward_count = content["backward_count"]
