"""Helpers shared by the OpenCL host wrappers: validation, launch sizes, scalars."""
import numpy as np
import pyopencl.array as cla

from refnn.errors import check_dtype, check_same_shape

LOCAL_1D = 64


def device_input(be, where, what, a, dtype=None):
    """A contiguous device array of the backend's dtype (host data is uploaded)."""
    if not isinstance(a, cla.Array):
        a = be.asarray(a, dtype=dtype)
    check_dtype(where, what, a.dtype, (dtype or be.dtype,))
    if not a.flags.c_contiguous:
        raise ValueError(f"{where}: {what} must be C-contiguous on the device")
    return a


def like(be, where, what, a, ref):
    a = device_input(be, where, what, a, ref.dtype)
    check_same_shape(where, what, a.shape, ref.shape)
    return a


def global_1d(n, local=LOCAL_1D):
    """Global size for n work-items, rounded up to a multiple of ``local``."""
    return ((max(n, 1) + local - 1) // local * local,)


def real(be, v):
    """A Python scalar as the backend's real type (for kernel arguments)."""
    return be.dtype.type(v)
