# cython: language_level=3
"""Dense-family kernels: GEMM through BLAS, bias add and column sums with OpenMP.

No validation here: refnn/backends/cpu/dense.py has checked ranks, shapes, dtypes
and layouts and allocated the outputs. Entry points take ndarrays (not typed
memoryviews) so that a call costs well under a microsecond of Python overhead: the
small-batch MLP benchmark makes thousands of these calls.
"""
cimport numpy as cnp
from cython.parallel cimport prange

from refnn._ext._blas cimport gemm_rowmajor

cnp.import_array()

# Parallel loops only pay off above this many elements (thread start-up ~ microseconds).
cdef Py_ssize_t PAR_MIN = 32768


cdef inline bint _transposed(cnp.ndarray a) noexcept:
    """True for a transposed view (Fortran order) of a row-major matrix."""
    return not cnp.PyArray_IS_C_CONTIGUOUS(a)


def gemm(cnp.ndarray A, cnp.ndarray B, cnp.ndarray C, double alpha, double beta):
    """C = alpha * A @ B + beta * C (refnn.backends.reference gemm).

    A (M, K), B (K, N): each C-contiguous or a transposed view (F-contiguous) -- the
    latter maps onto the BLAS transpose flag. C (M, N) C-contiguous, same dtype.
    M, N, K >= 1 (the wrapper handles empty products).
    """
    cdef int M = <int>cnp.PyArray_DIM(A, 0)
    cdef int K = <int>cnp.PyArray_DIM(A, 1)
    cdef int N = <int>cnp.PyArray_DIM(B, 1)
    cdef bint ta = _transposed(A)
    cdef bint tb = _transposed(B)
    # leading dimension = row stride of the stored (row-major) matrix
    cdef int lda = M if ta else K
    cdef int ldb = K if tb else N
    if cnp.PyArray_TYPE(C) == cnp.NPY_FLOAT32:
        with nogil:
            gemm_rowmajor[float](ta, tb, M, N, K, <float>alpha,
                                 <const float *>cnp.PyArray_DATA(A), lda,
                                 <const float *>cnp.PyArray_DATA(B), ldb, <float>beta,
                                 <float *>cnp.PyArray_DATA(C), N)
    else:
        with nogil:
            gemm_rowmajor[double](ta, tb, M, N, K, alpha,
                                  <const double *>cnp.PyArray_DATA(A), lda,
                                  <const double *>cnp.PyArray_DATA(B), ldb, beta,
                                  <double *>cnp.PyArray_DATA(C), N)


ctypedef fused floating:
    float
    double


cdef void _bias_add(const floating *x, const floating *b, floating *y,
                    Py_ssize_t N, Py_ssize_t C, int nt) noexcept nogil:
    cdef Py_ssize_t n, j
    for n in prange(N, schedule="static", num_threads=nt):
        for j in range(C):
            y[n * C + j] = x[n * C + j] + b[j]


def bias_add(cnp.ndarray x, cnp.ndarray b, cnp.ndarray y, int n_threads):
    """bias_forward: y[n, j] = x[n, j] + b[j]; equals refnn.ops.dense.bias_forward.
    x, y (N, C) and b (C,) C-contiguous, same dtype (y may be x: in place)."""
    cdef Py_ssize_t N = cnp.PyArray_DIM(x, 0), C = cnp.PyArray_DIM(x, 1)
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            _bias_add[float](<const float *>cnp.PyArray_DATA(x),
                             <const float *>cnp.PyArray_DATA(b),
                             <float *>cnp.PyArray_DATA(y), N, C, nt)
    else:
        with nogil:
            _bias_add[double](<const double *>cnp.PyArray_DATA(x),
                              <const double *>cnp.PyArray_DATA(b),
                              <double *>cnp.PyArray_DATA(y), N, C, nt)


# Columns per parallel chunk of the column sum (each thread owns whole columns).
cdef Py_ssize_t COL_BLOCK = 64


cdef void _col_sum(const floating *dy, floating *db, Py_ssize_t N, Py_ssize_t C,
                   int nt) noexcept nogil:
    cdef Py_ssize_t blk, n, j, j0, j1
    cdef Py_ssize_t n_blocks = (C + COL_BLOCK - 1) // COL_BLOCK
    for blk in prange(n_blocks, schedule="static", num_threads=nt):
        j0 = blk * COL_BLOCK
        j1 = min(j0 + COL_BLOCK, C)
        for j in range(j0, j1):
            db[j] = 0
        for n in range(N):          # rows in order: the inner loop is contiguous
            for j in range(j0, j1):
                db[j] = db[j] + dy[n * C + j]


def col_sum(cnp.ndarray dy, cnp.ndarray db, int n_threads):
    """bias_backward's db[j] = sum_n dy[n, j]; dy (N, C) and db (C,) C-contiguous."""
    cdef Py_ssize_t N = cnp.PyArray_DIM(dy, 0), C = cnp.PyArray_DIM(dy, 1)
    cdef int nt = n_threads if N * C >= PAR_MIN and C > COL_BLOCK else 1
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            _col_sum[float](<const float *>cnp.PyArray_DATA(dy),
                            <float *>cnp.PyArray_DATA(db), N, C, nt)
    else:
        with nogil:
            _col_sum[double](<const double *>cnp.PyArray_DATA(dy),
                             <double *>cnp.PyArray_DATA(db), N, C, nt)
