import Foundation

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
    /// 1); another alpha is written `"leaky_relu(alpha=0.1)"`. The Layers module's
    /// `init(configName:)` reads it back (throwing its `LayerError` for an unknown name).
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

    /// The configuration name.
    public var description: String { configName }

    /// Whether `Tensor.addBias(_:activation:)` applies it in the same pass as the bias (linear,
    /// relu, leaky relu with `alpha >= 0`, sigmoid, tanh); the others run after a bias-only pass.
    var isFusedWithBias: Bool {
        switch self {
        case .linear, .relu, .sigmoid, .tanh: true
        case .leakyRelu(let alpha): alpha >= 0
        case .elu, .gelu, .softmax: false
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

    /// `z = f(z + bias)` for `z` of shape `[..., N]` and `bias` `[N]`: `z.addBias(bias, activation: self)`,
    /// one fused pass for linear, relu, leaky relu with `alpha >= 0`, sigmoid and tanh (in place,
    /// allocating nothing when `z` owns its buffer), otherwise a bias pass and then ``forward(_:)``.
    /// What a layer's forward pass does after its matrix product or convolution.
    /// - Precondition: `bias` is `[N]` for `z` `[..., N]`; the message names both shapes.
    public func addBiasAndActivate(_ z: inout Tensor, bias: Tensor) {
        z.addBias(bias, activation: self)
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

extension Tensor {
    /// `f(a[i], b[i])` for tensors of one shape, on the calling thread.
    static func zipElements(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        neuritePrecondition(a.shape == b.shape, "element-wise operation on shapes \(a.shape) and \(b.shape), which differ")
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                Tensor(shape: a.shape) { out in
                    for i in 0..<out.count { out[i] = f(pa[i], pb[i]) }
                }
            }
        }
    }

    /// `f(x)` for every element, on the calling thread (a vectorisable loop, unlike `map`'s closure
    /// call per element when `f` is inlined here).
    @inline(__always)
    func mapElements(_ f: (Float) -> Float) -> Tensor {
        withUnsafeBufferPointer { src in
            Tensor(shape: shape) { out in
                for i in 0..<out.count { out[i] = f(src[i]) }
            }
        }
    }

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
