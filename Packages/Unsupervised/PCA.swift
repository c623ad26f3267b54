import Foundation
import TensorCore

/// Principal component analysis: the linear baseline autoencoders are measured against.
///
/// `fit` centres the data, forms the covariance `Xcᵀ·Xc / (N - 1)` with one GEMM, and
/// diagonalises it in Float64 with ``SymmetricEigendecomposition`` (Householder tridiagonalisation
/// and implicit QL). The components are the eigenvectors of the `k` largest eigenvalues, each with
/// its largest-magnitude entry made positive so the result does not depend on the solver's signs.
///
/// **Cost.** `2·N·D²` flops for the covariance, about `4·D³` Float64 operations for the
/// eigendecomposition (about a second for `D = 784`), then `2·N·D·k` per transform.
///
/// ```swift
/// var pca = PCA(componentCount: 2)
/// pca.fit(images)                    // [N, 28, 28, 1] or [N, 784]
/// let codes = pca.transform(images)  // [N, 2]
/// let back = pca.inverseTransform(codes)  // [N, 784]
/// ```
public struct PCA: Sendable {
    /// `k`, the number of components kept.
    public let componentCount: Int
    /// The feature means `[D]`, once fitted.
    public private(set) var mean: Tensor?
    /// The principal axes `[k, D]` (rows of unit length, by decreasing variance), once fitted.
    public private(set) var components: Tensor?
    /// The variance along each component (eigenvalues of the covariance, divided by `N - 1`).
    public private(set) var explainedVariance: [Double] = []
    /// Each component's share of the total variance (the covariance's trace).
    public private(set) var explainedVarianceRatio: [Double] = []

    /// A PCA keeping `componentCount` components.
    /// - Precondition: `componentCount >= 1`.
    public init(componentCount: Int) {
        neuritePrecondition(componentCount >= 1, "PCA needs at least one component, got \(componentCount)")
        self.componentCount = componentCount
    }

    /// Fits the components to `x` `[N, ...]` (each sample flattened to `D` features).
    /// - Precondition: at least two samples and `componentCount <= D`.
    public mutating func fit(_ x: Tensor) {
        neuritePrecondition(x.rank >= 2 && x.shape[0] >= 2, "PCA.fit needs at least two samples [N, ...], got \(x.shape)")
        let n = x.shape[0], d = x.count / n
        neuritePrecondition(componentCount <= d, "PCA with \(componentCount) components cannot fit \(d) features (input \(x.shape))")
        let flat = x.reshaped([n, d])
        let mean = flat.mean(alongAxis: 0)
        let centred = flat - mean
        let covariance = Tensor.matmul(centred, transposeA: true, centred)
        let scale = 1 / Double(n - 1)
        var matrix = covariance.scalars.map { Double($0) * scale }
        // Symmetrise: GEMM's two triangles may differ in the last bit.
        for i in 0..<d { for j in 0..<i { let s = 0.5 * (matrix[i * d + j] + matrix[j * d + i]); matrix[i * d + j] = s; matrix[j * d + i] = s } }
        let eigen = SymmetricEigendecomposition(matrix, size: d)
        let total = (0..<d).reduce(0.0) { $0 + matrix[$1 * d + $1] }
        var rows = [Float](repeating: 0, count: componentCount * d)
        var variance: [Double] = []
        for c in 0..<componentCount {
            let index = d - 1 - c  // eigenvalues ascend
            variance.append(Swift.max(0, eigen.values[index]))
            let vector = eigen.vector(index)
            var largest = 0.0
            for v in vector where Swift.abs(v) > Swift.abs(largest) { largest = v }
            let sign: Double = largest < 0 ? -1 : 1
            for j in 0..<d { rows[c * d + j] = Float(sign * vector[j]) }
        }
        self.mean = mean
        components = Tensor(shape: [componentCount, d], scalars: rows)
        explainedVariance = variance
        explainedVarianceRatio = variance.map { total > 0 ? $0 / total : 0 }
    }

    /// The same fit keeping only the first `k` components (the `k`-component PCA of the same
    /// data, without fitting again).
    /// - Precondition: fitted, and `1 <= k <= componentCount`.
    public func keepingComponents(_ k: Int) -> PCA {
        let (mean, components) = fitted("keepingComponents")
        neuritePrecondition(k >= 1 && k <= componentCount, "PCA.keepingComponents(\(k)) of a \(componentCount)-component fit")
        var result = PCA(componentCount: k)
        result.mean = mean
        result.components = components.slice(0..<k)
        result.explainedVariance = Array(explainedVariance.prefix(k))
        result.explainedVarianceRatio = Array(explainedVarianceRatio.prefix(k))
        return result
    }

    private func fitted(_ op: String) -> (mean: Tensor, components: Tensor) {
        neuritePrecondition(mean != nil, "PCA.\(op) before fit")
        return (mean!, components!)
    }

    /// The coordinates `[N, k]` of `x` `[N, ...]` along the components.
    /// - Precondition: fitted, with samples of the fitted `D` features.
    public func transform(_ x: Tensor) -> Tensor {
        let (mean, components) = fitted("transform")
        let d = mean.count
        neuritePrecondition(x.rank >= 1 && x.count == x.shape[0] * d, "PCA.transform needs [N, ...] with \(d) features per sample, got \(x.shape)")
        return Tensor.matmul(x.reshaped([x.shape[0], d]) - mean, components, transposeB: true)
    }

    /// The points `[N, D]` in feature space for coordinates `codes` `[N, k]`.
    public func inverseTransform(_ codes: Tensor) -> Tensor {
        let (mean, components) = fitted("inverseTransform")
        neuritePrecondition(codes.rank == 2 && codes.shape[1] == componentCount,
                            "PCA.inverseTransform needs codes [N, \(componentCount)], got \(codes.shape)")
        return Tensor.matmul(codes, components) + mean
    }

    /// The mean squared difference between `x` and its projection onto the components.
    public func reconstructionError(_ x: Tensor) -> Double {
        let back = inverseTransform(transform(x))
        return Double((back - x.reshaped(back.shape)).squared().mean())
    }
}

/// The eigendecomposition `A = V·diag(λ)·Vᵀ` of a real symmetric matrix, in Float64.
///
/// Householder reduction to tridiagonal form, then the implicit QL algorithm with Wilkinson-like
/// shifts (EISPACK's `tred2` and `tql2`, as in JAMA). Eigenvalues come out in ascending order.
/// Cost: about `4n³/3` operations for the reduction and `3n³` for QL with eigenvectors.
public struct SymmetricEigendecomposition: Sendable {
    /// The size `n`.
    public let size: Int
    /// The eigenvalues, ascending.
    public let values: [Double]
    /// The eigenvectors, one per row (`vectors[i * n ..< (i + 1) * n]` belongs to `values[i]`).
    public let vectors: [Double]

    /// The unit eigenvector of `values[i]`.
    public func vector(_ i: Int) -> [Double] { Array(vectors[(i * size)..<((i + 1) * size)]) }

    /// Decomposes the row-major `size x size` symmetric matrix `matrix` (only symmetric input is
    /// meaningful; the lower triangle is what the reduction reads).
    /// - Precondition: `matrix.count == size * size`, `size >= 1`.
    public init(_ matrix: [Double], size n: Int) {
        neuritePrecondition(n >= 1 && matrix.count == n * n, "SymmetricEigendecomposition needs \(n)x\(n) = \(n * n) values, got \(matrix.count)")
        size = n
        var v = matrix
        var d = [Double](repeating: 0, count: n), e = [Double](repeating: 0, count: n)
        v.withUnsafeMutableBufferPointer { vb in
            d.withUnsafeMutableBufferPointer { db in
                e.withUnsafeMutableBufferPointer { eb in
                    SymmetricEigendecomposition.tred2(vb.baseAddress!, db.baseAddress!, eb.baseAddress!, n)
                }
            }
        }
        // tred2 kept the transform transposed (its columns are rows of `v`), as QL wants them.
        var w = v
        w.withUnsafeMutableBufferPointer { wb in
            d.withUnsafeMutableBufferPointer { db in
                e.withUnsafeMutableBufferPointer { eb in
                    SymmetricEigendecomposition.tql2(wb.baseAddress!, db.baseAddress!, eb.baseAddress!, n)
                }
            }
        }
        let order = (0..<n).sorted { d[$0] < d[$1] }
        values = order.map { d[$0] }
        var sorted = [Double](repeating: 0, count: n * n)
        for (k, i) in order.enumerated() { for j in 0..<n { sorted[k * n + j] = w[i * n + j] } }
        vectors = sorted
    }

    /// Householder tridiagonalisation: on return `v` holds the orthogonal transform, transposed
    /// (column `j` of the transform is row `j` of `v`), `d` the diagonal and `e` the
    /// sub-diagonal (in `e[1...]`).
    ///
    /// EISPACK's loops walk down columns; element `(i, j)` is kept at `v[j * n + i]` so those
    /// walks are contiguous (the input is symmetric, so it is its own transpose).
    private static func tred2(_ v: UnsafeMutablePointer<Double>, _ d: UnsafeMutablePointer<Double>,
                              _ e: UnsafeMutablePointer<Double>, _ n: Int) {
        @inline(__always) func at(_ i: Int, _ j: Int) -> UnsafeMutablePointer<Double> { v + j * n + i }
        for j in 0..<n { d[j] = at(n - 1, j).pointee }
        var i = n - 1
        while i > 0 {
            var scale = 0.0, h = 0.0
            for k in 0..<i { scale += Swift.abs(d[k]) }
            if scale == 0 {
                e[i] = d[i - 1]
                for j in 0..<i {
                    d[j] = at(i - 1, j).pointee
                    at(i, j).pointee = 0
                    at(j, i).pointee = 0
                }
            } else {
                for k in 0..<i {
                    d[k] /= scale
                    h += d[k] * d[k]
                }
                var f = d[i - 1]
                var g = h.squareRoot()
                if f > 0 { g = -g }
                e[i] = scale * g
                h -= f * g
                d[i - 1] = f - g
                for j in 0..<i { e[j] = 0 }
                for j in 0..<i {
                    f = d[j]
                    at(j, i).pointee = f
                    g = e[j] + at(j, j).pointee * f
                    if j + 1 <= i - 1 {
                        for k in (j + 1)...(i - 1) {
                            let vkj = at(k, j).pointee
                            g += vkj * d[k]
                            e[k] += vkj * f
                        }
                    }
                    e[j] = g
                }
                f = 0
                for j in 0..<i {
                    e[j] /= h
                    f += e[j] * d[j]
                }
                let hh = f / (h + h)
                for j in 0..<i { e[j] -= hh * d[j] }
                for j in 0..<i {
                    f = d[j]
                    g = e[j]
                    for k in j..<i { at(k, j).pointee -= f * e[k] + g * d[k] }
                    d[j] = at(i - 1, j).pointee
                    at(i, j).pointee = 0
                }
            }
            d[i] = h
            i -= 1
        }
        // Accumulate the transformations.
        for i in 0..<(n - 1) {
            at(n - 1, i).pointee = at(i, i).pointee
            at(i, i).pointee = 1
            let h = d[i + 1]
            if h != 0 {
                for k in 0...i { d[k] = at(k, i + 1).pointee / h }
                for j in 0...i {
                    var g = 0.0
                    for k in 0...i { g += at(k, i + 1).pointee * at(k, j).pointee }
                    for k in 0...i { at(k, j).pointee -= g * d[k] }
                }
            }
            for k in 0...i { at(k, i + 1).pointee = 0 }
        }
        for j in 0..<n {
            d[j] = at(n - 1, j).pointee
            at(n - 1, j).pointee = 0
        }
        at(n - 1, n - 1).pointee = 1
        e[0] = 0
    }

    /// Implicit QL on the tridiagonal `d`, `e`, rotating the eigenvector rows of `w` (row `i` is
    /// the `i`-th column of the transform from `tred2`).
    private static func tql2(_ w: UnsafeMutablePointer<Double>, _ d: UnsafeMutablePointer<Double>,
                             _ e: UnsafeMutablePointer<Double>, _ n: Int) {
        for i in 1..<Swift.max(1, n) { e[i - 1] = e[i] }
        e[n - 1] = 0
        var f = 0.0, tst1 = 0.0
        let eps = 0x1p-52
        for l in 0..<n {
            tst1 = Swift.max(tst1, Swift.abs(d[l]) + Swift.abs(e[l]))
            var m = l
            while m < n {
                if Swift.abs(e[m]) <= eps * tst1 { break }
                m += 1
            }
            if m == n { m = n - 1 }
            if m > l {
                var iterations = 0
                repeat {
                    iterations += 1
                    var g = d[l]
                    var p = (d[l + 1] - g) / (2 * e[l])
                    var r = (p * p + 1).squareRoot()
                    if p < 0 { r = -r }
                    d[l] = e[l] / (p + r)
                    d[l + 1] = e[l] * (p + r)
                    let dl1 = d[l + 1]
                    var h = g - d[l]
                    if l + 2 < n { for i in (l + 2)..<n { d[i] -= h } }
                    f += h
                    p = d[m]
                    var c = 1.0, c2 = 1.0, c3 = 1.0
                    let el1 = e[l + 1]
                    var s = 0.0, s2 = 0.0
                    var i = m - 1
                    while i >= l {
                        c3 = c2
                        c2 = c
                        s2 = s
                        g = c * e[i]
                        h = c * p
                        r = Foundation.hypot(p, e[i])
                        e[i + 1] = s * r
                        s = e[i] / r
                        c = p / r
                        p = c * d[i] - s * g
                        d[i + 1] = h + s * (c * g + s * d[i])
                        let a = w + i * n, b = w + (i + 1) * n
                        for k in 0..<n {
                            let t = b[k]
                            b[k] = s * a[k] + c * t
                            a[k] = c * a[k] - s * t
                        }
                        i -= 1
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1
                    e[l] = s * p
                    d[l] = c * p
                } while Swift.abs(e[l]) > eps * tst1 && iterations < 60
            }
            d[l] += f
            e[l] = 0
        }
    }
}
