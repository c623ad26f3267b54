import Layers
import Optimizers
import TensorCore

/// Long short-term memory over `[B, T, F]`, Keras' `LSTM` (its defaults, weights and gate order).
///
/// ```swift
/// LSTM(128)                                   // [B, T, F] -> [B, 128]
/// LSTM(64, returnSequences: true)             // [B, T, F] -> [B, T, 64]
/// ```
///
/// Per step, with the gates `i, f, g, o` side by side in `z = x·W + h·U + b` (`[B, 4U]`):
/// `c' = σ(f)⊙c + σ(i)⊙tanh(g)`, `h' = σ(o)⊙tanh(c')` (σ is `recurrentActivation`, tanh is
/// `activation`). Weights: `kernel` `[F, 4U]`, `recurrent_kernel` `[U, 4U]`, `bias` `[4U]`; with
/// `unitForgetBias` (the default) the forget gate's bias starts at 1. The state is `[h, c]`.
/// With `dropout`, `x` is `x ⊙ m` (one mask per sequence); with `recurrentDropout`, each gate `k`
/// has its own masks: `z_k = (x ⊙ m_k)·W_k + (h ⊙ r_k)·U_k + b_k`, as in Keras 3.
/// Cost, masking, states, dropout and truncated backpropagation: see ``RecurrentLayer``.
public final class LSTM: RecurrentLayer {
    /// `"LSTM"`.
    public override class var typeName: String { "LSTM" }
    override class var cellType: (any RecurrentCell.Type)? { LSTMCell.self }

    /// Whether the forget gate's bias starts at 1 (Keras' `unit_forget_bias`).
    public var unitForgetBias: Bool { (cell as? LSTMCell)?.unitForgetBias ?? true }

    /// An LSTM with `units` state features; the other arguments are Keras' (see ``RecurrentLayer``).
    /// - Precondition: `units > 0`; activations among tanh, sigmoid, relu and linear; rates in `0..<1`.
    public convenience init(units: Int, activation: ActivationFunction = .tanh, recurrentActivation: ActivationFunction = .sigmoid,
                            useBias: Bool = true, returnSequences: Bool = false, returnState: Bool = false,
                            goBackwards: Bool = false, stateful: Bool = false, maskValue: Float? = nil,
                            truncateGradient: Int? = nil, dropout: Float = 0, recurrentDropout: Float = 0,
                            seed: UInt64? = nil, unitForgetBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                            recurrentInitializer: Initializer? = nil, biasInitializer: Initializer = .zeros, name: String = "") {
        self.init(Options(units: units, activation: activation, recurrentActivation: recurrentActivation, useBias: useBias,
                          returnSequences: returnSequences, returnState: returnState, goBackwards: goBackwards,
                          stateful: stateful, maskValue: maskValue, truncateGradient: truncateGradient, dropout: dropout,
                          recurrentDropout: recurrentDropout, seed: seed, kernelInitializer: kernelInitializer,
                          recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer, name: name),
                  cell: LSTMCell(unitForgetBias: unitForgetBias))
    }

    /// `LSTM(128, returnSequences: true, dropout: 0.2, recurrentDropout: 0.2)`: ``init(units:activation:recurrentActivation:useBias:returnSequences:returnState:goBackwards:stateful:maskValue:truncateGradient:dropout:recurrentDropout:seed:unitForgetBias:kernelInitializer:recurrentInitializer:biasInitializer:name:)``.
    public convenience init(_ units: Int, returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false,
                            stateful: Bool = false, maskValue: Float? = nil, truncateGradient: Int? = nil,
                            dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil, name: String = "") {
        self.init(units: units, returnSequences: returnSequences, returnState: returnState, goBackwards: goBackwards,
                  stateful: stateful, maskValue: maskValue, truncateGradient: truncateGradient,
                  dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, name: name)
    }
}

/// The LSTM's step, driven through time by ``LSTM``: the gates `i, f, g, o` side by side in
/// `z = x·W + h·U + b` (`[B, 4U]`), with Keras' defaults (sigmoid gates, tanh) in the fused,
/// vectorised kernels of `LSTMKernels` and other activations in plain loops.
struct LSTMCell: RecurrentCell {
    static var gateCount: Int { 4 }
    static var hasCellState: Bool { true }
    static var ownKeys: Set<String> { ["unit_forget_bias"] }

    /// Whether the forget gate's bias starts at 1.
    let unitForgetBias: Bool

    init(unitForgetBias: Bool) {
        self.unitForgetBias = unitForgetBias
    }

    init(config: [String: ConfigValue], who: String) throws {
        var forget = true
        if config["unit_forget_bias"] != nil && config["unit_forget_bias"] != .null {
            forget = try config.bool("unit_forget_bias", of: who)
        }
        unitForgetBias = forget
    }

    var config: [String: ConfigValue] { ["unit_forget_bias": .bool(unitForgetBias)] }

    /// `[4U]` from the initialiser, with the forget gate's part set to 1 with `unitForgetBias`.
    func makeBias(units u: Int, initializer: Initializer, generator: inout SeededGenerator) -> Tensor {
        var b = initializer.make([Self.gateCount * u], generator: &generator)
        if unitForgetBias {
            b.withUnsafeMutableBufferPointer { p in for j in u..<(2 * u) { p[j] = 1 } }
        }
        return b
    }

    func forwardStep(_ p: StepPointers, t: Int, rows: Range<Int>) {
        let (b, u) = (p.batch, p.units)
        let g = 4 * u
        let z = p.gates + t * b * g
        let r0 = rows.lowerBound
        p.multiplyRecurrent(t: t, rows: rows, into: z, beta: 1)
        if p.gate == .sigmoid && p.outputGate == .tanh {
            // Keras' defaults: the fused, vectorised kernel.
            LSTMKernels.forwardRows(gates: z + r0 * g, bias: p.inputBias, cellPrevious: p.cells + (t * b + r0) * u,
                                    cell: p.cells + ((t + 1) * b + r0) * u,
                                    hiddenPrevious: p.states + (t * b + r0) * p.stateStride,
                                    hidden: p.states + ((t + 1) * b + r0) * p.stateStride, hiddenStride: p.stateStride,
                                    mask: p.mask.map { UnsafePointer($0 + t * b + r0) }, units: u, rows: rows.count,
                                    cellTanh: p.cellTanh + (t * b + r0) * u, isa: p.isa)
            return
        }
        for r in rows {
            let hPrev = p.states + (t * b + r) * p.stateStride, h = p.states + ((t + 1) * b + r) * p.stateStride
            let cPrev = p.cells + (t * b + r) * u, c = p.cells + ((t + 1) * b + r) * u
            if let m = p.mask, m[t * b + r] == 0 {
                h.update(from: hPrev, count: u)
                c.update(from: cPrev, count: u)
                continue
            }
            let zr = z + r * g
            if let ib = p.inputBias { for j in 0..<g { zr[j] += ib[j] } }
            p.gate.apply(zr, 2 * u, isa: p.isa)
            p.outputGate.apply(zr + 2 * u, u, isa: p.isa)
            p.gate.apply(zr + 3 * u, u, isa: p.isa)
            for j in 0..<u { c[j] = zr[u + j] * cPrev[j] + zr[j] * zr[2 * u + j] }
            p.outputGate.apply(c, into: h, u, isa: p.isa)
            for j in 0..<u { h[j] *= zr[3 * u + j] }
        }
    }

    func backwardStep(_ p: StepPointers, t: Int, rows: Range<Int>) {
        let (b, u) = (p.batch, p.units)
        let g = 4 * u
        let z = p.gates + t * b * g, dz = p.dZ + t * b * g
        let standard = p.gate == .sigmoid && p.outputGate == .tanh
        let r0 = rows.lowerBound
        // The fused kernel takes a zero output gradient as zero without reading it.
        let dh = standard ? p.dH + t * b * u : p.outputGradient(t: t, rows: rows)
        if standard {
            LSTMKernels.backwardRows(gates: z + r0 * g, cellPrevious: p.cells + (t * b + r0) * u,
                                     cell: p.cells + ((t + 1) * b + r0) * u, hiddenGradient: dh + r0 * u,
                                     nextHiddenGradient: p.dhNext + r0 * u, cellGradient: p.dcNext + r0 * u,
                                     gateGradient: dz + r0 * g, mask: p.mask.map { UnsafePointer($0 + t * b + r0) },
                                     units: u, rows: rows.count, cellTanh: p.cellTanh + (t * b + r0) * u,
                                     hiddenGradientIsZero: t < p.zeroGradientSteps, isa: p.isa)
        } else {
            backwardRowsGeneric(p, t: t, rows: rows)
        }
        p.multiplyRecurrentBack(dz, rows: rows)
        if let m = p.mask {
            for r in rows where m[t * b + r] == 0 { (p.dhNext + r * u).update(from: dh + r * u, count: u) }
        }
    }

    /// The backward rows for other activations than Keras' defaults.
    private func backwardRowsGeneric(_ p: StepPointers, t: Int, rows: Range<Int>) {
        let (b, u) = (p.batch, p.units)
        let g = 4 * u
        let dh = p.dH + t * b * u, z = p.gates + t * b * g, dz = p.dZ + t * b * g
        for r in rows {
            let dhr = dh + r * u, dcr = p.dcNext + r * u, dzr = dz + r * g, next = p.dhNext + r * u
            for j in 0..<u { dhr[j] += next[j] }
            if let m = p.mask, m[t * b + r] == 0 {
                dzr.update(repeating: 0, count: g)
                continue
            }
            let zr = z + r * g
            let c = p.cells + ((t + 1) * b + r) * u, cPrev = p.cells + (t * b + r) * u
            let tc = dzr + 3 * u  // tanh(c), until overwritten by do below
            p.outputGate.apply(c, into: tc, u, isa: p.isa)
            let ga = p.gate, oa = p.outputGate
            for j in 0..<u {
                let i = zr[j], f = zr[u + j], gg = zr[2 * u + j], o = zr[3 * u + j], tcj = tc[j], dhj = dhr[j]
                let dc = dcr[j] + dhj * o * oa.derivative(output: tcj)
                dzr[j] = dc * gg * ga.derivative(output: i)
                dzr[u + j] = dc * cPrev[j] * ga.derivative(output: f)
                dzr[2 * u + j] = dc * i * oa.derivative(output: gg)
                dzr[3 * u + j] = dhj * tcj * ga.derivative(output: o)
                dcr[j] = dc * f
            }
        }
    }
}
