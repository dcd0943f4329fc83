# cython: language_level=3
"""Conv-family kernels: im2col / col2im (2-D) and vol2col / col2vol (3-D) with OpenMP
over the batch, GEMM through BLAS. conv3d and the transposed convolutions (2-D as 3-D
with D = kd = 1) run on the 3-D pair.

No validation here: refnn/backends/cpu/conv.py has checked ranks, shapes, dtypes,
contiguity and the geometry (refnn.ops.conv.conv2d_geometry) and allocated every
output. Padding is implicit: taps that fall into it read (im2col) or drop (col2im) zeros.

Layouts (all C-contiguous): x (N, C, H, W), w (F, C*kh*kw), cols (N, C*kh*kw, Ho*Wo),
y (N, F, Ho*Wo).
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


cdef void _im2col_one(const floating *x, floating *cols, Geom g) noexcept nogil:
    """cols[(c*kh + p)*kw + q, i*Wo + j] = xpad[c, i*sh + p*dh, j*sw + q*dw] (one image)."""
    cdef Py_ssize_t c, p, q, i, j, h, v, row
    for c in range(g.C):
        for p in range(g.kh):
            for q in range(g.kw):
                row = ((c * g.kh + p) * g.kw + q) * g.Ho * g.Wo
                for i in range(g.Ho):
                    h = i * g.sh + p * g.dh - g.ph
                    for j in range(g.Wo):
                        v = j * g.sw + q * g.dw - g.pw
                        if 0 <= h < g.H and 0 <= v < g.W:
                            cols[row + i * g.Wo + j] = x[(c * g.H + h) * g.W + v]
                        else:
                            cols[row + i * g.Wo + j] = 0


cdef void _col2im_one(const floating *cols, floating *dx, Geom g) noexcept nogil:
    """dx[c, h, v] = sum of cols[(c*kh + p)*kw + q, i*Wo + j] over the taps with
    i*sh + p*dh - ph = h and j*sw + q*dw - pw = v (one image; padding taps dropped)."""
    cdef Py_ssize_t c, p, q, i, j, h, v, row
    for i in range(g.C * g.H * g.W):
        dx[i] = 0
    for c in range(g.C):
        for p in range(g.kh):
            for q in range(g.kw):
                row = ((c * g.kh + p) * g.kw + q) * g.Ho * g.Wo
                for i in range(g.Ho):
                    h = i * g.sh + p * g.dh - g.ph
                    if h < 0 or h >= g.H:
                        continue
                    for j in range(g.Wo):
                        v = j * g.sw + q * g.dw - g.pw
                        if 0 <= v < g.W:
                            dx[(c * g.H + h) * g.W + v] += cols[row + i * g.Wo + j]


cdef void _forward(const floating *x, const floating *w, floating *cols, floating *y,
                   Py_ssize_t F, Geom g, int nt) noexcept nogil:
    cdef Py_ssize_t n
    cdef Py_ssize_t K = g.C * g.kh * g.kw, P = g.Ho * g.Wo, X = g.C * g.H * g.W
    for n in prange(g.N, schedule="static", num_threads=nt):
        _im2col_one(x + n * X, cols + n * K * P, g)
    for n in range(g.N):            # y[n] (F, P) = w (F, K) @ cols[n] (K, P)
        gemm_rowmajor(False, False, <int>F, <int>P, <int>K, <floating>1, w, <int>K,
                      cols + n * K * P, <int>P, <floating>0, y + n * F * P, <int>P)


cdef void _backward(const floating *dy, const floating *w, const floating *cols,
                    floating *dcols, floating *dx, floating *dw, Py_ssize_t F, Geom g,
                    int nt, bint need_dx) noexcept nogil:
    cdef Py_ssize_t n
    cdef Py_ssize_t K = g.C * g.kh * g.kw, P = g.Ho * g.Wo, X = g.C * g.H * g.W
    for n in range(g.N):
        # dw (F, K) += dy[n] (F, P) @ cols[n]^T (P, K)
        gemm_rowmajor(False, True, <int>F, <int>K, <int>P, <floating>1, dy + n * F * P,
                      <int>P, cols + n * K * P, <int>P, <floating>(1 if n else 0),
                      dw, <int>K)
        if not need_dx:
            continue
        # dcols[n] (K, P) = w^T (K, F) @ dy[n] (F, P)
        gemm_rowmajor(True, False, <int>K, <int>P, <int>F, <floating>1, w, <int>K,
                      dy + n * F * P, <int>P, <floating>0, dcols + n * K * P, <int>P)
    if not need_dx:
        return
    for n in prange(g.N, schedule="static", num_threads=nt):
        _col2im_one(dcols + n * K * P, dx + n * X, g)


def conv2d_forward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray y,
                   tuple geom, int n_threads):
    """refnn.ops.conv.conv2d_forward: cols = im2col(x), y[n] = w @ cols[n].
    geom = (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo), every size >= 1."""
    cdef Geom g = _geom(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    cdef int nt = n_threads if g.N > 1 else 1
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
        with nogil:
            _forward[float](<const float *>cnp.PyArray_DATA(x),
                            <const float *>cnp.PyArray_DATA(w),
                            <float *>cnp.PyArray_DATA(cols), <float *>cnp.PyArray_DATA(y),
                            F, g, nt)
    else:
        with nogil:
            _forward[double](<const double *>cnp.PyArray_DATA(x),
                             <const double *>cnp.PyArray_DATA(w),
                             <double *>cnp.PyArray_DATA(cols),
                             <double *>cnp.PyArray_DATA(y), F, g, nt)


def conv2d_backward(cnp.ndarray dy, cnp.ndarray w, cnp.ndarray cols, cnp.ndarray dcols,
                    cnp.ndarray dx, cnp.ndarray dw, tuple geom, int n_threads,
                    bint need_dx=True):
    """refnn.ops.conv.conv2d_backward: dw = sum_n dy[n] @ cols[n]^T,
    dx = col2im(w^T @ dy[n]) (skipped, dcols/dx untouched, when not need_dx).
    Same geom as conv2d_forward."""
    cdef Geom g = _geom(geom)
    cdef Py_ssize_t F = cnp.PyArray_DIM(w, 0)
    cdef int nt = n_threads if g.N > 1 else 1
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            _backward[float](<const float *>cnp.PyArray_DATA(dy),
                             <const float *>cnp.PyArray_DATA(w),
                             <const float *>cnp.PyArray_DATA(cols),
                             <float *>cnp.PyArray_DATA(dcols), <float *>cnp.PyArray_DATA(dx),
                             <float *>cnp.PyArray_DATA(dw), F, g, nt, need_dx)
    else:
        with nogil:
            _backward[double](<const double *>cnp.PyArray_DATA(dy),
                              <const double *>cnp.PyArray_DATA(w),
                              <const double *>cnp.PyArray_DATA(cols),
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
    xpad[c, a*sd + o*dd, i*sh + p*dh, j*sw + q*dw] (one image; 0 in the padding)."""
    cdef Py_ssize_t c, o, p, q, a, i, j, z, h, v, row
    cdef Py_ssize_t P = g.Do * g.Ho * g.Wo
    for c in range(g.C):
        for o in range(g.kd):
            for p in range(g.kh):
                for q in range(g.kw):
                    row = (((c * g.kd + o) * g.kh + p) * g.kw + q) * P
                    for a in range(g.Do):
                        z = a * g.sd + o * g.dd - g.pd
                        for i in range(g.Ho):
                            h = i * g.sh + p * g.dh - g.ph
                            for j in range(g.Wo):
                                v = j * g.sw + q * g.dw - g.pw
                                if 0 <= z < g.D and 0 <= h < g.H and 0 <= v < g.W:
                                    cols[row] = x[((c * g.D + z) * g.H + h) * g.W + v]
                                else:
                                    cols[row] = 0
                                row += 1


cdef void _col2vol_one(const floating *cols, floating *dx, Geom3 g) noexcept nogil:
    """dx[c, z, h, v] = sum of the cols entries vol2col copied from xpad[c, z+pd, h+ph,
    v+pw] (one image; taps in the padding dropped)."""
    cdef Py_ssize_t c, o, p, q, a, i, j, z, h, v, row
    cdef Py_ssize_t P = g.Do * g.Ho * g.Wo
    for i in range(g.C * g.D * g.H * g.W):
        dx[i] = 0
    for c in range(g.C):
        for o in range(g.kd):
            for p in range(g.kh):
                for q in range(g.kw):
                    row = (((c * g.kd + o) * g.kh + p) * g.kw + q) * P
                    for a in range(g.Do):
                        z = a * g.sd + o * g.dd - g.pd
                        if z < 0 or z >= g.D:
                            continue
                        for i in range(g.Ho):
                            h = i * g.sh + p * g.dh - g.ph
                            if h < 0 or h >= g.H:
                                continue
                            for j in range(g.Wo):
                                v = j * g.sw + q * g.dw - g.pw
                                if 0 <= v < g.W:
                                    dx[((c * g.D + z) * g.H + h) * g.W + v] += \
                                        cols[row + (a * g.Ho + i) * g.Wo + j]


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
