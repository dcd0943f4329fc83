/* Recurrent family: the fused gate math of rnn, lstm and gru, one launch per time step;
 * the matrix products (the input projection of all steps, the per-step recurrent
 * product, dx/dw/du after BPTT) run on dense.cl's GEMM. Layouts (row-major): sequences
 * (T, N, G*H) or (T, N, H), states (N, H); gate blocks in refnn.ops.recurrent's order
 * (lstm g, f, i, o; gru z, r, n). `t` is the step being computed, `tp` the step it
 * follows in processing order, or -1 for the first step (the state is then h0/c0).
 * One work-item per (n, j) of a step's (N, H) state; the host rounds the global size up,
 * hence the `g >= n` guards. `real` is float or double (-D real=...). */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

inline real sigm(const real a) { return (real)1 / ((real)1 + exp(-a)); }

/* out[r, k] = b[k] for an (R, GH) matrix: the free term, before the input-projection
 * GEMM adds x_t w^T on top (beta = 1). */
__kernel void fill_rows(__global const real *b, __global real *out, const uint GH,
                        const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    out[g] = b[g % GH];
}

/* rnn forward, after pre[t] = x_t w^T + b + h u^T: hs[t] = act(pre[t])
 * (tanh, or max(., 0) when relu). n = N*H. */
__kernel void rnn_act(__global const real *pre, __global real *hs, const uint t,
                      const int relu, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const size_t k = (size_t)t * n + g;
    hs[k] = relu ? fmax(pre[k], (real)0) : tanh(pre[k]);
}

/* rnn BPTT: dz[t] = (dhs[t] + dh) * act'(hs[t]), act' = 1 - h^2 (tanh), [h > 0] (relu);
 * the host then computes dh = dz[t] u. n = N*H. */
__kernel void rnn_dz(__global const real *dhs, __global const real *hs,
                     __global const real *dh, __global real *dz, const uint t,
                     const int relu, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const size_t k = (size_t)t * n + g;
    const real y = hs[k], d = dhs[k] + dh[g];
    dz[k] = relu ? (y > (real)0 ? d : (real)0) : d * ((real)1 - y * y);
}

/* recurrent dropout (refnn.ops.recurrent, h_mask): out[t] = m_t * h_prev, the masked
 * previous state that replaces h_{t-1} in the recurrent GEMM (h_prev = h0 for the first
 * step, else hs[tp]); m_t = mask[t] when mstep = n (one mask per step), the one mask
 * when mstep = 0. n = N*H. */
__kernel void mask_state(__global const real *h0, __global const real *hs,
                         __global const real *mask, __global real *out, const uint t,
                         const int tp, const uint mstep, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * n + g];
    out[(size_t)t * n + g] = hp * mask[(size_t)t * mstep + g];
}

/* recurrent dropout in BPTT: dh = dh * m_t after the host's dh = dz[t] u, the gradient
 * reaching h_{t-1} through the masked product (dh_next = (dz_t u) * m_t). */
__kernel void mask_mul(__global real *dh, __global const real *mask, const uint t,
                       const uint mstep, const uint n)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    dh[g] *= mask[(size_t)t * mstep + g];
}

/* lstm forward cell, after gates[t] = x_t w^T + b + h_{t-1} u^T: g = tanh, f, i, o =
 * sigmoid (stored back, activated), c = f c_prev + i g, h = o tanh(c) into cs[t], hs[t]. */
__kernel void lstm_cell(__global real *gates, __global const real *c0,
                        __global real *hs, __global real *cs, const uint t, const int tp,
                        const uint N, const uint H)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    __global real *a = gates + ((size_t)t * N + n) * 4 * H;
    const real cp = tp < 0 ? c0[g] : cs[(size_t)tp * N * H + g];
    const real gg = tanh(a[j]), f = sigm(a[H + j]), i = sigm(a[2 * H + j]),
               o = sigm(a[3 * H + j]);
    a[j] = gg; a[H + j] = f; a[2 * H + j] = i; a[3 * H + j] = o;
    const real c = f * cp + i * gg;
    cs[(size_t)t * N * H + g] = c;
    hs[(size_t)t * N * H + g] = o * tanh(c);
}

/* lstm BPTT cell (refnn.ops.recurrent.lstm_backward): dh = dhs[t] + dh_next,
 * dc = dcs[t] + dc_next + dh o (1 - tanh(c)^2); dz[t] = [dc i (1 - g^2),
 * dc c_prev f (1 - f), dc g i (1 - i), dh tanh(c) o (1 - o)]; dc_next = dc f (in place).
 * The host then computes dh_next = dz[t] u. */
__kernel void lstm_cell_backward(__global const real *dhs, __global const real *dcs,
                                 __global const real *gates, __global const real *cs,
                                 __global const real *c0, __global const real *dh,
                                 __global real *dc, __global real *dz, const uint t,
                                 const int tp, const uint N, const uint H)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    const size_t k = (size_t)t * N * H + g, r = ((size_t)t * N + n) * 4 * H + j;
    const real gg = gates[r], f = gates[r + H], i = gates[r + 2 * H], o = gates[r + 3 * H];
    const real cp = tp < 0 ? c0[g] : cs[(size_t)tp * N * H + g];
    const real tc = tanh(cs[k]);
    const real dhv = dhs[k] + dh[g];
    const real dcv = dcs[k] + dc[g] + dhv * o * ((real)1 - tc * tc);
    dz[r] = dcv * i * ((real)1 - gg * gg);
    dz[r + H] = dcv * cp * f * ((real)1 - f);
    dz[r + 2 * H] = dcv * gg * i * ((real)1 - i);
    dz[r + 3 * H] = dhv * tc * o * ((real)1 - o);
    dc[g] = dcv * f;
}

/* The lstm with other activations (refnn.ops.recurrent.CELL_ACTIVATIONS): act(k, x, p, q)
 * and act'(k, x, p, q) of refnn.ops.activation's <name>_forward / _backward, k the code
 * of refnn.backends.cpu.recurrent.ACT_CODES (0 identity, 1 relu (p threshold), 2 leaky
 * relu (p alpha), 3 elu (p alpha), 4 abs, 5 sigmoid, 6 tanh, 7 hard tanh, 8 hard sigmoid
 * (p slope, q bias), 9 power (p exponent), 10 hswish, 11 gelu sigmoid form, 12 gelu erf
 * form). Runtime arguments, not -D options: one program for every combination (a PoCL
 * build per drawn pair would cost seconds each). The default sigmoid/tanh cell above
 * is untouched. */
inline real cact(const int k, const real x, const real p, const real q)
{
    real y;
    switch (k) {
    case 1: y = fmax(x, (real)0); return (p > 0 && y >= p) ? p : y;
    case 2: return x > 0 ? x : p * x;
    case 3: return x > 0 ? x : p * expm1(x);
    case 4: return fabs(x);
    case 5: return sigm(x);
    case 6: return tanh(x);
    case 7: return clamp(x, (real)-1, (real)1);
    case 8: return clamp(p * x + q, (real)0, (real)1);
    case 9: return pow(x, p);
    case 10: return x * clamp(x + 3, (real)0, (real)6) / 6;
    case 11: return x * sigm((real)1.702 * x);
    case 12: return (real)0.5 * x * (1 + erf(x * (real)0.7071067811865476));
    default: return x;
    }
}

inline real cdact(const int k, const real x, const real p, const real q)
{
    real s;
    switch (k) {
    case 1: return (x > 0 && (p <= 0 || x < p)) ? 1 : 0;
    case 2: return x > 0 ? 1 : p;
    case 3: return x > 0 ? 1 : p * exp(x);
    case 4: return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case 5: s = sigm(x); return s * (1 - s);
    case 6: s = tanh(x); return 1 - s * s;
    case 7: return (x > -1 && x < 1) ? 1 : 0;
    case 8: s = p * x + q; return (s > 0 && s < 1) ? p : 0;
    case 9: return p * pow(x, p - 1);
    case 10: return x <= -3 ? 0 : (x >= 3 ? 1 : (2 * x + 3) / 6);
    case 11: s = sigm((real)1.702 * x); return s + (real)1.702 * x * s * (1 - s);
    case 12: return (real)0.5 * (1 + erf(x * (real)0.7071067811865476))
                    + x * exp((real)-0.5 * x * x) * (real)0.3989422804014327;
    default: return 1;
    }
}

/* lstm_cell with gate activation gk (gp, gq) on f, i, o and cell activation ck (cp_, cq)
 * on g and c: gates keep the pre-activations (lstm_cell_act_backward recomputes). */
__kernel void lstm_cell_act(__global const real *gates, __global const real *c0,
                            __global real *hs, __global real *cs, const uint t,
                            const int tp, const uint N, const uint H, const int gk,
                            const int ck, const real gp, const real gq, const real cp_,
                            const real cq)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    __global const real *a = gates + ((size_t)t * N + n) * 4 * H;
    const real cp = tp < 0 ? c0[g] : cs[(size_t)tp * N * H + g];
    const real gg = cact(ck, a[j], cp_, cq), f = cact(gk, a[H + j], gp, gq),
               i = cact(gk, a[2 * H + j], gp, gq), o = cact(gk, a[3 * H + j], gp, gq);
    const real c = f * cp + i * gg;
    cs[(size_t)t * N * H + g] = c;
    hs[(size_t)t * N * H + g] = o * cact(ck, c, cp_, cq);
}

/* lstm_cell_backward for lstm_cell_act (refnn.ops.recurrent.lstm_backward with act' and
 * gact' at the pre-activations kept in gates and at c). */
__kernel void lstm_cell_act_backward(__global const real *dhs, __global const real *dcs,
                                     __global const real *gates, __global const real *cs,
                                     __global const real *c0, __global const real *dh,
                                     __global real *dc, __global real *dz, const uint t,
                                     const int tp, const uint N, const uint H, const int gk,
                                     const int ck, const real gp, const real gq,
                                     const real cp_, const real cq)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    const size_t k = (size_t)t * N * H + g, r = ((size_t)t * N + n) * 4 * H + j;
    const real ag = gates[r], af = gates[r + H], ai = gates[r + 2 * H],
               ao = gates[r + 3 * H];
    const real gg = cact(ck, ag, cp_, cq), f = cact(gk, af, gp, gq),
               i = cact(gk, ai, gp, gq), o = cact(gk, ao, gp, gq);
    const real cp = tp < 0 ? c0[g] : cs[(size_t)tp * N * H + g];
    const real c = cs[k];
    const real dhv = dhs[k] + dh[g];
    const real dcv = dcs[k] + dc[g] + dhv * o * cdact(ck, c, cp_, cq);
    dz[r] = dcv * i * cdact(ck, ag, cp_, cq);
    dz[r + H] = dcv * cp * cdact(gk, af, gp, gq);
    dz[r + 2 * H] = dcv * gg * cdact(gk, ai, gp, gq);
    dz[r + 3 * H] = dhv * cact(ck, c, cp_, cq) * cdact(gk, ao, gp, gq);
    dc[g] = dcv * f;
}

/* gru forward, first half, with hu = h_prev u_zr^T (N, 2H) from the host's GEMM:
 * z, r = sigmoid(gates[t] z/r-blocks + hu) (stored back), rh[t] = r * h_prev. */
__kernel void gru_gates_zr(__global real *gates, __global const real *hu,
                           __global const real *h0, __global const real *hs,
                           __global real *rh, const uint t, const int tp, const uint N,
                           const uint H)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    __global real *a = gates + ((size_t)t * N + n) * 3 * H;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * N * H + g];
    const real z = sigm(a[j] + hu[n * 2 * H + j]);
    const real r = sigm(a[H + j] + hu[n * 2 * H + H + j]);
    a[j] = z; a[H + j] = r;
    rh[(size_t)t * N * H + g] = r * hp;
}

/* gru forward, second half, with rhu = (r * h_prev) u_n^T (N, H) from the host's GEMM:
 * n = tanh(gates[t] n-block + rhu) (stored back), hs[t] = (1 - z) n + z h_prev. */
__kernel void gru_gates_n(__global real *gates, __global const real *rhu,
                          __global const real *h0, __global real *hs, const uint t,
                          const int tp, const uint N, const uint H)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    __global real *a = gates + ((size_t)t * N + n) * 3 * H;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * N * H + g];
    const real z = a[j], nn = tanh(a[2 * H + j] + rhu[g]);
    a[2 * H + j] = nn;
    hs[(size_t)t * N * H + g] = ((real)1 - z) * nn + z * hp;
}

/* gru BPTT, first half: dhcur = dhs[t] + dh_next; dz[t] n-block = dhcur (1 - z)(1 - n^2),
 * z-block = dhcur (h_prev - n) z (1 - z). The host then computes drh = dn u_n. */
__kernel void gru_backward_zn(__global const real *dhs, __global const real *dh,
                              __global const real *gates, __global const real *h0,
                              __global const real *hs, __global real *dz,
                              __global real *dhcur, const uint t, const int tp,
                              const uint N, const uint H)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    const size_t r = ((size_t)t * N + n) * 3 * H + j;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * N * H + g];
    const real z = gates[r], nn = gates[r + 2 * H];
    const real d = dhs[(size_t)t * N * H + g] + dh[g];
    dhcur[g] = d;
    dz[r + 2 * H] = d * ((real)1 - z) * ((real)1 - nn * nn);
    dz[r] = d * (hp - nn) * z * ((real)1 - z);
}

/* gru BPTT, second half, with drh = dn u_n (the gradient of r * h_prev): dz[t] r-block =
 * drh h_prev r (1 - r); dh = dhcur z + drh r (the host then adds [dz, dr] u_zr). */
__kernel void gru_backward_r(__global const real *drh, __global const real *dhcur,
                             __global const real *gates, __global const real *h0,
                             __global const real *hs, __global real *dz, __global real *dh,
                             const uint t, const int tp, const uint N, const uint H)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    const size_t r = ((size_t)t * N + n) * 3 * H + j;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * N * H + g];
    const real rr = gates[r + H];
    dz[r + H] = drh[g] * hp * rr * ((real)1 - rr);
    dh[g] = dhcur[g] * gates[r] + drh[g] * rr;
}

/* rnn with another activation (cact code k, parameters p, q): hs[t] = act(pre[t]);
 * pre keeps the pre-activation for rnn_dz_act. n = N*H. */
__kernel void rnn_act_k(__global const real *pre, __global real *hs, const uint t,
                        const uint n, const int k, const real p, const real q)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const size_t i = (size_t)t * n + g;
    hs[i] = cact(k, pre[i], p, q);
}

/* rnn BPTT with another activation: dz[t] = (dhs[t] + dh) * act'(pre[t]). */
__kernel void rnn_dz_k(__global const real *dhs, __global const real *pre,
                       __global const real *dh, __global real *dz, const uint t,
                       const uint n, const int k, const real p, const real q)
{
    const uint g = get_global_id(0);
    if (g >= n) return;
    const size_t i = (size_t)t * n + g;
    dz[i] = (dhs[i] + dh[g]) * cdact(k, pre[i], p, q);
}

/* gru_gates_zr with the gate activation gk (gp, gq): the pre-activations of z, r go to
 * pre (T, N, 3H), the activated values back into gates as on the default path. */
__kernel void gru_gates_zr_act(__global real *gates, __global real *pre,
                               __global const real *hu, __global const real *h0,
                               __global const real *hs, __global real *rh, const uint t,
                               const int tp, const uint N, const uint H, const int gk,
                               const real gp, const real gq)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    const size_t o = ((size_t)t * N + n) * 3 * H;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * N * H + g];
    const real az = gates[o + j] + hu[n * 2 * H + j];
    const real ar = gates[o + H + j] + hu[n * 2 * H + H + j];
    const real r = cact(gk, ar, gp, gq);
    pre[o + j] = az; pre[o + H + j] = ar;
    gates[o + j] = cact(gk, az, gp, gq); gates[o + H + j] = r;
    rh[(size_t)t * N * H + g] = r * hp;
}

/* gru_gates_n with the cell activation ck (cp_, cq); n's pre-activation to pre. */
__kernel void gru_gates_n_act(__global real *gates, __global real *pre,
                              __global const real *rhu, __global const real *h0,
                              __global real *hs, const uint t, const int tp, const uint N,
                              const uint H, const int ck, const real cp_, const real cq)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    const size_t o = ((size_t)t * N + n) * 3 * H;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * N * H + g];
    const real an = gates[o + 2 * H + j] + rhu[g];
    const real z = gates[o + j], nn = cact(ck, an, cp_, cq);
    pre[o + 2 * H + j] = an;
    gates[o + 2 * H + j] = nn;
    hs[(size_t)t * N * H + g] = ((real)1 - z) * nn + z * hp;
}

/* gru_backward_zn with act' and gact' at the pre-activations pre. */
__kernel void gru_backward_zn_act(__global const real *dhs, __global const real *dh,
                                  __global const real *gates, __global const real *pre,
                                  __global const real *h0, __global const real *hs,
                                  __global real *dz, __global real *dhcur, const uint t,
                                  const int tp, const uint N, const uint H, const int gk,
                                  const int ck, const real gp, const real gq,
                                  const real cp_, const real cq)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    const size_t r = ((size_t)t * N + n) * 3 * H + j;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * N * H + g];
    const real z = gates[r], nn = gates[r + 2 * H];
    const real d = dhs[(size_t)t * N * H + g] + dh[g];
    dhcur[g] = d;
    dz[r + 2 * H] = d * ((real)1 - z) * cdact(ck, pre[r + 2 * H], cp_, cq);
    dz[r] = d * (hp - nn) * cdact(gk, pre[r], gp, gq);
}

/* gru_backward_r with gact' at r's pre-activation. */
__kernel void gru_backward_r_act(__global const real *drh, __global const real *dhcur,
                                 __global const real *gates, __global const real *pre,
                                 __global const real *h0, __global const real *hs,
                                 __global real *dz, __global real *dh, const uint t,
                                 const int tp, const uint N, const uint H, const int gk,
                                 const real gp, const real gq)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    const size_t r = ((size_t)t * N + n) * 3 * H + j;
    const real hp = tp < 0 ? h0[g] : hs[(size_t)tp * N * H + g];
    dz[r + H] = drh[g] * hp * cdact(gk, pre[r + H], gp, gq);
    dh[g] = dhcur[g] * gates[r] + drh[g] * gates[r + H];
}

/* indrnn and the qrnn pooling are elementwise in time: every (n, j) has its own
 * recurrence, so one launch runs the whole sequence, one work-item per (n, j) looping
 * over the steps in processing order (k-th step: t = reverse ? T-1-k : k). NH = N*H. */

/* act(z) for indrnn: 0 relu, 1 sigmoid, 2 tanh; and act' from h = act(z). */
inline real ind_act(const real z, const int act)
{
    return act == 0 ? fmax(z, (real)0) : act == 1 ? sigm(z) : tanh(z);
}
inline real ind_dact(const real h, const int act)
{
    return act == 0 ? (h > (real)0 ? (real)1 : (real)0)
         : act == 1 ? h * ((real)1 - h) : (real)1 - h * h;
}

/* indrnn forward: hs[t] = act(pre[t] + u * (m_t * h_prev)), pre = x_t w^T + b (host
 * GEMM); m_t = 1 without a mask (masked 0), else mask[t * mstep + g] (mstep 0: one mask
 * for every step, NH: one per step). */
__kernel void indrnn_forward(__global const real *pre, __global const real *u,
                             __global const real *h0, __global real *hs,
                             __global const real *mask, const uint T, const uint NH,
                             const uint H, const int act, const int reverse,
                             const int masked, const uint mstep)
{
    const uint g = get_global_id(0);
    if (g >= NH) return;
    const real uj = u[g % H];
    real h = h0[g];
    for (uint k = 0; k < T; ++k) {
        const uint t = reverse ? T - 1 - k : k;
        const size_t i = (size_t)t * NH + g;
        const real m = masked ? mask[(size_t)t * mstep + g] : (real)1;
        h = ind_act(pre[i] + uj * (m * h), act);
        hs[i] = h;
    }
}

/* indrnn BPTT (refnn.ops.recurrent.indrnn_backward), steps in reverse processing order:
 * dz[t] = (dhs[t] + dh) act', dh = dz u m_t; dh0[g] = the final dh, du_part[g] =
 * sum_t dz m_t h_prev (the host sums du_part over the batch); m_t as in indrnn_forward. */
__kernel void indrnn_backward(__global const real *dhs, __global const real *hs,
                              __global const real *h0, __global const real *u,
                              __global real *dz, __global real *dh0,
                              __global real *du_part, __global const real *mask,
                              const uint T, const uint NH, const uint H, const int act,
                              const int reverse, const int masked, const uint mstep)
{
    const uint g = get_global_id(0);
    if (g >= NH) return;
    const real uj = u[g % H];
    real dh = 0, du = 0;
    for (uint k = T; k-- > 0;) {
        const uint t = reverse ? T - 1 - k : k;
        const size_t i = (size_t)t * NH + g;
        const real hp = k == 0 ? h0[g] : hs[(size_t)(reverse ? T - k : k - 1) * NH + g];
        const real m = masked ? mask[(size_t)t * mstep + g] : (real)1;
        const real d = (dhs[i] + dh) * ind_dact(hs[i], act);
        dz[i] = d;
        du += d * (m * hp);
        dh = d * uj * m;
    }
    dh0[g] = dh;
    du_part[g] = du;
}

/* qrnn pooling forward (refnn.ops.recurrent.qrnn_forward), G gate blocks [z, f, (o), (i)]:
 * c = f c_prev + (1 - f) z (G = 4: + i z); h = c (G = 2) or o c. */
__kernel void qrnn_forward(__global const real *gates, __global const real *h0,
                           __global real *hs, __global real *cs, const uint T, const uint N,
                           const uint H, const int G, const int reverse)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    real c = h0[g];
    for (uint k = 0; k < T; ++k) {
        const uint t = reverse ? T - 1 - k : k;
        __global const real *a = gates + ((size_t)t * N + n) * G * H + j;
        const real f = a[H];
        c = f * c + (G == 4 ? a[3 * H] : (real)1 - f) * a[0];
        cs[(size_t)t * N * H + g] = c;
        hs[(size_t)t * N * H + g] = G == 2 ? c : a[2 * H] * c;
    }
}

/* qrnn pooling BPTT (refnn.ops.recurrent.qrnn_backward): dc = dhs o + dc_next;
 * dz = dc (1 - f) [G = 4: dc i], df = dc (c_prev - z) [G = 4: dc c_prev], do = dhs c,
 * di = dc z; dc_next = dc f; dh0[g] = the final dc_next. */
__kernel void qrnn_backward(__global const real *dhs, __global const real *gates,
                            __global const real *cs, __global const real *h0,
                            __global real *dgates, __global real *dh0, const uint T,
                            const uint N, const uint H, const int G, const int reverse)
{
    const uint g = get_global_id(0);
    if (g >= N * H) return;
    const uint n = g / H, j = g % H;
    real dc = 0;
    for (uint k = T; k-- > 0;) {
        const uint t = reverse ? T - 1 - k : k;
        const size_t o = ((size_t)t * N + n) * G * H + j, i = (size_t)t * N * H + g;
        __global const real *a = gates + o;
        __global real *d = dgates + o;
        const real cp = k == 0 ? h0[g] : cs[(size_t)(reverse ? T - k : k - 1) * N * H + g];
        const real dcur = G == 2 ? dhs[i] + dc : dhs[i] * a[2 * H] + dc;
        if (G > 2) d[2 * H] = dhs[i] * cs[i];
        if (G == 4) {
            d[0] = dcur * a[3 * H];
            d[H] = dcur * cp;
            d[3 * H] = dcur * a[0];
        } else {
            d[0] = dcur * ((real)1 - a[H]);
            d[H] = dcur * (cp - a[0]);
        }
        dc = dcur * a[H];
    }
    dh0[g] = dc;
}
