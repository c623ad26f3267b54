// Max pooling (ck_pool.h), written once over 16-lane vectors (ck_lanes.h) and compiled for each
// ISA path by CK_LANE_PATHS. A window's cells are compared lane by lane with branch-free
// selects; the winner's flat index is selected alongside the value.
//
// NEON (the CK_LANE_PATHS `_neon` instance; paper estimate, not measured): per window cell and 16
// channels, 4 q loads, 8 compares (greater, and unordered for NaN), and 8 bit selects (value and
// index): about 20 vector instructions, 5 to 10 cycles at 2 to 4 NEON pipes, so 2 to 3 input
// floats per cycle; for 2 x 2 windows that is faster than memory brings the input from DRAM.
#include "ck_pool.h"
#include "ck_lanes.h"

/// 8 floats, for a pixel's channels when there are 8 of them left: a 16-lane vector filled from
/// a stack copy would cost a store-forwarding stall per window cell (16 scalar stores read back
/// as one vector). One ymm on AVX-512 and AVX2, two q registers on NEON.
typedef float ck_lanes8 __attribute__((vector_size(32)));
typedef int32_t ck_lanes8_i __attribute__((vector_size(32)));
typedef float ck_lanes8_u __attribute__((vector_size(32), aligned(4), may_alias));

/// Defines `NAME`: channels `c0 ..< c0 + L` (L = 8 or 16 lanes of type `VEC`, integer type
/// `VEC_I`, unaligned type `VEC_U`) of one output position whose window covers input rows
/// `ih0 + kh` for `kh` in `kh_lo ..< kh_hi` and columns likewise. The cells are visited in
/// row-major window order; a cell wins when it is greater or NaN.
#define CK_POOL_LANES(NAME, L, VEC, VEC_I, VEC_U)                                                 \
    CK_ALWAYS_INLINE void NAME(const ck_maxpool_args *a, int64_t image_offset, int64_t ih0,       \
                               int64_t kh_lo, int64_t kh_hi, int64_t iw0, int64_t kw_lo,          \
                               int64_t kw_hi, int64_t c0, float *y, int32_t *winner) {            \
        VEC_I iota;                                                                               \
        for (int j = 0; j < L; ++j) iota[j] = j;                                                  \
        VEC best = (VEC){0} - __builtin_inff();                                                   \
        const int64_t first = image_offset + ((ih0 + kh_lo) * a->w + iw0 + kw_lo) * a->c + c0;   \
        VEC_I win = iota + (int32_t)first;                                                        \
        for (int64_t kh = kh_lo; kh < kh_hi; ++kh) {                                              \
            for (int64_t kw = kw_lo; kw < kw_hi; ++kw) {                                          \
                const int64_t offset = image_offset + ((ih0 + kh) * a->w + iw0 + kw) * a->c + c0; \
                const VEC v = *(const VEC_U *)(a->x + offset);                                    \
                const VEC_I better = (v > best) | (v != v); /* NaN wins */                        \
                best = (VEC)((better & (VEC_I)v) | (~better & (VEC_I)best));                      \
                win = (better & (iota + (int32_t)offset)) | (~better & win);                      \
            }                                                                                     \
        }                                                                                         \
        *(VEC_U *)y = best;                                                                       \
        memcpy(winner, &win, sizeof(win));                                                        \
    }

CK_POOL_LANES(pool_lanes16, 16, ck_lanes, ck_lanes_i, ck_lanes_u)
CK_POOL_LANES(pool_lanes8, 8, ck_lanes8, ck_lanes8_i, ck_lanes8_u)

/// Channels `c0 ..< c0 + count` (count < 16, not 8) of one output position, as pool_lanes16
/// over a copy padded with -infinity.
CK_ALWAYS_INLINE void pool_lanes(const ck_maxpool_args *a, int64_t image_offset, int64_t ih0, int64_t kh_lo,
                                 int64_t kh_hi, int64_t iw0, int64_t kw_lo, int64_t kw_hi, int64_t c0,
                                 int64_t count, float *y, int32_t *winner) {
    const ck_lanes_i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    ck_lanes best = CK_SPLAT(-__builtin_inff());
    const int64_t first = image_offset + ((ih0 + kh_lo) * a->w + iw0 + kw_lo) * a->c + c0;
    ck_lanes_i win = iota + (int32_t)first;
    for (int64_t kh = kh_lo; kh < kh_hi; ++kh) {
        for (int64_t kw = kw_lo; kw < kw_hi; ++kw) {
            const int64_t offset = image_offset + ((ih0 + kh) * a->w + iw0 + kw) * a->c + c0;
            float tmp[CK_LANES];
            for (int j = 0; j < CK_LANES; ++j) tmp[j] = -__builtin_inff();
            memcpy(tmp, a->x + offset, (size_t)count * sizeof(float));
            const ck_lanes v = CK_LOAD(tmp);
            const ck_lanes_i better = (v > best) | (v != v);  // NaN wins
            best = CK_SELECT(better, v, best);
            win = (better & (iota + (int32_t)offset)) | (~better & win);
        }
    }
    float tmp[CK_LANES];
    CK_STORE(tmp, best);
    memcpy(y, tmp, (size_t)count * sizeof(float));
    memcpy(winner, &win, (size_t)count * sizeof(int32_t));
}

CK_ALWAYS_INLINE void maxpool_run(const ck_maxpool_args *args, int64_t row_start, int64_t row_count) {
    const ck_maxpool_args a = *args;
    for (int64_t r = row_start; r < row_start + row_count; ++r) {
        const int64_t image_offset = (r / a.oh) * a.h * a.w * a.c, oh = r % a.oh;
        const int64_t ih0 = oh * a.sh - a.pad_top;
        const int64_t kh_lo = ih0 < 0 ? -ih0 : 0, kh_hi = a.h - ih0 < a.ph ? a.h - ih0 : a.ph;
        for (int64_t ow = 0; ow < a.ow; ++ow) {
            const int64_t iw0 = ow * a.sw - a.pad_left;
            const int64_t kw_lo = iw0 < 0 ? -iw0 : 0, kw_hi = a.w - iw0 < a.pw ? a.w - iw0 : a.pw;
            const int64_t position = (r * a.ow + ow) * a.c;
            for (int64_t c0 = 0; c0 < a.c; c0 += CK_LANES) {
                const int64_t count = a.c - c0 < CK_LANES ? a.c - c0 : CK_LANES;
                float *y = a.y + position + c0;
                int32_t *winner = a.indices + position + c0;
                // A whole 2 x 2 window (MaxPooling2D's default) with literal bounds, so the
                // four cells unroll: pool1 of the course CNN (24x24x16, batch 128) took 231 us
                // per batch on one AVX-512 thread before, pool2 (11x11x8, through the padded
                // copy below) 177 us.
                const int whole2x2 = kh_lo == 0 && kh_hi == 2 && kw_lo == 0 && kw_hi == 2;
                if (count == CK_LANES && whole2x2)
                    pool_lanes16(&a, image_offset, ih0, 0, 2, iw0, 0, 2, c0, y, winner);
                else if (count == CK_LANES)
                    pool_lanes16(&a, image_offset, ih0, kh_lo, kh_hi, iw0, kw_lo, kw_hi, c0, y, winner);
                else if (count == 8 && whole2x2)
                    pool_lanes8(&a, image_offset, ih0, 0, 2, iw0, 0, 2, c0, y, winner);
                else if (count == 8)
                    pool_lanes8(&a, image_offset, ih0, kh_lo, kh_hi, iw0, kw_lo, kw_hi, c0, y, winner);
                else
                    pool_lanes(&a, image_offset, ih0, kh_lo, kh_hi, iw0, kw_lo, kw_hi, c0, count, y, winner);
            }
        }
    }
}

CK_LANE_PATHS(maxpool, maxpool_run, (const ck_maxpool_args *args, int64_t start, int64_t count), (args, start, count))

void ck_maxpool2d_forward(int isa, const ck_maxpool_args *args, int64_t row_start, int64_t row_count) {
    CK_LANE_DISPATCH(isa, maxpool, (args, row_start, row_count))
}

// ---------------------------------------------------------------- backward, windows apart

// The input gradient of a max pooling whose windows do not overlap (strides at least the window:
// MaxPooling2D's default), written densely: each input cell belongs to at most one window, so
// its gradient is that window's output gradient where the cell is the window's winner, else 0.
// One pass that writes every input float once, vectorised over channels, where the general way
// zeroes the whole input gradient and then scatters one output gradient per winner (the course
// CNN's training profile, AVX-512: 2.6% in the zeroing and 4.2% in the scalar scatter).
// Where a cell wins, the stored value is `0 + dy` (the scatter's `dx[j] += dy[i]` onto zero),
// so a -0 gradient is stored as +0 as before: the same bits.
typedef int32_t ck_lanes_iu __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32_t ck_lanes8_iu __attribute__((vector_size(32), aligned(4), may_alias));

CK_ALWAYS_INLINE void maxpool_backward_run(const ck_maxpool_args *args, const float *dy, float *dx, int64_t row_start,
                                           int64_t row_count) {
    const ck_maxpool_args a = *args;
    const ck_lanes_i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const ck_lanes8_i iota8 = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int64_t r = row_start; r < row_start + row_count; ++r) {
        const int64_t n = r / a.h, ih = r - n * a.h;
        const int64_t t = ih + a.pad_top, i = t / a.sh, wa = t - i * a.sh;
        float *row = dx + r * a.w * a.c;
        if (wa >= a.ph || i >= a.oh) {
            memset(row, 0, (size_t)(a.w * a.c) * sizeof(float));  // a row no window covers
            continue;
        }
        // Column iw is window column wb of output column j: stepped along, not divided per pixel
        // (a 64-bit division per pixel took most of this kernel's time).
        int64_t j = a.pad_left / a.sw, wb = a.pad_left - j * a.sw;
        for (int64_t iw = 0; iw < a.w; ++iw, ++wb) {
            if (wb == a.sw) wb = 0, ++j;
            float *cell = row + iw * a.c;
            if (wb >= a.pw || j >= a.ow) {
                memset(cell, 0, (size_t)a.c * sizeof(float));
                continue;
            }
            const int64_t o = ((n * a.oh + i) * a.ow + j) * a.c;
            const int32_t flat = (int32_t)(r * a.w * a.c + iw * a.c);
            int64_t ch = 0;
            for (; ch + 16 <= a.c; ch += 16) {
                const ck_lanes_i win = *(const ck_lanes_iu *)(a.indices + o + ch);
                const ck_lanes_i mine = win == iota + (flat + (int32_t)ch);
                CK_STORE(cell + ch, CK_SELECT(mine, CK_SPLAT(0) + CK_LOAD(dy + o + ch), CK_SPLAT(0)));
            }
            for (; ch + 8 <= a.c; ch += 8) {
                const ck_lanes8_i win = *(const ck_lanes8_iu *)(a.indices + o + ch);
                const ck_lanes8_i mine = win == iota8 + (flat + (int32_t)ch);
                const ck_lanes8 g = (ck_lanes8){0} + *(const ck_lanes8_u *)(dy + o + ch);
                *(ck_lanes8_u *)(cell + ch) = (ck_lanes8)(mine & (ck_lanes8_i)g);
            }
            for (; ch < a.c; ++ch) cell[ch] = a.indices[o + ch] == flat + (int32_t)ch ? 0.0f + dy[o + ch] : 0.0f;
        }
    }
}

CK_LANE_PATHS(maxpool_backward, maxpool_backward_run,
              (const ck_maxpool_args *args, const float *dy, float *dx, int64_t start, int64_t count),
              (args, dy, dx, start, count))

void ck_maxpool2d_backward(int isa, const ck_maxpool_args *args, const float *dy, float *dx, int64_t row_start,
                           int64_t row_count) {
    CK_LANE_DISPATCH(isa, maxpool_backward, (args, dy, dx, row_start, row_count))
}
