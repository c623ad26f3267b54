import Layers
import Optimizers
import TensorCore

/// Gated recurrent unit over `[B, T, F]`, Keras 3's `GRU` (`reset_after=True`, its default, which
/// is also cuDNN's and PyTorch's formulation).
///
/// ```swift
/// GRU(64)                                     // [B, T, F] -> [B, 64]
/// ```
///
/// Per step, with the gates `z, r` and the candidate `ĥ` side by side (`[B, 3U]`), `a = x·W + b_in`
/// and `q = h·U + b_rec`: `z = σ(a_z + q_z)`, `r = σ(a_r + q_r)`, `ĥ = tanh(a_h + r⊙q_h)`,
/// `h' = z⊙h + (1 − z)⊙ĥ`. Weights: `kernel` `[F, 3U]`, `recurrent_kernel` `[U, 3U]`, `bias`
/// `[2, 3U]` (the input bias, then the recurrent one). The state is `[h]`.
/// With `dropout`, `x` is `x ⊙ m` (one mask per sequence); with `recurrentDropout`, each gate `k`
/// has its own masks, `a_k = (x ⊙ m_k)·W_k + b_in,k` and `q_k = (h ⊙ r_k)·U_k + b_rec,k`, while
/// `h' = z⊙h + (1 − z)⊙ĥ` mixes the undropped `h`, as in Keras 3.
/// Cost, masking, states, dropout and truncated backpropagation: see ``RecurrentLayer``.
public final class GRU: RecurrentLayer {
    /// `"GRU"`.
    public override class var typeName: String { "GRU" }
    override class var cellType: (any RecurrentCell.Type)? { GRUCell.self }

    /// A GRU with `units` state features; the other arguments are Keras' (see ``RecurrentLayer``).
    /// - Precondition: `units > 0`; activations among tanh, sigmoid, relu and linear; rates in `0..<1`.
    public convenience init(units: Int, activation: ActivationFunction = .tanh, recurrentActivation: ActivationFunction = .sigmoid,
                            useBias: Bool = true, returnSequences: Bool = false, returnState: Bool = false,
                            goBackwards: Bool = false, stateful: Bool = false, maskValue: Float? = nil,
                            truncateGradient: Int? = nil, dropout: Float = 0, recurrentDropout: Float = 0,
                            seed: UInt64? = nil, kernelInitializer: Initializer = .glorotUniform,
                            recurrentInitializer: Initializer? = nil, biasInitializer: Initializer = .zeros, name: String = "") {
        self.init(Options(units: units, activation: activation, recurrentActivation: recurrentActivation, useBias: useBias,
                          returnSequences: returnSequences, returnState: returnState, goBackwards: goBackwards,
                          stateful: stateful, maskValue: maskValue, truncateGradient: truncateGradient, dropout: dropout,
                          recurrentDropout: recurrentDropout, seed: seed, kernelInitializer: kernelInitializer,
                          recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer, name: name),
                  cell: GRUCell())
    }

    /// `GRU(64, returnSequences: true, dropout: 0.2)`.
    public convenience init(_ units: Int, returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false,
                            stateful: Bool = false, maskValue: Float? = nil, truncateGradient: Int? = nil,
                            dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil, name: String = "") {
        self.init(units: units, returnSequences: returnSequences, returnState: returnState, goBackwards: goBackwards,
                  stateful: stateful, maskValue: maskValue, truncateGradient: truncateGradient,
                  dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, name: name)
    }
}

/// The GRU's step (`reset_after=True`), driven through time by ``GRU``: the gates `z, r` and the
/// candidate side by side (`[B, 3U]`), the recurrent projection `h·U + b_rec` kept apart per step;
/// Keras' defaults (sigmoid gates, tanh) in the fused, vectorised kernels of `GRUKernels`, other
/// activations in plain loops.
struct GRUCell: RecurrentCell {
    static var gateCount: Int { 3 }
    static var keepsRecurrentProjection: Bool { true }
    static var ownKeys: Set<String> { ["reset_after"] }

    init() {}

    /// Accepts `reset_after` absent, null or true (Keras 3's default), the formulation computed here.
    init(config: [String: ConfigValue], who: String) throws {
        switch config["reset_after"] {
        case nil, .null?, .bool(true)?: break
        case let v?: throw LayerError("\(who) config \"reset_after\": \(v) is not supported (true only, Keras 3's default)")
        }
    }

    var config: [String: ConfigValue] { ["reset_after": .bool(true)] }

    /// `[2, 3U]`: the input bias, then the recurrent one.
    func makeBias(units: Int, initializer: Initializer, generator: inout SeededGenerator) -> Tensor {
        initializer.make([2, Self.gateCount * units], generator: &generator)
    }

    func forwardStep(_ p: StepPointers, t: Int, rows: Range<Int>) {
        let (b, u) = (p.batch, p.units)
        let g = 3 * u
        let zx = p.gates + t * b * g, q = p.recurrent + t * b * g
        let r0 = rows.lowerBound
        p.multiplyRecurrent(t: t, rows: rows, into: q, beta: 0)
        if p.gate == .sigmoid && p.outputGate == .tanh {
            // Keras' defaults: the fused, vectorised kernel.
            GRUKernels.forwardRows(inputGates: zx + r0 * g, recurrentGates: q + r0 * g, inputBias: p.inputBias,
                                   recurrentBias: p.recurrentBias, hiddenPrevious: p.states + (t * b + r0) * p.stateStride,
                                   hidden: p.states + ((t + 1) * b + r0) * p.stateStride, hiddenStride: p.stateStride,
                                   mask: p.mask.map { UnsafePointer($0 + t * b + r0) }, units: u, rows: rows.count, isa: p.isa)
            return
        }
        for r in rows {
            let hPrev = p.states + (t * b + r) * p.stateStride, h = p.states + ((t + 1) * b + r) * p.stateStride
            if let m = p.mask, m[t * b + r] == 0 {
                h.update(from: hPrev, count: u)
                continue
            }
            let qr = q + r * g, zr = zx + r * g
            if let ib = p.inputBias { for j in 0..<g { zr[j] += ib[j] } }
            if let rb = p.recurrentBias { for j in 0..<g { qr[j] += rb[j] } }
            for j in 0..<(2 * u) { zr[j] += qr[j] }
            p.gate.apply(zr, 2 * u, isa: p.isa)
            for j in 0..<u { zr[2 * u + j] += zr[u + j] * qr[2 * u + j] }
            p.outputGate.apply(zr + 2 * u, u, isa: p.isa)
            for j in 0..<u {
                let z = zr[j]
                h[j] = z * hPrev[j] + (1 - z) * zr[2 * u + j]
            }
        }
    }

    func backwardStep(_ p: StepPointers, t: Int, rows: Range<Int>) {
        let (b, u) = (p.batch, p.units)
        let g = 3 * u
        let dh = p.outputGradient(t: t, rows: rows), zx = p.gates + t * b * g, q = p.recurrent + t * b * g
        let dz = p.dZ + t * b * g, dq = p.dR + t * b * g
        let r0 = rows.lowerBound
        if p.gate == .sigmoid && p.outputGate == .tanh {
            GRUKernels.backwardRows(inputGates: zx + r0 * g, recurrentGates: q + r0 * g,
                                    hiddenPrevious: p.states + (t * b + r0) * p.stateStride, hiddenStride: p.stateStride,
                                    hiddenGradient: dh + r0 * u, nextHiddenGradient: p.dhNext + r0 * u,
                                    inputGateGradient: dz + r0 * g, recurrentGateGradient: dq + r0 * g,
                                    mask: p.mask.map { UnsafePointer($0 + t * b + r0) }, units: u, rows: rows.count, isa: p.isa)
        } else {
            backwardRowsGeneric(p, t: t, rows: rows)
        }
        p.multiplyRecurrentBack(dq, rows: rows)
        for i in (r0 * u)..<(rows.upperBound * u) { p.dhNext[i] += dh[i] }
    }

    /// The backward rows for other activations than Keras' defaults.
    private func backwardRowsGeneric(_ p: StepPointers, t: Int, rows: Range<Int>) {
        let (b, u) = (p.batch, p.units)
        let g = 3 * u
        let dh = p.dH + t * b * u, zx = p.gates + t * b * g, q = p.recurrent + t * b * g
        let dz = p.dZ + t * b * g, dq = p.dR + t * b * g
        for r in rows {
            let dhr = dh + r * u, dzr = dz + r * g, dqr = dq + r * g, next = p.dhNext + r * u
            for j in 0..<u { dhr[j] += next[j] }
            if let m = p.mask, m[t * b + r] == 0 {
                dzr.update(repeating: 0, count: g)
                dqr.update(repeating: 0, count: g)
                continue  // dh is carried to the previous step as it is
            }
            let zr = zx + r * g, qr = q + r * g, hPrev = p.states + (t * b + r) * p.stateStride
            for j in 0..<u {
                let z = zr[j], rr = zr[u + j], hh = zr[2 * u + j], dhj = dhr[j]
                let dhh = dhj * (1 - z) * p.outputGate.derivative(output: hh)
                let dzj = dhj * (hPrev[j] - hh) * p.gate.derivative(output: z)
                let drj = dhh * qr[2 * u + j] * p.gate.derivative(output: rr)
                dzr[j] = dzj; dzr[u + j] = drj; dzr[2 * u + j] = dhh
                dqr[j] = dzj; dqr[u + j] = drj; dqr[2 * u + j] = dhh * rr
                dhr[j] = dhj * z  // the direct path h -> h', added after the GEMM
            }
        }
    }
}
