"""cpu wrappers of the dense family and GEMM: validate, allocate, call refnn._ext.dense.

Each op has the signature and return convention of refnn.ops.dense. Checks stay
cheap (a few attribute reads): the small-batch MLP benchmark calls these thousands
of times per epoch, and at batch 128 the Python overhead is a visible share.
"""
import numpy as np

from refnn._ext import dense as _k
from refnn.backends.cpu._common import n_threads
from refnn.errors import DTypeError, ParameterError, ShapeError

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: below this many elements the kernels run one thread (dense.pyx PAR_MIN); skipping
#: the thread-count lookup then saves a few microseconds per call
_PAR_MIN = 32768


def _matrix(where, what, a, dtype=None):
    """A 2-D float32/float64 ndarray that is C-contiguous or a transposed view of one
    (F-contiguous); any other layout is copied to C order."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.dtype not in _FLOATS or (dtype is not None and a.dtype != dtype):
        allowed = dtype.name if dtype is not None else "float32 or float64"
        raise DTypeError(f"{where}: {what} must have dtype {allowed}, got {a.dtype.name}")
    if a.ndim != 2:
        raise ShapeError(f"{where}: {what} must be a 2-D matrix, got shape {a.shape}")
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        a = np.ascontiguousarray(a)
    return a


def _contiguous(where, what, a, shape, dtype):
    """``a`` as a C-contiguous array of ``shape`` and ``dtype`` (copied only if needed)."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.dtype != dtype:
        raise DTypeError(f"{where}: {what} must have dtype {dtype.name}, got {a.dtype.name}")
    if a.shape != shape:
        raise ShapeError(f"{where}: {what} must have shape {shape}, got {a.shape}")
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


# ------------------------------------------------------------------ GEMM
def gemm(A, B, C=None, alpha=1.0, beta=0.0):
    """C = alpha * A @ B + beta * C via BLAS; A, B may be ``.T`` views (no copy).

    C, when given, must be a C-contiguous (M, N) array of A's dtype not overlapping
    A or B; it is overwritten and returned. Without C, a new array is returned.
    """
    A = _matrix("gemm", "A", A)
    B = _matrix("gemm", "B", B, A.dtype)
    M, K = A.shape
    if B.shape[0] != K:
        raise ShapeError(f"gemm: B must have shape ({K}, *) to multiply A of shape "
                         f"{A.shape}, got {B.shape}")
    N = B.shape[1]
    if C is None:
        C, beta = np.empty((M, N), A.dtype), 0.0
    else:
        if not isinstance(C, np.ndarray):
            raise DTypeError(f"gemm: C must be a numpy.ndarray, got {type(C).__name__}")
        if C.dtype != A.dtype:
            raise DTypeError(f"gemm: C must have dtype {A.dtype.name}, got {C.dtype.name}")
        if C.shape != (M, N):
            raise ShapeError(f"gemm: C must have shape {(M, N)}, got {C.shape}")
        if not (C.flags.c_contiguous and C.flags.writeable):
            raise ParameterError("gemm: C must be a writeable C-contiguous array")
        if np.may_share_memory(C, A) or np.may_share_memory(C, B):
            raise ParameterError("gemm: C must not overlap A or B")
    if M == 0 or N == 0:
        return C
    if K == 0:                       # empty sum: alpha * 0 + beta * C
        if beta:
            C *= beta
        else:
            C.fill(0)
        return C
    _k.gemm(A, B, C, float(alpha), float(beta))
    return C


def transpose2d(a):
    """A C-contiguous copy of a.T for a 2-D array."""
    if getattr(a, "ndim", None) != 2:
        raise ShapeError(f"transpose2d: a must be a 2-D matrix, got shape {np.shape(a)}")
    return np.ascontiguousarray(a.T)


# ---------------------------------------------------------------- linear
def linear_forward(x, W):
    """y = x W^T (refnn.ops.dense.linear_forward); x (N, C_in), W (C_out, C_in)."""
    x = _matrix("linear", "x", x)
    W = _matrix("linear", "W", W, x.dtype)
    if W.shape[1] != x.shape[1]:
        raise ShapeError(f"linear: W must have shape (*, {x.shape[1]}) for x of shape "
                         f"{x.shape}, got {W.shape}")
    y = np.empty((x.shape[0], W.shape[0]), x.dtype)
    gemm(x, W.T, y)
    return y, (x, W)


def linear_backward(dy, saved, *, need_dx=True):
    """dx = dy W, dW = dy^T x (refnn.ops.dense.linear_backward); dx None if not need_dx."""
    x, W = saved
    dy = _matrix("linear", "dy", dy, x.dtype)
    if dy.shape != (x.shape[0], W.shape[0]):
        raise ShapeError(f"linear: dy must have shape {(x.shape[0], W.shape[0])}, "
                         f"got {dy.shape}")
    dx = gemm(dy, W) if need_dx else None
    dW = gemm(dy.T, x)
    return dx, dW


# ------------------------------------------------------------------ bias
def bias_forward(x, b):
    """y = x + b (refnn.ops.dense.bias_forward); x (N, C), b (C,)."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype not in _FLOATS:
        raise DTypeError(f"bias: x must have dtype float32 or float64, got {x.dtype.name}")
    if x.ndim != 2:
        raise ShapeError(f"bias: x must have shape (N, C), got {x.shape}")
    x = x if x.flags.c_contiguous else np.ascontiguousarray(x)
    b = _contiguous("bias", "b", b, (x.shape[1],), x.dtype)
    y = np.empty_like(x)
    _k.bias_add(x, b, y, n_threads() if x.size >= _PAR_MIN else 1)
    return y, (x.shape, x.dtype)


def bias_backward(dy, saved):
    """dx = dy, db = sum over the batch of dy (refnn.ops.dense.bias_backward)."""
    shape, dtype = saved
    dy = _contiguous("bias", "dy", dy, shape, dtype)
    db = np.empty(shape[1], dy.dtype)
    _k.col_sum(dy, db, n_threads() if dy.size >= _PAR_MIN else 1)
    return dy.copy(), db
