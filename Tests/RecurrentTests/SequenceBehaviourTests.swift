import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Masking, states carried across batches, Embedding and Bidirectional as whole behaviours.
final class SequenceBehaviourTests: XCTestCase {
    private func steps(_ x: Tensor, _ range: Range<Int>) -> Tensor {
        let (b, t, f) = (x.shape[0], x.shape[1], x.shape[2])
        var out: [Float] = []
        let s = x.scalars
        for r in 0..<b { for k in range { out += s[((r * t + k) * f)..<((r * t + k + 1) * f)] } }
        return Tensor(shape: [b, range.count, f], scalars: out)
    }

    /// A padded batch gives each sample the result of its own, unpadded, sequence.
    func testPaddingWithTheMaskValueMatchesTheShortSequence() throws {
        for make in [{ LSTM(units: 4, maskValue: -1) }, { GRU(units: 4, maskValue: -1) },
                     { SimpleRNN(units: 4, maskValue: -1) }] as [() -> RecurrentLayer] {
            let layer = make()
            var g = SeededGenerator(seed: 3)
            _ = try layer.build(inputShape: [6, 3], generator: &g)
            let short = randomTensor([1, 4, 3], seed: 8)
            let padded = Tensor.concatenate([short, Tensor(shape: [1, 2, 3], repeating: -1)], axis: 1)
            assertClose(layer.forward(padded, training: false), layer.forward(short, training: false), rtol: 1e-6, atol: 1e-6)
        }
    }

    /// A stateful layer fed a sequence in two chunks ends where one pass over it ends.
    func testStatefulLayerCarriesItsStateAcrossBatches() throws {
        let x = randomTensor([2, 7, 3], seed: 9)
        let whole = LSTM(units: 5), chunked = LSTM(units: 5, stateful: true)
        var g1 = SeededGenerator(seed: 4), g2 = SeededGenerator(seed: 4)
        _ = try whole.build(inputShape: [7, 3], generator: &g1)
        _ = try chunked.build(inputShape: [3, 3], generator: &g2)
        let expected = whole.forward(x, training: false)
        _ = chunked.forward(steps(x, 0..<3), training: false)
        let last = chunked.forward(steps(x, 3..<7), training: false)
        assertClose(last, expected, rtol: 1e-5, atol: 1e-6)
        assertClose(chunked.finalState[1], whole.finalState[1], rtol: 1e-5, atol: 1e-6)
        chunked.resetStates()
        let fresh = chunked.forward(steps(x, 3..<7), training: false)
        XCTAssertNotEqual(fresh.scalars, last.scalars)
    }

    func testInitialStateIsUsedAndFinalStateReturned() throws {
        let layer = GRU(units: 3)
        var g = SeededGenerator(seed: 5)
        _ = try layer.build(inputShape: [4, 2], generator: &g)
        let x = randomTensor([2, 4, 2], seed: 1)
        let fromZero = layer.forward(x, training: false)
        XCTAssertEqual(layer.finalState.count, 1)
        XCTAssertEqual(layer.finalState[0].scalars, fromZero.scalars)
        layer.initialState = [randomTensor([2, 3], seed: 2)]
        XCTAssertNotEqual(layer.forward(x, training: false).scalars, fromZero.scalars)
    }

    func testEmbeddingLooksUpRowsAndAccumulatesGradients() throws {
        let e = Embedding(inputDim: 5, outputDim: 3, maskZero: true)
        var g = SeededGenerator(seed: 1)
        _ = try e.build(inputShape: [4], generator: &g)
        let tokens = Tensor(shape: [2, 4], scalars: [1, 2, 2, 0, 4, 0, 0, 3])
        let y = e.forward(tokens, training: true)
        XCTAssertEqual(y.shape, [2, 4, 3])
        let table = e.embeddings!.value
        for j in 0..<3 {
            XCTAssertEqual(y[0, 1, j], table[2, j])
            XCTAssertEqual(y[1, 0, j], table[4, j])
            XCTAssertEqual(y[0, 3, j], 0)  // padding
        }
        let dx = e.backward(Tensor.ones([2, 4, 3]))
        XCTAssertEqual(dx.shape, [2, 4])
        let grad = e.embeddings!.gradient
        XCTAssertEqual((0..<5).map { grad[$0, 0] }, [0, 1, 2, 1, 1])
    }

    /// An Embedding with maskZero and a layer masking 0 ignore left padding.
    func testEmbeddingMaskZeroWithRecurrentMask() throws {
        let model = Sequential(inputShape: [5]) {
            Embedding(inputDim: 6, outputDim: 4, maskZero: true)
            LSTM(units: 3, maskValue: 0)
        }
        try model.build(seed: 2)
        let padded = try model.predict(Tensor(shape: [1, 5], scalars: [0, 0, 3, 1, 5]))
        let short = Sequential(inputShape: [3], layers: model.layers)
        try short.build(seed: 2)
        assertClose(padded, try short.predict(Tensor(shape: [1, 3], scalars: [3, 1, 5])), rtol: 1e-6, atol: 1e-6)
    }

    /// Dense on a sequence applies to every step (Keras' TimeDistributed(Dense)), and trains
    /// through the recurrent layer under it.
    func testDenseAfterReturnedSequencesIsTimeDistributed() throws {
        let model = Sequential(inputShape: [5, 2]) {
            GRU(4, returnSequences: true)
            Dense(3)
        }
        try model.build(seed: 1)
        let x = randomTensor([6, 5, 2], seed: 2), y = randomTensor([6, 5, 3], seed: 3)
        let out = try model.predict(x)
        XCTAssertEqual(out.shape, [6, 5, 3])
        let dense = model.layers[1] as! Dense, gru = model.layers[0] as! GRU
        let perStep = dense.forward(gru.forward(x, training: false), training: false)
        XCTAssertEqual(perStep.scalars, out.scalars)
        model.compile(optimizer: Adam(learningRate: 0.02), loss: MeanSquaredError())
        let history = try model.fit(x: x, y: y, epochs: 30, batchSize: 6, seed: 1, verbose: 0)
        XCTAssertLessThan(history["loss"]!.last!, history["loss"]!.first! * 0.8)
    }

    func testBidirectionalSeesBothDirections() throws {
        let layer = Bidirectional(LSTM(3, returnSequences: true))
        var g = SeededGenerator(seed: 1)
        XCTAssertEqual(try layer.build(inputShape: [4, 2], generator: &g), [4, 6])
        let x = randomTensor([1, 4, 2], seed: 3)
        let y = layer.forward(x, training: false)
        // The forward half at step 0 is the forward layer's first output; the backward half at the
        // last step is the backward layer's first output (it has seen only the last input).
        let f = layer.forwardLayer.forward(x, training: false), b = layer.backwardLayer.forward(x, training: false)
        for j in 0..<3 {
            XCTAssertEqual(y[0, 0, j], f[0, 0, j])
            XCTAssertEqual(y[0, 3, 3 + j], b[0, 0, j])
        }
        XCTAssertEqual(layer.parameters.count, 6)
    }
}

/// A batch large enough to be split into row ranges run in parallel gives what one thread gives,
/// on every ISA path (the ranges are cut at multiples of each path's GEMM tile height).
final class ParallelBatchTests: XCTestCase {
    func testSplitBatchMatchesOneThread() throws {
        try forEachISA { isa in try checkSplitBatch(isa) }
    }

    private func checkSplitBatch(_ isa: KernelISA) throws {
        let x = randomTensor([128, 6, 5], seed: 21)
        let w = randomTensor([128, 6, 64], seed: 22)
        for make in [{ LSTM(units: 64, returnSequences: true, maskValue: 0, truncateGradient: 4) },
                     { GRU(units: 64, returnSequences: true) }, { SimpleRNN(units: 128, returnSequences: true) }]
                as [() -> RecurrentLayer] {
            var results: [[Float]] = []
            for width in [1, 2, 4] {
                try ThreadPool.withWidthLimit(width) {
                    let layer = make()
                    var g = SeededGenerator(seed: 5)
                    _ = try layer.build(inputShape: [6, 5], generator: &g)
                    let y = layer.forward(x, training: true)
                    let weights = y.shape == w.shape ? w : randomTensor(y.shape, seed: 23)
                    let dx = layer.backward(weights)
                    results.append(y.scalars + dx.scalars + layer.parameters.flatMap(\.gradient.scalars))
                }
            }
            // The row ranges change only the order of sums: the bias gradient adds one partial
            // sum per range (768 terms here, with cancellation), hence an absolute tolerance.
            for split in results.dropFirst() {
                assertClose(split, results[0].map(Double.init), rtol: 1e-5, atol: 1e-5, "isa \(isa)")
            }
        }
    }
}
