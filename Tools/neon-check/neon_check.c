// neon_check: every CKernels entry point on the NEON path (CK_ISA_NEON) against the portable path
// and against naive references (double precision, or the documented float formulas where the
// kernels promise exact bits), on awkward shapes. Built for aarch64 and run under qemu-aarch64 by
// Tools/neon-check/run.sh; nothing here runs arm64 natively.
//
// Outputs are pre-filled with NaN (and guarded past their end), so a kernel that skips or
// overruns an element fails. Exits 1 with a message naming the kernel, the case and the element
// on the first mismatches; prints one line per kernel group when all is well.
#include "CKernels.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__aarch64__)
#error "neon_check is built for aarch64 (see run.sh); the NEON path does not exist elsewhere"
#endif

// ---------------------------------------------------------------- bookkeeping

static long checks = 0, failures = 0;
static const char *group = "";

#define FAIL(...)                                                              \
    do {                                                                       \
        if (failures++ < 20) {                                                 \
            fprintf(stderr, "FAIL [%s] ", group);                              \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

static void begin(const char *name) {
    group = name;
    checks = 0;
}

static void end(void) { printf("%-28s %9ld checks\n", group, checks); }

/// Closeness of a float result to a reference: NaN only where NaN belongs, and |got - want| <= tol.
static int close_to(float got, double want, double tol) {
    ++checks;
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs((double)got - want) <= tol;
}

static int same_bits(float a, float b) {
    ++checks;
    if (isnan(a) && isnan(b)) return 1;
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
/// Uniform in [-1, 1).
static float rnd(void) { return (float)(rng_u32() >> 8) * (2.0f / 16777216.0f) - 1.0f; }

static float *alloc_fill(int64_t n, float value) {
    float *p = (float *)malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; ++i) p[i] = value;
    return p;
}

static float *alloc_random(int64_t n) {
    float *p = alloc_fill(n, 0);
    for (int64_t i = 0; i < n; ++i) p[i] = rnd();
    return p;
}

static const int64_t sizes[] = {1, 3, 7, 17, 33};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

// ---------------------------------------------------------------- dispatch

static void check_dispatch(void) {
    begin("dispatch");
    ++checks;
    if (!ck_isa_supported(CK_ISA_NEON)) FAIL("NEON reported unsupported on aarch64");
    ++checks;
    if (ck_isa_best() != CK_ISA_NEON) FAIL("best path is %d, expected NEON (3)", ck_isa_best());
    ++checks;
    if (ck_isa_supported(CK_ISA_AVX2) || ck_isa_supported(CK_ISA_AVX512)) FAIL("an x86 path reported supported on aarch64");
    int64_t mr = 0, nr = 0;
    ck_sgemm_tile(CK_ISA_NEON, &mr, &nr);
    ++checks;
    if (mr != 8 || nr != 12) FAIL("NEON tile %lld x %lld, expected 8 x 12", (long long)mr, (long long)nr);
    end();
}

// ---------------------------------------------------------------- GEMM micro-kernel

/// One micro-kernel call on a fresh random tile, checked against a double reference. C has
/// `ldc = n + 3` and two guard rows; everything outside the m x n corner must stay NaN.
static void check_ukernel_case(int isa, int64_t kc, int64_t m, int64_t n, float alpha, float beta) {
    int64_t mr, nr;
    ck_sgemm_tile(isa, &mr, &nr);
    float *a = alloc_random(kc * mr), *b = alloc_random(kc * nr);
    const int64_t ldc = n + 3, crows = m + 2;
    float *c = alloc_fill(crows * ldc, NAN);
    float *c0 = alloc_fill(crows * ldc, NAN);
    if (beta != 0) {
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = c0[i * ldc + j] = rnd();
    }
    // Prefetch a range that is not a valid array on purpose (only prefetched, never read).
    ck_sgemm_ukernel(isa, kc, a, b, c, ldc, m, n, alpha, beta, b + kc * nr, 4096);
    for (int64_t i = 0; i < crows; ++i)
        for (int64_t j = 0; j < ldc; ++j) {
            const float got = c[i * ldc + j];
            if (i >= m || j >= n) {
                ++checks;
                if (!isnan(got)) FAIL("isa %d kc=%lld m=%lld n=%lld: C(%lld, %lld) outside the tile written (%g)", isa,
                                      (long long)kc, (long long)m, (long long)n, (long long)i, (long long)j, got);
                continue;
            }
            double s = 0, mag = 0;
            for (int64_t p = 0; p < kc; ++p) {
                s += (double)a[p * mr + i] * b[p * nr + j];
                mag += fabs((double)a[p * mr + i] * b[p * nr + j]);
            }
            const double prior = beta == 0 ? 0 : (double)beta * c0[i * ldc + j];
            const double want = (double)alpha * s + prior;
            const double tol = 1e-6 * (fabs(alpha) * mag + fabs(prior)) * (1 + sqrt((double)kc)) + 1e-30;
            if (!close_to(got, want, tol))
                FAIL("isa %d kc=%lld m=%lld n=%lld alpha=%g beta=%g: C(%lld, %lld) = %.9g, expected %.9g", isa,
                     (long long)kc, (long long)m, (long long)n, alpha, beta, (long long)i, (long long)j, got, want);
        }
    free(a), free(b), free(c), free(c0);
}

static void check_ukernel(void) {
    begin("sgemm_ukernel");
    const int64_t kcs[] = {0, 1, 3, 7, 17, 33, 256};
    const float alphas[] = {1, -0.5f}, betas[] = {0, 1, -2.5f};
    const int isas[] = {CK_ISA_NEON, CK_ISA_PORTABLE};
    for (int s = 0; s < 2; ++s) {
        int64_t mr, nr;
        ck_sgemm_tile(isas[s], &mr, &nr);
        for (int k = 0; k < 7; ++k)
            for (int64_t m = 1; m <= mr; ++m)
                for (int64_t n = 1; n <= nr; ++n)
                    for (int ai = 0; ai < 2; ++ai)
                        for (int bi = 0; bi < 3; ++bi) check_ukernel_case(isas[s], kcs[k], m, n, alphas[ai], betas[bi]);
    }
    end();
}

// ---------------------------------------------------------------- whole GEMM from the pieces

/// C = alpha op(A) B + beta C through ck_sgemm_tile, the packing routines and the micro-kernel,
/// as TensorCore's driver does (one block; A packed with ck_pack_transposed from its transpose,
/// B row by row with ck_pack_row_panels).
static void blocked_gemm(int isa, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    int64_t mr, nr;
    ck_sgemm_tile(isa, &mr, &nr);
    const int64_t mp = (m + mr - 1) / mr, np = (n + nr - 1) / nr;
    float *ap = alloc_fill(mp * mr * k, 0), *bp = alloc_fill(np * nr * k, NAN);
    // A is stored transposed here (a[p * lda + i] = A(i, p)): pack each panel of mr rows.
    float *at = alloc_fill(m * k, 0);
    for (int64_t i = 0; i < m; ++i)
        for (int64_t p = 0; p < k; ++p) at[i * k + p] = a[p * lda + i];
    for (int64_t q = 0; q < mp; ++q) {
        const int64_t rows = m - q * mr < mr ? m - q * mr : mr;
        ck_pack_transposed(at + q * mr * k, k, rows, k, ap + q * mr * k, mr);
    }
    for (int64_t p = 0; p < k; ++p) ck_pack_row_panels(b + p * ldb, n, nr, bp + p * nr, nr * k);
    for (int64_t q = 0; q < mp; ++q)
        for (int64_t r = 0; r < np; ++r) {
            const int64_t rows = m - q * mr < mr ? m - q * mr : mr, cols = n - r * nr < nr ? n - r * nr : nr;
            ck_sgemm_ukernel(isa, k, ap + q * mr * k, bp + r * nr * k, c + q * mr * ldc + r * nr, ldc, rows, cols, alpha,
                             beta, NULL, 0);
        }
    free(ap), free(bp), free(at);
}

static void check_blocked_gemm(void) {
    begin("sgemm (packed, blocked)");
    const int64_t dims[] = {1, 3, 7, 17, 33, 65};
    for (int mi = 0; mi < 6; ++mi)
        for (int ni = 0; ni < 6; ++ni)
            for (int ki = 0; ki < 6; ++ki)
                for (int bi = 0; bi < 2; ++bi) {
                    const int64_t m = dims[mi], n = dims[ni], k = dims[ki];
                    const float alpha = bi ? 0.75f : 1, beta = bi ? -1 : 0;
                    const int64_t lda = m + 2, ldb = n + 1, ldc = n + 5;
                    float *a = alloc_random(k * lda), *b = alloc_random(k * ldb);
                    float *c = alloc_fill(m * ldc, NAN), *cp = alloc_fill(m * ldc, NAN), *c0 = alloc_fill(m * ldc, NAN);
                    if (beta != 0)
                        for (int64_t i = 0; i < m; ++i)
                            for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = cp[i * ldc + j] = c0[i * ldc + j] = rnd();
                    blocked_gemm(CK_ISA_NEON, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                    blocked_gemm(CK_ISA_PORTABLE, m, n, k, alpha, a, lda, b, ldb, beta, cp, ldc);
                    for (int64_t i = 0; i < m; ++i)
                        for (int64_t j = 0; j < ldc; ++j) {
                            if (j >= n) {
                                ++checks;
                                if (!isnan(c[i * ldc + j])) FAIL("m=%lld n=%lld k=%lld: padding C(%lld, %lld) written",
                                                                 (long long)m, (long long)n, (long long)k, (long long)i, (long long)j);
                                continue;
                            }
                            double s = 0, mag = 0;
                            for (int64_t p = 0; p < k; ++p) {
                                s += (double)a[p * lda + i] * b[p * ldb + j];
                                mag += fabs((double)a[p * lda + i] * b[p * ldb + j]);
                            }
                            const double prior = beta == 0 ? 0 : (double)beta * c0[i * ldc + j];
                            const double want = alpha * s + prior, tol = 1e-6 * (mag + fabs(prior)) * (1 + sqrt((double)k));
                            if (!close_to(c[i * ldc + j], want, tol))
                                FAIL("neon m=%lld n=%lld k=%lld beta=%g: C(%lld, %lld) = %.9g, expected %.9g", (long long)m,
                                     (long long)n, (long long)k, beta, (long long)i, (long long)j, c[i * ldc + j], want);
                            if (!close_to(c[i * ldc + j], cp[i * ldc + j], 2 * tol))
                                FAIL("neon vs portable m=%lld n=%lld k=%lld: C(%lld, %lld) %.9g vs %.9g", (long long)m,
                                     (long long)n, (long long)k, (long long)i, (long long)j, c[i * ldc + j], cp[i * ldc + j]);
                        }
                    free(a), free(b), free(c), free(cp), free(c0);
                }
    end();
}

// ---------------------------------------------------------------- gemm_small

static void check_gemm_small(void) {
    begin("sgemm_small");
    const int64_t ns[] = {1, 3, 7, 17, 33, 515};
    const int64_t ks[] = {1, 3, 7, 17, 33};
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
            for (int64_t m = 1; m <= 4; ++m)
                for (int ni = 0; ni < 6; ++ni)
                    for (int ki = 0; ki < 5; ++ki)
                        for (int bi = 0; bi < 2; ++bi) {
                            const int64_t n = ns[ni], k = ks[ki];
                            const float alpha = bi ? -1.25f : 1, beta = bi ? 0.5f : 0;
                            const int64_t lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 3;
                            float *a = alloc_random((ta ? k : m) * lda), *b = alloc_random((tb ? n : k) * ldb);
                            float *c = alloc_fill(m * ldc, NAN), *cp = alloc_fill(m * ldc, NAN), *c0 = alloc_fill(m * ldc, NAN);
                            if (beta != 0)
                                for (int64_t i = 0; i < m; ++i)
                                    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = cp[i * ldc + j] = c0[i * ldc + j] = rnd();
                            ck_sgemm_small(CK_ISA_NEON, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                            ck_sgemm_small(CK_ISA_PORTABLE, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cp, ldc);
                            for (int64_t i = 0; i < m; ++i)
                                for (int64_t j = 0; j < ldc; ++j) {
                                    if (j >= n) {
                                        ++checks;
                                        if (!isnan(c[i * ldc + j])) FAIL("padding C(%lld, %lld) written", (long long)i, (long long)j);
                                        continue;
                                    }
                                    double s = 0, mag = 0;
                                    for (int64_t p = 0; p < k; ++p) {
                                        const double x = ta ? a[p * lda + i] : a[i * lda + p];
                                        const double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                                        s += x * y;
                                        mag += fabs(x * y);
                                    }
                                    const double prior = beta == 0 ? 0 : (double)beta * c0[i * ldc + j];
                                    const double want = alpha * s + prior, tol = 1e-6 * (mag + fabs(prior)) * (1 + sqrt((double)k));
                                    if (!close_to(c[i * ldc + j], want, tol))
                                        FAIL("tA=%d tB=%d m=%lld n=%lld k=%lld: C(%lld, %lld) = %.9g, expected %.9g", ta, tb,
                                             (long long)m, (long long)n, (long long)k, (long long)i, (long long)j, c[i * ldc + j], want);
                                    if (!same_bits(c[i * ldc + j], cp[i * ldc + j]))
                                        FAIL("tA=%d tB=%d m=%lld n=%lld k=%lld: NEON %.9g, portable %.9g", ta, tb, (long long)m,
                                             (long long)n, (long long)k, c[i * ldc + j], cp[i * ldc + j]);
                                }
                            free(a), free(b), free(c), free(cp), free(c0);
                        }
    end();
}

// ---------------------------------------------------------------- convolution

typedef struct {
    int64_t n, h, w, cin, kh, kw, cout, sh, sw, dh, dw;
    int bias;
    int epilogue;  ///< a post-bias and relu in the forward's store (a layer's bias-and-activation pass)
} conv_case;

static void check_conv_case(conv_case cc) {
    const int64_t cp = (cc.cout + 15) / 16 * 16;
    const int64_t oh = (cc.h - (cc.kh - 1) * cc.dh - 1) / cc.sh + 1, ow = (cc.w - (cc.kw - 1) * cc.dw - 1) / cc.sw + 1;
    if (oh <= 0 || ow <= 0) return;
    float *x = alloc_random(cc.n * cc.h * cc.w * cc.cin);
    float *k = alloc_fill(cc.kh * cc.kw * cc.cin * cp, 0);  // zeros in the padding columns, as ck_conv.h requires
    for (int64_t t = 0; t < cc.kh * cc.kw * cc.cin; ++t)
        for (int64_t co = 0; co < cc.cout; ++co) k[t * cp + co] = rnd();
    float *bias = cc.bias ? alloc_random(cc.cout) : NULL;
    float *post = cc.epilogue ? alloc_random(cc.cout) : NULL;
    const int64_t ysize = cc.n * oh * ow * cc.cout;
    float *y = alloc_fill(ysize + 16, NAN), *yp = alloc_fill(ysize + 16, NAN);
    ck_conv_args args = {x, cc.h, cc.w, cc.cin, k, cc.kh, cc.kw, cc.cout, cp, cc.sh, cc.sw, cc.dh, cc.dw,
                         oh, ow, y, bias, NULL, post, cc.epilogue, 0, 0, 0, 0};
    // Two calls over a split of the output rows, as the thread pool makes them.
    const int64_t rows = cc.n * oh, split = rows / 3;
    ck_conv2d_forward(CK_ISA_NEON, &args, 0, split);
    ck_conv2d_forward(CK_ISA_NEON, &args, split, rows - split);
    args.y = yp;
    ck_conv2d_forward(CK_ISA_PORTABLE, &args, 0, rows);
    for (int64_t i = ysize; i < ysize + 16; ++i) {
        ++checks;
        if (!isnan(y[i])) FAIL("forward wrote past the output end");
    }
    for (int64_t img = 0; img < cc.n; ++img)
        for (int64_t i = 0; i < oh; ++i)
            for (int64_t j = 0; j < ow; ++j)
                for (int64_t co = 0; co < cc.cout; ++co) {
                    double s = bias ? bias[co] : 0, mag = fabs(s);
                    for (int64_t a = 0; a < cc.kh; ++a)
                        for (int64_t b = 0; b < cc.kw; ++b)
                            for (int64_t ci = 0; ci < cc.cin; ++ci) {
                                const double v = (double)x[((img * cc.h + i * cc.sh + a * cc.dh) * cc.w + j * cc.sw + b * cc.dw) * cc.cin + ci] *
                                                 k[((a * cc.kw + b) * cc.cin + ci) * cp + co];
                                s += v;
                                mag += fabs(v);
                            }
                    if (post) {
                        s += post[co], mag += fabs(post[co]);
                        if (s < 0) s = 0;
                    }
                    const int64_t at = ((img * oh + i) * ow + j) * cc.cout + co;
                    if (!close_to(y[at], s, 1e-6 * mag * 4 + 1e-7))
                        FAIL("forward n=%lld h=%lld w=%lld cin=%lld k=%lldx%lld cout=%lld s=%lld,%lld d=%lld,%lld: y[%lld] = %.9g, expected %.9g",
                             (long long)cc.n, (long long)cc.h, (long long)cc.w, (long long)cc.cin, (long long)cc.kh, (long long)cc.kw,
                             (long long)cc.cout, (long long)cc.sh, (long long)cc.sw, (long long)cc.dh, (long long)cc.dw, (long long)at, y[at], s);
                    if (!same_bits(y[at], yp[at]))
                        FAIL("forward cin=%lld cout=%lld: NEON %.9g, portable %.9g at %lld (the tap order is the same)",
                             (long long)cc.cin, (long long)cc.cout, y[at], yp[at], (long long)at);
                }

    // Kernel gradient: dk rows x cp, summed over every image.
    const int64_t taps = cc.kh * cc.kw * cc.cin, rows_dk = ck_conv2d_kernel_grad_rows(&args);
    float *dy = alloc_fill(cc.n * oh * ow * cp, 0);
    for (int64_t q = 0; q < cc.n * oh * ow; ++q)
        for (int64_t co = 0; co < cc.cout; ++co) dy[q * cp + co] = rnd();
    float *dk = alloc_fill(rows_dk * cp, 0), *dkp = alloc_fill(rows_dk * cp, 0);
    args.dy = dy;
    ck_conv2d_kernel_grad(CK_ISA_NEON, &args, dk, 0, 1);
    if (cc.n > 1) ck_conv2d_kernel_grad(CK_ISA_NEON, &args, dk, 1, cc.n - 1);
    ck_conv2d_kernel_grad(CK_ISA_PORTABLE, &args, dkp, 0, cc.n);
    for (int64_t t = 0; t < taps; ++t) {
        const int64_t ci = t % cc.cin, b = (t / cc.cin) % cc.kw, a = t / (cc.cin * cc.kw);
        for (int64_t co = 0; co < cc.cout; ++co) {
            double s = 0, mag = 0;
            for (int64_t img = 0; img < cc.n; ++img)
                for (int64_t i = 0; i < oh; ++i)
                    for (int64_t j = 0; j < ow; ++j) {
                        const double v = (double)x[((img * cc.h + i * cc.sh + a * cc.dh) * cc.w + j * cc.sw + b * cc.dw) * cc.cin + ci] *
                                         dy[((img * oh + i) * ow + j) * cp + co];
                        s += v;
                        mag += fabs(v);
                    }
            const float got = dk[t * cp + co];
            if (!close_to(got, s, 1e-6 * mag * 4 + 1e-7))
                FAIL("kernel grad cin=%lld k=%lldx%lld cout=%lld: dk(%lld, %lld) = %.9g, expected %.9g", (long long)cc.cin,
                     (long long)cc.kh, (long long)cc.kw, (long long)cc.cout, (long long)t, (long long)co, got, s);
            if (cc.n == 1 && !same_bits(got, dkp[t * cp + co]))
                FAIL("kernel grad cin=%lld cout=%lld: NEON %.9g, portable %.9g at (%lld, %lld)", (long long)cc.cin,
                     (long long)cc.cout, got, dkp[t * cp + co], (long long)t, (long long)co);
        }
    }
    free(x), free(k), free(bias), free(post), free(y), free(yp), free(dy), free(dk), free(dkp);
}

/// ck_conv2d_forward_channels (kernel packed [kh, kw, cout, cin]): NEON (8 lanes) and portable
/// (16 lanes where cin is a multiple of 16) against the Float64 reference; their lane counts
/// differ, so the two agree within rounding, not in every bit.
static void check_conv_channels_case(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout, int64_t kh,
                                     int64_t kw, int64_t sh, int64_t sw, int64_t dh, int with_bias, int epilogue,
                                     int64_t pad) {
    // `pad` rows and columns of zeros on every side (taps outside the image are left out).
    const int64_t oh = (h + 2 * pad - (kh - 1) * dh - 1) / sh + 1, ow = (w + 2 * pad - (kw - 1) * 1 - 1) / sw + 1;
    if (oh <= 0 || ow <= 0) return;
    float *x = alloc_random(n * h * w * cin), *k = alloc_random(kh * kw * cin * cout);
    float *bias = with_bias ? alloc_random(cout) : NULL, *post = epilogue ? alloc_random(cout) : NULL;
    const int64_t ysize = n * oh * ow * cout;
    for (int isa_i = 0; isa_i < 2; ++isa_i) {
        const int isa = isa_i ? CK_ISA_PORTABLE : CK_ISA_NEON;
        float *y = alloc_fill(ysize + 16, NAN);
        ck_conv_args args = {x, h, w, cin, k, kh, kw, cout, cout, sh, sw, dh, 1, oh, ow, y, bias, NULL, post, epilogue,
                             pad, pad, 0, 0};
        const int64_t rows = n * oh, split = rows / 3;
        ck_conv2d_forward_channels(isa, &args, 0, split);
        ck_conv2d_forward_channels(isa, &args, split, rows - split);
        for (int64_t i = ysize; i < ysize + 16; ++i) {
            ++checks;
            if (!isnan(y[i])) FAIL("forward over channels wrote past the output end");
        }
        for (int64_t img = 0; img < n; ++img)
            for (int64_t i = 0; i < oh; ++i)
                for (int64_t j = 0; j < ow; ++j)
                    for (int64_t co = 0; co < cout; ++co) {
                        double s = 0, mag = 0;
                        for (int64_t a = 0; a < kh; ++a)
                            for (int64_t b = 0; b < kw; ++b)
                                for (int64_t ci = 0; ci < cin; ++ci) {
                                    const int64_t ih = i * sh - pad + a * dh, jw = j * sw - pad + b;
                                    if (ih < 0 || ih >= h || jw < 0 || jw >= w) continue;
                                    const double v = (double)x[((img * h + ih) * w + jw) * cin + ci] *
                                                     k[((a * kw + b) * cout + co) * cin + ci];
                                    s += v;
                                    mag += fabs(v);
                                }
                        if (bias) s += bias[co], mag += fabs(bias[co]);
                        if (post) {
                            s += post[co], mag += fabs(post[co]);
                            if (s < 0) s = 0;
                        }
                        const int64_t at = ((img * oh + i) * ow + j) * cout + co;
                        if (!close_to(y[at], s, 1e-6 * mag * 4 + 1e-7))
                            FAIL("forward over channels (%s) h=%lld w=%lld cin=%lld k=%lldx%lld cout=%lld s=%lld,%lld: y[%lld] = %.9g, expected %.9g",
                                 isa_i ? "portable" : "NEON", (long long)h, (long long)w, (long long)cin, (long long)kh,
                                 (long long)kw, (long long)cout, (long long)sh, (long long)sw, (long long)at, y[at], s);
                    }
        free(y);
    }
    free(x), free(k), free(bias), free(post);
}

static void check_conv_channels(void) {
    begin("conv2d over input channels");
    const int64_t cins[] = {8, 16, 24, 48}, couts[] = {1, 2, 4, 8}, widths[] = {3, 7, 16, 17, 30};
    int counter = 0;
    for (int ci = 0; ci < 4; ++ci)
        for (int co = 0; co < 4; ++co)
            for (int wi = 0; wi < 5; ++wi) {
                ++counter;
                check_conv_channels_case(1 + counter % 2, 6, widths[wi], cins[ci], couts[co], 3, 3 - counter % 2,
                                         1 + counter % 2, 1 + (counter / 2) % 2, 1 + (counter % 7 == 0), counter % 3 == 0,
                                         counter % 2, counter % 3);
            }
    end();
}

/// ck_channel_sums: NEON against the portable path (the same bits: each channel's sum in row
/// order) and against a scalar loop, with and without relu's mask, 8 and 16 channels.
static void check_channel_sums(void) {
    begin("channel sums (bias gradient)");
    const int64_t row_counts[] = {1, 3, 64, 65};
    for (int ci = 0; ci < 2; ++ci)
        for (int ri = 0; ri < 4; ++ri)
            for (int relu = 0; relu < 2; ++relu) {
                const int64_t columns = ci ? 16 : 8, rows = row_counts[ri], size = rows * columns;
                float *m = alloc_random(size), *out = alloc_random(size);
                float *masked = alloc_fill(size, NAN), *masked_p = alloc_fill(size, NAN);
                float *block = alloc_random(columns), *block_p = alloc_fill(columns, 0), *scalar = alloc_fill(columns, 0);
                for (int64_t c = 0; c < columns; ++c) block_p[c] = scalar[c] = block[c];
                ck_channel_sums(CK_ISA_NEON, m, relu ? out : NULL, masked, rows, columns, block);
                ck_channel_sums(CK_ISA_PORTABLE, m, relu ? out : NULL, masked_p, rows, columns, block_p);
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t c = 0; c < columns; ++c) {
                        const float v = relu ? (out[r * columns + c] > 0 ? m[r * columns + c] : 0) : m[r * columns + c];
                        scalar[c] += v;
                        if (relu) {
                            ++checks;
                            if (!same_bits(masked[r * columns + c], v) || !same_bits(masked_p[r * columns + c], v))
                                FAIL("channel sums: masked (%lld, %lld) = %.9g / %.9g, expected %.9g", (long long)r,
                                     (long long)c, masked[r * columns + c], masked_p[r * columns + c], v);
                        }
                    }
                for (int64_t c = 0; c < columns; ++c) {
                    ++checks;
                    if (!same_bits(block[c], scalar[c]) || !same_bits(block_p[c], scalar[c]))
                        FAIL("channel sums rows=%lld columns=%lld relu=%d: sum %lld = %.9g (NEON), %.9g (portable), %.9g (scalar)",
                             (long long)rows, (long long)columns, relu, (long long)c, block[c], block_p[c], scalar[c]);
                }
                free(m), free(out), free(masked), free(masked_p), free(block), free(block_p), free(scalar);
            }
    end();
}

/// ck_conv2d_forward with output strides (a transposed convolution's phases storing into
/// place): on NEON and portable, each pixel's `cout` floats have the bits of the contiguous
/// forward, the gaps between pixels and rows stay untouched (NaN), over every block kind (one
/// input channel's row blocks, the 8-lane half blocks, the strided row blocks of one vector with
/// pixel strides 8, 16 and others, the pixel blocks of 2 to 5 vectors), column strides 1 and 2.
static void check_conv_strided_output(void) {
    begin("conv2d forward, output strides");
    const int64_t cins[] = {1, 8, 3}, couts[] = {5, 8, 16, 17, 40, 70};
    for (int ci = 0; ci < 3; ++ci)
        for (int co = 0; co < 6; ++co)
            for (int epilogue = 0; epilogue < 2; ++epilogue) {
                const int64_t n = 2, h = 6, w = 11, cin = cins[ci], cout = couts[co], kh = 2, kw = 2;
                const int64_t sw = 1 + epilogue;  // pixel strides cin and 2 cin (8 and 16: the literal ones)
                const int64_t cp = (cout + 15) / 16 * 16, oh = h - kh + 1, ow = (w - kw) / sw + 1;
                float *x = alloc_random(n * h * w * cin), *k = alloc_fill(kh * kw * cin * cp, 0);
                for (int64_t t = 0; t < kh * kw * cin; ++t)
                    for (int64_t o = 0; o < cout; ++o) k[t * cp + o] = rnd();
                float *post = epilogue ? alloc_random(cout) : NULL;
                const int64_t ysize = n * oh * ow * cout, pixel = cout + 3, row = ow * pixel + 5;
                const int64_t ssize = n * oh * row;
                float *y = alloc_fill(ysize, NAN), *ys = alloc_fill(ssize, NAN), *ysp = alloc_fill(ssize, NAN);
                ck_conv_args args = {x, h, w, cin, k, kh, kw, cout, cp, 1, sw, 1, 1, oh, ow, y, NULL, NULL, post, epilogue, 0, 0, 0, 0};
                ck_conv2d_forward(CK_ISA_PORTABLE, &args, 0, n * oh);
                args.y_pixel_stride = pixel, args.y_row_stride = row;
                args.y = ys;
                ck_conv2d_forward(CK_ISA_NEON, &args, 0, 3);
                ck_conv2d_forward(CK_ISA_NEON, &args, 3, n * oh - 3);
                args.y = ysp;
                ck_conv2d_forward(CK_ISA_PORTABLE, &args, 0, n * oh);
                for (int64_t r = 0; r < n * oh; ++r)
                    for (int64_t at = 0; at < row; ++at) {
                        const int64_t j = at / pixel, o = at % pixel;
                        const int inside = j < ow && o < cout;
                        const float expected = inside ? y[(r * ow + j) * cout + o] : NAN;
                        ++checks;
                        if (!same_bits(ys[r * row + at], expected) || !same_bits(ysp[r * row + at], expected))
                            FAIL("strided forward cin=%lld cout=%lld: row %lld float %lld = %g (NEON), %g (portable), expected %g",
                                 (long long)cin, (long long)cout, (long long)r, (long long)at, ys[r * row + at],
                                 ysp[r * row + at], expected);
                    }
                free(x), free(k), free(post), free(y), free(ys), free(ysp);
            }
    end();
}

static void check_conv(void) {
    begin("conv2d forward + kernel grad");
    const int64_t cins[] = {1, 3, 7, 17}, couts[] = {1, 7, 16, 17, 33, 50, 64, 70};
    for (int ci = 0; ci < 4; ++ci)
        for (int co = 0; co < 8; ++co)
            for (int kind = 0; kind < 4; ++kind) {
                conv_case cc = {2, 7, 9, cins[ci], 3, 3, couts[co], 1, 1, 1, 1, kind & 1, kind >> 1};
                if (kind == 1) cc.kh = cc.kw = 1;
                if (kind == 2) cc.sh = 2, cc.sw = 1, cc.kw = 2;
                if (kind == 3) cc.dh = 2, cc.dw = 2, cc.n = 1, cc.h = 8, cc.w = 11;
                check_conv_case(cc);
            }
    // One input channel and column stride 1 (the row blocks): rows of 1 to 29 pixels, so every
    // count of whole blocks, a moved-back last block and rows narrower than a block, with and
    // without the epilogue; stride 2 down the rows.
    for (int64_t w = 5; w <= 33; w += 1)
        for (int kind = 0; kind < 2; ++kind)
            check_conv_case((conv_case){3, 6, w, 1, 5, 5, kind ? 16 : 9, 1 + kind, 1, 1, 1, kind, 1 - kind});
    // More than 512 taps: the tap offsets no longer fit the kernels' stack array.
    check_conv_case((conv_case){1, 5, 6, 64, 3, 3, 17, 1, 1, 1, 1, 1, 1});
    check_conv_case((conv_case){2, 4, 4, 70, 3, 2, 33, 1, 2, 1, 1, 0, 0});
    end();
}

// ---------------------------------------------------------------- max pooling

static void check_pool(void) {
    begin("maxpool2d");
    // 8 and 24 channels: the 8-lane vectors (alone, and after a 16-lane one).
    const int64_t cs[] = {1, 3, 8, 16, 17, 24, 33};
    for (int ci = 0; ci < 7; ++ci)
        for (int kind = 0; kind < 4; ++kind) {
            const int64_t n = 2, h = 7, w = 6, c = cs[ci];
            int64_t ph = 2, pw = 2, sh = 2, sw = 2, pt = 0, pl = 0;
            if (kind == 1) ph = pw = 3, sh = sw = 1, pt = pl = 1;
            if (kind == 2) ph = 3, pw = 2, sh = 2, sw = 3, pt = 1, pl = 0;
            if (kind == 3) ph = pw = 1, sh = sw = 1;
            const int64_t oh = (h + 2 * pt - ph) / sh + 1, ow = (w + 2 * pl - pw) / sw + 1;
            float *x = alloc_fill(n * h * w * c, 0);
            // Few distinct values (ties), some -inf, and one NaN in the second image.
            for (int64_t i = 0; i < n * h * w * c; ++i) x[i] = (float)(int)(rnd() * 3);
            x[3] = -INFINITY;
            if (n * h * w * c > 100) x[h * w * c + 5] = NAN;
            const int64_t ysize = n * oh * ow * c;
            float *y = alloc_fill(ysize + 4, NAN), *yp = alloc_fill(ysize + 4, NAN);
            int32_t *idx = (int32_t *)malloc((size_t)(ysize + 4) * 4), *idxp = (int32_t *)malloc((size_t)(ysize + 4) * 4);
            for (int64_t i = 0; i < ysize + 4; ++i) idx[i] = idxp[i] = -7;
            ck_maxpool_args args = {x, h, w, c, ph, pw, sh, sw, pt, pl, oh, ow, y, idx};
            ck_maxpool2d_forward(CK_ISA_NEON, &args, 0, 3);
            ck_maxpool2d_forward(CK_ISA_NEON, &args, 3, n * oh - 3);
            args.y = yp, args.indices = idxp;
            ck_maxpool2d_forward(CK_ISA_PORTABLE, &args, 0, n * oh);
            for (int64_t i = ysize; i < ysize + 4; ++i) {
                ++checks;
                if (!isnan(y[i]) || idx[i] != -7) FAIL("wrote past the output end");
            }
            for (int64_t img = 0; img < n; ++img)
                for (int64_t i = 0; i < oh; ++i)
                    for (int64_t j = 0; j < ow; ++j)
                        for (int64_t ch = 0; ch < c; ++ch) {
                            float best = -INFINITY;
                            int64_t win = -1;
                            for (int64_t a = 0; a < ph; ++a)
                                for (int64_t b = 0; b < pw; ++b) {
                                    const int64_t ih = i * sh - pt + a, iw = j * sw - pl + b;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                                    const int64_t at = ((img * h + ih) * w + iw) * c + ch;
                                    if (win < 0) win = at;  // the first cell wins when all are -inf
                                    if (x[at] > best || isnan(x[at])) best = x[at], win = at;
                                }
                            const int64_t o = ((img * oh + i) * ow + j) * c + ch;
                            if (!same_bits(y[o], best) || idx[o] != win)
                                FAIL("c=%lld window %lldx%lld stride %lld,%lld pad %lld,%lld: y[%lld] = %g at %d, expected %g at %lld",
                                     (long long)c, (long long)ph, (long long)pw, (long long)sh, (long long)sw, (long long)pt,
                                     (long long)pl, (long long)o, y[o], idx[o], best, (long long)win);
                            if (!same_bits(y[o], yp[o]) || idx[o] != idxp[o]) FAIL("NEON and portable differ at %lld", (long long)o);
                        }
            free(x), free(y), free(yp), free(idx), free(idxp);
        }
    end();
}

// ---------------------------------------------------------------- batch-norm passes

static void check_norm(void) {
    begin("channel moments/affine");
    const int64_t rowss[] = {1, 3, 65, 130};
    for (int ri = 0; ri < 4; ++ri)
        for (int ci = 0; ci < NSIZES; ++ci) {
            const int64_t rows = rowss[ri], ch = sizes[ci];
            float *x = alloc_random(rows * ch), *dy = alloc_random(rows * ch), *mask = alloc_random(rows * ch);
            float *shift = alloc_random(ch), *mean = alloc_random(ch), *inv = alloc_random(ch);
            float *scratch = alloc_fill(2 * ch, NAN);
            for (int isa_i = 0; isa_i < 2; ++isa_i) {
                const int isa = isa_i ? CK_ISA_PORTABLE : CK_ISA_NEON;
                double *sum = (double *)calloc((size_t)ch, 8), *sq = (double *)calloc((size_t)ch, 8);
                ck_channel_moments(isa, x, rows, ch, shift, sum, sq, scratch);
                for (int64_t c = 0; c < ch; ++c) {
                    double s = 0, q = 0;
                    for (int64_t r = 0; r < rows; ++r) {
                        const double d = (double)x[r * ch + c] - shift[c];
                        s += d, q += d * d;
                    }
                    if (!close_to((float)sum[c], s, 1e-5 * rows) || !close_to((float)sq[c], q, 1e-5 * rows))
                        FAIL("moments isa %d rows=%lld ch=%lld c=%lld: %g %g, expected %g %g", isa, (long long)rows,
                             (long long)ch, (long long)c, sum[c], sq[c], s, q);
                }
                for (int masked = 0; masked < 2; ++masked) {
                    double *ds = (double *)calloc((size_t)ch, 8), *dd = (double *)calloc((size_t)ch, 8);
                    ck_channel_gradient_sums(isa, dy, x, masked ? mask : NULL, rows, ch, mean, inv, ds, dd, scratch);
                    for (int64_t c = 0; c < ch; ++c) {
                        double s = 0, d = 0;
                        for (int64_t r = 0; r < rows; ++r) {
                            const double g = masked && !(mask[r * ch + c] > 0) ? 0 : dy[r * ch + c];
                            s += g, d += g * (((double)x[r * ch + c] - mean[c]) * inv[c]);
                        }
                        if (!close_to((float)ds[c], s, 1e-5 * rows) || !close_to((float)dd[c], d, 1e-5 * rows))
                            FAIL("gradient sums isa %d masked=%d rows=%lld ch=%lld c=%lld", isa, masked, (long long)rows,
                                 (long long)ch, (long long)c);
                    }
                    free(ds), free(dd);
                }
                free(sum), free(sq);
                float *y = alloc_fill(rows * ch + 4, NAN);
                for (int relu = 0; relu < 2; ++relu) {
                    for (int64_t i = 0; i < rows * ch + 4; ++i) y[i] = NAN;
                    ck_channel_affine(isa, x, rows, ch, mean, inv, relu, y);
                    for (int64_t i = 0; i < rows * ch; ++i) {
                        const int64_t c = i % ch;
                        double want = (double)mean[c] * x[i] + inv[c];
                        if (relu && want < 0) want = 0;
                        if (!close_to(y[i], want, 1e-6)) FAIL("affine isa %d relu=%d ch=%lld i=%lld: %g vs %g", isa, relu, (long long)ch, (long long)i, y[i], want);
                    }
                    for (int64_t i = rows * ch; i < rows * ch + 4; ++i) {
                        ++checks;
                        if (!isnan(y[i])) FAIL("affine wrote past the end");
                    }
                }
                for (int masked = 0; masked < 2; ++masked) {
                    for (int64_t i = 0; i < rows * ch + 4; ++i) y[i] = NAN;
                    ck_channel_affine2(isa, dy, x, masked ? mask : NULL, rows, ch, mean, inv, shift, y);
                    for (int64_t i = 0; i < rows * ch; ++i) {
                        const int64_t c = i % ch;
                        const double u = masked && !(mask[i] > 0) ? 0 : dy[i];
                        const double want = (double)mean[c] * u + (double)inv[c] * x[i] + shift[c];
                        if (!close_to(y[i], want, 2e-6)) FAIL("affine2 isa %d masked=%d i=%lld: %g vs %g", isa, masked, (long long)i, y[i], want);
                    }
                    for (int64_t i = rows * ch; i < rows * ch + 4; ++i) {
                        ++checks;
                        if (!isnan(y[i])) FAIL("affine2 wrote past the end");
                    }
                    // In place (y == u, batch normalisation's input gradient over the output
                    // gradient): the same bits.
                    float *io = alloc_fill(rows * ch, NAN);
                    memcpy(io, dy, (size_t)(rows * ch) * sizeof(float));
                    ck_channel_affine2(isa, io, x, masked ? mask : NULL, rows, ch, mean, inv, shift, io);
                    for (int64_t i = 0; i < rows * ch; ++i) {
                        ++checks;
                        if (!same_bits(io[i], y[i])) FAIL("affine2 in place isa %d masked=%d i=%lld: %g vs %g", isa, masked, (long long)i, io[i], y[i]);
                    }
                    free(io);
                }
                // The relu variants recompute the mask from x: the same bits as passing the output
                // of ck_channel_affine(x, mean, inv, relu: 1) as the mask (mean and inv serve as
                // the affine map's scale and shift here).
                float *relu_out = alloc_fill(rows * ch, NAN);
                ck_channel_affine(isa, x, rows, ch, mean, inv, 1, relu_out);
                {
                    double *ds = (double *)calloc((size_t)ch, 8), *dd = (double *)calloc((size_t)ch, 8);
                    double *ds2 = (double *)calloc((size_t)ch, 8), *dd2 = (double *)calloc((size_t)ch, 8);
                    ck_channel_gradient_sums(isa, dy, x, relu_out, rows, ch, shift, inv, ds, dd, scratch);
                    ck_channel_gradient_sums_relu(isa, dy, x, mean, inv, rows, ch, shift, inv, ds2, dd2, scratch);
                    for (int64_t c = 0; c < ch; ++c) {
                        ++checks;
                        if (ds[c] != ds2[c] || dd[c] != dd2[c])
                            FAIL("gradient sums relu isa %d rows=%lld ch=%lld c=%lld: %g %g, with the mask %g %g", isa,
                                 (long long)rows, (long long)ch, (long long)c, ds2[c], dd2[c], ds[c], dd[c]);
                    }
                    free(ds), free(dd), free(ds2), free(dd2);
                    float *y1 = alloc_fill(rows * ch + 4, NAN), *y2 = alloc_fill(rows * ch + 4, NAN);
                    ck_channel_affine2(isa, dy, x, relu_out, rows, ch, inv, shift, mean, y1);
                    ck_channel_affine2_relu(isa, dy, x, mean, inv, rows, ch, inv, shift, mean, y2);
                    for (int64_t i = 0; i < rows * ch + 4; ++i)
                        if (!same_bits(y1[i], y2[i])) FAIL("affine2 relu isa %d i=%lld: %g, with the mask %g", isa, (long long)i, y2[i], y1[i]);
                    float *io = alloc_fill(rows * ch, NAN);
                    memcpy(io, dy, (size_t)(rows * ch) * sizeof(float));
                    ck_channel_affine2_relu(isa, io, x, mean, inv, rows, ch, inv, shift, mean, io);
                    for (int64_t i = 0; i < rows * ch; ++i) {
                        ++checks;
                        if (!same_bits(io[i], y2[i])) FAIL("affine2 relu in place isa %d i=%lld: %g vs %g", isa, (long long)i, io[i], y2[i]);
                    }
                    free(io);
                    free(y1), free(y2);
                }
                free(relu_out);
                free(y);
            }
            free(x), free(dy), free(mask), free(shift), free(mean), free(inv), free(scratch);
        }
    end();
}

// ---------------------------------------------------------------- Winograd F(4x4, 3x3) transforms

static const double wino_bt[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const double wino_at[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

/// The input and output transforms on NEON and portable against B^T d B and A^T m A in double, on
/// images whose tiles hang over every edge (padding 0 to 2, sizes 1 to 9), channel counts with
/// partial vectors, and a range of tiles that starts mid-batch; padding lanes must be zero, and
/// nothing outside the output images may be written.
static void check_winograd(void) {
    begin("winograd F(4x4, 3x3)");
    const int64_t dims[][4] = {{1, 1, 0, 0}, {6, 6, 0, 0}, {7, 9, 1, 2}, {9, 5, 2, 1}, {3, 8, 2, 2}};
    for (int di = 0; di < 5; ++di)
        for (int ci = 0; ci < NSIZES; ++ci) {
            const int64_t n = 2, h = dims[di][0], w = dims[di][1], pt = dims[di][2], pl = dims[di][3], c = sizes[ci];
            const int64_t oh = h + 2 * pt - 2 > 0 ? h + 2 * pt - 2 : 1, ow = w + 2 * pl - 2 > 0 ? w + 2 * pl - 2 : 1;
            const int64_t th = (oh + 3) / 4, tw = (ow + 3) / 4, tiles = n * th * tw, cp = (c + 15) / 16 * 16;
            const int64_t tile0 = tiles > 1 ? 1 : 0, count = tiles - tile0, stride = count * cp + 5;
            float *x = alloc_random(n * h * w * c);
            for (int isa_i = 0; isa_i < 2; ++isa_i) {
                const int isa = isa_i ? CK_ISA_PORTABLE : CK_ISA_NEON;
                float *v = alloc_fill(36 * stride, NAN);
                ck_winograd43_input(isa, x, h, w, c, pt, pl, th, tw, tile0, count, cp, v, stride);
                for (int64_t t = tile0; t < tiles; ++t) {
                    const int64_t img = t / (th * tw), r0 = (t / tw) % th * 4 - pt, c0 = t % tw * 4 - pl;
                    for (int64_t ch = 0; ch < cp; ++ch) {
                        double d[6][6], bd[6][6];
                        for (int i = 0; i < 6; ++i)
                            for (int j = 0; j < 6; ++j) {
                                const int64_t r = r0 + i, q = c0 + j;
                                d[i][j] = ch < c && r >= 0 && r < h && q >= 0 && q < w ? x[((img * h + r) * w + q) * c + ch] : 0;
                            }
                        for (int i = 0; i < 6; ++i)
                            for (int j = 0; j < 6; ++j) {
                                bd[i][j] = 0;
                                for (int k = 0; k < 6; ++k) bd[i][j] += wino_bt[i][k] * d[k][j];
                            }
                        for (int i = 0; i < 6; ++i)
                            for (int j = 0; j < 6; ++j) {
                                double want = 0;
                                for (int k = 0; k < 6; ++k) want += bd[i][k] * wino_bt[j][k];
                                const float got = v[(i * 6 + j) * stride + (t - tile0) * cp + ch];
                                if (!close_to(got, want, 1e-4)) FAIL("input isa %d h=%lld w=%lld c=%lld tile %lld ch %lld pos %d: %g vs %g",
                                                                     isa, (long long)h, (long long)w, (long long)c, (long long)t, (long long)ch, i * 6 + j, got, want);
                            }
                    }
                }
                // Output: transform v back (any data serves), with a bias, a post bias and relu.
                float *bias = alloc_random(c), *post = alloc_random(c);
                float *y = alloc_fill(n * oh * ow * c + 4, NAN);
                for (int relu = 0; relu < 2; ++relu) {
                    for (int64_t i = 0; i < n * oh * ow * c + 4; ++i) y[i] = NAN;
                    for (int64_t p = 0; p < 36; ++p)
                        for (int64_t i = 0; i < count * cp; ++i) v[p * stride + i] = rnd();
                    ck_winograd43_output(isa, v, stride, tile0, count, cp, c, th, tw, oh, ow, bias, relu ? post : NULL, relu, y);
                    for (int64_t t = 0; t < tiles; ++t) {
                        const int64_t img = t / (th * tw), r0 = (t / tw) % th * 4, c0 = t % tw * 4;
                        for (int64_t ch = 0; ch < c; ++ch)
                            for (int i = 0; i < 4; ++i)
                                for (int j = 0; j < 4; ++j) {
                                    if (r0 + i >= oh || c0 + j >= ow) continue;
                                    const float got = y[((img * oh + r0 + i) * ow + c0 + j) * c + ch];
                                    if (t < tile0) {
                                        ++checks;
                                        if (!isnan(got)) FAIL("output isa %d wrote tile %lld outside the range", isa, (long long)t);
                                        continue;
                                    }
                                    double want = bias[ch] + (relu ? post[ch] : 0);
                                    for (int a = 0; a < 6; ++a)
                                        for (int b = 0; b < 6; ++b)
                                            want += wino_at[i][a] * v[(a * 6 + b) * stride + (t - tile0) * cp + ch] * wino_at[j][b];
                                    if (relu && want < 0) want = 0;
                                    if (!close_to(got, want, 1e-4)) FAIL("output isa %d relu=%d c=%lld tile %lld: %g vs %g", isa, relu,
                                                                         (long long)c, (long long)t, got, want);
                                }
                    }
                    for (int64_t i = n * oh * ow * c; i < n * oh * ow * c + 4; ++i) {
                        ++checks;
                        if (!isnan(y[i])) FAIL("winograd output wrote past the end");
                    }
                }
                // Adjoint of the output transform (the kernel gradient's): A d A^T of the 4x4 tiles
                // of an output gradient, zeros outside it, padding lanes zero.
                float *dy = alloc_random(n * oh * ow * c);
                for (int64_t i = 0; i < 36 * stride; ++i) v[i] = NAN;
                ck_winograd43_output_adjoint(isa, dy, oh, ow, c, th, tw, tile0, count, cp, v, stride);
                for (int64_t t = tile0; t < tiles; ++t) {
                    const int64_t img = t / (th * tw), r0 = (t / tw) % th * 4, c0 = t % tw * 4;
                    for (int64_t ch = 0; ch < cp; ++ch)
                        for (int a = 0; a < 6; ++a)
                            for (int b = 0; b < 6; ++b) {
                                double want = 0;
                                for (int i = 0; i < 4; ++i)
                                    for (int j = 0; j < 4; ++j) {
                                        const int64_t r = r0 + i, q = c0 + j;
                                        if (ch < c && r < oh && q < ow)
                                            want += wino_at[i][a] * dy[((img * oh + r) * ow + q) * c + ch] * wino_at[j][b];
                                    }
                                const float got = v[(a * 6 + b) * stride + (t - tile0) * cp + ch];
                                if (!close_to(got, want, 1e-4)) FAIL("output adjoint isa %d c=%lld tile %lld pos %d: %g vs %g", isa,
                                                                     (long long)c, (long long)t, a * 6 + b, got, want);
                            }
                }
                free(dy);
                free(bias), free(post), free(y), free(v);
            }
            free(x);
        }
    end();
}

// ---------------------------------------------------------------- optimizers
//
// ck_optim.h promises IEEE single-precision evaluation in the order written, correctly rounded
// square roots and no fused multiply-add, so the NEON path must give the bits of these scalar
// formulas (this file is compiled with -ffp-contract=off) and of the portable path.

static void ref_adam(const ck_adam_args *p, int64_t i) {
    const float g = p->g[i];
    const float m = p->beta1 * p->m[i] + (1.0f - p->beta1) * g;
    const float v = p->beta2 * p->v[i] + (1.0f - p->beta2) * g * g;
    p->m[i] = m, p->v[i] = v;
    float s = v;
    if (p->v_max) s = p->v_max[i] = v >= p->v_max[i] ? v : p->v_max[i];
    float w = p->w[i];
    if (p->decay != 1.0f) w = w * p->decay;
    p->w[i] = w - p->step_size * m / (sqrtf(s) * p->inv_correction2 + p->epsilon);
}

static void ref_rmsprop(const ck_rmsprop_args *p, int64_t i) {
    const float g = p->g[i];
    const float v = p->rho * p->v[i] + (1.0f - p->rho) * g * g;
    p->v[i] = v;
    float d = v + p->epsilon;
    if (p->a) {
        const float a = p->rho * p->a[i] + (1.0f - p->rho) * g;
        p->a[i] = a;
        d = v - a * a + p->epsilon;
    }
    const float u = p->lr * g / sqrtf(d);
    if (p->b) {
        const float b = p->momentum * p->b[i] + u;
        p->b[i] = b;
        p->w[i] = p->w[i] - b;
    } else {
        p->w[i] = p->w[i] - u;
    }
}

static void ref_adagrad(const ck_adagrad_args *p, int64_t i) {
    const float g = p->g[i];
    const float s = p->s[i] + g * g;
    p->s[i] = s;
    p->w[i] = p->w[i] - p->lr * g / sqrtf(s + p->epsilon);
}

static void ref_sgd(const ck_sgd_args *p, int64_t i) {
    const float w = p->w[i];
    const float d = p->g[i] + p->weight_decay * w;
    if (p->b) {
        const float b = p->momentum * p->b[i] + d;
        p->b[i] = b;
        p->w[i] = w - p->lr * (p->nesterov ? d + p->momentum * b : b);
    } else {
        p->w[i] = w - p->lr * d;
    }
}

/// `arrays` state arrays of `len` floats: copies per path (NEON, portable, reference), all
/// checked bit for bit after the update of [start, start + count).
#define OPT_ARRAYS 5
typedef struct {
    float *x[3][OPT_ARRAYS];
} opt_state;

static void opt_init(opt_state *s, int64_t len) {
    for (int a = 0; a < OPT_ARRAYS; ++a) {
        float *init = alloc_random(len);
        // second-moment arrays must be non-negative: make every array's values positive except g (index 1)
        if (a != 1 && a != 0)
            for (int64_t i = 0; i < len; ++i) init[i] = fabsf(init[i]);
        for (int k = 0; k < 3; ++k) {
            s->x[k][a] = alloc_fill(len, 0);
            memcpy(s->x[k][a], init, (size_t)len * 4);
        }
        free(init);
    }
}

static void opt_compare(opt_state *s, int64_t len, const char *what) {
    for (int a = 0; a < OPT_ARRAYS; ++a)
        for (int64_t i = 0; i < len; ++i) {
            if (!same_bits(s->x[0][a][i], s->x[2][a][i]))
                FAIL("%s: array %d element %lld: NEON %.9g, reference %.9g", what, a, (long long)i, s->x[0][a][i], s->x[2][a][i]);
            if (!same_bits(s->x[1][a][i], s->x[2][a][i]))
                FAIL("%s: array %d element %lld: portable %.9g, reference %.9g", what, a, (long long)i, s->x[1][a][i], s->x[2][a][i]);
        }
    for (int k = 0; k < 3; ++k)
        for (int a = 0; a < OPT_ARRAYS; ++a) free(s->x[k][a]);
}

static void check_optim(void) {
    begin("optimizer updates");
    const int isas[2] = {CK_ISA_NEON, CK_ISA_PORTABLE};
    for (int si = 0; si < NSIZES; ++si)
        for (int64_t start = 0; start <= 5; start += 5)
            for (int variant = 0; variant < 4; ++variant) {
                const int64_t count = sizes[si], len = start + count + 3;
                char what[96];
                opt_state s;
                // Adam: w g m v v_max
                opt_init(&s, len);
                for (int k = 0; k < 3; ++k) {
                    ck_adam_args p = {s.x[k][0], s.x[k][1], s.x[k][2], s.x[k][3], variant & 1 ? s.x[k][4] : NULL,
                                      0.9f, 0.999f, 1e-3f / 0.1f, 1.0f / sqrtf(1 - 0.999f), 1e-7f, variant & 2 ? 0.9996f : 1.0f};
                    if (k < 2) ck_adam_update(isas[k], &p, start, count);
                    else for (int64_t i = start; i < start + count; ++i) ref_adam(&p, i);
                }
                snprintf(what, sizeof what, "adam variant %d count %lld start %lld", variant, (long long)count, (long long)start);
                opt_compare(&s, len, what);
                // RMSprop: w g v b a
                opt_init(&s, len);
                for (int k = 0; k < 3; ++k) {
                    ck_rmsprop_args p = {s.x[k][0], s.x[k][1], s.x[k][2], variant & 1 ? s.x[k][3] : NULL,
                                         variant & 2 ? s.x[k][4] : NULL, 1e-3f, 0.9f, 0.8f, 1e-7f};
                    if (variant & 2)  // centred: keep v - a a positive
                        for (int64_t i = 0; i < len; ++i) s.x[k][4][i] *= 0.01f;
                    if (k < 2) ck_rmsprop_update(isas[k], &p, start, count);
                    else for (int64_t i = start; i < start + count; ++i) ref_rmsprop(&p, i);
                }
                snprintf(what, sizeof what, "rmsprop variant %d count %lld start %lld", variant, (long long)count, (long long)start);
                opt_compare(&s, len, what);
                // Adagrad: w g s
                opt_init(&s, len);
                for (int k = 0; k < 3; ++k) {
                    ck_adagrad_args p = {s.x[k][0], s.x[k][1], s.x[k][2], 0.01f, 1e-7f};
                    if (k < 2) ck_adagrad_update(isas[k], &p, start, count);
                    else for (int64_t i = start; i < start + count; ++i) ref_adagrad(&p, i);
                }
                snprintf(what, sizeof what, "adagrad count %lld start %lld", (long long)count, (long long)start);
                opt_compare(&s, len, what);
                // SGD: w g b
                opt_init(&s, len);
                for (int k = 0; k < 3; ++k) {
                    ck_sgd_args p = {s.x[k][0], s.x[k][1], variant ? s.x[k][2] : NULL, 0.01f, 0.9f, variant & 1 ? 1e-4f : 0,
                                     variant == 3};
                    if (k < 2) ck_sgd_update(isas[k], &p, start, count);
                    else for (int64_t i = start; i < start + count; ++i) ref_sgd(&p, i);
                }
                snprintf(what, sizeof what, "sgd variant %d count %lld start %lld", variant, (long long)count, (long long)start);
                opt_compare(&s, len, what);
            }
    end();
}

// ---------------------------------------------------------------- recurrent gates

static double sigm(double x) { return 1 / (1 + exp(-x)); }

static void check_recurrent(void) {
    begin("lstm/gru gates");
    const int isas[2] = {CK_ISA_NEON, CK_ISA_PORTABLE};
    const double tol = 2e-6;
    for (int ui = 0; ui < NSIZES; ++ui)
        for (int variant = 0; variant < 2; ++variant) {
            const int64_t u = sizes[ui], rows = 3, hs = u + 2;
            float mask[3] = {1, 0, 1};
            const float *mk = variant ? mask : NULL;
            // LSTM forward
            float *z0 = alloc_random(rows * 4 * u), *bias = variant ? alloc_random(4 * u) : NULL;
            float *cprev = alloc_random(rows * u), *hprev = alloc_random(rows * hs);
            float *outs[2][3], *tanh_kept[2];
            for (int k = 0; k < 2; ++k) {
                float *z = alloc_fill(rows * 4 * u, 0);
                memcpy(z, z0, (size_t)(rows * 4 * u) * 4);
                float *c = alloc_fill(rows * u, NAN), *h = alloc_fill(rows * hs, NAN);
                ck_lstm_forward_args a = {z, bias, cprev, c, hprev, h, mk, hs, u, rows, NULL};
                ck_lstm_forward_rows(isas[k], &a);
                outs[k][0] = z, outs[k][1] = c, outs[k][2] = h;
                // Again keeping tanh(c): the same bits in z, c and h, and tanh(c) beside them
                // (a masked row's left as it was).
                float *z2 = alloc_fill(rows * 4 * u, 0), *c2 = alloc_fill(rows * u, NAN), *h2 = alloc_fill(rows * hs, NAN);
                memcpy(z2, z0, (size_t)(rows * 4 * u) * 4);
                tanh_kept[k] = alloc_fill(rows * u, NAN);
                ck_lstm_forward_args a2 = {z2, bias, cprev, c2, hprev, h2, mk, hs, u, rows, tanh_kept[k]};
                ck_lstm_forward_rows(isas[k], &a2);
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t j = 0; j < u; ++j) {
                        checks += 3;
                        for (int q = 0; q < 4; ++q)
                            if (memcmp(&z2[r * 4 * u + q * u + j], &z[r * 4 * u + q * u + j], 4) != 0)
                                FAIL("lstm forward isa %d keeping tanh(c) changed gate %d", isas[k], q);
                        if (memcmp(&c2[r * u + j], &c[r * u + j], 4) != 0 || memcmp(&h2[r * hs + j], &h[r * hs + j], 4) != 0)
                            FAIL("lstm forward isa %d keeping tanh(c) changed c or h", isas[k]);
                        const float kept = tanh_kept[k][r * u + j];
                        if (mk && mk[r] == 0) {
                            if (!isnan(kept)) FAIL("lstm forward isa %d wrote tanh(c) of a masked row", isas[k]);
                        } else if (!close_to(kept, tanh((double)c[r * u + j]), tol)) {
                            FAIL("lstm forward isa %d kept tanh(c) %.9g for c %.9g", isas[k], kept, c[r * u + j]);
                        }
                    }
                free(z2), free(c2), free(h2);
            }
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = 0; j < u; ++j) {
                    double want_c, want_h;
                    double g[4];
                    for (int q = 0; q < 4; ++q) g[q] = (double)z0[r * 4 * u + q * u + j] + (bias ? bias[q * u + j] : 0);
                    if (mk && mk[r] == 0) {
                        want_c = cprev[r * u + j], want_h = hprev[r * hs + j];
                    } else {
                        const double i = sigm(g[0]), f = sigm(g[1]), gg = tanh(g[2]), o = sigm(g[3]);
                        want_c = f * cprev[r * u + j] + i * gg;
                        want_h = o * tanh(want_c);
                        const double act[4] = {i, f, gg, o};
                        for (int q = 0; q < 4; ++q)
                            if (!close_to(outs[0][0][r * 4 * u + q * u + j], act[q], tol)) FAIL("lstm forward gate %d u=%lld", q, (long long)u);
                    }
                    for (int k = 0; k < 2; ++k) {
                        if (!close_to(outs[k][1][r * u + j], want_c, 4 * tol) || !close_to(outs[k][2][r * hs + j], want_h, 4 * tol))
                            FAIL("lstm forward isa %d u=%lld row %lld unit %lld: c %.9g h %.9g, expected %.9g %.9g", isas[k],
                                 (long long)u, (long long)r, (long long)j, outs[k][1][r * u + j], outs[k][2][r * hs + j], want_c, want_h);
                    }
                }
            // h's padding columns stay untouched
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = u; j < hs; ++j) {
                    ++checks;
                    if (!isnan(outs[0][2][r * hs + j])) FAIL("lstm forward wrote h padding");
                }
            // LSTM backward from the NEON forward's activated gates
            const float *za = outs[0][0], *cc = outs[0][1];
            float *dh0 = alloc_random(rows * u), *dn = alloc_random(rows * u), *dc0 = alloc_random(rows * u);
            float *bo[4][3];
            // Runs 0, 1: tanh(c) computed from c; 2, 3: read from the NEON forward's kept rows
            // (the same bits as computing it on NEON, so run 2 must equal run 0 exactly).
            for (int k = 0; k < 4; ++k) {
                float *dh = alloc_fill(rows * u, 0), *dc = alloc_fill(rows * u, 0), *dz = alloc_fill(rows * 4 * u, NAN);
                memcpy(dh, dh0, (size_t)(rows * u) * 4);
                memcpy(dc, dc0, (size_t)(rows * u) * 4);
                ck_lstm_backward_args a = {za, cprev, cc, dh, dn, dc, dz, mk, u, rows, k >= 2 ? tanh_kept[0] : NULL, 0};
                ck_lstm_backward_rows(isas[k % 2], &a);
                bo[k][0] = dh, bo[k][1] = dc, bo[k][2] = dz;
            }
            for (int q = 0; q < 3; ++q) {
                ++checks;
                if (memcmp(bo[2][q], bo[0][q], (size_t)((q == 2 ? 4 : 1) * rows * u) * 4) != 0)
                    FAIL("lstm backward on NEON with the kept tanh(c) differs from computing it (output %d)", q);
            }
            // dh_zero: the output gradient taken as zero without reading dh (NaN here) must give
            // the bits of a zero-filled dh, on each path; dh gets 0 + dh_next only with a mask.
            for (int k = 0; k < 2; ++k) {
                float *dhz = alloc_fill(rows * u, 0), *dcz = alloc_fill(rows * u, 0), *dzz = alloc_fill(rows * 4 * u, NAN);
                float *dhn = alloc_fill(rows * u, NAN), *dcn = alloc_fill(rows * u, 0), *dzn = alloc_fill(rows * 4 * u, NAN);
                memcpy(dcz, dc0, (size_t)(rows * u) * 4);
                memcpy(dcn, dc0, (size_t)(rows * u) * 4);
                ck_lstm_backward_args az = {za, cprev, cc, dhz, dn, dcz, dzz, mk, u, rows, tanh_kept[0], 0};
                ck_lstm_backward_args an = {za, cprev, cc, dhn, dn, dcn, dzn, mk, u, rows, tanh_kept[0], 1};
                ck_lstm_backward_rows(isas[k], &az);
                ck_lstm_backward_rows(isas[k], &an);
                checks += 3;
                if (memcmp(dzn, dzz, (size_t)(rows * 4 * u) * 4) != 0) FAIL("lstm backward isa %d dh_zero changed dz", isas[k]);
                if (memcmp(dcn, dcz, (size_t)(rows * u) * 4) != 0) FAIL("lstm backward isa %d dh_zero changed dc", isas[k]);
                for (int64_t i = 0; i < rows * u; ++i) {
                    const int written = mk != NULL;
                    if (written ? memcmp(&dhn[i], &dhz[i], 4) != 0 : !isnan(dhn[i])) {
                        FAIL("lstm backward isa %d dh_zero: dh[%lld] %.9g (mask %d)", isas[k], (long long)i, dhn[i], written);
                        break;
                    }
                }
                free(dhz); free(dcz); free(dzz); free(dhn); free(dcn); free(dzn);
            }
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = 0; j < u; ++j) {
                    const double d = (double)dh0[r * u + j] + dn[r * u + j];
                    double want[4] = {0, 0, 0, 0}, want_dc = dc0[r * u + j];
                    if (!(mk && mk[r] == 0)) {
                        const double i = za[r * 4 * u + j], f = za[r * 4 * u + u + j], gg = za[r * 4 * u + 2 * u + j],
                                     o = za[r * 4 * u + 3 * u + j], tc = tanh((double)cc[r * u + j]);
                        const double dcell = dc0[r * u + j] + d * o * (1 - tc * tc);
                        want[0] = dcell * gg * i * (1 - i);
                        want[1] = dcell * cprev[r * u + j] * f * (1 - f);
                        want[2] = dcell * i * (1 - gg * gg);
                        want[3] = d * tc * o * (1 - o);
                        want_dc = dcell * f;
                    }
                    for (int k = 0; k < 4; ++k) {
                        if (!close_to(bo[k][0][r * u + j], d, 1e-6) || !close_to(bo[k][1][r * u + j], want_dc, 8 * tol))
                            FAIL("lstm backward isa %d u=%lld row %lld unit %lld: dh/dc", isas[k % 2], (long long)u, (long long)r, (long long)j);
                        for (int q = 0; q < 4; ++q)
                            if (!close_to(bo[k][2][r * 4 * u + q * u + j], want[q], 8 * tol))
                                FAIL("lstm backward isa %d u=%lld row %lld gate %d unit %lld: %.9g, expected %.9g", isas[k % 2], (long long)u,
                                     (long long)r, q, (long long)j, bo[k][2][r * 4 * u + q * u + j], want[q]);
                    }
                }
            for (int k = 0; k < 2; ++k) {
                free(tanh_kept[k]);
                for (int q = 0; q < 3; ++q) free(outs[k][q]);
            }
            for (int k = 0; k < 4; ++k)
                for (int q = 0; q < 3; ++q) free(bo[k][q]);
            free(z0), free(bias), free(cprev), free(dh0), free(dn), free(dc0);

            // GRU forward
            float *zx0 = alloc_random(rows * 3 * u), *q0 = alloc_random(rows * 3 * u);
            float *ib = variant ? alloc_random(3 * u) : NULL, *rb = variant ? alloc_random(3 * u) : NULL;
            float *go[2][3];
            for (int k = 0; k < 2; ++k) {
                float *zx = alloc_fill(rows * 3 * u, 0), *q = alloc_fill(rows * 3 * u, 0), *h = alloc_fill(rows * hs, NAN);
                memcpy(zx, zx0, (size_t)(rows * 3 * u) * 4);
                memcpy(q, q0, (size_t)(rows * 3 * u) * 4);
                ck_gru_forward_args a = {zx, q, ib, rb, hprev, h, mk, hs, u, rows};
                ck_gru_forward_rows(isas[k], &a);
                go[k][0] = zx, go[k][1] = q, go[k][2] = h;
            }
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = 0; j < u; ++j) {
                    double want_h = hprev[r * hs + j];
                    if (!(mk && mk[r] == 0)) {
                        double x3[3], h3[3];
                        for (int g = 0; g < 3; ++g) {
                            x3[g] = (double)zx0[r * 3 * u + g * u + j] + (ib ? ib[g * u + j] : 0);
                            h3[g] = (double)q0[r * 3 * u + g * u + j] + (rb ? rb[g * u + j] : 0);
                        }
                        const double zg = sigm(x3[0] + h3[0]), rg = sigm(x3[1] + h3[1]), hh = tanh(x3[2] + rg * h3[2]);
                        want_h = zg * hprev[r * hs + j] + (1 - zg) * hh;
                    }
                    for (int k = 0; k < 2; ++k)
                        if (!close_to(go[k][2][r * hs + j], want_h, 4 * tol))
                            FAIL("gru forward isa %d u=%lld row %lld unit %lld: %.9g, expected %.9g", isas[k], (long long)u,
                                 (long long)r, (long long)j, go[k][2][r * hs + j], want_h);
                }
            // GRU backward from the NEON forward's gates
            float *gdh0 = alloc_random(rows * u), *gdn = alloc_random(rows * u);
            float *gb[2][3];
            for (int k = 0; k < 2; ++k) {
                float *dh = alloc_fill(rows * u, 0), *dzx = alloc_fill(rows * 3 * u, NAN), *dq = alloc_fill(rows * 3 * u, NAN);
                memcpy(dh, gdh0, (size_t)(rows * u) * 4);
                ck_gru_backward_args a = {go[0][0], go[0][1], hprev, dh, gdn, dzx, dq, mk, hs, u, rows};
                ck_gru_backward_rows(isas[k], &a);
                gb[k][0] = dh, gb[k][1] = dzx, gb[k][2] = dq;
            }
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = 0; j < u; ++j) {
                    const double d = (double)gdh0[r * u + j] + gdn[r * u + j];
                    double wzx[3] = {0, 0, 0}, wq[3] = {0, 0, 0}, wdh = d;
                    if (!(mk && mk[r] == 0)) {
                        const float *zx = go[0][0] + r * 3 * u, *q = go[0][1] + r * 3 * u;
                        const double z = zx[j], rr = zx[u + j], hh = zx[2 * u + j];
                        const double dhh = d * (1 - z) * (1 - hh * hh);
                        const double dz = d * ((double)hprev[r * hs + j] - hh) * z * (1 - z);
                        const double dr = dhh * q[2 * u + j] * rr * (1 - rr);
                        wzx[0] = wq[0] = dz, wzx[1] = wq[1] = dr, wzx[2] = dhh, wq[2] = dhh * rr;
                        wdh = d * z;
                    }
                    for (int k = 0; k < 2; ++k) {
                        if (!close_to(gb[k][0][r * u + j], wdh, 4 * tol)) FAIL("gru backward isa %d dh u=%lld", isas[k], (long long)u);
                        for (int g = 0; g < 3; ++g)
                            if (!close_to(gb[k][1][r * 3 * u + g * u + j], wzx[g], 8 * tol) ||
                                !close_to(gb[k][2][r * 3 * u + g * u + j], wq[g], 8 * tol))
                                FAIL("gru backward isa %d u=%lld row %lld gate %d unit %lld", isas[k], (long long)u, (long long)r, g,
                                     (long long)j);
                    }
                }
            for (int k = 0; k < 2; ++k)
                for (int q = 0; q < 3; ++q) free(go[k][q]), free(gb[k][q]);
            free(zx0), free(q0), free(ib), free(rb), free(hprev), free(gdh0), free(gdn);
        }
    end();
}

// ---------------------------------------------------------------- vector math

/// Distance from y to the exact value in units of the last place of the float nearest it
/// (subnormals in units of the smallest subnormal), as Tests/TensorCoreTests/MathTests.swift.
static double ulp_error(float y, double exact) {
    if (isnan(exact)) return isnan(y) ? 0 : INFINITY;
    const float rounded = (float)exact;
    if (isinf(rounded)) return y == rounded ? 0 : INFINITY;
    if (!isfinite(y)) {
        const double edge = (double)3.40282347e38f * (1 - 1e-6);
        return isinf(y) && fabs(exact) > edge && (y > 0) == (exact > 0) ? 0 : INFINITY;
    }
    float mag = fabsf(rounded);
    if (mag < 1.17549435e-38f) mag = 1.17549435e-38f;
    const double unit = (double)nextafterf(mag, INFINITY) - mag;
    return fabs((double)y - exact) / unit;
}

static double sigmoid_ref(double x) { return 1 / (1 + exp(-x)); }

static void check_vmath(void) {
    begin("vmath exp/log/tanh/sigmoid/sqrt");
    // Every 65521st bit pattern (all signs and exponents, NaNs, infinities, subnormals), a sweep of
    // [-100, 100], and the values where the kernels switch methods.
    int64_t n = 0;
    const int64_t cap = 70000 + 200001 + 64;
    float *x = alloc_fill(cap, 0);
    for (uint64_t bits = 0; bits < (1ull << 32); bits += 65521) {
        const uint32_t b = (uint32_t)bits;
        memcpy(&x[n++], &b, 4);
    }
    for (int i = 0; i <= 200000; ++i) x[n++] = -100.0f + (float)i * 0.001f;
    const float specials[] = {0, -0.0f, INFINITY, -INFINITY, NAN, 1, -1, 0.625f, -0.625f, 0.6249999f, 9.01f, 9.1f, -9.1f,
                              88.72f, 88.7228f, 88.73f, -87.33f, -88, -100, -103.9f, -104, -104.5f, 1.4e-45f,
                              1.17549435e-38f, 3.40282347e38f, 1e-30f, -1e-30f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; ++i) x[n++] = specials[i];
    float *y = alloc_fill(n + 4, NAN), *yp = alloc_fill(n + 4, NAN);
    typedef void (*fn)(int, const float *, float *, int64_t);
    const struct {
        const char *name;
        fn f;
        double (*ref)(double);
        double bound;
    } cases[] = {{"exp", ck_vexp, exp, 1.5}, {"log", ck_vlog, log, 1.5}, {"tanh", ck_vtanh, tanh, 2},
                 {"sigmoid", ck_vsigmoid, sigmoid_ref, 3}, {"sqrt", ck_vsqrt, sqrt, 0.5}};
    for (int c = 0; c < 5; ++c) {
        for (int64_t i = 0; i < n + 4; ++i) y[i] = yp[i] = NAN;
        cases[c].f(CK_ISA_NEON, x, y, n);
        cases[c].f(CK_ISA_PORTABLE, x, yp, n);
        double worst = 0, worst_p = 0;
        float worst_x = 0;
        for (int64_t i = 0; i < n; ++i) {
            ++checks;
            const double exact = cases[c].ref((double)x[i]);
            const double e = ulp_error(y[i], exact), ep = ulp_error(yp[i], exact);
            if (!(e <= worst)) worst = e, worst_x = x[i];
            if (ep > worst_p) worst_p = ep;
            if (!(e <= cases[c].bound) && failures < 20)
                FAIL("%s(%.9g) = %.9g on NEON: %.2f ulp (bound %.1f)", cases[c].name, x[i], y[i], e, cases[c].bound);
        }
        for (int64_t i = n; i < n + 4; ++i) {
            ++checks;
            if (!isnan(y[i])) FAIL("%s wrote past the end", cases[c].name);
        }
        printf("  %-8s worst %.2f ulp on NEON (at %.9g), %.2f on portable\n", cases[c].name, worst, worst_x, worst_p);
        // A value must not depend on where it sits: every length 1 ... 9 from every offset.
        for (int64_t len = 1; len <= 9; ++len)
            for (int64_t off = 0; off < 8; ++off) {
                float out[16];
                for (int i = 0; i < 16; ++i) out[i] = NAN;
                cases[c].f(CK_ISA_NEON, x + n - 27 + off, out, len);
                for (int64_t i = 0; i < len; ++i)
                    if (!same_bits(out[i], y[n - 27 + off + i])) FAIL("%s tail: length %lld offset %lld lane %lld differs", cases[c].name, (long long)len, (long long)off, (long long)i);
                for (int64_t i = len; i < 16; ++i) {
                    ++checks;
                    if (!isnan(out[i])) FAIL("%s tail wrote past length %lld", cases[c].name, (long long)len);
                }
            }
    }
    // In place.
    memcpy(yp, x, (size_t)n * 4);
    ck_vtanh(CK_ISA_NEON, yp, yp, n);
    cases[2].f(CK_ISA_NEON, x, y, n);
    for (int64_t i = 0; i < n; ++i)
        if (!same_bits(yp[i], y[i])) FAIL("tanh in place differs at %lld", (long long)i);
    end();

    begin("vmath sums/extrema");
    const int64_t lens[] = {0, 1, 3, 4, 7, 8, 9, 17, 33, 1000};
    for (int li = 0; li < 10; ++li) {
        const int64_t len = lens[li];
        float *v = alloc_random(len + 1);
        for (int64_t i = 0; i < len; ++i) v[i] *= 10;
        for (int isa_i = 0; isa_i < 2; ++isa_i) {
            const int isa = isa_i ? CK_ISA_PORTABLE : CK_ISA_NEON;
            double s = 0, es = 0, mag = 0;
            float mx = -INFINITY, mn = INFINITY;
            for (int64_t i = 0; i < len; ++i) {
                s += v[i], mag += fabs(v[i]);
                es += exp((double)(v[i] - 3.0f));  // the kernel rounds x - shift to float first
                if (v[i] > mx) mx = v[i];
                if (v[i] < mn) mn = v[i];
            }
            ++checks;
            if (fabs(ck_vsum(isa, v, len) - s) > 1e-12 * (mag + 1)) FAIL("vsum isa %d n=%lld: %.17g, expected %.17g", isa, (long long)len, ck_vsum(isa, v, len), s);
            float *e = alloc_fill(len + 2, NAN);
            const double got = ck_vexpsum(isa, v, e, len, 3.0f);
            ++checks;
            if (fabs(got - es) > 4e-7 * es + 1e-300) FAIL("vexpsum isa %d n=%lld: %.17g, expected %.17g", isa, (long long)len, got, es);
            ++checks;
            if (fabs(ck_vexpsum(isa, v, NULL, len, 3.0f) - got) != 0) FAIL("vexpsum without output differs, n=%lld", (long long)len);
            for (int64_t i = 0; i < len; ++i) {
                ++checks;
                if (!(ulp_error(e[i], exp((double)(v[i] - 3.0f))) <= 1.5)) FAIL("vexpsum isa %d output %lld: %.9g", isa, (long long)i, e[i]);
            }
            for (int64_t i = len; i < len + 2; ++i) {
                ++checks;
                if (!isnan(e[i])) FAIL("vexpsum wrote past the end, n=%lld", (long long)len);
            }
            free(e);
            if (!same_bits(ck_vmax(isa, v, len), mx)) FAIL("vmax isa %d n=%lld: %g, expected %g", isa, (long long)len, ck_vmax(isa, v, len), mx);
            if (!same_bits(ck_vmin(isa, v, len), mn)) FAIL("vmin isa %d n=%lld: %g, expected %g", isa, (long long)len, ck_vmin(isa, v, len), mn);
            for (int64_t pos = 0; pos < len; pos += (len > 20 ? 97 : 1)) {  // a NaN anywhere wins
                const float keep = v[pos];
                v[pos] = NAN;
                ++checks;
                if (!isnan(ck_vmax(isa, v, len)) || !isnan(ck_vmin(isa, v, len))) FAIL("vmax/vmin isa %d n=%lld: NaN at %lld lost", isa, (long long)len, (long long)pos);
                v[pos] = keep;
            }
        }
        free(v);
    }
    end();

    begin("vmap/vzip stream");
    for (int op = 0; op <= CK_MAP_RELU; ++op)
        for (int64_t off = 0; off < 4; ++off)
            for (int li = 0; li < 10; ++li) {
                const int64_t len = lens[li];
                float *src = alloc_random(len + 8), *out = alloc_fill(len + 12, NAN), *reg = alloc_fill(len + 8, NAN);
                for (int64_t i = 0; i < len; ++i) src[i] *= op == CK_MAP_EXP ? 50 : 5;
                if (len > 3) src[1] = -0.0f, src[2] = NAN;
                if (op == CK_MAP_LOG || op == CK_MAP_SQRT)
                    for (int64_t i = 3; i < len; ++i) src[i] = fabsf(src[i]);
                ck_vmap_stream(CK_ISA_NEON, op, src, out + off, len);
                if (op == CK_MAP_RELU) {
                    for (int64_t i = 0; i < len; ++i) reg[i] = src[i] < 0 ? 0.0f : src[i];
                } else {
                    fn f = op == CK_MAP_EXP ? ck_vexp : op == CK_MAP_LOG ? ck_vlog : op == CK_MAP_SQRT ? ck_vsqrt : op == CK_MAP_TANH ? ck_vtanh : ck_vsigmoid;
                    f(CK_ISA_NEON, src, reg, len);
                }
                for (int64_t i = 0; i < off; ++i) {
                    ++checks;
                    if (!isnan(out[i])) FAIL("vmap_stream op %d wrote before its output", op);
                }
                for (int64_t i = 0; i < len; ++i)
                    if (!same_bits(out[off + i], reg[i])) FAIL("vmap_stream op %d n=%lld offset %lld: element %lld %g, expected %g", op, (long long)len, (long long)off, (long long)i, out[off + i], reg[i]);
                for (int64_t i = off + len; i < len + 12; ++i) {
                    ++checks;
                    if (!isnan(out[i])) FAIL("vmap_stream op %d wrote past its output", op);
                }
                free(src), free(out), free(reg);
            }
    for (int op = 0; op <= CK_ZIP_DIVIDE; ++op)
        for (int64_t off = 0; off < 4; ++off)
            for (int li = 0; li < 10; ++li) {
                const int64_t len = lens[li];
                float *a = alloc_random(len + 1), *b = alloc_random(len + 1), *out = alloc_fill(len + 12, NAN);
                ck_vzip_stream(CK_ISA_NEON, op, a, b, out + off, len);
                for (int64_t i = 0; i < len; ++i) {
                    const float want = op == CK_ZIP_ADD ? a[i] + b[i] : op == CK_ZIP_SUBTRACT ? a[i] - b[i] : op == CK_ZIP_MULTIPLY ? a[i] * b[i] : a[i] / b[i];
                    if (!same_bits(out[off + i], want)) FAIL("vzip_stream op %d n=%lld offset %lld: element %lld", op, (long long)len, (long long)off, (long long)i);
                }
                for (int64_t i = 0; i < len + 12; ++i) {
                    if (i >= off && i < off + len) continue;
                    ++checks;
                    if (!isnan(out[i])) FAIL("vzip_stream op %d wrote outside its output", op);
                }
                free(a), free(b), free(out);
            }
    end();
    free(x), free(y), free(yp);
}

/// ck_maxpool2d_backward (windows that do not overlap): NEON and portable against zeroing the
/// input gradient and adding each output gradient at its winner (the same bits, -0 included),
/// with the winners from the portable forward; every float written (NaN-filled first), channel
/// counts across the 16- and 8-lane vectors and the scalar tail, windows with gaps between them,
/// padding, uncovered rows and columns, and the rows split into two calls.
static void check_pool_backward(void) {
    begin("maxpool2d backward");
    const int64_t cs[] = {1, 3, 8, 16, 17, 24, 33};
    for (int ci = 0; ci < 7; ++ci)
        for (int kind = 0; kind < 4; ++kind) {
            const int64_t n = 2, h = 7, w = 6, c = cs[ci];
            int64_t ph = 2, pw = 2, sh = 2, sw = 2, pt = 0, pl = 0;
            if (kind == 1) ph = 3, pw = 2, sh = 3, sw = 3, pt = 1, pl = 0;
            if (kind == 2) ph = pw = 1, sh = sw = 1;
            if (kind == 3) ph = 2, pw = 1, sh = 3, sw = 2;
            const int64_t oh = (h + 2 * pt - ph) / sh + 1, ow = (w + 2 * pl - pw) / sw + 1;
            const int64_t xsize = n * h * w * c, ysize = n * oh * ow * c;
            float *x = alloc_fill(xsize, 0), *y = alloc_fill(ysize, 0), *dy = alloc_random(ysize);
            for (int64_t i = 0; i < xsize; ++i) x[i] = (float)(int)(rnd() * 3);
            dy[0] = -0.0f;
            int32_t *idx = (int32_t *)malloc((size_t)ysize * 4);
            ck_maxpool_args args = {x, h, w, c, ph, pw, sh, sw, pt, pl, oh, ow, y, idx};
            ck_maxpool2d_forward(CK_ISA_PORTABLE, &args, 0, n * oh);
            float *expected = alloc_fill(xsize, 0);
            for (int64_t o = 0; o < ysize; ++o) expected[idx[o]] += dy[o];
            float *dx = alloc_fill(xsize + 4, NAN), *dxp = alloc_fill(xsize + 4, NAN);
            ck_maxpool2d_backward(CK_ISA_NEON, &args, dy, dx, 0, 5);
            ck_maxpool2d_backward(CK_ISA_NEON, &args, dy, dx, 5, n * h - 5);
            ck_maxpool2d_backward(CK_ISA_PORTABLE, &args, dy, dxp, 0, n * h);
            for (int64_t i = 0; i < xsize + 4; ++i) {
                ++checks;
                const int past = i >= xsize;
                if (past ? !isnan(dx[i]) || !isnan(dxp[i])
                         : !same_bits(dx[i], expected[i]) || !same_bits(dxp[i], expected[i]))
                    FAIL("pool backward c=%lld kind %d: dx[%lld] = %g (NEON), %g (portable), expected %g", (long long)c,
                         kind, (long long)i, dx[i], dxp[i], past ? NAN : expected[i]);
            }
            free(x), free(y), free(dy), free(idx), free(expected), free(dx), free(dxp);
        }
    end();
}

// ---------------------------------------------------------------- streaming copies

/// ck_stream_store (non-temporal stores, stnp on arm64) from every alignment, then the fence;
/// ck_prefetch only hints, so it must leave memory as it was.
static void check_stream_store(void) {
    begin("stream_store/prefetch");
    const int64_t lens[] = {0, 1, 3, 4, 5, 8, 17, 33, 1000};
    for (int li = 0; li < 9; ++li)
        for (int64_t off = 0; off < 4; ++off) {
            const int64_t len = lens[li];
            float *src = alloc_random(len + 1), *dst = alloc_fill(len + 8, NAN);
            ck_stream_store(dst + off, src, len);
            ck_stream_fence();
            ck_prefetch(src, len);
            for (int64_t i = 0; i < len + 8; ++i) {
                const int inside = i >= off && i < off + len;
                if (inside ? !same_bits(dst[i], src[i - off]) : !same_bits(dst[i], NAN))
                    FAIL("n=%lld offset %lld: element %lld is %g", (long long)len, (long long)off, (long long)i, dst[i]);
            }
            free(src), free(dst);
        }
    end();
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);  // progress lines and FAIL messages in order
    check_dispatch();
    check_ukernel();
    check_blocked_gemm();
    check_gemm_small();
    check_conv();
    check_conv_strided_output();
    check_conv_channels();
    check_channel_sums();
    check_pool();
    check_pool_backward();
    check_norm();
    check_winograd();
    check_optim();
    check_recurrent();
    check_vmath();
    check_stream_store();
    if (failures) {
        fprintf(stderr, "neon_check: %ld mismatches (first 20 shown above)\n", failures);
        return 1;
    }
    printf("neon_check: every NEON entry point agrees with the portable path and the references\n");
    return 0;
}
