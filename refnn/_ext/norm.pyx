# cython: language_level=3
"""Normalization kernels; each mirrors refnn.ops.norm.<name>_forward/backward.

No validation here: refnn/backends/cpu/norm.py has checked shapes, dtypes, contiguity
and parameters and allocated the outputs (and the float64 scratch ``acc``).

* batch norm (x (N, C) row-major): statistics per column. OpenMP splits the ROWS into
  T chunks (T = threads); each thread adds its chunk into its own row of a (T, C)
  double scratch (contiguous, vectorizable inner loop over channels), then the T
  partial sums are added in thread order. Elementwise passes run OpenMP over rows.
* layer norm (x (N, D)): statistics per row; OpenMP over rows (objects); dscale/dbias
  are column sums like batch norm's (column_grads).
* LRN (x viewed as (N C) planes of H W pixels): OpenMP over planes; a plane reads the
  planes of its channel window.
"""
from cython.parallel cimport prange
from libc.math cimport pow, sqrt

ctypedef fused floating:
    float
    double

cdef void _zero(double[:, ::1] part, Py_ssize_t t) noexcept nogil:
    cdef Py_ssize_t c
    for c in range(part.shape[1]):
        part[t, c] = 0.0


cdef void _combine(double[:, ::1] part, double[::1] out) noexcept nogil:
    """out[c] = sum_t part[t, c] (the per-thread partial sums, added in thread order)"""
    cdef Py_ssize_t t, c
    for c in range(part.shape[1]):
        out[c] = 0.0
    for t in range(part.shape[0]):
        for c in range(part.shape[1]):
            out[c] += part[t, c]


def batch_norm_forward(const floating[:, ::1] x, const floating[::1] gamma,
        const floating[::1] beta, floating[:, ::1] y, floating[::1] mean,
        floating[::1] var, floating[::1] inv_std, double[:, ::1] part, double[:, ::1] stat,
        double eps, int n_threads):
    """mean = sum_n x / N; var = sum_n (x - mean)^2 / N; inv_std = 1/sqrt(var + eps);
    y = gamma (x - mean) inv_std + beta. part: (T, C) per-thread column sums over T row
    chunks; stat: (3, C) double scratch (sums, then mean and gamma inv_std)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], T = part.shape[0]
    cdef Py_ssize_t t, n, c
    for t in prange(T, nogil=True, schedule="static", num_threads=n_threads):
        _zero(part, t)
        for n in range(t * N // T, (t + 1) * N // T):
            for c in range(C):
                part[t, c] += x[n, c]
    with nogil:
        _combine(part, stat[0])
        for c in range(C):
            stat[1, c] = stat[0, c] / N                       # mean
    for t in prange(T, nogil=True, schedule="static", num_threads=n_threads):
        _zero(part, t)
        for n in range(t * N // T, (t + 1) * N // T):
            for c in range(C):
                part[t, c] += (x[n, c] - stat[1, c]) * (x[n, c] - stat[1, c])
    with nogil:
        _combine(part, stat[0])
        for c in range(C):
            mean[c] = <floating>stat[1, c]
            var[c] = <floating>(stat[0, c] / N)
            inv_std[c] = <floating>(1.0 / sqrt(stat[0, c] / N + eps))
            stat[2, c] = gamma[c] / sqrt(stat[0, c] / N + eps)   # gamma inv_std
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for c in range(C):
            y[n, c] = <floating>((x[n, c] - stat[1, c]) * stat[2, c] + beta[c])


def batch_norm_backward(const floating[:, ::1] dy, const floating[:, ::1] x,
        const floating[::1] mean, const floating[::1] inv_std, const floating[::1] gamma,
        const floating[::1] dmean, const floating[::1] dvar, floating[:, ::1] dx,
        floating[::1] dgamma, floating[::1] dbeta, double[:, ::1] part, double[:, ::1] stat,
        int n_threads):
    """dbeta = sum_n dy; dgamma = inv_std sum_n dy (x - mean);
    dx = gamma inv_std / N (N dy - dbeta - xhat dgamma) + dmean / N + 2 dvar (x - mean) / N
       = k1 dy + kx (x - mean) + k0 per channel (k1 = gamma inv_std,
         kx = 2 dvar / N - gamma inv_std^2 dgamma / N, k0 = dmean / N - k1 dbeta / N).
    part: (T, 2C) per-thread sums; stat: (4, C) double scratch."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], T = part.shape[0]
    cdef Py_ssize_t t, n, c
    cdef double k1
    for t in prange(T, nogil=True, schedule="static", num_threads=n_threads):
        _zero(part, t)
        for n in range(t * N // T, (t + 1) * N // T):
            for c in range(C):
                part[t, c] += dy[n, c]
                part[t, C + c] += dy[n, c] * (x[n, c] - mean[c])
    with nogil:
        for c in range(C):
            stat[0, c] = 0.0
            stat[1, c] = 0.0
        for t in range(T):
            for c in range(C):
                stat[0, c] += part[t, c]                       # dbeta
                stat[1, c] += part[t, C + c]
        for c in range(C):
            stat[1, c] = stat[1, c] * inv_std[c]               # dgamma
            dbeta[c] = <floating>stat[0, c]
            dgamma[c] = <floating>stat[1, c]
            k1 = gamma[c] * inv_std[c]
            stat[2, c] = 2.0 * dvar[c] / N - k1 * inv_std[c] * stat[1, c] / N   # kx
            stat[3, c] = dmean[c] / N - k1 * stat[0, c] / N                     # k0
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for c in range(C):
            dx[n, c] = <floating>(gamma[c] * inv_std[c] * dy[n, c]
                                  + stat[2, c] * (x[n, c] - mean[c]) + stat[3, c])


def affine_columns(const floating[:, ::1] x, const floating[::1] scale,
        const floating[::1] shift, floating[:, ::1] y, int n_threads):
    """y[n, c] = x[n, c] scale[c] + shift[c]   (batch_norm_infer forward, dx of its backward)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t n, c
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for c in range(C):
            y[n, c] = x[n, c] * scale[c] + shift[c]


def column_grads(const floating[:, ::1] dy, const floating[:, ::1] x,
        const floating[::1] mean, const floating[::1] inv_std, floating[::1] dgamma,
        floating[::1] dbeta, double[:, ::1] part, double[:, ::1] stat, int n_threads):
    """dgamma = inv_std sum_n dy (x - mean); dbeta = sum_n dy (batch_norm_infer's
    parameter gradients; layer_norm's with x = xhat, mean = 0, inv_std = 1).
    part: (T, 2C) per-thread sums; stat: (2, C) double scratch."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], T = part.shape[0]
    cdef Py_ssize_t t, n, c
    for t in prange(T, nogil=True, schedule="static", num_threads=n_threads):
        _zero(part, t)
        for n in range(t * N // T, (t + 1) * N // T):
            for c in range(C):
                part[t, c] += dy[n, c]
                part[t, C + c] += dy[n, c] * (x[n, c] - mean[c])
    with nogil:
        for c in range(C):
            stat[0, c] = 0.0
            stat[1, c] = 0.0
        for t in range(T):
            for c in range(C):
                stat[0, c] += part[t, c]
                stat[1, c] += part[t, C + c]
        for c in range(C):
            dbeta[c] = <floating>stat[0, c]
            dgamma[c] = <floating>(stat[1, c] * inv_std[c])


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
        int n_threads):
    """g = dy scale; dx = inv_std / D (D g - sum_j g - xhat sum_j g xhat) per row
    (dscale, dbias: column_grads)"""
    cdef Py_ssize_t N = dy.shape[0], D = dy.shape[1]
    cdef Py_ssize_t n, j
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
