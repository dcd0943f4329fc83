/* Image family: each kernel mirrors refnn.ops.image.<name>_forward/backward.
 * NCHW ops see P = N * C planes (upsampling2d, image_resize) or N images of C H W values
 * (reorg); the pixel ops see channels-last (B, H W, C) pixel tables and (B, L) int
 * indices, already range-checked by the host. `real` is float or double (-D real=...);
 * the host rounds the global size up, hence the bounds guards. Every kernel GATHERS or
 * writes each output once (no atomics); the two that loop (pixel_owners,
 * image_to_pixel_backward) walk the list in order, as the reference does. */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* upsampling2d_forward: y[p, i, j] = x[p, i / hc, j / wc] (one work-item per output) */
__kernel void upsampling2d_forward(__global const real *x, __global real *y,
                                   const int H, const int W, const int hc, const int wc,
                                   const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int Wo = W * wc, Ho = H * hc;
    const int j = o % Wo, i = (o / Wo) % Ho;
    const size_t p = o / ((size_t)Wo * Ho);
    y[o] = x[(p * H + i / hc) * W + j / wc];
}

/* upsampling2d_backward: dx[p, h, w] = sum_{i < hc, j < wc} dy[p, h hc + i, w wc + j] */
__kernel void upsampling2d_backward(__global const real *dy, __global real *dx,
                                    const int H, const int W, const int hc, const int wc,
                                    const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    const int w = t % W, h = (t / W) % H;
    const size_t p = t / ((size_t)W * H);
    const int Wo = W * wc;
    __global const real *block = dy + (p * H * hc + (size_t)h * hc) * Wo + (size_t)w * wc;
    real total = 0;
    for (int i = 0; i < hc; i++)
        for (int j = 0; j < wc; j++) total += block[i * Wo + j];
    dx[t] = total;
}

/* image_resize_forward: y[p, i, j] = x[p, i - top, j - left] where that pixel exists,
 * else default_value */
__kernel void image_resize_forward(__global const real *x, __global real *y,
                                   const real default_value, const int H, const int W,
                                   const int Ho, const int Wo, const int left, const int top,
                                   const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int j = o % Wo, i = (o / Wo) % Ho;
    const size_t p = o / ((size_t)Wo * Ho);
    const int h = i - top, w = j - left;
    y[o] = (h >= 0 && h < H && w >= 0 && w < W) ? x[(p * H + h) * W + w] : default_value;
}

/* image_resize_backward: dx[p, h, w] = dy[p, h + top, w + left] where that output pixel
 * exists, else 0 (the pixel was cropped) */
__kernel void image_resize_backward(__global const real *dy, __global real *dx,
                                    const int H, const int W, const int Ho, const int Wo,
                                    const int left, const int top, const uint n)
{
    const uint t = get_global_id(0);
    if (t >= n) return;
    const int w = t % W, h = (t / W) % H;
    const size_t p = t / ((size_t)W * H);
    const int i = h + top, j = w + left;
    dx[t] = (i >= 0 && i < Ho && j >= 0 && j < Wo) ? dy[(p * Ho + i) * Wo + j] : (real)0;
}

/* The offset in x's image of reorg output element t: t read as (c, h, w) of a (C, H, W)
 * image with c = (i s + j) C1 + c1 comes from pixel (c1, h s + i, w s + j) of x's memory
 * read as (C1, H s, W s) -- refnn.ops.image.reorg_forward. */
inline int reorg_source(int t, int C1, int H, int W, int s)
{
    const int c = t / (H * W), h = (t / W) % H, w = t % W;
    const int o = c / C1, c1 = c % C1;
    return (c1 * H * s + h * s + o / s) * W * s + w * s + o % s;
}

/* reorg_forward: y[n, t] = x[n, reorg_source(t)] (K = C H W values per image) */
__kernel void reorg_forward(__global const real *x, __global real *y, const int C,
                            const int H, const int W, const int s, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int K = C * H * W;
    const size_t base = (size_t)(o / K) * K;
    y[o] = x[base + reorg_source(o % K, C / (s * s), H, W, s)];
}

/* reorg_backward: dx[n, reorg_source(t)] = dy[n, t] (a permutation: each dx written once) */
__kernel void reorg_backward(__global const real *dy, __global real *dx, const int C,
                             const int H, const int W, const int s, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int K = C * H * W;
    const size_t base = (size_t)(o / K) * K;
    dx[base + reorg_source(o % K, C / (s * s), H, W, s)] = dy[o];
}

/* index_check_int / index_check_long: first_bad = the smallest k whose index is outside
 * [0, n_pixels) (first_bad starts at INT_MAX: the host's range check of device indices,
 * int32 or int64 -- refnn.ops.image.check_indices) */
#define INDEX_CHECK(NAME, T)                                                              \
__kernel void NAME(__global const T *indices, volatile __global int *first_bad,          \
                   const long n_pixels, const uint n)                                    \
{                                                                                         \
    const uint k = get_global_id(0);                                                      \
    if (k < n && (indices[k] < 0 || indices[k] >= n_pixels)) atomic_min(first_bad, (int)k); \
}
INDEX_CHECK(index_check_int, int)
INDEX_CHECK(index_check_long, long)

/* pixel_owners: owner[b, p] = the last j with indices[b, j] == p, else -1
 * (one work-item per image b, walking its list in order: the last write wins) */
__kernel void pixel_owners(__global const int *indices, __global int *owner, const int L,
                           const int HW, const uint n)
{
    const uint b = get_global_id(0);
    if (b >= n) return;
    __global int *own = owner + (size_t)b * HW;
    for (int p = 0; p < HW; p++) own[p] = -1;
    for (int j = 0; j < L; j++) own[indices[(size_t)b * L + j]] = j;
}

/* pixel_to_image_forward: image[b, p, c] = pixels[b, owner[b, p], c], 0 without owner */
__kernel void pixel_to_image_forward(__global const real *pixels, __global const int *owner,
                                     __global real *image, const int L, const int HW,
                                     const int C, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int c = o % C;
    const size_t bp = o / C, b = bp / HW;
    const int j = owner[bp];
    image[o] = j >= 0 ? pixels[(b * L + j) * C + c] : (real)0;
}

/* pixel_to_image_backward: dpixels[b, j, c] = dimage[b, indices[b, j], c] if j owns that
 * pixel, else 0 */
__kernel void pixel_to_image_backward(__global const real *dimage,
                                      __global const int *indices, __global const int *owner,
                                      __global real *dpixels, const int L, const int HW,
                                      const int C, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int c = o % C;
    const size_t bj = o / C, b = bj / L;
    const int j = bj % L, p = indices[bj];
    dpixels[o] = owner[b * HW + p] == j ? dimage[(b * HW + p) * C + c] : (real)0;
}

/* image_to_pixel_forward: pixels[b, j, c] = image[b, indices[b, j], c] */
__kernel void image_to_pixel_forward(__global const real *image, __global const int *indices,
                                     __global real *pixels, const int L, const int HW,
                                     const int C, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int c = o % C;
    const size_t bj = o / C, b = bj / L;
    pixels[o] = image[(b * HW + indices[bj]) * C + c];
}

/* image_to_pixel_backward: dimage[b, p, c] = sum_{j: indices[b, j] == p} dpixels[b, j, c];
 * one work-item per (b, c) zeroes its column, then adds the list in order (it alone
 * writes dimage[b, :, c], so no atomics are needed) */
__kernel void image_to_pixel_backward(__global const real *dpixels,
                                      __global const int *indices, __global real *dimage,
                                      const int L, const int HW, const int C, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int c = o % C;
    const size_t b = o / C;
    __global real *col = dimage + b * HW * C + c;
    for (int p = 0; p < HW; p++) col[(size_t)p * C] = 0;
    for (int j = 0; j < L; j++)
        col[(size_t)indices[b * L + j] * C] += dpixels[(b * L + j) * C + c];
}
