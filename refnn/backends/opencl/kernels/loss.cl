/* Loss family: one work-item per object (row n of x, N x C row-major) computes its loss
 * l[n] (forward) or its gradient row dx[n, :] (backward). Each kernel mirrors
 * refnn.ops.loss.<name>_forward/backward. `real` is float or double (-D real=...);
 * the host rounds the global size up, hence the `n >= N` guards. Object weights w always
 * come as an (N,) buffer; max_grad <= 0 means "do not clip the gradient". */

/* neon cost kinds, in the order of refnn.backends.opencl.loss.NEON_KINDS */
#define CE_MULTI 0
#define CE_BINARY 1
#define SUM_SQUARED 2

real safelog(real a, real floor_) { return log(fmax(a, floor_)); }

real clip_grad(real g, real max_grad)
{
    return max_grad > 0 ? clamp(g, -max_grad, max_grad) : g;
}

/* neon_forward: l[n] = sum_c term(y, t) -- -t log y | -(t log y + (1-t) log(1-y)) |
 * (y-t)^2/2 | (y-t)^2/(2C), logs through neon's safelog */
__kernel void neon_forward(const int kind, __global const real *y, __global const real *t,
                           __global real *l, const real floor_, const uint N, const uint C)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    real acc = 0;
    for (uint c = 0; c < C; ++c) {
        const real yv = y[n * C + c], tv = t[n * C + c];
        if (kind == CE_MULTI)
            acc -= tv * safelog(yv, floor_);
        else if (kind == CE_BINARY)
            acc -= tv * safelog(yv, floor_) + (1 - tv) * safelog(1 - yv, floor_);
        else
            acc += (yv - tv) * (yv - tv) / 2;
    }
    l[n] = kind > SUM_SQUARED ? acc / C : acc;
}

/* neon_backward: dy[n, c] = dl[n] * d term / dy (0 where safelog is flat) */
__kernel void neon_backward(const int kind, __global const real *dl, __global const real *y,
                            __global const real *t, __global real *dy, const real floor_,
                            const uint N, const uint C)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    for (uint c = 0; c < C; ++c) {
        const real yv = y[n * C + c], tv = t[n * C + c];
        real d = 0;
        if (kind == CE_MULTI || kind == CE_BINARY)
            d = yv > floor_ ? -tv / yv : 0;
        if (kind == CE_BINARY && 1 - yv > floor_)
            d += (1 - tv) / (1 - yv);
        if (kind == SUM_SQUARED)
            d = yv - tv;
        if (kind > SUM_SQUARED)
            d = (yv - tv) / C;
        dy[n * C + c] = dl[n] * d;
    }
}

/* y[n, c] for cross_entropy: the float label, or 1 where c is object n's class index */
real label(__global const real *yf, __global const int *yi, const int use_int,
           const uint n, const uint c, const uint C)
{
    return use_int ? (real)(yi[n] == (int)c) : yf[n * C + c];
}

/* cross_entropy_forward (NeoML): softmax: l = w (lse sum y - sum y x), aux = lse;
 * else l = w (-sum y log clamp(x, eps, 1 - eps) + sum y log sum x), aux = sum x */
__kernel void cross_entropy_forward(__global const real *x, __global const real *yf,
                                    __global const int *yi, const int use_int,
                                    __global const real *w, const int softmax, const real eps,
                                    __global real *l, __global real *aux,
                                    const uint N, const uint C)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    __global const real *xn = x + n * C;
    real m = xn[0];
    for (uint c = 1; c < C; ++c) m = fmax(m, xn[c]);
    real s = 0, ysum = 0, yx = 0;
    for (uint c = 0; c < C; ++c) {
        const real y = label(yf, yi, use_int, n, c, C);
        ysum += y;
        if (softmax) {
            s += exp(xn[c] - m);
            yx += y * xn[c];
        } else {
            s += xn[c];
            yx -= y * log(clamp(xn[c], eps, 1 - eps));
        }
    }
    if (softmax) {
        aux[n] = m + log(s);
        l[n] = w[n] * (aux[n] * ysum - yx);
    } else {
        aux[n] = s;
        l[n] = w[n] * (yx + ysum * log(s));
    }
}

/* cross_entropy_backward: dx = dl w (softmax(x) sum y - y) or
 * dl w (-y / x [eps < x < 1 - eps] + sum y / sum x), clipped to +-max_grad */
__kernel void cross_entropy_backward(__global const real *dl, __global const real *x,
                                     __global const real *yf, __global const int *yi,
                                     const int use_int, __global const real *w,
                                     const int softmax, const real eps,
                                     __global const real *aux, const real max_grad,
                                     __global real *dx, const uint N, const uint C)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    real ysum = 0;
    for (uint c = 0; c < C; ++c) ysum += label(yf, yi, use_int, n, c, C);
    for (uint c = 0; c < C; ++c) {
        const real y = label(yf, yi, use_int, n, c, C), v = x[n * C + c];
        real d;
        if (softmax) {
            d = exp(v - aux[n]) * ysum - y;
        } else {
            d = ysum / aux[n];
            if (v > eps && v < 1 - eps) d -= y / v;
        }
        dx[n * C + c] = clip_grad(dl[n] * w[n] * d, max_grad);
    }
}

/* binary_cross_entropy_forward (NeoML, logits, labels +-1): z = (y + 1) / 2,
 * l = w sum_c [(1 - z) x + (1 + (q - 1) z) (log(1 + e^-|x|) + max(-x, 0))] */
__kernel void binary_cross_entropy_forward(__global const real *x, __global const real *y,
                                           __global const real *w, const real q,
                                           __global real *l, const uint N, const uint C)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    real acc = 0;
    for (uint c = 0; c < C; ++c) {
        const real v = x[n * C + c], z = (y[n * C + c] + 1) / 2;
        acc += (1 - z) * v + (1 + (q - 1) * z) * (log(1 + exp(-fabs(v))) + fmax(-v, (real)0));
    }
    l[n] = w[n] * acc;
}

/* binary_cross_entropy_backward: dx = dl w [(1 - z) - (1 + (q - 1) z) sigmoid(-x)], clipped */
__kernel void binary_cross_entropy_backward(__global const real *dl, __global const real *x,
                                            __global const real *y, __global const real *w,
                                            const real q, const real max_grad,
                                            __global real *dx, const uint N, const uint C)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    for (uint c = 0; c < C; ++c) {
        const real v = x[n * C + c], z = (y[n * C + c] + 1) / 2;
        const real sig_neg = exp(-fmax(v, (real)0)) / (1 + exp(-fabs(v)));
        dx[n * C + c] = clip_grad(dl[n] * w[n] * ((1 - z) - (1 + (q - 1) * z) * sig_neg),
                                  max_grad);
    }
}

/* euclidean_forward (NeoML, Huber with delta 1): l = w sum_c huber(x - y) */
__kernel void euclidean_forward(__global const real *x, __global const real *y,
                                __global const real *w, __global real *l,
                                const uint N, const uint C)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    real acc = 0;
    for (uint c = 0; c < C; ++c) {
        const real d = x[n * C + c] - y[n * C + c];
        acc += fabs(d) < 1 ? d * d / 2 : fabs(d) - (real)0.5;
    }
    l[n] = w[n] * acc;
}

/* euclidean_backward: dx = dl w clamp(x - y, -1, 1), clipped to +-max_grad */
__kernel void euclidean_backward(__global const real *dl, __global const real *x,
                                 __global const real *y, __global const real *w,
                                 const real max_grad, __global real *dx,
                                 const uint N, const uint C)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    for (uint c = 0; c < C; ++c) {
        const real d = clamp(x[n * C + c] - y[n * C + c], (real)-1, (real)1);
        dx[n * C + c] = clip_grad(dl[n] * w[n] * d, max_grad);
    }
}

/* label_range: mm[0] = min(labels), mm[1] = max(labels) (host sets mm = {INT_MAX, INT_MIN});
 * the host checks them before any kernel indexes with the labels */
__kernel void label_range(__global const int *labels, volatile __global int *mm, const uint N)
{
    const uint n = get_global_id(0);
    if (n >= N) return;
    atomic_min(&mm[0], labels[n]);
    atomic_max(&mm[1], labels[n]);
}
