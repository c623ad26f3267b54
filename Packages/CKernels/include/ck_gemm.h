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
/// - `prefetch`, `prefetch_count`: floats to pull into L1 while computing, spread over the kc
///   steps (the caller's share of the next B panel). Only prefetched, never read, so the range
///   need not be valid memory; `prefetch_count == 0` (with any `prefetch`, NULL included) asks
///   for nothing.
void ck_sgemm_ukernel(int isa, int64_t kc, const float *a, const float *b,
                      float *c, int64_t ldc, int64_t m, int64_t n,
                      float alpha, float beta, const float *prefetch, int64_t prefetch_count);

/// Packing transpose: `dst[p * stride + i] = src[i * ld + p]` for `i < count`, `p < depth`.
///
/// Packs `count` rows of a row-major matrix into the interleaved layout of a GEMM panel
/// (`stride` = MR for A's panels, NR for a transposed B's). Destination floats with
/// `i >= count` are left as they are.
void ck_pack_transposed(const float *src, int64_t ld, int64_t count, int64_t depth,
                        float *dst, int64_t stride);

/// Packs one row of B (`cols` contiguous floats) into consecutive panels of `nr` columns:
/// floats `q * nr ..< (q + 1) * nr` go to `dst + q * panel_stride`, and the last panel's missing
/// columns are zeros. Reading B row by row keeps its loads sequential, where packing a panel at a
/// time would read `nr` floats from each of `kc` rows far apart. The same call packs one depth
/// row of a transposed A into its `nr = MR`-row panels.
void ck_pack_row_panels(const float *src, int64_t cols, int64_t nr, float *dst, int64_t panel_stride);

/// SGEMM for a few rows of C (a batch of one image, a matrix-vector product), without packing:
/// `C = alpha * op(A) * op(B) + beta * C` for `m` rows (meant for m <= 4), row-major operands.
/// With B not transposed each row of C accumulates `A(i, p) * B(p, :)` over p, streaming B's rows;
/// transposed, each C(i, j) is a dot product of contiguous rows. When `beta == 0`, C is never read.
void ck_sgemm_small(int isa, int transpose_a, int transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif
