import Optimizers
import TensorCore

// What the pooling layers share: the 2-D ones over NHWC images (Pooling.swift) and the 1-D ones
// over sequences `[B, T, F]` (Pooling1D.swift), max and average alike. A sequence is viewed as an
// image of one row, `[B, 1, T, F]` (a free view), with a `1 x P` window, so every layer runs
// TensorCore's 2-D pooling kernels through one core; the layers only choose the statistic and
// the rank. A training-mode forward keeps only what backward needs (max pooling: the winners'
// indices; average pooling: the input shape) on a `Tape`, so a layer used twice gets both
// backward passes right.

/// What a pooling layer takes of each window: its largest value or its mean.
enum PoolingStatistic {
    case max, average
}

/// The two kinds of pooling input: images `[B, H, W, C]` or sequences `[B, T, F]`. How each
/// reads and writes its configuration, names its shapes in messages, and is viewed as an image.
enum PoolingRank {
    case image, sequence

    /// The per-sample rank: 3 for `[H, W, C]`, 2 for `[T, F]`.
    var perSampleRank: Int { self == .image ? 3 : 2 }
    /// The per-sample shape as messages write it.
    var perSampleName: String { self == .image ? "[H, W, C]" : "[T, F]" }

    /// A window pair as messages write it: `(a, b)` for images, `b` for sequences.
    func describe(_ value: (Int, Int)) -> String { self == .image ? "(\(value.0), \(value.1))" : "\(value.1)" }

    /// A window pair as Keras writes it: `[a, b]`, or `[b]` for a sequence.
    func configValue(_ value: (Int, Int)) -> ConfigValue { self == .image ? .ints([value.0, value.1]) : .ints([value.1]) }

    /// A window pair from a config, nil when missing or null: two integers (or one meaning both)
    /// for images; one integer or a one-element list for sequences, which span a single row.
    func optionalPair(_ config: [String: ConfigValue], _ key: String, of type: String) throws -> (Int, Int)? {
        switch self {
        case .image: return try SpatialLayerConfig.optionalPair(config, key, of: type)
        case .sequence: return try SequenceLayerConfig.optionalSingle(config, key, of: type).map { (1, $0) }
        }
    }

    /// A batch shape `[B, T, F]` as the image `[B, 1, T, F]` the kernels see (images unchanged).
    func imageShape(_ batchShape: [Int]) -> [Int] {
        self == .image ? batchShape : [batchShape[0], 1] + batchShape.dropFirst()
    }

    /// The inverse of ``imageShape(_:)``.
    func batchShape(_ imageShape: [Int]) -> [Int] {
        self == .image ? imageShape : [imageShape[0]] + imageShape.dropFirst(2)
    }

    /// Checks a forward input against the built shape's channel count (and a sequence's length
    /// against 1), naming the layer and both shapes; returns the input viewed as an image.
    func image(of input: Tensor, builtInputShape: [Int]?, label: String) -> Tensor {
        neuritePrecondition(builtInputShape != nil, "\(label) forward before build(inputShape:generator:)")
        let channels = builtInputShape!.last!
        let fits = self == .image ? input.rank == 4 : input.rank == 3 && input.shape[1] >= 1
        let expected = self == .image ? "[B, H, W, \(channels)]" : "[B, T, \(channels)]"
        neuritePrecondition(fits && input.shape.last == channels,
                            "\(label) forward: input \(input.shape) does not match \(expected) (built for \(builtInputShape!))")
        return self == .image ? input : input.reshaped(imageShape(input.shape))
    }
}

/// The core a pooling layer delegates to: configuration, shapes and both passes.
protocol PoolingCore {
    /// The layer's name; the model assigns one when empty.
    var name: String { get set }
    /// Keras' `trainable` flag, kept in the configuration: a pooling layer has no weights to freeze.
    var trainable: Bool { get set }
    /// The per-sample input shape the layer was built for, or nil before `build`.
    var builtInputShape: [Int]? { get set }
    /// Keras' configuration keys, without `trainable`.
    func config(name: String) -> [String: ConfigValue]
    /// The per-sample output shape, or a `LayerError` naming the layer (`label`) and the shape.
    func outputShape(for inputShape: [Int], label: String) throws -> [Int]
    /// The forward pass; with `training` it keeps what ``backward(_:label:layer:)`` needs.
    mutating func forward(_ input: Tensor, training: Bool, label: String) -> Tensor
    /// The input gradient for the matching training-mode forward pass.
    mutating func backward(_ outputGradient: Tensor, label: String, layer: some Layer) -> Tensor
    /// Drops what the training-mode forward passes kept.
    mutating func clearTape()
}

/// A pooling layer: no weights, everything kept and done by its ``core``. The default
/// implementations below are the layers' `Layer` conformance; each layer adds only its type
/// name, its initialiser and the accessors of its settings.
protocol PoolingLayer: Layer, TrainingCacheOwner {
    associatedtype Core: PoolingCore
    var core: Core { get set }
    init(core: Core)
    /// The core read from a configuration (whose keys are checked), naming `type` in errors.
    static func makeCore(config: [String: ConfigValue], of type: String) throws -> Core
}

extension PoolingLayer {
    /// How error messages name the layer: `MaxPooling2D "pool_1"`, or just the type when unnamed.
    var label: String { SpatialLayerConfig.label(Self.typeName, name) }

    /// Keras' keys: `name` and `data_format` (`"channels_last"`), then `pool_size`, `strides` and
    /// `padding` (windowed layers; one-element lists for sequences) or `keepdims` (global layers).
    public var config: [String: ConfigValue] { core.config(name: name).addingTrainable(trainable) }

    /// Rebuilds the layer from `config`; missing keys take Keras' defaults (`pool_size` 2 per
    /// axis, `strides` null = the pool size, `padding` `"valid"`, `keepdims` false). Throws
    /// `LayerError` naming the key and value for an ill-typed, out-of-range or unimplemented entry.
    public init(config: [String: ConfigValue]) throws {
        var core = try Self.makeCore(config: config, of: Self.typeName)
        core.name = try SpatialLayerConfig.name(config, of: Self.typeName)
        core.trainable = try config.trainable(of: Self.typeName)
        self.init(core: core)
    }

    /// The layer's name; the model assigns one when empty.
    public var name: String {
        get { core.name }
        set { core.name = newValue }
    }

    /// Keras' `trainable` flag, kept in `config`: the layer has no weights to freeze.
    public var trainable: Bool {
        get { core.trainable }
        set { core.trainable = newValue }
    }

    /// The per-sample output shape; throws `LayerError` naming the layer and the shape when the
    /// input has the wrong rank, an empty extent, or (windowed, `.valid`) is smaller than the pool.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try core.outputShape(for: inputShape, label: label)
    }

    /// Checks the shape, records it and returns the output shape; there are no weights, so
    /// `generator` is unused. Building again for another shape throws (the `Layer` contract).
    @discardableResult
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        let output = try outputShape(for: inputShape)
        if let built = core.builtInputShape, built != inputShape {
            throw LayerError("\(label) was built for input \(built), cannot build again for \(inputShape)")
        }
        core.builtInputShape = inputShape
        return output
    }

    /// No parameters: an empty array.
    public var parameters: [Parameter] { [] }

    /// Pools a batch; with `training: true` keeps what `backward(_:)` needs.
    /// - Precondition: the layer is built and `input` has the built channel count (and, for a
    ///   windowed 1-D layer with `.valid` padding, at least the pool's length); the message names
    ///   the layer and both shapes.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        core.forward(input, training: training, label: label)
    }

    /// The input gradient for the matching training-mode forward pass.
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        core.backward(outputGradient, label: label, layer: self)
    }

    func clearTrainingCache() { core.clearTape() }
}

// MARK: - Windowed pooling

/// The core of the windowed pooling layers (``MaxPool2D``, ``AveragePool2D``, ``MaxPool1D``,
/// ``AveragePool1D``): pool size, strides and padding (a sequence's as `(1, P)`), and the passes.
struct WindowPoolingCore: PoolingCore {
    let statistic: PoolingStatistic
    let rank: PoolingRank
    let poolSize: (Int, Int)
    let strides: (Int, Int)
    let padding: Padding
    var name = ""
    var trainable = true
    var builtInputShape: [Int]?
    /// The input shapes as images `[B, H, W, C]` of the training-mode forward passes, with the
    /// winners' flat indices for max pooling (empty for average pooling).
    private var tape = Tape<(imageShape: [Int], indices: [Int32])>()

    /// The keys a windowed pooling layer's `init(config:)` reads.
    static let configKeys: Set<String> = ["name", "pool_size", "strides", "padding", "data_format"]

    /// A core; `strides` nil means the pool size (windows do not overlap), as in Keras. Returns a
    /// message instead when a value is below 1.
    private static func make(_ statistic: PoolingStatistic, _ rank: PoolingRank, poolSize: (Int, Int),
                             strides: (Int, Int)?, padding: Padding) -> Result<WindowPoolingCore, LayerError> {
        for (what, value) in [("pool size", poolSize), ("strides", strides ?? poolSize)] where value.0 < 1 || value.1 < 1 {
            return .failure(LayerError("\(what) \(rank.describe(value)) must be at least 1"))
        }
        return .success(WindowPoolingCore(statistic: statistic, rank: rank, poolSize: poolSize,
                                          strides: strides ?? poolSize, padding: padding))
    }

    /// A core from a layer's initialiser arguments.
    /// - Precondition: sizes and strides are at least 1; the message names `layer` and the value.
    init(_ statistic: PoolingStatistic, _ rank: PoolingRank, poolSize: (Int, Int), strides: (Int, Int)?,
         padding: Padding, name: String, layer: String) {
        switch Self.make(statistic, rank, poolSize: poolSize, strides: strides, padding: padding) {
        case .success(let core):
            self = core
            self.name = name
        case .failure(let error): neuritePreconditionFailure("\(layer): \(error.message)")
        }
    }

    private init(statistic: PoolingStatistic, rank: PoolingRank, poolSize: (Int, Int), strides: (Int, Int),
                 padding: Padding) {
        (self.statistic, self.rank, self.poolSize, self.strides, self.padding) = (statistic, rank, poolSize, strides, padding)
    }

    /// A core from Keras' `pool_size`, `strides` (null: the pool size) and `padding` keys.
    init(_ statistic: PoolingStatistic, _ rank: PoolingRank, config: [String: ConfigValue], of type: String) throws {
        try LayerConfigKeys.check(config, known: Self.configKeys, of: type)
        try SpatialLayerConfig.checkDataFormat(config, of: type)
        let poolSize = try rank.optionalPair(config, "pool_size", of: type) ?? (rank == .image ? (2, 2) : (1, 2))
        let strides = try rank.optionalPair(config, "strides", of: type)
        let padding = try SpatialLayerConfig.padding(config, of: type)
        switch Self.make(statistic, rank, poolSize: poolSize, strides: strides, padding: padding) {
        case .success(let core): self = core
        case .failure(let error): throw LayerError("\(type) config: \(error.message)")
        }
    }

    /// Keras' keys (strides always written out, as Keras does once it has resolved them).
    func config(name: String) -> [String: ConfigValue] {
        [
            "name": .string(name),
            "pool_size": rank.configValue(poolSize),
            "strides": rank.configValue(strides),
            "padding": .string(padding.rawValue),
            "data_format": .string("channels_last"),
        ]
    }

    /// `[OH, OW, C]` for `[H, W, C]`, `[OT, F]` for `[T, F]`.
    func outputShape(for inputShape: [Int], label: String) throws -> [Int] {
        guard inputShape.count == rank.perSampleRank else {
            throw LayerError("\(label) needs a per-sample input \(rank.perSampleName), got \(inputShape)")
        }
        guard inputShape.last! >= 1 else {
            throw LayerError("\(label) needs at least one \(rank == .image ? "channel" : "feature"), got input \(inputShape)")
        }
        let image = rank == .image ? inputShape : [1] + inputShape
        guard let oh = SpatialLayerConfig.outputExtent(input: image[0], window: poolSize.0, stride: strides.0,
                                                       dilation: 1, padding: padding),
              let ow = SpatialLayerConfig.outputExtent(input: image[1], window: poolSize.1, stride: strides.1,
                                                       dilation: 1, padding: padding)
        else {
            let what = rank == .image ? "small for its \(poolSize.0)x\(poolSize.1) pool" : "short for its \(poolSize.1)-step pool"
            throw LayerError("\(label) input \(inputShape) is too \(what) with \(padding.rawValue) padding")
        }
        return rank == .image ? [oh, ow, image[2]] : [ow, image[2]]
    }

    mutating func forward(_ input: Tensor, training: Bool, label: String) -> Tensor {
        let image = rank.image(of: input, builtInputShape: builtInputShape, label: label)
        neuritePrecondition(rank == .image || input.shape[1] >= (padding == .valid ? poolSize.1 : 1),
                            "\(label) forward: input \(input.shape) is shorter than its \(poolSize.1)-step pool with \(padding.rawValue) padding")
        let output: Tensor
        switch statistic {
        case .max:
            let pooled = Tensor.maxPool2D(image, poolSize: poolSize, strides: strides, padding: padding)
            if training { tape.push((image.shape, pooled.indices)) }
            output = pooled.output
        case .average:
            if training { tape.push((image.shape, [])) }
            output = Tensor.averagePool2D(image, poolSize: poolSize, strides: strides, padding: padding)
        }
        return rank == .image ? output : output.reshaped(rank.batchShape(output.shape))
    }

    /// Max pooling routes each output gradient element to the input element its window took
    /// (overlapping windows add); average pooling shares it equally among its window's real cells.
    mutating func backward(_ outputGradient: Tensor, label: String, layer: some Layer) -> Tensor {
        let (imageShape, indices) = tape.pop(layer: layer)
        let inputShape = rank.batchShape(imageShape)
        let expected = [inputShape[0]] + ((try? outputShape(for: Array(inputShape.dropFirst()), label: label)) ?? [])
        neuritePrecondition(outputGradient.shape == expected,
                            "\(label) backward: output gradient \(outputGradient.shape) does not match output \(expected) of input \(inputShape)")
        let gradient = rank == .image ? outputGradient : outputGradient.reshaped(rank.imageShape(expected))
        let dx = switch statistic {
        case .max: Tensor.maxPool2DBackward(outputGradient: gradient, indices: indices, inputShape: imageShape,
                                            poolSize: poolSize, strides: strides, padding: padding)
        case .average: Tensor.averagePool2DBackward(outputGradient: gradient, inputShape: imageShape, poolSize: poolSize,
                                                    strides: strides, padding: padding)
        }
        return rank == .image ? dx : dx.reshaped(inputShape)
    }

    mutating func clearTape() { tape.clear() }
}

// MARK: - Global pooling

/// The core of the global pooling layers (``GlobalAveragePool2D``, ``GlobalMaxPool1D``,
/// ``GlobalAveragePool1D``): one statistic over all positions of each sample and channel,
/// `[B, ..., C]` to `[B, C]`, or with `keepDimensions` the positions kept as extent 1.
struct GlobalPoolingCore: PoolingCore {
    let statistic: PoolingStatistic
    let rank: PoolingRank
    let keepDimensions: Bool
    var name = ""
    var trainable = true
    var builtInputShape: [Int]?
    /// What the training-mode forward passes kept: the input shape, and for max pooling the
    /// input and output themselves (references, no copies).
    private var tape = Tape<(inputShape: [Int], input: Tensor?, output: Tensor?)>()

    init(_ statistic: PoolingStatistic, _ rank: PoolingRank, keepDimensions: Bool, name: String = "") {
        (self.statistic, self.rank, self.keepDimensions, self.name) = (statistic, rank, keepDimensions, name)
    }

    /// A core from Keras' `keepdims` key (false when missing); throws for another key or data format.
    init(_ statistic: PoolingStatistic, _ rank: PoolingRank, config: [String: ConfigValue], of type: String) throws {
        try LayerConfigKeys.check(config, known: ["name", "data_format", "keepdims"], of: type)
        try SpatialLayerConfig.checkDataFormat(config, of: type)
        let keep = config["keepdims"] == nil ? false : try config.bool("keepdims", of: type)
        self.init(statistic, rank, keepDimensions: keep)
    }

    func config(name: String) -> [String: ConfigValue] {
        ["name": .string(name), "data_format": .string("channels_last"), "keepdims": .bool(keepDimensions)]
    }

    /// The output of a batch `[B, ..., C]`: `[B, C]`, or `[B, 1, ..., 1, C]` with `keepDimensions`.
    private func outputShape(batch: Int, channels: Int) -> [Int] {
        keepDimensions ? [batch] + Array(repeating: 1, count: rank.perSampleRank - 1) + [channels] : [batch, channels]
    }

    /// `[C]` (or `[1, 1, C]`) for `[H, W, C]`, `[F]` (or `[1, F]`) for `[T, F]`.
    func outputShape(for inputShape: [Int], label: String) throws -> [Int] {
        guard inputShape.count == rank.perSampleRank, inputShape.allSatisfy({ $0 >= 1 }) else {
            throw LayerError("\(label) needs a per-sample input \(rank.perSampleName) with non-empty extents, got \(inputShape)")
        }
        return Array(outputShape(batch: 0, channels: inputShape.last!).dropFirst())
    }

    mutating func forward(_ input: Tensor, training: Bool, label: String) -> Tensor {
        let image = rank.image(of: input, builtInputShape: builtInputShape, label: label)
        let (batch, channels) = (input.shape[0], image.shape[3])
        let output: Tensor
        switch statistic {
        case .max:
            output = Tensor.maxPool2D(image, poolSize: (image.shape[1], image.shape[2]), strides: (1, 1), padding: .valid)
                .output.reshaped([batch, channels])
            if training { tape.push((input.shape, input, output)) }
        case .average:
            if training { tape.push((input.shape, nil, nil)) }
            output = Tensor.globalAveragePool2D(image)
        }
        return keepDimensions ? output.reshaped(outputShape(batch: batch, channels: channels)) : output
    }

    /// Average pooling gives every position `outputGradient / positions`; max pooling shares each
    /// output gradient element equally among the positions that hold the maximum, as
    /// TensorFlow's `reduce_max` (which Keras' layer runs) shares it.
    mutating func backward(_ outputGradient: Tensor, label: String, layer: some Layer) -> Tensor {
        let saved = tape.pop(layer: layer)
        let inputShape = saved.inputShape
        let (batch, channels) = (inputShape[0], inputShape.last!)
        let expected = outputShape(batch: batch, channels: channels)
        neuritePrecondition(outputGradient.shape == expected,
                            "\(label) backward: output gradient \(outputGradient.shape) does not match output \(expected) of input \(inputShape)")
        let gradient = outputGradient.reshaped([batch, channels])
        guard let input = saved.input, let output = saved.output else {
            return Tensor.globalAveragePool2DBackward(outputGradient: gradient, inputShape: rank.imageShape(inputShape))
                .reshaped(inputShape)
        }
        return Self.maxBackward(gradient, input: input, output: output)
    }

    /// The gradient of the global maximum of `input` `[B, ..., C]` (`output` `[B, C]`): two
    /// branch-free passes over each sample, vectorised over the channels: count each channel's
    /// ties, then give each tied position its share.
    private static func maxBackward(_ gradient: Tensor, input: Tensor, output: Tensor) -> Tensor {
        let (batch, channels) = (output.shape[0], output.shape[1])
        let positions = input.count / Swift.max(1, batch * channels)
        let shares = UnsafeMutablePointer<Float>.allocate(capacity: channels)
        defer { shares.deallocate() }
        return input.withUnsafeBufferPointer { xb in
            output.withUnsafeBufferPointer { yb in
                gradient.withUnsafeBufferPointer { gb in
                    Tensor(shape: input.shape, unsafeUninitialized: { dxb in
                        for b in 0..<batch {
                            let x = xb.baseAddress! + b * positions * channels, dx = dxb.baseAddress! + b * positions * channels
                            let y = yb.baseAddress! + b * channels, g = gb.baseAddress! + b * channels
                            shares.update(repeating: 0, count: channels)
                            for t in 0..<positions {
                                let row = x + t * channels
                                for f in 0..<channels { shares[f] += row[f] == y[f] ? 1 : 0 }
                            }
                            for f in 0..<channels { shares[f] = shares[f] > 0 ? g[f] / shares[f] : 0 }
                            for t in 0..<positions {
                                let row = x + t * channels, out = dx + t * channels
                                for f in 0..<channels {
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

    mutating func clearTape() { tape.clear() }
}
