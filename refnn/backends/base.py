"""The Backend interface shared by the reference, cpu and opencl backends.

A backend owns arrays (``asarray``/``to_host``/``empty``/``zeros``) and one literal
``KERNELS`` table from op name (``"linear.forward"``) to implementation. ``op(name)``
looks an implementation up; a missing entry raises, naming backend and op -- a missing
fast path is never silently replaced by the reference.

Backends hold no global state: several threads may each create and use their own.
"""
import numpy as np

from refnn.errors import ShapeError


class BackendError(ValueError):
    """Raised for an unknown backend/device or an op a backend does not provide."""


class Backend:
    #: short name: "reference", "cpu" or "opencl"
    name = "base"
    #: op name -> implementation; subclasses define it as one literal dict
    KERNELS = {}

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise BackendError(
                f"{type(self).__name__}: dtype must be a floating type, got {self.dtype}")
        self._bound = {}

    # ----------------------------------------------------------------- ops
    def _bind(self, fn):
        """How a KERNELS entry becomes a callable; OpenCL binds the backend first."""
        return fn

    def op(self, name):
        """Return the implementation of op phase ``name`` (e.g. ``"relu.forward"``)."""
        try:
            return self._bound[name]
        except KeyError:
            pass
        try:
            fn = self.KERNELS[name]
        except KeyError:
            raise BackendError(
                f"backend {self.name!r} has no op {name!r}; "
                f"`refnn coverage` lists what each backend provides") from None
        bound = self._bind(fn)
        self._bound[name] = bound
        return bound

    def has_op(self, name):
        return name in self.KERNELS

    # -------------------------------------------------------------- arrays
    def asarray(self, a, dtype=None):
        """Copy/convert host data into an array of this backend (default: its dtype)."""
        raise NotImplementedError

    def to_host(self, a):
        """Return a NumPy array with the contents of backend array ``a``."""
        raise NotImplementedError

    def empty(self, shape, dtype=None):
        raise NotImplementedError

    def zeros(self, shape, dtype=None):
        raise NotImplementedError

    def synchronize(self):
        """Wait for queued work (no-op on host backends)."""

    def __repr__(self):
        return f"<{type(self).__name__} dtype={self.dtype}>"


class HostBackend(Backend):
    """Arrays are NumPy arrays in host memory (the reference and cpu backends)."""

    def asarray(self, a, dtype=None):
        return np.ascontiguousarray(a, dtype=dtype or self.dtype)

    def to_host(self, a):
        return np.asarray(a)

    def empty(self, shape, dtype=None):
        return np.empty(shape, dtype=dtype or self.dtype)

    def zeros(self, shape, dtype=None):
        return np.zeros(shape, dtype=dtype or self.dtype)

    def transpose2d(self, a):
        """A C-contiguous copy of the transpose of 2-D array ``a``."""
        if np.ndim(a) != 2:
            raise ShapeError(f"transpose2d: a must be a 2-D matrix, got shape {np.shape(a)}")
        return np.ascontiguousarray(np.asarray(a).T)
