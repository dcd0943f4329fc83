# cython: language_level=3
"""A thin row-major shim over scipy.linalg.cython_blas (sgemm/dgemm).

BLAS is column-major; refnn's arrays are row-major (C order). A row-major matrix is
its own transpose in column-major eyes, so C = op(A) op(B) (row-major) is computed as
C^T = op(B)^T op(A)^T (column-major) by swapping the operands -- no copies.
"""

ctypedef fused floating:
    float
    double


cdef void gemm_rowmajor(bint trans_a, bint trans_b, int M, int N, int K,
                        floating alpha, const floating *A, int lda,
                        const floating *B, int ldb,
                        floating beta, floating *C, int ldc) noexcept nogil
