"""The Backend interface shared by the reference, cpu and opencl backends.

A backend owns arrays (``asarray``/``to_host``/``empty``/``zeros``) and one literal
``KERNELS`` table from op name (``"linear.forward"``) to implementation. ``op(name)``
looks an implementation up; a missing entry raises, naming backend and op -- a missing
fast path is never silently replaced by the reference.

Backends hold no global state: several threads may each create and use their own.
"""
import numbers

import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError


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

    # --------------------------------------------------------- block copies
    def copy_columns(self, src, src_col0, dst, dst_col0, ncols):
        """dst[:, dst_col0:dst_col0 + ncols] = src[:, src_col0:src_col0 + ncols]; returns dst.

        Copies a block of whole columns between two 2-D C-contiguous arrays of this
        backend with the same number of rows and the same dtype (any dtype: float32,
        float64, int32 ...), in place in ``dst``; ``ncols`` may be 0 (nothing to do).
        This is how a layer joins per-part results along the columns or splits a
        gradient back into parts (NumPy's slice assignment; on OpenCL one rectangular
        buffer copy on the device). The two blocks must not share memory.
        """
        self._check_copy_columns(src, src_col0, dst, dst_col0, ncols)
        if ncols and src.shape[0]:
            self._copy_columns(src, int(src_col0), dst, int(dst_col0), int(ncols))
        return dst

    def _check_copy_columns(self, src, src_col0, dst, dst_col0, ncols):
        where = f"{type(self).__name__}.copy_columns"
        for what, a in (("src", src), ("dst", dst)):
            if not self._is_array(a):
                raise ParameterError(f"{where}: {what} must be an array of the {self.name} "
                                     f"backend (use be.asarray), got {type(a).__name__}")
            if a.ndim != 2:
                raise ShapeError(f"{where}: {what} must be a 2-D matrix, got shape "
                                 f"{tuple(a.shape)}")
            if not a.flags.c_contiguous:
                raise ShapeError(f"{where}: {what} must be C-contiguous, got strides "
                                 f"{tuple(a.strides)} for shape {tuple(a.shape)}")
        if src.dtype != dst.dtype:
            raise DTypeError(f"{where}: src and dst must have the same dtype, got "
                             f"{np.dtype(src.dtype).name} and {np.dtype(dst.dtype).name}")
        if src.shape[0] != dst.shape[0]:
            raise ShapeError(f"{where}: src and dst must have the same number of rows, got "
                             f"shapes {tuple(src.shape)} and {tuple(dst.shape)}")
        for what, v in (("src_col0", src_col0), ("dst_col0", dst_col0), ("ncols", ncols)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ParameterError(f"{where}: {what} must be an int >= 0, got {v!r}")
        for what, a, c0 in (("src", src, src_col0), ("dst", dst, dst_col0)):
            if c0 + ncols > a.shape[1]:
                raise ShapeError(f"{where}: columns [{c0}, {c0 + ncols}) are outside {what} "
                                 f"of shape {tuple(a.shape)}")
        if ncols and src.shape[0] and self._blocks_overlap(src, src_col0, dst, dst_col0,
                                                           ncols):
            raise ParameterError(f"{where}: the memory spans of the source columns "
                                 f"[{src_col0}, {src_col0 + ncols}) and the destination "
                                 f"columns [{dst_col0}, {dst_col0 + ncols}) overlap (copy "
                                 f"between distinct arrays)")

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

    def _is_array(self, a):
        return isinstance(a, np.ndarray)

    def _blocks_overlap(self, src, src_col0, dst, dst_col0, ncols):
        # memory bounds, as the OpenCL backend checks them (np.shares_memory would
        # allow interleaved blocks of one array, clEnqueueCopyBufferRect may not)
        return np.may_share_memory(src[:, src_col0:src_col0 + ncols],
                                   dst[:, dst_col0:dst_col0 + ncols])

    def _copy_columns(self, src, src_col0, dst, dst_col0, ncols):
        dst[:, dst_col0:dst_col0 + ncols] = src[:, src_col0:src_col0 + ncols]

    def transpose2d(self, a):
        """A C-contiguous copy of the transpose of 2-D array ``a``."""
        if np.ndim(a) != 2:
            raise ShapeError(f"transpose2d: a must be a 2-D matrix, got shape {np.shape(a)}")
        return np.ascontiguousarray(np.asarray(a).T)
