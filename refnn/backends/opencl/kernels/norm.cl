/* Norm family: each kernel mirrors refnn.ops.norm.<name>_forward/backward.
 * batch norm and layer norm work on row-major (N, C) matrices; LRN on (N, C, P) images
 * (P = H W pixels). `real` is float or double (-D real=...). Reductions are written by
 * hand: per-row ones (layer norm) use one work-group of NORM_LOCAL items per row, each
 * item summing a strided share, then group_sum adds the NORM_LOCAL partial sums in local
 * memory (a tree); per-column ones (batch norm) use partial sums over row chunks (see
 * col_partial_stats). Elementwise kernels have one work-item per element; the host
 * rounds global sizes up, hence the guards. */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define NORM_LOCAL 64

/* group_sum: the sum of v over the work-group (every item gets it); part has NORM_LOCAL
 * entries of local memory. */
inline real group_sum(__local real *part, real v)
{
    const int lid = get_local_id(0);
    part[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = NORM_LOCAL / 2; step > 0; step /= 2) {
        if (lid < step) part[lid] += part[lid + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const real s = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return s;
}

/* Column statistics of an (N, C) matrix (batch norm's per-channel sums, layer norm's
 * dscale/dbias) in two steps, so that neighbouring work-items read neighbouring
 * channels of one row (coalesced): col_partial_* -- one item per (row chunk k, channel
 * c), rows k R .. min((k+1) R, N) - 1 -- writes part[k, c]; then one item per channel
 * adds its K partial sums in chunk order (col_finish_*, bn_mean, bn_var). */

/* col_partial_stats: part[k,c] = sum_{n in chunk k} (x[n,c] - x[0,c])  (squares = 0)
 *                 or sum_{n in chunk k} (x[n,c] - mean[c])^2  (squares = 1)
 * The sums are shifted by the column's first value (bn_mean adds it back): a constant
 * column then has mean exactly x[0,c] and x - mean exactly 0 in float32 too (the
 * reference's float64 mean is exact there; an unshifted float32 sum / N is not). */
__kernel void col_partial_stats(__global const real *x, __global const real *mean,
                                __global real *part, const int N, const int C, const int R,
                                const int squares, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = g % C, k = g / C;
    const int n1 = min((k + 1) * R, N);
    real acc = 0;
    if (squares) {
        const real m = mean[c];
        for (int r = k * R; r < n1; ++r) {
            const real d = x[(size_t)r * C + c] - m;
            acc += d * d;
        }
    } else {
        const real shift = x[c];
        for (int r = k * R; r < n1; ++r) acc += x[(size_t)r * C + c] - shift;
    }
    part[g] = acc;
}

/* bn_mean: mean[c] = x[0,c] + sum_k part[k,c] / N (one item per channel; the shift of
 * col_partial_stats added back) */
__kernel void bn_mean(__global const real *x, __global const real *part,
                      __global real *mean, const int K, const int C, const int N,
                      const uint n)
{
    const uint c = get_global_id(0);
    if (c >= n) return;
    real acc = 0;
    for (int k = 0; k < K; ++k) acc += part[(size_t)k * C + c];
    mean[c] = x[c] + acc / N;
}

/* bn_var: var[c] = sum_k part[k,c] / N (biased), inv_std[c] = 1 / sqrt(var[c] + eps) */
__kernel void bn_var(__global const real *part, __global real *var, __global real *inv_std,
                     const int K, const int C, const int N, const real eps, const uint n)
{
    const uint c = get_global_id(0);
    if (c >= n) return;
    real acc = 0;
    for (int k = 0; k < K; ++k) acc += part[(size_t)k * C + c];
    const real v = acc / N;
    var[c] = v;
    inv_std[c] = 1 / sqrt(v + eps);
}

/* col_partial_grads: pb[k,c] = sum_{n in chunk k} dy[n,c],
 * pg[k,c] = sum_{n in chunk k} dy[n,c] (x[n,c] - mean[c]) */
__kernel void col_partial_grads(__global const real *dy, __global const real *x,
                                __global const real *mean, __global real *pb,
                                __global real *pg, const int N, const int C, const int R,
                                const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = g % C, k = g / C;
    const int n1 = min((k + 1) * R, N);
    const real m = mean[c];
    real sb = 0, sg = 0;
    for (int r = k * R; r < n1; ++r) {
        const size_t i = (size_t)r * C + c;
        sb += dy[i];
        sg += dy[i] * (x[i] - m);
    }
    pb[g] = sb;
    pg[g] = sg;
}

/* col_finish_grads: dbeta[c] = sum_k pb[k,c], dgamma[c] = inv_std[c] sum_k pg[k,c]
 * (= sum_n dy xhat) */
__kernel void col_finish_grads(__global const real *pb, __global const real *pg,
                               __global const real *inv_std, __global real *dgamma,
                               __global real *dbeta, const int K, const int C, const uint n)
{
    const uint c = get_global_id(0);
    if (c >= n) return;
    real sb = 0, sg = 0;
    for (int k = 0; k < K; ++k) {
        sb += pb[(size_t)k * C + c];
        sg += pg[(size_t)k * C + c];
    }
    dbeta[c] = sb;
    dgamma[c] = sg * inv_std[c];
}

/* bn_normalize: y[n,c] = gamma[c] (x[n,c] - mean[c]) inv_std[c] + beta[c] (one item per entry) */
__kernel void bn_normalize(__global const real *x, __global const real *gamma,
                           __global const real *beta, __global const real *mean,
                           __global const real *inv_std, __global real *y, const int C,
                           const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = g % C;
    y[g] = gamma[c] * (x[g] - mean[c]) * inv_std[c] + beta[c];
}

/* bn_infer_coeffs: inv_std = 1/sqrt(var + eps), scale = gamma inv_std, shift = beta - mean scale
 * (so that batch_norm_infer's y = x scale + shift = gamma (x - mean) inv_std + beta) */
__kernel void bn_infer_coeffs(__global const real *gamma, __global const real *beta,
                              __global const real *mean, __global const real *var,
                              __global real *inv_std, __global real *scale,
                              __global real *shift, const real eps, const uint n)
{
    const uint c = get_global_id(0);
    if (c >= n) return;
    const real is = 1 / sqrt(var[c] + eps);
    inv_std[c] = is;
    scale[c] = gamma[c] * is;
    shift[c] = beta[c] - mean[c] * gamma[c] * is;
}

/* affine_columns: y[n,c] = x[n,c] scale[c] + shift[c] (batch_norm_infer's forward; its dx
 * with shift = 0) */
__kernel void affine_columns(__global const real *x, __global const real *scale,
                             __global const real *shift, __global real *y, const int C,
                             const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = g % C;
    y[g] = x[g] * scale[c] + shift[c];
}

/* bn_dx_coeffs: per channel, dx = gamma inv_std / N (N dy - dbeta - xhat dgamma)
 * + dmean / N + 2 dvar (x - mean) / N = k1 dy + kx (x - mean) + k0 with k1 = gamma inv_std,
 * kx = 2 dvar / N - k1 inv_std dgamma / N, k0 = dmean / N - k1 dbeta / N;
 * coef = (k1, kx, k0) as 3 rows of C (dmean, dvar are zeros when not given) */
__kernel void bn_dx_coeffs(__global const real *inv_std, __global const real *gamma,
                           __global const real *dgamma, __global const real *dbeta,
                           __global const real *dmean, __global const real *dvar,
                           __global real *coef, const int N, const uint n)
{
    const uint c = get_global_id(0);
    if (c >= n) return;
    const real k1 = gamma[c] * inv_std[c];
    coef[c] = k1;
    coef[n + c] = 2 * dvar[c] / N - k1 * inv_std[c] * dgamma[c] / N;
    coef[2 * n + c] = dmean[c] / N - k1 * dbeta[c] / N;
}

/* bn_backward_dx: dx[n,c] = k1[c] dy[n,c] + kx[c] (x[n,c] - mean[c]) + k0[c]
 * (the reference's dx, see bn_dx_coeffs; one item per entry) */
__kernel void bn_backward_dx(__global const real *dy, __global const real *x,
                             __global const real *mean, __global const real *coef,
                             __global real *dx, const int C, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = g % C;
    dx[g] = coef[c] * dy[g] + coef[C + c] * (x[g] - mean[c]) + coef[2 * C + c];
}

/* ln_forward: per row r of x (N, D): mu = sum_j x / D, s2 = sum_j (x - mu)^2 / D,
 * inv_std[r] = 1/sqrt(s2 + eps), xhat = (x - mu) inv_std, y = scale xhat + bias;
 * one work-group per row. */
__kernel void ln_forward(__global const real *x, __global const real *scale,
                         __global const real *bias, __global real *y, __global real *xhat,
                         __global real *inv_std, const int D, const real eps)
{
    __local real part[NORM_LOCAL];
    const int r = get_group_id(0), lid = get_local_id(0);
    __global const real *xr = x + (size_t)r * D;
    real acc = 0;
    for (int j = lid; j < D; j += NORM_LOCAL) acc += xr[j];
    const real mu = group_sum(part, acc) / D;
    acc = 0;
    for (int j = lid; j < D; j += NORM_LOCAL) {
        const real d = xr[j] - mu;
        acc += d * d;
    }
    const real is = 1 / sqrt(group_sum(part, acc) / D + eps);
    for (int j = lid; j < D; j += NORM_LOCAL) {
        const real h = (xr[j] - mu) * is;
        xhat[(size_t)r * D + j] = h;
        y[(size_t)r * D + j] = scale[j] * h + bias[j];
    }
    if (lid == 0) inv_std[r] = is;
}

/* ln_backward_dx: per row, g = dy scale; dx = inv_std / D (D g - sum_j g - xhat sum_j g xhat);
 * one work-group per row. */
__kernel void ln_backward_dx(__global const real *dy, __global const real *xhat,
                             __global const real *inv_std, __global const real *scale,
                             __global real *dx, const int D)
{
    __local real part[NORM_LOCAL];
    const int r = get_group_id(0), lid = get_local_id(0);
    const size_t o = (size_t)r * D;
    real sg = 0, sgx = 0;
    for (int j = lid; j < D; j += NORM_LOCAL) {
        const real g = dy[o + j] * scale[j];
        sg += g;
        sgx += g * xhat[o + j];
    }
    sg = group_sum(part, sg);
    sgx = group_sum(part, sgx);
    for (int j = lid; j < D; j += NORM_LOCAL)
        dx[o + j] = inv_std[r] / D * (D * dy[o + j] * scale[j] - sg - xhat[o + j] * sgx);
}

/* lrn_forward: d[n,c,p] = k + alpha/size sum_{c'=c-(size-1)//2}^{c+size//2} x[n,c',p]^2
 * (clipped to 0..C-1), y = x d^(-beta); one item per entry. */
__kernel void lrn_forward(__global const real *x, __global real *y, __global real *d,
                          const int C, const int P, const int size, const real k,
                          const real alpha, const real beta, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = (g / P) % C;
    const size_t base = g - (size_t)c * P;          /* entry (n, 0, p) */
    const int lo = max(c - (size - 1) / 2, 0), hi = min(c + size / 2, C - 1);
    real s = 0;
    for (int cc = lo; cc <= hi; ++cc) {
        const real v = x[base + (size_t)cc * P];
        s += v * v;
    }
    const real dd = k + alpha / size * s;
    d[g] = dd;
    y[g] = x[g] * pow(dd, -beta);
}

/* lrn_backward_t: t = dy x d^(-beta-1) (the term each channel sends back to its window) */
__kernel void lrn_backward_t(__global const real *dy, __global const real *x,
                             __global const real *d, __global real *t, const real beta,
                             const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    t[g] = dy[g] * x[g] * pow(d[g], -beta - 1);
}

/* lrn_backward_dx: dx[c] = dy d^(-beta) - 2 alpha beta / size x
 * sum_{c'=c-size//2}^{c+(size-1)//2} t[c'] (the channels whose window holds c) */
__kernel void lrn_backward_dx(__global const real *dy, __global const real *x,
                              __global const real *d, __global const real *t,
                              __global real *dx, const int C, const int P, const int size,
                              const real alpha, const real beta, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = (g / P) % C;
    const size_t base = g - (size_t)c * P;
    const int lo = max(c - size / 2, 0), hi = min(c + (size - 1) / 2, C - 1);
    real s = 0;
    for (int cc = lo; cc <= hi; ++cc) s += t[base + (size_t)cc * P];
    dx[g] = dy[g] * pow(d[g], -beta) - 2 * alpha * beta / size * x[g] * s;
}
