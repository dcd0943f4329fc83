"""The testing contract, driven by refnn.ops SPECS and refnn.testing.op_inputs.INPUTS.

For every op: (1) the reference backward equals a float64 numerical gradient;
(2) every fast backend's forward and backward (or update) equal the reference's, and
leave their inputs unmutated. A new op needs no new code here: a SPECS entry and an
INPUTS strategy are enough.
"""
import pytest
from hypothesis import given

from refnn.ops import all_specs
from refnn.testing import assert_backends_agree, check_backward
from refnn.testing.op_inputs import INPUTS

SPECS = all_specs()
LAYER_OPS = sorted(n for n, s in SPECS.items() if s.kind == "layer")
ALL_OPS = sorted(SPECS)


@pytest.mark.parametrize("op", LAYER_OPS)
def test_reference_backward_matches_numerical_gradient(op):
    spec = SPECS[op]

    @given(INPUTS[op])
    def check(case):
        args, params = case
        check_backward(spec.forward, spec.backward, args, params,
                       diff_args=spec.diff_args, name=op)

    check()


@pytest.mark.parametrize("op", ALL_OPS)
def test_fast_path_matches_reference(op, backend):
    @given(INPUTS[op])
    def check(case):
        args, params = case
        assert_backends_agree(op, backend, args, params)

    check()


def test_every_op_has_inputs_and_all_three_paths():
    from refnn.backends.cpu import CpuBackend
    from refnn.backends.opencl import OpenCLBackend
    from refnn.backends.reference import ReferenceBackend
    for name, spec in SPECS.items():
        assert name in INPUTS, f"op {name!r} has no input strategy"
        for phase in spec.phases:
            for be in (ReferenceBackend, CpuBackend, OpenCLBackend):
                assert phase in be.KERNELS, f"{be.name} lacks {phase}"
