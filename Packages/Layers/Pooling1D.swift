import Optimizers
import TensorCore

// The 1-D pooling layers over sequences `[B, T, F]` (channels last). They have no weights; the
// arithmetic is TensorCore's 2-D pooling on the sequences viewed as images of one row,
// `[B, 1, T, F]` (a free view), with a `1 x P` window. A training-mode forward keeps only what
// backward needs (max pooling: the winners' indices; average pooling: the input shape).

/// Pool size, strides and padding of a 1-D pooling layer, with the configuration, shape
/// inference and error messages the windowed 1-D pooling layers share.
private struct SequencePoolingWindow {
    var poolSize: Int
    var strides: Int
    var padding: Padding

    /// The keys ``fromConfig(_:of:)`` reads.
    static let keys: Set<String> = ["name", "pool_size", "strides", "padding", "data_format"]

    /// A window; `strides` nil means the pool size (windows do not overlap), as in Keras.
    /// Returns nil with a message when a value is below 1.
    static func make(poolSize: Int, strides: Int?, padding: Padding) -> (SequencePoolingWindow?, String?) {
        if poolSize < 1 { return (nil, "pool size \(poolSize) must be at least 1") }
        if let strides, strides < 1 { return (nil, "strides \(strides) must be at least 1") }
        return (SequencePoolingWindow(poolSize: poolSize, strides: strides ?? poolSize, padding: padding), nil)
    }

    /// A window from Keras' `pool_size` (`n` or `[n]`), `strides` (null: the pool size) and
    /// `padding` keys; throws for any other key (see `SequenceLayerConfig.checkKeys`).
    static func fromConfig(_ config: [String: ConfigValue], of type: String) throws -> SequencePoolingWindow {
        try SequenceLayerConfig.checkKeys(config, known: keys, of: type)
        try SpatialLayerConfig.checkDataFormat(config, of: type)
        let poolSize = try SequenceLayerConfig.optionalSingle(config, "pool_size", of: type) ?? 2
        let strides = try SequenceLayerConfig.optionalSingle(config, "strides", of: type)
        let (window, problem) = make(poolSize: poolSize, strides: strides,
                                     padding: try SpatialLayerConfig.padding(config, of: type))
        guard let window else { throw LayerError("\(type) config: \(problem ?? "")") }
        return window
    }

    /// Keras' keys (sizes as one-element lists and strides written out, as Keras writes them).
    func config(name: String) -> [String: ConfigValue] {
        [
            "name": .string(name),
            "pool_size": .ints([poolSize]),
            "strides": .ints([strides]),
            "padding": .string(padding.rawValue),
            "data_format": .string("channels_last"),
        ]
    }

    /// `[OT, F]` for `[T, F]`, or a `LayerError` naming the layer (`label`) and the shape.
    func outputShape(for inputShape: [Int], label: String) throws -> [Int] {
        guard inputShape.count == 2 else {
            throw LayerError("\(label) needs a per-sample input [T, F], got \(inputShape)")
        }
        guard inputShape[1] >= 1 else {
            throw LayerError("\(label) needs at least one feature, got input \(inputShape)")
        }
        guard let length = SequenceLayerConfig.outputLength(input: inputShape[0], window: poolSize, stride: strides,
                                                            dilation: 1, padded: padding == .same)
        else {
            throw LayerError("\(label) input \(inputShape) is too short for its \(poolSize)-step pool with \(padding.rawValue) padding")
        }
        return [length, inputShape[1]]
    }

    /// `[B, OT, F]` for a batch `[B, T, F]` that a forward pass accepted.
    func batchOutputShape(_ inputShape: [Int], label: String) -> [Int] {
        [inputShape[0]] + ((try? outputShape(for: Array(inputShape.dropFirst()), label: label)) ?? [])
    }

    /// Checks a forward input against the built shape's feature count (and, with `.valid`, the
    /// pool's length), naming the layer and the shapes; returns the input viewed as `[B, 1, T, F]`.
    func image(_ input: Tensor, builtInputShape: [Int]?, label: String) -> Tensor {
        let features = SequencePoolingWindow.checkInput(input, builtInputShape: builtInputShape, label: label)
        neuritePrecondition(input.shape[1] >= (padding == .valid ? poolSize : 1),
                            "\(label) forward: input \(input.shape) is shorter than its \(poolSize)-step pool with \(padding.rawValue) padding")
        return input.reshaped([input.shape[0], 1, input.shape[1], features])
    }

    /// Checks that `input` is `[B, T, F]` with the built `F` and `T >= 1`; returns `F`.
    static func checkInput(_ input: Tensor, builtInputShape: [Int]?, label: String) -> Int {
        neuritePrecondition(builtInputShape != nil, "\(label) forward before build(inputShape:generator:)")
        let features = builtInputShape![1]
        neuritePrecondition(input.rank == 3 && input.shape[2] == features && input.shape[1] >= 1,
                            "\(label) forward: input \(input.shape) does not match [B, T, \(features)] (built for \(builtInputShape!))")
        return features
    }
}

/// The global pooling layers' `keepdims` key, configuration and output shapes.
private enum GlobalSequencePooling {
    static let keys: Set<String> = ["name", "data_format", "keepdims"]

    /// `keepdims` from a config (false when missing); throws for another key or data format.
    static func keepDimensions(_ config: [String: ConfigValue], of type: String) throws -> Bool {
        try SequenceLayerConfig.checkKeys(config, known: keys, of: type)
        try SpatialLayerConfig.checkDataFormat(config, of: type)
        return config["keepdims"] == nil ? false : try config.bool("keepdims", of: type)
    }

    static func config(name: String, keepDimensions: Bool) -> [String: ConfigValue] {
        ["name": .string(name), "data_format": .string("channels_last"), "keepdims": .bool(keepDimensions)]
    }

    /// `[F]` (or `[1, F]`) for `[T, F]`; throws naming the layer and the shape otherwise.
    static func outputShape(for inputShape: [Int], keepDimensions: Bool, label: String) throws -> [Int] {
        guard inputShape.count == 2, inputShape.allSatisfy({ $0 >= 1 }) else {
            throw LayerError("\(label) needs a per-sample input [T, F] with non-empty extents, got \(inputShape)")
        }
        return keepDimensions ? [1, inputShape[1]] : [inputShape[1]]
    }

    /// The output gradient as `[B, 1, 1, F]` after checking it against the output of `inputShape`.
    static func outputGradientImage(_ outputGradient: Tensor, inputShape: [Int], keepDimensions: Bool,
                                    label: String) -> Tensor {
        let (batch, features) = (inputShape[0], inputShape[2])
        let expected = keepDimensions ? [batch, 1, features] : [batch, features]
        neuritePrecondition(outputGradient.shape == expected,
                            "\(label) backward: output gradient \(outputGradient.shape) does not match output \(expected) of input \(inputShape)")
        return outputGradient.reshaped([batch, 1, 1, features])
    }
}

// MARK: - MaxPool1D

/// Max pooling over sequences (Keras `MaxPooling1D`): `[B, T, F]` to `[B, OT, F]`, each output
/// the largest input in its `poolSize`-step window, per feature.
///
/// Output lengths as Keras: `.valid` `OT = (T - P) / s + 1`, `.same` `OT = ceil(T / s)` (padding
/// steps never win). Ties go to the earliest step of the window, which alone receives the
/// gradient. **Cost:** `Tensor.maxPool2D` on `[B, 1, T, F]`, one read of every window cell; a
/// training-mode forward keeps the winners' flat indices (4 bytes per output element) for
/// ``backward(_:)``, which scatters the output gradient onto them (overlapping windows add).
/// No parameters.
public final class MaxPool1D: Layer {
    /// `"MaxPooling1D"`, Keras' class name (Keras also exports it as `MaxPool1D`; the registry
    /// accepts both).
    public static let typeName = "MaxPooling1D"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true

    /// The layer's name; the model assigns one when empty.
    public var name: String
    /// `P`, the window's length in steps.
    public var poolSize: Int { window.poolSize }
    /// `s`, the step between windows (the pool size unless given).
    public var strides: Int { window.strides }
    /// `.valid` or `.same`; see TensorCore's `Padding`.
    public var padding: Padding { window.padding }
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public private(set) var builtInputShape: [Int]?

    private let window: SequencePoolingWindow
    private var tape = Tape<(indices: [Int32], inputShape: [Int])>()

    private var label: String { SpatialLayerConfig.label(MaxPool1D.typeName, name) }

    /// A max pooling layer.
    /// - Parameters:
    ///   - poolSize: `P`, at least 1.
    ///   - strides: `s`, at least 1; nil (Keras' default) means `poolSize`.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: the size and strides are at least 1; the message names the value.
    public init(poolSize: Int = 2, strides: Int? = nil, padding: Padding = .valid, name: String = "") {
        let (window, problem) = SequencePoolingWindow.make(poolSize: poolSize, strides: strides, padding: padding)
        neuritePrecondition(window != nil, "MaxPool1D: \(problem ?? "")")
        self.window = window!
        self.name = name
    }

    private init(window: SequencePoolingWindow, name: String) {
        self.window = window
        self.name = name
    }

    /// Keras' keys: `name`, `pool_size` and `strides` (one-element lists), `padding`,
    /// `data_format` (`"channels_last"`).
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] { window.config(name: name) }

    /// Rebuilds the layer from ``config``; missing keys take Keras' defaults (`pool_size` 2,
    /// `strides` null = the pool size, `padding` `"valid"`). Throws `LayerError` naming the key
    /// and value for an ill-typed, out-of-range or unimplemented entry.
    public convenience init(config: [String: ConfigValue]) throws {
        let window = try SequencePoolingWindow.fromConfig(config, of: MaxPool1D.typeName)
        self.init(window: window, name: try SpatialLayerConfig.name(config, of: MaxPool1D.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[OT, F]` for `[T, F]`; throws `LayerError` naming the layer and the shape when the input
    /// is not rank 2, or is shorter than the pool with `.valid` padding.
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

    /// Pools a batch `[B, T, F]` into `[B, OT, F]`; with `training: true` keeps the winners'
    /// indices for ``backward(_:)``.
    /// - Precondition: the layer is built and `input` is `[B, T, F]` with the built `F`, at
    ///   least `P` steps long with `.valid` padding.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let image = window.image(input, builtInputShape: builtInputShape, label: label)
        let (output, indices) = Tensor.maxPool2D(image, poolSize: (1, poolSize), strides: (1, strides), padding: padding)
        if training { tape.push((indices, image.shape)) }
        return output.reshaped([input.shape[0], output.shape[2], input.shape[2]])
    }

    /// Routes each output gradient element to the input element its window took and returns
    /// the input gradient `[B, T, F]` (zero elsewhere).
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let (indices, imageShape) = tape.pop(layer: self)
        let inputShape = [imageShape[0], imageShape[2], imageShape[3]]
        let expected = window.batchOutputShape(inputShape, label: label)
        neuritePrecondition(outputGradient.shape == expected,
                            "\(label) backward: output gradient \(outputGradient.shape) does not match output \(expected) of input \(inputShape)")
        let dx = Tensor.maxPool2DBackward(outputGradient: outputGradient.reshaped([expected[0], 1, expected[1], expected[2]]),
                                          indices: indices, inputShape: imageShape)
        return dx.reshaped(inputShape)
    }
}

extension MaxPool1D: TrainingCacheOwner {
    func clearTrainingCache() { tape.clear() }
}

// MARK: - AveragePool1D

/// Average pooling over sequences (Keras `AveragePooling1D`): `[B, T, F]` to `[B, OT, F]`, each
/// output the mean of its `poolSize`-step window, per feature.
///
/// Output lengths as ``MaxPool1D``. With `.same`, padding steps are left out of both the sum
/// and the divisor, as in Keras (TensorFlow's `avg_pool`): a window covering 2 real steps of 3
/// divides by 2. **Cost:** `Tensor.averagePool2D` on `[B, 1, T, F]`; backward shares each output
/// gradient equally among its window's real steps; a training-mode forward keeps only the input
/// shape. No parameters.
public final class AveragePool1D: Layer {
    /// `"AveragePooling1D"`, Keras' class name (Keras also exports it as `AvgPool1D`; the
    /// registry accepts both).
    public static let typeName = "AveragePooling1D"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true

    /// The layer's name; the model assigns one when empty.
    public var name: String
    /// `P`, the window's length in steps.
    public var poolSize: Int { window.poolSize }
    /// `s`, the step between windows (the pool size unless given).
    public var strides: Int { window.strides }
    /// `.valid` or `.same`; see TensorCore's `Padding`.
    public var padding: Padding { window.padding }
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public private(set) var builtInputShape: [Int]?

    private let window: SequencePoolingWindow
    /// The input shapes `[B, 1, T, F]` of the training-mode forward passes.
    private var tape = Tape<[Int]>()

    private var label: String { SpatialLayerConfig.label(AveragePool1D.typeName, name) }

    /// An average pooling layer.
    /// - Parameters:
    ///   - poolSize: `P`, at least 1.
    ///   - strides: `s`, at least 1; nil (Keras' default) means `poolSize`.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: the size and strides are at least 1; the message names the value.
    public init(poolSize: Int = 2, strides: Int? = nil, padding: Padding = .valid, name: String = "") {
        let (window, problem) = SequencePoolingWindow.make(poolSize: poolSize, strides: strides, padding: padding)
        neuritePrecondition(window != nil, "AveragePool1D: \(problem ?? "")")
        self.window = window!
        self.name = name
    }

    private init(window: SequencePoolingWindow, name: String) {
        self.window = window
        self.name = name
    }

    /// Keras' keys: `name`, `pool_size` and `strides` (one-element lists), `padding`,
    /// `data_format` (`"channels_last"`).
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] { window.config(name: name) }

    /// Rebuilds the layer from ``config``; missing keys take Keras' defaults. Throws `LayerError`
    /// naming the key and value for an ill-typed, out-of-range or unimplemented entry.
    public convenience init(config: [String: ConfigValue]) throws {
        let window = try SequencePoolingWindow.fromConfig(config, of: AveragePool1D.typeName)
        self.init(window: window, name: try SpatialLayerConfig.name(config, of: AveragePool1D.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[OT, F]` for `[T, F]`; throws `LayerError` naming the layer and the shape when the input
    /// is not rank 2, or is shorter than the pool with `.valid` padding.
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

    /// Pools a batch `[B, T, F]` into `[B, OT, F]`.
    /// - Precondition: the layer is built and `input` is `[B, T, F]` with the built `F`, at
    ///   least `P` steps long with `.valid` padding.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let image = window.image(input, builtInputShape: builtInputShape, label: label)
        if training { tape.push(image.shape) }
        let output = Tensor.averagePool2D(image, poolSize: (1, poolSize), strides: (1, strides), padding: padding)
        return output.reshaped([input.shape[0], output.shape[2], input.shape[2]])
    }

    /// Spreads the output gradient over the windows and returns the input gradient `[B, T, F]`.
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let imageShape = tape.pop(layer: self)
        let inputShape = [imageShape[0], imageShape[2], imageShape[3]]
        let expected = window.batchOutputShape(inputShape, label: label)
        neuritePrecondition(outputGradient.shape == expected,
                            "\(label) backward: output gradient \(outputGradient.shape) does not match output \(expected) of input \(inputShape)")
        let dx = Tensor.averagePool2DBackward(outputGradient: outputGradient.reshaped([expected[0], 1, expected[1], expected[2]]),
                                              inputShape: imageShape, poolSize: (1, poolSize), strides: (1, strides),
                                              padding: padding)
        return dx.reshaped(inputShape)
    }
}

extension AveragePool1D: TrainingCacheOwner {
    func clearTrainingCache() { tape.clear() }
}

// MARK: - GlobalMaxPool1D

/// The largest value over all steps of each sequence and feature (Keras `GlobalMaxPooling1D`):
/// `[B, T, F]` to `[B, F]`, or `[B, 1, F]` with `keepDimensions`.
///
/// The gradient goes to the step that holds the maximum, shared equally among tied steps, as
/// TensorFlow's `reduce_max` (which Keras' layer runs) shares it. **Cost:** `Tensor.maxPool2D`
/// with a `1 x T` window on `[B, 1, T, F]`, one pass over the input; a training-mode forward keeps
/// references to its input and output (no copies), and ``backward(_:)`` makes two passes over
/// the input (counting the ties, then writing the gradient). No parameters.
public final class GlobalMaxPool1D: Layer {
    /// `"GlobalMaxPooling1D"`, Keras' class name (Keras also exports it as `GlobalMaxPool1D`;
    /// the registry accepts both).
    public static let typeName = "GlobalMaxPooling1D"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true

    /// The layer's name; the model assigns one when empty.
    public var name: String
    /// Whether the output keeps the time axis as extent 1 (`[1, F]` per sample; Keras `keepdims`).
    public let keepDimensions: Bool
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public private(set) var builtInputShape: [Int]?

    /// The input `[B, T, F]` and output `[B, F]` of the training-mode forward passes.
    private var tape = Tape<(input: Tensor, output: Tensor)>()

    private var label: String { SpatialLayerConfig.label(GlobalMaxPool1D.typeName, name) }

    /// A global max pooling layer.
    /// - Parameters:
    ///   - keepDimensions: `false` (Keras' default) gives `[B, F]`, `true` gives `[B, 1, F]`.
    ///   - name: the layer's name; the model assigns one when empty.
    public init(keepDimensions: Bool = false, name: String = "") {
        self.keepDimensions = keepDimensions
        self.name = name
    }

    /// Keras' keys: `name`, `data_format` (`"channels_last"`), `keepdims`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        GlobalSequencePooling.config(name: name, keepDimensions: keepDimensions)
    }

    /// Rebuilds the layer from ``config``; `keepdims` defaults to false. Throws `LayerError` naming
    /// the key and value for an ill-typed or unimplemented entry.
    public convenience init(config: [String: ConfigValue]) throws {
        let type = GlobalMaxPool1D.typeName
        self.init(keepDimensions: try GlobalSequencePooling.keepDimensions(config, of: type),
                  name: try SpatialLayerConfig.name(config, of: type))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[F]` (or `[1, F]`) for `[T, F]`; throws `LayerError` naming the layer and the shape when
    /// the input is not rank 2 or has an empty extent.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try GlobalSequencePooling.outputShape(for: inputShape, keepDimensions: keepDimensions, label: label)
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

    /// The maximum over time of a batch `[B, T, F]`: `[B, F]` (or `[B, 1, F]`).
    /// - Precondition: the layer is built and `input` is `[B, T, F]` with the built `F` and `T >= 1`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let features = SequencePoolingWindow.checkInput(input, builtInputShape: builtInputShape, label: label)
        let image = input.reshaped([input.shape[0], 1, input.shape[1], features])
        let output = Tensor.maxPool2D(image, poolSize: (1, input.shape[1]), strides: (1, 1), padding: .valid).output
            .reshaped([input.shape[0], features])
        if training { tape.push((input, output)) }
        return keepDimensions ? output.reshaped([input.shape[0], 1, features]) : output
    }

    /// Shares each output gradient element equally among the steps that hold the maximum and
    /// returns the input gradient `[B, T, F]` (zero elsewhere).
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let (input, output) = tape.pop(layer: self)
        let inputShape = input.shape
        let gradient = GlobalSequencePooling.outputGradientImage(outputGradient, inputShape: inputShape,
                                                                 keepDimensions: keepDimensions, label: label)
        let (batch, length, features) = (inputShape[0], inputShape[1], inputShape[2])
        let shares = UnsafeMutablePointer<Float>.allocate(capacity: features)
        defer { shares.deallocate() }
        return input.withUnsafeBufferPointer { xb in
            output.withUnsafeBufferPointer { yb in
                gradient.withUnsafeBufferPointer { gb in
                    Tensor(shape: inputShape, unsafeUninitialized: { dxb in
                        for b in 0..<batch {
                            let x = xb.baseAddress! + b * length * features, dx = dxb.baseAddress! + b * length * features
                            let y = yb.baseAddress! + b * features, g = gb.baseAddress! + b * features
                            // Two branch-free passes over the sequence, vectorised over the features:
                            // count each feature's ties, then give each tied step its share.
                            shares.update(repeating: 0, count: features)
                            for t in 0..<length {
                                let row = x + t * features
                                for f in 0..<features { shares[f] += row[f] == y[f] ? 1 : 0 }
                            }
                            for f in 0..<features { shares[f] = shares[f] > 0 ? g[f] / shares[f] : 0 }
                            for t in 0..<length {
                                let row = x + t * features, out = dx + t * features
                                for f in 0..<features {
                                    let tied: Float = row[f] == y[f] ? 1 : 0   // a mask, so the loop vectorises
                                    out[f] = tied * shares[f]
                                }
                            }
                        }
                    })
                }
            }
        }
    }
}

extension GlobalMaxPool1D: TrainingCacheOwner {
    func clearTrainingCache() { tape.clear() }
}

// MARK: - GlobalAveragePool1D

/// The mean over all steps of each sequence and feature (Keras `GlobalAveragePooling1D`, without
/// masking): `[B, T, F]` to `[B, F]`, or `[B, 1, F]` with `keepDimensions`.
///
/// **Cost:** `Tensor.globalAveragePool2D` on `[B, 1, T, F]`, one pass over the input (sums in
/// Float blocks added in Float64). Backward gives every step `outputGradient / T`; a
/// training-mode forward keeps only the input shape. No parameters.
public final class GlobalAveragePool1D: Layer {
    /// `"GlobalAveragePooling1D"`, Keras' class name (Keras also exports it as
    /// `GlobalAvgPool1D`; the registry accepts both).
    public static let typeName = "GlobalAveragePooling1D"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true

    /// The layer's name; the model assigns one when empty.
    public var name: String
    /// Whether the output keeps the time axis as extent 1 (`[1, F]` per sample; Keras `keepdims`).
    public let keepDimensions: Bool
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public private(set) var builtInputShape: [Int]?

    private var tape = Tape<[Int]>()

    private var label: String { SpatialLayerConfig.label(GlobalAveragePool1D.typeName, name) }

    /// A global average pooling layer.
    /// - Parameters:
    ///   - keepDimensions: `false` (Keras' default) gives `[B, F]`, `true` gives `[B, 1, F]`.
    ///   - name: the layer's name; the model assigns one when empty.
    public init(keepDimensions: Bool = false, name: String = "") {
        self.keepDimensions = keepDimensions
        self.name = name
    }

    /// Keras' keys: `name`, `data_format` (`"channels_last"`), `keepdims`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        GlobalSequencePooling.config(name: name, keepDimensions: keepDimensions)
    }

    /// Rebuilds the layer from ``config``; `keepdims` defaults to false. Throws `LayerError` naming
    /// the key and value for an ill-typed or unimplemented entry.
    public convenience init(config: [String: ConfigValue]) throws {
        let type = GlobalAveragePool1D.typeName
        self.init(keepDimensions: try GlobalSequencePooling.keepDimensions(config, of: type),
                  name: try SpatialLayerConfig.name(config, of: type))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[F]` (or `[1, F]`) for `[T, F]`; throws `LayerError` naming the layer and the shape when
    /// the input is not rank 2 or has an empty extent.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try GlobalSequencePooling.outputShape(for: inputShape, keepDimensions: keepDimensions, label: label)
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

    /// The mean over time of a batch `[B, T, F]`: `[B, F]` (or `[B, 1, F]`).
    /// - Precondition: the layer is built and `input` is `[B, T, F]` with the built `F` and `T >= 1`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let features = SequencePoolingWindow.checkInput(input, builtInputShape: builtInputShape, label: label)
        if training { tape.push(input.shape) }
        let output = Tensor.globalAveragePool2D(input.reshaped([input.shape[0], 1, input.shape[1], features]))
        return keepDimensions ? output.reshaped([input.shape[0], 1, features]) : output
    }

    /// Spreads the output gradient evenly over each sequence's steps and returns the input
    /// gradient `[B, T, F]`.
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let inputShape = tape.pop(layer: self)
        let gradient = GlobalSequencePooling.outputGradientImage(outputGradient, inputShape: inputShape,
                                                                 keepDimensions: keepDimensions, label: label)
        return Tensor.globalAveragePool2DBackward(outputGradient: gradient.reshaped([inputShape[0], inputShape[2]]),
                                                  inputShape: [inputShape[0], 1, inputShape[1], inputShape[2]])
            .reshaped(inputShape)
    }
}

extension GlobalAveragePool1D: TrainingCacheOwner {
    func clearTrainingCache() { tape.clear() }
}
