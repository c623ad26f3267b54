import Optimizers
import TensorCore

// The 2-D pooling layers over NHWC images. They have no weights; forward and backward run
// TensorCore's pooling kernels, and a training-mode forward keeps only what backward needs
// (max pooling: the winners' indices; average pooling: the input shape).

/// Pool size, strides and padding of a pooling layer, with the configuration, shape inference
/// and error messages the windowed pooling layers share.
private struct PoolingWindow {
    var poolSize: (Int, Int)
    var strides: (Int, Int)
    var padding: Padding

    /// A window; `strides` nil means the pool size (windows do not overlap), as in Keras.
    /// Returns nil with a message when a value is below 1.
    static func make(poolSize: (Int, Int), strides: (Int, Int)?, padding: Padding) -> (PoolingWindow?, String?) {
        if let p = SpatialLayerConfig.pairProblem("pool size", poolSize) { return (nil, p) }
        if let strides, let p = SpatialLayerConfig.pairProblem("strides", strides) { return (nil, p) }
        return (PoolingWindow(poolSize: poolSize, strides: strides ?? poolSize, padding: padding), nil)
    }

    /// The keys a 2-D pooling layer's `init(config:)` reads.
    static let configKeys: Set<String> = ["name", "pool_size", "strides", "padding", "data_format"]

    /// A window from Keras' `pool_size`, `strides` (null: the pool size) and `padding` keys.
    static func fromConfig(_ config: [String: ConfigValue], of type: String) throws -> PoolingWindow {
        try SpatialLayerConfig.checkDataFormat(config, of: type)
        let poolSize = try SpatialLayerConfig.optionalPair(config, "pool_size", of: type) ?? (2, 2)
        let strides = try SpatialLayerConfig.optionalPair(config, "strides", of: type)
        let (window, problem) = make(poolSize: poolSize, strides: strides,
                                     padding: try SpatialLayerConfig.padding(config, of: type))
        guard let window else { throw LayerError("\(type) config: \(problem ?? "")") }
        return window
    }

    /// Keras' keys (strides always written out, as Keras does once it has resolved them).
    func config(name: String) -> [String: ConfigValue] {
        [
            "name": .string(name),
            "pool_size": .ints([poolSize.0, poolSize.1]),
            "strides": .ints([strides.0, strides.1]),
            "padding": .string(padding.rawValue),
            "data_format": .string("channels_last"),
        ]
    }

    /// `[OH, OW, C]` for `[H, W, C]`, or a `LayerError` naming the layer (`label`) and the shape.
    func outputShape(for inputShape: [Int], label: String) throws -> [Int] {
        guard inputShape.count == 3 else {
            throw LayerError("\(label) needs a per-sample input [H, W, C], got \(inputShape)")
        }
        guard inputShape[2] >= 1 else {
            throw LayerError("\(label) needs at least one channel, got input \(inputShape)")
        }
        guard let oh = SpatialLayerConfig.outputExtent(input: inputShape[0], window: poolSize.0, stride: strides.0,
                                                       dilation: 1, padding: padding),
              let ow = SpatialLayerConfig.outputExtent(input: inputShape[1], window: poolSize.1, stride: strides.1,
                                                       dilation: 1, padding: padding)
        else {
            throw LayerError("\(label) input \(inputShape) is too small for its \(poolSize.0)x\(poolSize.1) pool with \(padding.rawValue) padding")
        }
        return [oh, ow, inputShape[2]]
    }

    /// Checks a forward input against the built shape's channel count, naming the layer and shapes.
    static func checkInput(_ input: Tensor, builtInputShape: [Int]?, label: String) {
        neuritePrecondition(builtInputShape != nil, "\(label) forward before build(inputShape:generator:)")
        let channels = builtInputShape![2]
        neuritePrecondition(input.rank == 4 && input.shape[3] == channels,
                            "\(label) forward: input \(input.shape) does not match [B, H, W, \(channels)] (built for \(builtInputShape!))")
    }
}

/// Records the built input shape of a weightless layer, throwing when it is built again for
/// another shape (the `Layer` contract). Returns the output shape. Shared with Pooling1D.swift.
func buildWeightless(_ builtInputShape: inout [Int]?, inputShape: [Int], output: [Int], label: String) throws -> [Int] {
    if let built = builtInputShape, built != inputShape {
        throw LayerError("\(label) was built for input \(built), cannot build again for \(inputShape)")
    }
    builtInputShape = inputShape
    return output
}

// MARK: - MaxPool2D

/// Max pooling over NHWC images (Keras `MaxPooling2D`): `[B, H, W, C]` to `[B, OH, OW, C]`,
/// each output the largest input in its `poolSize` window, per channel.
///
/// Output extents follow TensorCore's `Padding` with the pool as the window; `.same` padding cells never
/// win. Ties go to the first cell of the window in row-major order, and that cell alone receives
/// the gradient. A training-mode forward keeps the winners' flat indices (4 bytes per output
/// element) for ``backward(_:)``, which scatters the output gradient onto them (overlapping
/// windows add). No parameters.
public final class MaxPool2D: Layer {
    /// `"MaxPooling2D"`, Keras' class name (Keras also exports it as `MaxPool2D`; a loader
    /// should accept both).
    public static let typeName = "MaxPooling2D"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true

    /// The layer's name; the model assigns one when empty.
    public var name: String
    /// `(PH, PW)`, the window.
    public var poolSize: (Int, Int) { window.poolSize }
    /// `(sh, sw)`, the step between windows (the pool size unless given).
    public var strides: (Int, Int) { window.strides }
    /// How the border is treated; see TensorCore's `Padding`.
    public var padding: Padding { window.padding }
    /// The per-sample input shape `[H, W, C]` the layer was built for, or nil before `build`.
    public private(set) var builtInputShape: [Int]?

    private let window: PoolingWindow
    /// The winners' flat indices and the input shape of the last training-mode forward pass.
    private var saved: (indices: [Int32], inputShape: [Int])?

    private var label: String { SpatialLayerConfig.label(MaxPool2D.typeName, name) }

    /// A max pooling layer.
    /// - Parameters:
    ///   - poolSize: `(PH, PW)`, each at least 1.
    ///   - strides: `(sh, sw)`, each at least 1; nil (Keras' default) means `poolSize`.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: sizes and strides are at least 1; the message names the value.
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid,
                name: String = "") {
        let (window, problem) = PoolingWindow.make(poolSize: poolSize, strides: strides, padding: padding)
        neuritePrecondition(window != nil, "MaxPool2D: \(problem ?? "")")
        self.window = window!
        self.name = name
    }

    private init(window: PoolingWindow, name: String) {
        self.window = window
        self.name = name
    }

    /// Keras' keys: `name`, `pool_size`, `strides`, `padding`, `data_format` (`"channels_last"`).
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] { window.config(name: name) }

    /// Rebuilds the layer from ``config``; missing keys take Keras' defaults (`pool_size` `[2, 2]`,
    /// `strides` null = the pool size, `padding` `"valid"`). Throws `LayerError` for an ill-typed
    /// or out-of-range entry.
    public convenience init(config: [String: ConfigValue]) throws {
        try LayerConfigKeys.check(config, known: PoolingWindow.configKeys, of: MaxPool2D.typeName)
        let window = try PoolingWindow.fromConfig(config, of: MaxPool2D.typeName)
        self.init(window: window, name: try SpatialLayerConfig.name(config, of: MaxPool2D.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[OH, OW, C]` for `[H, W, C]`; throws `LayerError` naming the layer and the shape when the
    /// input is not rank 3, or is smaller than the pool with `.valid` padding.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try window.outputShape(for: inputShape, label: label)
    }

    /// Checks the shape and returns the output shape; there are no weights, so `generator` is
    /// unused. Building again for another shape throws.
    @discardableResult
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try buildWeightless(&builtInputShape, inputShape: inputShape,
                            output: try outputShape(for: inputShape), label: label)
    }

    /// No parameters: an empty array.
    public var parameters: [Parameter] { [] }

    /// Pools a batch `[B, H, W, C]` into `[B, OH, OW, C]` with `Tensor.maxPool2D`; with
    /// `training: true` keeps the winners' indices for ``backward(_:)``.
    /// - Precondition: the layer is built and `input` is `[B, H, W, C]` with the built `C`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        PoolingWindow.checkInput(input, builtInputShape: builtInputShape, label: label)
        let (output, indices) = Tensor.maxPool2D(input, poolSize: poolSize, strides: strides, padding: padding)
        if training { saved = (indices, input.shape) }
        return output
    }

    /// Routes each output gradient element to the input element its window took and returns
    /// the input gradient `[B, H, W, C]` (zero elsewhere).
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        neuritePrecondition(saved != nil, "\(label) backward needs a forward pass with training: true first")
        let (indices, inputShape) = saved!
        neuritePrecondition(outputGradient.count == indices.count && outputGradient.rank == 4
                                && outputGradient.shape[0] == inputShape[0],
                            "\(label) backward: output gradient \(outputGradient.shape) does not match the output of input \(inputShape)")
        return Tensor.maxPool2DBackward(outputGradient: outputGradient, indices: indices, inputShape: inputShape)
    }
}

// MARK: - AveragePool2D

/// Average pooling over NHWC images (Keras `AveragePooling2D`): `[B, H, W, C]` to
/// `[B, OH, OW, C]`, each output the mean of its `poolSize` window, per channel.
///
/// With `.same`, padding cells are left out of both the sum and the divisor, as in Keras. The
/// backward pass shares each output gradient equally among its window's real cells; a
/// training-mode forward keeps only the input shape. No parameters.
public final class AveragePool2D: Layer {
    /// `"AveragePooling2D"`, Keras' class name (Keras also exports it as `AvgPool2D`; a loader
    /// should accept both).
    public static let typeName = "AveragePooling2D"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true

    /// The layer's name; the model assigns one when empty.
    public var name: String
    /// `(PH, PW)`, the window.
    public var poolSize: (Int, Int) { window.poolSize }
    /// `(sh, sw)`, the step between windows (the pool size unless given).
    public var strides: (Int, Int) { window.strides }
    /// How the border is treated; see TensorCore's `Padding`.
    public var padding: Padding { window.padding }
    /// The per-sample input shape `[H, W, C]` the layer was built for, or nil before `build`.
    public private(set) var builtInputShape: [Int]?

    private let window: PoolingWindow
    /// The input shape of the last training-mode forward pass.
    private var savedInputShape: [Int]?

    private var label: String { SpatialLayerConfig.label(AveragePool2D.typeName, name) }

    /// An average pooling layer.
    /// - Parameters:
    ///   - poolSize: `(PH, PW)`, each at least 1.
    ///   - strides: `(sh, sw)`, each at least 1; nil (Keras' default) means `poolSize`.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: sizes and strides are at least 1; the message names the value.
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid,
                name: String = "") {
        let (window, problem) = PoolingWindow.make(poolSize: poolSize, strides: strides, padding: padding)
        neuritePrecondition(window != nil, "AveragePool2D: \(problem ?? "")")
        self.window = window!
        self.name = name
    }

    private init(window: PoolingWindow, name: String) {
        self.window = window
        self.name = name
    }

    /// Keras' keys: `name`, `pool_size`, `strides`, `padding`, `data_format` (`"channels_last"`).
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] { window.config(name: name) }

    /// Rebuilds the layer from ``config``; missing keys take Keras' defaults. Throws `LayerError`
    /// for an ill-typed or out-of-range entry.
    public convenience init(config: [String: ConfigValue]) throws {
        try LayerConfigKeys.check(config, known: PoolingWindow.configKeys, of: AveragePool2D.typeName)
        let window = try PoolingWindow.fromConfig(config, of: AveragePool2D.typeName)
        self.init(window: window, name: try SpatialLayerConfig.name(config, of: AveragePool2D.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[OH, OW, C]` for `[H, W, C]`; throws `LayerError` naming the layer and the shape when the
    /// input is not rank 3, or is smaller than the pool with `.valid` padding.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try window.outputShape(for: inputShape, label: label)
    }

    /// Checks the shape and returns the output shape; `generator` is unused. Building again for
    /// another shape throws.
    @discardableResult
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try buildWeightless(&builtInputShape, inputShape: inputShape,
                            output: try outputShape(for: inputShape), label: label)
    }

    /// No parameters: an empty array.
    public var parameters: [Parameter] { [] }

    /// Pools a batch `[B, H, W, C]` into `[B, OH, OW, C]` with `Tensor.averagePool2D`.
    /// - Precondition: the layer is built and `input` is `[B, H, W, C]` with the built `C`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        PoolingWindow.checkInput(input, builtInputShape: builtInputShape, label: label)
        if training { savedInputShape = input.shape }
        return Tensor.averagePool2D(input, poolSize: poolSize, strides: strides, padding: padding)
    }

    /// Spreads the output gradient over the windows and returns the input gradient `[B, H, W, C]`.
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        neuritePrecondition(savedInputShape != nil, "\(label) backward needs a forward pass with training: true first")
        return Tensor.averagePool2DBackward(outputGradient: outputGradient, inputShape: savedInputShape!,
                                            poolSize: poolSize, strides: strides, padding: padding)
    }
}

// MARK: - GlobalAveragePool2D

/// The mean over all positions of each image and channel (Keras `GlobalAveragePooling2D`):
/// `[B, H, W, C]` to `[B, C]`, or `[B, 1, 1, C]` with `keepDimensions`.
///
/// Often the bridge from convolutions to a classifier, in place of flattening. Backward gives
/// every position `outputGradient / (H * W)`; a training-mode forward keeps only the input shape.
/// No parameters.
public final class GlobalAveragePool2D: Layer {
    /// `"GlobalAveragePooling2D"`, Keras' class name (Keras also exports it as
    /// `GlobalAvgPool2D`; a loader should accept both).
    public static let typeName = "GlobalAveragePooling2D"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true

    /// The layer's name; the model assigns one when empty.
    public var name: String
    /// Whether the output keeps the spatial axes as extent 1 (`[1, 1, C]` per sample; Keras `keepdims`).
    public let keepDimensions: Bool
    /// The per-sample input shape `[H, W, C]` the layer was built for, or nil before `build`.
    public private(set) var builtInputShape: [Int]?

    /// The input shape of the last training-mode forward pass.
    private var savedInputShape: [Int]?

    private var label: String { SpatialLayerConfig.label(GlobalAveragePool2D.typeName, name) }

    /// A global average pooling layer.
    /// - Parameters:
    ///   - keepDimensions: `false` (Keras' default) gives `[B, C]`, `true` gives `[B, 1, 1, C]`.
    ///   - name: the layer's name; the model assigns one when empty.
    public init(keepDimensions: Bool = false, name: String = "") {
        self.keepDimensions = keepDimensions
        self.name = name
    }

    /// Keras' keys: `name`, `data_format` (`"channels_last"`), `keepdims`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        ["name": .string(name), "data_format": .string("channels_last"), "keepdims": .bool(keepDimensions)]
    }

    /// Rebuilds the layer from ``config``; `keepdims` defaults to false. Throws `LayerError` for
    /// an ill-typed entry or a data format other than `"channels_last"`.
    public convenience init(config: [String: ConfigValue]) throws {
        let type = GlobalAveragePool2D.typeName
        try LayerConfigKeys.check(config, known: ["name", "data_format", "keepdims"], of: type)
        try SpatialLayerConfig.checkDataFormat(config, of: type)
        let keep = config["keepdims"] == nil ? false : try config.bool("keepdims", of: type)
        self.init(keepDimensions: keep, name: try SpatialLayerConfig.name(config, of: type))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[C]` (or `[1, 1, C]`) for `[H, W, C]`; throws `LayerError` naming the layer and the shape
    /// when the input is not rank 3 or has an empty extent.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 >= 1 }) else {
            throw LayerError("\(label) needs a per-sample input [H, W, C] with non-empty extents, got \(inputShape)")
        }
        return keepDimensions ? [1, 1, inputShape[2]] : [inputShape[2]]
    }

    /// Checks the shape and returns the output shape; `generator` is unused. Building again for
    /// another shape throws.
    @discardableResult
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try buildWeightless(&builtInputShape, inputShape: inputShape,
                            output: try outputShape(for: inputShape), label: label)
    }

    /// No parameters: an empty array.
    public var parameters: [Parameter] { [] }

    /// Averages a batch `[B, H, W, C]` into `[B, C]` (or `[B, 1, 1, C]`) with `Tensor.globalAveragePool2D`.
    /// - Precondition: the layer is built and `input` is `[B, H, W, C]` with the built `C`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        PoolingWindow.checkInput(input, builtInputShape: builtInputShape, label: label)
        if training { savedInputShape = input.shape }
        let output = Tensor.globalAveragePool2D(input)
        return keepDimensions ? output.reshaped([input.shape[0], 1, 1, input.shape[3]]) : output
    }

    /// Spreads the output gradient evenly over each image's positions and returns the input
    /// gradient `[B, H, W, C]`.
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        neuritePrecondition(savedInputShape != nil, "\(label) backward needs a forward pass with training: true first")
        let inputShape = savedInputShape!
        let expected = keepDimensions ? [inputShape[0], 1, 1, inputShape[3]] : [inputShape[0], inputShape[3]]
        neuritePrecondition(outputGradient.shape == expected,
                            "\(label) backward: output gradient \(outputGradient.shape) does not match output \(expected) of input \(inputShape)")
        return Tensor.globalAveragePool2DBackward(outputGradient: outputGradient.reshaped([inputShape[0], inputShape[3]]),
                                                  inputShape: inputShape)
    }
}
