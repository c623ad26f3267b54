import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class TrainingTests: XCTestCase {
    func testLearnsXORToFullAccuracy() throws {
        let (x, y) = xorData()
        let model = Sequential(inputShape: [2]) {
            Dense(8, activation: .tanh)
            Dense(2)
        }
        model.compile(optimizer: PlainSGD(learningRate: 0.3, momentum: 0.9), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        let history = try model.fit(x: x, y: y, epochs: 300, batchSize: 4, seed: 1, verbose: 0)
        XCTAssertEqual(history.epochs.count, 300)
        XCTAssertLessThan(history["loss"]!.last!, 0.05)
        XCTAssertLessThan(history["loss"]!.last!, history["loss"]!.first!)
        XCTAssertEqual(try model.evaluate(x: x, y: y)["accuracy"], 1)
        XCTAssertEqual(Metrics.predictedClasses(try model.predict(x)), y)
    }

    func testLearnsATwoClassSpiralQuickly() throws {
        let (x, y) = spiralData(perClass: 200, seed: 3)
        let model = Sequential(inputShape: [2]) {
            Dense(32, activation: .relu)
            Dense(32, activation: .relu)
            Dense(2)
        }
        model.compile(optimizer: PlainSGD(learningRate: 0.1, momentum: 0.9), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        // 150 epochs of 400 samples: well under a second in release (speed is measured by
        // benchmarks, not asserted here).
        let history = try model.fit(x: x, y: y, epochs: 150, batchSize: 32, seed: 2, verbose: 0)
        XCTAssertGreaterThan(history["accuracy"]!.last!, 0.97)
        XCTAssertGreaterThan(try model.evaluate(x: x, y: y)["accuracy"]!, 0.97)
    }

    func testTheSameSeedGivesTheSameWeightsAndLossCurve() throws {
        func run(seed: UInt64) throws -> (History, [Tensor]) {
            let (x, y) = spiralData(perClass: 50, seed: 1)
            let model = Sequential(inputShape: [2]) {
                Dense(16, activation: .relu)
                Dropout(0.3)
                Dense(2)
            }
            model.compile(optimizer: PlainSGD(learningRate: 0.05, momentum: 0.9), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
            let history = try model.fit(x: x, y: y, epochs: 5, batchSize: 16, validationSplit: 0.2, seed: seed, verbose: 0)
            return (history, model.parameters.map(\.value))
        }
        let (a, wa) = try run(seed: 7)
        let (b, wb) = try run(seed: 7)
        let (c, _) = try run(seed: 8)
        XCTAssertEqual(a, b)
        XCTAssertEqual(wa, wb)
        XCTAssertNotEqual(a["loss"], c["loss"])
    }

    func testValidationSplitTakesTheLastSamplesAndLogsValValues() throws {
        let (x, y) = spiralData(perClass: 20, seed: 1)   // class 0 first, then class 1
        let model = Sequential(inputShape: [2]) { Dense(2) }
        model.compile(optimizer: PlainSGD(learningRate: 0), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        let history = try model.fit(x: x, y: y, epochs: 2, batchSize: 8, validationSplit: 0.25, shuffle: false, verbose: 0)
        XCTAssertEqual(Set(history.history.keys), ["loss", "accuracy", "val_loss", "val_accuracy"])
        XCTAssertEqual(history["val_loss"]!.count, 2)
        // With a zero learning rate the validation values are those of evaluate on the last 10 samples.
        let last = try model.evaluate(x: x.slice(30..<40), y: Array(y[30..<40]))
        XCTAssertEqual(history["val_loss"]![1], last["loss"]!, accuracy: 1e-6)
        XCTAssertEqual(history["val_accuracy"]![1], last["accuracy"]!, accuracy: 1e-12)
        let first = try model.evaluate(x: x.slice(0..<30), y: Array(y[0..<30]))
        XCTAssertEqual(history["loss"]![1], first["loss"]!, accuracy: 1e-5)
    }

    func testClassWeightsScaleTheLossAndAMissingWeightThrows() throws {
        let (x, y) = spiralData(perClass: 10, seed: 1)
        func epochLoss(_ weights: [Int: Float]?) throws -> Double {
            let model = Sequential(inputShape: [2]) { Dense(2) }
            model.compile(optimizer: PlainSGD(learningRate: 0), loss: SoftmaxCrossEntropy())
            return try model.fit(x: x, y: y, epochs: 1, batchSize: 20, shuffle: false, classWeights: weights, seed: 3, verbose: 0)["loss"]![0]
        }
        let plain = try epochLoss(nil)
        XCTAssertEqual(try epochLoss([0: 2, 1: 2]), 2 * plain, accuracy: 1e-5)
        // Weighting only class 0 leaves the class-0 part of the mean: its share of the sum, over all samples.
        let model = Sequential(inputShape: [2]) { Dense(2) }
        try model.build(seed: 3)
        let perClass0 = SoftmaxCrossEntropy()(try model.predict(x), labels: y, sampleWeights: y.map { $0 == 0 ? 1 : 0 }).loss
        XCTAssertEqual(try epochLoss([0: 1, 1: 0]), Double(perClass0), accuracy: 1e-5)
        XCTAssertNotEqual(try epochLoss([0: 1, 1: 3]), plain, accuracy: 1e-3)

        XCTAssertThrowsError(try epochLoss([0: 1])) { error in
            XCTAssertTrue("\(error)".contains("no weight for class 1"), "\(error)")
        }
        let regression = Sequential(inputShape: [2]) { Dense(1) }
        regression.compile(optimizer: PlainSGD(learningRate: 0.1), loss: MeanSquaredError())
        XCTAssertThrowsError(try regression.fit(x: x, y: Tensor.zeros([20, 1]), classWeights: [0: 1], verbose: 0)) { error in
            XCTAssertTrue("\(error)".contains("classWeights need a classification loss"), "\(error)")
        }
    }

    func testANaNLossStopsTrainingNamingEpochAndStep() throws {
        var values = randomScalars(40, seed: 1)
        values[2 * 13] = .nan   // sample 13: the fourth batch of 4 (step 3), when not shuffled
        let x = Tensor(shape: [20, 2], scalars: values)
        let model = Sequential(inputShape: [2]) { Dense(1) }
        model.compile(optimizer: PlainSGD(learningRate: 0.01), loss: MeanSquaredError())
        XCTAssertThrowsError(try model.fit(x: x, y: Tensor.zeros([20, 1]), epochs: 3, batchSize: 4, shuffle: false, verbose: 0)) { error in
            let e = error as? TrainingError
            XCTAssertEqual(e?.epoch, 0)
            XCTAssertEqual(e?.step, 3)
            XCTAssertTrue("\(error)".contains("nan at epoch 1 of 3, step 4 of 5"), "\(error)")
        }
    }

    func testRegressionWithTensorTargets() throws {
        var g = SeededGenerator(seed: 4)
        let x = Tensor.randomUniform([64, 3], in: -1...1, using: &g)
        let y = Tensor.matmul(x, Tensor(shape: [3, 1], scalars: [2, -1, 0.5])) + 0.3
        let model = Sequential(inputShape: [3]) { Dense(1) }
        model.compile(optimizer: PlainSGD(learningRate: 0.1, momentum: 0.5), loss: MeanSquaredError(), metrics: [.meanAbsoluteError])
        let history = try model.fit(x: x, y: y, epochs: 60, batchSize: 16, seed: 1, verbose: 0)
        XCTAssertLessThan(history["loss"]!.last!, 1e-4)
        XCTAssertLessThan(try model.evaluate(x: x, y: y)["mae"]!, 0.01)
        assertClose(model.parameters[0].value, Tensor(shape: [3, 1], scalars: [2, -1, 0.5]), rtol: 0, atol: 0.02)
    }

    func testBinaryClassificationFromLogitsWithLabels() throws {
        let (x, y) = spiralData(perClass: 100, seed: 5)
        let model = Sequential(inputShape: [2]) {
            Dense(32, activation: .tanh)
            Dense(32, activation: .tanh)
            Dense(1)
        }
        model.compile(optimizer: PlainSGD(learningRate: 0.1, momentum: 0.9), loss: BinaryCrossEntropy(fromLogits: true), metrics: [.accuracy])
        try model.fit(x: x, y: y, epochs: 100, batchSize: 20, seed: 3, verbose: 0)
        let accuracy = try model.evaluate(x: x, y: y)["accuracy"]!
        // Accuracy thresholds logits at 0: the same as the sign of the logit.
        let bySign = zip(try model.predict(x).scalars, y).filter { ($0 > 0) == ($1 == 1) }.count
        XCTAssertEqual(accuracy, Double(bySign) / 200, accuracy: 1e-12)
        XCTAssertGreaterThan(accuracy, 0.9)
    }

    func testMisuseThrowsBeforeAnyStep() throws {
        let model = Sequential(inputShape: [2]) { Dense(3) }
        let x = Tensor.zeros([4, 2])
        XCTAssertThrowsError(try model.fit(x: x, y: [0, 1, 2, 0], verbose: 0)) { error in
            XCTAssertTrue("\(error)".contains("compile"), "\(error)")
        }
        model.compile(optimizer: PlainSGD(learningRate: 0.1), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        XCTAssertThrowsError(try model.fit(x: x, y: [0, 1, 2], verbose: 0)) { error in
            XCTAssertTrue("\(error)".contains("4 samples") && "\(error)".contains("3"), "\(error)")
        }
        XCTAssertThrowsError(try model.fit(x: Tensor.zeros([4, 5]), y: [0, 1, 2, 0], verbose: 0)) { error in
            XCTAssertTrue("\(error)".contains("[4, 5]") && "\(error)".contains("[2]"), "\(error)")
        }
        XCTAssertThrowsError(try model.fit(x: x, y: [0, 1, 5, 0], verbose: 0)) { error in
            XCTAssertTrue("\(error)".contains("label 5"), "\(error)")
        }
        XCTAssertThrowsError(try model.fit(x: x, y: [0, 1, 2, 0], validationData: (x, [0, 1, 2, 0]), validationSplit: 0.5, verbose: 0))
        XCTAssertEqual(model.optimizer?.iterations, 0, "no step was taken")
        // An unbuilt model without a declared shape is built by fit from x, with fit's seed.
        let a = Sequential { Dense(2) }, b = Sequential { Dense(2) }
        for m in [a, b] { m.compile(optimizer: PlainSGD(learningRate: 0), loss: SoftmaxCrossEntropy()) }
        try a.fit(x: x, y: [0, 1, 1, 0], seed: 11, verbose: 0)
        try b.fit(x: x, y: [0, 1, 1, 0], seed: 11, verbose: 0)
        XCTAssertEqual(a.builtInputShape, [2])
        XCTAssertEqual(a.parameters[0].value, b.parameters[0].value)
    }

    func testATrainingStepUsesTheGradientsOfAFullBackwardPass() throws {
        /// Records the gradients it is given instead of updating anything.
        final class GradientRecorder: Optimizer {
            var learningRate: Float = 0
            var iterations = 0
            var gradients: [[Tensor]] = []
            func step(_ parameters: [Parameter]) {
                gradients.append(parameters.map(\.gradient))
                iterations += 1
            }
            func stateTensors() -> [String: Tensor] { [:] }
            func loadStateTensors(_ state: [String: Tensor], for parameters: [Parameter]) throws {}
        }
        // fit skips work no parameter needs (the input gradient of the first Dense, here nested
        // after a Flatten); the gradients must not change.
        let model = Sequential(inputShape: [2, 3]) {
            Sequential { Flatten(); Dense(4, activation: .tanh) }
            Dense(3)
        }
        let recorder = GradientRecorder()
        model.compile(optimizer: recorder, loss: SoftmaxCrossEntropy())
        let x = Tensor(shape: [5, 2, 3], scalars: randomScalars(30, seed: 3))
        let y = [0, 2, 1, 1, 0]
        try model.fit(x: x, y: y, epochs: 1, batchSize: 5, shuffle: false, verbose: 0)
        for p in model.parameters { p.zeroGradient() }
        let out = model.forward(x, training: true)
        _ = model.backward(SoftmaxCrossEntropy()(out, labels: y).gradient)
        XCTAssertEqual(recorder.gradients.count, 1)
        XCTAssertEqual(recorder.gradients[0], model.parameters.map(\.gradient))
        XCTAssertNotEqual(recorder.gradients[0][0], Tensor.zeros([6, 4]))
    }
}
