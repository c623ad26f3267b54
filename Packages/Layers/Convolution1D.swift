import Optimizers
import TensorCore

// The 1-D convolution layer over sequences `[B, T, F]`, and the configuration helpers it shares
// with the 1-D pooling layers (Pooling1D.swift). The arithmetic is TensorCore's 2-D convolution
// on the sequences viewed as images of one row, `[B, 1, T, F]`, with the kernel viewed as
// `[1, K, F, C]`: both views are free (no copy), and the 2-D kernels (direct ones for few
// channels, im2col + GEMM otherwise) already handle strides, dilation and `same` padding.

// MARK: - Shared configuration helpers

/// Reading and checking the configuration entries of the 1-D layers (convolution, pooling).
/// Internal: the layers' public API is their initialisers and `config`.
enum SequenceLayerConfig {
    /// The integer at `key`: `n` or `[n]` (Keras writes 1-D sizes as one-element lists), or nil
    /// when missing or null.
    static func optionalSingle(_ config: [String: ConfigValue], _ key: String, of type: String) throws -> Int? {
        switch config[key] {
        case nil, .null?: return nil
        case .int(let v)?: return v
        case .ints(let v)? where v.count == 1: return v[0]
        case let other?: throw LayerError("\(type) config needs \"\(key)\" as one integer, got \(other)")
        }
    }

    /// Like ``optionalSingle(_:_:of:)``, but the key is required.
    static func single(_ config: [String: ConfigValue], _ key: String, of type: String) throws -> Int {
        guard let value = try optionalSingle(config, key, of: type) else {
            throw LayerError("\(type) config needs \"\(key)\" as one integer, got nothing")
        }
        return value
    }

    /// The string at `"padding"` (lower-cased, as Keras reads it), or nil when missing.
    static func paddingText(_ config: [String: ConfigValue], of type: String) throws -> String? {
        guard config["padding"] != nil else { return nil }
        return try config.string("padding", of: type).lowercased()
    }
}

// MARK: - Conv1D

/// A 1-D convolution over sequences (Keras `Conv1D`): `[B, T, F]` to `[B, OT, filters]`,
/// `y = activation(conv(x, kernel) + bias)`, channels last.
///
/// `y[b, t, c] = bias[c] + sum over k, f of x[b, t * s - padLeft + k * d, f] * kernel[k, f, c]`,
/// reading zeros outside the sequence. The kernel is `[K, F, filters]`, Keras' layout, so Keras
/// weights load unchanged; PyTorch's `Conv1d.weight` is `[filters, F, K]`: convert ours with
/// `permute(2, 1, 0)` and PyTorch's to ours with `permute(2, 1, 0)` as well; the bias is
/// `[filters]` in both. Output lengths follow Keras (with `K' = (K - 1) * d + 1`):
/// - ``Padding-swift.enum/valid``: `OT = (T - K') / s + 1`, the input at least `K'` long;
/// - ``Padding-swift.enum/same``: `OT = ceil(T / s)`, padded as TensorFlow pads (the odd cell after);
/// - ``Padding-swift.enum/causal``: `K' - 1` zeros before the sequence, then valid, so
///   `OT = ceil(T / s)` and output `t` sees no input after `t * s` (WaveNet-style).
///
/// As in Keras, strides above 1 together with dilation above 1 are rejected.
///
/// Parameters, created by ``build(inputShape:generator:)``: `"<name>.kernel"` (drawn from
/// ``kernelInitializer``) and, with ``useBias``, `"<name>.bias"` (zeros).
///
/// **Cost.** Forward is `Tensor.conv2D` on the sequences viewed as `[B, 1, T, F]` with the kernel
/// viewed as `[1, K, F, filters]` (no copies): direct kernels for small kernels (`K * F` rows,
/// up to 128 filters), im2col + GEMM otherwise, `2 * B * OT * K * F * filters` flops; then one
/// fused pass for the bias and a linear, relu, leaky relu, sigmoid or tanh activation. Causal
/// padding first copies the input with its zeros in front (one pass over the input). A
/// training-mode forward keeps the input and the output (and, for gelu and elu, the
/// pre-activation); ``backward(_:)`` runs `Tensor.conv2DBackward` (about twice the forward flops;
/// a model's first layer skips the input gradient, half of that).
///
/// ```swift
/// let conv = Conv1D(filters: 64, kernelSize: 9, padding: .same, activation: .relu)
/// var g = SeededGenerator(seed: 1)
/// try conv.build(inputShape: [200, 4], generator: &g)   // [200, 64]; 2,368 weights
/// ```
public final class Conv1D: ConvolutionLayer {
    /// How a ``Conv1D`` treats the ends of a sequence (Keras' `padding`): ``valid``, ``same``
    /// or ``causal``; the output lengths are in the type's description.
    public enum Padding: String, Sendable, Codable {
        /// No padding: every window lies inside the sequence.
        case valid
        /// Zeros on both ends (the odd one after) so that `OT = ceil(T / s)`.
        case same
        /// `(K - 1) * d` zeros before the sequence only: an output never sees later inputs.
        case causal
    }

    /// `"Conv1D"`, Keras' class name (Keras also exports it as `Convolution1D`; the registry
    /// accepts both).
    public static let typeName = "Conv1D"
    /// Whether training updates the kernel and bias (Keras' `trainable`); see ``Layer/trainable``.
    public var trainable = true { didSet { for p in parameters { p.isTrainable = trainable } } }

    /// The layer's name; renaming a built layer renames its parameters (`"<name>.kernel"`).
    public var name: String { didSet { nameParameters() } }
    /// Output channels `C`.
    public let filters: Int
    /// `K`, the kernel's length in steps before dilation.
    public let kernelSize: Int
    /// `s`, the step between windows.
    public let strides: Int
    /// How the ends are treated; see ``Padding-swift.enum``.
    public let padding: Padding
    /// `d`, the step between kernel taps (Keras `dilation_rate`).
    public let dilation: Int
    /// Whether a `[C]` bias is added.
    public let useBias: Bool
    /// The function applied after the bias (`.linear`, Keras' default, applies none).
    public let activation: ActivationFunction
    /// How the kernel is filled at build: `.glorotUniform` (Keras' default), with Keras' fans
    /// for `[K, F, C]` (`K * F` in, `K * C` out).
    public let kernelInitializer: Initializer

    /// The kernel `[K, F, C]`, or nil before `build`.
    public internal(set) var kernel: Parameter?
    /// The bias `[C]`, or nil before `build` or without ``useBias``.
    public internal(set) var bias: Parameter?
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public internal(set) var builtInputShape: [Int]?

    /// The training-mode forward passes: each input as the convolution read it, `[B, 1, T', F]`
    /// (padded when causal), with the caller's shape `[B, T, F]` and the output `[B, OT, C]`.
    var tape = Tape<ActivationRecord>()

    /// A 1-D convolution layer; weights are created by ``build(inputShape:generator:)``.
    ///
    /// - Parameters:
    ///   - filters: output channels, at least 1.
    ///   - kernelSize: `K`, at least 1.
    ///   - strides: `s`, at least 1.
    ///   - padding: `.valid` (Keras' default), `.same` or `.causal`.
    ///   - dilation: `d` (Keras `dilation_rate`), at least 1; above 1 only with stride 1.
    ///   - useBias: whether to add a bias (initialised to zeros).
    ///   - activation: the function applied after the bias, any ``ActivationFunction``.
    ///   - kernelInitializer: any ``Initializer``; `.glorotUniform` by default, as Keras.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: the values are in the ranges above (``init(config:)`` throws for them
    ///   instead); the message names the offending value.
    public init(filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid, dilation: Int = 1,
                useBias: Bool = true, activation: ActivationFunction = .linear,
                kernelInitializer: Initializer = .glorotUniform, name: String = "") {
        let problem = Conv1D.problem(filters: filters, kernelSize: kernelSize, strides: strides, dilation: dilation)
        neuritePrecondition(problem == nil, "Conv1D: \(problem ?? "")")
        self.filters = filters
        self.kernelSize = kernelSize
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.useBias = useBias
        self.activation = activation
        self.kernelInitializer = kernelInitializer
        self.name = name
    }

    /// What is wrong with a configuration, or nil when it is usable.
    private static func problem(filters: Int, kernelSize: Int, strides: Int, dilation: Int) -> String? {
        if filters < 1 { return "filters \(filters) must be at least 1" }
        if kernelSize < 1 { return "kernel size \(kernelSize) must be at least 1" }
        if strides < 1 { return "strides \(strides) must be at least 1" }
        if dilation < 1 { return "dilation rate \(dilation) must be at least 1" }
        if strides > 1 && dilation > 1 {
            return "strides \(strides) with dilation rate \(dilation): strides > 1 together with dilation_rate > 1 is not supported (as in Keras)"
        }
        return nil
    }

    /// Keras' configuration keys: `name`, `filters`, `kernel_size`, `strides`, `padding`,
    /// `data_format` (always `"channels_last"`), `dilation_rate`, `activation`, `use_bias`,
    /// `kernel_initializer`; sizes are one-element lists (`.ints([9])`) as Keras writes them,
    /// padding is `"valid"`, `"same"` or `"causal"`, and the activation is its Keras name.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        convolutionConfig([
            "kernel_size": .ints([kernelSize]),
            "strides": .ints([strides]),
            "padding": .string(padding.rawValue),
            "dilation_rate": .ints([dilation]),
        ])
    }

    /// Rebuilds an unbuilt layer from ``config``. `filters` and `kernel_size` are required; the
    /// other keys take Keras' defaults when missing, and a size may be `n` or `[n]`. Keras keys
    /// Neurite does not implement are accepted only with their default value (`groups` 1,
    /// `bias_initializer` `"zeros"`, regularisers and constraints null, `trainable` true). Throws
    /// `LayerError` naming the layer, the key and the value for a missing, ill-typed, out-of-range
    /// or unimplemented entry, and for strides above 1 with dilation above 1.
    public convenience init(config: [String: ConfigValue]) throws {
        let type = Conv1D.typeName
        let filters = try ConvolutionConfig.filters(config, of: type)
        let kernelSize = try SequenceLayerConfig.single(config, "kernel_size", of: type)
        let strides = try SequenceLayerConfig.optionalSingle(config, "strides", of: type) ?? 1
        let dilation = try SequenceLayerConfig.optionalSingle(config, "dilation_rate", of: type) ?? 1
        let padding: Padding
        if let text = try SequenceLayerConfig.paddingText(config, of: type) {
            guard let value = Padding(rawValue: text) else {
                throw LayerError("\(type) config has padding \"\(text)\"; expected \"valid\", \"same\" or \"causal\"")
            }
            padding = value
        } else {
            padding = .valid
        }
        let (useBias, activation, initializer) = try ConvolutionConfig.options(config, of: type)
        if let problem = Conv1D.problem(filters: filters, kernelSize: kernelSize, strides: strides, dilation: dilation) {
            throw LayerError("\(type) config: \(problem)")
        }
        self.init(filters: filters, kernelSize: kernelSize, strides: strides, padding: padding, dilation: dilation,
                  useBias: useBias, activation: activation, kernelInitializer: initializer,
                  name: try SpatialLayerConfig.name(config, of: type))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `(K - 1) * d + 1`, the kernel's reach in steps.
    private var dilatedKernelSize: Int { (kernelSize - 1) * dilation + 1 }

    /// `[OT, filters]` for a per-sample input `[T, F]`. Throws `LayerError` naming the layer and
    /// the shape when the input is not rank 2, is empty, is shorter than the dilated kernel with
    /// `.valid` padding, or (once built) has another feature count. Any `T` is accepted once
    /// built: the weights depend only on `F`.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 2 else {
            throw LayerError("\(label) needs a per-sample input [T, F], got \(inputShape)")
        }
        guard inputShape[1] >= 1 else {
            throw LayerError("\(label) needs at least one input feature, got input \(inputShape)")
        }
        try checkBuiltChannels(inputShape, "features")
        // Same and causal padding both give `ceil(T / s)`, as TensorCore's `.same` does.
        guard let length = SpatialLayerConfig.outputExtent(input: inputShape[0], window: kernelSize, stride: strides,
                                                           dilation: dilation, padding: padding == .valid ? .valid : .same)
        else {
            throw LayerError("\(label) input \(inputShape) is too short for its \(dilatedKernelSize)-step (dilated) kernel with \(padding.rawValue) padding")
        }
        return [length, filters]
    }

    /// Creates the kernel `[K, F, filters]` from ``kernelInitializer`` (drawing from
    /// `generator`) and the zero bias, and returns the output shape. Building again with the same
    /// input shape keeps the weights; another shape throws `LayerError`, as does an input that
    /// ``outputShape(for:)`` rejects.
    @discardableResult
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try buildParameters(inputShape: inputShape, kernelShape: { [kernelSize, $0, filters] }, generator: &generator)
    }

    /// The 2-D padding the convolution of the (already causally padded) input runs with.
    private var imagePadding: TensorCore.Padding { padding == .same ? .same : .valid }

    /// Convolves a batch `[B, T, F]` into `[B, OT, filters]`. Any `T` the kernel fits is
    /// accepted. With `training: true` it keeps what ``backward(_:)`` needs.
    /// - Precondition: the layer is built, `input` is `[B, T, F]` with the built `F`, and with
    ///   `.valid` padding `T` is at least the dilated kernel's length; the message names the
    ///   layer and both shapes.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let kernel = builtKernel("forward")
        let k = kernel.value
        neuritePrecondition(input.rank == 3 && input.shape[2] == k.shape[1],
                            "\(label) forward: input \(input.shape) does not match [B, T, \(k.shape[1])] (kernel \(k.shape))")
        neuritePrecondition(input.shape[1] >= (padding == .valid ? dilatedKernelSize : 1),
                            "\(label) forward: input \(input.shape) is shorter than its \(dilatedKernelSize)-step (dilated) kernel with \(padding.rawValue) padding")
        let (batch, length, features) = (input.shape[0], input.shape[1], input.shape[2])
        let image = padding == .causal
            ? Conv1D.leftPadded(input, by: dilatedKernelSize - 1).reshaped([batch, 1, length + dilatedKernelSize - 1, features])
            : input.reshaped([batch, 1, length, features])
        // The bias goes in with the activation: one pass over the output instead of two.
        var output = Tensor.conv2D(image, kernel: k.reshaped([1, kernelSize, features, filters]), bias: nil,
                                   strides: (1, strides), padding: imagePadding, dilation: (1, dilation))
        output = output.reshaped([batch, output.shape[2], filters])
        activate(&output, input: image, inputShape: input.shape, training: training)
        return output
    }

    /// Accumulates the kernel and bias gradients for the matching training-mode forward pass and
    /// returns the input gradient `[B, T, F]`. The output gradient is first taken back through
    /// the activation (for relu, masked where the output was zero). Calling it twice
    /// accumulates twice.
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        backward(outputGradient, inputGradient: true)!
    }

    /// The backward pass; with `inputGradient: false` only the parameters' gradients (nil returned).
    private func backward(_ outputGradient: Tensor, inputGradient: Bool) -> Tensor? {
        let kernel = builtKernel("backward")
        let (saved, dz) = deactivate(outputGradient)
        let (batch, outputLength) = (dz.shape[0], dz.shape[1])
        let features = saved.inputShape[2]
        let gradients = Tensor.conv2DBackward(input: saved.input, kernel: kernel.value.reshaped([1, kernelSize, features, filters]),
                                              outputGradient: dz.reshaped([batch, 1, outputLength, filters]),
                                              strides: (1, strides), padding: imagePadding, dilation: (1, dilation),
                                              needsInputGradient: inputGradient)
        kernel.accumulateGradient(gradients.kernel.reshaped([kernelSize, features, filters]))
        bias?.accumulateGradient(gradients.bias)
        guard let dx = gradients.input else { return nil }
        if padding == .causal { return Conv1D.droppingFirst(dilatedKernelSize - 1, of: dx, shape: saved.inputShape) }
        return dx.reshaped(saved.inputShape)
    }

    /// `[B, T, F]` with `count` zero steps put before each sequence: `[B, count + T, F]`.
    private static func leftPadded(_ x: Tensor, by count: Int) -> Tensor {
        let (batch, length, features) = (x.shape[0], x.shape[1], x.shape[2])
        let row = length * features, paddedRow = (length + count) * features
        return x.withUnsafeBufferPointer { src in
            Tensor(shape: [batch, length + count, features], unsafeUninitialized: { dst in
                for b in 0..<batch {
                    let out = dst.baseAddress! + b * paddedRow
                    out.update(repeating: 0, count: count * features)
                    (out + count * features).update(from: src.baseAddress! + b * row, count: row)
                }
            })
        }
    }

    /// The gradient of a causally padded input `[B, 1, count + T, F]` with the first `count`
    /// steps of each sequence (the padding) dropped: `shape`, `[B, T, F]`.
    private static func droppingFirst(_ count: Int, of x: Tensor, shape: [Int]) -> Tensor {
        let (batch, length, features) = (shape[0], shape[1], shape[2])
        let row = length * features, paddedRow = (length + count) * features
        return x.withUnsafeBufferPointer { src in
            Tensor(shape: shape, unsafeUninitialized: { dst in
                for b in 0..<batch {
                    (dst.baseAddress! + b * row).update(from: src.baseAddress! + b * paddedRow + count * features, count: row)
                }
            })
        }
    }
}

extension Conv1D: ParameterGradientBackward {
    /// The first layer of a model: the kernel and bias gradients without the input gradient.
    func backwardParameterGradients(_ outputGradient: Tensor) { _ = backward(outputGradient, inputGradient: false) }
}
