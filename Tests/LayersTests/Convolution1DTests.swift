import Foundation
import Layers
import Optimizers
import TensorCore
import Testing
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

/// Keras' output length of a 1-D convolution, written from Keras' `compute_conv_output_shape`:
/// valid `floor((T - K') / s) + 1` (nil when negative), same and causal `floor((T - 1) / s) + 1`.
private func kerasConvLength(_ t: Int, kernel: Int, stride: Int, dilation: Int, padding: String) -> Int? {
    let reach = (kernel - 1) * dilation + 1
    if padding == "valid" { return t >= reach ? (t - reach) / stride + 1 : nil }
    return (t - 1) / stride + 1
}

/// The shared Float64 reference convolution (`_NeuriteTestSupport`) on the sequences viewed as
/// images of one row, as Keras defines its 1-D convolution: `[B, T, F]` with kernel `[K, F, C]`
/// to `[B, OT, C]`, then `activation`.
private func naiveConv1D(_ x: Tensor, _ k: Tensor, bias: Tensor?, stride: Int, dilation: Int, padding: String,
                         activation: (Double) -> Double = { $0 }) -> (shape: [Int], values: [Double]) {
    let y = naiveConvolution(sequenceImage(x), sequenceKernel(k), bias: bias, strides: (1, stride), dilation: (1, dilation),
                             padding: ReferencePadding(rawValue: padding)!)
    return ([y.shape[0], y.shape[2], y.shape[3]], y.values.map(activation))
}

private func conv1DPadding(_ text: String) -> Conv1D.Padding { Conv1D.Padding(rawValue: text)! }

final class Convolution1DTests: XCTestCase {
    /// Every combination of awkward lengths, feature and filter counts, kernel sizes, strides,
    /// dilations and paddings: output shapes against Keras' formula, and the forward pass against
    /// the Float64 reference on every kernel path (direct and im2col + GEMM, each ISA).
    func testForwardMatchesNaiveConvolutionOnAwkwardShapes() throws {
        var cases = 0
        for padding in ["valid", "same", "causal"] {
            for (stride, dilation) in [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)] {
                for kernelSize in [1, 2, 5] {
                    for features in [1, 3] {
                        for filters in [1, 5] {
                            for length in [1, 7, 17] {
                                let layer = Conv1D(filters: filters, kernelSize: kernelSize, strides: stride,
                                                   padding: conv1DPadding(padding), dilation: dilation)
                                let label = "T \(length) F \(features) C \(filters) K \(kernelSize) s \(stride) d \(dilation) \(padding)"
                                guard let expected = kerasConvLength(length, kernel: kernelSize, stride: stride,
                                                                     dilation: dilation, padding: padding) else {
                                    convTestAssertLayerError(mentioning: ["Conv1D", "[\(length), \(features)]", "too short"]) {
                                        _ = try layer.outputShape(for: [length, features])
                                    }
                                    continue
                                }
                                XCTAssertEqual(try layer.outputShape(for: [length, features]), [expected, filters], label)
                                XCTAssertEqual(convTestBuild(layer, [length, features], seed: UInt64(cases)), [expected, filters], label)
                                layer.bias!.value = randomTensor([filters], seed: UInt64(cases) + 1000)
                                let x = randomTensor([2, length, features], seed: UInt64(cases) + 2000)
                                let reference = naiveConv1D(x, layer.kernel!.value, bias: layer.bias!.value, stride: stride,
                                                            dilation: dilation, padding: padding)
                                XCTAssertEqual(reference.shape, [2, expected, filters], label)
                                for algorithm in [ConvolutionAlgorithm.automatic, .direct, .im2col] {
                                    forEachISA { isa in
                                        ConvolutionAlgorithm.with(algorithm) {
                                            let y = layer.forward(x, training: false)
                                            XCTAssertEqual(y.shape, reference.shape, label)
                                            assertClose(y.scalars, reference.values, rtol: 1e-5, atol: 1e-5,
                                                        "\(label) \(algorithm) \(isa)")
                                        }
                                    }
                                }
                                cases += 1
                            }
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(cases, 400, "most combinations fit their kernel")
    }

    func testLongerSequencesAndEveryActivationMatchTheReference() {
        // Long enough for the kernels' blocking and threading to matter (the genome model's
        // shapes), with the fused bias and activation.
        let functions: [(ActivationFunction, (Double) -> Double)] = [
            (.relu, { max($0, 0) }), (.tanh, { Foundation.tanh($0) }), (.sigmoid, { 1 / (1 + Foundation.exp(-$0)) }),
            (.gelu, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
        ]
        for (i, (function, reference)) in functions.enumerated() {
            for padding in ["same", "causal", "valid"] {
                let layer = Conv1D(filters: 24, kernelSize: 9, padding: conv1DPadding(padding), activation: function)
                convTestBuild(layer, [200, 4], seed: UInt64(i))
                layer.bias!.value = randomTensor([24], seed: UInt64(50 + i), scale: 0.3)
                var scalars = [Float](repeating: 0, count: 9 * 200 * 4)
                var g = SeededGenerator(seed: UInt64(60 + i))
                for p in 0..<(9 * 200) { scalars[p * 4 + g.nextIndex(below: 4)] = 1 }   // one-hot bases
                let x = Tensor(shape: [9, 200, 4], scalars: scalars)
                let expected = naiveConv1D(x, layer.kernel!.value, bias: layer.bias!.value, stride: 1, dilation: 1,
                                           padding: padding, activation: reference)
                let y = layer.forward(x, training: false)
                XCTAssertEqual(y.shape, expected.shape)
                assertClose(y.scalars, expected.values, rtol: 1e-5, atol: 1e-5, "\(function) \(padding)")
            }
        }
        // Many channels in: the im2col + GEMM path under automatic choice.
        let wide = Conv1D(filters: 130, kernelSize: 3, strides: 2, padding: .same)
        convTestBuild(wide, [33, 40])
        let x = randomTensor([3, 33, 40], seed: 70)
        let expected = naiveConv1D(x, wide.kernel!.value, bias: wide.bias!.value, stride: 2, dilation: 1, padding: "same")
        assertClose(wide.forward(x, training: false).scalars, expected.values, rtol: 1e-4, atol: 1e-4, "130 filters")
    }

    func testCausalOutputsNeverSeeLaterSteps() {
        let layer = Conv1D(filters: 3, kernelSize: 3, padding: .causal, dilation: 2)
        convTestBuild(layer, [12, 2])
        let x = randomTensor([1, 12, 2], seed: 1)
        let y = layer.forward(x, training: false)
        for t in 0..<12 {
            // Change every input after step t: outputs up to t stay, and output t + 1 changes.
            var changed = x
            changed.withUnsafeMutableBufferPointer { p in
                for i in ((t + 1) * 2)..<(12 * 2) { p[i] += 1 }
            }
            let z = layer.forward(changed, training: false)
            for s in 0...t {
                for c in 0..<3 { XCTAssertEqual(z[0, s, c], y[0, s, c], "output \(s) after changing inputs past \(t)") }
            }
            if t + 1 < 12 {
                XCTAssertTrue((0..<3).contains { z[0, t + 1, $0] != y[0, t + 1, $0] }, "output \(t + 1) sees input \(t + 1)")
            }
        }
    }

    /// Input, kernel and bias gradients against central finite differences, for every padding and
    /// each of stride and dilation, with smooth and linear activations.
    func testGradientsMatchFiniteDifferences() {
        let cases: [(padding: String, stride: Int, dilation: Int, kernel: Int, length: Int, activation: ActivationFunction)] = [
            ("valid", 1, 1, 3, 7, .linear), ("valid", 2, 1, 2, 7, .tanh), ("valid", 1, 2, 3, 17, .sigmoid),
            ("same", 1, 1, 5, 7, .tanh), ("same", 3, 1, 2, 17, .linear), ("same", 1, 3, 2, 7, .linear),
            ("causal", 1, 1, 2, 7, .tanh), ("causal", 2, 1, 5, 7, .linear), ("causal", 1, 3, 3, 17, .gelu),
            ("same", 1, 1, 1, 1, .linear), ("causal", 1, 2, 5, 1, .tanh),
        ]
        for (i, c) in cases.enumerated() {
            let layer = Conv1D(filters: 5, kernelSize: c.kernel, strides: c.stride, padding: conv1DPadding(c.padding),
                               dilation: c.dilation, activation: c.activation, name: "c")
            convTestBuild(layer, [c.length, 3], seed: UInt64(i))
            layer.bias!.value = randomTensor([5], seed: UInt64(100 + i), scale: 0.5)
            checkLayerBackward(layer, input: randomTensor([2, c.length, 3], seed: UInt64(200 + i)),
                                        seed: UInt64(300 + i), "\(c)")
        }
        let plain = Conv1D(filters: 2, kernelSize: 3, padding: .causal, useBias: false, name: "p")
        convTestBuild(plain, [6, 1])
        XCTAssertEqual(plain.parameters.map(\.name), ["p.kernel"])
        checkLayerBackward(plain, input: randomTensor([3, 6, 1], seed: 9), seed: 10, "no bias")
    }

    func testGradientsAccumulateWhenBackwardRunsTwice() {
        let layer = Conv1D(filters: 4, kernelSize: 3, padding: .causal, activation: .tanh)
        convTestBuild(layer, [9, 2])
        convTestCheckGradientsAccumulate(layer, input: randomTensor([2, 9, 2], seed: 1), seed: 2)
    }

    /// The first layer of a model skips its input gradient in training; a small model learns to
    /// spot a motif, which it can only do through that path's parameter gradients.
    func testAModelLearnsAMotif() throws {
        var g = SeededGenerator(seed: 4)
        let (count, length) = (256, 24)
        var scalars = [Float](repeating: 0, count: count * length * 4)
        var labels = [Int]()
        let motif = [0, 2, 3, 1, 1]   // "AGTCC"
        for n in 0..<count {
            var bases = (0..<length).map { _ in g.nextIndex(below: 4) }
            let positive = n % 2 == 0
            if positive {
                let start = g.nextIndex(below: length - motif.count + 1)
                for (j, base) in motif.enumerated() { bases[start + j] = base }
            }
            for (t, base) in bases.enumerated() { scalars[(n * length + t) * 4 + base] = 1 }
            labels.append(positive ? 1 : 0)
        }
        let x = Tensor(shape: [count, length, 4], scalars: scalars)
        let model = Sequential(inputShape: [length, 4]) {
            Conv1D(filters: 8, kernelSize: 5, padding: .same, activation: .relu)
            GlobalMaxPool1D()
            Dense(1)
        }
        try model.build(seed: 1)
        model.compile(optimizer: Adam(learningRate: 0.02), loss: BinaryCrossEntropy(fromLogits: true), metrics: [.accuracy])
        let before = try model.evaluate(x: x, y: labels)["loss"]!
        let history = try model.fit(x: x, y: labels, epochs: 30, batchSize: 32, seed: 1, verbose: 0)
        let after = try model.evaluate(x: x, y: labels)
        XCTAssertLessThan(after["loss"]!, before / 3, "\(history)")
        XCTAssertGreaterThan(after["accuracy"]!, 0.95)
    }

    func testParametersLayoutNamesAndInitialisers() throws {
        let layer = Conv1D(filters: 8, kernelSize: 9, name: "conv")
        convTestBuild(layer, [200, 4], seed: 5)
        XCTAssertEqual(layer.parameters.map(\.name), ["conv.kernel", "conv.bias"])
        XCTAssertEqual(layer.kernel!.value.shape, [9, 4, 8], "Keras layout [K, F, C]")
        XCTAssertEqual(layer.bias!.value, Tensor.zeros([8]))
        // Glorot uniform with Keras' fans for [K, F, C]: fanIn = 9 * 4, fanOut = 9 * 8.
        let limit = (6.0 / Float(36 + 72)).squareRoot()
        XCTAssertLessThanOrEqual(layer.kernel!.value.abs().max(), limit)
        XCTAssertGreaterThan(layer.kernel!.value.abs().max(), limit * 0.9)
        layer.name = "renamed"
        XCTAssertEqual(layer.parameters.map(\.name), ["renamed.kernel", "renamed.bias"])

        let kernel = layer.kernel!
        var generator = SeededGenerator(seed: 99)
        XCTAssertEqual(try layer.build(inputShape: [200, 4], generator: &generator), [192, 8])
        XCTAssertTrue(layer.kernel === kernel, "building again for the same shape keeps the weights")
        XCTAssertThrowsError(try layer.build(inputShape: [100, 4], generator: &generator))
        // The weights depend only on F: another length runs.
        XCTAssertEqual(try layer.outputShape(for: [50, 4]), [42, 8])
        XCTAssertEqual(layer.forward(randomTensor([1, 50, 4], seed: 1), training: false).shape, [1, 42, 8])
        let he = Conv1D(filters: 8, kernelSize: 9, kernelInitializer: .heUniform)
        convTestBuild(he, [200, 4], seed: 5)
        XCTAssertGreaterThan(he.kernel!.value.abs().max(), limit)
    }

    func testConfigRoundTripAndKerasKeys() throws {
        for padding in [Conv1D.Padding.valid, .same, .causal] {
            convTestAssertConfigRoundTrip(Conv1D(filters: 6, kernelSize: 5, strides: 1, padding: padding, dilation: 3,
                                                 useBias: false, activation: .relu, kernelInitializer: .heNormal, name: "c"))
        }
        convTestAssertConfigRoundTrip(Conv1D(filters: 1, kernelSize: 1, strides: 2))
        let config = Conv1D(filters: 6, kernelSize: 5, strides: 2, padding: .causal, name: "c").config
        XCTAssertEqual(config["kernel_size"], .ints([5]), "one-element lists, as Keras writes them")
        XCTAssertEqual(config["strides"], .ints([2]))
        XCTAssertEqual(config["dilation_rate"], .ints([1]))
        XCTAssertEqual(config["padding"], .string("causal"))
        XCTAssertEqual(config["filters"], .int(6))
        XCTAssertEqual(config["use_bias"], .bool(true))
        XCTAssertEqual(config["activation"], .string("linear"))
        XCTAssertEqual(config["kernel_initializer"], .string("glorot_uniform"))
        XCTAssertEqual(Conv1D.typeName, "Conv1D")

        // A minimal config takes Keras' defaults; a size may be a plain integer.
        let minimal = try Conv1D(config: ["filters": .int(4), "kernel_size": .int(3)])
        XCTAssertTrue(minimal.kernelSize == 3 && minimal.strides == 1 && minimal.dilation == 1 && minimal.padding == .valid)
        XCTAssertTrue(minimal.useBias && minimal.activation == .linear)
        // What Keras writes for the keys Neurite does not implement, at their defaults, is accepted.
        let keras = try Conv1D(config: [
            "name": .string("conv1d"), "trainable": .bool(true), "dtype": .string("float32"), "filters": .int(64),
            "kernel_size": .ints([9]), "strides": .ints([1]), "padding": .string("same"), "data_format": .string("channels_last"),
            "dilation_rate": .ints([1]), "groups": .int(1), "activation": .string("relu"), "use_bias": .bool(true),
            "kernel_initializer": .string("glorot_uniform"), "bias_initializer": .string("zeros"),
            "kernel_regularizer": .null, "bias_regularizer": .null, "activity_regularizer": .null,
            "kernel_constraint": .null, "bias_constraint": .null,
        ])
        XCTAssertTrue(keras.filters == 64 && keras.kernelSize == 9 && keras.padding == .same && keras.activation == .relu)

        let base: [String: ConfigValue] = ["filters": .int(4), "kernel_size": .int(3)]
        func bad(_ key: String, _ value: ConfigValue, mentioning parts: [String], line: UInt = #line) {
            var config = base
            config[key] = value
            convTestAssertLayerError(mentioning: ["Conv1D"] + parts, line: line) { _ = try Conv1D(config: config) }
        }
        bad("padding", .string("full"), mentioning: ["padding", "full"])
        bad("groups", .int(2), mentioning: ["groups", "2"])
        bad("bias_initializer", .string("ones"), mentioning: ["bias_initializer", "ones"])
        bad("kernel_regularizer", .string("l2"), mentioning: ["kernel_regularizer", "l2"])
        bad("trainable", .string("false"), mentioning: ["trainable", "false"])
        bad("depth_multiplier", .int(2), mentioning: ["depth_multiplier", "2", "not implement"])
        bad("kernel_size", .ints([3, 3]), mentioning: ["kernel_size", "[3, 3]"])
        bad("strides", .int(0), mentioning: ["strides 0"])
        bad("filters", .int(0), mentioning: ["filters 0"])
        bad("data_format", .string("channels_first"), mentioning: ["channels_first"])
        bad("activation", .string("softsign"), mentioning: ["activation", "softsign"])
        bad("kernel_initializer", .string("orthogonal_typo"), mentioning: ["orthogonal_typo"])
        convTestAssertLayerError(mentioning: ["Conv1D", "strides 2", "dilation rate 2", "not supported"]) {
            _ = try Conv1D(config: ["filters": .int(4), "kernel_size": .int(3), "strides": .int(2), "dilation_rate": .ints([2])])
        }
        convTestAssertLayerError(mentioning: ["Conv1D", "kernel_size", "nothing"]) { _ = try Conv1D(config: ["filters": .int(4)]) }
    }

    func testShapeErrorsNameTheLayerAndTheShape() throws {
        let layer = Conv1D(filters: 4, kernelSize: 3, dilation: 2, name: "conv_a")
        convTestAssertLayerError(mentioning: ["Conv1D \"conv_a\"", "[T, F]", "[10]"]) { _ = try layer.outputShape(for: [10]) }
        convTestAssertLayerError(mentioning: ["Conv1D \"conv_a\"", "[10, 10, 3]"]) { _ = try layer.outputShape(for: [10, 10, 3]) }
        var generator = SeededGenerator(seed: 1)
        convTestAssertLayerError(mentioning: ["conv_a", "[4, 2]", "5-step", "valid"]) {
            _ = try layer.build(inputShape: [4, 2], generator: &generator)
        }
        XCTAssertTrue(layer.parameters.isEmpty, "a failed build creates nothing")
        convTestBuild(layer, [8, 3])
        convTestAssertLayerError(mentioning: ["conv_a", "3 input features", "[8, 4]"]) { _ = try layer.outputShape(for: [8, 4]) }
        // Same and causal padding fit any non-empty sequence.
        XCTAssertEqual(try Conv1D(filters: 2, kernelSize: 9, padding: .same).outputShape(for: [1, 3]), [1, 2])
        XCTAssertEqual(try Conv1D(filters: 2, kernelSize: 9, strides: 4, padding: .causal).outputShape(for: [9, 3]), [3, 2])
        convTestAssertLayerError(mentioning: ["Conv1D", "[0, 3]"]) {
            _ = try Conv1D(filters: 2, kernelSize: 1, padding: .same).outputShape(for: [0, 3])
        }
    }
}

/// Misuse of a built layer stops with a message naming the layer and both shapes (exit tests, as
/// in TensorCore's `ShapeErrorTests`).
@Suite struct Convolution1DShapeErrorTests {
    private func expectStop(mentioning parts: [String], sourceLocation: SourceLocation = #_sourceLocation,
                            _ result: ExitTest.Result?) {
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        for part in parts {
            #expect(stderr.contains(part), "stderr should mention \(part): \(stderr)", sourceLocation: sourceLocation)
        }
    }

    @Test func forwardWithAnotherFeatureCountNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = Conv1D(filters: 4, kernelSize: 3, name: "conv_a")
            var g = SeededGenerator(seed: 1)
            _ = try? layer.build(inputShape: [10, 3], generator: &g)
            _ = layer.forward(Tensor.zeros([2, 10, 5]), training: false)
        }
        expectStop(mentioning: ["Conv1D \"conv_a\"", "[2, 10, 5]", "[B, T, 3]", "[3, 3, 4]"], result)
    }

    @Test func forwardOnAnImageNamesTheShape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = Conv1D(filters: 4, kernelSize: 3, name: "conv_b")
            var g = SeededGenerator(seed: 1)
            _ = try? layer.build(inputShape: [10, 3], generator: &g)
            _ = layer.forward(Tensor.zeros([2, 10, 10, 3]), training: false)
        }
        expectStop(mentioning: ["conv_b", "[2, 10, 10, 3]", "[B, T, 3]"], result)
    }

    @Test func forwardOnATooShortSequenceNamesTheLength() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = Conv1D(filters: 4, kernelSize: 5, name: "conv_c")
            var g = SeededGenerator(seed: 1)
            _ = try? layer.build(inputShape: [10, 3], generator: &g)
            _ = layer.forward(Tensor.zeros([2, 4, 3]), training: false)
        }
        expectStop(mentioning: ["conv_c", "[2, 4, 3]", "5-step"], result)
    }

    @Test func backwardWithAnotherShapeNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let layer = Conv1D(filters: 4, kernelSize: 3, padding: .same, name: "conv_d")
            var g = SeededGenerator(seed: 1)
            _ = try? layer.build(inputShape: [10, 3], generator: &g)
            _ = layer.forward(Tensor.zeros([2, 10, 3]), training: true)
            _ = layer.backward(Tensor.zeros([2, 9, 4]))
        }
        expectStop(mentioning: ["conv_d", "[2, 9, 4]", "[2, 10, 4]"], result)
    }

    @Test func stridesWithDilationStop() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Conv1D(filters: 4, kernelSize: 3, strides: 2, dilation: 2)
        }
        expectStop(mentioning: ["Conv1D", "strides 2", "dilation rate 2"], result)
    }

    @Test func validUseDoesNotStop() {
        // The same calls with fitting shapes run, so the cases above stop for the shapes alone.
        let layer = Conv1D(filters: 4, kernelSize: 3, padding: .same)
        var g = SeededGenerator(seed: 1)
        #expect((try? layer.build(inputShape: [10, 3], generator: &g)) == [10, 4])
        let y = layer.forward(Tensor.zeros([2, 10, 3]), training: true)
        #expect(y.shape == [2, 10, 4])
        #expect(layer.backward(Tensor.zeros([2, 10, 4])).shape == [2, 10, 3])
    }
}
