import CKernels

/// How a convolution or pooling window treats the border of an image (Keras semantics).
///
/// For one spatial axis with input extent `in`, window extent `k` (after dilation:
/// `(k - 1) * dilation + 1`) and stride `s`:
/// - ``valid``: windows lie entirely inside the input; `out = (in - k) / s + 1` (rounded down).
///   An input smaller than the window is a programmer error and stops with a precondition.
/// - ``same``: `out = ceil(in / s)`; the input is padded by `max((out - 1) * s + k - in, 0)` cells,
///   `total / 2` before (top, left) and the rest after (bottom, right), as TensorFlow does.
///   Convolutions read zeros there; max pooling never picks a padding cell and average pooling
///   leaves padding cells out of the divisor.
public enum Padding: String, Sendable, Codable {
    /// No padding: every window lies inside the input, so the output shrinks by `k - 1` (before striding).
    case valid
    /// Pad so the output extent is `ceil(input / stride)`; extra padding goes at the bottom and right.
    case same
}

/// The shapes and offsets of a 2-D convolution (or pooling) over NHWC images.
///
/// Holds the input extent `H x W x C`, the kernel extent `KH x KW`, strides, dilation and padding,
/// and derives the output extent `OH x OW` and the padding on each side (see ``Padding``).
/// A window at output `(oh, ow)` reads input rows `oh * strideHeight - padTop + kh * dilationHeight`
/// for `kh` in `0..<kernelHeight`, and likewise for columns.
///
/// ```swift
/// let g = Conv2DGeometry(inputHeight: 28, inputWidth: 28, channels: 1,
///                        kernelHeight: 3, kernelWidth: 3, strides: (2, 2), padding: .same)
/// // g.outputHeight == 14, g.padTop == 0, g.padBottom == 1
/// ```
public struct Conv2DGeometry: Sendable, Equatable {
    /// Input rows `H`.
    public let inputHeight: Int
    /// Input columns `W`.
    public let inputWidth: Int
    /// Input channels `C` (the innermost, contiguous axis).
    public let channels: Int
    /// Kernel (window) rows `KH`, before dilation.
    public let kernelHeight: Int
    /// Kernel (window) columns `KW`, before dilation.
    public let kernelWidth: Int
    /// Step between windows along the rows.
    public let strideHeight: Int
    /// Step between windows along the columns.
    public let strideWidth: Int
    /// Step between kernel taps along the rows (1: adjacent rows).
    public let dilationHeight: Int
    /// Step between kernel taps along the columns (1: adjacent columns).
    public let dilationWidth: Int
    /// How the border is treated.
    public let padding: Padding
    /// Output rows `OH`.
    public let outputHeight: Int
    /// Output columns `OW`.
    public let outputWidth: Int
    /// Padding rows above the input (zero for ``Padding/valid``).
    public let padTop: Int
    /// Padding columns left of the input (zero for ``Padding/valid``).
    public let padLeft: Int
    /// Padding rows below the input: `padTop` or one more.
    public let padBottom: Int
    /// Padding columns right of the input: `padLeft` or one more.
    public let padRight: Int

    /// Validates the configuration and derives the output extent and padding.
    ///
    /// - Precondition: extents are non-negative, kernel extents, strides and dilations are at
    ///   least 1, and with ``Padding/valid`` the input is at least as large as the dilated kernel.
    ///   The message names the offending values.
    public init(inputHeight: Int, inputWidth: Int, channels: Int,
                kernelHeight: Int, kernelWidth: Int,
                strides: (Int, Int) = (1, 1), dilation: (Int, Int) = (1, 1),
                padding: Padding = .valid) {
        neuritePrecondition(inputHeight >= 0 && inputWidth >= 0 && channels >= 0,
                     "Conv2DGeometry: input \(inputHeight)x\(inputWidth)x\(channels) has a negative extent")
        neuritePrecondition(kernelHeight >= 1 && kernelWidth >= 1,
                     "Conv2DGeometry: kernel \(kernelHeight)x\(kernelWidth) must be at least 1x1")
        neuritePrecondition(strides.0 >= 1 && strides.1 >= 1,
                     "Conv2DGeometry: strides (\(strides.0), \(strides.1)) must be at least 1")
        neuritePrecondition(dilation.0 >= 1 && dilation.1 >= 1,
                     "Conv2DGeometry: dilation (\(dilation.0), \(dilation.1)) must be at least 1")
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.channels = channels
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strides.0
        self.strideWidth = strides.1
        self.dilationHeight = dilation.0
        self.dilationWidth = dilation.1
        self.padding = padding
        let rows = Conv2DGeometry.axis("height", input: inputHeight, kernel: kernelHeight,
                                       stride: strides.0, dilation: dilation.0, padding: padding)
        let columns = Conv2DGeometry.axis("width", input: inputWidth, kernel: kernelWidth,
                                          stride: strides.1, dilation: dilation.1, padding: padding)
        (outputHeight, padTop, padBottom) = rows
        (outputWidth, padLeft, padRight) = columns
    }

    /// Output extent and padding before and after along one axis.
    private static func axis(_ name: String, input: Int, kernel: Int, stride: Int, dilation: Int,
                             padding: Padding) -> (Int, Int, Int) {
        let effective = (kernel - 1) * dilation + 1
        switch padding {
        case .valid:
            neuritePrecondition(input >= effective,
                         "Conv2DGeometry: valid padding needs input \(name) \(input) >= dilated kernel \(name) \(effective) (kernel \(kernel), dilation \(dilation))")
            return ((input - effective) / stride + 1, 0, 0)
        case .same:
            let output = (input + stride - 1) / stride
            if output == 0 { return (0, 0, 0) }
            let total = max((output - 1) * stride + effective - input, 0)
            return (output, total / 2, total - total / 2)
        }
    }

    /// Kernel rows after dilation: `(kernelHeight - 1) * dilationHeight + 1`.
    public var dilatedKernelHeight: Int { (kernelHeight - 1) * dilationHeight + 1 }

    /// Kernel columns after dilation: `(kernelWidth - 1) * dilationWidth + 1`.
    public var dilatedKernelWidth: Int { (kernelWidth - 1) * dilationWidth + 1 }

    /// The length of one im2col row, `KH * KW * C`: the rows of a `[KH, KW, C, Cout]` kernel
    /// viewed as a matrix.
    public var columnCount: Int { kernelHeight * kernelWidth * channels }

    /// Whether im2col is the identity (a 1x1 kernel, stride 1, no padding), so columns are the input itself.
    public var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1
            && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0
    }
}

// MARK: - im2col and col2im kernels

/// Upper bound, in floats, of the im2col buffer `conv2D` and `conv2DBackward` use: 8 MiB.
/// A batch is processed a few images (or, for huge images, a few output rows) at a time.
let convolutionColumnBudget = 1 << 21

/// Work, in floats touched, below which a kernel stays on the calling thread.
let convolutionParallelGrain = 1 << 15

extension Conv2DGeometry {
    /// Writes the im2col rows of output rows `rows`, where output row `r` is image `r / OH`,
    /// row `r % OH`, and covers `OW` positions of `KH * KW * C` floats each.
    /// `dst` receives the first position of `rows.lowerBound`.
    func im2colRows(_ src: UnsafePointer<Float>, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let h = inputHeight, w = inputWidth, c = channels
        let kw = kernelWidth, segment = kernelWidth * channels, positionLength = columnCount
        var out = dst
        for r in rows {
            let image = src + (r / outputHeight) * h * w * c
            let ih0 = (r % outputHeight) * strideHeight - padTop
            for ow in 0..<outputWidth {
                let iw0 = ow * strideWidth - padLeft
                for kh in 0..<kernelHeight {
                    let ih = ih0 + kh * dilationHeight
                    let seg = out + kh * segment
                    guard ih >= 0 && ih < h else {
                        seg.update(repeating: 0, count: segment)
                        continue
                    }
                    let line = image + ih * w * c
                    if dilationWidth == 1 {
                        // Taps kw in lo..<hi are inside the row, and adjacent in NHWC: one copy.
                        let lo = min(max(0, -iw0), kw), hi = max(min(kw, w - iw0), lo)
                        if lo > 0 { seg.update(repeating: 0, count: lo * c) }
                        if hi > lo { (seg + lo * c).update(from: line + (iw0 + lo) * c, count: (hi - lo) * c) }
                        if hi < kw { (seg + hi * c).update(repeating: 0, count: (kw - hi) * c) }
                    } else {
                        for tap in 0..<kw {
                            let iw = iw0 + tap * dilationWidth
                            if iw >= 0 && iw < w {
                                (seg + tap * c).update(from: line + iw * c, count: c)
                            } else {
                                (seg + tap * c).update(repeating: 0, count: c)
                            }
                        }
                    }
                }
                out += positionLength
            }
        }
    }

    /// The adjoint of `im2colRows`: adds the column rows of output rows `rows` (starting at
    /// `columns`) into the images at `dst`, summing where windows overlap.
    func col2imRows(_ columns: UnsafePointer<Float>, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let h = inputHeight, w = inputWidth, c = channels
        let kw = kernelWidth, segment = kernelWidth * channels, positionLength = columnCount
        var from = columns
        for r in rows {
            let image = dst + (r / outputHeight) * h * w * c
            let ih0 = (r % outputHeight) * strideHeight - padTop
            for ow in 0..<outputWidth {
                let iw0 = ow * strideWidth - padLeft
                for kh in 0..<kernelHeight {
                    let ih = ih0 + kh * dilationHeight
                    guard ih >= 0 && ih < h else { continue }
                    let seg = from + kh * segment
                    let line = image + ih * w * c
                    if dilationWidth == 1 {
                        let lo = min(max(0, -iw0), kw), hi = max(min(kw, w - iw0), lo)
                        let target = line + (iw0 + lo) * c, source = seg + lo * c
                        for i in 0..<((hi - lo) * c) { target[i] += source[i] }
                    } else {
                        for tap in 0..<kw {
                            let iw = iw0 + tap * dilationWidth
                            guard iw >= 0 && iw < w else { continue }
                            let target = line + iw * c, source = seg + tap * c
                            for i in 0..<c { target[i] += source[i] }
                        }
                    }
                }
                from += positionLength
            }
        }
    }

    /// `im2colRows`, split over the thread pool by output rows when the chunk is large
    /// (rows write disjoint column rows, so any split is race-free).
    func im2colParallel(_ src: UnsafePointer<Float>, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let rowLength = outputWidth * columnCount
        guard !rows.isEmpty, rowLength > 0 else { return }
        let grain = max(1, convolutionParallelGrain / rowLength)
        ThreadPool.shared.parallelChunks(rows.count, grain: grain) { piece in
            im2colRows(src, rows: (rows.lowerBound + piece.lowerBound)..<(rows.lowerBound + piece.upperBound),
                       into: dst + piece.lowerBound * rowLength)
        }
    }

    /// `col2imRows`, split over the thread pool by image when the chunk is large. Windows of one
    /// image overlap, windows of different images never do, so splitting by image cannot race.
    func col2imParallel(_ columns: UnsafePointer<Float>, rows: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let rowLength = outputWidth * columnCount
        guard !rows.isEmpty, rowLength > 0 else { return }
        let firstImage = rows.lowerBound / outputHeight, lastImage = (rows.upperBound - 1) / outputHeight
        if firstImage == lastImage || rows.count * rowLength < 2 * convolutionParallelGrain {
            col2imRows(columns, rows: rows, into: dst)
            return
        }
        ThreadPool.shared.parallelFor(lastImage - firstImage + 1) { i, _ in
            let n = firstImage + i
            let lo = max(rows.lowerBound, n * outputHeight), hi = min(rows.upperBound, (n + 1) * outputHeight)
            col2imRows(columns + (lo - rows.lowerBound) * rowLength, rows: lo..<hi, into: dst)
        }
    }

    /// How many output rows (`(image, oh)` pairs) one chunk of `conv2D` holds: whole images when
    /// one image's columns fit the budget, else as many rows as fit (at least one); chunks are
    /// balanced so the last one is not a sliver.
    func chunkRows(batch: Int) -> Int {
        let totalRows = batch * outputHeight
        guard totalRows > 0 else { return 1 }
        let rowLength = max(1, outputWidth * columnCount)
        let imageLength = outputHeight * rowLength
        if imageLength <= convolutionColumnBudget {
            let images = max(1, convolutionColumnBudget / imageLength)
            let chunks = (batch + images - 1) / images
            return (batch + chunks - 1) / chunks * outputHeight
        }
        let rows = max(1, convolutionColumnBudget / rowLength)
        let chunks = (totalRows + rows - 1) / rows
        return (totalRows + chunks - 1) / chunks
    }

    /// Runs `body` over a batch's output rows in chunks of ``chunkRows(batch:)``, with one buffer
    /// for a chunk's im2col columns (`rows.count * outputWidth * columnCount` floats, within the
    /// column budget) that every chunk reuses: the loop of the im2col + GEMM paths, forward and
    /// backward.
    func forEachColumnChunk(batch: Int, _ body: (_ rows: Range<Int>, _ columns: UnsafeMutablePointer<Float>) -> Void) {
        let totalRows = batch * outputHeight
        let chunk = chunkRows(batch: batch)
        let columns = ScratchBuffer(count: chunk * outputWidth * columnCount)
        for r0 in stride(from: 0, to: totalRows, by: chunk) {
            body(r0..<Swift.min(totalRows, r0 + chunk), columns.base)
        }
        withExtendedLifetime(columns) {}
    }
}

// MARK: - Public operations

extension Tensor {
    /// Checks that `input` is `[N, H, W, C]` with the extent `geometry` describes; returns `N`.
    private static func checkImages(_ op: String, _ input: Tensor, _ g: Conv2DGeometry) -> Int {
        neuritePrecondition(input.rank == 4 && input.shape[1] == g.inputHeight && input.shape[2] == g.inputWidth
                        && input.shape[3] == g.channels,
                     "\(op) input \(input.shape) does not match geometry [N, \(g.inputHeight), \(g.inputWidth), \(g.channels)]")
        return input.shape[0]
    }

    /// The geometry of `conv2D(input, kernel, ...)`, with shape checks that name both shapes.
    private static func convolutionGeometry(_ op: String, input: Tensor, kernel: Tensor, strides: (Int, Int),
                                            padding: Padding, dilation: (Int, Int)) -> Conv2DGeometry {
        convolutionGeometry(op, inputShape: input.shape, kernelShape: kernel.shape, strides: strides, padding: padding,
                            dilation: dilation)
    }

    /// The geometry of a convolution of `inputShape` with `kernelShape`, with shape checks that
    /// name both shapes.
    private static func convolutionGeometry(_ op: String, inputShape: [Int], kernelShape: [Int], strides: (Int, Int),
                                            padding: Padding, dilation: (Int, Int)) -> Conv2DGeometry {
        neuritePrecondition(inputShape.count == 4, "\(op) input must be [N, H, W, Cin], got \(inputShape)")
        neuritePrecondition(kernelShape.count == 4, "\(op) kernel must be [KH, KW, Cin, Cout], got \(kernelShape)")
        neuritePrecondition(inputShape.allSatisfy { $0 >= 0 } && kernelShape.allSatisfy { $0 >= 0 },
                     "\(op) shapes \(inputShape) and \(kernelShape) must not have negative extents")
        neuritePrecondition(inputShape[3] == kernelShape[2],
                     "\(op) input \(inputShape) has \(inputShape[3]) channels, kernel \(kernelShape) expects \(kernelShape[2])")
        neuritePrecondition(kernelShape[0] >= 1 && kernelShape[1] >= 1,
                     "\(op) kernel \(kernelShape) must be at least 1x1")
        if padding == .valid {
            let kh = (kernelShape[0] - 1) * Swift.max(1, dilation.0) + 1, kw = (kernelShape[1] - 1) * Swift.max(1, dilation.1) + 1
            neuritePrecondition(inputShape[1] >= kh && inputShape[2] >= kw,
                         "\(op) input \(inputShape) is \(inputShape[1])x\(inputShape[2]), smaller than kernel \(kernelShape) (\(kh)x\(kw) after dilation (\(dilation.0), \(dilation.1))) with valid padding")
        }
        return Conv2DGeometry(inputHeight: inputShape[1], inputWidth: inputShape[2], channels: inputShape[3],
                              kernelHeight: kernelShape[0], kernelWidth: kernelShape[1],
                              strides: strides, dilation: dilation, padding: padding)
    }

    /// Unfolds image patches into rows: `[N, H, W, C]` becomes `[N * OH * OW, KH * KW * C]`.
    ///
    /// Row `(n * OH + oh) * OW + ow` holds the window of output position `(oh, ow)` of image `n`,
    /// in `(kh, kw, c)` order, with zeros where the window covers padding; so a kernel
    /// `[KH, KW, C, Cout]` reshaped to `[KH * KW * C, Cout]` multiplies it directly into the
    /// convolution output `[N * OH * OW, Cout]`.
    ///
    /// Cost: one pass writing `N * OH * OW * KH * KW * C` floats (a `KH * KW / (sh * sw)`-fold
    /// blow-up of the input), spread over the thread pool when large. A pointwise geometry
    /// (1x1, stride 1, no padding) returns `input` reshaped, without copying.
    /// `conv2D` does not use this: it unfolds a few images at a time into a reused buffer.
    /// - Precondition: `input` is `[N, H, W, C]` with the extent of `geometry`.
    package static func im2col(_ input: Tensor, geometry: Conv2DGeometry) -> Tensor {
        let n = checkImages("im2col", input, geometry)
        let shape = [n * geometry.outputHeight * geometry.outputWidth, geometry.columnCount]
        if geometry.isPointwise { return input.reshaped(shape) }
        return input.withUnsafeBufferPointer { src in
            Tensor(shape: shape) { dst in
                geometry.im2colParallel(src.baseAddress!, rows: 0..<(n * geometry.outputHeight), into: dst.baseAddress!)
            }
        }
    }

    /// Folds rows back into images: the adjoint of ``im2col(_:geometry:)``.
    ///
    /// `[batch * OH * OW, KH * KW * C]` becomes `[batch, H, W, C]`, each input element receiving
    /// the sum of every column entry that `im2col` copied from it; entries that fell on padding are
    /// dropped. So `<im2col(x), y> == <x, col2im(y)>` for all `x`, `y`, and
    /// `col2im(dColumns)` is the input gradient of anything computed from `im2col(x)`.
    ///
    /// Cost: one accumulating pass over `columns`, split over the thread pool by image when large.
    /// A pointwise geometry returns `columns` reshaped, without copying.
    /// - Precondition: `columns` is `[batch * OH * OW, KH * KW * C]` for `geometry`.
    package static func col2im(_ columns: Tensor, geometry: Conv2DGeometry, batch: Int) -> Tensor {
        let expected = [batch * geometry.outputHeight * geometry.outputWidth, geometry.columnCount]
        neuritePrecondition(batch >= 0 && columns.shape == expected,
                     "col2im columns \(columns.shape) do not match batch \(batch) of geometry: expected \(expected)")
        let shape = [batch, geometry.inputHeight, geometry.inputWidth, geometry.channels]
        if geometry.isPointwise { return columns.reshaped(shape) }
        var images = Tensor.zeros(shape)
        columns.withUnsafeBufferPointer { src in
            images.withUnsafeMutableBufferPointer { dst in
                geometry.col2imParallel(src.baseAddress!, rows: 0..<(batch * geometry.outputHeight), into: dst.baseAddress!)
            }
        }
        return images
    }

    /// 2-D convolution of NHWC images (Keras `Conv2D`, really cross-correlation):
    /// `[N, H, W, Cin]` with kernel `[KH, KW, Cin, Cout]` and optional bias `[Cout]` gives
    /// `[N, OH, OW, Cout]`, where
    /// `y[n, oh, ow, co] = bias[co] + sum over kh, kw, ci of
    ///  x[n, oh * sh - padTop + kh * dh, ow * sw - padLeft + kw * dw, ci] * kernel[kh, kw, ci, co]`
    /// and reads outside the image are zero. Output extents follow ``Padding``.
    ///
    /// Computed as im2col + one `sgemm` per chunk of images: the columns of a chunk
    /// (at most about 8 MiB, in a reused scratch buffer) times the kernel viewed as
    /// `[KH * KW * Cin, Cout]`. A pointwise kernel (1x1, stride 1) is a single `sgemm` on the
    /// input itself. Cost: `2 * N * OH * OW * KH * KW * Cin * Cout` flops, multithreaded.
    /// - Parameters:
    ///   - input: the images, `[N, H, W, Cin]`.
    ///   - kernel: the filters, `[KH, KW, Cin, Cout]`.
    ///   - bias: added to every output channel, `[Cout]`, or nil for none.
    ///   - strides: `(sh, sw)`, the step between windows.
    ///   - padding: `.valid` or `.same` (see ``Padding``).
    ///   - dilation: `(dh, dw)`, the step between kernel taps.
    /// - Precondition: `input` is rank 4, `kernel` is rank 4 with `Cin` input channels, `bias` (if
    ///   any) is `[Cout]`, and with `.valid` the input is at least the dilated kernel's size.
    ///   Messages name the shapes.
    public static func conv2D(_ input: Tensor, kernel: Tensor, bias: Tensor? = nil,
                              strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                              dilation: (Int, Int) = (1, 1)) -> Tensor {
        convolution(input, kernel: kernel, bias: bias, strides: strides, padding: padding, dilation: dilation)
    }

    /// A convolution layer's forward pass: ``conv2D(_:kernel:bias:strides:padding:dilation:)``
    /// without a bias, then `bias` added (when given) and relu applied (when `relu`), with the
    /// same bits as `z.addBias(bias, activation: .relu)` (or `z.relu()` without a bias) on the
    /// convolution's result. The direct kernels apply both as they store each output, which saves
    /// a pass over the output; the other methods run that pass.
    /// - Precondition: as for `conv2D`.
    package static func conv2D(_ input: Tensor, kernel: Tensor, biasAfterwards bias: Tensor?, relu: Bool,
                               strides: (Int, Int), padding: Padding, dilation: (Int, Int)) -> Tensor {
        convolution(input, kernel: kernel, bias: nil, postBias: bias, relu: relu, strides: strides, padding: padding,
                    dilation: dilation)
    }

    /// `conv2D` with the epilogue of the package entry point above: `postBias` added to the sums
    /// (which start from `bias`), then relu when `relu`.
    private static func convolution(_ input: Tensor, kernel: Tensor, bias: Tensor?, postBias: Tensor? = nil,
                                    relu: Bool = false, strides: (Int, Int), padding: Padding,
                                    dilation: (Int, Int)) -> Tensor {
        let g = convolutionGeometry("conv2D", input: input, kernel: kernel, strides: strides,
                                    padding: padding, dilation: dilation)
        let n = input.shape[0], cout = kernel.shape[3], k = g.columnCount
        for bias in [bias, postBias].compactMap({ $0 }) {
            neuritePrecondition(bias.shape == [cout],
                         "conv2D bias \(bias.shape) does not match kernel \(kernel.shape): expected [\(cout)]")
        }
        let totalRows = n * g.outputHeight, positions = totalRows * g.outputWidth
        var fused = false
        var output = input.withUnsafeBufferPointer { xb in
            kernel.withUnsafeBufferPointer { kb in
                Tensor(shape: [n, g.outputHeight, g.outputWidth, cout]) { yb in
                    let x = xb.baseAddress!, w = kb.baseAddress!, y = yb.baseAddress!
                    if g.isPointwise {
                        sgemm(transposeA: false, transposeB: false, m: positions, n: cout, k: k,
                              alpha: 1, a: x, lda: Swift.max(1, k), b: w, ldb: Swift.max(1, cout),
                              beta: 0, c: y, ldc: Swift.max(1, cout))
                    } else if positions > 0 && WinogradConvolution.forwardApplies(to: g, batch: n, outputChannels: cout) {
                        withOptionalBuffer(bias) { b in
                            withOptionalBuffer(postBias) { pb in
                                WinogradConvolution.forward(x, n: n, kernel: w, cout: cout, bias: b, postBias: pb,
                                                            relu: relu, geometry: g, into: y)
                            }
                        }
                        fused = true
                        return
                    } else if positions > 0 && !DirectConvolution.channelsApply(to: g, outputChannels: cout)
                                && FewOutputChannelConvolution.applies(to: g, outputChannels: cout) {
                        FewOutputChannelConvolution.forward(x, n: n, kernel: w, cout: cout, geometry: g, into: y)
                    } else if positions > 0 && (DirectConvolution.channelsApply(to: g, outputChannels: cout)
                                                || DirectConvolution.applies(to: g, outputChannels: cout)) {
                        withOptionalBuffer(bias) { b in
                            withOptionalBuffer(postBias) { pb in
                                DirectConvolution.forward(x, n: n, kernel: w, cout: cout, bias: b, postBias: pb,
                                                          relu: relu, geometry: g, into: y)
                            }
                        }
                        fused = true
                        return
                    } else if positions > 0 {
                        g.forEachColumnChunk(batch: n) { rows, columns in
                            g.im2colParallel(x, rows: rows, into: columns)
                            sgemm(transposeA: false, transposeB: false, m: rows.count * g.outputWidth, n: cout, k: k,
                                  alpha: 1, a: columns, lda: Swift.max(1, k), b: w, ldb: Swift.max(1, cout),
                                  beta: 0, c: y + rows.lowerBound * g.outputWidth * cout, ldc: Swift.max(1, cout))
                        }
                    }
                    if let bias {
                        bias.withUnsafeBufferPointer { bb in
                            addRowVector(bb.baseAddress!, to: y, rows: positions, columns: cout)
                        }
                    }
                }
            }
        }
        if !fused {
            if let postBias {
                output.addBias(postBias, activation: relu ? .relu : .linear)
            } else if relu {
                output = output.relu()
            }
        }
        return output
    }

    /// Gradients of ``conv2D(_:kernel:bias:strides:padding:dilation:)`` with respect to its
    /// input, kernel and bias, given the gradient of its output.
    ///
    /// With `X` the im2col columns, `K` the kernel as `[KH * KW * Cin, Cout]` and `dY` the output
    /// gradient as `[N * OH * OW, Cout]`:
    /// - input: `col2im(dY * K^T)`, `[N, H, W, Cin]`;
    /// - kernel: `X^T * dY`, `[KH, KW, Cin, Cout]`;
    /// - bias: `dY` summed over `N`, `OH`, `OW`, `[Cout]` (partial sums in Float64).
    ///
    /// Few channels (a kernel of at most 64Ki floats once `Cout` is rounded up to 16) take direct
    /// kernels that read the input in place: the kernel gradient as per-image sums of outer
    /// products, and with stride 1 the input gradient as the output gradient convolved with the
    /// flipped kernel. Otherwise the columns are recomputed a chunk of images at a time in one
    /// reused buffer of at most about 8 MiB, and both gradients are GEMMs.
    /// Cost: about twice the forward flops.
    /// - Precondition: shapes as for `conv2D`, and `outputGradient` is `[N, OH, OW, Cout]`.
    public static func conv2DBackward(input: Tensor, kernel: Tensor, outputGradient: Tensor,
                                      strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                                      dilation: (Int, Int) = (1, 1)) -> (input: Tensor, kernel: Tensor, bias: Tensor) {
        let g = conv2DBackward(input: input, kernel: kernel, outputGradient: outputGradient, strides: strides,
                               padding: padding, dilation: dilation, needsInputGradient: true)
        return (g.input!, g.kernel, g.bias)
    }

    /// ``conv2DBackward(input:kernel:outputGradient:strides:padding:dilation:)`` that skips the
    /// input gradient (returning nil for it) when `needsInputGradient` is false, as a network's
    /// first layer can: that saves a product as large as the forward one.
    public static func conv2DBackward(input: Tensor, kernel: Tensor, outputGradient: Tensor,
                                      strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                                      dilation: (Int, Int) = (1, 1),
                                      needsInputGradient: Bool) -> (input: Tensor?, kernel: Tensor, bias: Tensor) {
        conv2DBackward(input: input, kernel: kernel, outputGradient: outputGradient, reluOutput: nil, strides: strides,
                       padding: padding, dilation: dilation, needsInputGradient: needsInputGradient)
    }

    /// ``conv2DBackward(input:kernel:outputGradient:strides:padding:dilation:needsInputGradient:)``,
    /// and with `reluOutput` a relu convolution layer's backward pass: the output gradient taken
    /// back through relu first (`outputGradient` where `reluOutput > 0`, else 0, as
    /// `Tensor.reluBackward(gradient:input:)`). The masked gradient is written by the pass that
    /// sums it into the bias gradient, so the result has the same bits as `reluBackward` followed
    /// by `conv2DBackward`, with one pass over the output gradient fewer.
    /// - Precondition: as for `conv2DBackward`, and `reluOutput` has the output gradient's shape.
    package static func conv2DBackward(input: Tensor, kernel: Tensor, outputGradient: Tensor, reluOutput: Tensor?,
                                       strides: (Int, Int), padding: Padding, dilation: (Int, Int),
                                       needsInputGradient: Bool) -> (input: Tensor?, kernel: Tensor, bias: Tensor) {
        let g = convolutionGeometry("conv2DBackward", input: input, kernel: kernel, strides: strides,
                                    padding: padding, dilation: dilation)
        let n = input.shape[0], cout = kernel.shape[3]
        checkOutputGradient("conv2DBackward", outputGradient, n: n, cout: cout, g, inputShape: input.shape,
                            kernelShape: kernel.shape)
        let positions = n * g.outputHeight * g.outputWidth
        // The gradient the products read (masked by relu when asked) and the bias gradient.
        let gradient: Tensor, biasGradient: Tensor
        if let reluOutput {
            neuritePrecondition(reluOutput.shape == outputGradient.shape,
                                "conv2DBackward relu output \(reluOutput.shape) does not match output gradient \(outputGradient.shape)")
            var sums = Tensor.zeros([cout])
            gradient = Tensor(shape: outputGradient.shape) { mb in
                guard mb.count > 0 else { return }
                outputGradient.withUnsafeBufferPointer { dyb in
                    reluOutput.withUnsafeBufferPointer { yb in
                        sums.withUnsafeMutableBufferPointer { db in
                            columnSums(dyb.baseAddress!, rows: positions, columns: cout, into: db.baseAddress!,
                                       reluOutput: yb.baseAddress!, masked: mb.baseAddress!)
                        }
                    }
                }
            }
            biasGradient = sums
        } else {
            gradient = outputGradient
            biasGradient = outputGradient.withUnsafeBufferPointer { dyb in
                Tensor(shape: [cout]) { db in
                    columnSums(dyb.baseAddress!, rows: positions, columns: cout, into: db.baseAddress!)
                }
            }
        }
        let kernelGradient = convolutionKernelGradient(input, gradient, kernelShape: kernel.shape, g)
        let inputGradient = needsInputGradient
            ? convolutionInputGradient(gradient, kernel: kernel, inputShape: input.shape, g) : nil
        return (inputGradient, kernelGradient, biasGradient)
    }

    /// The input gradient of ``conv2D(_:kernel:bias:strides:padding:dilation:)`` alone (TensorFlow's
    /// `conv2d_backprop_input`): `[N, H, W, Cin]` for the output gradient `[N, OH, OW, Cout]` of a
    /// convolution of an `inputShape` input with `kernel`. It is also the transposed convolution
    /// of `outputGradient` (Keras' `Conv2DTranspose`, whose output is `inputShape`).
    ///
    /// Direct kernels for few channels with stride 1 (the output gradient convolved with the
    /// flipped kernel), else `dY * K^T` a chunk of images at a time, folded back by col2im.
    /// - Precondition: `inputShape` is `[N, H, W, Cin]` with `Cin` the kernel's, and
    ///   `outputGradient` is the convolution's output shape; the messages name the shapes.
    public static func conv2DBackwardInput(outputGradient: Tensor, kernel: Tensor, inputShape: [Int],
                                           strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                                           dilation: (Int, Int) = (1, 1)) -> Tensor {
        let g = convolutionGeometry("conv2DBackwardInput", inputShape: inputShape, kernelShape: kernel.shape,
                                    strides: strides, padding: padding, dilation: dilation)
        checkOutputGradient("conv2DBackwardInput", outputGradient, n: inputShape[0], cout: kernel.shape[3], g,
                            inputShape: inputShape, kernelShape: kernel.shape)
        return convolutionInputGradient(outputGradient, kernel: kernel, inputShape: inputShape, g)
    }

    /// The kernel gradient of ``conv2D(_:kernel:bias:strides:padding:dilation:)`` alone
    /// (TensorFlow's `conv2d_backprop_filter`): `[KH, KW, Cin, Cout]` for `input` `[N, H, W, Cin]`
    /// and the output gradient `[N, OH, OW, Cout]`.
    ///
    /// Direct kernels (per-image sums of outer products, in fixed blocks of images) for few
    /// channels, else `X^T * dY` over im2col columns recomputed a chunk of images at a time.
    /// - Precondition: `kernelShape` is `[KH, KW, Cin, Cout]` with `Cin` the input's, and
    ///   `outputGradient` is the convolution's output shape; the messages name the shapes.
    public static func conv2DBackwardKernel(input: Tensor, outputGradient: Tensor, kernelShape: [Int],
                                            strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                                            dilation: (Int, Int) = (1, 1)) -> Tensor {
        let g = convolutionGeometry("conv2DBackwardKernel", inputShape: input.shape, kernelShape: kernelShape,
                                    strides: strides, padding: padding, dilation: dilation)
        checkOutputGradient("conv2DBackwardKernel", outputGradient, n: input.shape[0], cout: kernelShape[3], g,
                            inputShape: input.shape, kernelShape: kernelShape)
        return convolutionKernelGradient(input, outputGradient, kernelShape: kernelShape, g)
    }

    /// Checks that `outputGradient` is `[N, OH, OW, Cout]` for geometry `g`.
    private static func checkOutputGradient(_ op: String, _ outputGradient: Tensor, n: Int, cout: Int, _ g: Conv2DGeometry,
                                            inputShape: [Int], kernelShape: [Int]) {
        let expected = [n, g.outputHeight, g.outputWidth, cout]
        neuritePrecondition(outputGradient.shape == expected,
                     "\(op) output gradient \(outputGradient.shape) does not match input \(inputShape) and kernel \(kernelShape): expected \(expected)")
    }

    /// The input gradient for checked shapes (see ``conv2DBackwardInput(outputGradient:kernel:inputShape:strides:padding:dilation:)``):
    /// one GEMM for a pointwise kernel, the direct kernel where it applies, else `dY * K^T` a chunk
    /// of rows at a time, scattered back with col2im.
    private static func convolutionInputGradient(_ outputGradient: Tensor, kernel: Tensor, inputShape: [Int],
                                                 _ g: Conv2DGeometry) -> Tensor {
        let n = inputShape[0], cout = kernel.shape[3], k = g.columnCount
        let positions = n * g.outputHeight * g.outputWidth
        return convolutionGradient(shape: inputShape, reading: outputGradient, kernel, positions: positions) { dy, w, dx in
            if g.isPointwise {
                sgemm(transposeA: false, transposeB: true, m: positions, n: k, k: cout,
                      alpha: 1, a: dy, lda: Swift.max(1, cout), b: w, ldb: Swift.max(1, cout), beta: 0, c: dx, ldc: Swift.max(1, k))
            } else if WinogradConvolution.inputGradientApplies(to: g, batch: n, outputChannels: cout) {
                WinogradConvolution.inputGradient(dy, n: n, kernel: w, cout: cout, geometry: g, into: dx)
            } else if DirectConvolution.inputGradientApplies(to: g, outputChannels: cout) {
                DirectConvolution.inputGradient(dy, n: n, kernel: w, cout: cout, geometry: g, into: dx)
            } else {
                g.forEachColumnChunk(batch: n) { rows, columns in
                    sgemm(transposeA: false, transposeB: true, m: rows.count * g.outputWidth, n: k, k: cout,
                          alpha: 1, a: dy + rows.lowerBound * g.outputWidth * cout, lda: Swift.max(1, cout), b: w,
                          ldb: Swift.max(1, cout), beta: 0, c: columns, ldc: Swift.max(1, k))
                    g.col2imParallel(columns, rows: rows, into: dx)
                }
            }
        }
    }

    /// The kernel gradient for checked shapes (see ``conv2DBackwardKernel(input:outputGradient:kernelShape:strides:padding:dilation:)``):
    /// one GEMM for a pointwise kernel, the direct kernel where it applies, else `X^T * dY`
    /// accumulated a chunk of im2col rows at a time.
    private static func convolutionKernelGradient(_ input: Tensor, _ outputGradient: Tensor, kernelShape: [Int],
                                                  _ g: Conv2DGeometry) -> Tensor {
        let n = input.shape[0], cout = kernelShape[3], k = g.columnCount
        let positions = n * g.outputHeight * g.outputWidth
        return convolutionGradient(shape: kernelShape, reading: input, outputGradient, positions: positions) { x, dy, dk in
            if g.isPointwise {
                sgemm(transposeA: true, transposeB: false, m: k, n: cout, k: positions,
                      alpha: 1, a: x, lda: Swift.max(1, k), b: dy, ldb: Swift.max(1, cout), beta: 0, c: dk, ldc: Swift.max(1, cout))
            } else if WinogradConvolution.kernelGradientApplies(to: g, batch: n, outputChannels: cout) {
                WinogradConvolution.kernelGradient(x, n: n, dy: dy, cout: cout, geometry: g, into: dk)
            } else if FewOutputChannelConvolution.kernelGradientApplies(to: g, outputChannels: cout) {
                FewOutputChannelConvolution.kernelGradient(x, n: n, dy: dy, cout: cout, geometry: g, into: dk)
            } else if DirectConvolution.applies(to: g, outputChannels: cout) {
                DirectConvolution.kernelGradient(x, n: n, dy: dy, cout: cout, geometry: g, into: dk)
            } else {
                g.forEachColumnChunk(batch: n) { rows, columns in
                    g.im2colParallel(x, rows: rows, into: columns)
                    sgemm(transposeA: true, transposeB: false, m: k, n: cout, k: rows.count * g.outputWidth,
                          alpha: 1, a: columns, lda: Swift.max(1, k), b: dy + rows.lowerBound * g.outputWidth * cout,
                          ldb: Swift.max(1, cout), beta: 1, c: dk, ldc: Swift.max(1, cout))
                }
            }
        }
    }

    /// A zero tensor of `shape` that `body` fills from the storage of `a` and `b`, or the zeros
    /// alone when the convolution has no output positions (there is nothing to add up).
    private static func convolutionGradient(shape: [Int], reading a: Tensor, _ b: Tensor, positions: Int,
                                            _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        var gradient = Tensor.zeros(shape)
        guard positions > 0 else { return gradient }
        a.withUnsafeBufferPointer { ab in
            b.withUnsafeBufferPointer { bb in
                gradient.withUnsafeMutableBufferPointer { gb in body(ab.baseAddress!, bb.baseAddress!, gb.baseAddress!) }
            }
        }
        return gradient
    }
}

/// `body` with the storage of `tensor`, or with nil when there is no tensor.
private func withOptionalBuffer<R>(_ tensor: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let tensor else { return body(nil) }
    return tensor.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// `matrix[r, c] += vector[c]` for a row-major `rows x columns` matrix, split over the pool when large.
func addRowVector(_ vector: UnsafePointer<Float>, to matrix: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
    guard rows > 0, columns > 0 else { return }
    ThreadPool.shared.parallelChunks(rows, grain: max(1, 4 * convolutionParallelGrain / columns)) { range in
        for r in range {
            let row = matrix + r * columns
            for c in 0..<columns { row[c] += vector[c] }
        }
    }
}

/// `sums[c] = sum over r of matrix[r, c]` for a row-major `rows x columns` matrix.
///
/// Rows are added in Float blocks of 64 (vectorised along the row), and blocks in Float64, so the
/// error stays near that of a 64-term Float sum however many rows there are.
///
/// With `reluOutput` and `masked`, the sums are of `matrix` taken back through relu
/// (`reluOutput > 0 ? matrix : 0`, element by element), which is also written to `masked`: relu's
/// backward pass and the bias gradient in one pass, with the bits of the two passes.
func columnSums(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>,
                reluOutput: UnsafePointer<Float>? = nil, masked: UnsafeMutablePointer<Float>? = nil) {
    guard columns > 0 else { return }
    let pieces = max(1, min(ThreadPool.shared.effectiveWidth, rows * columns / (4 * convolutionParallelGrain)))
    var partial = [Double](repeating: 0, count: pieces * columns)
    partial.withUnsafeMutableBufferPointer { partialBuffer in
        let totals = partialBuffer.baseAddress!
        ThreadPool.shared.parallelFor(pieces) { piece, _ in
            let block = UnsafeMutablePointer<Float>.allocate(capacity: columns)
            defer { block.deallocate() }
            let total = totals + piece * columns
            let end = rows * (piece + 1) / pieces
            var r = rows * piece / pieces
            while r < end {
                let blockEnd = min(end, r + 64)
                block.update(repeating: 0, count: columns)
                if columns == 16 || columns == 8 {
                    // A conv layer's 16 or 8 channels: one vector per row (CKernels), the same sums
                    // in the same order as the loops below, which the compiler left scalar.
                    ck_channel_sums(KernelISA.current.rawValue, matrix + r * columns, reluOutput.map { $0 + r * columns },
                                    masked.map { $0 + r * columns }, Int64(blockEnd - r), Int64(columns), block)
                    r = blockEnd
                } else if let reluOutput, let masked {
                    while r < blockEnd {
                        let row = matrix + r * columns, y = reluOutput + r * columns, m = masked + r * columns
                        for c in 0..<columns {
                            let g = row[c], out = y[c]
                            let v: Float = out > 0 ? g : 0
                            m[c] = v
                            block[c] += v
                        }
                        r += 1
                    }
                } else {
                    while r < blockEnd {
                        let row = matrix + r * columns
                        for c in 0..<columns { block[c] += row[c] }
                        r += 1
                    }
                }
                for c in 0..<columns { total[c] += Double(block[c]) }
            }
        }
    }
    for c in 0..<columns {
        var s = 0.0
        for piece in 0..<pieces { s += partial[piece * columns + c] }
        sums[c] = Float(s)
    }
}
