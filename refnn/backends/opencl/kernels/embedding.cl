/* Embedding family: each kernel mirrors refnn.ops.embedding. `real` is float or double
 * (-D real=...); the host rounds the global size up, hence the bounds guards. The ids
 * reach the lookups as int32 already checked to lie in [0, V) (ids_to_int32 + the host's
 * check of its min/max), so the table is indexed without further checks.
 * The table-gradient scatter-add uses atomics: a float add is a compare-and-swap loop
 * on the value's bits (32-bit for float, 64-bit cl_khr_int64_base_atomics for double),
 * so repeated ids accumulate correctly (in an unspecified order). */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
#endif

/* atomic_add_real: *p += v, atomically (CAS loop on the bit pattern) */
inline void atomic_add_real(volatile __global real *p, const real v)
{
#ifdef REFNN_DOUBLE
    volatile __global long *bits = (volatile __global long *)p;
    long old = *bits, seen;
    while ((seen = atom_cmpxchg(bits, old, as_long(as_double(old) + v))) != old) old = seen;
#else
    volatile __global int *bits = (volatile __global int *)p;
    int old = *bits, seen;
    while ((seen = atomic_cmpxchg(bits, old, as_int(as_float(old) + v))) != old) old = seen;
#endif
}

/* ids_to_int32 (int64 or int32 source, ID_T): out[j] = ids[j] clamped to the int32 range,
 * range[0] = min, range[1] = max over all j (atomic_min/max; the host reads the pair and
 * raises if it leaves [0, V)) */
#define IDS_TO_INT32(NAME, ID_T)                                                        \
__kernel void NAME(__global const ID_T *ids, __global int *out, __global int *range,   \
                   const uint n)                                                        \
{                                                                                       \
    const uint j = get_global_id(0);                                                    \
    if (j >= n) return;                                                                 \
    const ID_T v = ids[j];                                                              \
    const int c = v < (ID_T)INT_MIN ? INT_MIN : (v > (ID_T)INT_MAX ? INT_MAX : (int)v);  \
    out[j] = c;                                                                         \
    atomic_min(range, c);                                                               \
    atomic_max(range + 1, c);                                                           \
}
IDS_TO_INT32(ids_from_int64, long)
IDS_TO_INT32(ids_from_int32, int)

/* gather_rows: y[j, d] = table[ids[j], d] (lookup on the flattened ids); n = J * D */
__kernel void gather_rows(__global const int *ids, __global const real *table,
                          __global real *y, const int D, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    y[o] = table[(size_t)ids[o / D] * D + o % D];
}

/* sum_rows: y[m, d] = sum_k table[ids[m, k], d] (accumulative_lookup); n = N * D */
__kernel void sum_rows(__global const int *ids, __global const real *table,
                       __global real *y, const int K, const int D, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int m = o / D, d = o % D;
    real s = 0;
    for (int k = 0; k < K; k++) s += table[(size_t)ids[m * K + k] * D + d];
    y[o] = s;
}

/* scatter_rows: dst[ids[j], d] += scale * rows[j / div, d] for j < J, atomically
 * (lookup backward: div 1; accumulative: div K; lookup_sgd: scale -learning_rate);
 * n = J * D */
__kernel void scatter_rows(__global const int *ids, __global const real *rows,
                           __global real *dst, const int D, const int div,
                           const real scale, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int j = o / D, d = o % D;
    atomic_add_real(dst + (size_t)ids[j] * D + d, scale * rows[(size_t)(j / div) * D + d]);
}

/* add_rows: y[m, t, d] = x[m, t, d] + table[t, d] (both positional encodings);
 * TD = T * D, n = N * T * D */
__kernel void add_rows(__global const real *x, __global const real *table,
                       __global real *y, const int TD, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    y[o] = x[o] + table[o % TD];
}

/* batch_sum: dtable[r] = sum_m dy[m, r] for r < TD (the rows t < T), 0 for the rows
 * T <= t < T_max (positional_learnable backward); n = T_max * D */
__kernel void batch_sum(__global const real *dy, __global real *dtable, const int N,
                        const int TD, const uint n)
{
    const uint r = get_global_id(0);
    if (r >= n) return;
    real s = 0;
    if (r < (uint)TD)
        for (int m = 0; m < N; m++) s += dy[(size_t)m * TD + r];
    dtable[r] = s;
}
