// Direct 2-D convolution kernels (ck_conv.h), written once over 16-lane vectors (ck_lanes.h) and
// compiled for each ISA path by CK_LANE_PATHS.
//
// Forward: a block of P adjacent output pixels times V vectors of 16 output channels is held in
// P*V accumulators; each kernel tap loads V weight vectors and P input scalars (broadcast) for
// P*V multiply-adds, so the weights are reused P times from registers. P and V are compile-time
// constants in each instantiation (CK_FORWARD_BLOCK), so the accumulators live in registers.
// Two shapes get blocks of their own along one output row: one input channel with column stride
// 1 (CK_FORWARD_ROW_BLOCK), and at most 8 output channels (8-lane vectors, CK_FORWARD_HALF_BLOCK).
// A store can add a bias after the sum and apply relu (a layer's bias-and-activation pass).
//
// Kernel gradient: a block of T taps (kh, kw, ci) times V vectors of output channels is held in
// T*V accumulators while the kernel walks every output pixel of one image; each pixel loads V
// gradient vectors and T input scalars. One image's output gradient stays in L2 across the
// tap blocks. At most 8 output channels: 8-lane vectors (CK_GRAD_HALF_BLOCK).
#pragma STDC FP_CONTRACT ON

#include "ck_conv.h"
#include "ck_lanes.h"
#include <stdlib.h>

/// Stores the first `count` (< 16) lanes of `v` at `p`.
#define CK_STORE_PARTIAL(p, v, count)                                          \
    do {                                                                       \
        float tmp_[CK_LANES];                                                  \
        CK_STORE(tmp_, (v));                                                   \
        memcpy((p), tmp_, (size_t)(count) * sizeof(float));                    \
    } while (0)

// ---------------------------------------------------------------- forward

/// The store of one output vector `r` (channels `cb + 16 v ...`) at `yp`: the epilogue first
/// (`post`, the post-bias padded to `cout_padded`, or NULL; then relu), then all 16 lanes, or the
/// lanes left before `cout`. The epilogue is the layer's bias-and-activation pass, same bits.
#define CK_STORE_OUTPUT(a, yp, r, cb, v, post, relu)                                              \
    do {                                                                                          \
        ck_lanes out_ = (r);                                                                      \
        if (post) out_ = out_ + CK_LOAD((post) + (cb) + 16 * (v));                               \
        if (relu) out_ = CK_SELECT(out_ < CK_SPLAT(0), CK_SPLAT(0), out_);                        \
        const int64_t left_ = (a)->cout - (cb) - 16 * (v);                                        \
        if (left_ >= CK_LANES) CK_STORE((yp) + 16 * (v), out_);                                   \
        else if (left_ > 0) CK_STORE_PARTIAL((yp) + 16 * (v), out_, left_);                       \
    } while (0)

/// Defines `NAME`: output pixels `ow0 ..< ow0 + P` of output row `oh` of image `img`, channel
/// vectors `cb / 16 ..< cb / 16 + V`. A macro, so P and V are literal constants: the
/// accumulator array has its exact size and the compiler keeps it in registers (an array sized
/// for the largest case, indexed by inlined constant arguments, was kept in memory instead).
#define CK_FORWARD_BLOCK(NAME, P, V)                                                              \
    CK_ALWAYS_INLINE void NAME(const ck_conv_args *a, const int64_t *offsets, int64_t taps,       \
                               const float *bias, int64_t q0, int64_t cb, const float *post,      \
                               int relu) {                                                        \
        ck_lanes acc[P][V];                                                                       \
        for (int v = 0; v < V; ++v) {                                                             \
            const ck_lanes init = CK_LOAD(bias + cb + 16 * v);                                    \
            for (int p = 0; p < P; ++p) acc[p][v] = init;                                         \
        }                                                                                         \
        const float *xb[P];                                                                       \
        for (int p = 0; p < P; ++p) xb[p] = pixel_window(a, q0 + p);                              \
        const int64_t cp = a->cout_padded;                                                        \
        const float *kp = a->k + cb;                                                              \
        for (int64_t t = 0; t < taps; ++t, kp += cp) {                                            \
            const int64_t off = offsets[t];                                                       \
            ck_lanes wv[V];                                                                       \
            for (int v = 0; v < V; ++v) wv[v] = CK_LOAD(kp + 16 * v);                             \
            for (int p = 0; p < P; ++p) {                                                         \
                const float xs = xb[p][off]; /* splatted by the multiply */                       \
                for (int v = 0; v < V; ++v) acc[p][v] = acc[p][v] + xs * wv[v];                   \
            }                                                                                     \
        }                                                                                         \
        for (int p = 0; p < P; ++p) {                                                             \
            float *yp = pixel_output(a, q0 + p) + cb;                                             \
            for (int v = 0; v < V; ++v) CK_STORE_OUTPUT(a, yp, acc[p][v], cb, v, post, relu);     \
        }                                                                                         \
    }

/// The input window's first element for output pixel `q` (counted over images, rows, columns).
CK_ALWAYS_INLINE const float *pixel_window(const ck_conv_args *a, int64_t q) {
    const int64_t per_image = a->oh * a->ow, n = q / per_image, rest = q - n * per_image;
    const int64_t oh = rest / a->ow, ow = rest - oh * a->ow;
    return a->x + ((n * a->h + oh * a->sh) * a->w + ow * a->sw) * a->cin;
}

/// Floats between adjacent output pixels of a row, and between output rows (counted over images
/// and rows): `y_pixel_stride` and `y_row_stride` when set, else contiguous (`cout`, `ow cout`).
#define CK_Y_PIXEL(a) ((a)->y_pixel_stride ? (a)->y_pixel_stride : (a)->cout)
#define CK_Y_ROW(a) ((a)->y_pixel_stride ? (a)->y_row_stride : (a)->ow * (a)->cout)

/// Where output pixel `q` (counted over images, rows, columns) is stored.
CK_ALWAYS_INLINE float *pixel_output(const ck_conv_args *a, int64_t q) {
    if (!a->y_pixel_stride) return a->y + q * a->cout;
    const int64_t r = q / a->ow;
    return a->y + r * a->y_row_stride + (q - r * a->ow) * a->y_pixel_stride;
}

CK_FORWARD_BLOCK(forward_6x4, 6, 4)
CK_FORWARD_BLOCK(forward_1x4, 1, 4)
CK_FORWARD_BLOCK(forward_4x3, 4, 3)
CK_FORWARD_BLOCK(forward_1x3, 1, 3)
CK_FORWARD_BLOCK(forward_6x2, 6, 2)
CK_FORWARD_BLOCK(forward_1x2, 1, 2)
CK_FORWARD_BLOCK(forward_8x1, 16, 1)
CK_FORWARD_BLOCK(forward_1x1, 1, 1)

/// Output pixels `q0 ..< q1` in blocks of P pixels (`BLOCK`), then single pixels (`SINGLE`).
/// Blocks run across row and image boundaries, so only the range's end has single pixels.
#define CK_FORWARD_PIXELS(a, q0, q1, cb, P, BLOCK, SINGLE)                                        \
    do {                                                                                          \
        int64_t q_ = (q0);                                                                        \
        for (; q_ + (P) <= (q1); q_ += (P)) BLOCK(a, offsets, taps, bias, q_, cb, post, relu);    \
        for (; q_ < (q1); ++q_) SINGLE(a, offsets, taps, bias, q_, cb, post, relu);               \
    } while (0)

// Unit pixel stride (one input channel, column stride 1: the first layer of an image model).
// The P pixels of a block then lie in one output row and their windows start one float apart,
// so a single pointer `xw` addresses every input scalar (`xw[offsets[t] + p]`, a constant
// displacement per p) where the blocks above keep P window pointers (spilled to the stack for
// P = 16) and divide to find each pixel's image and row. Profile of the course CNN's training
// (AVX-512, before): 21% of the cycles in the forward kernel, about a third of them on those
// divisions and reloaded pointers. One vector of 16 output channels per block: AVX-512 holds
// 16 pixels (16 zmm accumulators + 1 of weights; per tap 1 weight load and 16 broadcast FMAs;
// 24 pixels were slower: clang no longer unrolled the pixel loop and kept the sums in memory),
// then blocks of 8; AVX2 and NEON 6 (12 ymm or 24 q). A row's last block, when fewer than P
// pixels are left, is moved back to end at the row's end: it recomputes some pixels, with the
// same taps in the same order, so it rewrites the same bits. The course CNN's 28x28x1 -> 24x24x16
// layer, batch 128, one thread (a C timing loop over ck_conv2d_forward, best of 300): 798 -> 609 us
// on AVX-512, 695 -> 612 us on AVX2 (97 GFLOP/s; the FMA probe's peak is about 117).
#define CK_FORWARD_ROW_BLOCK(NAME, P)                                                             \
    CK_ALWAYS_INLINE void NAME(const ck_conv_args *a, const int64_t *offsets, int64_t taps,       \
                               const float *bias, const float *xw, float *yw, int64_t cb,         \
                               const float *post, int relu) {                                     \
        ck_lanes acc[P];                                                                          \
        const ck_lanes init = CK_LOAD(bias + cb);                                                 \
        for (int p = 0; p < P; ++p) acc[p] = init;                                                \
        const int64_t cp = a->cout_padded;                                                        \
        const float *kp = a->k + cb;                                                              \
        for (int64_t t = 0; t < taps; ++t, kp += cp) {                                            \
            const float *xt = xw + offsets[t];                                                    \
            const ck_lanes wv = CK_LOAD(kp);                                                      \
            for (int p = 0; p < P; ++p) acc[p] = acc[p] + xt[p] * wv;                             \
        }                                                                                         \
        for (int p = 0; p < P; ++p) CK_STORE_OUTPUT(a, yw + p * CK_Y_PIXEL(a) + cb, acc[p], cb, 0, post, relu); \
    }

CK_FORWARD_ROW_BLOCK(forward_row_16, 16)
CK_FORWARD_ROW_BLOCK(forward_row_8, 8)
CK_FORWARD_ROW_BLOCK(forward_row_6, 6)
CK_FORWARD_ROW_BLOCK(forward_row_1, 1)

/// Output rows `row_start ..< row_start + row_count` with unit pixel stride (`a->cin * a->sw == 1`):
/// blocks of `BIG` (P = PB) pixels along each row, then of `SMALL` (P = PS), the last one moved back
/// to end at the row's end; rows narrower than PS go pixel by pixel.
#define CK_FORWARD_UNIT_ROWS(a, row_start, row_count, PB, BIG, PS, SMALL)                          \
    do {                                                                                          \
        const int64_t ow_ = (a)->ow;                                                              \
        for (int64_t r_ = (row_start); r_ < (row_start) + (row_count); ++r_) {                    \
            const int64_t n_ = r_ / (a)->oh, oh_ = r_ - n_ * (a)->oh;                             \
            const float *xrow_ = (a)->x + (n_ * (a)->h + oh_ * (a)->sh) * (a)->w;                 \
            float *yrow_ = (a)->y + r_ * CK_Y_ROW(a);                                             \
            for (int64_t cb_ = 0; cb_ < (a)->cout_padded; cb_ += 16) {                            \
                int64_t j_ = 0;                                                                   \
                for (; j_ + (PB) <= ow_; j_ += (PB))                                              \
                    BIG(a, offsets, taps, bias, xrow_ + j_, yrow_ + j_ * CK_Y_PIXEL(a), cb_, post, relu); \
                for (; j_ + (PS) <= ow_; j_ += (PS))                                              \
                    SMALL(a, offsets, taps, bias, xrow_ + j_, yrow_ + j_ * CK_Y_PIXEL(a), cb_, post, relu); \
                if (j_ < ow_ && ow_ >= (PS)) {                                                    \
                    j_ = ow_ - (PS);                                                              \
                    SMALL(a, offsets, taps, bias, xrow_ + j_, yrow_ + j_ * CK_Y_PIXEL(a), cb_, post, relu); \
                } else {                                                                          \
                    for (; j_ < ow_; ++j_)                                                        \
                        forward_row_1(a, offsets, taps, bias, xrow_ + j_, yrow_ + j_ * CK_Y_PIXEL(a), cb_, post, relu); \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    } while (0)

// One vector of 9 to 16 output channels from more than one input channel (a transposed
// convolution's phases, 8 -> 16; the input gradient of a convolution to 8 channels, 8 -> 16): P
// pixels along one output row, `ps` floats apart (cin * sw), so one window pointer per block and
// no per-pixel division for its image and row, as the pixel blocks (forward_8x1) need: with the
// few taps of a phase (8 to 32) those divisions, done twice per pixel for the window and the
// store, cost as much as the multiply-adds. The same taps in the same order: the same bits.
// AVX-512: 16 pixels, then 7 (a 14-wide row in two blocks, 12 in two that overlap by 2); AVX2
// and NEON: 6 (12 ymm or 24 q of accumulators). `ps` 8 and 16 are passed as literals, so the
// P inputs are constant displacements from one pointer.
#define CK_FORWARD_STRIDED_BLOCK(NAME, P)                                                         \
    CK_ALWAYS_INLINE void NAME(const ck_conv_args *a, const int64_t *offsets, int64_t taps,       \
                               const float *bias, const float *xw, int64_t ps, float *yw,         \
                               int64_t yps, const float *post, int relu) {                        \
        ck_lanes acc[P];                                                                          \
        const ck_lanes init = CK_LOAD(bias);                                                      \
        for (int p = 0; p < P; ++p) acc[p] = init;                                                \
        const int64_t cp = a->cout_padded;                                                        \
        const float *kp = a->k;                                                                   \
        for (int64_t t = 0; t < taps; ++t, kp += cp) {                                            \
            const float *xt = xw + offsets[t];                                                    \
            const ck_lanes wv = CK_LOAD(kp);                                                      \
            for (int p = 0; p < P; ++p) acc[p] = acc[p] + xt[p * ps] * wv;                        \
        }                                                                                         \
        for (int p = 0; p < P; ++p) CK_STORE_OUTPUT(a, yw + p * yps, acc[p], 0, 0, post, relu);   \
    }

CK_FORWARD_STRIDED_BLOCK(forward_strided_16, 16)
CK_FORWARD_STRIDED_BLOCK(forward_strided_7, 7)
CK_FORWARD_STRIDED_BLOCK(forward_strided_6, 6)
CK_FORWARD_STRIDED_BLOCK(forward_strided_1, 1)

/// One output row `r` with the strided blocks: `BIG` (PB pixels), then `SMALL` (PS), the last
/// one moved back to end at the row's end (it rewrites the same bits); rows narrower than PS go
/// pixel by pixel. `ps` is a literal at each use.
#define CK_FORWARD_STRIDED_ROW(a, r, ps, PB, BIG, PS, SMALL)                                      \
    do {                                                                                          \
        const int64_t ow_ = (a)->ow, yps_ = CK_Y_PIXEL(a);                                        \
        const int64_t n_ = (r) / (a)->oh, oh_ = (r) - n_ * (a)->oh;                               \
        const float *xrow_ = (a)->x + (n_ * (a)->h + oh_ * (a)->sh) * (a)->w * (a)->cin;          \
        float *yrow_ = (a)->y + (r) * CK_Y_ROW(a);                                                \
        int64_t j_ = 0;                                                                           \
        for (; j_ + (PB) <= ow_; j_ += (PB))                                                      \
            BIG(a, offsets, taps, bias, xrow_ + j_ * (ps), (ps), yrow_ + j_ * yps_, yps_, post, relu); \
        for (; j_ + (PS) <= ow_; j_ += (PS))                                                      \
            SMALL(a, offsets, taps, bias, xrow_ + j_ * (ps), (ps), yrow_ + j_ * yps_, yps_, post, relu); \
        if (j_ < ow_ && ow_ >= (PS)) {                                                            \
            j_ = ow_ - (PS);                                                                      \
            SMALL(a, offsets, taps, bias, xrow_ + j_ * (ps), (ps), yrow_ + j_ * yps_, yps_, post, relu); \
        } else {                                                                                  \
            for (; j_ < ow_; ++j_)                                                                \
                forward_strided_1(a, offsets, taps, bias, xrow_ + j_ * (ps), (ps), yrow_ + j_ * yps_, yps_, post, relu); \
        }                                                                                         \
    } while (0)

/// Output rows `row_start ..< row_start + row_count` with the strided blocks.
#define CK_FORWARD_STRIDED_ROWS(a, row_start, row_count, PB, BIG, PS, SMALL)                      \
    do {                                                                                          \
        const int64_t ps__ = (a)->cin * (a)->sw;                                                  \
        for (int64_t r__ = (row_start); r__ < (row_start) + (row_count); ++r__) {                 \
            if (ps__ == 8) CK_FORWARD_STRIDED_ROW(a, r__, 8, PB, BIG, PS, SMALL);                 \
            else if (ps__ == 16) CK_FORWARD_STRIDED_ROW(a, r__, 16, PB, BIG, PS, SMALL);          \
            else CK_FORWARD_STRIDED_ROW(a, r__, ps__, PB, BIG, PS, SMALL);                        \
        }                                                                                         \
    } while (0)

// Eight output channels or fewer (the course CNN's second convolution has 8): a 16-lane vector
// would be half padding, so these blocks hold 8-lane vectors (one ymm on AVX-512 and AVX2, two q
// on NEON) and do half the multiply-adds. P pixels along one output row, `ps` floats apart
// (cin * sw), so there is no per-pixel division and one window pointer per block. The sums run
// over the taps in the same order as every other block: the same bits. P = 6: 6 accumulators,
// 6 broadcasts and a weight vector fit AVX2's 16 ymm (P = 8 spilled a broadcast every tap). The
// course CNN's 12x12x16 -> 11x11x8 layer, batch 128, one thread: 358 -> 210 us on AVX-512 and
// 332 -> 210 us on AVX2 (a C timing loop over ck_conv2d_forward, best of 300; the 16-lane blocks
// before).
typedef float ck_lanes8c __attribute__((vector_size(32)));
typedef float ck_lanes8c_u __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t ck_lanes8c_i __attribute__((vector_size(32)));

#define CK_FORWARD_HALF_BLOCK(NAME, P)                                                            \
    CK_ALWAYS_INLINE void NAME(const ck_conv_args *a, const int64_t *offsets, int64_t taps,       \
                               const float *bias, const float *xw, int64_t ps, float *yw,         \
                               const float *post, int relu) {                                     \
        ck_lanes8c acc[P];                                                                        \
        const ck_lanes8c init = *(const ck_lanes8c_u *)bias;                                      \
        for (int p = 0; p < P; ++p) acc[p] = init;                                                \
        const int64_t cp = a->cout_padded;                                                        \
        const float *kp = a->k;                                                                   \
        for (int64_t t = 0; t < taps; ++t, kp += cp) {                                            \
            const float *xt = xw + offsets[t];                                                    \
            const ck_lanes8c wv = *(const ck_lanes8c_u *)kp;                                      \
            for (int p = 0; p < P; ++p) acc[p] = acc[p] + xt[p * ps] * wv;                        \
        }                                                                                         \
        for (int p = 0; p < P; ++p) {                                                             \
            ck_lanes8c out = acc[p];                                                              \
            if (post) out = out + *(const ck_lanes8c_u *)post;                                    \
            if (relu) out = (ck_lanes8c)(~(out < 0) & (ck_lanes8c_i)out); /* v < 0 ? 0 : v */ \
            float *yp = yw + p * CK_Y_PIXEL(a);                                                   \
            if (a->cout == 8) *(ck_lanes8c_u *)yp = out;                                          \
            else {                                                                                \
                float tmp_[8];                                                                    \
                *(ck_lanes8c_u *)tmp_ = out;                                                      \
                memcpy(yp, tmp_, (size_t)a->cout * sizeof(float));                                \
            }                                                                                     \
        }                                                                                         \
    }

CK_FORWARD_HALF_BLOCK(forward_half_6, 6)
CK_FORWARD_HALF_BLOCK(forward_half_1, 1)

/// Output rows `row_start ..< row_start + row_count` for `cout <= 8`: blocks of 6 pixels along
/// each row, the last one moved back to end at the row's end; rows narrower than 6 pixel by pixel.
CK_ALWAYS_INLINE void forward_half_rows(const ck_conv_args *a, const int64_t *offsets, int64_t taps,
                                        const float *bias, const float *post, int relu,
                                        int64_t row_start, int64_t row_count) {
    const int64_t ow = a->ow, ps = a->cin * a->sw;
    for (int64_t r = row_start; r < row_start + row_count; ++r) {
        const int64_t n = r / a->oh, oh = r - n * a->oh;
        const float *xrow = a->x + (n * a->h + oh * a->sh) * a->w * a->cin;
        float *yrow = a->y + r * CK_Y_ROW(a);
        const int64_t yps = CK_Y_PIXEL(a);
        int64_t j = 0;
        for (; j + 6 <= ow; j += 6) forward_half_6(a, offsets, taps, bias, xrow + j * ps, ps, yrow + j * yps, post, relu);
        if (j < ow && ow >= 6) {
            j = ow - 6;
            forward_half_6(a, offsets, taps, bias, xrow + j * ps, ps, yrow + j * yps, post, relu);
        } else {
            for (; j < ow; ++j) forward_half_1(a, offsets, taps, bias, xrow + j * ps, ps, yrow + j * yps, post, relu);
        }
    }
}

/// Offsets, within an input image, of every tap `(kh, kw, ci)` of the window at output (0, 0),
/// in the kernel's row order; NULL when out of memory.
static int64_t *tap_offsets(const ck_conv_args *a, int64_t rows, int64_t *stack, int64_t stack_count) {
    const int64_t taps = a->kh * a->kw * a->cin;
    int64_t *offsets = rows <= stack_count ? stack : (int64_t *)malloc((size_t)rows * sizeof(int64_t));
    if (!offsets) return NULL;
    for (int64_t t = 0; t < rows; ++t) {
        if (t >= taps) { offsets[t] = 0; continue; }
        const int64_t ci = t % a->cin, kw = (t / a->cin) % a->kw, kh = t / (a->cin * a->kw);
        offsets[t] = (kh * a->dh * a->w + kw * a->dw) * a->cin + ci;
    }
    return offsets;
}

// Narrow blocking, for the paths with fewer registers per 16-lane vector than AVX-512 (one zmm).
// AVX2: a vector is two ymm registers, so the blocks above (6 x 4 vectors = 48 ymm of accumulators
// for 16 ymm registers) spill; 6 pixels x 1 vector = 12 ymm accumulators + 2 ymm of weights + a
// broadcast (15 of 16). Per tap: 2 weight loads and 6 broadcasts for 12 FMAs.
// NEON: a vector is four q registers, so the blocks above (96 q of accumulators) would spill.
// Instead: 6 pixels x 1 vector of 16 channels = 24 q accumulators + 4 q of weights (28 of 32).
// Per tap: 4 weight loads (q) and 6 input scalars, for 24 fmla (by element): 0.42 loads per FMA.
// Paper estimate, not measured: FMA-bound at 2 FMA pipes (Graviton2: 16 flops per cycle,
// 40 GFLOP/s at 2.5 GHz) and close to load-bound at 4 (M1, Graviton3: 10 loads per 6 cycles against
// 3 load ports); expect 60-70% of peak where cin is large enough to amortise the per-pixel window
// set-up. Each output sums its taps in the same order as the portable body, so every path gives the
// same bits whatever its blocking.
CK_FORWARD_BLOCK(forward_narrow_6x1, 6, 1)

/// Output rows `row_start ..< row_start + row_count`. `narrow` (a literal at each call below, so
/// the test folds away) picks the narrow blocks over the ones sized for AVX-512's 32 registers.
CK_ALWAYS_INLINE void forward_rows(const ck_conv_args *args, int64_t row_start, int64_t row_count, int narrow) {
    const ck_conv_args a = *args;
    const int64_t taps = a.kh * a.kw * a.cin;
    int64_t stack_offsets[512];
    int64_t *offsets = tap_offsets(&a, taps, stack_offsets, 512);
    float *bias = (float *)calloc((size_t)a.cout_padded, sizeof(float));
    float *post = a.post_bias ? (float *)calloc((size_t)a.cout_padded, sizeof(float)) : NULL;
    const int relu = a.relu != 0;
    // Out of memory for a few kilobytes: stop, as a Swift allocation would, rather than leave
    // the output unwritten.
    if (!offsets || !bias || (a.post_bias && !post)) abort();
    if (a.bias) memcpy(bias, a.bias, (size_t)a.cout * sizeof(float));
    if (post) memcpy(post, a.post_bias, (size_t)a.cout * sizeof(float));
    const int64_t q0 = row_start * a.ow, q1 = (row_start + row_count) * a.ow;
    if (a.cout <= 8) {
        forward_half_rows(&a, offsets, taps, bias, post, relu, row_start, row_count);
    } else if (a.cin * a.sw == 1 && (narrow || a.cout_padded == 16)) {
        // The rows above; on AVX-512 only for one vector of channels, where the 6 x 2 ... 6 x 4
        // blocks below reuse each broadcast input across more weight vectors.
        if (narrow) CK_FORWARD_UNIT_ROWS(&a, row_start, row_count, 6, forward_row_6, 6, forward_row_6);
        else CK_FORWARD_UNIT_ROWS(&a, row_start, row_count, 16, forward_row_16, 8, forward_row_8);
    } else if (a.cout_padded == 16) {
        if (narrow) CK_FORWARD_STRIDED_ROWS(&a, row_start, row_count, 6, forward_strided_6, 6, forward_strided_6);
        else CK_FORWARD_STRIDED_ROWS(&a, row_start, row_count, 16, forward_strided_16, 7, forward_strided_7);
    } else if (narrow) {
        for (int64_t cb = 0; cb < a.cout_padded; cb += 16)
            CK_FORWARD_PIXELS(&a, q0, q1, cb, 6, forward_narrow_6x1, forward_1x1);
    } else {
        int64_t cb = 0;
        // Four vectors (64 channels) at a time, then what is left in one narrower pass.
        for (; cb + 64 <= a.cout_padded; cb += 64) CK_FORWARD_PIXELS(&a, q0, q1, cb, 6, forward_6x4, forward_1x4);
        switch ((a.cout_padded - cb) / 16) {
        case 3: CK_FORWARD_PIXELS(&a, q0, q1, cb, 4, forward_4x3, forward_1x3); break;
        case 2: CK_FORWARD_PIXELS(&a, q0, q1, cb, 6, forward_6x2, forward_1x2); break;
        case 1: CK_FORWARD_PIXELS(&a, q0, q1, cb, 16, forward_8x1, forward_1x1); break;
        default: break;
        }
    }
    if (offsets != stack_offsets) free(offsets);
    free(bias);
    free(post);
}

CK_ALWAYS_INLINE void forward_run(const ck_conv_args *args, int64_t row_start, int64_t row_count) {
    forward_rows(args, row_start, row_count, 0);
}

CK_ALWAYS_INLINE void forward_run_narrow(const ck_conv_args *args, int64_t row_start, int64_t row_count) {
    forward_rows(args, row_start, row_count, 1);
}

CK_LANE_PATHS_NARROW(conv_forward, forward_run, forward_run_narrow,
                   (const ck_conv_args *args, int64_t start, int64_t count), (args, start, count))

void ck_conv2d_forward(int isa, const ck_conv_args *args, int64_t row_start, int64_t row_count) {
    CK_LANE_DISPATCH(isa, conv_forward, (args, row_start, row_count))
}

// ---------------------------------------------------------------- kernel gradient

/// The tap blocks compiled for each count V of channel vectors (T * V accumulators stay within
/// 24 registers), largest first; `tap_block` picks the one that pads the tap count least.
static const int64_t tap_blocks[4][3] = {{24, 16, 9}, {12, 9, 0}, {8, 0, 0}, {6, 0, 0}};

/// The tap block for `vectors` (1 to 4) channel vectors and `taps` taps.
static int64_t tap_block(int64_t vectors, int64_t taps) {
    const int64_t *choices = tap_blocks[vectors - 1];
    int64_t best = choices[0];
    for (int i = 1; i < 3 && choices[i]; ++i) {
        const int64_t t = choices[i];
        if ((taps + t - 1) / t * t < (taps + best - 1) / best * best) best = t;
    }
    return best;
}

/// `taps` rounded up to a multiple of `block`.
static int64_t padded_taps(int64_t taps, int64_t block) { return (taps + block - 1) / block * block; }

/// Rows of the gradient buffer: the tap count padded for the widest pass, and for the narrower
/// pass over the remaining channels when `cout_padded` is not a multiple of 64.
int64_t ck_conv2d_kernel_grad_rows(const ck_conv_args *a) {
    const int64_t taps = a->kh * a->kw * a->cin;
    int64_t rows = 0;
    if (a->cout_padded >= 64) rows = padded_taps(taps, tap_block(4, taps));
    const int64_t rest = (a->cout_padded % 64) / 16;
    if (rest > 0) {
        const int64_t r = padded_taps(taps, tap_block(rest, taps));
        if (r > rows) rows = r;
    }
    return rows;
}

/// Defines `NAME`: taps `offsets[0 ..< T]` (offsets into an input pixel's window) of one image,
/// channel vectors `cb / 16 ..< cb / 16 + V`, summed over every output pixel and added to `dk`
/// rows `0 ..< T`. A macro for the reason given at CK_FORWARD_BLOCK.
#define CK_GRAD_BLOCK(NAME, T, V)                                                                 \
    CK_ALWAYS_INLINE void NAME(const ck_conv_args *a, const float *img, const float *dyimg,       \
                               const int64_t *offsets, float *dk, int64_t cb) {                   \
        ck_lanes acc[T][V];                                                                       \
        for (int t = 0; t < T; ++t)                                                               \
            for (int v = 0; v < V; ++v) acc[t][v] = CK_SPLAT(0);                                  \
        const int64_t cin = a->cin, cp = a->cout_padded;                                          \
        for (int64_t oh = 0; oh < a->oh; ++oh) {                                                  \
            const float *xrow = img + oh * a->sh * a->w * cin;                                    \
            const float *dyrow = dyimg + oh * a->ow * cp + cb;                                    \
            for (int64_t ow = 0; ow < a->ow; ++ow) {                                              \
                const float *xp = xrow + ow * a->sw * cin;                                        \
                ck_lanes g[V];                                                                    \
                for (int v = 0; v < V; ++v) g[v] = CK_LOAD(dyrow + ow * cp + 16 * v);             \
                for (int t = 0; t < T; ++t) {                                                     \
                    const float xs = xp[offsets[t]];                                              \
                    for (int v = 0; v < V; ++v) acc[t][v] = acc[t][v] + xs * g[v];               \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        for (int t = 0; t < T; ++t)                                                               \
            for (int v = 0; v < V; ++v) {                                                         \
                float *d = dk + t * cp + cb + 16 * v;                                             \
                CK_STORE(d, CK_LOAD(d) + acc[t][v]);                                              \
            }                                                                                     \
    }

CK_GRAD_BLOCK(grad_24x1, 24, 1)
CK_GRAD_BLOCK(grad_16x1, 16, 1)
CK_GRAD_BLOCK(grad_9x1, 9, 1)
CK_GRAD_BLOCK(grad_12x2, 12, 2)
CK_GRAD_BLOCK(grad_9x2, 9, 2)
CK_GRAD_BLOCK(grad_8x3, 8, 3)
CK_GRAD_BLOCK(grad_6x4, 6, 4)

/// Every tap block of one image for one group of channel vectors.
#define CK_GRAD_PASS(a, img, dyimg, offsets, taps, dk, cb, T, BLOCK)                              \
    for (int64_t t0_ = 0; t0_ < (taps); t0_ += (T))                                               \
        BLOCK(a, img, dyimg, (offsets) + t0_, (dk) + t0_ * (a)->cout_padded, cb)

// Narrow blocking for the kernel gradient (AVX2 and NEON), for the reason given at
// forward_run_narrow: 6 taps x 1 vector of 16 channels = 12 ymm (AVX2) or 24 q (NEON)
// accumulators + 2 ymm or 4 q of output gradient. NEON, per output pixel: 4 q
// loads and 6 input scalars for 24 fmla, the same ratio and estimate as the forward. The taps
// past the last multiple of 6 go one at a time; the padding rows of `dk` are not written.
// Each sum runs over the pixels in the portable body's order, so the two give the same bits.
CK_GRAD_BLOCK(grad_narrow_6x1, 6, 1)
CK_GRAD_BLOCK(grad_narrow_1x1, 1, 1)

/// Defines `NAME` for eight output channels or fewer: as CK_GRAD_BLOCK with one 8-lane vector
/// (lanes 0-7 of each `dk` row; the rest stay as they were). Half the multiply-adds of a 16-lane
/// block, same order of the sums, so the same bits. T = 8 keeps the 8 accumulators, the 8 tap
/// offsets and the gradient vector in registers on AVX2 (16 ymm, 16 general registers). The
/// course CNN's 12x12x16 -> 11x11x8 kernel gradient, batch 128, one thread: 270 -> 130 us on
/// AVX-512, 318 -> 125 us on AVX2 (C timing loop, best of 100).
#define CK_GRAD_HALF_BLOCK(NAME, T)                                                               \
    CK_ALWAYS_INLINE void NAME(const ck_conv_args *a, const float *img, const float *dyimg,       \
                               const int64_t *offsets, float *dk) {                               \
        ck_lanes8c acc[T];                                                                        \
        for (int t = 0; t < T; ++t) acc[t] = (ck_lanes8c){0};                                     \
        const int64_t cin = a->cin, cp = a->cout_padded;                                          \
        for (int64_t oh = 0; oh < a->oh; ++oh) {                                                  \
            const float *xrow = img + oh * a->sh * a->w * cin;                                    \
            const float *dyrow = dyimg + oh * a->ow * cp;                                         \
            for (int64_t ow = 0; ow < a->ow; ++ow) {                                              \
                const float *xp = xrow + ow * a->sw * cin;                                        \
                const ck_lanes8c g = *(const ck_lanes8c_u *)(dyrow + ow * cp);                    \
                for (int t = 0; t < T; ++t) acc[t] = acc[t] + xp[offsets[t]] * g;                 \
            }                                                                                     \
        }                                                                                         \
        for (int t = 0; t < T; ++t) {                                                             \
            float *d = dk + t * cp;                                                               \
            *(ck_lanes8c_u *)d = *(const ck_lanes8c_u *)d + acc[t];                               \
        }                                                                                         \
    }

CK_GRAD_HALF_BLOCK(grad_half_8, 8)
CK_GRAD_HALF_BLOCK(grad_half_1, 1)

/// The kernel gradient of images `image_start ..< image_start + image_count`, added to `dk`;
/// `narrow` as in forward_rows.
CK_ALWAYS_INLINE void grad_images(const ck_conv_args *args, float *dk, int64_t image_start, int64_t image_count,
                                  int narrow) {
    const ck_conv_args a = *args;
    const int64_t taps = a.kh * a.kw * a.cin, rows = ck_conv2d_kernel_grad_rows(&a);
    // The padding taps up to `rows` read the window's first input (always in bounds) and land in
    // rows the caller ignores.
    int64_t stack_offsets[512];
    int64_t *offsets = tap_offsets(&a, rows, stack_offsets, 512);
    if (!offsets) abort();  // as above: never a silently unwritten gradient
    const int64_t image_size = a.h * a.w * a.cin, dy_size = a.oh * a.ow * a.cout_padded;
    const int64_t whole = taps / 6 * 6;
    for (int64_t n = image_start; n < image_start + image_count; ++n) {
        const float *img = a.x + n * image_size, *dyimg = a.dy + n * dy_size;
        if (a.cout <= 8) {
            const int64_t eights = taps / 8 * 8;
            for (int64_t t0 = 0; t0 < eights; t0 += 8) grad_half_8(&a, img, dyimg, offsets + t0, dk + t0 * a.cout_padded);
            for (int64_t t = eights; t < taps; ++t) grad_half_1(&a, img, dyimg, offsets + t, dk + t * a.cout_padded);
            continue;
        }
        if (narrow) {
            for (int64_t cb = 0; cb < a.cout_padded; cb += 16) {
                for (int64_t t0 = 0; t0 < whole; t0 += 6)
                    grad_narrow_6x1(&a, img, dyimg, offsets + t0, dk + t0 * a.cout_padded, cb);
                for (int64_t t = whole; t < taps; ++t)
                    grad_narrow_1x1(&a, img, dyimg, offsets + t, dk + t * a.cout_padded, cb);
            }
            continue;
        }
        int64_t cb = 0;
        for (; cb + 64 <= a.cout_padded; cb += 64) CK_GRAD_PASS(&a, img, dyimg, offsets, taps, dk, cb, 6, grad_6x4);
        switch ((a.cout_padded - cb) / 16) {
        case 3: CK_GRAD_PASS(&a, img, dyimg, offsets, taps, dk, cb, 8, grad_8x3); break;
        case 2:
            if (tap_block(2, taps) == 12) CK_GRAD_PASS(&a, img, dyimg, offsets, taps, dk, cb, 12, grad_12x2);
            else CK_GRAD_PASS(&a, img, dyimg, offsets, taps, dk, cb, 9, grad_9x2);
            break;
        case 1:
            switch (tap_block(1, taps)) {
            case 24: CK_GRAD_PASS(&a, img, dyimg, offsets, taps, dk, cb, 24, grad_24x1); break;
            case 16: CK_GRAD_PASS(&a, img, dyimg, offsets, taps, dk, cb, 16, grad_16x1); break;
            default: CK_GRAD_PASS(&a, img, dyimg, offsets, taps, dk, cb, 9, grad_9x1); break;
            }
            break;
        default: break;
        }
    }
    if (offsets != stack_offsets) free(offsets);
}

CK_ALWAYS_INLINE void grad_run(const ck_conv_args *args, float *dk, int64_t image_start, int64_t image_count) {
    grad_images(args, dk, image_start, image_count, 0);
}

CK_ALWAYS_INLINE void grad_run_narrow(const ck_conv_args *args, float *dk, int64_t image_start, int64_t image_count) {
    grad_images(args, dk, image_start, image_count, 1);
}

CK_LANE_PATHS_NARROW(conv_grad, grad_run, grad_run_narrow,
                   (const ck_conv_args *args, float *dk, int64_t start, int64_t count), (args, dk, start, count))

void ck_conv2d_kernel_grad(int isa, const ck_conv_args *args, float *dk, int64_t image_start, int64_t image_count) {
    CK_LANE_DISPATCH(isa, conv_grad, (args, dk, image_start, image_count))
}

// ---------------------------------------------------------------- forward over input channels

// Convolutions to 1, 2, 4 or 8 output channels from a multiple of 8 input channels (a decoder's
// last layer, 16 -> 1; the input gradient of a strided transposed convolution, 16 -> 8 and 8 -> 8
// with stride 2). The blocks above vectorise over output channels, so one output channel fills
// 1 lane of 16 and each tap broadcasts a scalar input for a single multiply-add. Here the lanes run
// over the input channels instead: an accumulator per (pixel, output channel) gathers
// `x[pixel + tap, ci] * k[tap, co, ci]` lane by lane over the taps, with every lane busy; then a
// butterfly of shuffles and adds (4 levels for 16 lanes, 3 for 8) turns the P * C = L
// accumulators of a block of P pixels x C channels into one vector whose lane `p C + c` is
// accumulator (p, c)'s sum: exactly the block's P * C consecutive outputs, stored at once with the
// epilogue. Per tap and lane block: P input loads and C kernel loads for P * C multiply-adds.
// AVX-512 (and the portable path) use 16 lanes when Cin is a multiple of 16: 16 zmm accumulators,
// at most 8 of kernel and 2 of input (26 of 32). AVX2 and NEON use 8 lanes (the narrow instance,
// `ck_lanes8c`: one ymm, two q): 8 accumulators, so with C = 8 a tap's kernel vectors come from
// memory as FMA operands. The kernel is packed `[kh, kw, cout, cin]` (see ck_conv.h). Each output
// is the same tree of sums in every block shape (a lone pixel pads the butterfly with zeros), so
// the split of rows over threads never changes its bits; lane counts differ between the paths,
// so the paths differ in the last bits (each is checked against a Float64 reference).

/// `out[i]` = sum of the lanes of `a[i]`, for 16 accumulators of 16 lanes.
CK_ALWAYS_INLINE void dot_reduce16(const ck_lanes *a, ck_lanes *out) {
    ck_lanes s[8], t[4], u[2];
    for (int i = 0; i < 8; ++i)
        s[i] = __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
             + __builtin_shufflevector(a[2 * i], a[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int i = 0; i < 4; ++i)
        t[i] = __builtin_shufflevector(s[2 * i], s[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27)
             + __builtin_shufflevector(s[2 * i], s[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    for (int i = 0; i < 2; ++i)
        u[i] = __builtin_shufflevector(t[2 * i], t[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29)
             + __builtin_shufflevector(t[2 * i], t[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    *out = __builtin_shufflevector(u[0], u[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
         + __builtin_shufflevector(u[0], u[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/// `out[i]` = sum of the lanes of `a[i]`, for 8 accumulators of 8 lanes.
CK_ALWAYS_INLINE void dot_reduce8(const ck_lanes8c *a, ck_lanes8c *out) {
    ck_lanes8c s[4], t[2];
    for (int i = 0; i < 4; ++i)
        s[i] = __builtin_shufflevector(a[2 * i], a[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11)
             + __builtin_shufflevector(a[2 * i], a[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15);
    for (int i = 0; i < 2; ++i)
        t[i] = __builtin_shufflevector(s[2 * i], s[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13)
             + __builtin_shufflevector(s[2 * i], s[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15);
    *out = __builtin_shufflevector(t[0], t[1], 0, 2, 4, 6, 8, 10, 12, 14)
         + __builtin_shufflevector(t[0], t[1], 1, 3, 5, 7, 9, 11, 13, 15);
}

/// Defines `NAME`: the sums of P pixels (`ps` floats apart from `xw`) times C = cout output
/// channels over `taps` spatial taps, into `out` (lane `p C + c`; lanes past P * C are zero).
/// VT is the vector type of L lanes, VTU its unaligned twin, REDUCE the butterfly for L.
#define CK_DOT_BLOCK(NAME, VT, VTU, L, REDUCE, P, C)                                              \
    CK_ALWAYS_INLINE void NAME(const ck_conv_args *a, const int64_t *offsets, const int64_t *koffsets, \
                               int64_t taps, const float *xw, int64_t ps, VT *out) {              \
        VT acc[L];                                                                                \
        for (int i = 0; i < L; ++i) acc[i] = (VT){0};                                             \
        const int64_t cin = a->cin;                                                               \
        for (int64_t t = 0; t < taps; ++t) {                                                      \
            const float *xt = xw + offsets[t], *kp = a->k + koffsets[t];                          \
            for (int64_t v = 0; v < cin; v += (L)) {                                              \
                VT xv[P];                                                                         \
                for (int p = 0; p < (P); ++p) xv[p] = *(const VTU *)(xt + p * ps + v);            \
                for (int c = 0; c < (C); ++c) {                                                   \
                    const VT kv = *(const VTU *)(kp + c * cin + v);                               \
                    for (int p = 0; p < (P); ++p) acc[p * (C) + c] = acc[p * (C) + c] + xv[p] * kv; \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        REDUCE(acc, out);                                                                         \
    }

CK_DOT_BLOCK(dot16_16x1, ck_lanes, ck_lanes_u, 16, dot_reduce16, 16, 1)
CK_DOT_BLOCK(dot16_8x2, ck_lanes, ck_lanes_u, 16, dot_reduce16, 8, 2)
CK_DOT_BLOCK(dot16_4x4, ck_lanes, ck_lanes_u, 16, dot_reduce16, 4, 4)
CK_DOT_BLOCK(dot16_2x8, ck_lanes, ck_lanes_u, 16, dot_reduce16, 2, 8)
CK_DOT_BLOCK(dot16_1x1, ck_lanes, ck_lanes_u, 16, dot_reduce16, 1, 1)
CK_DOT_BLOCK(dot16_1x2, ck_lanes, ck_lanes_u, 16, dot_reduce16, 1, 2)
CK_DOT_BLOCK(dot16_1x4, ck_lanes, ck_lanes_u, 16, dot_reduce16, 1, 4)
CK_DOT_BLOCK(dot16_1x8, ck_lanes, ck_lanes_u, 16, dot_reduce16, 1, 8)
CK_DOT_BLOCK(dot8_8x1, ck_lanes8c, ck_lanes8c_u, 8, dot_reduce8, 8, 1)
CK_DOT_BLOCK(dot8_4x2, ck_lanes8c, ck_lanes8c_u, 8, dot_reduce8, 4, 2)
CK_DOT_BLOCK(dot8_2x4, ck_lanes8c, ck_lanes8c_u, 8, dot_reduce8, 2, 4)
CK_DOT_BLOCK(dot8_1x8, ck_lanes8c, ck_lanes8c_u, 8, dot_reduce8, 1, 8)
CK_DOT_BLOCK(dot8_1x1, ck_lanes8c, ck_lanes8c_u, 8, dot_reduce8, 1, 1)
CK_DOT_BLOCK(dot8_1x2, ck_lanes8c, ck_lanes8c_u, 8, dot_reduce8, 1, 2)
CK_DOT_BLOCK(dot8_1x4, ck_lanes8c, ck_lanes8c_u, 8, dot_reduce8, 1, 4)

/// Stores `count` lanes of the block sums `v` at `yp` after the epilogue: `bias` and `post`
/// (lane vectors: lane i holds channel i % cout, or NULL), then relu.
#define CK_DOT_STORE(VT, VTI, v, bias, post, relu, yp, count)                                      \
    do {                                                                                          \
        VT o_ = (v);                                                                              \
        VT e_;                                                                                    \
        if (bias) { memcpy(&e_, (bias), sizeof(VT)); o_ = o_ + e_; }                              \
        if (post) { memcpy(&e_, (post), sizeof(VT)); o_ = o_ + e_; }                              \
        if (relu) o_ = (VT)(~(o_ < 0) & (VTI)o_);                                                 \
        float tmp_[sizeof(VT) / sizeof(float)];                                                   \
        memcpy(tmp_, &o_, sizeof(VT));                                                            \
        memcpy((yp), tmp_, (size_t)(count) * sizeof(float));                                      \
    } while (0)

/// Output rows `row_start ..< row_start + row_count` of the unpadded input (taps outside the
/// image are left out, which is what adding the zeros of a padded copy did, bit for bit, for a
/// finite kernel) with blocks BLOCK (P pixels) over the columns whose taps are all inside and lone
/// pixels SINGLE at the edges: whole blocks, the last one moved back to end at the last inside
/// column (it rewrites the same bits); fewer inside columns than a block go pixel by pixel.
#define CK_DOT_ROWS(a, row_start, row_count, VT, VTI, L, P, BLOCK, SINGLE)                          \
    do {                                                                                          \
        const int64_t ow_ = (a)->ow, ps_ = (a)->cin * (a)->sw, co_ = (a)->cout, cin_ = (a)->cin;  \
        for (int64_t r_ = (row_start); r_ < (row_start) + (row_count); ++r_) {                    \
            const int64_t n_ = r_ / (a)->oh, i_ = r_ - n_ * (a)->oh;                              \
            const float *ximg_ = (a)->x + n_ * (a)->h * (a)->w * cin_;                            \
            float *yrow_ = (a)->y + r_ * ow_ * co_;                                               \
            VT s_;                                                                                \
            const int64_t ih0_ = i_ * (a)->sh - (a)->pad_top;                                     \
            /* The row's taps inside the image, for a pixel whose window starts at column 0. */   \
            int64_t taps_ = 0;                                                                    \
            for (int64_t ka_ = 0; ka_ < (a)->kh; ++ka_) {                                         \
                const int64_t ih_ = ih0_ + ka_ * (a)->dh;                                         \
                if (ih_ < 0 || ih_ >= (a)->h) continue;                                           \
                for (int64_t kb_ = 0; kb_ < (a)->kw; ++kb_, ++taps_) {                            \
                    offsets[taps_] = (ih_ * (a)->w + kb_ * (a)->dw) * cin_;                       \
                    koffsets[taps_] = (ka_ * (a)->kw + kb_) * co_ * cin_;                         \
                }                                                                                 \
            }                                                                                     \
            for (int64_t j_ = 0; j_ < ow_; ) {                                                    \
                const int64_t jw_ = j_ * (a)->sw - (a)->pad_left;                                 \
                const int inside_ = jw_ >= 0 && jw_ + ((a)->kw - 1) * (a)->dw < (a)->w;           \
                int64_t run_ = 0; /* inside columns from j_ */                                    \
                if (inside_) {                                                                    \
                    while (j_ + run_ < ow_ && (j_ + run_) * (a)->sw - (a)->pad_left + ((a)->kw - 1) * (a)->dw < (a)->w) ++run_; \
                }                                                                                 \
                if (run_ >= (P)) {                                                                \
                    const float *xcol_ = ximg_ + jw_ * cin_;                                      \
                    for (int64_t q_ = 0; q_ < run_; q_ += (P)) {                                  \
                        const int64_t at_ = q_ + (P) <= run_ ? q_ : run_ - (P);                   \
                        /* A literal pixel stride for Cin = L and stride 1 or 2: constant          \
                           displacements from one pointer instead of P pointers (which spilled). */ \
                        if (ps_ == (L)) BLOCK(a, offsets, koffsets, taps_, xcol_ + at_ * (L), (L), &s_); \
                        else if (ps_ == 2 * (L)) BLOCK(a, offsets, koffsets, taps_, xcol_ + at_ * 2 * (L), 2 * (L), &s_); \
                        else BLOCK(a, offsets, koffsets, taps_, xcol_ + at_ * ps_, ps_, &s_);     \
                        CK_DOT_STORE(VT, VTI, s_, bias, post, relu, yrow_ + (j_ + at_) * co_, (L)); \
                    }                                                                             \
                    j_ += run_;                                                                   \
                    continue;                                                                     \
                }                                                                                 \
                /* One pixel: the row's taps whose column is inside, from the image's column 0. */ \
                int64_t n1_ = 0;                                                                  \
                for (int64_t t_ = 0; t_ < taps_; ++t_) {                                          \
                    const int64_t kb_ = t_ % (a)->kw, jc_ = jw_ + kb_ * (a)->dw;                  \
                    if (jc_ < 0 || jc_ >= (a)->w) continue;                                       \
                    edge_offsets[n1_] = offsets[t_] + jw_ * cin_;                                 \
                    edge_koffsets[n1_] = koffsets[t_];                                            \
                    ++n1_;                                                                        \
                }                                                                                 \
                SINGLE(a, edge_offsets, edge_koffsets, n1_, ximg_, ps_, &s_);                     \
                CK_DOT_STORE(VT, VTI, s_, bias, post, relu, yrow_ + j_ * co_, co_);               \
                ++j_;                                                                             \
            }                                                                                     \
        }                                                                                         \
    } while (0)

/// The rows with L-lane vectors of type VT (integer twin VTI); `bias` and `post` are lane vectors.
#define CK_DOT_RUN(a, row_start, row_count, VT, VTI, L, PREFIX)                                    \
    do {                                                                                          \
        switch ((a)->cout) {                                                                      \
        case 1: CK_DOT_ROWS(a, row_start, row_count, VT, VTI, L, L, PREFIX##_##L##x1_block, PREFIX##_1x1); break; \
        case 2: CK_DOT_ROWS(a, row_start, row_count, VT, VTI, L, L / 2, PREFIX##_##L##x2_block, PREFIX##_1x2); break; \
        case 4: CK_DOT_ROWS(a, row_start, row_count, VT, VTI, L, L / 4, PREFIX##_##L##x4_block, PREFIX##_1x4); break; \
        default: CK_DOT_ROWS(a, row_start, row_count, VT, VTI, L, L / 8, PREFIX##_##L##x8_block, PREFIX##_1x8); break; \
        }                                                                                         \
    } while (0)

// The block names CK_DOT_RUN builds (`dot16_16x1_block`: 16 lanes, 16 x 1 pixels x channels).
#define dot16_16x1_block dot16_16x1
#define dot16_16x2_block dot16_8x2
#define dot16_16x4_block dot16_4x4
#define dot16_16x8_block dot16_2x8
#define dot8_8x1_block dot8_8x1
#define dot8_8x2_block dot8_4x2
#define dot8_8x4_block dot8_2x4
#define dot8_8x8_block dot8_1x8

// Eight output channels over 8-lane vectors (AVX2 and NEON, and AVX-512 when Cin is not a
// multiple of 16: the input gradients of the autoencoder's strided transposed convolutions): one
// pixel x 8 channels per butterfly (dot8_1x8) loads 8 kernel vectors for each input vector, 9
// loads per 8 multiply-adds. Two passes of 2 pixels x 4 channels (dot8_2x4, the kernel's channels
// 0-3, then 4-7) load 2 input and 4 kernel vectors per 8: 0.75 loads per multiply-add. Each
// accumulator still sums one (pixel, channel) over the same lanes and taps in the same order, and
// the butterfly's tree is the same for every accumulator: the bits of dot8_1x8. The block's two
// pixels are 16 adjacent outputs, returned as one 16-lane vector (lane p 8 + c); a lone pixel
// (dot8_single8) fills lanes 0-7.
CK_ALWAYS_INLINE void dot8_pair8(const ck_conv_args *a, const int64_t *offsets, const int64_t *koffsets, int64_t taps,
                                 const float *xw, int64_t ps, ck_lanes *out) {
    ck_lanes8c low, high;
    dot8_2x4(a, offsets, koffsets, taps, xw, ps, &low);
    ck_conv_args upper = *a;
    upper.k = a->k + 4 * a->cin;
    dot8_2x4(&upper, offsets, koffsets, taps, xw, ps, &high);
    *out = __builtin_shufflevector(low, high, 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15);
}

CK_ALWAYS_INLINE void dot8_single8(const ck_conv_args *a, const int64_t *offsets, const int64_t *koffsets,
                                   int64_t taps, const float *xw, int64_t ps, ck_lanes *out) {
    ck_lanes8c s;
    dot8_1x8(a, offsets, koffsets, taps, xw, ps, &s);
    *out = __builtin_shufflevector(s, s, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
}

/// Output rows `row_start ..< row_start + row_count`; `narrow` as in forward_rows (8 lanes always).
CK_ALWAYS_INLINE void dot_rows(const ck_conv_args *args, int64_t row_start, int64_t row_count, int narrow) {
    const ck_conv_args a = *args;
    int64_t offsets[512], koffsets[512], edge_offsets[512], edge_koffsets[512];
    float bias_lanes[16], post_lanes[16];
    // Spatial taps only (the lanes run over the channels); more than 512 is refused by the caller.
    if (a.kh * a.kw > 512 || (a.cout != 1 && a.cout != 2 && a.cout != 4 && a.cout != 8) || a.cin % 8 != 0) abort();
    for (int i = 0; i < 16; ++i) {
        bias_lanes[i] = a.bias ? a.bias[i % a.cout] : 0;
        post_lanes[i] = a.post_bias ? a.post_bias[i % a.cout] : 0;
    }
    const float *bias = a.bias ? bias_lanes : NULL, *post = a.post_bias ? post_lanes : NULL;
    const int relu = a.relu != 0;
    if (!narrow && a.cin % 16 == 0) CK_DOT_RUN(&a, row_start, row_count, ck_lanes, ck_lanes_i, 16, dot16);
    else if (a.cout == 8) CK_DOT_ROWS(&a, row_start, row_count, ck_lanes, ck_lanes_i, 16, 2, dot8_pair8, dot8_single8);
    else CK_DOT_RUN(&a, row_start, row_count, ck_lanes8c, ck_lanes8c_i, 8, dot8);
}

CK_ALWAYS_INLINE void dot_run(const ck_conv_args *args, int64_t row_start, int64_t row_count) {
    dot_rows(args, row_start, row_count, 0);
}

CK_ALWAYS_INLINE void dot_run_narrow(const ck_conv_args *args, int64_t row_start, int64_t row_count) {
    dot_rows(args, row_start, row_count, 1);
}

CK_LANE_PATHS_NARROW(conv_forward_dot, dot_run, dot_run_narrow,
                     (const ck_conv_args *args, int64_t start, int64_t count), (args, start, count))

void ck_conv2d_forward_channels(int isa, const ck_conv_args *args, int64_t row_start, int64_t row_count) {
    CK_LANE_DISPATCH(isa, conv_forward_dot, (args, row_start, row_count))
}

// ---------------------------------------------------------------- channel sums

// A conv layer's bias gradient: the output gradient's rows (pixels) of 8 or 16 channels added up
// per channel, taken back through relu first when asked (and the masked gradient written, relu's
// backward pass in the same read). One vector per row; each channel's sum runs over the rows in
// order, as a scalar loop would, so every path gives those bits. The Swift loop it replaces was
// left scalar by the compiler: 5.7% of the conv autoencoder's training profile (AVX-512).
CK_ALWAYS_INLINE void channel_sums_run(const float *m, const float *relu_output, float *masked, int64_t rows,
                                       int64_t columns, float *block) {
    if (columns == 16) {
        ck_lanes sum = CK_LOAD(block);
        for (int64_t r = 0; r < rows; ++r) {
            ck_lanes g = CK_LOAD(m + r * 16);
            if (relu_output) {
                g = CK_SELECT(CK_LOAD(relu_output + r * 16) > CK_SPLAT(0), g, CK_SPLAT(0));
                CK_STORE(masked + r * 16, g);
            }
            sum = sum + g;
        }
        CK_STORE(block, sum);
    } else {
        ck_lanes8c sum = *(const ck_lanes8c_u *)block;
        for (int64_t r = 0; r < rows; ++r) {
            ck_lanes8c g = *(const ck_lanes8c_u *)(m + r * 8);
            if (relu_output) {
                const ck_lanes8c o = *(const ck_lanes8c_u *)(relu_output + r * 8);
                g = (ck_lanes8c)((o > 0) & (ck_lanes8c_i)g);
                *(ck_lanes8c_u *)(masked + r * 8) = g;
            }
            sum = sum + g;
        }
        *(ck_lanes8c_u *)block = sum;
    }
}

CK_LANE_PATHS(channel_sums, channel_sums_run,
              (const float *m, const float *relu_output, float *masked, int64_t rows, int64_t columns, float *block),
              (m, relu_output, masked, rows, columns, block))

void ck_channel_sums(int isa, const float *m, const float *relu_output, float *masked, int64_t rows, int64_t columns,
                     float *block) {
    CK_LANE_DISPATCH(isa, channel_sums, (m, relu_output, masked, rows, columns, block))
}
