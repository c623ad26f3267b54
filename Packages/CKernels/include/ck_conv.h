#ifndef NEURITE_CK_CONV_H
#define NEURITE_CK_CONV_H

#include <stdint.h>

// Direct 2-D convolution over NHWC images, for the small channel counts of image classifiers,
// where im2col's KH*KW-fold copy of the input costs more than the arithmetic.
//
// Both kernels vectorise over output channels in blocks of 16 lanes, so the kernel is packed as
// `[KH, KW, Cin, cout_padded]` with `cout_padded` a multiple of 16 and zeros in the padding
// columns. The input is read with "valid" semantics: callers pad it first for "same".
// Accumulation uses fused multiply-add on the AVX paths, so results differ from the portable path
// in the last bits (each path is checked against a Float64 reference). On arm64 the portable and
// NEON paths both fuse and add the taps in the same order, so they give the same bits (NEON only
// blocks the registers differently; Tools/neon-check checks this under qemu).

/// One convolution: shapes, strides and buffers.
typedef struct {
    const float *x;         ///< input images `[n, h, w, cin]`, already padded
    int64_t h, w, cin;
    const float *k;         ///< packed kernel `[kh, kw, cin, cout_padded]`
    int64_t kh, kw, cout, cout_padded;
    int64_t sh, sw;         ///< strides
    int64_t dh, dw;         ///< dilation
    int64_t oh, ow;         ///< output extent
    float *y;               ///< forward: output `[n, oh, ow, cout]`
    const float *bias;      ///< forward: `[cout]` added to every output, or NULL
    const float *dy;        ///< kernel gradient: output gradient `[n, oh, ow, cout_padded]`
    const float *post_bias; ///< forward: `[cout]` added after the taps' sum (`(sum) + b`, not `b + sum`), or NULL
    int64_t relu;           ///< forward: nonzero to store `v < 0 ? 0 : v` (after `post_bias`), as `Tensor.relu()`
    int64_t pad_top, pad_left; ///< `ck_conv2d_forward_channels` only: `x` is not padded; window rows start at
                               ///< `i sh - pad_top` and columns at `j sw - pad_left`, and taps outside it are left out
    int64_t y_pixel_stride, y_row_stride; ///< `ck_conv2d_forward` only: when `y_pixel_stride` is nonzero, output pixel
                               ///< `j` of row `r` (counted over images and rows) is stored at
                               ///< `y + r y_row_stride + j y_pixel_stride` (its `cout` floats in a row), else at
                               ///< `y + (r ow + j) cout`: a transposed convolution's phases store straight into place
} ck_conv_args;

/// Forward: writes output rows `[row_start, row_start + row_count)`, where row `r` is image
/// `r / oh`, output row `r % oh`:
/// `y[n, i, j, co] = bias[co] + sum over a, b, ci of x[n, i sh + a dh, j sw + b dw, ci] k[a, b, ci, co]`,
/// then `+ post_bias[co]` and relu when asked (the bias-and-activation pass of a layer, fused into
/// the store: the same bits as that pass over the stored sums).
void ck_conv2d_forward(int isa, const ck_conv_args *args, int64_t row_start, int64_t row_count);

/// Forward for 1, 2, 4 or 8 output channels and a multiple of 8 input channels, vectorised over
/// the input channels: the same sums as `ck_conv2d_forward` (then `bias`, `post_bias` and relu as
/// there, all added after the taps' sum), written for the same rows, but with `k` packed
/// `[kh, kw, cout, cin]` (no padding), `cout_padded` unused, and `x` the unpadded images
/// `[n, h, w, cin]` read at `pad_top` and `pad_left` (taps outside the image count as zeros,
/// whatever the padding below and right). At most 512 taps `kh kw`.
void ck_conv2d_forward_channels(int isa, const ck_conv_args *args, int64_t row_start, int64_t row_count);

/// Kernel gradient: adds, for images `[image_start, image_start + image_count)`,
/// `sum over i, j of x[n, i sh + a dh, j sw + b dw, ci] dy[n, i, j, co]` to
/// `dk[(a kw + b) cin + ci, co]`, with `dk` laid out `[kh kw cin rounded up to 24, cout_padded]`
/// (see `ck_conv2d_kernel_grad_rows`): callers allocate `ck_conv2d_kernel_grad_rows(args) * cout_padded` floats.
void ck_conv2d_kernel_grad(int isa, const ck_conv_args *args, float *dk, int64_t image_start, int64_t image_count);

/// Rows the kernel-gradient buffer needs: `kh kw cin` rounded up to a multiple of 24 (the tap blocks).
int64_t ck_conv2d_kernel_grad_rows(const ck_conv_args *args);

/// `block[c] += sum over r < rows of m[r, c]` for `columns` 8 or 16, rows `columns` floats long,
/// each channel's terms added in row order (the bits of a scalar loop). With `relu_output`, the
/// terms are `relu_output[r, c] > 0 ? m[r, c] : 0`, also written to `masked[r, c]`.
void ck_channel_sums(int isa, const float *m, const float *relu_output, float *masked, int64_t rows, int64_t columns,
                     float *block);

#endif
