import TensorCore

// The naive Float64 references of the windowed operations, written independently of the library
// from Keras' and TensorFlow's definitions, one copy each for every test target: convolution
// (forward and gradients) and pooling (max with its winners, and average), over NHWC images. A
// sequence `[B, T, F]` is the image `[B, 1, T, F]` with a `1 x K` window, as Keras defines its
// 1-D layers; `sequenceImage` and `sequenceKernel` give those views.

/// How a reference pads one axis of a windowed operation.
public enum ReferencePadding: String, Sendable, CustomStringConvertible {
    /// No padding: every window lies inside the input.
    case valid
    /// TensorFlow's `same`: `ceil(n / s)` outputs, half the padding before (the odd cell after).
    case same
    /// Keras' 1-D `causal`: `ceil(n / s)` outputs, all the padding (`K' - 1` cells) before.
    case causal

    /// The reference padding of TensorCore's `Padding`.
    public init(_ padding: Padding) { self = padding == .valid ? .valid : .same }

    public var description: String { rawValue }

    /// The output extent and the padding before along one axis of `input` cells, for a window of
    /// `window` taps `dilation` apart moved by `stride`; nil when a valid window does not fit.
    public func axis(input: Int, window: Int, stride: Int, dilation: Int = 1) -> (out: Int, before: Int)? {
        let reach = (window - 1) * dilation + 1
        switch self {
        case .valid: return input >= reach ? ((input - reach) / stride + 1, 0) : nil
        case .same:
            let out = (input + stride - 1) / stride
            return (out, max((out - 1) * stride + reach - input, 0) / 2)
        case .causal: return ((input + stride - 1) / stride, reach - 1)
        }
    }
}

/// A sequence batch `[B, T, F]` as the image batch `[B, 1, T, F]` the references work on.
public func sequenceImage(_ x: Tensor) -> Tensor { x.reshaped([x.shape[0], 1, x.shape[1], x.shape[2]]) }

/// A 1-D kernel `[K, F, C]` as the 2-D kernel `[1, K, F, C]`.
public func sequenceKernel(_ k: Tensor) -> Tensor { k.reshaped([1] + k.shape) }

// MARK: - Convolution

/// A 2-D convolution (a cross-correlation, as Keras and TensorFlow define it) in Float64: input
/// `[N, H, W, Cin]`, kernel `[KH, KW, Cin, Cout]`, output `[N, OH, OW, Cout]`, zeros read outside
/// the input.
public struct ConvolutionReference: CustomStringConvertible {
    public var inputShape: [Int]
    public var kernelShape: [Int]
    public var strides: (Int, Int)
    public var dilation: (Int, Int)
    public var padding: ReferencePadding

    public init(inputShape: [Int], kernelShape: [Int], strides: (Int, Int) = (1, 1), dilation: (Int, Int) = (1, 1),
                padding: ReferencePadding = .valid) {
        (self.inputShape, self.kernelShape, self.strides, self.dilation, self.padding)
            = (inputShape, kernelShape, strides, dilation, padding)
    }

    public var description: String {
        "input \(inputShape) kernel \(kernelShape) strides \(strides) dilation \(dilation) \(padding)"
    }

    /// The output extent and padding before along the rows, nil when a valid kernel does not fit.
    public var rows: (out: Int, before: Int)? {
        padding.axis(input: inputShape[1], window: kernelShape[0], stride: strides.0, dilation: dilation.0)
    }
    /// The same along the columns.
    public var columns: (out: Int, before: Int)? {
        padding.axis(input: inputShape[2], window: kernelShape[1], stride: strides.1, dilation: dilation.1)
    }
    /// `[N, OH, OW, Cout]`.
    /// - Precondition: the kernel fits (``rows`` and ``columns`` are not nil).
    public var outputShape: [Int] { [inputShape[0], rows!.out, columns!.out, kernelShape[3]] }

    /// Calls `body(inputOffset, kernelOffset, outputOffset)` for every (position, tap) pair that
    /// reads a real (non-padding) input cell; offsets point at channel 0 (kernel: cin 0, cout 0).
    public func forEachTap(_ body: (Int, Int, Int) -> Void) {
        let (batch, h, w, cin) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (kh, kw, cout) = (kernelShape[0], kernelShape[1], kernelShape[3])
        let (oh, top) = rows!, (ow, left) = columns!
        for n in 0..<batch {
            for y in 0..<oh {
                for x in 0..<ow {
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let iy = y * strides.0 - top + i * dilation.0
                            let ix = x * strides.1 - left + j * dilation.1
                            guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                            body(((n * h + iy) * w + ix) * cin, (i * kw + j) * cin * cout, ((n * oh + y) * ow + x) * cout)
                        }
                    }
                }
            }
        }
    }

    /// The output, `bias[c] + sum of x * k` over each window.
    public func forward(x: [Float], k: [Float], bias: [Float]?) -> [Double] {
        let (cin, cout) = (inputShape[3], kernelShape[3])
        var y = [Double](repeating: 0, count: outputShape.reduce(1, *))
        if let bias {
            for p in 0..<(y.count / max(1, cout)) { for co in 0..<cout { y[p * cout + co] = Double(bias[co]) } }
        }
        forEachTap { xo, ko, yo in
            for ci in 0..<cin {
                let xv = Double(x[xo + ci])
                for co in 0..<cout { y[yo + co] += xv * Double(k[ko + ci * cout + co]) }
            }
        }
        return y
    }

    /// The gradients of `sum(conv(x, k) * dy)` with respect to the input, the kernel and a bias.
    public func backward(x: [Float], k: [Float], dy: [Float]) -> (dx: [Double], dk: [Double], db: [Double]) {
        let (cin, cout) = (inputShape[3], kernelShape[3])
        var dx = [Double](repeating: 0, count: x.count)
        var dk = [Double](repeating: 0, count: k.count)
        var db = [Double](repeating: 0, count: cout)
        for p in 0..<(dy.count / max(1, cout)) { for co in 0..<cout { db[co] += Double(dy[p * cout + co]) } }
        forEachTap { xo, ko, yo in
            for ci in 0..<cin {
                var s = 0.0
                let xv = Double(x[xo + ci])
                for co in 0..<cout {
                    let g = Double(dy[yo + co])
                    s += g * Double(k[ko + ci * cout + co])
                    dk[ko + ci * cout + co] += xv * g
                }
                dx[xo + ci] += s
            }
        }
        return (dx, dk, db)
    }
}

/// The reference convolution of tensors `x` `[N, H, W, Cin]` and `k` `[KH, KW, Cin, Cout]`: the
/// output shape and values.
public func naiveConvolution(_ x: Tensor, _ k: Tensor, bias: Tensor?, strides: (Int, Int) = (1, 1),
                             dilation: (Int, Int) = (1, 1), padding: ReferencePadding) -> (shape: [Int], values: [Double]) {
    let reference = ConvolutionReference(inputShape: x.shape, kernelShape: k.shape, strides: strides, dilation: dilation,
                                         padding: padding)
    return (reference.outputShape, reference.forward(x: x.scalars, k: k.scalars, bias: bias?.scalars))
}

// MARK: - Transposed convolution

/// A transposed 2-D convolution (Keras `Conv2DTranspose`) in Float64, by its definition: every
/// input cell `x[n, i, j, ci]` of `[N, H, W, Cin]` adds `x[n, i, j, ci] * k[a, b, f, ci]` (kernel
/// `[KH, KW, F, Cin]`) to output cell `(n, i * sh - top + a, j * sw - left + b, f)` of
/// `[N, OH, OW, F]`, and what falls outside the output is dropped. `top` and `left` are the
/// padding before of the convolution that maps `OH x OW` back to `H x W` with the same window,
/// strides and padding (TensorFlow's `conv2d_transpose`).
/// - Precondition: that convolution's output is `H x W`.
public func naiveTransposedConvolution(_ x: Tensor, _ k: Tensor, outputSize: (Int, Int), strides: (Int, Int),
                                       padding: ReferencePadding) -> (shape: [Int], values: [Double]) {
    let (batch, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (kh, kw, filters) = (k.shape[0], k.shape[1], k.shape[2])
    let (oh, ow) = outputSize
    let rows = padding.axis(input: oh, window: kh, stride: strides.0)!
    let columns = padding.axis(input: ow, window: kw, stride: strides.1)!
    precondition(rows.out == h && columns.out == w, "output \(outputSize) does not map back to \(h)x\(w)")
    let xs = x.scalars, ks = k.scalars
    var out = [Double](repeating: 0, count: batch * oh * ow * filters)
    for n in 0..<batch {
        for i in 0..<h {
            for j in 0..<w {
                for a in 0..<kh {
                    for b in 0..<kw {
                        let r = i * strides.0 - rows.before + a, c = j * strides.1 - columns.before + b
                        guard r >= 0 && r < oh && c >= 0 && c < ow else { continue }
                        for f in 0..<filters {
                            var s = 0.0
                            for ci in 0..<cin {
                                s += Double(xs[((n * h + i) * w + j) * cin + ci]) * Double(ks[((a * kw + b) * filters + f) * cin + ci])
                            }
                            out[((n * oh + r) * ow + c) * filters + f] += s
                        }
                    }
                }
            }
        }
    }
    return ([batch, oh, ow, filters], out)
}

// MARK: - Pooling

/// Max and average pooling in Float64 over an input `[N, H, W, C]`: each output is the largest
/// of, or the mean over, the real (non-padding) cells of its window.
public struct PoolingReference: CustomStringConvertible {
    public var inputShape: [Int]
    public var pool: (Int, Int)
    public var strides: (Int, Int)
    public var padding: ReferencePadding

    /// `strides` nil means the pool size, as in Keras.
    public init(inputShape: [Int], pool: (Int, Int), strides: (Int, Int)? = nil, padding: ReferencePadding = .valid) {
        (self.inputShape, self.pool, self.strides, self.padding) = (inputShape, pool, strides ?? pool, padding)
    }

    public var description: String { "input \(inputShape) pool \(pool) strides \(strides) \(padding)" }

    private var rows: (out: Int, before: Int) { padding.axis(input: inputShape[1], window: pool.0, stride: strides.0)! }
    private var columns: (out: Int, before: Int) { padding.axis(input: inputShape[2], window: pool.1, stride: strides.1)! }

    /// `[N, OH, OW, C]`.
    /// - Precondition: the pool fits the input.
    public var outputShape: [Int] { [inputShape[0], rows.out, columns.out, inputShape[3]] }

    /// Calls `body(outputIndex, windowInputIndices)` for every output element; the window lists
    /// the flat input indices of its real (non-padding) cells in row-major window order.
    public func forEachWindow(_ body: (Int, [Int]) -> Void) {
        let (n, h, w, c) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let (oh, top) = rows, (ow, left) = columns
        for b in 0..<n {
            for y in 0..<oh {
                for x in 0..<ow {
                    for ch in 0..<c {
                        var cells: [Int] = []
                        for i in 0..<pool.0 {
                            for j in 0..<pool.1 {
                                let iy = y * strides.0 - top + i, ix = x * strides.1 - left + j
                                if iy >= 0 && iy < h && ix >= 0 && ix < w { cells.append(((b * h + iy) * w + ix) * c + ch) }
                            }
                        }
                        body(((b * oh + y) * ow + x) * c + ch, cells)
                    }
                }
            }
        }
    }

    /// The maxima and the flat index of each window's first winner (row-major window order).
    public func max(_ x: [Float]) -> (values: [Float], indices: [Int32]) {
        let count = outputShape.reduce(1, *)
        var values = [Float](repeating: 0, count: count), indices = [Int32](repeating: -1, count: count)
        forEachWindow { o, cells in
            var best = cells[0]
            for i in cells where x[i] > x[best] { best = i }
            values[o] = x[best]
            indices[o] = Int32(best)
        }
        return (values, indices)
    }

    /// The means over each window's real cells.
    public func average(_ x: [Float]) -> [Double] {
        var out = [Double](repeating: 0, count: outputShape.reduce(1, *))
        forEachWindow { o, cells in out[o] = cells.reduce(0.0) { $0 + Double(x[$1]) } / Double(cells.count) }
        return out
    }
}

/// The reference max (`max: true`) or average pooling of a tensor `x` `[N, H, W, C]`: the output
/// shape and values.
public func naivePooling(_ x: Tensor, pool: (Int, Int), strides: (Int, Int)? = nil, padding: ReferencePadding,
                         max useMax: Bool) -> (shape: [Int], values: [Double]) {
    let reference = PoolingReference(inputShape: x.shape, pool: pool, strides: strides, padding: padding)
    let values = useMax ? reference.max(x.scalars).values.map(Double.init) : reference.average(x.scalars)
    return (reference.outputShape, values)
}
