"""Engines for the NeoML facade tests: reference, cpu and OpenCL (PoCL's CPU device
when there is no GPU -- never skipped)."""
import pytest

import refnn.neoml as neoml

ENGINES = ("reference", "cpu", "opencl")


def make_engine(kind):
    if kind == "reference":
        return neoml.MathEngine.ReferenceMathEngine()
    if kind == "cpu":
        return neoml.MathEngine.CpuMathEngine()
    return neoml.MathEngine.OpenCLMathEngine()


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    return make_engine(request.param)


@pytest.fixture(scope="module", params=("cpu", "opencl"))
def fast_engine(request):
    return make_engine(request.param)
