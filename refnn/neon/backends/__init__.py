"""neon.backends: ``gen_backend`` and the backend/tensor classes.

neon's backend names map onto refnn backends:

=============  =====================================================================
``'cpu'``      refnn's ``cpu`` backend (Cython kernels, BLAS gemm)
``'gpu'``      refnn's ``opencl`` backend -- the OpenCL device (a GPU when one exists,
               else PoCL's CPU device); ``device_id`` picks the device
``'reference'`` the readable NumPy reference (``refnn.ops`` itself)
``'mkl'``      the ``cpu`` backend, with a warning (refnn has no MKL backend)
=============  =====================================================================
"""
import warnings

import numpy as np

from refnn.errors import DTypeError, ParameterError
from refnn.neon._object import NervanaObject
from refnn.neon.backends.backend import Backend, Block, OpTreeNode, Tensor
from refnn.neon.backends.nervanarefnn import NervanaRefnn, NervanaRefnnOpenCL

#: neon backend name -> refnn backend name
BACKENDS = {"cpu": "cpu", "gpu": "opencl", "reference": "reference", "mkl": "cpu"}


def gen_backend(backend="cpu", rng_seed=None, datatype=np.float32, batch_size=0,
                stochastic_rounding=False, device_id=None, **_ignored):
    """Construct a backend, make it ``NervanaObject.be`` (for this thread) and return it.

    backend:    'cpu' (refnn cpu), 'gpu' (refnn opencl: the OpenCL device, GPU or not),
                'reference' (NumPy reference) or 'mkl' (= 'cpu', warns).
    rng_seed:   seeds ``be.rng`` (a NumPy RandomState on the host), which initializers
                and dropout draw from -- so one seed gives the same weights on every backend.
    datatype:   float32 (default) or float64 (cpu/reference; opencl where the device has fp64).
    batch_size: the minibatch size ``be.bsz`` every iobuf and data iterator uses.
    device_id:  'gpu' only: an OpenCL device index or "platform:device" (see `refnn devices`).
    """
    from refnn.backends import get_backend
    if backend not in BACKENDS:
        raise ParameterError(f"gen_backend: unknown backend {backend!r}; expected one of "
                             f"{', '.join(repr(b) for b in BACKENDS)}")
    dtype = np.dtype(datatype)
    if dtype not in (np.float32, np.float64):
        raise DTypeError(f"gen_backend: datatype must be float32 or float64, got {dtype.name}")
    if stochastic_rounding:
        raise ParameterError("gen_backend: stochastic_rounding is not provided")
    if int(batch_size) < 0:
        raise ParameterError(f"gen_backend: batch_size must be >= 0, got {batch_size}")
    if backend == "mkl":
        warnings.warn("gen_backend: refnn has no MKL backend; using 'cpu'", stacklevel=2)
    name = BACKENDS[backend]
    if name == "opencl":
        rb = get_backend("opencl", dtype=dtype, device=device_id)
        be = NervanaRefnnOpenCL(rb, rng_seed=rng_seed, batch_size=int(batch_size), name=backend)
    else:
        if device_id not in (None, 0):
            raise ParameterError(f"gen_backend: device_id applies to backend='gpu' only, "
                                 f"got device_id={device_id!r} for {backend!r}")
        rb = get_backend(name, dtype=dtype)
        be = NervanaRefnn(rb, rng_seed=rng_seed, batch_size=int(batch_size), name=backend)
    NervanaObject.be = be
    return be


__all__ = ["gen_backend", "Backend", "Block", "OpTreeNode", "Tensor", "NervanaRefnn",
           "NervanaRefnnOpenCL", "BACKENDS"]
