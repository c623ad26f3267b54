import TensorCore

// MARK: - Labels

/// One-hot encoding: row `i` of the result is all zeros except a 1 in column `labels[i]`.
///
/// `[N]` labels become a `[N, classes]` tensor (`N * classes` floats written once).
///
/// - Precondition: `classes > 0` and every label is in `0..<classes`; the message names the
///   offending label, its position and the class count.
public func oneHot(_ labels: [Int], classes: Int) -> Tensor {
    neuritePrecondition(classes > 0, "oneHot needs a positive class count, got \(classes)")
    return Tensor(shape: [labels.count, classes]) { out in
        out.initialize(repeating: 0)
        for (i, label) in labels.enumerated() {
            neuritePrecondition(label >= 0 && label < classes,
                         "oneHot: label \(label) at position \(i) is out of range for \(classes) classes")
            out[i * classes + label] = 1
        }
    }
}

/// How many times each class occurs: `result[c]` is the number of labels equal to `c`.
///
/// The result has `classes` entries when given, else `max(labels) + 1` (empty for no labels).
/// One pass over `labels`.
///
/// - Precondition: every label is non-negative, and below `classes` when it is given.
public func classCounts(labels: [Int], classes: Int? = nil) -> [Int] {
    let size: Int
    if let classes {
        neuritePrecondition(classes >= 0, "classCounts needs a non-negative class count, got \(classes)")
        size = classes
    } else {
        size = (labels.max() ?? -1) + 1
    }
    var counts = [Int](repeating: 0, count: size)
    for (i, label) in labels.enumerated() {
        neuritePrecondition(label >= 0 && label < size,
                     "classCounts: label \(label) at position \(i) is out of range for \(size) classes")
        counts[label] += 1
    }
    return counts
}

/// Per-sample weights that give every class the same total weight, as scikit-learn's
/// `class_weight="balanced"`: sample `i` weighs `N / (K * count[labels[i]])`, where `N` is the
/// number of labels and `K` the number of distinct classes present.
///
/// Each class present then totals `N / K` and all weights sum to `N`, so a ``WeightedSampler``
/// over these weights draws every class equally often in expectation. Use them as loss weights
/// the same way. One pass over `labels`; any integer labels are allowed.
public func balancingWeights(labels: [Int]) -> [Double] {
    var counts: [Int: Int] = [:]
    for label in labels { counts[label, default: 0] += 1 }
    let scale = Double(labels.count) / Double(max(counts.count, 1))
    return labels.map { scale / Double(counts[$0]!) }
}

// MARK: - Splits

/// Splits sample positions into training and validation sets with the same class proportions
/// (a stratified shuffle split, as scikit-learn's `train_test_split(..., stratify=labels)`).
///
/// `fraction` is the share of each class held out for validation. The validation size is
/// `round(fraction * N)` in total, shared among the classes by largest remainder, so each class
/// gives `floor` or `ceil` of `fraction * count[class]`: proportions are kept within rounding.
/// Which samples of a class go to validation is chosen at random from `SeededGenerator(seed:)`
/// (classes taken in ascending label order), so the same labels and seed give the same split.
///
/// The split is made here, once, before any shuffling for training: both lists come back in
/// ascending order, disjoint, and together hold every position `0..<N` exactly once; the
/// ``DataLoader`` shuffles each epoch. Pair it with ``Subset``. Costs `O(N log N)`.
///
/// - Precondition: `0 <= fraction <= 1`.
public func stratifiedSplit(labels: [Int], fraction: Double, seed: UInt64) -> (train: [Int], validation: [Int]) {
    neuritePrecondition(fraction >= 0 && fraction <= 1, "stratifiedSplit needs a fraction in 0...1, got \(fraction)")
    var members: [Int: [Int]] = [:]
    for (i, label) in labels.enumerated() { members[label, default: []].append(i) }
    let classes = members.keys.sorted()

    // Largest-remainder apportionment: floors first, then one more to the classes whose exact
    // share lost the most (ties to the smaller label), until the total is round(fraction * N).
    let exact = classes.map { fraction * Double(members[$0]!.count) }
    var take = exact.map { Int($0.rounded(.down)) }
    let target = Int((fraction * Double(labels.count)).rounded())
    let byRemainder = classes.indices.sorted { a, b in
        let ra = exact[a] - Double(take[a]), rb = exact[b] - Double(take[b])
        return ra != rb ? ra > rb : a < b
    }
    var missing = target - take.reduce(0, +)
    for c in byRemainder where missing > 0 && take[c] < members[classes[c]]!.count {
        take[c] += 1
        missing -= 1
    }

    var generator = SeededGenerator(seed: seed)
    var train: [Int] = [], validation: [Int] = []
    train.reserveCapacity(labels.count - target)
    validation.reserveCapacity(target)
    for (c, label) in classes.enumerated() {
        var positions = members[label]!
        positions.seededShuffle(using: &generator)
        validation += positions[..<take[c]]
        train += positions[take[c]...]
    }
    train.sort()
    validation.sort()
    return (train, validation)
}

// MARK: - Samplers

/// Chooses the sample indices a ``DataLoader`` visits in one epoch, in order.
///
/// A sampler replaces the loader's own shuffle: over-sampling rare classes, sampling with
/// replacement, or visiting a fixed subset. It must be deterministic given the generator.
public protocol Sampler: Sendable {
    /// The number of indices ``indices(using:)`` returns (samples per epoch).
    var count: Int { get }

    /// The indices for one epoch, each in `0..<dataset.count`, drawn with `generator`
    /// (the loader passes `SeededGenerator(seed: seed, stream: epoch)`).
    func indices(using generator: inout SeededGenerator) -> [Int]
}

/// Draws sample indices with replacement, index `i` with probability `weights[i] / sum(weights)`.
///
/// ```swift
/// let sampler = try WeightedSampler(weights: balancingWeights(labels: labels))
/// let loader = DataLoader(data, batchSize: 32, seed: 7, sampler: sampler)  // classes drawn equally often
/// ```
///
/// Built on cumulative sums: `O(n)` memory and set-up, `O(log n)` per draw by binary search.
/// A zero weight is never drawn (exactly, not just with tiny probability), because a draw picks
/// the first index whose cumulative sum exceeds a uniform value below the total.
public struct WeightedSampler: Sampler {
    /// Running totals of the weights: `cumulative[i] = weights[0] + ... + weights[i]`.
    private let cumulative: [Double]
    /// The last index with a positive weight: where a draw lands if rounding puts it at the total.
    private let lastPositive: Int

    /// The number of indices drawn per epoch by ``indices(using:)``.
    public let count: Int

    /// The number of weights, so draws are in `0..<populationCount`.
    public var populationCount: Int { cumulative.count }

    /// A sampler over `weights.count` indices; each epoch draws `count` of them
    /// (`weights.count` when `nil`).
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) when a weight is negative, NaN or infinite
    ///   (the message names its position and value), or when the weights do not have a positive,
    ///   finite sum (none given, all zero, or overflowing).
    /// - Precondition: `count`, when given, is non-negative.
    public init(weights: [Double], count: Int? = nil) throws {
        neuritePrecondition((count ?? 0) >= 0, "WeightedSampler needs a non-negative count, got \(count ?? 0)")
        var running = 0.0
        var cumulative: [Double] = []
        cumulative.reserveCapacity(weights.count)
        var lastPositive = -1
        for (i, w) in weights.enumerated() {
            guard w.isFinite && w >= 0 else {
                throw DatasetError(.invalidArgument,
                                   "sampling weights must be finite and non-negative; weight \(i) is \(w)")
            }
            if w > 0 { lastPositive = i }
            running += w
            cumulative.append(running)
        }
        guard running.isFinite && running > 0 else {
            throw DatasetError(.invalidArgument,
                               "sampling weights need a positive, finite sum; \(weights.count) weights sum to \(running)")
        }
        self.cumulative = cumulative
        self.lastPositive = lastPositive
        self.count = count ?? weights.count
    }

    /// One index, drawn with probability proportional to its weight. `O(log n)`.
    public func draw<G: RandomNumberGenerator>(using generator: inout G) -> Int {
        // A uniform value in [0, total) from 53 random bits.
        let u = Double(generator.next() >> 11) * 0x1p-53 * cumulative[cumulative.count - 1]
        // The first index whose running total exceeds u: zero-weight indices repeat the previous
        // total, so they can never be first.
        var low = 0, high = cumulative.count
        while low < high {
            let mid = (low + high) / 2
            if cumulative[mid] > u { high = mid } else { low = mid + 1 }
        }
        return low < cumulative.count ? low : lastPositive
    }

    /// `n` independent draws (with replacement). `O(n log weights.count)`.
    public func draw<G: RandomNumberGenerator>(_ n: Int, using generator: inout G) -> [Int] {
        (0..<n).map { _ in draw(using: &generator) }
    }

    /// ``count`` draws: one epoch's indices.
    public func indices(using generator: inout SeededGenerator) -> [Int] {
        draw(count, using: &generator)
    }
}

/// One replica's share of a data set in data-parallel training, reshuffled every epoch from the
/// one seed that all replicas share (PyTorch's `DistributedSampler`).
///
/// ```swift
/// let sampler = try DistributedSampler(count: folder.count, rank: comm.rank, replicas: comm.size)
/// let loader = DataLoader(folder, batchSize: 64, seed: 7, sampler: sampler, prefetch: 4)
/// ```
///
/// Epoch `e`'s indices are `replicaShard(of:rank:replicas:padded:)` of the order a plain
/// `DataLoader` with the same seed would visit: `0..<count` shuffled by
/// `SeededGenerator(seed: seed, stream: e)`. Every replica draws the same permutation and keeps
/// the positions `rank, rank + replicas, ...`, so the replicas' shards are disjoint, together
/// cover the data set, and `R` replicas with batch `b` see the samples one process with batch
/// `R * b` sees. With `padded` (the default, for training) each replica gets `ceil(count / R)`
/// indices, so all take the same number of steps. `O(count)` time and memory per epoch.
public struct DistributedSampler: Sampler {
    /// The number of samples of the whole data set.
    public let datasetCount: Int
    /// This replica's rank, in `0..<replicas`.
    public let rank: Int
    /// The number of replicas.
    public let replicas: Int
    /// Whether each epoch's permutation is shuffled (otherwise index order, interleaved).
    public let shuffle: Bool
    /// Whether shards are padded to equal length (training) or not (evaluation, each sample once).
    public let padded: Bool

    /// A sampler of replica `rank`'s share of a data set of `count` samples.
    ///
    /// - Throws: ``DatasetError`` (`.invalidArgument`) when `count` is negative, `replicas < 1`
    ///   or `rank` is outside `0..<replicas`.
    public init(count: Int, rank: Int, replicas: Int, shuffle: Bool = true, padded: Bool = true) throws {
        guard count >= 0 else {
            throw DatasetError(.invalidArgument, "DistributedSampler needs a non-negative sample count, got \(count)")
        }
        guard replicas >= 1, rank >= 0, rank < replicas else {
            throw DatasetError(.invalidArgument, "DistributedSampler needs 0 <= rank < replicas, got rank \(rank) of \(replicas) replicas")
        }
        self.datasetCount = count
        self.rank = rank
        self.replicas = replicas
        self.shuffle = shuffle
        self.padded = padded
    }

    /// The indices per epoch: `ceil(count / replicas)` when padded, else this rank's share.
    public var count: Int { replicaShardCount(of: datasetCount, rank: rank, replicas: replicas, padded: padded) }

    /// This replica's indices for the epoch whose generator is `generator`.
    public func indices(using generator: inout SeededGenerator) -> [Int] {
        var order = Array(0..<datasetCount)
        if shuffle { order.seededShuffle(using: &generator) }
        return replicaShard(of: order, rank: rank, replicas: replicas, padded: padded)
    }
}
