import Foundation
import TensorCore

/// Adam (Kingma & Ba, 2015), with bias correction and optional AMSGrad, as PyTorch's
/// `torch.optim.Adam` computes it. At step t (counting from 1):
///
/// ```
/// m ← β₁ · m + (1 − β₁) · g
/// v ← β₂ · v + (1 − β₂) · g²
/// v̂ ← max(v̂, v)                                      (amsgrad; then v̂ replaces v below)
/// w ← w − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// Defaults follow Keras (`epsilon` 1e-7); PyTorch's default `epsilon` is 1e-8: pass
/// `epsilon: 1e-8` to match a PyTorch run. Keras adds ε before the bias correction
/// (`w ← w − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε)`), which equals this rule with
/// ε·√(1 − β₂ᵗ) in place of ε: the two differ only where √v̂ is comparable to ε.
/// The step t is the optimizer's `iterations` (one count for all parameters, as Keras).
///
/// State: `"<parameter>.m"`, `"<parameter>.v"`, and `"<parameter>.v_max"` (v̂) with `amsgrad`.
/// Cost: one pass over each parameter.
public class Adam: OptimizerBase<Adam.Slots> {
    /// Adam's state for one parameter: the moment estimates (`vMax` is empty without AMSGrad).
    public struct Slots {
        var m: Tensor
        var v: Tensor
        var vMax: Tensor
    }

    /// The decay rate β₁ of the first-moment (mean) estimate.
    public let beta1: Float
    /// The decay rate β₂ of the second-moment (uncentred variance) estimate.
    public let beta2: Float
    /// ε, added to the bias-corrected √v to keep the division finite.
    public let epsilon: Float
    /// Whether the denominator uses the running maximum of v (Reddi et al., 2018).
    public let amsgrad: Bool
    /// The decoupled weight decay factor (0 for Adam; see `AdamW`).
    let decoupledWeightDecay: Float

    /// Makes an Adam optimizer.
    /// - Parameters:
    ///   - learningRate: the constant rate (default 1e-3); unused while `schedule` is set.
    ///   - beta1: β₁ in `0..<1` (default 0.9).
    ///   - beta2: β₂ in `0..<1` (default 0.999).
    ///   - epsilon: ε, non-negative (Keras' 1e-7 by default; PyTorch uses 1e-8).
    ///   - amsgrad: use the AMSGrad variant.
    ///   - schedule: the learning rate per step, if it changes; see `OptimizerBase.schedule`.
    ///   - clipNorm: per-parameter gradient norm limit; see `OptimizerBase.clipNorm`.
    ///   - globalClipNorm: joint gradient norm limit; see `OptimizerBase.globalClipNorm`.
    ///   - clipValue: element-wise gradient limit; see `OptimizerBase.clipValue`.
    /// - Precondition: the values are in range.
    public convenience init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-7, amsgrad: Bool = false,
                            schedule: (any LearningRateSchedule)? = nil,
                            clipNorm: Float? = nil, globalClipNorm: Float? = nil, clipValue: Float? = nil) {
        self.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad,
                  decoupledWeightDecay: 0, schedule: schedule,
                  clipNorm: clipNorm, globalClipNorm: globalClipNorm, clipValue: clipValue)
    }

    /// The initialiser `Adam` and `AdamW` share.
    init(learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, amsgrad: Bool,
         decoupledWeightDecay: Float, schedule: (any LearningRateSchedule)?,
         clipNorm: Float?, globalClipNorm: Float?, clipValue: Float?) {
        checkDecayRate(beta1, "\(Self.self): beta1")
        checkDecayRate(beta2, "\(Self.self): beta2")
        checkNonNegative(epsilon, "\(Self.self): epsilon")
        checkNonNegative(decoupledWeightDecay, "\(Self.self): weightDecay")
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        self.decoupledWeightDecay = decoupledWeightDecay
        super.init(learningRate: learningRate, schedule: schedule,
                   clipNorm: clipNorm, globalClipNorm: globalClipNorm, clipValue: clipValue)
    }

    override func makeSlots(for value: Tensor) -> Slots {
        Slots(m: Tensor.zeros(value.shape), v: Tensor.zeros(value.shape), vMax: Tensor.zeros(amsgrad ? value.shape : [0]))
    }

    override var slotKeys: [(name: String, path: WritableKeyPath<Slots, Tensor>)] {
        amsgrad ? [("m", \.m), ("v", \.v), ("v_max", \.vMax)] : [("m", \.m), ("v", \.v)]
    }

    override func update(weights w: UnsafeMutableBufferPointer<Float>, gradient g: UnsafeBufferPointer<Float>,
                         slots: inout Slots, context: StepContext) {
        let t = Double(context.iteration)
        let lr = context.learningRate
        let b1 = beta1, b2 = beta2, eps = epsilon
        let stepSize = Float(Double(lr) / (1 - pow(Double(b1), t)))
        let inverseCorrection2 = Float(1 / (1 - pow(Double(b2), t)).squareRoot())
        let decay = 1 - lr * decoupledWeightDecay
        let amsgrad = self.amsgrad
        slots.m.withUnsafeMutableBufferPointer { m in
            slots.v.withUnsafeMutableBufferPointer { v in
                slots.vMax.withUnsafeMutableBufferPointer { vMax in
                    OptimizerKernels.adam(weights: w, gradient: g, m: m, v: v, vMax: amsgrad ? vMax : nil,
                                          beta1: b1, beta2: b2, stepSize: stepSize,
                                          inverseCorrection2: inverseCorrection2, epsilon: eps, decay: decay)
                }
            }
        }
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as PyTorch's
/// `torch.optim.AdamW`: before the Adam step (see `Adam`) each weight shrinks by
///
/// ```
/// w ← w − lr · weightDecay · w
/// ```
///
/// which, unlike L2 regularisation, is not rescaled by Adam's adaptive denominator. PyTorch's
/// default `weightDecay` is 0.01 (Keras' is 0.004); `epsilon` defaults to Keras' 1e-7
/// (PyTorch: 1e-8). With a schedule, the decay follows the scheduled rate, as in PyTorch.
///
/// State: as `Adam`.
public final class AdamW: Adam {
    /// The decoupled weight decay factor.
    public var weightDecay: Float { decoupledWeightDecay }

    /// Makes an AdamW optimizer.
    /// - Parameters:
    ///   - learningRate: the constant rate (default 1e-3); unused while `schedule` is set.
    ///   - beta1: β₁ in `0..<1` (default 0.9).
    ///   - beta2: β₂ in `0..<1` (default 0.999).
    ///   - epsilon: ε, non-negative (Keras' 1e-7 by default; PyTorch uses 1e-8).
    ///   - weightDecay: the decoupled decay factor, non-negative (default 0.01, as PyTorch).
    ///   - amsgrad: use the AMSGrad variant.
    ///   - schedule: the learning rate per step, if it changes; see `OptimizerBase.schedule`.
    ///   - clipNorm: per-parameter gradient norm limit; see `OptimizerBase.clipNorm`.
    ///   - globalClipNorm: joint gradient norm limit; see `OptimizerBase.globalClipNorm`.
    ///   - clipValue: element-wise gradient limit; see `OptimizerBase.clipValue`.
    /// - Precondition: the values are in range.
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7, weightDecay: Float = 0.01, amsgrad: Bool = false,
                schedule: (any LearningRateSchedule)? = nil,
                clipNorm: Float? = nil, globalClipNorm: Float? = nil, clipValue: Float? = nil) {
        super.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad,
                   decoupledWeightDecay: weightDecay, schedule: schedule,
                   clipNorm: clipNorm, globalClipNorm: globalClipNorm, clipValue: clipValue)
    }
}
