# cython: language_level=3
"""Conv-family kernels: im2col / col2im (2-D) and vol2col / col2vol (3-D) with OpenMP
over the batch, GEMM through BLAS. conv3d and the transposed convolutions (2-D as 3-D
with D = kd = 1) run on the 3-D pair.

No validation here: refnn/backends/cpu/conv.py has checked ranks, shapes, dtypes,
contiguity and the geometry (refnn.ops.conv.conv2d_geometry) and allocated every
output. Padding is implicit: taps that fall into it read (im2col) or drop (col2im) zeros.

Layouts (all C-contiguous): x (N, C, H, W), w (F, C*kh*kw), y (N, F, Ho*Wo). conv2d
lays the whole batch's columns side by side, cols (C*kh*kw, N*Ho*Wo), so that each
product is ONE wide GEMM (per-image GEMMs of 64 rows keep BLAS's threads waiting);
the 3-D kernels keep one (K, P) matrix per image, cols (N, K, P).
"""
cimport numpy as cnp
from cython.parallel cimport prange

from refnn._ext._blas cimport gemm_rowmajor

cnp.import_array()

ctypedef fused floating:
    float
    double


cdef struct Geom:
    Py_ssize_t N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo


cdef Geom _geom(tuple g):
    """(N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo) -> Geom."""
    cdef Geom r
    (r.N, r.C, r.H, r.W, r.kh, r.kw, r.sh, r.sw, r.ph, r.pw, r.dh, r.dw, r.Ho, r.Wo) = g
    return r


cdef inline void _valid_j(Py_ssize_t off, Py_ssize_t sw, Py_ssize_t W, Py_ssize_t Wo,
                          Py_ssize_t *j0, Py_ssize_t *j1) noexcept nogil:
    """The output columns j in [j0, j1) whose tap v = j*sw + off falls inside 0 <= v < W."""
    cdef Py_ssize_t lo = 0 if off >= 0 else (-off + sw - 1) // sw
    cdef Py_ssize_t hi = 0 if W - 1 - off < 0 else (W - 1 - off) // sw + 1
    if hi > Wo:
        hi = Wo
    if hi < lo:
        hi = lo
    if lo > Wo:
        lo = hi = Wo
    j0[0] = lo
    j1[0] = hi


cdef inline void _gather_row(const floating *src, floating *dst, Py_ssize_t sw,
                             Py_ssize_t Wo, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """One output row of im2col / vol2col: dst[j] = src[j*sw] for j in [j0, j1) (a strided
    copy, contiguous for stride 1), 0 for the rest of [0, Wo) (j0 = j1 = 0: all zeros)."""
    cdef Py_ssize_t j
    for j in range(j0):
        dst[j] = 0
    if sw == 1:
        for j in range(j0, j1):
            dst[j] = src[j]
    else:
        for j in range(j0, j1):
            dst[j] = src[j * sw]
    for j in range(j1, Wo):
        dst[j] = 0


cdef inline void _scatter_add_row(const floating *src, floating *dst, Py_ssize_t sw,
                                  Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """One row of col2im / col2vol: dst[j*sw] += src[j] for j in [j0, j1)."""
    cdef Py_ssize_t j
    if sw == 1:
        for j in range(j0, j1):
            dst[j] += src[j]
    else:
        for j in range(j0, j1):
            dst[j * sw] += src[j]


cdef void _im2col_one(const floating *x, floating *cols, Geom g, Py_ssize_t ld) noexcept nogil:
    """cols[((c*kh + p)*kw + q) * ld + i*Wo + j] = xpad[c, i*sh + p*dh, j*sw + q*dw]
    (one image; ld = the distance between two rows of cols: Ho*Wo for an image's own
    matrix, N*Ho*Wo for the batch-wide one). The in-bounds run of each output row is a
    strided copy (contiguous for stride 1), the rest zeros."""
    cdef Py_ssize_t c, p, q, i, h, j0, j1, off
    cdef floating *dst
    for c in range(g.C):
        for p in range(g.kh):
            for q in range(g.kw):
                off = q * g.dw - g.pw
                _valid_j(off, g.sw, g.W, g.Wo, &j0, &j1)
                for i in range(g.Ho):
                    dst = cols + ((c * g.kh + p) * g.kw + q) * ld + i * g.Wo
                    h = i * g.sh + p * g.dh - g.ph
                    if h < 0 or h >= g.H:
                        _gather_row(x, dst, g.sw, g.Wo, 0, 0)
                    else:
                        _gather_row(x + (c * g.H + h) * g.W + off, dst, g.sw, g.Wo, j0, j1)


cdef void _col2im_one(const floating *cols, floating *dx, Geom g, Py_ssize_t ld) noexcept nogil:
    """dx[c, h, v] = sum of cols[((c*kh + p)*kw + q) * ld + i*Wo + j] over the taps with
    i*sh + p*dh - ph = h and j*sw + q*dw - pw = v (one image; padding taps dropped)."""
    cdef Py_ssize_t c, p, q, i, h, j0, j1, off
    for i in range(g.C * g.H * g.W):
        dx[i] = 0
    for c in range(g.C):
        for p in range(g.kh):
            for q in range(g.kw):
                off = q * g.dw - g.pw
                _valid_j(off, g.sw, g.W, g.Wo, &j0, &j1)
                for i in range(g.Ho):
                    h = i * g.sh + p * g.dh - g.ph
                    if h < 0 or h >= g.H:
                        continue
                    _scatter_add_row(cols + ((c * g.kh + p) * g.kw + q) * ld + i * g.Wo,
                                     dx + (c * g.H + h) * g.W + off, g.sw, j0, j1)


cdef inline void _copy(const floating *src, floating *dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = src[i]


cdef void _forward(const floating *x, const floating *w, floating *cols, floating *yw,
                   floating *y, Py_ssize_t F, Geom g, int nt) noexcept nogil:
    """cols (K, N*P) = the batch's im2col side by side; yw (F, N*P) = w @ cols in ONE
    GEMM; y[n] (F, P) = yw[:, n*P:(n+1)*P] (a batch transpose)."""
    cdef Py_ssize_t n, f
    cdef Py_ssize_t K = g.C * g.kh * g.kw, P = g.Ho * g.Wo, X = g.C * g.H * g.W
    cdef Py_ssize_t NP = g.N * P
    for n in prange(g.N, schedule="static", num_threads=nt):
        _im2col_one(x + n * X, cols + n * P, g, NP)
    gemm_rowmajor(False, False, <int>F, <int>NP, <int>K, <floating>1, w, <int>K,
                  cols, <int>NP, <floating>0, yw, <int>NP)
    for n in prange(g.N, schedule="static", num_threads=nt):
        for f in range(F):
            _copy(yw + f * NP + n * P, y + (n * F + f) * P, P)


cdef void _backward(const floating *dy, const floating *w, const floating *cols,
                    floating *dyw, floating *dcols, floating *dx, floating *dw,
                    Py_ssize_t F, Geom g, int nt, bint need_dx) noexcept nogil:
    """dyw (F, N*P) = dy side by side; dw (F, K) = dyw @ cols^T (one GEMM over the whole
    batch); if need_dx: dcols (K, N*P) = w^T @ dyw (one GEMM), dx[n] = col2im(dcols)."""
    cdef Py_ssize_t n, f
    cdef Py_ssize_t K = g.C * g.kh * g.kw, P = g.Ho * g.Wo, X = g.C * g.H * g.W
    cdef Py_ssize_t NP = g.N * P
    for n in prange(g.N, schedule="static", num_threads=nt):
        for f in range(F):
            _copy(dy + (n * F + f) * P, dyw + f * NP + n * P, P)
    gemm_rowmajor(False, True, <int>F, <int>K, <int>NP, <floating>1, dyw, <int>NP,
                  cols, <int>NP, <floating>0, dw, <int>K)
    if not need_dx:
        return
    gemm_rowmajor(True, False, <int>K, <int>NP, <int>F, <floating>1, w, <int>K,
                  dyw, <int>NP, <floating>0, dcols, <int>NP)
    for n in prange(g.N, schedule="static", num_threads=nt):
        _col2im_one(dcols + n * P, dx + n * X, g, NP)


def conv2d_forward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray yw,
                   cnp.ndarray y, tuple geom, int n_threads):
    """refnn.ops.conv.conv2d_forward: cols (K, N*P) = im2col(x) of the whole batch,
    yw (F, N*P) = w @ cols, y (N, F, P) its batch transpose.
    geom = (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo), every size >= 1."""
    cdef Geom g = _geom(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    cdef int nt = n_threads if g.N > 1 else 1
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            _forward[float](<const float *>cnp.PyArray_DATA(x),
                            <const float *>cnp.PyArray_DATA(w),
                            <float *>cnp.PyArray_DATA(cols), <float *>cnp.PyArray_DATA(yw),
                            <float *>cnp.PyArray_DATA(y), F, g, nt)
    else:
        with nogil:
            _forward[double](<const double *>cnp.PyArray_DATA(x),
                             <const double *>cnp.PyArray_DATA(w),
                             <double *>cnp.PyArray_DATA(cols),
                             <double *>cnp.PyArray_DATA(yw),
                             <double *>cnp.PyArray_DATA(y), F, g, nt)


def conv2d_backward(cnp.ndarray dy, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray dyw,
                    cnp.ndarray dcols, cnp.ndarray dx, cnp.ndarray dw, tuple geom,
                    int n_threads, bint need_dx=True):
    """refnn.ops.conv.conv2d_backward: dyw (F, N*P) = dy side by side,
    dw = dyw @ cols^T, dx = col2im(w^T @ dyw) (dcols and dx untouched when not need_dx).
    Same geom and cols (K, N*P) as conv2d_forward."""
    cdef Geom g = _geom(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    cdef int nt = n_threads if g.N > 1 else 1
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            _backward[float](<const float *>cnp.PyArray_DATA(dy),
                             <const float *>cnp.PyArray_DATA(w),
                             <const float *>cnp.PyArray_DATA(cols),
                             <float *>cnp.PyArray_DATA(dyw),
                             <float *>cnp.PyArray_DATA(dcols), <float *>cnp.PyArray_DATA(dx),
                             <float *>cnp.PyArray_DATA(dw), F, g, nt, need_dx)
    else:
        with nogil:
            _backward[double](<const double *>cnp.PyArray_DATA(dy),
                              <const double *>cnp.PyArray_DATA(w),
                              <const double *>cnp.PyArray_DATA(cols),
                              <double *>cnp.PyArray_DATA(dyw),
                              <double *>cnp.PyArray_DATA(dcols),
                              <double *>cnp.PyArray_DATA(dx),
                              <double *>cnp.PyArray_DATA(dw), F, g, nt, need_dx)


# ------------------------------------------------------------------------------ 3-D
cdef struct Geom3:
    Py_ssize_t N, C, D, H, W, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, Do, Ho, Wo


cdef Geom3 _geom3(tuple g):
    """(N, C, D, H, W, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw, Do, Ho, Wo) -> Geom3.
    C, D, H, W are the convolution's INPUT (the transposed convolution's output)."""
    cdef Geom3 r
    (r.N, r.C, r.D, r.H, r.W, r.kd, r.kh, r.kw, r.sd, r.sh, r.sw, r.pd, r.ph, r.pw,
     r.dd, r.dh, r.dw, r.Do, r.Ho, r.Wo) = g
    return r


cdef void _vol2col_one(const floating *x, floating *cols, Geom3 g) noexcept nogil:
    """cols[((c*kd + o)*kh + p)*kw + q, (a*Ho + i)*Wo + j] =
    xpad[c, a*sd + o*dd, i*sh + p*dh, j*sw + q*dw] (one image; 0 in the padding);
    each output row through _gather_row, as in im2col."""
    cdef Py_ssize_t c, o, p, q, a, i, z, h, j0, j1, off
    cdef floating *dst = cols
    for c in range(g.C):
        for o in range(g.kd):
            for p in range(g.kh):
                for q in range(g.kw):
                    off = q * g.dw - g.pw
                    _valid_j(off, g.sw, g.W, g.Wo, &j0, &j1)
                    for a in range(g.Do):
                        z = a * g.sd + o * g.dd - g.pd
                        for i in range(g.Ho):
                            h = i * g.sh + p * g.dh - g.ph
                            if 0 <= z < g.D and 0 <= h < g.H:
                                _gather_row(x + ((c * g.D + z) * g.H + h) * g.W + off, dst,
                                            g.sw, g.Wo, j0, j1)
                            else:
                                _gather_row(x, dst, g.sw, g.Wo, 0, 0)
                            dst += g.Wo


cdef void _col2vol_one(const floating *cols, floating *dx, Geom3 g) noexcept nogil:
    """dx[c, z, h, v] = sum of the cols entries vol2col copied from xpad[c, z+pd, h+ph,
    v+pw] (one image; taps in the padding dropped); rows through _scatter_add_row."""
    cdef Py_ssize_t c, o, p, q, a, i, z, h, j0, j1, off
    cdef Py_ssize_t P = g.Do * g.Ho * g.Wo
    cdef const floating *src
    for i in range(g.C * g.D * g.H * g.W):
        dx[i] = 0
    for c in range(g.C):
        for o in range(g.kd):
            for p in range(g.kh):
                for q in range(g.kw):
                    off = q * g.dw - g.pw
                    _valid_j(off, g.sw, g.W, g.Wo, &j0, &j1)
                    src = cols + (((c * g.kd + o) * g.kh + p) * g.kw + q) * P
                    for a in range(g.Do):
                        z = a * g.sd + o * g.dd - g.pd
                        if z < 0 or z >= g.D:
                            continue
                        for i in range(g.Ho):
                            h = i * g.sh + p * g.dh - g.ph
                            if h < 0 or h >= g.H:
                                continue
                            _scatter_add_row(src + (a * g.Ho + i) * g.Wo,
                                             dx + ((c * g.D + z) * g.H + h) * g.W + off,
                                             g.sw, j0, j1)


cdef void _fwd3(const floating *x, const floating *w, floating *cols, floating *y,
                Py_ssize_t F, Geom3 g, int nt) noexcept nogil:
    """conv3d: cols[n] = vol2col(x[n]); y[n] (F, P) = w (F, K) @ cols[n] (K, P)."""
    cdef Py_ssize_t n
    cdef Py_ssize_t K = g.C * g.kd * g.kh * g.kw, P = g.Do * g.Ho * g.Wo
    cdef Py_ssize_t X = g.C * g.D * g.H * g.W
    for n in prange(g.N, schedule="static", num_threads=nt):
        _vol2col_one(x + n * X, cols + n * K * P, g)
    for n in range(g.N):
        gemm_rowmajor(False, False, <int>F, <int>P, <int>K, <floating>1, w, <int>K,
                      cols + n * K * P, <int>P, <floating>0, y + n * F * P, <int>P)


cdef void _data_adjoint(const floating *dy, const floating *w, floating *dcols,
                        floating *dx, Py_ssize_t F, Geom3 g, int nt) noexcept nogil:
    """dcols[n] (K, P) = w^T (K, F) @ dy[n] (F, P); dx[n] = col2vol(dcols[n]):
    conv3d's backward-data, which is also the transposed convolution's forward."""
    cdef Py_ssize_t n
    cdef Py_ssize_t K = g.C * g.kd * g.kh * g.kw, P = g.Do * g.Ho * g.Wo
    cdef Py_ssize_t X = g.C * g.D * g.H * g.W
    for n in range(g.N):
        gemm_rowmajor(True, False, <int>K, <int>P, <int>F, <floating>1, w, <int>K,
                      dy + n * F * P, <int>P, <floating>0, dcols + n * K * P, <int>P)
    for n in prange(g.N, schedule="static", num_threads=nt):
        _col2vol_one(dcols + n * K * P, dx + n * X, g)


cdef void _filter_grad(const floating *dy, const floating *cols, floating *dw,
                       Py_ssize_t F, Geom3 g) noexcept nogil:
    """dw (F, K) = sum_n dy[n] (F, P) @ cols[n]^T (P, K)."""
    cdef Py_ssize_t n
    cdef Py_ssize_t K = g.C * g.kd * g.kh * g.kw, P = g.Do * g.Ho * g.Wo
    for n in range(g.N):
        gemm_rowmajor(False, True, <int>F, <int>K, <int>P, <floating>1, dy + n * F * P,
                      <int>P, cols + n * K * P, <int>P, <floating>(1 if n else 0),
                      dw, <int>K)


cdef void _bwd3(const floating *dy, const floating *w, const floating *cols,
                floating *dcols, floating *dx, floating *dw, Py_ssize_t F, Geom3 g,
                int nt) noexcept nogil:
    _filter_grad(dy, cols, dw, F, g)
    _data_adjoint(dy, w, dcols, dx, F, g, nt)


cdef void _tfwd3(const floating *x, const floating *w, floating *cols, floating *y,
                 Py_ssize_t F, Geom3 g, int nt) noexcept nogil:
    _data_adjoint(x, w, cols, y, F, g, nt)


cdef void _tbwd3(const floating *dy, const floating *x, const floating *w,
                 floating *dcols, floating *dx, floating *dw, Py_ssize_t F, Geom3 g,
                 int nt) noexcept nogil:
    """Transposed backward: dcols = vol2col(dy), dx[n] = w @ dcols[n] (conv3d forward),
    dw = sum_n x[n] @ dcols[n]^T."""
    _fwd3(dy, w, dcols, dx, F, g, nt)
    _filter_grad(x, dcols, dw, F, g)


def conv3d_forward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray y,
                   tuple geom, int n_threads):
    """refnn.ops.conv.conv3d_forward: cols = vol2col(x), y[n] = w @ cols[n].
    x (N, C, D, H, W), w (F, C*kd*kh*kw), cols (N, K, P), y (N, F, P); geom: see _geom3."""
    cdef Geom3 g = _geom3(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    cdef int nt = n_threads if g.N > 1 else 1
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            _fwd3[float](<const float *>cnp.PyArray_DATA(x), <const float *>cnp.PyArray_DATA(w),
                         <float *>cnp.PyArray_DATA(cols), <float *>cnp.PyArray_DATA(y),
                         F, g, nt)
    else:
        with nogil:
            _fwd3[double](<const double *>cnp.PyArray_DATA(x),
                          <const double *>cnp.PyArray_DATA(w),
                          <double *>cnp.PyArray_DATA(cols), <double *>cnp.PyArray_DATA(y),
                          F, g, nt)


def conv3d_backward(cnp.ndarray dy, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray dcols,
                    cnp.ndarray dx, cnp.ndarray dw, tuple geom, int n_threads):
    """refnn.ops.conv.conv3d_backward: dw = sum_n dy[n] @ cols[n]^T,
    dx = col2vol(w^T @ dy[n]). Same geom as conv3d_forward."""
    cdef Geom3 g = _geom3(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    cdef int nt = n_threads if g.N > 1 else 1
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            _bwd3[float](<const float *>cnp.PyArray_DATA(dy),
                         <const float *>cnp.PyArray_DATA(w),
                         <const float *>cnp.PyArray_DATA(cols),
                         <float *>cnp.PyArray_DATA(dcols), <float *>cnp.PyArray_DATA(dx),
                         <float *>cnp.PyArray_DATA(dw), F, g, nt)
    else:
        with nogil:
            _bwd3[double](<const double *>cnp.PyArray_DATA(dy),
                          <const double *>cnp.PyArray_DATA(w),
                          <const double *>cnp.PyArray_DATA(cols),
                          <double *>cnp.PyArray_DATA(dcols), <double *>cnp.PyArray_DATA(dx),
                          <double *>cnp.PyArray_DATA(dw), F, g, nt)


def conv_transpose_forward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray y,
                           tuple geom, int n_threads):
    """refnn.ops.conv.conv_transpose{2,3}d_forward: cols[n] = w^T @ x[n],
    y[n] = col2vol(cols[n]). x (N, F, P), w (F, K), cols (N, K, P), y (N, C, D, H, W);
    geom describes the convolution y -> x (2-D: D = kd = sd = dd = Do = 1, pd = 0)."""
    cdef Geom3 g = _geom3(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    cdef int nt = n_threads if g.N > 1 else 1
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            _tfwd3[float](<const float *>cnp.PyArray_DATA(x),
                          <const float *>cnp.PyArray_DATA(w),
                          <float *>cnp.PyArray_DATA(cols), <float *>cnp.PyArray_DATA(y),
                          F, g, nt)
    else:
        with nogil:
            _tfwd3[double](<const double *>cnp.PyArray_DATA(x),
                           <const double *>cnp.PyArray_DATA(w),
                           <double *>cnp.PyArray_DATA(cols), <double *>cnp.PyArray_DATA(y),
                           F, g, nt)


def conv_transpose_backward(cnp.ndarray dy, cnp.ndarray x, cnp.ndarray w,
                            cnp.ndarray dcols, cnp.ndarray dx, cnp.ndarray dw, tuple geom,
                            int n_threads):
    """refnn.ops.conv.conv_transpose{2,3}d_backward: dcols = vol2col(dy),
    dx[n] = w @ dcols[n], dw = sum_n x[n] @ dcols[n]^T. Same geom as the forward."""
    cdef Geom3 g = _geom3(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    cdef int nt = n_threads if g.N > 1 else 1
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            _tbwd3[float](<const float *>cnp.PyArray_DATA(dy),
                          <const float *>cnp.PyArray_DATA(x),
                          <const float *>cnp.PyArray_DATA(w),
                          <float *>cnp.PyArray_DATA(dcols), <float *>cnp.PyArray_DATA(dx),
                          <float *>cnp.PyArray_DATA(dw), F, g, nt)
    else:
        with nogil:
            _tbwd3[double](<const double *>cnp.PyArray_DATA(dy),
                           <const double *>cnp.PyArray_DATA(x),
                           <const double *>cnp.PyArray_DATA(w),
                           <double *>cnp.PyArray_DATA(dcols), <double *>cnp.PyArray_DATA(dx),
                           <double *>cnp.PyArray_DATA(dw), F, g, nt)
