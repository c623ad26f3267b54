import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// A loss passed through without the fused path: what `fit` did before it existed.
private struct Unfused: Loss {
    var inner: any Loss
    var name: String { inner.name }
    var isClassification: Bool { inner.isClassification }
    func validate(predictionShape: [Int], targets: Targets) throws { try inner.validate(predictionShape: predictionShape, targets: targets) }
    func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        inner.compute(predictions, targets, sampleWeights: sampleWeights)
    }
}

/// The fused softmax/sigmoid cross-entropy path of `fit` and `trainOnBatch`, and `compile`'s
/// warning about a softmax or sigmoid applied twice.
final class OutputActivationFusionTests: XCTestCase {
    let x = Tensor(shape: [48, 5], scalars: randomScalars(240, seed: 11))
    let y: [Int] = (0..<48).map { ($0 * 7 + 3) % 3 }

    func weights(_ model: Sequential) -> [Float] { model.parameters.flatMap(\.value.scalars) }

    /// A small classifier whose head is `head` (the same initial weights for every head: an
    /// activation draws nothing).
    func classifier(_ head: [any Layer]) -> Sequential {
        Sequential(inputShape: [5], layers: [Dense(8, activation: .tanh)] + head)
    }

    func train(_ model: Sequential, _ loss: any Loss, steps: Int = 6) throws -> History {
        model.compile(optimizer: PlainSGD(learningRate: 0.5, momentum: 0.9), loss: loss, printWarnings: false)
        return try model.fit(x: x, y: y, epochs: steps / 3, batchSize: 16, seed: 5, verbose: 0)
    }

    func testSoftmaxModelWithCategoricalCrossentropyTrainsAsALogitsModel() throws {
        let logits = classifier([Dense(3)])
        let logitsHistory = try train(logits, SoftmaxCrossEntropy())
        // Heads are made afresh for each model: a layer instance belongs to one model.
        let heads: [(() -> [any Layer], any Loss)] = [
            ({ [Dense(3, activation: .softmax)] }, CategoricalCrossentropy()),
            ({ [Dense(3), ActivationLayer(.softmax)] }, CategoricalCrossentropy()),
            ({ [Dense(3, activation: .softmax)] }, SparseCategoricalCrossentropy()),
        ]
        for (head, loss) in heads {
            let softmax = classifier(head())
            let history = try train(softmax, loss)
            XCTAssertEqual(weights(softmax), weights(logits), accuracy: 1e-5, "\(softmax.layers.map { type(of: $0) }) \(loss.name)")
            XCTAssertEqual(history["loss"]!, logitsHistory["loss"]!, accuracy: 1e-5)
            // And the unfused chain rule ends in the same place here (no probability is clipped).
            let unfused = classifier(head())
            let unfusedHistory = try train(unfused, Unfused(inner: loss))
            XCTAssertEqual(weights(unfused), weights(softmax), accuracy: 1e-4)
            XCTAssertEqual(unfusedHistory["loss"]!, history["loss"]!, accuracy: 1e-5, "the logged loss is the probabilities' loss")
        }
    }

    func testSigmoidModelWithBinaryCrossentropyTrainsAsALogitsModel() throws {
        let targets = Tensor(shape: [48, 2], scalars: (0..<96).map { Float(($0 * 5 + 1) % 3 == 0 ? 1 : 0) })
        func run(_ head: () -> [any Layer], _ loss: any Loss) throws -> (Sequential, [Double]) {
            let model = classifier(head())
            model.compile(optimizer: PlainSGD(learningRate: 0.5, momentum: 0.9), loss: loss, printWarnings: false)
            var losses: [Double] = []
            for step in 0..<6 {
                let batch = (step % 3) * 16..<((step % 3) + 1) * 16
                losses.append(try model.trainOnBatch(x: x.slice(batch), y: targets.slice(batch))["loss"]!)
            }
            return (model, losses)
        }
        let (logits, logitsLosses) = try run({ [Dense(2)] }, BinaryCrossentropy(fromLogits: true))
        let heads: [() -> [any Layer]] = [{ [Dense(2, activation: .sigmoid)] }, { [Dense(2), ActivationLayer(.sigmoid)] }]
        for head in heads {
            let (sigmoid, losses) = try run(head, BinaryCrossentropy())
            XCTAssertEqual(weights(sigmoid), weights(logits), accuracy: 1e-5)
            XCTAssertEqual(losses, logitsLosses, accuracy: 1e-5)
            let (unfused, unfusedLosses) = try run(head, Unfused(inner: BinaryCrossentropy()))
            XCTAssertEqual(weights(unfused), weights(sigmoid), accuracy: 1e-4)
            XCTAssertEqual(unfusedLosses, losses, accuracy: 1e-5)
        }
    }

    /// The control that shows the fused path is taken: with every prediction saturated on a wrong
    /// class, the unfused gradient dies in the clip at 1e-7 and the weights do not move, while the
    /// fused gradient `p - y` still teaches.
    func testSaturatedWrongPredictionsStillLearnThroughTheFusedPath() throws {
        func run(_ loss: any Loss) throws -> (before: [Float], after: [Float], loss: Double) {
            let model = Sequential(inputShape: [2], layers: [Dense(3, activation: .softmax,
                                                                   kernelInitializer: .constant(0), biasInitializer: .zeros)])
            try model.build(seed: 0)
            // Bias 100 on class 0: every sample predicts class 0 with probability 1.
            model.parameters[1].value = Tensor(shape: [3], scalars: [100, 0, 0])
            let before = weights(model)
            model.compile(optimizer: PlainSGD(learningRate: 0.1), loss: loss, printWarnings: false)
            let logs = try model.trainOnBatch(x: Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]), y: [1, 2])
            return (before, weights(model), logs["loss"]!)
        }
        let fused = try run(CategoricalCrossentropy()), unfused = try run(Unfused(inner: CategoricalCrossentropy()))
        XCTAssertEqual(unfused.after, unfused.before, "the clipped gradient is 0")
        XCTAssertNotEqual(fused.after, fused.before, "the fused gradient is p - y")
        XCTAssertEqual(fused.loss, -log(1e-7), accuracy: 1e-3)
        XCTAssertEqual(fused.loss, unfused.loss)
    }

    func testCompileWarnsWhenALogitsLossFollowsASoftmaxOrSigmoid() {
        let cases: [([any Layer], any Loss, Bool)] = [
            ([Dense(3, activation: .softmax)], SoftmaxCrossEntropy(), true),
            ([Dense(3) as any Layer, ActivationLayer(.softmax)], CategoricalCrossentropy(fromLogits: true), true),
            ([Dense(3, activation: .softmax)], SparseCategoricalCrossentropy(fromLogits: true), true),
            ([Dense(1, activation: .sigmoid)], BinaryCrossentropy(fromLogits: true), true),
            ([Sequential(layers: [Dense(3) as any Layer, ActivationLayer(.softmax)])], SoftmaxCrossEntropy(), true),
            ([Dense(3, activation: .softmax)], CategoricalCrossentropy(), false),
            ([Dense(3, activation: .softmax)], SparseCategoricalCrossentropy(), false),
            ([Dense(1, activation: .sigmoid)], BinaryCrossentropy(), false),
            ([Dense(3)], SoftmaxCrossEntropy(), false),
            ([Dense(3, activation: .relu)], SoftmaxCrossEntropy(), false),
            ([Dense(3, activation: .softmax)], MeanSquaredError(), false),
        ]
        for (head, loss, warns) in cases {
            let model = classifier(head)
            model.compile(optimizer: PlainSGD(learningRate: 0.1), loss: loss, printWarnings: false)
            XCTAssertEqual(model.compileWarnings.count, warns ? 1 : 0, "\(head.map { type(of: $0) }) \(type(of: loss)): \(model.compileWarnings)")
            if warns { XCTAssertTrue(model.compileWarnings[0].contains("applied twice")) }
        }
        // Compiling again with a fitting loss clears the warning.
        let model = classifier([Dense(3, activation: .softmax)])
        model.compile(optimizer: PlainSGD(learningRate: 0.1), loss: SoftmaxCrossEntropy(), printWarnings: false)
        XCTAssertEqual(model.compileWarnings.count, 1)
        model.compile(optimizer: PlainSGD(learningRate: 0.1), loss: CategoricalCrossentropy())
        XCTAssertEqual(model.compileWarnings, [])
    }
}

private func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, _ message: String = "",
                            file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, accuracy, message, file: file, line: line)
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, _ message: String = "",
                            file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, accuracy, message, file: file, line: line)
}
