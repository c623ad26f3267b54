import Layers
import Optimizers
import TensorCore

// The backward pass through time: the cell's steps in reverse, truncation, the state gradients,
// then both weight gradients and the input gradient as GEMMs over all steps.

extension RecurrentLayer {
    /// Accumulates the gradients of `kernel`, `recurrent_kernel` and `bias` through every time step
    /// and returns dLoss/dInput `[B, T, F]`; also sets ``initialStateGradient``. The gradients go
    /// through the dropout masks of the matching forward.
    /// - Precondition: `outputGradient` has the shape of the last training-mode forward's output.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        backward(outputGradient, inputGradient: true, stateGradient: nil)!
    }

    /// The backward pass of ``forwardReturningState(_:training:)``: `outputGradient` is dLoss/dOutput
    /// and `stateGradient` dLoss/dFinalState (`[dh]`, or `[dh, dc]` for an LSTM, each `[B, U]`).
    /// Accumulates the parameters' gradients, sets ``initialStateGradient`` and returns dLoss/dInput
    /// `[B, T, F]`. Cost: ``backward(_:)``'s.
    /// - Precondition: the shapes of the last training-mode forward's output and final state.
    public func backward(_ outputGradient: Tensor, stateGradient: [Tensor]) -> Tensor {
        backward(outputGradient, inputGradient: true, stateGradient: stateGradient)!
    }

    func backward(_ outputGradient: Tensor, inputGradient: Bool, stateGradient: [Tensor]? = nil) -> Tensor? {
        let pass: Pass
        if let p = tape.popLast() {
            if let old = lastPopped { freePasses.append(old) }
            lastPopped = p
            pass = p
        } else if let p = lastPopped {
            pass = p
        } else {
            neuritePreconditionFailure("backward of \(label) without a training-mode forward: call forward(_:training: true) first")
        }
        let (b, steps, features, u, g) = (pass.batch, pass.steps, pass.features, units, gateWidth)
        let expected = returnSequences ? [b, steps, u] : [b, u]
        neuritePrecondition(outputGradient.shape == expected,
                            "\(label) backward: output gradient has shape \(outputGradient.shape), the output had \(expected)")
        let kernel = kernel!, recurrentKernel = recurrentKernel!
        work.prepare(batch: b, steps: steps, units: u, gates: g, features: features,
                     recurrent: keepsRecurrentProjection)
        let dH = work.dH.pointer
        // Time-major output gradient.
        outputGradient.withUnsafeBufferPointer { src in
            let s = src.baseAddress!
            if returnSequences {
                for t in 0..<steps {
                    for r in 0..<b { (dH + (t * b + r) * u).update(from: s + (r * steps + t) * u, count: u) }
                }
            } else {
                // Only the last step has an output gradient: the cells take the others as zero
                // (StepPointers.zeroGradientSteps) instead of reading a zero-filled block.
                (dH + (steps - 1) * b * u).update(from: s, count: b * u)
            }
        }
        // The gradient reaching the final state from outside (zero unless given), where the
        // gradient from the steps after the last would be.
        if let stateGradient {
            neuritePrecondition(stateGradient.count == stateCount && stateGradient.allSatisfy { $0.shape == [b, u] },
                                "\(label) backward: the state gradient must be \(stateCount) tensor(s) [\(b), \(u)], got \(stateGradient.map(\.shape))")
            stateGradient[0].withUnsafeBufferPointer { work.dhNext.pointer.update(from: $0.baseAddress!, count: b * u) }
        } else {
            work.dhNext.pointer.update(repeating: 0, count: b * u)
        }
        if let stateGradient, hasCellState {
            stateGradient[1].withUnsafeBufferPointer { work.dcNext.pointer.update(from: $0.baseAddress!, count: b * u) }
        } else {
            work.dcNext.pointer.update(repeating: 0, count: b * u)
        }
        let dZ = work.dZ.pointer
        // The recurrent kernel, transposed, packed once for every step's dZ·Uᵀ.
        withSteps(of: pass, recurrentKernel: recurrentKernel.value, backward: true) { pointers in
            var step = pointers
            step.zeroGradientSteps = returnSequences ? 0 : steps - 1
            let chunks = step.batchChunks
            let partials = work.biasGradient.reserve(chunks * 2 * g)
            partials.update(repeating: 0, count: chunks * 2 * g)
            step.parallelBatch { chunk, rows in
                let r0 = rows.lowerBound
                for t in stride(from: steps - 1, through: 0, by: -1) {
                    cell.backwardStep(step, t: t, rows: rows)
                    if useBias {
                        // The bias gradient, while this step's gate gradients are in cache.
                        let sums = partials + chunk * 2 * g
                        Self.addColumnSums(dZ + (t * b + r0) * g, rows: rows.count, cols: g, into: sums)
                        if keepsRecurrentProjection {
                            Self.addColumnSums(work.dR.pointer + (t * b + r0) * g, rows: rows.count, cols: g, into: sums + g)
                        }
                    }
                    if let k = truncateGradient, t % k == 0, t > 0 {
                        (work.dhNext.pointer + r0 * u).update(repeating: 0, count: rows.count * u)
                        (work.dcNext.pointer + r0 * u).update(repeating: 0, count: rows.count * u)
                    }
                }
            }
        }
        // Weight gradients, each one GEMM over all steps.
        let dRec = keepsRecurrentProjection ? work.dR.pointer : dZ
        let rows = steps * b
        let rowStride = features + u, xh = pass.xh.pointer
        if keepsRecurrentProjection || pass.inputMasks > 1 || pass.stateMasks {
            // The GRU's input and recurrent parts have different gate gradients, and with dropout
            // masks per gate each gate has its own inputs: separate GEMMs.
            kernel.gradient.withUnsafeMutableBufferPointer { gk in
                if pass.inputMasks > 1 {
                    // dW_k = (X ⊙ m_k)ᵀ·dZ_k.
                    let masked = work.maskedInput.reserve(rows * features)
                    for k in 0..<gateCount {
                        Self.multiplyRows(xh, stride: rowStride, by: pass.inputMask.pointer + k * b * features,
                                          batch: b, rows: rows, width: features, into: masked)
                        sgemm(transposeA: true, transposeB: false, m: features, n: u, k: rows, alpha: 1,
                              a: masked, lda: features, b: dZ + k * u, ldb: g, beta: 1, c: gk.baseAddress! + k * u, ldc: g)
                    }
                } else {
                    sgemm(transposeA: true, transposeB: false, m: features, n: g, k: rows, alpha: 1,
                          a: xh, lda: rowStride, b: dZ, ldb: g, beta: 1, c: gk.baseAddress!, ldc: g)
                }
            }
            recurrentKernel.gradient.withUnsafeMutableBufferPointer { gr in
                if pass.stateMasks {
                    // dU_k = (H ⊙ r_k)ᵀ·dZ_k, with the dropped states the forward kept.
                    let dropped = pass.droppedStates.pointer
                    for k in 0..<gateCount {
                        sgemm(transposeA: true, transposeB: false, m: u, n: u, k: rows, alpha: 1,
                              a: dropped + k * u, lda: g, b: dRec + k * u, ldb: g, beta: 1, c: gr.baseAddress! + k * u, ldc: g)
                    }
                } else {
                    sgemm(transposeA: true, transposeB: false, m: u, n: g, k: rows, alpha: 1,
                          a: xh + features, lda: rowStride, b: dRec, ldb: g, beta: 1, c: gr.baseAddress!, ldc: g)
                }
            }
        } else {
            // [dW; dU] = [x, h]ᵀ·dZ: one GEMM, dZ read once.
            let both = work.weightGradient.reserve(rowStride * g)
            sgemm(transposeA: true, transposeB: false, m: rowStride, n: g, k: rows, alpha: 1,
                  a: xh, lda: rowStride, b: dZ, ldb: g, beta: 0, c: both, ldc: g)
            kernel.gradient.withUnsafeMutableBufferPointer { gk in
                for i in 0..<(features * g) { gk[i] += both[i] }
            }
            recurrentKernel.gradient.withUnsafeMutableBufferPointer { gr in
                let part = both + features * g
                for i in 0..<(u * g) { gr[i] += part[i] }
            }
        }
        if let bias {
            let chunks = StepPointers.chunks(batch: b, gateWidth: g)
            bias.gradient.withUnsafeMutableBufferPointer { gb in
                let p = gb.baseAddress!, sums = work.biasGradient.pointer
                for c in 0..<chunks {
                    for j in 0..<bias.value.count { p[j] += sums[c * 2 * g + j] }
                }
            }
        }
        var states = [Tensor(shape: [b, u]) { $0.baseAddress!.update(from: work.dhNext.pointer, count: b * u) }]
        if hasCellState {
            states.append(Tensor(shape: [b, u]) { $0.baseAddress!.update(from: work.dcNext.pointer, count: b * u) })
        }
        initialStateGradient = states
        guard inputGradient else { return nil }
        // dX = dZ·Wᵀ, back to batch-major (and to input order); through the input masks.
        let dxT = work.dx.reserve(rows * features)
        kernel.value.withUnsafeBufferPointer { w in
            if pass.inputMasks > 1 {
                // dX = Σ_k (dZ_k·W_kᵀ) ⊙ m_k.
                let part = work.maskedInput.reserve(rows * features)
                for k in 0..<gateCount {
                    sgemm(transposeA: false, transposeB: true, m: rows, n: features, k: u, alpha: 1,
                          a: dZ + k * u, lda: g, b: w.baseAddress! + k * u, ldb: g, beta: 0, c: part, ldc: features)
                    let mask = pass.inputMask.pointer + k * b * features
                    for i in 0..<rows {
                        let p = part + i * features, m = mask + (i % b) * features, d = dxT + i * features
                        if k == 0 {
                            for j in 0..<features { d[j] = p[j] * m[j] }
                        } else {
                            for j in 0..<features { d[j] += p[j] * m[j] }
                        }
                    }
                }
            } else {
                sgemm(transposeA: false, transposeB: true, m: rows, n: features, k: g, alpha: 1,
                      a: dZ, lda: g, b: w.baseAddress!, ldb: g, beta: 0, c: dxT, ldc: features)
            }
        }
        let inputMask: UnsafePointer<Float>? = pass.inputMasks == 1 ? UnsafePointer(pass.inputMask.pointer) : nil
        return Tensor(shape: [b, steps, features]) { out in
            let o = out.baseAddress!
            forEachRow(batch: b, steps: steps) { r, batchRow, timeRow in
                Self.copyRow(dxT + timeRow * features, to: o + batchRow * features, count: features,
                             mask: inputMask.map { $0 + r * features })
            }
        }
    }

    /// `into[j] += Σ_r m[r, j]`.
    static func addColumnSums(_ m: UnsafePointer<Float>, rows: Int, cols: Int, into: UnsafeMutablePointer<Float>) {
        let acc = UnsafeMutableBufferPointer(start: into, count: cols)
        for r in 0..<rows {
            let row = UnsafeBufferPointer(start: m + r * cols, count: cols)
            for j in 0..<cols { acc[j] += row[j] }
        }
    }
}
