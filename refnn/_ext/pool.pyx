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


# ------------------------------------------------------------------ 3-D pools
# Volumes arrive as (P, D, H, W); the window of output (a, b, e) starts at padded voxel
# (a sd, b sh, e sw) and is scanned in row-major order (depth, then rows, then columns).

def max_pool3d_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
        int[:, :, :, ::1] arg, int kd, int kh, int kw, int sd, int sh, int sw,
        int pd, int ph, int pw, int n_threads):
    """y[p, a, b, e] = max of window (a, b, e); arg = (d H + h) W + w of its first max"""
    cdef Py_ssize_t p, a, b, e, i, j, l, d, h, w
    cdef Py_ssize_t P = x.shape[0], D = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Do = y.shape[1], Ho = y.shape[2], Wo = y.shape[3]
    cdef floating best
    cdef int where
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for a in range(Do):
            for b in range(Ho):
                for e in range(Wo):
                    best = -INFINITY
                    where = -1
                    for i in range(kd):
                        d = a * sd + i - pd
                        if d < 0 or d >= D:
                            continue
                        for j in range(kh):
                            h = b * sh + j - ph
                            if h < 0 or h >= H:
                                continue
                            for l in range(kw):
                                w = e * sw + l - pw
                                if w < 0 or w >= W:
                                    continue
                                if where < 0 or x[p, d, h, w] > best:
                                    best = x[p, d, h, w]
                                    where = <int>((d * H + h) * W + w)
                    y[p, a, b, e] = best
                    arg[p, a, b, e] = where


def max_pool3d_backward(const floating[:, ::1] dy, const int[:, ::1] arg,
        floating[:, ::1] dx, int n_threads):
    """dx[p, arg[p, o]] += dy[p, o] (dy, arg flattened to (P, Do Ho Wo); dx (P, D H W),
    zeroed by the caller)"""
    cdef Py_ssize_t p, o, P = dy.shape[0], O = dy.shape[1]
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for o in range(O):
            dx[p, arg[p, o]] += dy[p, o]


def avg_pool3d_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
        const double[:, :, ::1] count, int kd, int kh, int kw, int sd, int sh, int sw,
        int pd, int ph, int pw, int n_threads):
    """y[p, a, b, e] = (sum of the real voxels of window (a, b, e)) / count[a, b, e]"""
    cdef Py_ssize_t p, a, b, e, i, j, l, d, h, w
    cdef Py_ssize_t P = x.shape[0], D = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Do = y.shape[1], Ho = y.shape[2], Wo = y.shape[3]
    cdef double total
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for a in range(Do):
            for b in range(Ho):
                for e in range(Wo):
                    total = 0
                    for i in range(kd):
                        d = a * sd + i - pd
                        if d < 0 or d >= D:
                            continue
                        for j in range(kh):
                            h = b * sh + j - ph
                            if h < 0 or h >= H:
                                continue
                            for l in range(kw):
                                w = e * sw + l - pw
                                if w >= 0 and w < W:
                                    total = total + x[p, d, h, w]
                    y[p, a, b, e] = <floating>(total / count[a, b, e])


def avg_pool3d_backward(const floating[:, :, :, ::1] dy, const double[:, :, ::1] count,
        floating[:, :, :, ::1] dx, int kd, int kh, int kw, int sd, int sh, int sw,
        int pd, int ph, int pw, int n_threads):
    """dx[p, d, h, w] += dy[p, a, b, e] / count[a, b, e] for every real voxel of window
    (a, b, e) (dx zeroed by the caller)"""
    cdef Py_ssize_t p, a, b, e, i, j, l, d, h, w
    cdef Py_ssize_t P = dy.shape[0], D = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t Do = dy.shape[1], Ho = dy.shape[2], Wo = dy.shape[3]
    cdef floating g
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for a in range(Do):
            for b in range(Ho):
                for e in range(Wo):
                    g = <floating>(dy[p, a, b, e] / count[a, b, e])
                    for i in range(kd):
                        d = a * sd + i - pd
                        if d < 0 or d >= D:
                            continue
                        for j in range(kh):
                            h = b * sh + j - ph
                            if h < 0 or h >= H:
                                continue
                            for l in range(kw):
                                w = e * sw + l - pw
                                if w >= 0 and w < W:
                                    dx[p, d, h, w] += g


# ------------------------------------------------------------------ top-k global max
def global_max_pool_topk_forward(const floating[:, ::1] x, floating[:, ::1] y,
        int[:, ::1] arg, int n_threads):
    """y[p, :k] = the k largest x[p, :], descending; arg[p, j] = where y[p, j] came from.

    Insertion into the sorted row y[p] (the buffer is the output itself): a value moves
    up only past STRICTLY smaller ones, so equal values keep their input order (stable,
    as the reference's argsort)."""
    cdef Py_ssize_t p, q, j, P = x.shape[0], K = x.shape[1], k = y.shape[1]
    cdef Py_ssize_t filled
    cdef floating v
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        filled = 0
        for q in range(K):
            v = x[p, q]
            if filled == k and not (v > y[p, k - 1]):
                continue
            j = filled if filled < k else k - 1    # the slot the new value starts in
            while j > 0 and v > y[p, j - 1]:
                y[p, j] = y[p, j - 1]
                arg[p, j] = arg[p, j - 1]
                j = j - 1
            y[p, j] = v
            arg[p, j] = <int>q
            if filled < k:
                filled = filled + 1


def global_max_pool_topk_backward(const floating[:, ::1] dy, const int[:, ::1] arg,
        floating[:, ::1] dx, int n_threads):
    """dx[p, arg[p, j]] = dy[p, j] (the k positions are distinct; dx zeroed by the caller)"""
    cdef Py_ssize_t p, j, P = dy.shape[0], k = dy.shape[1]
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for j in range(k):
            dx[p, arg[p, j]] = dy[p, j]


# ------------------------------------------------------------------ max over time
def max_over_time_forward(const floating[:, ::1] x, floating[:, ::1] y, int[:, ::1] arg,
        int L, int S, int n_threads):
    """y[t, q] = max_{i < L} x[t S + i, q]; arg[t, q] = the first such i (x is (T, N C));
    OpenMP splits the columns q."""
    cdef Py_ssize_t q, t, i, Q = x.shape[1], To = y.shape[0]
    cdef floating best
    cdef int where
    for q in prange(Q, nogil=True, schedule="static", num_threads=n_threads):
        for t in range(To):
            best = x[t * S, q]
            where = 0
            for i in range(1, L):
                if x[t * S + i, q] > best:
                    best = x[t * S + i, q]
                    where = <int>i
            y[t, q] = best
            arg[t, q] = where


def max_over_time_backward(const floating[:, ::1] dy, const int[:, ::1] arg,
        floating[:, ::1] dx, int S, int n_threads):
    """dx[t S + arg[t, q], q] += dy[t, q] (dx zeroed by the caller; one thread per column)"""
    cdef Py_ssize_t q, t, Q = dy.shape[1], To = dy.shape[0]
    for q in prange(Q, nogil=True, schedule="static", num_threads=n_threads):
        for t in range(To):
            dx[t * S + arg[t, q], q] += dy[t, q]


# ------------------------------------------------------------------ projection pool
def projection_pool(const floating[:, :, ::1] x, floating[:, :, ::1] y, double scale,
        int n_threads):
    """y[a, m, b] = scale * sum_l x[a, l, b] for every m (the forward with scale 1 / L;
    the backward with x = dy, since both spread one column sum over a column)."""
    cdef Py_ssize_t a, b, l, A = x.shape[0], L = x.shape[1], B = x.shape[2]
    cdef Py_ssize_t M = y.shape[1]
    cdef double total
    cdef floating v
    for a in prange(A, nogil=True, schedule="static", num_threads=n_threads):
        for b in range(B):
            total = 0
            for l in range(L):
                total = total + x[a, l, b]
            v = <floating>(total * scale)
            for l in range(M):
                y[a, l, b] = v
