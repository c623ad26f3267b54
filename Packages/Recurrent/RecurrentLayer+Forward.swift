import Layers
import Optimizers
import TensorCore

// The forward pass through time: the input product (in each step's product with the stacked
// kernel, or of all steps at once), masks, dropout and initial states; the cell computes each step.

extension RecurrentLayer {
    /// Runs the layer over `input` `[B, T, F]`: `[B, T, U]` with `returnSequences`, else `[B, U]`.
    /// In training with a dropout rate above 0, draws this pass's masks first.
    /// - Precondition: built, the input is `[B, T, F]` with the built `F`, and any
    ///   ``initialState`` (or carried state) has `B` rows; the messages name the shapes.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        guard let kernel, let recurrentKernel else {
            neuritePreconditionFailure("\(label) is not built: build it (or its model) before calling forward")
        }
        let features = kernel.value.shape[0]
        neuritePrecondition(input.rank == 3 && input.shape[2] == features && input.shape[0] > 0 && input.shape[1] > 0,
                            "\(label) expects input [B, T, \(features)] (kernel \(kernel.value.shape)), got \(input.shape)")
        let (b, steps, u, g) = (input.shape[0], input.shape[1], units, gateWidth)
        let pass = freePasses.popLast() ?? Pass()
        // Keras 3 draws one input mask per gate when recurrent dropout is on (its implementation 1).
        let inputMasks = training && dropout > 0 ? (recurrentDropout > 0 ? gateCount : 1) : 0
        pass.prepare(batch: b, steps: steps, features: features, units: u, gates: g,
                     cells: hasCellState, recurrent: keepsRecurrentProjection, masked: maskValue != nil,
                     inputMasks: inputMasks, stateMasks: training && recurrentDropout > 0)
        drawDropoutMasks(pass)
        let inputMask: UnsafePointer<Float>? = inputMasks == 1 ? UnsafePointer(pass.inputMask.pointer) : nil
        // Each row of `xh` is [x_t, h_(t-1)] for one sample and step: the input part feeds the input
        // GEMM, the state part the recurrent one, and the weight gradients of both come from one
        // GEMM over all steps, xhᵀ·dZ.
        let rowStride = features + u
        let x = pass.xh.pointer, z = pass.gates.pointer, states = pass.xh.pointer + features

        // Time-major copy of the input (reversed for goBackwards) and the mask.
        input.withUnsafeBufferPointer { src in
            let s = src.baseAddress!
            forEachRow(batch: b, steps: steps) { r, batchRow, timeRow in
                let from = s + batchRow * features
                // One mask for every gate: the input GEMM and the kernel's gradient read x ⊙ m.
                Self.copyRow(from, to: x + timeRow * rowStride, count: features, mask: inputMask.map { $0 + r * features })
                if let maskValue {
                    var keep: Float = 0
                    for j in 0..<features where from[j] != maskValue { keep = 1; break }
                    pass.mask.pointer[timeRow] = keep
                }
            }
        }
        // Without a separate recurrent projection or per-gate masks, each step multiplies its rows
        // [x_t, h_(t-1)] by the stacked kernel [W; U] in one product (see `withSteps`); otherwise
        // the input part of every step at once: Z = X·W (+ input bias), which the steps add to.
        let stacked = stacksInputKernel(pass)
        if !stacked { kernel.value.withUnsafeBufferPointer { w in
            if inputMasks > 1 {
                // A mask per gate: Z_k = (X ⊙ m_k)·W_k, gate by gate.
                let masked = work.maskedInput.reserve(steps * b * features)
                for k in 0..<gateCount {
                    Self.multiplyRows(x, stride: rowStride, by: pass.inputMask.pointer + k * b * features,
                                      batch: b, rows: steps * b, width: features, into: masked)
                    sgemm(transposeA: false, transposeB: false, m: steps * b, n: u, k: features, alpha: 1,
                          a: masked, lda: features, b: w.baseAddress! + k * u, ldb: g, beta: 0, c: z + k * u, ldc: g)
                }
            } else {
                sgemm(transposeA: false, transposeB: false, m: steps * b, n: g, k: features, alpha: 1,
                      a: x, lda: rowStride, b: w.baseAddress!, ldb: g, beta: 0, c: z, ldc: g)
            }
        } }
        // Initial states.
        let start = initialState ?? (stateful ? carriedState : nil)
                if let start {
            neuritePrecondition(start.count == stateCount && start.allSatisfy { $0.shape == [b, u] },
                                "\(label) needs an initial state of \(stateCount) tensor(s) [\(b), \(u)] for input \(input.shape), got \(start.map(\.shape))")
            start[0].withUnsafeBufferPointer { h in
                for r in 0..<b { (states + r * rowStride).update(from: h.baseAddress! + r * u, count: u) }
            }
            if stateCount == 2 { start[1].withUnsafeBufferPointer { pass.cells.pointer.update(from: $0.baseAddress!, count: b * u) } }
        } else {
            for r in 0..<b { (states + r * rowStride).update(repeating: 0, count: u) }
            if stateCount == 2 { pass.cells.pointer.update(repeating: 0, count: b * u) }
        }
        // The loop over time.
        withSteps(of: pass, recurrentKernel: recurrentKernel.value, inputKernel: stacked ? kernel.value : nil,
                  backward: false) { step in
            step.parallelBatch { _, rows in
                for t in 0..<steps { cell.forwardStep(step, t: t, rows: rows) }
            }
        }
        // Final state, outputs.
        let last = states + steps * b * rowStride
        finalState = [Tensor(shape: [b, u]) { h in
            for r in 0..<b { (h.baseAddress! + r * u).update(from: last + r * rowStride, count: u) }
        }]
        if stateCount == 2 {
            let lastC = pass.cells.pointer + steps * b * u
            finalState.append(Tensor(shape: [b, u]) { $0.baseAddress!.update(from: lastC, count: b * u) })
        }
        if stateful { carriedState = finalState }
        let output: Tensor
        if returnSequences {
            output = Tensor(shape: [b, steps, u]) { out in
                let o = out.baseAddress!
                for r in 0..<b {
                    for t in 0..<steps { (o + (r * steps + t) * u).update(from: states + ((t + 1) * b + r) * rowStride, count: u) }
                }
            }
        } else {
            output = finalState[0]
        }
        if training {
            tape.append(pass)
        } else {
            freePasses.append(pass)
        }
        return output
    }

    /// Draws the dropout masks `pass` needs (none at inference or with both rates 0): the input
    /// masks first, then the recurrent ones, each `[B, ·]` row by row, as ``Dropout`` draws its
    /// masks; sets ``dropoutMasks`` and ``recurrentDropoutMasks``.
    private func drawDropoutMasks(_ pass: Pass) {
        guard pass.inputMasks > 0 || pass.stateMasks else {
            if !dropoutMasks.isEmpty || !recurrentDropoutMasks.isEmpty {
                dropoutMasks = []
                recurrentDropoutMasks = []
            }
            return
        }
        guard var generator = dropoutGenerator else {
            neuritePreconditionFailure("\(label) has no dropout stream: build it (or its model) before a training-mode forward")
        }
        let (b, f, u) = (pass.batch, pass.features, units)
        func draw(_ rate: Float, width: Int, into buffer: UnsafeMutablePointer<Float>) -> Tensor {
            let keep = 1 - rate, scale = 1 / (1 - rate)
            let mask = Tensor(shape: [b, width]) { m in
                for i in 0..<m.count { m[i] = generator.nextUnitFloat() < keep ? scale : 0 }
            }
            mask.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: b * width) }
            return mask
        }
        dropoutMasks = (0..<pass.inputMasks).map { draw(dropout, width: f, into: pass.inputMask.pointer + $0 * b * f) }
        recurrentDropoutMasks = pass.stateMasks
            ? (0..<gateCount).map { draw(recurrentDropout, width: u, into: pass.stateMask.pointer + $0 * b * u) } : []
        dropoutGenerator = generator
    }

    /// `into[i, j] = a[i·stride + j] · mask[(i mod batch)·width + j]` for `i < rows`, `j < width`:
    /// time-major rows times the per-sample mask.
    static func multiplyRows(_ a: UnsafePointer<Float>, stride: Int, by mask: UnsafePointer<Float>, batch: Int,
                             rows: Int, width: Int, into: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            let src = a + i * stride, m = mask + (i % batch) * width, dst = into + i * width
            for j in 0..<width { dst[j] = src[j] * m[j] }
        }
    }

    /// Whether the forward steps of `pass` multiply `[x_t, h_(t-1)]` by the stacked kernel
    /// `[W; U]` in one product: when every gate sees the same input and state (no per-gate dropout
    /// masks) and the recurrent projection is not kept apart (not the GRU). One product of depth
    /// F + U per step replaces the input GEMM over all steps and the step's `beta = 1` read of its
    /// result, rows that have left the caches by the time their step comes.
    func stacksInputKernel(_ pass: Pass) -> Bool {
        !keepsRecurrentProjection && pass.inputMasks <= 1 && !pass.stateMasks
    }

    /// Calls `body` with what the cell's steps over `pass` see: the recurrent kernel `[U, G·U]`
    /// packed once for the products of every step (for the backward pass its transpose, for
    /// `dZ·Uᵀ`), or with `inputKernel` (forward only) the stacked `[W; U]` `[F + U, G·U]`, with
    /// recurrent dropout each gate's block of it (for `(h ⊙ r_k)·U_k`, or `dZ_k·U_kᵀ`), the
    /// biases and the pass's buffers.
    func withSteps<R>(of pass: Pass, recurrentKernel: Tensor, inputKernel: Tensor? = nil, backward: Bool,
                      _ body: (StepPointers) -> R) -> R {
        let (u, g) = (units, gateWidth)
        let stacked = inputKernel != nil && !backward
        let (packed, gateKernels): (PackedMatrix, [PackedMatrix]?)
        if let inputKernel, stacked {
            let f = inputKernel.shape[0]
            let both = work.stackedKernel.reserve((f + u) * g)
            inputKernel.withUnsafeBufferPointer { both.update(from: $0.baseAddress!, count: f * g) }
            recurrentKernel.withUnsafeBufferPointer { (both + f * g).update(from: $0.baseAddress!, count: u * g) }
            (packed, gateKernels) = (PackedMatrix(both, ldb: g, transposed: false, k: f + u, n: g), nil)
        } else {
            (packed, gateKernels) = recurrentKernel.withUnsafeBufferPointer { p in
                let k = p.baseAddress!
                return (backward ? PackedMatrix(k, ldb: g, transposed: true, k: g, n: u) : PackedMatrix(k, ldb: g, transposed: false, k: u, n: g),
                        pass.stateMasks ? (0..<gateCount).map { PackedMatrix(k + $0 * u, ldb: g, transposed: backward, k: u, n: u) } : nil)
            }
        }
        return withBiases { ib, rb in
            body(StepPointers(pass: pass, work: work, units: u, gateWidth: g, recurrent: packed, gateKernels: gateKernels,
                              stackedInput: stacked,
                              inputBias: ib, recurrentBias: rb, outputGate: outputGate, gate: gateFunction))
        }
    }

    /// Calls `body` with the input bias (`[G·U]`) and the recurrent bias (the GRU's second bias
    /// row), or nil where there is none.
    func withBiases<R>(_ body: (UnsafePointer<Float>?, UnsafePointer<Float>?) -> R) -> R {
        guard let bias else { return body(nil, nil) }
        let g = gateWidth
        return bias.value.withUnsafeBufferPointer { p in
            body(p.baseAddress!, keepsRecurrentProjection ? p.baseAddress! + g : nil)
        }
    }

    /// Visits every sample and step of a batch of sequences: `body(r, batchRow, timeRow)` with
    /// `batchRow = r·T + t'` the row of sample `r` at step `t'` of `[B, T, ·]` (in input order) and
    /// `timeRow = t·B + r` its row in the layer's time-major copy (in processing order: `t' = t`,
    /// or `T - 1 - t` with `goBackwards`). Steps outer, samples inner, as the copy is laid out.
    @inline(__always)
    func forEachRow(batch b: Int, steps: Int, _ body: (_ sample: Int, _ batchRow: Int, _ timeRow: Int) -> Void) {
        for t in 0..<steps {
            let ts = goBackwards ? steps - 1 - t : t
            for r in 0..<b { body(r, r * steps + ts, t * b + r) }
        }
    }

    /// `to[j] = from[j] · mask[j]` for `j < count`, or a plain copy without a mask.
    @inline(__always)
    static func copyRow(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, count: Int, mask: UnsafePointer<Float>?) {
        if let mask {
            for j in 0..<count { to[j] = from[j] * mask[j] }
        } else {
            to.update(from: from, count: count)
        }
    }

    /// The output and the final state of a forward pass over `input` `[B, T, F]`: Keras'
    /// `[output, state_h(, state_c)]` of a layer with `return_state`. The output is ``forward(_:training:)``'s;
    /// the state is ``finalState`` (`[h]`, or `[h, c]` for an LSTM, each `[B, U]`). Works whatever
    /// `returnState` says (that flag only tells a model the layer has several outputs); for
    /// training, pair it with ``backward(_:stateGradient:)``. Cost: the forward pass's.
    public func forwardReturningState(_ input: Tensor, training: Bool) -> (output: Tensor, state: [Tensor]) {
        let output = forward(input, training: training)
        return (output, finalState)
    }
}
