# cython: language_level=3
"""Attention-family kernels: scaled dot-product attention, batch entries in parallel.

Each batch entry b is three small GEMMs through BLAS (refnn/_ext/_blas.pxd) and a
fused row softmax; OpenMP runs the entries b in parallel (prange over B), each thread
calling single-entry GEMMs -- the matrices (a few dozen rows) are too small for BLAS's
own threads to pay off.

No validation here: refnn/backends/cpu/attention.py has checked ranks, shapes, dtypes
and contiguity and allocated every output. Layouts (C-contiguous): q (B, Tq, d),
k (B, Tk, d), v (B, Tk, dv), mask (Tq, Tk) with mask_stride 0 or (B, Tq, Tk) with
mask_stride Tq*Tk, keep (B, Tq, Tk), P and A (B, Tq, Tk), out (B, Tq, dv).
Equals refnn.ops.attention.scaled_dot_attention_forward/backward.
"""
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport exp, expf, tanh

from refnn._ext._blas cimport gemm_rowmajor

cnp.import_array()

ctypedef fused floating:
    float
    double


cdef inline void _softmax_row(floating *s, const floating *m, Py_ssize_t n) noexcept nogil:
    """s[j] <- exp(s[j] + m[j] - max) / sum (m may be NULL): P_ij of the reference.
    float rows use expf (single precision, vectorisable; libm's double exp cost 3x the
    GEMMs of a 64 x 64 head), the sum is accumulated in double either way."""
    cdef Py_ssize_t j
    cdef floating mx
    cdef double tot = 0
    if m != NULL:
        for j in range(n):
            s[j] = s[j] + m[j]
    mx = s[0]
    for j in range(1, n):
        if s[j] > mx:
            mx = s[j]
    if floating is float:
        for j in range(n):
            s[j] = expf(s[j] - mx)
    else:
        for j in range(n):
            s[j] = exp(s[j] - mx)
    for j in range(n):
        tot += s[j]
    tot = 1.0 / tot
    for j in range(n):
        s[j] = <floating>(s[j] * tot)


cdef void _fwd(const floating *q, const floating *k, const floating *v,
               const floating *mask, Py_ssize_t mstride, const floating *keep,
               floating *P, floating *A, floating *out, floating scale,
               Py_ssize_t B, Py_ssize_t Tq, Py_ssize_t Tk, Py_ssize_t d, Py_ssize_t dv,
               int nt) noexcept nogil:
    """P[b] = softmax(scale q[b] k[b]^T + mask); A[b] = P[b] * keep[b];
    out[b] = A[b] v[b] (A is P when keep is NULL)."""
    cdef Py_ssize_t b, i, j, TT = Tq * Tk
    cdef floating *Pb
    cdef floating *Ab
    for b in prange(B, schedule="static", num_threads=nt):
        Pb = P + b * TT
        gemm_rowmajor(False, True, <int>Tq, <int>Tk, <int>d, scale, q + b * Tq * d, <int>d,
                      k + b * Tk * d, <int>d, <floating>0, Pb, <int>Tk)
        for i in range(Tq):
            _softmax_row(Pb + i * Tk, (mask + b * mstride + i * Tk) if mask != NULL else NULL,
                         Tk)
        Ab = Pb
        if keep != NULL:
            Ab = A + b * TT
            for j in range(TT):
                Ab[j] = Pb[j] * keep[b * TT + j]
        gemm_rowmajor(False, False, <int>Tq, <int>dv, <int>Tk, <floating>1, Ab, <int>Tk,
                      v + b * Tk * dv, <int>dv, <floating>0, out + b * Tq * dv, <int>dv)


cdef void _bwd(const floating *dout, const floating *q, const floating *k,
               const floating *v, const floating *P, const floating *A,
               const floating *keep, floating *dS, floating *dq, floating *dk,
               floating *dv_, floating scale, Py_ssize_t B, Py_ssize_t Tq, Py_ssize_t Tk,
               Py_ssize_t d, Py_ssize_t dv, int nt) noexcept nogil:
    """dv = A^T dout; dP = (dout v^T) * keep; dS = P (dP - rowsum(P dP));
    dq = scale dS k; dk = scale dS^T q (A = P when keep is NULL)."""
    cdef Py_ssize_t b, i, j, TT = Tq * Tk
    cdef double acc
    cdef floating *S
    cdef const floating *Pb
    for b in prange(B, schedule="static", num_threads=nt):
        S = dS + b * TT
        Pb = P + b * TT
        gemm_rowmajor(True, False, <int>Tk, <int>dv, <int>Tq, <floating>1,
                      (A if keep != NULL else P) + b * TT, <int>Tk,
                      dout + b * Tq * dv, <int>dv, <floating>0, dv_ + b * Tk * dv, <int>dv)
        gemm_rowmajor(False, True, <int>Tq, <int>Tk, <int>dv, <floating>1,
                      dout + b * Tq * dv, <int>dv, v + b * Tk * dv, <int>dv,
                      <floating>0, S, <int>Tk)
        if keep != NULL:
            for j in range(TT):
                S[j] = S[j] * keep[b * TT + j]
        for i in range(Tq):
            acc = 0
            for j in range(Tk):
                acc = acc + Pb[i * Tk + j] * S[i * Tk + j]
            for j in range(Tk):
                S[i * Tk + j] = <floating>(Pb[i * Tk + j] * (S[i * Tk + j] - acc))
        gemm_rowmajor(False, False, <int>Tq, <int>d, <int>Tk, scale, S, <int>Tk,
                      k + b * Tk * d, <int>d, <floating>0, dq + b * Tq * d, <int>d)
        gemm_rowmajor(True, False, <int>Tk, <int>d, <int>Tq, scale, S, <int>Tk,
                      q + b * Tq * d, <int>d, <floating>0, dk + b * Tk * d, <int>d)


cdef inline void *_ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def forward(cnp.ndarray q, cnp.ndarray k, cnp.ndarray v, object mask, Py_ssize_t mstride,
            object keep, cnp.ndarray P, object A, cnp.ndarray out, double scale,
            int n_threads):
    """scaled_dot_attention_forward; mask, keep and A may be None (A is needed with keep)."""
    cdef Py_ssize_t B = cnp.PyArray_DIM(q, 0), Tq = cnp.PyArray_DIM(q, 1)
    cdef Py_ssize_t d = cnp.PyArray_DIM(q, 2), Tk = cnp.PyArray_DIM(k, 1)
    cdef Py_ssize_t dv = cnp.PyArray_DIM(v, 2)
    cdef void *m = _ptr(mask)
    cdef void *kp = _ptr(keep)
    cdef void *ap = _ptr(A)
    cdef int nt = n_threads if B > 1 else 1
    if cnp.PyArray_TYPE(q) == cnp.NPY_FLOAT32:
        with nogil:
            _fwd[float](<float *>cnp.PyArray_DATA(q), <float *>cnp.PyArray_DATA(k),
                        <float *>cnp.PyArray_DATA(v), <float *>m, mstride, <float *>kp,
                        <float *>cnp.PyArray_DATA(P), <float *>ap,
                        <float *>cnp.PyArray_DATA(out), <float>scale, B, Tq, Tk, d, dv, nt)
    else:
        with nogil:
            _fwd[double](<double *>cnp.PyArray_DATA(q), <double *>cnp.PyArray_DATA(k),
                         <double *>cnp.PyArray_DATA(v), <double *>m, mstride, <double *>kp,
                         <double *>cnp.PyArray_DATA(P), <double *>ap,
                         <double *>cnp.PyArray_DATA(out), scale, B, Tq, Tk, d, dv, nt)


def backward(cnp.ndarray dout, cnp.ndarray q, cnp.ndarray k, cnp.ndarray v, cnp.ndarray P,
             object A, object keep, cnp.ndarray dS, cnp.ndarray dq, cnp.ndarray dk,
             cnp.ndarray dv, double scale, int n_threads):
    """scaled_dot_attention_backward into dq, dk, dv (dS: (B, Tq, Tk) scratch)."""
    cdef Py_ssize_t B = cnp.PyArray_DIM(q, 0), Tq = cnp.PyArray_DIM(q, 1)
    cdef Py_ssize_t d = cnp.PyArray_DIM(q, 2), Tk = cnp.PyArray_DIM(k, 1)
    cdef Py_ssize_t Dv = cnp.PyArray_DIM(v, 2)
    cdef void *kp = _ptr(keep)
    cdef void *ap = _ptr(A)
    cdef int nt = n_threads if B > 1 else 1
    if cnp.PyArray_TYPE(q) == cnp.NPY_FLOAT32:
        with nogil:
            _bwd[float](<float *>cnp.PyArray_DATA(dout), <float *>cnp.PyArray_DATA(q),
                        <float *>cnp.PyArray_DATA(k), <float *>cnp.PyArray_DATA(v),
                        <float *>cnp.PyArray_DATA(P), <float *>ap, <float *>kp,
                        <float *>cnp.PyArray_DATA(dS), <float *>cnp.PyArray_DATA(dq),
                        <float *>cnp.PyArray_DATA(dk), <float *>cnp.PyArray_DATA(dv),
                        <float>scale, B, Tq, Tk, d, Dv, nt)
    else:
        with nogil:
            _bwd[double](<double *>cnp.PyArray_DATA(dout), <double *>cnp.PyArray_DATA(q),
                         <double *>cnp.PyArray_DATA(k), <double *>cnp.PyArray_DATA(v),
                         <double *>cnp.PyArray_DATA(P), <double *>ap, <double *>kp,
                         <double *>cnp.PyArray_DATA(dS), <double *>cnp.PyArray_DATA(dq),
                         <double *>cnp.PyArray_DATA(dk), <double *>cnp.PyArray_DATA(dv),
                         scale, B, Tq, Tk, d, Dv, nt)


cdef void _permute(const floating *src, floating *dst, Py_ssize_t N, Py_ssize_t T,
                   Py_ssize_t H, Py_ssize_t d, bint split, int nt) noexcept nogil:
    """split: dst[(n*H + h)*T + t, c] = src[(n*T + t)*H + h, c]; merge: the reverse."""
    cdef Py_ssize_t r, n, h, t, c, a, b
    for r in prange(N * H, schedule="static", num_threads=nt):
        n = r // H
        h = r - n * H
        for t in range(T):
            a = (r * T + t) * d                 # offset in the (N*H, T, d) array
            b = ((n * T + t) * H + h) * d       # offset in the (N, T, H*d) array
            if split:
                for c in range(d):
                    dst[a + c] = src[b + c]
            else:
                for c in range(d):
                    dst[b + c] = src[a + c]


def permute_heads(cnp.ndarray src, cnp.ndarray dst, Py_ssize_t N, Py_ssize_t T,
                  Py_ssize_t H, Py_ssize_t d, bint split, int n_threads):
    """split_heads (split=True) / merge_heads: (N, T, H*d) <-> (N*H, T, d)."""
    cdef int nt = n_threads if N * T * H * d >= 32768 else 1
    if cnp.PyArray_TYPE(src) == cnp.NPY_FLOAT32:
        with nogil:
            _permute[float](<const float *>cnp.PyArray_DATA(src),
                            <float *>cnp.PyArray_DATA(dst), N, T, H, d, split, nt)
    else:
        with nogil:
            _permute[double](<const double *>cnp.PyArray_DATA(src),
                             <double *>cnp.PyArray_DATA(dst), N, T, H, d, split, nt)


cdef void _add_fwd(const floating *q, const floating *k, const floating *v,
                   const floating *w, floating *P, floating *out, Py_ssize_t B,
                   Py_ssize_t Tq, Py_ssize_t Tk, Py_ssize_t d, Py_ssize_t dv,
                   int nt) noexcept nogil:
    """additive_attention_forward: P[b, i, j] = softmax_j(sum_c w_c tanh(q[b,i,c] +
    k[b,j,c])); out[b] = P[b] v[b] (one BLAS GEMM per entry)."""
    cdef Py_ssize_t b, i, j, c
    cdef double acc
    cdef floating *row
    cdef const floating *qi
    cdef const floating *kj
    for b in prange(B, schedule="static", num_threads=nt):
        for i in range(Tq):
            row = P + (b * Tq + i) * Tk
            qi = q + (b * Tq + i) * d
            for j in range(Tk):
                kj = k + (b * Tk + j) * d
                acc = 0
                for c in range(d):
                    acc = acc + w[c] * tanh(qi[c] + kj[c])
                row[j] = <floating>acc
            _softmax_row(row, <const floating *>NULL, Tk)
        gemm_rowmajor(False, False, <int>Tq, <int>dv, <int>Tk, <floating>1, P + b * Tq * Tk,
                      <int>Tk, v + b * Tk * dv, <int>dv, <floating>0, out + b * Tq * dv,
                      <int>dv)


cdef void _add_bwd(const floating *dout, const floating *q, const floating *k,
                   const floating *v, const floating *w, const floating *P, floating *dS,
                   floating *dq, floating *dk, floating *dv_, floating *dw_part,
                   Py_ssize_t B, Py_ssize_t Tq, Py_ssize_t Tk, Py_ssize_t d, Py_ssize_t dv,
                   int nt) noexcept nogil:
    """dv = P^T dout; dS = softmax backward of dout v^T; with e = tanh(q_i + k_j),
    g = dS_ij w_c (1 - e^2): dq_i += g, dk_j += g, dw_part[b, c] += dS_ij e
    (dq, dk zeroed by the wrapper; dw = dw_part summed over b)."""
    cdef Py_ssize_t b, i, j, c
    cdef double acc, e, s
    cdef floating *S
    cdef const floating *Pb
    cdef const floating *qi
    cdef const floating *kj
    cdef floating *dqi
    cdef floating *dkj
    cdef floating *dwb
    for b in prange(B, schedule="static", num_threads=nt):
        S = dS + b * Tq * Tk
        Pb = P + b * Tq * Tk
        gemm_rowmajor(True, False, <int>Tk, <int>dv, <int>Tq, <floating>1, Pb, <int>Tk,
                      dout + b * Tq * dv, <int>dv, <floating>0, dv_ + b * Tk * dv, <int>dv)
        gemm_rowmajor(False, True, <int>Tq, <int>Tk, <int>dv, <floating>1,
                      dout + b * Tq * dv, <int>dv, v + b * Tk * dv, <int>dv,
                      <floating>0, S, <int>Tk)
        dwb = dw_part + b * d
        for i in range(Tq):
            acc = 0
            for j in range(Tk):
                acc = acc + Pb[i * Tk + j] * S[i * Tk + j]
            qi = q + (b * Tq + i) * d
            dqi = dq + (b * Tq + i) * d
            for j in range(Tk):
                s = Pb[i * Tk + j] * (S[i * Tk + j] - acc)
                kj = k + (b * Tk + j) * d
                dkj = dk + (b * Tk + j) * d
                for c in range(d):
                    e = tanh(qi[c] + kj[c])
                    dqi[c] = <floating>(dqi[c] + s * w[c] * (1 - e * e))
                    dkj[c] = <floating>(dkj[c] + s * w[c] * (1 - e * e))
                    dwb[c] = <floating>(dwb[c] + s * e)


def additive_forward(cnp.ndarray q, cnp.ndarray k, cnp.ndarray v, cnp.ndarray w,
                     cnp.ndarray P, cnp.ndarray out, int n_threads):
    """additive_attention_forward into P (B, Tq, Tk) and out (B, Tq, dv)."""
    cdef Py_ssize_t B = cnp.PyArray_DIM(q, 0), Tq = cnp.PyArray_DIM(q, 1)
    cdef Py_ssize_t d = cnp.PyArray_DIM(q, 2), Tk = cnp.PyArray_DIM(k, 1)
    cdef Py_ssize_t dv = cnp.PyArray_DIM(v, 2)
    cdef int nt = n_threads if B > 1 else 1
    if cnp.PyArray_TYPE(q) == cnp.NPY_FLOAT32:
        with nogil:
            _add_fwd[float](<float *>cnp.PyArray_DATA(q), <float *>cnp.PyArray_DATA(k),
                            <float *>cnp.PyArray_DATA(v), <float *>cnp.PyArray_DATA(w),
                            <float *>cnp.PyArray_DATA(P), <float *>cnp.PyArray_DATA(out),
                            B, Tq, Tk, d, dv, nt)
    else:
        with nogil:
            _add_fwd[double](<double *>cnp.PyArray_DATA(q), <double *>cnp.PyArray_DATA(k),
                             <double *>cnp.PyArray_DATA(v), <double *>cnp.PyArray_DATA(w),
                             <double *>cnp.PyArray_DATA(P), <double *>cnp.PyArray_DATA(out),
                             B, Tq, Tk, d, dv, nt)


def additive_backward(cnp.ndarray dout, cnp.ndarray q, cnp.ndarray k, cnp.ndarray v,
                      cnp.ndarray w, cnp.ndarray P, cnp.ndarray dS, cnp.ndarray dq,
                      cnp.ndarray dk, cnp.ndarray dv, cnp.ndarray dw_part, int n_threads):
    """additive_attention_backward; dq, dk, dw_part (B, d) must come in zeroed."""
    cdef Py_ssize_t B = cnp.PyArray_DIM(q, 0), Tq = cnp.PyArray_DIM(q, 1)
    cdef Py_ssize_t d = cnp.PyArray_DIM(q, 2), Tk = cnp.PyArray_DIM(k, 1)
    cdef Py_ssize_t Dv = cnp.PyArray_DIM(v, 2)
    cdef int nt = n_threads if B > 1 else 1
    if cnp.PyArray_TYPE(q) == cnp.NPY_FLOAT32:
        with nogil:
            _add_bwd[float](<float *>cnp.PyArray_DATA(dout), <float *>cnp.PyArray_DATA(q),
                            <float *>cnp.PyArray_DATA(k), <float *>cnp.PyArray_DATA(v),
                            <float *>cnp.PyArray_DATA(w), <float *>cnp.PyArray_DATA(P),
                            <float *>cnp.PyArray_DATA(dS), <float *>cnp.PyArray_DATA(dq),
                            <float *>cnp.PyArray_DATA(dk), <float *>cnp.PyArray_DATA(dv),
                            <float *>cnp.PyArray_DATA(dw_part), B, Tq, Tk, d, Dv, nt)
    else:
        with nogil:
            _add_bwd[double](<double *>cnp.PyArray_DATA(dout), <double *>cnp.PyArray_DATA(q),
                             <double *>cnp.PyArray_DATA(k), <double *>cnp.PyArray_DATA(v),
                             <double *>cnp.PyArray_DATA(w), <double *>cnp.PyArray_DATA(P),
                             <double *>cnp.PyArray_DATA(dS), <double *>cnp.PyArray_DATA(dq),
                             <double *>cnp.PyArray_DATA(dk), <double *>cnp.PyArray_DATA(dv),
                             <double *>cnp.PyArray_DATA(dw_part), B, Tq, Tk, d, Dv, nt)
