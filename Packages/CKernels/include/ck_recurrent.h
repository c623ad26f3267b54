#ifndef NEURITE_CK_RECURRENT_H
#define NEURITE_CK_RECURRENT_H

#include <stdint.h>

// The element-wise part of one LSTM time step with Keras' default activations (sigmoid gates,
// tanh candidate and output), for a block of rows (samples) of the batch. The matrix products
// are done by the caller; these fuse what lies between them into one pass per row, vectorised
// per ISA path (`isa` is a `ck_isa` value). Gates are side by side in a row in Keras' order
// i, f, g, o (4 * units floats). Rows whose `mask` entry is 0 are skipped steps (see each
// function). Arrays of one call must not overlap, except as stated.

/// Forward: `z` holds x W + h U (pre-activations) for each row; adds `bias` (4 units, or NULL),
/// activates the gates in place, and writes c = f c_prev + i g and h = o tanh(c). A masked row
/// copies c_prev to c and h_prev to h. h rows are `h_stride` floats apart; z rows 4 * units,
/// c rows `units`. With `tanh_c` (rows `units` apart; NULL for none) each computed row's tanh(c)
/// is kept there too, for the backward pass (a masked row's is not written).
typedef struct {
    float *z;
    const float *bias;
    const float *c_prev;
    float *c;
    const float *h_prev;
    float *h;
    const float *mask;  ///< one entry per row, or NULL
    int64_t h_stride;
    int64_t units;
    int64_t rows;
    float *tanh_c;  ///< where to keep tanh(c), or NULL (last, so positional initialisers may omit it)
} ck_lstm_forward_args;

void ck_lstm_forward_rows(int isa, const ck_lstm_forward_args *args);

/// Backward: with the activated gates `z`, the cells c_prev and c, dh (the output gradient of
/// the step, to which `dh_next` is added in place) and dc (the cell gradient from the next step,
/// replaced by the one for the previous step), writes the gates' pre-activation gradients `dz`.
/// A masked row gets dh += dh_next, a zero dz row, and keeps dc. Strides as in the forward
/// (dh, dh_next, dc rows `units` apart; dz rows 4 * units). With `tanh_c` (the forward's, NULL
/// for none) tanh(c) is read from there instead of computed again from c: the same bits. With
/// `dh_zero` nonzero, dh's incoming values are taken as 0.
typedef struct {
    const float *z;
    const float *c_prev;
    const float *c;
    float *dh;
    const float *dh_next;
    float *dc;
    float *dz;
    const float *mask;  ///< one entry per row, or NULL
    int64_t units;
    int64_t rows;
    const float *tanh_c;  ///< tanh(c) kept by the forward, or NULL
    /// Nonzero: the step's output gradient is zero, so dh is not read (the sum is 0 + dh_next,
    /// the same bits) and, without a mask, not written either; with a mask it receives the sum.
    int64_t dh_zero;
} ck_lstm_backward_args;

void ck_lstm_backward_rows(int isa, const ck_lstm_backward_args *args);

// The same for a GRU step (Keras 3, reset_after): gates z, r and the candidate h~ side by side
// (3 * units floats per row) in `zx` (x W) and `q` (h U).

/// Forward: adds `input_bias` to zx and `recurrent_bias` to q (each 3 units, or NULL), then
/// z = sigmoid(zx_z + q_z), r = sigmoid(zx_r + q_r), h~ = tanh(zx_h + r q_h), stored in place of
/// zx, and h = z h_prev + (1 - z) h~. q keeps h U + recurrent bias. A masked row copies h_prev.
typedef struct {
    float *zx;
    float *q;
    const float *input_bias;
    const float *recurrent_bias;
    const float *h_prev;
    float *h;
    const float *mask;  ///< one entry per row, or NULL
    int64_t h_stride;
    int64_t units;
    int64_t rows;
} ck_gru_forward_args;

void ck_gru_forward_rows(int isa, const ck_gru_forward_args *args);

/// Backward: dh += dh_next; then the gradients of the input-side pre-activations `dzx` and of
/// the recurrent-side ones `dq` (3 units each), and dh is replaced by dh z, the part of the
/// previous state's gradient that bypasses the GEMM. A masked row gets zero dzx and dq rows and
/// keeps dh (carried to the previous step whole).
typedef struct {
    const float *zx;
    const float *q;
    const float *h_prev;
    float *dh;
    const float *dh_next;
    float *dzx;
    float *dq;
    const float *mask;  ///< one entry per row, or NULL
    int64_t h_stride;
    int64_t units;
    int64_t rows;
} ck_gru_backward_args;

void ck_gru_backward_rows(int isa, const ck_gru_backward_args *args);

#endif
