import TensorCore

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay,
/// with PyTorch's `torch.optim.SGD` update rule (dampening 0):
///
/// ```
/// g ← g + weightDecay · w                  (when weightDecay ≠ 0)
/// b ← momentum · b + g                     (when momentum ≠ 0; b starts at 0, so b₁ = g₁)
/// d ← nesterov ? g + momentum · b : b      (d = g when momentum = 0)
/// w ← w − lr · d
/// ```
///
/// Keras' `SGD` keeps `v = momentum · v − lr · g` instead; with a constant learning rate the
/// two give the same weights (`v = −lr · b`), and they differ only when the rate changes.
/// Weight decay here is coupled (added to the gradient, as PyTorch's `weight_decay`).
///
/// State: `"<parameter>.momentum"` (b) when `momentum ≠ 0`; nothing otherwise.
/// Cost: one pass over each parameter.
public final class SGD: OptimizerBase<SGD.Slots> {
    /// SGD's state for one parameter: the momentum buffer (empty when momentum is 0).
    public struct Slots {
        var momentum: Tensor
    }

    /// The momentum factor μ (0 for plain SGD).
    public let momentum: Float
    /// Whether the update looks ahead along the momentum (`g + μ·b` instead of `b`).
    public let nesterov: Bool
    /// The L2 penalty factor added to the gradient as `weightDecay · w`.
    public let weightDecay: Float

    /// Makes an SGD optimizer.
    /// - Parameters:
    ///   - learningRate: the constant rate (Keras' default 0.01); unused while `schedule` is set.
    ///   - momentum: the momentum factor μ, non-negative (0.9 is usual); 0 turns momentum off.
    ///   - nesterov: use Nesterov momentum (needs `momentum > 0`).
    ///   - weightDecay: the L2 factor added to the gradient, non-negative.
    ///   - schedule: the learning rate per step, if it changes; see `OptimizerBase.schedule`.
    ///   - clipNorm: per-parameter gradient norm limit; see `OptimizerBase.clipNorm`.
    ///   - globalClipNorm: joint gradient norm limit; see `OptimizerBase.globalClipNorm`.
    ///   - clipValue: element-wise gradient limit; see `OptimizerBase.clipValue`.
    /// - Precondition: the values are finite and non-negative, and `nesterov` has momentum.
    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0,
                schedule: (any LearningRateSchedule)? = nil,
                clipNorm: Float? = nil, globalClipNorm: Float? = nil, clipValue: Float? = nil) {
        checkNonNegative(momentum, "SGD: momentum")
        neuritePrecondition(!nesterov || momentum > 0, "SGD: nesterov needs a positive momentum, got \(momentum)")
        checkNonNegative(weightDecay, "SGD: weightDecay")
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        super.init(learningRate: learningRate, schedule: schedule,
                   clipNorm: clipNorm, globalClipNorm: globalClipNorm, clipValue: clipValue)
    }

    override func makeSlots(for value: Tensor) -> Slots {
        Slots(momentum: Tensor.zeros(momentum != 0 ? value.shape : [0]))
    }

    override var slotKeys: [(name: String, path: WritableKeyPath<Slots, Tensor>)] {
        momentum != 0 ? [("momentum", \.momentum)] : []
    }

    override func update(weights w: UnsafeMutableBufferPointer<Float>, gradient g: UnsafeBufferPointer<Float>,
                         slots: inout Slots, context: StepContext) {
        let lr = context.learningRate, mu = momentum, wd = weightDecay, nesterov = self.nesterov
        slots.momentum.withUnsafeMutableBufferPointer { b in
            OptimizerKernels.sgd(weights: w, gradient: g, momentumBuffer: mu != 0 ? b : nil,
                                 learningRate: lr, momentum: mu, weightDecay: wd, nesterov: nesterov)
        }
    }
}
