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
    default:
        return 0;
    }
}

int ck_isa_best(void) {
    if (ck_isa_supported(CK_ISA_AVX512)) return CK_ISA_AVX512;
    if (ck_isa_supported(CK_ISA_AVX2)) return CK_ISA_AVX2;
    return CK_ISA_PORTABLE;
}
