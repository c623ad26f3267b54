import TensorCore
import _NeuriteTestSupport
import XCTest

/// The strided transposed convolution by output phases (`Tensor.transposedConvolution`) and the
/// convolutions to few output channels, against the Float64 references, on every ISA path.
final class TransposedConvolutionTests: XCTestCase {
    /// One transposed convolution: input `[batch, h, w, cin]`, kernel `[kh, kw, filters, cin]`.
    private struct Case: CustomStringConvertible {
        var batch: Int, h: Int, w: Int, cin: Int, filters: Int
        var kh: Int, kw: Int
        var strides: (Int, Int)
        var padding: Padding

        /// Keras' output extent.
        var outputSize: (Int, Int) {
            padding == .same ? (h * strides.0, w * strides.1)
                : (h * strides.0 + max(kh - strides.0, 0), w * strides.1 + max(kw - strides.1, 0))
        }
        var outputShape: [Int] { [batch, outputSize.0, outputSize.1, filters] }
        var description: String {
            "input [\(batch), \(h), \(w), \(cin)] kernel [\(kh), \(kw), \(filters), \(cin)] strides \(strides) \(padding)"
        }
    }

    /// Each convolution algorithm, and the direct kernels on every ISA path the CPU has.
    private func forEachAlgorithm(_ body: () -> Void) {
        ConvolutionAlgorithm.with(.automatic, body)
        ConvolutionAlgorithm.with(.im2col, body)
        forEachISA { _ in ConvolutionAlgorithm.with(.direct, body) }
    }

    /// Forward and kernel gradient. The conv autoencoder's two layers, then odd extents, 1 channel, channel counts off the
    /// multiples of 8 and 16, strides 1 to 3 (mixed), kernels smaller than the stride (phases
    /// with no taps), padding before the output (4x4 stride 2 same), 1x1 kernels, batch 1 and 3.
    func testTransposedConvolutionMatchesTheScatterDefinition() {
        let cases = [
            Case(batch: 1, h: 7, w: 7, cin: 8, filters: 8, kh: 3, kw: 3, strides: (2, 2), padding: .same),
            Case(batch: 3, h: 14, w: 14, cin: 8, filters: 16, kh: 3, kw: 3, strides: (2, 2), padding: .same),
            Case(batch: 3, h: 5, w: 6, cin: 1, filters: 1, kh: 3, kw: 3, strides: (2, 2), padding: .same),
            Case(batch: 1, h: 4, w: 5, cin: 3, filters: 5, kh: 3, kw: 2, strides: (2, 1), padding: .valid),
            Case(batch: 3, h: 3, w: 4, cin: 7, filters: 17, kh: 2, kw: 2, strides: (3, 3), padding: .valid),
            Case(batch: 2, h: 5, w: 3, cin: 9, filters: 6, kh: 4, kw: 3, strides: (2, 3), padding: .same),
            Case(batch: 1, h: 6, w: 5, cin: 5, filters: 3, kh: 5, kw: 5, strides: (3, 2), padding: .same),
            Case(batch: 2, h: 4, w: 4, cin: 20, filters: 7, kh: 3, kw: 3, strides: (1, 2), padding: .valid),
            Case(batch: 3, h: 3, w: 3, cin: 2, filters: 33, kh: 1, kw: 1, strides: (2, 2), padding: .valid),
            Case(batch: 3, h: 7, w: 5, cin: 17, filters: 9, kh: 3, kw: 3, strides: (3, 3), padding: .same),
            Case(batch: 1, h: 5, w: 5, cin: 4, filters: 3, kh: 3, kw: 3, strides: (1, 1), padding: .same),
            // Batches of several chunks of images (about 64Ki phase floats each), the last one partial.
            Case(batch: 12, h: 14, w: 14, cin: 8, filters: 16, kh: 3, kw: 3, strides: (2, 2), padding: .same),
            Case(batch: 45, h: 7, w: 7, cin: 8, filters: 8, kh: 3, kw: 3, strides: (2, 2), padding: .same),
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(3_000 + 10 * index)
            let x = randomTensor([c.batch, c.h, c.w, c.cin], seed: seed)
            let k = randomTensor([c.kh, c.kw, c.filters, c.cin], seed: seed + 1)
            let expected = naiveTransposedConvolution(x, k, outputSize: c.outputSize, strides: c.strides,
                                                      padding: ReferencePadding(c.padding))
            XCTAssertEqual(expected.shape, c.outputShape, "\(c)")
            // The kernel gradient is the reversed convolution's (input: the output gradient; output
            // gradient: this input), by the convolution reference.
            let dy = randomTensor(c.outputShape, seed: seed + 2)
            let reversed = ConvolutionReference(inputShape: c.outputShape, kernelShape: k.shape, strides: c.strides,
                                                padding: ReferencePadding(c.padding))
            let expectedDK = reversed.backward(x: dy.scalars, k: k.scalars, dy: x.scalars).dk
            // Each output sums up to KH * KW * Cin products; each kernel-gradient entry one per input pixel.
            let depth = Double(c.kh * c.kw * c.cin), pixels = Double(c.batch * c.h * c.w)
            forEachAlgorithm {
                let y = Tensor.transposedConvolution(x, kernel: k, outputShape: c.outputShape, strides: c.strides,
                                                     padding: c.padding)
                XCTAssertEqual(y.shape, c.outputShape, "\(c)")
                assertClose(y.scalars, expected.values, rtol: 1e-5, atol: 1e-6 * depth.squareRoot() + 1e-6,
                            "\(ConvolutionAlgorithm.current) \(KernelISA.current), \(c)")
                // The same function as the convolution's input gradient.
                let general = Tensor.conv2DBackwardInput(outputGradient: x, kernel: k, inputShape: c.outputShape,
                                                         strides: c.strides, padding: c.padding)
                assertClose(y.scalars, general.scalars.map(Double.init), rtol: 1e-5, atol: 1e-6 * depth.squareRoot() + 1e-6,
                            "against conv2DBackwardInput, \(ConvolutionAlgorithm.current) \(KernelISA.current), \(c)")
                let dk = Tensor.transposedConvolutionKernelGradient(input: x, outputGradient: dy, kernelShape: k.shape,
                                                                    strides: c.strides, padding: c.padding)
                XCTAssertEqual(dk.shape, k.shape, "\(c)")
                assertClose(dk.scalars, expectedDK, rtol: 1e-4, atol: 2e-6 * pixels.squareRoot() + 1e-5,
                            "kernel gradient, \(ConvolutionAlgorithm.current) \(KernelISA.current), \(c)")
            }
        }
    }

    /// A `Conv2DTranspose` layer's forward (`biasAfterwards:relu:`: the bias and relu in the
    /// phases' store, or a pass after the general way) gives the bits of the transposed
    /// convolution followed by the layer's bias-and-activation pass, on every algorithm and path.
    func testFusedBiasAndReluMatchAPassAfterTheTransposedConvolution() {
        let cases = [
            Case(batch: 2, h: 7, w: 7, cin: 8, filters: 8, kh: 3, kw: 3, strides: (2, 2), padding: .same),
            Case(batch: 3, h: 14, w: 14, cin: 8, filters: 16, kh: 3, kw: 3, strides: (2, 2), padding: .same),
            Case(batch: 1, h: 4, w: 5, cin: 3, filters: 5, kh: 3, kw: 2, strides: (2, 1), padding: .valid),
            Case(batch: 2, h: 5, w: 3, cin: 9, filters: 6, kh: 4, kw: 3, strides: (2, 3), padding: .same),
            Case(batch: 1, h: 5, w: 5, cin: 4, filters: 3, kh: 3, kw: 3, strides: (1, 1), padding: .same),
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(3_500 + 10 * index)
            let x = randomTensor([c.batch, c.h, c.w, c.cin], seed: seed)
            let k = randomTensor([c.kh, c.kw, c.filters, c.cin], seed: seed + 1)
            let bias = randomTensor([c.filters], seed: seed + 2)
            forEachAlgorithm {
                let what = "\(ConvolutionAlgorithm.current) \(KernelISA.current), \(c)"
                let plain = Tensor.transposedConvolution(x, kernel: k, outputShape: c.outputShape, strides: c.strides,
                                                         padding: c.padding)
                var expected = plain
                expected.addBias(bias, activation: .relu)
                let fused = Tensor.transposedConvolution(x, kernel: k, outputShape: c.outputShape, strides: c.strides,
                                                         padding: c.padding, biasAfterwards: bias, relu: true)
                XCTAssertEqual(fused.shape, c.outputShape, what)
                XCTAssertEqual(fused.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "bias + relu, \(what)")
                XCTAssertGreaterThan(fused.scalars.filter { $0 == 0 }.count, 0, "relu zeroed nothing, \(what)")
                var linear = plain
                linear.addBias(bias)
                XCTAssertEqual(Tensor.transposedConvolution(x, kernel: k, outputShape: c.outputShape, strides: c.strides,
                                                            padding: c.padding, biasAfterwards: bias, relu: false),
                               linear, "bias alone, \(what)")
                XCTAssertEqual(Tensor.transposedConvolution(x, kernel: k, outputShape: c.outputShape, strides: c.strides,
                                                            padding: c.padding, biasAfterwards: nil, relu: true),
                               plain.relu(), "relu alone, \(what)")
            }
        }
    }

    /// Relu's backward pass with the channel sums (a relu layer's bias gradient) in one pass: the
    /// bits of `reluBackward`, and the sums of the masked gradient against Float64, for 16 and 8
    /// channels (the vector rows), 5 and 1, and rows that split into several blocks and pieces.
    func testReluBackwardAndChannelSums() {
        for (index, shape) in [[3, 28, 28, 16], [2, 14, 14, 8], [5, 7, 3, 5], [70, 1], [1, 3, 2, 16]].enumerated() {
            let gradient = randomTensor(shape, seed: UInt64(3_700 + 10 * index))
            let output = randomTensor(shape, seed: UInt64(3_701 + 10 * index))
            let (masked, sums) = Tensor.reluBackwardAndChannelSums(gradient: gradient, output: output)
            let expected = Tensor.reluBackward(gradient: gradient, input: output)
            XCTAssertEqual(masked.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(shape)")
            let channels = shape.last!
            var reference = [Double](repeating: 0, count: channels)
            for (i, v) in expected.scalars.enumerated() { reference[i % channels] += Double(v) }
            XCTAssertEqual(sums.shape, [channels])
            assertClose(sums.scalars, reference, rtol: 1e-5, atol: 1e-5, "\(shape)")
            XCTAssertNotEqual(sums.scalars, Array(repeating: 0, count: channels), "\(shape)")
        }
    }

    /// The control: a kernel whose one tap is moved, and the reference tells them apart (so the
    /// comparison above can fail on a tap that lands in the wrong phase).
    func testTheReferenceSeesATapInTheWrongPhase() {
        let x = randomTensor([1, 4, 4, 2], seed: 5)
        var k = Tensor(shape: [3, 3, 2, 2], repeating: 0)
        k[0, 0, 0, 0] = 1
        let right = Tensor.transposedConvolution(x, kernel: k, outputShape: [1, 8, 8, 2], strides: (2, 2), padding: .same)
        var moved = Tensor(shape: [3, 3, 2, 2], repeating: 0)
        moved[0, 1, 0, 0] = 1
        let expected = naiveTransposedConvolution(x, moved, outputSize: (8, 8), strides: (2, 2), padding: .same)
        let largest = zip(right.scalars, expected.values).map { abs(Double($0) - $1) }.max() ?? 0
        XCTAssertGreaterThan(largest, 0.1)
    }

    // MARK: Few output channels

    /// Convolutions to 1-4 channels (which `conv2D` and `conv2DBackward` compute by input channels
    /// under `.automatic`): forward, input, kernel and bias gradients against the Float64
    /// reference, on every ISA path, with input channels off and on multiples of 16, odd extents,
    /// valid and same padding, batch 1 and 3, a batch of several chunks, and images too large
    /// for a chunk (one image at a time).
    func testFewOutputChannelConvolutionsMatchTheReference() {
        let cases: [(batch: Int, h: Int, w: Int, cin: Int, cout: Int, kh: Int, kw: Int, padding: Padding)] = [
            (3, 28, 28, 16, 1, 3, 3, .same),
            (1, 7, 9, 8, 1, 3, 3, .valid),
            (3, 5, 6, 17, 3, 5, 2, .same),
            (1, 9, 4, 33, 4, 1, 3, .same),
            (3, 6, 7, 12, 2, 2, 2, .valid),
            (1, 3, 3, 16, 1, 5, 5, .same),
            (17, 64, 64, 8, 4, 3, 3, .same),
            (2, 180, 180, 8, 4, 3, 3, .same),
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(3_500 + 10 * index)
            let reference = ConvolutionReference(inputShape: [c.batch, c.h, c.w, c.cin], kernelShape: [c.kh, c.kw, c.cin, c.cout],
                                                 padding: ReferencePadding(c.padding))
            let x = randomTensor(reference.inputShape, seed: seed)
            let k = randomTensor(reference.kernelShape, seed: seed + 1)
            let bias = randomTensor([c.cout], seed: seed + 2)
            let dy = randomTensor(reference.outputShape, seed: seed + 3)
            let expectedY = reference.forward(x: x.scalars, k: k.scalars, bias: bias.scalars)
            let expected = reference.backward(x: x.scalars, k: k.scalars, dy: dy.scalars)
            let depth = Double(c.kh * c.kw * c.cin), positions = Double(reference.outputShape.dropLast().reduce(1, *))
            forEachISA { isa in
                let y = Tensor.conv2D(x, kernel: k, bias: bias, padding: c.padding)
                XCTAssertEqual(y.shape, reference.outputShape, "\(isa) \(reference)")
                assertClose(y.scalars, expectedY, rtol: 1e-5, atol: 1e-6 * depth.squareRoot() + 1e-6, "\(isa) forward, \(reference)")
                let grads = Tensor.conv2DBackward(input: x, kernel: k, outputGradient: dy, padding: c.padding)
                assertClose(grads.input.scalars, expected.dx, rtol: 1e-5, atol: 1e-5, "\(isa) input gradient, \(reference)")
                // Each kernel-gradient entry sums one product per output position.
                assertClose(grads.kernel.scalars, expected.dk, rtol: 1e-4, atol: 2e-6 * positions.squareRoot() + 1e-5,
                            "\(isa) kernel gradient, \(reference)")
                assertClose(grads.bias.scalars, expected.db, rtol: 1e-5, atol: 1e-4, "\(isa) bias gradient, \(reference)")
                let kernelAlone = Tensor.conv2DBackwardKernel(input: x, outputGradient: dy, kernelShape: k.shape,
                                                              padding: c.padding)
                XCTAssertEqual(kernelAlone, grads.kernel, "\(isa) \(reference)")
            }
        }
    }

    /// The kernel gradient to few channels sums in fixed blocks of images: the same bits on one
    /// thread and on all.
    func testFewOutputChannelKernelGradientIsTheSameOnAnyThreadCount() {
        let x = randomTensor([40, 12, 12, 16], seed: 91), k = randomTensor([3, 3, 16, 1], seed: 92)
        let dy = randomTensor([40, 12, 12, 1], seed: 93)
        let one = ThreadPool.withWidthLimit(1) { Tensor.conv2DBackward(input: x, kernel: k, outputGradient: dy, padding: .same) }
        let all = Tensor.conv2DBackward(input: x, kernel: k, outputGradient: dy, padding: .same)
        XCTAssertEqual(all.kernel, one.kernel)
        XCTAssertEqual(all.input, one.input)
        let forwardOne = ThreadPool.withWidthLimit(1) { Tensor.conv2D(x, kernel: k, padding: .same) }
        XCTAssertEqual(Tensor.conv2D(x, kernel: k, padding: .same), forwardOne)
    }
}
