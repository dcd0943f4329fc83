# cython: language_level=3
"""Image kernels; each mirrors refnn.ops.image.<name>_forward/backward.

No validation here: refnn/backends/cpu/image.py has checked shapes, dtypes, parameters,
contiguity and the index range, and allocated the outputs. NCHW images arrive as
(P, H, W) planes with P = N * C (upsampling2d, image_resize) or as (N, C H W) rows
(reorg); the pixel ops take channels-last (B, H W, C) pixel tables and (B, L) int32
indices. OpenMP splits planes / images across threads; every write of a thread lands
in its own plane or image, so scatters never race.
"""
from cython.parallel cimport prange

ctypedef fused floating:
    float
    double


# ------------------------------------------------------------------ upsampling2d
def upsampling2d_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int hc, int wc,
        int n_threads):
    """y[p, i, j] = x[p, i // hc, j // wc]"""
    cdef Py_ssize_t p, i, j
    cdef Py_ssize_t P = y.shape[0], Ho = y.shape[1], Wo = y.shape[2]
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for i in range(Ho):
            for j in range(Wo):
                y[p, i, j] = x[p, i // hc, j // wc]


def upsampling2d_backward(const floating[:, :, ::1] dy, floating[:, :, ::1] dx, int hc,
        int wc, int n_threads):
    """dx[p, h, w] = sum_{i < hc, j < wc} dy[p, h hc + i, w wc + j]"""
    cdef Py_ssize_t p, h, w, i, j
    cdef Py_ssize_t P = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef double total
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for h in range(H):
            for w in range(W):
                total = 0
                for i in range(hc):
                    for j in range(wc):
                        total = total + dy[p, h * hc + i, w * wc + j]
                dx[p, h, w] = <floating>total


# ------------------------------------------------------------------ image_resize
def image_resize_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int left,
        int top, double default_value, int n_threads):
    """y[p, i, j] = x[p, i - top, j - left] where that pixel exists, else default_value"""
    cdef Py_ssize_t p, i, j, h, w
    cdef Py_ssize_t P = y.shape[0], Ho = y.shape[1], Wo = y.shape[2]
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2]
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for i in range(Ho):
            h = i - top
            for j in range(Wo):
                w = j - left
                if h >= 0 and h < H and w >= 0 and w < W:
                    y[p, i, j] = x[p, h, w]
                else:
                    y[p, i, j] = <floating>default_value


def image_resize_backward(const floating[:, :, ::1] dy, floating[:, :, ::1] dx, int left,
        int top, int n_threads):
    """dx[p, h, w] = dy[p, h + top, w + left] where that output pixel exists, else 0"""
    cdef Py_ssize_t p, i, j, h, w
    cdef Py_ssize_t P = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef Py_ssize_t Ho = dy.shape[1], Wo = dy.shape[2]
    for p in prange(P, nogil=True, schedule="static", num_threads=n_threads):
        for h in range(H):
            i = h + top
            for w in range(W):
                j = w + left
                if i >= 0 and i < Ho and j >= 0 and j < Wo:
                    dx[p, h, w] = dy[p, i, j]
                else:
                    dx[p, h, w] = 0


# ------------------------------------------------------------------ reorg
cdef inline Py_ssize_t reorg_source(Py_ssize_t t, Py_ssize_t C1, Py_ssize_t H,
        Py_ssize_t W, Py_ssize_t s) noexcept nogil:
    """Offset in x's image of output element t (t = offset in y's image): read t as
    (c, h, w) of a (C, H, W) image, c = (i s + j) C1 + c1; the source is pixel
    (c1, h s + i, w s + j) of x's memory read as (C1, H s, W s)."""
    cdef Py_ssize_t c = t // (H * W), h = (t // W) % H, w = t % W
    cdef Py_ssize_t o = c // C1, c1 = c % C1
    return (c1 * H * s + h * s + o // s) * W * s + w * s + o % s


def reorg_forward(const floating[:, ::1] x, floating[:, ::1] y, int C, int H, int W,
        int s, int n_threads):
    """y[n, t] = x[n, reorg_source(t)]  (x, y: one row of C H W values per image)"""
    cdef Py_ssize_t n, t
    cdef Py_ssize_t N = x.shape[0], K = x.shape[1], C1 = C // (s * s)
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for t in range(K):
            y[n, t] = x[n, reorg_source(t, C1, H, W, s)]


def reorg_backward(const floating[:, ::1] dy, floating[:, ::1] dx, int C, int H, int W,
        int s, int n_threads):
    """dx[n, reorg_source(t)] = dy[n, t]  (a permutation: every dx entry written once)"""
    cdef Py_ssize_t n, t
    cdef Py_ssize_t N = dy.shape[0], K = dy.shape[1], C1 = C // (s * s)
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for t in range(K):
            dx[n, reorg_source(t, C1, H, W, s)] = dy[n, t]


# ------------------------------------------------------------------ pixel ops
def pixel_owners(const int[:, ::1] indices, int[:, ::1] owner, int n_threads):
    """owner[b, p] = the last j with indices[b, j] == p, else -1 (list order per image)"""
    cdef Py_ssize_t b, j, p
    cdef Py_ssize_t B = indices.shape[0], L = indices.shape[1], HW = owner.shape[1]
    for b in prange(B, nogil=True, schedule="static", num_threads=n_threads):
        for p in range(HW):
            owner[b, p] = -1
        for j in range(L):
            owner[b, indices[b, j]] = <int>j


def pixel_to_image_forward(const floating[:, :, ::1] pixels, const int[:, ::1] owner,
        floating[:, :, ::1] image, int n_threads):
    """image[b, p, :] = pixels[b, owner[b, p], :], or 0 where owner[b, p] < 0"""
    cdef Py_ssize_t b, p, c
    cdef Py_ssize_t B = image.shape[0], HW = image.shape[1], C = image.shape[2]
    cdef int j
    for b in prange(B, nogil=True, schedule="static", num_threads=n_threads):
        for p in range(HW):
            j = owner[b, p]
            for c in range(C):
                image[b, p, c] = pixels[b, j, c] if j >= 0 else 0


def pixel_to_image_backward(const floating[:, :, ::1] dimage, const int[:, ::1] indices,
        const int[:, ::1] owner, floating[:, :, ::1] dpixels, int n_threads):
    """dpixels[b, j, :] = dimage[b, indices[b, j], :] if owner[b, indices[b, j]] == j
    else 0"""
    cdef Py_ssize_t b, j, c
    cdef Py_ssize_t B = dpixels.shape[0], L = dpixels.shape[1], C = dpixels.shape[2]
    cdef int p
    for b in prange(B, nogil=True, schedule="static", num_threads=n_threads):
        for j in range(L):
            p = indices[b, j]
            for c in range(C):
                dpixels[b, j, c] = dimage[b, p, c] if owner[b, p] == j else 0


def image_to_pixel_forward(const floating[:, :, ::1] image, const int[:, ::1] indices,
        floating[:, :, ::1] pixels, int n_threads):
    """pixels[b, j, :] = image[b, indices[b, j], :]"""
    cdef Py_ssize_t b, j, c
    cdef Py_ssize_t B = pixels.shape[0], L = pixels.shape[1], C = pixels.shape[2]
    for b in prange(B, nogil=True, schedule="static", num_threads=n_threads):
        for j in range(L):
            for c in range(C):
                pixels[b, j, c] = image[b, indices[b, j], c]


def image_to_pixel_backward(const floating[:, :, ::1] dpixels, const int[:, ::1] indices,
        floating[:, :, ::1] dimage, int n_threads):
    """dimage[b, indices[b, j], :] += dpixels[b, j, :] in list order (dimage zeroed by
    the caller)"""
    cdef Py_ssize_t b, j, c
    cdef Py_ssize_t B = dpixels.shape[0], L = dpixels.shape[1], C = dpixels.shape[2]
    for b in prange(B, nogil=True, schedule="static", num_threads=n_threads):
        for j in range(L):
            for c in range(C):
                dimage[b, indices[b, j], c] += dpixels[b, j, c]
