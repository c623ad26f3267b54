import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

final class ConvolutionTransposeTests: XCTestCase {
    /// The transposed convolution by its definition, scattering each input pixel through the
    /// kernel `[KH, KW, Cout, Cin]` into the output (Float64), with TensorFlow's padding.
    private func reference(_ x: Tensor, kernel: Tensor, bias: Tensor, strides: (Int, Int), padding: Padding) -> Tensor {
        let (n, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cout) = (kernel.shape[0], kernel.shape[1], kernel.shape[2])
        let oh = padding == .same ? h * strides.0 : h * strides.0 + max(kh - strides.0, 0)
        let ow = padding == .same ? w * strides.1 : w * strides.1 + max(kw - strides.1, 0)
        let top = padding == .same ? max((h - 1) * strides.0 + kh - oh, 0) / 2 : 0
        let left = padding == .same ? max((w - 1) * strides.1 + kw - ow, 0) / 2 : 0
        var out = [Double](repeating: 0, count: n * oh * ow * cout)
        for b in 0..<n { for i in 0..<h { for j in 0..<w { for ci in 0..<cin {
            let v = Double(x[b, i, j, ci])
            for a in 0..<kh { for c in 0..<kw {
                let r = i * strides.0 - top + a, s = j * strides.1 - left + c
                guard r >= 0, r < oh, s >= 0, s < ow else { continue }
                for co in 0..<cout { out[((b * oh + r) * ow + s) * cout + co] += v * Double(kernel[a, c, co, ci]) }
            } }
        } } } }
        for i in out.indices { out[i] += Double(bias[i % cout]) }
        return Tensor(shape: [n, oh, ow, cout], scalars: out.map { Float($0) })
    }

    func testOutputShapesFollowKeras() {
        for (padding, kernel, stride, input, expected) in [
            (Padding.same, 3, 2, 7, 14), (.valid, 3, 2, 7, 15), (.valid, 2, 3, 4, 12), (.same, 4, 1, 5, 5), (.valid, 3, 1, 5, 7),
        ] {
            let layer = Conv2DTranspose(filters: 2, kernelSize: (kernel, kernel), strides: (stride, stride), padding: padding)
            XCTAssertEqual(try layer.outputShape(for: [input, input, 3]), [expected, expected, 2], "\(padding) k\(kernel) s\(stride)")
        }
    }

    func testForwardMatchesTheScatterDefinition() {
        for (padding, kernel, stride) in [(Padding.same, (3, 3), (2, 2)), (.valid, (3, 2), (2, 1)), (.valid, (2, 2), (3, 3)), (.same, (4, 3), (1, 2))] {
            let layer = Conv2DTranspose(filters: 3, kernelSize: kernel, strides: stride, padding: padding)
            convTestBuild(layer, [3, 4, 2])
            layer.bias!.value = randomTensor([3], seed: 5)
            let x = randomTensor([2, 3, 4, 2], seed: 3)
            let expected = reference(x, kernel: layer.kernel!.value, bias: layer.bias!.value, strides: stride, padding: padding)
            assertClose(layer.forward(x, training: false), expected, rtol: 1e-5, atol: 1e-5, "\(padding) \(kernel) \(stride)")
        }
    }

    func testGradientsMatchFiniteDifferences() {
        for (padding, stride, activation) in [(Padding.same, (2, 2), ActivationFunction.linear), (.valid, (2, 1), .tanh), (.valid, (1, 1), .sigmoid)] {
            let layer = Conv2DTranspose(filters: 2, kernelSize: (3, 3), strides: stride, padding: padding, activation: activation)
            convTestBuild(layer, [3, 3, 2])
            layer.bias!.value = randomTensor([2], seed: 9, scale: 0.3)
            checkLayerBackward(layer, input: randomTensor([2, 3, 3, 2], seed: 4), seed: 8, "\(padding) \(stride)")
        }
        let layer = Conv2DTranspose(filters: 2, kernelSize: (2, 2), strides: (2, 2))
        convTestBuild(layer, [2, 2, 1])
        convTestCheckGradientsAccumulate(layer, input: randomTensor([1, 2, 2, 1], seed: 2), seed: 3)
    }

    func testConfigRoundTripsAndBadInputsThrow() {
        convTestAssertConfigRoundTrip(Conv2DTranspose(filters: 4, kernelSize: (3, 2), strides: (2, 2), padding: .same,
                                                      activation: .relu, name: "deconv"))
        convTestAssertLayerError(mentioning: ["dilation_rate"]) {
            _ = try Conv2DTranspose(config: ["filters": .int(2), "kernel_size": .int(3), "dilation_rate": .int(2)])
        }
        let layer = Conv2DTranspose(filters: 2, kernelSize: (3, 3))
        convTestBuild(layer, [4, 4, 3])
        XCTAssertEqual(layer.kernel!.value.shape, [3, 3, 2, 3], "Keras' layout [KH, KW, filters, Cin]")
        convTestAssertLayerError(mentioning: ["3 input channels", "[4, 4, 5]"]) { _ = try layer.outputShape(for: [4, 4, 5]) }
    }

    func testAModelWithTransposedConvolutionAndUpSamplingSavesAndLoads() throws {
        let model = Sequential(inputShape: [4, 4, 1]) {
            Conv2D(filters: 3, kernelSize: (3, 3), padding: .same, activation: .relu)
            MaxPool2D(poolSize: (2, 2))
            Conv2DTranspose(filters: 2, kernelSize: (3, 3), strides: (2, 2), padding: .same, activation: .relu)
            UpSampling2D(size: (2, 2))
            Conv2D(filters: 1, kernelSize: (3, 3), padding: .same, activation: .sigmoid)
        }
        try model.build(seed: 3)
        let x = randomTensor([3, 4, 4, 1], seed: 1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-deconv-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let loaded = try Sequential.load(from: dir)
        XCTAssertEqual(loaded.layers.map { type(of: $0).typeName },
                       ["Conv2D", "MaxPooling2D", "Conv2DTranspose", "UpSampling2D", "Conv2D"])
        XCTAssertEqual(try loaded.predict(x), try model.predict(x))
        XCTAssertEqual(try model.predict(x).shape, [3, 8, 8, 1])
    }
}
