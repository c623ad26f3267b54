// Batch-normalisation passes (ck_norm.h). Plain loops over the channels of a row, which the
// compiler vectorises for each ISA path that CK_LANE_PATHS compiles them for.
//
// NEON (the CK_LANE_PATHS `_neon` instance; paper estimate, not measured): each pass is one or two
// loads and one or two fmla per 4 floats, so it runs at the core's memory bandwidth once the
// activations leave L2 (on Graviton2/3 or M1 about 20 to 60 GB/s per core: 5 to 15 G floats
// per second for the one-input passes).
#include "ck_norm.h"
#include "ck_lanes.h"

enum { ROW_BLOCK = 64 };

/// Whether `ck_channel_affine` with a relu let `a x + b` through (stored it above 0): the same
/// expression as affine_run's, so it compiles to the same operations on each path (contracted to
/// one fused multiply-add where the path has one) and gives the same bits, hence the same answer.
#define RELU_PASSES(a, x, b) ((a) * (x) + (b) > 0)

CK_ALWAYS_INLINE void moments_run(const float *x, int64_t rows, int64_t channels, const float *shift, double *sum,
                                  double *squares, float *block_sum, float *block_squares) {
    for (int64_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
        const int64_t r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
        for (int64_t c = 0; c < channels; ++c) block_sum[c] = block_squares[c] = 0;
        for (int64_t r = r0; r < r1; ++r) {
            const float *row = x + r * channels;
            for (int64_t c = 0; c < channels; ++c) {
                const float d = row[c] - shift[c];
                block_sum[c] += d;
                block_squares[c] += d * d;
            }
        }
        for (int64_t c = 0; c < channels; ++c) {
            sum[c] += block_sum[c];
            squares[c] += block_squares[c];
        }
    }
}

CK_LANE_PATHS(moments, moments_run,
              (const float *x, int64_t rows, int64_t channels, const float *shift, double *sum, double *squares,
               float *bs, float *bq),
              (x, rows, channels, shift, sum, squares, bs, bq))

static void moments_dispatch(int isa, const float *x, int64_t rows, int64_t channels, const float *shift,
                             double *sum, double *squares, float *bs, float *bq) {
    CK_LANE_DISPATCH(isa, moments, (x, rows, channels, shift, sum, squares, bs, bq))
}

void ck_channel_moments(int isa, const float *x, int64_t rows, int64_t channels, const float *shift,
                        double *sum, double *squares, float *scratch) {
    float *bs = scratch, *bq = scratch + channels;
    moments_dispatch(isa, x, rows, channels, shift, sum, squares, bs, bq);
}

CK_ALWAYS_INLINE void gradient_sums_run(const float *dy, const float *x, const float *mask, const float *relu_a,
                                        const float *relu_b, int64_t rows, int64_t channels, const float *mean,
                                        const float *inv, double *dy_sum, double *dy_dot, float *block_sum,
                                        float *block_dot) {
    for (int64_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
        const int64_t r1 = r0 + ROW_BLOCK < rows ? r0 + ROW_BLOCK : rows;
        for (int64_t c = 0; c < channels; ++c) block_sum[c] = block_dot[c] = 0;
        for (int64_t r = r0; r < r1; ++r) {
            const float *g = dy + r * channels, *row = x + r * channels;
            if (mask) {
                const float *m = mask + r * channels;
                for (int64_t c = 0; c < channels; ++c) {
                    const float gc = m[c] > 0 ? g[c] : 0.0f;
                    block_sum[c] += gc;
                    block_dot[c] += gc * ((row[c] - mean[c]) * inv[c]);
                }
            } else if (relu_a) {
                for (int64_t c = 0; c < channels; ++c) {
                    const float gc = RELU_PASSES(relu_a[c], row[c], relu_b[c]) ? g[c] : 0.0f;
                    block_sum[c] += gc;
                    block_dot[c] += gc * ((row[c] - mean[c]) * inv[c]);
                }
            } else {
                for (int64_t c = 0; c < channels; ++c) {
                    block_sum[c] += g[c];
                    block_dot[c] += g[c] * ((row[c] - mean[c]) * inv[c]);
                }
            }
        }
        for (int64_t c = 0; c < channels; ++c) {
            dy_sum[c] += block_sum[c];
            dy_dot[c] += block_dot[c];
        }
    }
}

CK_LANE_PATHS(gradient_sums, gradient_sums_run,
              (const float *dy, const float *x, const float *mask, const float *ra, const float *rb, int64_t rows,
               int64_t channels, const float *mean, const float *inv, double *dy_sum, double *dy_dot, float *bs,
               float *bd),
              (dy, x, mask, ra, rb, rows, channels, mean, inv, dy_sum, dy_dot, bs, bd))

static void gradient_sums_dispatch(int isa, const float *dy, const float *x, const float *mask, const float *ra,
                                   const float *rb, int64_t rows, int64_t channels, const float *mean,
                                   const float *inv, double *dy_sum, double *dy_dot, float *bs, float *bd) {
    CK_LANE_DISPATCH(isa, gradient_sums, (dy, x, mask, ra, rb, rows, channels, mean, inv, dy_sum, dy_dot, bs, bd))
}

void ck_channel_gradient_sums(int isa, const float *dy, const float *x, const float *mask, int64_t rows,
                              int64_t channels, const float *mean, const float *inv, double *dy_sum, double *dy_dot,
                              float *scratch) {
    float *bs = scratch, *bd = scratch + channels;
    gradient_sums_dispatch(isa, dy, x, mask, NULL, NULL, rows, channels, mean, inv, dy_sum, dy_dot, bs, bd);
}

void ck_channel_gradient_sums_relu(int isa, const float *dy, const float *x, const float *relu_a, const float *relu_b,
                                   int64_t rows, int64_t channels, const float *mean, const float *inv,
                                   double *dy_sum, double *dy_dot, float *scratch) {
    float *bs = scratch, *bd = scratch + channels;
    gradient_sums_dispatch(isa, dy, x, NULL, relu_a, relu_b, rows, channels, mean, inv, dy_sum, dy_dot, bs, bd);
}

CK_ALWAYS_INLINE void affine_run(const float *x, int64_t rows, int64_t channels, const float *a, const float *b,
                                 int relu, float *y) {
    for (int64_t r = 0; r < rows; ++r) {
        const float *row = x + r * channels;
        float *out = y + r * channels;
        if (relu) {
            for (int64_t c = 0; c < channels; ++c) {
                const float v = a[c] * row[c] + b[c];
                out[c] = v < 0 ? 0.0f : v;  // as Tensor.relu(): NaN passes
            }
        } else {
            for (int64_t c = 0; c < channels; ++c) out[c] = a[c] * row[c] + b[c];
        }
    }
}

CK_LANE_PATHS(affine, affine_run,
              (const float *x, int64_t rows, int64_t channels, const float *a, const float *b, int relu, float *y),
              (x, rows, channels, a, b, relu, y))

void ck_channel_affine(int isa, const float *x, int64_t rows, int64_t channels, const float *a, const float *b,
                       int relu, float *y) {
    CK_LANE_DISPATCH(isa, affine, (x, rows, channels, a, b, relu, y))
}

/// affine2_run with `y == u` (the input gradient written over the output gradient): one pointer
/// read and written at the same element, which the compiler can vectorise without the overlap
/// checks that two possibly overlapping pointers need; the same expressions, so the same bits.
CK_ALWAYS_INLINE void affine2_inplace_run(float *g, const float *v, const float *mask, const float *relu_a,
                                          const float *relu_b, int64_t rows, int64_t channels, const float *a,
                                          const float *b, const float *d) {
    for (int64_t r = 0; r < rows; ++r) {
        const float *vr = v + r * channels;
        float *io = g + r * channels;
        if (mask) {
            const float *m = mask + r * channels;
            for (int64_t c = 0; c < channels; ++c) {
                const float uc = m[c] > 0 ? io[c] : 0.0f;
                io[c] = a[c] * uc + b[c] * vr[c] + d[c];
            }
        } else if (relu_a) {
            for (int64_t c = 0; c < channels; ++c) {
                const float uc = RELU_PASSES(relu_a[c], vr[c], relu_b[c]) ? io[c] : 0.0f;
                io[c] = a[c] * uc + b[c] * vr[c] + d[c];
            }
        } else {
            for (int64_t c = 0; c < channels; ++c) io[c] = a[c] * io[c] + b[c] * vr[c] + d[c];
        }
    }
}

CK_ALWAYS_INLINE void affine2_run(const float *u, const float *v, const float *mask, const float *relu_a,
                                  const float *relu_b, int64_t rows, int64_t channels, const float *a, const float *b,
                                  const float *d, float *y) {
    if (y == u) {
        affine2_inplace_run(y, v, mask, relu_a, relu_b, rows, channels, a, b, d);
        return;
    }
    for (int64_t r = 0; r < rows; ++r) {
        const float *ur = u + r * channels, *vr = v + r * channels;
        float *out = y + r * channels;
        if (mask) {
            const float *m = mask + r * channels;
            for (int64_t c = 0; c < channels; ++c) {
                const float uc = m[c] > 0 ? ur[c] : 0.0f;
                out[c] = a[c] * uc + b[c] * vr[c] + d[c];
            }
        } else if (relu_a) {
            for (int64_t c = 0; c < channels; ++c) {
                const float uc = RELU_PASSES(relu_a[c], vr[c], relu_b[c]) ? ur[c] : 0.0f;
                out[c] = a[c] * uc + b[c] * vr[c] + d[c];
            }
        } else {
            for (int64_t c = 0; c < channels; ++c) out[c] = a[c] * ur[c] + b[c] * vr[c] + d[c];
        }
    }
}

CK_LANE_PATHS(affine2, affine2_run,
              (const float *u, const float *v, const float *mask, const float *ra, const float *rb, int64_t rows,
               int64_t channels, const float *a, const float *b, const float *d, float *y),
              (u, v, mask, ra, rb, rows, channels, a, b, d, y))

static void affine2_dispatch(int isa, const float *u, const float *v, const float *mask, const float *ra,
                             const float *rb, int64_t rows, int64_t channels, const float *a, const float *b,
                             const float *d, float *y) {
    CK_LANE_DISPATCH(isa, affine2, (u, v, mask, ra, rb, rows, channels, a, b, d, y))
}

void ck_channel_affine2(int isa, const float *u, const float *v, const float *mask, int64_t rows, int64_t channels,
                        const float *a, const float *b, const float *d, float *y) {
    affine2_dispatch(isa, u, v, mask, NULL, NULL, rows, channels, a, b, d, y);
}

void ck_channel_affine2_relu(int isa, const float *u, const float *v, const float *relu_a, const float *relu_b,
                             int64_t rows, int64_t channels, const float *a, const float *b, const float *d, float *y) {
    affine2_dispatch(isa, u, v, NULL, relu_a, relu_b, rows, channels, a, b, d, y);
}
