import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Keras' `trainable`: frozen layers keep their weights through training while gradients still
/// flow through them, a frozen batch normalisation runs in inference mode (and its backward pass
/// is that mode's adjoint), summaries and saved models know which weights are frozen, and every
/// layer's config accepts the flag.
final class FreezingTests: XCTestCase {
    // MARK: Helpers

    /// 64 samples of 6 features, labels from the sign of two fixed projections (3 classes).
    private func toyData(seed: UInt64 = 3) -> (x: Tensor, y: [Int]) {
        let scalars = randomScalars(64 * 6, seed: seed)
        let x = Tensor(shape: [64, 6], scalars: scalars)
        let y = (0..<64).map { i -> Int in
            let row = scalars[(i * 6)..<(i * 6 + 6)].map(Double.init)
            let a = row[0] + row[1] - row[2], b = row[3] - row[4] + 0.5 * row[5]
            return a > 0 ? (b > 0 ? 2 : 1) : 0
        }
        return (x, y)
    }

    /// Every parameter's value by name, copied.
    private func snapshot(_ layer: any Layer) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: layer.parameters.map { ($0.name, $0.value.scalars) })
    }

    private func assertUnchanged(_ before: [String: [Float]], _ layer: any Layer, _ what: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(before.isEmpty, "\(what) has no parameters to compare", file: file, line: line)
        for p in layer.parameters {
            XCTAssertEqual(p.value.scalars, before[p.name], "\(what): \(p.name) changed", file: file, line: line)
        }
    }

    private func assertChanged(_ before: [String: [Float]], _ layer: any Layer, _ what: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(before.isEmpty, "\(what) has no parameters to compare", file: file, line: line)
        for p in layer.parameters where p.isTrainable {
            XCTAssertNotEqual(p.value.scalars, before[p.name], "\(what): \(p.name) did not change", file: file, line: line)
        }
    }

    private func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "neurite-freezing-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    // MARK: Training

    func testAFrozenLayerKeepsItsWeightsWhileTheOthersLearnAndUnfreezingResumesUpdates() throws {
        let (x, y) = toyData()
        let first = Dense(8, activation: .tanh), middle = Dense(8, activation: .relu), last = Dense(3)
        let model = Sequential(inputShape: [6]) { first; middle; last }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SoftmaxCrossEntropy())
        try model.build(seed: 5)
        middle.trainable = false
        XCTAssertTrue(middle.parameters.allSatisfy { !$0.isTrainable })
        let (firstBefore, middleBefore, lastBefore) = (snapshot(first), snapshot(middle), snapshot(last))
        _ = try model.fit(x: x, y: y, epochs: 3, batchSize: 16, seed: 1, verbose: 0)
        assertUnchanged(middleBefore, middle, "frozen middle Dense")
        assertChanged(lastBefore, last, "last Dense")
        // The first layer learns only through the frozen one: gradients flow through it.
        assertChanged(firstBefore, first, "first Dense, before the frozen one")

        middle.trainable = true
        XCTAssertTrue(middle.parameters.allSatisfy(\.isTrainable))
        _ = try model.fit(x: x, y: y, epochs: 1, batchSize: 16, seed: 2, verbose: 0)
        assertChanged(middleBefore, middle, "unfrozen middle Dense")
    }

    func testAFrozenLayerBeforeBuildIsBuiltFrozen() throws {
        let dense = Dense(4)
        dense.trainable = false
        var generator = SeededGenerator(seed: 1)
        _ = try dense.build(inputShape: [3], generator: &generator)
        XCTAssertEqual(dense.parameters.count, 2)
        XCTAssertTrue(dense.parameters.allSatisfy { !$0.isTrainable })
        XCTAssertFalse(dense.trainable)
    }

    func testAFrozenDensePassesTheInputGradientOnButAccumulatesNoWeightGradient() throws {
        let frozen = Dense(3, activation: .tanh), control = Dense(3, activation: .tanh)
        for layer in [frozen, control] {
            var generator = SeededGenerator(seed: 8)
            _ = try layer.build(inputShape: [4], generator: &generator)
        }
        frozen.trainable = false
        let x = Tensor(shape: [2, 4], scalars: randomScalars(8, seed: 1))
        let w = Tensor(shape: [2, 3], scalars: randomScalars(6, seed: 2))
        _ = frozen.forward(x, training: true)
        _ = control.forward(x, training: true)
        XCTAssertEqual(frozen.backward(w).scalars, control.backward(w).scalars)
        XCTAssertTrue(frozen.parameters.allSatisfy { $0.gradient.scalars.allSatisfy { $0 == 0 } })
        XCTAssertTrue(control.parameters.allSatisfy { $0.gradient.scalars.contains { $0 != 0 } })
    }

    func testAdamKeepsWorkingWhenAParameterIsFrozenAndUnfrozenMidTraining() throws {
        let (x, y) = toyData()
        let first = Dense(8, activation: .tanh), last = Dense(3)
        let model = Sequential(inputShape: [6]) { first; last }
        let adam = Adam(learningRate: 0.01)
        model.compile(optimizer: adam, loss: SoftmaxCrossEntropy())
        try model.build(seed: 2)
        for _ in 0..<3 { try model.trainOnBatch(x: x, y: y) }
        let moments = adam.stateTensors()
        XCTAssertNotNil(moments["dense.kernel.m"])

        first.trainable = false
        let frozenAt = snapshot(first), lastBefore = snapshot(last)
        for _ in 0..<3 { try model.trainOnBatch(x: x, y: y) }
        assertUnchanged(frozenAt, first, "Dense frozen mid-training")
        assertChanged(lastBefore, last, "trainable Dense")
        // The frozen kernel's moments are kept as they were (nothing updates them).
        XCTAssertEqual(adam.stateTensors()["dense.kernel.m"]?.scalars, moments["dense.kernel.m"]?.scalars)
        XCTAssertEqual(adam.iterations, 6)

        // The state of a model with a frozen layer saves and restores.
        let directory = temporaryDirectory()
        try model.save(to: directory, optimizer: adam)
        let restored = Adam(learningRate: 0.01)
        try model.loadOptimizerState(into: restored, from: directory)
        XCTAssertEqual(restored.iterations, 6)

        first.trainable = true
        for _ in 0..<2 { try model.trainOnBatch(x: x, y: y) }
        assertChanged(frozenAt, first, "Dense unfrozen mid-training")
        XCTAssertNotEqual(adam.stateTensors()["dense.kernel.m"]?.scalars, moments["dense.kernel.m"]?.scalars)
        for p in model.parameters { XCTAssertTrue(p.value.scalars.allSatisfy(\.isFinite), p.name) }
    }

    func testModelTrainableSetsEveryLayerAndLeavesRunningStatisticsNonTrainable() throws {
        let inner = Sequential(name: "inner") { Dense(4); BatchNormalization() }
        let model = Sequential(inputShape: [3]) { inner; Dense(2) }
        try model.build(seed: 1)
        XCTAssertTrue(model.trainable)
        model.trainable = false
        XCTAssertFalse(model.trainable)
        XCTAssertFalse(inner.trainable)
        XCTAssertTrue(inner.layers.allSatisfy { !$0.trainable })
        XCTAssertTrue(model.parameters.allSatisfy { !$0.isTrainable })
        model.trainable = true
        let running = model.parameters.filter { $0.name.hasSuffix("moving_mean") || $0.name.hasSuffix("moving_variance") }
        XCTAssertEqual(running.count, 2)
        XCTAssertTrue(running.allSatisfy { !$0.isTrainable })
        XCTAssertEqual(model.parameters.filter(\.isTrainable).count, model.parameters.count - 2)
    }

    func testTransferLearningTrainsTheNewHeadOnAFrozenConvolutionalBase() throws {
        // Images 6x6x1: class 1 has a bright vertical bar, class 0 a horizontal one, plus noise.
        let n = 48
        let noise = randomScalars(n * 36, seed: 9)
        var scalars = [Float](repeating: 0, count: n * 36)
        var labels: [Int] = []
        for i in 0..<n {
            let label = i % 2, position = 1 + (i / 2) % 4
            labels.append(label)
            for r in 0..<6 {
                for c in 0..<6 {
                    let onBar = label == 1 ? c == position : r == position
                    scalars[i * 36 + r * 6 + c] = (onBar ? 1 : 0) + 0.1 * noise[i * 36 + r * 6 + c]
                }
            }
        }
        let x = Tensor(shape: [n, 6, 6, 1], scalars: scalars)

        let base = Sequential(name: "base") {
            Conv2D(filters: 4, kernelSize: (3, 3), activation: .relu)
            BatchNormalization()
            Conv2D(filters: 4, kernelSize: (3, 3), padding: .same, activation: .relu)
        }
        let pretraining = Sequential(inputShape: [6, 6, 1]) { base; GlobalAveragePool2D(); Dense(2) }
        pretraining.compile(optimizer: Adam(learningRate: 0.02), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        _ = try pretraining.fit(x: x, y: labels, epochs: 10, batchSize: 8, seed: 1, verbose: 0)

        // Fine-tune: freeze the base, give it a new head, train.
        base.trainable = false
        let head = Dense(2, name: "new_head")
        let model = Sequential(inputShape: [6, 6, 1]) { base; Flatten(); head }
        model.compile(optimizer: Adam(learningRate: 0.02), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        try model.build(seed: 7)
        let baseBefore = snapshot(base), headBefore = snapshot(head)
        let lossBefore = try model.evaluate(x: x, y: labels)["loss"]!
        _ = try model.fit(x: x, y: labels, epochs: 10, batchSize: 8, seed: 2, verbose: 0)
        assertUnchanged(baseBefore, base, "frozen base (moving statistics included)")
        assertChanged(headBefore, head, "new head")
        let after = try model.evaluate(x: x, y: labels)
        XCTAssertLessThan(after["loss"]!, lossBefore)
        XCTAssertGreaterThan(after["accuracy"]!, 0.8)
        XCTAssertTrue(model.summary().contains("Trainable params: \(head.parameters.reduce(0) { $0 + $1.value.count })"),
                      model.summary())
    }

    // MARK: Batch normalisation

    /// Keras 3.15 (TensorFlow 2.21), for the reference values below:
    /// ```python
    /// x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], np.float32)
    /// w = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0]], np.float32)
    /// bn = keras.layers.BatchNormalization(epsilon=1e-3); bn.build((None, 3))
    /// bn.set_weights([gamma, beta, moving_mean, moving_variance])   # the values below
    /// bn.trainable = False
    /// with tf.GradientTape() as tape:
    ///     tape.watch(xt); y = bn(xt, training=True); s = tf.reduce_sum(y * w)
    /// dx, dgamma, dbeta = tape.gradient(s, [xt, bn.gamma, bn.beta])
    /// ```
    /// (the same numbers come from `trainable = True` with `training=False`; the moving
    /// statistics are unchanged after the call).
    private enum KerasReference {
        static let x: [Float] = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75]
        static let w: [Float] = [1.0, -2.0, 0.5, 0.25, 3.0, -1.0]
        static let gamma: [Float] = [1.5, 0.5, -2.0], beta: [Float] = [0.1, -0.2, 0.3]
        static let movingMean: [Float] = [0.2, -0.5, 1.0], movingVariance: [Float] = [0.8, 2.0, 0.5]
        static let y: [Double] = [0.6028012037277222, -0.3767325282096863, -2.5256030559539795,
                                  2.2788050174713135, 0.06509878486394882, 5.244805335998535]
        static let dx: [Double] = [1.6760039329528809, -0.7069301009178162, -1.4128015041351318,
                                   0.4190009832382202, 1.0603951215744019, 2.8256030082702637]
        static let dgamma: [Double] = [0.6983349323272705, 2.297522783279419, 3.1788034439086914]
        static let dbeta: [Double] = [1.25, 1.0, -0.5]
    }

    private func referenceBatchNormalization() throws -> BatchNormalization {
        let bn = BatchNormalization(epsilon: 1e-3)
        var generator = SeededGenerator(seed: 0)
        try bn.build(inputShape: [3], generator: &generator)
        bn.gamma!.value = Tensor(KerasReference.gamma)
        bn.beta!.value = Tensor(KerasReference.beta)
        bn.movingMean!.value = Tensor(KerasReference.movingMean)
        bn.movingVariance!.value = Tensor(KerasReference.movingVariance)
        return bn
    }

    func testFrozenBatchNormalizationUsesAndKeepsItsMovingStatisticsInTraining() throws {
        let bn = try referenceBatchNormalization()
        bn.trainable = false
        XCTAssertFalse(bn.gamma!.isTrainable)
        XCTAssertFalse(bn.beta!.isTrainable)
        let x = Tensor(shape: [2, 3], scalars: KerasReference.x)
        let y = bn.forward(x, training: true)
        assertClose(y.scalars, KerasReference.y, rtol: 1e-5, atol: 1e-6)
        XCTAssertEqual(y.scalars, bn.forward(x, training: false).scalars)
        XCTAssertEqual(bn.movingMean!.value.scalars, KerasReference.movingMean)
        XCTAssertEqual(bn.movingVariance!.value.scalars, KerasReference.movingVariance)

        // Control: unfrozen, the same call normalises with the batch and moves the statistics.
        bn.trainable = true
        XCTAssertTrue(bn.gamma!.isTrainable && bn.beta!.isTrainable)
        XCTAssertFalse(bn.movingMean!.isTrainable || bn.movingVariance!.isTrainable)
        XCTAssertNotEqual(bn.forward(x, training: true).scalars, y.scalars)
        XCTAssertNotEqual(bn.movingMean!.value.scalars, KerasReference.movingMean)
    }

    func testFrozenBatchNormalizationBackwardIsTheInferenceAdjointAsInKeras() throws {
        let bn = try referenceBatchNormalization()
        bn.trainable = false
        let x = Tensor(shape: [2, 3], scalars: KerasReference.x), w = Tensor(shape: [2, 3], scalars: KerasReference.w)
        _ = bn.forward(x, training: true)
        let dx = bn.backward(w)
        assertClose(dx.scalars, KerasReference.dx, rtol: 1e-5, atol: 1e-6)
        // The closed form: dy * gamma / sqrt(moving_variance + epsilon), per channel.
        let formula = (0..<6).map { i -> Double in
            let c = i % 3
            return Double(KerasReference.w[i]) * Double(KerasReference.gamma[c])
                / (Double(KerasReference.movingVariance[c]) + 1e-3).squareRoot()
        }
        assertClose(dx.scalars, formula, rtol: 1e-6, atol: 1e-7)
        // Frozen: nothing would apply gamma's and beta's gradients, so none are accumulated.
        XCTAssertEqual(bn.gamma!.gradient.scalars, [0, 0, 0])
        XCTAssertEqual(bn.beta!.gradient.scalars, [0, 0, 0])
    }

    func testInferenceModeBackwardOfATrainableBatchNormalizationMatchesKeras() throws {
        let bn = try referenceBatchNormalization()
        let x = Tensor(shape: [2, 3], scalars: KerasReference.x), w = Tensor(shape: [2, 3], scalars: KerasReference.w)
        _ = bn.forward(x, training: false)
        let dx = bn.backward(w)
        assertClose(dx.scalars, KerasReference.dx, rtol: 1e-5, atol: 1e-6)
        assertClose(bn.gamma!.gradient.scalars, KerasReference.dgamma, rtol: 1e-5, atol: 1e-6)
        assertClose(bn.beta!.gradient.scalars, KerasReference.dbeta, rtol: 1e-5, atol: 1e-6)

        // The layer remembers the mode: a training-mode forward brings back the batch adjoint,
        // whose input gradient sums to zero per channel (the batch mean is subtracted).
        _ = bn.forward(x, training: true)
        let batchDx = bn.backward(w).scalars
        XCTAssertNotEqual(batchDx.map(Double.init), KerasReference.dx)
        for c in 0..<3 { XCTAssertEqual(Double(batchDx[c] + batchDx[c + 3]), 0, accuracy: 1e-5) }
    }

    func testInferenceModeBackwardMatchesFiniteDifferences() throws {
        // Channels last (the fused kernels) and channels on axis 1 (the strided loops).
        for axis in [-1, 1] {
            let bn = BatchNormalization(axis: axis, epsilon: 1e-2)
            var generator = SeededGenerator(seed: 4)
            let shape = [3, 4, 5]
            try bn.build(inputShape: shape, generator: &generator)
            let channels = axis == -1 ? 5 : 3
            bn.gamma!.value = Tensor(shape: [channels], scalars: randomScalars(channels, seed: 11).map { $0 + 1.5 })
            bn.beta!.value = Tensor(shape: [channels], scalars: randomScalars(channels, seed: 12))
            bn.movingMean!.value = Tensor(shape: [channels], scalars: randomScalars(channels, seed: 13))
            bn.movingVariance!.value = Tensor(shape: [channels], scalars: randomScalars(channels, seed: 14).map { $0 + 1.2 })
            let x = Tensor(shape: [2] + shape, scalars: randomScalars(120, seed: 15))
            let w = Tensor(shape: [2] + shape, scalars: randomScalars(120, seed: 16))
            for p in bn.parameters { p.zeroGradient() }
            _ = bn.forward(x, training: false)
            let dx = bn.backward(w)
            let f: (Tensor) -> Double = { weightedSum(bn.forward($0, training: false), w) }
            checkGradient(of: f, at: x, analytic: dx, epsilon: 1e-2, rtol: 1e-3, atol: 1e-4, "axis \(axis) input")
            for p in [bn.gamma!, bn.beta!] {
                let analytic = p.gradient, saved = p.value
                checkGradient(of: { v in
                    p.value = v
                    defer { p.value = saved }
                    return weightedSum(bn.forward(x, training: false), w)
                }, at: saved, analytic: analytic, epsilon: 1e-2, rtol: 1e-3, atol: 1e-4, "axis \(axis) \(p.name)")
            }
        }
    }

    func testFrozenBatchNormalizationFusedWithReLUInAModelMatchesFiniteDifferences() throws {
        let bn = BatchNormalization()
        let model = Sequential(inputShape: [3, 4]) { Dense(5); bn; ActivationLayer(.relu); Dense(2) }
        try model.build(seed: 3)
        bn.movingMean!.value = Tensor(shape: [5], scalars: randomScalars(5, seed: 21))
        bn.movingVariance!.value = Tensor(shape: [5], scalars: randomScalars(5, seed: 22).map { $0 + 1.5 })
        bn.trainable = false
        let x = Tensor(shape: [2, 3, 4], scalars: randomScalars(24, seed: 23))
        let w = Tensor(shape: [2, 3, 2], scalars: randomScalars(12, seed: 24))
        for p in model.parameters { p.zeroGradient() }
        let y = model.forward(x, training: true)
        XCTAssertEqual(y.scalars, model.forward(x, training: false).scalars, "a frozen BN runs in inference mode")
        _ = model.forward(x, training: true)
        let dx = model.backward(w)
        checkGradient(of: { weightedSum(model.forward($0, training: false), w) }, at: x, analytic: dx,
                      epsilon: 1e-3, rtol: 1e-2, atol: 1e-3, "model input through a frozen BN + relu")
    }

    // MARK: Summary and saving

    func testSummaryCountsFrozenWeightsAsNonTrainable() throws {
        let first = Dense(4)
        let model = Sequential(inputShape: [3]) { first; BatchNormalization(); Dense(2) }
        try model.build(seed: 0)
        // Dense 3->4: 16, BN: 8 trainable + 8 running statistics, Dense 4->2: 10.
        XCTAssertTrue(model.summary().contains("Trainable params: 34 "), model.summary())
        XCTAssertTrue(model.summary().contains("Non-trainable params: 8 "), model.summary())
        first.trainable = false
        XCTAssertTrue(model.summary().contains("Total params: 42 "), model.summary())
        XCTAssertTrue(model.summary().contains("Trainable params: 18 "), model.summary())
        XCTAssertTrue(model.summary().contains("Non-trainable params: 24 "), model.summary())
        model.trainable = false
        XCTAssertTrue(model.summary().contains("Trainable params: 0 "), model.summary())
        XCTAssertTrue(model.summary().contains("Non-trainable params: 42 "), model.summary())
    }

    func testSavingAndLoadingKeepFrozenLayersFrozen() throws {
        let nested = Sequential(name: "features") { Dense(4, activation: .relu); BatchNormalization() }
        let model = Sequential(inputShape: [3]) { nested; Dense(3); Dropout(0.1); Dense(2) }
        try model.build(seed: 1)
        nested.trainable = false
        model.layers[3].trainable = false
        model.layers[2].trainable = false
        XCTAssertNil(model.layers[1].config["trainable"], "a trainable layer's config is unchanged")
        XCTAssertEqual(model.layers[3].config["trainable"], .bool(false))
        let directory = temporaryDirectory()
        try model.save(to: directory)
        let json = try String(contentsOfFile: directory + "/model.json", encoding: .utf8)
        XCTAssertTrue(json.contains("\"trainable\" : false"), json)

        let loaded = try Sequential.load(from: directory)
        XCTAssertTrue(loaded.trainable)
        let loadedNested = try XCTUnwrap(loaded.layers[0] as? Sequential)
        XCTAssertFalse(loadedNested.trainable)
        XCTAssertTrue(loadedNested.layers.allSatisfy { !$0.trainable })
        XCTAssertEqual(loaded.layers.map(\.trainable), [false, true, false, false])
        XCTAssertEqual(loaded.parameters.map(\.name), model.parameters.map(\.name))
        XCTAssertEqual(loaded.parameters.map(\.isTrainable), model.parameters.map(\.isTrainable))
        XCTAssertEqual(loaded.summary(), model.summary())

        // A whole frozen model round-trips too.
        model.trainable = false
        try model.save(to: directory)
        let frozen = try Sequential.load(from: directory)
        XCTAssertFalse(frozen.trainable)
        XCTAssertTrue(frozen.parameters.allSatisfy { !$0.isTrainable })
    }

    // MARK: Configs

    /// One instance of every built-in type, for configs the types accept.
    private let samples: [any Layer] = [
        Dense(4, activation: .relu), Conv2D(filters: 3, kernelSize: (3, 3)), Conv2DTranspose(filters: 2, kernelSize: (2, 2)),
        Dropout(0.2), BatchNormalization(), MaxPool2D(poolSize: (2, 2)), AveragePool2D(poolSize: (2, 2)),
        GlobalAveragePool2D(), Flatten(), Reshape([2, 2]), UpSampling2D(), ActivationLayer(.tanh),
        Conv1D(filters: 2, kernelSize: 3), MaxPool1D(), AveragePool1D(), GlobalMaxPool1D(), GlobalAveragePool1D(),
        Sequential(inputShape: [2]), Input(shape: [2]),
    ]

    func testEveryRegisteredLayerTypeAcceptsTrainableTrueOrFalseAndRejectsOtherValues() throws {
        // This module's types; other modules (the recurrent layers, tests' own layers) may have
        // registered theirs in this process, and test them themselves (RecurrentFreezingTests).
        let names = LayerRegistry.registeredNames.filter { name in
            LayerRegistry.type(named: name).map { String(reflecting: $0).hasPrefix("Layers.") } ?? false
        }
        XCTAssertGreaterThan(names.count, 20)
        for name in names {
            let type = try XCTUnwrap(LayerRegistry.type(named: name))
            guard let sample = samples.first(where: { Swift.type(of: $0) == type }) else {
                XCTFail("no sample config for the registered type \(name): add one to `samples`")
                continue
            }
            var config = sample.config
            config["trainable"] = .bool(false)
            let frozen = try type.init(config: config)
            XCTAssertFalse(frozen.trainable, name)
            XCTAssertEqual(frozen.config["trainable"], .bool(false), name)
            XCTAssertEqual(try type.init(config: frozen.config).config, frozen.config, name)
            config["trainable"] = .bool(true)
            let trainable = try type.init(config: config)
            XCTAssertTrue(trainable.trainable, name)
            XCTAssertNil(trainable.config["trainable"], name)
            for bad: ConfigValue in [.string("false"), .int(0), .null] {
                config["trainable"] = bad
                XCTAssertThrowsError(try type.init(config: config), "\(name) with trainable \(bad)") { error in
                    let message = (error as? LayerError)?.message ?? "not a LayerError: \(error)"
                    XCTAssertTrue(message.contains("trainable") && message.contains("\(bad)"), message)
                }
            }
        }
    }
}
