extension Tensor {
    /// The transpose of a rank-2 tensor: `[R, C]` becomes `[C, R]` (a copy, blocked for cache).
    public func transposed() -> Tensor {
        neuritePrecondition(rank == 2, "transposed() needs a rank-2 tensor, shape is \(shape)")
        let rows = shape[0], cols = shape[1]
        return withUnsafeBufferPointer { src in
            Tensor(shape: [cols, rows]) { dst in
                let block = 32
                for r0 in stride(from: 0, to: rows, by: block) {
                    for c0 in stride(from: 0, to: cols, by: block) {
                        for r in r0..<Swift.min(r0 + block, rows) {
                            for c in c0..<Swift.min(c0 + block, cols) {
                                dst[c * rows + r] = src[r * cols + c]
                            }
                        }
                    }
                }
            }
        }
    }

    /// The number of elements in one entry along the first axis (1 for rank 0 or 1).
    @inlinable
    internal var rowStride: Int { rank <= 1 ? 1 : count / shape[0] }

    /// The entries `range` along the first axis: `x.slice(32..<64)` of `[N, ...]` is `[32, ...]`.
    public func slice(_ range: Range<Int>) -> Tensor {
        neuritePrecondition(rank >= 1, "slice needs rank >= 1, shape is \(shape)")
        neuritePrecondition(range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "slice \(range) is out of bounds for shape \(shape)")
        var newShape = shape
        newShape[0] = range.count
        let stride = rowStride
        return withUnsafeBufferPointer { src in
            Tensor(shape: newShape) { dst in
                if range.count > 0 {
                    dst.baseAddress!.update(from: src.baseAddress! + range.lowerBound * stride,
                                            count: range.count * stride)
                }
            }
        }
    }

    /// The entries at `indices` along the first axis, in that order (for shuffled batches).
    ///
    /// Results of 32Ki floats or more are copied by the pool's threads, a run of rows each: a
    /// shuffled batch's rows are scattered over a data set far larger than the caches, so the
    /// copy waits on memory (12% of the shallow MLP's one-thread training step when serial).
    public func gather(_ indices: [Int]) -> Tensor {
        neuritePrecondition(rank >= 1, "gather needs rank >= 1, shape is \(shape)")
        var newShape = shape
        newShape[0] = indices.count
        let stride = rowStride
        let n = shape[0]
        for i in indices {
            neuritePrecondition(i >= 0 && i < n, "gather index \(i) is out of bounds for shape \(shape)")
        }
        return withUnsafeBufferPointer { src in
            Tensor(shape: newShape) { dst in
                guard stride > 0 else { return }
                ThreadPool.shared.parallelChunks(indices.count, grain: Swift.max(1, (1 << 14) / stride)) { rows in
                    for row in rows {
                        (dst.baseAddress! + row * stride).update(from: src.baseAddress! + indices[row] * stride, count: stride)
                    }
                }
            }
        }
    }

    /// Joins tensors along `axis`; all other extents must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        neuritePrecondition(!tensors.isEmpty, "concatenate needs at least one tensor")
        let first = tensors[0]
        neuritePrecondition(axis >= 0 && axis < first.rank, "concatenate axis \(axis) is out of range for shape \(first.shape)")
        var total = 0
        for t in tensors {
            var a = t.shape, b = first.shape
            neuritePrecondition(a.count == b.count, "cannot concatenate shapes \(first.shape) and \(t.shape)")
            a[axis] = 0; b[axis] = 0
            neuritePrecondition(a == b, "cannot concatenate shapes \(first.shape) and \(t.shape) along axis \(axis)")
            total += t.shape[axis]
        }
        var newShape = first.shape
        newShape[axis] = total
        // Each tensor contributes a contiguous run of `shape[axis] * inner` elements per outer index.
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[(axis + 1)...].reduce(1, *)
        return Tensor(shape: newShape) { dst in
            var column = 0
            for t in tensors {
                let run = t.shape[axis] * inner
                t.withUnsafeBufferPointer { src in
                    for o in 0..<outer where run > 0 {
                        (dst.baseAddress! + o * total * inner + column).update(from: src.baseAddress! + o * run, count: run)
                    }
                }
                column += run
            }
        }
    }
}

extension Tensor: CustomStringConvertible {
    /// A numpy-like rendering; axes longer than 6 show their first and last 3 entries around `...`.
    public var description: String {
        let values = scalars
        func format(_ v: Float) -> String {
            if v.isNaN { return "nan" }
            if v.isInfinite { return v > 0 ? "inf" : "-inf" }
            if v == v.rounded() && Swift.abs(v) < 1e7 { return "\(Int(v))." }
            return "\(v)"
        }
        func render(axis: Int, offset: Int) -> String {
            if axis == shape.count { return format(values[offset]) }
            let n = shape[axis]
            let stride = shape[(axis + 1)...].reduce(1, *)
            let shown: [Int?] = n > 6 ? Array(0..<3).map { $0 } + [nil] + Array((n - 3)..<n).map { $0 } : Array(0..<n).map { $0 }
            let separator = axis == shape.count - 1 ? ", " : ",\n" + String(repeating: " ", count: axis + 1)
            let parts = shown.map { i in i.map { render(axis: axis + 1, offset: offset + $0 * stride) } ?? "..." }
            return "[" + parts.joined(separator: separator) + "]"
        }
        if count == 0 { return "Tensor(shape: \(shape), [])" }
        return "Tensor(shape: \(shape),\n" + render(axis: 0, offset: 0) + ")"
    }
}
