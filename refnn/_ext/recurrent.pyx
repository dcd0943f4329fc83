# cython: language_level=3
"""Recurrent-family kernels: the time loops of rnn, lstm and gru (forward and BPTT).

No validation here: refnn/backends/cpu/recurrent.py has checked ranks, shapes, dtypes
(refnn.ops.recurrent.check_sequence), made everything C-contiguous and allocated every
output. The wrapper also does the matrix products that do not depend on the recurrence
as single BLAS GEMMs over all T*N rows: the input projection x w^T + b before the
forward loop, and dx, dw, du, db after the backward loop. What is left here is the
sequential part: per step one recurrent GEMM (BLAS) and the fused gate math (OpenMP over
the batch when a step is big enough).

Layouts (C-contiguous): sequences (T, N, G*H) or (T, N, H), states (N, H), u (G*H, H);
gate blocks in the order of refnn.ops.recurrent (rnn: h; lstm: g, f, i, o; gru: z, r, n).
``reverse`` walks t = T-1 .. 0; the state before the first processed step is h0 (c0).
"""
from cython.parallel cimport prange
from libc.math cimport exp, expf, tanh, tanhf

from refnn._ext._blas cimport gemm_rowmajor

ctypedef fused floating:
    float
    double

#: elements of one step's gate block above which the gate loop runs in parallel
cdef Py_ssize_t PAR_MIN = 16384


cdef inline floating _tanh(floating a) noexcept nogil:
    if floating is float:
        return tanhf(a)
    else:
        return tanh(a)


cdef inline floating _sigmoid(floating a) noexcept nogil:
    if floating is float:
        return 1 / (1 + expf(-a))
    else:
        return 1 / (1 + exp(-a))


cdef inline Py_ssize_t _step(Py_ssize_t k, Py_ssize_t T, bint reverse) noexcept nogil:
    """The time index of the k-th processed step."""
    return T - 1 - k if reverse else k


cdef inline int _threads(Py_ssize_t work, int nt) noexcept nogil:
    return nt if work >= PAR_MIN else 1


# ----------------------------------------------------------------------------- rnn
def rnn_forward(floating[:, :, ::1] hs, floating[:, ::1] u, floating[:, ::1] h0,
                bint relu, bint reverse, int n_threads):
    """hs holds x_t w^T + b on entry; per step (processing order, h = previous state):
    hs[t] = act(hs[t] + h u^T) (GEMM with beta = 1, then the activation in place)."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n, j
    cdef floating *cur
    cdef const floating *prev = &h0[0, 0]
    cdef int nt = _threads(N * H, n_threads)
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            cur = &hs[t, 0, 0]
            gemm_rowmajor(False, True, <int>N, <int>H, <int>H, <floating>1, prev, <int>H,
                          &u[0, 0], <int>H, <floating>1, cur, <int>H)
            for n in prange(N, schedule="static", num_threads=nt):
                for j in range(n * H, n * H + H):
                    if relu:
                        cur[j] = cur[j] if cur[j] > 0 else 0
                    else:
                        cur[j] = _tanh(cur[j])
            prev = cur


def rnn_backward(floating[:, :, ::1] dhs, floating[:, :, ::1] hs, floating[:, ::1] u,
                 floating[:, :, ::1] dz, floating[:, ::1] dh, bint relu, bint reverse,
                 int n_threads):
    """BPTT loop: dz[t] = (dhs[t] + dh) * act'(hs[t]), then dh = dz[t] u (GEMM).
    dh must be zero on entry; on return it is dh0."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n, j
    cdef floating y, dv
    cdef int nt = _threads(N * H, n_threads)
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            for n in prange(N, schedule="static", num_threads=nt):
                for j in range(H):
                    y = hs[t, n, j]
                    dv = dhs[t, n, j] + dh[n, j]
                    if relu:
                        dz[t, n, j] = dv if y > 0 else 0
                    else:
                        dz[t, n, j] = dv * (1 - y * y)
            gemm_rowmajor(False, False, <int>N, <int>H, <int>H, <floating>1, &dz[t, 0, 0],
                          <int>H, &u[0, 0], <int>H, <floating>0, &dh[0, 0], <int>H)


# ---------------------------------------------------------------------------- lstm
def lstm_forward(floating[:, :, ::1] gates, floating[:, ::1] u, floating[:, ::1] h0,
                 floating[:, ::1] c0, floating[:, :, ::1] hs, floating[:, :, ::1] cs,
                 bint reverse, int n_threads):
    """gates holds x_t w^T + b on entry (T, N, 4H); per step: gates[t] += h u^T (GEMM),
    then the fused cell: g = tanh, f, i, o = sigmoid (stored back into gates),
    c = f * c_prev + i * g, h = o * tanh(c)."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n, j
    cdef floating *a
    cdef floating *hc
    cdef floating *cc
    cdef const floating *hp = &h0[0, 0]
    cdef const floating *cp = &c0[0, 0]
    cdef floating g, f, i, o, c
    cdef int nt = _threads(N * 4 * H, n_threads)
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            a = &gates[t, 0, 0]
            hc = &hs[t, 0, 0]
            cc = &cs[t, 0, 0]
            gemm_rowmajor(False, True, <int>N, <int>(4 * H), <int>H, <floating>1, hp,
                          <int>H, &u[0, 0], <int>H, <floating>1, a, <int>(4 * H))
            for n in prange(N, schedule="static", num_threads=nt):
                for j in range(H):
                    g = _tanh(a[n * 4 * H + j])
                    f = _sigmoid(a[n * 4 * H + H + j])
                    i = _sigmoid(a[n * 4 * H + 2 * H + j])
                    o = _sigmoid(a[n * 4 * H + 3 * H + j])
                    a[n * 4 * H + j] = g
                    a[n * 4 * H + H + j] = f
                    a[n * 4 * H + 2 * H + j] = i
                    a[n * 4 * H + 3 * H + j] = o
                    c = f * cp[n * H + j] + i * g
                    cc[n * H + j] = c
                    hc[n * H + j] = o * _tanh(c)
            hp = hc
            cp = cc


def lstm_backward(floating[:, :, ::1] dhs, floating[:, :, ::1] dcs,
                  floating[:, :, ::1] gates, floating[:, :, ::1] cs, floating[:, ::1] c0,
                  floating[:, ::1] u, floating[:, :, ::1] dz, floating[:, ::1] dh,
                  floating[:, ::1] dc, bint reverse, int n_threads):
    """BPTT loop (refnn.ops.recurrent.lstm_backward): per step the fused cell gradient
    writes dz[t] = [dg, df, di, do] (pre-activation) and dc = dc * f, then dh = dz[t] u
    (GEMM). dh and dc must be zero on entry; on return they are dh0 and dc0."""
    cdef Py_ssize_t T = cs.shape[0], N = cs.shape[1], H = cs.shape[2]
    cdef Py_ssize_t k, t, n, j, r, s
    cdef const floating *a
    cdef const floating *cp
    cdef floating *d
    cdef floating g, f, i, o, tc, dhv, dcv
    cdef int nt = _threads(N * 4 * H, n_threads)
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            a = &gates[t, 0, 0]
            d = &dz[t, 0, 0]
            cp = &c0[0, 0] if k == 0 else &cs[_step(k - 1, T, reverse), 0, 0]
            for n in prange(N, schedule="static", num_threads=nt):
                for j in range(H):
                    r = n * 4 * H + j
                    s = n * H + j
                    g = a[r]
                    f = a[r + H]
                    i = a[r + 2 * H]
                    o = a[r + 3 * H]
                    tc = _tanh(cs[t, n, j])
                    dhv = dhs[t, n, j] + dh[n, j]
                    dcv = dcs[t, n, j] + dc[n, j] + dhv * o * (1 - tc * tc)
                    d[r] = dcv * i * (1 - g * g)
                    d[r + H] = dcv * cp[s] * f * (1 - f)
                    d[r + 2 * H] = dcv * g * i * (1 - i)
                    d[r + 3 * H] = dhv * tc * o * (1 - o)
                    dc[n, j] = dcv * f
            gemm_rowmajor(False, False, <int>N, <int>H, <int>(4 * H), <floating>1, d,
                          <int>(4 * H), &u[0, 0], <int>H, <floating>0, &dh[0, 0], <int>H)


# ----------------------------------------------------------------------------- gru
def gru_forward(floating[:, :, ::1] gates, floating[:, ::1] u, floating[:, ::1] h0,
                floating[:, :, ::1] hs, floating[:, :, ::1] rh, bint reverse,
                int n_threads):
    """gates holds x_t w^T + b on entry (T, N, 3H); per step (h = previous state):
    gates[t][:, :2H] += h u_zr^T (GEMM); z, r = sigmoid; rh[t] = r * h;
    gates[t][:, 2H:] += rh[t] u_n^T (GEMM); n = tanh; hs[t] = (1 - z) n + z h.
    z, r, n are stored back into gates (activated)."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n, j, r
    cdef floating *a
    cdef floating *hc
    cdef floating *q
    cdef const floating *hp = &h0[0, 0]
    cdef floating z, nn
    cdef int nt = _threads(N * 3 * H, n_threads)
    with nogil:
        for k in range(T):
            t = _step(k, T, reverse)
            a = &gates[t, 0, 0]
            hc = &hs[t, 0, 0]
            q = &rh[t, 0, 0]
            gemm_rowmajor(False, True, <int>N, <int>(2 * H), <int>H, <floating>1, hp,
                          <int>H, &u[0, 0], <int>H, <floating>1, a, <int>(3 * H))
            for n in prange(N, schedule="static", num_threads=nt):
                for j in range(H):
                    r = n * 3 * H + j
                    a[r] = _sigmoid(a[r])
                    a[r + H] = _sigmoid(a[r + H])
                    q[n * H + j] = a[r + H] * hp[n * H + j]
            gemm_rowmajor(False, True, <int>N, <int>H, <int>H, <floating>1, q, <int>H,
                          &u[2 * H, 0], <int>H, <floating>1, a + 2 * H, <int>(3 * H))
            for n in prange(N, schedule="static", num_threads=nt):
                for j in range(H):
                    r = n * 3 * H + j
                    z = a[r]
                    nn = _tanh(a[r + 2 * H])
                    a[r + 2 * H] = nn
                    hc[n * H + j] = (1 - z) * nn + z * hp[n * H + j]
            hp = hc


def gru_backward(floating[:, :, ::1] dhs, floating[:, :, ::1] gates,
                 floating[:, :, ::1] hs, floating[:, ::1] h0, floating[:, ::1] u,
                 floating[:, :, ::1] dz, floating[:, ::1] dh, floating[:, ::1] dhcur,
                 floating[:, ::1] drh, bint reverse, int n_threads):
    """BPTT loop (refnn.ops.recurrent.gru_backward), per step (h = previous state):
    dhcur = dhs[t] + dh; dz[t] n-block = dhcur (1 - z)(1 - n^2), z-block =
    dhcur (h - n) z (1 - z); drh = dn u_n (GEMM); r-block = drh h r (1 - r);
    dh = dhcur z + drh r, then dh += [dz, dr] u_zr (GEMM).
    dh must be zero on entry; on return it is dh0. dhcur and drh are scratch (N, H)."""
    cdef Py_ssize_t T = hs.shape[0], N = hs.shape[1], H = hs.shape[2]
    cdef Py_ssize_t k, t, n, j, r, s
    cdef const floating *a
    cdef const floating *hp
    cdef floating *d
    cdef floating z, rr, nn, dv
    cdef int nt = _threads(N * 3 * H, n_threads)
    with nogil:
        for k in range(T - 1, -1, -1):
            t = _step(k, T, reverse)
            a = &gates[t, 0, 0]
            d = &dz[t, 0, 0]
            hp = &h0[0, 0] if k == 0 else &hs[_step(k - 1, T, reverse), 0, 0]
            for n in prange(N, schedule="static", num_threads=nt):
                for j in range(H):
                    r = n * 3 * H + j
                    s = n * H + j
                    z = a[r]
                    nn = a[r + 2 * H]
                    dv = dhs[t, n, j] + dh[n, j]
                    dhcur[n, j] = dv
                    d[r + 2 * H] = dv * (1 - z) * (1 - nn * nn)
                    d[r] = dv * (hp[s] - nn) * z * (1 - z)
            gemm_rowmajor(False, False, <int>N, <int>H, <int>H, <floating>1, d + 2 * H,
                          <int>(3 * H), &u[2 * H, 0], <int>H, <floating>0, &drh[0, 0],
                          <int>H)
            for n in prange(N, schedule="static", num_threads=nt):
                for j in range(H):
                    r = n * 3 * H + j
                    s = n * H + j
                    rr = a[r + H]
                    d[r + H] = drh[n, j] * hp[s] * rr * (1 - rr)
                    dh[n, j] = dhcur[n, j] * a[r] + drh[n, j] * rr
            gemm_rowmajor(False, False, <int>N, <int>H, <int>(2 * H), <floating>1, d,
                          <int>(3 * H), &u[0, 0], <int>H, <floating>1, &dh[0, 0], <int>H)
