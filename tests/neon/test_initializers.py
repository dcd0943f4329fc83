"""Initializers: neon's formulas, drawn from be.rng (same seed -> same weights on
every backend)."""
import numpy as np
import pytest

from refnn.errors import ShapeError
from refnn.neon.initializers import (Array, Constant, Gaussian, GlorotUniform, IdentityInit,
                                     Kaiming, Orthonormal, Uniform, Xavier)

SHAPE = (40, 30)


def filled(nbe, init, seed=0):
    nbe.rng = np.random.RandomState(seed)
    p = nbe.empty(SHAPE)
    init.fill(p)
    return p.get()


def test_same_seed_same_values_as_numpy(nbe):
    g = filled(nbe, Gaussian(loc=1.0, scale=0.5))
    np.testing.assert_allclose(g, np.random.RandomState(0).normal(1.0, 0.5, SHAPE), rtol=1e-6)
    u = filled(nbe, Uniform(low=-2, high=3))
    np.testing.assert_allclose(u, np.random.RandomState(0).uniform(-2, 3, SHAPE), rtol=1e-6)


def test_bounds_and_scales(nbe):
    k = np.sqrt(6.0 / (SHAPE[0] + SHAPE[1]))
    g = filled(nbe, GlorotUniform())
    assert np.abs(g).max() <= k and np.abs(g).max() > 0.9 * k
    x = filled(nbe, Xavier())
    assert np.abs(x).max() <= np.sqrt(3.0 / SHAPE[0])
    x = filled(nbe, Xavier(local=False))
    assert np.abs(x).max() <= np.sqrt(3.0 / SHAPE[1])
    assert filled(nbe, Kaiming()).std() == pytest.approx(np.sqrt(2.0 / SHAPE[0]), rel=0.1)


def test_constant_array_identity_orthonormal(nbe):
    np.testing.assert_array_equal(filled(nbe, Constant(0.25)), np.full(SHAPE, 0.25))
    a = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    np.testing.assert_array_equal(filled(nbe, Array(a)), a)
    np.testing.assert_array_equal(filled(nbe, IdentityInit(scale=2.0)), 2 * np.eye(*SHAPE))
    q = filled(nbe, Orthonormal(scale=1.0)).astype(np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(SHAPE[1]), atol=1e-5)
    with pytest.raises(ShapeError, match="cannot fill"):
        filled(nbe, Array(np.ones(3)))
