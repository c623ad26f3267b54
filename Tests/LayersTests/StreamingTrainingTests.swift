import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// A data set read sample by sample (the protocol's default batch path, as a file-backed set),
/// that can fail at one index or give one sample of another shape.
private struct SlowSpiral: Dataset {
    let x: Tensor
    let y: [Int]
    var failAt: Int? = nil
    var misshapenAt: Int? = nil

    var count: Int { y.count }

    func sample(at index: Int) throws -> (x: Tensor, y: Int) {
        if index == failAt { throw DatasetError(.corrupt, path: "sample-\(index).png", "bad chunk") }
        if index == misshapenAt { return (Tensor.zeros([3]), y[index]) }
        return (x.slice(index..<(index + 1)).reshaped([2]), y[index])
    }
}

private func spiralModel() -> Sequential {
    Sequential(inputShape: [2]) {
        Dense(16, activation: .relu)
        Dropout(0.2)
        Dense(2)
    }
}

private func compiled(_ model: Sequential) -> Sequential {
    model.compile(optimizer: Adam(learningRate: 0.01), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
    return model
}

final class StreamingTrainingTests: XCTestCase {
    /// A loader over the same tensors, with the same seed, visits the order the tensor form of
    /// `fit` visits: the two runs end at the same bits, whatever the loader's prefetching.
    func testLoaderTrainingMatchesTensorTrainingBitForBit() throws {
        let (x, y) = spiralData(perClass: 60, seed: 4)
        let reference = compiled(spiralModel())
        let expected = try reference.fit(x: x, y: y, epochs: 3, batchSize: 16, seed: 9, verbose: 0)
        for prefetch in [0, 3] {
            let model = compiled(spiralModel())
            let loader = DataLoader(SlowSpiral(x: x, y: y), batchSize: 16, seed: 9, prefetch: prefetch)
            let history = try model.fit(loader, epochs: 3, seed: 9, verbose: 0)
            XCTAssertEqual(history, expected, "prefetch \(prefetch)")
            XCTAssertEqual(model.parameters.map(\.value), reference.parameters.map(\.value), "prefetch \(prefetch)")
        }
        // Control: another loader seed orders the batches otherwise and ends elsewhere.
        let other = compiled(spiralModel())
        try other.fit(DataLoader(TensorDataset(x: x, y: y), batchSize: 16, seed: 10), epochs: 3, seed: 9, verbose: 0)
        XCTAssertNotEqual(other.parameters.map(\.value), reference.parameters.map(\.value))
    }

    /// Stopping after epoch 1 and resuming with `initialEpoch: 1` ends where one run of three
    /// epochs does (same model and optimizer objects, as after restoring a checkpoint).
    func testResumingWithInitialEpochEndsWhereAnUninterruptedRunEnds() throws {
        let (x, y) = spiralData(perClass: 40, seed: 2)
        let loader = DataLoader(TensorDataset(x: x, y: y), batchSize: 8, seed: 3)
        let whole = compiled(spiralModel())
        let full = try whole.fit(loader, epochs: 3, seed: 5, verbose: 0)
        let resumed = compiled(spiralModel())
        var history = try resumed.fit(loader, epochs: 1, seed: 5, verbose: 0)
        history.append(try resumed.fit(loader, epochs: 3, initialEpoch: 1, seed: 5, verbose: 0))
        XCTAssertEqual(history, full)
        XCTAssertEqual(resumed.parameters.map(\.value), whole.parameters.map(\.value))
    }

    func testValidationEvaluateAndPredictOverLoadersMatchTheTensorForms() throws {
        let (x, y) = spiralData(perClass: 30, seed: 6)
        let (vx, vy) = spiralData(perClass: 11, seed: 7)
        let model = compiled(spiralModel())
        let validation = DataLoader(TensorDataset(x: vx, y: vy), batchSize: 7, shuffle: false)
        let history = try model.fit(DataLoader(TensorDataset(x: x, y: y), batchSize: 10, seed: 1), epochs: 2,
                                    validationData: validation, seed: 1, verbose: 0)
        let direct = try model.evaluate(x: vx, y: vy, batchSize: 7)
        XCTAssertEqual(history["val_loss"]?.last, direct["loss"])
        XCTAssertEqual(history["val_accuracy"]?.last, direct["accuracy"])
        XCTAssertEqual(try model.evaluate(validation), direct)
        let predicted = try model.predict(validation)
        XCTAssertEqual(predicted.shape, [22, 2])
        XCTAssertEqual(predicted, try model.predict(vx, batchSize: 7))
    }

    func testAnUnbuiltModelWithoutInputShapeIsBuiltFromTheFirstBatch() throws {
        let (x, y) = spiralData(perClass: 10, seed: 1)
        let model = compiled(Sequential { Dense(4, activation: .relu); Dense(2) })
        try model.fit(DataLoader(TensorDataset(x: x, y: y), batchSize: 5, seed: 2), epochs: 1, verbose: 0)
        XCTAssertEqual(model.builtInputShape, [2])
        XCTAssertEqual(model.builtOutputShape, [2])
    }

    func testAnUnreadableSampleEndsTrainingWithItsErrorAndCallbacksFinish() throws {
        let (x, y) = spiralData(perClass: 20, seed: 1)
        let recorder = RecordingCallback()
        let model = compiled(spiralModel())
        let loader = DataLoader(SlowSpiral(x: x, y: y, failAt: 17), batchSize: 8, shuffle: false, prefetch: 2)
        XCTAssertThrowsError(try model.fit(loader, epochs: 2, callbacks: [recorder], verbose: 0)) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .corrupt)
            XCTAssertEqual((error as? DatasetError)?.path, "sample-17.png")
        }
        // Batches 1 and 2 trained; batch 3 (samples 16...23) failed; onTrainEnd still ran.
        XCTAssertEqual(recorder.events.filter { $0.hasPrefix("batchEnd") }.count, 2)
        XCTAssertEqual(recorder.events.last, "trainEnd")
    }

    func testABatchThatDoesNotFitTheModelThrowsNamingEpochAndBatch() throws {
        let (x, y) = spiralData(perClass: 20, seed: 1)
        let model = compiled(spiralModel())
        // Sample 9 has 3 features: the data set's own stacking rejects the mixed batch...
        let mixed = DataLoader(SlowSpiral(x: x, y: y, misshapenAt: 9), batchSize: 8, shuffle: false)
        XCTAssertThrowsError(try model.fit(mixed, epochs: 1, verbose: 0)) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .invalidArgument)
        }
        // ...and a whole batch of the wrong shape is the model's TrainingError.
        let wide = DataLoader(TensorDataset(x: Tensor.zeros([12, 3]), y: Array(repeating: 0, count: 12)), batchSize: 4)
        XCTAssertThrowsError(try model.fit(wide, epochs: 1, verbose: 0)) { error in
            let message = (error as? TrainingError)?.message ?? ""
            XCTAssertTrue(message.contains("epoch 1, batch 1") && message.contains("[4, 3]"), message)
        }
        XCTAssertThrowsError(try model.predict(wide))
        XCTAssertThrowsError(try model.evaluate(wide))
        // Labels out of range are a TrainingError, not a trap in the loss.
        let badLabels = DataLoader(TensorDataset(x: Tensor.zeros([4, 2]), y: [0, 1, 5, 0]), batchSize: 4)
        XCTAssertThrowsError(try model.fit(badLabels, epochs: 1, verbose: 0)) { error in
            XCTAssertTrue(error is TrainingError, "\(error)")
        }
    }

    func testClassWeightsApplyPerBatchAndAMissingClassThrows() throws {
        let (x, y) = spiralData(perClass: 20, seed: 1)
        let loader = DataLoader(TensorDataset(x: x, y: y), batchSize: 8, seed: 4)
        let weighted = compiled(spiralModel())
        let plain = compiled(spiralModel())
        try weighted.fit(loader, epochs: 1, classWeights: [0: 1, 1: 3], seed: 4, verbose: 0)
        try plain.fit(loader, epochs: 1, classWeights: [0: 1, 1: 1], seed: 4, verbose: 0)
        let reference = compiled(spiralModel())
        try reference.fit(x: x, y: y, epochs: 1, batchSize: 8, classWeights: [0: 1, 1: 3], seed: 4, verbose: 0)
        XCTAssertEqual(weighted.parameters.map(\.value), reference.parameters.map(\.value))
        XCTAssertNotEqual(weighted.parameters.map(\.value), plain.parameters.map(\.value))
        XCTAssertThrowsError(try compiled(spiralModel()).fit(loader, epochs: 1, classWeights: [0: 1], verbose: 0)) { error in
            XCTAssertTrue((error as? TrainingError)?.message.contains("no weight for class 1") ?? false, "\(error)")
        }
    }

    /// How replicas share an epoch's order: interleaved positions, padded from the start when
    /// every replica must take the same number of steps.
    func testReplicaShardsInterleaveTheEpochOrder() {
        XCTAssertEqual(replicaShard(of: [5, 6, 7, 8, 9], rank: 0, replicas: 2, padded: true), [5, 7, 9])
        XCTAssertEqual(replicaShard(of: [5, 6, 7, 8, 9], rank: 1, replicas: 2, padded: true), [6, 8, 5])
        XCTAssertEqual(replicaShard(of: [5, 6, 7, 8, 9], rank: 1, replicas: 2, padded: false), [6, 8])
        XCTAssertEqual(replicaShard(of: [5, 6, 7], rank: 2, replicas: 4, padded: false), [7])
        XCTAssertEqual(replicaShard(of: [5, 6, 7], rank: 3, replicas: 4, padded: true), [5])
        XCTAssertEqual(replicaShard(of: [], rank: 0, replicas: 3, padded: true), [])
        for n in [0, 1, 5, 7, 12] {
            for replicas in 1...4 {
                for rank in 0..<replicas {
                    for padded in [false, true] {
                        XCTAssertEqual(replicaShardCount(of: n, rank: rank, replicas: replicas, padded: padded),
                                       replicaShard(of: Array(0..<n), rank: rank, replicas: replicas, padded: padded).count)
                    }
                }
            }
        }
    }
}
