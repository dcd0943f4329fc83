# cython: language_level=3
"""Pooling kernels (NCHW); each mirrors refnn.ops.pool.<name>_forward/backward.

No validation here: refnn/backends/cpu/pool.py has checked the geometry, shapes, dtypes
and contiguity and allocated the outputs. Images arrive as (P, H, W) with P = N * C
planes; OpenMP splits the planes (batch x channels) across threads, and each plane is
reduced by one thread, so the backward scatters never race.
Windows are scanned in row-major order with a strict ``>``: ties go to the first
maximum, as in the reference.
"""
from cython.parallel cimport prange
from libc.math cimport INFINITY

ctypedef fused floating:
    float
    double


def max_pool2d_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int[:, :, ::1] arg,
        int kh, int kw, int sh, int sw, int ph, int pw, int n_threads):
    """y[p, a, b] = max of window (a, b); arg[p, a, b] = h W + w of its first maximum"""
    cdef Py_ssize_t p, a, b, i, j, h, w
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = y.shape[1], Wo = y.shape[2]
    cdef floating best
    cdef int where
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for a in range(Ho):
            for b in range(Wo):
                best = -INFINITY
                where = -1
                for i in range(kh):
                    h = a * sh + i - ph
                    if h < 0 or h >= H:
                        continue
                    for j in range(kw):
                        w = b * sw + j - pw
                        if w < 0 or w >= W:
                            continue
                        if where < 0 or x[p, h, w] > best:
                            best = x[p, h, w]
                            where = <int>(h * W + w)
                y[p, a, b] = best
                arg[p, a, b] = where


def max_pool2d_backward(const floating[:, :, ::1] dy, const int[:, :, ::1] arg,
        floating[:, ::1] dx, int n_threads):
    """dx[p, arg[p, a, b]] += dy[p, a, b] (dx is (P, H W), zeroed by the caller)"""
    cdef Py_ssize_t p, a, b
    cdef Py_ssize_t P = dy.shape[0], Ho = dy.shape[1], Wo = dy.shape[2]
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for a in range(Ho):
            for b in range(Wo):
                dx[p, arg[p, a, b]] += dy[p, a, b]


def avg_pool2d_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
        const double[:, ::1] count, int kh, int kw, int sh, int sw, int ph, int pw,
        int n_threads):
    """y[p, a, b] = (sum of the real pixels of window (a, b)) / count[a, b]"""
    cdef Py_ssize_t p, a, b, i, j, h, w
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Ho = y.shape[1], Wo = y.shape[2]
    cdef double total
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for a in range(Ho):
            for b in range(Wo):
                total = 0
                for i in range(kh):
                    h = a * sh + i - ph
                    if h < 0 or h >= H:
                        continue
                    for j in range(kw):
                        w = b * sw + j - pw
                        if w >= 0 and w < W:
                            total = total + x[p, h, w]
                y[p, a, b] = <floating>(total / count[a, b])


def avg_pool2d_backward(const floating[:, :, ::1] dy, const double[:, ::1] count,
        floating[:, :, ::1] dx, int kh, int kw, int sh, int sw, int ph, int pw,
        int n_threads):
    """dx[p, h, w] += dy[p, a, b] / count[a, b] for every real pixel (h, w) of window
    (a, b) (dx zeroed by the caller)"""
    cdef Py_ssize_t p, a, b, i, j, h, w
    cdef Py_ssize_t P = dy.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef Py_ssize_t Ho = dy.shape[1], Wo = dy.shape[2]
    cdef floating g
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for a in range(Ho):
            for b in range(Wo):
                g = <floating>(dy[p, a, b] / count[a, b])
                for i in range(kh):
                    h = a * sh + i - ph
                    if h < 0 or h >= H:
                        continue
                    for j in range(kw):
                        w = b * sw + j - pw
                        if w >= 0 and w < W:
                            dx[p, h, w] += g


def global_max_pool_forward(const floating[:, ::1] x, floating[::1] y, int[::1] arg,
        int n_threads):
    """y[p] = max_k x[p, k]; arg[p] = the first k reaching it"""
    cdef Py_ssize_t p, k, P = x.shape[0], K = x.shape[1]
    cdef floating best
    cdef int where
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        best = x[p, 0]
        where = 0
        for k in range(1, K):
            if x[p, k] > best:
                best = x[p, k]
                where = <int>k
        y[p] = best
        arg[p] = where


def global_max_pool_backward(const floating[::1] dy, const int[::1] arg,
        floating[:, ::1] dx, int n_threads):
    """dx[p, arg[p]] = dy[p] (dx zeroed by the caller)"""
    cdef Py_ssize_t p, P = dy.shape[0]
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        dx[p, arg[p]] = dy[p]


def global_sum_pool_forward(const floating[:, ::1] x, floating[::1] y, double scale,
        int n_threads):
    """y[p] = scale * sum_k x[p, k] (scale = 1 for sum, 1 / (H W) for mean)"""
    cdef Py_ssize_t p, k, P = x.shape[0], K = x.shape[1]
    cdef double total
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        total = 0
        for k in range(K):
            total = total + x[p, k]
        y[p] = <floating>(total * scale)


def global_sum_pool_backward(const floating[::1] dy, floating[:, ::1] dx, double scale,
        int n_threads):
    """dx[p, k] = scale * dy[p]"""
    cdef Py_ssize_t p, k, P = dx.shape[0], K = dx.shape[1]
    cdef floating g
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        g = <floating>(dy[p] * scale)
        for k in range(K):
            dx[p, k] = g
