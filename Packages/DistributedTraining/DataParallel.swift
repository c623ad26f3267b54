import Datasets
import Dispatch
import Layers
import Optimizers
import TensorCore

/// Data-parallel training over MPI, as Keras' `MultiWorkerMirroredStrategy` and PyTorch's
/// `DistributedDataParallel`: pass it to `fit` on every rank.
///
/// ```swift
/// Communicator.run { world in
///     let strategy = DataParallel(world)
///     let loader = DataLoader(folder, batchSize: 64, seed: 7,
///                             sampler: try strategy.sampler(count: folder.count), prefetch: 4)
///     model.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
///     try model.fit(loader, epochs: 5, verbose: 1, strategy: strategy)
/// }
/// ```
///
/// What `fit` then does on each rank is described by `DistributionStrategy` (Layers): rank 0's weights
/// broadcast first, each rank on its own shard, one agreement per step (so an error on one rank
/// ends every rank's `fit` with a `TrainingError`), gradients summed across ranks after the
/// backward pass, identical optimizer steps, logs combined, progress and checkpoints on rank 0.
///
/// **Buckets.** Gradients are summed in buckets of about ``bucketBytes`` (4 MiB by default):
/// the trainable parameters, last layer first, are packed into one buffer until it is full,
/// and each bucket is one `MPI_Allreduce`. Few large messages reach the link's bandwidth where
/// one call per tensor would pay a latency per tensor; a parameter larger than a bucket is
/// reduced in place, without a copy. Cost per step: `2 (R - 1) / R` times the gradient bytes
/// sent and received per rank (ring all-reduce), plus two copies of the packed gradients.
///
/// **Batch normalisation.** With ``synchronizesBatchNormalization`` (the default) every
/// `BatchNormalization` layer normalises with the statistics of the global batch (two small
/// collectives per layer and step), so `R` ranks with batch `b` compute what one process with
/// batch `R * b` computes, and their running statistics stay identical. Without it each rank
/// uses its own batch's statistics (Keras' and PyTorch's default), and the running statistics
/// are averaged across ranks after each epoch.
public final class DataParallel: DistributionStrategy {
    /// The processes that train together.
    public let communicator: Communicator
    /// The target size of one all-reduce, in bytes.
    public let bucketBytes: Int
    /// Whether batch normalisation uses the statistics of the global batch.
    public let synchronizesBatchNormalization: Bool

    /// The number of gradient all-reduces made so far (buckets and in-place parameters).
    public private(set) var gradientAllreduces = 0
    /// The number of gradient bytes all-reduced so far (each rank's contribution).
    public private(set) var gradientBytes = 0

    /// Seconds spent in this strategy's collectives so far (waiting for the other ranks
    /// included): how much of a step communication takes.
    public private(set) var communicationSeconds = 0.0

    /// The packing buffer of the buckets, kept between steps.
    private var packed: [Float] = []

    /// A strategy over `communicator`'s ranks.
    ///
    /// - Parameters:
    ///   - communicator: the ranks to train on, usually the world of `Communicator.run`.
    ///   - bucketMegabytes: the target size of one gradient all-reduce, in MiB (at least one
    ///     float).
    ///   - synchronizeBatchNormalization: normalise over the global batch (see above).
    public init(_ communicator: Communicator, bucketMegabytes: Double = 4, synchronizeBatchNormalization: Bool = true) {
        self.communicator = communicator
        self.bucketBytes = Swift.max(4, Int(bucketMegabytes * 1_048_576))
        self.synchronizesBatchNormalization = synchronizeBatchNormalization
    }

    /// This process's rank.
    public var rank: Int { communicator.rank }
    /// The number of ranks.
    public var replicas: Int { communicator.size }

    /// This rank's sampler for a data set of `count` samples: a `DistributedSampler` (Datasets) over
    /// this communicator's ranks (padded for training; `padded: false` for evaluation, so each
    /// sample counts once).
    /// - Throws: `DatasetError` when `count` is negative.
    public func sampler(count: Int, shuffle: Bool = true, padded: Bool = true) throws -> DistributedSampler {
        try DistributedSampler(count: count, rank: rank, replicas: replicas, shuffle: shuffle, padded: padded)
    }

    /// The buckets for parameters of `counts` floats each, in order: consecutive runs whose
    /// total stays within `capacity` floats (a run is never empty; a parameter larger than
    /// `capacity` forms a bucket of its own).
    public static func buckets(counts: [Int], capacity: Int) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = 0, filled = 0
        for (i, n) in counts.enumerated() {
            if i > start && filled + n > capacity {
                result.append(start..<i)
                start = i
                filled = 0
            }
            filled += n
        }
        if start < counts.count { result.append(start..<counts.count) }
        return result
    }

    // MARK: DistributionStrategy

    /// Element-wise sums over the ranks (one `MPI_Allreduce` in Float64).
    public func sumAcrossReplicas(_ values: [Double]) throws -> [Double] {
        try timed {
            var sums = values
            try communicator.allreduce(&sums, .sum)
            return sums
        }
    }

    /// Every rank's values in rank order (one `MPI_Allgather`; the counts agree by the
    /// strategy's construction, so they are not checked).
    public func gatherAcrossReplicas(_ values: [Double]) throws -> [Double] {
        try timed { try communicator.allgatherUnchecked(values) }
    }

    /// Sums the trainable parameters' gradients over the ranks, bucket by bucket.
    public func sumGradients(of parameters: [Parameter]) throws {
        guard replicas > 1 else { return }
        let trainable = Array(parameters.filter(\.isTrainable).reversed())
        try timed { try sumGradientBuckets(trainable) }
    }

    private func sumGradientBuckets(_ trainable: [Parameter]) throws {
        try forEachBucket(trainable, values: { $0.gradient }, update: { p, body in p.gradient.withUnsafeMutableBufferPointer(body) }) { buffer in
            gradientAllreduces += 1
            gradientBytes += buffer.count * MemoryLayout<Float>.size
            try communicator.allreduce(buffer, .sum)
        } inPlace: { parameter in
            gradientAllreduces += 1
            gradientBytes += parameter.value.count * MemoryLayout<Float>.size
            try parameter.gradient.withUnsafeMutableBufferPointer { try communicator.allreduce($0, .sum) }
        }
    }

    /// Sets every parameter (running statistics included) to rank 0's value, bucket by bucket.
    public func broadcastValues(of parameters: [Parameter]) throws {
        guard replicas > 1 else { return }
        try timed { try broadcastBuckets(parameters) }
    }

    private func broadcastBuckets(_ parameters: [Parameter]) throws {
        try forEachBucket(parameters, values: { $0.value }, update: { p, body in p.value.withUnsafeMutableBufferPointer(body) }) { buffer in
            try communicator.broadcast(buffer, root: 0)
        } inPlace: { parameter in
            try parameter.value.withUnsafeMutableBufferPointer { try communicator.broadcast($0, root: 0) }
        }
    }

    private func timed<R>(_ body: () throws -> R) rethrows -> R {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }

    /// Packs each bucket of `parameters` into one buffer, runs `collective` on it and copies the
    /// results back into each parameter's own storage through `update` (no tensor is allocated);
    /// a parameter that fills a bucket alone goes to `inPlace` instead, without a copy.
    private func forEachBucket(_ parameters: [Parameter], values: (Parameter) -> Tensor,
                               update: (Parameter, (UnsafeMutableBufferPointer<Float>) -> Void) -> Void,
                               _ collective: (UnsafeMutableBufferPointer<Float>) throws -> Void,
                               inPlace: (Parameter) throws -> Void) throws {
        let capacity = bucketBytes / MemoryLayout<Float>.size
        for bucket in Self.buckets(counts: parameters.map { $0.value.count }, capacity: capacity) {
            if bucket.count == 1 {
                try inPlace(parameters[bucket.lowerBound])
                continue
            }
            let total = parameters[bucket].reduce(0) { $0 + $1.value.count }
            if packed.count < total { packed = [Float](repeating: 0, count: total) }
            try packed.withUnsafeMutableBufferPointer { buffer in
                var offset = 0
                for p in parameters[bucket] {
                    values(p).withUnsafeBufferPointer { source in
                        _ = UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + source.count)])
                            .update(fromContentsOf: source)
                        offset += source.count
                    }
                }
                try collective(UnsafeMutableBufferPointer(rebasing: buffer[0..<total]))
                offset = 0
                for p in parameters[bucket] {
                    let n = p.value.count
                    update(p) { target in
                        _ = target.update(fromContentsOf: UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + n)]))
                    }
                    offset += n
                }
            }
        }
    }
}
