// Convolutions to very few output channels (a decoder's last layer: an image of 1 or 3 channels).
//
// The direct kernels vectorise over output channels in blocks of 16, so a convolution to one
// channel does 16 times its arithmetic there (the forward pass and the kernel gradient), and
// im2col + GEMM is no better (a GEMM one column wide, after a KH*KW-fold copy of the input). Here
// the work is turned around so that it vectorises over the input channels instead:
// - forward: `z = x * K'`, every input pixel times all `KH * KW * Cout` taps at once (one GEMM
//   `[pixels, Cin] x [Cin, KH * KW * Cout]`), then each output adds up its taps' entries of `z`
//   at the shifted pixels (a pass of `KH * KW` additions per output, bounded by memory);
// - kernel gradient: the same sums, read as the kernel gradient of a convolution whose input is
//   the output gradient (padded, `Cout` channels) and whose output gradient is `x` (`Cin`
//   channels), through the direct kernel-gradient kernel (which vectorises over `Cin`), then
//   rotated by 180 degrees with `Cin` and `Cout` swapped back.
// The conv autoencoder's last layer (3x3, 16 channels to 1 at 28x28) was 45% of its training time
// on the direct kernels (perf, AVX-512). Its forward pass, and any with 1, 2 or 4 output channels
// from a multiple of 8 input channels, now runs the direct kernel over input channels instead
// (`DirectConvolution.channelsApply`, `ck_conv2d_forward_channels`: no `z` pass, 11.4% -> 5.6% of
// that profile); the forward here serves the other channel counts, the kernel gradient all.

enum FewOutputChannelConvolution {
    /// The most output channels taken this way: the direct kernels waste `16 / Cout` of their
    /// lanes, this way wastes nothing but adds a pass over `z` (`KH * KW * Cout` floats a pixel).
    static let maximumOutputChannels = 4

    /// Whether the forward pass goes this way: few output channels, at least 8 input channels
    /// (so the GEMM's inner dimension is not trivial), stride 1, no dilation, a kernel larger than
    /// 1x1, and the automatic algorithm (forcing `.direct` or `.im2col` keeps those kernels).
    static func applies(to g: Conv2DGeometry, outputChannels cout: Int) -> Bool {
        [.automatic, .winograd].contains(ConvolutionAlgorithm.current) && cout >= 1 && cout <= maximumOutputChannels
            && g.channels >= 8 && g.strideHeight == 1 && g.strideWidth == 1
            && g.dilationHeight == 1 && g.dilationWidth == 1 && !g.isPointwise
    }

    /// Whether the kernel gradient goes this way: as ``applies(to:outputChannels:)``, and the
    /// swapped convolution fits the direct kernel-gradient kernel.
    static func kernelGradientApplies(to g: Conv2DGeometry, outputChannels cout: Int) -> Bool {
        applies(to: g, outputChannels: cout)
            && DirectConvolution.applies(to: swappedGeometry(g, outputChannels: cout), outputChannels: g.channels)
    }

    /// The convolution whose kernel gradient is this one's, rotated and transposed: its input is
    /// the output gradient padded to `H + KH - 1` by `W + KW - 1` (`Cout` channels), its output
    /// `H x W` (stride 1, valid).
    private static func swappedGeometry(_ g: Conv2DGeometry, outputChannels cout: Int) -> Conv2DGeometry {
        Conv2DGeometry(inputHeight: g.inputHeight + g.kernelHeight - 1, inputWidth: g.inputWidth + g.kernelWidth - 1,
                       channels: cout, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth)
    }

    /// `y = conv(x, kernel)` without bias for `n` images `[H, W, Cin]` into `y` `[n, OH, OW, Cout]`.
    static func forward(_ x: UnsafePointer<Float>, n: Int, kernel: UnsafePointer<Float>, cout: Int,
                        geometry g: Conv2DGeometry, into y: UnsafeMutablePointer<Float>) {
        let (h, w, cin, kh, kw) = (g.inputHeight, g.inputWidth, g.channels, g.kernelHeight, g.kernelWidth)
        let taps = kh * kw * cout
        // K' [Cin, KH * KW * Cout]: row ci, column (a, b, co) holds kernel[a, b, ci, co].
        let packed = ScratchBuffer(count: cin * taps)
        for t in 0..<(kh * kw) {
            for ci in 0..<cin {
                for co in 0..<cout { packed.base[ci * taps + t * cout + co] = kernel[(t * cin + ci) * cout + co] }
            }
        }
        let pixels = h * w, perImage = pixels * taps
        let outputPerImage = g.outputHeight * g.outputWidth * cout
        let lanes = ThreadPool.shared.effectiveWidth
        guard perImage <= convolutionColumnBudget / 2 else {
            // Large images: one at a time, each product and pass spread over the pool.
            let z = ScratchBuffer(count: perImage)
            for image in 0..<n {
                sgemm(transposeA: false, transposeB: false, m: pixels, n: taps, k: cin, alpha: 1,
                      a: x + image * pixels * cin, lda: cin, b: packed.base, ldb: taps, beta: 0, c: z.base, ldc: taps)
                ThreadPool.shared.parallelChunks(g.outputHeight, grain: Swift.max(1, convolutionParallelGrain / Swift.max(1, g.outputWidth * taps))) { rows in
                    shiftedSums(UnsafePointer(z.base), rows: rows, g, cout: cout, into: y + image * outputPerImage)
                }
            }
            withExtendedLifetime((packed, z)) {}
            return
        }
        // Chunks of images whose `z` (about 256 KiB) stays in L2 between the product that writes
        // it and the pass that reads it; each thread runs its chunks alone (the nested GEMM stays
        // on its thread) in its own slice of `z`.
        let imagesPerChunk = Swift.max(1, Swift.min(n, (1 << 16) / Swift.max(1, perImage)))
        let chunks = (n + imagesPerChunk - 1) / imagesPerChunk
        let z = ScratchBuffer(count: Swift.max(1, lanes * imagesPerChunk * perImage))
        ThreadPool.shared.parallelFor(chunks) { chunk, lane in
            let start = chunk * imagesPerChunk, count = Swift.min(imagesPerChunk, n - start)
            let slice = z.base + lane * imagesPerChunk * perImage
            sgemm(transposeA: false, transposeB: false, m: count * pixels, n: taps, k: cin, alpha: 1,
                  a: x + start * pixels * cin, lda: cin, b: packed.base, ldb: taps, beta: 0, c: slice, ldc: taps)
            shiftedSums(UnsafePointer(slice), rows: 0..<(count * g.outputHeight), g, cout: cout,
                        into: y + start * outputPerImage)
        }
        withExtendedLifetime((packed, z)) {}
    }

    /// `y[i, j, co] = sum over a, b of z[i - padTop + a, j - padLeft + b, (a, b, co)]` over the taps
    /// that fall inside the image, for output rows `rows` (row `r`: image `r / OH`, row `r % OH`)
    /// of the images whose `z` starts at `z` and whose output starts at `y`. Each output adds its
    /// taps in the order (a, b).
    private static func shiftedSums(_ z: UnsafePointer<Float>, rows: Range<Int>, _ g: Conv2DGeometry, cout: Int,
                                    into y: UnsafeMutablePointer<Float>) {
        let (h, w, kh, kw) = (g.inputHeight, g.inputWidth, g.kernelHeight, g.kernelWidth)
        let (oh, ow, top, left) = (g.outputHeight, g.outputWidth, g.padTop, g.padLeft)
        let taps = kh * kw * cout
        for row in rows {
            let image = row / oh, i = row % oh
            let out = y + row * ow * cout
            out.update(repeating: 0, count: ow * cout)
            for a in stride(from: Swift.max(0, top - i), to: Swift.min(kh, h + top - i), by: 1) {
                let zRow = z + (image * h + i - top + a) * w * taps
                for b in 0..<kw {
                    let jLow = Swift.max(0, left - b), jHigh = Swift.min(ow, w + left - b)
                    guard jLow < jHigh else { continue }
                    let source = zRow + (jLow - left + b) * taps + (a * kw + b) * cout
                    let target = out + jLow * cout
                    if cout == 1 {
                        for j in 0..<(jHigh - jLow) { target[j] += source[j * taps] }
                    } else {
                        for j in 0..<(jHigh - jLow) {
                            for co in 0..<cout { target[j * cout + co] += source[j * taps + co] }
                        }
                    }
                }
            }
        }
    }

    /// The kernel gradient `[KH, KW, Cin, Cout]` (added into `dk`) of `n` images `x` for output
    /// gradient `dy` `[n, OH, OW, Cout]`.
    static func kernelGradient(_ x: UnsafePointer<Float>, n: Int, dy: UnsafePointer<Float>, cout: Int,
                               geometry g: Conv2DGeometry, into dk: UnsafeMutablePointer<Float>) {
        let (kh, kw, cin) = (g.kernelHeight, g.kernelWidth, g.channels)
        // dk[a, b, ci, co] = sum over i, j of x[i - padTop + a, j - padLeft + b, ci] dy[i, j, co].
        // With p = i - padTop + a, that is sum over x's pixels p of x[p, ci] dy[p + padTop - a, co]:
        // the swapped kernel gradient at tap a' = KH - 1 - a over dy padded by KH - 1 - padTop above.
        let top = kh - 1 - g.padTop, left = kw - 1 - g.padLeft
        let bottom = g.inputHeight - g.outputHeight + g.padTop, right = g.inputWidth - g.outputWidth + g.padLeft
        let padded = DirectConvolution.padImages(dy, n: n, h: g.outputHeight, w: g.outputWidth, c: cout,
                                                 top: top, bottom: bottom, left: left, right: right)
        let swapped = swappedGeometry(g, outputChannels: cout)
        let count = kh * kw * cout * cin
        let rotated = ScratchBuffer(count: count)
        rotated.base.update(repeating: 0, count: count)
        DirectConvolution.kernelGradient(UnsafePointer(padded.base), n: n, dy: x, cout: cin, geometry: swapped,
                                         into: rotated.base)
        // rotated[a', b', co, ci] to dk[KH - 1 - a', KW - 1 - b', ci, co].
        for a in 0..<kh {
            for b in 0..<kw {
                let source = rotated.base + ((kh - 1 - a) * kw + (kw - 1 - b)) * cout * cin
                let target = dk + (a * kw + b) * cin * cout
                for ci in 0..<cin {
                    for co in 0..<cout { target[ci * cout + co] += source[co * cin + ci] }
                }
            }
        }
        withExtendedLifetime((padded, rotated)) {}
    }
}
