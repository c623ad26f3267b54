#ifndef NEURITE_CK_NORM_H
#define NEURITE_CK_NORM_H

#include <stdint.h>

// Per-channel passes of batch normalisation over a row-major `rows x channels` matrix (NHWC
// activations viewed with the channels last). Each kernel is one pass over memory; sums are kept
// in float over blocks of 64 rows and added into double totals, so the error stays near that of a
// 64-term float sum however many rows there are.

/// Adds `sum[c] += Σ (x[r, c] - shift[c])` and `squares[c] += Σ (x[r, c] - shift[c])²` over rows.
/// A shift near the mean (a row of the data) keeps the variance from cancelling. `scratch` holds
/// `2 * channels` floats.
void ck_channel_moments(int isa, const float *x, int64_t rows, int64_t channels, const float *shift,
                        double *sum, double *squares, float *scratch);

/// Adds `dy_sum[c] += Σ g[r, c]` and `dy_dot[c] += Σ g[r, c] (x[r, c] - mean[c]) inv[c]` over rows,
/// where `g = dy`, or with a `mask` (not NULL) `g = mask > 0 ? dy : 0` (the gradient through a
/// relu whose output was `mask`). `scratch` holds `2 * channels` floats.
void ck_channel_gradient_sums(int isa, const float *dy, const float *x, const float *mask, int64_t rows,
                              int64_t channels, const float *mean, const float *inv, double *dy_sum, double *dy_dot,
                              float *scratch);

/// `ck_channel_gradient_sums` through the relu of `ck_channel_affine(x, relu_a, relu_b, relu: 1)`,
/// recomputed from `x` rather than read from that output: `g = relu_a x + relu_b > 0 ? dy : 0`,
/// the same mask bit for bit (the same expression, compiled the same way on each path).
void ck_channel_gradient_sums_relu(int isa, const float *dy, const float *x, const float *relu_a, const float *relu_b,
                                   int64_t rows, int64_t channels, const float *mean, const float *inv,
                                   double *dy_sum, double *dy_dot, float *scratch);

/// `y[r, c] = a[c] x[r, c] + b[c]`, followed by a relu when `relu` is not 0.
void ck_channel_affine(int isa, const float *x, int64_t rows, int64_t channels, const float *a, const float *b,
                       int relu, float *y);

/// `y[r, c] = a[c] g[r, c] + b[c] v[r, c] + d[c]` with `g = u`, or with a `mask` (not NULL)
/// `g = mask > 0 ? u : 0`. `y` may be `u` itself (then written in place, the same bits); it must
/// not otherwise overlap an input.
void ck_channel_affine2(int isa, const float *u, const float *v, const float *mask, int64_t rows, int64_t channels,
                        const float *a, const float *b, const float *d, float *y);

/// `ck_channel_affine2` with `g = relu_a v + relu_b > 0 ? u : 0`: the mask of
/// `ck_channel_affine(v, relu_a, relu_b, relu: 1)` recomputed from `v`, as in
/// `ck_channel_gradient_sums_relu`. `y` may be `u`, as in `ck_channel_affine2`.
void ck_channel_affine2_relu(int isa, const float *u, const float *v, const float *relu_a, const float *relu_b,
                             int64_t rows, int64_t channels, const float *a, const float *b, const float *d, float *y);

#endif
