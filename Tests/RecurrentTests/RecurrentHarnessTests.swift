import Layers
import Recurrent
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

/// Every layer type of the Recurrent module through `layerTest`: shapes, config and save/load
/// round trips, training-mode gradients (dropout masks held fixed by the step seed) against finite
/// differences, accumulation and shape errors, on odd sequence lengths and batch 3; and the
/// recurrent variants: sequences, `goBackwards`, the returned state, masked padding, `stateful`.
final class RecurrentHarnessTests: XCTestCase {
    private let capture = FailureCapture()

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        if !capture.take(description) {
            super.recordFailure(withDescription: description, inFile: filePath, atLine: lineNumber, expected: expected)
        }
    }

    /// Controls on real layers: each variant's check reports the layer run without what it needs.
    func testTheVariantChecksCanFail() throws {
        // A stateful layer not reset between passes: the second pass starts from the first's state.
        let leaks = try capture.capturing {
            try layerTest({ LSTM(3, stateful: true) }, inputShape: [5, 2], badInputShape: [5], epsilon: 5e-3, atol: 1e-3)
        }
        // The returned state checked through passes that drop the state's gradient.
        let dropped = try capture.capturing {
            try layerTest({ GRU(3, returnState: true) }, inputShape: [4, 3], badInputShape: [4], statePasses: { layer in
                let gru = layer as? RecurrentLayer
                return StatePasses(forward: { x, training in gru?.forwardReturningState(x, training: training) ?? (x, []) },
                                   backward: { dy, _ in gru?.backward(dy) ?? dy })
            }, epsilon: 5e-3, atol: 1e-3)
        }
        XCTAssertTrue(leaks.contains { $0.contains("state leaks") }, "stateful without reset: \(leaks)")
        XCTAssertTrue(dropped.contains { $0.contains("(with its returned state) gradient of") }, "state gradient dropped: \(dropped)")
    }

    func testSimpleRNN() throws {
        try layerTest({ SimpleRNN(4, returnSequences: true) }, inputShape: [5, 3], badInputShape: [5], epsilon: 5e-3, atol: 1e-3)
        try layerTest({ SimpleRNN(3, goBackwards: true, dropout: 0.25, recurrentDropout: 0.25) }, inputShape: [7, 2],
                      badInputShape: [7, 2, 1], epsilon: 5e-3, atol: 1e-3)
    }

    func testLSTM() throws {
        try layerTest({ LSTM(3) }, inputShape: [5, 4], badInputShape: [5], epsilon: 5e-3, atol: 1e-3)
        try layerTest({ LSTM(2, returnSequences: true, goBackwards: true, dropout: 0.2, recurrentDropout: 0.3) }, inputShape: [7, 3],
                      badInputShape: [3], epsilon: 5e-3, atol: 1e-3)
    }

    func testGRU() throws {
        try layerTest({ GRU(3, returnSequences: true) }, inputShape: [5, 2], badInputShape: [5], epsilon: 5e-3, atol: 1e-3)
        try layerTest({ GRU(4, goBackwards: true, recurrentDropout: 0.3) }, inputShape: [3, 3], badInputShape: [3],
                      epsilon: 5e-3, atol: 1e-3)
    }

    func testBidirectional() throws {
        try layerTest({ Bidirectional(LSTM(3, returnSequences: true)) }, inputShape: [5, 2], badInputShape: [5],
                      epsilon: 5e-3, atol: 1e-3)
        try layerTest({ Bidirectional(GRU(2), mergeMode: .sum) }, inputShape: [7, 3], badInputShape: [7],
                      epsilon: 5e-3, atol: 1e-3)
    }

    /// Keras' `return_state`: a `Sequential` refuses the layer, the state-returning forward gives
    /// `forward`'s output and `outputCount - 1` states, and gradients through output and state match
    /// finite differences.
    func testReturnState() throws {
        try layerTest({ LSTM(3, returnState: true) }, inputShape: [5, 4], badInputShape: [5], statePasses: recurrentStatePasses,
                      epsilon: 5e-3, atol: 1e-3)
        try layerTest({ GRU(3, returnSequences: true, returnState: true, goBackwards: true) }, inputShape: [4, 3], badInputShape: [4],
                      statePasses: recurrentStatePasses, epsilon: 5e-3, atol: 1e-3)
        try layerTest({ SimpleRNN(4, returnState: true, dropout: 0.2, recurrentDropout: 0.2) }, inputShape: [3, 2], badInputShape: [3],
                      statePasses: recurrentStatePasses, epsilon: 5e-3, atol: 1e-3)
        try layerTest({ Bidirectional(LSTM(2, returnSequences: true, returnState: true)) }, inputShape: [4, 2], badInputShape: [4],
                      statePasses: recurrentStatePasses, epsilon: 5e-3, atol: 1e-3)
    }

    /// Padding masked through `Embedding(maskZero: true)` and `maskValue: 0`: sequences of several
    /// lengths padded with token 0, embedded to zero vectors that the layer skips. The input
    /// gradient is not checked: a finite-difference step on a padded zero would unmask the step.
    func testMaskedPadding() throws {
        let embedding = Embedding(inputDim: 6, outputDim: 3, maskZero: true)
        var g = SeededGenerator(seed: 11)
        _ = try embedding.build(inputShape: [6], generator: &g)
        func padded(_ shape: [Int], seed: UInt64) -> Tensor {
            var generator = SeededGenerator(seed: seed)
            let (b, t) = (shape[0], shape[1])
            var tokens: [Float] = []
            for r in 0..<b {
                let length = [t, 1, t - 2][r % 3]
                tokens += (0..<t).map { $0 < length ? Float(1 + generator.nextIndex(below: 5)) : 0 }
            }
            return embedding.forward(Tensor(shape: [b, t], scalars: tokens), training: false)
        }
        let layers: [() -> any Layer] = [{ LSTM(3, returnSequences: true, maskValue: 0) }, { GRU(3, maskValue: 0, dropout: 0.2) },
                                         { SimpleRNN(3, returnSequences: true, goBackwards: true, maskValue: 0) },
                                         { Bidirectional(GRU(2, returnSequences: true, maskValue: 0)) }]
        for make in layers {
            try layerTest(make, inputShape: [6, 3], badInputShape: [6], input: padded, checkInputGradient: false,
                          epsilon: 5e-3, atol: 1e-3)
        }
        // The padding is really there and really skipped: a padded sample's last output repeats
        // its last unpadded step's (control for the check above exercising the mask).
        let lstm = LSTM(3, returnSequences: true, maskValue: 0)
        _ = try lstm.build(inputShape: [6, 3], generator: &g)
        let y = lstm.forward(padded([3, 6, 3], seed: 2), training: false)
        XCTAssertEqual((0..<3).map { y[1, 5, $0] }, (0..<3).map { y[1, 0, $0] }, "sample 1 has one step, then padding")
        XCTAssertNotEqual((0..<3).map { y[0, 5, $0] }, (0..<3).map { y[0, 4, $0] }, "sample 0 has no padding")
    }

    /// A stateful layer carries its final state into the next pass; `layerTest` resets it before
    /// every pass (`resetState`), so every check starts from zeros.
    func testStateful() throws {
        let layers: [() -> any Layer] = [{ LSTM(3, stateful: true) }, { GRU(3, returnSequences: true, stateful: true) },
                                         { SimpleRNN(3, goBackwards: true, stateful: true, dropout: 0.2) }]
        for make in layers {
            try layerTest(make, inputShape: [5, 2], badInputShape: [5], resetState: { ($0 as? RecurrentLayer)?.resetStates() },
                          epsilon: 5e-3, atol: 1e-3)
        }
    }

    func testEmbedding() throws {
        // Token ids are not differentiable: the input gradient is not checked, the table's is.
        func tokens(_ shape: [Int], seed: UInt64) -> Tensor {
            var generator = SeededGenerator(seed: seed)
            return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float(generator.nextIndex(below: 7)) })
        }
        try layerTest({ Embedding(inputDim: 7, outputDim: 3) }, inputShape: [5], badInputShape: [], input: tokens,
                      checkInputGradient: false)
    }
}
