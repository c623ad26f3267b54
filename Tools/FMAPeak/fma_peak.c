// Single-precision FMA throughput: FMA_PEAK_CHAINS independent accumulators per path, each
// updated as acc = acc * a + b, so that the FMA units, not the latency of one dependency chain,
// bound the loop. Twelve chains cover a latency of 4 cycles on 2 FMA pipes (8 in flight) with
// room to spare and, with the two operands, fit the 16 registers of AVX2 as well as the 32 of
// AVX-512. The multiplier is just below 1 and the addend small, so the accumulators settle near
// b / (1 - a) = 1 without overflow or subnormals, which would slow some CPUs down.
//
// Each ISA path is one function carrying its own `target` attribute, chosen at run time (as
// Packages/CKernels does): no compiler flag is needed and the file builds for any CPU.
#include "fma_peak.h"

#include "ck_dispatch.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#define FMA_PEAK_CHAINS 12
#define FMA_PEAK_STEPS 64  // FMAs per chain per round

// Read through volatile at the start of each run, so that the compiler cannot fold the loop
// (with constants it computes the whole result at compile time).
static volatile float multiplier = 0.9999f;
static volatile float addend = 1e-4f;

// The loop every path runs, on its own vector type and operations (`lanes` floats per vector).
#define FMA_PEAK_BODY(vec, set1, fmadd, add, reduce, lanes)                                       \
    vec acc[FMA_PEAK_CHAINS];                                                                     \
    for (int c = 0; c < FMA_PEAK_CHAINS; c++) acc[c] = set1(1.0f + 0.01f * (float)c);            \
    const vec a = set1(multiplier), b = set1(addend);                                             \
    for (long r = 0; r < rounds; r++) {                                                           \
        for (int s = 0; s < FMA_PEAK_STEPS; s++) {                                                \
            acc[0] = fmadd(acc[0], a, b); acc[1] = fmadd(acc[1], a, b);                           \
            acc[2] = fmadd(acc[2], a, b); acc[3] = fmadd(acc[3], a, b);                           \
            acc[4] = fmadd(acc[4], a, b); acc[5] = fmadd(acc[5], a, b);                           \
            acc[6] = fmadd(acc[6], a, b); acc[7] = fmadd(acc[7], a, b);                           \
            acc[8] = fmadd(acc[8], a, b); acc[9] = fmadd(acc[9], a, b);                           \
            acc[10] = fmadd(acc[10], a, b); acc[11] = fmadd(acc[11], a, b);                       \
        }                                                                                         \
    }                                                                                             \
    vec total = acc[0];                                                                           \
    for (int c = 1; c < FMA_PEAK_CHAINS; c++) total = add(total, acc[c]);                         \
    *sink = reduce(total);                                                                        \
    return 2.0 * (double)lanes * FMA_PEAK_CHAINS * FMA_PEAK_STEPS * (double)rounds;

#if defined(__x86_64__) || defined(_M_X64)
__attribute__((target("avx512f,fma")))
static double run_avx512(long rounds, float *sink) {
    FMA_PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps, 16)
}

__attribute__((target("avx2,fma")))
static float reduce_avx2(__m256 v) {
    float lanes[8];
    _mm256_storeu_ps(lanes, v);
    float total = 0;
    for (int i = 0; i < 8; i++) total += lanes[i];
    return total;
}

__attribute__((target("avx2,fma")))
static double run_avx2(long rounds, float *sink) {
    FMA_PEAK_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, reduce_avx2, 8)
}
#endif

// The portable path: what plain C gets, one 4-lane vector per chain (GCC and Clang vector
// extensions: one SSE2 register on x86-64, one NEON register on arm64, so the twelve chains and the
// two operands fit x86-64's 16 vector registers without spilling), written as multiply then add,
// which arm64 fuses and x86-64's baseline cannot; counted as 2 operations per lane either way.
typedef float fma_peak_v4 __attribute__((vector_size(16)));

static fma_peak_v4 portable_set1(float x) { return (fma_peak_v4){x, x, x, x}; }
static fma_peak_v4 portable_fmadd(fma_peak_v4 x, fma_peak_v4 a, fma_peak_v4 b) { return x * a + b; }
static fma_peak_v4 portable_add(fma_peak_v4 x, fma_peak_v4 y) { return x + y; }
static float portable_reduce(fma_peak_v4 x) { return x[0] + x[1] + x[2] + x[3]; }

static double run_portable(long rounds, float *sink) {
    FMA_PEAK_BODY(fma_peak_v4, portable_set1, portable_fmadd, portable_add, portable_reduce, 4)
}

double fma_peak_run(int isa, long rounds, float *sink) {
    if (!ck_isa_supported(isa)) return 0;
    switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case CK_ISA_AVX512:
        return run_avx512(rounds, sink);
    case CK_ISA_AVX2:
        return run_avx2(rounds, sink);
#endif
    default:
        return run_portable(rounds, sink);
    }
}
