# cython: language_level=3
"""Loss kernels, one object (row) at a time; each mirrors refnn.ops.loss.<name>_forward/backward.

No validation here: refnn/backends/cpu/loss.py has checked shapes, dtypes, contiguity
and the label range, and allocated the outputs. Layout: x (N, C) row-major, l (N,).
Object weights always come as an (N,) vector (ones when the caller gave none); for
cross_entropy, y[n, c] is ``yi[n] == c`` with int labels, else ``yf[n, c]``;
``max_grad <= 0`` means "do not clip the gradient".
"""
from cython.parallel cimport prange
from libc.math cimport exp, log, fabs, fmax, fmin

ctypedef fused floating:
    float
    double

# Parallel loops only pay off above this many elements (thread start-up ~ microseconds).
cdef Py_ssize_t PAR_MIN = 32768

# neon cost kinds (the order of refnn.backends.cpu.loss.NEON_KINDS)
cdef enum:
    CE_MULTI = 0
    CE_BINARY = 1
    SUM_SQUARED = 2
    MEAN_SQUARED = 3


cdef inline double _safelog(double a, double floor) noexcept nogil:
    return log(fmax(a, floor))


cdef inline double _neon_term(int kind, double y, double t, double floor,
                              Py_ssize_t C) noexcept nogil:
    """One element's contribution to l_n for neon cost ``kind``."""
    if kind == CE_MULTI:
        return -t * _safelog(y, floor)
    if kind == CE_BINARY:
        return -(t * _safelog(y, floor) + (1 - t) * _safelog(1 - y, floor))
    if kind == SUM_SQUARED:
        return (y - t) * (y - t) / 2
    return (y - t) * (y - t) / (2 * C)


cdef inline double _neon_grad(int kind, double y, double t, double floor,
                              Py_ssize_t C) noexcept nogil:
    """d(term)/dy for neon cost ``kind`` (0 where safelog is flat)."""
    cdef double d = 0
    if kind == CE_MULTI:
        return -t / y if y > floor else 0
    if kind == CE_BINARY:
        if y > floor:
            d = -t / y
        if 1 - y > floor:
            d = d + (1 - t) / (1 - y)
        return d
    if kind == SUM_SQUARED:
        return y - t
    return (y - t) / C


def neon_forward(int kind, const floating[:, ::1] y, const floating[:, ::1] t,
                 floating[::1] l, double floor, int n_threads):
    """l[n] = sum_c term(y[n, c], t[n, c]) for the neon cost ``kind``;
    equals refnn.ops.loss.<kind>_forward."""
    cdef Py_ssize_t n, c, N = y.shape[0], C = y.shape[1]
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    cdef double acc
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        acc = 0
        for c in range(C):
            acc = acc + _neon_term(kind, y[n, c], t[n, c], floor, C)
        l[n] = <floating>acc


def neon_backward(int kind, const floating[::1] dl, const floating[:, ::1] y,
                  const floating[:, ::1] t, floating[:, ::1] dy, double floor, int n_threads):
    """dy[n, c] = dl[n] * d term / dy; equals refnn.ops.loss.<kind>_backward."""
    cdef Py_ssize_t n, c, N = y.shape[0], C = y.shape[1]
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        for c in range(C):
            dy[n, c] = <floating>(dl[n] * _neon_grad(kind, y[n, c], t[n, c], floor, C))


cdef inline double _clip(double g, double max_grad) noexcept nogil:
    return fmin(fmax(g, -max_grad), max_grad) if max_grad > 0 else g


def cross_entropy_forward(const floating[:, ::1] x, const floating[:, ::1] yf,
                          const int[::1] yi, bint use_int, const floating[::1] w,
                          bint softmax, double eps, floating[::1] l, floating[::1] aux,
                          int n_threads):
    """NeoML cross-entropy per object; equals refnn.ops.loss.cross_entropy_forward.
    softmax: l = w (lse * sum y - sum y x), aux = lse = log sum exp x;
    else:    l = w (-sum y log clip(x, eps, 1 - eps) + sum y * log sum x), aux = sum x."""
    cdef Py_ssize_t n, c, N = x.shape[0], C = x.shape[1]
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    cdef double m, s, ysum, yx, y
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        m = x[n, 0]
        for c in range(1, C):
            m = fmax(m, x[n, c])
        s = 0
        ysum = 0
        yx = 0
        for c in range(C):
            y = (<double>(yi[n] == c) if use_int else <double>yf[n, c])
            ysum = ysum + y
            if softmax:
                s = s + exp(x[n, c] - m)
                yx = yx + y * x[n, c]
            else:
                s = s + x[n, c]
                yx = yx - y * log(fmin(fmax(x[n, c], eps), 1 - eps))
        if softmax:
            aux[n] = <floating>(m + log(s))
            l[n] = <floating>(w[n] * ((m + log(s)) * ysum - yx))
        else:
            aux[n] = <floating>s
            l[n] = <floating>(w[n] * (yx + ysum * log(s)))


def cross_entropy_backward(const floating[::1] dl, const floating[:, ::1] x,
                           const floating[:, ::1] yf, const int[::1] yi, bint use_int,
                           const floating[::1] w, bint softmax, double eps,
                           const floating[::1] aux, double max_grad, floating[:, ::1] dx,
                           int n_threads):
    """dx = dl w (softmax(x) sum y - y), or dl w (-y / x [inside clip] + sum y / sum x),
    clipped to +-max_grad; equals refnn.ops.loss.cross_entropy_backward."""
    cdef Py_ssize_t n, c, N = x.shape[0], C = x.shape[1]
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    cdef double ysum, y, d, v
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        ysum = 0
        for c in range(C):
            ysum = ysum + (<double>(yi[n] == c) if use_int else <double>yf[n, c])
        for c in range(C):
            y = (<double>(yi[n] == c) if use_int else <double>yf[n, c])
            v = x[n, c]
            if softmax:
                d = exp(v - aux[n]) * ysum - y
            else:
                d = ysum / aux[n]
                if v > eps and v < 1 - eps:
                    d = d - y / v
            dx[n, c] = <floating>_clip(dl[n] * w[n] * d, max_grad)


def binary_cross_entropy_forward(const floating[:, ::1] x, const floating[:, ::1] y,
                                 const floating[::1] w, double positive_weight,
                                 floating[::1] l, int n_threads):
    """l = w sum_c [(1 - z) x + (1 + (q - 1) z) (log(1 + e^-|x|) + max(-x, 0))], z = (y + 1) / 2;
    equals refnn.ops.loss.binary_cross_entropy_forward."""
    cdef Py_ssize_t n, c, N = x.shape[0], C = x.shape[1]
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    cdef double acc, z, v
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        acc = 0
        for c in range(C):
            z = (y[n, c] + 1) / 2
            v = x[n, c]
            acc = acc + (1 - z) * v + (1 + (positive_weight - 1) * z) * (
                log(1 + exp(-fabs(v))) + fmax(-v, 0))
        l[n] = <floating>(w[n] * acc)


def binary_cross_entropy_backward(const floating[::1] dl, const floating[:, ::1] x,
                                  const floating[:, ::1] y, const floating[::1] w,
                                  double positive_weight, double max_grad,
                                  floating[:, ::1] dx, int n_threads):
    """dx = dl w [(1 - z) - (1 + (q - 1) z) sigmoid(-x)], clipped to +-max_grad;
    equals refnn.ops.loss.binary_cross_entropy_backward."""
    cdef Py_ssize_t n, c, N = x.shape[0], C = x.shape[1]
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    cdef double z, v, sig_neg
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        for c in range(C):
            z = (y[n, c] + 1) / 2
            v = x[n, c]
            sig_neg = exp(-fmax(v, 0)) / (1 + exp(-fabs(v)))
            dx[n, c] = <floating>_clip(
                dl[n] * w[n] * ((1 - z) - (1 + (positive_weight - 1) * z) * sig_neg), max_grad)


def euclidean_forward(const floating[:, ::1] x, const floating[:, ::1] y,
                      const floating[::1] w, floating[::1] l, int n_threads):
    """l = w sum_c huber(x - y) (d^2 / 2 if |d| < 1 else |d| - 1/2);
    equals refnn.ops.loss.euclidean_forward."""
    cdef Py_ssize_t n, c, N = x.shape[0], C = x.shape[1]
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    cdef double acc, d
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        acc = 0
        for c in range(C):
            d = x[n, c] - y[n, c]
            acc = acc + (d * d / 2 if fabs(d) < 1 else fabs(d) - 0.5)
        l[n] = <floating>(w[n] * acc)


def euclidean_backward(const floating[::1] dl, const floating[:, ::1] x,
                       const floating[:, ::1] y, const floating[::1] w, double max_grad,
                       floating[:, ::1] dx, int n_threads):
    """dx = dl w clip(x - y, -1, 1), clipped to +-max_grad;
    equals refnn.ops.loss.euclidean_backward."""
    cdef Py_ssize_t n, c, N = x.shape[0], C = x.shape[1]
    cdef int nt = n_threads if N * C >= PAR_MIN else 1
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        for c in range(C):
            dx[n, c] = <floating>_clip(dl[n] * w[n] * fmin(fmax(x[n, c] - y[n, c], -1), 1),
                                       max_grad)
