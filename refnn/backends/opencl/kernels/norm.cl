/* Norm family: each kernel mirrors refnn.ops.norm.<name>_forward/backward.
 * batch norm and layer norm work on row-major (N, C) matrices; LRN on (N, C, P) images
 * (P = H W pixels). `real` is float or double (-D real=...). Reductions are written by
 * hand: one work-group of NORM_LOCAL items per reduced vector (a channel for batch norm,
 * a row for layer norm); each item sums a strided share of the terms, then group_sum
 * adds the NORM_LOCAL partial sums in local memory (a tree). Elementwise kernels have one
 * work-item per element; the host rounds their global size up, hence the guards. */
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

/* bn_stats: mean[c] = sum_n x[n,c] / N, var[c] = sum_n (x[n,c] - mean[c])^2 / N (two passes,
 * as the reference), inv_std[c] = 1 / sqrt(var[c] + eps); one work-group per channel c. */
__kernel void bn_stats(__global const real *x, __global real *mean, __global real *var,
                       __global real *inv_std, const int N, const int C, const real eps)
{
    __local real part[NORM_LOCAL];
    const int c = get_group_id(0), lid = get_local_id(0);
    real acc = 0;
    for (int n = lid; n < N; n += NORM_LOCAL) acc += x[(size_t)n * C + c];
    const real m = group_sum(part, acc) / N;
    acc = 0;
    for (int n = lid; n < N; n += NORM_LOCAL) {
        const real d = x[(size_t)n * C + c] - m;
        acc += d * d;
    }
    const real v = group_sum(part, acc) / N;
    if (lid == 0) {
        mean[c] = m;
        var[c] = v;
        inv_std[c] = 1 / sqrt(v + eps);
    }
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

/* bn_param_grads: dbeta[c] = sum_n dy[n,c], dgamma[c] = sum_n dy[n,c] xhat[n,c] with
 * xhat = (x - mean[c]) inv_std[c]; one work-group per channel c. */
__kernel void bn_param_grads(__global const real *dy, __global const real *x,
                             __global const real *mean, __global const real *inv_std,
                             __global real *dgamma, __global real *dbeta,
                             const int N, const int C)
{
    __local real part[NORM_LOCAL];
    const int c = get_group_id(0), lid = get_local_id(0);
    real sd = 0, sdx = 0;
    for (int n = lid; n < N; n += NORM_LOCAL) {
        const size_t i = (size_t)n * C + c;
        sd += dy[i];
        sdx += dy[i] * (x[i] - mean[c]) * inv_std[c];
    }
    const real b = group_sum(part, sd);
    const real g = group_sum(part, sdx);
    if (lid == 0) {
        dbeta[c] = b;
        dgamma[c] = g;
    }
}

/* bn_backward_dx: dx = gamma inv_std / N (N dy - dbeta - xhat dgamma) + dmean / N
 * + 2 dvar (x - mean) / N (one item per entry; dmean, dvar are zeros when not given) */
__kernel void bn_backward_dx(__global const real *dy, __global const real *x,
                             __global const real *mean, __global const real *inv_std,
                             __global const real *gamma, __global const real *dgamma,
                             __global const real *dbeta, __global const real *dmean,
                             __global const real *dvar, __global real *dx,
                             const int N, const int C, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = g % C;
    const real xc = x[g] - mean[c], xhat = xc * inv_std[c];
    dx[g] = gamma[c] * inv_std[c] / N * (N * dy[g] - dbeta[c] - xhat * dgamma[c])
            + dmean[c] / N + 2 * dvar[c] * xc / N;
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

/* ln_param_grads: dscale[j] = sum_n dy[n,j] xhat[n,j], dbias[j] = sum_n dy[n,j];
 * one work-group per column j. */
__kernel void ln_param_grads(__global const real *dy, __global const real *xhat,
                             __global real *dscale, __global real *dbias,
                             const int N, const int D)
{
    __local real part[NORM_LOCAL];
    const int j = get_group_id(0), lid = get_local_id(0);
    real sd = 0, sdx = 0;
    for (int n = lid; n < N; n += NORM_LOCAL) {
        const size_t i = (size_t)n * D + j;
        sd += dy[i];
        sdx += dy[i] * xhat[i];
    }
    const real b = group_sum(part, sd);
    const real s = group_sum(part, sdx);
    if (lid == 0) {
        dbias[j] = b;
        dscale[j] = s;
    }
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
