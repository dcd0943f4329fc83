# cython: language_level=3
"""Sequence kernels (time-major (T, N, C)); each mirrors refnn.ops.sequence.

No validation here: refnn/backends/cpu/sequence.py has checked shapes, dtypes,
contiguity and the subsequence geometry and allocated the outputs. Sequences arrive as
(T, N, C) arrays; OpenMP splits the batch N across threads, so every thread owns its
sequences and no write ever races (the scatters included).

Every reordering op is the one pattern of refnn.ops.sequence.step_gather:
y[i] = x[(start + step i) mod T] (step = +1 or -1), and its transpose step_scatter.
cumsum works on x viewed as (P, M, Q) with the summed axis in the middle.
"""
from cython.parallel cimport prange

ctypedef fused floating:
    float
    double


def time_sum(const floating[:, :, ::1] x, floating[:, ::1] y, double scale, int n_threads):
    """y[n, c] = scale * sum_t x[t, n, c] (seq_sum: scale 1, seq_mean: scale 1/T)"""
    cdef Py_ssize_t t, n, c, T = x.shape[0], N = x.shape[1], C = x.shape[2]
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for c in range(C):
            y[n, c] = 0
        for t in range(T):
            for c in range(C):
                y[n, c] += x[t, n, c]
        for c in range(C):
            y[n, c] = <floating>(y[n, c] * scale)


def time_broadcast(const floating[:, ::1] dy, floating[:, :, ::1] dx, double scale,
        int n_threads):
    """dx[t, n, c] = scale * dy[n, c] (backward of seq_sum / seq_mean)"""
    cdef Py_ssize_t t, n, c, T = dx.shape[0], N = dx.shape[1], C = dx.shape[2]
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for t in range(T):
            for c in range(C):
                dx[t, n, c] = <floating>(dy[n, c] * scale)


def step_gather(const floating[:, :, ::1] x, floating[:, :, ::1] y, Py_ssize_t start,
        Py_ssize_t step, int n_threads):
    """y[i, n, c] = x[(start + step i) mod T, n, c] for i < L = y.shape[0]"""
    cdef Py_ssize_t i, n, c, src, T = x.shape[0], N = x.shape[1], C = x.shape[2]
    cdef Py_ssize_t L = y.shape[0]
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for i in range(L):
            src = ((start + step * i) % T + T) % T
            for c in range(C):
                y[i, n, c] = x[src, n, c]


def step_scatter(const floating[:, :, ::1] dy, floating[:, :, ::1] dx, Py_ssize_t start,
        Py_ssize_t step, int n_threads):
    """dx[(start + step i) mod T, n, c] += dy[i, n, c] (dx zeroed by the caller)"""
    cdef Py_ssize_t i, n, c, dst, T = dx.shape[0], N = dx.shape[1], C = dx.shape[2]
    cdef Py_ssize_t L = dy.shape[0]
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for i in range(L):
            dst = ((start + step * i) % T + T) % T
            for c in range(C):
                dx[dst, n, c] += dy[i, n, c]


def cumsum(const floating[:, :, ::1] x, floating[:, :, ::1] y, bint reverse,
        int n_threads):
    """y[p, j, q] = sum_{i <= j} x[p, i, q] (i >= j when reverse), running sum in double;
    threads split the P Q independent lines"""
    cdef Py_ssize_t r, p, i, j, q, P = x.shape[0], M = x.shape[1], Q = x.shape[2]
    cdef double run
    for r in prange(P * Q, nogil=True, schedule="static", num_threads=n_threads):
        p = r // Q
        q = r % Q
        run = 0
        for i in range(M):
            j = M - 1 - i if reverse else i
            run = run + x[p, j, q]
            y[p, j, q] = <floating>run
