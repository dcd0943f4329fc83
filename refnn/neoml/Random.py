"""neoml.Random: the random numbers generator of a network and its initializers.

``Random(seed)`` wraps a NumPy ``Generator(PCG64(seed))``. Without a seed it uses a fixed
default seed (:data:`DEFAULT_SEED`), as NeoML does, so unseeded runs repeat. Numbers
are drawn on the host; a network draws its initial weights and one dropout seed per
training pass from its generator, so the same seed gives the same numbers on every
engine (reference, cpu, opencl).

As in NeoML the class is ``neoml.Random.Random``; the module itself is callable too,
so ``neoml.Random(seed)`` is the same as ``neoml.Random.Random(seed)``.
"""
import sys
import types

import numpy as np

__all__ = ["Random", "DEFAULT_SEED"]

#: the seed of ``Random()`` (NeoML's CRandom default seed)
DEFAULT_SEED = 0xBADF00D


class Random:
    """The random numbers generator (``seed``: int >= 0, default :data:`DEFAULT_SEED`)."""

    def __init__(self, seed=None):
        if seed is None:
            seed = DEFAULT_SEED
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"Random: seed must be an int >= 0, got {seed!r}")
        self.seed = int(seed)
        self._gen = np.random.Generator(np.random.PCG64(self.seed))

    def normal(self, mean, std, size):
        """float64 draws from N(mean, std^2)."""
        return self._gen.normal(mean, std, size)

    def uniform(self, low, high, size):
        """float64 draws from U(low, high)."""
        return self._gen.uniform(low, high, size)

    def seed32(self):
        """A fresh 32-bit seed (for the counter-based dropout masks of refnn.ops)."""
        return int(self._gen.integers(0, 2 ** 32))

    def __repr__(self):
        return f"<neoml Random seed={self.seed}>"


class _CallableModule(types.ModuleType):
    """The module type of neoml.Random: calling it makes a :class:`Random`."""

    def __call__(self, seed=None):
        return Random(seed)


sys.modules[__name__].__class__ = _CallableModule
