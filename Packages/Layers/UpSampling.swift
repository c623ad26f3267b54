import Optimizers
import TensorCore

/// Nearest-neighbour upsampling of NHWC images (Keras `UpSampling2D` with
/// `interpolation="nearest"`): `[B, H, W, C]` to `[B, H * sh, W * sw, C]`, every pixel repeated
/// `sh` times down and `sw` times across.
///
/// The decoder half of a convolutional autoencoder uses it to undo a pooling layer's shrinking.
/// Backward sums each `sh x sw` block of the output gradient into its source pixel.
///
/// **Cost.** One pass writing the output (`sh * sw` times the input), one pass reading the
/// output gradient; no parameters. A training-mode forward keeps only the input shape.
///
/// ```swift
/// let up = UpSampling2D(size: (2, 2))     // [B, 7, 7, 8] -> [B, 14, 14, 8]
/// ```
public final class UpSampling2D: Layer {
    /// `"UpSampling2D"`, Keras' class name.
    public static let typeName = "UpSampling2D"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true
    /// The layer's name, unique in its model.
    public var name: String
    /// `(sh, sw)`: how many times each pixel is repeated down and across.
    public let size: (Int, Int)
    private var tape = Tape<[Int]>()

    /// An upsampling layer repeating each pixel `size.0 x size.1` times.
    /// - Precondition: both factors are at least 1.
    public init(size: (Int, Int) = (2, 2), name: String = "") {
        neuritePrecondition(size.0 >= 1 && size.1 >= 1, "UpSampling2D: size (\(size.0), \(size.1)) must be at least 1")
        self.size = size
        self.name = name
    }

    /// Keras' keys: `name`, `size` (two integers), `data_format` (`"channels_last"`),
    /// `interpolation` (`"nearest"`).
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        ["name": .string(name), "size": .ints([size.0, size.1]), "data_format": .string("channels_last"),
         "interpolation": .string("nearest")]
    }

    /// Rebuilds from ``config``; `size` defaults to `(2, 2)`. Throws `LayerError` for another
    /// interpolation than `"nearest"`, a channels-first format, or a factor below 1.
    public convenience init(config: [String: ConfigValue]) throws {
        let type = Self.typeName
        try LayerConfigKeys.check(config, known: ["name", "size", "data_format", "interpolation"], of: type)
        try SpatialLayerConfig.checkDataFormat(config, of: type)
        let size = try SpatialLayerConfig.optionalPair(config, "size", of: type) ?? (2, 2)
        if let problem = SpatialLayerConfig.pairProblem("size", size) { throw LayerError("\(type) config: \(problem)") }
        switch config["interpolation"] {
        case nil, .null?, .string("nearest")?: break
        case let other?: throw LayerError("\(type) config has interpolation \(other); Neurite supports only \"nearest\"")
        }
        self.init(size: size, name: try config.optionalName(of: type))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `[H * sh, W * sw, C]` for `[H, W, C]`; throws for another rank.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 3 else {
            throw LayerError("\(SpatialLayerConfig.label(Self.typeName, name)) needs a per-sample input [H, W, C], got \(inputShape)")
        }
        return [inputShape[0] * size.0, inputShape[1] * size.1, inputShape[2]]
    }

    /// Nothing to create; returns the output shape.
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try outputShape(for: inputShape)
    }

    /// None.
    public var parameters: [Parameter] { [] }

    /// Repeats every pixel of `[B, H, W, C]` into a `sh x sw` block.
    /// - Precondition: the input is rank 4; the message names the layer and the shape.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        neuritePrecondition(input.rank == 4, "\(SpatialLayerConfig.label(Self.typeName, name)) forward needs [B, H, W, C], got \(input.shape)")
        let (b, h, w, c) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (sh, sw) = size
        if training { tape.push(input.shape) }
        return input.withUnsafeBufferPointer { src in
            Tensor(shape: [b, h * sh, w * sw, c]) { dst in
                let ow = w * sw
                ThreadPool.shared.parallelChunks(b * h, grain: Swift.max(1, (1 << 15) / Swift.max(1, ow * sh * c))) { rows in
                    for r in rows {
                        let line = src.baseAddress! + r * w * c
                        let first = dst.baseAddress! + r * sh * ow * c
                        for x in 0..<w {
                            let pixel = line + x * c
                            for k in 0..<sw { (first + (x * sw + k) * c).update(from: pixel, count: c) }
                        }
                        for k in 1..<Swift.max(1, sh) { (first + k * ow * c).update(from: first, count: ow * c) }
                    }
                }
            }
        }
    }

    /// Sums each `sh x sw` block of the output gradient into `[B, H, W, C]`.
    /// - Precondition: a training-mode forward ran and the gradient has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let shape = tape.pop(layer: self)
        let (b, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        let (sh, sw) = size
        neuritePrecondition(outputGradient.shape == [b, h * sh, w * sw, c],
                            "\(SpatialLayerConfig.label(Self.typeName, name)) backward: output gradient \(outputGradient.shape) does not match output \([b, h * sh, w * sw, c])")
        return outputGradient.withUnsafeBufferPointer { src in
            Tensor(shape: shape) { dst in
                let ow = w * sw
                ThreadPool.shared.parallelChunks(b * h, grain: Swift.max(1, (1 << 15) / Swift.max(1, ow * sh * c))) { rows in
                    for r in rows {
                        let out = dst.baseAddress! + r * w * c
                        out.update(repeating: 0, count: w * c)
                        for k in 0..<sh {
                            let line = src.baseAddress! + (r * sh + k) * ow * c
                            for x in 0..<w {
                                let target = out + x * c
                                for j in 0..<sw {
                                    let source = line + (x * sw + j) * c
                                    for i in 0..<c { target[i] += source[i] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension UpSampling2D: TrainingCacheOwner {
    func clearTrainingCache() { tape.clear() }
}
