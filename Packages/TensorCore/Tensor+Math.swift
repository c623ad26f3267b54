import CKernels

// MARK: - Unary functions

extension Tensor {
    /// e^x for every element.
    ///
    /// Runs the vectorised kernel of the current `KernelISA` (about 1 ulp from the exact result;
    /// exp(-inf) = 0, exp(+inf) and exp(x > 88.72) = +inf, subnormal results are kept, NaN stays
    /// NaN). One pass; 64Ki elements or more are split over `ThreadPool.shared`.
    public func exp() -> Tensor { applyingKernel(ck_vexp, streaming: CK_MAP_EXP) }

    /// The natural logarithm of every element: log(0) = -inf, log(x < 0) = NaN, log(+inf) = +inf.
    /// Vectorised C kernel (about 1 ulp); cost as for `exp()`.
    public func log() -> Tensor { applyingKernel(ck_vlog, streaming: CK_MAP_LOG) }

    /// The square root of every element, correctly rounded (so exactly `Float.squareRoot()`):
    /// sqrt(-0) = -0, sqrt(+inf) = +inf, NaN for negative elements and for NaN.
    ///
    /// Runs the vectorised kernel of the current `KernelISA` (vsqrtps; a Swift loop over
    /// `squareRoot()` stays scalar on Linux, where each square root may call libm's `sqrtf` to set
    /// errno). Cost as for `exp()`.
    public func sqrt() -> Tensor { applyingKernel(ck_vsqrt, streaming: CK_MAP_SQRT) }

    /// Every element times itself. One vectorised pass.
    public func squared() -> Tensor {
        mapChunks { x, y, n in for i in 0..<n { y[i] = x[i] * x[i] } }
    }

    /// The magnitude of every element. One vectorised pass.
    public func abs() -> Tensor {
        mapChunks { x, y, n in for i in 0..<n { y[i] = x[i].magnitude } }
    }

    /// The hyperbolic tangent of every element: exactly ±1 for |x| > 9.1, NaN stays NaN.
    /// Vectorised C kernel (about 1.5 ulp); cost as for `exp()`.
    public func tanh() -> Tensor { applyingKernel(ck_vtanh, streaming: CK_MAP_TANH) }

    /// The logistic function 1 / (1 + e^-x) of every element: 0 at -inf, 1 at +inf, never NaN for
    /// non-NaN input, and accurate (not flushed to 0) for large negative x.
    /// Vectorised C kernel (about 2 ulp); cost as for `exp()`.
    public func sigmoid() -> Tensor { applyingKernel(ck_vsigmoid, streaming: CK_MAP_SIGMOID) }

    /// max(x, 0) for every element (NaN stays NaN). One vectorised pass.
    public func relu() -> Tensor {
        if count >= streamingCount { return streamingMap(CK_MAP_RELU) }
        return mapChunks { x, y, n in for i in 0..<n { let v = x[i]; y[i] = v < 0 ? 0 : v } }
    }

    /// x for x >= 0, `alpha * x` for x < 0. One vectorised pass.
    public func leakyRelu(alpha: Float = 0.01) -> Tensor {
        mapChunks { x, y, n in for i in 0..<n { let v = x[i]; y[i] = v < 0 ? alpha * v : v } }
    }

    /// The exponential linear unit: x for x > 0, `alpha * (e^x - 1)` otherwise.
    ///
    /// e^x - 1 is computed without cancellation near 0 (a short series for x > -0.35, the
    /// vectorised exp elsewhere), so small negative inputs keep full relative accuracy.
    /// Two passes over blocks that stay in L1; 64Ki elements or more are split over the pool.
    public func elu(alpha: Float = 1) -> Tensor {
        let isa = KernelISA.current.rawValue
        return mapChunks { x, y, n in
            Tensor.expOfNonPositivePart(isa, x, y, n) { i, e in
                let v = x[i]
                return v > 0 ? v : alpha * Tensor.expMinusOne(v, expValue: e)
            }
        }
    }

    /// Every element clamped to `range` (NaN stays NaN). One vectorised pass.
    public func clipped(to range: ClosedRange<Float>) -> Tensor {
        let lo = range.lowerBound, hi = range.upperBound
        return mapChunks { x, y, n in
            for i in 0..<n { let v = x[i]; y[i] = v < lo ? lo : (v > hi ? hi : v) }
        }
    }

    /// `f` applied to every element, in row-major order, on the calling thread.
    ///
    /// The general escape hatch: `f` is called once per element through a closure, so it is
    /// several times slower than the dedicated functions above.
    public func map(_ f: (Float) -> Float) -> Tensor {
        withUnsafeBufferPointer { src in
            Tensor(shape: shape) { dst in
                for i in 0..<src.count { dst[i] = f(src[i]) }
            }
        }
    }
}

// MARK: - Derivatives for backward passes

extension Tensor {
    /// The gradient of `relu()`: `gradient` where `input > 0`, else 0 (0 at the kink, as is usual).
    /// One vectorised pass.
    /// - Precondition: `gradient` and `input` have the same shape; the message names both.
    public static func reluBackward(gradient: Tensor, input: Tensor) -> Tensor {
        zipChunks(gradient, input, "reluBackward: gradient shape", "input shape") { g, x, y, n in
            // Both loads unconditional: a load inside the select would keep the loop scalar.
            for i in 0..<n { let gi = g[i], xi = x[i]; y[i] = xi > 0 ? gi : 0 }
        }
    }

    /// The gradient of `leakyRelu(alpha:)`: `gradient` where `input > 0`, else `alpha * gradient`.
    /// One vectorised pass.
    /// - Precondition: `gradient` and `input` have the same shape; the message names both.
    public static func leakyReluBackward(gradient: Tensor, input: Tensor, alpha: Float = 0.01) -> Tensor {
        zipChunks(gradient, input, "leakyReluBackward: gradient shape", "input shape") { g, x, y, n in
            for i in 0..<n { let gi = g[i], xi = x[i]; y[i] = xi > 0 ? gi : alpha * gi }
        }
    }

    /// The gradient of `sigmoid()` from its output y: `gradient * y * (1 - y)`, so the forward
    /// pass need only keep its output. One vectorised pass.
    /// - Precondition: `gradient` and `output` have the same shape; the message names both.
    public static func sigmoidBackward(gradient: Tensor, output: Tensor) -> Tensor {
        zipChunks(gradient, output, "sigmoidBackward: gradient shape", "output shape") { g, s, y, n in
            for i in 0..<n { y[i] = g[i] * s[i] * (1 - s[i]) }
        }
    }

    /// The gradient of `tanh()` from its output y: `gradient * (1 - y²)`. One vectorised pass.
    /// - Precondition: `gradient` and `output` have the same shape; the message names both.
    public static func tanhBackward(gradient: Tensor, output: Tensor) -> Tensor {
        zipChunks(gradient, output, "tanhBackward: gradient shape", "output shape") { g, t, y, n in
            for i in 0..<n { y[i] = g[i] * (1 - t[i] * t[i]) }
        }
    }

    /// The gradient of `elu(alpha:)`: `gradient` where `input > 0`, else `gradient * alpha * e^input`.
    /// Two passes over L1-sized blocks (one of them the vectorised exp).
    /// - Precondition: `gradient` and `input` have the same shape; the message names both.
    public static func eluBackward(gradient: Tensor, input: Tensor, alpha: Float = 1) -> Tensor {
        let isa = KernelISA.current.rawValue
        return zipChunks(gradient, input, "eluBackward: gradient shape", "input shape") { g, x, y, n in
            expOfNonPositivePart(isa, x, y, n) { i, e in x[i] > 0 ? g[i] : g[i] * alpha * e }
        }
    }
}

// MARK: - Fused bias and activation

/// The bias-activation enum before there was one activation enum: use ``ActivationFunction``.
@available(*, deprecated, renamed: "ActivationFunction")
public typealias Activation = ActivationFunction

extension ActivationFunction {
    /// The former `Activation.identity`: ``linear``.
    @available(*, deprecated, renamed: "linear")
    public static var identity: ActivationFunction { .linear }
}

extension Tensor {
    /// `activation(self + bias)` for a `[..., N]` tensor and an `[N]` bias, in one pass over memory
    /// for linear, relu, leaky relu with `alpha >= 0`, sigmoid and tanh: what a dense layer's
    /// forward pass does after its matrix product.
    ///
    /// Rows are processed in blocks of about 2K elements: the bias is added (with relu or leaky
    /// relu folded into the same loop), and sigmoid or tanh then run over the block while it is
    /// still in L1. Results of 64Ki elements or more are split over the pool by rows. The other
    /// activations (ELU, GELU, softmax, leaky relu with a negative slope) run as
    /// `activation.forward(_:)` after the bias pass.
    /// - Precondition: `bias` has rank 1 and its length is the last extent of `self`; the message
    ///   names both shapes.
    public func addingBias(_ bias: Tensor, activation: ActivationFunction = .linear) -> Tensor {
        Tensor.checkBias(shape, bias.shape)
        if !activation.isFusedWithBias { return activation.forward(addingBias(bias)) }
        let isa = KernelISA.current.rawValue
        return withUnsafeBufferPointer { src in
            bias.withUnsafeBufferPointer { b in
                Tensor(shape: shape) { dst in
                    Tensor.biasActivate(src: src.baseAddress!, bias: b.baseAddress!, dst: dst.baseAddress!,
                                        count: dst.count, n: b.count, activation: activation, isa: isa)
                }
            }
        }
    }

    /// `self = activation(self + bias)` in place; see `addingBias(_:activation:)`. Allocates nothing
    /// when this tensor owns its buffer alone.
    /// - Precondition: `bias` has rank 1 and its length is the last extent of `self`.
    public mutating func addBias(_ bias: Tensor, activation: ActivationFunction = .linear) {
        Tensor.checkBias(shape, bias.shape)
        if !activation.isFusedWithBias {
            addBias(bias)
            self = activation.forward(self)
            return
        }
        let isa = KernelISA.current.rawValue
        withUnsafeMutableBufferPointer { z in
            bias.withUnsafeBufferPointer { b in
                let base = z.baseAddress!
                Tensor.biasActivate(src: UnsafePointer(base), bias: b.baseAddress!, dst: base,
                                    count: z.count, n: b.count, activation: activation, isa: isa)
            }
        }
    }
}

// MARK: - Machinery (internal)

extension Tensor {
    /// A new tensor of this shape whose element chunks are written by `kernel(source, destination, count)`,
    /// split over the pool for 64Ki elements or more.
    @inline(__always)
    internal func mapChunks(_ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        withUnsafeBufferPointer { src in
            Tensor(shape: shape) { dst in
                let s = src.baseAddress!
                writeChunks(dst.count, into: dst.baseAddress!, reading: s) { out, r in
                    kernel(s + r.lowerBound, out, r.count)
                }
            }
        }
    }

    /// The result of a CKernels vector-math function (`ck_vexp`, ...) on the path of the current
    /// `KernelISA`, which is read here, on the calling thread: workers do not see its task-local override.
    /// A result of `streamingCount` floats or more is computed by `ck_vmap_stream` with `op`
    /// instead (the same bits, streamed to memory).
    @inline(__always)
    internal func applyingKernel(_ kernel: (Int32, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int64) -> Void,
                                 streaming op: ck_map_op) -> Tensor {
        if count >= streamingCount { return streamingMap(op) }
        let isa = KernelISA.current.rawValue
        return mapChunks { x, y, n in kernel(isa, x, y, Int64(n)) }
    }

    /// `op` applied to every element by `ck_vmap_stream`: for results too large to stay in cache.
    internal func streamingMap(_ op: ck_map_op) -> Tensor {
        let isa = KernelISA.current.rawValue
        return withUnsafeBufferPointer { src in
            Tensor(shape: shape) { dst in
                let x = src.baseAddress!, y = dst.baseAddress!
                ThreadPool.shared.parallelChunks(dst.count, grain: elementwiseGrain) { r in
                    ck_vmap_stream(isa, Int32(op.rawValue), x + r.lowerBound, y + r.lowerBound, Int64(r.count))
                }
            }
        }
    }

    /// Like `mapChunks` for two operands of one shape.
    @inline(__always)
    internal static func zipChunks(
        _ a: Tensor, _ b: Tensor, _ aName: StaticString, _ bName: StaticString,
        _ kernel: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    ) -> Tensor {
        neuritePrecondition(a.shape == b.shape, "\(aName) \(a.shape) differs from \(bName) \(b.shape)")
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                Tensor(shape: a.shape) { dst in
                    let sa = pa.baseAddress!, sb = pb.baseAddress!
                    writeChunks(dst.count, into: dst.baseAddress!, reading: sa, sb) { out, r in
                        let o = r.lowerBound
                        kernel(sa + o, sb + o, out, r.count)
                    }
                }
            }
        }
    }

    /// For blocks of up to 1024 elements: writes e^min(x, 0) (NaN kept) into `y`, then replaces
    /// each `y[i]` by `finish(i, y[i])`. `y` is the scratch space, so nothing is allocated.
    @inline(__always)
    internal static func expOfNonPositivePart(
        _ isa: Int32, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
        _ finish: (Int, Float) -> Float
    ) {
        var start = 0
        while start < n {
            let end = Swift.min(start + 1024, n)
            for i in start..<end { let v = x[i]; y[i] = v > 0 ? 0 : v }
            ck_vexp(isa, y + start, y + start, Int64(end - start))
            for i in start..<end { y[i] = finish(i, y[i]) }
            start = end
        }
    }

    /// e^x - 1 for x <= 0 given `expValue` = e^x: a degree-8 series for x > -0.35 (where the
    /// subtraction would cancel; series error < 1e-9 relative), else `expValue - 1`.
    @inline(__always)
    internal static func expMinusOne(_ x: Float, expValue: Float) -> Float {
        if x > -0.35 {
            var p: Float = 1.0 / 40320
            p = p * x + 1.0 / 5040
            p = p * x + 1.0 / 720
            p = p * x + 1.0 / 120
            p = p * x + 1.0 / 24
            p = p * x + 1.0 / 6
            p = p * x + 0.5
            return (p * x) * x + x
        }
        return expValue - 1
    }

    internal static func checkBias(_ shape: [Int], _ biasShape: [Int]) {
        neuritePrecondition(biasShape.count == 1 && shape.count >= 1 && shape[shape.count - 1] == biasShape[0],
                     "cannot add bias of shape \(biasShape) to shape \(shape): the bias must be [N] for [..., N]")
    }

    /// `dst = activation(src + bias)` row by row (`src` may be `dst`), for an activation that
    /// `isFusedWithBias`.
    internal static func biasActivate(
        src: UnsafePointer<Float>, bias: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>,
        count: Int, n: Int, activation: ActivationFunction, isa: Int32
    ) {
        if count == 0 { return }
        let rows = count / n
        let rowsPerBlock = Swift.max(1, 2048 / n)
        ThreadPool.shared.parallelChunks(rows, grain: Swift.max(1, elementwiseGrain / n)) { chunk in
            var r0 = chunk.lowerBound
            while r0 < chunk.upperBound {
                let r1 = Swift.min(r0 + rowsPerBlock, chunk.upperBound)
                // In place (src == dst), each loop touches only `d`: with two pointers that
                // alias exactly, the compiler's overlap check would send it to a scalar loop.
                @inline(__always) func rows(_ f: (Float) -> Float) {
                    if src == UnsafePointer(dst) {
                        for row in r0..<r1 {
                            let d = dst + row * n
                            for j in 0..<n { d[j] = f(d[j] + bias[j]) }
                        }
                    } else {
                        for row in r0..<r1 {
                            let s = src + row * n, d = dst + row * n
                            for j in 0..<n { d[j] = f(s[j] + bias[j]) }
                        }
                    }
                }
                switch activation {
                case .linear, .sigmoid, .tanh: rows { $0 }
                case .relu: rows { $0 < 0 ? 0 : $0 }
                case .leakyRelu(let alpha): rows { $0 < 0 ? alpha * $0 : $0 }
                case .elu, .gelu, .softmax: neuritePreconditionFailure("biasActivate: \(activation) is not fused with the bias")
                }
                let block = dst + r0 * n, blockCount = Int64((r1 - r0) * n)
                if activation == .sigmoid {
                    ck_vsigmoid(isa, block, block, blockCount)
                } else if activation == .tanh {
                    ck_vtanh(isa, block, block, blockCount)
                }
                r0 = r1
            }
        }
    }
}
