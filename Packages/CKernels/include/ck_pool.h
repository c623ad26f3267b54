#ifndef NEURITE_CK_POOL_H
#define NEURITE_CK_POOL_H

#include <stdint.h>

// Max pooling over NHWC images, vectorised over channels in blocks of 16 lanes.

/// One max pooling: shapes, window, strides, padding and buffers.
typedef struct {
    const float *x;          ///< input `[n, h, w, c]`
    int64_t h, w, c;
    int64_t ph, pw;          ///< window
    int64_t sh, sw;          ///< strides
    int64_t pad_top, pad_left;
    int64_t oh, ow;          ///< output extent
    float *y;                ///< output `[n, oh, ow, c]`
    int32_t *indices;        ///< flat index into `x` of each output's winner
} ck_maxpool_args;

/// Output rows `[row_start, row_start + row_count)` (row `r` is image `r / oh`, row `r % oh`):
/// each output is the largest input of its window (cells outside the input never win), its index
/// the first such cell in row-major window order; a NaN wins and propagates. Every window must
/// hold at least one input cell, and `x` must have fewer than 2^31 elements.
void ck_maxpool2d_forward(int isa, const ck_maxpool_args *args, int64_t row_start, int64_t row_count);

/// The input gradient of a max pooling whose windows do not overlap (`sh >= ph`, `sw >= pw`), for
/// input rows `[row_start, row_start + row_count)` (row `r` is image `r / h`, row `r % h`) of `dx`
/// `[n, h, w, c]`, every float written: `0 + dy[o]` at the cell that `indices[o]` names (the
/// winners `ck_maxpool2d_forward` gave for these arguments), 0 everywhere else. `x` and `y` are
/// not read. The bits of zeroing `dx` and then adding each `dy[o]` at `indices[o]`.
void ck_maxpool2d_backward(int isa, const ck_maxpool_args *args, const float *dy, float *dx, int64_t row_start,
                           int64_t row_count);

#endif
