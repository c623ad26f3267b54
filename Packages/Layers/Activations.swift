import Foundation
import Optimizers
import TensorCore

/// The activation functions of layers (`Dense(128, activation: .relu)`), defined in TensorCore,
/// whose fused bias-and-activation kernels take them; named here too so that code importing
/// Layers alone still spells it `ActivationFunction`.
public typealias ActivationFunction = TensorCore.ActivationFunction

extension ActivationFunction {
    /// The function named `configName` (see `configName`); throws `LayerError` for an unknown name.
    public init(configName: String) throws {
        switch configName {
        case "linear": self = .linear
        case "relu": self = .relu
        case "leaky_relu": self = .leakyRelu(alpha: 0.2)
        case "elu": self = .elu(alpha: 1)
        case "gelu": self = .gelu
        case "sigmoid": self = .sigmoid
        case "tanh": self = .tanh
        case "softmax": self = .softmax
        default:
            for (prefix, make) in [("leaky_relu(alpha=", { ActivationFunction.leakyRelu(alpha: $0) }),
                                   ("elu(alpha=", { ActivationFunction.elu(alpha: $0) })] as [(String, (Float) -> ActivationFunction)]
            where configName.hasPrefix(prefix) && configName.hasSuffix(")") {
                if let alpha = Float(configName.dropFirst(prefix.count).dropLast()) {
                    self = make(alpha)
                    return
                }
            }
            throw LayerError("unknown activation \"\(configName)\"; expected one of linear, relu, leaky_relu, elu, gelu, "
                             + "sigmoid, tanh, softmax (or leaky_relu(alpha=A), elu(alpha=A))")
        }
    }
}

/// Applies an ``ActivationFunction`` as a layer of its own (Keras `Activation`), for networks that
/// put the activation after another layer, e.g. after a batch normalisation.
///
/// Keeps its output (and its input, when the function needs it) for the backward pass.
public final class ActivationLayer: Layer {
    /// `"Activation"`, as Keras names it.
    public static let typeName = "Activation"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true
    /// The layer's name, unique in its model (`"activation"`, `"activation_1"`, ...).
    public var name: String
    /// The function applied.
    public let function: ActivationFunction
    /// Per training-mode forward: what the backward pass needs, or nil when the function was
    /// fused into the layer before (see `forwardFused`), whose backward takes care of it.
    private var tape = Tape<(input: Tensor?, output: Tensor)?>()

    /// A layer that applies `function` to its input.
    public init(_ function: ActivationFunction, name: String = "") {
        self.function = function
        self.name = name
    }

    /// `["name", "activation"]`, the activation by its `ActivationFunction.configName`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        ["name": .string(name), "activation": .string(function.configName)]
    }

    /// Rebuilds from ``config``.
    public convenience init(config: [String: ConfigValue]) throws {
        try LayerConfigKeys.check(config, known: ["name", "activation"], of: Self.typeName)
        let function = try ActivationFunction(configName: config.string("activation", of: Self.typeName))
        self.init(function, name: try config.optionalName(of: Self.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// The input shape unchanged (softmax needs rank >= 1).
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        if function == .softmax && inputShape.isEmpty {
            throw LayerError("\(Self.typeName) '\(name)' applies softmax over the last axis and needs per-sample rank >= 1, got input shape []")
        }
        return inputShape
    }

    /// Nothing to create; returns the input shape.
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try outputShape(for: inputShape)
    }

    /// None.
    public var parameters: [Parameter] { [] }

    /// `function(input)`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let output = function.forward(input)
        if training { tape.push((function.needsInputForBackward ? input : nil, output)) }
        return output
    }

    /// The function's derivative times `outputGradient`.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard let saved = tape.pop(layer: self) else { return outputGradient }
        return function.backward(outputGradient, input: saved.input, output: saved.output)
    }

    /// The forward pass when the layer before has already applied this function to `input`
    /// (a `Sequential` fuses a relu into a batch normalisation): passes the input through, and the
    /// matching backward pass passes the gradient through.
    func forwardFused(_ input: Tensor, training: Bool) -> Tensor {
        if training { tape.push(nil) }
        return input
    }
}

extension ActivationLayer: OutputActivationLayer {
    var outputActivation: ActivationFunction { function }
    func backwardSkippingActivation(_ preActivationGradient: Tensor, inputGradient: Bool) -> Tensor? {
        _ = tape.pop(layer: self)
        return preActivationGradient
    }
}

extension ActivationLayer: TrainingCacheOwner {
    func clearTrainingCache() { tape.clear() }
}
