import CKernels

// 2-D pooling over NHWC images. Every kernel loops over output rows, then window cells, with the
// innermost loop over channels: contiguous in NHWC, so it vectorises. Forward passes split output
// rows over the thread pool; backward passes scatter into overlapping windows and so split by image.

extension Conv2DGeometry {
    /// Window rows `lo..<hi` (in `0..<kernelHeight`) of output row `oh` that lie inside the input,
    /// and the input row of window row 0.
    @inline(__always)
    func rowWindow(_ oh: Int) -> (origin: Int, lo: Int, hi: Int) {
        let origin = oh * strideHeight - padTop
        return (origin, max(0, -origin), min(kernelHeight, inputHeight - origin))
    }

    /// Window columns `lo..<hi` (in `0..<kernelWidth`) of output column `ow` that lie inside the
    /// input, and the input column of window column 0.
    @inline(__always)
    func columnWindow(_ ow: Int) -> (origin: Int, lo: Int, hi: Int) {
        let origin = ow * strideWidth - padLeft
        return (origin, max(0, -origin), min(kernelWidth, inputWidth - origin))
    }
}

extension Tensor {
    /// The geometry of a pooling window over `shape`, with checks that name the shape.
    private static func poolingGeometry(_ op: String, _ shape: [Int], poolSize: (Int, Int),
                                        strides: (Int, Int)?, padding: Padding) -> Conv2DGeometry {
        neuritePrecondition(shape.count == 4, "\(op) input must be [N, H, W, C], got \(shape)")
        neuritePrecondition(poolSize.0 >= 1 && poolSize.1 >= 1,
                     "\(op) pool size (\(poolSize.0), \(poolSize.1)) must be at least 1x1")
        if padding == .valid {
            neuritePrecondition(shape[1] >= poolSize.0 && shape[2] >= poolSize.1,
                         "\(op) input \(shape) is \(shape[1])x\(shape[2]), smaller than pool size (\(poolSize.0), \(poolSize.1)) with valid padding")
        }
        return Conv2DGeometry(inputHeight: shape[1], inputWidth: shape[2], channels: shape[3],
                              kernelHeight: poolSize.0, kernelWidth: poolSize.1,
                              strides: strides ?? poolSize, padding: padding)
    }

    /// Checks that a pooling output gradient is `[N, OH, OW, C]` for `inputShape`.
    private static func checkPoolingGradient(_ op: String, _ outputGradient: Tensor, _ inputShape: [Int],
                                             _ g: Conv2DGeometry) {
        let expected = [inputShape[0], g.outputHeight, g.outputWidth, g.channels]
        neuritePrecondition(outputGradient.shape == expected,
                     "\(op) output gradient \(outputGradient.shape) does not match input shape \(inputShape): expected \(expected)")
    }

    /// Runs `body(rows)` over output rows `0..<totalRows` (`(image, oh)` pairs), split over the
    /// pool when `rowWork` (floats touched per row) times the row count is large. For kernels whose
    /// rows write disjoint outputs.
    private static func forEachRowChunk(_ totalRows: Int, rowWork: Int, _ body: (Range<Int>) -> Void) {
        ThreadPool.shared.parallelChunks(totalRows, grain: Swift.max(1, convolutionParallelGrain / Swift.max(1, rowWork)), body)
    }

    /// Runs `body(n)` for every image `n` in `0..<batch`, split over the pool when `imageWork`
    /// (floats touched per image) times the batch is large. For kernels that scatter into their image.
    private static func forEachImage(_ batch: Int, imageWork: Int, _ body: (Int) -> Void) {
        if batch > 1 && batch * imageWork >= 2 * convolutionParallelGrain {
            ThreadPool.shared.parallelFor(batch) { n, _ in body(n) }
        } else {
            for n in 0..<batch { body(n) }
        }
    }

    // MARK: Max pooling

    /// Max pooling over NHWC images (Keras `MaxPooling2D`): `[N, H, W, C]` to `[N, OH, OW, C]`,
    /// each output the largest input in its `poolSize` window, per channel.
    ///
    /// `indices[i]` is the flat (row-major, whole-tensor) index into `input` of the element that
    /// output element `i` took, which is what ``maxPool2DBackward(outputGradient:indices:inputShape:)``
    /// needs. Ties go to the first cell in row-major window order; a NaN in a window wins (it
    /// propagates); padding cells of `.same` never win (they act as -infinity), and every window
    /// holds at least one real cell. Output extents follow ``Padding``.
    ///
    /// Cost: one read of every window cell, `N * OH * OW * PH * PW * C` compares, vectorised
    /// over channels and split over the thread pool by output rows when large.
    /// - Parameters:
    ///   - input: the images, `[N, H, W, C]`.
    ///   - poolSize: `(PH, PW)`, the window.
    ///   - strides: `(sh, sw)`, the step between windows; `nil` means `poolSize` (no overlap).
    ///   - padding: `.valid` or `.same` (see ``Padding``).
    /// - Precondition: `input` is rank 4 with fewer than 2^31 elements, and with `.valid` at least
    ///   as large as the window.
    public static func maxPool2D(_ input: Tensor, poolSize: (Int, Int), strides: (Int, Int)? = nil,
                                 padding: Padding = .valid) -> (output: Tensor, indices: [Int32]) {
        let g = poolingGeometry("maxPool2D", input.shape, poolSize: poolSize, strides: strides, padding: padding)
        neuritePrecondition(input.count <= Int(Int32.max),
                     "maxPool2D input \(input.shape) has \(input.count) elements, more than Int32 indices can address")
        let n = input.shape[0], c = g.channels
        let outputShape = [n, g.outputHeight, g.outputWidth, c]
        let outputCount = Tensor.elementCount(of: outputShape)
        var indices: [Int32] = []
        let output = Tensor(shape: outputShape) { dst in
            indices = [Int32](unsafeUninitializedCapacity: outputCount) { idx, initialized in
                input.withUnsafeBufferPointer { src in
                    var args = ck_maxpool_args()
                    args.x = src.baseAddress
                    args.h = Int64(g.inputHeight); args.w = Int64(g.inputWidth); args.c = Int64(c)
                    args.ph = Int64(g.kernelHeight); args.pw = Int64(g.kernelWidth)
                    args.sh = Int64(g.strideHeight); args.sw = Int64(g.strideWidth)
                    args.pad_top = Int64(g.padTop); args.pad_left = Int64(g.padLeft)
                    args.oh = Int64(g.outputHeight); args.ow = Int64(g.outputWidth)
                    args.y = dst.baseAddress
                    args.indices = idx.baseAddress
                    let isa = KernelISA.current.rawValue
                    let rowWork = g.outputWidth * g.kernelHeight * g.kernelWidth * c
                    withUnsafePointer(to: args) { a in
                        forEachRowChunk(n * g.outputHeight, rowWork: rowWork) { rows in
                            ck_maxpool2d_forward(isa, a, Int64(rows.lowerBound), Int64(rows.count))
                        }
                    }
                }
                initialized = outputCount
            }
        }
        return (output, indices)
    }

    /// The input gradient of ``maxPool2D(_:poolSize:strides:padding:)``: each output gradient
    /// element is added to the input element its window took (`indices`), so an input element
    /// that wins several overlapping windows receives the sum; all others receive zero.
    ///
    /// Cost: one write of the input gradient (each image zeroed, then its scatter-add while in
    /// cache), split over the pool by image when large.
    /// - Precondition: `inputShape` is `[N, H, W, C]`, `outputGradient` is `[N, OH, OW, C]` with
    ///   one index per element, and every index lies in its own image of `inputShape` (as
    ///   `maxPool2D` produces).
    public static func maxPool2DBackward(outputGradient: Tensor, indices: [Int32], inputShape: [Int]) -> Tensor {
        neuritePrecondition(inputShape.count == 4 && outputGradient.rank == 4
                        && outputGradient.shape[0] == inputShape[0] && outputGradient.shape[3] == inputShape[3],
                     "maxPool2DBackward output gradient \(outputGradient.shape) does not match input shape \(inputShape)")
        neuritePrecondition(indices.count == outputGradient.count,
                     "maxPool2DBackward has \(indices.count) indices for output gradient \(outputGradient.shape) (\(outputGradient.count) elements)")
        let batch = inputShape[0]
        let inputPerImage = inputShape[1] * inputShape[2] * inputShape[3]
        let outputPerImage = batch == 0 ? 0 : outputGradient.count / batch
        // Each image's gradient is zeroed just before its scatter, while it is in cache, instead
        // of the whole tensor in a pass of its own (a separate memset of the course CNN's
        // 4.7 MB first-pool gradient was 2.2% of its training profile, the scatter 5.6%).
        return Tensor(shape: inputShape) { dxb in
            guard dxb.count > 0 else { return }
            outputGradient.withUnsafeBufferPointer { dyb in
                indices.withUnsafeBufferPointer { ib in
                    let dy = dyb.baseAddress, idx = ib.baseAddress, dx = dxb.baseAddress!
                    forEachImage(batch, imageWork: outputPerImage + inputPerImage) { n in
                        let lower = n * inputPerImage, upper = lower + inputPerImage
                        (dx + lower).update(repeating: 0, count: inputPerImage)
                        guard let dy, let idx else { return }
                        for i in (n * outputPerImage)..<((n + 1) * outputPerImage) {
                            let j = Int(idx[i])
                            neuritePrecondition(j >= lower && j < upper,
                                         "maxPool2DBackward index \(j) (element \(i)) is outside image \(n) of input shape \(inputShape)")
                            dx[j] += dy[i]
                        }
                    }
                }
            }
        }
    }

    /// ``maxPool2DBackward(outputGradient:indices:inputShape:)`` for the `indices` that
    /// ``maxPool2D(_:poolSize:strides:padding:)`` gave with these `poolSize`, `strides` and
    /// `padding` (a pooling layer's own): the same bits. Where the windows do not overlap (strides
    /// at least the window: the default), every input float is written once, by output rows of
    /// the input split over the pool: the winner's gradient or zero. Otherwise as the general form.
    /// - Precondition: as for the general form, and `indices` from `maxPool2D` with these parameters
    ///   (the windows that do not overlap are not checked against the indices).
    package static func maxPool2DBackward(outputGradient: Tensor, indices: [Int32], inputShape: [Int],
                                          poolSize: (Int, Int), strides: (Int, Int)?, padding: Padding) -> Tensor {
        let g = poolingGeometry("maxPool2DBackward", inputShape, poolSize: poolSize, strides: strides, padding: padding)
        guard g.strideHeight >= g.kernelHeight, g.strideWidth >= g.kernelWidth,
              Tensor.elementCount(of: inputShape) <= Int(Int32.max) else {
            return maxPool2DBackward(outputGradient: outputGradient, indices: indices, inputShape: inputShape)
        }
        checkPoolingGradient("maxPool2DBackward", outputGradient, inputShape, g)
        neuritePrecondition(indices.count == outputGradient.count,
                     "maxPool2DBackward has \(indices.count) indices for output gradient \(outputGradient.shape) (\(outputGradient.count) elements)")
        let rows = inputShape[0] * g.inputHeight
        return Tensor(shape: inputShape) { dxb in
            guard dxb.count > 0 else { return }
            outputGradient.withUnsafeBufferPointer { dyb in
                indices.withUnsafeBufferPointer { ib in
                    var args = ck_maxpool_args()
                    args.h = Int64(g.inputHeight); args.w = Int64(g.inputWidth); args.c = Int64(g.channels)
                    args.ph = Int64(g.kernelHeight); args.pw = Int64(g.kernelWidth)
                    args.sh = Int64(g.strideHeight); args.sw = Int64(g.strideWidth)
                    args.pad_top = Int64(g.padTop); args.pad_left = Int64(g.padLeft)
                    args.oh = Int64(g.outputHeight); args.ow = Int64(g.outputWidth)
                    args.indices = UnsafeMutablePointer(mutating: ib.baseAddress)
                    let isa = KernelISA.current.rawValue
                    let dy = dyb.baseAddress, dx = dxb.baseAddress
                    withUnsafePointer(to: args) { a in
                        forEachRowChunk(rows, rowWork: 2 * g.inputWidth * g.channels) { range in
                            ck_maxpool2d_backward(isa, a, dy, dx, Int64(range.lowerBound), Int64(range.count))
                        }
                    }
                }
            }
        }
    }

    // MARK: Average pooling

    /// Average pooling over NHWC images (Keras `AveragePooling2D`): `[N, H, W, C]` to
    /// `[N, OH, OW, C]`, each output the mean of the input cells in its `poolSize` window, per channel.
    ///
    /// With `.same`, padding cells are left out of both the sum and the divisor, as in Keras and
    /// TensorFlow: a corner window that covers 2 of 4 real cells divides by 2.
    ///
    /// Cost: `N * OH * OW * PH * PW * C` additions, vectorised over channels and split over the
    /// thread pool by output rows when large.
    /// - Parameters:
    ///   - input: the images, `[N, H, W, C]`.
    ///   - poolSize: `(PH, PW)`, the window.
    ///   - strides: `(sh, sw)`, the step between windows; `nil` means `poolSize` (no overlap).
    ///   - padding: `.valid` or `.same` (see ``Padding``).
    /// - Precondition: `input` is rank 4, and with `.valid` at least as large as the window.
    public static func averagePool2D(_ input: Tensor, poolSize: (Int, Int), strides: (Int, Int)? = nil,
                                     padding: Padding = .valid) -> Tensor {
        let g = poolingGeometry("averagePool2D", input.shape, poolSize: poolSize, strides: strides, padding: padding)
        let n = input.shape[0], c = g.channels, w = g.inputWidth
        return input.withUnsafeBufferPointer { srcBuffer in
            Tensor(shape: [n, g.outputHeight, g.outputWidth, c]) { dstBuffer in
                let src = srcBuffer.baseAddress!, dst = dstBuffer.baseAddress!
                forEachRowChunk(n * g.outputHeight, rowWork: g.outputWidth * g.kernelHeight * g.kernelWidth * c) { rows in
                    for r in rows {
                        let image = src + (r / g.outputHeight) * g.inputHeight * w * c
                        let (ih0, khLo, khHi) = g.rowWindow(r % g.outputHeight)
                        for ow in 0..<g.outputWidth {
                            let (iw0, kwLo, kwHi) = g.columnWindow(ow)
                            let out = dst + (r * g.outputWidth + ow) * c
                            out.update(repeating: 0, count: c)
                            for kh in khLo..<khHi {
                                for kw in kwLo..<kwHi {
                                    let cell = image + ((ih0 + kh) * w + iw0 + kw) * c
                                    for ch in 0..<c { out[ch] += cell[ch] }
                                }
                            }
                            let scale = 1 / Float((khHi - khLo) * (kwHi - kwLo))
                            for ch in 0..<c { out[ch] *= scale }
                        }
                    }
                }
            }
        }
    }

    /// The input gradient of ``averagePool2D(_:poolSize:strides:padding:)``: each output gradient
    /// element is shared equally among the real cells of its window (divided by their number, as
    /// in the forward pass) and added there, so overlapping windows accumulate.
    ///
    /// Cost: `N * OH * OW * PH * PW * C` additions, split over the pool by image when large.
    /// - Precondition: `inputShape` is `[N, H, W, C]` and `outputGradient` is `[N, OH, OW, C]` for
    ///   the same pooling parameters.
    public static func averagePool2DBackward(outputGradient: Tensor, inputShape: [Int], poolSize: (Int, Int),
                                             strides: (Int, Int)? = nil, padding: Padding = .valid) -> Tensor {
        let g = poolingGeometry("averagePool2DBackward", inputShape, poolSize: poolSize, strides: strides,
                                padding: padding)
        checkPoolingGradient("averagePool2DBackward", outputGradient, inputShape, g)
        let batch = inputShape[0], c = g.channels, w = g.inputWidth
        var result = Tensor.zeros(inputShape)
        outputGradient.withUnsafeBufferPointer { dyb in
            result.withUnsafeMutableBufferPointer { dxb in
                let dy = dyb.baseAddress!, dx = dxb.baseAddress!
                let imageWork = g.outputHeight * g.outputWidth * g.kernelHeight * g.kernelWidth * c
                forEachImage(batch, imageWork: imageWork) { n in
                    let image = dx + n * g.inputHeight * w * c
                    for oh in 0..<g.outputHeight {
                        let (ih0, khLo, khHi) = g.rowWindow(oh)
                        for ow in 0..<g.outputWidth {
                            let (iw0, kwLo, kwHi) = g.columnWindow(ow)
                            let grad = dy + ((n * g.outputHeight + oh) * g.outputWidth + ow) * c
                            let scale = 1 / Float((khHi - khLo) * (kwHi - kwLo))
                            for kh in khLo..<khHi {
                                for kw in kwLo..<kwHi {
                                    let cell = image + ((ih0 + kh) * w + iw0 + kw) * c
                                    for ch in 0..<c { cell[ch] += grad[ch] * scale }
                                }
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    // MARK: Global average pooling

    /// The mean over all positions of each image and channel (Keras `GlobalAveragePooling2D`):
    /// `[N, H, W, C]` to `[N, C]`.
    ///
    /// Cost: one pass over the input, vectorised over channels, split over the pool by image
    /// when large. Each image's sum is taken in Float blocks of 64 positions added in Float64.
    /// - Precondition: `input` is rank 4 with `H * W > 0`.
    public static func globalAveragePool2D(_ input: Tensor) -> Tensor {
        neuritePrecondition(input.rank == 4, "globalAveragePool2D input must be [N, H, W, C], got \(input.shape)")
        let n = input.shape[0], positions = input.shape[1] * input.shape[2], c = input.shape[3]
        neuritePrecondition(positions > 0, "globalAveragePool2D input \(input.shape) has no positions to average")
        return input.withUnsafeBufferPointer { src in
            Tensor(shape: [n, c]) { dst in
                forEachImage(n, imageWork: positions * c) { image in
                    // One image is a [positions, C] matrix; its mean is the column sums over positions.
                    columnSums(src.baseAddress! + image * positions * c, rows: positions, columns: c,
                               into: dst.baseAddress! + image * c)
                    let out = dst.baseAddress! + image * c, scale = 1 / Float(positions)
                    for ch in 0..<c { out[ch] *= scale }
                }
            }
        }
    }

    /// The input gradient of ``globalAveragePool2D(_:)``: every position of image `n` receives
    /// `outputGradient[n, c] / (H * W)` in channel `c`.
    ///
    /// Cost: one write pass over the input shape.
    /// - Precondition: `inputShape` is `[N, H, W, C]` with `H * W > 0` and `outputGradient` is `[N, C]`.
    public static func globalAveragePool2DBackward(outputGradient: Tensor, inputShape: [Int]) -> Tensor {
        neuritePrecondition(inputShape.count == 4 && outputGradient.shape == [inputShape[0], inputShape[3]],
                     "globalAveragePool2DBackward output gradient \(outputGradient.shape) does not match input shape \(inputShape): expected [N, C]")
        let n = inputShape[0], positions = inputShape[1] * inputShape[2], c = inputShape[3]
        neuritePrecondition(positions > 0, "globalAveragePool2DBackward input shape \(inputShape) has no positions")
        return outputGradient.withUnsafeBufferPointer { dyb in
            Tensor(shape: inputShape) { dxb in
                let dy = dyb.baseAddress!, dx = dxb.baseAddress!, scale = 1 / Float(positions)
                forEachImage(n, imageWork: positions * c) { image in
                    let grad = dy + image * c
                    for p in 0..<positions {
                        let out = dx + (image * positions + p) * c
                        for ch in 0..<c { out[ch] = grad[ch] * scale }
                    }
                }
            }
        }
    }
}
