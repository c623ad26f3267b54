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

/// Channels `c0 ..< c0 + count` (count <= 16) of one output position whose window covers input
/// rows `ih0 + kh` for `kh` in `kh_lo ..< kh_hi` and columns likewise.
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
            ck_lanes v;
            if (count == CK_LANES) {
                v = CK_LOAD(a->x + offset);
            } else {
                float tmp[CK_LANES];
                for (int j = 0; j < CK_LANES; ++j) tmp[j] = -__builtin_inff();
                memcpy(tmp, a->x + offset, (size_t)count * sizeof(float));
                v = CK_LOAD(tmp);
            }
            const ck_lanes_i better = (v > best) | (v != v);  // NaN wins
            best = CK_SELECT(better, v, best);
            win = (better & (iota + (int32_t)offset)) | (~better & win);
        }
    }
    if (count == CK_LANES) {
        CK_STORE(y, best);
        memcpy(winner, &win, sizeof(win));
    } else {
        float tmp[CK_LANES];
        CK_STORE(tmp, best);
        memcpy(y, tmp, (size_t)count * sizeof(float));
        memcpy(winner, &win, (size_t)count * sizeof(int32_t));
    }
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
                pool_lanes(&a, image_offset, ih0, kh_lo, kh_hi, iw0, kw_lo, kw_hi, c0, count,
                           a.y + position + c0, a.indices + position + c0);
            }
        }
    }
}

CK_LANE_PATHS(maxpool, maxpool_run, (const ck_maxpool_args *args, int64_t start, int64_t count), (args, start, count))

void ck_maxpool2d_forward(int isa, const ck_maxpool_args *args, int64_t row_start, int64_t row_count) {
    CK_LANE_DISPATCH(isa, maxpool, (args, row_start, row_count))
}
