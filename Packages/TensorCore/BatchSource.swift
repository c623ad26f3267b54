/// What a model is trained to produce for each sample: a class label, or a tensor of values
/// (one-hot or probability rows, binary targets, regression values).
///
/// It lives in TensorCore, beside ``BatchSource``, because both the data side (Datasets' loaders)
/// and the training side (Layers' `fit`) speak it, and neither depends on the other.
public enum Targets: Sendable {
    /// One class index per sample.
    case labels([Int])
    /// One tensor per sample, stacked: `[N, ...]`, the shape of the model's output.
    case values(Tensor)

    /// The number of samples.
    public var count: Int {
        switch self {
        case .labels(let l): l.count
        case .values(let t): t.rank == 0 ? 1 : t.shape[0]
        }
    }

    /// The samples at `indices`, in that order.
    public func gathered(_ indices: [Int]) -> Targets {
        switch self {
        case .labels(let l): .labels(indices.map { l[$0] })
        case .values(let t): .values(t.gather(indices))
        }
    }

    /// The samples in `range`.
    public func sliced(_ range: Range<Int>) -> Targets {
        switch self {
        case .labels(let l): .labels(Array(l[range]))
        case .values(let t): .values(t.slice(range))
        }
    }
}

/// One batch to learn from or to evaluate on: inputs `x` `[B, ...]` and the `B` samples' targets.
public struct TrainingBatch: Sendable {
    /// The inputs, `[B, ...]`.
    public var x: Tensor
    /// Their targets: `B` labels or a `[B, ...]` tensor.
    public var targets: Targets

    /// A batch of `x` `[B, ...]` and its `targets`.
    public init(x: Tensor, targets: Targets) {
        self.x = x
        self.targets = targets
    }

    /// A batch of `x` `[B, ...]` and its `B` class labels.
    public init(x: Tensor, labels: [Int]) {
        self.init(x: x, targets: .labels(labels))
    }

    /// `B`, the number of samples (the first extent of `x`; 0 for a scalar `x`).
    public var count: Int { x.rank == 0 ? 0 : x.shape[0] }
}

/// A source of batches, epoch by epoch: what `fit`, `evaluate` and `predict` read when the data
/// do not come as whole tensors (Keras' `fit(dataset)`, a PyTorch `DataLoader` loop).
///
/// Datasets' `DataLoader` is one (over an image folder, IDX files, tensors or a data set of your
/// own, with its sampler, transforms and prefetching); any type can be, for data that the
/// loaders do not cover. The contract:
/// - `makeBatchStream(epoch:)` yields the batches of epoch `epoch` (counted from 0) in order, and
///   the same batches every time it is called with the same epoch: that is what makes a run
///   resumed with `initialEpoch` see the batches an uninterrupted run would.
/// - Each epoch yields ``batchesPerEpoch`` batches (a stream may end early; training then ends
///   the epoch there). Batches may differ in size (a smaller last batch).
/// - Errors reading or decoding the data are thrown by ``BatchStream/nextBatch()`` at the batch
///   they spoil; training stops there with that error.
///
/// Only the stream is used from the training thread; a source may prepare batches on threads
/// of its own (a `DataLoader` with `prefetch` does).
public protocol BatchSource {
    /// The number of batches each epoch yields.
    var batchesPerEpoch: Int { get }
    /// The number of samples each epoch yields, counted before a dropped partial batch.
    var samplesPerEpoch: Int { get }
    /// The usual number of samples per batch (all but perhaps the last).
    var batchSize: Int { get }
    /// The batches of epoch `epoch`, counted from 0: a one-pass stream for one consumer.
    func makeBatchStream(epoch: Int) -> any BatchStream
}

/// A one-pass cursor over one epoch's batches, made by ``BatchSource/makeBatchStream(epoch:)``.
public protocol BatchStream: AnyObject {
    /// The next batch, or `nil` at the end of the epoch.
    ///
    /// - Throws: whatever reading or decoding the batch failed with; later calls return `nil`.
    func nextBatch() throws -> TrainingBatch?
}

/// Replica `rank`'s share of an epoch's `order` in a data-parallel run of `replicas` processes:
/// positions `rank, rank + replicas, rank + 2 * replicas, ...`, as PyTorch's `DistributedSampler`.
///
/// Interleaving means that global batch `k` of size `replicas * b` (positions `k*R*b ..< (k+1)*R*b`
/// of the one order every replica derives from the same seed) is exactly the union of the
/// replicas' local batches `k` of size `b`: `R` processes with batch `b` see the batches that one
/// process with batch `R * b` would.
///
/// With `padded`, the order is first extended by repeating it from the start to a multiple of
/// `replicas`, so that every replica gets `ceil(n / R)` indices and takes the same number of
/// steps (what a training loop in lockstep needs; a few samples are then seen twice per epoch).
/// Without it replicas get `floor` or `ceil` of `n / R` (what evaluation wants: each sample once).
///
/// - Precondition: `replicas >= 1`, `0 <= rank < replicas`.
public func replicaShard(of order: [Int], rank: Int, replicas: Int, padded: Bool) -> [Int] {
    neuritePrecondition(replicas >= 1 && rank >= 0 && rank < replicas,
                        "replicaShard needs 0 <= rank < replicas, got rank \(rank) of \(replicas)")
    let n = order.count
    guard n > 0 else { return [] }
    let total = padded ? (n + replicas - 1) / replicas * replicas : n
    return stride(from: rank, to: total, by: replicas).map { order[$0 % n] }
}

/// The length of ``replicaShard(of:rank:replicas:padded:)`` for an order of `count` indices:
/// `ceil(count / replicas)` when padded, else `floor` or `ceil` of it by rank.
public func replicaShardCount(of count: Int, rank: Int, replicas: Int, padded: Bool) -> Int {
    guard count > 0 else { return 0 }
    return padded ? (count + replicas - 1) / replicas : count / replicas + (rank < count % replicas ? 1 : 0)
}
