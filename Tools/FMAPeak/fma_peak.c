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

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#define FMA_PEAK_CHAINS 12
#define FMA_PEAK_STEPS 64  // FMAs per chain per round

// Read through volatile at the start of each run, so that the compiler cannot fold the loop
// (with constants it computes the whole result at compile time).
static volatile float multiplier = 0.9999f;
static volatile float addend = 1e-4f;

int fma_peak_supported(int isa) {
    switch (isa) {
    case FMA_PEAK_PORTABLE:
        return 1;
#if defined(__x86_64__) || defined(_M_X64)
    case FMA_PEAK_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FMA_PEAK_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    default:
        return 0;
    }
}

#if defined(__x86_64__) || defined(_M_X64)
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

// The portable path: what plain C gets, 8 lanes per chain written as multiply then add, which the
// compiler vectorises for the target's baseline (SSE2 on x86-64, NEON on arm64, where it also
// fuses them); counted as 2 operations per lane whether fused or not.
static double run_portable(long rounds, float *sink) {
    float acc[FMA_PEAK_CHAINS][8];
    for (int c = 0; c < FMA_PEAK_CHAINS; c++)
        for (int l = 0; l < 8; l++) acc[c][l] = 1.0f + 0.01f * (float)c;
    const float m = multiplier, b = addend;
    for (long r = 0; r < rounds; r++) {
        for (int s = 0; s < FMA_PEAK_STEPS; s++) {
            for (int c = 0; c < FMA_PEAK_CHAINS; c++)
                for (int l = 0; l < 8; l++) acc[c][l] = acc[c][l] * m + b;
        }
    }
    float total = 0;
    for (int c = 0; c < FMA_PEAK_CHAINS; c++)
        for (int l = 0; l < 8; l++) total += acc[c][l];
    *sink = total;
    return 2.0 * 8.0 * FMA_PEAK_CHAINS * FMA_PEAK_STEPS * (double)rounds;
}

double fma_peak_run(int isa, long rounds, float *sink) {
    if (!fma_peak_supported(isa)) return 0;
    switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case FMA_PEAK_AVX512:
        return run_avx512(rounds, sink);
    case FMA_PEAK_AVX2:
        return run_avx2(rounds, sink);
#endif
    default:
        return run_portable(rounds, sink);
    }
}
