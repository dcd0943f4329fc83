# cython: language_level=3
"""Normalization kernels; each mirrors refnn.ops.norm.<name>_forward/backward.

No validation here: refnn/backends/cpu/norm.py has checked shapes, dtypes, contiguity
and parameters and allocated the outputs (and the float64 scratch ``acc``).

* batch norm (x (N, C) row-major): statistics per column. OpenMP splits the columns
  into blocks of BLOCK = 16 adjacent channels (one 64-byte line of float32); a thread
  walks all N rows of its block, so reads stay sequential within a row and no two
  threads write the same channel. Sums are accumulated in double.
* layer norm (x (N, D)): statistics per row; OpenMP over rows (objects), then a second
  loop over column blocks for dscale/dbias.
* LRN (x viewed as (N C) planes of H W pixels): OpenMP over planes; a plane reads the
  planes of its channel window.
"""
from cython.parallel cimport prange
from libc.math cimport pow, sqrt

ctypedef fused floating:
    float
    double

cdef Py_ssize_t BLOCK = 16


def batch_norm_forward(const floating[:, ::1] x, const floating[::1] gamma,
        const floating[::1] beta, floating[:, ::1] y, floating[::1] mean,
        floating[::1] var, floating[::1] inv_std, double[:, ::1] acc, double eps,
        int n_threads):
    """mean = sum_n x / N; var = sum_n (x - mean)^2 / N; inv_std = 1/sqrt(var + eps);
    y = gamma (x - mean) inv_std + beta   (acc: (2, C) scratch holding mean and inv_std)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t nb = (C + BLOCK - 1) // BLOCK
    cdef Py_ssize_t b, n, c, c0, c1
    cdef double d
    for b in prange(nb, nogil=True, schedule="static", num_threads=n_threads):
        c0 = b * BLOCK
        c1 = min(c0 + BLOCK, C)
        for c in range(c0, c1):
            acc[0, c] = 0.0
            acc[1, c] = 0.0
        for n in range(N):
            for c in range(c0, c1):
                acc[0, c] += x[n, c]
        for c in range(c0, c1):
            acc[0, c] = acc[0, c] / N
        for n in range(N):
            for c in range(c0, c1):
                d = x[n, c] - acc[0, c]
                acc[1, c] += d * d
        for c in range(c0, c1):
            mean[c] = <floating>acc[0, c]
            var[c] = <floating>(acc[1, c] / N)
            acc[1, c] = 1.0 / sqrt(acc[1, c] / N + eps)
            inv_std[c] = <floating>acc[1, c]
        for n in range(N):
            for c in range(c0, c1):
                y[n, c] = <floating>(gamma[c] * (x[n, c] - acc[0, c]) * acc[1, c] + beta[c])


def batch_norm_backward(const floating[:, ::1] dy, const floating[:, ::1] x,
        const floating[::1] mean, const floating[::1] inv_std, const floating[::1] gamma,
        const floating[::1] dmean, const floating[::1] dvar, floating[:, ::1] dx,
        floating[::1] dgamma, floating[::1] dbeta, double[:, ::1] acc, int n_threads):
    """dbeta = sum_n dy; dgamma = sum_n dy xhat (xhat = (x - mean) inv_std);
    dx = gamma inv_std / N (N dy - dbeta - xhat dgamma) + dmean / N + 2 dvar (x - mean) / N"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t nb = (C + BLOCK - 1) // BLOCK
    cdef Py_ssize_t b, n, c, c0, c1
    cdef double xhat
    for b in prange(nb, nogil=True, schedule="static", num_threads=n_threads):
        c0 = b * BLOCK
        c1 = min(c0 + BLOCK, C)
        for c in range(c0, c1):
            acc[0, c] = 0.0
            acc[1, c] = 0.0
        for n in range(N):
            for c in range(c0, c1):
                acc[0, c] += dy[n, c]
                acc[1, c] += dy[n, c] * (x[n, c] - mean[c]) * inv_std[c]
        for c in range(c0, c1):
            dbeta[c] = <floating>acc[0, c]
            dgamma[c] = <floating>acc[1, c]
        for n in range(N):
            for c in range(c0, c1):
                xhat = (x[n, c] - mean[c]) * inv_std[c]
                dx[n, c] = <floating>(
                    gamma[c] * inv_std[c] / N * (N * dy[n, c] - acc[0, c] - xhat * acc[1, c])
                    + dmean[c] / N + 2.0 * dvar[c] * (x[n, c] - mean[c]) / N)


def affine_columns(const floating[:, ::1] x, const floating[::1] scale,
        const floating[::1] shift, floating[:, ::1] y, int n_threads):
    """y[n, c] = x[n, c] scale[c] + shift[c]   (batch_norm_infer forward, dx of its backward)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t n, c
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for c in range(C):
            y[n, c] = x[n, c] * scale[c] + shift[c]


def batch_norm_infer_param_grads(const floating[:, ::1] dy, const floating[:, ::1] x,
        const floating[::1] mean, const floating[::1] inv_std, floating[::1] dgamma,
        floating[::1] dbeta, double[:, ::1] acc, int n_threads):
    """dgamma = sum_n dy (x - mean) inv_std; dbeta = sum_n dy  (column blocks)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t nb = (C + BLOCK - 1) // BLOCK
    cdef Py_ssize_t b, n, c, c0, c1
    for b in prange(nb, nogil=True, schedule="static", num_threads=n_threads):
        c0 = b * BLOCK
        c1 = min(c0 + BLOCK, C)
        for c in range(c0, c1):
            acc[0, c] = 0.0
            acc[1, c] = 0.0
        for n in range(N):
            for c in range(c0, c1):
                acc[0, c] += dy[n, c]
                acc[1, c] += dy[n, c] * (x[n, c] - mean[c]) * inv_std[c]
        for c in range(c0, c1):
            dbeta[c] = <floating>acc[0, c]
            dgamma[c] = <floating>acc[1, c]


def layer_norm_forward(const floating[:, ::1] x, const floating[::1] scale,
        const floating[::1] bias, floating[:, ::1] y, floating[:, ::1] xhat,
        floating[::1] inv_std, double eps, int n_threads):
    """per row n: mu = sum_j x / D; s2 = sum_j (x - mu)^2 / D; inv_std = 1/sqrt(s2 + eps);
    xhat = (x - mu) inv_std; y = scale xhat + bias"""
    cdef Py_ssize_t N = x.shape[0], D = x.shape[1]
    cdef Py_ssize_t n, j
    cdef double mu, s2, d, r
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        mu = 0.0
        for j in range(D):
            mu = mu + x[n, j]
        mu = mu / D
        s2 = 0.0
        for j in range(D):
            d = x[n, j] - mu
            s2 = s2 + d * d
        r = 1.0 / sqrt(s2 / D + eps)
        inv_std[n] = <floating>r
        for j in range(D):
            d = (x[n, j] - mu) * r
            xhat[n, j] = <floating>d
            y[n, j] = <floating>(scale[j] * d + bias[j])


def layer_norm_backward(const floating[:, ::1] dy, const floating[:, ::1] xhat,
        const floating[::1] inv_std, const floating[::1] scale, floating[:, ::1] dx,
        floating[::1] dscale, floating[::1] dbias, double[:, ::1] acc, int n_threads):
    """g = dy scale; dx = inv_std / D (D g - sum_j g - xhat sum_j g xhat) per row;
    dscale = sum_n dy xhat, dbias = sum_n dy per column"""
    cdef Py_ssize_t N = dy.shape[0], D = dy.shape[1]
    cdef Py_ssize_t nb = (D + BLOCK - 1) // BLOCK
    cdef Py_ssize_t n, j, b, c0, c1
    cdef double sg, sgx, g
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        sg = 0.0
        sgx = 0.0
        for j in range(D):
            g = dy[n, j] * scale[j]
            sg = sg + g
            sgx = sgx + g * xhat[n, j]
        for j in range(D):
            dx[n, j] = <floating>(inv_std[n] / D * (
                D * dy[n, j] * scale[j] - sg - xhat[n, j] * sgx))
    for b in prange(nb, nogil=True, schedule="static", num_threads=n_threads):
        c0 = b * BLOCK
        c1 = min(c0 + BLOCK, D)
        for j in range(c0, c1):
            acc[0, j] = 0.0
            acc[1, j] = 0.0
        for n in range(N):
            for j in range(c0, c1):
                acc[0, j] += dy[n, j] * xhat[n, j]
                acc[1, j] += dy[n, j]
        for j in range(c0, c1):
            dscale[j] = <floating>acc[0, j]
            dbias[j] = <floating>acc[1, j]


def lrn_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, floating[:, :, ::1] d,
        int size, double k, double alpha, double beta, int n_threads):
    """x, y, d: (N, C, P). d[n,c] = k + alpha/size sum_{c'=c-(size-1)//2}^{c+size//2} x[n,c']^2;
    y = x d^(-beta)   (one plane (n, c) per iteration)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2]
    cdef Py_ssize_t q, n, c, cc, lo, hi, p
    cdef double a = alpha / size
    for q in prange(N * C, nogil=True, schedule="static", num_threads=n_threads):
        n = q // C
        c = q % C
        lo = max(c - (size - 1) // 2, 0)
        hi = min(c + size // 2, C - 1)
        for p in range(P):
            d[n, c, p] = 0
        for cc in range(lo, hi + 1):
            for p in range(P):
                d[n, c, p] += x[n, cc, p] * x[n, cc, p]
        for p in range(P):
            d[n, c, p] = <floating>(k + a * d[n, c, p])
            y[n, c, p] = <floating>(x[n, c, p] * pow(d[n, c, p], -beta))


def lrn_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] x,
        const floating[:, :, ::1] d, floating[:, :, ::1] t, floating[:, :, ::1] dx,
        int size, double alpha, double beta, int n_threads):
    """t = dy x d^(-beta-1); dx[c] = dy d^(-beta) - 2 alpha beta / size x
    sum_{c'=c-size//2}^{c+(size-1)//2} t[c']   (the mirrored window)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2]
    cdef Py_ssize_t q, n, c, cc, lo, hi, p
    cdef double s = 2.0 * alpha * beta / size
    for q in prange(N * C, nogil=True, schedule="static", num_threads=n_threads):
        n = q // C
        c = q % C
        for p in range(P):
            t[n, c, p] = <floating>(dy[n, c, p] * x[n, c, p] * pow(d[n, c, p], -beta - 1.0))
    for q in prange(N * C, nogil=True, schedule="static", num_threads=n_threads):
        n = q // C
        c = q % C
        lo = max(c - size // 2, 0)
        hi = min(c + (size - 1) // 2, C - 1)
        for p in range(P):
            dx[n, c, p] = 0
        for cc in range(lo, hi + 1):
            for p in range(P):
                dx[n, c, p] += t[n, cc, p]
        for p in range(P):
            dx[n, c, p] = <floating>(dy[n, c, p] * pow(d[n, c, p], -beta)
                                     - s * x[n, c, p] * dx[n, c, p])
