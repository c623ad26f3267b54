import CKernels
import Foundation

extension Tensor {
    /// The softmax along the last axis: each row `x` of `[..., N]` becomes `e^(x - m) / Σ e^(x - m)`
    /// with `m` the row's maximum, so large logits never overflow (`[1000, 1001, -1000]` is fine).
    ///
    /// A `-inf` element gets probability 0. A row whose elements are all `-inf`, or that holds a
    /// `+inf` or a NaN, has no defined softmax and comes out NaN (as in PyTorch).
    /// Cost per row: a vectorised max, one fused exponentiate-and-sum pass (vectorised exp,
    /// `Double` sum) and one scaling pass; rows are split over `ThreadPool.shared` when the tensor
    /// has 64Ki elements or more.
    /// - Precondition: rank >= 1.
    public func softmax() -> Tensor {
        rowwise("softmax()") { isa, x, y, n in
            let shift = Tensor.softmaxShift(ck_vmax(isa, x, Int64(n)))
            let sum = ck_vexpsum(isa, x, y, Int64(n), shift)
            let scale = Float(1 / sum)
            for j in 0..<n { y[j] *= scale }
        }
    }

    /// The logarithm of `softmax()` along the last axis, computed directly as
    /// `(x - m) - log Σ e^(x - m)`, so it stays accurate (and finite) where the softmax underflows
    /// to 0: `logSoftmax` of `[0, -200]` is `[0, -200]`, not `[0, -inf]`.
    ///
    /// `-inf` elements give `-inf`; rows that are all `-inf`, or hold `+inf` or NaN, give NaN.
    /// Cost per row: a vectorised max, an exponentiate-and-sum pass (nothing stored) and a
    /// subtraction pass; parallel over rows as `softmax()`.
    /// - Precondition: rank >= 1.
    public func logSoftmax() -> Tensor {
        rowwise("logSoftmax()") { isa, x, y, n in
            let shift = Tensor.softmaxShift(ck_vmax(isa, x, Int64(n)))
            let logSum = Float(Foundation.log(ck_vexpsum(isa, x, nil, Int64(n), shift)))
            for j in 0..<n { y[j] = (x[j] - shift) - logSum }
        }
    }

    /// `log Σ e^x` over the last axis: `[..., N]` gives `[...]` (a rank-0 tensor for a rank-1 input).
    ///
    /// Computed as `m + log Σ e^(x - m)` with `m` the row maximum, the sum and the final addition in
    /// `Double`. A row that is all `-inf`, or empty, gives `-inf`; a row holding `+inf` gives `+inf`;
    /// a NaN anywhere in the row gives NaN. Cost per row: a vectorised max and an
    /// exponentiate-and-sum pass; parallel over rows as `softmax()`.
    /// - Precondition: rank >= 1.
    public func logSumExp() -> Tensor {
        neuritePrecondition(rank >= 1, "logSumExp() needs rank >= 1, shape is \(shape)")
        let n = shape[rank - 1]
        let rows = Tensor.elementCount(of: Array(shape.dropLast()))
        let isa = KernelISA.current.rawValue
        return withUnsafeBufferPointer { src in
            Tensor(shape: Array(shape.dropLast())) { dst in
                let x = src.baseAddress!, o = dst.baseAddress!
                ThreadPool.shared.parallelChunks(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(n, 1))) { rr in
                    for r in rr {
                        let row = x + r * n
                        let m = n == 0 ? -Float.infinity : ck_vmax(isa, row, Int64(n))
                        if m.isInfinite || m.isNaN {
                            o[r] = m
                        } else {
                            o[r] = Float(Double(m) + Foundation.log(ck_vexpsum(isa, row, nil, Int64(n), m)))
                        }
                    }
                }
            }
        }
    }

    /// The amount subtracted from a row before exponentiating: its maximum, or 0 when the maximum
    /// is -inf (all elements -inf), so that no `-inf - -inf` appears and the row sums to 0.
    @inline(__always)
    internal static func softmaxShift(_ m: Float) -> Float { m == -.infinity ? 0 : m }

    /// A tensor of this shape whose rows along the last axis are written by
    /// `body(isa, sourceRow, destinationRow, rowLength)`, rows split over the pool when large.
    @inline(__always)
    internal func rowwise(_ name: StaticString,
                          _ body: (Int32, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        neuritePrecondition(rank >= 1, "\(name) needs rank >= 1, shape is \(shape)")
        let n = shape[rank - 1]
        let isa = KernelISA.current.rawValue
        return withUnsafeBufferPointer { src in
            Tensor(shape: shape) { dst in
                if dst.count == 0 { return }
                let x = src.baseAddress!, y = dst.baseAddress!
                ThreadPool.shared.parallelChunks(dst.count / n, grain: Swift.max(1, elementwiseGrain / n)) { rows in
                    for r in rows { body(isa, x + r * n, y + r * n, n) }
                }
            }
        }
    }
}
