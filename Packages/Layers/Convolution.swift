import Optimizers
import TensorCore

// The convolution layer, and the configuration helpers it shares with the pooling layers
// (window pairs, padding, output extents, error labels).

// MARK: - Shared configuration helpers

/// Reading and checking the configuration entries of the spatial layers (convolution, pooling):
/// integer pairs, padding, data format, and the output extent of a window along one axis.
/// Internal: the layers' public API is their initialisers and `config`.
enum SpatialLayerConfig {
    /// How error messages name a layer: `Conv2D "conv_1"`, or just the type when unnamed.
    static func label(_ typeName: String, _ name: String) -> String {
        name.isEmpty ? typeName : "\(typeName) \"\(name)\""
    }

    /// The pair at `key`: `[a, b]`, or a single integer `a` meaning `(a, a)` (Keras accepts both).
    static func pair(_ config: [String: ConfigValue], _ key: String, of type: String) throws -> (Int, Int) {
        switch config[key] {
        case .ints(let v)? where v.count == 2: return (v[0], v[1])
        case .int(let v)?: return (v, v)
        default:
            throw LayerError("\(type) config needs \"\(key)\" as two integers, got \(config[key].map { "\($0)" } ?? "nothing")")
        }
    }

    /// Like `pair`, but a missing key or `null` gives nil (pooling strides default to the pool size).
    static func optionalPair(_ config: [String: ConfigValue], _ key: String, of type: String) throws -> (Int, Int)? {
        switch config[key] {
        case nil, .null?: return nil
        default: return try pair(config, key, of: type)
        }
    }

    /// `"valid"` or `"same"` at `"padding"` (case-insensitive, as Keras), `"valid"` when missing.
    static func padding(_ config: [String: ConfigValue], of type: String) throws -> Padding {
        guard config["padding"] != nil else { return .valid }
        let text = try config.string("padding", of: type)
        guard let padding = Padding(rawValue: text.lowercased()) else {
            throw LayerError("\(type) config has padding \"\(text)\"; expected \"valid\" or \"same\"")
        }
        return padding
    }

    /// Accepts a missing `"data_format"` or `"channels_last"` (Neurite images are NHWC) and
    /// throws for anything else, so a channels-first architecture is not silently misread.
    static func checkDataFormat(_ config: [String: ConfigValue], of type: String) throws {
        switch config["data_format"] {
        case nil, .null?, .string("channels_last")?: return
        case let other?:
            throw LayerError("\(type) config has data_format \(other); Neurite supports only \"channels_last\" (NHWC)")
        }
    }

    /// The layer name at `"name"`, or empty (the model assigns one) when missing.
    static func name(_ config: [String: ConfigValue], of type: String) throws -> String {
        switch config["name"] {
        case nil, .null?: return ""
        default: return try config.string("name", of: type)
        }
    }

    /// Output extent of a window along one axis (see `Padding`), or nil when the input is empty
    /// or, with `.valid`, smaller than the dilated window.
    static func outputExtent(input: Int, window: Int, stride: Int, dilation: Int, padding: Padding) -> Int? {
        guard input >= 1 else { return nil }
        let effective = (window - 1) * dilation + 1
        switch padding {
        case .valid: return input >= effective ? (input - effective) / stride + 1 : nil
        case .same: return (input + stride - 1) / stride
        }
    }

    /// A message saying what is wrong with a pair of window settings, or nil when both are at least 1.
    static func pairProblem(_ what: String, _ value: (Int, Int)) -> String? {
        value.0 >= 1 && value.1 >= 1 ? nil : "\(what) (\(value.0), \(value.1)) must be at least 1"
    }
}

// MARK: - Conv2D

/// A 2-D convolution over NHWC images (Keras `Conv2D`): `[B, H, W, Cin]` to `[B, OH, OW, filters]`,
/// `y = activation(conv(x, kernel) + bias)`.
///
/// The kernel is `[KH, KW, Cin, Cout]`, Keras' layout, so Keras weights load unchanged. PyTorch's
/// `Conv2d.weight` is `[Cout, Cin, KH, KW]`: convert ours with `permute(3, 2, 0, 1)` (NumPy:
/// `np.transpose(k, (3, 2, 0, 1))`) and PyTorch's to ours with `permute(2, 3, 1, 0)`; the bias
/// is `[Cout]` in both. Output extents follow `Padding` (`.valid`: `(H - KH') / sh + 1`,
/// `.same`: `ceil(H / sh)`, with `KH' = (KH - 1) * dh + 1`).
///
/// Parameters, created by ``build(inputShape:generator:)``: `"<name>.kernel"` (drawn from
/// ``kernelInitializer``) and, with ``useBias``, `"<name>.bias"` (zeros).
///
/// **Cost.** Forward runs `Tensor.conv2D` (direct kernels for few channels, else im2col + GEMM)
/// without a bias, then `ActivationFunction.addBiasAndActivate(_:bias:)`: one fused pass for the
/// bias and a linear, relu, leaky relu, sigmoid or tanh activation (elu, gelu and softmax take a
/// second pass). With a linear or relu activation and the direct kernels, the bias and the relu
/// are applied as each output is stored instead (the same bits, one pass fewer). A
/// training-mode forward keeps the input and the output (and, for gelu and elu, the
/// pre-activation) for ``backward(_:)``, which takes the output gradient back through the
/// activation with `ActivationFunction.backward(_:input:output:)` and then runs
/// `Tensor.conv2DBackward` (about twice the forward flops), recomputing the im2col columns rather
/// than keeping them.
///
/// ```swift
/// let conv = Conv2D(filters: 16, kernelSize: (5, 5), activation: .relu, name: "conv_1")
/// var g = SeededGenerator(seed: 1)
/// try conv.build(inputShape: [28, 28, 1], generator: &g)   // [24, 24, 16]; 416 weights
/// ```
public final class Conv2D: ConvolutionLayer {
    /// `"Conv2D"`, Keras' class name (Keras also exports it as `Convolution2D`).
    public static let typeName = "Conv2D"
    /// Whether training updates the kernel and bias (Keras' `trainable`); see ``Layer/trainable``.
    public var trainable = true { didSet { for p in parameters { p.isTrainable = trainable } } }

    /// The layer's name; renaming a built layer renames its parameters (`"<name>.kernel"`).
    public var name: String { didSet { nameParameters() } }
    /// Output channels `Cout`.
    public let filters: Int
    /// `(KH, KW)`, the kernel's extent before dilation.
    public let kernelSize: (Int, Int)
    /// `(sh, sw)`, the step between windows.
    public let strides: (Int, Int)
    /// How the border is treated; see TensorCore's `Padding`.
    public let padding: Padding
    /// `(dh, dw)`, the step between kernel taps (Keras `dilation_rate`).
    public let dilation: (Int, Int)
    /// Whether a `[Cout]` bias is added.
    public let useBias: Bool
    /// The function applied after the bias (`.linear`, Keras' default, applies none).
    public let activation: ActivationFunction
    /// How the kernel is filled at build: `.glorotUniform` (Keras' default); He initialisers
    /// suit relu networks. The same ``Initializer`` that ``Dense`` takes.
    public let kernelInitializer: Initializer

    /// The kernel `[KH, KW, Cin, Cout]`, or nil before `build`.
    public internal(set) var kernel: Parameter?
    /// The bias `[Cout]`, or nil before `build` or without ``useBias``.
    public internal(set) var bias: Parameter?
    /// The per-sample input shape `[H, W, Cin]` the layer was built for, or nil before `build`.
    public internal(set) var builtInputShape: [Int]?

    /// What the training-mode forward passes kept for ``backward(_:)``: the input, the output,
    /// and the pre-activation when the activation's derivative needs it.
    var tape = Tape<ActivationRecord>()

    /// A convolution layer; weights are created by ``build(inputShape:generator:)``.
    ///
    /// - Parameters:
    ///   - filters: output channels, at least 1.
    ///   - kernelSize: `(KH, KW)`, each at least 1.
    ///   - strides: `(sh, sw)`, each at least 1.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - dilation: `(dh, dw)`, each at least 1.
    ///   - useBias: whether to add a bias (initialised to zeros).
    ///   - activation: the function applied after the bias, any ``ActivationFunction``.
    ///   - kernelInitializer: any ``Initializer``; `.glorotUniform` by default, as Keras.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: the values are in the ranges above; the message names the offending value.
    public init(filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                dilation: (Int, Int) = (1, 1), useBias: Bool = true, activation: ActivationFunction = .linear,
                kernelInitializer: Initializer = .glorotUniform, name: String = "") {
        let problem = Conv2D.problem(filters: filters, kernelSize: kernelSize, strides: strides, dilation: dilation)
        neuritePrecondition(problem == nil, "Conv2D: \(problem ?? "")")
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
    private static func problem(filters: Int, kernelSize: (Int, Int), strides: (Int, Int), dilation: (Int, Int)) -> String? {
        if filters < 1 { return "filters \(filters) must be at least 1" }
        if let p = SpatialLayerConfig.pairProblem("kernel size", kernelSize) { return p }
        if let p = SpatialLayerConfig.pairProblem("strides", strides) { return p }
        if let p = SpatialLayerConfig.pairProblem("dilation", dilation) { return p }
        return nil
    }

    /// Keras' configuration keys: `name`, `filters`, `kernel_size`, `strides`, `padding`,
    /// `data_format` (always `"channels_last"`), `dilation_rate`, `activation`, `use_bias`,
    /// `kernel_initializer`; pairs are `.ints([a, b])`, padding is `"valid"` or `"same"`, and the
    /// activation is its Keras name (`ActivationFunction.configName`: `"relu"`, `"linear"`, ...).
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        convolutionConfig([
            "kernel_size": .ints([kernelSize.0, kernelSize.1]),
            "strides": .ints([strides.0, strides.1]),
            "padding": .string(padding.rawValue),
            "dilation_rate": .ints([dilation.0, dilation.1]),
        ])
    }

    /// Rebuilds an unbuilt layer from ``config``. `filters` and `kernel_size` are required; the
    /// other keys take Keras' defaults when missing, and a pair may also be a single integer.
    /// Throws `LayerError` naming a missing, ill-typed or out-of-range entry.
    public convenience init(config: [String: ConfigValue]) throws {
        let type = Conv2D.typeName
        let filters = try ConvolutionConfig.filters(config, of: type)
        let kernelSize = try SpatialLayerConfig.pair(config, "kernel_size", of: type)
        let strides = try SpatialLayerConfig.optionalPair(config, "strides", of: type) ?? (1, 1)
        let dilation = try SpatialLayerConfig.optionalPair(config, "dilation_rate", of: type) ?? (1, 1)
        let padding = try SpatialLayerConfig.padding(config, of: type)
        let (useBias, activation, initializer) = try ConvolutionConfig.options(config, of: type)
        if let problem = Conv2D.problem(filters: filters, kernelSize: kernelSize, strides: strides, dilation: dilation) {
            throw LayerError("\(type) config: \(problem)")
        }
        self.init(filters: filters, kernelSize: kernelSize, strides: strides, padding: padding, dilation: dilation,
                  useBias: useBias, activation: activation, kernelInitializer: initializer,
                  name: try SpatialLayerConfig.name(config, of: type))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[OH, OW, filters]` for a per-sample input `[H, W, Cin]`. Throws `LayerError` naming the
    /// layer and the shape when the input is not rank 3, has an empty extent, is smaller than the
    /// dilated kernel with `.valid` padding, or (once built) has another channel count.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3 else {
            throw LayerError("\(label) needs a per-sample input [H, W, C], got \(inputShape)")
        }
        guard inputShape[2] >= 1 else {
            throw LayerError("\(label) needs at least one input channel, got input \(inputShape)")
        }
        try checkBuiltChannels(inputShape, "channels")
        guard let oh = SpatialLayerConfig.outputExtent(input: inputShape[0], window: kernelSize.0, stride: strides.0,
                                                       dilation: dilation.0, padding: padding),
              let ow = SpatialLayerConfig.outputExtent(input: inputShape[1], window: kernelSize.1, stride: strides.1,
                                                       dilation: dilation.1, padding: padding)
        else {
            let kh = (kernelSize.0 - 1) * dilation.0 + 1, kw = (kernelSize.1 - 1) * dilation.1 + 1
            throw LayerError("\(label) input \(inputShape) is too small for its \(kh)x\(kw) (dilated) kernel with \(padding.rawValue) padding")
        }
        return [oh, ow, filters]
    }

    /// Creates the kernel `[KH, KW, Cin, filters]` from ``kernelInitializer`` (drawing from
    /// `generator`) and the zero bias, and returns the output shape. Building again with the same
    /// input shape keeps the weights; another shape throws `LayerError`, as does an input that
    /// ``outputShape(for:)`` rejects.
    @discardableResult
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try buildParameters(inputShape: inputShape, kernelShape: { [kernelSize.0, kernelSize.1, $0, filters] },
                            generator: &generator)
    }

    /// Convolves a batch `[B, H, W, Cin]` into `[B, OH, OW, filters]`. Any `H x W` the kernel
    /// fits is accepted (the weights depend only on `Cin`). With `training: true` it keeps what
    /// ``backward(_:)`` needs (see the type's description).
    /// - Precondition: the layer is built and `input` is `[B, H, W, Cin]` with the built `Cin`;
    ///   the message names the layer and both shapes.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let kernel = builtKernel("forward")
        neuritePrecondition(input.rank == 4 && input.shape[3] == kernel.value.shape[2],
                            "\(label) forward: input \(input.shape) does not match [B, H, W, \(kernel.value.shape[2])] (kernel \(kernel.value.shape))")
        switch activation {
        case .relu, .linear:
            // Bias and relu in the convolution's store where the direct kernels run (else in
            // one pass after it): the same bits as `activate` below, without its pass.
            let output = Tensor.conv2D(input, kernel: kernel.value, biasAfterwards: bias?.value,
                                       relu: activation == .relu, strides: strides, padding: padding, dilation: dilation)
            if training {
                tape.push(ActivationRecord(input: input, inputShape: input.shape, preActivation: nil, output: output))
            }
            return output
        default:
            // The bias goes in with the activation: one pass over the output instead of two.
            var output = Tensor.conv2D(input, kernel: kernel.value, bias: nil, strides: strides, padding: padding,
                                       dilation: dilation)
            activate(&output, input: input, inputShape: input.shape, training: training)
            return output
        }
    }

    /// Accumulates the kernel and bias gradients for the last training-mode forward pass and
    /// returns the input gradient `[B, H, W, Cin]`. The output gradient is first taken back
    /// through the activation (for relu, masked where the output was zero). Calling it twice
    /// accumulates twice.
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        backward(outputGradient, inputGradient: true)!
    }

    /// The backward pass; with `inputGradient: false` only the parameters' gradients (nil returned).
    private func backward(_ outputGradient: Tensor, inputGradient: Bool) -> Tensor? {
        let kernel = builtKernel("backward")
        if activation == .relu {
            // Relu's mask applied in the pass that sums the bias gradient: the same bits as
            // `deactivate` then `conv2DBackward`, one pass over the gradient fewer.
            let saved = popRecord(matching: outputGradient)
            let gradients = Tensor.conv2DBackward(input: saved.input, kernel: kernel.value, outputGradient: outputGradient,
                                                  reluOutput: saved.output, strides: strides, padding: padding,
                                                  dilation: dilation, needsInputGradient: inputGradient)
            kernel.accumulateGradient(gradients.kernel)
            bias?.accumulateGradient(gradients.bias)
            return gradients.input
        }
        let (saved, gradient) = deactivate(outputGradient)
        let gradients = Tensor.conv2DBackward(input: saved.input, kernel: kernel.value, outputGradient: gradient,
                                              strides: strides, padding: padding, dilation: dilation,
                                              needsInputGradient: inputGradient)
        kernel.accumulateGradient(gradients.kernel)
        bias?.accumulateGradient(gradients.bias)
        return gradients.input
    }
}

extension Conv2D: ParameterGradientBackward {
    /// The first layer of a model: the kernel and bias gradients without the input gradient.
    func backwardParameterGradients(_ outputGradient: Tensor) { _ = backward(outputGradient, inputGradient: false) }
}
