import CKernels

// The transposed convolution (Keras' Conv2DTranspose) with strides, as one stride-1 convolution
// per output phase, all phases at once.
//
// A transposed convolution with stride s is the input gradient of a convolution with stride s.
// Computed as that gradient (dY * K^T, one GEMM whose inner dimension is the few input channels,
// then col2im scattering KH*KW products into every output pixel) it ran at a fraction of the
// machine's speed: in the conv autoencoder, its GEMM and col2im were 8.5% of the training time
// (perf, AVX-512), for 4% of the arithmetic.
//
// Output row y of a transposed convolution with stride s and padding padTop gathers input rows
// q - t with kernel row a = r + s t, where q = (y + padTop) / s and r = (y + padTop) % s: for
// each phase r it is a stride-1 convolution of the input with the kernel rows r, r + s, ...
// ("sub-pixel" convolution). Each phase runs as its own stride-1 direct convolution with only its
// real taps, over a window of the input padded for `T = ceil(KH / s)` rows of taps; the phases'
// outputs are then shuffled into place, each output pixel copying `F` floats. Stacking the
// phases' kernels as `sh * sw * F` output channels of one convolution with T x T taps (as this
// file did before) multiplies the taps past the kernel's edge by zeros: for 3x3 stride 2, 16
// taps of which 9 are real (the phases have 2x2, 2x1, 1x2 and 1x1).

extension Tensor {
    /// Keras' `Conv2DTranspose` of `input` `[N, H, W, Cin]` with `kernel` `[KH, KW, F, Cin]`:
    /// `[N, OH, OW, F]` for `outputShape` `[N, OH, OW, F]`, which the convolution with `kernel`,
    /// `strides` and `padding` maps back to `[N, H, W, Cin]`. The same values as
    /// ``conv2DBackwardInput(outputGradient:kernel:inputShape:strides:padding:dilation:)`` (within
    /// rounding); with strides the phases run as one stride-1 direct convolution where the direct
    /// kernels apply, else that function runs.
    /// - Precondition: shapes as for `conv2DBackwardInput`; the messages name them.
    package static func transposedConvolution(_ input: Tensor, kernel: Tensor, outputShape: [Int],
                                              strides: (Int, Int), padding: Padding) -> Tensor {
        transposedConvolution(input, kernel: kernel, outputShape: outputShape, strides: strides, padding: padding,
                              biasAfterwards: nil, relu: false)
    }

    /// A `Conv2DTranspose` layer's forward pass: ``transposedConvolution(_:kernel:outputShape:strides:padding:)``,
    /// then `bias` `[F]` added (when given) and relu applied (when `relu`), with the bits of
    /// `addBias(bias, activation: .relu)` (or `relu()`) on its result. The phases' direct
    /// convolution applies both as it stores each output; the general way runs that pass.
    /// - Precondition: as for the plain form, and `bias` (if any) is `[F]`.
    package static func transposedConvolution(_ input: Tensor, kernel: Tensor, outputShape: [Int],
                                              strides: (Int, Int), padding: Padding, biasAfterwards bias: Tensor?,
                                              relu: Bool) -> Tensor {
        if let bias {
            neuritePrecondition(kernel.rank == 4 && bias.shape == [kernel.shape[2]],
                                "transposedConvolution bias \(bias.shape) does not match kernel \(kernel.shape)")
        }
        // Anything the phases do not cover, including malformed shapes (whose messages
        // conv2DBackwardInput gives), goes the general way.
        guard strides.0 > 1 || strides.1 > 1, outputShape.count == 4, kernel.rank == 4, input.rank == 4,
              outputShape.allSatisfy({ $0 >= 1 }), kernel.shape.allSatisfy({ $0 >= 1 }), outputShape[3] == kernel.shape[2],
              padding == .same || (outputShape[1] >= kernel.shape[0] && outputShape[2] >= kernel.shape[1]),
              let plan = TransposedConvolutionPlan(outputShape: outputShape, kernelShape: kernel.shape, strides: strides,
                                                   padding: padding),
              input.shape == [outputShape[0], plan.geometry.outputHeight, plan.geometry.outputWidth, kernel.shape[3]],
              DirectConvolution.applies(to: plan.phaseGeometry, outputChannels: plan.phaseChannels)
        else {
            var output = conv2DBackwardInput(outputGradient: input, kernel: kernel, inputShape: outputShape,
                                             strides: strides, padding: padding)
            if let bias {
                output.addBias(bias, activation: relu ? .relu : .linear)
            } else if relu {
                output = output.relu()
            }
            return output
        }
        return input.withUnsafeBufferPointer { xb in
            kernel.withUnsafeBufferPointer { kb in
                Tensor(shape: outputShape) { yb in
                    if let bias {
                        bias.withUnsafeBufferPointer { pb in
                            plan.run(xb.baseAddress!, kernel: kb.baseAddress!, postBias: pb.baseAddress!, relu: relu,
                                     into: yb.baseAddress!)
                        }
                    } else {
                        plan.run(xb.baseAddress!, kernel: kb.baseAddress!, postBias: nil, relu: relu, into: yb.baseAddress!)
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// The kernel gradient `[KH, KW, F, Cin]` of
    /// ``transposedConvolution(_:kernel:outputShape:strides:padding:)`` for its `input`
    /// `[N, H, W, Cin]` and the gradient of its output `[N, OH, OW, F]`: the same values as
    /// ``conv2DBackwardKernel(input:outputGradient:kernelShape:strides:padding:dilation:)`` of
    /// the convolution it reverses (within rounding). With strides, where the direct kernels
    /// apply, it is the phases' kernel gradient (`sh * sw * F` channels wide), else that function.
    /// - Precondition: shapes as for `conv2DBackwardKernel`; the messages name them.
    package static func transposedConvolutionKernelGradient(input: Tensor, outputGradient: Tensor, kernelShape: [Int],
                                                            strides: (Int, Int), padding: Padding) -> Tensor {
        let outputShape = outputGradient.shape
        guard strides.0 > 1 || strides.1 > 1, outputShape.count == 4, kernelShape.count == 4, input.rank == 4,
              outputShape.allSatisfy({ $0 >= 1 }), kernelShape.allSatisfy({ $0 >= 1 }), outputShape[3] == kernelShape[2],
              padding == .same || (outputShape[1] >= kernelShape[0] && outputShape[2] >= kernelShape[1]),
              let plan = TransposedConvolutionPlan(outputShape: outputShape, kernelShape: kernelShape, strides: strides,
                                                   padding: padding),
              input.shape == [outputShape[0], plan.geometry.outputHeight, plan.geometry.outputWidth, kernelShape[3]],
              DirectConvolution.applies(to: plan.phaseGeometry, outputChannels: plan.phaseChannels)
        else {
            return conv2DBackwardKernel(input: outputGradient, outputGradient: input, kernelShape: kernelShape,
                                        strides: strides, padding: padding)
        }
        return input.withUnsafeBufferPointer { xb in
            outputGradient.withUnsafeBufferPointer { gb in
                var gradient = Tensor.zeros(kernelShape)
                gradient.withUnsafeMutableBufferPointer { kb in
                    plan.kernelGradient(xb.baseAddress!, outputGradient: gb.baseAddress!, into: kb.baseAddress!)
                }
                return gradient
            }
        }
    }
}

extension Tensor {
    /// A relu layer's output gradient taken back through relu (`gradient` where `output > 0`,
    /// else 0, the bits of `reluBackward(gradient:input:)`) and its sums over every axis but the
    /// last (the bias gradient `[C]`, Float blocks of 64 rows added in Float64), in one pass.
    /// - Precondition: `gradient` and `output` have the same shape, of rank 1 or more.
    package static func reluBackwardAndChannelSums(gradient: Tensor, output: Tensor) -> (gradient: Tensor, sums: Tensor) {
        neuritePrecondition(gradient.shape == output.shape && gradient.rank >= 1,
                            "reluBackwardAndChannelSums: gradient \(gradient.shape) and output \(output.shape) differ")
        let channels = gradient.shape.last!
        let rows = channels == 0 ? 0 : gradient.count / channels
        var sums = Tensor.zeros([channels])
        let masked = Tensor(shape: gradient.shape) { mb in
            guard mb.count > 0 else { return }
            gradient.withUnsafeBufferPointer { gb in
                output.withUnsafeBufferPointer { yb in
                    sums.withUnsafeMutableBufferPointer { sb in
                        columnSums(gb.baseAddress!, rows: rows, columns: channels, into: sb.baseAddress!,
                                   reluOutput: yb.baseAddress!, masked: mb.baseAddress!)
                    }
                }
            }
        }
        return (masked, sums)
    }
}

/// Copies one pixel's `count` channels: one vector move for 8 or 16 (the autoencoder's layers),
/// where `update(from:count:)` called memmove for every pixel (4.8% of the conv autoencoder's
/// training profile, AVX-512, in the phases' shuffles).
@inline(__always)
private func copyPixel(_ target: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, count: Int) {
    switch count {
    case 16: UnsafeMutableRawPointer(target).storeBytes(of: UnsafeRawPointer(source).loadUnaligned(as: SIMD16<Float>.self),
                                                        as: SIMD16<Float>.self)
    case 8: UnsafeMutableRawPointer(target).storeBytes(of: UnsafeRawPointer(source).loadUnaligned(as: SIMD8<Float>.self),
                                                       as: SIMD8<Float>.self)
    default: target.update(from: source, count: count)
    }
}

/// The shapes of one transposed convolution computed by phases (see the file's comment).
struct TransposedConvolutionPlan {
    /// The convolution this one reverses: from the output `[OH, OW, F]` to the input `[H, W, Cin]`.
    let geometry: Conv2DGeometry
    let batch: Int
    /// `F` and `Cin`.
    let filters: Int, inputChannels: Int
    /// Taps of each phase's kernel: `ceil(KH / sh)` by `ceil(KW / sw)`.
    let tapRows: Int, tapColumns: Int
    /// Rows and columns of zeros added below and right of the input, so the phase outputs cover
    /// every output pixel.
    let extraBottom: Int, extraRight: Int
    /// The stride-1 convolution over the padded input, all phases as output channels.
    let phaseGeometry: Conv2DGeometry

    /// `sh * sw * F`.
    var phaseChannels: Int { geometry.strideHeight * geometry.strideWidth * filters }

    /// Nil for a dilation other than 1 or an empty output.
    init?(outputShape: [Int], kernelShape: [Int], strides: (Int, Int), padding: Padding) {
        let g = Conv2DGeometry(inputHeight: outputShape[1], inputWidth: outputShape[2], channels: outputShape[3],
                               kernelHeight: kernelShape[0], kernelWidth: kernelShape[1], strides: strides, padding: padding)
        guard g.outputHeight >= 1, g.outputWidth >= 1 else { return nil }
        geometry = g
        batch = outputShape[0]
        filters = kernelShape[2]
        inputChannels = kernelShape[3]
        tapRows = (g.kernelHeight + strides.0 - 1) / strides.0
        tapColumns = (g.kernelWidth + strides.1 - 1) / strides.1
        // Output row y reads phase row (y + padTop) / sh; the last one must exist.
        let phaseRows = (g.inputHeight - 1 + g.padTop) / strides.0 + 1
        let phaseColumns = (g.inputWidth - 1 + g.padLeft) / strides.1 + 1
        extraBottom = Swift.max(0, phaseRows - g.outputHeight)
        extraRight = Swift.max(0, phaseColumns - g.outputWidth)
        phaseGeometry = Conv2DGeometry(inputHeight: g.outputHeight + tapRows - 1 + extraBottom,
                                       inputWidth: g.outputWidth + tapColumns - 1 + extraRight, channels: inputChannels,
                                       kernelHeight: tapRows, kernelWidth: tapColumns)
    }

    /// One output phase (r, c) and its real taps: phase tap rows `firstRow ..< tapRows` and
    /// columns `firstColumn ..< tapColumns`, the ones whose kernel tap exists (a suffix, since
    /// tap (u, v) is kernel tap (r + sh (T_h - 1 - u), c + sw (T_w - 1 - v))).
    struct Phase {
        let row: Int, column: Int
        let firstRow: Int, firstColumn: Int
        /// Real tap rows and columns (0 for a phase past the kernel's edge: a kernel smaller than the stride).
        let rows: Int, columns: Int
    }

    /// The `sh * sw` phases in (r, c) order. For 3x3 stride 2: 2x2, 2x1, 1x2 and 1x1 real taps,
    /// 9 of the 16 that the stacked phases' kernel multiplies.
    var phases: [Phase] {
        let (sh, sw, kh, kw) = (geometry.strideHeight, geometry.strideWidth, geometry.kernelHeight, geometry.kernelWidth)
        var list: [Phase] = []
        for r in 0..<sh {
            let rows = r < kh ? (kh - 1 - r) / sh + 1 : 0
            for c in 0..<sw {
                let columns = c < kw ? (kw - 1 - c) / sw + 1 : 0
                list.append(Phase(row: r, column: c, firstRow: tapRows - rows, firstColumn: tapColumns - columns,
                                  rows: rows, columns: columns))
            }
        }
        return list
    }

    /// Calls `body(phaseOffset, kernelOffset)` for every real tap (u, v) and input channel ci of
    /// `phase`: the offset of output channel 0 of that tap in the phase's kernel
    /// `[rows, columns, Cin, F rounded up to 16]` and of output channel 0 of its kernel tap in the
    /// kernel `[KH, KW, F, Cin]` (its F channels `Cin` apart).
    private func forEachTap(of phase: Phase, _ body: (_ phaseOffset: Int, _ kernelOffset: Int) -> Void) {
        let (sh, sw, kw) = (geometry.strideHeight, geometry.strideWidth, geometry.kernelWidth)
        let (f, cin, cp) = (filters, inputChannels, DirectConvolution.roundedChannels(filters))
        for i in 0..<phase.rows {
            let a = phase.row + sh * (tapRows - 1 - (phase.firstRow + i))
            for j in 0..<phase.columns {
                let b = phase.column + sw * (tapColumns - 1 - (phase.firstColumn + j))
                for ci in 0..<cin {
                    body(((i * phase.columns + j) * cin + ci) * cp, (a * kw + b) * f * cin + ci)
                }
            }
        }
    }

    /// The kernel of `phase`'s real taps, `[rows, columns, Cin, F rounded up to 16]` (the direct
    /// forward kernel's packing; zeros past F).
    private func phaseKernel(_ kernel: UnsafePointer<Float>, _ phase: Phase) -> ScratchBuffer {
        let (f, cin, cp) = (filters, inputChannels, DirectConvolution.roundedChannels(filters))
        let count = Swift.max(1, phase.rows * phase.columns * cin * cp)
        let packed = ScratchBuffer(count: count)
        packed.base.update(repeating: 0, count: count)
        forEachTap(of: phase) { phaseOffset, kernelOffset in
            let target = packed.base + phaseOffset
            for o in 0..<f { target[o] = kernel[kernelOffset + o * cin] }
        }
        return packed
    }

    /// The input padded for the phases' convolution: `T_h - 1` rows above, `extraBottom` below.
    private func paddedInput(_ x: UnsafePointer<Float>) -> ScratchBuffer {
        DirectConvolution.padImages(x, n: batch, h: geometry.outputHeight, w: geometry.outputWidth, c: inputChannels,
                                    top: tapRows - 1, bottom: extraBottom, left: tapColumns - 1, right: extraRight)
    }

    /// `phase`'s real taps as a stride-1 convolution over a window of the padded input (which
    /// starts at the phase's first real tap): it has the phases' output extent.
    private func windowGeometry(_ phase: Phase) -> Conv2DGeometry {
        let p = phaseGeometry
        return Conv2DGeometry(inputHeight: p.outputHeight + phase.rows - 1, inputWidth: p.outputWidth + phase.columns - 1,
                              channels: inputChannels, kernelHeight: phase.rows, kernelWidth: phase.columns)
    }

    /// Offset of `phase`'s window in a padded image: its first real tap.
    private func windowOffset(_ phase: Phase) -> Int {
        (phase.firstRow * phaseGeometry.inputWidth + phase.firstColumn) * inputChannels
    }

    /// Whether every phase pixel holds an output pixel (the phases tile the output exactly: no
    /// padding before it, and the phases end where it does), so a gather into the phases'
    /// layout writes every float (the autoencoder's `same` layers).
    private var phasesTileTheOutput: Bool {
        let g = geometry, p = phaseGeometry
        return g.padTop == 0 && g.padLeft == 0 && p.outputHeight * g.strideHeight == g.inputHeight
            && p.outputWidth * g.strideWidth == g.inputWidth
    }

    /// Adds the kernel gradient `[KH, KW, F, Cin]` for input `x` `[N, H, W, Cin]` and output
    /// gradient `dy` `[N, OH, OW, F]` into `dk`: `dy` gathered in one pass into each phase's
    /// layout `[N, PH, PW, F rounded up to 16]` (zeros where a phase pixel has no output pixel),
    /// then phase by phase the kernel gradient of its real taps over the padded input, each tap
    /// taken back to its kernel tap. Each sum runs over the same pixels in the same order as the
    /// stacked phases' gradient (all `sh * sw * F` channels, zero taps included) did: the same
    /// bits, for 9 of its 16 taps' multiply-adds at 3x3 stride 2.
    func kernelGradient(_ x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                        into dk: UnsafeMutablePointer<Float>) {
        let g = geometry, p = phaseGeometry
        let (sh, sw, f, cin) = (g.strideHeight, g.strideWidth, filters, inputChannels)
        let cp = DirectConvolution.roundedChannels(f)
        let (oh, ow, ph, pw) = (g.inputHeight, g.inputWidth, p.outputHeight, p.outputWidth)
        let padded = paddedInput(x)
        let phaseImage = ph * pw * cp, phaseSize = batch * phaseImage
        let gathered = ScratchBuffer(count: Swift.max(1, sh * sw * phaseSize))
        let zeroFirst = !phasesTileTheOutput || cp != f
        ThreadPool.shared.parallelChunks(batch, grain: Swift.max(1, convolutionParallelGrain / Swift.max(1, sh * sw * phaseImage))) { images in
            for image in images {
                if zeroFirst {
                    for phase in 0..<(sh * sw) {
                        (gathered.base + phase * phaseSize + image * phaseImage).update(repeating: 0, count: phaseImage)
                    }
                }
                for i in 0..<oh {
                    let u = i + g.padTop
                    // Phase (u % sh, c) row u / sh; column v = j + padLeft is phase column v % sw,
                    // pixel v / sw, stepped along instead of divided per pixel.
                    let phaseRow = gathered.base + (u % sh) * sw * phaseSize + image * phaseImage + (u / sh) * pw * cp
                    let source = dy + (image * oh + i) * ow * f
                    var (q, c) = g.padLeft.quotientAndRemainder(dividingBy: sw)
                    for j in 0..<ow {
                        copyPixel(phaseRow + c * phaseSize + q * cp, from: source + j * f, count: f)
                        c += 1
                        if c == sw { c = 0; q += 1 }
                    }
                }
            }
        }
        for (index, phase) in phases.enumerated() where phase.rows > 0 && phase.columns > 0 {
            let window = windowGeometry(phase)
            let taps = window.columnCount
            let phaseGradient = ScratchBuffer(count: taps * f)
            phaseGradient.base.update(repeating: 0, count: taps * f)
            DirectConvolution.kernelGradient(UnsafePointer(padded.base + windowOffset(phase)), n: batch,
                                             dy: UnsafePointer(gathered.base + index * phaseSize), cout: f,
                                             geometry: window, imageExtent: (p.inputHeight, p.inputWidth),
                                             dyChannelStride: cp, into: phaseGradient.base)
            // Tap (u, v, ci, o) of the phase is kernel tap (a, b, o, ci).
            forEachTap(of: phase) { phaseOffset, kernelOffset in
                let source = phaseGradient.base + phaseOffset / cp * f
                for o in 0..<f { dk[kernelOffset + o * cin] += source[o] }
            }
            withExtendedLifetime(phaseGradient) {}
        }
        withExtendedLifetime((padded, gathered)) {}
    }

    /// Computes the output `[N, OH, OW, F]` of input `x` `[N, H, W, Cin]` and kernel `[KH, KW, F, Cin]`.
    /// With `postBias` (`[F]`) and `relu`, the layer's bias and relu are applied as the phases are stored.
    ///
    /// Each phase convolves only its real taps (for 3x3 stride 2: 9 taps in all, where the phases
    /// stacked as `sh * sw * F` output channels of one convolution multiplied 16, the rest by
    /// zeros), over a window of the padded input that starts at its first real tap. The zero taps
    /// added nothing, so the sums are the same, in the same order: the same bits. Where the phases
    /// tile the output (the autoencoder's `same` layers), each phase stores its pixels straight
    /// into place (the kernel's output strides); otherwise into a slice that is then shuffled.
    func run(_ x: UnsafePointer<Float>, kernel: UnsafePointer<Float>, postBias: UnsafePointer<Float>?, relu: Bool,
             into y: UnsafeMutablePointer<Float>) {
        let g = geometry, p = phaseGeometry
        let phases = self.phases
        let packed = phases.map { phaseKernel(kernel, $0) }
        let padded = paddedInput(x)
        let (f, cp) = (filters, DirectConvolution.roundedChannels(filters))
        let direct = phasesTileTheOutput
        // Chunks of images whose phase outputs (about 256 KiB) stay in L2 between the convolution
        // that writes them and the shuffle that reads them, each thread in its own slice: the whole
        // batch's phases (4 output images' worth for stride 2: 50 MB for a predict batch of 1000 of
        // the autoencoder's last transposed layer) were written out and read back from memory.
        // A slice holds each phase's outputs `[images, PH, PW, F]` one after another.
        let phaseImage = p.outputHeight * p.outputWidth * phaseChannels
        let paddedImage = p.inputHeight * p.inputWidth * inputChannels
        let imagesPerChunk = Swift.max(1, Swift.min(batch, (1 << 16) / Swift.max(1, phaseImage)))
        let chunks = (batch + imagesPerChunk - 1) / imagesPerChunk
        let lanes = ThreadPool.shared.effectiveWidth
        let phaseOutputs = ScratchBuffer(count: direct ? 1 : Swift.max(1, lanes * imagesPerChunk * phaseImage))
        // Output pixel (y, x) is phase ((y + padTop) % sh, (x + padLeft) % sw) of phase pixel
        // ((y + padTop) / sh, (x + padLeft) / sw).
        let (sh, sw) = (g.strideHeight, g.strideWidth)
        let (oh, ow, ph, pw) = (g.inputHeight, g.inputWidth, p.outputHeight, p.outputWidth)
        let isa = KernelISA.current.rawValue
        ThreadPool.shared.parallelFor(chunks) { chunk, lane in
            let start = chunk * imagesPerChunk, count = Swift.min(imagesPerChunk, batch - start)
            let slice = phaseOutputs.base + lane * imagesPerChunk * phaseImage
            let phaseSize = count * ph * pw * f
            for (index, phase) in phases.enumerated() {
                // Phase row R (over the chunk's images) and column j: with `direct`, output row
                // (start * oh + R sh + r) and column (j sw + c), as padTop = padLeft = 0 and oh = PH sh.
                let (out, pixelStride, rowStride) = direct
                    ? (y + (start * oh + phase.row) * ow * f + phase.column * f, sw * f, sh * ow * f)
                    : (slice + index * phaseSize, f, pw * f)
                guard phase.rows > 0 && phase.columns > 0 else {
                    // No taps: the sum is 0, then the bias and relu as the kernel would store them.
                    for row in 0..<(count * ph) {
                        for column in 0..<pw {
                            let pixel = out + row * rowStride + column * pixelStride
                            for o in 0..<f {
                                var v: Float = 0
                                if let postBias { v = v + postBias[o] }
                                pixel[o] = relu && v < 0 ? 0 : v
                            }
                        }
                    }
                    continue
                }
                var args = ck_conv_args()
                args.x = UnsafePointer(padded.base + start * paddedImage + windowOffset(phase))
                args.h = Int64(p.inputHeight); args.w = Int64(p.inputWidth); args.cin = Int64(inputChannels)
                args.k = UnsafePointer(packed[index].base)
                args.kh = Int64(phase.rows); args.kw = Int64(phase.columns)
                args.cout = Int64(f); args.cout_padded = Int64(cp)
                args.sh = 1; args.sw = 1; args.dh = 1; args.dw = 1
                args.oh = Int64(ph); args.ow = Int64(pw)
                args.y = out
                args.y_pixel_stride = Int64(pixelStride); args.y_row_stride = Int64(rowStride)
                args.post_bias = postBias
                args.relu = relu ? 1 : 0
                withUnsafePointer(to: args) { ck_conv2d_forward(isa, $0, 0, Int64(count * ph)) }
            }
            guard !direct else { return }
            for row in 0..<(count * oh) {
                let image = row / oh, i = row % oh
                let u = i + g.padTop
                let phaseRow = UnsafePointer(slice) + (u % sh) * sw * phaseSize + ((image * ph + u / sh) * pw) * f
                let out = y + (start * oh + row) * ow * f
                var (q, c) = g.padLeft.quotientAndRemainder(dividingBy: sw)
                for j in 0..<ow {
                    copyPixel(out + j * f, from: phaseRow + c * phaseSize + q * f, count: f)
                    c += 1
                    if c == sw { c = 0; q += 1 }
                }
            }
        }
        withExtendedLifetime((packed, padded, phaseOutputs)) {}
    }
}
