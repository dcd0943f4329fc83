# cython: language_level=3
"""Elementwise activation kernels; each mirrors refnn.ops.activation.<name>_forward/backward.

No validation here: refnn/backends/cpu/activation.py has checked shapes, dtypes,
contiguity and parameters and allocated the outputs. Arrays are flat (the op is
elementwise) except for softmax, which gets (rows, row length).

Most ops share one pair of loops, ``pointwise_forward``/``pointwise_backward``: an op
code (``OPS``) selects the one-line formula ``f`` / derivative ``df`` below. Arithmetic
is done in double and rounded once to the output's type.
"""
from cython.parallel cimport prange
from libc.math cimport erf, exp, expm1, fabs, fmax, fmin, log, pow, sqrt, tanh
from libc.stdint cimport uint32_t

ctypedef fused floating:
    float
    double

# Parallel loops only pay off above this many elements (thread start-up ~ microseconds).
cdef Py_ssize_t PAR_MIN = 32768

cdef enum:
    LEAKY_RELU = 1
    ELU = 2
    SIGMOID = 3
    TANH = 4
    HARD_SIGMOID = 5
    HARD_TANH = 6
    HSWISH = 7
    GELU_SIGMOID = 8
    GELU_ERF = 9
    ABS = 10
    POWER = 11
    EXP = 12
    LOG = 13
    ERF = 14
    LINEAR = 15
    NORMALIZER = 16

#: op name -> code of the pointwise kernels (parameters a, b in brackets)
OPS = {
    "leaky_relu": LEAKY_RELU,        # (alpha)
    "elu": ELU,                      # (alpha)
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "hard_sigmoid": HARD_SIGMOID,    # (slope, bias)
    "hard_tanh": HARD_TANH,
    "hswish": HSWISH,
    "gelu_sigmoid": GELU_SIGMOID,
    "gelu_erf": GELU_ERF,
    "abs": ABS,
    "power": POWER,                  # (exponent)
    "exp": EXP,
    "log": LOG,
    "erf": ERF,
    "linear_activation": LINEAR,     # (multiplier, free_term)
    "normalizer": NORMALIZER,        # (divisor)
}

cdef double GELU_K = 1.702
cdef double SQRT_HALF = 0.7071067811865476       # 1 / sqrt(2)
cdef double INV_SQRT_2PI = 0.3989422804014327    # 1 / sqrt(2 pi)
cdef double TWO_OVER_SQRT_PI = 1.1283791670955126


cdef inline int nthreads(Py_ssize_t n, int n_threads) noexcept nogil:
    return n_threads if n >= PAR_MIN else 1


cdef inline double sigm(double x) noexcept nogil:
    return 1.0 / (1.0 + exp(-x))


cdef inline double f(int op, double x, double a, double b) noexcept nogil:
    """y = f(x); each line equals refnn.ops.activation.<op>_forward."""
    if op == LEAKY_RELU:
        return x if x > 0 else a * x
    if op == ELU:
        return x if x > 0 else a * expm1(x)
    if op == SIGMOID:
        return sigm(x)
    if op == TANH:
        return tanh(x)
    if op == HARD_SIGMOID:
        return fmin(fmax(a * x + b, 0.0), 1.0)
    if op == HARD_TANH:
        return fmin(fmax(x, -1.0), 1.0)
    if op == HSWISH:
        return x * fmin(fmax(x + 3.0, 0.0), 6.0) / 6.0
    if op == GELU_SIGMOID:
        return x * sigm(GELU_K * x)
    if op == GELU_ERF:
        return 0.5 * x * (1.0 + erf(x * SQRT_HALF))
    if op == ABS:
        return fabs(x)
    if op == POWER:
        return pow(x, a)
    if op == EXP:
        return exp(x)
    if op == LOG:
        return log(x)
    if op == ERF:
        return erf(x)
    if op == LINEAR:
        return a * x + b
    return x / a                                   # NORMALIZER


cdef inline double df(int op, double x, double y, double a, double b) noexcept nogil:
    """f'(x) (y = f(x)); each line equals refnn.ops.activation.<op>_backward / dy."""
    cdef double s, z
    if op == LEAKY_RELU:
        return 1.0 if x > 0 else a
    if op == ELU:
        return 1.0 if x > 0 else a * exp(x)
    if op == SIGMOID:
        return y * (1.0 - y)
    if op == TANH:
        return 1.0 - y * y
    if op == HARD_SIGMOID:
        z = a * x + b
        return a if (z > 0 and z < 1) else 0.0
    if op == HARD_TANH:
        return 1.0 if (x > -1 and x < 1) else 0.0
    if op == HSWISH:
        return 0.0 if x <= -3 else (1.0 if x >= 3 else (2.0 * x + 3.0) / 6.0)
    if op == GELU_SIGMOID:
        s = sigm(GELU_K * x)
        return s + GELU_K * x * s * (1.0 - s)
    if op == GELU_ERF:
        return 0.5 * (1.0 + erf(x * SQRT_HALF)) + x * exp(-0.5 * x * x) * INV_SQRT_2PI
    if op == ABS:
        return (x > 0) - (x < 0)
    if op == POWER:
        return a * pow(x, a - 1.0)
    if op == EXP:
        return y
    if op == LOG:
        return 1.0 / x
    if op == ERF:
        return TWO_OVER_SQRT_PI * exp(-x * x)
    if op == LINEAR:
        return a
    return 1.0 / a                                 # NORMALIZER


def pointwise_forward(int op, const floating[::1] x, floating[::1] y, double a, double b,
                      int n_threads):
    """y[i] = f_op(x[i]; a, b) -- the op's refnn.ops.activation.<op>_forward."""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>f(op, x[i], a, b)


def pointwise_backward(int op, const floating[::1] dy, const floating[::1] x,
                       const floating[::1] y, floating[::1] dx, double a, double b,
                       int n_threads):
    """dx[i] = dy[i] * f_op'(x[i]) -- the op's refnn.ops.activation.<op>_backward."""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * df(op, x[i], y[i], a, b))


# ------------------------------------------------------------------------ relu
def relu_forward(const floating[::1] x, floating[::1] y, double threshold, int n_threads):
    """relu_forward: y[i] = max(x[i], 0), then min(., threshold) if threshold > 0;
    equals refnn.ops.activation.relu_forward."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int nt = nthreads(n, n_threads)
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
    cdef int nt = nthreads(n, n_threads)
    cdef double hi = threshold if threshold > 0 else 1e300
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        dx[i] = dy[i] if (x[i] > 0 and x[i] < hi) else 0


# --------------------------------------------------------------------- softmax
cdef inline void softmax_row(const floating* x, floating* y, Py_ssize_t c) noexcept nogil:
    """y = exp(x - max x) / sum exp(x - max x) for one row of length c."""
    cdef Py_ssize_t j
    cdef double m = x[0], s = 0.0, e
    for j in range(1, c):
        m = fmax(m, x[j])
    for j in range(c):
        s += exp(x[j] - m)
    for j in range(c):
        y[j] = <floating>(exp(x[j] - m) / s)


cdef inline void softmax_grad_row(const floating* dy, const floating* y, floating* dx,
                                  Py_ssize_t c) noexcept nogil:
    """dx = y * (dy - sum(dy * y)) for one row of length c."""
    cdef Py_ssize_t j
    cdef double dot = 0.0
    for j in range(c):
        dot += <double>dy[j] * y[j]
    for j in range(c):
        dx[j] = <floating>(y[j] * (dy[j] - dot))


def softmax_forward(const floating[:, ::1] x, floating[:, ::1] y, int n_threads):
    """Row-wise softmax of an (R, C) array; equals refnn.ops.activation.softmax_forward."""
    cdef Py_ssize_t r, R = x.shape[0], C = x.shape[1]
    for r in prange(R, nogil=True, schedule="static", num_threads=nthreads(R * C, n_threads)):
        softmax_row(&x[r, 0], &y[r, 0], C)


def softmax_backward(const floating[:, ::1] dy, const floating[:, ::1] y,
                     floating[:, ::1] dx, int n_threads):
    """Row-wise dx = y * (dy - sum(dy * y)); equals refnn.ops.activation.softmax_backward."""
    cdef Py_ssize_t r, R = y.shape[0], C = y.shape[1]
    for r in prange(R, nogil=True, schedule="static", num_threads=nthreads(R * C, n_threads)):
        softmax_grad_row(&dy[r, 0], &y[r, 0], &dx[r, 0], C)


# --------------------------------------------------------------------- dropout
cdef inline uint32_t fmix32(uint32_t h) noexcept nogil:
    """MurmurHash3's 32-bit finaliser (as refnn.ops.activation._fmix32)."""
    h ^= h >> 16
    h *= 0x85EBCA6BU
    h ^= h >> 13
    h *= 0xC2B2AE35U
    h ^= h >> 16
    return h


cdef inline bint kept(uint32_t key, Py_ssize_t i, uint32_t threshold) noexcept nogil:
    """mask[i] = ((fmix32(key + i * 0x9E3779B9) >> 8) < threshold), as
    refnn.ops.activation.dropout_mask (key = fmix32(seed ^ 0x9E3779B9))."""
    return (fmix32(key + <uint32_t>i * <uint32_t>0x9E3779B9U) >> 8) < threshold


def dropout_forward(const floating[::1] x, floating[::1] y, uint32_t key, uint32_t threshold,
                    double scale, int n_threads):
    """y[i] = x[i] * mask[i] * scale; equals refnn.ops.activation.dropout_forward."""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(x[i] * scale) if kept(key, i, threshold) else 0


def dropout_backward(const floating[::1] dy, floating[::1] dx, uint32_t key,
                     uint32_t threshold, double scale, int n_threads):
    """dx[i] = dy[i] * mask[i] * scale (mask recomputed from the hash, nothing stored);
    equals refnn.ops.activation.dropout_backward."""
    cdef Py_ssize_t i, n = dy.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * scale) if kept(key, i, threshold) else 0
