// The FMA-peak probe behind `neurite-bench peak` and the training suite's arithmetic floor.
#ifndef NEURITE_FMA_PEAK_H
#define NEURITE_FMA_PEAK_H

#ifdef __cplusplus
extern "C" {
#endif

/// The paths the probe measures; the numbers are CKernels' (`CK_ISA_*`, TensorCore's `KernelISA`).
enum {
    FMA_PEAK_PORTABLE = 0,
    FMA_PEAK_AVX2 = 1,
    FMA_PEAK_AVX512 = 2,
};

/// Whether this CPU can run `isa`'s loop (1) or not (0).
int fma_peak_supported(int isa);

/// Runs `isa`'s loop of single-precision fused multiply-adds on the calling thread for `rounds`
/// rounds and returns the floating-point operations it did (2 per lane per FMA), or 0 when the
/// CPU cannot run `isa`. `sink` receives a value that depends on every accumulator, so that the
/// compiler cannot drop the loop. The caller times it.
double fma_peak_run(int isa, long rounds, float *sink);

#ifdef __cplusplus
}
#endif

#endif
