import CKernels

// Direct convolution (CKernels/conv.c) for the small channel counts of image classifiers.
//
// im2col + GEMM copies every input pixel KH*KW times and then packs the copy again for the GEMM;
// with few channels (a first layer has one) that copying costs more than the arithmetic. The
// direct kernels read the input in place and keep the (small) kernel in cache and registers.
// `conv2D` and `conv2DBackward` choose them by `DirectConvolution.applies(to:outputChannels:)`.

/// How `Tensor.conv2D` and `Tensor.conv2DBackward` compute a convolution.
///
/// ``automatic`` (the default) takes Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions with at
/// least 16 input and output channels and enough images (forward, input and kernel gradients), the
/// direct kernels for small kernels (at most 64Ki floats
/// once the output channels are rounded up to 16, and at most 128 output channels) and
/// im2col + GEMM otherwise; the input gradient goes direct only for stride 1 and at least 8 input
/// channels. Convolutions to 1, 2 or 4 channels (or 8 with a stride) from a multiple of 8 input
/// channels (an image decoder's last layer, a transposed convolution's input gradient) run a
/// direct kernel that vectorises over the input channels and reads the unpadded input; other
/// convolutions to at most 4 channels with stride 1 and at least 8 input channels vectorise over
/// the input channels another way: a pointwise product with every tap, then shifted sums
/// (forward). Their kernel gradient is a direct one with the roles of input and output gradient
/// swapped. The other cases force one method everywhere it applies, for tests and benchmarks:
///
/// ```swift
/// let y = ConvolutionAlgorithm.with(.im2col) { Tensor.conv2D(x, kernel: k) }
/// ```
// Public (unlike the im2col and GEMM kernels it picks between): users force an algorithm to compare speed or results.
public enum ConvolutionAlgorithm: Sendable, Equatable {
    /// Direct kernels for small kernels, im2col + GEMM for the rest.
    case automatic
    /// Direct kernels wherever they apply (any kernel size; input gradients with stride 1).
    case direct
    /// im2col + GEMM always.
    case im2col
    /// Winograd F(4x4, 3x3) wherever it applies (3x3 kernels, stride 1, no dilation: the forward
    /// pass, the input gradient and the kernel gradient, any channel count), the ``automatic``
    /// choice elsewhere.
    /// ``automatic`` itself takes Winograd for those shapes with at least 16 input and output
    /// channels. Its results differ from the direct sums by a few roundings of the products'
    /// magnitude (the transforms scale by up to 8 and by fractions like 1/6).
    case winograd

    @TaskLocal private static var override: ConvolutionAlgorithm?

    /// The algorithm in force on this task: the innermost ``with(_:_:)``, else ``automatic``.
    public static var current: ConvolutionAlgorithm { override ?? .automatic }

    /// Runs `body` with `algorithm` in force for the convolutions it runs on this task.
    public static func with<R>(_ algorithm: ConvolutionAlgorithm, _ body: () throws -> R) rethrows -> R {
        try $override.withValue(algorithm, operation: body)
    }
}

enum DirectConvolution {
    /// Whether the direct kernels are expected to beat im2col + GEMM: few output channels (up to
    /// four 16-lane vectors per block pass) and a kernel small enough to stay in L2.
    static func applies(to g: Conv2DGeometry, outputChannels cout: Int) -> Bool {
        applies(columnCount: g.columnCount, outputChannels: cout)
    }

    /// `applies(to:outputChannels:)` for a kernel of `columnCount` rows (`KH * KW * Cin`).
    private static func applies(columnCount: Int, outputChannels cout: Int) -> Bool {
        guard cout >= 1 && columnCount >= 1 else { return false }
        switch ConvolutionAlgorithm.current {
        case .direct: return true
        case .im2col: return false
        case .automatic, .winograd: return cout <= 128 && columnCount * roundedChannels(cout) <= 1 << 16
        }
    }

    /// `cout` rounded up to a multiple of 16 (one vector of lanes).
    static func roundedChannels(_ cout: Int) -> Int { (cout + 15) / 16 * 16 }

    /// `kernel` `[KH, KW, Cin, Cout]` with the output channels padded to a multiple of 16 by
    /// zeros; with `flipped`, rotated by 180 degrees and with `Cin` and `Cout` swapped (the kernel
    /// that convolves an output gradient into an input gradient for stride 1).
    static func packKernel(_ kernel: UnsafePointer<Float>, kh: Int, kw: Int, cin: Int, cout: Int,
                           flipped: Bool) -> ScratchBuffer {
        let inner = flipped ? cout : cin, outer = flipped ? cin : cout
        let padded = roundedChannels(outer)
        let packed = ScratchBuffer(count: kh * kw * inner * padded)
        packed.base.update(repeating: 0, count: kh * kw * inner * padded)
        for a in 0..<kh {
            for b in 0..<kw {
                for i in 0..<cin {
                    for o in 0..<cout {
                        let value = kernel[((a * kw + b) * cin + i) * cout + o]
                        if flipped {
                            packed.base[(((kh - 1 - a) * kw + (kw - 1 - b)) * cout + o) * padded + i] = value
                        } else {
                            packed.base[((a * kw + b) * cin + i) * padded + o] = value
                        }
                    }
                }
            }
        }
        return packed
    }

    /// Copies `n` images `[h, w, c]` into a zeroed buffer with `top`, `bottom`, `left`, `right`
    /// extra rows and columns, and the channels padded to `channelStride` floats per pixel.
    static func padImages(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, c: Int, top: Int, bottom: Int,
                          left: Int, right: Int, channelStride: Int? = nil) -> ScratchBuffer {
        let ph = h + top + bottom, pw = w + left + right, cs = channelStride ?? c
        let padded = ScratchBuffer(count: Swift.max(1, n * ph * pw * cs))
        ThreadPool.shared.parallelChunks(n, grain: Swift.max(1, convolutionParallelGrain / Swift.max(1, ph * pw * cs))) { images in
            // Only the padding is zeroed (rows above and below, columns left and right, channels
            // past `c`): zeroing the whole buffer first wrote every interior float twice.
            for image in images {
                let dst = padded.base + image * ph * pw * cs
                dst.update(repeating: 0, count: top * pw * cs)
                (dst + (top + h) * pw * cs).update(repeating: 0, count: bottom * pw * cs)
                for row in 0..<h {
                    let src = x + (image * h + row) * w * c
                    let line = dst + (row + top) * pw * cs
                    line.update(repeating: 0, count: left * cs)
                    (line + (left + w) * cs).update(repeating: 0, count: right * cs)
                    let out = line + left * cs
                    if cs == c {
                        out.update(from: src, count: w * c)
                    } else {
                        for col in 0..<w {
                            (out + col * cs).update(from: src + col * c, count: c)
                            (out + col * cs + c).update(repeating: 0, count: cs - c)
                        }
                    }
                }
            }
        }
        return padded
    }

    /// `y = conv(x, kernel) + bias` for `n` images through the direct forward kernel; `x` is the
    /// unpadded input, padded here when the geometry asks for it. `bias` starts each sum;
    /// `postBias` (`[cout]`) is added after it and `relu` then applied as the output is stored,
    /// the same bits as a separate bias-and-activation pass over `y`.
    /// Convolutions to 1, 2 or 4 output channels, or 8 with a stride, from a multiple of 8 input
    /// channels (`ck_conv2d_forward_channels`): those go over the input channels. The stride-1
    /// convolutions to 8 channels (the course CNN's second layer) keep the 8-lane half blocks and
    /// their bits.
    static func channelsApply(to g: Conv2DGeometry, outputChannels cout: Int) -> Bool {
        ConvolutionAlgorithm.current != .im2col && g.channels % 8 == 0 && g.kernelHeight * g.kernelWidth <= 512
            && g.kernelHeight * g.kernelWidth * g.channels * cout <= 1 << 16
            && (cout == 1 || cout == 2 || cout == 4 || (cout == 8 && (g.strideHeight > 1 || g.strideWidth > 1)))
    }

    static func forward(_ x: UnsafePointer<Float>, n: Int, kernel: UnsafePointer<Float>, cout: Int,
                        bias: UnsafePointer<Float>?, postBias: UnsafePointer<Float>? = nil, relu: Bool = false,
                        geometry g: Conv2DGeometry, into y: UnsafeMutablePointer<Float>) {
        let channels = channelsApply(to: g, outputChannels: cout)
        let packed = channels
            ? packKernelByInputChannel(kernel, taps: g.kernelHeight * g.kernelWidth, cin: g.channels, cout: cout)
            : packKernel(kernel, kh: g.kernelHeight, kw: g.kernelWidth, cin: g.channels, cout: cout, flipped: false)
        // The kernel over input channels reads the unpadded input and leaves out the taps outside it.
        let needsPadding = !channels && g.padTop + g.padBottom + g.padLeft + g.padRight > 0
        let padded = needsPadding
            ? padImages(x, n: n, h: g.inputHeight, w: g.inputWidth, c: g.channels, top: g.padTop, bottom: g.padBottom,
                        left: g.padLeft, right: g.padRight)
            : nil
        var args = ck_conv_args()
        args.x = padded.map { UnsafePointer($0.base) } ?? x
        if channels {
            args.h = Int64(g.inputHeight); args.w = Int64(g.inputWidth)
            args.pad_top = Int64(g.padTop); args.pad_left = Int64(g.padLeft)
        } else {
            args.h = Int64(g.inputHeight + g.padTop + g.padBottom)
            args.w = Int64(g.inputWidth + g.padLeft + g.padRight)
        }
        args.cin = Int64(g.channels)
        args.k = UnsafePointer(packed.base)
        args.kh = Int64(g.kernelHeight); args.kw = Int64(g.kernelWidth)
        args.cout = Int64(cout); args.cout_padded = Int64(roundedChannels(cout))
        args.sh = Int64(g.strideHeight); args.sw = Int64(g.strideWidth)
        args.dh = Int64(g.dilationHeight); args.dw = Int64(g.dilationWidth)
        args.oh = Int64(g.outputHeight); args.ow = Int64(g.outputWidth)
        args.y = y
        args.bias = bias
        args.post_bias = postBias
        args.relu = relu ? 1 : 0
        if channels {
            run(rows: n * g.outputHeight, rowWork: g.outputWidth * g.columnCount * cout / 16, args: args,
                kernel: ck_conv2d_forward_channels)
        } else {
            run(rows: n * g.outputHeight, rowWork: g.outputWidth * g.columnCount * roundedChannels(cout) / 16, args: args)
        }
        withExtendedLifetime((packed, padded)) {}
    }

    /// `kernel` `[KH, KW, Cin, Cout]` as `[KH, KW, Cout, Cin]`, for `ck_conv2d_forward_channels`.
    private static func packKernelByInputChannel(_ kernel: UnsafePointer<Float>, taps: Int, cin: Int,
                                                 cout: Int) -> ScratchBuffer {
        let packed = ScratchBuffer(count: Swift.max(1, taps * cin * cout))
        for t in 0..<taps {
            for i in 0..<cin {
                for o in 0..<cout { packed.base[(t * cout + o) * cin + i] = kernel[(t * cin + i) * cout + o] }
            }
        }
        return packed
    }

    /// Runs a forward kernel over `rows` output rows, split over the pool in chunks of rows.
    private static func run(rows: Int, rowWork: Int, args: ck_conv_args,
                            kernel: (Int32, UnsafePointer<ck_conv_args>?, Int64, Int64) -> Void = ck_conv2d_forward) {
        let isa = KernelISA.current.rawValue
        // Several chunks per thread, so a descheduled thread holds back less of the work.
        let grain = Swift.max(1, convolutionParallelGrain / Swift.max(1, rowWork))
        let chunks = Swift.min(rows / grain, 4 * ThreadPool.shared.effectiveWidth)
        withUnsafePointer(to: args) { a in
            if chunks <= 1 {
                kernel(isa, a, 0, Int64(rows))
                return
            }
            ThreadPool.shared.parallelFor(chunks) { c, _ in
                let lo = rows * c / chunks, hi = rows * (c + 1) / chunks
                kernel(isa, a, Int64(lo), Int64(hi - lo))
            }
        }
    }

    /// The kernel gradient `[KH, KW, Cin, Cout]` (accumulated into `dk`, which must hold zeros or
    /// earlier sums) of `n` images `x` for output gradient `dy` `[n, OH, OW, Cout]`.
    ///
    /// With `imageExtent`, `x`'s images are that many rows and columns (at least the geometry's
    /// input, which has no padding) and `x` points at the geometry's input origin inside image 0:
    /// a window of each image (a transposed convolution's phase reads its real taps that way).
    /// With `dyChannelStride` (the channels rounded up to 16), `dy`'s pixels are that many floats apart.
    static func kernelGradient(_ x: UnsafePointer<Float>, n: Int, dy: UnsafePointer<Float>, cout: Int,
                               geometry g: Conv2DGeometry, imageExtent: (height: Int, width: Int)? = nil,
                               dyChannelStride: Int? = nil, into dk: UnsafeMutablePointer<Float>) {
        let cp = roundedChannels(cout)
        let needsPadding = g.padTop + g.padBottom + g.padLeft + g.padRight > 0
        precondition(imageExtent == nil || !needsPadding, "kernelGradient: an image window has no padding")
        precondition(dyChannelStride == nil || dyChannelStride == cp, "kernelGradient: dy's stride must be \(cp)")
        let padded = needsPadding
            ? padImages(x, n: n, h: g.inputHeight, w: g.inputWidth, c: g.channels, top: g.padTop, bottom: g.padBottom,
                        left: g.padLeft, right: g.padRight)
            : nil
        // The kernel loads whole vectors of output channels: give dy a row stride of `cp`.
        let dyPadded = cp == cout || dyChannelStride != nil ? nil
            : padImages(dy, n: n, h: g.outputHeight, w: g.outputWidth, c: cout, top: 0, bottom: 0, left: 0, right: 0,
                        channelStride: cp)
        var args = ck_conv_args()
        args.x = padded.map { UnsafePointer($0.base) } ?? x
        args.h = Int64(imageExtent?.height ?? (g.inputHeight + g.padTop + g.padBottom))
        args.w = Int64(imageExtent?.width ?? (g.inputWidth + g.padLeft + g.padRight))
        args.cin = Int64(g.channels)
        args.kh = Int64(g.kernelHeight); args.kw = Int64(g.kernelWidth)
        args.cout = Int64(cout); args.cout_padded = Int64(cp)
        args.sh = Int64(g.strideHeight); args.sw = Int64(g.strideWidth)
        args.dh = Int64(g.dilationHeight); args.dw = Int64(g.dilationWidth)
        args.oh = Int64(g.outputHeight); args.ow = Int64(g.outputWidth)
        args.dy = dyPadded.map { UnsafePointer($0.base) } ?? dy
        let rows = withUnsafePointer(to: args) { Int(ck_conv2d_kernel_grad_rows($0)) }
        let isa = KernelISA.current.rawValue
        // One partial sum per block of images, added in block order afterwards. The blocks do not
        // depend on the thread count or on which thread claims which, so neither do the bits.
        let imagesPerBlock = 16
        let blocks = Swift.max(1, (n + imagesPerBlock - 1) / imagesPerBlock)
        let partials = ScratchBuffer(count: blocks * rows * cp)
        partials.base.update(repeating: 0, count: blocks * rows * cp)
        let imageWork = g.outputHeight * g.outputWidth * g.columnCount * cp / 16
        withUnsafePointer(to: args) { a in
            let run = { (b: Int) in
                let lo = b * imagesPerBlock, hi = Swift.min(n, lo + imagesPerBlock)
                ck_conv2d_kernel_grad(isa, a, partials.base + b * rows * cp, Int64(lo), Int64(hi - lo))
            }
            if blocks == 1 || n * imageWork < 2 * convolutionParallelGrain {
                for b in 0..<blocks { run(b) }
            } else {
                ThreadPool.shared.parallelFor(blocks) { b, _ in run(b) }
            }
        }
        let taps = g.columnCount
        for t in 0..<taps {
            for o in 0..<cout {
                var s: Float = 0
                for b in 0..<blocks { s += partials.base[(b * rows + t) * cp + o] }
                dk[t * cout + o] += s
            }
        }
        withExtendedLifetime((padded, dyPadded, partials)) {}
    }

    /// Whether the input gradient can go through the forward kernel (stride 1: the input
    /// gradient is the output gradient, padded, convolved with the flipped kernel), and is
    /// expected to beat GEMM + col2im.
    static func inputGradientApplies(to g: Conv2DGeometry, outputChannels cout: Int) -> Bool {
        // With fewer than 8 input channels most lanes of the output vectors would be padding.
        g.strideHeight == 1 && g.strideWidth == 1
            && (g.channels >= 8 || ConvolutionAlgorithm.current == .direct)
            && applies(columnCount: g.kernelHeight * g.kernelWidth * cout, outputChannels: g.channels)
    }

    /// The input gradient `[n, H, W, Cin]` (overwritten) for output gradient `dy`, stride 1.
    static func inputGradient(_ dy: UnsafePointer<Float>, n: Int, kernel: UnsafePointer<Float>, cout: Int,
                              geometry g: Conv2DGeometry, into dx: UnsafeMutablePointer<Float>) {
        let kh = g.dilatedKernelHeight, kw = g.dilatedKernelWidth
        // Output row i saw input rows i - padTop ..< i - padTop + kh; so input row r receives from
        // output rows r + padTop - kh + 1 ... r + padTop: pad dy by kh - 1 - padTop above.
        let top = kh - 1 - g.padTop, left = kw - 1 - g.padLeft
        let bottom = g.inputHeight + kh - 1 - top - g.outputHeight
        let right = g.inputWidth + kw - 1 - left - g.outputWidth
        let packed = packKernel(kernel, kh: g.kernelHeight, kw: g.kernelWidth, cin: g.channels, cout: cout, flipped: true)
        // Rows or columns of dy that no input position reads (negative padding) cannot occur for
        // stride 1, where every output position reads inside the padded input.
        let padded = padImages(dy, n: n, h: g.outputHeight, w: g.outputWidth, c: cout,
                               top: top, bottom: bottom, left: left, right: right)
        var args = ck_conv_args()
        args.x = UnsafePointer(padded.base)
        args.h = Int64(g.outputHeight + top + bottom)
        args.w = Int64(g.outputWidth + left + right)
        args.cin = Int64(cout)
        args.k = UnsafePointer(packed.base)
        args.kh = Int64(g.kernelHeight); args.kw = Int64(g.kernelWidth)
        args.cout = Int64(g.channels); args.cout_padded = Int64(roundedChannels(g.channels))
        args.sh = 1; args.sw = 1
        args.dh = Int64(g.dilationHeight); args.dw = Int64(g.dilationWidth)
        args.oh = Int64(g.inputHeight); args.ow = Int64(g.inputWidth)
        args.y = dx
        args.bias = nil
        run(rows: n * g.inputHeight, rowWork: g.inputWidth * g.kernelHeight * g.kernelWidth * cout * roundedChannels(g.channels) / 16,
            args: args)
        withExtendedLifetime((packed, padded)) {}
    }
}
