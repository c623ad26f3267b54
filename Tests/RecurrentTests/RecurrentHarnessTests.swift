import Layers
import Recurrent
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

/// Every layer type of the Recurrent module through `layerTest`: shapes, config and save/load
/// round trips, training-mode gradients (dropout masks held fixed by the step seed) against finite
/// differences, accumulation and shape errors, on odd sequence lengths and batch 3.
final class RecurrentHarnessTests: XCTestCase {
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
