import Foundation
import Layers
import Optimizers
import TensorCore
import Testing
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

/// Keras' output length of a 1-D pooling window: valid `floor((T - P) / s) + 1` (nil when
/// negative), same `floor((T - 1) / s) + 1`.
private func kerasPoolLength(_ t: Int, pool: Int, stride: Int, same: Bool) -> Int? {
    if same { return (t - 1) / stride + 1 }
    return t >= pool ? (t - pool) / stride + 1 : nil
}

/// The shared Float64 reference pooling (`_NeuriteTestSupport`) on the sequences viewed as images
/// of one row, as Keras defines its 1-D pooling: max or mean over the real steps of each window of
/// `[B, T, F]`, padding steps left out of the max and of the mean's divisor.
private func naivePool1D(_ x: Tensor, pool: Int, stride: Int, same: Bool, max useMax: Bool) -> (shape: [Int], values: [Double]) {
    let y = naivePooling(sequenceImage(x), pool: (1, pool), strides: (1, stride), padding: same ? .same : .valid, max: useMax)
    return ([y.shape[0], y.shape[2], y.shape[3]], y.values)
}

final class Pooling1DTests: XCTestCase {
    private var directories: [String] = []

    override func tearDown() {
        for d in directories { try? FileManager.default.removeItem(atPath: d) }
        directories = []
        super.tearDown()
    }

    /// Max and average pooling on every combination of awkward lengths, feature counts, pool sizes,
    /// strides and paddings: output shapes against Keras' formula, values against the reference.
    func testWindowedPoolingMatchesNaivePoolingOnAwkwardShapes() {
        var cases = 0
        for same in [false, true] {
            for pool in [1, 2, 3, 5] {
                for stride in [nil, 1, 2, 3] as [Int?] {
                    for features in [1, 3] {
                        for length in [1, 2, 7, 17] {
                            let padding: Padding = same ? .same : .valid
                            let layers: [(any Layer, Bool)] = [
                                (MaxPool1D(poolSize: pool, strides: stride, padding: padding), true),
                                (AveragePool1D(poolSize: pool, strides: stride, padding: padding), false),
                            ]
                            let label = "T \(length) F \(features) P \(pool) s \(String(describing: stride)) \(padding)"
                            guard let expected = kerasPoolLength(length, pool: pool, stride: stride ?? pool, same: same) else {
                                for (layer, _) in layers {
                                    convTestAssertLayerError(mentioning: ["Pooling1D", "[\(length), \(features)]", "too short"]) {
                                        _ = try layer.outputShape(for: [length, features])
                                    }
                                }
                                continue
                            }
                            let x = randomTensor([2, length, features], seed: UInt64(cases))
                            for (layer, isMax) in layers {
                                XCTAssertEqual(convTestBuild(layer, [length, features]), [expected, features], label)
                                let y = layer.forward(x, training: false)
                                let reference = naivePool1D(x, pool: pool, stride: stride ?? pool, same: same, max: isMax)
                                XCTAssertEqual(y.shape, reference.shape, label)
                                assertClose(y.scalars, reference.values, rtol: isMax ? 0 : 1e-6, atol: isMax ? 0 : 1e-6,
                                            "\(type(of: layer).typeName) \(label)")
                            }
                            cases += 1
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(cases, 100)
    }

    func testSamePaddedAverageDividesByTheRealStepsOnly() {
        // T = 5, pool 3, stride 2, same: 3 windows; TensorFlow pads max((3 - 1) * 2 + 3 - 5, 0) = 2
        // steps, 1 before and 1 after, so the windows hold steps {0, 1}, {1, 2, 3} and {3, 4}.
        let layer = AveragePool1D(poolSize: 3, strides: 2, padding: .same)
        convTestBuild(layer, [5, 1])
        let y = layer.forward(Tensor(shape: [1, 5, 1], scalars: [1, 2, 3, 4, 5]), training: false)
        XCTAssertEqual(y.scalars, [1.5, 3, 4.5])
    }

    func testWindowedPoolingGradientsMatchFiniteDifferences() {
        // Distinct inputs 0.05 apart: a window's winner survives the 0.01 finite-difference step.
        let x = distinctTensor([2, 17, 3], seed: 2)
        let maxLayers = [MaxPool1D(), MaxPool1D(padding: .same), MaxPool1D(poolSize: 3, strides: 1, padding: .same),
                         MaxPool1D(poolSize: 5, strides: 3)]
        for layer in maxLayers {
            convTestBuild(layer, [17, 3])
            let gradient = checkLayerBackward(layer, input: x, seed: 3, "\(layer.config)")
            // Only winners receive a gradient: at most one step per window is non-zero.
            XCTAssertLessThanOrEqual(gradient.scalars.filter { $0 != 0 }.count, layer.forward(x, training: false).count)
        }
        for layer in [AveragePool1D(), AveragePool1D(padding: .same), AveragePool1D(poolSize: 3, strides: 2, padding: .same),
                      AveragePool1D(poolSize: 5, strides: 1)] {
            convTestBuild(layer, [17, 3])
            checkLayerBackward(layer, input: randomTensor([2, 17, 3], seed: 4), seed: 5, "\(layer.config)")
        }
    }

    func testGlobalPoolingForwardAndGradients() {
        for length in [1, 7, 17] {
            let x = distinctTensor([3, length, 2], seed: UInt64(length))
            for keep in [false, true] {
                let maxLayer = GlobalMaxPool1D(keepDimensions: keep)
                let meanLayer = GlobalAveragePool1D(keepDimensions: keep)
                for (layer, isMax) in [(maxLayer as any Layer, true), (meanLayer, false)] {
                    XCTAssertEqual(convTestBuild(layer, [length, 2]), keep ? [1, 2] : [2])
                    let y = layer.forward(x, training: false)
                    XCTAssertEqual(y.shape, keep ? [3, 1, 2] : [3, 2])
                    let reference = naivePool1D(x, pool: length, stride: length, same: false, max: isMax)
                    assertClose(y.scalars, reference.values, rtol: 1e-6, atol: 1e-6, "\(type(of: layer).typeName) T \(length)")
                    checkLayerBackward(layer, input: x, seed: 7, "\(type(of: layer).typeName) T \(length) keep \(keep)")
                }
            }
        }
        // Ties share the gradient equally, as TensorFlow's reduce_max (Keras' layer) shares it;
        // each feature and sequence counts its own ties.
        let layer = GlobalMaxPool1D()
        convTestBuild(layer, [4, 2])
        _ = layer.forward(Tensor(shape: [2, 4, 2], scalars: [0, 5, 2, 1, 2, 1, 1, 1,   7, 7, 7, 7, 7, 7, 7, 7]), training: true)
        XCTAssertEqual(layer.backward(Tensor(shape: [2, 2], scalars: [3, 4, 8, 2])).scalars,
                       [0, 4, 1.5, 0, 1.5, 0, 0, 0,   2, 0.5, 2, 0.5, 2, 0.5, 2, 0.5])
        // The mean shares its gradient evenly over the steps.
        let mean = GlobalAveragePool1D()
        convTestBuild(mean, [4, 1])
        _ = mean.forward(Tensor.zeros([1, 4, 1]), training: true)
        XCTAssertEqual(mean.backward(Tensor(shape: [1, 1], scalars: [2])).scalars, [0.5, 0.5, 0.5, 0.5])
    }

    func testOutputShapesMatchKeras() throws {
        XCTAssertEqual(try MaxPool1D().outputShape(for: [200, 64]), [100, 64])
        XCTAssertEqual(try MaxPool1D(poolSize: 3).outputShape(for: [200, 64]), [66, 64])
        XCTAssertEqual(try MaxPool1D(poolSize: 3, padding: .same).outputShape(for: [200, 64]), [67, 64])
        XCTAssertEqual(try AveragePool1D(poolSize: 4, strides: 1).outputShape(for: [10, 2]), [7, 2])
        XCTAssertEqual(try GlobalMaxPool1D().outputShape(for: [66, 64]), [64])
        XCTAssertEqual(try GlobalAveragePool1D(keepDimensions: true).outputShape(for: [66, 64]), [1, 64])
        XCTAssertTrue(MaxPool1D(poolSize: 3).strides == 3, "strides default to the pool size")
        XCTAssertTrue(MaxPool1D().parameters.isEmpty && AveragePool1D().parameters.isEmpty
                      && GlobalMaxPool1D().parameters.isEmpty && GlobalAveragePool1D().parameters.isEmpty)
    }

    func testConfigRoundTripAndKerasKeys() throws {
        convTestAssertConfigRoundTrip(MaxPool1D(poolSize: 3, strides: 1, padding: .same, name: "pool"))
        convTestAssertConfigRoundTrip(MaxPool1D())
        convTestAssertConfigRoundTrip(AveragePool1D(poolSize: 5, strides: 2, padding: .same, name: "avg"))
        convTestAssertConfigRoundTrip(GlobalMaxPool1D(keepDimensions: true, name: "gmp"))
        convTestAssertConfigRoundTrip(GlobalAveragePool1D())
        XCTAssertEqual([MaxPool1D.typeName, AveragePool1D.typeName, GlobalMaxPool1D.typeName, GlobalAveragePool1D.typeName],
                       ["MaxPooling1D", "AveragePooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling1D"])
        let config = MaxPool1D(poolSize: 3).config
        XCTAssertEqual(config["pool_size"], .ints([3]))
        XCTAssertEqual(config["strides"], .ints([3]), "strides written out, as Keras resolves them")
        XCTAssertEqual(config["padding"], .string("valid"))
        XCTAssertEqual(GlobalMaxPool1D().config["keepdims"], .bool(false))

        // What Keras writes: strides null for the default, sizes as one-element lists or integers.
        let keras = try MaxPool1D(config: ["name": .string("max_pooling1d"), "trainable": .bool(true), "dtype": .string("float32"),
                                           "pool_size": .ints([3]), "strides": .null, "padding": .string("same"),
                                           "data_format": .string("channels_last")])
        XCTAssertTrue(keras.poolSize == 3 && keras.strides == 3 && keras.padding == .same)
        XCTAssertEqual(try AveragePool1D(config: [:]).poolSize, 2)
        XCTAssertEqual(try AveragePool1D(config: ["pool_size": .int(4), "strides": .int(1)]).strides, 1)
        XCTAssertTrue(try GlobalAveragePool1D(config: ["keepdims": .bool(true), "data_format": .string("channels_last")]).keepDimensions)

        convTestAssertLayerError(mentioning: ["MaxPooling1D", "pool_size", "[2, 2]"]) { _ = try MaxPool1D(config: ["pool_size": .ints([2, 2])]) }
        convTestAssertLayerError(mentioning: ["AveragePooling1D", "strides 0"]) { _ = try AveragePool1D(config: ["strides": .int(0)]) }
        convTestAssertLayerError(mentioning: ["MaxPooling1D", "padding", "causal"]) { _ = try MaxPool1D(config: ["padding": .string("causal")]) }
        convTestAssertLayerError(mentioning: ["AveragePooling1D", "channels_first"]) {
            _ = try AveragePool1D(config: ["data_format": .string("channels_first")])
        }
        convTestAssertLayerError(mentioning: ["MaxPooling1D", "kernel_size", "not implement"]) { _ = try MaxPool1D(config: ["kernel_size": .int(2)]) }
        convTestAssertLayerError(mentioning: ["GlobalMaxPooling1D", "keepdims", "1"]) { _ = try GlobalMaxPool1D(config: ["keepdims": .int(1)]) }
        convTestAssertLayerError(mentioning: ["GlobalAveragePooling1D", "pool_size", "not implement"]) {
            _ = try GlobalAveragePool1D(config: ["pool_size": .int(2)])
        }
    }

    func testShapeErrorsNameTheLayerAndTheShape() throws {
        convTestAssertLayerError(mentioning: ["MaxPooling1D \"p\"", "[T, F]", "[4, 4, 1]"]) {
            _ = try MaxPool1D(name: "p").outputShape(for: [4, 4, 1])
        }
        convTestAssertLayerError(mentioning: ["AveragePooling1D", "[2, 3]", "5-step"]) {
            _ = try AveragePool1D(poolSize: 5).outputShape(for: [2, 3])
        }
        convTestAssertLayerError(mentioning: ["GlobalMaxPooling1D \"g\"", "[0, 3]"]) {
            _ = try GlobalMaxPool1D(name: "g").outputShape(for: [0, 3])
        }
        convTestAssertLayerError(mentioning: ["GlobalAveragePooling1D", "[5]"]) { _ = try GlobalAveragePool1D().outputShape(for: [5]) }
        let pool = MaxPool1D()
        convTestBuild(pool, [8, 2])
        var g = SeededGenerator(seed: 1)
        convTestAssertLayerError(mentioning: ["[8, 2]", "[9, 2]"]) { _ = try pool.build(inputShape: [9, 2], generator: &g) }
    }

    /// The genome model of issue 13, saved and loaded: the architecture under Keras' names, the
    /// weights, and bit-for-bit predictions; Keras' aliases name the same types.
    func testSequenceModelSavesAndLoads() throws {
        let model = Sequential(inputShape: [30, 4]) {
            Conv1D(filters: 6, kernelSize: 5, padding: .same, activation: .relu)
            MaxPool1D(poolSize: 3)
            Conv1D(filters: 5, kernelSize: 3, padding: .causal, dilation: 2, activation: .tanh)
            AveragePool1D(poolSize: 2, strides: 1, padding: .same)
            Conv1D(filters: 4, kernelSize: 2, strides: 2)
            GlobalMaxPool1D()
            Dense(1)
        }
        let x = randomTensor([10, 30, 4], seed: 1)
        let y = (0..<10).map { $0 % 2 }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: BinaryCrossEntropy(fromLogits: true))
        try model.fit(x: x, y: y, epochs: 2, batchSize: 5, seed: 3, verbose: 0)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-pool1d-\(UUID().uuidString)").path
        directories.append(dir)
        try model.save(to: dir)
        let text = try String(contentsOfFile: dir + "/model.json", encoding: .utf8)
        for name in ["\"Conv1D\"", "\"MaxPooling1D\"", "\"AveragePooling1D\"", "\"GlobalMaxPooling1D\"", "\"dilation_rate\"", "\"causal\""] {
            XCTAssertTrue(text.contains(name), "model.json names \(name)")
        }
        let loaded = try Sequential.load(from: dir)
        XCTAssertEqual(loaded.layers.map { type(of: $0).typeName }, model.layers.map { type(of: $0).typeName })
        XCTAssertEqual(loaded.layers.map(\.name), model.layers.map(\.name))
        XCTAssertEqual(loaded.layers.map(\.config), model.layers.map(\.config))
        XCTAssertEqual(try loaded.predict(x).scalars.map(\.bitPattern), try model.predict(x).scalars.map(\.bitPattern))
        let fresh = Sequential(inputShape: [30, 4], layers: try model.layers.map { try type(of: $0).init(config: $0.config) })
        try fresh.build(seed: 99)
        XCTAssertNotEqual(try fresh.predict(x).scalars, try model.predict(x).scalars, "the loaded weights came from the file")

        let global = Sequential(inputShape: [7, 3]) { GlobalAveragePool1D(keepDimensions: true) }
        try global.build(seed: 1)
        let globalDir = dir + "-global"
        directories.append(globalDir)
        try global.save(to: globalDir)
        XCTAssertTrue(try Sequential.load(from: globalDir).layers.first is GlobalAveragePool1D)

        let aliases: [(String, any Layer.Type)] = [("Convolution1D", Conv1D.self), ("MaxPool1D", MaxPool1D.self),
                                                   ("AvgPool1D", AveragePool1D.self), ("GlobalMaxPool1D", GlobalMaxPool1D.self),
                                                   ("GlobalAvgPool1D", GlobalAveragePool1D.self)]
        for (alias, type) in aliases {
            XCTAssertTrue(LayerRegistry.type(named: alias) == type, alias)
            XCTAssertTrue(LayerRegistry.type(named: type.typeName) == type, type.typeName)
        }
    }
}

/// Misuse of a built pooling layer stops with a message naming the layer and the shapes (exit
/// tests, as in TensorCore's `ShapeErrorTests`).
@Suite struct Pooling1DShapeErrorTests {
    private func expectStop(mentioning parts: [String], sourceLocation: SourceLocation = #_sourceLocation,
                            _ result: ExitTest.Result?) {
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        for part in parts {
            #expect(stderr.contains(part), "stderr should mention \(part): \(stderr)", sourceLocation: sourceLocation)
        }
    }

    @Test func maxPoolWithAnotherFeatureCountNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = MaxPool1D(poolSize: 3, name: "pool_a")
            var g = SeededGenerator(seed: 1)
            _ = try? layer.build(inputShape: [12, 4], generator: &g)
            _ = layer.forward(Tensor.zeros([2, 12, 5]), training: false)
        }
        expectStop(mentioning: ["MaxPooling1D \"pool_a\"", "[2, 12, 5]", "[B, T, 4]"], result)
    }

    @Test func averagePoolOnATooShortSequenceNamesTheLength() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = AveragePool1D(poolSize: 5, name: "pool_b")
            var g = SeededGenerator(seed: 1)
            _ = try? layer.build(inputShape: [12, 4], generator: &g)
            _ = layer.forward(Tensor.zeros([2, 3, 4]), training: false)
        }
        expectStop(mentioning: ["pool_b", "[2, 3, 4]", "5-step"], result)
    }

    @Test func globalPoolingOnAnImageNamesTheShape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = GlobalMaxPool1D(name: "gmp")
            var g = SeededGenerator(seed: 1)
            _ = try? layer.build(inputShape: [12, 4], generator: &g)
            _ = layer.forward(Tensor.zeros([2, 12, 12, 4]), training: false)
        }
        expectStop(mentioning: ["GlobalMaxPooling1D \"gmp\"", "[2, 12, 12, 4]", "[B, T, 4]"], result)
    }

    @Test func backwardWithAnotherShapeNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = GlobalAveragePool1D(name: "gap")
            var g = SeededGenerator(seed: 1)
            _ = try? layer.build(inputShape: [12, 4], generator: &g)
            _ = layer.forward(Tensor.zeros([2, 12, 4]), training: true)
            _ = layer.backward(Tensor.zeros([2, 5]))
        }
        expectStop(mentioning: ["gap", "[2, 5]", "[2, 4]"], result)
    }

    @Test func validUseDoesNotStop() {
        // The same calls with fitting shapes run, so the cases above stop for the shapes alone.
        var g = SeededGenerator(seed: 1)
        let pool = MaxPool1D(poolSize: 3)
        _ = try? pool.build(inputShape: [12, 4], generator: &g)
        #expect(pool.forward(Tensor.zeros([2, 12, 4]), training: false).shape == [2, 4, 4])
        let average = AveragePool1D(poolSize: 5)
        _ = try? average.build(inputShape: [12, 4], generator: &g)
        #expect(average.forward(Tensor.zeros([2, 5, 4]), training: false).shape == [2, 1, 4])
        let global = GlobalAveragePool1D()
        _ = try? global.build(inputShape: [12, 4], generator: &g)
        _ = global.forward(Tensor.zeros([2, 12, 4]), training: true)
        #expect(global.backward(Tensor.zeros([2, 4])).shape == [2, 12, 4])
    }
}
