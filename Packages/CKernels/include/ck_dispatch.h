#ifndef NEURITE_CK_DISPATCH_H
#define NEURITE_CK_DISPATCH_H

#include <stdint.h>

/// Instruction-set paths a kernel can take. Values are stable (Swift mirrors them).
typedef enum {
    CK_ISA_PORTABLE = 0,  ///< plain C (auto-vectorised; NEON on arm64, SSE2 on x86-64)
    CK_ISA_AVX2 = 1,      ///< x86-64 AVX2 + FMA
    CK_ISA_AVX512 = 2,    ///< x86-64 AVX-512F (+ FMA)
    CK_ISA_NEON = 3       ///< arm64 Advanced SIMD (mandatory on AArch64): hand-written arm_neon.h kernels
} ck_isa;

/// Returns 1 when the running CPU (and OS) can execute code for `isa`, else 0.
int ck_isa_supported(int isa);

/// The fastest path the running CPU supports.
int ck_isa_best(void);

#endif
