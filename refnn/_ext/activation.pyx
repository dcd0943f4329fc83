# cython: language_level=3
"""Elementwise activation kernels; each mirrors refnn.ops.activation.<name>_forward/backward.

No validation here: refnn/backends/cpu/activation.py has checked shapes, dtypes,
contiguity and parameters and allocated the outputs. Arrays are flat (the op is
elementwise) except for softmax, which gets (rows, row length).

The pointwise kernels share one signature, ``<op>_forward(x, y, a, b, n_threads)`` and
``<op>_backward(dy, x, y, dx, a, b, n_threads)`` (a, b: the op's parameters, unused ones
ignored), so the wrapper treats them alike; each is one prange loop over one formula
(a loop per op, so the compiler can vectorize it). Smooth ops compute in double and
round once to the output's type; piecewise-linear ops compute in the array's own type
with branch-free helpers (pos, neg, step, clip: the compiler turns them into SIMD
min/max/compare, where an if/else would mispredict on every other random sign).
"""
from cython.parallel cimport prange
from libc.math cimport erf, exp, expm1, fmax, log, pow, tanh
from libc.stdint cimport uint32_t

ctypedef fused floating:
    float
    double

# Parallel loops only pay off above this many elements (thread start-up ~ microseconds).
cdef Py_ssize_t PAR_MIN = 32768

cdef double GELU_K = 1.702
cdef double SQRT_HALF = 0.7071067811865476       # 1 / sqrt(2)
cdef double INV_SQRT_2PI = 0.3989422804014327    # 1 / sqrt(2 pi)
cdef double TWO_OVER_SQRT_PI = 1.1283791670955126


cdef inline int nthreads(Py_ssize_t n, int n_threads) noexcept nogil:
    return n_threads if n >= PAR_MIN else 1


cdef inline floating pos(floating v) noexcept nogil:
    """max(v, 0)"""
    return v if v > 0 else 0


cdef inline floating neg(floating v) noexcept nogil:
    """min(v, 0), NaN for NaN (so pos(v) + c * neg(v) propagates NaN like the reference)"""
    return 0 if v >= 0 else v


cdef inline floating step(floating v) noexcept nogil:
    """[v > 0] as 1 or 0"""
    return 1 if v > 0 else 0


cdef inline floating clip(floating v, floating lo, floating hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef inline double sigm(double x) noexcept nogil:
    return 1.0 / (1.0 + exp(-x))


cdef inline floating hard_sigmoid_d(floating x, floating slope, floating bias) noexcept nogil:
    """d/dx clip(slope x + bias, 0, 1) = slope [0 < z < 1], z = slope x + bias"""
    cdef floating z = slope * x + bias
    return slope * step(z) * step(1 - z)


cdef inline floating hswish_d(floating x) noexcept nogil:
    """d/dx x clip(x + 3, 0, 6) / 6: 0 for x <= -3, (2x + 3) / 6 inside, 1 for x >= 3"""
    cdef floating inside = step(x + 3) * step(3 - x)
    return (2 * x + 3) / 6 * inside + (1 - step(3 - x))


cdef inline double gelu_sigmoid_d(double x) noexcept nogil:
    """d/dx x sigmoid(1.702 x)"""
    cdef double s = sigm(GELU_K * x)
    return s + GELU_K * x * s * (1.0 - s)


cdef inline double gelu_erf_d(double x) noexcept nogil:
    """d/dx 0.5 x (1 + erf(x / sqrt 2)) = Phi(x) + x phi(x)"""
    return 0.5 * (1.0 + erf(x * SQRT_HALF)) + x * exp(-0.5 * x * x) * INV_SQRT_2PI


# ------------------------------------------------------------- pointwise kernels
def leaky_relu_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = x if x > 0 else alpha x (a = alpha)"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = pos(x[i]) + af * neg(x[i])


def leaky_relu_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * (1 if x > 0 else alpha)"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = dy[i] * (step(x[i]) + af * (1 - step(x[i])))


def elu_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = x if x > 0 else alpha (exp(x) - 1) (a = alpha)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(pos(x[i]) + a * expm1(neg(x[i])))


def elu_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * (1 if x > 0 else alpha exp(x))"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (step(x[i]) + a * exp(neg(x[i])) * (1 - step(x[i]))))


def sigmoid_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = 1 / (1 + exp(-x))"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(sigm(x[i]))


def sigmoid_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * y (1 - y)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (y[i] * (1.0 - y[i])))


def tanh_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = tanh(x)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(tanh(x[i]))


def tanh_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * (1 - y^2)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (1.0 - y[i] * y[i]))


def hard_sigmoid_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = clip(slope x + bias, 0, 1) (a = slope, b = bias)"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = clip(af * x[i] + bf, 0, 1)


def hard_sigmoid_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * slope * [0 < slope x + bias < 1]"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = dy[i] * (hard_sigmoid_d(x[i], af, bf))


def hard_tanh_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = clip(x, -1, 1)"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = clip(x[i], -1, 1)


def hard_tanh_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * [-1 < x < 1]"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = dy[i] * (step(x[i] + 1) * step(1 - x[i]))


def hswish_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = x * clip(x + 3, 0, 6) / 6"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = x[i] * clip(x[i] + 3, 0, 6) / 6


def hswish_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * (0 | (2x + 3) / 6 | 1)"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = dy[i] * (hswish_d(x[i]))


def gelu_sigmoid_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = x * sigmoid(1.702 x)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(x[i] * sigm(GELU_K * x[i]))


def gelu_sigmoid_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * (s + 1.702 x s (1 - s)), s = sigmoid(1.702 x)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (gelu_sigmoid_d(x[i])))


def gelu_erf_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = 0.5 x (1 + erf(x / sqrt 2))"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(0.5 * x[i] * (1.0 + erf(x[i] * SQRT_HALF)))


def gelu_erf_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * (Phi(x) + x phi(x))"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (gelu_erf_d(x[i])))


def abs_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = |x|"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = pos(x[i]) - neg(x[i])


def abs_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * sign(x)"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = dy[i] * (step(x[i]) - step(-x[i]))


def power_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = x^a (a = exponent; NaN for x < 0 and non-integer a)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(pow(x[i], a))


def power_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * a x^(a - 1)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (a * pow(x[i], a - 1.0)))


def exp_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = exp(x)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(exp(x[i]))


def exp_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * y"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (y[i]))


def log_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = log(x)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(log(x[i]))


def log_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy / x"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (1.0 / x[i]))


def erf_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = erf(x)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = <floating>(erf(x[i]))


def erf_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy * 2 / sqrt(pi) exp(-x^2)"""
    cdef Py_ssize_t i, n = x.shape[0]
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = <floating>(dy[i] * (TWO_OVER_SQRT_PI * exp(-x[i] * x[i])))


def linear_activation_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = multiplier x + free_term (a, b)"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = af * x[i] + bf


def linear_activation_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = multiplier dy"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = dy[i] * (af)


def normalizer_forward(const floating[::1] x, floating[::1] y,
        double a, double b, int n_threads):
    """y = x / divisor (a = divisor)"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = x[i] / af


def normalizer_backward(const floating[::1] dy, const floating[::1] x,
        const floating[::1] y, floating[::1] dx, double a, double b, int n_threads):
    """dx = dy / divisor"""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating af = <floating>a, bf = <floating>b
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = dy[i] * (1 / af)


# ------------------------------------------------------------------------ relu
def relu_forward(const floating[::1] x, floating[::1] y, double threshold, int n_threads):
    """relu_forward: y[i] = max(x[i], 0), then min(., threshold) if threshold > 0;
    equals refnn.ops.activation.relu_forward."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int nt = nthreads(n, n_threads)
    cdef floating t = <floating>threshold
    if threshold > 0:
        for i in prange(n, nogil=True, schedule="static", num_threads=nt):
            y[i] = clip(x[i], 0, t)
    else:
        for i in prange(n, nogil=True, schedule="static", num_threads=nt):
            y[i] = 0 if x[i] <= 0 else x[i]          # NaN stays NaN, as in the reference


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
    """y = exp(x - max x) / sum exp(x - max x) for one row of length c (y holds the
    exponentials between the two passes)."""
    cdef Py_ssize_t j
    cdef double m = x[0], s = 0.0, e
    for j in range(1, c):
        m = fmax(m, x[j])
    for j in range(c):
        e = exp(x[j] - m)
        y[j] = <floating>e
        s += e
    for j in range(c):
        y[j] = <floating>(y[j] / s)


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


cdef inline int kept(uint32_t key, Py_ssize_t i, uint32_t threshold) noexcept nogil:
    """mask[i] = ((fmix32(key + i * 0x9E3779B9) >> 8) < threshold), as
    refnn.ops.activation.dropout_mask (key = fmix32(seed ^ 0x9E3779B9))."""
    return (fmix32(key + <uint32_t>i * <uint32_t>0x9E3779B9U) >> 8) < threshold


def dropout_forward(const floating[::1] x, floating[::1] y, uint32_t key, uint32_t threshold,
                    double scale, int n_threads):
    """y[i] = x[i] * mask[i] * scale; equals refnn.ops.activation.dropout_forward."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating s = <floating>scale
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        y[i] = x[i] * (s * kept(key, i, threshold))


def dropout_backward(const floating[::1] dy, floating[::1] dx, uint32_t key,
                     uint32_t threshold, double scale, int n_threads):
    """dx[i] = dy[i] * mask[i] * scale (mask recomputed from the hash, nothing stored);
    equals refnn.ops.activation.dropout_backward."""
    cdef Py_ssize_t i, n = dy.shape[0]
    cdef floating s = <floating>scale
    for i in prange(n, nogil=True, schedule="static", num_threads=nthreads(n, n_threads)):
        dx[i] = dy[i] * (s * kept(key, i, threshold))
