// SGEMM micro-kernels, one per ISA path, and their dispatch.
//
// Each kernel keeps an MR x NR tile of C in registers and streams kc packed columns of A
// and packed rows of B through it: per k step, NR/VL vector loads of B, MR broadcasts of A
// and MR*NR/VL fused multiply-adds. The tile shapes are chosen so that the accumulators
// plus the B vectors fill the register file without spilling:
//   AVX-512: 12 x 32 -> 24 zmm accumulators + 2 B + 1 broadcast (32 zmm registers)
//   AVX2:     6 x 16 -> 12 ymm accumulators + 2 B + 1 broadcast (16 ymm registers)
//   NEON:     8 x 12 -> 24 q accumulators + 2 A + 3 B (29 of the 32 q registers)
//   portable: 4 x 16 -> 16 128-bit accumulators (SSE2 has 16 xmm registers and spills a little)
//
// Each kernel also pulls a caller-chosen range of memory into L1 while it computes, one small
// step per k (see ck_gemm.h). The caller points it at its share of the next B panel: a panel of
// 256 x 32 floats read from the last-level cache all at once stalls the first kernel that uses
// it, which measured as a 20% loss for 2048 x 2048 products on a Xeon (Ice Lake).
#include "ck_gemm.h"
#include <string.h>
#include "ck_dispatch.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CK_X86 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

// Writes alpha * tile + beta * C for the valid m x n corner of a full MR x NR tile kept in
// a scratch buffer. Used by the paths without masked stores for edge tiles.
static inline void store_partial(const float *tile, int64_t nr, float *c, int64_t ldc,
                                 int64_t m, int64_t n, float alpha, float beta) {
    for (int64_t i = 0; i < m; ++i) {
        float *cr = c + i * ldc;
        const float *tr = tile + i * nr;
        if (beta == 0.0f) {
            for (int64_t j = 0; j < n; ++j) cr[j] = alpha * tr[j];
        } else {
            for (int64_t j = 0; j < n; ++j) cr[j] = alpha * tr[j] + beta * cr[j];
        }
    }
}

// ---------------------------------------------------------------- portable (4 x 16)

typedef float ck_v4 __attribute__((vector_size(16)));
#define P_MR 4
#define P_NR 16

static void ukr_portable(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                         int64_t m, int64_t n, float alpha, float beta, const float *pf, int64_t pf_step) {
    ck_v4 acc[P_MR][4];
    for (int i = 0; i < P_MR; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = (ck_v4){0, 0, 0, 0};
    for (int64_t p = 0; p < kc; ++p) {
        ck_v4 bv[4];
        for (int j = 0; j < 4; ++j) __builtin_memcpy(&bv[j], b + 4 * j, sizeof(ck_v4));
        for (int i = 0; i < P_MR; ++i) {
            float ai = a[i];
            ck_v4 av = {ai, ai, ai, ai};
            for (int j = 0; j < 4; ++j) acc[i][j] += av * bv[j];
        }
        a += P_MR;
        b += P_NR;
        __builtin_prefetch(pf);
        pf += pf_step;
    }
    float tile[P_MR * P_NR];
    for (int i = 0; i < P_MR; ++i)
        for (int j = 0; j < 4; ++j) __builtin_memcpy(tile + i * P_NR + 4 * j, &acc[i][j], sizeof(ck_v4));
    store_partial(tile, P_NR, c, ldc, m, n, alpha, beta);
}

#ifdef CK_X86
// ---------------------------------------------------------------- AVX2 + FMA (6 x 16)
#define A2_MR 6
#define A2_NR 16

__attribute__((target("avx2,fma")))
static void ukr_avx2(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                     int64_t m, int64_t n, float alpha, float beta, const float *pf, int64_t pf_step) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; ++p) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 ai;
#define A2_ROW(i) \
        ai = _mm256_broadcast_ss(a + i); \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0); \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);
        A2_ROW(0) A2_ROW(1) A2_ROW(2) A2_ROW(3) A2_ROW(4) A2_ROW(5)
#undef A2_ROW
        a += A2_MR;
        b += A2_NR;
        _mm_prefetch((const char *)pf, _MM_HINT_T0);
        pf += pf_step;
    }
    __m256 va = _mm256_set1_ps(alpha);
    if (m == A2_MR && n == A2_NR) {
        __m256 vb = _mm256_set1_ps(beta);
#define A2_STORE(i) { \
            float *cr = c + (i) * ldc; \
            __m256 r0 = _mm256_mul_ps(va, c##i##0), r1 = _mm256_mul_ps(va, c##i##1); \
            if (beta != 0.0f) { \
                r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), r0); \
                r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), r1); \
            } \
            _mm256_storeu_ps(cr, r0); _mm256_storeu_ps(cr + 8, r1); }
        A2_STORE(0) A2_STORE(1) A2_STORE(2) A2_STORE(3) A2_STORE(4) A2_STORE(5)
#undef A2_STORE
        return;
    }
    float tile[A2_MR * A2_NR];
#define A2_SPILL(i) _mm256_storeu_ps(tile + (i) * A2_NR, c##i##0); _mm256_storeu_ps(tile + (i) * A2_NR + 8, c##i##1);
    A2_SPILL(0) A2_SPILL(1) A2_SPILL(2) A2_SPILL(3) A2_SPILL(4) A2_SPILL(5)
#undef A2_SPILL
    store_partial(tile, A2_NR, c, ldc, m, n, alpha, beta);
}

// ---------------------------------------------------------------- AVX-512F (12 x 32)
#define A5_MR 12
#define A5_NR 32

__attribute__((target("avx512f,fma")))
static void ukr_avx512(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                       int64_t m, int64_t n, float alpha, float beta, const float *pf, int64_t pf_step) {
#define A5_DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    A5_DECL(0) A5_DECL(1) A5_DECL(2) A5_DECL(3) A5_DECL(4) A5_DECL(5)
    A5_DECL(6) A5_DECL(7) A5_DECL(8) A5_DECL(9) A5_DECL(10) A5_DECL(11)
#undef A5_DECL
    for (int64_t p = 0; p < kc; ++p) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 ai;
#define A5_ROW(i) \
        ai = _mm512_set1_ps(a[i]); \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0); \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);
        A5_ROW(0) A5_ROW(1) A5_ROW(2) A5_ROW(3) A5_ROW(4) A5_ROW(5)
        A5_ROW(6) A5_ROW(7) A5_ROW(8) A5_ROW(9) A5_ROW(10) A5_ROW(11)
#undef A5_ROW
        a += A5_MR;
        b += A5_NR;
        _mm_prefetch((const char *)pf, _MM_HINT_T0);
        pf += pf_step;
    }
    // Column masks make edge tiles as cheap as full ones; masked-off lanes are never touched.
    __mmask16 k0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
    __mmask16 k1 = n >= 32 ? (__mmask16)0xFFFF : (n <= 16 ? (__mmask16)0 : (__mmask16)((1u << (n - 16)) - 1u));
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#define A5_STORE(i) if ((i) < m) { \
        float *cr = c + (i) * ldc; \
        __m512 r0 = _mm512_mul_ps(va, c##i##0), r1 = _mm512_mul_ps(va, c##i##1); \
        if (beta != 0.0f) { \
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k0, cr), r0); \
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(k1, cr + 16), r1); \
        } \
        _mm512_mask_storeu_ps(cr, k0, r0); _mm512_mask_storeu_ps(cr + 16, k1, r1); }
    A5_STORE(0) A5_STORE(1) A5_STORE(2) A5_STORE(3) A5_STORE(4) A5_STORE(5)
    A5_STORE(6) A5_STORE(7) A5_STORE(8) A5_STORE(9) A5_STORE(10) A5_STORE(11)
#undef A5_STORE
}
#endif  // CK_X86

#if defined(__aarch64__)
// ---------------------------------------------------------------- NEON (8 x 12)
//
// Register budget (32 q registers of 4 floats): 24 accumulators (8 rows x 3 vectors of 4
// columns), 2 for the 8 packed A values of a k step and 3 for the 12 packed B values: 29.
// Each k step is 5 q loads (clang 21 emits two ldp and one ldr) and 24 fmla-by-element
// (vfmaq_laneq_f32: the A value is taken from a lane of the register it was loaded into, so no
// broadcasts are needed), that is 4.8 FMA per q load, 0.21 loads per FMA; 24 independent
// accumulators cover the 4-cycle FMA latency of 4 pipes (16 needed). The k loop compiles to
// exactly that, without spills (checked in the aarch64 assembly, -O2).
//
// Paper estimate, not a measurement (nothing here runs arm64 natively): at 4 lanes x 2 flops
// per FMA, a core with 2 FMA pipes (Neoverse N1, Graviton2, 2.5 GHz) peaks at 40 GFLOP/s, one
// with 4 (Apple M1 at 3.2 GHz: 102 GFLOP/s; Neoverse V1, Graviton3, at 2.6 GHz: 83 GFLOP/s).
// Loads need 5 per 6 cycles on the 4-pipe cores (3 load ports there), so the kernel should be
// FMA-bound; expect about 80% of peak in the kernel and less in a whole GEMM (packing, edges).
#define N_MR 8
#define N_NR 12

static void ukr_neon(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                     int64_t m, int64_t n, float alpha, float beta, const float *pf, int64_t pf_step) {
    float32x4_t c00 = vdupq_n_f32(0), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    float32x4_t c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    float32x4_t c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
    float32x4_t c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
    for (int64_t p = 0; p < kc; ++p) {
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
#define N_ROW(i, av, lane)                                                     \
        c##i##0 = vfmaq_laneq_f32(c##i##0, b0, av, lane);                      \
        c##i##1 = vfmaq_laneq_f32(c##i##1, b1, av, lane);                      \
        c##i##2 = vfmaq_laneq_f32(c##i##2, b2, av, lane);
        N_ROW(0, a0, 0) N_ROW(1, a0, 1) N_ROW(2, a0, 2) N_ROW(3, a0, 3)
        N_ROW(4, a1, 0) N_ROW(5, a1, 1) N_ROW(6, a1, 2) N_ROW(7, a1, 3)
#undef N_ROW
        a += N_MR;
        b += N_NR;
        __builtin_prefetch(pf);
        pf += pf_step;
    }
    const float32x4_t va = vdupq_n_f32(alpha);
    if (m == N_MR && n == N_NR) {
#define N_STORE(i) {                                                           \
            float *cr = c + (i) * ldc;                                         \
            float32x4_t r0 = vmulq_f32(va, c##i##0), r1 = vmulq_f32(va, c##i##1), r2 = vmulq_f32(va, c##i##2); \
            if (beta != 0.0f) {                                                \
                r0 = vfmaq_n_f32(r0, vld1q_f32(cr), beta);                     \
                r1 = vfmaq_n_f32(r1, vld1q_f32(cr + 4), beta);                 \
                r2 = vfmaq_n_f32(r2, vld1q_f32(cr + 8), beta);                 \
            }                                                                  \
            vst1q_f32(cr, r0); vst1q_f32(cr + 4, r1); vst1q_f32(cr + 8, r2); }
        N_STORE(0) N_STORE(1) N_STORE(2) N_STORE(3) N_STORE(4) N_STORE(5) N_STORE(6) N_STORE(7)
#undef N_STORE
        return;
    }
    float tile[N_MR * N_NR];
#define N_SPILL(i) vst1q_f32(tile + (i) * N_NR, c##i##0); vst1q_f32(tile + (i) * N_NR + 4, c##i##1); \
                   vst1q_f32(tile + (i) * N_NR + 8, c##i##2);
    N_SPILL(0) N_SPILL(1) N_SPILL(2) N_SPILL(3) N_SPILL(4) N_SPILL(5) N_SPILL(6) N_SPILL(7)
#undef N_SPILL
    store_partial(tile, N_NR, c, ldc, m, n, alpha, beta);
}
#endif  // __aarch64__

void ck_sgemm_tile(int isa, int64_t *mr, int64_t *nr) {
    switch (isa) {
#ifdef CK_X86
    case CK_ISA_AVX512: *mr = A5_MR; *nr = A5_NR; return;
    case CK_ISA_AVX2: *mr = A2_MR; *nr = A2_NR; return;
#endif
#if defined(__aarch64__)
    case CK_ISA_NEON: *mr = N_MR; *nr = N_NR; return;
#endif
    default: *mr = P_MR; *nr = P_NR; return;
    }
}

void ck_sgemm_ukernel(int isa, int64_t kc, const float *a, const float *b,
                      float *c, int64_t ldc, int64_t m, int64_t n,
                      float alpha, float beta, const float *prefetch, int64_t prefetch_count) {
    // Spread the prefetches evenly over the kc steps; with nothing to fetch, touch B's first
    // line (already in L1) so the loop body stays branch-free.
    const float *pf = prefetch_count > 0 ? prefetch : b;
    const int64_t pf_step = prefetch_count > 0 && kc > 0 ? (prefetch_count + kc - 1) / kc : 0;
    switch (isa) {
#ifdef CK_X86
    case CK_ISA_AVX512: ukr_avx512(kc, a, b, c, ldc, m, n, alpha, beta, pf, pf_step); return;
    case CK_ISA_AVX2: ukr_avx2(kc, a, b, c, ldc, m, n, alpha, beta, pf, pf_step); return;
#endif
#if defined(__aarch64__)
    case CK_ISA_NEON: ukr_neon(kc, a, b, c, ldc, m, n, alpha, beta, pf, pf_step); return;
#endif
    default: ukr_portable(kc, a, b, c, ldc, m, n, alpha, beta, pf, pf_step); return;
    }
}

// ---------------------------------------------------------------- packing

typedef float ck_q4 __attribute__((vector_size(16), aligned(4), may_alias));

void ck_pack_transposed(const float *src, int64_t ld, int64_t count, int64_t depth,
                        float *dst, int64_t stride) {
    int64_t i = 0;
    // Four source rows at a time, as 4 x 4 transposes: each 16-byte store fills four
    // consecutive destination floats. The vector shuffles lower to SSE on x86-64 and to
    // NEON on arm64, so no ISA-specific variant is needed.
    for (; i + 4 <= count; i += 4) {
        const float *r0 = src + i * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        float *out = dst + i;
        int64_t p = 0;
        for (; p + 4 <= depth; p += 4) {
            const ck_q4 x0 = *(const ck_q4 *)(r0 + p), x1 = *(const ck_q4 *)(r1 + p);
            const ck_q4 x2 = *(const ck_q4 *)(r2 + p), x3 = *(const ck_q4 *)(r3 + p);
            const ck_q4 t0 = __builtin_shufflevector(x0, x1, 0, 4, 1, 5);
            const ck_q4 t1 = __builtin_shufflevector(x0, x1, 2, 6, 3, 7);
            const ck_q4 t2 = __builtin_shufflevector(x2, x3, 0, 4, 1, 5);
            const ck_q4 t3 = __builtin_shufflevector(x2, x3, 2, 6, 3, 7);
            *(ck_q4 *)(out + p * stride) = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
            *(ck_q4 *)(out + (p + 1) * stride) = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
            *(ck_q4 *)(out + (p + 2) * stride) = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
            *(ck_q4 *)(out + (p + 3) * stride) = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
        }
        for (; p < depth; ++p) {
            float *o = out + p * stride;
            o[0] = r0[p]; o[1] = r1[p]; o[2] = r2[p]; o[3] = r3[p];
        }
    }
    for (; i < count; ++i) {
        const float *r = src + i * ld;
        for (int64_t p = 0; p < depth; ++p) dst[p * stride + i] = r[p];
    }
}

// Copies one row of a panel (`nr` floats); a function per constant `nr`, so the copy is inlined as vector moves.
#define CK_COPY_PANEL_ROW(nr)                                                   \
    static inline void copy_panel_row_##nr(float *dst, const float *src) {   \
        memcpy(dst, src, (nr) * sizeof(float));                              \
    }
CK_COPY_PANEL_ROW(4)
CK_COPY_PANEL_ROW(6)
CK_COPY_PANEL_ROW(8)
CK_COPY_PANEL_ROW(12)
CK_COPY_PANEL_ROW(16)
CK_COPY_PANEL_ROW(32)
#undef CK_COPY_PANEL_ROW

#define CK_PANEL_ROWS(nr) \
    for (; j + (nr) <= cols; j += (nr), dst += panel_stride) copy_panel_row_##nr(dst, src + j);

void ck_pack_row_panels(const float *src, int64_t cols, int64_t nr, float *dst, int64_t panel_stride) {
    int64_t j = 0;
    // The B panel widths (NR) and, for a transposed A (a weight gradient's Xᵀ·dY), the A tile
    // heights (MR) of every path: a constant width compiles to a few vector moves, where a
    // variable one is a call to memcpy per panel.
    switch (nr) {
    case 32: CK_PANEL_ROWS(32) break;
    case 16: CK_PANEL_ROWS(16) break;
    case 12: CK_PANEL_ROWS(12) break;
    case 8: CK_PANEL_ROWS(8) break;
    case 6: CK_PANEL_ROWS(6) break;
    case 4: CK_PANEL_ROWS(4) break;
    default:
        for (; j + nr <= cols; j += nr, dst += panel_stride) memcpy(dst, src + j, (size_t)nr * sizeof(float));
        break;
    }
#undef CK_PANEL_ROWS
    if (j < cols) {
        const int64_t rest = cols - j;
        memcpy(dst, src + j, (size_t)rest * sizeof(float));
        memset(dst + rest, 0, (size_t)(nr - rest) * sizeof(float));
    }
}
