import Foundation
import TensorCore

/// How many samples each class should have after oversampling (imbalanced-learn's
/// `sampling_strategy`). Oversamplers only add samples: a class already at or above its target
/// is left as it is.
public enum SamplingStrategy: Equatable, Sendable {
    /// Every class up to the largest class's count (imbalanced-learn's `"auto"` / `"not majority"`).
    case balanceAll
    /// Every class up to `ratio` times the largest class's count (rounded down), for `ratio` in
    /// `0...1` (imbalanced-learn's float strategy, applied to every class).
    case ratio(Double)
    /// The given classes up to the given counts; other classes are left alone.
    case counts([Int: Int])

    /// The number of samples to add to each class, given the current counts per class.
    /// - Throws: `OversamplingError` for a ratio outside `0...1`, or a count below the class's
    ///   current count or for a class with no samples.
    public func samplesToAdd(counts: [Int: Int]) throws -> [Int: Int] {
        let largest = counts.values.max() ?? 0
        var add: [Int: Int] = [:]
        switch self {
        case .balanceAll:
            for (c, n) in counts where n < largest { add[c] = largest - n }
        case .ratio(let r):
            guard r > 0 && r <= 1 else { throw OversamplingError("sampling ratio \(r) must be in (0, 1]") }
            let target = Int(Double(largest) * r)
            for (c, n) in counts where n < target { add[c] = target - n }
        case .counts(let wanted):
            for (c, target) in wanted {
                guard let n = counts[c], n > 0 else { throw OversamplingError("class \(c) has no samples to oversample") }
                guard target >= n else {
                    throw OversamplingError("class \(c) has \(n) samples; an oversampler cannot bring it down to \(target)")
                }
                if target > n { add[c] = target - n }
            }
        }
        return add
    }
}

/// An oversampler's arguments did not fit: the message says which and why.
public struct OversamplingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was wrong.
    public var message: String
    /// An error saying `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// Something that rebalances a labelled data set by adding samples to its smaller classes, in
/// the spirit of imbalanced-learn's `fit_resample`.
public protocol Oversampler {
    /// `x` `[N, ...]` and labels `y` (N of them) with new samples appended: the original samples
    /// first, in their order, then the new ones class by class (ascending class), so the result
    /// has `N + added` rows of the same per-sample shape.
    /// - Throws: `OversamplingError` when the labels do not match `x` or the strategy cannot be met.
    func fitResample(_ x: Tensor, _ y: [Int]) throws -> (x: Tensor, y: [Int])
}

extension Oversampler {
    /// Checks `x` and `y`, works out how many samples each class needs, and appends what `make`
    /// returns for each class (`make(classRows, count)` gives `[count, D]`).
    func resample(_ x: Tensor, _ y: [Int], strategy: SamplingStrategy,
                  _ make: (_ label: Int, _ rows: Tensor, _ count: Int) throws -> Tensor) throws -> (x: Tensor, y: [Int]) {
        guard x.rank >= 1, x.shape[0] == y.count else {
            throw OversamplingError("fitResample: x \(x.shape) has \(x.rank >= 1 ? x.shape[0] : 0) samples but y has \(y.count) labels")
        }
        guard !y.isEmpty else { return (x, y) }
        let n = y.count, d = x.count / n
        var members: [Int: [Int]] = [:]
        for (i, label) in y.enumerated() { members[label, default: []].append(i) }
        let add = try strategy.samplesToAdd(counts: members.mapValues(\.count))
        let flat = x.reshaped([n, d])
        var parts = [flat]
        var labels = y
        for label in add.keys.sorted() {
            let count = add[label]!
            guard count > 0 else { continue }
            let generated = try make(label, flat.gather(members[label]!), count)
            parts.append(generated.reshaped([count, d]))
            labels += Array(repeating: label, count: count)
        }
        let rows = Tensor.concatenate(parts, axis: 0)
        return (rows.reshaped([labels.count] + Array(x.shape.dropFirst())), labels)
    }
}

/// Oversampling by drawing existing samples of each class again, with replacement
/// (imbalanced-learn's `RandomOverSampler`).
public struct RandomOverSampler: Oversampler, Sendable {
    /// How many samples each class should end with.
    public var strategy: SamplingStrategy
    /// The seed of the draws.
    public var seed: UInt64

    /// A random oversampler.
    public init(strategy: SamplingStrategy = .balanceAll, seed: UInt64 = 0) {
        self.strategy = strategy
        self.seed = seed
    }

    /// See ``Oversampler/fitResample(_:_:)``.
    public func fitResample(_ x: Tensor, _ y: [Int]) throws -> (x: Tensor, y: [Int]) {
        var generator = SeededGenerator(seed: seed)
        return try resample(x, y, strategy: strategy) { _, rows, count in
            rows.gather((0..<count).map { _ in generator.nextIndex(below: rows.shape[0]) })
        }
    }
}

/// SMOTE (Chawla et al. 2002, imbalanced-learn's `SMOTE`): each new sample lies on the segment
/// between a random sample of its class and one of that sample's `k` nearest neighbours in the
/// same class, at a uniform random position: `s = xᵢ + u·(xⱼ - xᵢ)`, `u ∈ [0, 1)`.
///
/// **Cost.** Squared distances come from one GEMM per block of rows, `‖a‖² + ‖b‖² - 2·a·b`:
/// `2·n²·D` flops for a class of `n` samples of `D` features, plus a partial sort of each row;
/// memory is a block of at most 1024 rows of distances at a time.
public struct SMOTE: Oversampler, Sendable {
    /// How many samples each class should end with.
    public var strategy: SamplingStrategy
    /// Neighbours per sample (5, as imbalanced-learn); fewer when the class is smaller.
    public var neighbours: Int
    /// The seed of the draws.
    public var seed: UInt64

    /// A SMOTE oversampler.
    /// - Precondition: `neighbours >= 1`.
    public init(strategy: SamplingStrategy = .balanceAll, neighbours: Int = 5, seed: UInt64 = 0) {
        neuritePrecondition(neighbours >= 1, "SMOTE needs at least one neighbour, got \(neighbours)")
        self.strategy = strategy
        self.neighbours = neighbours
        self.seed = seed
    }

    /// The indices `[n][k]` of each row's `k` nearest other rows of `rows` `[n, D]` (Euclidean),
    /// nearest first; distances through GEMM.
    public static func nearestNeighbours(_ rows: Tensor, k: Int) -> [[Int]] {
        neuritePrecondition(rows.rank == 2, "nearestNeighbours needs rows [n, D], got \(rows.shape)")
        let n = rows.shape[0]
        let k = Swift.min(k, n - 1)
        guard k > 0 else { return Array(repeating: [], count: n) }
        let norms = (rows * rows).sum(alongAxis: 1).scalars
        var result = [[Int]](repeating: [], count: n)
        let block = 1024
        for r0 in stride(from: 0, to: n, by: block) {
            let r1 = Swift.min(n, r0 + block)
            let products = Tensor.matmul(rows.slice(r0..<r1), rows, transposeB: true)   // [b, n]
            products.withUnsafeBufferPointer { p in
                var found = [(Float, Int)]()
                found.reserveCapacity(k + 1)
                for r in r0..<r1 {
                    let line = p.baseAddress! + (r - r0) * n
                    found.removeAll(keepingCapacity: true)
                    for j in 0..<n where j != r {
                        let distance = norms[r] + norms[j] - 2 * line[j]
                        if found.count < k || distance < found[found.count - 1].0 {
                            // Insert in order (k is small).
                            var at = found.count
                            while at > 0 && found[at - 1].0 > distance { at -= 1 }
                            found.insert((distance, j), at: at)
                            if found.count > k { found.removeLast() }
                        }
                    }
                    result[r] = found.map(\.1)
                }
            }
        }
        return result
    }

    /// See ``Oversampler/fitResample(_:_:)``.
    /// - Throws: `OversamplingError` also when a class to oversample has a single sample (it has
    ///   no neighbour to interpolate towards).
    public func fitResample(_ x: Tensor, _ y: [Int]) throws -> (x: Tensor, y: [Int]) {
        var generator = SeededGenerator(seed: seed)
        return try resample(x, y, strategy: strategy) { label, rows, count in
            let n = rows.shape[0], d = rows.shape[1]
            guard n >= 2 else { throw OversamplingError("SMOTE cannot oversample class \(label): it has a single sample") }
            let neighbours = SMOTE.nearestNeighbours(rows, k: self.neighbours)
            return rows.withUnsafeBufferPointer { src in
                Tensor(shape: [count, d]) { out in
                    for s in 0..<count {
                        let i = generator.nextIndex(below: n)
                        let j = neighbours[i][generator.nextIndex(below: neighbours[i].count)]
                        let u = generator.nextUnitFloat()
                        let a = src.baseAddress! + i * d, b = src.baseAddress! + j * d
                        let o = out.baseAddress! + s * d
                        for f in 0..<d { o[f] = a[f] + u * (b[f] - a[f]) }
                    }
                }
            }
        }
    }
}

/// Oversampling with a generative model: an ``RBM`` per class to oversample is trained on that
/// class's samples (values in `0...1`), and new samples are the visible means after `gibbsSteps`
/// Gibbs steps started from random samples of the class.
///
/// A minority class is small, so each RBM trains for at least `minimumUpdates` updates (more
/// epochs than `epochs` when the class has few batches); one Gibbs step keeps the new samples near
/// the data, more steps let them wander towards the RBM's modes.
public struct RBMOverSampler: Oversampler, Sendable {
    /// How many samples each class should end with.
    public var strategy: SamplingStrategy
    /// Hidden units of each class's RBM.
    public var hiddenUnits: Int
    /// Training passes over each class's samples (at least; see ``minimumUpdates``).
    public var epochs: Int
    /// The fewest parameter updates each RBM gets, whatever the class size.
    public var minimumUpdates: Int
    /// The RBMs' learning rate.
    public var learningRate: Float
    /// The RBMs' batch size.
    public var batchSize: Int
    /// Gibbs steps from a real sample to a generated one: few stay close to the data, many wander.
    public var gibbsSteps: Int
    /// The seed of the RBMs and the draws.
    public var seed: UInt64

    /// An RBM oversampler.
    /// - Precondition: positive sizes and counts.
    public init(strategy: SamplingStrategy = .balanceAll, hiddenUnits: Int = 100, epochs: Int = 20,
                minimumUpdates: Int = 2000, learningRate: Float = 0.05, batchSize: Int = 10, gibbsSteps: Int = 1,
                seed: UInt64 = 0) {
        neuritePrecondition(hiddenUnits >= 1 && epochs >= 1 && batchSize >= 1 && gibbsSteps >= 1,
                            "RBMOverSampler needs positive hidden units, epochs, batch size and Gibbs steps")
        self.strategy = strategy
        self.hiddenUnits = hiddenUnits
        self.epochs = epochs
        self.minimumUpdates = minimumUpdates
        self.learningRate = learningRate
        self.batchSize = batchSize
        self.gibbsSteps = gibbsSteps
        self.seed = seed
    }

    /// See ``Oversampler/fitResample(_:_:)``.
    public func fitResample(_ x: Tensor, _ y: [Int]) throws -> (x: Tensor, y: [Int]) {
        var generator = SeededGenerator(seed: seed)
        return try resample(x, y, strategy: strategy) { label, rows, count in
            let n = rows.shape[0], d = rows.shape[1]
            let rbm = RBM(visibleCount: d, hiddenCount: hiddenUnits, learningRate: learningRate,
                          batchSize: Swift.min(batchSize, n), method: .persistent(steps: 1),
                          seed: seed &+ UInt64(truncatingIfNeeded: label) &* 0x9E37_79B9)
            let batches = (n + rbm.batchSize - 1) / rbm.batchSize
            rbm.fit(rows, epochs: Swift.max(epochs, (minimumUpdates + batches - 1) / batches))
            let starts = rows.gather((0..<count).map { _ in generator.nextIndex(below: n) })
            return rbm.gibbs(starts, steps: gibbsSteps, meanField: true)
        }
    }
}
