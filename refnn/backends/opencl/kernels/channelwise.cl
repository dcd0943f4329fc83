/* Channelwise family (refnn.ops.channelwise): direct depthwise convolution (NCHW, filter
 * (C, kh, kw)) and the time convolution's im2col / col2im over time (time-major (T, N, C);
 * its matrix products run on dense.cl's GEMM). Geometry per spatial axis: size H, kernel
 * kh, stride sh, padding ph, dilation dh, output Ho. `real` is float or double
 * (-D real=...); the host rounds the global size up, hence the `g >= n` guards. */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define CW_LOCAL 64   /* work-group size of cw_backward_dw (the host launches with it) */

/* cw_forward: y[n,c,i,j] = sum_{p,q} w[c,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]
 * (taps in the padding skipped); one work-item per entry of y (N, C, Ho, Wo). */
__kernel void cw_forward(__global const real *x, __global const real *w,
                         __global real *y,
                         const int C, const int H, const int W, const int kh, const int kw,
                         const int sh, const int sw, const int ph, const int pw,
                         const int dh, const int dw, const int Ho, const int Wo,
                         const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int j = g % Wo, i = (g / Wo) % Ho, plane = g / (Wo * Ho), c = plane % C;
    __global const real *xp = x + (size_t)plane * H * W;
    __global const real *wp = w + c * kh * kw;
    real acc = 0;
    for (int p = 0; p < kh; ++p) {
        const int h = i * sh + p * dh - ph;
        if (h < 0 || h >= H) continue;
        for (int q = 0; q < kw; ++q) {
            const int v = j * sw + q * dw - pw;
            if (v >= 0 && v < W) acc += wp[p * kw + q] * xp[h * W + v];
        }
    }
    y[g] = acc;
}

/* cw_backward_dx: dx[n,c,h,v] = sum over the taps (p, q) and outputs (i, j) with
 * i*sh + p*dh - ph = h and j*sw + q*dw - pw = v of w[c,p,q] * dy[n,c,i,j] (the
 * reference's dxpad scatter, gathered per pixel: no atomics); one work-item per pixel
 * of dx (N, C, H, W). */
__kernel void cw_backward_dx(__global const real *dy, __global const real *w,
                             __global real *dx,
                             const int C, const int H, const int W, const int kh,
                             const int kw, const int sh, const int sw, const int ph,
                             const int pw, const int dh, const int dw, const int Ho,
                             const int Wo, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int v = g % W, h = (g / W) % H, plane = g / (W * H), c = plane % C;
    __global const real *dyp = dy + (size_t)plane * Ho * Wo;
    __global const real *wp = w + c * kh * kw;
    real acc = 0;
    for (int p = 0; p < kh; ++p) {
        const int hh = h + ph - p * dh;             /* = i * sh */
        if (hh < 0 || hh % sh != 0 || hh / sh >= Ho) continue;
        const int i = hh / sh;
        for (int q = 0; q < kw; ++q) {
            const int vv = v + pw - q * dw;         /* = j * sw */
            if (vv < 0 || vv % sw != 0 || vv / sw >= Wo) continue;
            acc += wp[p * kw + q] * dyp[i * Wo + vv / sw];
        }
    }
    dx[g] = acc;
}

/* cw_backward_dw: dw[c,p,q] = sum_{n,i,j} dy[n,c,i,j] * xpad[n, c, i*sh + p*dh, j*sw + q*dw];
 * one work-group of CW_LOCAL items per tap (c, p, q): each item sums a strided share of
 * the N*Ho*Wo terms, then a tree reduction in local memory (global size = taps * CW_LOCAL). */
__kernel void cw_backward_dw(__global const real *dy, __global const real *x,
                             __global real *dwt,
                             const int N, const int C, const int H, const int W,
                             const int kh, const int kw, const int sh, const int sw,
                             const int ph, const int pw, const int dh, const int dw,
                             const int Ho, const int Wo)
{
    __local real part[CW_LOCAL];
    const int tap = get_group_id(0), lid = get_local_id(0);
    const int q = tap % kw, p = (tap / kw) % kh, c = tap / (kw * kh);
    const int terms = N * Ho * Wo;
    real acc = 0;
    for (int t = lid; t < terms; t += CW_LOCAL) {
        const int j = t % Wo, i = (t / Wo) % Ho, img = t / (Wo * Ho);
        const int h = i * sh + p * dh - ph, v = j * sw + q * dw - pw;
        if (h >= 0 && h < H && v >= 0 && v < W) {
            const size_t plane = (size_t)img * C + c;
            acc += dy[(plane * Ho + i) * Wo + j] * x[(plane * H + h) * W + v];
        }
    }
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int width = CW_LOCAL / 2; width > 0; width /= 2) {
        if (lid < width) part[lid] += part[lid + width];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) dwt[tap] = part[0];
}

/* time_im2col: cols[t*N + n, k*C + c] = xpad[t*s + k*d, n, c] with xpad = x (T, N, C)
 * shifted by pf zero steps (0 in the padding); one work-item per entry of cols
 * (To*N, K*C). */
__kernel void time_im2col(__global const real *x, __global real *cols,
                          const int T, const int N, const int C, const int K,
                          const int s, const int pf, const int d, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = g % C, k = (g / C) % K, row = g / (C * K);
    const int seq = row % N, t = row / N;
    const int u = t * s + k * d - pf;
    cols[g] = (u >= 0 && u < T) ? x[((size_t)u * N + seq) * C + c] : (real)0;
}

/* time_col2im: dx[u, n, c] = sum over the taps k and output steps t with
 * t*s + k*d - pf = u of dcols[t*N + n, k*C + c] (the reference's dxpad scatter,
 * gathered per entry of dx (T, N, C)); one work-item per entry. */
__kernel void time_col2im(__global const real *dcols, __global real *dx,
                          const int T, const int N, const int C, const int K,
                          const int s, const int pf, const int d, const int To,
                          const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int c = g % C, seq = (g / C) % N, u = g / (C * N);
    real acc = 0;
    for (int k = 0; k < K; ++k) {
        const int tt = u + pf - k * d;              /* = t * s */
        if (tt < 0 || tt % s != 0 || tt / s >= To) continue;
        acc += dcols[((size_t)(tt / s) * N + seq) * K * C + k * C + c];
    }
    dx[g] = acc;
}
