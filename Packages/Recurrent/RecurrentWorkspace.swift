// What the recurrent layers keep between the passes: a training-mode forward's record for its
// backward (`Pass`) and the backward pass's scratch space (`Workspace`), both owned by the layer
// and reused from batch to batch.

/// What one training-mode forward keeps for its backward pass (time-major).
final class Pass {
    var batch = 0, steps = 0, features = 0
    let xh = FloatBuffer()       // [(T+1)·B, F+U]: rows [x_t, h_(t-1)]; block T holds the final h
    let gates = FloatBuffer()    // [T·B, G·U]: activated gates
    let cells = FloatBuffer()    // [(T+1)·B, U]: the LSTM's c
    let cellTanh = FloatBuffer() // [T·B, U]: the LSTM's tanh(c) of each step, for its backward pass
    let recurrent = FloatBuffer() // [T·B, 3U]: the GRU's h·U + b_rec
    let mask = FloatBuffer()     // [T·B]: 1 where the step is taken
    var masked = false
    let inputMask = FloatBuffer()  // [M, B, F]: the input dropout masks (M = inputMasks)
    let stateMask = FloatBuffer()  // [G, B, U]: the recurrent dropout masks, one per gate
    let droppedStates = FloatBuffer()  // [T·B, G·U]: rows [h_(t-1) ⊙ r_1, ..., h_(t-1) ⊙ r_G]
    /// How many input dropout masks this pass uses: 0, 1 (for every gate) or G (one per gate).
    var inputMasks = 0
    /// Whether this pass drops the state in the recurrent products.
    var stateMasks = false

    func prepare(batch: Int, steps: Int, features: Int, units: Int, gates g: Int, cells: Bool, recurrent: Bool, masked: Bool,
                 inputMasks: Int, stateMasks: Bool) {
        self.batch = batch
        self.steps = steps
        self.features = features
        self.masked = masked
        self.inputMasks = inputMasks
        self.stateMasks = stateMasks
        if inputMasks > 0 { inputMask.reserve(inputMasks * batch * features) }
        if stateMasks {
            stateMask.reserve(g * batch)
            droppedStates.reserve(steps * batch * g)
        }
        let rows = batch * steps
        xh.reserve((steps + 1) * batch * (features + units))
        gates.reserve(rows * g)
        if cells {
            self.cells.reserve((steps + 1) * batch * units)
            cellTanh.reserve(rows * units)
        }
        if recurrent { self.recurrent.reserve(rows * g) }
        if masked { mask.reserve(rows) }
    }
}

/// Backward scratch space, kept by the layer between batches.
final class Workspace {
    let dH = FloatBuffer()      // [T·B, U]: output gradient, then dh per step
    let dZ = FloatBuffer()      // [T·B, G·U]: gate gradients (input side)
    let dR = FloatBuffer()      // [T·B, 3U]: the GRU's recurrent-side gate gradients
    let dhNext = FloatBuffer()  // [B, U]
    let dcNext = FloatBuffer()  // [B, U]
    let dx = FloatBuffer()      // [T·B, F]
    let biasGradient = FloatBuffer()  // [chunks, 2·G·U]: each row range's part of the bias gradient
    let weightGradient = FloatBuffer()  // [F+U, G·U]: both kernels' gradients of one backward pass
    let maskedInput = FloatBuffer()  // [T·B, F]: x ⊙ m_k for one gate's mask, or one gate's part of dX
    let stateScratch = FloatBuffer()  // [B, U]: one gate's part of dh_(t-1), with recurrent dropout
    let stackedKernel = FloatBuffer()  // [F+U, G·U]: [W; U] for the forward steps' products

    func prepare(batch: Int, steps: Int, units: Int, gates: Int, features: Int, recurrent: Bool) {
        let rows = batch * steps
        dH.reserve(rows * units)
        dZ.reserve(rows * gates)
        if recurrent { dR.reserve(rows * gates) }
        dhNext.reserve(batch * units)
        dcNext.reserve(batch * units)
        stateScratch.reserve(batch * units)
    }
}
