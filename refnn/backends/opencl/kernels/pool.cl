/* Pool family (NCHW): each kernel mirrors refnn.ops.pool.<name>_forward/backward.
 * Images are P = N * C planes of H x W; `real` is float or double (-D real=...); the host
 * rounds the global size up, hence the bounds guards. Windows are scanned row-major with
 * a strict `>`, so ties go to the first maximum. Backward kernels GATHER (one work-item
 * per input pixel, visiting the windows that cover it in output raster order): no atomics,
 * and the same summation order as the Cython scatter. */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* The output rows a (or columns b) whose window covers input row h (column w):
 * a sh <= h + ph <= a sh + kh - 1, clipped to [0, Ho). */
inline int first_window(int h, int k, int s, int pad)
{
    const int lo = h + pad - k + 1;
    return lo <= 0 ? 0 : (lo + s - 1) / s;
}

inline int last_window(int h, int s, int pad, int n_out)
{
    const int hi = (h + pad) / s;
    return hi < n_out - 1 ? hi : n_out - 1;
}

/* The divisor of window (a, b): kh kw with count_include_pad, else its real pixels. */
inline real window_count(int a, int b, int H, int W, int kh, int kw, int sh, int sw,
                         int ph, int pw, int include_pad)
{
    if (include_pad) return (real)(kh * kw);
    const int h0 = max(a * sh - ph, 0), h1 = min(a * sh - ph + kh, H);
    const int w0 = max(b * sw - pw, 0), w1 = min(b * sw - pw + kw, W);
    return (real)((h1 - h0) * (w1 - w0));
}

/* max_pool2d_forward: y[p, a, b] = max of window (a, b); arg = h W + w of its first max */
__kernel void max_pool2d_forward(__global const real *x, __global real *y,
                                 __global int *arg, const int H, const int W,
                                 const int Ho, const int Wo, const int kh, const int kw,
                                 const int sh, const int sw, const int ph, const int pw,
                                 const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int b = o % Wo, a = (o / Wo) % Ho;
    __global const real *plane = x + (size_t)(o / (Wo * Ho)) * H * W;
    real best = 0;
    int where = -1;
    for (int i = 0; i < kh; i++) {
        const int h = a * sh + i - ph;
        if (h < 0 || h >= H) continue;
        for (int j = 0; j < kw; j++) {
            const int w = b * sw + j - pw;
            if (w < 0 || w >= W) continue;
            const real v = plane[h * W + w];
            if (where < 0 || v > best) { best = v; where = h * W + w; }
        }
    }
    y[o] = best;
    arg[o] = where;
}

/* max_pool2d_backward: dx[p, h, w] = sum of dy[p, a, b] over windows whose argmax is (h, w) */
__kernel void max_pool2d_backward(__global const real *dy, __global const int *arg,
                                  __global real *dx, const int H, const int W,
                                  const int Ho, const int Wo, const int kh, const int kw,
                                  const int sh, const int sw, const int ph, const int pw,
                                  const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    const int w = t % W, h = (t / W) % H;
    const size_t base = (size_t)(t / (W * H)) * Ho * Wo;
    const int me = h * W + w;
    real g = 0;
    for (int a = first_window(h, kh, sh, ph); a <= last_window(h, sh, ph, Ho); a++)
        for (int b = first_window(w, kw, sw, pw); b <= last_window(w, sw, pw, Wo); b++)
            if (arg[base + a * Wo + b] == me) g += dy[base + a * Wo + b];
    dx[t] = g;
}

/* avg_pool2d_forward: y[p, a, b] = (sum of the real pixels of window (a, b)) / count(a, b) */
__kernel void avg_pool2d_forward(__global const real *x, __global real *y,
                                 const int include_pad, const int H, const int W,
                                 const int Ho, const int Wo, const int kh, const int kw,
                                 const int sh, const int sw, const int ph, const int pw,
                                 const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int b = o % Wo, a = (o / Wo) % Ho;
    __global const real *plane = x + (size_t)(o / (Wo * Ho)) * H * W;
    real total = 0;
    for (int i = 0; i < kh; i++) {
        const int h = a * sh + i - ph;
        if (h < 0 || h >= H) continue;
        for (int j = 0; j < kw; j++) {
            const int w = b * sw + j - pw;
            if (w >= 0 && w < W) total += plane[h * W + w];
        }
    }
    y[o] = total / window_count(a, b, H, W, kh, kw, sh, sw, ph, pw, include_pad);
}

/* avg_pool2d_backward: dx[p, h, w] = sum of dy[p, a, b] / count(a, b)
 * over the windows (a, b) covering (h, w) */
__kernel void avg_pool2d_backward(__global const real *dy, const int include_pad,
                                  __global real *dx, const int H, const int W,
                                  const int Ho, const int Wo, const int kh, const int kw,
                                  const int sh, const int sw, const int ph, const int pw,
                                  const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    const int w = t % W, h = (t / W) % H;
    const size_t base = (size_t)(t / (W * H)) * Ho * Wo;
    real g = 0;
    for (int a = first_window(h, kh, sh, ph); a <= last_window(h, sh, ph, Ho); a++)
        for (int b = first_window(w, kw, sw, pw); b <= last_window(w, sw, pw, Wo); b++)
            g += dy[base + a * Wo + b]
                 / window_count(a, b, H, W, kh, kw, sh, sw, ph, pw, include_pad);
    dx[t] = g;
}

/* global_max_pool_forward: y[p] = max_k x[p, k]; arg[p] = the first k reaching it */
__kernel void global_max_pool_forward(__global const real *x, __global real *y,
                                      __global int *arg, const int K, const uint n)
{
    const uint p = get_global_id(0);
    if (p >= n) return;
    __global const real *row = x + (size_t)p * K;
    real best = row[0];
    int where = 0;
    for (int k = 1; k < K; k++)
        if (row[k] > best) { best = row[k]; where = k; }
    y[p] = best;
    arg[p] = where;
}

/* global_max_pool_backward: dx[p, k] = dy[p] if k == arg[p] else 0 */
__kernel void global_max_pool_backward(__global const real *dy, __global const int *arg,
                                       __global real *dx, const int K, const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    const uint p = t / K;
    dx[t] = (int)(t % K) == arg[p] ? dy[p] : (real)0;
}

/* global_sum_pool_forward: y[p] = scale * sum_k x[p, k] (scale 1, or 1 / (H W) for the mean) */
__kernel void global_sum_pool_forward(__global const real *x, __global real *y,
                                      const real scale, const int K, const uint n)
{
    const uint p = get_global_id(0);
    if (p >= n) return;
    __global const real *row = x + (size_t)p * K;
    real total = 0;
    for (int k = 0; k < K; k++) total += row[k];
    y[p] = total * scale;
}

/* global_sum_pool_backward: dx[p, k] = scale * dy[p] */
__kernel void global_sum_pool_backward(__global const real *dy, __global real *dx,
                                       const real scale, const int K, const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    dx[t] = dy[t / K] * scale;
}

/* ---------------------------------------------------------------- 3-D pools
 * Volumes are P planes of D x H x W; window (a, b, e) starts at padded voxel
 * (a sd, b sh, e sw) and is scanned depth, row, column (row-major). Geometry arguments:
 * (D, H, W, Do, Ho, Wo, kd, kh, kw, sd, sh, sw, pd, ph, pw). */

/* The divisor of window (a, b, e): kd kh kw with count_include_pad, else its real voxels. */
inline real window_count3d(int a, int b, int e, int D, int H, int W, int kd, int kh,
                           int kw, int sd, int sh, int sw, int pd, int ph, int pw,
                           int include_pad)
{
    if (include_pad) return (real)(kd * kh * kw);
    const int d0 = max(a * sd - pd, 0), d1 = min(a * sd - pd + kd, D);
    const int h0 = max(b * sh - ph, 0), h1 = min(b * sh - ph + kh, H);
    const int w0 = max(e * sw - pw, 0), w1 = min(e * sw - pw + kw, W);
    return (real)((d1 - d0) * (h1 - h0) * (w1 - w0));
}

#define GEOMETRY3D const int D, const int H, const int W, const int Do, const int Ho, \
    const int Wo, const int kd, const int kh, const int kw, const int sd, const int sh, \
    const int sw, const int pd, const int ph, const int pw

/* max_pool3d_forward: y[p, a, b, e] = max of window (a, b, e) (reference max_pool3d);
 * arg = (d H + h) W + w of its first maximum */
__kernel void max_pool3d_forward(__global const real *x, __global real *y,
                                 __global int *arg, GEOMETRY3D, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int e = o % Wo, b = (o / Wo) % Ho, a = (o / (Wo * Ho)) % Do;
    __global const real *vol = x + (size_t)(o / (Wo * Ho * Do)) * D * H * W;
    real best = 0;
    int where = -1;
    for (int i = 0; i < kd; i++) {
        const int d = a * sd + i - pd;
        if (d < 0 || d >= D) continue;
        for (int j = 0; j < kh; j++) {
            const int h = b * sh + j - ph;
            if (h < 0 || h >= H) continue;
            for (int l = 0; l < kw; l++) {
                const int w = e * sw + l - pw;
                if (w < 0 || w >= W) continue;
                const real v = vol[(d * H + h) * W + w];
                if (where < 0 || v > best) { best = v; where = (d * H + h) * W + w; }
            }
        }
    }
    y[o] = best;
    arg[o] = where;
}

/* max_pool3d_backward: dx[p, d, h, w] = sum of dy[p, a, b, e] over the windows covering
 * (d, h, w) whose argmax it is (a gather, in output raster order like the Cython scatter) */
__kernel void max_pool3d_backward(__global const real *dy, __global const int *arg,
                                  __global real *dx, GEOMETRY3D, const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    const int w = t % W, h = (t / W) % H, d = (t / (W * H)) % D;
    const size_t base = (size_t)(t / (W * H * D)) * Do * Ho * Wo;
    const int me = (d * H + h) * W + w;
    real g = 0;
    for (int a = first_window(d, kd, sd, pd); a <= last_window(d, sd, pd, Do); a++)
        for (int b = first_window(h, kh, sh, ph); b <= last_window(h, sh, ph, Ho); b++)
            for (int e = first_window(w, kw, sw, pw); e <= last_window(w, sw, pw, Wo); e++) {
                const size_t o = base + (a * Ho + b) * Wo + e;
                if (arg[o] == me) g += dy[o];
            }
    dx[t] = g;
}

/* avg_pool3d_forward: y[p, a, b, e] = (sum of the real voxels of the window) / count */
__kernel void avg_pool3d_forward(__global const real *x, __global real *y,
                                 const int include_pad, GEOMETRY3D, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int e = o % Wo, b = (o / Wo) % Ho, a = (o / (Wo * Ho)) % Do;
    __global const real *vol = x + (size_t)(o / (Wo * Ho * Do)) * D * H * W;
    real total = 0;
    for (int i = 0; i < kd; i++) {
        const int d = a * sd + i - pd;
        if (d < 0 || d >= D) continue;
        for (int j = 0; j < kh; j++) {
            const int h = b * sh + j - ph;
            if (h < 0 || h >= H) continue;
            for (int l = 0; l < kw; l++) {
                const int w = e * sw + l - pw;
                if (w >= 0 && w < W) total += vol[(d * H + h) * W + w];
            }
        }
    }
    y[o] = total / window_count3d(a, b, e, D, H, W, kd, kh, kw, sd, sh, sw, pd, ph, pw,
                                  include_pad);
}

/* avg_pool3d_backward: dx[p, d, h, w] = sum of dy[p, a, b, e] / count(a, b, e) over the
 * windows covering (d, h, w) */
__kernel void avg_pool3d_backward(__global const real *dy, const int include_pad,
                                  __global real *dx, GEOMETRY3D, const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    const int w = t % W, h = (t / W) % H, d = (t / (W * H)) % D;
    const size_t base = (size_t)(t / (W * H * D)) * Do * Ho * Wo;
    real g = 0;
    for (int a = first_window(d, kd, sd, pd); a <= last_window(d, sd, pd, Do); a++)
        for (int b = first_window(h, kh, sh, ph); b <= last_window(h, sh, ph, Ho); b++)
            for (int e = first_window(w, kw, sw, pw); e <= last_window(w, sw, pw, Wo); e++)
                g += dy[base + (a * Ho + b) * Wo + e]
                     / window_count3d(a, b, e, D, H, W, kd, kh, kw, sd, sh, sw, pd, ph, pw,
                                      include_pad);
    dx[t] = g;
}

/* global_max_pool_topk_forward: y[p, :k] = the k largest x[p, :], descending; arg[p, j] =
 * the position of y[p, j]. One work-item per plane inserts each value into the sorted
 * row y[p] past strictly smaller ones only: equal values keep their order (the
 * reference's stable argsort). */
__kernel void global_max_pool_topk_forward(__global const real *x, __global real *y,
                                           __global int *arg, const int K, const int k,
                                           const uint n)
{
    const uint p = get_global_id(0);
    if (p >= n) return;
    __global const real *row = x + (size_t)p * K;
    __global real *top = y + (size_t)p * k;
    __global int *pos = arg + (size_t)p * k;
    int filled = 0;
    for (int q = 0; q < K; q++) {
        const real v = row[q];
        if (filled == k && !(v > top[k - 1])) continue;
        int j = filled < k ? filled : k - 1;
        while (j > 0 && v > top[j - 1]) { top[j] = top[j - 1]; pos[j] = pos[j - 1]; j--; }
        top[j] = v;
        pos[j] = q;
        if (filled < k) filled++;
    }
}

/* global_max_pool_topk_backward: dx[p, arg[p, j]] = dy[p, j] (one work-item per (p, j);
 * the k positions of a plane are distinct, dx was zeroed) */
__kernel void global_max_pool_topk_backward(__global const real *dy, __global const int *arg,
                                            __global real *dx, const int K, const int k,
                                            const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    dx[(size_t)(t / k) * K + arg[t]] = dy[t];
}

/* projection_pool: y[a, m, b] = scale * sum_l x[a, l, b] for every m < M (the forward with
 * scale 1 / L; the backward with x = dy, both spread one column sum over a column) */
__kernel void projection_pool(__global const real *x, __global real *y, const real scale,
                              const int L, const int B, const int M, const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    const int b = t % B;
    const size_t a = t / B;
    real total = 0;
    for (int l = 0; l < L; l++) total += x[(a * L + l) * B + b];
    const real v = total * scale;
    for (int m = 0; m < M; m++) y[(a * M + m) * B + b] = v;
}
