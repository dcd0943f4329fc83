/* Sequence family (time-major (T, N, C), seen as (T, NC) with NC = N * C): each kernel
 * mirrors refnn.ops.sequence. `real` is float or double (-D real=...); the host rounds
 * the global size up, hence the bounds guards. The reorderings are one gather of whole
 * time steps, y[i] = x[(start + step i) mod T] with step = +1 or -1 (ops.sequence.
 * step_gather); their backward GATHERS too (one work-item per dx entry walks the i that
 * read it), so no atomics are needed and the sum order is the reference's. */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* time_sum: y[j] = scale * sum_t x[t, j] for j < NC (seq_sum: scale 1, seq_mean: 1/T) */
__kernel void time_sum(__global const real *x, __global real *y, const int T,
                       const real scale, const uint n)
{
    const uint j = get_global_id(0);
    if (j >= n) return;
    real s = 0;
    for (int t = 0; t < T; t++) s += x[(size_t)t * n + j];
    y[j] = s * scale;
}

/* time_broadcast: dx[t, j] = scale * dy[j] (backward of seq_sum / seq_mean) */
__kernel void time_broadcast(__global const real *dy, __global real *dx, const int NC,
                             const real scale, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    dx[o] = dy[o % NC] * scale;
}

/* step_gather: y[i, j] = x[(start + step i) mod T, j] (seq_last, subsequence,
 * reverse_sequence, repeat_sequence); n = L * NC outputs */
__kernel void step_gather(__global const real *x, __global real *y, const int T,
                          const int NC, const int start, const int step, const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int i = o / NC, j = o % NC;
    const int src = ((start + step * i) % T + T) % T;
    y[o] = x[(size_t)src * NC + j];
}

/* step_scatter: dx[t, j] = sum over the i < L with (start + step i) mod T = t of dy[i, j]
 * -- those i are i0, i0 + T, i0 + 2T, ... with i0 = step (t - start) mod T (step = +-1
 * is its own inverse); n = T * NC */
__kernel void step_scatter(__global const real *dy, __global real *dx, const int T,
                           const int NC, const int L, const int start, const int step,
                           const uint n)
{
    const uint o = get_global_id(0);
    if (o >= n) return;
    const int t = o / NC, j = o % NC;
    real s = 0;
    for (int i = ((step * (t - start)) % T + T) % T; i < L; i += T)
        s += dy[(size_t)i * NC + j];
    dx[o] = s;
}

/* cumsum: x seen as (P, M, Q); one work-item per line (p, q) runs
 * y[p, j, q] = sum_{i <= j} x[p, i, q] (i >= j when reverse); n = P * Q */
__kernel void cumsum(__global const real *x, __global real *y, const int M, const int Q,
                     const int reverse, const uint n)
{
    const uint r = get_global_id(0);
    if (r >= n) return;
    const size_t base = (size_t)(r / Q) * M * Q + r % Q;
    real run = 0;
    for (int i = 0; i < M; i++) {
        const size_t at = base + (size_t)(reverse ? M - 1 - i : i) * Q;
        run += x[at];
        y[at] = run;
    }
}
