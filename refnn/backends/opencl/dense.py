"""OpenCL host wrappers of the dense family and GEMM (kernels in kernels/dense.cl).

Signatures are those of refnn.ops.dense with the backend first; arrays stay on the
device. ``gemm`` maps C-contiguous operands and transposed views (``a.T`` of a
C-contiguous pyopencl array) onto the four kernels gemm_nn/tn/nt/tt -- nothing is
copied -- and passes array offsets, so row slices of a larger array work as well.
"""
import numpy as np
import pyopencl.array as cla

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, like, real
from refnn.errors import DTypeError, ParameterError, ShapeError

#: (rows, columns) of C per work-item, as in dense.cl: gemm_nn/tn TM x (NV * VW) with
#: TM = 8, NV = 2 vectors of VW = 8 floats or 4 doubles; gemm_tt the same block of C^T;
#: gemm_nt 4 x 4. (Measured on PoCL, 2 cores: 8 x 16 beat 8 x 8, 4 x 16 and 6 x 16.)
_TILES = {
    np.dtype(np.float32): {"nn": (8, 16), "tn": (8, 16), "tt": (16, 8), "nt": (4, 4)},
    np.dtype(np.float64): {"nn": (8, 8), "tn": (8, 8), "tt": (8, 8), "nt": (4, 4)},
}
#: work-group shape of the GEMM launches (PoCL runs a group's work-items in a loop)
_GEMM_LOCAL = (8, 1)
_T_TILE = 16


def _ceil_to(n, m):
    return (n + m - 1) // m * m


def _operand(be, where, what, a):
    """(array, transposed?, leading dimension) of a 2-D device operand."""
    if not isinstance(a, cla.Array):
        a = be.asarray(a)
    if a.dtype != be.dtype:
        raise DTypeError(f"{where}: {what} must have dtype {be.dtype.name}, got {a.dtype.name}")
    if a.ndim != 2:
        raise ShapeError(f"{where}: {what} must be a 2-D matrix, got shape {a.shape}")
    rows, cols = a.shape
    item = a.dtype.itemsize
    if a.flags.c_contiguous or (a.strides[1] == item and a.strides[0] >= cols * item):
        return a, False, max(a.strides[0] // item if rows > 1 else cols, 1)
    if a.flags.f_contiguous or (a.strides[0] == item and a.strides[1] >= rows * item):
        return a, True, max(a.strides[1] // item if cols > 1 else rows, 1)
    raise ParameterError(
        f"{where}: {what} must be row-contiguous or a transposed view (.T) of a "
        f"row-contiguous array, got strides {a.strides}")


def _u32(v):
    return np.uint32(v)


def gemm(be, A, B, C=None, alpha=1.0, beta=0.0):
    """C = alpha * A @ B + beta * C on the device; A, B may be ``.T`` views.

    C, when given, is a C-contiguous (M, N) device array of the backend's dtype, not
    A's or B's buffer; it is overwritten and returned.
    """
    A, ta, lda = _operand(be, "gemm", "A", A)
    B, tb, ldb = _operand(be, "gemm", "B", B)
    M, K = A.shape
    if B.shape[0] != K:
        raise ShapeError(f"gemm: B must have shape ({K}, *) to multiply A of shape "
                         f"{A.shape}, got {B.shape}")
    N = B.shape[1]
    if C is None:
        C, beta = be.empty((M, N)), 0.0
    else:
        if not isinstance(C, cla.Array):
            raise DTypeError(f"gemm: C must be a pyopencl array, got {type(C).__name__}")
        if C.dtype != be.dtype:
            raise DTypeError(f"gemm: C must have dtype {be.dtype.name}, got {C.dtype.name}")
        if C.shape != (M, N):
            raise ShapeError(f"gemm: C must have shape {(M, N)}, got {C.shape}")
        if not C.flags.c_contiguous:
            raise ParameterError("gemm: C must be C-contiguous")
        if C.base_data == A.base_data or C.base_data == B.base_data:
            raise ParameterError("gemm: C must not share its buffer with A or B")
    if M == 0 or N == 0:
        return C
    name = ("t" if ta else "n") + ("t" if tb else "n")
    tm, tn = _TILES[be.dtype][name]
    if name == "tt":            # gemm_tt's work-items run over C^T: dim 0 = rows of C
        gsize = (_ceil_to(-(-M // tm), _GEMM_LOCAL[0]), -(-N // tn))
    else:
        gsize = (_ceil_to(-(-N // tn), _GEMM_LOCAL[0]), -(-M // tm))
    item = be.dtype.itemsize
    be.kernel("dense", "gemm_" + name)(
        be.queue, gsize, _GEMM_LOCAL, _u32(M), _u32(N), _u32(K), real(be, alpha),
        A.base_data, _u32(A.offset // item), _u32(lda),
        B.base_data, _u32(B.offset // item), _u32(ldb),
        real(be, beta), C.base_data, _u32(C.offset // item), _u32(N))
    return C


def transpose2d(be, a):
    """A C-contiguous (C, R) device copy of a.T for an (R, C) device array."""
    a = device_input(be, "transpose2d", "a", a) if not (
        isinstance(a, cla.Array) and a.flags.f_contiguous and not a.flags.c_contiguous) else a
    if a.ndim != 2:
        raise ShapeError(f"transpose2d: a must be a 2-D matrix, got shape {a.shape}")
    if not a.flags.c_contiguous:          # a is itself a transposed view: a.T is C order
        return a.T.copy(queue=be.queue)
    R, C = a.shape
    out = be.empty((C, R))
    if a.size:
        be.kernel("dense", "transpose2d")(
            be.queue, (_ceil_to(C, _T_TILE), _ceil_to(R, _T_TILE)), (_T_TILE, _T_TILE),
            a.data, out.data, _u32(R), _u32(C))
    return out


# ---------------------------------------------------------------- linear
def linear_forward(be, x, W):
    """y = x W^T (refnn.ops.dense.linear_forward) with gemm_nt."""
    x = device_input(be, "linear", "x", x)
    W = device_input(be, "linear", "W", W)
    if x.ndim != 2:
        raise ShapeError(f"linear: x must have shape (N, C_in), got {x.shape}")
    if W.ndim != 2 or W.shape[1] != x.shape[1]:
        raise ShapeError(f"linear: W must have shape (*, {x.shape[1]}) for x of shape "
                         f"{x.shape}, got {W.shape}")
    y = be.empty((x.shape[0], W.shape[0]))
    gemm(be, x, W.T, y)
    return y, (x, W)


def linear_backward(be, dy, saved, *, need_dx=True):
    """dx = dy W (gemm_nn), dW = dy^T x (gemm_tn); dx None if not need_dx."""
    x, W = saved
    dy = device_input(be, "linear", "dy", dy)
    if dy.shape != (x.shape[0], W.shape[0]):
        raise ShapeError(f"linear: dy must have shape {(x.shape[0], W.shape[0])}, "
                         f"got {dy.shape}")
    dx = gemm(be, dy, W) if need_dx else None
    dW = gemm(be, dy.T, x)
    return dx, dW


# ------------------------------------------------------------------ bias
def bias_forward(be, x, b):
    """y = x + b (refnn.ops.dense.bias_forward)."""
    x = device_input(be, "bias", "x", x)
    if x.ndim != 2:
        raise ShapeError(f"bias: x must have shape (N, C), got {x.shape}")
    b = device_input(be, "bias", "b", b)
    if b.shape != (x.shape[1],):
        raise ShapeError(f"bias: b must have shape {(x.shape[1],)}, got {b.shape}")
    y = be.empty(x.shape)
    if x.size:
        be.kernel("dense", "bias_forward")(
            be.queue, global_1d(x.size), (LOCAL_1D,), x.data, b.data, y.data,
            _u32(x.shape[1]), _u32(x.size))
    return y, (x,)


def bias_backward(be, dy, saved):
    """dx = dy, db = column sums of dy (refnn.ops.dense.bias_backward)."""
    (x,) = saved
    dy = like(be, "bias", "dy", dy, x)
    N, C = x.shape
    db = be.empty((C,))
    if C:
        be.kernel("dense", "col_sum")(
            be.queue, global_1d(C), (LOCAL_1D,), dy.data, db.data, _u32(N), _u32(C))
    return dy.copy(queue=be.queue), db
