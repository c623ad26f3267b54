#include "ck_dispatch.h"

int ck_isa_supported(int isa) {
    switch (isa) {
    case CK_ISA_PORTABLE:
        return 1;
#if defined(__x86_64__) || defined(_M_X64)
    case CK_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CK_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
#if defined(__aarch64__)
    case CK_ISA_NEON:
        return 1;  // Advanced SIMD is part of the AArch64 base architecture
#endif
    default:
        return 0;
    }
}

int ck_isa_best(void) {
#if defined(__aarch64__)
    return CK_ISA_NEON;
#else
    if (ck_isa_supported(CK_ISA_AVX512)) return CK_ISA_AVX512;
    if (ck_isa_supported(CK_ISA_AVX2)) return CK_ISA_AVX2;
    return CK_ISA_PORTABLE;
#endif
}
