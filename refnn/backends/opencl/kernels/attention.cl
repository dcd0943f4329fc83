/* Attention family: scaled dot-product attention (refnn.ops.attention), batched over B.
 * The host (opencl/attention.py) chains: bgemm (scores), softmax_rows, mul_keep,
 * bgemm (output); backward: bgemm x4 around softmax_backward_rows. `real` is float or
 * double (-D real=...); the host rounds global sizes up, hence the bounds guards. */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define RN 16

/* bgemm: C[b][m, n] = alpha * sum_k A[b](m, k) B[b](k, n) for every batch entry b
 * (get_global_id(2)); A(m, k) = a[aoff + b*sab + m*sam + k*sak], B(k, n) likewise, so a
 * transposed operand is just swapped strides (q k^T, A^T dout, dS^T q of the reference);
 * C is C-contiguous (B, M, N). Each work-item keeps RN = 16 outputs C[b][m, n0 .. n0+15]
 * in registers and streams k (no local memory, no barriers: on PoCL's CPU device this
 * ran 2.5-10x faster than a 16 x 16 local-memory tiling for the 64 x 64 x 32 products of
 * a transformer head). */
__kernel void bgemm(const uint M, const uint N, const uint K, const real alpha,
                    __global const real *a, const uint aoff, const uint sab,
                    const uint sam, const uint sak,
                    __global const real *b, const uint boff, const uint sbb,
                    const uint sbk, const uint sbn,
                    __global real *c)
{
    const uint n0 = get_global_id(0) * RN, m = get_global_id(1), bt = get_global_id(2);
    if (m >= M || n0 >= N) return;
    __global const real *ar = a + aoff + (size_t)bt * sab + (size_t)m * sam;
    __global const real *bb = b + boff + (size_t)bt * sbb + (size_t)n0 * sbn;
    real acc[RN];
    for (uint j = 0; j < RN; j++) acc[j] = 0;
    const uint nn = min((uint)RN, N - n0);
    if (nn == RN) {                      /* full strip: a fixed trip count vectorises */
        for (uint k = 0; k < K; k++) {
            const real av = ar[(size_t)k * sak];
            __global const real *br = bb + (size_t)k * sbk;
            for (uint j = 0; j < RN; j++) acc[j] += av * br[(size_t)j * sbn];
        }
    } else {                             /* the last, partial strip of a row */
        for (uint k = 0; k < K; k++) {
            const real av = ar[(size_t)k * sak];
            __global const real *br = bb + (size_t)k * sbk;
            for (uint j = 0; j < nn; j++) acc[j] += av * br[(size_t)j * sbn];
        }
    }
    __global real *cr = c + ((size_t)bt * M + m) * N + n0;
    for (uint j = 0; j < nn; j++) cr[j] = alpha * acc[j];
}

/* softmax_rows: p[r, :] = softmax(p[r, :] + mask[b*mstride + i*Tk + :]) in place for
 * rows r = b*Tq + i < n (P_bij of the reference; the mask only if has_mask). */
__kernel void softmax_rows(__global real *p, __global const real *mask, const int has_mask,
                           const uint Tq, const uint Tk, const uint mstride, const uint n)
{
    const uint r = get_global_id(0);
    if (r >= n) return;
    __global real *s = p + (size_t)r * Tk;
    __global const real *m = mask + (size_t)(r / Tq) * mstride + (size_t)(r % Tq) * Tk;
    if (has_mask)
        for (uint j = 0; j < Tk; j++) s[j] += m[j];
    real mx = s[0];
    for (uint j = 1; j < Tk; j++) mx = fmax(mx, s[j]);
    real tot = 0;
    for (uint j = 0; j < Tk; j++) { s[j] = exp(s[j] - mx); tot += s[j]; }
    const real inv = (real)1 / tot;
    for (uint j = 0; j < Tk; j++) s[j] *= inv;
}

/* mul_keep: y[i] = p[i] * keep[i] (A = P * keep, dropout on the attention weights) */
__kernel void mul_keep(__global const real *p, __global const real *keep, __global real *y,
                       const uint n)
{
    const uint i = get_global_id(0);
    if (i < n) y[i] = p[i] * keep[i];
}

/* softmax_backward_rows: with g = dA * keep (g = dA without keep),
 * dS[r, j] = P[r, j] (g[r, j] - sum_j' P[r, j'] g[r, j']) in place over dA (rows r < n) */
__kernel void softmax_backward_rows(__global real *da, __global const real *p,
                                    __global const real *keep, const int has_keep,
                                    const uint Tk, const uint n)
{
    const uint r = get_global_id(0);
    if (r >= n) return;
    __global real *g = da + (size_t)r * Tk;
    __global const real *pr = p + (size_t)r * Tk;
    __global const real *kr = keep + (size_t)r * Tk;
    if (has_keep)
        for (uint j = 0; j < Tk; j++) g[j] *= kr[j];
    real acc = 0;
    for (uint j = 0; j < Tk; j++) acc += pr[j] * g[j];
    for (uint j = 0; j < Tk; j++) g[j] = pr[j] * (g[j] - acc);
}

/* permute_heads: between x (N, T, H*d) and y (N*H, T, d) (ops.attention.split_heads /
 * merge_heads): one work-item per element o of the (N*H, T, d) array,
 * o = ((n*H + h)*T + t)*d + c <-> ((n*T + t)*H + h)*d + c; split copies x -> y, merge
 * y -> x. */
__kernel void permute_heads(__global const real *src, __global real *dst, const uint T,
                            const uint H, const uint d, const int split, const uint total)
{
    const uint o = get_global_id(0);
    if (o >= total) return;
    const uint c = o % d, t = (o / d) % T, r = o / (d * T);
    const uint n = r / H, h = r % H;
    const size_t b = ((size_t)(n * T + t) * H + h) * d + c;
    if (split) dst[o] = src[b];
    else dst[b] = src[o];
}

/* additive_scores: s[r, j] = sum_c w[c] tanh(q[r, c] + k[b, j, c]) for rows r = b*Tq + i
 * (S_bij of ops.attention.additive_attention_forward; softmax_rows follows) */
__kernel void additive_scores(__global const real *q, __global const real *k,
                              __global const real *w, __global real *s, const uint Tq,
                              const uint Tk, const uint d, const uint n)
{
    const uint r = get_global_id(0);
    if (r >= n) return;
    __global const real *qi = q + (size_t)r * d;
    __global const real *kb = k + (size_t)(r / Tq) * Tk * d;
    for (uint j = 0; j < Tk; j++) {
        real acc = 0;
        for (uint c = 0; c < d; c++) acc += w[c] * tanh(qi[c] + kb[(size_t)j * d + c]);
        s[(size_t)r * Tk + j] = acc;
    }
}

/* additive_dq: dq[b, i, c] = sum_j dS[b, i, j] w[c] (1 - tanh(q[b,i,c] + k[b,j,c])^2),
 * one work-item per (b, i, c) (o < n = B*Tq*d) */
__kernel void additive_dq(__global const real *ds, __global const real *q,
                          __global const real *k, __global const real *w,
                          __global real *dq, const uint Tq, const uint Tk, const uint d,
                          const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const uint c = o % d, r = o / d, b = r / Tq;
    const real qc = q[o];
    real acc = 0;
    for (uint j = 0; j < Tk; j++) {
        const real e = tanh(qc + k[((size_t)b * Tk + j) * d + c]);
        acc += ds[(size_t)r * Tk + j] * (1 - e * e);
    }
    dq[o] = acc * w[c];
}

/* additive_dk: dk[b, j, c] = sum_i dS[b, i, j] w[c] (1 - tanh(q[b,i,c] + k[b,j,c])^2),
 * one work-item per (b, j, c) (o < n = B*Tk*d) */
__kernel void additive_dk(__global const real *ds, __global const real *q,
                          __global const real *k, __global const real *w,
                          __global real *dk, const uint Tq, const uint Tk, const uint d,
                          const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const uint c = o % d, j = (o / d) % Tk, b = o / (d * Tk);
    const real kc = k[o];
    real acc = 0;
    for (uint i = 0; i < Tq; i++) {
        const real e = tanh(q[((size_t)b * Tq + i) * d + c] + kc);
        acc += ds[((size_t)b * Tq + i) * Tk + j] * (1 - e * e);
    }
    dk[o] = acc * w[c];
}

/* additive_dw: dw[c] = sum_{b,i,j} dS[b, i, j] tanh(q[b,i,c] + k[b,j,c]), one work-item
 * per c (rows = B*Tq) */
__kernel void additive_dw(__global const real *ds, __global const real *q,
                          __global const real *k, __global real *dw, const uint Tq,
                          const uint Tk, const uint d, const uint rows)
{
    const uint c = get_global_id(0);
    if (c >= d) return;
    real acc = 0;
    for (uint r = 0; r < rows; r++) {
        const real qc = q[(size_t)r * d + c];
        __global const real *kb = k + (size_t)(r / Tq) * Tk * d;
        for (uint j = 0; j < Tk; j++)
            acc += ds[(size_t)r * Tk + j] * tanh(qc + kb[(size_t)j * d + c]);
    }
    dw[c] = acc;
}
