# cython: language_level=3
"""Fused optimizer kernels: one pass over the elements updates param and state in place.

Each mirrors refnn.ops.optim.<name>_update. No validation here:
refnn/backends/cpu/optim.py has checked that every array is C-contiguous, of one
dtype and of param's shape (arrays come flat), and it computes the scalar
coefficients (bias corrections, NAdam's mu) in float64. ``clip <= 0`` means no clip.
"""
from cython.parallel cimport prange
from libc.math cimport sqrt, fmax, fmin

ctypedef fused floating:
    float
    double

# Parallel loops only pay off above this many elements (thread start-up ~ microseconds).
cdef Py_ssize_t PAR_MIN = 32768


cdef inline double _prep(double g, double scale, double clip) noexcept nogil:
    """neon: clip(g * scale, -clip, clip) (no clip when clip <= 0)."""
    g = g * scale
    return fmin(fmax(g, -clip), clip) if clip > 0 else g


cdef inline double _reg(double w, double l1, double l2) noexcept nogil:
    """NeoML: l2 w + clip(w, -l1, l1)."""
    return l2 * w + fmin(fmax(w, -l1), l1)


def gdm_update(floating[::1] w, const floating[::1] grad, floating[::1] vel, double lr,
               double mom, double wdecay, bint nesterov, double scale, double clip,
               double norm_scale, int n_threads):
    """g = norm_scale clip(grad scale) + wdecay w; vel = mom vel - lr g;
    w += vel (or mom vel - lr g with nesterov)."""
    cdef Py_ssize_t i, n = w.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    cdef double g, v
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        g = norm_scale * _prep(grad[i], scale, clip) + wdecay * w[i]
        v = mom * vel[i] - lr * g
        vel[i] = <floating>v
        w[i] = <floating>(w[i] + (mom * v - lr * g if nesterov else v))


def rmsprop_update(floating[::1] w, const floating[::1] grad, floating[::1] state, double lr,
                   double decay, double eps, double scale, double clip, double norm_scale,
                   int n_threads):
    """g = clip(grad scale); state = decay state + (1 - decay) g^2;
    w -= norm_scale lr g / (sqrt(state + eps) + eps)."""
    cdef Py_ssize_t i, n = w.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    cdef double g, s
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        g = _prep(grad[i], scale, clip)
        s = decay * state[i] + (1 - decay) * g * g
        state[i] = <floating>s
        w[i] = <floating>(w[i] - norm_scale * lr * g / (sqrt(s + eps) + eps))


def adagrad_update(floating[::1] w, const floating[::1] grad, floating[::1] state, double lr,
                   double eps, double scale, double clip, double norm_scale, int n_threads):
    """g = clip(grad scale); state += g^2; w -= norm_scale lr g / sqrt(state + eps)."""
    cdef Py_ssize_t i, n = w.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    cdef double g, s
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        g = _prep(grad[i], scale, clip)
        s = state[i] + g * g
        state[i] = <floating>s
        w[i] = <floating>(w[i] - norm_scale * lr * g / sqrt(s + eps))


def adadelta_update(floating[::1] w, const floating[::1] grad, floating[::1] eg2,
                    floating[::1] edx2, double decay, double eps, double scale, int n_threads):
    """g = grad scale; eg2 = decay eg2 + (1 - decay) g^2; dx = sqrt((edx2 + eps) / (eg2 + eps)) g;
    edx2 = decay edx2 + (1 - decay) dx^2; w -= dx."""
    cdef Py_ssize_t i, n = w.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    cdef double g, e, dx
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        g = grad[i] * scale
        e = decay * eg2[i] + (1 - decay) * g * g
        eg2[i] = <floating>e
        dx = sqrt((edx2[i] + eps) / (e + eps)) * g
        edx2[i] = <floating>(decay * edx2[i] + (1 - decay) * dx * dx)
        w[i] = <floating>(w[i] - dx)


def adam_update(floating[::1] w, const floating[::1] grad, floating[::1] m, floating[::1] v,
                double rate, double b1, double b2, double eps, double scale, double clip,
                int n_threads):
    """g = clip(grad scale); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    w -= rate m / (sqrt(v) + eps), rate = norm_scale lr sqrt(1 - b2^t) / (1 - b1^t)."""
    cdef Py_ssize_t i, n = w.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    cdef double g, mi, vi
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        g = _prep(grad[i], scale, clip)
        mi = b1 * m[i] + (1 - b1) * g
        vi = b2 * v[i] + (1 - b2) * g * g
        m[i] = <floating>mi
        v[i] = <floating>vi
        w[i] = <floating>(w[i] - rate * mi / (sqrt(vi) + eps))


def simple_gradient_update(floating[::1] w, const floating[::1] grad, floating[::1] hist,
                           double lr, double mom, double l1, double l2, double scale,
                           int n_threads):
    """hist = mom hist - lr (grad scale + l2 w + clip(w, -l1, l1)); w += hist."""
    cdef Py_ssize_t i, n = w.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    cdef double h
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        h = mom * hist[i] - lr * (grad[i] * scale + _reg(w[i], l1, l2))
        hist[i] = <floating>h
        w[i] = <floating>(w[i] + h)


def adaptive_update(floating[::1] w, const floating[::1] grad, floating[::1] m,
                    floating[::1] v, floating[::1] vmax, bint amsgrad, bint decoupled,
                    double rate, double b1, double b2, double eps, double l1, double l2,
                    double g_mult, double m_mult, double v_div, double scale, int n_threads):
    """NeoML AdaptiveGradient and NesterovGradient in one kernel:
    g = grad scale (+ reg(w) unless decoupled); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    s = max(vmax, v) with amsgrad (stored back), else v;
    step = (g_mult g + m_mult m) / (sqrt(s / v_div) + eps) (+ reg(w) if decoupled); w -= rate step.
    Adam: g_mult = 0, m_mult = 1, v_div = 1; NAdam: Dozat's m_bar coefficients, v_div = 1 - b2^t."""
    cdef Py_ssize_t i, n = w.shape[0]
    cdef int nt = n_threads if n >= PAR_MIN else 1
    cdef double g, mi, vi, step
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        g = grad[i] * scale
        if not decoupled:
            g = g + _reg(w[i], l1, l2)
        mi = b1 * m[i] + (1 - b1) * g
        vi = b2 * v[i] + (1 - b2) * g * g
        m[i] = <floating>mi
        v[i] = <floating>vi
        if amsgrad:
            vi = fmax(vmax[i], vi)
            vmax[i] = <floating>vi
        step = (g_mult * g + m_mult * mi) / (sqrt(vi / v_div) + eps)
        if decoupled:
            step = step + _reg(w[i], l1, l2)
        w[i] = <floating>(w[i] - rate * step)
