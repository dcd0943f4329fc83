"""Weight initializers (neon.initializers.initializer).

Values are drawn on the host from ``be.rng`` (the NumPy RandomState seeded by
``gen_backend(rng_seed=...)``) and copied into the parameter tensor, so one seed gives
the same weights on every backend. ``param`` is (nout, nin) for Linear layers, so
``fan_in`` below is ``param.shape[0 if local else 1]`` exactly as in neon.
"""
import numpy as np

from refnn.errors import ShapeError
from refnn.neon._object import NervanaObject


class Initializer(NervanaObject):
    """Abstract base class from which parameter tensor initializers inherit."""

    def fill(self, param):
        raise NotImplementedError(f"{type(self).__name__} must implement fill(param)")


class Constant(Initializer):
    """Initializes parameters as a constant ``val``."""

    def __init__(self, val=0.0, name="constantInit"):
        super().__init__(name=name)
        self.val = val

    def fill(self, param):
        param[:] = self.val if np.isscalar(self.val) else np.asarray(self.val)


class Array(Initializer):
    """Initializes parameters with the values of a provided NumPy array."""

    def __init__(self, val, name="arrayInit"):
        super().__init__(name=name)
        self.val = np.asarray(val)

    def fill(self, param):
        if self.val.size != param.size:
            raise ShapeError(f"{self.name}: array of shape {self.val.shape} cannot fill "
                             f"a parameter of shape {param.shape}")
        param.set(self.val.reshape(param.shape))


class Uniform(Initializer):
    """Uniform values in [low, high)."""

    def __init__(self, low=0.0, high=1.0, name="uniformInit"):
        super().__init__(name=name)
        self.low, self.high = low, high

    def fill(self, param):
        param.set(self.be.rng.uniform(self.low, self.high, param.shape))


class Gaussian(Initializer):
    """Gaussian values with mean ``loc`` and standard deviation ``scale``."""

    def __init__(self, loc=0.0, scale=1.0, name="gaussianInit"):
        super().__init__(name=name)
        self.loc, self.scale = loc, scale

    def fill(self, param):
        param.set(self.be.rng.normal(self.loc, self.scale, param.shape))


class IdentityInit(Initializer):
    """The identity matrix (times ``scale``); rectangular shapes get ones on the diagonal."""

    def __init__(self, scale=1.0, name="identityInit"):
        super().__init__(name=name)
        self.scale = scale

    def fill(self, param):
        if len(param.shape) != 2:
            raise ShapeError(f"{self.name}: needs a 2-D parameter, got shape {param.shape}")
        param.set(self.scale * np.eye(*param.shape))


class GlorotUniform(Initializer):
    """Uniform in [-K, K] with K = sqrt(6 / (fan_in + fan_out))."""

    def __init__(self, name="autouniformInit"):
        super().__init__(name=name)

    def fill(self, param):
        k = np.sqrt(6.0 / (param.shape[0] + param.shape[1]))
        param.set(self.be.rng.uniform(-k, k, param.shape))


class Xavier(Initializer):
    """Uniform in [-K, K] with K = sqrt(3 / n_in), n_in = param.shape[0 if local else 1]."""

    def __init__(self, local=True, name="xavier"):
        super().__init__(name=name)
        self.local = local

    def fill(self, param):
        fan_in = param.shape[0 if self.local else 1]
        scale = np.sqrt(3.0 / fan_in)
        param.set(self.be.rng.uniform(-scale, scale, param.shape))


class Kaiming(Initializer):
    """Zero-mean Gaussian with standard deviation sqrt(2 / n_in) (He et al. 2015)."""

    def __init__(self, local=True, name="Kaiming"):
        super().__init__(name=name)
        self.local = local

    def fill(self, param):
        fan_in = param.shape[0 if self.local else 1]
        scale = np.sqrt(2.0 / fan_in)
        param.set(self.be.rng.normal(0, scale, param.shape))


class Orthonormal(Initializer):
    """``scale`` times an orthonormal factor of the SVD of a standard Gaussian matrix
    (Saxe et al. 2014)."""

    def __init__(self, scale=1.1, name="orthonormal"):
        super().__init__(name=name)
        self.scale = scale

    def fill(self, param):
        a = self.be.rng.normal(0.0, 1.0, param.shape)
        u, _, v = np.linalg.svd(a, full_matrices=False)
        q = u if u.shape == tuple(param.shape) else v
        param.set(self.scale * q)
