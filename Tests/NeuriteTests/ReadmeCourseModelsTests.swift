import Neurite
import XCTest

/// README's "The course's models, side by side": the Neurite code as printed there, built and
/// trained for a step, so the README cannot drift from the API. Parameter counts are the ones
/// Keras' `model.summary()` prints for the same models.
final class ReadmeCourseModelsTests: XCTestCase {
    func testTheCourseModelsAsPrintedInTheReadmeBuildTrainAndMatchKerasParameterCounts() throws {
        // As printed in README.md (keep the two in step).
        let shallow = Sequential(inputShape: [28, 28, 1]) {
            Flatten(); Dense(128, activation: .relu); Dense(10, activation: .softmax)
        }
        let deep = Sequential(inputShape: [28, 28, 1]) {
            Flatten(); Dense(512, activation: .relu); Dense(256, activation: .relu)
            Dense(128, activation: .relu); Dense(10, activation: .softmax)
        }
        let cnn = Sequential(inputShape: [28, 28, 1]) {
            Conv2D(filters: 16, kernelSize: (5, 5), activation: .relu); MaxPool2D(poolSize: (2, 2))
            Conv2D(filters: 8, kernelSize: (2, 2), activation: .relu); MaxPool2D(poolSize: (2, 2))
            Flatten(); Dense(100, activation: .relu); Dense(10, activation: .softmax)
        }
        let rnn = Sequential(inputShape: [28, 28]) { LSTM(128); Dense(10, activation: .softmax) }

        // Keras' summary() totals for the same models.
        let kerasCounts = [101_770, 567_434, 22_046, 81_674]
        var g = SeededGenerator(seed: 3)
        let images = Tensor.randomUniform([16, 28, 28, 1], in: 0...1, using: &g)
        let labels = (0..<16).map { $0 % 10 }
        for (model, expected) in zip([shallow, deep, cnn, rnn], kerasCounts) {
            try model.build(seed: 1)
            XCTAssertEqual(model.parameters.reduce(0) { $0 + $1.value.count }, expected)
            model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: [.accuracy])
            let x = model === rnn ? images.reshaped([16, 28, 28]) : images
            let history = try model.fit(x: x, y: labels, epochs: 1, batchSize: 8, validationSplit: 0.25)
            XCTAssertEqual(history.epochs.count, 1)
            let p = try model.predict(x)
            XCTAssertEqual(p.shape, [16, 10])
            // Softmax rows sum to 1.
            for row in 0..<16 {
                XCTAssertEqual(p.scalars[(row * 10)..<(row * 10 + 10)].reduce(0, +), 1, accuracy: 1e-4)
            }
        }
    }
}
