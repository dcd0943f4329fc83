/* Conv family: im2col / col2im for conv2d (NCHW); the matrix products run on dense.cl's
 * GEMM. Geometry per axis: size H, kernel kh, stride sh, padding ph, dilation dh, output
 * Ho; K = C*kh*kw rows and P = Ho*Wo columns per image. `real` is float or double
 * (-D real=...); the host rounds the global size up, hence the `g >= n` guards. */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* im2col: cols[n, (c*kh + p)*kw + q, i*Wo + j] = xpad[n, c, i*sh + p*dh, j*sw + q*dw]
 * (0 in the padding); one work-item per entry of cols (N, K, P). */
__kernel void im2col(__global const real *x, __global real *cols,
                     const int C, const int H, const int W, const int kh, const int kw,
                     const int sh, const int sw, const int ph, const int pw,
                     const int dh, const int dw, const int Ho, const int Wo, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int j = g % Wo, i = (g / Wo) % Ho;
    const int row = (g / (Wo * Ho)) % (C * kh * kw), img = g / (Wo * Ho * C * kh * kw);
    const int q = row % kw, p = (row / kw) % kh, c = row / (kw * kh);
    const int h = i * sh + p * dh - ph, v = j * sw + q * dw - pw;
    cols[g] = (h >= 0 && h < H && v >= 0 && v < W)
        ? x[((img * C + c) * H + h) * W + v] : (real)0;
}

/* col2im: dx[n, c, h, v] = sum over the taps (p, q) and outputs (i, j) with
 * i*sh + p*dh - ph = h and j*sw + q*dw - pw = v of cols[n, (c*kh + p)*kw + q, i*Wo + j];
 * one work-item per pixel of dx (N, C, H, W), gathering (no atomics). */
__kernel void col2im(__global const real *cols, __global real *dx,
                     const int C, const int H, const int W, const int kh, const int kw,
                     const int sh, const int sw, const int ph, const int pw,
                     const int dh, const int dw, const int Ho, const int Wo, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int v = g % W, h = (g / W) % H, c = (g / (W * H)) % C, img = g / (W * H * C);
    const int P = Ho * Wo;
    __global const real *base = cols + (size_t)img * C * kh * kw * P;
    real acc = 0;
    for (int p = 0; p < kh; ++p) {
        const int hh = h + ph - p * dh;             /* = i * sh */
        if (hh < 0 || hh % sh != 0 || hh / sh >= Ho) continue;
        const int i = hh / sh;
        for (int q = 0; q < kw; ++q) {
            const int vv = v + pw - q * dw;         /* = j * sw */
            if (vv < 0 || vv % sw != 0 || vv / sw >= Wo) continue;
            acc += base[((c * kh + p) * kw + q) * P + i * Wo + vv / sw];
        }
    }
    dx[g] = acc;
}

/* vol2col: the 3-D im2col, cols[n, ((c*kd + o)*kh + p)*kw + q, (a*Ho + i)*Wo + j] =
 * xpad[n, c, a*sd + o*dd, i*sh + p*dh, j*sw + q*dw] (0 in the padding), as
 * refnn.ops.conv.vol2col; one work-item per entry of cols (N, K, P). */
__kernel void vol2col(__global const real *x, __global real *cols,
                      const int C, const int D, const int H, const int W,
                      const int kd, const int kh, const int kw,
                      const int sd, const int sh, const int sw,
                      const int pd, const int ph, const int pw,
                      const int dd, const int dh, const int dw,
                      const int Do, const int Ho, const int Wo, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int P = Do * Ho * Wo, K = C * kd * kh * kw;
    const int j = g % Wo, i = (g / Wo) % Ho, a = (g / (Wo * Ho)) % Do;
    const int row = (g / P) % K, img = g / (P * K);
    const int q = row % kw, p = (row / kw) % kh, o = (row / (kw * kh)) % kd;
    const int c = row / (kw * kh * kd);
    const int z = a * sd + o * dd - pd, h = i * sh + p * dh - ph, v = j * sw + q * dw - pw;
    cols[g] = (z >= 0 && z < D && h >= 0 && h < H && v >= 0 && v < W)
        ? x[(((size_t)img * C + c) * D + z) * H * W + h * W + v] : (real)0;
}

/* col2vol: the 3-D col2im (refnn.ops.conv.col2vol), dx[n, c, z, h, v] = sum over the
 * taps (o, p, q) and outputs (a, i, j) that vol2col copied from xpad[n, c, z+pd, h+ph,
 * v+pw] of cols[n, row, col]; one work-item per voxel of dx (N, C, D, H, W), gathering. */
__kernel void col2vol(__global const real *cols, __global real *dx,
                      const int C, const int D, const int H, const int W,
                      const int kd, const int kh, const int kw,
                      const int sd, const int sh, const int sw,
                      const int pd, const int ph, const int pw,
                      const int dd, const int dh, const int dw,
                      const int Do, const int Ho, const int Wo, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const int v = g % W, h = (g / W) % H, z = (g / (W * H)) % D;
    const int c = (g / (W * H * D)) % C, img = g / (W * H * D * C);
    const int P = Do * Ho * Wo;
    __global const real *base = cols + (size_t)img * C * kd * kh * kw * P;
    real acc = 0;
    for (int o = 0; o < kd; ++o) {
        const int zz = z + pd - o * dd;             /* = a * sd */
        if (zz < 0 || zz % sd != 0 || zz / sd >= Do) continue;
        const int a = zz / sd;
        for (int p = 0; p < kh; ++p) {
            const int hh = h + ph - p * dh;         /* = i * sh */
            if (hh < 0 || hh % sh != 0 || hh / sh >= Ho) continue;
            const int i = hh / sh;
            for (int q = 0; q < kw; ++q) {
                const int vv = v + pw - q * dw;     /* = j * sw */
                if (vv < 0 || vv % sw != 0 || vv / sw >= Wo) continue;
                acc += base[(((c * kd + o) * kh + p) * kw + q) * P + (a * Ho + i) * Wo
                            + vv / sw];
            }
        }
    }
    dx[g] = acc;
}
