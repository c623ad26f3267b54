import TensorCore

/// Adagrad (Duchi et al., 2011), as Keras' `Adagrad` computes it:
///
/// ```
/// s ← s + g²                     (s starts at initialAccumulator)
/// w ← w − lr · g / √(s + ε)
/// ```
///
/// PyTorch's `Adagrad` starts the accumulator at 0 (`initial_accumulator_value`), adds ε
/// outside the square root (`√s + ε`, with eps 1e-10) and has a default lr of 0.01; pass
/// `initialAccumulator: 0` and a small `epsilon` to come close to it.
///
/// State: `"<parameter>.accumulator"` (s). Cost: one pass over each parameter.
public final class Adagrad: OptimizerBase<Adagrad.Slots> {
    /// Adagrad's state for one parameter: the running sum of squared gradients.
    public struct Slots {
        var accumulator: Tensor
    }

    /// The starting value of every accumulator element.
    public let initialAccumulator: Float
    /// ε, added under the square root.
    public let epsilon: Float

    /// Makes an Adagrad optimizer.
    /// - Parameters:
    ///   - learningRate: the constant rate (default 1e-3); unused while `schedule` is set.
    ///   - initialAccumulator: the accumulator's starting value, non-negative (default 0.1).
    ///   - epsilon: ε, non-negative (default 1e-7).
    ///   - schedule: the learning rate per step, if it changes; see `OptimizerBase.schedule`.
    ///   - clipNorm: per-parameter gradient norm limit; see `OptimizerBase.clipNorm`.
    ///   - globalClipNorm: joint gradient norm limit; see `OptimizerBase.globalClipNorm`.
    ///   - clipValue: element-wise gradient limit; see `OptimizerBase.clipValue`.
    /// - Precondition: the values are finite and non-negative.
    public init(learningRate: Float = 1e-3, initialAccumulator: Float = 0.1, epsilon: Float = 1e-7,
                schedule: (any LearningRateSchedule)? = nil,
                clipNorm: Float? = nil, globalClipNorm: Float? = nil, clipValue: Float? = nil) {
        checkNonNegative(initialAccumulator, "Adagrad: initialAccumulator")
        checkNonNegative(epsilon, "Adagrad: epsilon")
        self.initialAccumulator = initialAccumulator
        self.epsilon = epsilon
        super.init(learningRate: learningRate, schedule: schedule,
                   clipNorm: clipNorm, globalClipNorm: globalClipNorm, clipValue: clipValue)
    }

    override func makeSlots(for value: Tensor) -> Slots {
        Slots(accumulator: Tensor(shape: value.shape, repeating: initialAccumulator))
    }

    override var slotKeys: [(name: String, path: WritableKeyPath<Slots, Tensor>)] {
        [("accumulator", \.accumulator)]
    }

    override func update(weights w: UnsafeMutableBufferPointer<Float>, gradient g: UnsafeBufferPointer<Float>,
                         slots: inout Slots, context: StepContext) {
        let lr = context.learningRate, eps = epsilon
        slots.accumulator.withUnsafeMutableBufferPointer { s in
            OptimizerKernels.adagrad(weights: w, gradient: g, accumulator: s, learningRate: lr, epsilon: eps)
        }
    }
}
