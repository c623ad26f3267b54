import TensorCore

/// RMSprop (Hinton, 2012) with optional momentum and centring, as Keras' `RMSprop` computes it:
///
/// ```
/// v ← ρ · v + (1 − ρ) · g²
/// a ← ρ · a + (1 − ρ) · g                 (centered)
/// δ ← lr · g / √(v − a² + ε)              (centered; otherwise lr · g / √(v + ε))
/// b ← momentum · b + δ;  w ← w − b        (momentum > 0)
/// w ← w − δ                               (momentum = 0)
/// ```
///
/// PyTorch's `RMSprop` (with `alpha` for ρ) differs in two details: ε is added outside the
/// square root (`√v + ε`), and its momentum buffer holds `g / (√v + ε)` and is multiplied by
/// lr afterwards; with a constant learning rate and ε small next to √v the weights agree.
/// Its defaults also differ (lr 0.01, alpha 0.99, eps 1e-8).
///
/// State: `"<parameter>.velocity"` (v); `"<parameter>.momentum"` (b) when `momentum > 0`;
/// `"<parameter>.average_gradient"` (a) when `centered`.
/// Cost: one pass over each parameter.
public final class RMSprop: OptimizerBase<RMSprop.Slots> {
    /// RMSprop's state for one parameter (unused buffers are empty).
    public struct Slots {
        var velocity: Tensor
        var momentum: Tensor
        var averageGradient: Tensor
    }

    /// The decay rate ρ of the running average of g².
    public let rho: Float
    /// The momentum factor (0 turns momentum off).
    public let momentum: Float
    /// ε, added under the square root.
    public let epsilon: Float
    /// Whether g² is centred by the running mean of g (an estimate of the variance).
    public let centered: Bool

    /// Makes an RMSprop optimizer.
    /// - Parameters:
    ///   - learningRate: the constant rate (default 1e-3); unused while `schedule` is set.
    ///   - rho: ρ in `0..<1` (default 0.9).
    ///   - momentum: the momentum factor, non-negative (default 0: none).
    ///   - epsilon: ε, non-negative (default 1e-7).
    ///   - centered: divide by an estimate of the gradient's variance instead of its second moment.
    ///   - schedule: the learning rate per step, if it changes; see `OptimizerBase.schedule`.
    ///   - clipNorm: per-parameter gradient norm limit; see `OptimizerBase.clipNorm`.
    ///   - globalClipNorm: joint gradient norm limit; see `OptimizerBase.globalClipNorm`.
    ///   - clipValue: element-wise gradient limit; see `OptimizerBase.clipValue`.
    /// - Precondition: the values are in range.
    public init(learningRate: Float = 1e-3, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                centered: Bool = false, schedule: (any LearningRateSchedule)? = nil,
                clipNorm: Float? = nil, globalClipNorm: Float? = nil, clipValue: Float? = nil) {
        checkDecayRate(rho, "RMSprop: rho")
        checkNonNegative(momentum, "RMSprop: momentum")
        checkNonNegative(epsilon, "RMSprop: epsilon")
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        super.init(learningRate: learningRate, schedule: schedule,
                   clipNorm: clipNorm, globalClipNorm: globalClipNorm, clipValue: clipValue)
    }

    override func makeSlots(for value: Tensor) -> Slots {
        Slots(velocity: Tensor.zeros(value.shape),
              momentum: Tensor.zeros(momentum > 0 ? value.shape : [0]),
              averageGradient: Tensor.zeros(centered ? value.shape : [0]))
    }

    override var slotKeys: [(name: String, path: WritableKeyPath<Slots, Tensor>)] {
        var keys: [(name: String, path: WritableKeyPath<Slots, Tensor>)] = [("velocity", \.velocity)]
        if momentum > 0 { keys.append(("momentum", \.momentum)) }
        if centered { keys.append(("average_gradient", \.averageGradient)) }
        return keys
    }

    override func update(weights w: UnsafeMutableBufferPointer<Float>, gradient g: UnsafeBufferPointer<Float>,
                         slots: inout Slots, context: StepContext) {
        let lr = context.learningRate, rho = self.rho, mu = momentum, eps = epsilon
        let centered = self.centered, useMomentum = momentum > 0
        slots.velocity.withUnsafeMutableBufferPointer { v in
            slots.momentum.withUnsafeMutableBufferPointer { b in
                slots.averageGradient.withUnsafeMutableBufferPointer { a in
                    OptimizerKernels.rmsprop(weights: w, gradient: g, velocity: v,
                                             momentumBuffer: useMomentum ? b : nil, averageGradient: centered ? a : nil,
                                             learningRate: lr, rho: rho, momentum: mu, epsilon: eps)
                }
            }
        }
    }
}
