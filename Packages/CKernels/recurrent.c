// The element-wise part of an LSTM or GRU step (ck_recurrent.h): gates, cell and output, forward and
// backward, one pass per row with 16-lane blocks (ck_lanes.h) compiled for each ISA path. The
// sigmoid and tanh come from the vectorised math kernels (ck_vmath.h) on whole gate slices of a
// row. The last units % 16 elements take a scalar loop with the same formulas.
//
// NEON (the CK_LANE_PATHS `_neon` instance, which calls the NEON vector math; paper estimate, not
// measured): an LSTM forward costs 3 sigmoids and 2 tanh per unit, each about 20 NEON operations
// and one division per 4 lanes, plus a few multiplies: roughly 25 to 50 cycles per 4 units, so
// 0.2 to 0.4 G units per second per core, small next to the step's two GEMMs.
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
        // tanh(c) into the kept row when there is one (the backward pass reads it there instead
        // of computing it again), else into h itself.
        float *tc = p.tanh_c ? p.tanh_c + r * u : h;
        ck_vtanh(isa, c, tc, u);
        j = 0;
        for (; j + CK_LANES <= u; j += CK_LANES) CK_STORE(h + j, CK_LOAD(tc + j) * CK_LOAD(zo + j));
        for (; j < u; ++j) h[j] = tc[j] * zo[j];
    }
}

CK_ALWAYS_INLINE void lstm_backward_run(int isa, const ck_lstm_backward_args *args) {
    const ck_lstm_backward_args p = *args;
    const int64_t u = p.units, g = 4 * u;
    for (int64_t r = 0; r < p.rows; ++r) {
        float *dh = p.dh + r * u, *dc = p.dc + r * u, *dz = p.dz + r * g;
        const float *dn = p.dh_next + r * u;
        // The step's hidden gradient dh + dh_next: summed into dh, or with a zero output
        // gradient 0 + dh_next (not -0 + x, which would keep a -0: the same bits as the sum),
        // read from dh_next itself where no mask needs it in dh.
        const float *d_sum = dh;
        int64_t j = 0;
        if (!p.dh_zero) {
            for (; j + CK_LANES <= u; j += CK_LANES) CK_STORE(dh + j, CK_LOAD(dh + j) + CK_LOAD(dn + j));
            for (; j < u; ++j) dh[j] += dn[j];
        } else if (p.mask) {
            const ck_lanes zero = CK_SPLAT(0.0f);
            for (; j + CK_LANES <= u; j += CK_LANES) CK_STORE(dh + j, zero + CK_LOAD(dn + j));
            for (; j < u; ++j) dh[j] = 0.0f + dn[j];
        } else {
            d_sum = dn;
        }
        const ck_lanes dzero = CK_SPLAT(0.0f);
        const int sum_zero = p.dh_zero && !p.mask;
        if (p.mask && p.mask[r] == 0.0f) {
            memset(dz, 0, (size_t)g * sizeof(float));
            continue;
        }
        const float *z = p.z + r * g, *cp = p.c_prev + r * u, *c = p.c + r * u;
        const float *zi = z, *zf = z + u, *zg = z + 2 * u, *zo = z + 3 * u;
        float *di = dz, *df = dz + u, *dg = dz + 2 * u, *dout = dz + 3 * u;
        // tanh(c): the forward's, or computed into dout (until replaced by the output gate's gradient).
        const float *tcs = dout;
        if (p.tanh_c) {
            tcs = p.tanh_c + r * u;
        } else {
            ck_vtanh(isa, c, dout, u);
        }
        const ck_lanes one = CK_SPLAT(1.0f);
        j = 0;
        for (; j + CK_LANES <= u; j += CK_LANES) {
            const ck_lanes i = CK_LOAD(zi + j), f = CK_LOAD(zf + j), gg = CK_LOAD(zg + j), o = CK_LOAD(zo + j);
            const ck_lanes tc = CK_LOAD(tcs + j), d = sum_zero ? dzero + CK_LOAD(d_sum + j) : CK_LOAD(d_sum + j);
            const ck_lanes dcell = CK_LOAD(dc + j) + d * o * (one - tc * tc);
            CK_STORE(di + j, dcell * gg * i * (one - i));
            CK_STORE(df + j, dcell * CK_LOAD(cp + j) * f * (one - f));
            CK_STORE(dg + j, dcell * i * (one - gg * gg));
            CK_STORE(dout + j, d * tc * o * (one - o));
            CK_STORE(dc + j, dcell * f);
        }
        for (; j < u; ++j) {
            const float i = zi[j], f = zf[j], gg = zg[j], o = zo[j], tc = tcs[j];
            const float d = sum_zero ? 0.0f + d_sum[j] : d_sum[j];
            const float dcell = dc[j] + d * o * (1.0f - tc * tc);
            di[j] = dcell * gg * i * (1.0f - i);
            df[j] = dcell * cp[j] * f * (1.0f - f);
            dg[j] = dcell * i * (1.0f - gg * gg);
            dout[j] = d * tc * o * (1.0f - o);
            dc[j] = dcell * f;
        }
    }
}

CK_ALWAYS_INLINE void gru_forward_run(int isa, const ck_gru_forward_args *args) {
    const ck_gru_forward_args p = *args;
    const int64_t u = p.units, g = 3 * u;
    for (int64_t r = 0; r < p.rows; ++r) {
        const float *hp = p.h_prev + r * p.h_stride;
        float *h = p.h + r * p.h_stride, *zx = p.zx + r * g, *q = p.q + r * g;
        if (p.mask && p.mask[r] == 0.0f) {
            memcpy(h, hp, (size_t)u * sizeof(float));
            continue;
        }
        int64_t j = 0;
        if (p.input_bias) {
            for (j = 0; j + CK_LANES <= g; j += CK_LANES) CK_STORE(zx + j, CK_LOAD(zx + j) + CK_LOAD(p.input_bias + j));
            for (; j < g; ++j) zx[j] += p.input_bias[j];
        }
        if (p.recurrent_bias) {
            for (j = 0; j + CK_LANES <= g; j += CK_LANES) CK_STORE(q + j, CK_LOAD(q + j) + CK_LOAD(p.recurrent_bias + j));
            for (; j < g; ++j) q[j] += p.recurrent_bias[j];
        }
        for (j = 0; j + CK_LANES <= 2 * u; j += CK_LANES) CK_STORE(zx + j, CK_LOAD(zx + j) + CK_LOAD(q + j));
        for (; j < 2 * u; ++j) zx[j] += q[j];
        ck_vsigmoid(isa, zx, zx, 2 * u);
        float *zz = zx, *zr = zx + u, *zh = zx + 2 * u;
        const float *qh = q + 2 * u;
        for (j = 0; j + CK_LANES <= u; j += CK_LANES) CK_STORE(zh + j, CK_LOAD(zh + j) + CK_LOAD(zr + j) * CK_LOAD(qh + j));
        for (; j < u; ++j) zh[j] += zr[j] * qh[j];
        ck_vtanh(isa, zh, zh, u);
        const ck_lanes one = CK_SPLAT(1.0f);
        for (j = 0; j + CK_LANES <= u; j += CK_LANES) {
            const ck_lanes z = CK_LOAD(zz + j);
            CK_STORE(h + j, z * CK_LOAD(hp + j) + (one - z) * CK_LOAD(zh + j));
        }
        for (; j < u; ++j) h[j] = zz[j] * hp[j] + (1.0f - zz[j]) * zh[j];
    }
}

CK_ALWAYS_INLINE void gru_backward_run(const ck_gru_backward_args *args) {
    const ck_gru_backward_args p = *args;
    const int64_t u = p.units, g = 3 * u;
    for (int64_t r = 0; r < p.rows; ++r) {
        float *dh = p.dh + r * u, *dzx = p.dzx + r * g, *dq = p.dq + r * g;
        const float *dn = p.dh_next + r * u;
        int64_t j = 0;
        for (; j + CK_LANES <= u; j += CK_LANES) CK_STORE(dh + j, CK_LOAD(dh + j) + CK_LOAD(dn + j));
        for (; j < u; ++j) dh[j] += dn[j];
        if (p.mask && p.mask[r] == 0.0f) {
            memset(dzx, 0, (size_t)g * sizeof(float));
            memset(dq, 0, (size_t)g * sizeof(float));
            continue;
        }
        const float *zx = p.zx + r * g, *q = p.q + r * g, *hp = p.h_prev + r * p.h_stride;
        const ck_lanes one = CK_SPLAT(1.0f);
        for (j = 0; j + CK_LANES <= u; j += CK_LANES) {
            const ck_lanes z = CK_LOAD(zx + j), rr = CK_LOAD(zx + u + j), hh = CK_LOAD(zx + 2 * u + j);
            const ck_lanes d = CK_LOAD(dh + j);
            const ck_lanes dhh = d * (one - z) * (one - hh * hh);
            const ck_lanes dz = d * (CK_LOAD(hp + j) - hh) * z * (one - z);
            const ck_lanes dr = dhh * CK_LOAD(q + 2 * u + j) * rr * (one - rr);
            CK_STORE(dzx + j, dz);
            CK_STORE(dzx + u + j, dr);
            CK_STORE(dzx + 2 * u + j, dhh);
            CK_STORE(dq + j, dz);
            CK_STORE(dq + u + j, dr);
            CK_STORE(dq + 2 * u + j, dhh * rr);
            CK_STORE(dh + j, d * z);
        }
        for (; j < u; ++j) {
            const float z = zx[j], rr = zx[u + j], hh = zx[2 * u + j], d = dh[j];
            const float dhh = d * (1.0f - z) * (1.0f - hh * hh);
            const float dz = d * (hp[j] - hh) * z * (1.0f - z);
            const float dr = dhh * q[2 * u + j] * rr * (1.0f - rr);
            dzx[j] = dz;
            dzx[u + j] = dr;
            dzx[2 * u + j] = dhh;
            dq[j] = dz;
            dq[u + j] = dr;
            dq[2 * u + j] = dhh * rr;
            dh[j] = d * z;
        }
    }
}

CK_LANE_PATHS(lstm_forward, lstm_forward_run, (int isa, const ck_lstm_forward_args *args), (isa, args))
CK_LANE_PATHS(lstm_backward, lstm_backward_run, (int isa, const ck_lstm_backward_args *args), (isa, args))

CK_LANE_PATHS(gru_forward, gru_forward_run, (int isa, const ck_gru_forward_args *args), (isa, args))
CK_LANE_PATHS(gru_backward, gru_backward_run, (const ck_gru_backward_args *args), (args))

void ck_gru_forward_rows(int isa, const ck_gru_forward_args *args) {
    CK_LANE_DISPATCH(isa, gru_forward, (isa, args))
}

void ck_gru_backward_rows(int isa, const ck_gru_backward_args *args) {
    CK_LANE_DISPATCH(isa, gru_backward, (args))
}

void ck_lstm_forward_rows(int isa, const ck_lstm_forward_args *args) {
    CK_LANE_DISPATCH(isa, lstm_forward, (isa, args))
}

void ck_lstm_backward_rows(int isa, const ck_lstm_backward_args *args) {
    CK_LANE_DISPATCH(isa, lstm_backward, (isa, args))
}
