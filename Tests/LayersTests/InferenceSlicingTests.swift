import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// `predict` and `evaluate` run a large batch's forward pass in slices (issue 14's memory goal:
/// evaluating at batch 1,000 held about 0.5 MB per image in flight for the BatchNorm CNN). The
/// slices must not change what the caller gets: each sample's inference output depends on that
/// sample alone, so the outputs must be the same bits as one pass over the whole batch.
final class InferenceSlicingTests: XCTestCase {
    /// Every layer kind of the demo CNNs, at a size that trains fast: convolution, batch
    /// normalisation with a fused relu, pooling, dropout (off in inference), dense layers.
    private func smallCNN() throws -> Sequential {
        let model = Sequential(inputShape: [12, 12, 1]) {
            Conv2D(filters: 8, kernelSize: (3, 3), useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Flatten()
            Dense(24, activation: .relu)
            Dropout(0.3)
            Dense(5)
        }
        model.compile(optimizer: Adam(learningRate: 1e-2), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        try model.build(seed: 3)
        return model
    }

    private func data(_ n: Int, seed: UInt64) -> (x: Tensor, y: [Int]) {
        var generator = SeededGenerator(seed: seed)
        let x = Tensor.randomUniform([n, 12, 12, 1], in: 0...1, using: &generator)
        return (x, (0..<n).map { ($0 * 7 + 3) % 5 })
    }

    func testSlicesCoverTheBatchInNearlyEqualPartsWithinTheLimits() throws {
        let small = try smallCNN()
        XCTAssertEqual(small.inferenceSliceLimit, Sequential.inferenceSliceSamples)
        XCTAssertEqual(small.inferenceSlices(128), [0..<128])
        XCTAssertEqual(small.inferenceSlices(0), [0..<0])
        XCTAssertEqual(small.inferenceSlices(1000).map(\.count), Array(repeating: 125, count: 8))
        let odd = small.inferenceSlices(300)
        XCTAssertEqual(odd.map(\.count), [100, 100, 100])

        // 32 filters over 28x28 images (the BatchNorm CNN's first block): the bytes bound the slice.
        let wide = Sequential(inputShape: [28, 28, 1]) {
            Conv2D(filters: 32, kernelSize: (3, 3))
            BatchNormalization()
            ActivationLayer(.relu)
            Flatten()
            Dense(10)
        }
        try wide.build(seed: 1)
        let perSample = 4 * (784 + 3 * 26 * 26 * 32 + 26 * 26 * 32 + 10)
        XCTAssertEqual(wide.inferenceSliceLimit, Sequential.inferenceSliceBytes / perSample)
        XCTAssertLessThan(wide.inferenceSliceLimit, Sequential.inferenceSliceSamples)
        for n in [1, 97, 1000, 1001] {
            let slices = wide.inferenceSlices(n)
            XCTAssertEqual(slices.first?.lowerBound, 0)
            XCTAssertEqual(slices.last?.upperBound, n)
            for (a, b) in zip(slices, slices.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
            XCTAssertLessThanOrEqual(slices.map(\.count).max()!, wide.inferenceSliceLimit)
            XCTAssertLessThanOrEqual(slices.map(\.count).max()! - slices.map(\.count).min()!, 1)
        }
    }

    func testPredictInSlicesGivesTheBitsOfOnePass() throws {
        let model = try smallCNN()
        let (x, y) = data(300, seed: 11)
        // Running statistics away from their initial 0 and 1, so normalisation does something.
        for start in stride(from: 0, to: 300, by: 50) {
            try model.trainOnBatch(x: x.slice(start..<(start + 50)), y: Array(y[start..<(start + 50)]))
        }
        XCTAssertEqual(model.inferenceSlices(300).count, 3, "the batch must actually be sliced")
        let whole = model.forward(x, training: false)
        for batchSize in [300, 1000, 257, 64] {
            let predicted = try model.predict(x, batchSize: batchSize)
            XCTAssertEqual(predicted.shape, whole.shape)
            XCTAssertEqual(predicted.scalars, whole.scalars, "batch size \(batchSize)")
        }
        // The control: a slice of another model's weights would differ.
        let other = try smallCNN()
        XCTAssertNotEqual(try other.predict(x, batchSize: 300).scalars, whole.scalars)
    }

    func testEvaluateInSlicesGivesTheLossAndAccuracyOfOnePass() throws {
        let model = try smallCNN()
        let (x, y) = data(300, seed: 12)
        try model.fit(x: x, y: y, epochs: 2, batchSize: 60, seed: 4, verbose: 0)
        let whole = model.forward(x, training: false)
        let loss = Double(SoftmaxCrossEntropy().compute(whole, .labels(y), sampleWeights: nil).loss)
        let predictedClasses = whole.argmax(alongAxis: 1)
        let accuracy = Double(zip(predictedClasses, y).filter { $0 == $1 }.count) / 300
        let logs = try model.evaluate(x: x, y: y, batchSize: 300)
        XCTAssertEqual(logs["loss"], loss)
        XCTAssertEqual(logs["accuracy"], accuracy)
        XCTAssertGreaterThan(accuracy, 0.2)  // trained: above chance, so the comparison means something
    }
}
