import CKernels

// MARK: - Broadcasting arithmetic

extension Tensor {
    /// The shape of the result of an element-wise operation on tensors of shapes `a` and `b`,
    /// following numpy's broadcasting rule.
    ///
    /// Shapes are aligned from the right (the shorter one is padded with leading 1s); in each
    /// position the extents must be equal, or one of them must be 1, which then stretches to the
    /// other. `[B, N]` with `[N]` gives `[B, N]`, `[3, 1, 5]` with `[4, 1]` gives `[3, 4, 5]`,
    /// `[]` (a rank-0 scalar) with anything gives the other shape, and `[0]` with `[1]` gives `[0]`.
    ///
    /// - Precondition: the shapes broadcast; the message names both,
    ///   e.g. "cannot broadcast shapes [2, 3] and [4]".
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = Swift.max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for k in 0..<rank {
            let ea = k < rank - a.count ? 1 : a[k - (rank - a.count)]
            let eb = k < rank - b.count ? 1 : b[k - (rank - b.count)]
            neuritePrecondition(ea == eb || ea == 1 || eb == 1, "cannot broadcast shapes \(a) and \(b)")
            result[k] = ea == 1 ? eb : ea
        }
        return result
    }

    /// Whether `small` broadcasts to exactly `large` (so an in-place update or a reduction fits).
    internal static func broadcasts(_ small: [Int], to large: [Int]) -> Bool {
        guard small.count <= large.count else { return false }
        let pad = large.count - small.count
        for k in 0..<small.count where small[k] != 1 && small[k] != large[k + pad] {
            return false
        }
        return true
    }

    /// Element-wise sum with broadcasting: `[B, N] + [N]`, `[N, H, W, C] + [C]`, `[3, 1, 5] + [4, 1]`.
    ///
    /// Cost: one pass over the result. Equal shapes, a one-element operand and a row vector over the
    /// last axis take tight vectorised loops; other broadcasts iterate runs of the innermost axis.
    /// Results of 64Ki elements or more are split over `ThreadPool.shared`.
    /// - Precondition: the shapes broadcast (see `broadcastShape(_:_:)`).
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { binary(lhs, rhs, AddOp.self) }

    /// Element-wise difference with broadcasting; see `+` for the rules and the cost.
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { binary(lhs, rhs, SubtractOp.self) }

    /// Element-wise product with broadcasting (`[B, 1] * [B, N]` scales each row); see `+` for the cost.
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { binary(lhs, rhs, MultiplyOp.self) }

    /// Element-wise IEEE quotient with broadcasting (x / 0 is ±inf or NaN); see `+` for the cost.
    public static func / (lhs: Tensor, rhs: Tensor) -> Tensor { binary(lhs, rhs, DivideOp.self) }

    /// Adds `rhs` to every element. One vectorised pass; allocates the result.
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { binary(lhs, rhs, AddOp.self) }
    /// Subtracts `rhs` from every element. One vectorised pass; allocates the result.
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { binary(lhs, rhs, SubtractOp.self) }
    /// Multiplies every element by `rhs`. One vectorised pass; allocates the result.
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { binary(lhs, rhs, MultiplyOp.self) }
    /// Divides every element by `rhs` (a true division, not a multiplication by `1 / rhs`).
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { binary(lhs, rhs, DivideOp.self) }

    /// `lhs + x` for every element `x` of `rhs`. One vectorised pass; allocates the result.
    public static func + (lhs: Float, rhs: Tensor) -> Tensor { binary(lhs, rhs, AddOp.self) }
    /// `lhs - x` for every element `x` of `rhs`. One vectorised pass; allocates the result.
    public static func - (lhs: Float, rhs: Tensor) -> Tensor { binary(lhs, rhs, SubtractOp.self) }
    /// `lhs * x` for every element `x` of `rhs`. One vectorised pass; allocates the result.
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { binary(lhs, rhs, MultiplyOp.self) }
    /// `lhs / x` for every element `x` of `rhs`. One vectorised pass; allocates the result.
    public static func / (lhs: Float, rhs: Tensor) -> Tensor { binary(lhs, rhs, DivideOp.self) }

    /// The element-wise negation. One vectorised pass; allocates the result.
    public static prefix func - (operand: Tensor) -> Tensor {
        operand.withUnsafeBufferPointer { src in
            Tensor(shape: operand.shape) { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                ThreadPool.shared.parallelChunks(src.count, grain: elementwiseGrain) { r in
                    for i in r { d[i] = -s[i] }
                }
            }
        }
    }

    // MARK: In place

    /// Adds `rhs`, broadcast to `lhs.shape`, to `lhs` in place.
    ///
    /// `lhs` keeps its shape, and its buffer when it is the only owner of it (then nothing is
    /// allocated on the equal-shape, one-element and row-vector paths); a shared buffer is copied
    /// first (copy-on-write). Cost as for `+`.
    /// - Precondition: `rhs.shape` broadcasts to `lhs.shape`; the message names both shapes.
    public static func += (lhs: inout Tensor, rhs: Tensor) { lhs.updateInPlace(rhs, AddOp.self, "+=") }
    /// Subtracts `rhs`, broadcast to `lhs.shape`, from `lhs` in place; see `+=`.
    public static func -= (lhs: inout Tensor, rhs: Tensor) { lhs.updateInPlace(rhs, SubtractOp.self, "-=") }
    /// Multiplies `lhs` in place by `rhs` broadcast to `lhs.shape`; see `+=`.
    public static func *= (lhs: inout Tensor, rhs: Tensor) { lhs.updateInPlace(rhs, MultiplyOp.self, "*=") }
    /// Divides `lhs` in place by `rhs` broadcast to `lhs.shape`; see `+=`.
    public static func /= (lhs: inout Tensor, rhs: Tensor) { lhs.updateInPlace(rhs, DivideOp.self, "/=") }

    /// Adds `rhs` to every element in place; allocates nothing when `lhs` owns its buffer alone.
    public static func += (lhs: inout Tensor, rhs: Float) { lhs.updateInPlace(rhs, AddOp.self) }
    /// Subtracts `rhs` from every element in place; allocates nothing when `lhs` owns its buffer alone.
    public static func -= (lhs: inout Tensor, rhs: Float) { lhs.updateInPlace(rhs, SubtractOp.self) }
    /// Multiplies every element by `rhs` in place; allocates nothing when `lhs` owns its buffer alone.
    public static func *= (lhs: inout Tensor, rhs: Float) { lhs.updateInPlace(rhs, MultiplyOp.self) }
    /// Divides every element by `rhs` in place; allocates nothing when `lhs` owns its buffer alone.
    public static func /= (lhs: inout Tensor, rhs: Float) { lhs.updateInPlace(rhs, DivideOp.self) }

    // MARK: Undoing a broadcast

    /// Sums this tensor down to `shape`, undoing a broadcast: the gradient of `x + b` with respect
    /// to `b` is `gradient.reduced(toShape: b.shape)`.
    ///
    /// Every axis where `shape` has extent 1 (or that `shape` lacks on the left) is summed over;
    /// `[B, N]` reduced to `[N]` sums over the batch, `[B, N]` reduced to `[B, 1]` sums each row.
    /// Sums are accumulated in `Double`. Cost: one serial pass over this tensor plus a `Double`
    /// buffer the size of the result; returns `self` unchanged when the shapes are equal.
    /// - Precondition: `shape` broadcasts to `self.shape`; the message names both shapes.
    public func reduced(toShape shape: [Int]) -> Tensor {
        neuritePrecondition(Tensor.broadcasts(shape, to: self.shape),
                     "cannot reduce shape \(self.shape) to \(shape): \(shape) does not broadcast to \(self.shape)")
        if shape == self.shape { return self }
        let n = Tensor.elementCount(of: shape)
        if n == 1 { return Tensor(shape: shape, repeating: Float(sumAsDouble())) }
        if count == 0 { return Tensor.zeros(shape) }
        let layout = BroadcastLayout(out: self.shape, a: self.shape, b: shape)
        let isa = KernelISA.current.rawValue
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: n)
        sums.initialize(repeating: 0, count: n)
        defer { sums.deallocate() }
        withUnsafeBufferPointer { src in
            let x = src.baseAddress!
            let innerStride = layout.stridesB[layout.stridesB.count - 1]
            layout.forEachRun(in: 0..<count) { _, offX, offS, len in
                if innerStride == 0 {
                    sums[offS] += ck_vsum(isa, x + offX, Int64(len))
                } else {
                    let s = sums + offS, xs = x + offX
                    for j in 0..<len { s[j] += Double(xs[j]) }
                }
            }
        }
        return Tensor(shape: shape) { dst in
            for i in 0..<n { dst[i] = Float(sums[i]) }
        }
    }
}

// MARK: - Machinery (internal)

/// Element-wise kernels split their work over the thread pool in chunks of at least this many
/// elements, so results below 64Ki elements stay on the calling thread (waking a worker costs
/// about as much as adding 32Ki floats).
internal let elementwiseGrain = 1 << 15

/// Results of at least this many floats (16 MiB) are streamed past the caches by `writeChunks`:
/// beyond the last-level cache they would be evicted before anyone read them again.
internal let streamingCount = 4 << 20

/// Elements computed into a stack block (in L1) before each streaming copy to the result.
internal let streamingBlock = 512

/// Runs `body(out, range)` over chunks of `0..<count` on the pool, where `body` writes the
/// `range.count` results for `range` to `out`.
///
/// `out` is `destination + range.lowerBound`, except for a large `streaming` result: then it is
/// a block on the stack, copied to the destination with non-temporal stores
/// (`ck_stream_store`). An ordinary store to memory that is not in cache first reads the line
/// (write-allocate), so writing a new 64 MiB tensor moved 128 MiB; streamed, an operation moves
/// only the bytes it must. Pass `streaming: false` when `destination` is also an input, which is
/// then in cache anyway.
///
/// `input` and `other` are operands read at the same element offsets as the result (nil for
/// none); while one block is computed, the next block of each is prefetched. This serves operations written as Swift loops
/// (a tensor and a scalar, the activations' backward passes): on one core with 64 MiB tensors it
/// took `x + y` from 0.62x to 0.73x of a copy's bandwidth. The most common operations do better
/// still in C, storing each vector as it is computed (`ck_vzip_stream`, `ck_vmap_stream`).
@inline(__always)
internal func writeChunks(_ count: Int, into destination: UnsafeMutablePointer<Float>, streaming: Bool = true,
                          reading input: UnsafePointer<Float>? = nil, _ other: UnsafePointer<Float>? = nil,
                          _ body: (UnsafeMutablePointer<Float>, Range<Int>) -> Void) {
    let pool = ThreadPool.shared
    guard streaming && count >= streamingCount else {
        pool.parallelChunks(count, grain: elementwiseGrain) { r in body(destination + r.lowerBound, r) }
        return
    }
    pool.parallelChunks(count, grain: elementwiseGrain) { r in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: streamingBlock) { block in
            let scratch = block.baseAddress!
            var start = r.lowerBound
            while start < r.upperBound {
                let end = Swift.min(start + streamingBlock, r.upperBound)
                let next = Int64(Swift.min(streamingBlock, r.upperBound - end))
                if let input { ck_prefetch(input + end, next) }
                if let other { ck_prefetch(other + end, next) }
                body(scratch, start..<end)
                ck_stream_store(destination + start, scratch, Int64(end - start))
                start = end
            }
        }
        ck_stream_fence()
    }
}

/// A binary element-wise operation, as a type so that generic kernels specialise and inline it.
internal protocol BinaryElementOp {
    static func apply(_ a: Float, _ b: Float) -> Float
    /// The same operation for `ck_vzip_stream`.
    static var streamingOp: ck_zip_op { get }
}

internal enum AddOp: BinaryElementOp {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b }
    static var streamingOp: ck_zip_op { CK_ZIP_ADD }
}

internal enum SubtractOp: BinaryElementOp {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b }
    static var streamingOp: ck_zip_op { CK_ZIP_SUBTRACT }
}

internal enum MultiplyOp: BinaryElementOp {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b }
    static var streamingOp: ck_zip_op { CK_ZIP_MULTIPLY }
}

internal enum DivideOp: BinaryElementOp {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b }
    static var streamingOp: ck_zip_op { CK_ZIP_DIVIDE }
}

/// `z[i] = a[i * sa] op b[i * sb]` for `i < n`, where each stride is 0 (a broadcast value) or 1.
/// Each case is a plain loop the compiler vectorises behind a run-time overlap check. In-place
/// updates (`z == a`) get loops of their own: there the overlap check would always fail and send
/// the generic loop down its scalar fallback, at half the speed.
@inline(__always)
internal func binaryRun<Op: BinaryElementOp>(
    _: Op.Type, _ z: UnsafeMutablePointer<Float>,
    _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int, _ n: Int
) {
    let inPlace = UnsafePointer(z) == a
    if sa != 0 && sb != 0 {
        if inPlace {
            for i in 0..<n { z[i] = Op.apply(z[i], b[i]) }
        } else {
            for i in 0..<n { z[i] = Op.apply(a[i], b[i]) }
        }
    } else if sa != 0 {
        let s = b[0]
        if inPlace {
            for i in 0..<n { z[i] = Op.apply(z[i], s) }
        } else {
            for i in 0..<n { z[i] = Op.apply(a[i], s) }
        }
    } else if sb != 0 {
        let s = a[0]
        for i in 0..<n { z[i] = Op.apply(s, b[i]) }
    } else {
        z.update(repeating: Op.apply(a[0], b[0]), count: n)
    }
}

/// The iteration space of a broadcast between two operands and a contiguous output, with
/// size-1 output axes dropped and adjacent axes merged wherever both operands stay contiguous
/// across them. After that, the innermost axis has stride 0 or 1 in each operand, and most real
/// broadcasts have one or two axes left.
internal struct BroadcastLayout {
    /// Output extents, outermost first (never empty).
    var dims: [Int] = []
    /// Element strides of operand `a` per axis of `dims` (0 on broadcast axes).
    var stridesA: [Int] = []
    /// Element strides of operand `b` per axis of `dims` (0 on broadcast axes).
    var stridesB: [Int] = []

    init(out: [Int], a: [Int], b: [Int]) {
        let rank = out.count
        var sa = 1, sb = 1
        for k in stride(from: rank - 1, through: 0, by: -1) {
            let ea = k < rank - a.count ? 1 : a[k - (rank - a.count)]
            let eb = k < rank - b.count ? 1 : b[k - (rank - b.count)]
            let d = out[k]
            if d != 1 {
                let stA = ea == 1 ? 0 : sa, stB = eb == 1 ? 0 : sb
                if let last = dims.last, stridesA[dims.count - 1] * last == stA,
                   stridesB[dims.count - 1] * last == stB {
                    dims[dims.count - 1] = last * d
                } else {
                    dims.append(d)
                    stridesA.append(stA)
                    stridesB.append(stB)
                }
            }
            sa *= ea
            sb *= eb
        }
        if dims.isEmpty {
            dims = [1]; stridesA = [0]; stridesB = [0]
        }
        dims.reverse(); stridesA.reverse(); stridesB.reverse()
    }

    /// Calls `body(outputOffset, offsetA, offsetB, length)` for consecutive runs along the
    /// innermost axis that together cover the output elements `range`, in order.
    @inline(__always)
    func forEachRun(in range: Range<Int>, _ body: (Int, Int, Int, Int) -> Void) {
        if range.isEmpty { return }
        let outerRank = dims.count - 1
        let inner = dims[outerRank], innerA = stridesA[outerRank], innerB = stridesB[outerRank]
        var index = [Int](repeating: 0, count: Swift.max(outerRank, 1))
        var q = range.lowerBound / inner
        var j = range.lowerBound % inner
        var rowA = 0, rowB = 0
        for k in stride(from: outerRank - 1, through: 0, by: -1) {
            index[k] = q % dims[k]
            q /= dims[k]
            rowA += index[k] * stridesA[k]
            rowB += index[k] * stridesB[k]
        }
        var pos = range.lowerBound
        while pos < range.upperBound {
            let n = Swift.min(inner - j, range.upperBound - pos)
            body(pos, rowA + j * innerA, rowB + j * innerB, n)
            pos += n
            j = 0
            var k = outerRank - 1
            while k >= 0 {
                index[k] += 1
                rowA += stridesA[k]
                rowB += stridesB[k]
                if index[k] < dims[k] { break }
                rowA -= stridesA[k] * dims[k]
                rowB -= stridesB[k] * dims[k]
                index[k] = 0
                k -= 1
            }
        }
    }
}

extension Tensor {
    /// Whether every extent is 1 (a rank-0 tensor included): a one-element operand.
    @inline(__always)
    internal static func isUnit(_ shape: [Int]) -> Bool {
        for d in shape where d != 1 { return false }
        return true
    }

    /// `N` when `row` is `[N]` (with any leading 1s) and `full` ends in `N`: a row vector over the
    /// last axis of `full`.
    @inline(__always)
    internal static func rowVectorLength(_ row: [Int], of full: [Int]) -> Int? {
        guard let n = row.last, full.last == n, row.count <= full.count else { return nil }
        for k in 0..<(row.count - 1) where row[k] != 1 { return nil }
        return n
    }

    /// Writes `a op b`, broadcast to `shape` (which has `count` elements), to `z`, which may be `a`.
    /// Picks the equal-shape, one-element or row-vector fast path when one applies; allocates
    /// nothing on those paths.
    internal static func runBinary<Op: BinaryElementOp>(
        _ op: Op.Type, out z: UnsafeMutablePointer<Float>, shape: [Int], count: Int,
        a: UnsafePointer<Float>, aShape: [Int], b: UnsafePointer<Float>, bShape: [Int]
    ) {
        if count == 0 { return }
        let pool = ThreadPool.shared
        let streaming = UnsafePointer(z) != a && UnsafePointer(z) != b
        if aShape == bShape && streaming && count >= streamingCount {
            // Computed and streamed to memory vector by vector (see ck_vzip_stream).
            let isa = KernelISA.current.rawValue, code = Int32(op.streamingOp.rawValue)
            pool.parallelChunks(count, grain: elementwiseGrain) { r in
                let o = r.lowerBound
                ck_vzip_stream(isa, code, a + o, b + o, z + o, Int64(r.count))
            }
        } else if aShape == bShape {
            // In place, or small enough to stay in cache.
            pool.parallelChunks(count, grain: elementwiseGrain) { r in
                let o = r.lowerBound
                binaryRun(op, z + o, a + o, 1, b + o, 1, r.count)
            }
        } else if isUnit(bShape) {
            writeChunks(count, into: z, streaming: streaming, reading: a) { out, r in
                binaryRun(op, out, a + r.lowerBound, 1, b, 0, r.count)
            }
        } else if isUnit(aShape) {
            writeChunks(count, into: z, streaming: streaming, reading: b) { out, r in
                binaryRun(op, out, a, 0, b + r.lowerBound, 1, r.count)
            }
        } else if let n = rowVectorLength(bShape, of: aShape) {
            pool.parallelChunks(count / n, grain: Swift.max(1, elementwiseGrain / n)) { rows in
                for row in rows { binaryRun(op, z + row * n, a + row * n, 1, b, 1, n) }
            }
        } else if let n = rowVectorLength(aShape, of: bShape) {
            pool.parallelChunks(count / n, grain: Swift.max(1, elementwiseGrain / n)) { rows in
                for row in rows { binaryRun(op, z + row * n, a, 1, b + row * n, 1, n) }
            }
        } else {
            let layout = BroadcastLayout(out: shape, a: aShape, b: bShape)
            let innerA = layout.stridesA[layout.stridesA.count - 1]
            let innerB = layout.stridesB[layout.stridesB.count - 1]
            pool.parallelChunks(count, grain: elementwiseGrain) { r in
                layout.forEachRun(in: r) { o, oa, ob, n in
                    binaryRun(op, z + o, a + oa, innerA, b + ob, innerB, n)
                }
            }
        }
    }

    internal static func binary<Op: BinaryElementOp>(_ lhs: Tensor, _ rhs: Tensor, _ op: Op.Type) -> Tensor {
        let shape = lhs.shape == rhs.shape ? lhs.shape : broadcastShape(lhs.shape, rhs.shape)
        return lhs.withUnsafeBufferPointer { a in
            rhs.withUnsafeBufferPointer { b in
                Tensor(shape: shape) { z in
                    runBinary(op, out: z.baseAddress!, shape: shape, count: z.count,
                              a: a.baseAddress!, aShape: lhs.shape, b: b.baseAddress!, bShape: rhs.shape)
                }
            }
        }
    }

    /// `lhs op rhs` for every element, through the one-element fast path of `runBinary`.
    internal static func binary<Op: BinaryElementOp>(_ lhs: Tensor, _ rhs: Float, _ op: Op.Type) -> Tensor {
        withUnsafePointer(to: rhs) { scalar in
            lhs.withUnsafeBufferPointer { a in
                Tensor(shape: lhs.shape) { z in
                    runBinary(op, out: z.baseAddress!, shape: lhs.shape, count: z.count,
                              a: a.baseAddress!, aShape: lhs.shape, b: scalar, bShape: [])
                }
            }
        }
    }

    internal static func binary<Op: BinaryElementOp>(_ lhs: Float, _ rhs: Tensor, _ op: Op.Type) -> Tensor {
        withUnsafePointer(to: lhs) { scalar in
            rhs.withUnsafeBufferPointer { b in
                Tensor(shape: rhs.shape) { z in
                    runBinary(op, out: z.baseAddress!, shape: rhs.shape, count: z.count,
                              a: scalar, aShape: [], b: b.baseAddress!, bShape: rhs.shape)
                }
            }
        }
    }

    internal mutating func updateInPlace<Op: BinaryElementOp>(_ rhs: Tensor, _ op: Op.Type, _ name: StaticString) {
        neuritePrecondition(Tensor.broadcasts(rhs.shape, to: shape),
                     "\(name): cannot broadcast shape \(rhs.shape) to \(shape) (the left-hand side keeps its shape)")
        let shape = self.shape, n = count
        withUnsafeMutableBufferPointer { z in
            rhs.withUnsafeBufferPointer { b in
                let base = z.baseAddress!
                Tensor.runBinary(op, out: base, shape: shape, count: n,
                                 a: UnsafePointer(base), aShape: shape, b: b.baseAddress!, bShape: rhs.shape)
            }
        }
    }

    internal mutating func updateInPlace<Op: BinaryElementOp>(_ rhs: Float, _ op: Op.Type) {
        let shape = self.shape
        withUnsafeMutableBufferPointer { z in
            withUnsafePointer(to: rhs) { scalar in
                let base = z.baseAddress!
                Tensor.runBinary(op, out: base, shape: shape, count: z.count,
                                 a: UnsafePointer(base), aShape: shape, b: scalar, bShape: [])
            }
        }
    }
}
