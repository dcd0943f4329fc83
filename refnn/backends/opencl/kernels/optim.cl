/* Optimizer family: fused in-place updates, one work-item per parameter element.
 * Each kernel mirrors refnn.ops.optim.<name>_update; scalar coefficients (bias
 * corrections, NAdam's mu) come from the host, computed in double. `real` is float or
 * double (-D real=...); the host rounds the global size up, hence the `i >= n` guards.
 * clip <= 0 means "no element-wise gradient clip". */

/* neon's gradient preparation: clamp(g * scale, -clip, clip) */
real prep(real g, real scale, real clip)
{
    g *= scale;
    return clip > 0 ? clamp(g, -clip, clip) : g;
}

/* NeoML's regularisation gradient: l2 w + clamp(w, -l1, l1) */
real reg(real w, real l1, real l2) { return l2 * w + clamp(w, -l1, l1); }

/* gdm_update (neon): g = norm_scale prep(grad) + wdecay w; vel = mom vel - lr g;
 * w += vel, or mom vel - lr g with nesterov */
__kernel void gdm_update(__global real *w, __global const real *grad, __global real *vel,
                         const real lr, const real mom, const real wdecay, const int nesterov,
                         const real scale, const real clip, const real norm_scale,
                         const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    const real g = norm_scale * prep(grad[i], scale, clip) + wdecay * w[i];
    const real v = mom * vel[i] - lr * g;
    vel[i] = v;
    w[i] += nesterov ? mom * v - lr * g : v;
}

/* rmsprop_update (neon): s = decay s + (1 - decay) g^2;
 * w -= norm_scale lr g / (sqrt(s + eps) + eps) */
__kernel void rmsprop_update(__global real *w, __global const real *grad, __global real *state,
                             const real lr, const real decay, const real eps, const real scale,
                             const real clip, const real norm_scale, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    const real g = prep(grad[i], scale, clip);
    const real s = decay * state[i] + (1 - decay) * g * g;
    state[i] = s;
    w[i] -= norm_scale * lr * g / (sqrt(s + eps) + eps);
}

/* adagrad_update (neon): s += g^2; w -= norm_scale lr g / sqrt(s + eps) */
__kernel void adagrad_update(__global real *w, __global const real *grad, __global real *state,
                             const real lr, const real eps, const real scale, const real clip,
                             const real norm_scale, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    const real g = prep(grad[i], scale, clip);
    const real s = state[i] + g * g;
    state[i] = s;
    w[i] -= norm_scale * lr * g / sqrt(s + eps);
}

/* adadelta_update (neon): eg2 = decay eg2 + (1 - decay) g^2;
 * dx = sqrt((edx2 + eps) / (eg2 + eps)) g; edx2 = decay edx2 + (1 - decay) dx^2; w -= dx */
__kernel void adadelta_update(__global real *w, __global const real *grad, __global real *eg2,
                              __global real *edx2, const real decay, const real eps,
                              const real scale, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    const real g = grad[i] * scale;
    const real e = decay * eg2[i] + (1 - decay) * g * g;
    eg2[i] = e;
    const real dx = sqrt((edx2[i] + eps) / (e + eps)) * g;
    edx2[i] = decay * edx2[i] + (1 - decay) * dx * dx;
    w[i] -= dx;
}

/* adam_update (neon): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * w -= rate m / (sqrt(v) + eps), rate = norm_scale lr sqrt(1 - b2^t) / (1 - b1^t) */
__kernel void adam_update(__global real *w, __global const real *grad, __global real *m,
                          __global real *v, const real rate, const real b1, const real b2,
                          const real eps, const real scale, const real clip, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    const real g = prep(grad[i], scale, clip);
    const real mi = b1 * m[i] + (1 - b1) * g, vi = b2 * v[i] + (1 - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    w[i] -= rate * mi / (sqrt(vi) + eps);
}

/* simple_gradient_update (NeoML): hist = mom hist - lr (g scale + reg(w)); w += hist */
__kernel void simple_gradient_update(__global real *w, __global const real *grad,
                                     __global real *hist, const real lr, const real mom,
                                     const real l1, const real l2, const real scale,
                                     const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    const real h = mom * hist[i] - lr * (grad[i] * scale + reg(w[i], l1, l2));
    hist[i] = h;
    w[i] += h;
}

/* adaptive_update (NeoML AdaptiveGradient and NesterovGradient):
 * g = grad scale (+ reg(w) unless decoupled); m, v moving averages; s = max(vmax, v)
 * with amsgrad (stored), else v; step = (g_mult g + m_mult m) / (sqrt(s / v_div) + eps)
 * (+ reg(w) if decoupled); w -= rate step */
__kernel void adaptive_update(__global real *w, __global const real *grad, __global real *m,
                              __global real *v, __global real *vmax, const int amsgrad,
                              const int decoupled, const real rate, const real b1,
                              const real b2, const real eps, const real l1, const real l2,
                              const real g_mult, const real m_mult, const real v_div,
                              const real scale, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    real g = grad[i] * scale;
    if (!decoupled) g += reg(w[i], l1, l2);
    const real mi = b1 * m[i] + (1 - b1) * g;
    real vi = b2 * v[i] + (1 - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    if (amsgrad) {
        vi = fmax(vmax[i], vi);
        vmax[i] = vi;
    }
    real step = (g_mult * g + m_mult * mi) / (sqrt(vi / v_div) + eps);
    if (decoupled) step += reg(w[i], l1, l2);
    w[i] -= rate * step;
}
