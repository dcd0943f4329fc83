# cython: language_level=3
"""Channelwise-family kernels: direct depthwise convolution (OpenMP over the N*C planes
or the C*kh*kw filter taps) and the time convolution (im2col over time + one BLAS GEMM).

No validation here: refnn/backends/cpu/channelwise.py has checked ranks, shapes, dtypes,
contiguity and the geometry (refnn.ops.channelwise.*_geometry) and allocated every
output. Padding is implicit: taps that fall into it read (forward) or drop (backward)
zeros.

Layouts (all C-contiguous): channelwise_conv2d x (N, C, H, W), w (C, kh, kw),
y (N, C, Ho, Wo); time_conv x (T, N, C), w (F, K*C), cols (To*N, K*C), y (To*N, F).
"""
cimport numpy as cnp
from cython.parallel cimport prange

from refnn._ext._blas cimport gemm_rowmajor

cnp.import_array()

ctypedef fused floating:
    float
    double


# ----------------------------------------------------------------- channelwise_conv2d
cdef struct Geom:
    Py_ssize_t N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo


cdef Geom _geom(tuple g):
    """(N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -> Geom."""
    cdef Geom r
    (r.N, r.C, r.H, r.W, r.kh, r.kw, r.sh, r.sw, r.ph, r.pw, r.dh, r.dw, r.Ho, r.Wo) = g
    return r


cdef inline Py_ssize_t _first(Py_ssize_t off, Py_ssize_t s) noexcept nogil:
    """The first j >= 0 with j*s + off >= 0 (a tap's first output inside the input)."""
    return 0 if off >= 0 else (-off + s - 1) // s


cdef inline Py_ssize_t _stop(Py_ssize_t off, Py_ssize_t s, Py_ssize_t size,
                             Py_ssize_t n_out) noexcept nogil:
    """One past the last j < n_out with j*s + off < size (0 when there is none)."""
    cdef Py_ssize_t last = size - 1 - off
    if last < 0:
        return 0
    return min(n_out, last // s + 1)


cdef void _cw_plane(const floating *x, const floating *w, floating *y,
                    Geom g) noexcept nogil:
    """y[i, j] = sum_{p,q} w[p, q] * xpad[i*sh + p*dh, j*sw + q*dw] (one plane); per
    tap and output row, the j range whose input is not padding (branch-free inner loop)."""
    cdef Py_ssize_t i, j, p, q, h, off, j0, j1
    cdef floating wv
    for i in range(g.Ho * g.Wo):
        y[i] = 0
    for i in range(g.Ho):
        for p in range(g.kh):
            h = i * g.sh + p * g.dh - g.ph
            if h < 0 or h >= g.H:
                continue
            for q in range(g.kw):
                off = q * g.dw - g.pw
                j0, j1 = _first(off, g.sw), _stop(off, g.sw, g.W, g.Wo)
                wv = w[p * g.kw + q]
                for j in range(j0, j1):
                    y[i * g.Wo + j] += wv * x[h * g.W + j * g.sw + off]


cdef void _cw_plane_dx(const floating *dy, const floating *w, floating *dx,
                       Geom g) noexcept nogil:
    """dx[h, v] = sum of w[p, q] * dy[i, j] over i*sh + p*dh - ph = h,
    j*sw + q*dw - pw = v (one plane, scattered; padding taps dropped)."""
    cdef Py_ssize_t i, j, p, q, h, off, j0, j1
    cdef floating wv
    for i in range(g.H * g.W):
        dx[i] = 0
    for i in range(g.Ho):
        for p in range(g.kh):
            h = i * g.sh + p * g.dh - g.ph
            if h < 0 or h >= g.H:
                continue
            for q in range(g.kw):
                off = q * g.dw - g.pw
                j0, j1 = _first(off, g.sw), _stop(off, g.sw, g.W, g.Wo)
                wv = w[p * g.kw + q]
                for j in range(j0, j1):
                    dx[h * g.W + j * g.sw + off] += wv * dy[i * g.Wo + j]


cdef floating _cw_tap_dw(const floating *x, const floating *dy, Py_ssize_t c,
                         Py_ssize_t p, Py_ssize_t q, Geom g) noexcept nogil:
    """dw[c, p, q] = sum_{n,i,j} dy[n, c, i, j] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]."""
    cdef Py_ssize_t n, i, j, h
    cdef Py_ssize_t off = q * g.dw - g.pw
    cdef Py_ssize_t j0 = _first(off, g.sw), j1 = _stop(off, g.sw, g.W, g.Wo)
    cdef const floating *xp
    cdef const floating *dyp
    cdef floating acc = 0
    for n in range(g.N):
        xp = x + (n * g.C + c) * g.H * g.W
        dyp = dy + (n * g.C + c) * g.Ho * g.Wo
        for i in range(g.Ho):
            h = i * g.sh + p * g.dh - g.ph
            if h < 0 or h >= g.H:
                continue
            for j in range(j0, j1):
                acc = acc + dyp[i * g.Wo + j] * xp[h * g.W + j * g.sw + off]
    return acc


cdef void _cw_forward(const floating *x, const floating *w, floating *y, Geom g,
                      int nt) noexcept nogil:
    cdef Py_ssize_t nc, K = g.kh * g.kw
    for nc in prange(g.N * g.C, schedule="static", num_threads=nt):
        _cw_plane(x + nc * g.H * g.W, w + (nc % g.C) * K, y + nc * g.Ho * g.Wo, g)


cdef void _cw_backward(const floating *dy, const floating *x, const floating *w,
                       floating *dx, floating *dw, Geom g, int nt) noexcept nogil:
    cdef Py_ssize_t nc, t, K = g.kh * g.kw
    for nc in prange(g.N * g.C, schedule="static", num_threads=nt):
        _cw_plane_dx(dy + nc * g.Ho * g.Wo, w + (nc % g.C) * K, dx + nc * g.H * g.W, g)
    for t in prange(g.C * K, schedule="static", num_threads=nt):
        dw[t] = _cw_tap_dw(x, dy, t // K, (t % K) // g.kw, t % g.kw, g)


def channelwise_conv2d_forward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray y, tuple geom,
                               int n_threads):
    """refnn.ops.channelwise.channelwise_conv2d_forward, direct.
    geom = (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo), every size >= 1."""
    cdef Geom g = _geom(geom)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            _cw_forward[float](<const float *>cnp.PyArray_DATA(x),
                               <const float *>cnp.PyArray_DATA(w),
                               <float *>cnp.PyArray_DATA(y), g, n_threads)
    else:
        with nogil:
            _cw_forward[double](<const double *>cnp.PyArray_DATA(x),
                                <const double *>cnp.PyArray_DATA(w),
                                <double *>cnp.PyArray_DATA(y), g, n_threads)


def channelwise_conv2d_backward(cnp.ndarray dy, cnp.ndarray x, cnp.ndarray w,
                                cnp.ndarray dx, cnp.ndarray dw, tuple geom, int n_threads):
    """refnn.ops.channelwise.channelwise_conv2d_backward: dx per plane, dw per tap.
    Same geom as channelwise_conv2d_forward."""
    cdef Geom g = _geom(geom)
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            _cw_backward[float](<const float *>cnp.PyArray_DATA(dy),
                                <const float *>cnp.PyArray_DATA(x),
                                <const float *>cnp.PyArray_DATA(w),
                                <float *>cnp.PyArray_DATA(dx),
                                <float *>cnp.PyArray_DATA(dw), g, n_threads)
    else:
        with nogil:
            _cw_backward[double](<const double *>cnp.PyArray_DATA(dy),
                                 <const double *>cnp.PyArray_DATA(x),
                                 <const double *>cnp.PyArray_DATA(w),
                                 <double *>cnp.PyArray_DATA(dx),
                                 <double *>cnp.PyArray_DATA(dw), g, n_threads)


# ----------------------------------------------------------------------- time_conv
cdef struct TGeom:
    Py_ssize_t T, N, C, K, s, pf, d, To


cdef TGeom _tgeom(tuple g):
    """(T, N, C, K, stride, padding_front, dilation, To) -> TGeom."""
    cdef TGeom r
    (r.T, r.N, r.C, r.K, r.s, r.pf, r.d, r.To) = g
    return r


cdef void _time_im2col(const floating *x, floating *cols, TGeom g, int nt) noexcept nogil:
    """cols[t*N + n, k*C + c] = xpad[t*s + k*d, n, c] (0 in the padding); OpenMP over t."""
    cdef Py_ssize_t t, n, k, c, u, KC = g.K * g.C
    cdef floating *row
    for t in prange(g.To, schedule="static", num_threads=nt):
        for n in range(g.N):
            row = cols + (t * g.N + n) * KC
            for k in range(g.K):
                u = t * g.s + k * g.d - g.pf
                if 0 <= u < g.T:
                    for c in range(g.C):
                        row[k * g.C + c] = x[(u * g.N + n) * g.C + c]
                else:
                    for c in range(g.C):
                        row[k * g.C + c] = 0


cdef void _time_col2im(const floating *dcols, floating *dx, TGeom g, int nt) noexcept nogil:
    """dx[u, n, c] = sum of dcols[t*N + n, k*C + c] over t*s + k*d - pf = u
    (gathered per input step u: no two threads write one entry); OpenMP over u."""
    cdef Py_ssize_t u, n, k, c, tt, KC = g.K * g.C
    cdef floating *out
    cdef const floating *src
    for u in prange(g.T, schedule="static", num_threads=nt):
        for n in range(g.N):
            out = dx + (u * g.N + n) * g.C
            for c in range(g.C):
                out[c] = 0
            for k in range(g.K):
                tt = u + g.pf - k * g.d               # = t * s
                if tt < 0 or tt % g.s != 0 or tt // g.s >= g.To:
                    continue
                src = dcols + ((tt // g.s) * g.N + n) * KC + k * g.C
                for c in range(g.C):
                    out[c] = out[c] + src[c]


cdef void _tc_forward(const floating *x, const floating *w, floating *cols, floating *y,
                      Py_ssize_t F, TGeom g, int nt) noexcept nogil:
    cdef Py_ssize_t M = g.To * g.N, KC = g.K * g.C
    _time_im2col(x, cols, g, nt)
    # y (M, F) = cols (M, KC) @ w^T (KC, F)
    gemm_rowmajor(False, True, <int>M, <int>F, <int>KC, <floating>1, cols, <int>KC,
                  w, <int>KC, <floating>0, y, <int>F)


cdef void _tc_backward(const floating *dy, const floating *w, const floating *cols,
                       floating *dcols, floating *dx, floating *dw, Py_ssize_t F, TGeom g,
                       int nt) noexcept nogil:
    cdef Py_ssize_t M = g.To * g.N, KC = g.K * g.C
    # dw (F, KC) = dy^T (F, M) @ cols (M, KC)
    gemm_rowmajor(True, False, <int>F, <int>KC, <int>M, <floating>1, dy, <int>F,
                  cols, <int>KC, <floating>0, dw, <int>KC)
    # dcols (M, KC) = dy (M, F) @ w (F, KC)
    gemm_rowmajor(False, False, <int>M, <int>KC, <int>F, <floating>1, dy, <int>F,
                  w, <int>KC, <floating>0, dcols, <int>KC)
    _time_col2im(dcols, dx, g, nt)


def time_conv_forward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray y,
                      tuple geom, int n_threads):
    """refnn.ops.channelwise.time_conv_forward: cols = time_im2col(x), y = cols @ w^T.
    geom = (T, N, C, K, stride, padding_front, dilation, To), N and To >= 1."""
    cdef TGeom g = _tgeom(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            _tc_forward[float](<const float *>cnp.PyArray_DATA(x),
                               <const float *>cnp.PyArray_DATA(w),
                               <float *>cnp.PyArray_DATA(cols),
                               <float *>cnp.PyArray_DATA(y), F, g, n_threads)
    else:
        with nogil:
            _tc_forward[double](<const double *>cnp.PyArray_DATA(x),
                                <const double *>cnp.PyArray_DATA(w),
                                <double *>cnp.PyArray_DATA(cols),
                                <double *>cnp.PyArray_DATA(y), F, g, n_threads)


def time_conv_backward(cnp.ndarray dy, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray dcols,
                       cnp.ndarray dx, cnp.ndarray dw, tuple geom, int n_threads):
    """refnn.ops.channelwise.time_conv_backward: dw = dy^T @ cols,
    dx = time_col2im(dy @ w). Same geom as time_conv_forward."""
    cdef TGeom g = _tgeom(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            _tc_backward[float](<const float *>cnp.PyArray_DATA(dy),
                                <const float *>cnp.PyArray_DATA(w),
                                <const float *>cnp.PyArray_DATA(cols),
                                <float *>cnp.PyArray_DATA(dcols),
                                <float *>cnp.PyArray_DATA(dx),
                                <float *>cnp.PyArray_DATA(dw), F, g, n_threads)
    else:
        with nogil:
            _tc_backward[double](<const double *>cnp.PyArray_DATA(dy),
                                 <const double *>cnp.PyArray_DATA(w),
                                 <const double *>cnp.PyArray_DATA(cols),
                                 <double *>cnp.PyArray_DATA(dcols),
                                 <double *>cnp.PyArray_DATA(dx),
                                 <double *>cnp.PyArray_DATA(dw), F, g, n_threads)
