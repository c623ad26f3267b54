import Optimizers
import TensorCore

/// The collective operations `fit` needs to train one model as several replicas (processes,
/// usually on several machines) in data parallel, each on its own share of the data.
///
/// Layers defines the protocol and uses it; the `DistributedTraining` module implements it over
/// Open MPI (`DataParallel`), so only users who train on several processes need MPI. With a
/// strategy, `fit` on every replica:
/// - broadcasts rank 0's weights (every parameter, running statistics included) before training;
/// - agrees with the others before each step that every replica has a batch (an error on one
///   replica, a file it cannot read, ends training on all of them with a `TrainingError`, never
///   a hang);
/// - scales its loss gradient by its share of the global batch, and sums the gradients across
///   replicas, so the update is the one a single process would make on the union of the batches;
/// - sums losses and metrics across replicas before logging, so every replica logs, stops early
///   and checkpoints on the same values; only rank 0 shows progress and writes checkpoints;
/// - with ``synchronizesBatchNormalization``, computes batch statistics over the global batch.
///
/// Every method is a collective: every replica calls it, in the same order, with the same sizes.
public protocol DistributionStrategy: AnyObject {
    /// This replica's rank, in `0..<replicas`; rank 0 is the chief (progress, checkpoints).
    var rank: Int { get }
    /// The number of replicas.
    var replicas: Int { get }
    /// Whether batch normalisation uses the statistics of the global batch (Keras'
    /// `synchronized=True`, PyTorch's `SyncBatchNorm`) rather than each replica's own.
    var synchronizesBatchNormalization: Bool { get }
    /// The element-wise sums of `values` over all replicas, the same on every replica.
    func sumAcrossReplicas(_ values: [Double]) throws -> [Double]
    /// Every replica's `values` (the same count on each), concatenated in rank order.
    func gatherAcrossReplicas(_ values: [Double]) throws -> [Double]
    /// Replaces each trainable parameter's gradient by its sum over all replicas.
    func sumGradients(of parameters: [Parameter]) throws
    /// Replaces every parameter's value by rank 0's.
    func broadcastValues(of parameters: [Parameter]) throws
}

extension DistributionStrategy {
    /// Whether this replica is rank 0.
    public var isChief: Bool { rank == 0 }
}

/// What a batch-normalisation layer uses, inside its non-throwing forward and backward passes,
/// to combine statistics across replicas: the strategy, and the first failure of a collective
/// (the training loop rethrows it after the pass).
final class ReplicaStatistics {
    let strategy: any DistributionStrategy
    private(set) var failure: (any Error)?

    init(_ strategy: any DistributionStrategy) {
        self.strategy = strategy
    }

    /// Throws the first failure of a collective since the last call.
    func rethrowFailure() throws {
        if let failure {
            self.failure = nil
            throw failure
        }
    }

    /// Mean and biased variance per channel over all replicas, from each replica's `count`
    /// elements per channel and its local `mean` and `variance` (combined exactly, as parallel
    /// variance algorithms do: `M2 = Σ m_r (v_r + (μ_r − μ)²)`). Every replica combines the same
    /// gathered values in the same order, so all get the same bits. On failure, the local values.
    func combine(count: Int, mean: [Double], variance: [Double]) -> (count: Int, mean: [Double], variance: [Double]) {
        let channels = mean.count
        do {
            let all = try strategy.gatherAcrossReplicas([Double(count)] + mean + variance)
            let stride = 1 + 2 * channels
            var total = 0.0
            var globalMean = [Double](repeating: 0, count: channels)
            for r in 0..<strategy.replicas {
                let m = all[r * stride]
                total += m
                for c in 0..<channels { globalMean[c] += m * all[r * stride + 1 + c] }
            }
            guard total > 0 else { return (count, mean, variance) }
            for c in 0..<channels { globalMean[c] /= total }
            var globalVariance = [Double](repeating: 0, count: channels)
            for r in 0..<strategy.replicas {
                let m = all[r * stride]
                for c in 0..<channels {
                    let d = all[r * stride + 1 + c] - globalMean[c]
                    globalVariance[c] += m * (all[r * stride + 1 + channels + c] + d * d)
                }
            }
            for c in 0..<channels { globalVariance[c] /= total }
            return (Int(total), globalMean, globalVariance)
        } catch {
            if failure == nil { failure = error }
            return (count, mean, variance)
        }
    }

    /// Element-wise sums over all replicas; on failure, `values`.
    func sum(_ values: [Double]) -> [Double] {
        do {
            return try strategy.sumAcrossReplicas(values)
        } catch {
            if failure == nil { failure = error }
            return values
        }
    }
}
