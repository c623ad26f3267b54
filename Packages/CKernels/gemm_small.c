// SGEMM for a few rows of C (ck_gemm.h: ck_sgemm_small), written once as plain loops that the
// compiler vectorises for each ISA path CK_LANE_PATHS compiles them for. Packing costs a copy of
// all of B per call, which for one row of A is more than the product itself: a single image
// through a 784x512 layer would copy 1.6 MB to do 0.4 M multiply-adds.
//
// NEON (the CK_LANE_PATHS `_neon` instance; paper estimate, not measured): with B not transposed
// each 4 floats of a row of C cost one q load of B, a load and a store of the accumulator row (in
// L1) and one fmla, so 3 memory operations per FMA instruction: about 1 fmla per cycle on cores
// with 2 to 3 load/store ports, 8 flops per cycle, 20 to 25 GFLOP/s at 2.5 to 3.2 GHz while B
// is in L1/L2, and B's bandwidth past the caches (4 bytes per FMA) below that. Transposed, the
// dot products are 1 fmla per 2 q loads.
#include "ck_gemm.h"
#include "ck_lanes.h"

CK_ALWAYS_INLINE void small_run(int transpose_a, int transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
                                const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                                int64_t ldc) {
    for (int64_t i = 0; i < m; ++i) {
        float *ci = c + i * ldc;
        if (!transpose_b) {
            // ci = beta ci + alpha Σ_p A(i, p) B(p, :), in blocks of 512 columns kept in cache.
            for (int64_t j0 = 0; j0 < n; j0 += 512) {
                const int64_t jn = n - j0 < 512 ? n - j0 : 512;
                float acc[512];
                for (int64_t j = 0; j < jn; ++j) acc[j] = 0;
                for (int64_t p = 0; p < k; ++p) {
                    const float aip = transpose_a ? a[p * lda + i] : a[i * lda + p];
                    const float *bp = b + p * ldb + j0;
                    for (int64_t j = 0; j < jn; ++j) acc[j] += aip * bp[j];
                }
                if (beta == 0) {
                    for (int64_t j = 0; j < jn; ++j) ci[j0 + j] = alpha * acc[j];
                } else {
                    for (int64_t j = 0; j < jn; ++j) ci[j0 + j] = alpha * acc[j] + beta * ci[j0 + j];
                }
            }
        } else {
            // C(i, j) = alpha <A(i, :), B(j, :)> + beta C(i, j); 16 partial sums per dot product.
            for (int64_t j = 0; j < n; ++j) {
                const float *bj = b + j * ldb;
                ck_lanes sum = CK_SPLAT(0);
                int64_t p = 0;
                if (!transpose_a) {
                    const float *ai = a + i * lda;
                    for (; p + CK_LANES <= k; p += CK_LANES) sum = sum + CK_LOAD(ai + p) * CK_LOAD(bj + p);
                }
                float tail = 0;
                for (; p < k; ++p) tail += (transpose_a ? a[p * lda + i] : a[i * lda + p]) * bj[p];
                float total = tail;
                for (int l = 0; l < CK_LANES; ++l) total += sum[l];
                ci[j] = beta == 0 ? alpha * total : alpha * total + beta * ci[j];
            }
        }
    }
}

CK_LANE_PATHS(gemm_small, small_run,
              (int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc),
              (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))

void ck_sgemm_small(int isa, int transpose_a, int transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    CK_LANE_DISPATCH(isa, gemm_small, (transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
}
