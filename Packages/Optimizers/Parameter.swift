import TensorCore

/// A trainable tensor: its value, the gradient accumulated into it by backward passes, and a
/// stable, hierarchical name.
///
/// Layers own their parameters and hand the same `Parameter` objects to optimizers, so an
/// update is seen by the layer at once; this is why `Parameter` is a class. Names are dotted
/// paths set by the model (`"dense_1.kernel"`, `"encoder.dense_1.bias"`) and are the keys of
/// saved weights and of optimizer state.
public final class Parameter {
    /// The dotted name, unique within a model: `"<layer name>.<role>"`.
    public var name: String
    /// The current value.
    public var value: Tensor
    /// The gradient of the loss with respect to `value`, summed over every use since the last
    /// `zeroGradient()` (a weight used twice receives both contributions).
    public var gradient: Tensor
    /// Whether optimizers update it (frozen layers and running statistics are not trainable).
    public var isTrainable: Bool

    /// A parameter with a zero gradient.
    public init(name: String, value: Tensor, isTrainable: Bool = true) {
        self.name = name
        self.value = value
        self.gradient = Tensor.zeros(value.shape)
        self.isTrainable = isTrainable
    }

    /// Adds `contribution` to the gradient (in place; shapes must agree).
    public func accumulateGradient(_ contribution: Tensor) {
        neuritePrecondition(contribution.shape == value.shape,
                            "gradient for \(name) has shape \(contribution.shape), parameter has \(value.shape)")
        gradient += contribution
    }

    /// Sets the gradient to zero, keeping its buffer.
    public func zeroGradient() {
        gradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }
}
