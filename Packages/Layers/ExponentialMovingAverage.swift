import Foundation
import TensorCore

/// Keeps an exponential moving average of a model's weights while `fit` trains it (Keras'
/// `use_ema` optimizer option, PyTorch's `AveragedModel` with an EMA, timm's `ModelEmaV2`), so
/// that the averaged weights can be evaluated or saved in place of the last step's.
///
/// After every optimisation step (``onBatchEnd(_:logs:context:)``) each weight `w` of
/// ``Sequential/weights()`` (trainable or not: batch normalisation's moving statistics are
/// averaged too) updates its average `a`:
///
/// ```
/// d = min(decay, (1 + n) / (10 + n))   with warmUp (n: the steps averaged before this one)
/// d = decay                             without
/// a ← d · a + (1 − d) · w
/// ```
///
/// The first step's weights start the averages. The warm-up (TensorFlow's
/// `ExponentialMovingAverage(num_updates:)`) keeps the early averages from clinging to the random
/// initial weights. The averages persist across `fit` calls (a run split into one `fit` per
/// epoch averages as one long run would); ``reset()`` forgets them. Training itself never sees
/// the averages: call ``apply(to:)`` after training to load them into the model.
///
/// Cost: one pass over the weights per step (a multiply-add per weight) and one copy of them.
public final class ExponentialMovingAverage: Callback {
    /// The decay per step, in `0..<1`: the average's memory is about `1 / (1 - decay)` steps.
    public let decay: Double
    /// Whether the decay is lowered to `(1 + n) / (10 + n)` over the first steps.
    public let warmUp: Bool
    /// The number of steps averaged so far.
    public private(set) var steps = 0
    /// The averaged weights by name (empty before the first step).
    public private(set) var averages: [String: Tensor] = [:]

    /// An average with the given decay per step.
    /// - Parameters:
    ///   - decay: in `0..<1` (0.999 keeps about the last thousand steps).
    ///   - warmUp: lower the decay over the first steps (see above); on by default.
    /// - Precondition: `decay` is in `0..<1`.
    public init(decay: Double = 0.999, warmUp: Bool = true) {
        neuritePrecondition(decay >= 0 && decay < 1, "ExponentialMovingAverage: decay must be in 0..<1, got \(decay)")
        self.decay = decay
        self.warmUp = warmUp
    }

    /// The decay the next update uses: `decay`, or with the warm-up `min(decay, (1 + n) / (10 + n))`.
    public var currentDecay: Double {
        warmUp ? Swift.min(decay, Double(1 + steps) / Double(10 + steps)) : decay
    }

    /// Averages in the model's weights after each optimisation step.
    public func onBatchEnd(_ step: Int, logs: [String: Double], context: TrainingContext) throws {
        update(from: context.model)
    }

    /// Averages in `model`'s current weights (what ``onBatchEnd(_:logs:context:)`` does; call it
    /// after each ``Sequential/trainOnBatch(x:y:)-(_,[Int])`` of a loop of your own). The first
    /// call, and a call after ``reset()``, copies the weights.
    public func update(from model: Sequential) {
        let weights = model.weights()
        guard !averages.isEmpty else {
            averages = weights
            steps = 1
            return
        }
        let d = Float(currentDecay)
        for (name, w) in weights {
            guard var average = averages[name], average.shape == w.shape else {
                averages[name] = w
                continue
            }
            averages[name] = nil  // keeps the buffer unique, so the update below is in place
            average *= d
            average += w * (1 - d)
            averages[name] = average
        }
        steps += 1
    }

    /// Loads the averaged weights into `model` (its own weights are replaced).
    /// - Throws: `LayerError` when nothing has been averaged yet, or when the averages do not fit
    ///   `model` (see ``Sequential/loadWeights(_:)``).
    public func apply(to model: Sequential) throws {
        guard !averages.isEmpty else {
            throw LayerError("ExponentialMovingAverage.apply(to:): no weights averaged yet (train first)")
        }
        try model.loadWeights(averages)
    }

    /// Forgets the averages: the next update starts them from the model's weights.
    public func reset() {
        averages = [:]
        steps = 0
    }
}
