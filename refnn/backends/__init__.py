"""Backends: ``reference`` (NumPy), ``cpu`` (Cython) and ``opencl`` (PyOpenCL).

``get_backend(name, dtype=..., device=...)`` creates a new backend object each call;
nothing is global, so each thread may own its own backend.
"""
import numpy as np

from refnn.backends.base import Backend, BackendError

BACKENDS = ("reference", "cpu", "opencl")


def get_backend(name="cpu", dtype=np.float32, device=None):
    """Create a backend.

    name:   "reference" | "cpu" | "opencl".
    dtype:  float32 (default) or float64. The cpu and opencl fast paths run float32
            (opencl float64 only on devices with cl_khr_fp64); the reference runs in
            whatever dtype it is given.
    device: opencl only -- an index, "platform:device" string (PYOPENCL_CTX
            semantics), or a pyopencl.Device. Default: $REFNN_OPENCL_DEVICE, then
            $PYOPENCL_CTX, then the first GPU, then the first device (PoCL's CPU).
    """
    if name == "reference":
        from refnn.backends.reference import ReferenceBackend
        backend = ReferenceBackend(dtype)
    elif name == "cpu":
        from refnn.backends.cpu import CpuBackend
        backend = CpuBackend(dtype)
    elif name == "opencl":
        from refnn.backends.opencl import OpenCLBackend
        return OpenCLBackend(dtype, device=device)
    else:
        raise BackendError(
            f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    if device is not None:
        raise BackendError(f"backend {name!r} takes no device (got {device!r}); "
                           "only 'opencl' runs on a chosen device")
    return backend


def available_backends():
    """Names of the backends that can be created on this machine."""
    names = ["reference"]
    try:
        import refnn._ext._blas  # noqa: F401
        names.append("cpu")
    except ImportError:
        pass
    try:
        from refnn.backends.opencl import list_devices
        if list_devices():
            names.append("opencl")
    except Exception:
        pass
    return names


__all__ = ["Backend", "BackendError", "get_backend", "available_backends", "BACKENDS"]
