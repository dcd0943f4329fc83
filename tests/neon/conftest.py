"""Fixtures of the neon facade tests: one neon backend per refnn backend.

``nbe`` is parametrized over neon's 'reference', 'cpu' and 'gpu' (refnn opencl, PoCL's
CPU device when there is no GPU). Backends are created once per module (OpenCL
kernels build once) and re-seeded and made ``NervanaObject.be`` for every test.
"""
import numpy as np
import pytest

from refnn.neon import NervanaObject
from refnn.neon.backends import gen_backend

NEON_BACKENDS = ("reference", "cpu", "gpu")
#: neon backend name -> refnn backend name (for the tolerance table)
REFNN_NAME = {"reference": "reference", "cpu": "cpu", "gpu": "opencl"}


@pytest.fixture(scope="module")
def _backends():
    return {}


@pytest.fixture(params=NEON_BACKENDS)
def nbe(request, _backends):
    name = request.param
    if name not in _backends:
        _backends[name] = gen_backend(name, rng_seed=0, batch_size=8)
    be = _backends[name]
    be.rng = np.random.RandomState(0)
    be.bsz = 8
    NervanaObject.be = be
    return be


@pytest.fixture
def ref_be(_backends):
    """A float64 reference neon backend (not made current)."""
    if "ref64" not in _backends:
        _backends["ref64"] = gen_backend("reference", rng_seed=0, batch_size=8,
                                         datatype=np.float64)
    return _backends["ref64"]
