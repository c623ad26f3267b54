import CKernels

// MARK: - Over all elements

extension Tensor {
    /// The sum of all elements (0 for an empty tensor).
    ///
    /// Accumulated in `Double` lanes by a vectorised kernel, so even 10M-element sums are exact
    /// to Float precision. Tensors of more than 64Ki elements are summed in fixed 64Ki-element
    /// chunks spread over `ThreadPool.shared`, combined in order: the result does not depend on
    /// the number of threads.
    public func sum() -> Float { Float(sumAsDouble()) }

    /// The mean of all elements, computed as `sum / count` in `Double`; NaN for an empty tensor.
    /// Cost as for `sum()`.
    public func mean() -> Float { Float(sumAsDouble() / Double(count)) }

    /// The largest element; NaN if any element is NaN. One vectorised pass, chunked over the
    /// pool as `sum()` is.
    /// - Precondition: the tensor has at least one element.
    public func max() -> Float {
        neuritePrecondition(count > 0, "max() needs at least one element, shape is \(shape)")
        return chunkedExtremum(ck_vmax, >)
    }

    /// The smallest element; NaN if any element is NaN. Cost as for `max()`.
    /// - Precondition: the tensor has at least one element.
    public func min() -> Float {
        neuritePrecondition(count > 0, "min() needs at least one element, shape is \(shape)")
        return chunkedExtremum(ck_vmin, <)
    }

    /// The row-major index of the largest element: the first one on ties, and the first NaN if
    /// there is one (as numpy). A vectorised `max()` and a scan to the first match.
    /// - Precondition: the tensor has at least one element.
    public func argmax() -> Int {
        neuritePrecondition(count > 0, "argmax() needs at least one element, shape is \(shape)")
        let m = max()
        return withUnsafeBufferPointer { x in
            m.isNaN ? x.firstIndex(where: { $0.isNaN })! : x.firstIndex(of: m)!
        }
    }
}

// MARK: - Along one axis

extension Tensor {
    /// Sums along `axis` (negative counts from the end: -1 is the last axis).
    ///
    /// `[B, N]` summed along 0 is `[N]` (or `[1, N]` when `keepingDimension`); along -1 it is `[B]`.
    /// Accumulated in `Double`. Cost: one pass over the tensor; along the last axis each row is
    /// summed by the vectorised kernel, along other axes whole rows are accumulated element-wise in
    /// tiles of 1024 columns; 64Ki elements or more are split over the pool. Summing an axis of
    /// extent 0 gives zeros.
    /// - Precondition: `-rank <= axis < rank`; the message names the axis and the shape.
    public func sum(alongAxis axis: Int, keepingDimension: Bool = false) -> Tensor {
        axisSum(axis, keepingDimension: keepingDimension, mean: false)
    }

    /// The mean along `axis` (sum / extent, in `Double`); NaN where the axis has extent 0.
    /// Shapes and cost as for `sum(alongAxis:keepingDimension:)`.
    /// - Precondition: `-rank <= axis < rank`.
    public func mean(alongAxis axis: Int, keepingDimension: Bool = false) -> Tensor {
        axisSum(axis, keepingDimension: keepingDimension, mean: true)
    }

    /// The largest element along `axis`, NaN where a NaN takes part.
    /// Shapes and cost as for `sum(alongAxis:keepingDimension:)`.
    /// - Precondition: `-rank <= axis < rank`, and the axis has a non-zero extent.
    public func max(alongAxis axis: Int, keepingDimension: Bool = false) -> Tensor {
        let g = axisGeometry(axis, "max(alongAxis:)")
        neuritePrecondition(g.length > 0, "max(alongAxis: \(axis)) needs a non-empty axis, shape is \(shape)")
        let isa = KernelISA.current.rawValue
        let (outer, length, inner) = (g.outer, g.length, g.inner)
        return withUnsafeBufferPointer { src in
            Tensor(shape: reducedShape(g.axis, keepingDimension)) { dst in
                let x = src.baseAddress!, o = dst.baseAddress!
                if outer * inner == 0 { return }
                if inner == 1 {
                    ThreadPool.shared.parallelChunks(outer, grain: Swift.max(1, elementwiseGrain / length)) { rows in
                        for r in rows { o[r] = ck_vmax(isa, x + r * length, Int64(length)) }
                    }
                    return
                }
                forEachTile(outer: outer, inner: inner, total: count) { block, i0, m in
                    let out = o + block * inner + i0
                    var p = x + block * length * inner + i0
                    out.update(from: p, count: m)
                    for _ in 1..<length {
                        p += inner
                        for i in 0..<m {
                            let v = p[i], b = out[i]
                            out[i] = (v > b || v != v) ? v : b
                        }
                    }
                }
            }
        }
    }

    /// The index along `axis` of the largest element, for every position of the other axes, in
    /// row-major order of those axes (`[B, C]` along -1 gives the `B` predicted classes).
    /// Ties go to the first index; a NaN counts as the largest (as numpy). One pass.
    /// - Precondition: `-rank <= axis < rank`, and the axis has a non-zero extent.
    public func argmax(alongAxis axis: Int) -> [Int] {
        let g = axisGeometry(axis, "argmax(alongAxis:)")
        neuritePrecondition(g.length > 0, "argmax(alongAxis: \(axis)) needs a non-empty axis, shape is \(shape)")
        let isa = KernelISA.current.rawValue
        let (outer, length, inner) = (g.outer, g.length, g.inner)
        var result = [Int](repeating: 0, count: outer * inner)
        if result.isEmpty { return result }
        withUnsafeBufferPointer { src in
            result.withUnsafeMutableBufferPointer { res in
                let x = src.baseAddress!
                if inner == 1 {
                    for r in 0..<outer {
                        let row = UnsafeBufferPointer(start: x + r * length, count: length)
                        let m = ck_vmax(isa, row.baseAddress!, Int64(length))
                        res[r] = m.isNaN ? row.firstIndex(where: { $0.isNaN })! : row.firstIndex(of: m)!
                    }
                    return
                }
                let best = UnsafeMutablePointer<Float>.allocate(capacity: inner)
                defer { best.deallocate() }
                for block in 0..<outer {
                    let index = res.baseAddress! + block * inner
                    var p = x + block * length * inner
                    best.update(from: p, count: inner)
                    for k in 1..<Swift.max(length, 1) {
                        p += inner
                        for i in 0..<inner {
                            let v = p[i], b = best[i]
                            if v > b || (v != v && b == b) {
                                best[i] = v
                                index[i] = k
                            }
                        }
                    }
                }
            }
        }
        return result
    }
}

// MARK: - Machinery (internal)

extension Tensor {
    /// Whole-tensor reductions work in chunks of this many elements, a fixed size so that results
    /// do not depend on the thread count.
    internal static let reductionChunk = 1 << 16

    /// The sum of all elements in `Double`.
    internal func sumAsDouble() -> Double {
        let isa = KernelISA.current.rawValue
        return withUnsafeBufferPointer { src in
            let n = src.count, x = src.baseAddress!, chunk = Tensor.reductionChunk
            let chunks = (n + chunk - 1) / chunk
            if chunks <= 1 { return n == 0 ? 0 : ck_vsum(isa, x, Int64(n)) }
            let partial = UnsafeMutablePointer<Double>.allocate(capacity: chunks)
            defer { partial.deallocate() }
            ThreadPool.shared.parallelFor(chunks) { c, _ in
                let lo = c * chunk
                partial[c] = ck_vsum(isa, x + lo, Int64(Swift.min(chunk, n - lo)))
            }
            var s = 0.0
            for c in 0..<chunks { s += partial[c] }
            return s
        }
    }

    /// `kernel` (ck_vmax or ck_vmin) over fixed chunks, combined with `better`; NaN if any chunk is NaN.
    internal func chunkedExtremum(_ kernel: (Int32, UnsafePointer<Float>?, Int64) -> Float,
                                  _ better: (Float, Float) -> Bool) -> Float {
        let isa = KernelISA.current.rawValue
        return withUnsafeBufferPointer { src in
            let n = src.count, x = src.baseAddress!, chunk = Tensor.reductionChunk
            let chunks = (n + chunk - 1) / chunk
            if chunks <= 1 { return kernel(isa, x, Int64(n)) }
            let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks)
            defer { partial.deallocate() }
            ThreadPool.shared.parallelFor(chunks) { c, _ in
                let lo = c * chunk
                partial[c] = kernel(isa, x + lo, Int64(Swift.min(chunk, n - lo)))
            }
            var m = partial[0]
            for c in 1..<chunks {
                let v = partial[c]
                if v.isNaN { return v }
                if better(v, m) { m = v }
            }
            return m
        }
    }

    /// The normalised axis and the tensor viewed as `[outer, length, inner]` around it.
    internal func axisGeometry(_ axis: Int, _ name: StaticString) -> (axis: Int, outer: Int, length: Int, inner: Int) {
        let a = axis < 0 ? axis + rank : axis
        neuritePrecondition(a >= 0 && a < rank, "\(name): axis \(axis) is out of range for shape \(shape)")
        var outer = 1, inner = 1
        for k in 0..<a { outer *= shape[k] }
        for k in (a + 1)..<rank { inner *= shape[k] }
        return (a, outer, shape[a], inner)
    }

    internal func reducedShape(_ axis: Int, _ keepingDimension: Bool) -> [Int] {
        var s = shape
        if keepingDimension { s[axis] = 1 } else { s.remove(at: axis) }
        return s
    }

    /// Calls `body(block, firstColumn, columns)` for tiles of up to 1024 columns of each of the
    /// `outer` blocks of an `[outer, length, inner]` view; in parallel when `total` is large.
    ///
    /// When that gives fewer than two tiles per thread (a bias gradient: the column sums of one
    /// `[128, 512]` block, one tile), the tiles narrow, down to 64 columns, so every thread gets
    /// some: each column is still reduced on its own, so the results do not change.
    @inline(__always)
    internal func forEachTile(outer: Int, inner: Int, total: Int, _ body: (Int, Int, Int) -> Void) {
        let parallel = total >= 2 * elementwiseGrain
        var tile = 1024
        if parallel {
            let wanted = 2 * ThreadPool.shared.effectiveWidth
            while tile > 64 && outer * ((inner + tile - 1) / tile) < wanted { tile /= 2 }
        }
        let tilesPerBlock = (inner + tile - 1) / tile
        let tasks = outer * tilesPerBlock
        if parallel && tasks > 1 {
            ThreadPool.shared.parallelFor(tasks) { t, _ in
                let i0 = (t % tilesPerBlock) * tile
                body(t / tilesPerBlock, i0, Swift.min(tile, inner - i0))
            }
        } else {
            for t in 0..<tasks {
                let i0 = (t % tilesPerBlock) * tile
                body(t / tilesPerBlock, i0, Swift.min(tile, inner - i0))
            }
        }
    }

    internal func axisSum(_ axis: Int, keepingDimension: Bool, mean: Bool) -> Tensor {
        let g = axisGeometry(axis, mean ? "mean(alongAxis:)" : "sum(alongAxis:)")
        let isa = KernelISA.current.rawValue
        let (outer, length, inner) = (g.outer, g.length, g.inner)
        let divisor = mean ? Double(length) : 1
        return withUnsafeBufferPointer { src in
            Tensor(shape: reducedShape(g.axis, keepingDimension)) { dst in
                let x = src.baseAddress!, o = dst.baseAddress!
                if outer * inner == 0 { return }
                if inner == 1 {
                    ThreadPool.shared.parallelChunks(outer, grain: Swift.max(1, elementwiseGrain / Swift.max(length, 1))) { rows in
                        for r in rows { o[r] = Float(ck_vsum(isa, x + r * length, Int64(length)) / divisor) }
                    }
                    return
                }
                forEachTile(outer: outer, inner: inner, total: count) { block, i0, m in
                    withUnsafeTemporaryAllocation(of: Double.self, capacity: 1024) { buffer in
                        let acc = buffer.baseAddress!
                        acc.initialize(repeating: 0, count: m)
                        var p = x + block * length * inner + i0
                        for _ in 0..<length {
                            for i in 0..<m { acc[i] += Double(p[i]) }
                            p += inner
                        }
                        let out = o + block * inner + i0
                        for i in 0..<m { out[i] = Float(acc[i] / divisor) }
                    }
                }
            }
        }
    }
}
