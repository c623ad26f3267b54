import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// The shared MNIST folder, `<repository>/../shared/data/mnist`, found from this file's path
/// (`<repository>/Tests/LayersTests/`), or a visible skip when the data are absent.
private func sharedMNISTDirectory(_ file: String = #filePath) throws -> String {
    let repository = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let directory = repository.appendingPathComponent("../shared/data/mnist").standardized.path
    guard FileManager.default.fileExists(atPath: directory + "/train-images-idx3-ubyte.gz"),
          FileManager.default.fileExists(atPath: directory + "/t10k-images-idx3-ubyte.gz") else {
        throw unavailable("MNIST not found at \(directory) (see shared/data/README.md)")
    }
    return directory
}

/// End-to-end training of the course CNN: every layer's forward and backward pass, the loss,
/// Adam and `fit` have to work together for the accuracy to come out right.
final class CNNTrainingTests: XCTestCase {
    /// Conv2D 16 5x5 relu, MaxPool 2, Conv2D 8 2x2 relu, MaxPool 2, Flatten, Dense 100 relu,
    /// Dense 10, trained with Adam for two epochs on the first 2,000 MNIST training images
    /// (batch 16, learning rate 2e-3: 250 steps), must classify more than 85% of the first 1,000
    /// test images; an untrained network stays near 10%. Seeds 1 to 6 all gave 0.90 to 0.92, so
    /// the bound leaves room for changes in initialisation or summation order, but not for a
    /// broken gradient. A few seconds in a release build.
    func testCourseCNNLearnsAnMNISTSubset() throws {
        let directory = try sharedMNISTDirectory()
        let train = try MNIST.load(.train, from: directory)
        let test = try MNIST.load(.test, from: directory)
        let x = train.images.slice(0..<2000), y = Array(train.labels[0..<2000])
        let testX = test.images.slice(0..<1000), testY = Array(test.labels[0..<1000])

        let model = Sequential(inputShape: [28, 28, 1]) {
            Conv2D(filters: 16, kernelSize: (5, 5), activation: .relu)
            MaxPool2D(poolSize: (2, 2))
            Conv2D(filters: 8, kernelSize: (2, 2), activation: .relu)
            MaxPool2D(poolSize: (2, 2))
            Flatten()
            Dense(100, activation: .relu)
            Dense(10)
        }
        model.compile(optimizer: Adam(learningRate: 2e-3), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        try model.build(seed: 1)
        let before = try model.evaluate(x: testX, y: testY, batchSize: 500)
        let history = try model.fit(x: x, y: y, epochs: 2, batchSize: 16, seed: 1, verbose: 0)
        let after = try model.evaluate(x: testX, y: testY, batchSize: 500)

        XCTAssertEqual(model.parameters.reduce(0) { $0 + $1.value.count }, 416 + 520 + 200 * 100 + 100 + 1010,
                       "the course CNN's parameter count, as Keras' summary gives it")
        let losses = try XCTUnwrap(history["loss"])
        XCTAssertEqual(losses.count, 2)
        XCTAssertLessThan(losses[1], losses[0], "the training loss falls from the first epoch to the second")
        XCTAssertLessThan(after["loss"]!, before["loss"]! / 3, "the test loss falls well below its starting value")
        XCTAssertGreaterThan(after["accuracy"]!, 0.85, "test accuracy on 1,000 MNIST images after two epochs on 2,000")
    }
}
