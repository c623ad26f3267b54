import TensorCore
import XCTest
import _NeuriteTestSupport

/// Winograd F(4x4, 3x3) (`ConvolutionAlgorithm.winograd`, and `.automatic` for 3x3 stride-1
/// convolutions with at least 16 channels each way) against the Float64 direct convolution.
final class WinogradConvolutionTests: XCTestCase {
    /// A stride-1 3x3 case: batch, input size, channels, padding.
    private struct Case: CustomStringConvertible {
        var batch: Int, h: Int, w: Int, cin: Int, cout: Int
        var padding = Padding.valid

        var reference: ConvolutionReference {
            ConvolutionReference(inputShape: [batch, h, w, cin], kernelShape: [3, 3, cin, cout],
                                 padding: ReferencePadding(padding))
        }
        var description: String { "input [\(batch), \(h), \(w), \(cin)] kernel [3, 3, \(cin), \(cout)] \(padding)" }
    }

    /// Awkward shapes: outputs of 1 to 13 pixels a side (whole 4x4 tiles, and remainders of 1, 2
    /// and 3 rows or columns), 1, 16, 17, 33 and 64 channels (whole and partial 16-lane vectors),
    /// batch 1 and 3, valid and same padding (tiles that read outside the image on every side).
    private let cases = [
        Case(batch: 1, h: 3, w: 3, cin: 1, cout: 1),
        Case(batch: 3, h: 13, w: 13, cin: 32, cout: 64),
        Case(batch: 1, h: 7, w: 9, cin: 17, cout: 33),
        Case(batch: 3, h: 5, w: 6, cin: 33, cout: 17, padding: .same),
        Case(batch: 1, h: 11, w: 8, cin: 16, cout: 16, padding: .same),
        Case(batch: 3, h: 4, w: 10, cin: 1, cout: 17),
        Case(batch: 1, h: 9, w: 5, cin: 33, cout: 1, padding: .same),
    ]

    /// Float64 reference tolerance for a sum of `terms` products of values in [-1, 1]: the
    /// transforms' constants (up to 100 on the input side) cost about an order of magnitude of
    /// Float32 rounding over a direct sum, which this allows and no more.
    private func tolerance(terms: Int) -> Double { 2e-5 * Double(terms).squareRoot() + 1e-6 }

    /// Forward (with a bias, and with the layer's bias-and-relu epilogue), input gradient and
    /// kernel gradient on every ISA path, against the Float64 direct convolution.
    func testWinogradMatchesTheFloat64ReferenceOnAwkwardShapesOnEveryPath() {
        for (index, c) in cases.enumerated() {
            let seed = UInt64(7_000 + 10 * index)
            let r = c.reference
            let x = randomScalars(r.inputShape.reduce(1, *), seed: seed)
            let k = randomScalars(r.kernelShape.reduce(1, *), seed: seed + 1)
            let b = randomScalars(c.cout, seed: seed + 2)
            let dy = randomScalars(r.outputShape.reduce(1, *), seed: seed + 3)
            let input = Tensor(shape: r.inputShape, scalars: x), kernel = Tensor(shape: r.kernelShape, scalars: k)
            let expectedY = r.forward(x: x, k: k, bias: b)
            let expected = r.backward(x: x, k: k, dy: dy)
            let forwardTolerance = tolerance(terms: 9 * c.cin), backwardTolerance = tolerance(terms: 9 * c.cout)
            forEachISA { isa in
                ConvolutionAlgorithm.with(.winograd) {
                    let what = "\(isa), \(c)"
                    let y = Tensor.conv2D(input, kernel: kernel, bias: Tensor(b), padding: c.padding)
                    XCTAssertEqual(y.shape, r.outputShape, what)
                    assertClose(y.scalars, expectedY, rtol: 1e-5, atol: forwardTolerance, "forward, \(what)")
                    let fused = Tensor.conv2D(input, kernel: kernel, biasAfterwards: Tensor(b), relu: true, strides: (1, 1),
                                              padding: c.padding, dilation: (1, 1))
                    assertClose(fused.scalars, expectedY.map { Swift.max(0, $0) }, rtol: 1e-5, atol: forwardTolerance,
                                "bias and relu, \(what)")
                    let grads = Tensor.conv2DBackward(input: input, kernel: kernel,
                                                      outputGradient: Tensor(shape: r.outputShape, scalars: dy),
                                                      padding: c.padding)
                    assertClose(grads.input.scalars, expected.dx, rtol: 1e-5, atol: backwardTolerance, "input gradient, \(what)")
                    // Each kernel-gradient entry sums N * OH * OW products.
                    assertClose(grads.kernel.scalars, expected.dk, rtol: 1e-5,
                                atol: tolerance(terms: r.outputShape[0] * r.outputShape[1] * r.outputShape[2]),
                                "kernel gradient, \(what)")
                    let kernelAlone = Tensor.conv2DBackwardKernel(input: input, outputGradient: Tensor(shape: r.outputShape, scalars: dy),
                                                                  kernelShape: r.kernelShape, padding: c.padding)
                    XCTAssertEqual(kernelAlone, grads.kernel, "conv2DBackwardKernel, \(what)")
                    assertClose(grads.bias.scalars, expected.db, rtol: 1e-5, atol: 1e-4, "bias gradient, \(what)")
                    let alone = Tensor.conv2DBackwardInput(outputGradient: Tensor(shape: r.outputShape, scalars: dy),
                                                           kernel: kernel, inputShape: r.inputShape, padding: c.padding)
                    XCTAssertEqual(alone, grads.input, "conv2DBackwardInput, \(what)")
                }
            }
        }
    }

    /// Chunks of tiles and the kernel gradient's blocks of partial sums do not depend on the
    /// thread count: one thread and the whole pool give the same bits.
    func testTheSameBitsOnAnyNumberOfThreads() {
        let input = randomTensor([16, 13, 13, 32], seed: 7_600), kernel = randomTensor([3, 3, 32, 64], seed: 7_601)
        let dy = randomTensor([16, 11, 11, 64], seed: 7_602)
        let run = {
            ConvolutionAlgorithm.with(.winograd) {
                (Tensor.conv2D(input, kernel: kernel),
                 Tensor.conv2DBackward(input: input, kernel: kernel, outputGradient: dy))
            }
        }
        let (y1, g1) = ThreadPool.withWidthLimit(1) { run() }
        let (y, g) = run()
        XCTAssertEqual(y1, y, "forward")
        XCTAssertEqual(g1.input, g.input, "input gradient")
        XCTAssertEqual(g1.kernel, g.kernel, "kernel gradient")
    }

    /// The control: the Winograd path really runs (its sums differ from the direct kernels' in
    /// their last bits), and the tolerance above is tight enough to catch a transform that is
    /// off by little: changing one kernel tap by 1% (what a wrong coefficient in one of the 36
    /// transformed positions does to the outputs it feeds, at least) fails the comparison.
    func testWinogradRunsAndTheToleranceCatchesASmallError() {
        // 8 images of 3x3 tiles: 72 tiles, enough for `.automatic` to take Winograd.
        let c = Case(batch: 8, h: 13, w: 13, cin: 32, cout: 64)
        let r = c.reference
        let x = randomScalars(r.inputShape.reduce(1, *), seed: 7_500)
        var k = randomScalars(r.kernelShape.reduce(1, *), seed: 7_501)
        let input = Tensor(shape: r.inputShape, scalars: x)
        let winograd = ConvolutionAlgorithm.with(.winograd) { Tensor.conv2D(input, kernel: Tensor(shape: r.kernelShape, scalars: k)) }
        let direct = ConvolutionAlgorithm.with(.direct) { Tensor.conv2D(input, kernel: Tensor(shape: r.kernelShape, scalars: k)) }
        let automatic = Tensor.conv2D(input, kernel: Tensor(shape: r.kernelShape, scalars: k))
        XCTAssertNotEqual(winograd.scalars.map(\.bitPattern), direct.scalars.map(\.bitPattern), "Winograd did not run")
        XCTAssertEqual(automatic, winograd, ".automatic takes Winograd for 32 -> 64 channels and 72 tiles")
        let one = Tensor(shape: [1, 13, 13, 32], scalars: Array(x[..<(13 * 13 * 32)]))
        XCTAssertEqual(Tensor.conv2D(one, kernel: Tensor(shape: r.kernelShape, scalars: k)),
                       ConvolutionAlgorithm.with(.direct) { Tensor.conv2D(one, kernel: Tensor(shape: r.kernelShape, scalars: k)) },
                       ".automatic keeps the direct kernels for one image (9 tiles)")
        let small = Case(batch: 1, h: 13, w: 13, cin: 8, cout: 8)
        let smallInput = randomTensor([1, 13, 13, 8], seed: 7_502), smallKernel = randomTensor([3, 3, 8, 8], seed: 7_503)
        XCTAssertEqual(Tensor.conv2D(smallInput, kernel: smallKernel),
                       ConvolutionAlgorithm.with(.direct) { Tensor.conv2D(smallInput, kernel: smallKernel) },
                       ".automatic keeps the direct kernels below 16 channels, \(small)")
        // The reference of a kernel with one tap changed by 1% must fail the tolerance.
        k[4 * 32 * 64 + 5 * 64 + 7] *= 1.01
        let wrong = r.forward(x: x, k: k, bias: nil)
        let limit = tolerance(terms: 9 * c.cin)
        let caught = zip(winograd.scalars, wrong).contains { abs(Double($0) - $1) > limit + 1e-5 * abs($1) }
        XCTAssertTrue(caught, "a 1% error in one tap passed the tolerance")
    }
}
