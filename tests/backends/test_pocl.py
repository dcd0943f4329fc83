"""The PoCL unknown-CPU workaround (refnn/backends/opencl/_pocl.py)."""
import numpy as np

from refnn.backends.opencl import _pocl


class _FakeDevice:
    def __init__(self, version):
        self.version = version


def test_only_pocl_devices_with_the_generic_cpu_are_touched():
    assert _pocl.needs_workaround(_FakeDevice("OpenCL 3.0 PoCL HSTR: pthread-x86_64-unknown-linux-gnu-generic"))
    assert not _pocl.needs_workaround(_FakeDevice("OpenCL 3.0 PoCL HSTR: pthread-x86_64-unknown-linux-gnu-znver3"))
    assert not _pocl.needs_workaround(_FakeDevice("OpenCL 3.0 CUDA"))
    assert _pocl.fix_unknown_cpu(_FakeDevice("OpenCL 3.0 CUDA")) is None


def test_cpu_name_is_an_llvm_x86_cpu():
    assert _pocl._cpu_name_for_this_machine() in (
        "skylake-avx512", "haswell", "sandybridge", "x86-64")


def test_programs_build_on_the_default_device():
    from refnn.backends.opencl import OpenCLBackend
    be = OpenCLBackend()
    x = be.asarray(np.array([[-1.0, 2.0]], np.float32))
    y, _ = be.op("relu.forward")(x)
    np.testing.assert_array_equal(be.to_host(y), [[0.0, 2.0]])
