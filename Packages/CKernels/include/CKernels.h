// CKernels: the few ISA-specific micro-kernels Neurite needs, with run-time dispatch.
//
// Everything above the micro-kernel level (blocking, packing, threading, the API) is Swift,
// in TensorCore. This target exists only because per-function ISA targets
// (__attribute__((target("avx512f,fma")))) cannot be expressed in Swift without unsafeFlags.
#ifndef NEURITE_CKERNELS_H
#define NEURITE_CKERNELS_H

#include "ck_dispatch.h"
#include "ck_gemm.h"
#include "ck_vmath.h"
#include "ck_optim.h"
#include "ck_conv.h"
#include "ck_pool.h"
#include "ck_norm.h"
#include "ck_recurrent.h"
#include "ck_winograd.h"

#endif
