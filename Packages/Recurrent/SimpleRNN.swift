import Layers
import Optimizers
import TensorCore

/// A fully connected recurrent layer over `[B, T, F]`, Keras' `SimpleRNN`:
/// `h' = activation(x·W + h·U + b)`.
///
/// ```swift
/// SimpleRNN(32)                               // [B, T, F] -> [B, 32]
/// ```
///
/// Weights: `kernel` `[F, U]`, `recurrent_kernel` `[U, U]`, `bias` `[U]`; the state is `[h]`.
/// With dropout (one input mask `m` and one recurrent mask `r` per sequence, in training):
/// `h' = activation((x ⊙ m)·W + (h ⊙ r)·U + b)`.
/// Cost, masking, states, dropout and truncated backpropagation: see ``RecurrentLayer``.
public final class SimpleRNN: RecurrentLayer {
    /// `"SimpleRNN"`.
    public override class var typeName: String { "SimpleRNN" }
    override class var cellType: (any RecurrentCell.Type)? { SimpleRNNCell.self }

    /// A simple RNN with `units` state features; the other arguments are Keras' (see ``RecurrentLayer``).
    /// - Precondition: `units > 0`; an activation among tanh, sigmoid, relu and linear; rates in `0..<1`.
    public convenience init(units: Int, activation: ActivationFunction = .tanh, useBias: Bool = true,
                            returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false,
                            stateful: Bool = false, maskValue: Float? = nil, truncateGradient: Int? = nil,
                            dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil,
                            kernelInitializer: Initializer = .glorotUniform, recurrentInitializer: Initializer? = nil,
                            biasInitializer: Initializer = .zeros, name: String = "") {
        self.init(Options(units: units, activation: activation, useBias: useBias, returnSequences: returnSequences,
                          returnState: returnState, goBackwards: goBackwards, stateful: stateful, maskValue: maskValue,
                          truncateGradient: truncateGradient, dropout: dropout, recurrentDropout: recurrentDropout,
                          seed: seed, kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer,
                          biasInitializer: biasInitializer, name: name),
                  cell: SimpleRNNCell())
    }

    /// `SimpleRNN(32, returnSequences: true, dropout: 0.2)`.
    public convenience init(_ units: Int, activation: ActivationFunction = .tanh, returnSequences: Bool = false,
                            returnState: Bool = false, goBackwards: Bool = false, stateful: Bool = false, maskValue: Float? = nil,
                            truncateGradient: Int? = nil, dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil,
                            name: String = "") {
        self.init(units: units, activation: activation, returnSequences: returnSequences, returnState: returnState,
                  goBackwards: goBackwards, stateful: stateful, maskValue: maskValue, truncateGradient: truncateGradient,
                  dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, name: name)
    }
}

/// The simple RNN's step, driven through time by ``SimpleRNN``: `h' = activation(z)` with
/// `z = x·W + h·U + b` (`[B, U]`), one gate.
struct SimpleRNNCell: RecurrentCell {
    static var gateCount: Int { 1 }

    init() {}

    /// A simple RNN's cell has no keys of its own.
    init(config: [String: ConfigValue], who: String) {}

    func forwardStep(_ p: StepPointers, t: Int, rows: Range<Int>) {
        let (b, u) = (p.batch, p.units)
        let z = p.gates + t * b * u
        p.multiplyRecurrent(t: t, rows: rows, into: z, beta: 1)
        for r in rows {
            let hPrev = p.states + (t * b + r) * p.stateStride, h = p.states + ((t + 1) * b + r) * p.stateStride
            if let m = p.mask, m[t * b + r] == 0 {
                h.update(from: hPrev, count: u)
                continue
            }
            let zr = z + r * u
            if let ib = p.inputBias { for j in 0..<u { zr[j] += ib[j] } }
            p.outputGate.apply(zr, u, isa: p.isa)
            h.update(from: zr, count: u)
        }
    }

    func backwardStep(_ p: StepPointers, t: Int, rows: Range<Int>) {
        let (b, u) = (p.batch, p.units)
        let dh = p.outputGradient(t: t, rows: rows), z = p.gates + t * b * u, dz = p.dZ + t * b * u
        for r in rows {
            let dhr = dh + r * u, dzr = dz + r * u, zr = z + r * u, next = p.dhNext + r * u
            for j in 0..<u { dhr[j] += next[j] }
            if let m = p.mask, m[t * b + r] == 0 {
                dzr.update(repeating: 0, count: u)
                continue
            }
            for j in 0..<u { dzr[j] = dhr[j] * p.outputGate.derivative(output: zr[j]) }
        }
        p.multiplyRecurrentBack(dz, rows: rows)
        if let m = p.mask {
            for r in rows where m[t * b + r] == 0 { (p.dhNext + r * u).update(from: dh + r * u, count: u) }
        }
    }
}
