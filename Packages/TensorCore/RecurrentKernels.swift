import CKernels

/// The element-wise part of an LSTM time step with Keras' default activations (sigmoid gates,
/// tanh candidate and output), fused per row and vectorised per `KernelISA`: what the Recurrent
/// module's `LSTM` runs between its matrix products. Gates lie side by side in a row in Keras'
/// order i, f, g, o (`4 * units` floats). Each call handles `rows` consecutive samples on the
/// calling thread; arrays must not overlap.
package enum LSTMKernels {
    /// Adds `bias` (`4 * units`, or nil) to the pre-activations `gates`, activates them in place,
    /// and writes `cell = f ⊙ cellPrevious + i ⊙ g` and `hidden = o ⊙ tanh(cell)`. A row whose
    /// `mask` entry is 0 copies `cellPrevious` and `hiddenPrevious` instead. Hidden rows are
    /// `hiddenStride` floats apart, cell rows `units`, gate rows `4 * units`. With `cellTanh`
    /// (rows `units` apart) each computed row's `tanh(cell)` is kept there for the backward pass.
    package static func forwardRows(gates: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                                   cellPrevious: UnsafePointer<Float>, cell: UnsafeMutablePointer<Float>,
                                   hiddenPrevious: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>,
                                   hiddenStride: Int, mask: UnsafePointer<Float>?, units: Int, rows: Int,
                                   cellTanh: UnsafeMutablePointer<Float>? = nil, isa: KernelISA = .current) {
        var args = ck_lstm_forward_args(z: gates, bias: bias, c_prev: cellPrevious, c: cell, h_prev: hiddenPrevious,
                                        h: hidden, mask: mask, h_stride: Int64(hiddenStride), units: Int64(units),
                                        rows: Int64(rows), tanh_c: cellTanh)
        ck_lstm_forward_rows(isa.rawValue, &args)
    }

    /// From the activated `gates`, the cells before and after the step, the step's output gradient
    /// `hiddenGradient` (to which `nextHiddenGradient` is added in place) and `cellGradient` (the
    /// gradient from the next step, replaced by the previous step's), writes the gates'
    /// pre-activation gradients `gateGradient`. A masked row only gets the addition, a zero
    /// gradient row, and keeps its cell gradient. Rows as in ``forwardRows(gates:bias:cellPrevious:cell:hiddenPrevious:hidden:hiddenStride:mask:units:rows:cellTanh:isa:)``
    /// (gradient rows of `units` floats). With `cellTanh`, the forward's `tanh(cell)` is read
    /// from there instead of computed again (the same values; one tanh per unit saved). With
    /// `hiddenGradientIsZero` the step's output gradient is taken as zero: `hiddenGradient` is not
    /// read, and only written (with the sum) where there is a `mask`; the results are the same
    /// bits as with a zero-filled `hiddenGradient`, without reading or filling it.
    package static func backwardRows(gates: UnsafePointer<Float>, cellPrevious: UnsafePointer<Float>,
                                    cell: UnsafePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>,
                                    nextHiddenGradient: UnsafePointer<Float>, cellGradient: UnsafeMutablePointer<Float>,
                                    gateGradient: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>?,
                                    units: Int, rows: Int, cellTanh: UnsafePointer<Float>? = nil,
                                    hiddenGradientIsZero: Bool = false, isa: KernelISA = .current) {
        var args = ck_lstm_backward_args(z: gates, c_prev: cellPrevious, c: cell, dh: hiddenGradient,
                                         dh_next: nextHiddenGradient, dc: cellGradient, dz: gateGradient, mask: mask,
                                         units: Int64(units), rows: Int64(rows), tanh_c: cellTanh,
                                         dh_zero: hiddenGradientIsZero ? 1 : 0)
        ck_lstm_backward_rows(isa.rawValue, &args)
    }
}

/// The element-wise part of a GRU time step (Keras 3, `reset_after`) with Keras' default
/// activations, fused per row and vectorised per `KernelISA`: what the Recurrent module's `GRU`
/// runs between its matrix products. Gates `z, r` and the candidate lie side by side in a row
/// (`3 * units` floats) of `inputGates` (x·W) and `recurrentGates` (h·U). Each call handles `rows`
/// consecutive samples on the calling thread; arrays must not overlap.
package enum GRUKernels {
    /// Adds the biases (`3 * units` each, or nil), then writes `z = σ(a_z + q_z)`,
    /// `r = σ(a_r + q_r)`, `h̃ = tanh(a_h + r ⊙ q_h)` over `inputGates` and
    /// `hidden = z ⊙ hiddenPrevious + (1 − z) ⊙ h̃`; `recurrentGates` keeps `h·U + b_rec`. A row
    /// whose `mask` entry is 0 copies `hiddenPrevious`. Hidden rows are `hiddenStride` floats apart.
    package static func forwardRows(inputGates: UnsafeMutablePointer<Float>, recurrentGates: UnsafeMutablePointer<Float>,
                                   inputBias: UnsafePointer<Float>?, recurrentBias: UnsafePointer<Float>?,
                                   hiddenPrevious: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>,
                                   hiddenStride: Int, mask: UnsafePointer<Float>?, units: Int, rows: Int,
                                   isa: KernelISA = .current) {
        var args = ck_gru_forward_args(zx: inputGates, q: recurrentGates, input_bias: inputBias, recurrent_bias: recurrentBias,
                                       h_prev: hiddenPrevious, h: hidden, mask: mask, h_stride: Int64(hiddenStride),
                                       units: Int64(units), rows: Int64(rows))
        ck_gru_forward_rows(isa.rawValue, &args)
    }

    /// From the activated gates and the recurrent projection kept by the forward pass, adds
    /// `nextHiddenGradient` to `hiddenGradient`, writes the input-side and recurrent-side gate
    /// gradients, and replaces `hiddenGradient` by `dh ⊙ z` (the part of the previous state's
    /// gradient that bypasses the recurrent GEMM). A masked row gets zero gate gradients and keeps
    /// its (summed) `hiddenGradient`.
    package static func backwardRows(inputGates: UnsafePointer<Float>, recurrentGates: UnsafePointer<Float>,
                                    hiddenPrevious: UnsafePointer<Float>, hiddenStride: Int,
                                    hiddenGradient: UnsafeMutablePointer<Float>, nextHiddenGradient: UnsafePointer<Float>,
                                    inputGateGradient: UnsafeMutablePointer<Float>,
                                    recurrentGateGradient: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>?,
                                    units: Int, rows: Int, isa: KernelISA = .current) {
        var args = ck_gru_backward_args(zx: inputGates, q: recurrentGates, h_prev: hiddenPrevious, dh: hiddenGradient,
                                        dh_next: nextHiddenGradient, dzx: inputGateGradient, dq: recurrentGateGradient,
                                        mask: mask, h_stride: Int64(hiddenStride), units: Int64(units), rows: Int64(rows))
        ck_gru_backward_rows(isa.rawValue, &args)
    }
}
