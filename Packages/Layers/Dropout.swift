import Optimizers
import TensorCore

/// Inverted dropout (Keras `Dropout`): in training, each element is zeroed with probability
/// `rate` and the survivors are scaled by `1 / (1 - rate)`, so the expected value is unchanged
/// and inference is the identity.
///
/// **Randomness.** The layer owns a `SeededGenerator`, seeded at build with a number drawn from
/// the model's generator (or from `seed:` when given, which still draws that number so the other
/// layers' weights do not move). Each training-mode forward draws a fresh mask from it, so a
/// model built and trained with the same seed drops the same elements every time. Under `fit`
/// the stream restarts at every step from `(seed, step number)`, so a run resumed at an epoch
/// from a saved model (whose config keeps the seed) draws the masks the uninterrupted run drew.
///
/// **Cost.** One random number and one multiply per element in training (the mask is kept for
/// the backward pass); nothing at inference.
public final class Dropout: Layer {
    /// `"Dropout"`.
    public static let typeName = "Dropout"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true
    /// The layer's name, unique in its model (`"dropout"`, `"dropout_1"`, ...).
    public var name: String
    /// The probability of zeroing an element, in `0..<1`.
    public let rate: Float
    /// The seed of the layer's own stream, or nil to take one from the model's generator at build.
    public let seed: UInt64?
    /// The seed in force once built: `seed`, or the number drawn from the model's generator.
    private var streamSeed: UInt64?
    private var generator: SeededGenerator?
    private var tape = Tape<Tensor?>()

    /// A dropout layer zeroing a fraction `rate` of the elements in training.
    /// - Precondition: `0 <= rate < 1`.
    public init(rate: Float, seed: UInt64? = nil, name: String = "") {
        neuritePrecondition(rate >= 0 && rate < 1, "Dropout rate must be in 0..<1, got \(rate)")
        self.rate = rate
        self.seed = seed
        self.name = name
    }

    /// `Dropout(0.5)`.
    public convenience init(_ rate: Float, seed: UInt64? = nil, name: String = "") {
        self.init(rate: rate, seed: seed, name: name)
    }

    /// `["name", "rate", "seed"]`: `seed` is the seed in force once built (given or drawn, so a
    /// saved and reloaded model drops the same elements), null before `build` when none was given.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        ["name": .string(name), "rate": .double(Double(rate)),
         "seed": (streamSeed ?? seed).map { .int(Int(truncatingIfNeeded: $0)) } ?? .null]
    }

    /// Rebuilds from ``config``.
    public convenience init(config: [String: ConfigValue]) throws {
        try LayerConfigKeys.check(config, known: ["name", "rate", "seed"], of: Self.typeName)
        let rate = try config.double("rate", of: Self.typeName)
        guard rate >= 0 && rate < 1 else { throw LayerError("Dropout config \"rate\" must be in 0..<1, got \(rate)") }
        let seed: UInt64? = switch config["seed"] {
        case nil, .null?: nil
        default: UInt64(truncatingIfNeeded: try config.int("seed", of: Self.typeName))
        }
        self.init(rate: Float(rate), seed: seed, name: try config.optionalName(of: Self.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// The input shape unchanged.
    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    /// Seeds the layer's generator (once: building again keeps its stream going).
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        let drawn = generator.next()
        if self.generator == nil {
            streamSeed = seed ?? drawn
            self.generator = SeededGenerator(seed: streamSeed!)
        }
        return inputShape
    }

    /// None.
    public var parameters: [Parameter] { [] }

    /// In training, `input * mask` with a fresh mask of zeros and `1 / (1 - rate)`; otherwise `input`.
    /// - Precondition: built, when `training` and `rate > 0`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        guard training, rate > 0 else {
            if training { tape.push(nil) }
            return input
        }
        neuritePrecondition(generator != nil, "Dropout '\(name)' is not built: build it (or its model) before a training-mode forward")
        let keep = 1 - rate, scale = 1 / (1 - rate)
        var g = generator!
        let mask = Tensor(shape: input.shape) { m in
            for i in 0..<m.count { m[i] = g.nextUnitFloat() < keep ? scale : 0 }
        }
        generator = g
        tape.push(mask)
        return input * mask
    }

    /// `outputGradient * mask`, with the mask of the matching forward.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        guard let mask = tape.pop(layer: self) else { return outputGradient }
        neuritePrecondition(outputGradient.shape == mask.shape,
                            "Dropout '\(name)' backward: output gradient \(outputGradient.shape) differs from the output \(mask.shape)")
        return outputGradient * mask
    }
}

extension Dropout: TrainingCacheOwner, StepSeeded {
    func clearTrainingCache() { tape.clear() }

    /// `fit` calls this before each training step: the masks of step `step` come from the stream
    /// `(seed, step)`, so a run resumed at any epoch draws the masks an uninterrupted run drew.
    public func beginStep(_ step: Int) {
        guard let streamSeed else { return }
        generator = SeededGenerator(seed: streamSeed, stream: UInt64(step))
    }
}
