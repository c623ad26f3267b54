import TensorCore

/// A per-feature affine map `y = (x - shift[f]) * scale[f] + offset[f]`, learnt by a scaler's
/// `fit`. Both scalers are this map with different statistics.
struct FeatureAffine: Sendable, Equatable {
    var shift: [Double]
    var scale: [Double]
    var offset: [Double]

    /// Applies the map (or its inverse) to every row of `x`, whose last axis holds the features.
    func apply(_ x: Tensor, inverse: Bool, who: String) throws -> Tensor {
        let f = shift.count
        guard x.rank >= 1, x.shape[x.rank - 1] == f else {
            throw DatasetError(.invalidArgument,
                               "\(who): x has shape \(x.shape) but the scaler was fitted on \(f) features (the last axis)")
        }
        return x.withUnsafeBufferPointer { src in
            Tensor(shape: x.shape, unsafeUninitialized: { dst in
                for i in 0..<src.count {
                    let j = i % f
                    let v = Double(src[i])
                    dst[i] = Float(inverse ? (v - offset[j]) / scale[j] + shift[j] : (v - shift[j]) * scale[j] + offset[j])
                }
            })
        }
    }
}

/// Per-feature statistics of `x` (`[N, ..., F]`, features on the last axis, rows on the rest)
/// in Float64: the column minima, maxima and means, and the population standard deviations
/// from a second pass over the deviations (no cancellation of large sums).
private func featureStatistics(_ x: Tensor, who: String) throws -> (min: [Double], max: [Double], mean: [Double], std: [Double]) {
    guard x.rank >= 2, x.shape[x.rank - 1] >= 1 else {
        throw DatasetError(.invalidArgument, "\(who).fit: x must be [N, F] (features on the last axis) with F >= 1, shape is \(x.shape)")
    }
    let f = x.shape[x.rank - 1]
    let rows = x.count / f
    guard rows >= 1 else { throw DatasetError(.invalidArgument, "\(who).fit: x has no rows, shape is \(x.shape)") }
    return try x.withUnsafeBufferPointer { v in
        var lo = [Double](repeating: .infinity, count: f)
        var hi = [Double](repeating: -.infinity, count: f)
        var sum = [Double](repeating: 0, count: f)
        for i in 0..<v.count {
            let d = Double(v[i])
            let j = i % f
            guard d.isFinite else {
                throw DatasetError(.invalidArgument, "\(who).fit: x holds \(d) at row \(i / f), feature \(j); every value must be finite")
            }
            lo[j] = min(lo[j], d)
            hi[j] = max(hi[j], d)
            sum[j] += d
        }
        let mean = sum.map { $0 / Double(rows) }
        var squares = [Double](repeating: 0, count: f)
        for i in 0..<v.count {
            let d = Double(v[i]) - mean[i % f]
            squares[i % f] += d * d
        }
        return (lo, hi, mean, squares.map { ($0 / Double(rows)).squareRoot() })
    }
}

/// Scales each feature to `range` using the minimum and maximum seen by ``fit(_:)``
/// (scikit-learn's `MinMaxScaler`): `y = lo + (x - min) * (hi - lo) / (max - min)`.
///
/// Fit on the training part only (``timeOrderedSplit(count:trainFraction:validationFraction:)``)
/// and transform every part with it; later data may then fall outside `range`, which is kept
/// (not clipped). A constant feature (`max == min`) is divided by 1 instead of 0, so it maps to
/// `lo` and back without NaNs. Features are the last axis, so a fitted scaler also transforms
/// windows `[B, T, F]` or predictions `[B, F]`. Values are computed in Float64, stored as Float32.
///
/// ```swift
/// var scaler = MinMaxScaler()
/// try scaler.fit(x.slice(split.train))        // x [N, F]
/// let scaled = try scaler.transform(x)
/// let back = try scaler.inverseTransform(predictions)
/// ```
public struct MinMaxScaler: Sendable {
    /// The target interval of every feature.
    public let range: ClosedRange<Float>
    /// Each feature's minimum seen by ``fit(_:)`` (nil before).
    public private(set) var dataMin: [Double]?
    /// Each feature's maximum seen by ``fit(_:)`` (nil before).
    public private(set) var dataMax: [Double]?
    private var map: FeatureAffine?

    /// An unfitted scaler to `range` (`0...1` by default).
    ///
    /// - Precondition: `range` is finite and not a single point.
    public init(range: ClosedRange<Float> = 0...1) {
        neuritePrecondition(range.lowerBound.isFinite && range.upperBound.isFinite && range.lowerBound < range.upperBound,
                            "MinMaxScaler needs a finite range with lowerBound < upperBound, got \(range)")
        self.range = range
    }

    /// Learns each feature's minimum and maximum from `x` `[N, F]` (or `[N, ..., F]`), replacing
    /// any earlier fit. One pass over `x` (two for the shared statistics), Float64 accumulation.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` when `x` has rank below 2, no rows, or a
    ///   non-finite value.
    public mutating func fit(_ x: Tensor) throws {
        let s = try featureStatistics(x, who: "MinMaxScaler")
        let lo = Double(range.lowerBound), hi = Double(range.upperBound)
        dataMin = s.min
        dataMax = s.max
        map = FeatureAffine(shift: s.min,
                            scale: zip(s.min, s.max).map { a, b in (hi - lo) / (b > a ? b - a : 1) },
                            offset: [Double](repeating: lo, count: s.min.count))
    }

    /// `x` scaled feature by feature (same shape; its last axis must be the fitted `F`).
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` before ``fit(_:)`` or for another feature count.
    public func transform(_ x: Tensor) throws -> Tensor {
        guard let map else { throw DatasetError(.invalidArgument, "MinMaxScaler.transform: the scaler is not fitted; call fit(_:) first") }
        return try map.apply(x, inverse: false, who: "MinMaxScaler.transform")
    }

    /// The inverse of ``transform(_:)``: scaled values back in the data's units.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` before ``fit(_:)`` or for another feature count.
    public func inverseTransform(_ x: Tensor) throws -> Tensor {
        guard let map else { throw DatasetError(.invalidArgument, "MinMaxScaler.inverseTransform: the scaler is not fitted; call fit(_:) first") }
        return try map.apply(x, inverse: true, who: "MinMaxScaler.inverseTransform")
    }
}

/// Standardises each feature to mean 0 and standard deviation 1 using the statistics seen by
/// ``fit(_:)`` (scikit-learn's `StandardScaler`): `y = (x - mean) / std`, with the population
/// standard deviation (divided by `N`, not `N - 1`).
///
/// Fit on the training part only and transform every part with it. A constant feature
/// (`std == 0`) is divided by 1 instead of 0, so it becomes 0 and maps back exactly. Features
/// are the last axis, so a fitted scaler also transforms `[B, T, F]` windows. Sums are Float64.
public struct StandardScaler: Sendable {
    /// Each feature's mean seen by ``fit(_:)`` (nil before).
    public private(set) var mean: [Double]?
    /// Each feature's population standard deviation seen by ``fit(_:)`` (nil before).
    public private(set) var standardDeviation: [Double]?
    private var map: FeatureAffine?

    /// An unfitted scaler.
    public init() {}

    /// Learns each feature's mean and standard deviation from `x` `[N, F]` (or `[N, ..., F]`),
    /// replacing any earlier fit. Two passes over `x`, Float64 accumulation.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` when `x` has rank below 2, no rows, or a
    ///   non-finite value.
    public mutating func fit(_ x: Tensor) throws {
        let s = try featureStatistics(x, who: "StandardScaler")
        mean = s.mean
        standardDeviation = s.std
        map = FeatureAffine(shift: s.mean, scale: s.std.map { $0 > 0 ? 1 / $0 : 1 },
                            offset: [Double](repeating: 0, count: s.mean.count))
    }

    /// `x` standardised feature by feature (same shape; its last axis must be the fitted `F`).
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` before ``fit(_:)`` or for another feature count.
    public func transform(_ x: Tensor) throws -> Tensor {
        guard let map else { throw DatasetError(.invalidArgument, "StandardScaler.transform: the scaler is not fitted; call fit(_:) first") }
        return try map.apply(x, inverse: false, who: "StandardScaler.transform")
    }

    /// The inverse of ``transform(_:)``: `x * std + mean`.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` before ``fit(_:)`` or for another feature count.
    public func inverseTransform(_ x: Tensor) throws -> Tensor {
        guard let map else { throw DatasetError(.invalidArgument, "StandardScaler.inverseTransform: the scaler is not fitted; call fit(_:) first") }
        return try map.apply(x, inverse: true, who: "StandardScaler.inverseTransform")
    }
}
