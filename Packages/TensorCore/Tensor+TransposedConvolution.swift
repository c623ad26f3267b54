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
// Stacking the phases' kernels as output channels gives one stride-1 convolution with
// `T = ceil(KH / s)` rows of taps and `sh * sw * F` output channels ("sub-pixel" convolution),
// which the direct kernels run at full width (the autoencoder's 3x3 stride-2 layers: 64 and 32
// channels); its output is then shuffled into place, each output pixel copying `F` floats.
// Kernel taps past the kernel's edge are zeros (for 3x3 stride 2: 16 taps of which 9 are real).

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
        // The phases' channels are (phase, filter): the bias repeats once per phase.
        let phaseBias = bias.map { b in Tensor(Array(repeating: b.scalars, count: plan.phaseChannels / plan.filters).flatMap { $0 }) }
        return input.withUnsafeBufferPointer { xb in
            kernel.withUnsafeBufferPointer { kb in
                Tensor(shape: outputShape) { yb in
                    if let phaseBias {
                        phaseBias.withUnsafeBufferPointer { pb in
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

    /// Calls `body(phaseOffset, kernelOffset)` for every (u, v, r, c, ci) whose kernel tap exists:
    /// the offset of output channel 0 of phase (r, c) at phase tap (u, v) and input channel ci in
    /// the phases' kernel `[T_h, T_w, Cin, sh * sw * F]` (its F channels follow one another), and
    /// the offset of output channel 0 at kernel tap (r + sh (T_h - 1 - u), c + sw (T_w - 1 - v)) and
    /// input channel ci in the kernel `[KH, KW, F, Cin]` (its F channels `Cin` apart).
    private func forEachPhaseTap(_ body: (_ phaseOffset: Int, _ kernelOffset: Int) -> Void) {
        let (sh, sw, kh, kw) = (geometry.strideHeight, geometry.strideWidth, geometry.kernelHeight, geometry.kernelWidth)
        let (f, cin, channels) = (filters, inputChannels, phaseChannels)
        for u in 0..<tapRows {
            for v in 0..<tapColumns {
                for r in 0..<sh {
                    let a = r + sh * (tapRows - 1 - u)
                    guard a < kh else { continue }
                    for c in 0..<sw {
                        let b = c + sw * (tapColumns - 1 - v)
                        guard b < kw else { continue }
                        for ci in 0..<cin {
                            body(((u * tapColumns + v) * cin + ci) * channels + (r * sw + c) * f, (a * kw + b) * f * cin + ci)
                        }
                    }
                }
            }
        }
    }

    /// The phases' kernel `[T_h, T_w, Cin, sh * sw * F]`: tap (u, v) of phase (r, c) is kernel
    /// tap (r + sh (T_h - 1 - u), c + sw (T_w - 1 - v)), or zero past the kernel's edge.
    private func phaseKernel(_ kernel: UnsafePointer<Float>) -> ScratchBuffer {
        let (f, cin, channels) = (filters, inputChannels, phaseChannels)
        let packed = ScratchBuffer(count: tapRows * tapColumns * cin * channels)
        packed.base.update(repeating: 0, count: tapRows * tapColumns * cin * channels)
        forEachPhaseTap { phaseOffset, kernelOffset in
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

    /// Adds the kernel gradient `[KH, KW, F, Cin]` for input `x` `[N, H, W, Cin]` and output
    /// gradient `dy` `[N, OH, OW, F]` into `dk`: the phases' kernel gradient over the padded
    /// input, with `dy` gathered into the phases' layout (zeros where a phase pixel has no output
    /// pixel), then each phase tap taken back to its kernel tap.
    func kernelGradient(_ x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                        into dk: UnsafeMutablePointer<Float>) {
        let g = geometry, p = phaseGeometry
        let (sh, sw, f, cin, channels) = (g.strideHeight, g.strideWidth, filters, inputChannels, phaseChannels)
        let (oh, ow, ph, pw) = (g.inputHeight, g.inputWidth, p.outputHeight, p.outputWidth)
        let padded = paddedInput(x)
        let phases = ScratchBuffer(count: Swift.max(1, batch * ph * pw * channels))
        let phaseImage = ph * pw * channels
        ThreadPool.shared.parallelChunks(batch, grain: Swift.max(1, convolutionParallelGrain / Swift.max(1, phaseImage))) { images in
            for image in images {
                let target = phases.base + image * phaseImage
                target.update(repeating: 0, count: phaseImage)
                for i in 0..<oh {
                    let u = i + g.padTop
                    let phaseRow = target + (u / sh) * pw * channels + (u % sh) * sw * f
                    let source = dy + (image * oh + i) * ow * f
                    // Column v = j + padLeft is phase column v % sw of phase pixel v / sw, stepped
                    // along instead of divided per pixel.
                    var (q, r) = g.padLeft.quotientAndRemainder(dividingBy: sw)
                    for j in 0..<ow {
                        copyPixel(phaseRow + q * channels + r * f, from: source + j * f, count: f)
                        r += 1
                        if r == sw { r = 0; q += 1 }
                    }
                }
            }
        }
        let taps = tapRows * tapColumns * cin
        let phaseGradient = ScratchBuffer(count: taps * channels)
        phaseGradient.base.update(repeating: 0, count: taps * channels)
        DirectConvolution.kernelGradient(UnsafePointer(padded.base), n: batch, dy: UnsafePointer(phases.base),
                                         cout: channels, geometry: p, into: phaseGradient.base)
        // Phase tap (u, v, ci, (r, c, o)) is kernel tap (r + sh (T_h - 1 - u), c + sw (T_w - 1 - v), o, ci).
        forEachPhaseTap { phaseOffset, kernelOffset in
            let source = phaseGradient.base + phaseOffset
            for o in 0..<f { dk[kernelOffset + o * cin] += source[o] }
        }
        withExtendedLifetime((padded, phases, phaseGradient)) {}
    }

    /// Computes the output `[N, OH, OW, F]` of input `x` `[N, H, W, Cin]` and kernel `[KH, KW, F, Cin]`.
    /// With `postBias` (`[sh * sw * F]`, the bias once per phase) and `relu`, the layer's bias and
    /// relu are applied as the phases are stored.
    func run(_ x: UnsafePointer<Float>, kernel: UnsafePointer<Float>, postBias: UnsafePointer<Float>?, relu: Bool,
             into y: UnsafeMutablePointer<Float>) {
        let g = geometry, p = phaseGeometry
        let packed = phaseKernel(kernel)
        let padded = paddedInput(x)
        let channels = phaseChannels
        // Chunks of images whose phase outputs (about 256 KiB) stay in L2 between the convolution
        // that writes them and the shuffle that reads them, each thread in its own slice: the whole
        // batch's phases (4 output images' worth for stride 2: 50 MB for a predict batch of 1000 of
        // the autoencoder's last transposed layer) were written out and read back from memory.
        let phaseImage = p.outputHeight * p.outputWidth * channels
        let paddedImage = p.inputHeight * p.inputWidth * inputChannels
        let imagesPerChunk = Swift.max(1, Swift.min(batch, (1 << 16) / Swift.max(1, phaseImage)))
        let chunks = (batch + imagesPerChunk - 1) / imagesPerChunk
        let lanes = ThreadPool.shared.effectiveWidth
        let phases = ScratchBuffer(count: Swift.max(1, lanes * imagesPerChunk * phaseImage))
        // Output pixel (y, x) is phase ((y + padTop) % sh, (x + padLeft) % sw) of phase pixel
        // ((y + padTop) / sh, (x + padLeft) / sw).
        let (sh, sw, f) = (g.strideHeight, g.strideWidth, filters)
        let (oh, ow, ph, pw) = (g.inputHeight, g.inputWidth, p.outputHeight, p.outputWidth)
        ThreadPool.shared.parallelFor(chunks) { chunk, lane in
            let start = chunk * imagesPerChunk, count = Swift.min(imagesPerChunk, batch - start)
            let slice = phases.base + lane * imagesPerChunk * phaseImage
            // Nested in the pool, the convolution runs on this thread.
            DirectConvolution.forward(UnsafePointer(padded.base + start * paddedImage), n: count,
                                      kernel: UnsafePointer(packed.base), cout: channels, bias: nil, postBias: postBias,
                                      relu: relu, geometry: p, into: slice)
            for row in 0..<(count * oh) {
                let image = row / oh, i = row % oh
                let u = i + g.padTop
                let phaseRow = UnsafePointer(slice) + ((image * ph + u / sh) * pw) * channels + (u % sh) * sw * f
                let out = y + (start * oh + row) * ow * f
                var (q, r) = g.padLeft.quotientAndRemainder(dividingBy: sw)
                for j in 0..<ow {
                    copyPixel(out + j * f, from: phaseRow + q * channels + r * f, count: f)
                    r += 1
                    if r == sw { r = 0; q += 1 }
                }
            }
        }
        withExtendedLifetime((packed, padded, phases)) {}
    }
}
