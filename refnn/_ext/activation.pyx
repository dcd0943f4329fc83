# cython: language_level=3
"""Elementwise activation kernels; each mirrors refnn.ops.activation.<name>_forward/backward.

No validation here: refnn/backends/cpu/activation.py has checked shapes, dtypes and
contiguity and allocated the outputs. Arrays are flat (the op is elementwise).
"""
from cython.parallel cimport prange
from libc.math cimport fmax, fmin

ctypedef fused floating:
    float
    double

# Parallel loops only pay off above this many elements (thread start-up ~ microseconds).
cdef Py_ssize_t PAR_MIN = 32768


def relu_forward(const floating[::1] x, floating[::1] y, double threshold, int n_threads):
    """relu_forward: y[i] = max(x[i], 0), then min(., threshold) if threshold > 0;
    equals refnn.ops.activation.relu_forward."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    if threshold > 0:
        for i in prange(n, nogil=True, schedule="static", num_threads=nt):
            y[i] = <floating>fmin(fmax(x[i], 0.0), threshold)
    else:
        for i in prange(n, nogil=True, schedule="static", num_threads=nt):
            y[i] = x[i] if x[i] > 0 else 0


def relu_backward(const floating[::1] dy, const floating[::1] x, floating[::1] dx,
                  double threshold, int n_threads):
    """relu_backward: dx[i] = dy[i] * [0 < x[i] (< threshold)];
    equals refnn.ops.activation.relu_backward."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    cdef double hi = threshold if threshold > 0 else 1e300
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        dx[i] = dy[i] if (x[i] > 0 and x[i] < hi) else 0
