# cython: language_level=3
"""Row-major GEMM over scipy's BLAS; see _blas.pxd for the layout argument."""
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef void gemm_rowmajor(bint trans_a, bint trans_b, int M, int N, int K,
                        floating alpha, const floating *A, int lda,
                        const floating *B, int ldb,
                        floating beta, floating *C, int ldc) noexcept nogil:
    """C (M, N) = alpha * op(A) op(B) + beta * C, all row-major.

    op(A) is (M, K): A itself with leading dimension lda (row stride) when not
    trans_a, else A is stored (K, M). Likewise op(B) is (K, N). Column-major BLAS
    computes C^T = op(B)^T op(A)^T, so B goes first and M, N swap places.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &N, &M, &K, &alpha, <float *>B, &ldb, <float *>A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &N, &M, &K, &alpha, <double *>B, &ldb, <double *>A, &lda,
              &beta, C, &ldc)
