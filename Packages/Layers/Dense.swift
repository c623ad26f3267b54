import Optimizers
import TensorCore

/// A fully connected layer: `y = activation(x · kernel + bias)`, Keras' `Dense`.
///
/// ```swift
/// Dense(128, activation: .relu)                 // [B, 784] -> [B, 128]
/// Dense(units: 10, kernelInitializer: .heNormal, useBias: false)
/// ```
///
/// **Shapes.** `kernel` is `[in, units]` and `bias` `[units]`, Keras' layout. PyTorch's
/// `nn.Linear` stores its weight transposed, `[out, in]`: to load these weights there, copy
/// `kernel.value.transposed()` into `linear.weight` and `bias` into `linear.bias` (and transpose
/// back the other way). An input with more than one axis per sample, `[B, ..., in]`, is handled
/// as Keras does: the layer applies to the last axis, giving `[B, ..., units]` (every position
/// shares the kernel). Add a `Flatten` first to mix all features instead.
///
/// **Cost.** Forward: one GEMM `[B·…, in] x [in, units]` and one fused pass for bias and
/// activation (relu, leaky relu, sigmoid, tanh and linear fuse; elu, gelu and softmax take a
/// second pass). Backward: `dW += xᵀ·dz` accumulated straight into the gradient by GEMM with
/// `beta = 1` (no temporary), `db += Σ dz` over the batch, `dx = dz·Wᵀ`, where `dz` is the
/// activation's backward pass. A training-mode forward keeps its input and output (and the
/// pre-activation for gelu and elu) until the backward pass.
public final class Dense: Layer {
    /// `"Dense"`.
    public static let typeName = "Dense"
    /// Whether training updates the kernel and bias (Keras' `trainable`); see ``Layer/trainable``.
    public var trainable = true { didSet { for p in parameters { p.isTrainable = trainable } } }
    /// The layer's name, unique in its model (`"dense"`, `"dense_1"`, ...); renaming renames the
    /// parameters (`"<name>.kernel"`, `"<name>.bias"`).
    public var name: String { didSet { nameParameters() } }
    /// The number of output features.
    public let units: Int
    /// The function applied after the affine map.
    public let activation: ActivationFunction
    /// Whether a bias is added.
    public let useBias: Bool
    /// How the kernel is filled at build.
    public let kernelInitializer: Initializer
    /// How the bias is filled at build.
    public let biasInitializer: Initializer
    /// The weight matrix `[in, units]`, once built.
    public private(set) var kernel: Parameter?
    /// The bias `[units]`, once built with `useBias`.
    public private(set) var bias: Parameter?
    /// The per-sample input shape the layer was built for.
    public private(set) var builtInputShape: [Int]?

    /// The training-mode forward passes: each input as `[rows, in]` with the caller's shape
    /// `[B, ..., in]`, and the output (and pre-activation) `[rows, units]`.
    private var tape = Tape<ActivationRecord>()

    /// A dense layer with `units` outputs.
    /// - Precondition: `units > 0`.
    public init(units: Int, activation: ActivationFunction = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                name: String = "") {
        neuritePrecondition(units > 0, "Dense needs a positive number of units, got \(units)")
        self.units = units
        self.activation = activation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        self.name = name
    }

    /// A dense layer with `units` outputs: `Dense(128, activation: .relu)`.
    public convenience init(_ units: Int, activation: ActivationFunction = .linear, useBias: Bool = true,
                            kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                            name: String = "") {
        self.init(units: units, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                  biasInitializer: biasInitializer, name: name)
    }

    /// `name`, `units`, `activation`, `use_bias`, `kernel_initializer`, `bias_initializer`
    /// (Keras' keys; activations and initialisers by their config names).
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        ["name": .string(name), "units": .int(units), "activation": .string(activation.configName),
         "use_bias": .bool(useBias), "kernel_initializer": .string(kernelInitializer.configName),
         "bias_initializer": .string(biasInitializer.configName)]
    }

    /// Rebuilds from ``config``; `activation`, `use_bias` and the initialisers may be absent (defaults).
    public convenience init(config: [String: ConfigValue]) throws {
        let t = Self.typeName
        try LayerConfigKeys.check(config, known: ["name", "units", "activation", "use_bias", "kernel_initializer", "bias_initializer"], of: t)
        let units = try config.int("units", of: t)
        guard units > 0 else { throw LayerError("Dense config needs a positive \"units\", got \(units)") }
        self.init(units: units,
                  activation: try config["activation"].map { _ in try ActivationFunction(configName: config.string("activation", of: t)) } ?? .linear,
                  useBias: try config["use_bias"].map { _ in try config.bool("use_bias", of: t) } ?? true,
                  kernelInitializer: try config["kernel_initializer"].map { _ in try Initializer(configName: config.string("kernel_initializer", of: t)) } ?? .glorotUniform,
                  biasInitializer: try config["bias_initializer"].map { _ in try Initializer(configName: config.string("bias_initializer", of: t)) } ?? .zeros,
                  name: try config.optionalName(of: t))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[..., units]` for `[..., in]`; throws for a rank-0 input, or one whose last extent differs
    /// from the one the layer was built for.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard let features = inputShape.last else {
            throw LayerError("Dense '\(name)' needs per-sample input of rank >= 1, got input shape []")
        }
        if let built = builtInputShape, built.last != features {
            throw LayerError("Dense '\(name)' was built for input shape \(built) (\(built.last ?? 0) features) "
                             + "and cannot take input shape \(inputShape)")
        }
        return inputShape.dropLast() + [units]
    }

    /// Creates `kernel` `[in, units]` (and `bias` `[units]`) from the initialisers, drawing from
    /// `generator`. Building again for the same last extent keeps the weights.
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        let output = try outputShape(for: inputShape)
        if kernel == nil {
            kernel = Parameter(name: "", value: kernelInitializer.make([inputShape.last!, units], generator: &generator), isTrainable: trainable)
            if useBias { bias = Parameter(name: "", value: biasInitializer.make([units], generator: &generator), isTrainable: trainable) }
            builtInputShape = inputShape
            nameParameters()
        }
        return output
    }

    /// `[kernel, bias]` (or `[kernel]`), empty before build.
    public var parameters: [Parameter] { [kernel, bias].compactMap { $0 } }

    /// `activation(input · kernel + bias)` for `[B, ..., in]`, giving `[B, ..., units]`.
    /// - Precondition: the layer is built and the input's last extent is `in`; the message names both shapes.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        guard let kernel else {
            neuritePreconditionFailure("Dense '\(name)' is not built: build it (or its model) before calling forward")
        }
        let features = kernel.value.shape[0]
        neuritePrecondition(input.rank >= 2 && input.shape.last == features,
                            "Dense '\(name)' expects input [B, ..., \(features)] (kernel \(kernel.value.shape)), got \(input.shape)")
        let x = input.rank == 2 ? input : input.reshaped([-1, features])
        var z = Tensor.matmul(x, kernel.value)
        let preActivation = activation.applyAfterBias(&z, bias: bias?.value)
        if training { tape.push(ActivationRecord(input: x, inputShape: input.shape, preActivation: preActivation, output: z)) }
        return input.rank == 2 ? z : z.reshaped(input.shape.dropLast() + [units])
    }

    /// Accumulates `kernel.gradient += xᵀ·dz` and `bias.gradient += Σ dz`, and returns `dz·kernelᵀ`,
    /// where `dz` is `outputGradient` taken back through the activation. A frozen kernel or bias
    /// (``trainable`` false) gets no gradient, which nothing would apply.
    /// - Precondition: `outputGradient` has the shape of the matching forward's output.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        backward(outputGradient, inputGradient: true)!
    }

    /// The backward pass, skipping `dz·kernelᵀ` (a GEMM as large as the forward one) when the
    /// caller needs no input gradient: the first layer of a model in training.
    /// With `throughActivation` false, `outputGradient` is taken as dLoss/d(pre-activation): the
    /// activation's derivative is skipped (the fused loss path, see `OutputActivationLayer`).
    private func backward(_ outputGradient: Tensor, inputGradient: Bool, throughActivation: Bool = true) -> Tensor? {
        let saved = tape.pop(layer: self)
        let kernel = kernel!
        let expected = saved.inputShape.dropLast() + [units]
        neuritePrecondition(outputGradient.shape == Array(expected),
                            "Dense '\(name)' backward: output gradient has shape \(outputGradient.shape), the output had \(Array(expected))")
        let dy = outputGradient.rank == 2 ? outputGradient : outputGradient.reshaped([-1, units])
        let dz = throughActivation ? activation.backward(dy, input: saved.preActivation, output: saved.output) : dy
        // A frozen weight gets no gradient: nothing would apply it (a GEMM saved).
        if kernel.isTrainable {
            let input = saved.input
            kernel.updateGradient { gradient, isZero in
                Tensor.gemm(input, transposeA: true, dz, beta: isZero ? 0 : 1, into: &gradient)
            }
        }
        if let bias, bias.isTrainable { bias.gradient += dz.sum(alongAxis: 0) }
        guard inputGradient else { return nil }
        let dx = Tensor.matmul(dz, kernel.value, transposeB: true)
        return dx.shape == saved.inputShape ? dx : dx.reshaped(saved.inputShape)
    }

    private func nameParameters() {
        kernel?.name = name.isEmpty ? "kernel" : "\(name).kernel"
        bias?.name = name.isEmpty ? "bias" : "\(name).bias"
    }
}

extension Dense: TrainingCacheOwner, ParameterGradientBackward {
    func clearTrainingCache() { tape.clear() }
    func backwardParameterGradients(_ outputGradient: Tensor) { _ = backward(outputGradient, inputGradient: false) }
}

extension Dense: OutputActivationLayer {
    var outputActivation: ActivationFunction { activation }
    func backwardSkippingActivation(_ preActivationGradient: Tensor, inputGradient: Bool) -> Tensor? {
        backward(preActivationGradient, inputGradient: inputGradient, throughActivation: false)
    }
}
