// The optimizers' update rules (ck_optim.h), fused into one pass over each parameter.
//
// Each rule is written once, as an always-inline function over one block of 16 lanes
// (ck_lanes.h), and compiled for each ISA path by CK_LANE_PATHS. The last count % 16 elements
// go through the same block function on zero-padded copies, so every element is computed by the
// same operations wherever it falls. Contraction is off, so `a * b + c` stays a rounded multiply
// and a rounded add on paths that have FMA: the paths agree bit for bit, and with the Swift
// formulas they replace.
//
// Cost: the rules are bound by memory once a parameter leaves the caches (Adam moves 28 bytes
// per element); in cache, by the square root and the division (one each per element).
// On NEON (the CK_LANE_PATHS `_neon` instance; paper estimate, not measured): fsqrt and fdiv on
// q registers issue about once per 5 to 10 cycles on Neoverse N1 (faster on V1 and M1), so in
// cache Adam runs near 0.5 to 1 element per cycle; out of cache its 28 bytes per element at 20 to
// 60 GB/s per core give 0.7 to 2 G elements per second.
#pragma STDC FP_CONTRACT OFF

#include "ck_optim.h"
#include "ck_lanes.h"

// ---------------------------------------------------------------- Adam / AdamW

CK_ALWAYS_INLINE void adam_block(const ck_adam_args *p, float *w, const float *g, float *m, float *v,
                                 float *v_max) {
    const ck_lanes gi = CK_LOAD(g);
    const ck_lanes mi = p->beta1 * CK_LOAD(m) + (1.0f - p->beta1) * gi;
    const ck_lanes vi = p->beta2 * CK_LOAD(v) + (1.0f - p->beta2) * gi * gi;
    CK_STORE(m, mi);
    CK_STORE(v, vi);
    ck_lanes second = vi;
    if (v_max) {
        const ck_lanes old = CK_LOAD(v_max);
        second = CK_SELECT(vi >= old, vi, old);  // Swift.max(old, v): v on ties, old when v is NaN
        CK_STORE(v_max, second);
    }
    ck_lanes wi = CK_LOAD(w);
    if (p->decay != 1.0f) wi = wi * p->decay;
    CK_STORE(w, wi - p->step_size * mi / (CK_SQRT(second) * p->inv_correction2 + p->epsilon));
}

CK_ALWAYS_INLINE void adam_run(const ck_adam_args *args, int64_t start, int64_t count) {
    const ck_adam_args p = *args;  // a local copy: stores to the arrays cannot alias it
    const int64_t end = start + count;
    int64_t i = start;
    for (; i + CK_LANES <= end; i += CK_LANES)
        adam_block(&p, p.w + i, p.g + i, p.m + i, p.v + i, p.v_max ? p.v_max + i : NULL);
    if (i < end) {
        const size_t bytes = (size_t)(end - i) * sizeof(float);
        float w[CK_LANES] = {0}, g[CK_LANES] = {0}, m[CK_LANES] = {0}, v[CK_LANES] = {0}, x[CK_LANES] = {0};
        memcpy(w, p.w + i, bytes);
        memcpy(g, p.g + i, bytes);
        memcpy(m, p.m + i, bytes);
        memcpy(v, p.v + i, bytes);
        if (p.v_max) memcpy(x, p.v_max + i, bytes);
        adam_block(&p, w, g, m, v, p.v_max ? x : NULL);
        memcpy(p.w + i, w, bytes);
        memcpy(p.m + i, m, bytes);
        memcpy(p.v + i, v, bytes);
        if (p.v_max) memcpy(p.v_max + i, x, bytes);
    }
}

CK_LANE_PATHS(adam, adam_run, (const ck_adam_args *args, int64_t start, int64_t count), (args, start, count))

void ck_adam_update(int isa, const ck_adam_args *args, int64_t start, int64_t count) {
    CK_LANE_DISPATCH(isa, adam, (args, start, count))
}

// ---------------------------------------------------------------- RMSprop

CK_ALWAYS_INLINE void rmsprop_block(const ck_rmsprop_args *p, float *w, const float *g, float *v, float *b,
                                    float *a) {
    const ck_lanes gi = CK_LOAD(g);
    const ck_lanes vi = p->rho * CK_LOAD(v) + (1.0f - p->rho) * gi * gi;
    CK_STORE(v, vi);
    ck_lanes denominator = vi + p->epsilon;
    if (a) {
        const ck_lanes ai = p->rho * CK_LOAD(a) + (1.0f - p->rho) * gi;
        CK_STORE(a, ai);
        denominator = vi - ai * ai + p->epsilon;
    }
    const ck_lanes increment = p->lr * gi / CK_SQRT(denominator);
    if (b) {
        const ck_lanes bi = p->momentum * CK_LOAD(b) + increment;
        CK_STORE(b, bi);
        CK_STORE(w, CK_LOAD(w) - bi);
    } else {
        CK_STORE(w, CK_LOAD(w) - increment);
    }
}

CK_ALWAYS_INLINE void rmsprop_run(const ck_rmsprop_args *args, int64_t start, int64_t count) {
    const ck_rmsprop_args p = *args;
    const int64_t end = start + count;
    int64_t i = start;
    for (; i + CK_LANES <= end; i += CK_LANES)
        rmsprop_block(&p, p.w + i, p.g + i, p.v + i, p.b ? p.b + i : NULL, p.a ? p.a + i : NULL);
    if (i < end) {
        const size_t bytes = (size_t)(end - i) * sizeof(float);
        float w[CK_LANES] = {0}, g[CK_LANES] = {0}, v[CK_LANES] = {0}, b[CK_LANES] = {0}, a[CK_LANES] = {0};
        memcpy(w, p.w + i, bytes);
        memcpy(g, p.g + i, bytes);
        memcpy(v, p.v + i, bytes);
        if (p.b) memcpy(b, p.b + i, bytes);
        if (p.a) memcpy(a, p.a + i, bytes);
        rmsprop_block(&p, w, g, v, p.b ? b : NULL, p.a ? a : NULL);
        memcpy(p.w + i, w, bytes);
        memcpy(p.v + i, v, bytes);
        if (p.b) memcpy(p.b + i, b, bytes);
        if (p.a) memcpy(p.a + i, a, bytes);
    }
}

CK_LANE_PATHS(rmsprop, rmsprop_run, (const ck_rmsprop_args *args, int64_t start, int64_t count), (args, start, count))

void ck_rmsprop_update(int isa, const ck_rmsprop_args *args, int64_t start, int64_t count) {
    CK_LANE_DISPATCH(isa, rmsprop, (args, start, count))
}

// ---------------------------------------------------------------- Adagrad

CK_ALWAYS_INLINE void adagrad_block(const ck_adagrad_args *p, float *w, const float *g, float *s) {
    const ck_lanes gi = CK_LOAD(g);
    const ck_lanes si = CK_LOAD(s) + gi * gi;
    CK_STORE(s, si);
    CK_STORE(w, CK_LOAD(w) - p->lr * gi / CK_SQRT(si + p->epsilon));
}

CK_ALWAYS_INLINE void adagrad_run(const ck_adagrad_args *args, int64_t start, int64_t count) {
    const ck_adagrad_args p = *args;
    const int64_t end = start + count;
    int64_t i = start;
    for (; i + CK_LANES <= end; i += CK_LANES) adagrad_block(&p, p.w + i, p.g + i, p.s + i);
    if (i < end) {
        const size_t bytes = (size_t)(end - i) * sizeof(float);
        float w[CK_LANES] = {0}, g[CK_LANES] = {0}, s[CK_LANES] = {0};
        memcpy(w, p.w + i, bytes);
        memcpy(g, p.g + i, bytes);
        memcpy(s, p.s + i, bytes);
        adagrad_block(&p, w, g, s);
        memcpy(p.w + i, w, bytes);
        memcpy(p.s + i, s, bytes);
    }
}

CK_LANE_PATHS(adagrad, adagrad_run, (const ck_adagrad_args *args, int64_t start, int64_t count), (args, start, count))

void ck_adagrad_update(int isa, const ck_adagrad_args *args, int64_t start, int64_t count) {
    CK_LANE_DISPATCH(isa, adagrad, (args, start, count))
}

// ---------------------------------------------------------------- SGD

CK_ALWAYS_INLINE void sgd_block(const ck_sgd_args *p, float *w, const float *g, float *b) {
    const ck_lanes wi = CK_LOAD(w);
    const ck_lanes d = CK_LOAD(g) + p->weight_decay * wi;
    if (b) {
        const ck_lanes bi = p->momentum * CK_LOAD(b) + d;
        CK_STORE(b, bi);
        CK_STORE(w, wi - p->lr * (p->nesterov ? d + p->momentum * bi : bi));
    } else {
        CK_STORE(w, wi - p->lr * d);
    }
}

CK_ALWAYS_INLINE void sgd_run(const ck_sgd_args *args, int64_t start, int64_t count) {
    const ck_sgd_args p = *args;
    const int64_t end = start + count;
    int64_t i = start;
    for (; i + CK_LANES <= end; i += CK_LANES) sgd_block(&p, p.w + i, p.g + i, p.b ? p.b + i : NULL);
    if (i < end) {
        const size_t bytes = (size_t)(end - i) * sizeof(float);
        float w[CK_LANES] = {0}, g[CK_LANES] = {0}, b[CK_LANES] = {0};
        memcpy(w, p.w + i, bytes);
        memcpy(g, p.g + i, bytes);
        if (p.b) memcpy(b, p.b + i, bytes);
        sgd_block(&p, w, g, p.b ? b : NULL);
        memcpy(p.w + i, w, bytes);
        if (p.b) memcpy(p.b + i, b, bytes);
    }
}

CK_LANE_PATHS(sgd, sgd_run, (const ck_sgd_args *args, int64_t start, int64_t count), (args, start, count))

void ck_sgd_update(int isa, const ck_sgd_args *args, int64_t start, int64_t count) {
    CK_LANE_DISPATCH(isa, sgd, (args, start, count))
}
