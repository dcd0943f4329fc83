/* Dense family and GEMM. `real` is float or double (-D real=...).
 *
 * GEMM: C (M, N) = alpha * op(A) op(B) + beta * C, all matrices row-major with a
 * leading dimension (row stride) per operand; op(X) is X or X^T. It is the one
 * primitive behind linear_forward (x W^T), linear_backward (dy W and dy^T x) and the
 * neon facade's dot products (refnn.backends.reference gemm is the oracle).
 *
 * Why register blocking: PoCL (the CPU device) runs the work-items of a group one
 * after another and does not vectorise across them, so each work-item computes a
 * TM x TN block of C from vector loads (realv: float8 or double4) and keeps it in
 * registers; a plain one-output-per-work-item kernel is ~6x slower there. On a GPU
 * the same kernels are valid, if not tuned.
 *
 * Two loop shapes cover the four transpose cases without copying anything:
 *   outer product  (gemm_nn, gemm_tn, gemm_tt): for each k, a column of op(A)
 *                  (TM scalars) times a row of op(B) (one realv) -- needs op(B)'s
 *                  rows contiguous, true for B stored (K, N);
 *   dot product    (gemm_nt): op(B) = B^T with B stored (N, K) has contiguous
 *                  *columns*, as do A's rows, so each output is a dot product of two
 *                  contiguous K-vectors, taken VW at a time.
 * gemm_tt computes C^T = B A (both stored row-major, no transposes) and writes
 * its block transposed.
 * Blocks that cross the edge of C (M or N not a multiple of the tile) take a scalar
 * path with bounds checks; full blocks take the vector path.
 */

#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* Vector width VW: 8 floats or 4 doubles = one 256-bit AVX register. (double8 would
 * also compile, but PoCL then reloads the program from its kernel cache with no
 * kernels in it.) realv is the vector type, VLOAD/VSTORE its load and store. */
#ifdef REFNN_DOUBLE
#define VW 4
#else
#define VW 8
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
typedef CAT(real, VW) realv;
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)

/* Tile sizes (the host wrapper, dense.py, mirrors them in _tiles()). */
#ifndef TM
#define TM 8        /* rows of C per work-item in the outer-product kernels */
#endif
#ifndef NV
#define NV 2        /* realv vectors per row of the block: 2 = one 64-byte cache line */
#endif
#define TN (NV * VW) /* columns of C per work-item */

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

/* Scalar path for one bm x bn block that crosses the edge of C: the textbook triple loop
 * sum_k op(A)[i][k] op(B)[k][j], restricted to i < M, j < N. */
inline void gemm_edge(const uint M, const uint N, const uint K,
                      const real alpha, __global const real *A, const uint lda, const int ta,
                      __global const real *B, const uint ldb, const int tb,
                      const real beta, __global real *C, const uint ldc,
                      const uint i0, const uint j0, const uint bm, const uint bn)
{
    for (uint i = i0; i < min(i0 + bm, M); ++i)
        for (uint j = j0; j < min(j0 + bn, N); ++j) {
            real acc = 0;
            for (uint k = 0; k < K; ++k)
                acc += AT(A, lda, ta, i, k) * AT(B, ldb, tb, k, j);
            store_c(C, ldc, i, j, acc, alpha, beta);
        }
}

/* Outer-product block: acc[r] (a realv over columns j0..j0+VW-1) += op(A)[i0+r][k] *
 * B[k][j0..j0+VW-1], B stored (K, N). `ta` says whether A is stored transposed; a
 * constant at each call site, so the compiler folds the branch. */
inline void gemm_outer_block(const uint K, const real alpha,
                             __global const real *A, const uint lda, const int ta,
                             __global const real *B, const uint ldb,
                             const real beta, __global real *C, const uint ldc,
                             const int tc, const uint i0, const uint j0)
{
    realv acc[TM][NV];
    #pragma unroll
    for (int r = 0; r < TM; ++r)
        #pragma unroll
        for (int v = 0; v < NV; ++v) acc[r][v] = (realv)(0);
    /* walk op(A)'s column k and B's row k by pointer: step along k, stride across r */
    __global const real *pa = A + (ta ? i0 : (size_t)i0 * lda);
    __global const real *pb = B + j0;
    const size_t a_step = ta ? lda : 1, a_stride = ta ? 1 : lda;
    for (uint k = 0; k < K; ++k, pa += a_step, pb += ldb) {
        realv b[NV];
        #pragma unroll
        for (int v = 0; v < NV; ++v) b[v] = VLOAD(v, pb);
        #pragma unroll
        for (int r = 0; r < TM; ++r) {
            const realv a = (realv)(pa[r * a_stride]);
            #pragma unroll
            for (int v = 0; v < NV; ++v) acc[r][v] = fma(a, b[v], acc[r][v]);
        }
    }
    #pragma unroll
    for (int r = 0; r < TM; ++r) {
        real v[TN];
        for (int w = 0; w < NV; ++w) VSTORE(acc[r][w], w, v);
        for (int c = 0; c < TN; ++c) {
            if (tc) store_c(C, ldc, j0 + c, i0 + r, v[c], alpha, beta);
            else    store_c(C, ldc, i0 + r, j0 + c, v[c], alpha, beta);
        }
    }
}

/* gemm_nn: C = alpha A B + beta C; A stored (M, K), B stored (K, N).
 * Work-item (gx, gy) owns rows TM*gy.., columns TN*gx.. of C. */
__kernel void gemm_nn(const uint M, const uint N, const uint K, const real alpha,
                      __global const real *A, const uint offa, const uint lda,
                      __global const real *B, const uint offb, const uint ldb,
                      const real beta, __global real *C, const uint offc, const uint ldc)
{
    A += offa; B += offb; C += offc;
    const uint j0 = get_global_id(0) * TN, i0 = get_global_id(1) * TM;
    if (i0 >= M || j0 >= N) return;
    if (i0 + TM > M || j0 + TN > N)
        gemm_edge(M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, i0, j0, TM, TN);
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
        gemm_edge(M, N, K, alpha, A, lda, 1, B, ldb, 0, beta, C, ldc, i0, j0, TM, TN);
    else
        gemm_outer_block(K, alpha, A, lda, 1, B, ldb, beta, C, ldc, 0, i0, j0);
}

/* gemm_tt: C = alpha A^T B^T + beta C; A stored (K, M), B stored (N, K).
 * Computed as C^T (N, M) = B A, an outer product over B's columns and A's rows, with
 * the block stored transposed. Work-item (gx, gy) owns C rows TN*gx.., columns TM*gy.. */
__kernel void gemm_tt(const uint M, const uint N, const uint K, const real alpha,
                      __global const real *A, const uint offa, const uint lda,
                      __global const real *B, const uint offb, const uint ldb,
                      const real beta, __global real *C, const uint offc, const uint ldc)
{
    A += offa; B += offb; C += offc;
    const uint i0 = get_global_id(0) * TN, j0 = get_global_id(1) * TM;
    if (i0 >= M || j0 >= N) return;
    if (i0 + TN > M || j0 + TM > N)
        gemm_edge(M, N, K, alpha, A, lda, 1, B, ldb, 1, beta, C, ldc, i0, j0, TN, TM);
    else    /* rows of C^T are j, "A" of the product is B (no transpose), "B" is A */
        gemm_outer_block(K, alpha, B, ldb, 0, A, lda, beta, C, ldc, 1, j0, i0);
}

/* Dot-product block for gemm_nt: acc[r][c] (a realv of partial sums over k) +=
 * A[i0+r][k..k+VW-1] * B[j0+c][k..k+VW-1]; summed across the lanes at the end.
 * A 4 x 4 block of outputs: 16 realv accumulators, the 16 AVX2 registers. */
#ifndef TM_NT
#define TM_NT 4
#endif
#ifndef TN_NT
#define TN_NT 4
#endif

/* The sum of the VW lanes of a realv. */
inline real hsum(const realv v)
{
    real l[VW];
    VSTORE(v, 0, l);
    real s = 0;
    for (int i = 0; i < VW; ++i) s += l[i];
    return s;
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
    realv acc[TM_NT][TN_NT];
    #pragma unroll
    for (int r = 0; r < TM_NT; ++r)
        #pragma unroll
        for (int c = 0; c < TN_NT; ++c) acc[r][c] = (realv)(0);
    const uint KV = K - K % VW;
    __global const real *pa = A + (size_t)i0 * lda, *pb = B + (size_t)j0 * ldb;
    for (uint k = 0; k < KV; k += VW) {
        realv a[TM_NT];
        #pragma unroll
        for (int r = 0; r < TM_NT; ++r) a[r] = VLOAD(0, pa + r * lda + k);
        #pragma unroll
        for (int c = 0; c < TN_NT; ++c) {
            const realv b = VLOAD(0, pb + c * ldb + k);
            #pragma unroll
            for (int r = 0; r < TM_NT; ++r) acc[r][c] = fma(a[r], b, acc[r][c]);
        }
    }
    for (int r = 0; r < TM_NT; ++r)
        for (int c = 0; c < TN_NT; ++c) {
            real s = hsum(acc[r][c]);
            for (uint k = KV; k < K; ++k)      /* the K % VW tail */
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
