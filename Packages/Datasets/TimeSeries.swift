import TensorCore

/// Sliding windows over a time series, with targets: Keras'
/// `keras.utils.timeseries_dataset_from_array`, as random access and as a `BatchSource` that
/// `fit`, `evaluate` and `predict` read directly.
///
/// **Windows.** With `s = startIndex`, `e = endIndex` (exclusive), length `L`, stride and
/// sampling rate `r`, window `i` starts at row `start_i = s + i * stride` and holds rows
/// `start_i, start_i + r, ..., start_i + (L - 1) * r` of `data`. There are
/// `ceil(m / stride)` windows where `m = e - s - (L - 1) * r` (so the last row any window uses
/// is below `e`). A window's shape is `[L] + data.shape.dropFirst()`: `[L, F]` for data `[N, F]`,
/// and batches are `[B, L, F]`.
///
/// **Targets.** Window `i`'s target is `targets[start_i]`, the row where the window *starts*,
/// exactly as in Keras. To predict something else, shift the targets. For example, to predict
/// the value `h` steps after a window's last row (row `start_i + (L - 1) * r + h`), drop the
/// first `shift = (L - 1) * r + h` target rows and the last `shift` data rows, so both have
/// `N - shift` rows:
///
/// ```swift
/// // series [N, 1]; predict the value h = 1 step after each 24-step window
/// let (l, h) = (24, 1)
/// let shift = (l - 1) + h
/// let windows = try TimeseriesWindows(
///     data: series.slice(0..<(n - shift)),         // [N - shift, 1]
///     targets: .values(series.slice(shift..<n)),   // [N - shift, 1]: row t is series[t + shift]
///     sequenceLength: l, batchSize: 32, shuffle: true, seed: 7)
/// try model.fit(windows, epochs: 10)   // x [32, 24, 1], targets [32, 1]
/// ```
///
/// (Keras' own example is `timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10)`:
/// the target of the window starting at `t` is `data[t + 10]`, the row just after it.)
///
/// **Batches.** Epoch `e` visits the windows in order, or shuffled (`seededShuffle` driven by
/// `SeededGenerator(seed: seed, stream: e)`, as ``DataLoader`` does, so a resumed run sees the
/// same batches); batch `k` is positions `k * batchSize ..< (k + 1) * batchSize` of that order,
/// the last one perhaps smaller. Without targets, a batch's targets are `.labels` holding each
/// window's start row, which `predict` ignores.
///
/// **Differences from Keras.** Targets must have exactly as many rows as `data` (Keras takes the
/// shorter of the two silently); `endIndex` may equal the number of rows (Keras rejects an
/// explicit `end_index == len(data)` although that is its default); windows are reshuffled every
/// epoch (Keras shuffles once). Nothing is copied at init: the tensors are shared, and a batch
/// costs one copy of its `B * L` rows.
public struct TimeseriesWindows: Sendable {
    /// The series, `[N, ...]` (usually `[N, F]`); row `t` is time step `t`.
    public let data: Tensor
    /// The targets, `N` of them (`.labels` or `.values` `[N, ...]`), or nil.
    public let targets: Targets?
    /// `L`, the number of time steps in a window.
    public let sequenceLength: Int
    /// The distance between the starts of consecutive windows.
    public let sequenceStride: Int
    /// The distance between consecutive rows inside a window.
    public let samplingRate: Int
    /// The first row any window may use.
    public let startIndex: Int
    /// One past the last row any window may use.
    public let endIndex: Int
    /// The number of windows per batch (the last batch of an epoch may be smaller).
    public let batchSize: Int
    /// Whether each epoch visits the windows in a seeded random order.
    public let shuffle: Bool
    /// The seed of the per-epoch shuffle.
    public let seed: UInt64
    /// The number of windows.
    public let count: Int

    /// Windows over `data` with optional `targets`; the parameters are Keras' (`startIndex`
    /// defaults to 0, `endIndex` to `N`).
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` naming the values when `data` has rank 0,
    ///   or no rows, `sequenceLength`, `sequenceStride`, `samplingRate` or `batchSize` is below 1,
    ///   `startIndex`/`endIndex` are outside `0 <= startIndex < endIndex <= N`, not even one
    ///   window fits between them, or `targets` does not have `N` rows.
    public init(data: Tensor, targets: Targets? = nil, sequenceLength: Int, sequenceStride: Int = 1,
                samplingRate: Int = 1, batchSize: Int = 128, shuffle: Bool = false, seed: UInt64 = 0,
                startIndex: Int? = nil, endIndex: Int? = nil) throws {
        func bad(_ message: String) -> DatasetError { DatasetError(.invalidArgument, "TimeseriesWindows: " + message) }
        guard data.rank >= 1 else { throw bad("data must have rank >= 1 (time along the first axis), shape is \(data.shape)") }
        let n = data.shape[0]
        guard n >= 1 else { throw bad("data has no rows, shape is \(data.shape)") }
        guard sequenceLength >= 1 else { throw bad("sequenceLength must be >= 1, got \(sequenceLength)") }
        guard sequenceStride >= 1 else { throw bad("sequenceStride must be >= 1, got \(sequenceStride)") }
        guard samplingRate >= 1 else { throw bad("samplingRate must be >= 1, got \(samplingRate)") }
        guard batchSize >= 1 else { throw bad("batchSize must be >= 1, got \(batchSize)") }
        let start = startIndex ?? 0
        let end = endIndex ?? n
        guard start >= 0 && start < n else { throw bad("startIndex must be in 0..<\(n) (the rows of data), got \(start)") }
        guard end > start && end <= n else {
            throw bad("endIndex must be in \(start + 1)...\(n) (after startIndex \(start), at most the \(n) rows of data), got \(end)")
        }
        if case .values(let t)? = targets, t.rank == 0 {
            throw bad("value targets must be [N, ...] with one row per time step, got a scalar")
        }
        if let targets, targets.count != n {
            throw bad("targets have \(targets.count) rows but data has \(n) (shift both to the same length; see the documentation)")
        }
        let (reach, overflow) = (sequenceLength - 1).multipliedReportingOverflow(by: samplingRate)
        let span = end - start
        guard !overflow && reach < span else {
            throw bad("a window spans \(overflow ? "too many" : String(reach + 1)) rows (sequenceLength \(sequenceLength), samplingRate \(samplingRate)) but only \(span) rows lie in \(start)..<\(end)")
        }
        let m = span - reach
        self.data = data
        self.targets = targets
        self.sequenceLength = sequenceLength
        self.sequenceStride = sequenceStride
        self.samplingRate = samplingRate
        self.startIndex = start
        self.endIndex = end
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.count = (m - 1) / sequenceStride + 1  // ceil(m / stride) for m >= 1, without overflow
    }

    /// The row of `data` where window `index` starts: `startIndex + index * sequenceStride`.
    ///
    /// - Precondition: `0 <= index < count`.
    public func startRow(of index: Int) -> Int {
        neuritePrecondition(index >= 0 && index < count, "TimeseriesWindows: window \(index) is out of range for \(count) windows")
        return startIndex + index * sequenceStride
    }

    /// Window `index`: `[L] + data.shape.dropFirst()` (one copy of `L` rows).
    ///
    /// - Precondition: `0 <= index < count`.
    public func window(at index: Int) -> Tensor {
        let x = windows([index])
        return x.reshaped(Array(x.shape.dropFirst()))
    }

    /// The windows at `indices` (in that order; they may repeat) stacked as `[B, L, ...]`, and
    /// their targets (`targets` at each start row, or the start rows as `.labels` without
    /// targets). One copy of the `B * L` rows.
    ///
    /// - Precondition: every index is in `0..<count`.
    public func batch(at indices: [Int]) -> TrainingBatch {
        let x = windows(indices)
        let starts = indices.map(startRow(of:))
        return TrainingBatch(x: x, targets: targets?.gathered(starts) ?? .labels(starts))
    }

    /// The window indices epoch `epoch` visits, in order: `0..<count`, or its seeded shuffle.
    ///
    /// - Precondition: `epoch >= 0`.
    public func order(epoch: Int) -> [Int] {
        neuritePrecondition(epoch >= 0, "TimeseriesWindows: epochs are numbered from 0, got \(epoch)")
        var indices = Array(0..<count)
        if shuffle {
            var generator = SeededGenerator(seed: seed, stream: UInt64(epoch))
            indices.seededShuffle(using: &generator)
        }
        return indices
    }

    private func windows(_ indices: [Int]) -> Tensor {
        let rest = Array(data.shape.dropFirst())
        let row = rest.reduce(1, *)
        let (length, rate) = (sequenceLength, samplingRate)
        let starts = indices.map(startRow(of:))
        return data.withUnsafeBufferPointer { src in
            Tensor(shape: [indices.count, length] + rest, unsafeUninitialized: { dst in
                guard row > 0 else { return }
                for (b, s) in starts.enumerated() {
                    for t in 0..<length {
                        (dst.baseAddress! + (b * length + t) * row)
                            .update(from: src.baseAddress! + (s + t * rate) * row, count: row)
                    }
                }
            })
        }
    }
}

extension TimeseriesWindows: BatchSource {
    /// `ceil(count / batchSize)`: the last batch keeps the windows left over.
    public var batchesPerEpoch: Int { (count + batchSize - 1) / batchSize }

    /// ``count``: every window once per epoch.
    public var samplesPerEpoch: Int { count }

    /// The batches of epoch `epoch` over ``order(epoch:)``, each made when asked for.
    public func makeBatchStream(epoch: Int) -> any BatchStream {
        TimeseriesBatchStream(windows: self, order: order(epoch: epoch))
    }
}

/// One epoch's batches of a ``TimeseriesWindows``, made one at a time on the caller's thread.
final class TimeseriesBatchStream: BatchStream {
    private let windows: TimeseriesWindows
    private let order: [Int]
    private var next = 0

    init(windows: TimeseriesWindows, order: [Int]) {
        self.windows = windows
        self.order = order
    }

    func nextBatch() throws -> TrainingBatch? {
        guard next < order.count else { return nil }
        let end = min(next + windows.batchSize, order.count)
        defer { next = end }
        return windows.batch(at: Array(order[next..<end]))
    }
}

/// Splits `count` time-ordered samples into consecutive train, validation and test ranges,
/// without shuffling (the future must not leak into training): train is the first
/// `round(count * trainFraction)` samples, validation the next `round(count * validationFraction)`,
/// test the rest. Rounding is to nearest, halves away from zero; validation is cut short if the
/// two rounded sizes exceed `count`.
///
/// ```swift
/// let split = try timeOrderedSplit(count: 1461, trainFraction: 0.7, validationFraction: 0.15)
/// // 0..<1023, 1023..<1242, 1242..<1461
/// ```
///
/// - Throws: ``DatasetError`` `.invalidArgument` when `count < 0`, a fraction is not finite or
///   outside `0...1`, `trainFraction` is 0, or the fractions add up to more than 1.
public func timeOrderedSplit(count: Int, trainFraction: Double, validationFraction: Double)
    throws -> (train: Range<Int>, validation: Range<Int>, test: Range<Int>) {
    func bad(_ message: String) -> DatasetError { DatasetError(.invalidArgument, "timeOrderedSplit: " + message) }
    guard count >= 0 else { throw bad("count must be >= 0, got \(count)") }
    guard trainFraction.isFinite && trainFraction > 0 && trainFraction <= 1 else {
        throw bad("trainFraction must be in (0, 1], got \(trainFraction)")
    }
    guard validationFraction.isFinite && validationFraction >= 0 && validationFraction <= 1 else {
        throw bad("validationFraction must be in [0, 1], got \(validationFraction)")
    }
    // A hair of tolerance so that 0.7 + 0.3 and the like, which round in Float64, are accepted.
    guard trainFraction + validationFraction <= 1 + 1e-9 else {
        throw bad("trainFraction \(trainFraction) + validationFraction \(validationFraction) is more than 1")
    }
    let total = Double(count)
    let trainEnd = min(count, Int((total * trainFraction).rounded(.toNearestOrAwayFromZero)))
    let validationEnd = min(count, trainEnd + Int((total * validationFraction).rounded(.toNearestOrAwayFromZero)))
    return (0..<trainEnd, trainEnd..<validationEnd, validationEnd..<count)
}
