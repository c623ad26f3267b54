import CKernels

/// The element-wise part of an LSTM time step with Keras' default activations (sigmoid gates,
/// tanh candidate and output), fused per row and vectorised per `KernelISA`: what the Recurrent
/// module's `LSTM` runs between its matrix products. Gates lie side by side in a row in Keras'
/// order i, f, g, o (`4 * units` floats). Each call handles `rows` consecutive samples on the
/// calling thread; arrays must not overlap.
public enum LSTMKernels {
    /// Adds `bias` (`4 * units`, or nil) to the pre-activations `gates`, activates them in place,
    /// and writes `cell = f ⊙ cellPrevious + i ⊙ g` and `hidden = o ⊙ tanh(cell)`. A row whose
    /// `mask` entry is 0 copies `cellPrevious` and `hiddenPrevious` instead. Hidden rows are
    /// `hiddenStride` floats apart, cell rows `units`, gate rows `4 * units`.
    public static func forwardRows(gates: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                                   cellPrevious: UnsafePointer<Float>, cell: UnsafeMutablePointer<Float>,
                                   hiddenPrevious: UnsafePointer<Float>, hidden: UnsafeMutablePointer<Float>,
                                   hiddenStride: Int, mask: UnsafePointer<Float>?, units: Int, rows: Int,
                                   isa: KernelISA = .current) {
        var args = ck_lstm_forward_args(z: gates, bias: bias, c_prev: cellPrevious, c: cell, h_prev: hiddenPrevious,
                                        h: hidden, mask: mask, h_stride: Int64(hiddenStride), units: Int64(units),
                                        rows: Int64(rows))
        ck_lstm_forward_rows(isa.rawValue, &args)
    }

    /// From the activated `gates`, the cells before and after the step, the step's output gradient
    /// `hiddenGradient` (to which `nextHiddenGradient` is added in place) and `cellGradient` (the
    /// gradient from the next step, replaced by the previous step's), writes the gates'
    /// pre-activation gradients `gateGradient`. A masked row only gets the addition, a zero
    /// gradient row, and keeps its cell gradient. Rows as in ``forwardRows(gates:bias:cellPrevious:cell:hiddenPrevious:hidden:hiddenStride:mask:units:rows:isa:)``
    /// (gradient rows of `units` floats).
    public static func backwardRows(gates: UnsafePointer<Float>, cellPrevious: UnsafePointer<Float>,
                                    cell: UnsafePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>,
                                    nextHiddenGradient: UnsafePointer<Float>, cellGradient: UnsafeMutablePointer<Float>,
                                    gateGradient: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>?,
                                    units: Int, rows: Int, isa: KernelISA = .current) {
        var args = ck_lstm_backward_args(z: gates, c_prev: cellPrevious, c: cell, dh: hiddenGradient,
                                         dh_next: nextHiddenGradient, dc: cellGradient, dz: gateGradient, mask: mask,
                                         units: Int64(units), rows: Int64(rows))
        ck_lstm_backward_rows(isa.rawValue, &args)
    }
}
