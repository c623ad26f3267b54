import Foundation
import TensorCore

/// A learning rate as a function of the step count.
///
/// An optimizer with a schedule uses `rate(at: n)` for its step `n`, counting from 0 (its
/// `iterations` before the step), as Keras' `LearningRateSchedule`. Schedules are values:
/// they hold only their configuration, so the same schedule gives the same rate for the same
/// step, and a resumed optimizer continues the schedule from its restored `iterations`.
/// Rates are computed in `Double` and rounded to `Float` once.
///
/// See Also: `ConstantLearningRate`, `StepDecay`, `ExponentialDecay`, `CosineDecay`, `LinearWarmup`.
public protocol LearningRateSchedule: Sendable {
    /// The learning rate of step `step` (0 for the first step). Called once per optimizer step.
    func rate(at step: Int) -> Float
}

/// The same rate at every step; useful as the target of `LinearWarmup`.
public struct ConstantLearningRate: LearningRateSchedule, Equatable {
    /// The rate.
    public var rate: Float

    /// A schedule that always gives `rate`.
    public init(_ rate: Float) {
        self.rate = rate
    }

    /// `rate`, whatever the step.
    public func rate(at step: Int) -> Float { rate }
}

/// Multiplies the rate by `factor` every `dropEvery` steps (PyTorch's `StepLR`):
/// `rate(n) = initial · factor^⌊n / dropEvery⌋`.
public struct StepDecay: LearningRateSchedule, Equatable {
    /// The rate of steps `0..<dropEvery`.
    public var initial: Float
    /// The number of steps between drops.
    public var dropEvery: Int
    /// What each drop multiplies the rate by (0.1 divides it by ten).
    public var factor: Float

    /// A schedule that starts at `initial` and multiplies by `factor` every `dropEvery` steps.
    /// - Precondition: `dropEvery > 0`.
    public init(initial: Float, dropEvery: Int, factor: Float) {
        neuritePrecondition(dropEvery > 0, "StepDecay: dropEvery must be positive, got \(dropEvery)")
        self.initial = initial
        self.dropEvery = dropEvery
        self.factor = factor
    }

    /// `initial · factor^⌊step / dropEvery⌋`.
    public func rate(at step: Int) -> Float {
        Float(Double(initial) * pow(Double(factor), Double(step / dropEvery)))
    }
}

/// Decays the rate exponentially (Keras' `ExponentialDecay`):
/// `rate(n) = initial · decayRate^(n / decaySteps)`, with the exponent rounded down to an
/// integer when `staircase` is true (so the rate drops in steps every `decaySteps` steps).
public struct ExponentialDecay: LearningRateSchedule, Equatable {
    /// The rate of step 0.
    public var initial: Float
    /// The number of steps over which the rate is multiplied by `decayRate` once.
    public var decaySteps: Int
    /// The factor per `decaySteps` steps.
    public var decayRate: Float
    /// Whether the exponent is `⌊n / decaySteps⌋` instead of `n / decaySteps`.
    public var staircase: Bool

    /// A schedule decaying from `initial` by `decayRate` every `decaySteps` steps.
    /// - Precondition: `decaySteps > 0`.
    public init(initial: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false) {
        neuritePrecondition(decaySteps > 0, "ExponentialDecay: decaySteps must be positive, got \(decaySteps)")
        self.initial = initial
        self.decaySteps = decaySteps
        self.decayRate = decayRate
        self.staircase = staircase
    }

    /// `initial · decayRate^(step / decaySteps)` (exponent floored when `staircase`).
    public func rate(at step: Int) -> Float {
        var exponent = Double(step) / Double(decaySteps)
        if staircase { exponent = exponent.rounded(.down) }
        return Float(Double(initial) * pow(Double(decayRate), exponent))
    }
}

/// Cosine decay from `initial` to `alpha · initial` over `decaySteps` steps, then constant
/// (Keras' `CosineDecay` without its warm-up; combine with `LinearWarmup` for one):
/// `rate(n) = initial · ((1 - alpha) · ½(1 + cos(π · min(n, decaySteps) / decaySteps)) + alpha)`.
public struct CosineDecay: LearningRateSchedule, Equatable {
    /// The rate of step 0.
    public var initial: Float
    /// The number of steps the decay lasts.
    public var decaySteps: Int
    /// The final rate as a fraction of `initial`.
    public var alpha: Float

    /// A schedule decaying from `initial` to `alpha · initial` along a half cosine.
    /// - Precondition: `decaySteps > 0`.
    public init(initial: Float, decaySteps: Int, alpha: Float = 0) {
        neuritePrecondition(decaySteps > 0, "CosineDecay: decaySteps must be positive, got \(decaySteps)")
        self.initial = initial
        self.decaySteps = decaySteps
        self.alpha = alpha
    }

    /// `initial · ((1 - alpha) · ½(1 + cos(π · min(step, decaySteps) / decaySteps)) + alpha)`.
    public func rate(at step: Int) -> Float {
        let fraction = Double(Swift.min(Swift.max(step, 0), decaySteps)) / Double(decaySteps)
        let cosine = 0.5 * (1 + cos(Double.pi * fraction))
        let a = Double(alpha)
        return Float(Double(initial) * ((1 - a) * cosine + a))
    }
}

/// Raises the rate linearly from `initial` to where `then` starts over `warmupSteps` steps,
/// then follows `then`, shifted so that its step 0 comes right after the warm-up (as Keras'
/// `CosineDecay(warmup_steps:)` and the usual transformer recipes):
///
/// - `n < warmupSteps`: `rate(n) = initial + (then.rate(at: 0) - initial) · n / warmupSteps`
/// - `n ≥ warmupSteps`: `rate(n) = then.rate(at: n - warmupSteps)`
///
/// With the default `initial` of 0 the first step has rate 0 (as in Keras); pass a small
/// `initial` to make every warm-up step count.
public struct LinearWarmup: LearningRateSchedule {
    /// The number of warm-up steps.
    public var warmupSteps: Int
    /// The rate of step 0.
    public var initial: Float
    /// The schedule after the warm-up, starting at its own step 0.
    public var then: any LearningRateSchedule

    /// A linear warm-up over `warmupSteps` steps from `initial` into `then`.
    /// - Precondition: `warmupSteps >= 0`.
    public init(warmupSteps: Int, initial: Float = 0, then: any LearningRateSchedule) {
        neuritePrecondition(warmupSteps >= 0, "LinearWarmup: warmupSteps must not be negative, got \(warmupSteps)")
        self.warmupSteps = warmupSteps
        self.initial = initial
        self.then = then
    }

    /// The warm-up ramp for `step < warmupSteps`, else `then.rate(at: step - warmupSteps)`.
    public func rate(at step: Int) -> Float {
        guard step < warmupSteps else { return then.rate(at: step - warmupSteps) }
        let target = Double(then.rate(at: 0))
        let start = Double(initial)
        return Float(start + (target - start) * Double(step) / Double(warmupSteps))
    }
}
