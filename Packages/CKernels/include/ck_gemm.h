#ifndef NEURITE_CK_GEMM_H
#define NEURITE_CK_GEMM_H

#include <stdint.h>

/// Register-tile shape of the SGEMM micro-kernel for `isa`: MR rows by NR columns of C.
void ck_sgemm_tile(int isa, int64_t *mr, int64_t *nr);

/// SGEMM micro-kernel: C[0..<m, 0..<n] = alpha * (Ap * Bp) + beta * C, for m <= MR, n <= NR.
///
/// - `a`: packed A panel, `kc` groups of MR floats (`a[p*MR + i]` is A(i, p)), zero-padded rows.
/// - `b`: packed B panel, `kc` groups of NR floats (`b[p*NR + j]` is B(p, j)), zero-padded columns.
/// - `c`: row-major C with leading dimension `ldc`. When `beta == 0`, C is never read
///   (so NaN or garbage in C does not leak into the result, as in BLAS).
void ck_sgemm_ukernel(int isa, int64_t kc, const float *a, const float *b,
                      float *c, int64_t ldc, int64_t m, int64_t n,
                      float alpha, float beta);

#endif
