/* Activation family: elementwise y = f(x) and dx = dy * f'(x), one work-item per element.
 * Each kernel mirrors refnn.ops.activation.<name>_forward/backward. `real` is float or
 * double (-D real=...); the host rounds the global size up, hence the `i < n` guards.
 * Softmax works on rows (the last axis), one work-item per row of any length. */
#ifdef REFNN_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

/* relu_forward: y = max(x, 0), min(., threshold) if threshold > 0 (NeoML ReLU) */
__kernel void relu_forward(__global const real *x, __global real *y,
                           const real threshold, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    const real v = x[i] <= 0 ? (real)0 : x[i];        /* NaN stays NaN (fmax would drop it) */
    y[i] = (threshold > 0 && v > threshold) ? threshold : v;
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

/* ---------------------------------------------------------------- pointwise ops
 * Op codes select a formula in f / df; a, b are the op's parameters. */
#define LEAKY_RELU 1     /* a = alpha */
#define ELU 2            /* a = alpha */
#define SIGMOID 3
#define TANH 4
#define HARD_SIGMOID 5   /* a = slope, b = bias */
#define HARD_TANH 6
#define HSWISH 7
#define GELU_SIGMOID 8
#define GELU_ERF 9
#define ABS 10
#define POWER 11         /* a = exponent */
#define EXP 12
#define LOG 13
#define ERF 14
#define LINEAR 15        /* a = multiplier, b = free_term */
#define NORMALIZER 16    /* a = divisor */

#define GELU_K ((real)1.702)
#define SQRT_HALF ((real)0.70710678118654752)
#define INV_SQRT_2PI ((real)0.39894228040143268)
#define TWO_OVER_SQRT_PI ((real)1.12837916709551257)

inline real sigm(const real x) { return (real)1 / ((real)1 + exp(-x)); }

/* clip(v, lo, hi) that keeps NaN (the builtin clamp need not) */
inline real clip(const real v, const real lo, const real hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* y = f(x): each case equals refnn.ops.activation.<op>_forward */
inline real f(const int op, const real x, const real a, const real b)
{
    switch (op) {
    case LEAKY_RELU:   return x > 0 ? x : a * x;
    case ELU:          return x > 0 ? x : a * expm1(x);
    case SIGMOID:      return sigm(x);
    case TANH:         return tanh(x);
    case HARD_SIGMOID: return clip(a * x + b, (real)0, (real)1);
    case HARD_TANH:    return clip(x, (real)-1, (real)1);
    case HSWISH:       return x * clip(x + (real)3, (real)0, (real)6) / (real)6;
    case GELU_SIGMOID: return x * sigm(GELU_K * x);
    case GELU_ERF:     return (real)0.5 * x * ((real)1 + erf(x * SQRT_HALF));
    case ABS:          return fabs(x);
    case POWER:        return pow(x, a);
    case EXP:          return exp(x);
    case LOG:          return log(x);
    case ERF:          return erf(x);
    case LINEAR:       return a * x + b;
    default:           return x / a;                         /* NORMALIZER */
    }
}

/* f'(x) given x and y = f(x): each case equals refnn.ops.activation.<op>_backward / dy */
inline real df(const int op, const real x, const real y, const real a, const real b)
{
    real s, z;
    switch (op) {
    case LEAKY_RELU:   return x > 0 ? (real)1 : a;
    case ELU:          return x > 0 ? (real)1 : a * exp(x);
    case SIGMOID:      return y * ((real)1 - y);
    case TANH:         return (real)1 - y * y;
    case HARD_SIGMOID: z = a * x + b; return (z > 0 && z < 1) ? a : (real)0;
    case HARD_TANH:    return (x > -1 && x < 1) ? (real)1 : (real)0;
    case HSWISH:       return x <= -3 ? (real)0
                              : (x >= 3 ? (real)1 : ((real)2 * x + (real)3) / (real)6);
    case GELU_SIGMOID: s = sigm(GELU_K * x); return s + GELU_K * x * s * ((real)1 - s);
    case GELU_ERF:     return (real)0.5 * ((real)1 + erf(x * SQRT_HALF))
                              + x * exp((real)-0.5 * x * x) * INV_SQRT_2PI;
    case ABS:          return x > 0 ? (real)1 : (x < 0 ? (real)-1 : (real)0);
    case POWER:        return a * pow(x, a - (real)1);
    case EXP:          return y;
    case LOG:          return (real)1 / x;
    case ERF:          return TWO_OVER_SQRT_PI * exp(-x * x);
    case LINEAR:       return a;
    default:           return (real)1 / a;                   /* NORMALIZER */
    }
}

/* POINTWISE(name, OP) defines the kernels name_forward: y[i] = f_OP(x[i]; a, b) and
 * name_backward: dx[i] = dy[i] * f_OP'(x[i]), all with the same arguments. OP is a
 * compile-time constant, so each kernel holds only its own formula (no switch at run time). */
#define POINTWISE(name, OP)                                                              \
__kernel void name##_forward(__global const real *x, __global real *y,                   \
                             const real a, const real b, const uint n)                   \
{                                                                                        \
    const uint i = get_global_id(0);                                                     \
    if (i < n) y[i] = f(OP, x[i], a, b);                                                 \
}                                                                                        \
__kernel void name##_backward(__global const real *dy, __global const real *x,           \
                              __global const real *y, __global real *dx,                 \
                              const real a, const real b, const uint n)                  \
{                                                                                        \
    const uint i = get_global_id(0);                                                     \
    if (i < n) dx[i] = dy[i] * df(OP, x[i], y[i], a, b);                                 \
}

POINTWISE(leaky_relu, LEAKY_RELU)
POINTWISE(elu, ELU)
POINTWISE(sigmoid, SIGMOID)
POINTWISE(tanh, TANH)
POINTWISE(hard_sigmoid, HARD_SIGMOID)
POINTWISE(hard_tanh, HARD_TANH)
POINTWISE(hswish, HSWISH)
POINTWISE(gelu_sigmoid, GELU_SIGMOID)
POINTWISE(gelu_erf, GELU_ERF)
POINTWISE(abs, ABS)
POINTWISE(power, POWER)
POINTWISE(exp, EXP)
POINTWISE(log, LOG)
POINTWISE(erf, ERF)
POINTWISE(linear_activation, LINEAR)
POINTWISE(normalizer, NORMALIZER)

/* ----------------------------------------------------------------------- softmax */
/* softmax_forward: per row r of length c, y = exp(x - max x) / sum exp(x - max x)
 * (refnn.ops.activation.softmax_forward); one work-item per row, y holds the
 * exponentials between the two passes. */
__kernel void softmax_forward(__global const real *x, __global real *y,
                              const uint rows, const uint c)
{
    const uint r = get_global_id(0);
    if (r >= rows) return;
    __global const real *xr = x + (size_t)r * c;
    __global real *yr = y + (size_t)r * c;
    real m = xr[0], s = 0;
    for (uint j = 1; j < c; ++j) m = fmax(m, xr[j]);
    for (uint j = 0; j < c; ++j) { yr[j] = exp(xr[j] - m); s += yr[j]; }
    for (uint j = 0; j < c; ++j) yr[j] /= s;
}

/* softmax_backward: per row, dx = y * (dy - sum(dy * y))
 * (refnn.ops.activation.softmax_backward); one work-item per row. */
__kernel void softmax_backward(__global const real *dy, __global const real *y,
                               __global real *dx, const uint rows, const uint c)
{
    const uint r = get_global_id(0);
    if (r >= rows) return;
    const size_t o = (size_t)r * c;
    real dot = 0;
    for (uint j = 0; j < c; ++j) dot += dy[o + j] * y[o + j];
    for (uint j = 0; j < c; ++j) dx[o + j] = y[o + j] * (dy[o + j] - dot);
}

/* ----------------------------------------------------------------------- dropout */
/* MurmurHash3's 32-bit finaliser (refnn.ops.activation._fmix32) */
inline uint fmix32(uint h)
{
    h ^= h >> 16; h *= 0x85EBCA6Bu;
    h ^= h >> 13; h *= 0xC2B2AE35u;
    return h ^ (h >> 16);
}

/* mask[i] = ((fmix32(key + i * 0x9E3779B9) >> 8) < threshold), key = fmix32(seed ^ 0x9E3779B9)
 * (refnn.ops.activation.dropout_mask; the host computes key and threshold) */
inline bool kept(const uint key, const uint i, const uint threshold)
{
    return (fmix32(key + i * 0x9E3779B9u) >> 8) < threshold;
}

/* dropout_forward: y = x * mask * scale (refnn.ops.activation.dropout_forward) */
__kernel void dropout_forward(__global const real *x, __global real *y, const uint key,
                              const uint threshold, const real scale, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    y[i] = kept(key, i, threshold) ? x[i] * scale : (real)0;
}

/* dropout_backward: dx = dy * mask * scale, the mask recomputed from the hash */
__kernel void dropout_backward(__global const real *dy, __global real *dx, const uint key,
                               const uint threshold, const real scale, const uint n)
{
    const uint i = get_global_id(0);
    if (i >= n) return;
    dx[i] = kept(key, i, threshold) ? dy[i] * scale : (real)0;
}
