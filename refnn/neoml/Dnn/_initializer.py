"""Initializers: fill new weights before the first run (free terms start at zero).

Numbers are drawn on the host from a :class:`neoml.Random.Random` (float64, then
rounded to float32), so one seed gives the same initial weights on every engine.
"""
import numpy as np

from refnn.errors import ParameterError
from refnn.neoml.Random import Random


class Initializer:
    """Base class: ``_draw(shape, fan_in)`` returns float64 host values."""

    def __init__(self, random_generator=None):
        if random_generator is not None and not isinstance(random_generator, Random):
            raise ParameterError(f"{type(self).__name__}: random_generator must be a "
                                 f"neoml.Random.Random, got {random_generator!r}")
        self._random = random_generator if random_generator is not None else Random()

    @property
    def random_generator(self):
        return self._random


class Xavier(Initializer):
    """NeoML's default: N(0, 1/n), n = the input size (fan_in) -- not Glorot's
    2 / (fan_in + fan_out)."""

    def _draw(self, shape, fan_in):
        return self._random.normal(0.0, np.sqrt(1.0 / fan_in), shape)


class XavierUniform(Initializer):
    """U(-sqrt(1/n), sqrt(1/n)), n = the input size (fan_in)."""

    def _draw(self, shape, fan_in):
        bound = np.sqrt(1.0 / fan_in)
        return self._random.uniform(-bound, bound, shape)


class Uniform(Initializer):
    """U(lower_bound, upper_bound) (NeoML defaults: -1, 1)."""

    def __init__(self, lower_bound=-1.0, upper_bound=1.0, random_generator=None):
        super().__init__(random_generator)
        if not lower_bound <= upper_bound:
            raise ParameterError(f"Uniform: lower_bound must be <= upper_bound, got "
                                 f"{lower_bound} > {upper_bound}")
        self._lower, self._upper = float(lower_bound), float(upper_bound)

    @property
    def lower_bound(self):
        return self._lower

    @property
    def upper_bound(self):
        return self._upper

    def _draw(self, shape, fan_in):
        return self._random.uniform(self._lower, self._upper, shape)
