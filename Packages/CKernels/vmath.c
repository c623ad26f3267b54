// Vectorised exp, log, tanh, sigmoid, sqrt and a few streaming reductions, one implementation per
// ISA path, and their dispatch.
//
// The four paths (AVX-512, AVX2 + FMA, NEON with arm_neon.h on arm64, and a portable one written
// with GCC/Clang vector extensions, which becomes SSE2 on x86-64 and plain Advanced SIMD on arm64)
// share one algorithm and one set of constants, so they agree to within an ulp or so. The polynomials are weighted minimax fits
// (Lawson's iteration) made for this file; no libm is called.
//
// exp(x):  clamp x to [-104, 88.8]; n = round(x * log2 e) by the 1.5 * 2^23 trick;
//          r = x - n ln2 in two parts (Cody-Waite: n * LN2_HI is exact for |n| < 512), so
//          |r| <= ln2 / 2; e^r = 1 + r + r^2 P(r) with P of degree 4 (relative error 3e-9);
//          scale by 2^(n/2) * 2^(n - n/2): two normal factors, so results that overflow become
//          +inf and results below FLT_MIN are rounded once, as subnormals.
// log(x):  scale subnormals by 2^23; split x = 2^e * m with m in [sqrt(1/2), sqrt(2)); f = m - 1,
//          s = f / (2 + f); log m = f - f^2/2 + s (f^2/2 + R(s^2)) where R is a degree-4 fit of
//          2 atanh(s) - 2s over s (relative error 5e-12); add e ln2 in two parts.
// tanh(x): |x| < 0.625: x + x^3 Q(x^2), Q of degree 4 (relative error 4e-9); otherwise
//          1 - 2 / (e^(2|x|) + 1), with |x| clamped to 9.1 (tanh rounds to 1 beyond 9.01);
//          the sign is copied from x.
// sigmoid: e = exp(-|x|); (x >= 0 ? 1 : e) / (1 + e), which never forms inf / inf and keeps
//          full relative accuracy for large negative x.
// sqrt:    one CK_LANE_PATHS body (vsqrtq_f32 on NEON), correctly rounded on every path.
#include "ck_vmath.h"
#include "ck_dispatch.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CK_X86 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif
#include "ck_lanes.h"

// ---------------------------------------------------------------- shared constants

#define C_LOG2E 1.44269504088896341f
#define C_LN2_HI 0.693359375f       // 355 / 512: 9 significant bits, so n * LN2_HI is exact
#define C_LN2_LO -2.12194440e-4f    // ln 2 - LN2_HI
#define C_ROUND 12582912.0f         // 1.5 * 2^23: adding and subtracting it rounds to an integer
#define C_EXP_LO -104.0f            // e^-104 < 2^-150: rounds to 0
#define C_EXP_HI 88.8f              // e^88.8 > FLT_MAX: becomes +inf
// e^r = 1 + r + r^2 (E0 + E1 r + E2 r^2 + E3 r^3 + E4 r^4) on |r| <= ln2 / 2
#define C_E0 4.999999404e-01f
#define C_E1 1.666652113e-01f
#define C_E2 4.166838899e-02f
#define C_E3 8.368710056e-03f
#define C_E4 1.381461276e-03f
// 2 atanh(s) = 2s + s z (L0 + L1 z + L2 z^2 + L3 z^3), z = s^2 <= (3 - 2 sqrt 2)^2
#define C_L0 6.666666269e-01f
#define C_L1 4.000033438e-01f
#define C_L2 2.853734791e-01f
#define C_L3 2.358147204e-01f
#define C_SQRT_HALF_BITS 0x3f3504f3  // bits of sqrt(1/2), rounded up
#define C_FLT_MIN 1.17549435e-38f
#define C_TWO23 8388608.0f
// tanh x = x + x^3 (T0 + T1 z + T2 z^2 + T3 z^3 + T4 z^4), z = x^2, on |x| < 0.625
#define C_TANH_SMALL 0.625f
#define C_TANH_CLAMP 9.1f
#define C_T0 -3.333328068e-01f
#define C_T1 1.333144158e-01f
#define C_T2 -5.373971537e-02f
#define C_T3 2.063908614e-02f
#define C_T4 -5.704986863e-03f

// ---------------------------------------------------------------- portable (4 lanes)

typedef float pf4 __attribute__((vector_size(16)));
typedef int32_t pi4 __attribute__((vector_size(16)));
typedef uint32_t pu4 __attribute__((vector_size(16)));

static inline pf4 p_splat(float v) { return (pf4){v, v, v, v}; }
static inline pi4 p_splati(int32_t v) { return (pi4){v, v, v, v}; }
static inline pf4 p_load(const float *p) { pf4 v; memcpy(&v, p, sizeof v); return v; }
static inline void p_store(float *p, pf4 v) { memcpy(p, &v, sizeof v); }
// m ? a : b, lane by lane, for a comparison mask m (all ones or all zeros per lane).
static inline pf4 p_sel(pi4 m, pf4 a, pf4 b) { return (pf4)(((pi4)a & m) | ((pi4)b & ~m)); }

static inline pf4 p_exp(pf4 x) {
    pf4 xc = p_sel(x >= p_splat(C_EXP_LO), x, p_splat(C_EXP_LO));  // NaN -> EXP_LO, fixed below
    xc = p_sel(xc <= p_splat(C_EXP_HI), xc, p_splat(C_EXP_HI));
    pf4 t = xc * p_splat(C_LOG2E) + p_splat(C_ROUND);
    pf4 n = t - p_splat(C_ROUND);
    pi4 ni = (pi4)((pu4)t - (pu4)p_splat(C_ROUND));
    pf4 r = xc - n * p_splat(C_LN2_HI);
    r = r - n * p_splat(C_LN2_LO);
    pf4 p = p_splat(C_E4);
    p = p * r + p_splat(C_E3);
    p = p * r + p_splat(C_E2);
    p = p * r + p_splat(C_E1);
    p = p * r + p_splat(C_E0);
    p = (r * r) * p + r;
    p = p + p_splat(1.0f);
    pi4 n1 = ni >> 1, n2 = ni - n1;
    pf4 s1 = (pf4)((n1 + p_splati(127)) << 23), s2 = (pf4)((n2 + p_splati(127)) << 23);
    pf4 y = (p * s1) * s2;
    return p_sel(x == x, y, x);
}

static inline pf4 p_log(pf4 x) {
    pi4 sub = x < p_splat(C_FLT_MIN);
    pf4 xs = p_sel(sub, x * p_splat(C_TWO23), x);
    pf4 ebias = p_sel(sub, p_splat(23.0f), p_splat(0.0f));
    pu4 bits = (pu4)xs;
    pi4 e = ((pi4)(bits - (pu4)p_splati(C_SQRT_HALF_BITS))) >> 23;
    pf4 m = (pf4)(bits - ((pu4)e << 23));
    pf4 f = m - p_splat(1.0f);
    pf4 ef = __builtin_convertvector(e, pf4) - ebias;
    pf4 s = f / (p_splat(2.0f) + f);
    pf4 z = s * s;
    pf4 R = p_splat(C_L3);
    R = R * z + p_splat(C_L2);
    R = R * z + p_splat(C_L1);
    R = R * z + p_splat(C_L0);
    R = R * z;
    pf4 hfsq = p_splat(0.5f) * (f * f);
    pf4 t = s * (hfsq + R) + ef * p_splat(C_LN2_LO);
    pf4 y = ef * p_splat(C_LN2_HI) - ((hfsq - t) - f);
    y = p_sel(x == p_splat(0.0f), p_splat(-INFINITY), y);
    y = p_sel(x == p_splat(INFINITY), p_splat(INFINITY), y);
    y = p_sel(x >= p_splat(0.0f), y, p_splat(NAN));  // negative or NaN
    return y;
}

static inline pf4 p_abs(pf4 x) { return (pf4)((pi4)x & p_splati(0x7fffffff)); }

static inline pf4 p_tanh(pf4 x) {
    pf4 a = p_abs(x);
    pf4 z = a * a;
    pf4 q = p_splat(C_T4);
    q = q * z + p_splat(C_T3);
    q = q * z + p_splat(C_T2);
    q = q * z + p_splat(C_T1);
    q = q * z + p_splat(C_T0);
    pf4 ys = (a * z) * q + a;
    pf4 ac = p_sel(a < p_splat(C_TANH_CLAMP), a, p_splat(C_TANH_CLAMP));
    pf4 e = p_exp(ac + ac);
    pf4 yl = p_splat(1.0f) - p_splat(2.0f) / (e + p_splat(1.0f));
    pf4 y = p_sel(a < p_splat(C_TANH_SMALL), ys, yl);
    y = (pf4)((pi4)y | ((pi4)x & p_splati((int32_t)0x80000000u)));
    return p_sel(x == x, y, x);
}

static inline pf4 p_sigmoid(pf4 x) {
    pf4 e = p_exp(-p_abs(x));
    pf4 num = p_sel(x < p_splat(0.0f), e, p_splat(1.0f));
    return num / (p_splat(1.0f) + e);
}

#define P_UNARY(fname, core)                                                   \
    static void fname(const float *x, float *y, int64_t n) {                   \
        int64_t i = 0;                                                         \
        for (; i + 4 <= n; i += 4) p_store(y + i, core(p_load(x + i)));        \
        if (i < n) {                                                           \
            float buf[4] = {0, 0, 0, 0};                                       \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));               \
            p_store(buf, core(p_load(buf)));                                   \
            memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));               \
        }                                                                      \
    }
P_UNARY(p_vexp, p_exp)
P_UNARY(p_vlog, p_log)
P_UNARY(p_vtanh, p_tanh)
P_UNARY(p_vsigmoid, p_sigmoid)

static double p_vexpsum(const float *x, float *y, int64_t n, float shift) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        pf4 v = p_exp(p_load(x + i) - p_splat(shift));
        if (y) p_store(y + i, v);
        s0 += v[0]; s1 += v[1]; s2 += v[2]; s3 += v[3];
    }
    if (i < n) {
        float buf[4] = {0, 0, 0, 0};
        memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));
        p_store(buf, p_exp(p_load(buf) - p_splat(shift)));
        if (y) memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));
        for (int64_t j = 0; j < n - i; ++j) s0 += buf[j];
    }
    return (s0 + s1) + (s2 + s3);
}

static double p_vsum(const float *x, int64_t n) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) s[j] += x[i + j];
    for (; i < n; ++i) s[0] += x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Lane-wise extremum with NaN tracking; `GT` is > for max and < for min.
#define P_EXTREMUM(fname, GT, start)                                           \
    static float fname(const float *x, int64_t n) {                            \
        float m[8];                                                            \
        int nan = 0;                                                           \
        for (int j = 0; j < 8; ++j) m[j] = start;                              \
        int64_t i = 0;                                                         \
        for (; i + 8 <= n; i += 8)                                             \
            for (int j = 0; j < 8; ++j) {                                      \
                float v = x[i + j];                                            \
                nan |= v != v;                                                 \
                m[j] = v GT m[j] ? v : m[j];                                   \
            }                                                                  \
        for (; i < n; ++i) {                                                   \
            float v = x[i];                                                    \
            nan |= v != v;                                                     \
            m[0] = v GT m[0] ? v : m[0];                                       \
        }                                                                      \
        if (nan) return NAN;                                                   \
        for (int j = 1; j < 8; ++j) m[0] = m[j] GT m[0] ? m[j] : m[0];         \
        return m[0];                                                           \
    }
P_EXTREMUM(p_vmax, >, -INFINITY)
P_EXTREMUM(p_vmin, <, INFINITY)

#if defined(__aarch64__)
// ---------------------------------------------------------------- NEON (4 lanes, 2 vectors a step)
//
// The AVX2 algorithm lane for lane (same clamps, the same fused multiply-adds: vfmaq_f32 is
// fmadd, vfmsq_f32 fnmadd), so the NEON results equal the AVX2 ones wherever both round the same
// operations. vmaxnmq/vminnmq return the number when one operand is NaN, as maxps/minps return
// their second operand; a NaN input is put back at the end either way. Each loop step works on two
// independent vectors, so two dependency chains hide the 4-cycle FMA latency.
//
// Paper estimate (not measured): exp is 13 vector arithmetic instructions (7 of them FMA) plus
// 6 integer ones per 4 lanes; at 2 to 4 NEON pipes that is 5 to 10 cycles per 4 floats, about
// 1 to 2 G exps per second per core at 2.5 to 3.2 GHz. log adds a division (vdivq_f32, about
// 0.1 to 0.25 per cycle per lane on these cores), which bounds it near 0.7 G per second; tanh and
// sigmoid are an exp plus a division.

static inline float32x4_t n4_exp(float32x4_t x) {
    const float32x4_t round = vdupq_n_f32(C_ROUND);
    float32x4_t xc = vmaxnmq_f32(x, vdupq_n_f32(C_EXP_LO));  // NaN -> EXP_LO, fixed below
    xc = vminnmq_f32(xc, vdupq_n_f32(C_EXP_HI));
    const float32x4_t t = vfmaq_f32(round, xc, vdupq_n_f32(C_LOG2E));
    const float32x4_t n = vsubq_f32(t, round);
    const int32x4_t ni = vsubq_s32(vreinterpretq_s32_f32(t), vreinterpretq_s32_f32(round));
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(C_LN2_HI));
    r = vfmsq_f32(r, n, vdupq_n_f32(C_LN2_LO));
    float32x4_t p = vfmaq_f32(vdupq_n_f32(C_E3), vdupq_n_f32(C_E4), r);
    p = vfmaq_f32(vdupq_n_f32(C_E2), p, r);
    p = vfmaq_f32(vdupq_n_f32(C_E1), p, r);
    p = vfmaq_f32(vdupq_n_f32(C_E0), p, r);
    p = vfmaq_f32(r, vmulq_f32(r, r), p);
    p = vaddq_f32(p, vdupq_n_f32(1.0f));
    const int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    const int32x4_t bias = vdupq_n_s32(127);
    const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    const float32x4_t y = vmulq_f32(vmulq_f32(p, s1), s2);
    return vbslq_f32(vceqq_f32(x, x), y, x);
}

static inline float32x4_t n4_log(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    const uint32x4_t sub = vcltq_f32(x, vdupq_n_f32(C_FLT_MIN));
    const float32x4_t xs = vbslq_f32(sub, vmulq_f32(x, vdupq_n_f32(C_TWO23)), x);
    const float32x4_t ebias = vreinterpretq_f32_u32(vandq_u32(sub, vreinterpretq_u32_f32(vdupq_n_f32(23.0f))));
    const int32x4_t bits = vreinterpretq_s32_f32(xs);
    const int32x4_t e = vshrq_n_s32(vsubq_s32(bits, vdupq_n_s32(C_SQRT_HALF_BITS)), 23);
    const float32x4_t m = vreinterpretq_f32_s32(vsubq_s32(bits, vshlq_n_s32(e, 23)));
    const float32x4_t f = vsubq_f32(m, one);
    const float32x4_t ef = vsubq_f32(vcvtq_f32_s32(e), ebias);
    const float32x4_t s = vdivq_f32(f, vaddq_f32(vdupq_n_f32(2.0f), f));
    const float32x4_t z = vmulq_f32(s, s);
    float32x4_t R = vfmaq_f32(vdupq_n_f32(C_L2), vdupq_n_f32(C_L3), z);
    R = vfmaq_f32(vdupq_n_f32(C_L1), R, z);
    R = vfmaq_f32(vdupq_n_f32(C_L0), R, z);
    R = vmulq_f32(R, z);
    const float32x4_t hfsq = vmulq_f32(vdupq_n_f32(0.5f), vmulq_f32(f, f));
    const float32x4_t t = vfmaq_f32(vmulq_f32(ef, vdupq_n_f32(C_LN2_LO)), s, vaddq_f32(hfsq, R));
    // ef LN2_HI - ((hfsq - t) - f) with one rounding, as AVX2's fmsub.
    float32x4_t y = vfmaq_f32(vnegq_f32(vsubq_f32(vsubq_f32(hfsq, t), f)), ef, vdupq_n_f32(C_LN2_HI));
    const float32x4_t zero = vdupq_n_f32(0.0f), inf = vdupq_n_f32(INFINITY);
    y = vbslq_f32(vceqq_f32(x, zero), vdupq_n_f32(-INFINITY), y);
    y = vbslq_f32(vceqq_f32(x, inf), inf, y);
    y = vbslq_f32(vcgeq_f32(x, zero), y, vdupq_n_f32(NAN));  // negative or NaN
    return y;
}

static inline float32x4_t n4_tanh(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    const float32x4_t a = vabsq_f32(x);
    const float32x4_t z = vmulq_f32(a, a);
    float32x4_t q = vfmaq_f32(vdupq_n_f32(C_T3), vdupq_n_f32(C_T4), z);
    q = vfmaq_f32(vdupq_n_f32(C_T2), q, z);
    q = vfmaq_f32(vdupq_n_f32(C_T1), q, z);
    q = vfmaq_f32(vdupq_n_f32(C_T0), q, z);
    const float32x4_t ys = vfmaq_f32(a, vmulq_f32(a, z), q);
    const float32x4_t ac = vminnmq_f32(a, vdupq_n_f32(C_TANH_CLAMP));
    const float32x4_t e = n4_exp(vaddq_f32(ac, ac));
    const float32x4_t yl = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, one)));
    float32x4_t y = vbslq_f32(vcltq_f32(a, vdupq_n_f32(C_TANH_SMALL)), ys, yl);
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    y = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(y), sign));
    return vbslq_f32(vceqq_f32(x, x), y, x);
}

static inline float32x4_t n4_sigmoid(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    const float32x4_t e = n4_exp(vnegq_f32(vabsq_f32(x)));
    const float32x4_t num = vbslq_f32(vcltq_f32(x, vdupq_n_f32(0.0f)), e, one);
    return vdivq_f32(num, vaddq_f32(one, e));
}

static inline float32x4_t n4_sqrt(float32x4_t x) { return vsqrtq_f32(x); }
// x < 0 ? 0 : x, so NaN and -0 pass (fmax would turn -0 into +0).
static inline float32x4_t n4_relu(float32x4_t x) { return vbslq_f32(vcltq_f32(x, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), x); }

#define N4_UNARY(fname, core)                                                  \
    static void fname(const float *x, float *y, int64_t n) {                   \
        int64_t i = 0;                                                         \
        for (; i + 8 <= n; i += 8) {                                           \
            const float32x4_t r0 = core(vld1q_f32(x + i)), r1 = core(vld1q_f32(x + i + 4)); \
            vst1q_f32(y + i, r0);                                              \
            vst1q_f32(y + i + 4, r1);                                          \
        }                                                                      \
        for (; i + 4 <= n; i += 4) vst1q_f32(y + i, core(vld1q_f32(x + i)));   \
        if (i < n) {                                                           \
            float buf[4] = {0, 0, 0, 0};                                       \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));               \
            vst1q_f32(buf, core(vld1q_f32(buf)));                              \
            memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));               \
        }                                                                      \
    }
N4_UNARY(n4_vexp, n4_exp)
N4_UNARY(n4_vlog, n4_log)
N4_UNARY(n4_vtanh, n4_tanh)
N4_UNARY(n4_vsigmoid, n4_sigmoid)

/// The four lanes of `v` widened to double and added into `acc`.
static inline float64x2_t n4_widen_add(float64x2_t acc, float32x4_t v) {
    return vaddq_f64(acc, vaddq_f64(vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)));
}

static double n4_vexpsum(const float *x, float *y, int64_t n, float shift) {
    const float32x4_t sh = vdupq_n_f32(shift);
    float64x2_t acc0 = vdupq_n_f64(0), acc1 = vdupq_n_f64(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t v0 = n4_exp(vsubq_f32(vld1q_f32(x + i), sh));
        const float32x4_t v1 = n4_exp(vsubq_f32(vld1q_f32(x + i + 4), sh));
        if (y) {
            vst1q_f32(y + i, v0);
            vst1q_f32(y + i + 4, v1);
        }
        acc0 = n4_widen_add(acc0, v0);
        acc1 = n4_widen_add(acc1, v1);
    }
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = n4_exp(vsubq_f32(vld1q_f32(x + i), sh));
        if (y) vst1q_f32(y + i, v);
        acc0 = n4_widen_add(acc0, v);
    }
    double tail = 0;
    if (i < n) {
        float buf[4] = {0, 0, 0, 0};
        memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));
        vst1q_f32(buf, n4_exp(vsubq_f32(vld1q_f32(buf), sh)));
        if (y) memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));
        for (int64_t j = 0; j < n - i; ++j) tail += buf[j];  // the padding lanes are not summed
    }
    return vaddvq_f64(vaddq_f64(acc0, acc1)) + tail;
}

static double n4_vsum(const float *x, int64_t n) {
    float64x2_t a0 = vdupq_n_f64(0), a1 = vdupq_n_f64(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = n4_widen_add(a0, vld1q_f32(x + i));
        a1 = n4_widen_add(a1, vld1q_f32(x + i + 4));
    }
    double tail = 0;
    for (; i < n; ++i) tail += x[i];
    return vaddvq_f64(vaddq_f64(a0, a1)) + tail;
}

// fmax/fmin on vectors (vmaxq_f32, vminq_f32) return NaN when either operand is NaN, so a NaN
// anywhere reaches the result without a separate test; `GT` orders the scalar tail likewise.
#define N4_EXTREMUM(fname, vop, vreduce, GT, start)                            \
    static float fname(const float *x, int64_t n) {                            \
        float32x4_t m0 = vdupq_n_f32(start), m1 = m0;                          \
        int64_t i = 0;                                                         \
        for (; i + 8 <= n; i += 8) {                                           \
            m0 = vop(m0, vld1q_f32(x + i));                                    \
            m1 = vop(m1, vld1q_f32(x + i + 4));                                \
        }                                                                      \
        float m = vreduce(vop(m0, m1));                                        \
        for (; i < n; ++i) {                                                   \
            const float v = x[i];                                              \
            if (v != v || v GT m) m = v;                                       \
            if (m != m) break;                                                 \
        }                                                                      \
        return m;                                                              \
    }
N4_EXTREMUM(n4_vmax, vmaxq_f32, vmaxvq_f32, >, -INFINITY)
N4_EXTREMUM(n4_vmin, vminq_f32, vminvq_f32, <, INFINITY)
#endif  // __aarch64__

#ifdef CK_X86
// ---------------------------------------------------------------- AVX2 + FMA (8 lanes)
#define A2 __attribute__((target("avx2,fma")))

A2 static inline __m256 a2_exp(__m256 x) {
    const __m256 round = _mm256_set1_ps(C_ROUND);
    __m256 xc = _mm256_max_ps(x, _mm256_set1_ps(C_EXP_LO));  // NaN -> EXP_LO, fixed below
    xc = _mm256_min_ps(xc, _mm256_set1_ps(C_EXP_HI));
    __m256 t = _mm256_fmadd_ps(xc, _mm256_set1_ps(C_LOG2E), round);
    __m256 n = _mm256_sub_ps(t, round);
    __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(round));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C_LN2_HI), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C_LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(C_E4), r, _mm256_set1_ps(C_E3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C_E2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C_E1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C_E0));
    p = _mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// e^x * 2^offset for x in [-104 + 0, 88.8 - offset * ln2] (no clamps, no NaN test), with the
// scaling as one factor 2^(n + offset) built from the rounding's bits: what tanh (offset 0, x in
// [0, 18.2], so 2^n is normal) and sigmoid (offset 64, x in [-104, 0]: 2^(n + 64) is normal, and
// the caller's one multiply by 2^-64 rounds a subnormal result once) call instead of a2_exp. The
// product p * 2^(n + offset) is exact, so the bits are a2_exp's, in 14 instructions (sigmoid 15) instead of 24.
A2 static inline __m256 a2_exp_scaled(__m256 x, int offset) {
    const __m256 round = _mm256_set1_ps(C_ROUND);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(C_LOG2E), round);
    __m256 n = _mm256_sub_ps(t, round);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C_LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(C_E4), r, _mm256_set1_ps(C_E3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C_E2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C_E1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C_E0));
    p = _mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    // t's low bits hold n + bits(round): adding 127 + offset - bits(round) gives the biased exponent.
    const int32_t roundBits = 0x4b400000;  // bits of C_ROUND
    __m256i biased = _mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(127 + offset - roundBits));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(biased, 23)));
}

A2 static inline __m256 a2_log(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 sub = _mm256_cmp_ps(x, _mm256_set1_ps(C_FLT_MIN), _CMP_LT_OQ);
    __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(C_TWO23)), sub);
    __m256 ebias = _mm256_and_ps(sub, _mm256_set1_ps(23.0f));
    __m256i bits = _mm256_castps_si256(xs);
    __m256i e = _mm256_srai_epi32(_mm256_sub_epi32(bits, _mm256_set1_epi32(C_SQRT_HALF_BITS)), 23);
    __m256 m = _mm256_castsi256_ps(_mm256_sub_epi32(bits, _mm256_slli_epi32(e, 23)));
    __m256 f = _mm256_sub_ps(m, one);
    __m256 ef = _mm256_sub_ps(_mm256_cvtepi32_ps(e), ebias);
    __m256 s = _mm256_div_ps(f, _mm256_add_ps(_mm256_set1_ps(2.0f), f));
    __m256 z = _mm256_mul_ps(s, s);
    __m256 R = _mm256_fmadd_ps(_mm256_set1_ps(C_L3), z, _mm256_set1_ps(C_L2));
    R = _mm256_fmadd_ps(R, z, _mm256_set1_ps(C_L1));
    R = _mm256_fmadd_ps(R, z, _mm256_set1_ps(C_L0));
    R = _mm256_mul_ps(R, z);
    __m256 hfsq = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_mul_ps(f, f));
    __m256 t = _mm256_fmadd_ps(s, _mm256_add_ps(hfsq, R), _mm256_mul_ps(ef, _mm256_set1_ps(C_LN2_LO)));
    __m256 y = _mm256_fmsub_ps(ef, _mm256_set1_ps(C_LN2_HI), _mm256_sub_ps(_mm256_sub_ps(hfsq, t), f));
    const __m256 zero = _mm256_setzero_ps(), inf = _mm256_set1_ps(INFINITY);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(x, zero, _CMP_EQ_OQ));
    y = _mm256_blendv_ps(y, inf, _mm256_cmp_ps(x, inf, _CMP_EQ_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(NAN), _mm256_cmp_ps(x, zero, _CMP_NGE_UQ));
    return y;
}

A2 static inline __m256 a2_abs(__m256 x) {
    return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

A2 static inline __m256 a2_tanh(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 a = a2_abs(x);
    __m256 z = _mm256_mul_ps(a, a);
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(C_T4), z, _mm256_set1_ps(C_T3));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(C_T2));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(C_T1));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(C_T0));
    __m256 ys = _mm256_fmadd_ps(_mm256_mul_ps(a, z), q, a);
    __m256 ac = _mm256_min_ps(a, _mm256_set1_ps(C_TANH_CLAMP));  // NaN -> 9.1, fixed below
    __m256 e = a2_exp_scaled(_mm256_add_ps(ac, ac), 0);
    __m256 yl = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    __m256 y = _mm256_blendv_ps(yl, ys, _mm256_cmp_ps(a, _mm256_set1_ps(C_TANH_SMALL), _CMP_LT_OQ));
    y = _mm256_or_ps(y, _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u))));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

A2 static inline __m256 a2_sigmoid(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    // max(-104, -|x|) keeps a NaN (vmaxps returns its second operand when either is NaN), which
    // the polynomial and the division carry through.
    __m256 m = _mm256_max_ps(_mm256_set1_ps(C_EXP_LO), _mm256_sub_ps(_mm256_setzero_ps(), a2_abs(x)));
    __m256 e = _mm256_mul_ps(a2_exp_scaled(m, 64), _mm256_set1_ps(0x1p-64f));
    __m256 num = _mm256_blendv_ps(one, e, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_div_ps(num, _mm256_add_ps(one, e));
}

#define A2_UNARY(fname, core)                                                  \
    A2 static void fname(const float *x, float *y, int64_t n) {                \
        int64_t i = 0;                                                         \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, core(_mm256_loadu_ps(x + i))); \
        if (i < n) {                                                           \
            float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};                           \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));               \
            _mm256_storeu_ps(buf, core(_mm256_loadu_ps(buf)));                 \
            memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));               \
        }                                                                      \
    }
A2_UNARY(a2_vexp, a2_exp)
A2_UNARY(a2_vlog, a2_log)
A2_UNARY(a2_vtanh, a2_tanh)
A2_UNARY(a2_vsigmoid, a2_sigmoid)

A2 static inline __m256d a2_widen_sum(__m256 v) {
    return _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                         _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

A2 static inline double a2_hsum(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

A2 static double a2_vexpsum(const float *x, float *y, int64_t n, float shift) {
    const __m256 sh = _mm256_set1_ps(shift);
    __m256d acc = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = a2_exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        if (y) _mm256_storeu_ps(y + i, v);
        acc = _mm256_add_pd(acc, a2_widen_sum(v));
    }
    double s = a2_hsum(acc);
    if (i < n) {
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));
        _mm256_storeu_ps(buf, a2_exp(_mm256_sub_ps(_mm256_loadu_ps(buf), sh)));
        if (y) memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));
        for (int64_t j = 0; j < n - i; ++j) s += buf[j];
    }
    return s;
}

A2 static double a2_vsum(const float *x, int64_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_pd(a0, a2_widen_sum(_mm256_loadu_ps(x + i)));
        a1 = _mm256_add_pd(a1, a2_widen_sum(_mm256_loadu_ps(x + i + 8)));
    }
    double s = a2_hsum(_mm256_add_pd(a0, a1));
    for (; i < n; ++i) s += x[i];
    return s;
}

// `op` is max or min; the other lanes of a partial vector are filled with `start`.
#define A2_EXTREMUM(fname, op, sop, start)                                          \
    A2 static float fname(const float *x, int64_t n) {                         \
        __m256 m0 = _mm256_set1_ps(start), m1 = m0, nan = _mm256_setzero_ps(); \
        int64_t i = 0;                                                         \
        for (; i + 16 <= n; i += 16) {                                         \
            __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8); \
            nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));      \
            m0 = op(m0, v0);                                                   \
            m1 = op(m1, v1);                                                   \
        }                                                                      \
        float lanes[8];                                                        \
        _mm256_storeu_ps(lanes, op(m0, m1));                                   \
        float m = start;                                                       \
        int any = _mm256_movemask_ps(nan) != 0;                                \
        for (int j = 0; j < 8; ++j) { any |= lanes[j] != lanes[j]; m = sop(m, lanes[j]); } \
        for (; i < n; ++i) { any |= x[i] != x[i]; m = sop(m, x[i]); }  \
        return any ? NAN : m;                                                  \
    }
static inline float scalar_max(float a, float b) { return b > a ? b : a; }
static inline float scalar_min(float a, float b) { return b < a ? b : a; }
A2_EXTREMUM(a2_vmax, _mm256_max_ps, scalar_max, -INFINITY)
A2_EXTREMUM(a2_vmin, _mm256_min_ps, scalar_min, INFINITY)

// ---------------------------------------------------------------- AVX-512F (16 lanes)
#define A512 __attribute__((target("avx512f,fma")))

// e^x for x in [-104, 88.8] or NaN (NaN in, NaN out). The scaling by 2^n is one vscalefps, which
// rounds p * 2^n once, as the other paths' two-factor product does, so the bits are the same
// (checked over all 2^32 inputs), in 12 instructions instead of 21 with integer exponent
// arithmetic. tanh and sigmoid, whose arguments are in range by construction, call it directly.
A512 static inline __m512 v16_exp_in_range(__m512 x) {
    const __m512 round = _mm512_set1_ps(C_ROUND);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(C_LOG2E), round);
    __m512 n = _mm512_sub_ps(t, round);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C_LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(C_E4), r, _mm512_set1_ps(C_E3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C_E2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C_E1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C_E0));
    p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

A512 static inline __m512 v16_exp(__m512 x) {
    __m512 xc = _mm512_max_ps(x, _mm512_set1_ps(C_EXP_LO));  // NaN -> EXP_LO, fixed below
    xc = _mm512_min_ps(xc, _mm512_set1_ps(C_EXP_HI));
    __m512 y = v16_exp_in_range(xc);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

A512 static inline __m512 v16_log(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __mmask16 sub = _mm512_cmp_ps_mask(x, _mm512_set1_ps(C_FLT_MIN), _CMP_LT_OQ);
    __m512 xs = _mm512_mask_mul_ps(x, sub, x, _mm512_set1_ps(C_TWO23));
    __m512 ebias = _mm512_maskz_mov_ps(sub, _mm512_set1_ps(23.0f));
    __m512i bits = _mm512_castps_si512(xs);
    __m512i e = _mm512_srai_epi32(_mm512_sub_epi32(bits, _mm512_set1_epi32(C_SQRT_HALF_BITS)), 23);
    __m512 m = _mm512_castsi512_ps(_mm512_sub_epi32(bits, _mm512_slli_epi32(e, 23)));
    __m512 f = _mm512_sub_ps(m, one);
    __m512 ef = _mm512_sub_ps(_mm512_cvtepi32_ps(e), ebias);
    __m512 s = _mm512_div_ps(f, _mm512_add_ps(_mm512_set1_ps(2.0f), f));
    __m512 z = _mm512_mul_ps(s, s);
    __m512 R = _mm512_fmadd_ps(_mm512_set1_ps(C_L3), z, _mm512_set1_ps(C_L2));
    R = _mm512_fmadd_ps(R, z, _mm512_set1_ps(C_L1));
    R = _mm512_fmadd_ps(R, z, _mm512_set1_ps(C_L0));
    R = _mm512_mul_ps(R, z);
    __m512 hfsq = _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_mul_ps(f, f));
    __m512 t = _mm512_fmadd_ps(s, _mm512_add_ps(hfsq, R), _mm512_mul_ps(ef, _mm512_set1_ps(C_LN2_LO)));
    __m512 y = _mm512_fmsub_ps(ef, _mm512_set1_ps(C_LN2_HI), _mm512_sub_ps(_mm512_sub_ps(hfsq, t), f));
    const __m512 zero = _mm512_setzero_ps(), inf = _mm512_set1_ps(INFINITY);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ), _mm512_set1_ps(-INFINITY));
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, inf, _CMP_EQ_OQ), inf);
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, zero, _CMP_NGE_UQ), _mm512_set1_ps(NAN));
    return y;
}

A512 static inline __m512 v16_abs(__m512 x) {
    return _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

A512 static inline __m512 v16_tanh(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 a = v16_abs(x);
    __m512 z = _mm512_mul_ps(a, a);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(C_T4), z, _mm512_set1_ps(C_T3));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(C_T2));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(C_T1));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(C_T0));
    __m512 ys = _mm512_fmadd_ps(_mm512_mul_ps(a, z), q, a);
    __m512 ac = _mm512_min_ps(_mm512_set1_ps(C_TANH_CLAMP), a);  // NaN stays NaN
    __m512 e = v16_exp_in_range(_mm512_add_ps(ac, ac));
    __m512 yl = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
    __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(C_TANH_SMALL), _CMP_LT_OQ), yl, ys);
    __m512i sign = _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
    y = _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(y), sign));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

A512 static inline __m512 v16_sigmoid(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    // max(-104, -|x|) keeps a NaN (vmaxps returns its second operand when either is NaN).
    __m512 e = v16_exp_in_range(_mm512_max_ps(_mm512_set1_ps(C_EXP_LO), _mm512_sub_ps(_mm512_setzero_ps(), v16_abs(x))));
    __m512 num = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), one, e);
    return _mm512_div_ps(num, _mm512_add_ps(one, e));
}

#define A512_UNARY(fname, core)                                                \
    A512 static void fname(const float *x, float *y, int64_t n) {              \
        int64_t i = 0;                                                         \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, core(_mm512_loadu_ps(x + i))); \
        if (i < n) {                                                           \
            __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);                   \
            _mm512_mask_storeu_ps(y + i, k, core(_mm512_maskz_loadu_ps(k, x + i))); \
        }                                                                      \
    }
A512_UNARY(v16_vexp, v16_exp)
A512_UNARY(v16_vlog, v16_log)
A512_UNARY(v16_vtanh, v16_tanh)
A512_UNARY(v16_vsigmoid, v16_sigmoid)

A512 static inline __m512d v16_widen_sum(__m512 v) {
    __m256 lo = _mm512_castps512_ps256(v);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return _mm512_add_pd(_mm512_cvtps_pd(lo), _mm512_cvtps_pd(hi));
}

A512 static double v16_vexpsum(const float *x, float *y, int64_t n, float shift) {
    const __m512 sh = _mm512_set1_ps(shift);
    __m512d acc = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = v16_exp(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
        if (y) _mm512_storeu_ps(y + i, v);
        acc = _mm512_add_pd(acc, v16_widen_sum(v));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_maskz_mov_ps(k, v16_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), sh)));
        if (y) _mm512_mask_storeu_ps(y + i, k, v);
        acc = _mm512_add_pd(acc, v16_widen_sum(v));
    }
    return _mm512_reduce_add_pd(acc);
}

A512 static double v16_vsum(const float *x, int64_t n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_add_pd(a0, v16_widen_sum(_mm512_loadu_ps(x + i)));
        a1 = _mm512_add_pd(a1, v16_widen_sum(_mm512_loadu_ps(x + i + 16)));
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
        a0 = _mm512_add_pd(a0, v16_widen_sum(_mm512_maskz_loadu_ps(k, x + i)));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

#define A512_EXTREMUM(fname, op, reduce, start)                                \
    A512 static float fname(const float *x, int64_t n) {                       \
        const __m512 fill = _mm512_set1_ps(start);                             \
        __m512 m0 = fill, m1 = fill;                                           \
        __mmask16 nan = 0;                                                     \
        int64_t i = 0;                                                         \
        for (; i + 32 <= n; i += 32) {                                         \
            __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16); \
            nan |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q);                   \
            m0 = op(m0, v0);                                                   \
            m1 = op(m1, v1);                                                   \
        }                                                                      \
        for (; i < n; i += 16) {                                               \
            __mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u); \
            __m512 v = _mm512_mask_loadu_ps(fill, k, x + i);                   \
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);                     \
            m0 = op(m0, v);                                                    \
        }                                                                      \
        return nan ? NAN : reduce(op(m0, m1));                                 \
    }
A512_EXTREMUM(v16_vmax, _mm512_max_ps, _mm512_reduce_max_ps, -INFINITY)
A512_EXTREMUM(v16_vmin, _mm512_min_ps, _mm512_reduce_min_ps, INFINITY)
#endif  // CK_X86

// ---------------------------------------------------------------- square root (ck_lanes.h)

// One loop for every path: 16 lanes at a time, the remainder through a zero-padded copy.
CK_ALWAYS_INLINE void vsqrt_run(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + CK_LANES <= n; i += CK_LANES) CK_STORE(y + i, CK_SQRT(CK_LOAD(x + i)));
    if (i < n) {
        float buf[CK_LANES] = {0};
        memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));
        CK_STORE(buf, CK_SQRT(CK_LOAD(buf)));
        memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));
    }
}

CK_LANE_PATHS(vsqrt, vsqrt_run, (const float *x, float *y, int64_t n), (x, y, n))

// ---------------------------------------------------------------- dispatch

#ifdef CK_X86
#define CK_DISPATCH(isa, avx512_call, avx2_call, neon_call, portable_call) \
    switch (isa) {                                              \
    case CK_ISA_AVX512: avx512_call;                            \
    case CK_ISA_AVX2: avx2_call;                                \
    default: portable_call;                                     \
    }
#elif defined(__aarch64__)
#define CK_DISPATCH(isa, avx512_call, avx2_call, neon_call, portable_call) \
    switch (isa) {                                              \
    case CK_ISA_NEON: neon_call;                                \
    default: portable_call;                                     \
    }
#else
#define CK_DISPATCH(isa, avx512_call, avx2_call, neon_call, portable_call) \
    (void)(isa);                                                \
    portable_call;
#endif

void ck_vexp(int isa, const float *x, float *y, int64_t n) {
    CK_DISPATCH(isa, v16_vexp(x, y, n); return, a2_vexp(x, y, n); return, n4_vexp(x, y, n); return,
                p_vexp(x, y, n); return)
}

void ck_vlog(int isa, const float *x, float *y, int64_t n) {
    CK_DISPATCH(isa, v16_vlog(x, y, n); return, a2_vlog(x, y, n); return, n4_vlog(x, y, n); return,
                p_vlog(x, y, n); return)
}

void ck_vsqrt(int isa, const float *x, float *y, int64_t n) {
    CK_LANE_DISPATCH(isa, vsqrt, (x, y, n))
}

void ck_vtanh(int isa, const float *x, float *y, int64_t n) {
    CK_DISPATCH(isa, v16_vtanh(x, y, n); return, a2_vtanh(x, y, n); return, n4_vtanh(x, y, n); return,
                p_vtanh(x, y, n); return)
}

void ck_vsigmoid(int isa, const float *x, float *y, int64_t n) {
    CK_DISPATCH(isa, v16_vsigmoid(x, y, n); return, a2_vsigmoid(x, y, n); return,
                n4_vsigmoid(x, y, n); return, p_vsigmoid(x, y, n); return)
}

double ck_vexpsum(int isa, const float *x, float *y, int64_t n, float shift) {
    CK_DISPATCH(isa, return v16_vexpsum(x, y, n, shift), return a2_vexpsum(x, y, n, shift),
                return n4_vexpsum(x, y, n, shift), return p_vexpsum(x, y, n, shift))
}

double ck_vsum(int isa, const float *x, int64_t n) {
    CK_DISPATCH(isa, return v16_vsum(x, n), return a2_vsum(x, n), return n4_vsum(x, n), return p_vsum(x, n))
}

float ck_vmax(int isa, const float *x, int64_t n) {
    CK_DISPATCH(isa, return v16_vmax(x, n), return a2_vmax(x, n), return n4_vmax(x, n), return p_vmax(x, n))
}

float ck_vmin(int isa, const float *x, int64_t n) {
    CK_DISPATCH(isa, return v16_vmin(x, n), return a2_vmin(x, n), return n4_vmin(x, n), return p_vmin(x, n))
}

// ---------------------------------------------------------------- streaming stores

typedef float ck_q4a __attribute__((vector_size(16), may_alias));

void ck_stream_store(float *dst, const float *src, int64_t n) {
    int64_t i = 0;
    while (i < n && ((uintptr_t)(dst + i) & 15) != 0) {
        dst[i] = src[i];
        ++i;
    }
    for (; i + 4 <= n; i += 4) {
        ck_q4a v;
        memcpy(&v, src + i, sizeof v);
        __builtin_nontemporal_store(v, (ck_q4a *)(dst + i));
    }
    for (; i < n; ++i) dst[i] = src[i];
}

void ck_stream_fence(void) {
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_ia32_sfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

void ck_prefetch(const float *p, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i);
}

// ---------------------------------------------------------------- streaming maps
//
// For results too large to stay in cache: each vector of results goes straight to memory with a
// non-temporal store (no read of the destination line first), and the inputs are prefetched
// 2 KiB ahead. Computing and storing vector by vector keeps the memory traffic flowing while the
// arithmetic runs; computing a block into L1 and then streaming it out left them taking turns
// (exp on one core: 1.5 G elements/s that way, 2.5 G fused, memcpy 2.5 G).
// The results are bit for bit those of ck_vexp & co. on the same path.

#define CK_STREAM_AHEAD 512  // floats of each input prefetched ahead

// Unary: the regular kernel does the unaligned head and the tail.
typedef void (*ck_unary_fn)(int, const float *, float *, int64_t);

// max(x, 0) with NaN kept and -0 kept, as TensorCore's relu: x < 0 ? 0 : x.
static void relu_regular(int isa, const float *x, float *y, int64_t n) {
    (void)isa;
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0 ? 0.0f : x[i];
}

static ck_unary_fn unary_kernel(int op) {
    switch (op) {
    case CK_MAP_RELU: return relu_regular;
    case CK_MAP_EXP: return ck_vexp;
    case CK_MAP_LOG: return ck_vlog;
    case CK_MAP_SQRT: return ck_vsqrt;
    case CK_MAP_TANH: return ck_vtanh;
    default: return ck_vsigmoid;
    }
}

#ifdef CK_X86
#define A512_STREAM(fname, core)                                               \
    A512 static void fname(const float *x, float *y, int64_t n) {              \
        for (int64_t i = 0; i < n; i += 16) {                                  \
            _mm_prefetch((const char *)(x + i + CK_STREAM_AHEAD), _MM_HINT_T0); \
            _mm512_stream_ps(y + i, core(_mm512_loadu_ps(x + i)));             \
        }                                                                      \
        _mm_sfence();                                                          \
    }
A512 static inline __m512 v16_sqrt(__m512 x) { return _mm512_sqrt_ps(x); }
// vmaxps returns its second operand when either is NaN or both are zeros: NaN and -0 pass through.
A512 static inline __m512 v16_relu(__m512 x) { return _mm512_max_ps(_mm512_setzero_ps(), x); }
A512_STREAM(v16_sexp, v16_exp)
A512_STREAM(v16_slog, v16_log)
A512_STREAM(v16_ssqrt, v16_sqrt)
A512_STREAM(v16_stanh, v16_tanh)
A512_STREAM(v16_ssigmoid, v16_sigmoid)
A512_STREAM(v16_srelu, v16_relu)

#define A2_STREAM(fname, core)                                                 \
    A2 static void fname(const float *x, float *y, int64_t n) {                \
        for (int64_t i = 0; i < n; i += 8) {                                   \
            _mm_prefetch((const char *)(x + i + CK_STREAM_AHEAD), _MM_HINT_T0); \
            _mm256_stream_ps(y + i, core(_mm256_loadu_ps(x + i)));             \
        }                                                                      \
        _mm_sfence();                                                          \
    }
A2 static inline __m256 a2_sqrt(__m256 x) { return _mm256_sqrt_ps(x); }
A2 static inline __m256 a2_relu(__m256 x) { return _mm256_max_ps(_mm256_setzero_ps(), x); }
A2_STREAM(a2_sexp, a2_exp)
A2_STREAM(a2_slog, a2_log)
A2_STREAM(a2_ssqrt, a2_sqrt)
A2_STREAM(a2_stanh, a2_tanh)
A2_STREAM(a2_ssigmoid, a2_sigmoid)
A2_STREAM(a2_srelu, a2_relu)

#endif

#if defined(CK_X86) || defined(__aarch64__)
// The number of leading floats of y before a `bytes`-aligned address (y is float-aligned), at most n.
static int64_t head_count(const float *y, int64_t n, int64_t bytes) {
    const int64_t head = (int64_t)((bytes - ((uintptr_t)y & (uintptr_t)(bytes - 1))) & (uintptr_t)(bytes - 1)) / 4;
    return head < n ? head : n;
}
#endif

#if defined(__aarch64__)
// NEON streams with stnp (store pair, non-temporal: the hint not to allocate the lines in the
// caches), which clang emits for __builtin_nontemporal_store of a q register, and prfm ahead.
#define N4_STREAM(fname, core)                                                 \
    static void fname(const float *x, float *y, int64_t n) {                   \
        for (int64_t i = 0; i < n; i += 4) {                                   \
            __builtin_prefetch(x + i + CK_STREAM_AHEAD);                       \
            __builtin_nontemporal_store(core(vld1q_f32(x + i)), (float32x4_t *)(y + i)); \
        }                                                                      \
        __atomic_thread_fence(__ATOMIC_SEQ_CST);                               \
    }
N4_STREAM(n4_sexp, n4_exp)
N4_STREAM(n4_slog, n4_log)
N4_STREAM(n4_ssqrt, n4_sqrt)
N4_STREAM(n4_stanh, n4_tanh)
N4_STREAM(n4_ssigmoid, n4_sigmoid)
N4_STREAM(n4_srelu, n4_relu)
#endif

void ck_vmap_stream(int isa, int op, const float *x, float *y, int64_t n) {
    const ck_unary_fn regular = unary_kernel(op);
#ifdef CK_X86
    if (isa == CK_ISA_AVX512 || isa == CK_ISA_AVX2) {
        const int64_t lanes = isa == CK_ISA_AVX512 ? 16 : 8;
        const int64_t head = head_count(y, n, lanes * 4);
        const int64_t body = (n - head) / lanes * lanes;
        regular(isa, x, y, head);
        const float *xb = x + head;
        float *yb = y + head;
        if (isa == CK_ISA_AVX512) {
            switch (op) {
            case CK_MAP_EXP: v16_sexp(xb, yb, body); break;
            case CK_MAP_LOG: v16_slog(xb, yb, body); break;
            case CK_MAP_SQRT: v16_ssqrt(xb, yb, body); break;
            case CK_MAP_TANH: v16_stanh(xb, yb, body); break;
            case CK_MAP_RELU: v16_srelu(xb, yb, body); break;
            default: v16_ssigmoid(xb, yb, body); break;
            }
        } else {
            switch (op) {
            case CK_MAP_EXP: a2_sexp(xb, yb, body); break;
            case CK_MAP_LOG: a2_slog(xb, yb, body); break;
            case CK_MAP_SQRT: a2_ssqrt(xb, yb, body); break;
            case CK_MAP_TANH: a2_stanh(xb, yb, body); break;
            case CK_MAP_RELU: a2_srelu(xb, yb, body); break;
            default: a2_ssigmoid(xb, yb, body); break;
            }
        }
        regular(isa, xb + body, yb + body, n - head - body);
        return;
    }
#endif
#if defined(__aarch64__)
    if (isa == CK_ISA_NEON) {
        const int64_t head = head_count(y, n, 16);
        const int64_t body = (n - head) / 4 * 4;
        regular(isa, x, y, head);
        const float *xb = x + head;
        float *yb = y + head;
        switch (op) {
        case CK_MAP_EXP: n4_sexp(xb, yb, body); break;
        case CK_MAP_LOG: n4_slog(xb, yb, body); break;
        case CK_MAP_SQRT: n4_ssqrt(xb, yb, body); break;
        case CK_MAP_TANH: n4_stanh(xb, yb, body); break;
        case CK_MAP_RELU: n4_srelu(xb, yb, body); break;
        default: n4_ssigmoid(xb, yb, body); break;
        }
        regular(isa, xb + body, yb + body, n - head - body);
        return;
    }
#endif
    regular(isa, x, y, n);
}

// Binary: y = a op b, element by element, as IEEE single-precision operations (the same bits as
// any other correctly rounded evaluation).
#define CK_ZIP_SCALAR(op, a, b) \
    ((op) == CK_ZIP_ADD ? (a) + (b) : (op) == CK_ZIP_SUBTRACT ? (a) - (b) : (op) == CK_ZIP_MULTIPLY ? (a) * (b) : (a) / (b))

static void zip_scalar(int op, const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = CK_ZIP_SCALAR(op, a[i], b[i]);
}

#ifdef CK_X86
#define A512_ZIP_STREAM(fname, vop)                                                      \
    A512 static void fname(const float *a, const float *b, float *y, int64_t n) {        \
        for (int64_t i = 0; i < n; i += 16) {                                            \
            _mm_prefetch((const char *)(a + i + CK_STREAM_AHEAD), _MM_HINT_T0);           \
            _mm_prefetch((const char *)(b + i + CK_STREAM_AHEAD), _MM_HINT_T0);           \
            _mm512_stream_ps(y + i, vop(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))); \
        }                                                                                \
        _mm_sfence();                                                                    \
    }
A512_ZIP_STREAM(v16_sadd, _mm512_add_ps)
A512_ZIP_STREAM(v16_ssub, _mm512_sub_ps)
A512_ZIP_STREAM(v16_smul, _mm512_mul_ps)
A512_ZIP_STREAM(v16_sdiv, _mm512_div_ps)

#define A2_ZIP_STREAM(fname, vop)                                                        \
    A2 static void fname(const float *a, const float *b, float *y, int64_t n) {          \
        for (int64_t i = 0; i < n; i += 8) {                                             \
            _mm_prefetch((const char *)(a + i + CK_STREAM_AHEAD), _MM_HINT_T0);           \
            _mm_prefetch((const char *)(b + i + CK_STREAM_AHEAD), _MM_HINT_T0);           \
            _mm256_stream_ps(y + i, vop(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))); \
        }                                                                                \
        _mm_sfence();                                                                    \
    }
A2_ZIP_STREAM(a2_sadd, _mm256_add_ps)
A2_ZIP_STREAM(a2_ssub, _mm256_sub_ps)
A2_ZIP_STREAM(a2_smul, _mm256_mul_ps)
A2_ZIP_STREAM(a2_sdiv, _mm256_div_ps)
#endif

#if defined(__aarch64__)
#define N4_ZIP_STREAM(fname, vop)                                                        \
    static void fname(const float *a, const float *b, float *y, int64_t n) {             \
        for (int64_t i = 0; i < n; i += 4) {                                             \
            __builtin_prefetch(a + i + CK_STREAM_AHEAD);                                 \
            __builtin_prefetch(b + i + CK_STREAM_AHEAD);                                 \
            __builtin_nontemporal_store(vop(vld1q_f32(a + i), vld1q_f32(b + i)), (float32x4_t *)(y + i)); \
        }                                                                                \
        __atomic_thread_fence(__ATOMIC_SEQ_CST);                                         \
    }
N4_ZIP_STREAM(n4_sadd, vaddq_f32)
N4_ZIP_STREAM(n4_ssub, vsubq_f32)
N4_ZIP_STREAM(n4_smul, vmulq_f32)
N4_ZIP_STREAM(n4_sdiv, vdivq_f32)
#endif

void ck_vzip_stream(int isa, int op, const float *a, const float *b, float *y, int64_t n) {
#ifdef CK_X86
    if (isa == CK_ISA_AVX512 || isa == CK_ISA_AVX2) {
        const int64_t lanes = isa == CK_ISA_AVX512 ? 16 : 8;
        const int64_t head = head_count(y, n, lanes * 4);
        const int64_t body = (n - head) / lanes * lanes;
        zip_scalar(op, a, b, y, head);
        const float *ab = a + head, *bb = b + head;
        float *yb = y + head;
        if (isa == CK_ISA_AVX512) {
            switch (op) {
            case CK_ZIP_ADD: v16_sadd(ab, bb, yb, body); break;
            case CK_ZIP_SUBTRACT: v16_ssub(ab, bb, yb, body); break;
            case CK_ZIP_MULTIPLY: v16_smul(ab, bb, yb, body); break;
            default: v16_sdiv(ab, bb, yb, body); break;
            }
        } else {
            switch (op) {
            case CK_ZIP_ADD: a2_sadd(ab, bb, yb, body); break;
            case CK_ZIP_SUBTRACT: a2_ssub(ab, bb, yb, body); break;
            case CK_ZIP_MULTIPLY: a2_smul(ab, bb, yb, body); break;
            default: a2_sdiv(ab, bb, yb, body); break;
            }
        }
        zip_scalar(op, ab + body, bb + body, yb + body, n - head - body);
        return;
    }
#endif
#if defined(__aarch64__)
    if (isa == CK_ISA_NEON) {
        const int64_t head = head_count(y, n, 16);
        const int64_t body = (n - head) / 4 * 4;
        zip_scalar(op, a, b, y, head);
        const float *ab = a + head, *bb = b + head;
        float *yb = y + head;
        switch (op) {
        case CK_ZIP_ADD: n4_sadd(ab, bb, yb, body); break;
        case CK_ZIP_SUBTRACT: n4_ssub(ab, bb, yb, body); break;
        case CK_ZIP_MULTIPLY: n4_smul(ab, bb, yb, body); break;
        default: n4_sdiv(ab, bb, yb, body); break;
        }
        zip_scalar(op, ab + body, bb + body, yb + body, n - head - body);
        return;
    }
#endif
    zip_scalar(op, a, b, y, n);
}
