"""neoml.MathEngine: where blobs live and which refnn backend computes.

NeoML                                refnn
``CpuMathEngine(thread_count=0)``    the ``cpu`` backend (Cython kernels, BLAS)
``GpuMathEngine(gpu_index)``         the ``opencl`` backend on the ``gpu_index``-th OpenCL
                                     GPU of :func:`enum_gpu` (bad index -> ValueError)
``ReferenceMathEngine()``            (refnn only) the ``reference`` backend: the readable
                                     NumPy functions of :mod:`refnn.ops`
``OpenCLMathEngine(device=None)``    (refnn only) the ``opencl`` backend on ANY OpenCL
                                     device, e.g. PoCL's CPU device on a machine without
                                     a GPU: ``device`` is an index or "platform:device"
                                     as listed by ``refnn devices``; default as in
                                     :func:`refnn.backends.get_backend`.

An engine holds no global state: each thread may create its own engine and network.
Blobs of the ``cpu`` and ``reference`` engines are NumPy arrays in host memory (so
``Blob.asblob``/``Blob.asarray`` share memory with NumPy); blobs of the OpenCL engines
stay on the device and are copied only by ``asarray``.
"""
import threading

import numpy as np

from refnn.backends import get_backend

__all__ = ["MathEngine", "CpuMathEngine", "GpuMathEngine", "ReferenceMathEngine",
           "OpenCLMathEngine", "enum_gpu", "default_math_engine"]


class MathEngine:
    """Base class of the engines: a refnn backend plus blob memory accounting.

    ``peak_memory_usage`` counts the bytes of the blobs allocated through the engine,
    as NeoML's CPU engine does (one 10-element int32 blob -> 40): blob factories,
    ``asblob(..., copy=True)``, ``Blob.copy`` and the weight copies layers return. A
    blob wrapping the user's NumPy array without a copy allocates nothing. Unlike
    NeoML, a network's internal arrays (activations, gradients, solver state) are not
    counted: they are the backend's, not blobs.
    """

    #: True where blob memory is host memory shared with NumPy
    is_host = True

    def __init__(self, backend):
        self._backend = backend
        self._lock = threading.Lock()
        self._usage = 0
        self._peak = 0

    @property
    def backend(self):
        """The refnn backend object (refnn extension)."""
        return self._backend

    # ------------------------------------------------------------ memory accounting
    def _allocated(self, nbytes):
        with self._lock:
            self._usage += nbytes
            self._peak = max(self._peak, self._usage)

    def _freed(self, nbytes):
        with self._lock:
            self._usage -= nbytes

    @property
    def peak_memory_usage(self):
        """The peak number of bytes held by blobs of this engine."""
        return self._peak

    @property
    def memory_usage(self):
        """Bytes held now by live blobs of this engine (refnn extension)."""
        return self._usage

    def reset_peak_memory_usage(self):
        """Set the peak to the current usage."""
        with self._lock:
            self._peak = self._usage

    def clean_up(self):
        """Release memory cached by the engine (the OpenCL memory pool)."""
        pool = getattr(self._backend, "allocator", None)
        if pool is not None and hasattr(pool, "free_held"):
            pool.free_held()

    def __repr__(self):
        return f"<{type(self).__name__} backend={self._backend!r}>"


class CpuMathEngine(MathEngine):
    """The CPU engine: refnn's ``cpu`` backend (Cython + BLAS), float32.

    ``thread_count`` is accepted as in NeoML (0 = all cores); refnn's kernels take
    their thread count from ``$REFNN_NUM_THREADS`` (default: all cores).
    """

    def __init__(self, thread_count=0):
        if isinstance(thread_count, bool) or not isinstance(thread_count, (int, np.integer)) \
                or thread_count < 0:
            raise ValueError(f"CpuMathEngine: thread_count must be an int >= 0, "
                             f"got {thread_count!r}")
        self.thread_count = int(thread_count)
        super().__init__(get_backend("cpu", dtype=np.float32))


class ReferenceMathEngine(MathEngine):
    """refnn only: the NumPy reference (refnn.ops) behind the NeoML API, float32.

    Slow and readable: use it to check a network on the fast engines.
    """

    def __init__(self):
        super().__init__(get_backend("reference", dtype=np.float32))


class OpenCLMathEngine(MathEngine):
    """refnn only: the OpenCL engine on any OpenCL device, GPU or CPU (PoCL).

    ``device``: an index or "platform:device" string (``refnn devices`` lists them),
    default: $REFNN_OPENCL_DEVICE, $PYOPENCL_CTX, the first GPU, else the first device.
    """

    is_host = False

    def __init__(self, device=None):
        super().__init__(get_backend("opencl", dtype=np.float32, device=device))


def _gpu_devices():
    try:
        import pyopencl as cl
        from refnn.backends.opencl import list_devices
    except Exception:
        return []
    return [(p, d, dev) for p, d, dev in list_devices() if dev.type & cl.device_type.GPU]


def enum_gpu():
    """A tuple with one description per OpenCL GPU device (empty where there is none).

    Each description is a dict: ``index`` (for :class:`GpuMathEngine`), ``name``,
    ``platform``, ``id`` ("platform:device") and ``memory`` (bytes). CPU devices such
    as PoCL's are not GPUs; reach them with :class:`OpenCLMathEngine`.
    """
    return tuple({"index": i, "name": dev.name.strip(), "platform": dev.platform.name.strip(),
                  "id": f"{p}:{d}", "memory": int(dev.global_mem_size)}
                 for i, (p, d, dev) in enumerate(_gpu_devices()))


class GpuMathEngine(OpenCLMathEngine):
    """The GPU engine: refnn's ``opencl`` backend on the ``gpu_index``-th GPU of
    :func:`enum_gpu`. An index out of range raises ValueError (as in NeoML).
    """

    def __init__(self, gpu_index=0):
        gpus = _gpu_devices()
        if isinstance(gpu_index, bool) or not isinstance(gpu_index, (int, np.integer)) \
                or not 0 <= gpu_index < len(gpus):
            raise ValueError(
                f"GpuMathEngine: gpu_index must be in [0, {len(gpus)}) -- {len(gpus)} OpenCL "
                f"GPU(s) found by enum_gpu() -- got {gpu_index!r}; use "
                f"refnn.neoml.MathEngine.OpenCLMathEngine() for a CPU OpenCL device")
        self.gpu_index = int(gpu_index)
        p, d, _ = gpus[gpu_index]
        super().__init__(device=f"{p}:{d}")


def default_math_engine():
    """A new CPU engine (NeoML's default engine is the CPU one)."""
    return CpuMathEngine()
