"""Activation functions (neon.transforms.activation), each mapped onto one refnn op.

A transform is applied by the :class:`~refnn.neon.layers.Activation` layer, which
calls ``forward``/``backward`` below; ``transform(x)`` on a Tensor returns f(x) as a
new Tensor (neon returns an op-tree; assigning either with ``out[:] = ...`` works).

neon's ``transform.bprop(outputs)`` (f' written as an op-tree of the outputs) is not
provided: derivatives live in the refnn ops' backward, which needs what its forward
saved -- back-propagate through an Activation layer instead.
"""
from refnn.neon.backends.backend import Tensor
from refnn.neon.transforms.transform import Transform


class _OpTransform(Transform):
    """A transform computed by one refnn activation op."""

    def forward(self, x):
        """Tensor x (features, batch) -> (Tensor y, saved) through ``<OP>.forward``."""
        be = self.be
        if self.LAYOUT == "NC":
            y, saved = be.rb.op(self.OP + ".forward")(be.to_nc(x), **self.op_params())
            return be.from_nc(y), saved
        y, saved = be.rb.op(self.OP + ".forward")(be._contiguous(x), **self.op_params())
        return Tensor(be, y), saved

    def backward(self, dy, saved):
        """Tensor dy (features, batch) -> Tensor dx through ``<OP>.backward``."""
        be = self.be
        if self.LAYOUT == "NC":
            (dx,) = be.rb.op(self.OP + ".backward")(be.to_nc(dy), saved)
            return be.from_nc(dx)
        (dx,) = be.rb.op(self.OP + ".backward")(be._contiguous(dy), saved)
        return Tensor(be, dx)

    def __call__(self, x):
        return self.forward(x)[0]


class Identity(_OpTransform):
    """Identity activation function, f(x) = x."""
    OPS = ("identity",)
    OP = "identity"


class Rectlin(_OpTransform):
    """Rectified Linear Unit, f(x) = max(x, 0) + slope * min(x, 0).

    slope = 0 is refnn's ``relu``; slope > 0 is ``leaky_relu`` with alpha = slope.
    """
    OPS = ("relu", "leaky_relu")

    def __init__(self, slope=0, name=None):
        super().__init__(name)
        self.slope = float(slope)

    @property
    def OP(self):  # noqa: N802 -- the op depends on slope
        return "relu" if self.slope == 0 else "leaky_relu"

    def op_params(self):
        return {} if self.slope == 0 else {"alpha": self.slope}


class Explin(_OpTransform):
    """Exponential Linear activation, f(x) = max(x, 0) + alpha (e^min(x, 0) - 1) (``elu``)."""
    OPS = ("elu",)
    OP = "elu"

    def __init__(self, alpha=1.0, name=None):
        super().__init__(name)
        self.alpha = float(alpha)

    def op_params(self):
        return {"alpha": self.alpha}


class Normalizer(_OpTransform):
    """Normalize inputs by a fixed divisor, f(x) = x / divisor (``normalizer``)."""
    OPS = ("normalizer",)
    OP = "normalizer"

    def __init__(self, name=None, divisor=128.0):
        super().__init__(name)
        self.divisor = float(divisor)

    def op_params(self):
        return {"divisor": self.divisor}


class Tanh(_OpTransform):
    """Hyperbolic tangent activation, f(x) = tanh(x)."""
    OPS = ("tanh",)
    OP = "tanh"


class Logistic(_OpTransform):
    """Logistic sigmoid, f(x) = 1 / (1 + exp(-x)) (``sigmoid``).

    ``shortcut=True`` (neon) makes the layer pass errors through unchanged, because
    CrossEntropyBinary's delta y - t already is the gradient of the pair w.r.t. the
    logistic's input. The facade also takes that shortcut by itself when a Logistic
    output layer meets a CrossEntropyBinary cost.
    """
    OPS = ("sigmoid",)
    OP = "sigmoid"

    def __init__(self, name=None, shortcut=False):
        super().__init__(name)
        self.shortcut = shortcut


class Softmax(_OpTransform):
    """SoftMax activation over the features (axis 0 of neon's (features, batch) tensors;
    the ``softmax`` op's last axis after the facade's transpose to batch-first).

    Paired with CrossEntropyMulti, the output layer passes errors through unchanged and
    the cost's delta is y - t -- neon's shortcut, which is mathematically the gradient
    of softmax + cross-entropy w.r.t. the softmax input. With any other cost the
    facade applies the softmax's true Jacobian (real neon always skips it).
    """
    OPS = ("softmax",)
    OP = "softmax"
    LAYOUT = "NC"

    def __init__(self, axis=0, name=None, epsilon=2 ** -23):
        super().__init__(name)
        if axis != 0:
            from refnn.errors import ParameterError
            raise ParameterError(f"Softmax: only axis=0 (the features of a (features, "
                                 f"batch) tensor) is provided, got axis={axis}")
        self.axis = axis
        self.epsilon = float(epsilon)
        self.shortcut = False


__all__ = ["Identity", "Rectlin", "Explin", "Normalizer", "Tanh", "Logistic", "Softmax"]
