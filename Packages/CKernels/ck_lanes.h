// Private to CKernels: 16-lane float vectors written with GCC/Clang vector extensions, for
// kernels whose arithmetic is the same on every ISA path (square roots, optimizer update rules).
//
// Such a kernel is one always-inline function, compiled once per path by CK_LANE_PATHS: with
// target("avx512f") a 16-lane vector is one zmm register, with target("avx2") two ymm registers,
// and with no target four SSE2 (x86-64) or NEON (arm64) registers; on arm64 CK_LANE_PATHS also
// defines a `_neon` instance, which CK_ISA_NEON dispatches to. Only the instructions differ
// between the paths, never the operations, so the paths give the same bits (as long as the file
// turns floating-point contraction off: see optim.c).
//
// The helpers are macros rather than functions: a 64-byte vector passed to or returned from a
// function compiled without AVX-512 changes the calling convention (clang warns, -Wpsabi).
#ifndef NEURITE_CK_LANES_H
#define NEURITE_CK_LANES_H

#include "ck_dispatch.h"
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(CK_X86)
#define CK_X86 1
#endif

#define CK_LANES 16

/// 16 floats; `ck_lanes_i` is the matching integer vector that comparisons produce (-1 or 0 per lane).
typedef float ck_lanes __attribute__((vector_size(64)));
typedef int32_t ck_lanes_i __attribute__((vector_size(64)));
/// The same vector at float alignment, for loads and stores at any element offset.
typedef float ck_lanes_u __attribute__((vector_size(64), aligned(4), may_alias));

/// Loads or stores 16 floats at `p` (no alignment needed).
#define CK_LOAD(p) (*(const ck_lanes_u *)(p))
#define CK_STORE(p, v) (*(ck_lanes_u *)(p) = (v))

/// Every lane set to the float `s`.
#define CK_SPLAT(s) ((ck_lanes){0} + (float)(s))

/// `mask ? a : b` lane by lane, for a comparison result `mask`.
#define CK_SELECT(mask, a, b) ((ck_lanes)(((mask) & (ck_lanes_i)(a)) | (~(mask) & (ck_lanes_i)(b))))

/// The correctly rounded square root of each lane (NaN for negative lanes), as sqrtps / fsqrt on
/// vectors. Unlike sqrtf, the elementwise builtin never sets errno, so it needs no libm fallback
/// call; an older compiler without it gets a loop over the lanes, which is correct but scalar.
#if defined(__has_builtin)
#if __has_builtin(__builtin_elementwise_sqrt)
#define CK_HAVE_ELEMENTWISE_SQRT 1
#endif
#endif
#ifdef CK_HAVE_ELEMENTWISE_SQRT
#define CK_SQRT(x) __builtin_elementwise_sqrt(x)
#else
#define CK_SQRT(x)                                                             \
    ({                                                                         \
        ck_lanes r_ = (x);                                                     \
        for (int j_ = 0; j_ < CK_LANES; ++j_) r_[j_] = __builtin_sqrtf(r_[j_]); \
        r_;                                                                    \
    })
#endif

#define CK_ALWAYS_INLINE static inline __attribute__((always_inline))

#ifdef CK_X86
/// Defines `name##_avx512`, `name##_avx2` and `name##_portable` with parameters `params`, each
/// calling the always-inline `run` with `args`, compiled for its path.
#define CK_LANE_PATHS(name, run, params, args) CK_LANE_PATHS_NARROW(name, run, run, params, args)
/// As CK_LANE_PATHS, with `narrow_run` as the body of the paths whose registers hold fewer
/// 16-lane vectors than AVX-512's 32 zmm: the AVX2 instance here (16 ymm registers, two per
/// 16-lane vector), the NEON instance on arm64 (32 q registers, four per vector). conv.c uses it
/// for register blocks sized to those files.
#define CK_LANE_PATHS_NARROW(name, run, narrow_run, params, args)              \
    __attribute__((target("avx512f,fma"))) static void name##_avx512 params { run args; } \
    __attribute__((target("avx2,fma"))) static void name##_avx2 params { narrow_run args; } \
    static void name##_portable params { run args; }

/// Calls the variant of `name` for `isa` (portable for an unknown or unsupported value).
#define CK_LANE_DISPATCH(isa, name, args)                                      \
    switch (isa) {                                                             \
    case CK_ISA_AVX512: name##_avx512 args; return;                            \
    case CK_ISA_AVX2: name##_avx2 args; return;                                \
    default: name##_portable args; return;                                     \
    }
#elif defined(__aarch64__)
/// Defines `name##_neon` and `name##_portable`. Advanced SIMD is part of the AArch64 base
/// architecture, so both compile the 16-lane vectors to four 128-bit q registers each and need no
/// target attribute: on arm64 the two instances are the same instructions, unless the file gives
/// the NEON path a body of its own with CK_LANE_PATHS_NARROW (conv.c's register blocking for 32
/// q registers). The `_neon` instance exists so every entry point dispatches NEON the way it
/// dispatches the x86 paths.
#define CK_LANE_PATHS(name, run, params, args) CK_LANE_PATHS_NARROW(name, run, run, params, args)
#define CK_LANE_PATHS_NARROW(name, run, narrow_run, params, args)              \
    static void name##_neon params { narrow_run args; }                        \
    static void name##_portable params { run args; }

/// Calls the variant of `name` for `isa` (portable for an unknown or unsupported value).
#define CK_LANE_DISPATCH(isa, name, args)                                      \
    switch (isa) {                                                             \
    case CK_ISA_NEON: name##_neon args; return;                                \
    default: name##_portable args; return;                                     \
    }
#else
#define CK_LANE_PATHS(name, run, params, args) static void name##_portable params { run args; }
#define CK_LANE_DISPATCH(isa, name, args) \
    (void)(isa);                          \
    name##_portable args;
#endif

#ifndef CK_LANE_PATHS_NARROW
/// As CK_LANE_PATHS, with `narrow_run` as the body of the AVX2 and NEON instances (neither exists
/// on other targets).
#define CK_LANE_PATHS_NARROW(name, run, narrow_run, params, args) CK_LANE_PATHS(name, run, params, args)
#endif

#endif
