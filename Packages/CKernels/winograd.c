// Winograd F(4x4, 3x3) input and output transforms (ck_winograd.h), on the 16-lane vectors of
// ck_lanes.h: one vector holds 16 channels of one tile position, so every transform is a few
// vector additions and multiplications by small constants, compiled once per ISA path.
//
// The transforms, with points 0, 1, -1, 2, -2 and infinity (Lavin and Gray, 2016):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// (the kernel transform G g G^T is done once per call, in Swift, in Float64).
//
// Cost per tile and 16 channels: 36 loads, 12 one-dimensional input transforms of 6 vectors
// (about 14 operations each) and 36 stores; the output transform is 10 transforms of about 10
// operations. Against the 36 x Cin x Cout products of a tile, that is a few percent for 32 or
// more channels. NEON (the CK_LANE_PATHS `_neon` instance; paper estimate, not measured): the
// same vector operations on four q registers each.
#include "ck_winograd.h"
#include "ck_lanes.h"

enum { TILE = 4, WINDOW = 6, POSITIONS = 36 };

/// One-dimensional input transform `r = B^T d` of 6 vectors.
#define WINO_INPUT_1D(d0, d1, d2, d3, d4, d5, r0, r1, r2, r3, r4, r5)                     \
    do {                                                                                  \
        const ck_lanes t1_ = (d4) - CK_SPLAT(4) * (d2), t2_ = (d3) - CK_SPLAT(4) * (d1);  \
        const ck_lanes t3_ = (d4) - (d2), t4_ = CK_SPLAT(2) * ((d3) - (d1));              \
        r0 = CK_SPLAT(4) * (d0) - CK_SPLAT(5) * (d2) + (d4);                              \
        r1 = t1_ + t2_;                                                                   \
        r2 = t1_ - t2_;                                                                   \
        r3 = t3_ + t4_;                                                                   \
        r4 = t3_ - t4_;                                                                   \
        r5 = CK_SPLAT(4) * (d1) - CK_SPLAT(5) * (d3) + (d5);                              \
    } while (0)

/// One-dimensional output transform `o = A^T m` of 6 vectors into 4.
#define WINO_OUTPUT_1D(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3)                            \
    do {                                                                                  \
        const ck_lanes a_ = (m1) + (m2), b_ = (m1) - (m2), c_ = (m3) + (m4), e_ = (m3) - (m4); \
        o0 = (m0) + a_ + c_;                                                              \
        o1 = b_ + CK_SPLAT(2) * e_;                                                       \
        o2 = a_ + CK_SPLAT(4) * c_;                                                       \
        o3 = b_ + CK_SPLAT(8) * e_ + (m5);                                                \
    } while (0)

/// One-dimensional adjoint of the output transform, `m = A d` of 4 vectors into 6 (the kernel
/// gradient's transform of an output-gradient tile).
#define WINO_OUTPUT_ADJOINT_1D(d0, d1, d2, d3, m0, m1, m2, m3, m4, m5)                 \
    do {                                                                              \
        const ck_lanes e_ = (d0) + (d2), f_ = (d1) + (d3);                            \
        const ck_lanes g_ = (d0) + CK_SPLAT(4) * (d2), h_ = CK_SPLAT(2) * (d1) + CK_SPLAT(8) * (d3); \
        m0 = (d0);                                                                    \
        m1 = e_ + f_;                                                                 \
        m2 = e_ - f_;                                                                 \
        m3 = g_ + h_;                                                                 \
        m4 = g_ - h_;                                                                 \
        m5 = (d3);                                                                    \
    } while (0)

/// Loads `lanes` (1 ... 16) floats from `p`, the other lanes 0 (a macro, as in ck_lanes.h: a
/// 64-byte vector returned from a function changes the calling convention without AVX-512).
#define LOAD_PARTIAL(p, lanes)                                                 \
    ({                                                                         \
        ck_lanes v_ = CK_SPLAT(0);                                             \
        if ((lanes) == CK_LANES) {                                             \
            v_ = CK_LOAD(p);                                                   \
        } else {                                                               \
            memcpy(&v_, (p), (size_t)(lanes) * sizeof(float));                 \
        }                                                                      \
        v_;                                                                    \
    })

CK_ALWAYS_INLINE void input_run(const float *x, int64_t h, int64_t w, int64_t c, int64_t pad_top, int64_t pad_left,
                                int64_t tiles_h, int64_t tiles_w, int64_t tile0, int64_t count, int64_t c_padded,
                                float *v, int64_t position_stride) {
    const int64_t per_image = tiles_h * tiles_w;
    for (int64_t t = tile0; t < tile0 + count; ++t) {
        const int64_t image = t / per_image, ty = (t / tiles_w) % tiles_h, tx = t % tiles_w;
        const int64_t r0 = ty * TILE - pad_top, c0 = tx * TILE - pad_left;
        const float *base = x + image * h * w * c;
        float *out = v + (t - tile0) * c_padded;
        const int inside = r0 >= 0 && c0 >= 0 && r0 + WINDOW <= h && c0 + WINDOW <= w;
        for (int64_t cb = 0; cb < c_padded; cb += CK_LANES) {
            const int64_t lanes = c - cb < CK_LANES ? (c - cb > 0 ? c - cb : 0) : CK_LANES;
            ck_lanes d[WINDOW][WINDOW];
            if (inside && lanes == CK_LANES) {
                // The common case, straight-line: whole vectors, no bounds to test.
                const float *p = base + (r0 * w + c0) * c + cb;
                for (int i = 0; i < WINDOW; ++i)
                    for (int j = 0; j < WINDOW; ++j) d[i][j] = CK_LOAD(p + (i * w + j) * c);
            } else {
                for (int i = 0; i < WINDOW; ++i) {
                    const int64_t row = r0 + i;
                    for (int j = 0; j < WINDOW; ++j) {
                        const int64_t col = c0 + j;
                        if (lanes > 0 && row >= 0 && row < h && col >= 0 && col < w) {
                            d[i][j] = LOAD_PARTIAL(base + (row * w + col) * c + cb, lanes);
                        } else {
                            d[i][j] = CK_SPLAT(0);
                        }
                    }
                }
            }
            ck_lanes s[WINDOW][WINDOW];
            for (int j = 0; j < WINDOW; ++j) {
                WINO_INPUT_1D(d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j],
                              s[0][j], s[1][j], s[2][j], s[3][j], s[4][j], s[5][j]);
            }
            for (int i = 0; i < WINDOW; ++i) {
                ck_lanes r[WINDOW];
                WINO_INPUT_1D(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5], r[0], r[1], r[2], r[3], r[4], r[5]);
                for (int j = 0; j < WINDOW; ++j) CK_STORE(out + (i * WINDOW + j) * position_stride + cb, r[j]);
            }
        }
    }
}

CK_LANE_PATHS(winograd_input, input_run,
              (const float *x, int64_t h, int64_t w, int64_t c, int64_t pad_top, int64_t pad_left, int64_t tiles_h,
               int64_t tiles_w, int64_t tile0, int64_t count, int64_t c_padded, float *v, int64_t position_stride),
              (x, h, w, c, pad_top, pad_left, tiles_h, tiles_w, tile0, count, c_padded, v, position_stride))

void ck_winograd43_input(int isa, const float *x, int64_t h, int64_t w, int64_t c, int64_t pad_top,
                         int64_t pad_left, int64_t tiles_h, int64_t tiles_w, int64_t tile0, int64_t count,
                         int64_t c_padded, float *v, int64_t position_stride) {
    CK_LANE_DISPATCH(isa, winograd_input,
                     (x, h, w, c, pad_top, pad_left, tiles_h, tiles_w, tile0, count, c_padded, v, position_stride))
}

CK_ALWAYS_INLINE void output_run(const float *m, int64_t position_stride, int64_t tile0, int64_t count,
                                 int64_t c_padded, int64_t c, int64_t tiles_h, int64_t tiles_w, int64_t oh, int64_t ow,
                                 const float *bias, const float *post_bias, int relu, float *y) {
    const int64_t per_image = tiles_h * tiles_w;
    for (int64_t t = tile0; t < tile0 + count; ++t) {
        const int64_t image = t / per_image, ty = (t / tiles_w) % tiles_h, tx = t % tiles_w;
        const int64_t r0 = ty * TILE, c0 = tx * TILE;
        const int64_t rows = oh - r0 < TILE ? oh - r0 : TILE, cols = ow - c0 < TILE ? ow - c0 : TILE;
        const float *in = m + (t - tile0) * c_padded;
        float *base = y + image * oh * ow * c;
        for (int64_t cb = 0; cb < c; cb += CK_LANES) {
            const int64_t lanes = c - cb < CK_LANES ? c - cb : CK_LANES;
            ck_lanes s[WINDOW][TILE];
            for (int i = 0; i < WINDOW; ++i) {
                const float *p = in + i * WINDOW * position_stride + cb;
                WINO_OUTPUT_1D(CK_LOAD(p), CK_LOAD(p + position_stride), CK_LOAD(p + 2 * position_stride),
                               CK_LOAD(p + 3 * position_stride), CK_LOAD(p + 4 * position_stride),
                               CK_LOAD(p + 5 * position_stride), s[i][0], s[i][1], s[i][2], s[i][3]);
            }
            const ck_lanes b = bias ? LOAD_PARTIAL(bias + cb, lanes) : CK_SPLAT(0);
            const ck_lanes pb = post_bias ? LOAD_PARTIAL(post_bias + cb, lanes) : CK_SPLAT(0);
            for (int j = 0; j < TILE; ++j) {
                if (j >= cols) break;
                ck_lanes o[TILE];
                WINO_OUTPUT_1D(s[0][j], s[1][j], s[2][j], s[3][j], s[4][j], s[5][j], o[0], o[1], o[2], o[3]);
                for (int i = 0; i < TILE; ++i) {
                    if (i >= rows) break;
                    ck_lanes value = o[i];
                    if (bias) value = value + b;
                    if (post_bias) value = value + pb;
                    if (relu) value = CK_SELECT(value < CK_SPLAT(0), CK_SPLAT(0), value);  // NaN passes, as relu()
                    float *dst = base + ((r0 + i) * ow + c0 + j) * c + cb;
                    if (lanes == CK_LANES) {
                        CK_STORE(dst, value);
                    } else {
                        memcpy(dst, &value, (size_t)lanes * sizeof(float));
                    }
                }
            }
        }
    }
}

CK_LANE_PATHS(winograd_output, output_run,
              (const float *m, int64_t position_stride, int64_t tile0, int64_t count, int64_t c_padded, int64_t c,
               int64_t tiles_h, int64_t tiles_w, int64_t oh, int64_t ow, const float *bias, const float *post_bias,
               int relu, float *y),
              (m, position_stride, tile0, count, c_padded, c, tiles_h, tiles_w, oh, ow, bias, post_bias, relu, y))

void ck_winograd43_output(int isa, const float *m, int64_t position_stride, int64_t tile0, int64_t count,
                          int64_t c_padded, int64_t c, int64_t tiles_h, int64_t tiles_w, int64_t oh, int64_t ow,
                          const float *bias, const float *post_bias, int relu, float *y) {
    CK_LANE_DISPATCH(isa, winograd_output,
                     (m, position_stride, tile0, count, c_padded, c, tiles_h, tiles_w, oh, ow, bias, post_bias, relu, y))
}

CK_ALWAYS_INLINE void output_adjoint_run(const float *dy, int64_t oh, int64_t ow, int64_t c, int64_t tiles_h,
                                         int64_t tiles_w, int64_t tile0, int64_t count, int64_t c_padded, float *m,
                                         int64_t position_stride) {
    const int64_t per_image = tiles_h * tiles_w;
    for (int64_t t = tile0; t < tile0 + count; ++t) {
        const int64_t image = t / per_image, ty = (t / tiles_w) % tiles_h, tx = t % tiles_w;
        const int64_t r0 = ty * TILE, c0 = tx * TILE;
        const float *base = dy + image * oh * ow * c;
        float *out = m + (t - tile0) * c_padded;
        for (int64_t cb = 0; cb < c_padded; cb += CK_LANES) {
            const int64_t lanes = c - cb < CK_LANES ? (c - cb > 0 ? c - cb : 0) : CK_LANES;
            ck_lanes d[TILE][TILE];
            for (int i = 0; i < TILE; ++i)
                for (int j = 0; j < TILE; ++j) {
                    const int64_t row = r0 + i, col = c0 + j;
                    d[i][j] = lanes > 0 && row < oh && col < ow ? LOAD_PARTIAL(base + (row * ow + col) * c + cb, lanes)
                                                                : CK_SPLAT(0);
                }
            ck_lanes s[WINDOW][TILE];
            for (int j = 0; j < TILE; ++j) {
                WINO_OUTPUT_ADJOINT_1D(d[0][j], d[1][j], d[2][j], d[3][j], s[0][j], s[1][j], s[2][j], s[3][j], s[4][j],
                                       s[5][j]);
            }
            for (int i = 0; i < WINDOW; ++i) {
                ck_lanes r[WINDOW];
                WINO_OUTPUT_ADJOINT_1D(s[i][0], s[i][1], s[i][2], s[i][3], r[0], r[1], r[2], r[3], r[4], r[5]);
                for (int j = 0; j < WINDOW; ++j) CK_STORE(out + (i * WINDOW + j) * position_stride + cb, r[j]);
            }
        }
    }
}

CK_LANE_PATHS(winograd_output_adjoint, output_adjoint_run,
              (const float *dy, int64_t oh, int64_t ow, int64_t c, int64_t tiles_h, int64_t tiles_w, int64_t tile0,
               int64_t count, int64_t c_padded, float *m, int64_t position_stride),
              (dy, oh, ow, c, tiles_h, tiles_w, tile0, count, c_padded, m, position_stride))

void ck_winograd43_output_adjoint(int isa, const float *dy, int64_t oh, int64_t ow, int64_t c, int64_t tiles_h,
                                  int64_t tiles_w, int64_t tile0, int64_t count, int64_t c_padded, float *m,
                                  int64_t position_stride) {
    CK_LANE_DISPATCH(isa, winograd_output_adjoint,
                     (dy, oh, ow, c, tiles_h, tiles_w, tile0, count, c_padded, m, position_stride))
}
