# cython: language_level=3
"""Recurrent-family kernels: the time loops of rnn, lstm, gru, indrnn and the qrnn
pooling (forward and BPTT).

No validation here: refnn/backends/cpu/recurrent.py has checked ranks, shapes, dtypes
(refnn.ops.recurrent.check_sequence), made everything C-contiguous and allocated every
output. The wrapper also does the matrix products that do not depend on the recurrence
as single GEMMs over all T*N rows (``matmul`` below): the input projection x w^T + b
before the forward loop, and dx, dw, du after the backward loop. What is left here is
the sequential part: per step one recurrent product and the fused gate math.

Products (lstm, gru; float32): an AVX-512 register-blocked kernel where the CPU has
AVX-512F, BLAS for the remainder rows/columns, float64 and other CPUs (see _gemm_strided;
``avx512_gemm(False)`` switches it off). OpenBLAS's DYNAMIC_ARCH runs its AVX2 kernels on
AVX-512 CPUs it does not recognise, this Zen 5 among them, at about half the speed.

Threads: none inside the time loops. The gate loops are cheap once vectorized (~5% of a
step), and an OpenMP region per step between two multi-threaded BLAS calls made the
threads of the two pools wait for each other: on the shared 2-core machine an lstm
forward that takes 10 ms with BLAS threads alone took seconds with OpenMP gate loops
beside them. The per-step products (32 rows in the benchmark) are single-threaded; the
big products outside the loops (``matmul``: projection, dx, dw, du) split their rows
over an OpenMP team, with any BLAS remainder run after the team has finished.

Layouts (C-contiguous): sequences (T, N, G*H) or (T, N, H), states (N, H), u (G*H, H)
(the lstm/gru forward take u^T (H, G*H) so that each step's product is h u^T = h (u^T));
gate blocks in the order of refnn.ops.recurrent (rnn: h; lstm: g, f, i, o; gru: z, r, n).
``reverse`` walks t = T-1 .. 0; the state before the first processed step is h0 (c0).
Recurrent dropout (lstm, indrnn): ``mask`` is (1, N, H) -- one mask for every step -- or
(T, N, H); ``masked`` False means no mask (``mask`` is then a dummy, never read).
"""
from cython.parallel cimport prange
from libc.math cimport erf, exp, expm1, fabs, pow, tanh

from refnn._ext._blas cimport gemm_rowmajor

ctypedef fused floating:
    float
    double

# The float32 activations: glibc's scalar expf/tanhf calls cost more than a step's GEMM,
# so exp is computed inline (x = n ln2 + r with |r| <= ln2 / 2, exp(r) by Cephes'
# degree-6 polynomial, ~1 ulp; 2^n through the exponent bits; x clamped to [-87, 88] so
# the result stays a finite normal float) and tanh(a) = 1 - 2 / (1 + exp(2a)) (absolute
# error ~1e-7; a Taylor series below |a| = 1/16, where that formula cancels). These
# loops are C because vectorizing the clamp needs GCC's no-trapping-math, which is set
# for these functions only (push/pop_options).
cdef extern from *:
    """
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC push_options
    #pragma GCC optimize ("no-trapping-math")
    #endif
    /* The loops below are compiled three times (AVX-512, AVX2 + FMA, baseline SSE2) and
       the dynamic loader picks the best the CPU runs (GCC's target_clones, an ifunc): the
       module itself is built for the baseline x86-64, which vectorizes 4 floats wide. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) \
        && __GNUC__ >= 12
    #define REFNN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", \
                                                      "default")))
    #else
    #define REFNN_CLONES
    #endif
    static inline float refnn_expf(float x) {
        union { float f; int i; } bits;
        float n, r, p;
        x = x < -87.f ? -87.f : x;
        x = x > 88.f ? 88.f : x;
        n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;   /* round(x / ln2) */
        r = x - n * 0.693359375f + n * 2.12194440e-4f;               /* x - n ln2 */
        p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        p = p * r * r + r + 1.f;
        bits.i = ((int)n + 127) << 23;                               /* 2^n */
        return p * bits.f;
    }
    /* dst[k] = tanh(src[k]) (dst may be src). 1 - 2 / (1 + exp(2a)) cancels for small
       |a| (tanh(3e-8) came out 0), so |a| < 1/16 takes the odd Taylor series
       a - a^3/3 + 2a^5/15 - 17a^7/315 (next term < 3e-13): a branch-free select. */
    static inline float refnn_tanh1f(float a) {
        float a2 = a * a;
        float series = a + a * a2 * (-0.333333333f + a2 * (0.133333333f
                                                             - a2 * 0.0539682540f));
        float formula = 1.f - 2.f / (1.f + refnn_expf(2.f * a));
        return a2 < 0.00390625f ? series : formula;
    }
    static inline float refnn_sigmoid1f(float x) { return 1.f / (1.f + refnn_expf(-x)); }
    REFNN_CLONES static void refnn_tanhf(const float *src, float *dst, Py_ssize_t n) {
        for (Py_ssize_t k = 0; k < n; ++k)
            dst[k] = refnn_tanh1f(src[k]);
    }
    /* a[k] = sigmoid(a[k]) = 1 / (1 + exp(-a[k])) */
    REFNN_CLONES static void refnn_sigmoidf(float *a, Py_ssize_t n) {
        for (Py_ssize_t k = 0; k < n; ++k)
            a[k] = refnn_sigmoid1f(a[k]);
    }
    #ifdef _MSC_VER
    #define REFNN_RESTRICT __restrict
    #else
    #define REFNN_RESTRICT restrict
    #endif
    /* One row of the lstm cell (float32 form of _lstm_row): g, f, i, o pre-activations
       activated in place; c = f c_prev + i g; h = o tanh(c). One restrict pointer per
       gate block: GCC vectorizes this loop only when it knows the blocks are disjoint. */
    static inline void refnn_lstm_rowf(
            float *REFNN_RESTRICT ag, float *REFNN_RESTRICT af, float *REFNN_RESTRICT ai,
            float *REFNN_RESTRICT ao, const float *REFNN_RESTRICT cp,
            float *REFNN_RESTRICT h, float *REFNN_RESTRICT c, Py_ssize_t H) {
        for (Py_ssize_t j = 0; j < H; ++j) {
            float g = refnn_tanh1f(ag[j]), f = refnn_sigmoid1f(af[j]);
            float i = refnn_sigmoid1f(ai[j]), o = refnn_sigmoid1f(ao[j]);
            float cc = f * cp[j] + i * g;
            ag[j] = g; af[j] = f; ai[j] = i; ao[j] = o;
            c[j] = cc;
            h[j] = o * refnn_tanh1f(cc);
        }
    }
    /* The lstm cell of one step, all N rows: a (N, 4H) = [g, f, i, o] blocks. */
    REFNN_CLONES static void refnn_lstm_stepf(float *a, const float *cp, float *h, float *c,
                                              Py_ssize_t N, Py_ssize_t H) {
        for (Py_ssize_t n = 0; n < N; ++n) {
            float *ar = a + n * 4 * H;
            refnn_lstm_rowf(ar, ar + H, ar + 2 * H, ar + 3 * H, cp + n * H, h + n * H,
                            c + n * H, H);
        }
    }
    /* One row of the lstm cell gradient (float32 form of _lstm_backward_row): from the
       activated gates g, f, i, o, the cell c, the previous cell cp, the upstream dhs, dcs
       and the carried dh, dc: the pre-activation gradients dg, df, di, do; dc becomes
       the carry dc_t f. */
    static inline void refnn_lstm_backward_rowf(
            const float *REFNN_RESTRICT g_, const float *REFNN_RESTRICT f_,
            const float *REFNN_RESTRICT i_, const float *REFNN_RESTRICT o_,
            const float *REFNN_RESTRICT c, const float *REFNN_RESTRICT cp,
            const float *REFNN_RESTRICT dhs, const float *REFNN_RESTRICT dcs,
            const float *REFNN_RESTRICT dh, float *REFNN_RESTRICT dc,
            float *REFNN_RESTRICT dg, float *REFNN_RESTRICT df, float *REFNN_RESTRICT di,
            float *REFNN_RESTRICT do_, Py_ssize_t H) {
        for (Py_ssize_t j = 0; j < H; ++j) {
            float g = g_[j], f = f_[j], i = i_[j], o = o_[j];
            float tc = refnn_tanh1f(c[j]);
            float dhv = dhs[j] + dh[j];
            float dcv = dcs[j] + dc[j] + dhv * o * (1.f - tc * tc);
            dg[j] = dcv * i * (1.f - g * g);
            df[j] = dcv * cp[j] * f * (1.f - f);
            di[j] = dcv * g * i * (1.f - i);
            do_[j] = dhv * tc * o * (1.f - o);
            dc[j] = dcv * f;
        }
    }
    /* The lstm cell gradient of one step, all N rows: a, d (N, 4H); the rest (N, H). */
    REFNN_CLONES static void refnn_lstm_backward_stepf(
            const float *dhs, const float *dcs, const float *a, const float *c,
            const float *cp, const float *dh, float *dc, float *d, Py_ssize_t N,
            Py_ssize_t H) {
        for (Py_ssize_t n = 0; n < N; ++n) {
            const float *ar = a + n * 4 * H;
            float *dr = d + n * 4 * H;
            Py_ssize_t r = n * H;
            refnn_lstm_backward_rowf(ar, ar + H, ar + 2 * H, ar + 3 * H, c + r, cp + r,
                                     dhs + r, dcs + r, dh + r, dc + r, dr, dr + H,
                                     dr + 2 * H, dr + 3 * H, H);
        }
    }
    /* gru, first half of a step, all N rows (float32 form of _gru_zr_row): z, r =
       sigmoid in place in a[:, :2H] (a is (N, 3H)); q = r h_prev. */
    REFNN_CLONES static void refnn_gru_zr_stepf(float *a, const float *hp, float *q,
                                                Py_ssize_t N, Py_ssize_t H) {
        for (Py_ssize_t n = 0; n < N; ++n) {
            float *ar = a + n * 3 * H;
            for (Py_ssize_t j = 0; j < H; ++j) {
                float r = refnn_sigmoid1f(ar[H + j]);
                ar[j] = refnn_sigmoid1f(ar[j]);
                ar[H + j] = r;
                q[n * H + j] = r * hp[n * H + j];
            }
        }
    }
    /* gru, second half (float32 form of _gru_n_row): n = tanh in place in a[:, 2H:];
       h = (1 - z) n + z h_prev. */
    REFNN_CLONES static void refnn_gru_n_stepf(float *a, const float *hp, float *h,
                                               Py_ssize_t N, Py_ssize_t H) {
        for (Py_ssize_t n = 0; n < N; ++n) {
            float *ar = a + n * 3 * H;
            for (Py_ssize_t j = 0; j < H; ++j) {
                float nn = refnn_tanh1f(ar[2 * H + j]), z = ar[j];
                ar[2 * H + j] = nn;
                h[n * H + j] = (1.f - z) * nn + z * hp[n * H + j];
            }
        }
    }
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC pop_options
    #endif
    """
    void refnn_tanhf(const float *src, float *dst, Py_ssize_t n) noexcept nogil
    void refnn_sigmoidf(float *a, Py_ssize_t n) noexcept nogil
    void refnn_lstm_stepf(float *a, const float *cp, float *h, float *c, Py_ssize_t N,
                          Py_ssize_t H) noexcept nogil
    void refnn_lstm_backward_stepf(const float *dhs, const float *dcs, const float *a,
                                   const float *c, const float *cp, const float *dh,
                                   float *dc, float *d, Py_ssize_t N,
                                   Py_ssize_t H) noexcept nogil
    void refnn_gru_zr_stepf(float *a, const float *hp, float *q, Py_ssize_t N,
                            Py_ssize_t H) noexcept nogil
    void refnn_gru_n_stepf(float *a, const float *hp, float *h, Py_ssize_t N,
                           Py_ssize_t H) noexcept nogil


# The per-step recurrent products are small (batch x hidden x gates*hidden, 32 x 256 x 1024
# in the benchmark) and run 2 * T times per forward+backward; OpenBLAS's DYNAMIC_ARCH
# picks its AVX2 (Haswell) kernels on AVX-512 CPUs it does not know (this Zen 5 among
# them) and reaches ~85 GFLOP/s on them. This AVX-512 register-blocked kernel does the
# bulk: every 4-row x 64-column block of C = A B (+ C) keeps its 16 vector accumulators
# in registers over the whole K loop (B's 64-column panel is reused from cache by all row
# blocks). The remainder rows/columns and CPUs without AVX-512 go to BLAS (_gemm_nn).
cdef extern from *:
    """
    #if defined(__GNUC__) && defined(__x86_64__)
    #include <immintrin.h>
    /* One block of R rows (R = 4 or 6, a constant after inlining) x 64 columns of
       C (+)= A B over K: c (row stride ldc) = (acc ? c : 0) + sum_k a[r, k] b[k, :64],
       a[r, k] at a[r * rs + k * ks], b row stride ldb. The R x 4 accumulator vectors stay
       in registers over the whole k loop; per k: 4 vector loads of b, R broadcasts of a,
       4R FMAs. */
    __attribute__((target("avx512f"), always_inline))
    static inline void refnn_block_avx512(const int R, Py_ssize_t K, const float *a,
                                          Py_ssize_t rs, Py_ssize_t ks, const float *b,
                                          Py_ssize_t ldb, float *c, Py_ssize_t ldc,
                                          int acc) {
        __m512 s[6][4];
        for (int r = 0; r < R; ++r)
            for (int v = 0; v < 4; ++v)
                s[r][v] = acc ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
        for (Py_ssize_t k = 0; k < K; ++k, b += ldb) {
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
            __m512 b2 = _mm512_loadu_ps(b + 32), b3 = _mm512_loadu_ps(b + 48);
            for (int r = 0; r < R; ++r) {
                __m512 x = _mm512_set1_ps(a[r * rs + k * ks]);
                s[r][0] = _mm512_fmadd_ps(x, b0, s[r][0]);
                s[r][1] = _mm512_fmadd_ps(x, b1, s[r][1]);
                s[r][2] = _mm512_fmadd_ps(x, b2, s[r][2]);
                s[r][3] = _mm512_fmadd_ps(x, b3, s[r][3]);
            }
        }
        for (int r = 0; r < R; ++r)
            for (int v = 0; v < 4; ++v)
                _mm512_storeu_ps(c + r * ldc + 16 * v, s[r][v]);
    }
    /* C[:M, :Nc] = A[:M, :K] B[:K, :Nc] (+ C when beta1), B and C row-major, A[r, k] at
       A[r * lda + k * ak], M % 4 == 0 and Nc % 64 == 0: 6-row blocks over the first
       M - M % 12 rows (24 accumulators: measured 25% faster than 4-row blocks on the
       benchmark's steps), 4-row blocks over the rest. */
    __attribute__((target("avx512f")))
    static void refnn_sgemm_avx512(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K,
                                   const float *A, Py_ssize_t lda, Py_ssize_t ak,
                                   const float *B, Py_ssize_t ldb, float *C, Py_ssize_t ldc,
                                   int beta1) {
        Py_ssize_t M12 = M - M % 12;
        for (Py_ssize_t j = 0; j < Nc; j += 64) {
            Py_ssize_t i = 0;
            for (; i < M12; i += 6)
                refnn_block_avx512(6, K, A + i * lda, lda, ak, B + j, ldb,
                                   C + i * ldc + j, ldc, beta1);
            for (; i < M; i += 4)
                refnn_block_avx512(4, K, A + i * lda, lda, ak, B + j, ldb,
                                   C + i * ldc + j, ldc, beta1);
        }
    }
    /* The same for a transposed A (A[r, k] at A[k * ak + r], the dz^T of dw and du):
       the contraction in chunks of 512 k (B's chunk, 512 x Nc, stays in L2), each R x 512
       panel of A packed k-major into apack (12 KiB) once for all column blocks, so the
       broadcasts read consecutive floats. */
    __attribute__((target("avx512f")))
    static void refnn_sgemm_avx512_at(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K,
                                      const float *A, Py_ssize_t ak, const float *B,
                                      Py_ssize_t ldb, float *C, Py_ssize_t ldc, int beta1) {
        float apack[6 * 512] __attribute__((aligned(64)));
        Py_ssize_t M12 = M - M % 12;
        for (Py_ssize_t k0 = 0; k0 < K; k0 += 512) {
            Py_ssize_t kc = K - k0 < 512 ? K - k0 : 512;
            int acc = beta1 || k0 > 0;
            for (Py_ssize_t i = 0; i < M; ) {
                int R = i < M12 ? 6 : 4;
                for (Py_ssize_t k = 0; k < kc; ++k)
                    for (int r = 0; r < R; ++r)
                        apack[R * k + r] = A[(k0 + k) * ak + i + r];
                for (Py_ssize_t j = 0; j < Nc; j += 64) {
                    if (R == 6)
                        refnn_block_avx512(6, kc, apack, 1, 6, B + k0 * ldb + j, ldb,
                                           C + i * ldc + j, ldc, acc);
                    else
                        refnn_block_avx512(4, kc, apack, 1, 4, B + k0 * ldb + j, ldb,
                                           C + i * ldc + j, ldc, acc);
                }
                i += R;
            }
        }
    }
    static int refnn_have_avx512(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
    }
    #else
    static void refnn_sgemm_avx512(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K,
                                   const float *A, Py_ssize_t lda, Py_ssize_t ak,
                                   const float *B, Py_ssize_t ldb, float *C, Py_ssize_t ldc,
                                   int beta1) {}
    static void refnn_sgemm_avx512_at(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K,
                                      const float *A, Py_ssize_t ak, const float *B,
                                      Py_ssize_t ldb, float *C, Py_ssize_t ldc, int beta1) {}
    static int refnn_have_avx512(void) { return 0; }
    #endif
    """
    void refnn_sgemm_avx512(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K, const float *A,
                            Py_ssize_t lda, Py_ssize_t ak, const float *B, Py_ssize_t ldb,
                            float *C, Py_ssize_t ldc, int beta1) noexcept nogil
    void refnn_sgemm_avx512_at(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K, const float *A,
                               Py_ssize_t ak, const float *B, Py_ssize_t ldb, float *C,
                               Py_ssize_t ldc, int beta1) noexcept nogil
    int refnn_have_avx512()


cdef bint _avx512_gemm = refnn_have_avx512() != 0


def avx512_gemm(enabled=None):
    """Whether the float32 per-step products use the AVX-512 kernel (True where the CPU
    has AVX-512F). ``enabled`` False forces BLAS (True is honoured only on such CPUs);
    returns the setting in force."""
    global _avx512_gemm
    if enabled is not None:
        _avx512_gemm = bool(enabled) and refnn_have_avx512() != 0
    return _avx512_gemm


cdef inline void _avx512_blocks(Py_ssize_t M4, Py_ssize_t N64, Py_ssize_t K,
                                const float *A, Py_ssize_t lda, Py_ssize_t ak,
                                const float *B, Py_ssize_t ldb, bint beta1, float *C,
                                Py_ssize_t ldc) noexcept nogil:
    """The M4 x N64 blocks of C (M4 % 4 == 0, N64 % 64 == 0) by the AVX-512 kernels:
    refnn_sgemm_avx512_at for a transposed A (lda == 1, it packs A), else
    refnn_sgemm_avx512."""
    if lda == 1 and ak != 1:
        refnn_sgemm_avx512_at(M4, N64, K, A, ak, B, ldb, C, ldc, beta1)
    else:
        refnn_sgemm_avx512(M4, N64, K, A, lda, ak, B, ldb, C, ldc, beta1)


cdef void _blas_rest(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K, Py_ssize_t M4,
                     Py_ssize_t N64, const floating *A, Py_ssize_t lda, Py_ssize_t ak,
                     const floating *B, Py_ssize_t ldb, bint beta1, floating *C,
                     Py_ssize_t ldc) noexcept nogil:
    """What _avx512_blocks left of C = A B (+ C) by BLAS: the columns N64: of all rows,
    then the rows M4: of the columns :N64 (A as in _gemm_strided)."""
    cdef floating beta = 1 if beta1 else 0
    cdef bint ta = ak != 1
    cdef int la = <int>(ak if ta else lda)
    if N64 < Nc:
        gemm_rowmajor(ta, False, <int>M, <int>(Nc - N64), <int>K, <floating>1, A, la,
                      B + N64, <int>ldb, beta, C + N64, <int>ldc)
    if M4 < M and N64 > 0:
        gemm_rowmajor(ta, False, <int>(M - M4), <int>N64, <int>K, <floating>1,
                      A + M4 * lda, la, B, <int>ldb, beta, C + M4 * ldc, <int>ldc)


cdef void _gemm_strided(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K, const floating *A,
                       Py_ssize_t lda, Py_ssize_t ak, const floating *B, Py_ssize_t ldb,
                       bint beta1, floating *C, Py_ssize_t ldc) noexcept nogil:
    """C (M, Nc) = A (M, K) B (K, Nc) (+ C when beta1); B and C row-major with row
    strides ldb, ldc; A[r, k] at A[r * lda + k * ak] with ak == 1 (row-major) or
    lda == 1 (A^T stored row-major, row stride ak). float32 on an AVX-512 CPU: the
    4-row x 64-column blocks by the AVX-512 kernels, the remainder columns (all rows) and
    rows by BLAS; otherwise BLAS alone."""
    cdef Py_ssize_t M4 = M - M % 4, N64 = Nc - Nc % 64
    if floating is float:
        if _avx512_gemm and M4 > 0 and N64 > 0:
            _avx512_blocks(M4, N64, K, A, lda, ak, B, ldb, beta1, C, ldc)
            _blas_rest(M, Nc, K, M4, N64, A, lda, ak, B, ldb, beta1, C, ldc)
            return
    _blas_rest(M, Nc, K, 0, 0, A, lda, ak, B, ldb, beta1, C, ldc)


cdef inline void _gemm_nn(Py_ssize_t M, Py_ssize_t Nc, Py_ssize_t K, const floating *A,
                          Py_ssize_t lda, const floating *B, Py_ssize_t ldb, bint beta1,
                          floating *C, Py_ssize_t ldc) noexcept nogil:
    """C (M, Nc) = A (M, K) B (K, Nc) (+ C when beta1), all row-major with row strides
    lda, ldb, ldc (the per-step products)."""
    _gemm_strided(M, Nc, K, A, lda, 1, B, ldb, beta1, C, ldc)


def matmul(floating[:, :] A, floating[:, ::1] B, floating[:, ::1] C, bint accumulate,
           int threads=1):
    """C = A @ B (+ C when ``accumulate``) through _gemm_strided: the big products of the
    cpu wrapper (input projection, dx, dw, du). A C-contiguous or the transpose (.T) of a
    C-contiguous matrix; B, C C-contiguous; shapes (M, K), (K, Nc), (M, Nc), all >= 1.

    ``threads`` > 1 (float32, AVX-512 kernel, at least 128 rows): chunks of 64 rows of
    the kernel's blocks go to an OpenMP team (dynamic schedule: a thread that the shared
    machine holds up does fewer chunks); the BLAS remainder runs after the team, never
    beside it (see the module docstring on pools waiting for each other)."""
    cdef Py_ssize_t M = A.shape[0], K = A.shape[1], Nc = B.shape[1]
    cdef Py_ssize_t M4 = M - M % 4, N64 = Nc - Nc % 64, chunk, r0, m
    cdef Py_ssize_t rs = A.strides[0] // sizeof(floating)
    cdef Py_ssize_t ks = A.strides[1] // sizeof(floating)
    if B.shape[0] != K or C.shape[0] != M or C.shape[1] != Nc:
        raise ValueError(f"recurrent matmul: shapes {(M, K)} @ {(B.shape[0], Nc)} -> "
                         f"{(C.shape[0], C.shape[1])} do not match")
    if not ((ks == 1 and rs >= K) or (rs == 1 and ks >= M)):
        raise ValueError("recurrent matmul: A must be C-contiguous or a transposed "
                         "C-contiguous matrix")
    if M == 1 and K > 1:                   # a single row: either layout is row-major
        ks, rs = 1, K
    if floating is float:
        if threads > 1 and _avx512_gemm and M4 >= 128 and N64 > 0:
            with nogil:
                for chunk in prange((M4 + 63) // 64, schedule="dynamic",
                                    num_threads=threads):
                    r0 = chunk * 64
                    m = min(64, M4 - r0)
                    _avx512_blocks(m, N64, K, &A[0, 0] + r0 * rs, rs, ks, &B[0, 0], Nc,
                                   accumulate, &C[0, 0] + r0 * Nc, Nc)
                _blas_rest(M, Nc, K, M4, N64, &A[0, 0], rs, ks, &B[0, 0], Nc, accumulate,
                           &C[0, 0], Nc)
            return
    with nogil:
        _gemm_strided(M, Nc, K, &A[0, 0], rs, ks, &B[0, 0], Nc, accumulate, &C[0, 0], Nc)


cdef inline void _tanh_to(const floating *src, floating *dst, Py_ssize_t n) noexcept nogil:
    """dst = tanh(src) elementwise (dst may be src)."""
    cdef Py_ssize_t k
    if floating is float:
        refnn_tanhf(src, dst, n)
    else:
        for k in range(n):
            dst[k] = tanh(src[k])


cdef inline void _tanh_inplace(floating *a, Py_ssize_t n) noexcept nogil:
    _tanh_to(a, a, n)


cdef inline void _sigmoid_inplace(floating *a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    if floating is float:
        refnn_sigmoidf(a, n)
    else:
        for k in range(n):
            a[k] = 1 / (1 + exp(-a[k]))


cdef inline Py_ssize_t _step(Py_ssize_t k, Py_ssize_t T, bint reverse) noexcept nogil:
    """The time index of the k-th processed step."""
    return T - 1 - k if reverse else k


cdef inline floating *_mask_of(floating[:, :, ::1] mask, bint masked,
                               Py_ssize_t t) noexcept nogil:
    """The (N, H) dropout mask of input step t (its only mask when mask is (1, N, H)),
    or NULL without a mask."""
    if not masked:
        return NULL
    return &mask[t if mask.shape[0] > 1 else 0, 0, 0]


cdef inline void _mul_to(const floating *a, const floating *m, floating *out,
                         Py_ssize_t n) noexcept nogil:
    """out = a * m elementwise (out may be a)."""
    cdef Py_ssize_t k
    for k in range(n):
        out[k] = a[k] * m[k]


# The row functions below do one batch row of one step; each is a few plain loops over
# contiguous memory (no calls), which the compiler vectorizes.

# ----------------------------------------------------------------------------- rnn
cdef inline void _rnn_dz_row(const floating *dhs, const floating *hs, const floating *dh,
                             floating *dz, Py_ssize_t H, bint relu) noexcept nogil:
    """dz = (dhs + dh) * act'(h): 1 - h^2 for tanh, [h > 0] for relu."""
    cdef Py_ssize_t j
    if relu:
        for j in range(H):
            dz[j] = dhs[j] + dh[j] if hs[j] > 0 else 0
    else:
        for j in range(H):
            dz[j] = (dhs[j] + dh[j]) * (1 - hs[j] * hs[j])


def rnn_forward(floating[:, :, ::1] hs, floating[:, ::1] u, floating[:, ::1] h0,
                bint relu, bint reverse):
    """hs holds x_t w^T + b on entry; per step (processing order, h = previous state):
    hs[t] = act(hs[t] + h u^T) (GEMM with beta = 1, then the activation in place)."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n, j
    cdef floating *cur
    cdef const floating *prev = &h0[0, 0]
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            cur = &hs[t, 0, 0]
            gemm_rowmajor(False, True, <int>N, <int>H, <int>H, <floating>1, prev, <int>H,
                          &u[0, 0], <int>H, <floating>1, cur, <int>H)
            if relu:
                for j in range(N * H):
                    cur[j] = cur[j] if cur[j] > 0 else 0
            else:
                for n in range(N):
                    _tanh_inplace(cur + n * H, H)
            prev = cur


def rnn_backward(floating[:, :, ::1] dhs, floating[:, :, ::1] hs, floating[:, ::1] u,
                 floating[:, :, ::1] dz, floating[:, ::1] dh, bint relu, bint reverse):
    """BPTT loop: dz[t] = (dhs[t] + dh) * act'(hs[t]), then dh = dz[t] u (GEMM).
    dh must be zero on entry; on return it is dh0."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            for n in range(N):
                _rnn_dz_row(&dhs[t, n, 0], &hs[t, n, 0], &dh[n, 0], &dz[t, n, 0], H, relu)
            gemm_rowmajor(False, False, <int>N, <int>H, <int>H, <floating>1, &dz[t, 0, 0],
                          <int>H, &u[0, 0], <int>H, <floating>0, &dh[0, 0], <int>H)


# ---------------------------------------------------------------------------- lstm
cdef inline void _lstm_row(floating *a, const floating *cp, floating *hc, floating *cc,
                           Py_ssize_t H) noexcept nogil:
    """One row of the cell: a = [g, f, i, o] pre-activations (activated in place),
    c = f * c_prev + i * g, h = o * tanh(c)."""
    cdef Py_ssize_t j
    _tanh_inplace(a, H)
    _sigmoid_inplace(a + H, 3 * H)
    for j in range(H):
        cc[j] = a[H + j] * cp[j] + a[2 * H + j] * a[j]
    _tanh_to(cc, hc, H)
    for j in range(H):
        hc[j] = a[3 * H + j] * hc[j]


cdef inline void _lstm_backward_row(const floating *dhs, const floating *dcs,
                                    const floating *a, const floating *c,
                                    const floating *cp, const floating *dh, floating *dc,
                                    floating *d, Py_ssize_t H) noexcept nogil:
    """One row of the cell's gradient (refnn.ops.recurrent.lstm_backward); the o-block
    of d holds tanh(c) until the second loop overwrites it."""
    cdef Py_ssize_t j
    cdef floating g, f, i, o, tc, dhv, dcv
    _tanh_to(c, d + 3 * H, H)
    for j in range(H):
        g = a[j]
        f = a[H + j]
        i = a[2 * H + j]
        o = a[3 * H + j]
        tc = d[3 * H + j]
        dhv = dhs[j] + dh[j]
        dcv = dcs[j] + dc[j] + dhv * o * (1 - tc * tc)
        d[j] = dcv * i * (1 - g * g)
        d[H + j] = dcv * cp[j] * f * (1 - f)
        d[2 * H + j] = dcv * g * i * (1 - i)
        d[3 * H + j] = dhv * tc * o * (1 - o)
        dc[j] = dcv * f


def lstm_forward(floating[:, :, ::1] gates, floating[:, ::1] ut, floating[:, ::1] h0,
                 floating[:, ::1] c0, floating[:, :, ::1] hs, floating[:, :, ::1] cs,
                 bint reverse, floating[:, :, ::1] mask, floating[:, :, ::1] hpm,
                 bint masked):
    """gates holds x_t w^T + b on entry (T, N, 4H); per step: gates[t] += h u^T (GEMM),
    then the fused cell: g = tanh, f, i, o = sigmoid (stored back into gates),
    c = f * c_prev + i * g, h = o * tanh(c). With a mask, hpm[t] = m_t * h (the masked
    previous state, kept for du) replaces h in the GEMM; hpm (T, N, H) is then written."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef floating *a
    cdef floating *hc
    cdef floating *cc
    cdef const floating *hp = &h0[0, 0]
    cdef const floating *cp = &c0[0, 0]
    cdef const floating *hr
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            a = &gates[t, 0, 0]
            hc = &hs[t, 0, 0]
            cc = &cs[t, 0, 0]
            hr = hp
            if masked:
                _mul_to(hp, _mask_of(mask, masked, t), &hpm[t, 0, 0], N * H)
                hr = &hpm[t, 0, 0]
            _gemm_nn(N, 4 * H, H, hr, H, &ut[0, 0], 4 * H, True, a, 4 * H)
            if floating is float:
                refnn_lstm_stepf(a, cp, hc, cc, N, H)
            else:
                for n in range(N):
                    _lstm_row(a + n * 4 * H, cp + n * H, hc + n * H, cc + n * H, H)
            hp = hc
            cp = cc


def lstm_backward(floating[:, :, ::1] dhs, floating[:, :, ::1] dcs,
                  floating[:, :, ::1] gates, floating[:, :, ::1] cs, floating[:, ::1] c0,
                  floating[:, ::1] u, floating[:, :, ::1] dz, floating[:, ::1] dh,
                  floating[:, ::1] dc, bint reverse, floating[:, :, ::1] mask,
                  bint masked):
    """BPTT loop (refnn.ops.recurrent.lstm_backward): per step the fused cell gradient
    writes dz[t] = [dg, df, di, do] (pre-activation) and dc = dc * f, then dh = dz[t] u
    (GEMM), times m_t with a mask. dh and dc must be zero on entry; on return they are
    dh0 and dc0."""
    cdef Py_ssize_t T = cs.shape[0], N = cs.shape[1], H = cs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef const floating *cp
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            cp = &c0[0, 0] if k == 0 else &cs[_step(k - 1, T, reverse), 0, 0]
            if floating is float:
                refnn_lstm_backward_stepf(&dhs[t, 0, 0], &dcs[t, 0, 0], &gates[t, 0, 0],
                                          &cs[t, 0, 0], cp, &dh[0, 0], &dc[0, 0],
                                          &dz[t, 0, 0], N, H)
            else:
                for n in range(N):
                    _lstm_backward_row(&dhs[t, n, 0], &dcs[t, n, 0], &gates[t, n, 0],
                                       &cs[t, n, 0], cp + n * H, &dh[n, 0], &dc[n, 0],
                                       &dz[t, n, 0], H)
            _gemm_nn(N, H, 4 * H, &dz[t, 0, 0], 4 * H, &u[0, 0], H, False, &dh[0, 0], H)
            if masked:
                _mul_to(&dh[0, 0], _mask_of(mask, masked, t), &dh[0, 0], N * H)


# The lstm with other activations (refnn.ops.recurrent.CELL_ACTIVATIONS): a per-element
# switch on the activation code (its parameters p, q), computed in double. gates then
# keep the pre-activations (the backward recomputes the activations from them) -- the
# sigmoid/tanh path above is untouched and runs whenever the defaults are asked for.
# Codes: refnn.backends.cpu.recurrent.ACT_CODES.
cdef enum:
    CA_IDENTITY = 0
    CA_RELU = 1          # p = threshold (0: none)
    CA_LEAKY_RELU = 2    # p = alpha
    CA_ELU = 3           # p = alpha
    CA_ABS = 4
    CA_SIGMOID = 5
    CA_TANH = 6
    CA_HARD_TANH = 7
    CA_HARD_SIGMOID = 8  # p = slope, q = bias
    CA_POWER = 9         # p = exponent
    CA_HSWISH = 10
    CA_GELU_SIGMOID = 11
    CA_GELU_ERF = 12


cdef inline double _cact(int k, double x, double p, double q) noexcept nogil:
    """act(x) of refnn.ops.activation's <name>_forward."""
    cdef double y
    if k == CA_RELU:
        y = x if x > 0 else 0
        return y if p <= 0 or y < p else p
    if k == CA_LEAKY_RELU:
        return x if x > 0 else p * x
    if k == CA_ELU:
        return x if x > 0 else p * expm1(x)
    if k == CA_ABS:
        return fabs(x)
    if k == CA_SIGMOID:
        return 1 / (1 + exp(-x))
    if k == CA_TANH:
        return tanh(x)
    if k == CA_HARD_TANH:
        return -1 if x < -1 else (1 if x > 1 else x)
    if k == CA_HARD_SIGMOID:
        y = p * x + q
        return 0 if y < 0 else (1 if y > 1 else y)
    if k == CA_POWER:
        return pow(x, p)
    if k == CA_HSWISH:
        y = x + 3
        return x * (0 if y < 0 else (6 if y > 6 else y)) / 6
    if k == CA_GELU_SIGMOID:
        return x / (1 + exp(-1.702 * x))
    if k == CA_GELU_ERF:
        return 0.5 * x * (1 + erf(x * 0.7071067811865476))
    return x


cdef inline double _cdact(int k, double x, double p, double q) noexcept nogil:
    """act'(x) of refnn.ops.activation's <name>_backward (same conventions at kinks:
    0 at relu's 0, sign(0) = 0 for abs, ...)."""
    cdef double s
    if k == CA_RELU:
        return 1 if x > 0 and (p <= 0 or x < p) else 0
    if k == CA_LEAKY_RELU:
        return 1 if x > 0 else p
    if k == CA_ELU:
        return 1 if x > 0 else p * exp(x)
    if k == CA_ABS:
        return 1 if x > 0 else (-1 if x < 0 else 0)
    if k == CA_SIGMOID:
        s = 1 / (1 + exp(-x))
        return s * (1 - s)
    if k == CA_TANH:
        s = tanh(x)
        return 1 - s * s
    if k == CA_HARD_TANH:
        return 1 if -1 < x < 1 else 0
    if k == CA_HARD_SIGMOID:
        s = p * x + q
        return p if 0 < s < 1 else 0
    if k == CA_POWER:
        return p * pow(x, p - 1)
    if k == CA_HSWISH:
        return 0 if x <= -3 else (1 if x >= 3 else (2 * x + 3) / 6)
    if k == CA_GELU_SIGMOID:
        s = 1 / (1 + exp(-1.702 * x))
        return s + 1.702 * x * s * (1 - s)
    if k == CA_GELU_ERF:
        return (0.5 * (1 + erf(x * 0.7071067811865476))
                + x * exp(-0.5 * x * x) * 0.3989422804014327)
    return 1


cdef inline void _lstm_act_row(const floating *a, const floating *cp, floating *hc,
                               floating *cc, Py_ssize_t H, const int *k,
                               const double *p) noexcept nogil:
    """One row of the cell with activation codes k = (gate, cell), parameters
    p = (gate p, gate q, cell p, cell q); a (pre-activations) is left as it is."""
    cdef Py_ssize_t j
    cdef double g, f, i, o, c
    for j in range(H):
        g = _cact(k[1], a[j], p[2], p[3])
        f = _cact(k[0], a[H + j], p[0], p[1])
        i = _cact(k[0], a[2 * H + j], p[0], p[1])
        o = _cact(k[0], a[3 * H + j], p[0], p[1])
        c = f * cp[j] + i * g
        cc[j] = <floating>c
        hc[j] = <floating>(o * _cact(k[1], <double>cc[j], p[2], p[3]))


cdef inline void _lstm_act_backward_row(const floating *dhs, const floating *dcs,
                                        const floating *a, const floating *c,
                                        const floating *cp, const floating *dh,
                                        floating *dc, floating *d, Py_ssize_t H,
                                        const int *k, const double *p) noexcept nogil:
    """_lstm_backward_row for the activation codes k (a: the pre-activations)."""
    cdef Py_ssize_t j
    cdef double g, f, i, o, ac, dhv, dcv
    for j in range(H):
        g = _cact(k[1], a[j], p[2], p[3])
        f = _cact(k[0], a[H + j], p[0], p[1])
        i = _cact(k[0], a[2 * H + j], p[0], p[1])
        o = _cact(k[0], a[3 * H + j], p[0], p[1])
        ac = _cact(k[1], c[j], p[2], p[3])
        dhv = dhs[j] + dh[j]
        dcv = dcs[j] + dc[j] + dhv * o * _cdact(k[1], c[j], p[2], p[3])
        d[j] = <floating>(dcv * i * _cdact(k[1], a[j], p[2], p[3]))
        d[H + j] = <floating>(dcv * cp[j] * _cdact(k[0], a[H + j], p[0], p[1]))
        d[2 * H + j] = <floating>(dcv * g * _cdact(k[0], a[2 * H + j], p[0], p[1]))
        d[3 * H + j] = <floating>(dhv * ac * _cdact(k[0], a[3 * H + j], p[0], p[1]))
        dc[j] = <floating>(dcv * f)


def lstm_forward_act(floating[:, :, ::1] gates, floating[:, ::1] ut, floating[:, ::1] h0,
                     floating[:, ::1] c0, floating[:, :, ::1] hs, floating[:, :, ::1] cs,
                     bint reverse, floating[:, :, ::1] mask, floating[:, :, ::1] hpm,
                     bint masked, int gate_code, int cell_code, double gp, double gq,
                     double cp_, double cq):
    """lstm_forward with the gate activation ``gate_code`` and the cell activation
    ``cell_code`` (parameters gp, gq / cp_, cq): the same loop; gates keep the
    pre-activations."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef int codes[2]
    cdef double prm[4]
    cdef floating *a
    cdef floating *hc
    cdef floating *cc
    cdef const floating *hp = &h0[0, 0]
    cdef const floating *cp = &c0[0, 0]
    cdef const floating *hr
    codes[0] = gate_code
    codes[1] = cell_code
    prm[0] = gp
    prm[1] = gq
    prm[2] = cp_
    prm[3] = cq
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            a = &gates[t, 0, 0]
            hc = &hs[t, 0, 0]
            cc = &cs[t, 0, 0]
            hr = hp
            if masked:
                _mul_to(hp, _mask_of(mask, masked, t), &hpm[t, 0, 0], N * H)
                hr = &hpm[t, 0, 0]
            _gemm_nn(N, 4 * H, H, hr, H, &ut[0, 0], 4 * H, True, a, 4 * H)
            for n in range(N):
                _lstm_act_row(a + n * 4 * H, cp + n * H, hc + n * H, cc + n * H, H,
                              codes, prm)
            hp = hc
            cp = cc


def lstm_backward_act(floating[:, :, ::1] dhs, floating[:, :, ::1] dcs,
                      floating[:, :, ::1] gates, floating[:, :, ::1] cs,
                      floating[:, ::1] c0, floating[:, ::1] u, floating[:, :, ::1] dz,
                      floating[:, ::1] dh, floating[:, ::1] dc, bint reverse,
                      floating[:, :, ::1] mask, bint masked, int gate_code, int cell_code,
                      double gp, double gq, double cp_, double cq):
    """lstm_backward for lstm_forward_act (gates: the pre-activations)."""
    cdef Py_ssize_t T = cs.shape[0], N = cs.shape[1], H = cs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef int codes[2]
    cdef double prm[4]
    cdef const floating *cp
    codes[0] = gate_code
    codes[1] = cell_code
    prm[0] = gp
    prm[1] = gq
    prm[2] = cp_
    prm[3] = cq
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            cp = &c0[0, 0] if k == 0 else &cs[_step(k - 1, T, reverse), 0, 0]
            for n in range(N):
                _lstm_act_backward_row(&dhs[t, n, 0], &dcs[t, n, 0], &gates[t, n, 0],
                                       &cs[t, n, 0], cp + n * H, &dh[n, 0], &dc[n, 0],
                                       &dz[t, n, 0], H, codes, prm)
            _gemm_nn(N, H, 4 * H, &dz[t, 0, 0], 4 * H, &u[0, 0], H, False, &dh[0, 0], H)
            if masked:
                _mul_to(&dh[0, 0], _mask_of(mask, masked, t), &dh[0, 0], N * H)


# ----------------------------------------------------------------------------- gru
cdef inline void _gru_zr_row(floating *a, const floating *hp, floating *q,
                             Py_ssize_t H) noexcept nogil:
    """z, r = sigmoid (in place in a[:2H]); q = r * h_prev."""
    cdef Py_ssize_t j
    _sigmoid_inplace(a, 2 * H)
    for j in range(H):
        q[j] = a[H + j] * hp[j]


cdef inline void _gru_n_row(floating *a, const floating *hp, floating *hc,
                            Py_ssize_t H) noexcept nogil:
    """n = tanh (in place in a[2H:]); h = (1 - z) n + z h_prev."""
    cdef Py_ssize_t j
    _tanh_inplace(a + 2 * H, H)
    for j in range(H):
        hc[j] = (1 - a[j]) * a[2 * H + j] + a[j] * hp[j]


def gru_forward(floating[:, :, ::1] gates, floating[:, ::1] ut, floating[:, ::1] h0,
                floating[:, :, ::1] hs, floating[:, :, ::1] rh, bint reverse):
    """gates holds x_t w^T + b on entry (T, N, 3H); per step (h = previous state):
    gates[t][:, :2H] += h u_zr^T (GEMM); z, r = sigmoid; rh[t] = r * h;
    gates[t][:, 2H:] += rh[t] u_n^T (GEMM); n = tanh; hs[t] = (1 - z) n + z h.
    z, r, n are stored back into gates (activated)."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef floating *a
    cdef floating *hc
    cdef floating *q
    cdef const floating *hp = &h0[0, 0]
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            a = &gates[t, 0, 0]
            hc = &hs[t, 0, 0]
            q = &rh[t, 0, 0]
            _gemm_nn(N, 2 * H, H, hp, H, &ut[0, 0], 3 * H, True, a, 3 * H)
            if floating is float:
                refnn_gru_zr_stepf(a, hp, q, N, H)
            else:
                for n in range(N):
                    _gru_zr_row(a + n * 3 * H, hp + n * H, q + n * H, H)
            _gemm_nn(N, H, H, q, H, &ut[0, 2 * H], 3 * H, True, a + 2 * H, 3 * H)
            if floating is float:
                refnn_gru_n_stepf(a, hp, hc, N, H)
            else:
                for n in range(N):
                    _gru_n_row(a + n * 3 * H, hp + n * H, hc + n * H, H)
            hp = hc


cdef inline void _gru_backward_zn_row(const floating *dhs, const floating *dh,
                                      const floating *a, const floating *hp,
                                      floating *d, floating *dhcur,
                                      Py_ssize_t H) noexcept nogil:
    """dhcur = dhs + dh; n-block of d = dhcur (1 - z)(1 - n^2); z-block =
    dhcur (h_prev - n) z (1 - z)."""
    cdef Py_ssize_t j
    cdef floating z, nn, dv
    for j in range(H):
        z = a[j]
        nn = a[2 * H + j]
        dv = dhs[j] + dh[j]
        dhcur[j] = dv
        d[2 * H + j] = dv * (1 - z) * (1 - nn * nn)
        d[j] = dv * (hp[j] - nn) * z * (1 - z)


cdef inline void _gru_backward_r_row(const floating *drh, const floating *dhcur,
                                     const floating *a, const floating *hp, floating *d,
                                     floating *dh, Py_ssize_t H) noexcept nogil:
    """r-block of d = drh h_prev r (1 - r); dh = dhcur z + drh r."""
    cdef Py_ssize_t j
    cdef floating rr
    for j in range(H):
        rr = a[H + j]
        d[H + j] = drh[j] * hp[j] * rr * (1 - rr)
        dh[j] = dhcur[j] * a[j] + drh[j] * rr


def gru_backward(floating[:, :, ::1] dhs, floating[:, :, ::1] gates,
                 floating[:, :, ::1] hs, floating[:, ::1] h0, floating[:, ::1] u,
                 floating[:, :, ::1] dz, floating[:, ::1] dh, floating[:, ::1] dhcur,
                 floating[:, ::1] drh, bint reverse):
    """BPTT loop (refnn.ops.recurrent.gru_backward), per step (h = previous state):
    dhcur = dhs[t] + dh; dz[t] n-block = dhcur (1 - z)(1 - n^2), z-block =
    dhcur (h - n) z (1 - z); drh = dn u_n (GEMM); r-block = drh h r (1 - r);
    dh = dhcur z + drh r, then dh += [dz, dr] u_zr (GEMM).
    dh must be zero on entry; on return it is dh0. dhcur and drh are scratch (N, H)."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef const floating *hp
    cdef floating *d
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            d = &dz[t, 0, 0]
            hp = &h0[0, 0] if k == 0 else &hs[_step(k - 1, T, reverse), 0, 0]
            for n in range(N):
                _gru_backward_zn_row(&dhs[t, n, 0], &dh[n, 0], &gates[t, n, 0], hp + n * H,
                                     d + n * 3 * H, &dhcur[n, 0], H)
            _gemm_nn(N, H, H, d + 2 * H, 3 * H, &u[2 * H, 0], H, False, &drh[0, 0], H)
            for n in range(N):
                _gru_backward_r_row(&drh[n, 0], &dhcur[n, 0], &gates[t, n, 0], hp + n * H,
                                    d + n * 3 * H, &dh[n, 0], H)
            _gemm_nn(N, H, 2 * H, d, 3 * H, &u[0, 0], H, True, &dh[0, 0], H)


# gru and rnn with other activations: the per-element switch of the lstm above. gates
# (rnn: hs) keep the activated values as on the default path; pre keeps the
# pre-activations, which the derivatives take.
cdef inline void _gru_zr_act_row(floating *a, floating *pre, const floating *hp,
                                 floating *q, Py_ssize_t H, const int *k,
                                 const double *p) noexcept nogil:
    """z, r = gact (in place in a[:2H], pre-activations into pre[:2H]); q = r * h_prev."""
    cdef Py_ssize_t j
    for j in range(2 * H):
        pre[j] = a[j]
        a[j] = <floating>_cact(k[0], a[j], p[0], p[1])
    for j in range(H):
        q[j] = a[H + j] * hp[j]


cdef inline void _gru_n_act_row(floating *a, floating *pre, const floating *hp,
                                floating *hc, Py_ssize_t H, const int *k,
                                const double *p) noexcept nogil:
    """n = act (in place in a[2H:], its pre-activation into pre[2H:]);
    h = (1 - z) n + z h_prev."""
    cdef Py_ssize_t j
    for j in range(H):
        pre[2 * H + j] = a[2 * H + j]
        a[2 * H + j] = <floating>_cact(k[1], a[2 * H + j], p[2], p[3])
        hc[j] = (1 - a[j]) * a[2 * H + j] + a[j] * hp[j]


def gru_forward_act(floating[:, :, ::1] gates, floating[:, ::1] ut, floating[:, ::1] h0,
                    floating[:, :, ::1] hs, floating[:, :, ::1] rh, bint reverse,
                    floating[:, :, ::1] pre, int gate_code, int cell_code, double gp,
                    double gq, double cp_, double cq):
    """gru_forward with the activation codes (the lstm_forward_act conventions); pre
    (T, N, 3H) receives the pre-activations."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef int codes[2]
    cdef double prm[4]
    cdef floating *a
    cdef floating *hc
    cdef floating *q
    cdef const floating *hp = &h0[0, 0]
    codes[0] = gate_code
    codes[1] = cell_code
    prm[0] = gp
    prm[1] = gq
    prm[2] = cp_
    prm[3] = cq
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            a = &gates[t, 0, 0]
            hc = &hs[t, 0, 0]
            q = &rh[t, 0, 0]
            _gemm_nn(N, 2 * H, H, hp, H, &ut[0, 0], 3 * H, True, a, 3 * H)
            for n in range(N):
                _gru_zr_act_row(a + n * 3 * H, &pre[t, n, 0], hp + n * H, q + n * H, H,
                                codes, prm)
            _gemm_nn(N, H, H, q, H, &ut[0, 2 * H], 3 * H, True, a + 2 * H, 3 * H)
            for n in range(N):
                _gru_n_act_row(a + n * 3 * H, &pre[t, n, 0], hp + n * H, hc + n * H, H,
                               codes, prm)
            hp = hc


def gru_backward_act(floating[:, :, ::1] dhs, floating[:, :, ::1] gates,
                     floating[:, :, ::1] hs, floating[:, ::1] h0, floating[:, ::1] u,
                     floating[:, :, ::1] dz, floating[:, ::1] dh, floating[:, ::1] dhcur,
                     floating[:, ::1] drh, bint reverse, floating[:, :, ::1] pre,
                     int gate_code, int cell_code, double gp, double gq, double cp_,
                     double cq):
    """gru_backward for gru_forward_act: the derivatives at the pre-activations pre."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n, j
    cdef const floating *hp
    cdef const floating *a
    cdef const floating *pr
    cdef floating *d
    cdef double dv
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            d = &dz[t, 0, 0]
            hp = &h0[0, 0] if k == 0 else &hs[_step(k - 1, T, reverse), 0, 0]
            for n in range(N):
                a = &gates[t, n, 0]
                pr = &pre[t, n, 0]
                for j in range(H):
                    dv = dhs[t, n, j] + dh[n, j]
                    dhcur[n, j] = <floating>dv
                    d[n * 3 * H + 2 * H + j] = <floating>(
                        dv * (1 - a[j]) * _cdact(cell_code, pr[2 * H + j], cp_, cq))
                    d[n * 3 * H + j] = <floating>(
                        dv * (hp[n * H + j] - a[2 * H + j]) * _cdact(gate_code, pr[j], gp, gq))
            _gemm_nn(N, H, H, d + 2 * H, 3 * H, &u[2 * H, 0], H, False, &drh[0, 0], H)
            for n in range(N):
                a = &gates[t, n, 0]
                pr = &pre[t, n, 0]
                for j in range(H):
                    d[n * 3 * H + H + j] = <floating>(
                        drh[n, j] * hp[n * H + j] * _cdact(gate_code, pr[H + j], gp, gq))
                    dh[n, j] = dhcur[n, j] * a[j] + drh[n, j] * a[H + j]
            _gemm_nn(N, H, 2 * H, d, 3 * H, &u[0, 0], H, True, &dh[0, 0], H)


def rnn_forward_act(floating[:, :, ::1] hs, floating[:, ::1] u, floating[:, ::1] h0,
                    bint reverse, floating[:, :, ::1] pre, int code, double p, double q):
    """rnn_forward with the activation ``code`` (p, q): pre[t] keeps the pre-activation."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, j
    cdef floating *cur
    cdef floating *pr
    cdef const floating *prev = &h0[0, 0]
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            cur = &hs[t, 0, 0]
            pr = &pre[t, 0, 0]
            gemm_rowmajor(False, True, <int>N, <int>H, <int>H, <floating>1, prev, <int>H,
                          &u[0, 0], <int>H, <floating>1, cur, <int>H)
            for j in range(N * H):
                pr[j] = cur[j]
                cur[j] = <floating>_cact(code, cur[j], p, q)
            prev = cur


def rnn_backward_act(floating[:, :, ::1] dhs, floating[:, :, ::1] pre, floating[:, ::1] u,
                     floating[:, :, ::1] dz, floating[:, ::1] dh, bint reverse, int code,
                     double p, double q):
    """rnn_backward for rnn_forward_act: dz[t] = (dhs[t] + dh) * act'(pre[t])."""
    cdef Py_ssize_t T = pre.shape[0], N = pre.shape[1], H = pre.shape[2]
    cdef Py_ssize_t k, t, n, j
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            for n in range(N):
                for j in range(H):
                    dz[t, n, j] = <floating>((dhs[t, n, j] + dh[n, j])
                                             * _cdact(code, pre[t, n, j], p, q))
            gemm_rowmajor(False, False, <int>N, <int>H, <int>H, <floating>1, &dz[t, 0, 0],
                          <int>H, &u[0, 0], <int>H, <floating>0, &dh[0, 0], <int>H)


# -------------------------------------------------------------------------- indrnn
# activation codes of indrnn (refnn.backends.cpu.recurrent passes them)
cdef enum:
    ACT_RELU = 0
    ACT_SIGMOID = 1
    ACT_TANH = 2


cdef inline void _indrnn_row(floating *a, const floating *u, const floating *hp,
                             const floating *m, Py_ssize_t H, int act) noexcept nogil:
    """a = act(a + u * (m * h_prev)), in place (a holds x_t w^T + b; m NULL: no mask)."""
    cdef Py_ssize_t j
    if m == NULL:
        for j in range(H):
            a[j] = a[j] + u[j] * hp[j]
    else:
        for j in range(H):
            a[j] = a[j] + u[j] * (m[j] * hp[j])
    if act == ACT_RELU:
        for j in range(H):
            a[j] = a[j] if a[j] > 0 else 0
    elif act == ACT_SIGMOID:
        _sigmoid_inplace(a, H)
    else:
        _tanh_inplace(a, H)


cdef inline void _indrnn_backward_row(const floating *dhs, const floating *h,
                                      const floating *hp, const floating *u, floating *dh,
                                      floating *dz, floating *du, const floating *m,
                                      Py_ssize_t H, int act) noexcept nogil:
    """dz = (dhs + dh) act'(z); du += dz h_prev; dh = dz u (act' from h = act(z)); with a
    mask m (not NULL) du += dz m h_prev and dh = dz u m."""
    cdef Py_ssize_t j
    cdef floating d
    for j in range(H):
        if act == ACT_RELU:
            d = dhs[j] + dh[j] if h[j] > 0 else 0
        elif act == ACT_SIGMOID:
            d = (dhs[j] + dh[j]) * h[j] * (1 - h[j])
        else:
            d = (dhs[j] + dh[j]) * (1 - h[j] * h[j])
        dz[j] = d
        if m == NULL:
            du[j] += d * hp[j]
            dh[j] = d * u[j]
        else:
            du[j] += d * (m[j] * hp[j])
            dh[j] = d * u[j] * m[j]


def indrnn_forward(floating[:, :, ::1] hs, floating[::1] u, floating[:, ::1] h0, int act,
                   bint reverse, floating[:, :, ::1] mask, bint masked):
    """hs holds x_t w^T + b on entry; per step hs[t] = act(hs[t] + u * (m_t * h_prev))
    in place (m_t = 1 without a mask). No matrix product in the loop: each of the N*H
    units has its own recurrence."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef const floating *hp = &h0[0, 0]
    cdef floating *m
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            m = _mask_of(mask, masked, t)
            for n in range(N):
                _indrnn_row(&hs[t, n, 0], &u[0], hp + n * H,
                            NULL if m == NULL else m + n * H, H, act)
            hp = &hs[t, 0, 0]


def indrnn_backward(floating[:, :, ::1] dhs, floating[:, :, ::1] hs, floating[:, ::1] h0,
                    floating[::1] u, floating[:, :, ::1] dz, floating[:, ::1] dh,
                    floating[::1] du, int act, bint reverse, floating[:, :, ::1] mask,
                    bint masked):
    """BPTT loop (refnn.ops.recurrent.indrnn_backward); dh and du must be zero on entry;
    on return dh is dh0 and du the recurrent weights' gradient."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef const floating *hp
    cdef floating *m
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            hp = &h0[0, 0] if k == 0 else &hs[_step(k - 1, T, reverse), 0, 0]
            m = _mask_of(mask, masked, t)
            for n in range(N):
                _indrnn_backward_row(&dhs[t, n, 0], &hs[t, n, 0], hp + n * H, &u[0],
                                     &dh[n, 0], &dz[t, n, 0], &du[0],
                                     NULL if m == NULL else m + n * H, H, act)


# ---------------------------------------------------------------------------- qrnn
# pooling codes: the number of gate blocks (f: z, f; fo: z, f, o; ifo: z, f, o, i)

cdef inline void _qrnn_row(const floating *g, const floating *cp, floating *c,
                           floating *h, Py_ssize_t H, int G) noexcept nogil:
    """c = f c_prev + (1 - f) z  (ifo: + i z);  h = c  (fo, ifo: o c)."""
    cdef Py_ssize_t j
    if G == 4:
        for j in range(H):
            c[j] = g[H + j] * cp[j] + g[3 * H + j] * g[j]
    else:
        for j in range(H):
            c[j] = g[H + j] * cp[j] + (1 - g[H + j]) * g[j]
    if G == 2:
        for j in range(H):
            h[j] = c[j]
    else:
        for j in range(H):
            h[j] = g[2 * H + j] * c[j]


cdef inline void _qrnn_backward_row(const floating *dhs, const floating *g,
                                    const floating *c, const floating *cp, floating *dc,
                                    floating *dg, Py_ssize_t H, int G) noexcept nogil:
    """dc = dhs o + dc_next; dz, df (, do, di) into dg; dc_next = dc f."""
    cdef Py_ssize_t j
    cdef floating d
    for j in range(H):
        if G == 2:
            d = dhs[j] + dc[j]
        else:
            d = dhs[j] * g[2 * H + j] + dc[j]
            dg[2 * H + j] = dhs[j] * c[j]
        if G == 4:
            dg[j] = d * g[3 * H + j]
            dg[H + j] = d * cp[j]
            dg[3 * H + j] = d * g[j]
        else:
            dg[j] = d * (1 - g[H + j])
            dg[H + j] = d * (cp[j] - g[j])
        dc[j] = d * g[H + j]


def qrnn_forward(floating[:, :, ::1] gates, floating[:, ::1] h0, floating[:, :, ::1] hs,
                 floating[:, :, ::1] cs, int G, bint reverse):
    """The pooling loop of refnn.ops.recurrent.qrnn_forward; G = 2, 3, 4 gate blocks
    (f, fo, ifo pooling)."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef const floating *cp = &h0[0, 0]
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            for n in range(N):
                _qrnn_row(&gates[t, n, 0], cp + n * H, &cs[t, n, 0], &hs[t, n, 0], H, G)
            cp = &cs[t, 0, 0]


def qrnn_backward(floating[:, :, ::1] dhs, floating[:, :, ::1] gates,
                  floating[:, :, ::1] cs, floating[:, ::1] h0, floating[:, :, ::1] dg,
                  floating[:, ::1] dc, int G, bint reverse):
    """BPTT loop (refnn.ops.recurrent.qrnn_backward); dc must be zero on entry, on return
    it is dh0 (the gradient of the state before the first step)."""
    cdef Py_ssize_t T = cs.shape[0], N = cs.shape[1], H = cs.shape[2]
    cdef Py_ssize_t k, t, n
    cdef const floating *cp
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            cp = &h0[0, 0] if k == 0 else &cs[_step(k - 1, T, reverse), 0, 0]
            for n in range(N):
                _qrnn_backward_row(&dhs[t, n, 0], &gates[t, n, 0], &cs[t, n, 0], cp + n * H,
                                   &dc[n, 0], &dg[t, n, 0], H, G)
