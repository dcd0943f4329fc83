# cython: language_level=3
"""Embedding kernels; each mirrors a function of refnn.ops.embedding.

No validation here: refnn/backends/cpu/embedding.py has checked shapes and dtypes,
converted the ids to int32 and checked every id lies in [0, V) before any kernel runs
(these loops index the table with the ids unchecked). Gathers split the objects across
OpenMP threads; the scatter-add of the table gradient splits the D *columns* instead, so
two threads never add into the same table entry even when ids repeat.
"""
from cython.parallel cimport prange

ctypedef fused floating:
    float
    double


def gather_rows(const int[::1] ids, const floating[:, ::1] table, floating[:, ::1] y,
        int n_threads):
    """y[j, :] = table[ids[j], :] (lookup on the flattened (N K) ids)"""
    cdef Py_ssize_t j, d, J = ids.shape[0], D = table.shape[1]
    for j in prange(J, nogil=True, schedule="static", num_threads=n_threads):
        for d in range(D):
            y[j, d] = table[ids[j], d]


def sum_rows(const int[:, ::1] ids, const floating[:, ::1] table, floating[:, ::1] y,
        int n_threads):
    """y[n, :] = sum_k table[ids[n, k], :] (accumulative_lookup)"""
    cdef Py_ssize_t n, k, d, N = ids.shape[0], K = ids.shape[1], D = table.shape[1]
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for d in range(D):
            y[n, d] = 0
        for k in range(K):
            for d in range(D):
                y[n, d] += table[ids[n, k], d]


def scatter_rows(const int[::1] ids, const floating[:, ::1] rows, Py_ssize_t div,
        double scale, floating[:, ::1] dst, int n_threads):
    """dst[ids[j], :] += scale * rows[j // div, :] for every j in order (div = 1: one row
    per id, div = K: one row per object of K ids). Threads own column blocks."""
    cdef Py_ssize_t b, j, d, d0, d1, J = ids.shape[0], D = dst.shape[1]
    cdef Py_ssize_t B = min(<Py_ssize_t>n_threads, D)
    for b in prange(B, nogil=True, schedule="static", num_threads=n_threads):
        d0 = b * D // B
        d1 = (b + 1) * D // B
        for j in range(J):
            for d in range(d0, d1):
                dst[ids[j], d] += <floating>(scale * rows[j // div, d])


def add_rows(const floating[:, :, ::1] x, const floating[:, ::1] table,
        floating[:, :, ::1] y, int n_threads):
    """y[n, t, :] = x[n, t, :] + table[t, :] (both positional encodings)"""
    cdef Py_ssize_t n, t, d, N = x.shape[0], T = x.shape[1], D = x.shape[2]
    for n in prange(N, nogil=True, schedule="static", num_threads=n_threads):
        for t in range(T):
            for d in range(D):
                y[n, t, d] = x[n, t, d] + table[t, d]


def batch_sum(const floating[:, :, ::1] dy, floating[:, ::1] dtable, int n_threads):
    """dtable[t, :] = sum_n dy[n, t, :] for t < T (rows t >= T zeroed by the caller)"""
    cdef Py_ssize_t n, t, d, N = dy.shape[0], T = dy.shape[1], D = dy.shape[2]
    for t in prange(T, nogil=True, schedule="static", num_threads=n_threads):
        for d in range(D):
            dtable[t, d] = 0
        for n in range(N):
            for d in range(D):
                dtable[t, d] += dy[n, t, d]
