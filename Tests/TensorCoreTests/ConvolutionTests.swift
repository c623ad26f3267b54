import TensorCore
import _NeuriteTestSupport
import XCTest

/// One convolution configuration: input [batch, h, w, cin], kernel [kh, kw, cin, cout].
private struct ConvCase: CustomStringConvertible {
    var batch: Int, h: Int, w: Int, cin: Int, cout: Int
    var kh: Int, kw: Int
    var strides = (1, 1), dilation = (1, 1)
    var padding = Padding.valid

    var inputShape: [Int] { [batch, h, w, cin] }
    var kernelShape: [Int] { [kh, kw, cin, cout] }

    var description: String {
        "input \(inputShape) kernel \(kernelShape) strides \(strides) dilation \(dilation) \(padding)"
    }

    /// The shared Float64 reference (`_NeuriteTestSupport`) for this case.
    var naive: ConvolutionReference {
        ConvolutionReference(inputShape: inputShape, kernelShape: kernelShape, strides: strides, dilation: dilation,
                             padding: ReferencePadding(padding))
    }

    /// Output extent and padding before along the rows (the columns), nil when a valid window does not fit.
    var rows: (out: Int, before: Int)? { naive.rows }
    var columns: (out: Int, before: Int)? { naive.columns }
    var outputShape: [Int] { naive.outputShape }

    /// Direct convolution in Float64.
    func reference(x: [Float], k: [Float], bias: [Float]?) -> [Double] { naive.forward(x: x, k: k, bias: bias) }

    /// Direct gradients in Float64 of `sum(conv(x, k) * dy)`.
    func referenceBackward(x: [Float], k: [Float], dy: [Float]) -> (dx: [Double], dk: [Double], db: [Double]) {
        naive.backward(x: x, k: k, dy: dy)
    }
}

final class ConvolutionTests: XCTestCase {
    // MARK: Geometry

    func testGeometryMatchesKerasOutputSizesAndPadding() {
        // (input, kernel, stride, dilation, padding, output, pad before, pad after), checked against
        // tf.keras.layers.Conv2D output shapes and TensorFlow's SAME padding rule.
        let cases: [(Int, Int, Int, Int, Padding, Int, Int, Int)] = [
            (28, 3, 1, 1, .same, 28, 1, 1),
            (28, 3, 2, 1, .same, 14, 0, 1),
            (7, 3, 2, 1, .valid, 3, 0, 0),
            (5, 2, 2, 1, .same, 3, 0, 1),
            (28, 5, 1, 1, .valid, 24, 0, 0),
            (28, 3, 1, 2, .valid, 24, 0, 0),
            (28, 3, 1, 2, .same, 28, 2, 2),
            (13, 5, 3, 1, .same, 5, 2, 2),
            (8, 2, 2, 1, .same, 4, 0, 0),
            (1, 5, 1, 1, .same, 1, 2, 2),
            (6, 4, 1, 1, .same, 6, 1, 2),
            (14, 2, 2, 1, .valid, 7, 0, 0),
            (5, 5, 3, 1, .valid, 1, 0, 0),
            (7, 1, 3, 1, .same, 3, 0, 0),
        ]
        for (input, k, s, d, padding, out, before, after) in cases {
            // Put the case on the rows, and a fixed 9-wide, 1x1-kernel axis on the columns.
            let g = Conv2DGeometry(inputHeight: input, inputWidth: 9, channels: 2, kernelHeight: k, kernelWidth: 1,
                                   strides: (s, 1), dilation: (d, 1), padding: padding)
            let label = "in \(input) k \(k) s \(s) d \(d) \(padding)"
            XCTAssertEqual(g.outputHeight, out, label)
            XCTAssertEqual(g.padTop, before, label)
            XCTAssertEqual(g.padBottom, after, label)
            XCTAssertEqual(g.outputWidth, 9, label)
            // The same case on the columns.
            let t = Conv2DGeometry(inputHeight: 9, inputWidth: input, channels: 2, kernelHeight: 1, kernelWidth: k,
                                   strides: (1, s), dilation: (1, d), padding: padding)
            XCTAssertEqual(t.outputWidth, out, label)
            XCTAssertEqual(t.padLeft, before, label)
            XCTAssertEqual(t.padRight, after, label)
            XCTAssertEqual(t.outputHeight, 9, label)
        }
        let g = Conv2DGeometry(inputHeight: 28, inputWidth: 28, channels: 3, kernelHeight: 3, kernelWidth: 2,
                               dilation: (2, 1))
        XCTAssertEqual(g.columnCount, 18)
        XCTAssertEqual(g.dilatedKernelHeight, 5)
        XCTAssertEqual(g.dilatedKernelWidth, 2)
        XCTAssertFalse(g.isPointwise)
        XCTAssertTrue(Conv2DGeometry(inputHeight: 4, inputWidth: 5, channels: 3, kernelHeight: 1, kernelWidth: 1,
                                     padding: .same).isPointwise)
        XCTAssertFalse(Conv2DGeometry(inputHeight: 4, inputWidth: 5, channels: 3, kernelHeight: 1, kernelWidth: 1,
                                      strides: (2, 1)).isPointwise)
    }

    // MARK: im2col and col2im

    func testIm2colSmallKnownCase() {
        let x = Tensor(shape: [1, 3, 3, 1], scalars: (1...9).map(Float.init))
        let valid = Conv2DGeometry(inputHeight: 3, inputWidth: 3, channels: 1, kernelHeight: 2, kernelWidth: 2)
        let columns = Tensor.im2col(x, geometry: valid)
        XCTAssertEqual(columns.shape, [4, 4])
        XCTAssertEqual(columns.scalars, [1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9])

        // same 2x2 on 3x3: one padding row at the bottom and one column at the right.
        let same = Conv2DGeometry(inputHeight: 3, inputWidth: 3, channels: 1, kernelHeight: 2, kernelWidth: 2,
                                  padding: .same)
        let padded = Tensor.im2col(x, geometry: same)
        XCTAssertEqual(padded.shape, [9, 4])
        XCTAssertEqual(Array(padded.scalars[(2 * 4)..<(3 * 4)]), [3, 0, 6, 0])  // position (0, 2)
        XCTAssertEqual(Array(padded.scalars[(8 * 4)..<(9 * 4)]), [9, 0, 0, 0])  // position (2, 2)

        // Two channels, dilation 2 in width: taps (kh, kw, c) in that order.
        let y = Tensor(shape: [1, 2, 3, 2], scalars: (0..<12).map(Float.init))
        let dilated = Conv2DGeometry(inputHeight: 2, inputWidth: 3, channels: 2, kernelHeight: 2, kernelWidth: 2,
                                     dilation: (1, 2))
        XCTAssertEqual(Tensor.im2col(y, geometry: dilated).scalars, [0, 1, 4, 5, 6, 7, 10, 11])
    }

    func testCol2imIsTheAdjointOfIm2col() {
        let geometries = [
            Conv2DGeometry(inputHeight: 7, inputWidth: 5, channels: 3, kernelHeight: 3, kernelWidth: 3, padding: .same),
            Conv2DGeometry(inputHeight: 8, inputWidth: 13, channels: 2, kernelHeight: 2, kernelWidth: 3,
                           strides: (2, 3), padding: .same),
            Conv2DGeometry(inputHeight: 13, inputWidth: 8, channels: 1, kernelHeight: 5, kernelWidth: 5,
                           strides: (3, 2), padding: .valid),
            Conv2DGeometry(inputHeight: 7, inputWidth: 7, channels: 4, kernelHeight: 3, kernelWidth: 2,
                           strides: (1, 2), dilation: (2, 2), padding: .same),
            Conv2DGeometry(inputHeight: 5, inputWidth: 5, channels: 3, kernelHeight: 1, kernelWidth: 1),  // pointwise
            Conv2DGeometry(inputHeight: 1, inputWidth: 5, channels: 17, kernelHeight: 5, kernelWidth: 5, padding: .same),
        ]
        for (index, g) in geometries.enumerated() {
            let batch = 3
            let seed = UInt64(100 + 2 * index)
            let x = Tensor(shape: [batch, g.inputHeight, g.inputWidth, g.channels],
                           scalars: randomScalars(batch * g.inputHeight * g.inputWidth * g.channels, seed: seed))
            let rows = batch * g.outputHeight * g.outputWidth
            let y = Tensor(shape: [rows, g.columnCount], scalars: randomScalars(rows * g.columnCount, seed: seed + 1))
            let left = weightedSum(Tensor.im2col(x, geometry: g), y)
            let right = weightedSum(Tensor.col2im(y, geometry: g, batch: batch), x)
            XCTAssertEqual(left, right, accuracy: 1e-5 * Double(rows * g.columnCount).squareRoot(), "geometry \(index): \(g)")
            XCTAssertNotEqual(left, 0, "geometry \(index)")
        }
    }

    // MARK: Forward

    private func checkForward(_ c: ConvCase, bias: Bool, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let x = randomScalars(c.inputShape.reduce(1, *), seed: seed)
        let k = randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1)
        let b = bias ? randomScalars(c.cout, seed: seed + 2) : nil
        let y = Tensor.conv2D(Tensor(shape: c.inputShape, scalars: x), kernel: Tensor(shape: c.kernelShape, scalars: k),
                              bias: b.map { Tensor($0) }, strides: c.strides, padding: c.padding, dilation: c.dilation)
        XCTAssertEqual(y.shape, c.outputShape, "\(c)", file: file, line: line)
        let depth = Double(c.kh * c.kw * c.cin)
        assertClose(y.scalars, c.reference(x: x, k: k, bias: b), rtol: 1e-5, atol: 1e-6 * depth.squareRoot() + 1e-6,
                    "\(c)", file: file, line: line)
    }

    func testConv2DMatchesDirectConvolutionOnAwkwardShapes() {
        forEachAlgorithm {
            let extents = [(1, 1), (5, 7), (8, 13), (13, 8), (7, 7), (5, 5)]
            let kernels = [(1, 1), (3, 3), (2, 3), (5, 5)]
            let strides = [(1, 1), (2, 2), (3, 1), (1, 2), (3, 3)]
            let dilations = [(1, 1), (2, 2), (1, 1), (1, 2)]
            let channels = [1, 3, 17]
            var counter = 0, run = 0, skipped = 0
            for (h, w) in extents {
                for (kh, kw) in kernels {
                    for padding in [Padding.valid, .same] {
                        counter += 1
                        var c = ConvCase(batch: counter % 2 == 0 ? 1 : 3, h: h, w: w, cin: channels[counter % 3],
                                         cout: 1 + counter % 5, kh: kh, kw: kw)
                        c.strides = strides[counter % strides.count]
                        c.dilation = dilations[(counter / 2) % dilations.count]
                        c.padding = padding
                        guard c.rows != nil, c.columns != nil else { skipped += 1; continue }  // kernel larger than input
                        checkForward(c, bias: counter % 3 != 0, seed: UInt64(counter) * 10)
                        run += 1
                    }
                }
            }
            XCTAssertGreaterThan(run, 30)
            XCTAssertGreaterThan(skipped, 0)
            // Pointwise (the reshape fast path) and its strided neighbour, with and without bias.
            checkForward(ConvCase(batch: 3, h: 8, w: 13, cin: 17, cout: 5, kh: 1, kw: 1), bias: true, seed: 900)
            checkForward(ConvCase(batch: 1, h: 5, w: 7, cin: 3, cout: 4, kh: 1, kw: 1, padding: .same), bias: false, seed: 910)
            checkForward(ConvCase(batch: 3, h: 13, w: 7, cin: 3, cout: 4, kh: 1, kw: 1, strides: (2, 3), padding: .same),
                         bias: true, seed: 920)
            // Dilation 2 with same padding and stride 2 on odd sizes.
            checkForward(ConvCase(batch: 3, h: 13, w: 7, cin: 3, cout: 2, kh: 3, kw: 3, strides: (2, 2), dilation: (2, 2),
                                  padding: .same), bias: true, seed: 930)
            // A kernel exactly the size of the input in valid mode: one output position.
            checkForward(ConvCase(batch: 3, h: 5, w: 5, cin: 17, cout: 3, kh: 5, kw: 5), bias: true, seed: 940)
        }
    }

    /// Batches whose columns exceed conv2D's 8 MiB column budget, so they are processed in several
    /// chunks: of whole images ([40, 13, 13, 17] with 5x5 same: 29 images of 71,825 floats fit), and
    /// of output rows within an image ([2, 60, 60, 32] with 5x5 same: 2.9 M floats per image; chunks of
    /// 40 rows, the second of which straddles both images). Backward is checked against the direct
    /// gradients too, since the kernel gradient is accumulated across chunks.
    func testConv2DForwardAndBackwardOverSeveralChunks() {
        forEachAlgorithm {
            let cases = [
                ConvCase(batch: 40, h: 13, w: 13, cin: 17, cout: 3, kh: 5, kw: 5, padding: .same),
                ConvCase(batch: 2, h: 60, w: 60, cin: 32, cout: 2, kh: 5, kw: 5, padding: .same),
            ]
            for (index, c) in cases.enumerated() {
                let seed = UInt64(500 + 10 * index)
                let x = randomScalars(c.inputShape.reduce(1, *), seed: seed)
                let k = randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1)
                let b = randomScalars(c.cout, seed: seed + 2)
                let input = Tensor(shape: c.inputShape, scalars: x), kernel = Tensor(shape: c.kernelShape, scalars: k)
                let y = Tensor.conv2D(input, kernel: kernel, bias: Tensor(b), strides: c.strides, padding: c.padding)
                XCTAssertEqual(y.shape, c.outputShape)
                assertClose(y.scalars, c.reference(x: x, k: k, bias: b), rtol: 1e-5, atol: 1e-4, "\(c)")

                let dy = randomScalars(c.outputShape.reduce(1, *), seed: seed + 3)
                let grads = Tensor.conv2DBackward(input: input, kernel: kernel,
                                                  outputGradient: Tensor(shape: c.outputShape, scalars: dy),
                                                  strides: c.strides, padding: c.padding)
                let expected = c.referenceBackward(x: x, k: k, dy: dy)
                assertClose(grads.input.scalars, expected.dx, rtol: 1e-5, atol: 1e-4, "input gradient, \(c)")
                // Kernel and bias gradients sum over every position of the batch (tens of thousands of terms).
                assertClose(grads.kernel.scalars, expected.dk, rtol: 1e-4, atol: 2e-3, "kernel gradient, \(c)")
                assertClose(grads.bias.scalars, expected.db, rtol: 1e-4, atol: 2e-3, "bias gradient, \(c)")
            }
        }
    }

    /// A pointwise convolution with a 262,144-element output: large enough that the bias gradient
    /// is summed in several parallel pieces, and the kernel gradient is one long `X^T dY` product.
    func testConv2DBackwardOfALargePointwiseOutput() {
        let c = ConvCase(batch: 4, h: 64, w: 64, cin: 8, cout: 16, kh: 1, kw: 1)
        let x = randomScalars(c.inputShape.reduce(1, *), seed: 1)
        let k = randomScalars(c.kernelShape.reduce(1, *), seed: 2)
        let dy = randomScalars(c.outputShape.reduce(1, *), seed: 3).map { $0 + 0.25 }  // biased, so sums are large
        let grads = Tensor.conv2DBackward(input: Tensor(shape: c.inputShape, scalars: x),
                                          kernel: Tensor(shape: c.kernelShape, scalars: k),
                                          outputGradient: Tensor(shape: c.outputShape, scalars: dy))
        let expected = c.referenceBackward(x: x, k: k, dy: dy)
        assertClose(grads.input.scalars, expected.dx, rtol: 1e-5, atol: 1e-5, "input gradient")
        assertClose(grads.kernel.scalars, expected.dk, rtol: 1e-4, atol: 2e-3, "kernel gradient")
        assertClose(grads.bias.scalars, expected.db, rtol: 1e-5, atol: 1e-3, "bias gradient")
    }

    func testConv2DOfAnEmptyBatch() {
        let input = Tensor.zeros([0, 7, 5, 3]), kernel = Tensor.ones([3, 3, 3, 4])
        let y = Tensor.conv2D(input, kernel: kernel, bias: Tensor.ones([4]), strides: (2, 2), padding: .same)
        XCTAssertEqual(y.shape, [0, 4, 3, 4])
        let grads = Tensor.conv2DBackward(input: input, kernel: kernel, outputGradient: y, strides: (2, 2), padding: .same)
        XCTAssertEqual(grads.input.shape, [0, 7, 5, 3])
        XCTAssertEqual(grads.kernel, Tensor.zeros([3, 3, 3, 4]))
        XCTAssertEqual(grads.bias, Tensor.zeros([4]))
    }

    // MARK: Backward

    private func checkBackward(_ c: ConvCase, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let x = Tensor(shape: c.inputShape, scalars: randomScalars(c.inputShape.reduce(1, *), seed: seed))
        let k = Tensor(shape: c.kernelShape, scalars: randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1))
        let b = Tensor(randomScalars(c.cout, seed: seed + 2))
        let weights = Tensor(shape: c.outputShape, scalars: randomScalars(c.outputShape.reduce(1, *), seed: seed + 3))
        func loss(_ x: Tensor, _ k: Tensor, _ b: Tensor) -> Double {
            weightedSum(Tensor.conv2D(x, kernel: k, bias: b, strides: c.strides, padding: c.padding,
                                      dilation: c.dilation), weights)
        }
        let grads = Tensor.conv2DBackward(input: x, kernel: k, outputGradient: weights, strides: c.strides,
                                          padding: c.padding, dilation: c.dilation)
        XCTAssertEqual(grads.bias.shape, [c.cout], file: file, line: line)
        checkGradient(of: { loss($0, k, b) }, at: x, analytic: grads.input, "input gradient, \(c)", file: file, line: line)
        checkGradient(of: { loss(x, $0, b) }, at: k, analytic: grads.kernel, "kernel gradient, \(c)", file: file, line: line)
        checkGradient(of: { loss(x, k, $0) }, at: b, analytic: grads.bias, "bias gradient, \(c)", file: file, line: line)
    }

    func testConv2DBackwardMatchesFiniteDifferences() {
        forEachAlgorithm {
            checkBackward(ConvCase(batch: 2, h: 5, w: 5, cin: 3, cout: 2, kh: 3, kw: 3, strides: (2, 1), padding: .same),
                          seed: 1)
            checkBackward(ConvCase(batch: 1, h: 7, w: 6, cin: 2, cout: 3, kh: 2, kw: 3, dilation: (2, 2)), seed: 2)
            checkBackward(ConvCase(batch: 2, h: 5, w: 4, cin: 3, cout: 2, kh: 1, kw: 1, padding: .same), seed: 3)  // pointwise
            checkBackward(ConvCase(batch: 1, h: 8, w: 7, cin: 1, cout: 2, kh: 5, kw: 5, strides: (3, 2), dilation: (1, 2),
                                   padding: .same), seed: 4)
        }
    }

    func testConv2DBackwardMatchesDirectGradientsOnAwkwardShapes() {
        forEachAlgorithm {
            let cases = [
                ConvCase(batch: 3, h: 13, w: 8, cin: 17, cout: 4, kh: 2, kw: 3, strides: (3, 2), padding: .same),
                ConvCase(batch: 1, h: 1, w: 7, cin: 3, cout: 5, kh: 5, kw: 5, padding: .same),
                ConvCase(batch: 3, h: 7, w: 7, cin: 3, cout: 2, kh: 3, kw: 3, strides: (2, 2), dilation: (2, 2), padding: .same),
                ConvCase(batch: 3, h: 8, w: 8, cin: 1, cout: 3, kh: 3, kw: 3, strides: (2, 2)),
                ConvCase(batch: 1, h: 13, w: 13, cin: 3, cout: 2, kh: 5, kw: 5, strides: (3, 3), dilation: (2, 1)),
            ]
            for (index, c) in cases.enumerated() {
                let seed = UInt64(700 + 10 * index)
                let x = randomScalars(c.inputShape.reduce(1, *), seed: seed)
                let k = randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1)
                let dy = randomScalars(c.outputShape.reduce(1, *), seed: seed + 2)
                let grads = Tensor.conv2DBackward(input: Tensor(shape: c.inputShape, scalars: x),
                                                  kernel: Tensor(shape: c.kernelShape, scalars: k),
                                                  outputGradient: Tensor(shape: c.outputShape, scalars: dy),
                                                  strides: c.strides, padding: c.padding, dilation: c.dilation)
                let expected = c.referenceBackward(x: x, k: k, dy: dy)
                assertClose(grads.input.scalars, expected.dx, rtol: 1e-5, atol: 1e-5, "input gradient, \(c)")
                assertClose(grads.kernel.scalars, expected.dk, rtol: 1e-5, atol: 1e-5, "kernel gradient, \(c)")
                assertClose(grads.bias.scalars, expected.db, rtol: 1e-5, atol: 1e-5, "bias gradient, \(c)")
            }
        }
    }

    // MARK: Algorithms

    /// Runs `body` with each ``ConvolutionAlgorithm`` in force, and the direct kernels on every ISA
    /// path the CPU has.
    private func forEachAlgorithm(_ body: () -> Void) {
        ConvolutionAlgorithm.with(.automatic, body)
        ConvolutionAlgorithm.with(.im2col, body)
        forEachISA { isa in ConvolutionAlgorithm.with(.direct, body) }
    }

    /// The layer shapes of the demo CNNs, and channel counts that exercise every vector grouping of
    /// the direct kernels (1 to 4 vectors of 16 output channels, a partial last vector, a
    /// 64-channel pass followed by a narrower one, tap counts that pad the tap blocks), forward and
    /// backward, on every path, against the Float64 references.
    func testDirectKernelsOnNetworkShapesAndEveryChannelGrouping() {
        let cases = [
            ConvCase(batch: 3, h: 28, w: 28, cin: 1, cout: 16, kh: 5, kw: 5),
            ConvCase(batch: 2, h: 12, w: 12, cin: 16, cout: 8, kh: 2, kw: 2),
            ConvCase(batch: 2, h: 13, w: 13, cin: 32, cout: 64, kh: 3, kw: 3),
            ConvCase(batch: 2, h: 9, w: 7, cin: 9, cout: 80, kh: 3, kw: 3, padding: .same),
            ConvCase(batch: 3, h: 6, w: 11, cin: 8, cout: 33, kh: 2, kw: 3, padding: .same),
            ConvCase(batch: 1, h: 10, w: 10, cin: 12, cout: 47, kh: 3, kw: 3, dilation: (2, 1)),
            ConvCase(batch: 2, h: 9, w: 9, cin: 2, cout: 21, kh: 3, kw: 3, strides: (2, 2), padding: .same),
            // One vector of 9 to 16 output channels from several input channels (the strided row
            // blocks): rows of 14 (two blocks of 7), 20 (16, then a moved-back 7) and 5 (pixel by
            // pixel), pixel strides 8, 16 (stride 2) and others; their input gradients too.
            ConvCase(batch: 2, h: 14, w: 14, cin: 8, cout: 16, kh: 3, kw: 3, padding: .same),
            ConvCase(batch: 1, h: 7, w: 22, cin: 3, cout: 9, kh: 2, kw: 3),
            ConvCase(batch: 2, h: 9, w: 11, cin: 8, cout: 13, kh: 3, kw: 2, strides: (1, 2)),
            ConvCase(batch: 3, h: 6, w: 5, cin: 16, cout: 16, kh: 2, kw: 2, padding: .same),
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(1_000 + 10 * index)
            let x = randomScalars(c.inputShape.reduce(1, *), seed: seed)
            let k = randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1)
            let b = randomScalars(c.cout, seed: seed + 2)
            let dy = randomScalars(c.outputShape.reduce(1, *), seed: seed + 3)
            let input = Tensor(shape: c.inputShape, scalars: x), kernel = Tensor(shape: c.kernelShape, scalars: k)
            let expectedY = c.reference(x: x, k: k, bias: b)
            let expected = c.referenceBackward(x: x, k: k, dy: dy)
            let depth = Double(c.kh * c.kw * c.cin)
            forEachAlgorithm {
                let y = Tensor.conv2D(input, kernel: kernel, bias: Tensor(b), strides: c.strides, padding: c.padding,
                                      dilation: c.dilation)
                XCTAssertEqual(y.shape, c.outputShape, "\(c)")
                assertClose(y.scalars, expectedY, rtol: 1e-5, atol: 1e-6 * depth.squareRoot() + 1e-6,
                            "\(ConvolutionAlgorithm.current) \(KernelISA.current) forward, \(c)")
                let grads = Tensor.conv2DBackward(input: input, kernel: kernel,
                                                  outputGradient: Tensor(shape: c.outputShape, scalars: dy),
                                                  strides: c.strides, padding: c.padding, dilation: c.dilation)
                // Each input gradient sums up to KH * KW * Cout terms.
                let fanOut = Double(c.kh * c.kw * c.cout)
                assertClose(grads.input.scalars, expected.dx, rtol: 1e-5, atol: 2e-6 * fanOut.squareRoot() + 1e-5,
                            "\(ConvolutionAlgorithm.current) \(KernelISA.current) input gradient, \(c)")
                assertClose(grads.kernel.scalars, expected.dk, rtol: 1e-4, atol: 1e-4,
                            "\(ConvolutionAlgorithm.current) \(KernelISA.current) kernel gradient, \(c)")
                assertClose(grads.bias.scalars, expected.db, rtol: 1e-5, atol: 1e-4, "bias gradient, \(c)")
                // Without the input gradient: nil, and the same parameter gradients.
                let partial = Tensor.conv2DBackward(input: input, kernel: kernel,
                                                    outputGradient: Tensor(shape: c.outputShape, scalars: dy),
                                                    strides: c.strides, padding: c.padding, dilation: c.dilation,
                                                    needsInputGradient: false)
                XCTAssertNil(partial.input, "\(c)")
                XCTAssertEqual(partial.kernel, grads.kernel, "\(c)")
                XCTAssertEqual(partial.bias, grads.bias, "\(c)")
            }
        }
    }

    /// A convolution layer's forward (`conv2D(_:kernel:biasAfterwards:relu:...)`: the bias and
    /// relu in the direct kernels' store) gives the same bits as the convolution followed by the
    /// layer's old bias-and-activation pass, and matches the Float64 reference. Shapes: one input
    /// channel with column stride 1 (the row blocks: rows of 1 to 26 pixels, so whole blocks of
    /// 16, 8 and 6, a moved-back last block, and rows narrower than a block), 3 channels, output
    /// channels that are not a multiple of 8 or 16, batch 1 and 3, a strided and a padded case.
    func testFusedBiasAndReluMatchAPassAfterTheConvolution() {
        let cases = [
            ConvCase(batch: 3, h: 28, w: 28, cin: 1, cout: 16, kh: 5, kw: 5),
            ConvCase(batch: 1, h: 9, w: 30, cin: 1, cout: 16, kh: 5, kw: 5),
            ConvCase(batch: 3, h: 7, w: 5, cin: 1, cout: 16, kh: 3, kw: 3),
            ConvCase(batch: 1, h: 6, w: 17, cin: 1, cout: 7, kh: 2, kw: 4),
            ConvCase(batch: 3, h: 8, w: 13, cin: 1, cout: 33, kh: 3, kw: 3, padding: .same),
            ConvCase(batch: 1, h: 9, w: 10, cin: 3, cout: 17, kh: 3, kw: 3),
            ConvCase(batch: 3, h: 12, w: 12, cin: 16, cout: 8, kh: 2, kw: 2),
            ConvCase(batch: 1, h: 9, w: 12, cin: 1, cout: 5, kh: 3, kw: 3, strides: (2, 2)),
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(1_500 + 10 * index)
            let x = randomScalars(c.inputShape.reduce(1, *), seed: seed)
            let k = randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1)
            let b = randomScalars(c.cout, seed: seed + 2)
            let input = Tensor(shape: c.inputShape, scalars: x), kernel = Tensor(shape: c.kernelShape, scalars: k)
            let bias = Tensor(b)
            let reference = c.reference(x: x, k: k, bias: b)
            let depth = Double(c.kh * c.kw * c.cin)
            forEachAlgorithm {
                let what = "\(ConvolutionAlgorithm.current) \(KernelISA.current), \(c)"
                let plain = Tensor.conv2D(input, kernel: kernel, strides: c.strides, padding: c.padding, dilation: c.dilation)
                var expected = plain
                expected.addBias(bias, activation: .relu)
                let fused = Tensor.conv2D(input, kernel: kernel, biasAfterwards: bias, relu: true, strides: c.strides,
                                          padding: c.padding, dilation: c.dilation)
                XCTAssertEqual(fused.shape, c.outputShape, what)
                XCTAssertEqual(fused.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "bias + relu, \(what)")
                XCTAssertGreaterThan(fused.scalars.filter { $0 == 0 }.count, 0, "relu zeroed nothing, \(what)")
                assertClose(fused.scalars, reference.map { Swift.max(0, $0) }, rtol: 1e-5,
                            atol: 1e-6 * depth.squareRoot() + 1e-6, "against the reference, \(what)")
                var linear = plain
                linear.addBias(bias)
                XCTAssertEqual(Tensor.conv2D(input, kernel: kernel, biasAfterwards: bias, relu: false, strides: c.strides,
                                             padding: c.padding, dilation: c.dilation), linear, "bias alone, \(what)")
                XCTAssertEqual(Tensor.conv2D(input, kernel: kernel, biasAfterwards: nil, relu: true, strides: c.strides,
                                             padding: c.padding, dilation: c.dilation), plain.relu(), "relu alone, \(what)")
            }
        }
    }

    /// Convolutions to 1, 2, 4 or 8 output channels (8 with a stride) from a multiple of 8 input
    /// channels run over the input channels (`ck_conv2d_forward_channels`: 16 lanes where `Cin`
    /// is a multiple of 16 on the wide paths, else 8). Against the Float64 reference on every
    /// path: rows narrower than a block (lone pixels), whole blocks with a moved-back last one,
    /// strides, dilation, both paddings; the fused bias and relu give the bits of a pass after the
    /// convolution. The conv autoencoder's shapes are among them.
    func testConvolutionOverInputChannelsOnAwkwardShapes() {
        var cases = [
            ConvCase(batch: 3, h: 28, w: 28, cin: 16, cout: 1, kh: 3, kw: 3, padding: .same),
            ConvCase(batch: 2, h: 28, w: 28, cin: 16, cout: 8, kh: 3, kw: 3, strides: (2, 2), padding: .same),
            ConvCase(batch: 2, h: 14, w: 14, cin: 8, cout: 8, kh: 3, kw: 3, strides: (2, 2), padding: .same),
        ]
        let extents = [(5, 3), (9, 17), (7, 21), (6, 16), (11, 33), (1, 40)]
        let kernels = [(3, 3), (2, 3), (5, 5), (3, 1)]
        var counter = 0
        for cin in [8, 16, 24, 48] {
            for cout in [1, 2, 4, 8] {
                counter += 1
                let (h, w) = extents[counter % extents.count], (kh, kw) = kernels[counter % kernels.count]
                var c = ConvCase(batch: 1 + counter % 3, h: h, w: w, cin: cin, cout: cout, kh: kh, kw: kw)
                c.strides = cout == 8 ? [(2, 2), (2, 1), (1, 3)][counter % 3] : [(1, 1), (2, 2), (1, 2)][counter % 3]
                c.padding = counter % 2 == 0 || kh > h ? .same : .valid
                c.dilation = counter % 5 == 0 ? (2, 1) : (1, 1)
                cases.append(c)
            }
        }
        for (index, c) in cases.enumerated() {
            let seed = UInt64(3_000 + 10 * index)
            let x = randomScalars(c.inputShape.reduce(1, *), seed: seed)
            let k = randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1)
            let b = randomScalars(c.cout, seed: seed + 2)
            let input = Tensor(shape: c.inputShape, scalars: x), kernel = Tensor(shape: c.kernelShape, scalars: k)
            let bias = Tensor(b)
            let withBias = c.reference(x: x, k: k, bias: b), plainReference = c.reference(x: x, k: k, bias: nil)
            let depth = Double(c.kh * c.kw * c.cin)
            let atol = 1e-6 * depth.squareRoot() + 1e-6
            forEachAlgorithm {
                let what = "\(ConvolutionAlgorithm.current) \(KernelISA.current), \(c)"
                let y = Tensor.conv2D(input, kernel: kernel, bias: bias, strides: c.strides, padding: c.padding,
                                      dilation: c.dilation)
                XCTAssertEqual(y.shape, c.outputShape, what)
                assertClose(y.scalars, withBias, rtol: 1e-5, atol: atol, "with bias, \(what)")
                let plain = Tensor.conv2D(input, kernel: kernel, strides: c.strides, padding: c.padding, dilation: c.dilation)
                assertClose(plain.scalars, plainReference, rtol: 1e-5, atol: atol, "without bias, \(what)")
                var expected = plain
                expected.addBias(bias, activation: .relu)
                let fused = Tensor.conv2D(input, kernel: kernel, biasAfterwards: bias, relu: true, strides: c.strides,
                                          padding: c.padding, dilation: c.dilation)
                XCTAssertEqual(fused.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "bias + relu, \(what)")
                XCTAssertGreaterThan(fused.scalars.filter { $0 == 0 }.count, 0, "relu zeroed nothing, \(what)")
            }
        }
    }

    /// A relu convolution layer's backward (`conv2DBackward(...reluOutput:...)`: relu's mask
    /// applied in the pass that sums the bias gradient) gives the bits of `reluBackward` followed
    /// by `conv2DBackward`, and the Float64 reference gradients of the masked output gradient.
    /// Batch 17 of 28x28 makes the bias sums run in two pieces over two threads.
    func testReluBackwardFusedWithTheBiasGradientKeepsTheBits() {
        let cases = [
            ConvCase(batch: 17, h: 28, w: 28, cin: 1, cout: 16, kh: 5, kw: 5),
            ConvCase(batch: 3, h: 12, w: 12, cin: 16, cout: 8, kh: 2, kw: 2),
            ConvCase(batch: 1, h: 7, w: 9, cin: 3, cout: 5, kh: 3, kw: 2, padding: .same),
            ConvCase(batch: 3, h: 9, w: 8, cin: 2, cout: 17, kh: 3, kw: 3, strides: (2, 1)),
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(1_700 + 10 * index)
            let x = randomScalars(c.inputShape.reduce(1, *), seed: seed)
            let k = randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1)
            let dy = randomScalars(c.outputShape.reduce(1, *), seed: seed + 2)
            // A relu output: about half zeros.
            let y = randomScalars(c.outputShape.reduce(1, *), seed: seed + 3).map { Swift.max(0, $0) }
            let input = Tensor(shape: c.inputShape, scalars: x), kernel = Tensor(shape: c.kernelShape, scalars: k)
            let gradient = Tensor(shape: c.outputShape, scalars: dy), output = Tensor(shape: c.outputShape, scalars: y)
            let maskedScalars = zip(dy, y).map { $1 > 0 ? $0 : 0 }
            let expected = c.referenceBackward(x: x, k: k, dy: maskedScalars)
            forEachAlgorithm {
                let what = "\(ConvolutionAlgorithm.current) \(KernelISA.current), \(c)"
                let fused = Tensor.conv2DBackward(input: input, kernel: kernel, outputGradient: gradient, reluOutput: output,
                                                  strides: c.strides, padding: c.padding, dilation: c.dilation,
                                                  needsInputGradient: true)
                let plain = Tensor.conv2DBackward(input: input, kernel: kernel,
                                                  outputGradient: Tensor.reluBackward(gradient: gradient, input: output),
                                                  strides: c.strides, padding: c.padding, dilation: c.dilation)
                XCTAssertEqual(fused.input?.scalars.map(\.bitPattern), plain.input.scalars.map(\.bitPattern), what)
                XCTAssertEqual(fused.kernel.scalars.map(\.bitPattern), plain.kernel.scalars.map(\.bitPattern), what)
                XCTAssertEqual(fused.bias.scalars.map(\.bitPattern), plain.bias.scalars.map(\.bitPattern), what)
                assertClose(fused.bias.scalars, expected.db, rtol: 1e-5, atol: 1e-4, "bias gradient, \(what)")
                assertClose(fused.kernel.scalars, expected.dk, rtol: 1e-4, atol: 1e-4, "kernel gradient, \(what)")
                let fanOut = Double(c.kh * c.kw * c.cout)
                assertClose(fused.input?.scalars ?? [], expected.dx, rtol: 1e-5, atol: 2e-6 * fanOut.squareRoot() + 1e-5,
                            "input gradient, \(what)")
                let first = Tensor.conv2DBackward(input: input, kernel: kernel, outputGradient: gradient, reluOutput: output,
                                                  strides: c.strides, padding: c.padding, dilation: c.dilation,
                                                  needsInputGradient: false)
                XCTAssertNil(first.input, what)
                XCTAssertEqual(first.kernel, fused.kernel, what)
            }
        }
    }

    /// The kernel gradient sums over the batch in fixed blocks of images: the same bits on one
    /// thread and on all, and from one run to the next.
    func testDirectKernelGradientIsTheSameOnAnyThreadCount() {
        let c = ConvCase(batch: 70, h: 12, w: 12, cin: 16, cout: 32, kh: 3, kw: 3)
        let x = Tensor(shape: c.inputShape, scalars: randomScalars(c.inputShape.reduce(1, *), seed: 77))
        let k = Tensor(shape: c.kernelShape, scalars: randomScalars(c.kernelShape.reduce(1, *), seed: 78))
        let dy = Tensor(shape: c.outputShape, scalars: randomScalars(c.outputShape.reduce(1, *), seed: 79))
        ConvolutionAlgorithm.with(.direct) {
            let one = ThreadPool.withWidthLimit(1) { Tensor.conv2DBackward(input: x, kernel: k, outputGradient: dy) }
            for _ in 0..<3 {
                let all = Tensor.conv2DBackward(input: x, kernel: k, outputGradient: dy)
                XCTAssertEqual(all.kernel, one.kernel)
                XCTAssertEqual(all.input, one.input)
                XCTAssertEqual(all.bias, one.bias)
            }
        }
    }

    /// The two halves of the backward pass on their own (TensorFlow's conv2d_backprop_input and
    /// conv2d_backprop_filter) give what the whole backward pass gives, against the references.
    func testBackwardInputAndKernelAloneMatchTheReferences() {
        let cases = [
            ConvCase(batch: 2, h: 9, w: 7, cin: 9, cout: 20, kh: 3, kw: 3, padding: .same),
            ConvCase(batch: 3, h: 8, w: 11, cin: 3, cout: 5, kh: 3, kw: 2, strides: (2, 2), padding: .same),
            ConvCase(batch: 1, h: 10, w: 10, cin: 4, cout: 6, kh: 4, kw: 4, strides: (3, 2)),
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(1_200 + 10 * index)
            let x = randomScalars(c.inputShape.reduce(1, *), seed: seed)
            let k = randomScalars(c.kernelShape.reduce(1, *), seed: seed + 1)
            let dy = randomScalars(c.outputShape.reduce(1, *), seed: seed + 2)
            let expected = c.referenceBackward(x: x, k: k, dy: dy)
            forEachAlgorithm {
                let dx = Tensor.conv2DBackwardInput(outputGradient: Tensor(shape: c.outputShape, scalars: dy),
                                                    kernel: Tensor(shape: c.kernelShape, scalars: k), inputShape: c.inputShape,
                                                    strides: c.strides, padding: c.padding, dilation: c.dilation)
                let dk = Tensor.conv2DBackwardKernel(input: Tensor(shape: c.inputShape, scalars: x),
                                                     outputGradient: Tensor(shape: c.outputShape, scalars: dy),
                                                     kernelShape: c.kernelShape, strides: c.strides, padding: c.padding,
                                                     dilation: c.dilation)
                XCTAssertEqual(dx.shape, c.inputShape)
                XCTAssertEqual(dk.shape, c.kernelShape)
                assertClose(dx.scalars, expected.dx, rtol: 1e-5, atol: 5e-5, "\(ConvolutionAlgorithm.current) input, \(c)")
                assertClose(dk.scalars, expected.dk, rtol: 1e-4, atol: 1e-4, "\(ConvolutionAlgorithm.current) kernel, \(c)")
            }
        }
    }
}
