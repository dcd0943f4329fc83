"""Hypothesis profiles and backend fixtures shared by the whole suite.

Profiles: ``ci`` (fixed seed via derandomize, no deadline since the first OpenCL build
is slow, a modest example count so the suite stays well inside CI's budget on 2 cores)
and ``nightly`` (random seeds, many examples). CI=true selects ``ci``; otherwise
$HYPOTHESIS_PROFILE, default ``dev`` (random seed, few examples).
"""
import os

import pytest
from hypothesis import HealthCheck, settings

from refnn.testing.pytest_plugin import backend_names, make_backend

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])
settings.register_profile("ci", derandomize=True, max_examples=20, print_blob=True, **_common)
settings.register_profile("dev", max_examples=10, **_common)
settings.register_profile("nightly", max_examples=300, **_common)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="module", params=backend_names())
def backend(request):
    """Each fast backend (cpu, opencl on the default device), module-scoped."""
    return make_backend(request.param)


@pytest.fixture(scope="module")
def reference():
    return make_backend("reference")
