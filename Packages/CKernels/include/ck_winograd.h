#ifndef NEURITE_CK_WINOGRAD_H
#define NEURITE_CK_WINOGRAD_H

#include <stdint.h>

// Winograd F(4x4, 3x3) transforms for stride-1 3x3 convolutions of NHWC images (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016). Each output tile of 4x4 pixels
// reads a 6x6 input tile; its 36 transformed positions are multiplied by the transformed kernel
// as 36 independent matrix products (GEMMs, in Swift), then folded back into the 4x4 tile.
//
// Tiles are numbered over the batch: tile `t` is image `t / (tiles_h * tiles_w)`, tile row
// `(t / tiles_w) % tiles_h`, tile column `t % tiles_w`; tile row `i` covers output rows
// `4i ..< 4i + 4` and reads input rows `4i - pad_top ..< 4i - pad_top + 6` (rows outside the
// image read as zeros). Transformed buffers hold, per position `p` (0 ..< 36) at
// `p * position_stride`, one row of `c_padded` floats per tile of the range (channels padded to
// a multiple of 16 with zeros).

/// Input transform `B^T d B` of tiles `tile0 ..< tile0 + count` of the images `x`
/// `[N, h, w, c]` into `v` (see above; lanes `c ..< c_padded` of each row are zeroed).
void ck_winograd43_input(int isa, const float *x, int64_t h, int64_t w, int64_t c, int64_t pad_top,
                         int64_t pad_left, int64_t tiles_h, int64_t tiles_w, int64_t tile0, int64_t count,
                         int64_t c_padded, float *v, int64_t position_stride);

/// Output transform `A^T m A` of tiles `tile0 ..< tile0 + count` from `m` (rows of `c_padded`
/// floats, as above) into `y` `[N, oh, ow, c]`: the pixels of each tile inside `oh x ow`, plus
/// `bias[c]` then `post_bias[c]` (either may be NULL), then a relu when `relu` is not 0.
void ck_winograd43_output(int isa, const float *m, int64_t position_stride, int64_t tile0, int64_t count,
                          int64_t c_padded, int64_t c, int64_t tiles_h, int64_t tiles_w, int64_t oh, int64_t ow,
                          const float *bias, const float *post_bias, int relu, float *y);

/// The adjoint of the output transform, for the kernel gradient: `A d A^T` of the 4x4 tiles
/// `tile0 ..< tile0 + count` of the output gradient `dy` `[N, oh, ow, c]` (pixels outside
/// `oh x ow` read as zeros) into `m`, laid out as `v` above (lanes `c ..< c_padded` zeroed).
void ck_winograd43_output_adjoint(int isa, const float *dy, int64_t oh, int64_t ow, int64_t c, int64_t tiles_h,
                                  int64_t tiles_w, int64_t tile0, int64_t count, int64_t c_padded, float *m,
                                  int64_t position_stride);

#endif
