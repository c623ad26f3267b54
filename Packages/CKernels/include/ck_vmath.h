#ifndef NEURITE_CK_VMATH_H
#define NEURITE_CK_VMATH_H

#include <stdint.h>

// Vectorised math over contiguous float arrays, one implementation per ISA path
// (`isa` is a `ck_isa` value; an unsupported or unknown value takes the portable path).
//
// All paths use the same range reductions, polynomials and constants (no libm), so they agree
// to within an ulp or so; the AVX and NEON paths differ from the portable one only where they fuse
// a multiply-add. Maximum error against the exact result, measured on every x86-64 path over every
// 197th float bit pattern plus a dense sweep of [-100, 100]: 1.0 ulp (exp), 0.9 ulp (log), 1.3 ulp
// (tanh), 2.2 ulp (sigmoid); on the NEON path, under qemu over every 65521st bit pattern and the
// same sweep (Tools/neon-check): 0.96, 0.75, 1.13 and 1.97 ulp. `y` may equal `x` (in place); otherwise the arrays must not overlap. `n` may be 0.

/// y[i] = e^x[i]. exp(-inf) = 0, exp(+inf) = +inf, exp(x > 88.72) = +inf, results below
/// FLT_MIN are correctly scaled subnormals (or 0 below about -103.97), NaN stays NaN.
void ck_vexp(int isa, const float *x, float *y, int64_t n);

/// y[i] = ln x[i]. log(0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, subnormal inputs are exact-scaled.
void ck_vlog(int isa, const float *x, float *y, int64_t n);

/// y[i] = sqrt x[i], correctly rounded as IEEE 754 requires (so every path gives the same bits):
/// sqrt(-0) = -0, sqrt(+inf) = +inf, NaN for x < 0 and for NaN; subnormal inputs are exact.
/// Unlike a loop over sqrtf, it never calls libm (which must set errno for x < 0) and so vectorises.
void ck_vsqrt(int isa, const float *x, float *y, int64_t n);

/// y[i] = tanh x[i]; exactly +-1 for |x| > 9.1, odd (tanh(-0) = -0), NaN stays NaN.
void ck_vtanh(int isa, const float *x, float *y, int64_t n);

/// y[i] = 1 / (1 + e^-x[i]); 0 for x = -inf (and subnormal, not 0, for moderately large negative x),
/// 1 for large positive x, never NaN for non-NaN input.
void ck_vsigmoid(int isa, const float *x, float *y, int64_t n);

/// y[i] = e^(x[i] - shift) (when `y` is not NULL) and returns the sum of those values, accumulated
/// in double. Softmax and log-sum-exp use it to exponentiate and sum a row in one pass.
double ck_vexpsum(int isa, const float *x, float *y, int64_t n, float shift);

/// The sum of x[0..<n], accumulated in double lanes (0 for n = 0).
double ck_vsum(int isa, const float *x, int64_t n);

/// The largest element of x[0..<n]; NaN if any element is NaN; -inf for n = 0.
float ck_vmax(int isa, const float *x, int64_t n);

/// The smallest element of x[0..<n]; NaN if any element is NaN; +inf for n = 0.
float ck_vmin(int isa, const float *x, int64_t n);

/// dst[i] = src[i] for i < n, written with non-temporal (streaming) stores where dst is 16-byte
/// aligned: the destination's cache lines are not read from memory first, as ordinary stores
/// would (write-allocate). For results too large to stay in cache. Call `ck_stream_fence` before
/// another thread reads the destination.
void ck_stream_store(float *dst, const float *src, int64_t n);

/// Orders the streaming stores before it ahead of every later store (sfence on x86-64).
void ck_stream_fence(void);

/// Asks for the cache lines of p[0..<n] to be loaded into L1 (prefetches only; p need not be valid).
void ck_prefetch(const float *p, int64_t n);

/// The operations of `ck_vmap_stream`.
typedef enum { CK_MAP_EXP = 0, CK_MAP_LOG = 1, CK_MAP_SQRT = 2, CK_MAP_TANH = 3, CK_MAP_SIGMOID = 4, CK_MAP_RELU = 5 } ck_map_op;

/// y[i] = f(x[i]) for the `ck_map_op` `op`, with the same bits as `ck_vexp`, `ck_vlog`, `ck_vsqrt`,
/// `ck_vtanh` or `ck_vsigmoid` (relu: `x < 0 ? 0 : x`, NaN and -0 kept), for results too large
/// to stay in cache: on the AVX2 and AVX-512
/// paths each vector is written with a non-temporal store as soon as it is computed, and x is
/// prefetched ahead. The stores are fenced before it returns.
void ck_vmap_stream(int isa, int op, const float *x, float *y, int64_t n);

/// The operations of `ck_vzip_stream`.
typedef enum { CK_ZIP_ADD = 0, CK_ZIP_SUBTRACT = 1, CK_ZIP_MULTIPLY = 2, CK_ZIP_DIVIDE = 3 } ck_zip_op;

/// y[i] = a[i] op b[i] for the `ck_zip_op` `op` (IEEE single precision), streamed to memory as
/// `ck_vmap_stream` does. y must not overlap a or b.
void ck_vzip_stream(int isa, int op, const float *a, const float *b, float *y, int64_t n);

#endif
