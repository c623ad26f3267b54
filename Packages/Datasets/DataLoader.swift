import Foundation
import TensorCore

/// What a ``DataLoader`` does with the last batch of an epoch when it is smaller than the batch size.
public enum LastBatchPolicy: Sendable, Equatable {
    /// Yield it, smaller than the others: every sample is seen once per epoch.
    case keep
    /// Leave it out, so every batch has exactly the batch size (at most `batchSize - 1` samples
    /// of the epoch are skipped, different ones each epoch when shuffling).
    case drop
}

/// A random per-sample transformation (augmentation: flips, crops, noise), applied by a
/// ``DataLoader`` to each sample's `x` (one sample's shape, without the batch axis).
///
/// The generator is `SeededGenerator(seed: loaderSeed, epoch: epoch, worker: position)`, where
/// `position` is the sample's place in the epoch's order, so an augmentation depends only on
/// (seed, epoch, position): never on which thread ran it or whether batches were prefetched.
/// The transform may change the shape, as long as every sample of a batch ends with the same one.
/// It runs on the prefetch thread when prefetching, hence `@Sendable`.
public typealias SampleTransform = @Sendable (_ x: Tensor, _ generator: inout SeededGenerator) throws -> Tensor

extension SeededGenerator {
    /// The random stream for one worker in one epoch of data loading: the derivation a
    /// ``DataLoader`` uses for augmentation, public so that custom loops reproduce it.
    ///
    /// A "worker" is any unit that draws augmentation randomness on its own: a background
    /// thread, or, as ``DataLoader`` does, a single sample (its position in the epoch's order,
    /// so that a sample drawn twice by a sampler with replacement gets two augmentations).
    ///
    /// Distinct `(epoch, worker)` pairs under one seed give distinct generator states: the pair
    /// is packed without loss into one 64-bit stream number, and `init(seed:stream:)` maps
    /// distinct streams to distinct states. So two workers never repeat each other's draws, and
    /// the streams are apart from the shuffle streams `SeededGenerator(seed:stream: epoch)`
    /// because the seed is first xored with a fixed constant. Costs a few arithmetic operations.
    ///
    /// - Precondition: `epoch` and `worker` are in `0...UInt32.max`.
    public init(seed: UInt64, epoch: Int, worker: Int) {
        neuritePrecondition(epoch >= 0 && epoch <= Int(UInt32.max),
                     "SeededGenerator(seed:epoch:worker:) needs an epoch in 0...\(UInt32.max), got \(epoch)")
        neuritePrecondition(worker >= 0 && worker <= Int(UInt32.max),
                     "SeededGenerator(seed:epoch:worker:) needs a worker in 0...\(UInt32.max), got \(worker)")
        // The constant (first 64 bits of the fractional part of sqrt(2)) separates these streams
        // from the per-epoch shuffle streams derived from the same seed.
        self.init(seed: seed ^ 0x6A09_E667_F3BC_C908, stream: UInt64(epoch) << 32 | UInt64(worker))
    }
}

/// Cuts a ``Dataset`` into batches for training: seeded shuffling per epoch, a last-batch policy,
/// an optional ``Sampler``, an optional ``SampleTransform``, and optional prefetching on a
/// background thread.
///
/// ```swift
/// let loader = DataLoader(TensorDataset(x: images, y: labels), batchSize: 64, seed: 42)
/// for epoch in 0..<10 {
///     let batches = loader.batches(epoch: epoch)
///     while let batch = try batches.next() {   // batch.x [64, 28, 28, 1], batch.y [64]
///         ...
///     }
/// }
/// ```
///
/// **Order.** Epoch `e` visits ``order(epoch:)``: `0..<count` unshuffled, or its Fisher-Yates
/// shuffle (`seededShuffle`) driven by `SeededGenerator(seed: seed, stream: e)`, or, with a
/// sampler, the sampler's indices drawn from that same generator. The same seed and epoch always
/// give the same order; different epochs give different ones.
///
/// **Batches.** Batch `k` is `dataset.batch(at:)` of the order's `k`-th run of `batchSize`
/// indices: `x` is `[B, ...]`, `y` has `B` labels, `B == batchSize` except perhaps the last.
///
/// **Prefetching.** With `prefetch: n > 0`, a background thread prepares up to `n` batches ahead
/// of the consumer in a bounded queue, so reading and decoding files overlaps training. It yields
/// exactly the batches the consumer's thread would. An error from the data set or the transform
/// is thrown by ``BatchIterator/next()`` at the batch where it happened, after every earlier
/// batch; the epoch then ends. Dropping an iterator stops its thread (after the batch it is
/// preparing) and releases the data set; nothing waits on it. This is a thread of its own, not
/// `ThreadPool.shared`: it does I/O-bound work that must run while the pool computes.
/// Use prefetching for file-backed data; for a ``TensorDataset`` a batch is one `gather`, and
/// the thread costs more than it hides.
public struct DataLoader<D: Dataset>: Sendable {
    /// One batch: inputs `[B, ...]` and their `B` labels.
    public typealias Batch = (x: Tensor, y: [Int])

    /// The data set batches are drawn from.
    public let dataset: D
    /// The number of samples per batch (the last batch of an epoch may have fewer, see ``lastBatch``).
    public let batchSize: Int
    /// Whether each epoch visits the samples in a fresh seeded random order (ignored with a sampler).
    public let shuffle: Bool
    /// The seed of every random stream: the shuffle of each epoch and the augmentation of each sample.
    public let seed: UInt64
    /// What happens to a final batch smaller than ``batchSize``.
    public let lastBatch: LastBatchPolicy
    /// When set, chooses each epoch's indices instead of the shuffle.
    public let sampler: (any Sampler)?
    /// The number of batches a background thread prepares ahead (0: batches are made on the
    /// consumer's thread, inside `next()`).
    public let prefetch: Int
    /// Applied to each sample's `x` when set; see ``SampleTransform``.
    public let transform: SampleTransform?

    /// A loader over `dataset`.
    ///
    /// - Parameters:
    ///   - batchSize: samples per batch, at least 1.
    ///   - shuffle: visit each epoch in a seeded random order (default) or in index order.
    ///   - seed: the seed of the shuffle, the sampler's draws and the augmentation streams.
    ///   - lastBatch: keep (default) or drop a final partial batch.
    ///   - sampler: chooses each epoch's indices instead of the shuffle; its indices must be in
    ///     `0..<dataset.count`.
    ///   - prefetch: batches prepared ahead on a background thread (0, the default, for none).
    ///   - transform: a per-sample augmentation.
    /// - Precondition: `batchSize >= 1` and `prefetch >= 0`.
    public init(_ dataset: D, batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0,
                lastBatch: LastBatchPolicy = .keep, sampler: (any Sampler)? = nil, prefetch: Int = 0,
                transform: SampleTransform? = nil) {
        neuritePrecondition(batchSize >= 1, "DataLoader needs a batch size of at least 1, got \(batchSize)")
        neuritePrecondition(prefetch >= 0, "DataLoader needs a non-negative prefetch depth, got \(prefetch)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.lastBatch = lastBatch
        self.sampler = sampler
        self.prefetch = prefetch
        self.transform = transform
    }

    /// Samples visited per epoch (before dropping a partial batch): the sampler's count, else the data set's.
    public var samplesPerEpoch: Int { sampler?.count ?? dataset.count }

    /// Batches per epoch: `ceil(samplesPerEpoch / batchSize)` when keeping the last partial batch,
    /// `floor(...)` when dropping it.
    public var batchesPerEpoch: Int {
        let n = samplesPerEpoch
        return lastBatch == .keep ? (n + batchSize - 1) / batchSize : n / batchSize
    }

    /// The data set indices epoch `epoch` visits, in order (``samplesPerEpoch`` of them, including
    /// any that a dropped last batch skips). `O(n)` time and memory.
    ///
    /// - Precondition: `epoch >= 0`; a sampler's indices are in `0..<dataset.count`.
    public func order(epoch: Int) -> [Int] {
        neuritePrecondition(epoch >= 0, "DataLoader epochs are numbered from 0, got \(epoch)")
        var generator = SeededGenerator(seed: seed, stream: UInt64(epoch))
        if let sampler {
            let indices = sampler.indices(using: &generator)
            let n = dataset.count
            neuritePrecondition(indices.count == sampler.count,
                         "DataLoader: the sampler promised \(sampler.count) indices but gave \(indices.count)")
            for i in indices {
                neuritePrecondition(i >= 0 && i < n, "DataLoader: the sampler gave index \(i), out of range for a data set of \(n) samples")
            }
            return indices
        }
        var indices = Array(0..<dataset.count)
        if shuffle { indices.seededShuffle(using: &generator) }
        return indices
    }

    /// A one-pass iterator over the batches of epoch `epoch`; call ``BatchIterator/next()`` until
    /// it returns `nil`. With prefetching, the background thread starts here.
    ///
    /// - Precondition: `epoch >= 0` (and below 2^32 when there is a transform).
    public func batches(epoch: Int) -> BatchIterator {
        let plan = EpochPlan(dataset: dataset, order: order(epoch: epoch), batchSize: batchSize,
                             batchCount: batchesPerEpoch, seed: seed, epoch: epoch, transform: transform)
        return BatchIterator(plan: plan, prefetch: prefetch)
    }

    /// The batches of one epoch, in order; made by ``DataLoader/batches(epoch:)``.
    ///
    /// An iterator is a one-pass cursor for a single consumer (it is a class and not `Sendable`).
    /// After it has thrown, or returned `nil`, it returns `nil`. Releasing it early (breaking out of
    /// the loop) is safe: a prefetch thread is told to stop and exits after at most the batch it
    /// is preparing, without anyone waiting for it.
    public final class BatchIterator {
        private let plan: EpochPlan<D>?
        private let buffer: PrefetchBuffer<D>?
        private var cursor = 0
        private var finished = false

        init(plan: EpochPlan<D>, prefetch: Int) {
            if prefetch > 0 && plan.batchCount > 0 {
                let buffer = PrefetchBuffer(plan: plan, capacity: prefetch)
                self.buffer = buffer
                self.plan = nil
                // Decoding stays on this thread: a data set that spreads its batch over
                // ThreadPool.shared (ImageFolder does) would otherwise take the pool from the
                // training step, whose kernels would then run serially.
                let thread = Thread { ThreadPool.withWidthLimit(1) { buffer.produce() } }
                thread.name = "neurite-prefetch"
                thread.stackSize = 4 << 20  // image decoders want more than the default 512 KiB
                thread.start()
            } else {
                self.buffer = nil
                self.plan = plan
            }
        }

        deinit {
            buffer?.cancel()
        }

        /// The next batch, or `nil` at the end of the epoch. With prefetching it waits for the
        /// background thread when the batch is not ready yet.
        ///
        /// - Throws: the error the data set (or the transform) threw while making this batch;
        ///   the epoch ends there, and later calls return `nil`.
        public func next() throws -> Batch? {
            if finished { return nil }
            if let buffer {
                guard let result = buffer.take() else {
                    finished = true
                    return nil
                }
                switch result {
                case .success(let batch):
                    return batch
                case .failure(let error):
                    finished = true
                    buffer.cancel()
                    throw error
                }
            }
            guard let plan, cursor < plan.batchCount else {
                finished = true
                return nil
            }
            do {
                let batch = try plan.batch(cursor)
                cursor += 1
                return batch
            } catch {
                finished = true
                throw error
            }
        }
    }
}

/// Everything needed to make the batches of one epoch; `Sendable`, so it can move to the prefetch thread.
struct EpochPlan<D: Dataset>: Sendable {
    let dataset: D
    let order: [Int]
    let batchSize: Int
    let batchCount: Int
    let seed: UInt64
    let epoch: Int
    let transform: SampleTransform?

    /// Batch `k`: the order's `k`-th run of indices, read through `dataset.batch(at:)` and transformed.
    func batch(_ k: Int) throws -> (x: Tensor, y: [Int]) {
        let start = k * batchSize
        let positions = start..<min(start + batchSize, order.count)
        let indices = Array(order[positions])
        var (x, y) = try dataset.batch(at: indices)
        neuritePrecondition(x.rank >= 1 && x.shape[0] == indices.count && y.count == indices.count,
                     "\(D.self).batch(at:) was asked for \(indices.count) samples but gave x of shape \(x.shape) and \(y.count) labels")
        if let transform {
            let sampleShape = Array(x.shape.dropFirst())
            var transformed: [Tensor] = []
            transformed.reserveCapacity(indices.count)
            for (row, position) in positions.enumerated() {
                var generator = SeededGenerator(seed: seed, epoch: epoch, worker: position)
                transformed.append(try transform(x.slice(row..<(row + 1)).reshaped(sampleShape), &generator))
            }
            x = try stackSamples(transformed, describe: { "transformed sample \(indices[$0])" })
        }
        return (x, y)
    }
}

/// The bounded queue between one prefetch thread (producer) and one iterator (consumer).
///
/// `@unchecked Sendable`: every mutable property is read and written only while `condition` is
/// locked. The producer blocks while `capacity` results wait; the consumer blocks while none do.
/// `cancel()` wakes both and makes the producer stop. The plan (and with it the data set) is
/// handed to the producer thread when it starts, so it is released when that thread ends.
final class PrefetchBuffer<D: Dataset>: @unchecked Sendable {
    private let condition = NSCondition()
    private let capacity: Int
    private var plan: EpochPlan<D>?
    private var ready: [Result<(x: Tensor, y: [Int]), any Error>] = []
    private var done = false
    private var cancelled = false

    init(plan: EpochPlan<D>, capacity: Int) {
        self.plan = plan
        self.capacity = capacity
    }

    /// The producer's loop: makes each batch in turn and queues it, until the epoch ends, a batch
    /// fails (its error is queued in its place), or the consumer cancels.
    func produce() {
        condition.lock()
        let taken = plan
        plan = nil
        condition.unlock()
        defer { finish() }
        guard let plan = taken else { return }
        for k in 0..<plan.batchCount {
            if isCancelled { return }
            let result = Result { try plan.batch(k) }
            guard put(result) else { return }
            if case .failure = result { return }
        }
    }

    private var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    /// Queues a result, waiting for room; false when the consumer has cancelled.
    private func put(_ result: Result<(x: Tensor, y: [Int]), any Error>) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while ready.count >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        ready.append(result)
        condition.broadcast()
        return true
    }

    private func finish() {
        condition.lock()
        done = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next result in order, waiting for the producer; nil when it has finished and none is left.
    func take() -> Result<(x: Tensor, y: [Int]), any Error>? {
        condition.lock()
        defer { condition.unlock() }
        while ready.isEmpty && !done && !cancelled { condition.wait() }
        if ready.isEmpty { return nil }
        let result = ready.removeFirst()
        condition.broadcast()
        return result
    }

    /// Stops the producer (after the batch it is making) and drops queued batches.
    func cancel() {
        condition.lock()
        cancelled = true
        ready.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}

// MARK: - Batch source

/// A loader is what `fit`, `evaluate` and `predict` read batches from (Layers' `fit(_:epochs:...)`):
/// epoch `e`'s stream is ``DataLoader/batches(epoch:)``, its labels as `.labels`, so the same
/// seed gives the same batches, and prefetching overlaps decoding with the training step.
extension DataLoader: BatchSource {
    /// ``DataLoader/batches(epoch:)`` as a stream of ``TrainingBatch``es (labels as `.labels`).
    public func makeBatchStream(epoch: Int) -> any BatchStream {
        batches(epoch: epoch)
    }
}

extension DataLoader.BatchIterator: BatchStream {
    /// ``next()`` as a ``TrainingBatch`` with the labels as `.labels`.
    public func nextBatch() throws -> TrainingBatch? {
        try next().map { TrainingBatch(x: $0.x, labels: $0.y) }
    }
}
