"""Layer containers (neon.layers.container): Sequential."""
from refnn.errors import ParameterError
from refnn.neon._object import NervanaObject
from refnn.neon.layers.layer import Layer


class LayerContainer(Layer):
    """A group of layers that propagates and allocates through its members."""

    @property
    def layers_to_optimize(self):
        out = []
        for layer in self.layers:
            if isinstance(layer, LayerContainer):
                out.extend(layer.layers_to_optimize)
            elif layer.has_params:
                out.append(layer)
        return out

    def get_params(self):
        return [p for layer in self.layers for p in layer.get_params()]

    def nested_str(self, level=0):
        return "\n".join("  " * level + str(layer) for layer in self.layers)


class Sequential(LayerContainer):
    """A linear pathway of layers; CompoundLayers (Affine) are flattened into it."""

    def __init__(self, layers, name=None):
        super().__init__(name)
        if isinstance(layers, Layer):
            layers = [layers]
        flat = []
        for item in layers:
            if isinstance(item, list):   # CompoundLayer or a plain list
                flat.extend(item)
            else:
                flat.append(item)
        for item in flat:
            if not isinstance(item, NervanaObject) or not hasattr(item, "fprop"):
                raise ParameterError(f"Sequential: {item!r} is not a layer")
        if not flat:
            raise ParameterError("Sequential: needs at least one layer")
        self.layers = flat

    def __str__(self):
        return f"Sequential '{self.name}':\n" + self.nested_str(1)

    def configure(self, in_obj):
        super().configure(in_obj)
        prev = in_obj
        for layer in self.layers:
            prev = layer.configure(prev)
        self.layers[0].need_dx = False     # nobody consumes the first layer's deltas
        self.out_shape = self.layers[-1].out_shape
        return self

    def allocate(self, shared_outputs=None):
        for layer in self.layers:
            layer.allocate()

    def allocate_deltas(self, global_deltas=None):
        """Each refnn layer owns its deltas; nothing to share."""

    def fprop(self, inputs, inference=False):
        x = inputs
        for layer in self.layers:
            x = layer.fprop(x, inference=inference)
        return x

    def bprop(self, error):
        for layer in reversed(self.layers):
            error = layer.bprop(error)
        return error

    def get_terminal(self):
        return self.layers[-1].get_terminal()
