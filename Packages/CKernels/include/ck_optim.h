#ifndef NEURITE_CK_OPTIM_H
#define NEURITE_CK_OPTIM_H

#include <stdint.h>

// Fused update rules of the optimizers: one pass reads each array once and writes it once.
//
// Each rule updates elements [start, start + count) of its arrays, so callers can split one
// parameter over threads. Every path (`isa`, a `ck_isa` value; unknown or unsupported values take
// the portable one) evaluates the formulas below in the order written, with IEEE single-precision
// operations, a correctly rounded square root and no fused multiply-add: the paths (NEON
// included, checked bit for bit under qemu by Tools/neon-check), the vector body and the
// remainder all give the same bits, for any split. `(1 - beta) g g` means
// `((1 - beta) g) g`, with `1 - beta` rounded to float first. Arrays must not overlap.

/// Adam and AdamW (AMSGrad when `v_max` is not NULL):
///
///     m = beta1 m + (1 - beta1) g
///     v = beta2 v + (1 - beta2) g g
///     s = v;  with v_max: s = v_max = (v >= v_max ? v : v_max)
///     w = (decay != 1 ? w decay : w) - step_size m / (sqrt(s) inv_correction2 + epsilon)
typedef struct {
    float *w;
    const float *g;
    float *m;
    float *v;
    float *v_max;           ///< NULL unless AMSGrad
    float beta1;
    float beta2;
    float step_size;        ///< lr / (1 - beta1^t)
    float inv_correction2;  ///< 1 / sqrt(1 - beta2^t)
    float epsilon;
    float decay;            ///< 1 - lr * weight_decay (1 for Adam)
} ck_adam_args;

/// RMSprop (Keras' rule; momentum when `b` is not NULL, centred when `a` is not NULL):
///
///     v = rho v + (1 - rho) g g
///     a = rho a + (1 - rho) g;  d = v - a a + epsilon      (centred)
///     d = v + epsilon                                      (otherwise)
///     u = lr g / sqrt(d)
///     b = momentum b + u;  w = w - b                        (with b)
///     w = w - u                                            (otherwise)
typedef struct {
    float *w;
    const float *g;
    float *v;
    float *b;               ///< momentum buffer; NULL without momentum
    float *a;               ///< running mean of g; NULL unless centred
    float lr;
    float rho;
    float momentum;
    float epsilon;
} ck_rmsprop_args;

/// Adagrad (Keras' rule):
///
///     s = s + g g
///     w = w - lr g / sqrt(s + epsilon)
typedef struct {
    float *w;
    const float *g;
    float *s;
    float lr;
    float epsilon;
} ck_adagrad_args;

/// SGD (PyTorch's rule, dampening 0; momentum when `b` is not NULL):
///
///     d = g + weight_decay w
///     b = momentum b + d;  w = w - lr (nesterov ? d + momentum b : b)    (with b)
///     w = w - lr d                                                       (otherwise)
typedef struct {
    float *w;
    const float *g;
    float *b;               ///< momentum buffer; NULL without momentum
    float lr;
    float momentum;
    float weight_decay;
    int nesterov;           ///< nonzero: Nesterov momentum (needs `b`)
} ck_sgd_args;

void ck_adam_update(int isa, const ck_adam_args *args, int64_t start, int64_t count);
void ck_rmsprop_update(int isa, const ck_rmsprop_args *args, int64_t start, int64_t count);
void ck_adagrad_update(int isa, const ck_adagrad_args *args, int64_t start, int64_t count);
void ck_sgd_update(int isa, const ck_sgd_args *args, int64_t start, int64_t count);

#endif
