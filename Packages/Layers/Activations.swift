import Foundation
import Optimizers
import TensorCore

/// An element-wise (or, for softmax, row-wise) activation function, with its derivative: the
/// `activation:` option of `Dense` (and of any other layer that ends in one, such as Conv2D), and
/// the function of an `ActivationLayer`.
///
/// ```swift
/// Dense(128, activation: .relu)
/// Dense(64, activation: .leakyRelu(alpha: 0.1))
/// ActivationLayer(.softmax)
/// ```
///
/// Layers that own an activation call ``forward(_:)`` (or ``addBiasAndActivate(_:bias:)``, which
/// fuses the bias add where TensorCore can) and, in their backward pass,
/// ``backward(_:input:output:)``. Most derivatives are written in terms of the *output*, so a layer
/// need only keep what it returned; ``needsInputForBackward`` says when the pre-activation must be
/// kept too (GELU, ELU, and leaky ReLU with a negative slope).
public enum ActivationFunction: Sendable, Equatable, CustomStringConvertible {
    /// f(x) = x (Keras `"linear"`, the default of `Dense`).
    case linear
    /// f(x) = max(x, 0).
    case relu
    /// f(x) = x for x > 0, `alpha * x` below. Keras' `"leaky_relu"` has `alpha` 0.2.
    case leakyRelu(alpha: Float)
    /// The exponential linear unit: x for x > 0, `alpha * (e^x - 1)` below. Keras' `"elu"` has `alpha` 1.
    case elu(alpha: Float)
    /// The Gaussian error linear unit in its exact form, `x * Φ(x) = x / 2 * (1 + erf(x / √2))`:
    /// the default of Keras (`approximate=False`) and of PyTorch, not the tanh approximation.
    /// Its derivative is `Φ(x) + x * φ(x)`, with φ the standard normal density.
    case gelu
    /// The logistic function 1 / (1 + e^-x).
    case sigmoid
    /// The hyperbolic tangent.
    case tanh
    /// The softmax over the last axis: each row becomes `e^(x - max) / Σ e^(x - max)`.
    /// As a model's last layer, pair it with `CategoricalCrossentropy()` or
    /// `SparseCategoricalCrossentropy()` (from probabilities): `fit` then fuses this softmax with
    /// the loss, training as a linear last layer with `SoftmaxCrossEntropy` does. A loss that
    /// expects logits after it would apply the softmax twice (`compile` warns).
    case softmax

    /// The name Keras uses in configurations: `"linear"`, `"relu"`, `"sigmoid"`, `"tanh"`,
    /// `"softmax"`, `"gelu"`, and `"leaky_relu"` / `"elu"` for their Keras defaults (alpha 0.2 and
    /// 1); another alpha is written `"leaky_relu(alpha=0.1)"`. ``init(configName:)`` reads it back.
    public var configName: String {
        switch self {
        case .linear: "linear"
        case .relu: "relu"
        case .leakyRelu(let alpha): alpha == 0.2 ? "leaky_relu" : "leaky_relu(alpha=\(alpha))"
        case .elu(let alpha): alpha == 1 ? "elu" : "elu(alpha=\(alpha))"
        case .gelu: "gelu"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .softmax: "softmax"
        }
    }

    /// The function named `configName` (see ``configName``); throws `LayerError` for an unknown name.
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

    /// The configuration name.
    public var description: String { configName }

    /// The activation TensorCore can fuse with a bias add, if this is one of them.
    public var fusedWithBias: Activation? {
        switch self {
        case .linear: .identity
        case .relu: .relu
        case .leakyRelu(let alpha): alpha >= 0 ? .leakyRelu(alpha: alpha) : nil
        case .sigmoid: .sigmoid
        case .tanh: .tanh
        case .elu, .gelu, .softmax: nil
        }
    }

    /// Whether ``backward(_:input:output:)`` needs the pre-activation input (GELU; ELU and leaky
    /// ReLU with a negative `alpha`, whose outputs do not tell the sign of the input). For the
    /// others the output alone suffices, so layers keep only what they returned.
    public var needsInputForBackward: Bool {
        switch self {
        case .gelu: true
        case .leakyRelu(let alpha), .elu(let alpha): alpha < 0
        default: false
        }
    }

    /// `f(x)` for every element (or row, for softmax). One pass; allocates the result.
    public func forward(_ x: Tensor) -> Tensor {
        switch self {
        case .linear: return x
        case .relu: return x.relu()
        case .leakyRelu(let alpha): return x.leakyRelu(alpha: alpha)
        case .elu(let alpha): return x.elu(alpha: alpha)
        case .gelu:
            return x.mapElements { v in 0.5 * v * (1 + Foundation.erf(v * 0.707_106_77)) }
        case .sigmoid: return x.sigmoid()
        case .tanh: return x.tanh()
        case .softmax: return x.softmax()
        }
    }

    /// `z = f(z + bias)` for `z` of shape `[..., N]` and `bias` `[N]`: one fused pass when
    /// ``fusedWithBias`` is not nil (in place, allocating nothing when `z` owns its buffer),
    /// otherwise a bias pass and then ``forward(_:)``. What a layer's forward pass does after its
    /// matrix product or convolution.
    /// - Precondition: `bias` is `[N]` for `z` `[..., N]`; the message names both shapes.
    public func addBiasAndActivate(_ z: inout Tensor, bias: Tensor) {
        if let fused = fusedWithBias {
            z.addBias(bias, activation: fused)
        } else {
            z.addBias(bias)
            z = forward(z)
        }
    }

    /// dLoss/dInput from dLoss/dOutput: the element-wise derivative times `gradient` (for softmax,
    /// the Jacobian-vector product `y * (g - Σ g·y)` per row of the last axis).
    ///
    /// - Parameters:
    ///   - gradient: dLoss/dOutput, the shape of the output.
    ///   - input: the pre-activation input; needed only when ``needsInputForBackward``.
    ///   - output: what ``forward(_:)`` returned for that input.
    /// - Precondition: the shapes agree, and `input` is given when it is needed.
    public func backward(_ gradient: Tensor, input: Tensor?, output: Tensor) -> Tensor {
        neuritePrecondition(gradient.shape == output.shape,
                            "\(configName) backward: gradient shape \(gradient.shape) differs from output shape \(output.shape)")
        neuritePrecondition(!needsInputForBackward || input != nil,
                            "\(configName) backward needs the activation's input, which was not given")
        switch self {
        case .linear:
            return gradient
        case .relu:
            // output > 0 exactly where input > 0.
            return Tensor.reluBackward(gradient: gradient, input: input ?? output)
        case .leakyRelu(let alpha):
            // For alpha >= 0, output > 0 exactly where input > 0.
            return Tensor.leakyReluBackward(gradient: gradient, input: input ?? output, alpha: alpha)
        case .elu(let alpha):
            if let input { return Tensor.eluBackward(gradient: gradient, input: input, alpha: alpha) }
            // Below zero, y = alpha (e^x - 1), so dy/dx = alpha e^x = y + alpha.
            return Tensor.zipElements(gradient, output) { g, y in y > 0 ? g : g * (y + alpha) }
        case .gelu:
            return Tensor.zipElements(gradient, input!) { g, x in
                let cdf = 0.5 * (1 + Foundation.erf(x * 0.707_106_77))
                let pdf = 0.398_942_3 * Foundation.exp(-0.5 * x * x)
                return g * (cdf + x * pdf)
            }
        case .sigmoid:
            return Tensor.sigmoidBackward(gradient: gradient, output: output)
        case .tanh:
            return Tensor.tanhBackward(gradient: gradient, output: output)
        case .softmax:
            return Tensor.softmaxBackward(gradient: gradient, output: output)
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

    /// `["name", "activation"]`, the activation by its ``ActivationFunction/configName``.
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

extension Tensor {
    /// The softmax's backward pass from its output y, per row of the last axis:
    /// `dx = y * (dy - Σ dy·y)`, the sum accumulated in `Double`. One pass per row.
    static func softmaxBackward(gradient: Tensor, output: Tensor) -> Tensor {
        let n = output.shape.last ?? 1
        return gradient.withUnsafeBufferPointer { g in
            output.withUnsafeBufferPointer { y in
                Tensor(shape: output.shape) { dx in
                    guard n > 0 else { return }
                    for row in stride(from: 0, to: dx.count, by: n) {
                        var dot = 0.0
                        for j in row..<(row + n) { dot += Double(g[j]) * Double(y[j]) }
                        let s = Float(dot)
                        for j in row..<(row + n) { dx[j] = y[j] * (g[j] - s) }
                    }
                }
            }
        }
    }
}
