import TensorCore

/// Updates parameters from their gradients.
///
/// Every optimizer shares the same outer work, done once for all of them: skipping frozen
/// parameters, gradient clipping, the learning-rate schedule, weight decay where the rule
/// asks for it, and counting steps. Each concrete optimizer only writes its update rule.
/// State (moments, step count) is exported as named tensors so training resumes exactly.
///
/// Neurite's optimizers (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`) get that shared work
/// from `OptimizerBase`, which also documents the clipping options and the schedule.
public protocol Optimizer: AnyObject {
    /// The learning rate the next `step` uses (after the schedule, if any). Settable, so a
    /// callback can change it between epochs; on `OptimizerBase` setting it fixes the rate
    /// from the next step on and removes the schedule.
    var learningRate: Float { get set }
    /// The number of `step` calls made so far.
    var iterations: Int { get }
    /// Applies one update to every trainable parameter from its current gradient.
    /// Gradients are read, not cleared: the training loop zeroes them before each batch.
    func step(_ parameters: [Parameter])
    /// Everything needed to resume: per-parameter slots keyed `"<parameter name>.<slot>"`
    /// (e.g. `"dense_1.kernel.m"`) and scalars such as the step count as one-element tensors.
    func stateTensors() -> [String: Tensor]
    /// Restores what `stateTensors()` returned for parameters with the same names and shapes.
    /// Throws `OptimizerError` naming a missing, unexpected or mis-shaped key.
    func loadStateTensors(_ state: [String: Tensor], for parameters: [Parameter]) throws
}

/// Why optimizer state could not be restored.
public struct OptimizerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What was wrong, naming the keys and shapes concerned.
    public var message: String
    /// Makes an error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}
