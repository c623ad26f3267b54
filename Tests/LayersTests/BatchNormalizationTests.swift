import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

/// Per-channel mean and biased variance (channel = last axis) in Float64, written independently.
private func channelMoments(_ x: Tensor) -> (mean: [Double], variance: [Double]) {
    let c = x.shape.last!, values = x.scalars.map(Double.init), m = Double(values.count / c)
    var mean = [Double](repeating: 0, count: c), variance = mean
    for (i, v) in values.enumerated() { mean[i % c] += v / m }
    for (i, v) in values.enumerated() { variance[i % c] += (v - mean[i % c]) * (v - mean[i % c]) / m }
    return (mean, variance)
}

/// Random values with a different offset and spread per channel (last axis), so that
/// normalisation has something to undo.
private func shiftedInput(_ shape: [Int], seed: UInt64) -> Tensor {
    let c = shape.last!
    let base = randomTensor(shape, seed: seed).scalars
    return Tensor(shape: shape, scalars: base.enumerated().map { i, v in
        let channel = Float(i % c)
        return v * (1 + channel) + 2 - channel
    })
}

final class BatchNormalizationTests: XCTestCase {
    func testTrainingOutputHasZeroMeanAndUnitVariancePerChannel() {
        for shape in [[16, 5], [4, 3, 3, 2]] {
            let layer = BatchNormalization()
            convTestBuild(layer, Array(shape.dropFirst()))
            let x = shiftedInput(shape, seed: 1)
            let (inputMean, inputVariance) = channelMoments(x)
            XCTAssertGreaterThan(inputMean.map(Swift.abs).max()!, 0.5, "the input is not already normalised")
            let (mean, variance) = channelMoments(layer.forward(x, training: true))
            for c in mean.indices {
                XCTAssertEqual(mean[c], 0, accuracy: 1e-5, "channel \(c) of \(shape)")
                // epsilon = 1e-3 makes the variance var / (var + epsilon), a hair below 1.
                XCTAssertEqual(variance[c], inputVariance[c] / (inputVariance[c] + 1e-3), accuracy: 1e-4)
                XCTAssertEqual(variance[c], 1, accuracy: 1e-2, "channel \(c) of \(shape)")
            }
        }
    }

    func testRunningStatisticsFollowTheMomentumFormula() {
        let layer = BatchNormalization(momentum: 0.9)
        convTestBuild(layer, [3])
        XCTAssertEqual(layer.movingMean!.value, Tensor.zeros([3]))
        XCTAssertEqual(layer.movingVariance!.value, Tensor.ones([3]))
        var expectedMean = [0.0, 0, 0], expectedVariance = [1.0, 1, 1]
        for seed: UInt64 in [2, 3] {
            let x = shiftedInput([6, 3], seed: seed)
            _ = layer.forward(x, training: true)
            let (mean, variance) = channelMoments(x)
            for c in 0..<3 {
                expectedMean[c] = 0.9 * expectedMean[c] + 0.1 * mean[c]
                // Keras 3: the biased batch variance (divided by M, not M - 1).
                expectedVariance[c] = 0.9 * expectedVariance[c] + 0.1 * variance[c]
            }
            assertClose(layer.movingMean!.value.scalars, expectedMean, rtol: 1e-5, atol: 1e-6, "seed \(seed)")
            assertClose(layer.movingVariance!.value.scalars, expectedVariance, rtol: 1e-5, atol: 1e-6, "seed \(seed)")
        }
        // An inference pass leaves them alone.
        let before = (layer.movingMean!.value, layer.movingVariance!.value)
        _ = layer.forward(shiftedInput([6, 3], seed: 4), training: false)
        XCTAssertEqual(layer.movingMean!.value, before.0)
        XCTAssertEqual(layer.movingVariance!.value, before.1)
    }

    func testInferenceUsesRunningStatistics() {
        let layer = BatchNormalization(epsilon: 0.01)
        convTestBuild(layer, [2, 2, 3])
        let runningMean: [Float] = [0.5, -1, 2], runningVariance: [Float] = [4, 0.25, 1]
        let gamma: [Float] = [1.5, -0.5, 2], beta: [Float] = [0.1, 0.2, -0.3]
        layer.movingMean!.value = Tensor(runningMean)
        layer.movingVariance!.value = Tensor(runningVariance)
        layer.gamma!.value = Tensor(gamma)
        layer.beta!.value = Tensor(beta)
        let x = shiftedInput([3, 2, 2, 3], seed: 5)
        let y = layer.forward(x, training: false)
        let expected = x.scalars.enumerated().map { i, v -> Double in
            let c = i % 3
            return Double(gamma[c]) * (Double(v) - Double(runningMean[c])) / (Double(runningVariance[c]) + 0.01).squareRoot()
                + Double(beta[c])
        }
        assertClose(y.scalars, expected, rtol: 1e-5, atol: 1e-5)
        // Training mode normalises with the batch's own statistics instead.
        let (trainingMean, _) = channelMoments(layer.forward(x, training: true))
        assertClose(trainingMean.map(Float.init), beta.map(Double.init), rtol: 1e-5, atol: 1e-5)
    }

    func testGradientsAfterDenseLikeInput() {
        let layer = BatchNormalization(name: "bn")
        convTestBuild(layer, [4])
        layer.gamma!.value = randomTensor([4], seed: 6) + 1.5
        layer.beta!.value = randomTensor([4], seed: 7)
        checkLayerBackward(layer, input: shiftedInput([6, 4], seed: 8), seed: 9)
    }

    func testGradientsAfterConvLikeInput() {
        let layer = BatchNormalization(name: "bn")
        convTestBuild(layer, [4, 3, 2])
        layer.gamma!.value = randomTensor([2], seed: 10) + 1.5
        layer.beta!.value = randomTensor([2], seed: 11)
        checkLayerBackward(layer, input: shiftedInput([3, 4, 3, 2], seed: 12), seed: 13)
    }

    func testChannelAxisOtherThanTheLast() {
        // axis 1 of [B, 3, 4]: three channels, statistics over B and the last axis.
        let layer = BatchNormalization(axis: 1, name: "bn")
        XCTAssertEqual(convTestBuild(layer, [3, 4]), [3, 4])
        XCTAssertEqual(layer.gamma!.value.shape, [3])
        let x = randomTensor([5, 3, 4], seed: 14) * 3 + 1
        let y = layer.forward(x, training: true)
        for c in 0..<3 {
            var values = [Double]()
            for b in 0..<5 { for i in 0..<4 { values.append(Double(y[b, c, i])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            XCTAssertEqual(mean, 0, accuracy: 1e-5, "channel \(c)")
            XCTAssertEqual(values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count), 1, accuracy: 1e-2)
        }
        layer.gamma!.value = randomTensor([3], seed: 15) + 1.5
        checkLayerBackward(layer, input: x, seed: 16)
        // -2 names the same axis of a rank-2 per-sample input.
        let negative = BatchNormalization(axis: -2)
        convTestBuild(negative, [3, 4])
        XCTAssertEqual(negative.gamma!.value.shape, [3])
    }

    func testWithoutCenterAndScale() {
        let layer = BatchNormalization(center: false, scale: false, name: "plain")
        convTestBuild(layer, [3])
        XCTAssertEqual(layer.parameters.map(\.name), ["plain.moving_mean", "plain.moving_variance"])
        XCTAssertNil(layer.gamma)
        XCTAssertNil(layer.beta)
        checkLayerBackward(layer, input: shiftedInput([5, 3], seed: 17), seed: 18)
    }

    func testParameterNamesTrainabilityAndAccumulation() {
        let layer = BatchNormalization(name: "bn")
        convTestBuild(layer, [2, 2, 3])
        XCTAssertEqual(layer.parameters.map(\.name), ["bn.gamma", "bn.beta", "bn.moving_mean", "bn.moving_variance"])
        XCTAssertEqual(layer.parameters.map(\.isTrainable), [true, true, false, false])
        XCTAssertEqual(layer.parameters.map(\.value.shape), [[3], [3], [3], [3]])
        layer.name = "norm"
        XCTAssertEqual(layer.parameters.map(\.name),
                       ["norm.gamma", "norm.beta", "norm.moving_mean", "norm.moving_variance"])
        convTestCheckGradientsAccumulate(layer, input: shiftedInput([2, 2, 2, 3], seed: 19), seed: 20)
        XCTAssertEqual(layer.movingMean!.gradient, Tensor.zeros([3]), "running statistics get no gradient")
    }

    /// BatchNormalization then relu over 5x6x3 images, then Dense(4): the model whose two layers
    /// `Sequential` fuses into one pass each way.
    private static func bnReLUModel() -> Sequential {
        Sequential(inputShape: [5, 6, 3]) {
            BatchNormalization()
            ActivationLayer(.relu)
            Flatten()
            Dense(4)
        }
    }

    /// A model fuses batch normalisation and a following relu into one pass each way: its outputs
    /// and every gradient must be those of the two layers run one after the other, bit for bit,
    /// in training and in inference, on every kernel path.
    func testFusedReLUInAModelEqualsTheLayersRunOneByOne() throws {
        let x = Tensor(shape: [4, 5, 6, 3], scalars: randomScalars(360, seed: 3).map { $0 * 2 + 0.3 })
        let upstream = Tensor(shape: [4, 4], scalars: randomScalars(16, seed: 4))
        try forEachISA { _ in
            let fused = Self.bnReLUModel(), separate = Self.bnReLUModel()
            try fused.build(seed: 9)
            try separate.build(seed: 9)
            let y = fused.forward(x, training: true)
            let dx = fused.backward(upstream)
            var z = x
            for layer in separate.layers { z = layer.forward(z, training: true) }
            var dz = upstream
            for layer in separate.layers.reversed() { dz = layer.backward(dz) }
            XCTAssertEqual(y, z)
            XCTAssertEqual(dx, dz)
            // The relu matters: without it the input gradient is another one.
            let linear = Sequential(inputShape: [5, 6, 3]) {
                BatchNormalization()
                Flatten()
                Dense(4)
            }
            try linear.build(seed: 9)
            _ = linear.forward(x, training: true)
            XCTAssertNotEqual(linear.backward(upstream), dx)
            for (a, b) in zip(fused.parameters, separate.parameters) {
                XCTAssertEqual(a.gradient, b.gradient, a.name)
                XCTAssertEqual(a.value, b.value, a.name)  // running statistics
            }
            var w = x
            for layer in separate.layers { w = layer.forward(w, training: false) }
            XCTAssertEqual(fused.forward(x, training: false), w)
        }
    }

    /// The fused layer keeps no output for backward: its relu mask is recomputed from the input.
    /// Its input gradient must match central finite differences of the model (training mode:
    /// batch statistics), and a frozen layer (running statistics, the inference adjoint, which
    /// takes the recomputed mask too) must give the bits of the two layers run one by one.
    func testFusedReLUGradientMatchesFiniteDifferencesAndAFrozenLayerMatchesTheLayers() throws {
        let x = Tensor(shape: [4, 5, 6, 3], scalars: randomScalars(360, seed: 13).map { $0 * 2 + 0.3 })
        let weights = Tensor(shape: [4, 4], scalars: randomScalars(16, seed: 14))
        try forEachISA { isa in
            let fused = try { let m = Self.bnReLUModel(); try m.build(seed: 19); return m }()
            let bn = try XCTUnwrap(fused.layers[0] as? BatchNormalization)
            bn.gamma!.value = randomTensor([3], seed: 15) + 1.5
            bn.beta!.value = randomTensor([3], seed: 16)
            _ = fused.forward(x, training: true)
            let dx = fused.backward(weights)
            checkGradient(of: { weightedSum(fused.forward($0, training: true), weights) }, at: x, analytic: dx,
                          epsilon: 1e-3, "fused batch norm and relu, \(isa)")

            let frozen = try { let m = Self.bnReLUModel(); try m.build(seed: 19); return m }()
            let separate = try { let m = Self.bnReLUModel(); try m.build(seed: 19); return m }()
            for m in [frozen, separate] {
                let layer = try XCTUnwrap(m.layers[0] as? BatchNormalization)
                layer.trainable = false
                layer.gamma!.value = bn.gamma!.value
                layer.beta!.value = randomTensor([3], seed: 17)
                layer.movingMean!.value = randomTensor([3], seed: 18) * 0.3 + 0.3
                layer.movingVariance!.value = randomTensor([3], seed: 20) * 0.5 + 1
            }
            let y = frozen.forward(x, training: true)
            let dFrozen = frozen.backward(weights)
            var z = x
            for layer in separate.layers { z = layer.forward(z, training: true) }
            var dz = weights
            for layer in separate.layers.reversed() { dz = layer.backward(dz) }
            XCTAssertEqual(y, z, "frozen, \(isa)")
            XCTAssertEqual(dFrozen, dz, "frozen, \(isa)")
            // The relu matters here too: it zeroes some of the normalised values.
            XCTAssertNotEqual(separate.layers[1].forward(separate.layers[0].forward(x, training: true), training: true),
                              separate.layers[0].forward(x, training: true), "relu zeroed nothing, \(isa)")
            for (a, b) in zip(frozen.parameters, separate.parameters) { XCTAssertEqual(a.gradient, b.gradient, a.name) }
        }
    }

    /// A training step hands batch normalisation the only reference to its output gradient, and
    /// the layer writes its input gradient over it: one large tensor fewer per step, with the bits
    /// of the public backward pass (which leaves its argument alone), in training mode and frozen
    /// (the inference adjoint), on every kernel path.
    func testATrainingStepWritesTheInputGradientOverTheOutputGradientWithTheSameBits() throws {
        guard BufferCache.limitBytes > 0 else {
            throw unavailable("the buffer cache is off here (NEURITE_BUFFER_CACHE_MB=0): its counters count the tensors")
        }
        let x = Tensor(shape: [64, 16], scalars: randomScalars(64 * 16, seed: 31))
        let t = Tensor(shape: [64, 4], scalars: randomScalars(64 * 4, seed: 32))
        // Large tensors (the cache counts those of 256 KiB and more): [64, 2048] floats, 512 KiB.
        func model(frozen: Bool) throws -> Sequential {
            let m = Sequential(inputShape: [16]) {
                Dense(2048)
                BatchNormalization()
                ActivationLayer(.relu)
                Dense(4)
            }
            try m.build(seed: 33)
            try XCTUnwrap(m.layers[1] as? BatchNormalization).trainable = !frozen
            return m
        }
        func requests() -> Int { BufferCache.statistics.hits + BufferCache.statistics.misses }
        try forEachISA { isa in
            for frozen in [false, true] {
                let stepped = try model(frozen: frozen), byHand = try model(frozen: frozen)
                stepped.compile(optimizer: SGD(learningRate: 0.1), loss: MeanSquaredError())
                let r0 = requests()
                try stepped.trainOnBatch(x: x, y: t)
                let stepRequests = requests() - r0

                let r1 = requests()
                for p in byHand.parameters { p.zeroGradient() }
                let out = byHand.forward(x, training: true)
                let gradient = MeanSquaredError().compute(out, .values(t), sampleWeights: nil).gradient
                _ = byHand.backward(gradient)
                SGD(learningRate: 0.1).step(byHand.parameters)
                let handRequests = requests() - r1

                for (a, b) in zip(stepped.parameters, byHand.parameters) {
                    XCTAssertEqual(a.value.scalars.map(\.bitPattern), b.value.scalars.map(\.bitPattern), "\(a.name), \(isa), frozen \(frozen)")
                }
                XCTAssertNotEqual(stepped.parameters[0].value, try model(frozen: frozen).parameters[0].value, "the step changed nothing")
                XCTAssertEqual(handRequests - stepRequests, 1,
                               "\(isa), frozen \(frozen): the public backward pass makes one large tensor more (\(handRequests) against \(stepRequests))")
            }
        }
    }

    /// After a training step (`trainOnBatch`, and each step of `fit`) the layers hold nothing of
    /// the batch: what they saved for the backward pass is dropped after it, so an epoch's last,
    /// smaller batch or the evaluation after training does not run beside the last step's
    /// activations (issue 14's memory goal). A training-mode forward alone keeps them.
    func testATrainingStepLeavesNoSavedActivationsBehind() throws {
        guard BufferCache.limitBytes > 0 else {
            throw unavailable("the buffer cache is off here (NEURITE_BUFFER_CACHE_MB=0): its counters count the tensors")
        }
        let x = Tensor(shape: [128, 2048], scalars: randomScalars(128 * 2048, seed: 41))
        let y = Tensor(shape: [128, 4], scalars: randomScalars(128 * 4, seed: 42))
        // The tanh output (512 KiB for 64 samples) is kept by the tanh layer, which is before the
        // first trainable layer and so never runs backward, and by the batch normalisation.
        let model = Sequential(inputShape: [2048]) {
            ActivationLayer(.tanh)
            BatchNormalization()
            ActivationLayer(.relu)
            Dense(4)
        }
        try model.build(seed: 43)
        model.compile(optimizer: SGD(learningRate: 0.01), loss: MeanSquaredError())
        let live = BufferCache.statistics.liveBytes
        try model.trainOnBatch(x: x.slice(0..<64), y: y.slice(0..<64))
        XCTAssertEqual(BufferCache.statistics.liveBytes, live, "trainOnBatch left \(BufferCache.statistics.liveBytes - live) bytes")
        try model.fit(x: x, y: y, epochs: 2, batchSize: 64, verbose: 0)
        XCTAssertEqual(BufferCache.statistics.liveBytes, live, "fit left \(BufferCache.statistics.liveBytes - live) bytes")
        _ = model.forward(x.slice(0..<64), training: true)
        XCTAssertGreaterThan(BufferCache.statistics.liveBytes, live, "a training-mode forward keeps what its backward needs")
    }

    func testConfigRoundTripAndDefaults() throws {
        convTestAssertConfigRoundTrip(BatchNormalization())
        convTestAssertConfigRoundTrip(BatchNormalization(axis: 1, momentum: 0.9, epsilon: 1e-5, center: false,
                                                         scale: false, name: "bn_7"))
        let config = BatchNormalization().config
        XCTAssertEqual(config["axis"], .int(-1))
        XCTAssertEqual(config["momentum"], .double(0.99))
        XCTAssertEqual(config["epsilon"], .double(1e-3))
        XCTAssertEqual(config["center"], .bool(true))
        XCTAssertEqual(config["scale"], .bool(true))
        XCTAssertEqual(BatchNormalization.typeName, "BatchNormalization")
        let fromKeras = try BatchNormalization(config: ["momentum": .int(1), "epsilon": .double(0.5)])
        XCTAssertEqual(fromKeras.momentum, 1)
        XCTAssertEqual(fromKeras.axis, -1)
        convTestAssertLayerError(mentioning: ["BatchNormalization", "momentum 1.5"]) {
            _ = try BatchNormalization(config: ["momentum": .double(1.5)])
        }
        convTestAssertLayerError(mentioning: ["BatchNormalization", "axis 0"]) {
            _ = try BatchNormalization(config: ["axis": .int(0)])
        }
    }

    func testShapeErrorsNameTheLayerAndTheShape() {
        convTestAssertLayerError(mentioning: ["BatchNormalization \"bn\"", "axis 2", "[5]"]) {
            _ = try BatchNormalization(axis: 2, name: "bn").outputShape(for: [5])
        }
        let layer = BatchNormalization(name: "bn")
        convTestBuild(layer, [4, 4, 3])
        convTestAssertLayerError(mentioning: ["BatchNormalization \"bn\"", "[4, 4, 2]", "3 channels"]) {
            _ = try layer.outputShape(for: [4, 4, 2])
        }
        convTestAssertLayerError(mentioning: ["bn", "[3]"]) {
            _ = try layer.outputShape(for: [3])
        }
        XCTAssertEqual(try layer.outputShape(for: [6, 5, 3]), [6, 5, 3], "other extents may vary")
    }
}
