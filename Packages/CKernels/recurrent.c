// The element-wise part of an LSTM step (ck_recurrent.h): gates, cell and output, forward and
// backward, one pass per row with 16-lane blocks (ck_lanes.h) compiled for each ISA path. The
// sigmoid and tanh come from the vectorised math kernels (ck_vmath.h) on whole gate slices of a
// row. The last units % 16 elements take a scalar loop with the same formulas.
#include "ck_recurrent.h"
#include "ck_lanes.h"
#include "ck_vmath.h"

CK_ALWAYS_INLINE void lstm_forward_run(int isa, const ck_lstm_forward_args *args) {
    const ck_lstm_forward_args p = *args;
    const int64_t u = p.units, g = 4 * u;
    for (int64_t r = 0; r < p.rows; ++r) {
        const float *cp = p.c_prev + r * u, *hp = p.h_prev + r * p.h_stride;
        float *c = p.c + r * u, *h = p.h + r * p.h_stride, *z = p.z + r * g;
        if (p.mask && p.mask[r] == 0.0f) {
            memcpy(c, cp, (size_t)u * sizeof(float));
            memcpy(h, hp, (size_t)u * sizeof(float));
            continue;
        }
        if (p.bias) {
            int64_t j = 0;
            for (; j + CK_LANES <= g; j += CK_LANES) CK_STORE(z + j, CK_LOAD(z + j) + CK_LOAD(p.bias + j));
            for (; j < g; ++j) z[j] += p.bias[j];
        }
        ck_vsigmoid(isa, z, z, 2 * u);
        ck_vtanh(isa, z + 2 * u, z + 2 * u, u);
        ck_vsigmoid(isa, z + 3 * u, z + 3 * u, u);
        const float *zi = z, *zf = z + u, *zg = z + 2 * u, *zo = z + 3 * u;
        int64_t j = 0;
        for (; j + CK_LANES <= u; j += CK_LANES)
            CK_STORE(c + j, CK_LOAD(zf + j) * CK_LOAD(cp + j) + CK_LOAD(zi + j) * CK_LOAD(zg + j));
        for (; j < u; ++j) c[j] = zf[j] * cp[j] + zi[j] * zg[j];
        ck_vtanh(isa, c, h, u);
        j = 0;
        for (; j + CK_LANES <= u; j += CK_LANES) CK_STORE(h + j, CK_LOAD(h + j) * CK_LOAD(zo + j));
        for (; j < u; ++j) h[j] *= zo[j];
    }
}

CK_ALWAYS_INLINE void lstm_backward_run(int isa, const ck_lstm_backward_args *args) {
    const ck_lstm_backward_args p = *args;
    const int64_t u = p.units, g = 4 * u;
    for (int64_t r = 0; r < p.rows; ++r) {
        float *dh = p.dh + r * u, *dc = p.dc + r * u, *dz = p.dz + r * g;
        const float *dn = p.dh_next + r * u;
        int64_t j = 0;
        for (; j + CK_LANES <= u; j += CK_LANES) CK_STORE(dh + j, CK_LOAD(dh + j) + CK_LOAD(dn + j));
        for (; j < u; ++j) dh[j] += dn[j];
        if (p.mask && p.mask[r] == 0.0f) {
            memset(dz, 0, (size_t)g * sizeof(float));
            continue;
        }
        const float *z = p.z + r * g, *cp = p.c_prev + r * u, *c = p.c + r * u;
        const float *zi = z, *zf = z + u, *zg = z + 2 * u, *zo = z + 3 * u;
        float *di = dz, *df = dz + u, *dg = dz + 2 * u, *dout = dz + 3 * u;
        ck_vtanh(isa, c, dout, u);  // tanh(c), until replaced by the output gate's gradient
        const ck_lanes one = CK_SPLAT(1.0f);
        j = 0;
        for (; j + CK_LANES <= u; j += CK_LANES) {
            const ck_lanes i = CK_LOAD(zi + j), f = CK_LOAD(zf + j), gg = CK_LOAD(zg + j), o = CK_LOAD(zo + j);
            const ck_lanes tc = CK_LOAD(dout + j), d = CK_LOAD(dh + j);
            const ck_lanes dcell = CK_LOAD(dc + j) + d * o * (one - tc * tc);
            CK_STORE(di + j, dcell * gg * i * (one - i));
            CK_STORE(df + j, dcell * CK_LOAD(cp + j) * f * (one - f));
            CK_STORE(dg + j, dcell * i * (one - gg * gg));
            CK_STORE(dout + j, d * tc * o * (one - o));
            CK_STORE(dc + j, dcell * f);
        }
        for (; j < u; ++j) {
            const float i = zi[j], f = zf[j], gg = zg[j], o = zo[j], tc = dout[j], d = dh[j];
            const float dcell = dc[j] + d * o * (1.0f - tc * tc);
            di[j] = dcell * gg * i * (1.0f - i);
            df[j] = dcell * cp[j] * f * (1.0f - f);
            dg[j] = dcell * i * (1.0f - gg * gg);
            dout[j] = d * tc * o * (1.0f - o);
            dc[j] = dcell * f;
        }
    }
}

CK_LANE_PATHS(lstm_forward, lstm_forward_run, (int isa, const ck_lstm_forward_args *args), (isa, args))
CK_LANE_PATHS(lstm_backward, lstm_backward_run, (int isa, const ck_lstm_backward_args *args), (isa, args))

void ck_lstm_forward_rows(int isa, const ck_lstm_forward_args *args) {
    CK_LANE_DISPATCH(isa, lstm_forward, (isa, args))
}

void ck_lstm_backward_rows(int isa, const ck_lstm_backward_args *args) {
    CK_LANE_DISPATCH(isa, lstm_backward, (isa, args))
}
