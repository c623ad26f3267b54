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
/// **Prefetching.** With `prefetch: n > 0`, `workers` background threads (one by default)
/// prepare up to `n` batches ahead of the consumer in a bounded queue, so reading and decoding
/// files overlaps training; each thread makes whole batches, claimed in order. The consumer gets
/// exactly the batches, in the order, its own thread would make. An error from the data set or
/// the transform is thrown by ``BatchIterator/next()`` at the batch where it happened, after
/// every earlier batch; the epoch then ends. Dropping an iterator stops its threads (after the
/// batch each is preparing) and releases the data set; nothing waits on them. These are threads
/// of their own, not `ThreadPool.shared`, and a data set that spreads a batch over the pool
/// (`ImageFolder`) runs serially on them, leaving the pool to the training step.
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
    /// The number of background threads that prepare batches when prefetching (PyTorch's
    /// `num_workers`): each makes whole batches, in parallel with the others.
    public let workers: Int

    /// A loader over `dataset`.
    ///
    /// - Parameters:
    ///   - dataset: the samples to batch.
    ///   - batchSize: samples per batch, at least 1.
    ///   - shuffle: visit each epoch in a seeded random order (default) or in index order.
    ///   - seed: the seed of the shuffle, the sampler's draws and the augmentation streams.
    ///   - lastBatch: keep (default) or drop a final partial batch.
    ///   - sampler: chooses each epoch's indices instead of the shuffle; its indices must be in
    ///     `0..<dataset.count`.
    ///   - prefetch: batches prepared ahead on background threads (0, the default, for none).
    ///   - workers: the number of those threads (1 by default): more when making a batch (decoding
    ///     large JPEGs, heavy augmentation) takes longer than a training step.
    ///   - transform: a per-sample augmentation.
    /// - Precondition: `batchSize >= 1`, `prefetch >= 0` and `workers >= 1`.
    public init(_ dataset: D, batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0,
                lastBatch: LastBatchPolicy = .keep, sampler: (any Sampler)? = nil, prefetch: Int = 0,
                workers: Int = 1, transform: SampleTransform? = nil) {
        neuritePrecondition(batchSize >= 1, "DataLoader needs a batch size of at least 1, got \(batchSize)")
        neuritePrecondition(prefetch >= 0, "DataLoader needs a non-negative prefetch depth, got \(prefetch)")
        neuritePrecondition(workers >= 1, "DataLoader needs at least one worker, got \(workers)")
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.lastBatch = lastBatch
        self.sampler = sampler
        self.prefetch = prefetch
        self.transform = transform
        self.workers = workers
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
        return BatchIterator(plan: plan, prefetch: prefetch, workers: workers)
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

        init(plan: EpochPlan<D>, prefetch: Int, workers: Int) {
            if prefetch > 0 && plan.batchCount > 0 {
                let threads = Swift.max(1, Swift.min(workers, plan.batchCount))
                let buffer = PrefetchBuffer(plan: plan, capacity: prefetch, producers: threads)
                self.buffer = buffer
                self.plan = nil
                // Decoding stays on this thread: a data set that spreads its batch over
                // ThreadPool.shared (ImageFolder does) would otherwise take the pool from the
                // training step, whose kernels would then run serially.
                for worker in 0..<threads {
                    let thread = Thread { ThreadPool.withWidthLimit(1) { buffer.produce() } }
                    thread.name = "neurite-prefetch-\(worker)"
                    thread.stackSize = 4 << 20  // image decoders want more than the default 512 KiB
                    thread.start()
                }
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

/// The bounded queue between the prefetch threads (producers) and one iterator (consumer).
///
/// Producers claim batch indices in order from a shared counter, but never more than `capacity`
/// beyond the batch the consumer will take next plus the one being made (so at most
/// `capacity + 1` batches are ready or in the making); the consumer takes them strictly in
/// order, waiting for the next one even when later ones are ready. A batch that fails ends the
/// epoch after it: no producer starts a later one, and the consumer receives the earlier ones
/// and then the error.
///
/// `@unchecked Sendable`: every mutable property is read and written only while `condition` is
/// locked. `cancel()` wakes everyone and makes producers stop after the batch each is making. The
/// plan (and with it the data set) is dropped when the last producer ends.
final class PrefetchBuffer<D: Dataset>: @unchecked Sendable {
    private let condition = NSCondition()
    private let capacity: Int
    private var plan: EpochPlan<D>?
    private var ready: [Int: Result<(x: Tensor, y: [Int]), any Error>] = [:]
    /// The next batch a producer will claim, and the next the consumer will take.
    private var nextToMake = 0, nextToTake = 0
    /// One past the last batch of the epoch: the batch count, or one past a failed batch.
    private var end: Int
    private var producers: Int
    private var cancelled = false

    init(plan: EpochPlan<D>, capacity: Int, producers: Int) {
        self.plan = plan
        self.capacity = capacity
        self.end = plan.batchCount
        self.producers = producers
    }

    /// One producer's loop: claims the next batch while there is room, makes it and files it,
    /// until the epoch ends, a batch fails or the consumer cancels.
    func produce() {
        while true {
            condition.lock()
            while !cancelled && nextToMake < end && nextToMake > nextToTake + capacity { condition.wait() }
            guard !cancelled, nextToMake < end, let plan else {
                producers -= 1
                if producers == 0 { plan = nil }  // the data set goes with the last producer
                condition.broadcast()
                condition.unlock()
                return
            }
            let k = nextToMake
            nextToMake += 1
            condition.unlock()

            let result = Result { try plan.batch(k) }

            condition.lock()
            if !cancelled && k < end {
                ready[k] = result
                if case .failure = result { end = k + 1 }
            }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next result in order, waiting for the producers; nil when the epoch has ended.
    func take() -> Result<(x: Tensor, y: [Int]), any Error>? {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled && nextToTake < end && ready[nextToTake] == nil {
            if producers == 0 { return nil }  // nobody left to make it (cannot happen before the end)
            condition.wait()
        }
        guard !cancelled, nextToTake < end, let result = ready.removeValue(forKey: nextToTake) else { return nil }
        nextToTake += 1
        condition.broadcast()
        return result
    }

    /// Stops the producers (after the batch each is making) and drops queued batches.
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
    /// ``DataLoader/batches(epoch:)`` as a stream of `TrainingBatch`es (labels as `.labels`).
    public func makeBatchStream(epoch: Int) -> any BatchStream {
        batches(epoch: epoch)
    }
}

extension DataLoader.BatchIterator: BatchStream {
    /// ``next()`` as a `TrainingBatch` with the labels as `.labels`.
    public func nextBatch() throws -> TrainingBatch? {
        try next().map { TrainingBatch(x: $0.x, labels: $0.y) }
    }
}
