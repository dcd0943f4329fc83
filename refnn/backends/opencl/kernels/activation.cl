/* Activation family: elementwise y = f(x) and dx = dy * f'(x), one work-item per element.
 * Each kernel mirrors refnn.ops.activation.<name>_forward/backward. `real` is float or
 * double (-D real=...); the host rounds the global size up, hence the `i < n` guards. */

/* relu_forward: y = max(x, 0), min(., threshold) if threshold > 0 (NeoML ReLU) */
__kernel void relu_forward(__global const real *x, __global real *y,
                           const real threshold, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    real v = fmax(x[i], (real)0);
    y[i] = threshold > 0 ? fmin(v, threshold) : v;
}

/* relu_backward: dx = dy * [0 < x < threshold] */
__kernel void relu_backward(__global const real *dy, __global const real *x,
                            __global real *dx, const real threshold, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    const real v = x[i];
    dx[i] = (v > 0 && (threshold <= 0 || v < threshold)) ? dy[i] : (real)0;
}
