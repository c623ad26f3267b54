import Foundation
import Neurite
import XCTest

/// README's "A first model": the same calls as printed there (`Sequential`, `compile`, `fit`,
/// `evaluate`, `save`, `load`), built and run, so the README cannot drift from the API.
/// Keep the two in step: a change to the README's example belongs here too, and the other way round.
/// Small synthetic images stand in for Fashion-MNIST (loading and training on 60,000 images
/// would make the test slow); the calls are the same.
final class ReadmeFirstModelTests: XCTestCase {
    /// Stands in for `MNISTDataset`: the two properties the README's example reads.
    private struct Split {
        var images: Tensor
        var labels: [Int]
    }

    func testTheFirstModelAsPrintedInTheReadmeTrainsEvaluatesSavesAndLoads() throws {
        var g = SeededGenerator(seed: 5)
        // In README.md: `let train = try FashionMNIST.load(.train, downloadIfMissing: true)` and
        // `let test = try FashionMNIST.load(.test)`.
        let train = Split(images: Tensor.randomUniform([64, 28, 28, 1], in: 0...1, using: &g),
                          labels: (0..<64).map { $0 % 10 })
        let test = Split(images: Tensor.randomUniform([20, 28, 28, 1], in: 0...1, using: &g),
                         labels: (0..<20).map { $0 % 10 })
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("neurite-readme-first-model-\(ProcessInfo.processInfo.processIdentifier)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // As printed in README.md (keep the two in step), with `directory` for "fashion-model".
        let model = Sequential(inputShape: [28, 28, 1]) {
            Flatten()
            Dense(128, activation: .relu)
            Dense(10, activation: .softmax)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: [.accuracy])
        try model.fit(x: train.images, y: train.labels, epochs: 5, batchSize: 32)
        print(try model.evaluate(x: test.images, y: test.labels))   // ["loss": ..., "accuracy": ...]
        try model.save(to: directory)
        let loaded = try Sequential.load(from: directory)
        print(try loaded.predict(test.images).shape)                 // [10000, 10] in README.md, [20, 10] here

        let scores = try model.evaluate(x: test.images, y: test.labels)
        XCTAssertNotNil(scores["loss"])
        XCTAssertNotNil(scores["accuracy"])
        let predictions = try loaded.predict(test.images)
        XCTAssertEqual(predictions.shape, [20, 10])
        // The loaded model predicts exactly as the saved one.
        XCTAssertEqual(predictions.scalars, try model.predict(test.images).scalars)
    }
}
