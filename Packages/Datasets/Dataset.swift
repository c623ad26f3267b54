import TensorCore

/// A labelled data set with random access: sample `i` is an input tensor and an integer class label.
///
/// This is what a ``DataLoader`` draws batches from. In-memory data is a ``TensorDataset``; a
/// file-backed set (an image folder decoded lazily) conforms by decoding one file in
/// ``sample(at:)``, and may override ``batch(at:)`` when it can assemble a batch faster than
/// sample by sample. Data sets are `Sendable` because a loader may read them from a background
/// prefetch thread; a file-backed set should therefore hold only immutable state (paths, labels,
/// options) and open its files per call.
///
/// `sample(at:)` must be deterministic: the same index gives the same sample every time. Random
/// augmentation is not the data set's job; it is a ``SampleTransform`` that the loader applies
/// with a generator derived from (seed, epoch, position), so results do not depend on threads.
///
/// Every sample's `x` should have the same shape, so that samples stack into a batch.
public protocol Dataset: Sendable {
    /// The number of samples; valid indices are `0..<count`.
    var count: Int { get }

    /// Sample `index`: its input `x` (any shape, e.g. `[H, W, C]` for an image) and its label.
    ///
    /// - Precondition: `0 <= index < count` (an out-of-range index is a programming error).
    /// - Throws: ``DatasetError`` when the sample cannot be read or decoded (file-backed sets).
    func sample(at index: Int) throws -> (x: Tensor, y: Int)

    /// The samples at `indices`, in that order, stacked along a new first axis: `x` is `[B, ...]`
    /// where `B = indices.count` and `...` is one sample's shape, and `y[i]` is the label of
    /// sample `indices[i]`. Indices may repeat.
    ///
    /// The default implementation calls ``sample(at:)`` for each index and copies the results
    /// into one tensor (one extra copy of the batch). Conforming types override it when they have
    /// a faster path (``TensorDataset`` gathers rows straight from its storage).
    ///
    /// - Throws: the first error ``sample(at:)`` throws, or ``DatasetError`` (`.invalidArgument`)
    ///   when the samples' shapes differ.
    func batch(at indices: [Int]) throws -> (x: Tensor, y: [Int])
}

extension Dataset {
    /// Stacks ``sample(at:)`` for each index: `x` is `[B, ...]`, `y` holds the `B` labels.
    ///
    /// Costs one call to `sample(at:)` per index plus one copy of the batch. An empty `indices`
    /// gives `x` of shape `[0]` (no sample was read, so the sample shape is unknown).
    ///
    /// - Throws: the first error `sample(at:)` throws, or ``DatasetError`` (`.invalidArgument`)
    ///   naming the two shapes when the samples' shapes differ.
    public func batch(at indices: [Int]) throws -> (x: Tensor, y: [Int]) {
        var xs: [Tensor] = []
        var ys: [Int] = []
        xs.reserveCapacity(indices.count)
        ys.reserveCapacity(indices.count)
        for index in indices {
            let s = try sample(at: index)
            xs.append(s.x)
            ys.append(s.y)
        }
        return (try stackSamples(xs, describe: { "sample \(indices[$0])" }), ys)
    }
}

/// Stacks same-shaped tensors along a new first axis: `B` tensors of shape `S` become `[B] + S`.
///
/// Shapes come from data (decoded files, user transforms), so a mismatch is a thrown error rather
/// than a precondition. `describe(i)` names tensor `i` in that error.
func stackSamples(_ xs: [Tensor], describe: (Int) -> String) throws -> Tensor {
    guard let first = xs.first else { return Tensor.zeros([0]) }
    for (i, t) in xs.enumerated() where t.shape != first.shape {
        throw DatasetError(.invalidArgument,
                           "cannot stack a batch: \(describe(0)) has shape \(first.shape) but \(describe(i)) has shape \(t.shape)")
    }
    return Tensor.concatenate(xs.map { $0.reshaped([1] + $0.shape) }, axis: 0)
}

/// An in-memory data set: inputs `x` of shape `[N, ...]` (row `i` is sample `i`) and `N` labels.
///
/// ```swift
/// let data = TensorDataset(x: images, y: labels)   // images [60000, 28, 28, 1]
/// let loader = DataLoader(data, batchSize: 64, seed: 1)
/// ```
///
/// Holding the tensor costs nothing extra: `Tensor` shares its storage (copy-on-write).
public struct TensorDataset: Dataset {
    /// All inputs, `[N, ...]`.
    public let x: Tensor
    /// All labels, `N` of them; `y[i]` labels row `i` of `x`.
    public let y: [Int]

    /// A data set over `x` (`[N, ...]`, rank at least 1) and its `N` labels.
    ///
    /// - Precondition: `x.shape[0] == y.count`; the message names both counts.
    public init(x: Tensor, y: [Int]) {
        neuritePrecondition(x.rank >= 1, "TensorDataset needs x of rank >= 1 (samples along the first axis), shape is \(x.shape)")
        neuritePrecondition(x.shape[0] == y.count,
                     "TensorDataset: x has \(x.shape[0]) samples (shape \(x.shape)) but y has \(y.count) labels")
        self.x = x
        self.y = y
    }

    /// `N`, the number of samples.
    public var count: Int { y.count }

    /// Row `index` of `x` (shape `x.shape` without its first axis; one row copied) and its label.
    ///
    /// - Precondition: `0 <= index < count`.
    public func sample(at index: Int) throws -> (x: Tensor, y: Int) {
        neuritePrecondition(index >= 0 && index < count, "TensorDataset: sample index \(index) is out of range for \(count) samples")
        return (x.slice(index..<(index + 1)).reshaped(Array(x.shape.dropFirst())), y[index])
    }

    /// The rows at `indices` in one `gather` (`[B, ...]`, one copy of the batch) and their labels.
    ///
    /// - Precondition: every index is in `0..<count`.
    public func batch(at indices: [Int]) throws -> (x: Tensor, y: [Int]) {
        let labels = indices.map { i in
            neuritePrecondition(i >= 0 && i < count, "TensorDataset: sample index \(i) is out of range for \(count) samples")
            return y[i]
        }
        return (x.gather(indices), labels)
    }
}

/// The samples of `base` at a fixed list of indices, as a data set of its own: sample `i` is
/// `base`'s sample `indices[i]`.
///
/// Use it to train and validate on the two halves of a ``stratifiedSplit(labels:fraction:seed:)``
/// without copying any data: `Subset(data, indices: split.train)`. Batches go through
/// `base.batch(at:)`, so the base's fast path is kept.
public struct Subset<Base: Dataset>: Dataset {
    /// The data set the samples come from.
    public let base: Base
    /// The positions in `base` of this subset's samples, in order.
    public let indices: [Int]

    /// A view of `base` at `indices` (which may repeat or be in any order). Costs one pass over `indices`.
    ///
    /// - Precondition: every index is in `0..<base.count`.
    public init(_ base: Base, indices: [Int]) {
        let n = base.count
        for i in indices {
            neuritePrecondition(i >= 0 && i < n, "Subset: index \(i) is out of range for a data set of \(n) samples")
        }
        self.base = base
        self.indices = indices
    }

    /// The number of indices.
    public var count: Int { indices.count }

    /// `base.sample(at: indices[index])`.
    ///
    /// - Precondition: `0 <= index < count`.
    public func sample(at index: Int) throws -> (x: Tensor, y: Int) {
        neuritePrecondition(index >= 0 && index < count, "Subset: sample index \(index) is out of range for \(count) samples")
        return try base.sample(at: indices[index])
    }

    /// `base.batch(at:)` of the mapped indices.
    ///
    /// - Precondition: every index is in `0..<count`.
    public func batch(at positions: [Int]) throws -> (x: Tensor, y: [Int]) {
        try base.batch(at: positions.map { p in
            neuritePrecondition(p >= 0 && p < count, "Subset: sample index \(p) is out of range for \(count) samples")
            return indices[p]
        })
    }
}
