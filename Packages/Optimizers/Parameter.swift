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
    public var gradient: Tensor {
        get {
            if gradientIsZero {
                storedGradient = Tensor.zeros(value.shape)
                gradientIsZero = false
            }
            return storedGradient
        }
        set {
            storedGradient = newValue
            gradientIsZero = false
        }
        // In-place mutation (`p.gradient += g`, `p.gradient.withUnsafeMutableBufferPointer`)
        // reaches the storage itself, without a copy-on-write copy of a getter's result.
        _modify {
            if gradientIsZero {
                storedGradient = Tensor.zeros(value.shape)
                gradientIsZero = false
            }
            yield &storedGradient
        }
    }

    /// The gradient's storage; stale while `gradientIsZero`.
    private var storedGradient: Tensor
    /// Whether the gradient is zero without `storedGradient` having been cleared: zeroing is
    /// free, and the first contribution after it is taken as it is instead of being added to
    /// zeros (which saved a write and a read of every parameter per training step).
    private var gradientIsZero = true

    /// Whether optimizers update it (frozen layers and running statistics are not trainable).
    public var isTrainable: Bool

    /// A parameter with a zero gradient.
    public init(name: String, value: Tensor, isTrainable: Bool = true) {
        self.name = name
        self.value = value
        self.storedGradient = Tensor.zeros(value.shape)
        self.isTrainable = isTrainable
    }

    /// Adds `contribution` to the gradient (in place; shapes must agree).
    public func accumulateGradient(_ contribution: Tensor) {
        neuritePrecondition(contribution.shape == value.shape,
                            "gradient for \(name) has shape \(contribution.shape), parameter has \(value.shape)")
        if gradientIsZero {
            storedGradient = contribution
            gradientIsZero = false
        } else {
            storedGradient += contribution
        }
    }

    /// Calls `body` with the gradient's storage, in place, and whether the gradient is zero: then
    /// the storage holds stale values of the right shape, which `body` must overwrite (a GEMM with
    /// beta 0), not add to. A layer whose contribution is a product saves the zero fill of a
    /// fresh gradient and a read of it at the first contribution of every step (a serial pass over
    /// the kernel: 400 KB for the shallow MLP's first Dense, 1.6 MB for the deep MLP's).
    package func updateGradient(_ body: (_ gradient: inout Tensor, _ isZero: Bool) -> Void) {
        let isZero = gradientIsZero
        if isZero && storedGradient.shape != value.shape {
            storedGradient = Tensor(shape: value.shape, repeating: 0)
        }
        gradientIsZero = false
        body(&storedGradient, isZero)
    }

    /// Sets the gradient to zero (in O(1): the next contribution replaces it).
    public func zeroGradient() {
        gradientIsZero = true
    }
}
