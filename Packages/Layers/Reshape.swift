import Optimizers
import TensorCore

/// What ``Flatten`` and ``Reshape`` share: each gives a view of its input in another per-sample
/// shape (never a copy) and has no weights; a training-mode forward keeps the input shape, and
/// the backward pass views the gradient back in it.
protocol ViewLayer: Layer, TrainingCacheOwner {
    /// The input shapes of the training-mode forward passes.
    var tape: Tape<[Int]> { get set }
}

extension ViewLayer {
    /// Nothing to create; returns the output shape.
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try outputShape(for: inputShape)
    }

    /// None.
    public var parameters: [Parameter] { [] }

    /// `input` viewed as `shape` (the batch axis first), keeping the input shape in training.
    /// - Precondition: the input has a batch axis; the message names the layer and the shape.
    func view(_ input: Tensor, as shape: (_ perSample: [Int]) -> [Int], training: Bool) -> Tensor {
        neuritePrecondition(input.rank >= 1, "\(Self.typeName) '\(name)' needs a batch axis, got input shape \(input.shape)")
        let output = shape(Array(input.shape.dropFirst()))
        if training { tape.push(input.shape) }
        return input.reshaped([input.shape[0]] + output)
    }

    /// The gradient viewed in the input's shape.
    /// - Precondition: a training-mode forward ran, and the gradient has as many elements as its input.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let shape = tape.pop(layer: self)
        neuritePrecondition(outputGradient.count == Tensor.elementCount(of: shape),
                            "\(Self.typeName) '\(name)' backward: output gradient \(outputGradient.shape) does not fit input shape \(shape)")
        return outputGradient.reshaped(shape)
    }

    func clearTrainingCache() { tape.clear() }
}

/// Flattens each sample to one axis: `[B, d1, ..., dk]` becomes `[B, d1·…·dk]` (Keras `Flatten`).
///
/// A view, never a copy (row-major order, so NHWC images flatten as Keras flattens them with
/// `channels_last`). A per-sample shape of rank 0 becomes `[1]`.
public final class Flatten: ViewLayer {
    /// `"Flatten"`.
    public static let typeName = "Flatten"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true
    /// The layer's name, unique in its model (`"flatten"`, `"flatten_1"`, ...).
    public var name: String
    var tape = Tape<[Int]>()

    /// A flattening layer.
    public init(name: String = "") { self.name = name }

    /// `["name"]`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] { ["name": .string(name)] }

    /// Rebuilds from ``config``.
    public convenience init(config: [String: ConfigValue]) throws {
        try LayerConfigKeys.check(config, known: ["name"], extraDefaults: ["data_format": [.null, .string("channels_last")]],
                                  of: Self.typeName)
        self.init(name: try config.optionalName(of: Self.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[d1·…·dk]`.
    public func outputShape(for inputShape: [Int]) throws -> [Int] { [inputShape.reduce(1, *)] }

    /// The input viewed as `[B, features]`.
    /// - Precondition: the input has a batch axis.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        view(input, as: { [$0.reduce(1, *)] }, training: training)
    }
}

/// Gives each sample another shape with the same number of elements (Keras `Reshape`):
/// `Reshape(targetShape: [7, 7, 16])` turns `[B, 784]` into `[B, 7, 7, 16]`.
///
/// One extent of the target may be `-1`, inferred from the others. A view, never a copy.
public final class Reshape: ViewLayer {
    /// `"Reshape"`.
    public static let typeName = "Reshape"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true
    /// The layer's name, unique in its model (`"reshape"`, `"reshape_1"`, ...).
    public var name: String
    /// The per-sample output shape, perhaps with one `-1`.
    public let targetShape: [Int]
    var tape = Tape<[Int]>()

    /// A layer reshaping each sample to `targetShape`.
    /// - Precondition: at most one extent is `-1` and the others are positive.
    public init(targetShape: [Int], name: String = "") {
        neuritePrecondition(targetShape.filter { $0 == -1 }.count <= 1 && targetShape.allSatisfy { $0 == -1 || $0 > 0 },
                            "Reshape target shape \(targetShape) needs positive extents and at most one -1")
        self.targetShape = targetShape
        self.name = name
    }

    /// `Reshape([7, 7, 16])`.
    public convenience init(_ targetShape: [Int], name: String = "") {
        self.init(targetShape: targetShape, name: name)
    }

    /// `["name", "target_shape"]`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] { ["name": .string(name), "target_shape": .ints(targetShape)] }

    /// Rebuilds from ``config``.
    public convenience init(config: [String: ConfigValue]) throws {
        try LayerConfigKeys.check(config, known: ["name", "target_shape"], of: Self.typeName)
        let target = try config.ints("target_shape", of: Self.typeName)
        guard target.filter({ $0 == -1 }).count <= 1, target.allSatisfy({ $0 == -1 || $0 > 0 }) else {
            throw LayerError("Reshape config \"target_shape\" \(target) needs positive extents and at most one -1")
        }
        self.init(targetShape: target, name: try config.optionalName(of: Self.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// The target shape with any `-1` resolved; throws, naming the layer and both shapes, when the
    /// element counts cannot agree.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        let count = inputShape.reduce(1, *)
        let known = targetShape.filter { $0 != -1 }.reduce(1, *)
        var resolved = targetShape
        if let i = targetShape.firstIndex(of: -1) {
            if count % known == 0 { resolved[i] = count / known }
        }
        guard resolved.reduce(1, *) == count, !resolved.contains(-1) else {
            throw LayerError("Reshape '\(name)' cannot reshape input shape \(inputShape) (\(count) elements) "
                             + "to target shape \(targetShape)")
        }
        return resolved
    }

    /// The input viewed as `[B] + targetShape`.
    /// - Precondition: each sample has as many elements as the target shape.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        view(input, as: { perSample in
            guard let target = try? outputShape(for: perSample) else {
                neuritePreconditionFailure("Reshape '\(name)' cannot reshape input shape \(input.shape) to [B] + \(targetShape)")
            }
            return target
        }, training: training)
    }
}
