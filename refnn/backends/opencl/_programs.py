"""Load ``kernels/<family>.cl`` and build it once per (context, family, dtype).

``get(ctx, family, dtype)`` returns a built ``pyopencl.Program``. Programs are cached
in a dict guarded by a lock (several threads may ask at once); a build failure raises
:class:`OpenCLBuildError` naming the family file, the options and the compiler log.
The OpenCL C sources use the type ``real``, defined here with ``-D real=float|double``.
"""
import threading
from importlib import resources

import numpy as np
import pyopencl as cl

_CACHE = {}
_LOCK = threading.Lock()

_REAL = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


class OpenCLBuildError(RuntimeError):
    """An OpenCL program failed to build; the message holds the compiler log."""


def source(family):
    """The OpenCL C text of ``kernels/<family>.cl``."""
    return resources.files("refnn.backends.opencl").joinpath(
        "kernels", family + ".cl").read_text()


def get(ctx, family, dtype, options=()):
    """Return the built program for ``family`` in ``ctx`` with ``real`` = ``dtype``."""
    dtype = np.dtype(dtype)
    key = (ctx.int_ptr, family, dtype, tuple(options))
    with _LOCK:
        prg = _CACHE.get(key)
        if prg is not None:
            return prg
        opts = [f"-D real={_REAL[dtype]}", "-cl-mad-enable", *options]
        if dtype == np.float64:
            opts.append("-D REFNN_DOUBLE=1")
        try:
            prg = cl.Program(ctx, source(family)).build(options=opts)
        except cl.RuntimeError as err:
            raise OpenCLBuildError(
                f"OpenCL build of kernels/{family}.cl failed (options {' '.join(opts)}):\n"
                f"{err}") from None
        _CACHE[key] = prg
        return prg
