// The FMA-peak probe behind `neurite-bench peak` and the training suite's arithmetic floor.
#ifndef NEURITE_FMA_PEAK_H
#define NEURITE_FMA_PEAK_H

#ifdef __cplusplus
extern "C" {
#endif

/// Runs the loop of `isa` (a `CK_ISA_*` path of Packages/CKernels, TensorCore's `KernelISA`):
/// single-precision fused multiply-adds on the calling thread for `rounds` rounds. Returns the
/// floating-point operations it did (2 per lane per FMA), or 0 when the CPU cannot run `isa`
/// (`ck_isa_supported`). `sink` receives a value that depends on every accumulator, so that the
/// compiler cannot drop the loop. The caller times it.
double fma_peak_run(int isa, long rounds, float *sink);

#ifdef __cplusplus
}
#endif

#endif
