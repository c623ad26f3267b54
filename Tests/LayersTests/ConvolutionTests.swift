import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

final class Conv2DLayerTests: XCTestCase {
    /// The course CNN: 28x28x1 -> Conv2D 16 5x5 relu -> MaxPool 2 -> Conv2D 8 2x2 relu -> MaxPool 2,
    /// with Keras' summary: [24, 24, 16] (416 weights), [12, 12, 16], [11, 11, 8] (520), [5, 5, 8].
    func testCourseCNNShapesAndParameterCountsMatchKeras() throws {
        let layers: [any Layer] = [
            Conv2D(filters: 16, kernelSize: (5, 5), activation: .relu, name: "conv_1"),
            MaxPool2D(poolSize: (2, 2), name: "pool_1"),
            Conv2D(filters: 8, kernelSize: (2, 2), activation: .relu, name: "conv_2"),
            MaxPool2D(poolSize: (2, 2), name: "pool_2"),
        ]
        let expectedShapes = [[24, 24, 16], [12, 12, 16], [11, 11, 8], [5, 5, 8]]
        let expectedCounts = [416, 0, 520, 0]
        var shape = [28, 28, 1]
        var generator = SeededGenerator(seed: 1)
        for (i, layer) in layers.enumerated() {
            XCTAssertEqual(try layer.outputShape(for: shape), expectedShapes[i], "outputShape of layer \(i)")
            shape = try layer.build(inputShape: shape, generator: &generator)
            XCTAssertEqual(shape, expectedShapes[i], "build of layer \(i)")
            XCTAssertEqual(convTestWeightCount(layer), expectedCounts[i], "weights of layer \(i)")
        }
        var x = randomTensor([2, 28, 28, 1], seed: 2)
        for layer in layers { x = layer.forward(x, training: false) }
        XCTAssertEqual(x.shape, [2, 5, 5, 8])
    }

    func testSameAndValidPaddingShapesMatchKeras() throws {
        let cases: [(Conv2D, [Int], [Int])] = [
            (Conv2D(filters: 4, kernelSize: (3, 3), padding: .same), [28, 28, 3], [28, 28, 4]),
            (Conv2D(filters: 2, kernelSize: (3, 3), strides: (2, 2), padding: .same), [7, 7, 1], [4, 4, 2]),
            (Conv2D(filters: 2, kernelSize: (3, 3), strides: (2, 2)), [7, 7, 1], [3, 3, 2]),
            (Conv2D(filters: 2, kernelSize: (3, 3), dilation: (2, 2)), [7, 8, 1], [3, 4, 2]),
            (Conv2D(filters: 5, kernelSize: (1, 4), strides: (1, 3), padding: .same), [6, 10, 2], [6, 4, 5]),
        ]
        for (layer, input, expected) in cases {
            XCTAssertEqual(try layer.outputShape(for: input), expected, "\(layer.config)")
            XCTAssertEqual(convTestBuild(layer, input), expected, "\(layer.config)")
            let y = layer.forward(randomTensor([1] + input, seed: 3), training: false)
            XCTAssertEqual(y.shape, [1] + expected, "\(layer.config)")
        }
    }

    func testForwardMatchesNaiveConvolutionWithBiasAndRelu() {
        let layer = Conv2D(filters: 4, kernelSize: (3, 2), strides: (2, 1), padding: .same, activation: .relu)
        convTestBuild(layer, [5, 6, 3])
        layer.bias!.value = randomTensor([4], seed: 11, scale: 0.5)
        let x = randomTensor([2, 5, 6, 3], seed: 12)
        let y = layer.forward(x, training: false)
        let reference = naiveConvolution(x, layer.kernel!.value, bias: layer.bias!.value, strides: (2, 1), padding: .same)
        XCTAssertEqual(y.shape, reference.shape)
        assertClose(y.scalars, reference.values.map { max($0, 0) }, rtol: 1e-5, atol: 1e-5)
        XCTAssertTrue(y.scalars.contains(0) && y.scalars.contains { $0 > 0 }, "relu clips some outputs, not all")

        let linear = Conv2D(filters: 3, kernelSize: (2, 3), dilation: (2, 1))
        convTestBuild(linear, [6, 5, 2])
        linear.bias!.value = randomTensor([3], seed: 13)
        let z = randomTensor([1, 6, 5, 2], seed: 14)
        let linearReference = naiveConvolution(z, linear.kernel!.value, bias: linear.bias!.value, dilation: (2, 1),
                                               padding: .valid)
        assertClose(linear.forward(z, training: false).scalars, linearReference.values, rtol: 1e-5, atol: 1e-5)
    }

    /// A relu or linear Conv2D applies its bias and activation in the convolution's store where the
    /// direct kernels run: the output must keep the bits of the convolution followed by the
    /// bias-and-activation pass the layer ran before, on every ISA path and algorithm, for the
    /// course CNN's layers and awkward ones (1 and 3 input channels, 5 and 17 filters, odd widths,
    /// batch 1 and 3, no bias); the backward pass (relu's mask applied in the bias-gradient pass)
    /// must give the bits of `reluBackward` followed by `conv2DBackward`.
    func testReluAndLinearForwardKeepTheBitsOfABiasAndActivationPass() {
        let cases: [(input: [Int], filters: Int, kernel: (Int, Int), activation: ActivationFunction, bias: Bool)] = [
            ([3, 28, 28, 1], 16, (5, 5), .relu, true),
            ([3, 12, 12, 16], 8, (2, 2), .relu, true),
            ([1, 9, 13, 1], 5, (3, 3), .relu, true),
            ([3, 7, 11, 3], 17, (2, 3), .linear, true),
            ([1, 6, 19, 1], 16, (3, 2), .relu, false),
        ]
        for (index, c) in cases.enumerated() {
            let layer = Conv2D(filters: c.filters, kernelSize: c.kernel, useBias: c.bias, activation: c.activation)
            convTestBuild(layer, Array(c.input.dropFirst()))
            if c.bias { layer.bias!.value = randomTensor([c.filters], seed: UInt64(60 + index), scale: 0.5) }
            let x = randomTensor(c.input, seed: UInt64(70 + index))
            let outputShape = [c.input[0], c.input[1] - c.kernel.0 + 1, c.input[2] - c.kernel.1 + 1, c.filters]
            let dy = randomTensor(outputShape, seed: UInt64(80 + index))
            let reference = naiveConvolution(x, layer.kernel!.value, bias: layer.bias?.value, padding: .valid).values
            for algorithm in [ConvolutionAlgorithm.automatic, .direct, .im2col] {
                forEachISA { isa in
                    ConvolutionAlgorithm.with(algorithm) {
                        let what = "\(algorithm) \(isa), case \(index)"
                        var expected = Tensor.conv2D(x, kernel: layer.kernel!.value)
                        if let bias = layer.bias { expected.addBias(bias.value, activation: c.activation) }
                        else { expected = c.activation.forward(expected) }
                        let y = layer.forward(x, training: true)
                        XCTAssertEqual(y.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), what)
                        assertClose(y.scalars, c.activation == .relu ? reference.map { max($0, 0) } : reference,
                                    rtol: 1e-5, atol: 1e-5, what)
                        let dx = layer.backward(dy)
                        let grads = Tensor.conv2DBackward(input: x, kernel: layer.kernel!.value,
                                                          outputGradient: c.activation.backward(dy, input: nil, output: expected))
                        XCTAssertEqual(dx.scalars.map(\.bitPattern), grads.input.scalars.map(\.bitPattern), "input gradient, \(what)")
                        XCTAssertEqual(layer.kernel!.gradient.scalars.map(\.bitPattern), grads.kernel.scalars.map(\.bitPattern),
                                       "kernel gradient, \(what)")
                        if let bias = layer.bias {
                            XCTAssertEqual(bias.gradient.scalars.map(\.bitPattern), grads.bias.scalars.map(\.bitPattern),
                                           "bias gradient, \(what)")
                        }
                        layer.kernel!.zeroGradient()
                        layer.bias?.zeroGradient()
                    }
                }
            }
        }
    }

    func testGradientsWithStride2AndValidPadding() {
        let layer = Conv2D(filters: 3, kernelSize: (3, 3), strides: (2, 2), padding: .valid, name: "c")
        convTestBuild(layer, [7, 7, 2])
        layer.bias!.value = randomTensor([3], seed: 21)
        checkLayerBackward(layer, input: randomTensor([2, 7, 7, 2], seed: 22), seed: 23)
    }

    func testGradientsWithStride2AndSamePadding() {
        // 6x5 with a 3x2 kernel and stride 2: padding is uneven (more after), exercising the border.
        let layer = Conv2D(filters: 3, kernelSize: (3, 2), strides: (2, 2), padding: .same, name: "c")
        convTestBuild(layer, [6, 5, 2])
        layer.bias!.value = randomTensor([3], seed: 31)
        checkLayerBackward(layer, input: randomTensor([2, 6, 5, 2], seed: 32), seed: 33)
    }

    func testGradientsWithReluDilationAndNoBias() throws {
        let relu = Conv2D(filters: 3, kernelSize: (2, 2), dilation: (2, 1), activation: .relu, name: "r")
        convTestBuild(relu, [5, 5, 2])
        let x = randomTensor([2, 5, 5, 2], seed: 42)
        // Finite differences are only valid away from relu's kink: pick each channel's bias so that
        // no pre-activation lies within 0.02 of zero. A step of 0.01 in the input (|kernel| < 1),
        // kernel (|x| < 1) or bias then moves every pre-activation by less than that.
        let pre = Tensor.conv2D(x, kernel: relu.kernel!.value, dilation: (2, 1))
        var bias = [Float]()
        let preValues = pre.scalars
        for c in 0..<3 {
            let column = stride(from: c, to: preValues.count, by: 3).map { preValues[$0] }
            let candidates = stride(from: Float(-0.5), through: 0.5, by: 0.005)
            let chosen = try XCTUnwrap(candidates.first { b in
                column.allSatisfy { Swift.abs($0 + b) >= 0.02 } && column.contains { $0 + b > 0 } && column.contains { $0 + b < 0 }
            }, "a bias keeping channel \(c) away from the kink")
            bias.append(chosen)
        }
        relu.bias!.value = Tensor(bias)
        let y = relu.forward(x, training: true)
        XCTAssertTrue(y.scalars.contains(0) && y.scalars.contains { $0 > 0 }, "the relu mask matters here")
        checkLayerBackward(relu, input: x, seed: 43, "relu")

        let plain = Conv2D(filters: 2, kernelSize: (3, 3), strides: (2, 1), padding: .same, useBias: false, name: "p")
        convTestBuild(plain, [5, 4, 3])
        XCTAssertEqual(plain.parameters.map(\.name), ["p.kernel"])
        checkLayerBackward(plain, input: randomTensor([2, 5, 4, 3], seed: 44), seed: 45, "no bias")
    }

    func testSigmoidTanhAndGeluActivationsMatchReferenceAndFiniteDifferences() {
        // Smooth activations: the forward pass against the naive convolution with the function
        // applied in Float64, and every gradient against finite differences. Sigmoid and tanh take
        // the fused bias pass and differentiate from the output; GELU keeps the pre-activation.
        let functions: [(ActivationFunction, (Double) -> Double)] = [
            (.sigmoid, { 1 / (1 + Foundation.exp(-$0)) }),
            (.tanh, { Foundation.tanh($0) }),
            (.gelu, { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }),
        ]
        for (i, (function, reference)) in functions.enumerated() {
            let seed = UInt64(60 + 10 * i)
            let layer = Conv2D(filters: 3, kernelSize: (3, 2), strides: (2, 1), padding: .same, activation: function,
                               name: "c")
            convTestBuild(layer, [5, 4, 2], seed: seed)
            layer.bias!.value = randomTensor([3], seed: seed + 1, scale: 0.5)
            let x = randomTensor([2, 5, 4, 2], seed: seed + 2)
            let linear = naiveConvolution(x, layer.kernel!.value, bias: layer.bias!.value, strides: (2, 1), padding: .same)
            let y = layer.forward(x, training: false)
            XCTAssertEqual(y.shape, linear.shape, "\(function)")
            assertClose(y.scalars, linear.values.map(reference), rtol: 1e-5, atol: 1e-5, "\(function) forward")
            checkLayerBackward(layer, input: x, seed: seed + 3, "\(function)")
        }
    }

    func testActivationConfigUsesKerasNames() throws {
        // Saved configurations hold the Keras name, as they did when the activation was a string.
        for function in [ActivationFunction.linear, .relu, .sigmoid, .tanh, .gelu, .elu(alpha: 1), .leakyRelu(alpha: 0.1)] {
            let layer = Conv2D(filters: 2, kernelSize: (3, 3), activation: function)
            XCTAssertEqual(layer.config["activation"], .string(function.configName))
            convTestAssertConfigRoundTrip(layer)
        }
        let relu = try Conv2D(config: ["filters": .int(2), "kernel_size": .int(3), "activation": .string("relu")])
        XCTAssertEqual(relu.activation, .relu)
        XCTAssertEqual(relu.config["activation"], .string("relu"))
        let none = try Conv2D(config: ["filters": .int(2), "kernel_size": .int(3), "activation": .null])
        XCTAssertEqual(none.activation, .linear)
        convTestAssertLayerError(mentioning: ["Conv2D", "activation"]) {
            _ = try Conv2D(config: ["filters": .int(2), "kernel_size": .int(3), "activation": .int(1)])
        }
    }

    func testGradientsAccumulateWhenBackwardRunsTwice() {
        let layer = Conv2D(filters: 2, kernelSize: (3, 3), strides: (2, 2), padding: .same, activation: .relu)
        convTestBuild(layer, [5, 5, 2])
        layer.bias!.value = randomTensor([2], seed: 51, scale: 0.3)
        convTestCheckGradientsAccumulate(layer, input: randomTensor([2, 5, 5, 2], seed: 52), seed: 53)
    }

    func testParametersLayoutNamesAndInitialisers() throws {
        let layer = Conv2D(filters: 8, kernelSize: (3, 3), name: "conv")
        convTestBuild(layer, [6, 6, 4], seed: 5)
        XCTAssertEqual(layer.parameters.map(\.name), ["conv.kernel", "conv.bias"])
        XCTAssertEqual(layer.kernel!.value.shape, [3, 3, 4, 8], "Keras layout [KH, KW, Cin, Cout]")
        XCTAssertEqual(layer.bias!.value, Tensor.zeros([8]))
        XCTAssertTrue(layer.parameters.allSatisfy(\.isTrainable))
        // Glorot uniform: |w| <= sqrt(6 / (fanIn + fanOut)) with fanIn = 3*3*4, fanOut = 3*3*8.
        let glorotLimit = (6.0 / Float(36 + 72)).squareRoot()
        XCTAssertLessThanOrEqual(layer.kernel!.value.abs().max(), glorotLimit)
        XCTAssertGreaterThan(layer.kernel!.value.abs().max(), glorotLimit * 0.9)

        layer.name = "renamed"
        XCTAssertEqual(layer.parameters.map(\.name), ["renamed.kernel", "renamed.bias"])

        // Building again with the same shape keeps the weights; another shape throws.
        let kernel = layer.kernel!
        var generator = SeededGenerator(seed: 99)
        XCTAssertEqual(try layer.build(inputShape: [6, 6, 4], generator: &generator), [4, 4, 8])
        XCTAssertTrue(layer.kernel === kernel)
        XCTAssertThrowsError(try layer.build(inputShape: [7, 7, 4], generator: &generator))

        // Same seed, same weights; He uniform reaches past Glorot's limit (sqrt(6 / fanIn) is larger).
        let twin = Conv2D(filters: 8, kernelSize: (3, 3))
        convTestBuild(twin, [6, 6, 4], seed: 5)
        XCTAssertEqual(twin.kernel!.value, kernel.value)
        let he = Conv2D(filters: 8, kernelSize: (3, 3), kernelInitializer: .heUniform)
        convTestBuild(he, [6, 6, 4], seed: 5)
        XCTAssertGreaterThan(he.kernel!.value.abs().max(), glorotLimit)
        XCTAssertLessThanOrEqual(he.kernel!.value.abs().max(), (6.0 / Float(36)).squareRoot())
    }

    func testConfigRoundTripAndKerasKeys() throws {
        let layer = Conv2D(filters: 6, kernelSize: (3, 5), strides: (2, 1), padding: .same, dilation: (1, 2),
                           useBias: false, activation: .relu, kernelInitializer: .heNormal, name: "conv_x")
        convTestAssertConfigRoundTrip(layer)
        convTestAssertConfigRoundTrip(Conv2D(filters: 1, kernelSize: (1, 1)))
        let config = layer.config
        XCTAssertEqual(config["kernel_size"], .ints([3, 5]))
        XCTAssertEqual(config["strides"], .ints([2, 1]))
        XCTAssertEqual(config["dilation_rate"], .ints([1, 2]))
        XCTAssertEqual(config["padding"], .string("same"))
        XCTAssertEqual(config["use_bias"], .bool(false))
        XCTAssertEqual(Conv2D.typeName, "Conv2D")
        XCTAssertEqual(config["kernel_initializer"], .string("he_normal"))
        var bad = config
        bad["kernel_initializer"] = .string("orthogonal_typo")
        XCTAssertThrowsError(try Conv2D(config: bad)) { error in
            XCTAssertTrue("\(error)".contains("Conv2D config") && "\(error)".contains("orthogonal_typo"), "\(error)")
        }

        // A minimal Keras config: defaults fill in, and a single integer is a square kernel.
        let minimal = try Conv2D(config: ["filters": .int(4), "kernel_size": .int(3)])
        XCTAssertTrue(minimal.kernelSize == (3, 3) && minimal.strides == (1, 1) && minimal.padding == .valid)
        XCTAssertTrue(minimal.useBias)
        XCTAssertEqual(minimal.activation, .linear)

        convTestAssertLayerError(mentioning: ["Conv2D", "padding", "full"]) {
            _ = try Conv2D(config: ["filters": .int(4), "kernel_size": .ints([3, 3]), "padding": .string("full")])
        }
        convTestAssertLayerError(mentioning: ["Conv2D", "kernel_size"]) {
            _ = try Conv2D(config: ["filters": .int(4), "kernel_size": .ints([3, 3, 3])])
        }
        convTestAssertLayerError(mentioning: ["Conv2D", "activation", "softsign"]) {
            _ = try Conv2D(config: ["filters": .int(4), "kernel_size": .int(3), "activation": .string("softsign")])
        }
        convTestAssertLayerError(mentioning: ["Conv2D", "filters 0"]) {
            _ = try Conv2D(config: ["filters": .int(0), "kernel_size": .int(3)])
        }
        convTestAssertLayerError(mentioning: ["Conv2D", "channels_first"]) {
            _ = try Conv2D(config: ["filters": .int(2), "kernel_size": .int(3), "data_format": .string("channels_first")])
        }
    }

    func testShapeErrorsNameTheLayerAndTheShape() throws {
        let layer = Conv2D(filters: 4, kernelSize: (3, 3), name: "conv_a")
        convTestAssertLayerError(mentioning: ["Conv2D \"conv_a\"", "[10]"]) {
            _ = try layer.outputShape(for: [10])
        }
        var generator = SeededGenerator(seed: 1)
        convTestAssertLayerError(mentioning: ["conv_a", "[2, 2, 1]", "3x3"]) {
            _ = try layer.build(inputShape: [2, 2, 1], generator: &generator)
        }
        XCTAssertTrue(layer.parameters.isEmpty, "a failed build creates nothing")
        convTestBuild(layer, [8, 8, 3])
        convTestAssertLayerError(mentioning: ["conv_a", "3 input channels", "[8, 8, 4]"]) {
            _ = try layer.outputShape(for: [8, 8, 4])
        }
        // The weights depend only on the channel count: another image size still has an output shape.
        XCTAssertEqual(try layer.outputShape(for: [10, 12, 3]), [8, 10, 4])
    }
}
