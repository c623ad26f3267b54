import Optimizers
import TensorCore

/// A transposed 2-D convolution over NHWC images (Keras `Conv2DTranspose`, sometimes called a
/// deconvolution): `[B, H, W, Cin]` to `[B, OH, OW, filters]`, the adjoint of a ``Conv2D`` that
/// would map `[OH, OW, filters]` back to `[H, W, Cin]`.
///
/// The kernel is `[KH, KW, filters, Cin]`, Keras' layout (output channels before input channels,
/// the reverse of ``Conv2D``), so Keras weights load unchanged; PyTorch's `ConvTranspose2d.weight`
/// is `[Cin, Cout, KH, KW]`: convert ours with `permute(3, 2, 0, 1)`. Output extents follow
/// Keras' rules (no `output_padding`, dilation 1):
/// - `.valid`: `OH = H * sh + max(KH - sh, 0)`;
/// - `.same`: `OH = H * sh`;
/// and the output's padding is the one a `.same` convolution of `OH` would use, as
/// TensorFlow's `conv2d_transpose` does.
///
/// **Cost.** Forward is the input gradient of the convolution this layer reverses
/// (`Tensor.conv2DBackwardInput`); backward is that convolution's kernel gradient
/// (`Tensor.conv2DBackwardKernel`) and its forward pass (`Tensor.conv2D`): about twice the
/// forward flops, through the same kernels as ``Conv2D`` (direct ones for few channels, chunked
/// im2col + GEMM otherwise). With strides, where the direct kernels apply, the forward pass and
/// the kernel gradient run as one stride-1 convolution whose output channels are the
/// `sh * sw` output phases (for 3x3 stride 2: 2x2 taps, 9 of 16 real), which replaces a
/// narrow GEMM and a scatter. A training-mode forward keeps its input and output.
///
/// ```swift
/// let up = Conv2DTranspose(filters: 8, kernelSize: (3, 3), strides: (2, 2), padding: .same)
/// var g = SeededGenerator(seed: 1)
/// try up.build(inputShape: [7, 7, 16], generator: &g)   // [14, 14, 8]
/// ```
public final class Conv2DTranspose: ConvolutionLayer {
    /// `"Conv2DTranspose"`, Keras' class name.
    public static let typeName = "Conv2DTranspose"
    /// Whether training updates the kernel and bias (Keras' `trainable`); see ``Layer/trainable``.
    public var trainable = true { didSet { for p in parameters { p.isTrainable = trainable } } }

    /// The layer's name; renaming a built layer renames its parameters (`"<name>.kernel"`).
    public var name: String { didSet { nameParameters() } }
    /// Output channels.
    public let filters: Int
    /// `(KH, KW)`.
    public let kernelSize: (Int, Int)
    /// `(sh, sw)`: the output grows by these factors.
    public let strides: (Int, Int)
    /// `.valid` or `.same`; see the type's description for the output extents.
    public let padding: Padding
    /// Whether a `[filters]` bias is added.
    public let useBias: Bool
    /// The function applied after the bias.
    public let activation: ActivationFunction
    /// How the kernel is filled at build (`.glorotUniform`, Keras' default).
    public let kernelInitializer: Initializer

    /// The kernel `[KH, KW, filters, Cin]`, or nil before `build`.
    public internal(set) var kernel: Parameter?
    /// The bias `[filters]`, or nil before `build` or without ``useBias``.
    public internal(set) var bias: Parameter?
    /// The per-sample input shape `[H, W, Cin]` the layer was built for.
    public internal(set) var builtInputShape: [Int]?

    /// What the training-mode forward passes kept: the input, the output and, when the
    /// activation's derivative needs it, the pre-activation.
    var tape = Tape<ActivationRecord>()

    /// A transposed convolution; weights are created by ``build(inputShape:generator:)``.
    /// - Precondition: `filters`, kernel extents and strides are at least 1.
    public init(filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                useBias: Bool = true, activation: ActivationFunction = .linear,
                kernelInitializer: Initializer = .glorotUniform, name: String = "") {
        let problem = Conv2DTranspose.problem(filters: filters, kernelSize: kernelSize, strides: strides)
        neuritePrecondition(problem == nil, "Conv2DTranspose: \(problem ?? "")")
        self.filters = filters
        self.kernelSize = kernelSize
        self.strides = strides
        self.padding = padding
        self.useBias = useBias
        self.activation = activation
        self.kernelInitializer = kernelInitializer
        self.name = name
    }

    private static func problem(filters: Int, kernelSize: (Int, Int), strides: (Int, Int)) -> String? {
        if filters < 1 { return "filters \(filters) must be at least 1" }
        if let p = SpatialLayerConfig.pairProblem("kernel size", kernelSize) { return p }
        return SpatialLayerConfig.pairProblem("strides", strides)
    }

    /// Keras' keys: `name`, `filters`, `kernel_size`, `strides`, `padding`, `data_format`,
    /// `dilation_rate` (always `[1, 1]`), `output_padding` (always null), `activation`,
    /// `use_bias`, `kernel_initializer`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        convolutionConfig([
            "kernel_size": .ints([kernelSize.0, kernelSize.1]), "strides": .ints([strides.0, strides.1]),
            "padding": .string(padding.rawValue), "dilation_rate": .ints([1, 1]), "output_padding": .null,
        ])
    }

    /// Rebuilds an unbuilt layer from ``config``. Throws `LayerError` for a missing or ill-typed
    /// entry, a dilation other than 1 or an `output_padding`, which Neurite does not support.
    public convenience init(config: [String: ConfigValue]) throws {
        let type = Self.typeName
        let filters = try ConvolutionConfig.filters(config, extraKeys: ["output_padding"], of: type)
        let kernelSize = try SpatialLayerConfig.pair(config, "kernel_size", of: type)
        let strides = try SpatialLayerConfig.optionalPair(config, "strides", of: type) ?? (1, 1)
        if let dilation = try SpatialLayerConfig.optionalPair(config, "dilation_rate", of: type), dilation != (1, 1) {
            throw LayerError("\(type) config has dilation_rate (\(dilation.0), \(dilation.1)); Neurite supports only (1, 1)")
        }
        switch config["output_padding"] {
        case nil, .null?: break
        case let other?: throw LayerError("\(type) config has output_padding \(other); Neurite supports only null")
        }
        let padding = try SpatialLayerConfig.padding(config, of: type)
        let (useBias, activation, initializer) = try ConvolutionConfig.options(config, of: type)
        if let problem = Conv2DTranspose.problem(filters: filters, kernelSize: kernelSize, strides: strides) {
            throw LayerError("\(type) config: \(problem)")
        }
        self.init(filters: filters, kernelSize: kernelSize, strides: strides, padding: padding, useBias: useBias,
                  activation: activation, kernelInitializer: initializer, name: try config.optionalName(of: type))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// Keras' output extent along one axis.
    private func extent(_ input: Int, kernel: Int, stride: Int) -> Int {
        padding == .same ? input * stride : input * stride + Swift.max(kernel - stride, 0)
    }

    /// `[OH, OW, filters]` for `[H, W, Cin]`; throws for another rank, an empty extent, or (once
    /// built) another channel count.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 >= 1 }) else {
            throw LayerError("\(label) needs a per-sample input [H, W, C] with positive extents, got \(inputShape)")
        }
        try checkBuiltChannels(inputShape, "channels")
        return [extent(inputShape[0], kernel: kernelSize.0, stride: strides.0),
                extent(inputShape[1], kernel: kernelSize.1, stride: strides.1), filters]
    }

    /// Creates the kernel `[KH, KW, filters, Cin]` and the zero bias; building again with the
    /// same shape keeps the weights, another throws.
    @discardableResult
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try buildParameters(inputShape: inputShape, kernelShape: { [kernelSize.0, kernelSize.1, filters, $0] },
                            generator: &generator)
    }

    /// The geometry of the convolution this layer is the adjoint of, for an input `H x W`:
    /// from the output `[OH, OW, filters]` back to `[H, W]`.
    private func geometry(height: Int, width: Int) -> Conv2DGeometry {
        Conv2DGeometry(inputHeight: extent(height, kernel: kernelSize.0, stride: strides.0),
                       inputWidth: extent(width, kernel: kernelSize.1, stride: strides.1), channels: filters,
                       kernelHeight: kernelSize.0, kernelWidth: kernelSize.1, strides: strides, padding: padding)
    }

    /// `[B, H, W, Cin]` to `[B, OH, OW, filters]`.
    /// - Precondition: the layer is built and the input is `[B, H, W, Cin]` with the built `Cin`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let kernel = builtKernel("forward")
        let k = kernel.value
        neuritePrecondition(input.rank == 4 && input.shape[3] == k.shape[3] && input.shape[1] >= 1 && input.shape[2] >= 1,
                            "\(label) forward: input \(input.shape) does not match [B, H, W, \(k.shape[3])] (kernel \(k.shape))")
        // The transposed convolution is the input gradient of the convolution it reverses, whose
        // input is this layer's output; with strides, TensorCore runs it as one stride-1 direct
        // convolution per output phase where it can (no scatter), else as that input gradient.
        let g = geometry(height: input.shape[1], width: input.shape[2])
        let outputShape = [input.shape[0], g.inputHeight, g.inputWidth, filters]
        if activation == .relu || activation == .linear {
            // Bias and relu in the phases' store (else in one pass after it): the bits of `activate`.
            let output = Tensor.transposedConvolution(input, kernel: k, outputShape: outputShape, strides: strides,
                                                      padding: padding, biasAfterwards: bias?.value,
                                                      relu: activation == .relu)
            if training {
                tape.push(ActivationRecord(input: input, inputShape: input.shape, preActivation: nil, output: output))
            }
            return output
        }
        var output = Tensor.transposedConvolution(input, kernel: k, outputShape: outputShape, strides: strides,
                                                  padding: padding)
        activate(&output, input: input, inputShape: input.shape, training: training)
        return output
    }

    /// Accumulates the kernel and bias gradients and returns the input gradient `[B, H, W, Cin]`.
    /// - Precondition: a training-mode forward ran, and the gradient has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let kernel = builtKernel("backward")
        let saved: ActivationRecord, dz: Tensor
        var biasGradient: Tensor?
        if activation == .relu && bias != nil {
            // Relu's mask and the bias gradient in one pass over the gradient (the masked values
            // have the bits of `deactivate`'s; the bias sums are added in another order).
            saved = popRecord(matching: outputGradient)
            (dz, biasGradient) = Tensor.reluBackwardAndChannelSums(gradient: outputGradient, output: saved.output)
        } else {
            (saved, dz) = deactivate(outputGradient)
        }
        // The reversed convolution's kernel gradient (its input is dz, its output gradient this
        // layer's input) and its forward pass (the input gradient here).
        kernel.accumulateGradient(Tensor.transposedConvolutionKernelGradient(input: saved.input, outputGradient: dz,
                                                                             kernelShape: kernel.value.shape,
                                                                             strides: strides, padding: padding))
        if let bias { bias.accumulateGradient(biasGradient ?? dz.reshaped([-1, filters]).sum(alongAxis: 0)) }
        return Tensor.conv2D(dz, kernel: kernel.value, strides: strides, padding: padding)
    }
}

