import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Finite-difference checks of backpropagation through time, for every cell, through several
/// steps: inputs, every weight and the initial state; with sequences returned or not, reversed,
/// truncated, with other activations, bidirectional, and masked.
final class RecurrentGradientTests: XCTestCase {
    let input = randomTensor([3, 5, 4], seed: 11)

    private func states(_ count: Int, units: Int) -> [Tensor] {
        (0..<count).map { randomTensor([3, units], seed: 30 + UInt64($0), scale: 0.5) }
    }

    func testLastOutputGradientIsTheSequenceGradientWithZerosBefore() throws {
        // Without sequences, the steps before the last take their output gradient as zero
        // without a zero-filled block (the LSTM's fused kernel does not even read it): the same
        // bits as the layer with sequences given zeros before the last step, for every cell,
        // masked or not, on every ISA path.
        let makers: [(String, (Bool) -> RecurrentLayer)] = [
            ("LSTM", { LSTM(6, returnSequences: $0) }),
            ("LSTM masked", { LSTM(6, returnSequences: $0, maskValue: 0) }),
            ("LSTM relu/tanh", { LSTM(units: 6, activation: .relu, recurrentActivation: .tanh, returnSequences: $0) }),
            ("GRU", { GRU(6, returnSequences: $0) }),
            ("GRU masked", { GRU(6, returnSequences: $0, maskValue: 0) }),
            ("SimpleRNN", { SimpleRNN(6, returnSequences: $0) }),
        ]
        var x = input.scalars
        for j in 0..<4 { x[(1 * 5 + 2) * 4 + j] = 0 }  // sample 1, step 2: masked where masks are on
        let masked = Tensor(shape: input.shape, scalars: x)
        let g = randomTensor([3, 6], seed: 21)
        var sequenceScalars = [Float](repeating: 0, count: 3 * 5 * 6)
        for r in 0..<3 { for j in 0..<6 { sequenceScalars[(r * 5 + 4) * 6 + j] = g.scalars[r * 6 + j] } }
        let sequenceGradient = Tensor(shape: [3, 5, 6], scalars: sequenceScalars)
        try forEachISA { isa in
            for (name, make) in makers {
                let (last, sequences) = (make(false), make(true))
                var g1 = SeededGenerator(seed: 5), g2 = SeededGenerator(seed: 5)
                _ = try last.build(inputShape: [5, 4], generator: &g1)
                _ = try sequences.build(inputShape: [5, 4], generator: &g2)
                for _ in 0..<2 {  // twice: the second pass reuses the first one's scratch blocks
                    _ = last.forward(masked, training: true)
                    _ = sequences.forward(masked, training: true)
                    let dxLast = last.backward(g), dxSequences = sequences.backward(sequenceGradient)
                    XCTAssertEqual(dxLast.scalars.map(\.bitPattern), dxSequences.scalars.map(\.bitPattern), "\(name) dx \(isa)")
                    for (a, b) in zip(last.parameters, sequences.parameters) {
                        XCTAssertEqual(a.gradient.scalars.map(\.bitPattern), b.gradient.scalars.map(\.bitPattern),
                                       "\(name) \(a.name) \(isa)")
                    }
                    XCTAssertEqual(last.initialStateGradient.map { $0.scalars.map(\.bitPattern) },
                                   sequences.initialStateGradient.map { $0.scalars.map(\.bitPattern) }, "\(name) state \(isa)")
                }
                XCTAssertNotEqual(last.parameters[0].gradient.scalars, Array(repeating: 0, count: last.parameters[0].gradient.count), name)
            }
        }
    }

    func testLSTMLastOutput() throws {
        try checkLayerGradients(LSTM(6), input: input, initialState: states(2, units: 6))
    }

    func testLSTMSequences() throws {
        try checkLayerGradients(LSTM(6, returnSequences: true), input: input, initialState: states(2, units: 6))
    }

    func testLSTMOtherActivations() throws {
        try checkLayerGradients(LSTM(units: 4, activation: .relu, recurrentActivation: .tanh, returnSequences: true),
                            input: input, rtol: 3e-2, atol: 2e-3)
    }

    func testGRUOtherActivations() throws {
        try checkLayerGradients(GRU(units: 4, activation: .linear, recurrentActivation: .tanh, returnSequences: true),
                            input: input, initialState: states(1, units: 4), rtol: 3e-2, atol: 2e-3)
    }

    func testGRULastOutput() throws {
        try checkLayerGradients(GRU(6), input: input, initialState: states(1, units: 6))
    }

    func testGRUSequences() throws {
        try checkLayerGradients(GRU(6, returnSequences: true), input: input, initialState: states(1, units: 6))
    }

    func testSimpleRNNLastOutput() throws {
        try checkLayerGradients(SimpleRNN(6), input: input, initialState: states(1, units: 6))
    }

    func testSimpleRNNSequences() throws {
        try checkLayerGradients(SimpleRNN(6, returnSequences: true), input: input, initialState: states(1, units: 6))
    }

    func testBidirectionalMergeModes() throws {
        for mode in Bidirectional.MergeMode.allCases {
            try checkLayerGradients(Bidirectional(GRU(3, returnSequences: mode != .sum), mergeMode: mode), input: input)
        }
    }

    /// Through an Embedding (masking token 0) and an LSTM: the table's gradient and the LSTM's.
    func testEmbeddingAndLSTMGradients() throws {
        let model = Sequential(inputShape: [5]) {
            Embedding(inputDim: 6, outputDim: 3, maskZero: true)
            LSTM(units: 4, returnSequences: true, maskValue: 0)
        }
        let tokens = Tensor(shape: [2, 5], scalars: [1, 2, 3, 0, 0, 5, 4, 1, 2, 3])
        try checkLayerGradients(model, input: tokens, checkInput: false)
    }

    /// Masked steps are exactly the mask value, so perturbing one would unmask it: the inputs are
    /// checked at unmasked steps only (masked ones must get exactly zero), the weights and initial
    /// state everywhere.
    func testMaskedGradients() throws {
        var x = input
        // Sample 0: all 5 steps; sample 1: the last 2 are padding; sample 2: the first and last.
        x.withUnsafeMutableBufferPointer { p in
            for (b, t) in [(1, 3), (1, 4), (2, 0), (2, 4)] { for f in 0..<4 { p[(b * 5 + t) * 4 + f] = 0 } }
        }
        for layer in [LSTM(units: 4, returnSequences: true, maskValue: 0), GRU(units: 4, maskValue: 0),
                      SimpleRNN(units: 4, returnSequences: true, maskValue: 0)] as [RecurrentLayer] {
            let count = layer is LSTM ? 2 : 1
            try checkLayerGradients(layer, input: x, initialState: states(count, units: 4), checkInput: false)
            let w = randomTensor([3] + (layer.returnSequences ? [5, 4] : [4]), seed: 5)
            _ = layer.forward(x, training: true)
            let dx = layer.backward(w)
            for (b, t) in [(1, 3), (1, 4), (2, 0), (2, 4)] {
                for f in 0..<4 { XCTAssertEqual(dx[b, t, f], 0, "\(type(of: layer).typeName) masked step (\(b), \(t))") }
            }
            // Unmasked inputs by finite differences, element by element.
            let f0: (Tensor) -> Double = { weightedSum(layer.forward($0, training: false), w) }
            for (b, t) in [(0, 2), (1, 1), (2, 2)] {
                for f in 0..<4 {
                    var plus = x, minus = x
                    let i = (b * 5 + t) * 4 + f
                    plus.withUnsafeMutableBufferPointer { $0[i] += 5e-3 }
                    minus.withUnsafeMutableBufferPointer { $0[i] -= 5e-3 }
                    let numeric = (f0(plus) - f0(minus)) / 1e-2
                    XCTAssertEqual(Double(dx[b, t, f]), numeric, accuracy: 1e-3 + 2e-2 * abs(numeric))
                }
            }
        }
    }

    /// With truncation every k steps, the gradient reaching step 0's input from the last output
    /// passes no chunk boundary only when T <= k.
    func testTruncatedBackpropagationCutsTheGradient() throws {
        let full = LSTM(units: 4, truncateGradient: nil), cut = LSTM(units: 4, truncateGradient: 2)
        var g1 = SeededGenerator(seed: 3), g2 = SeededGenerator(seed: 3)
        _ = try full.build(inputShape: [5, 4], generator: &g1)
        _ = try cut.build(inputShape: [5, 4], generator: &g2)
        let w = randomTensor([3, 4], seed: 9)
        _ = full.forward(input, training: true)
        let dFull = full.backward(w)
        _ = cut.forward(input, training: true)
        let dCut = cut.backward(w)
        // The last chunk (step 4) is the same; earlier steps get nothing from the last output.
        for b in 0..<3 {
            for f in 0..<4 {
                XCTAssertEqual(dCut[b, 4, f], dFull[b, 4, f], accuracy: 1e-6)
                XCTAssertEqual(dCut[b, 1, f], 0)
                XCTAssertNotEqual(dFull[b, 1, f], 0)
            }
        }
    }
}
