/* Dense family and GEMM. `real` is float or double (-D real=...).
 *
 * GEMM: C (M, N) = alpha * op(A) op(B) + beta * C, all matrices row-major with a
 * leading dimension (row stride) per operand; op(X) is X or X^T. It is the one
 * primitive behind linear_forward (x W^T), linear_backward (dy W and dy^T x) and the
 * neon facade's dot products (refnn.backends.reference gemm is the oracle).
 *
 * Why register blocking: PoCL (the CPU device) runs the work-items of a group one
 * after another and does not vectorise across them, so each work-item computes a
 * TM x TN block of C from vector loads (real8) and keeps it in registers; a plain
 * one-output-per-work-item kernel is ~6x slower there. On a GPU the same kernels are
 * valid, if not tuned.
 *
 * Two loop shapes cover the four transpose cases without copying anything:
 *   outer product  (gemm_nn, gemm_tn, gemm_tt): for each k, a column of op(A)
 *                  (TM scalars) times a row of op(B) (one real8) -- needs op(B)'s
 *                  rows contiguous, true for B stored (K, N);
 *   dot product    (gemm_nt): op(B) = B^T with B stored (N, K) has contiguous
 *                  *columns*, as do A's rows, so each output is a dot product of two
 *                  contiguous K-vectors, taken 8 at a time.
 * gemm_tt computes C^T = B A (both stored row-major, no transposes) and writes
 * its block transposed.
 * Blocks that cross the edge of C (M or N not a multiple of the tile) take a scalar
 * path with bounds checks; full blocks take the vector path.
 */

#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define VEC_(t, n) t##n
#define VEC(t, n) VEC_(t, n)
typedef VEC(real, 8) real8;

#define TM 8        /* rows of C per work-item */
#define TN 8        /* columns of C per work-item (one real8) */

/* The element op(X)[r][c] of a row-major X with leading dimension ld. */
#define AT(X, ld, trans, r, c) ((trans) ? (X)[(size_t)(c) * (ld) + (r)] \
                                        : (X)[(size_t)(r) * (ld) + (c)])

/* C[i][j] = alpha * acc + beta * C[i][j]; beta == 0 never reads C (it may hold NaN). */
inline void store_c(__global real *C, const uint ldc, const uint i, const uint j,
                    const real acc, const real alpha, const real beta)
{
    const size_t at = (size_t)i * ldc + j;
    C[at] = beta == 0 ? alpha * acc : alpha * acc + beta * C[at];
}

/* Scalar path for one block that crosses the edge of C: the textbook triple loop
 * sum_k op(A)[i][k] op(B)[k][j], restricted to i < M, j < N. */
inline void gemm_edge(const uint M, const uint N, const uint K,
                      const real alpha, __global const real *A, const uint lda, const int ta,
                      __global const real *B, const uint ldb, const int tb,
                      const real beta, __global real *C, const uint ldc,
                      const uint i0, const uint j0)
{
    for (uint i = i0; i < min(i0 + TM, M); ++i)
        for (uint j = j0; j < min(j0 + TN, N); ++j) {
            real acc = 0;
            for (uint k = 0; k < K; ++k)
                acc += AT(A, lda, ta, i, k) * AT(B, ldb, tb, k, j);
            store_c(C, ldc, i, j, acc, alpha, beta);
        }
}

/* Outer-product block: acc[r] (a real8 over columns j0..j0+7) += op(A)[i0+r][k] *
 * B[k][j0..j0+7], B stored (K, N). `ta` says whether A is stored transposed; a
 * constant at each call site, so the compiler folds the branch. */
inline void gemm_outer_block(const uint K, const real alpha,
                             __global const real *A, const uint lda, const int ta,
                             __global const real *B, const uint ldb,
                             const real beta, __global real *C, const uint ldc,
                             const int tc, const uint i0, const uint j0)
{
    real8 acc[TM];
    for (int r = 0; r < TM; ++r) acc[r] = (real8)(0);
    for (uint k = 0; k < K; ++k) {
        const real8 b = vload8(0, B + (size_t)k * ldb + j0);
        for (int r = 0; r < TM; ++r)
            acc[r] = fma((real8)(AT(A, lda, ta, i0 + r, k)), b, acc[r]);
    }
    for (int r = 0; r < TM; ++r) {
        real v[TN];
        vstore8(acc[r], 0, v);
        for (int c = 0; c < TN; ++c) {
            if (tc) store_c(C, ldc, j0 + c, i0 + r, v[c], alpha, beta);
            else    store_c(C, ldc, i0 + r, j0 + c, v[c], alpha, beta);
        }
    }
}

/* gemm_nn: C = alpha A B + beta C; A stored (M, K), B stored (K, N).
 * Work-item (gx, gy) owns rows 8*gy.., columns 8*gx.. of C. */
__kernel void gemm_nn(const uint M, const uint N, const uint K, const real alpha,
                      __global const real *A, const uint offa, const uint lda,
                      __global const real *B, const uint offb, const uint ldb,
                      const real beta, __global real *C, const uint offc, const uint ldc)
{
    A += offa; B += offb; C += offc;
    const uint j0 = get_global_id(0) * TN, i0 = get_global_id(1) * TM;
    if (i0 >= M || j0 >= N) return;
    if (i0 + TM > M || j0 + TN > N)
        gemm_edge(M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, i0, j0);
    else
        gemm_outer_block(K, alpha, A, lda, 0, B, ldb, beta, C, ldc, 0, i0, j0);
}

/* gemm_tn: C = alpha A^T B + beta C; A stored (K, M), B stored (K, N)
 * (linear_backward's dW = dy^T x). */
__kernel void gemm_tn(const uint M, const uint N, const uint K, const real alpha,
                      __global const real *A, const uint offa, const uint lda,
                      __global const real *B, const uint offb, const uint ldb,
                      const real beta, __global real *C, const uint offc, const uint ldc)
{
    A += offa; B += offb; C += offc;
    const uint j0 = get_global_id(0) * TN, i0 = get_global_id(1) * TM;
    if (i0 >= M || j0 >= N) return;
    if (i0 + TM > M || j0 + TN > N)
        gemm_edge(M, N, K, alpha, A, lda, 1, B, ldb, 0, beta, C, ldc, i0, j0);
    else
        gemm_outer_block(K, alpha, A, lda, 1, B, ldb, beta, C, ldc, 0, i0, j0);
}

/* gemm_tt: C = alpha A^T B^T + beta C; A stored (K, M), B stored (N, K).
 * Computed as C^T (N, M) = B A, an outer product over B's columns and A's rows, with
 * the block stored transposed. Work-item (gx, gy) owns C rows 8*gx.., columns 8*gy.. */
__kernel void gemm_tt(const uint M, const uint N, const uint K, const real alpha,
                      __global const real *A, const uint offa, const uint lda,
                      __global const real *B, const uint offb, const uint ldb,
                      const real beta, __global real *C, const uint offc, const uint ldc)
{
    A += offa; B += offb; C += offc;
    const uint i0 = get_global_id(0) * TN, j0 = get_global_id(1) * TM;
    if (i0 >= M || j0 >= N) return;
    if (i0 + TN > M || j0 + TM > N)
        gemm_edge(M, N, K, alpha, A, lda, 1, B, ldb, 1, beta, C, ldc, i0, j0);
    else    /* rows of C^T are j, "A" of the product is B (no transpose), "B" is A */
        gemm_outer_block(K, alpha, B, ldb, 0, A, lda, beta, C, ldc, 1, j0, i0);
}

/* Dot-product block for gemm_nt: acc[r][c] (a real8 of partial sums over k) +=
 * A[i0+r][k..k+7] * B[j0+c][k..k+7]; summed across the vector lanes at the end.
 * A 4 x 4 block of outputs: 16 real8 accumulators, which fill the 16 AVX2 registers. */
#define TM_NT 4
#define TN_NT 4

inline real hsum8(const real8 v)
{
    const VEC(real, 4) h = v.lo + v.hi;
    const VEC(real, 2) q = h.lo + h.hi;
    return q.x + q.y;
}

/* gemm_nt: C = alpha A B^T + beta C; A stored (M, K), B stored (N, K)
 * (linear_forward's y = x W^T). Work-item (gx, gy) owns rows 4*gy.., columns 4*gx.. */
__kernel void gemm_nt(const uint M, const uint N, const uint K, const real alpha,
                      __global const real *A, const uint offa, const uint lda,
                      __global const real *B, const uint offb, const uint ldb,
                      const real beta, __global real *C, const uint offc, const uint ldc)
{
    A += offa; B += offb; C += offc;
    const uint j0 = get_global_id(0) * TN_NT, i0 = get_global_id(1) * TM_NT;
    if (i0 >= M || j0 >= N) return;
    if (i0 + TM_NT > M || j0 + TN_NT > N) {
        for (uint i = i0; i < min(i0 + TM_NT, M); ++i)
            for (uint j = j0; j < min(j0 + TN_NT, N); ++j) {
                real acc = 0;
                for (uint k = 0; k < K; ++k)
                    acc += A[(size_t)i * lda + k] * B[(size_t)j * ldb + k];
                store_c(C, ldc, i, j, acc, alpha, beta);
            }
        return;
    }
    real8 acc[TM_NT][TN_NT];
    for (int r = 0; r < TM_NT; ++r)
        for (int c = 0; c < TN_NT; ++c) acc[r][c] = (real8)(0);
    const uint K8 = K - K % 8;
    for (uint k = 0; k < K8; k += 8) {
        real8 a[TM_NT];
        for (int r = 0; r < TM_NT; ++r) a[r] = vload8(0, A + (size_t)(i0 + r) * lda + k);
        for (int c = 0; c < TN_NT; ++c) {
            const real8 b = vload8(0, B + (size_t)(j0 + c) * ldb + k);
            for (int r = 0; r < TM_NT; ++r) acc[r][c] = fma(a[r], b, acc[r][c]);
        }
    }
    for (int r = 0; r < TM_NT; ++r)
        for (int c = 0; c < TN_NT; ++c) {
            real s = hsum8(acc[r][c]);
            for (uint k = K8; k < K; ++k)      /* the K % 8 tail */
                s += A[(size_t)(i0 + r) * lda + k] * B[(size_t)(j0 + c) * ldb + k];
            store_c(C, ldc, i0 + r, j0 + c, s, alpha, beta);
        }
}

/* bias_forward: y[n][j] = x[n][j] + b[j] (refnn.ops.dense.bias_forward);
 * one work-item per element of the (N, C) array, size = N * C. */
__kernel void bias_forward(__global const real *x, __global const real *b,
                           __global real *y, const uint C, const uint size)
{
    const uint i = get_global_id(0);
    if (i >= size) return;
    y[i] = x[i] + b[i % C];
}

/* col_sum: db[j] = sum_n dy[n][j] (bias_backward's db); one work-item per column,
 * walking down the rows (neighbouring work-items read neighbouring addresses). */
__kernel void col_sum(__global const real *dy, __global real *db, const uint N, const uint C)
{
    const uint j = get_global_id(0);
    if (j >= C) return;
    real s = 0;
    for (uint n = 0; n < N; ++n) s += dy[(size_t)n * C + j];
    db[j] = s;
}

/* transpose2d: out (C, R) = a^T for a (R, C) row-major, through a 16 x 16 tile of
 * local memory (padded by one column against bank conflicts) so that both the read
 * of a and the write of out are row-wise. Local size must be (16, 16). */
#define TT_TILE 16
__kernel void transpose2d(__global const real *a, __global real *out,
                          const uint R, const uint C)
{
    __local real tile[TT_TILE][TT_TILE + 1];
    const uint lx = get_local_id(0), ly = get_local_id(1);
    const uint c = get_group_id(0) * TT_TILE + lx, r = get_group_id(1) * TT_TILE + ly;
    if (r < R && c < C) tile[ly][lx] = a[(size_t)r * C + c];
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint oc = get_group_id(1) * TT_TILE + lx, orow = get_group_id(0) * TT_TILE + ly;
    if (orow < C && oc < R) out[(size_t)orow * R + oc] = tile[lx][ly];
}
