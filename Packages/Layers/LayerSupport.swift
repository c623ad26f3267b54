import Optimizers
import TensorCore

// Internal machinery shared by the layers of this module.

/// What a layer keeps from its training-mode forward passes for their backward passes.
///
/// A layer may be applied several times in one forward pass (a shared layer, or the same
/// instance placed twice in a `Sequential`): each training-mode forward pushes an entry, and each
/// backward pass, which runs in reverse order, pops the latest one. The entry popped last stays
/// available, so calling `backward` again for the same forward accumulates its gradients once
/// more (as the `Layer` protocol promises). `Sequential` clears the tapes of its layers at the
/// start of every training-mode forward, so entries left by forwards that were never followed by
/// a backward do not pile up.
struct Tape<Entry> {
    private var entries: [Entry] = []
    private var lastPopped: Entry?

    mutating func push(_ entry: Entry) { entries.append(entry) }

    /// The latest unconsumed entry, or the one consumed last.
    mutating func pop(layer: some Layer) -> Entry {
        if let entry = entries.popLast() {
            lastPopped = entry
            return entry
        }
        guard let entry = lastPopped else {
            neuritePreconditionFailure("backward of \(type(of: layer).typeName) '\(layer.name)' without a training-mode forward: "
                                       + "call forward(_:training: true) first")
        }
        return entry
    }

    mutating func clear() {
        entries.removeAll()
        lastPopped = nil
    }
}

/// A layer with randomness that `fit` reseeds at every training step from the step's number
/// (``Dropout``, and the recurrent layers' dropout in the Recurrent module), so that resuming a run
/// at an epoch reproduces the uninterrupted run exactly. A `Sequential` calls ``beginStep(_:)`` on
/// each such layer, nested models included, before every training step of `fit`.
public protocol StepSeeded: AnyObject {
    /// Restarts the layer's random stream at `(seed, step)`, where `step` counts training steps
    /// from 0 over the whole run (times the replicas, plus the rank, under data parallelism).
    /// Does nothing before the layer is built. Cost: one generator seeding.
    func beginStep(_ step: Int)
}

/// A layer whose training caches a model can drop before a new forward pass.
protocol TrainingCacheOwner: AnyObject {
    func clearTrainingCache()
}

/// A layer defined outside this module that keeps what its training-mode forward passes leave for
/// their backward passes (the recurrent layers): a `Sequential` calls ``clearTrainingState()`` on
/// it at the start of every outermost training-mode forward, so state left by forwards never
/// followed by a backward does not pile up.
public protocol TrainingStateOwner: AnyObject {
    /// Drops everything kept for backward passes (not the weights, nor a stateful layer's states).
    func clearTrainingState()
    /// The backward pass for the parameters' gradients alone, skipping the input gradient: what a
    /// training step runs on a model's first layer with parameters (nobody needs its input's
    /// gradient). Same effect on the parameters as `backward`.
    func backwardParameterGradients(_ outputGradient: Tensor)
}

/// A layer that can run its backward pass for its parameters' gradients alone, skipping the
/// input gradient (which the first layer of a model need not compute).
protocol ParameterGradientBackward: AnyObject {
    func backwardParameterGradients(_ outputGradient: Tensor)
}

extension Dictionary where Key == String, Value == ConfigValue {
    /// The `"name"` entry, or `""` (the model then names the layer) when it is absent or null.
    func optionalName(of type: String) throws -> String {
        switch self["name"] {
        case nil, .null?: return ""
        case .string(let s)?: return s
        case let other?: throw LayerError("\(type) config needs a string \"name\", got \(other)")
        }
    }
}

extension Dictionary where Key == String, Value == ConfigValue {
    /// Keras' `"trainable"` flag: `true` when absent, else the boolean; a `LayerError` naming the
    /// layer type and the value for anything else. Every layer's `init(config:)` reads it.
    package func trainable(of type: String) throws -> Bool {
        switch self["trainable"] {
        case nil: return true
        case .bool(let flag)?: return flag
        case let other?: throw LayerError("\(type) config needs a boolean \"trainable\", got \(other)")
        }
    }

    /// This config with `"trainable": false` added when `trainable` is false: a frozen layer is
    /// saved as such, while a trainable layer's config (and so every file saved before freezing
    /// existed) stays as it was.
    package func addingTrainable(_ trainable: Bool) -> Self {
        guard !trainable else { return self }
        var config = self
        config["trainable"] = .bool(false)
        return config
    }
}

/// Keras' `to_snake_case`: `"Dense"` -> `"dense"`, `"BatchNormalization"` -> `"batch_normalization"`,
/// `"Conv2D"` -> `"conv2d"`, `"MaxPooling2D"` -> `"max_pooling2d"`: the base of automatic names.
func snakeCase(_ name: String) -> String {
    let chars = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
    var out = ""
    for (i, c) in chars.enumerated() {
        if c.isUppercase && i > 0 {
            let prev = chars[i - 1]
            let nextIsLower = i + 1 < chars.count && chars[i + 1].isLowercase
            // "(.)([A-Z][a-z]+)" -> "\1_\2", then "([a-z])([A-Z])" -> "\1_\2".
            if nextIsLower || prev.isLowercase { out.append("_") }
        }
        out.append(c)
    }
    return out.lowercased()
}

/// A shape as Keras prints it in summaries: `(None, 28, 28, 1)`.
func kerasShape(_ shape: [Int]) -> String {
    "(" + (["None"] + shape.map(String.init)).joined(separator: ", ") + ")"
}

/// The check every layer's `init(config:)` makes first: a key it does not implement is an error,
/// never silently ignored (a Keras config whose `groups`, `renorm` or constraint would change the
/// math must not load as a different model).
enum LayerConfigKeys {
    /// Keras keys the layers accept only with their default value, which is all Neurite
    /// implements: a saved Keras config carries them, a non-default value must not be ignored.
    static let defaultOnly: [String: [ConfigValue]] = [
        "dtype": [.null, .string("float32")],
        "groups": [.int(1)],
        "bias_initializer": [.string("zeros")],
        "kernel_regularizer": [.null], "bias_regularizer": [.null], "activity_regularizer": [.null],
        "kernel_constraint": [.null], "bias_constraint": [.null],
        "lora_rank": [.null],
        "noise_shape": [.null],
    ]

    /// Throws a `LayerError` naming the layer type, the key and its value for a key outside
    /// `known` (the keys the layer implements) or a default-only key (``defaultOnly``, then
    /// `extraDefaults`) with another value. Keys are checked in sorted order, so the message does
    /// not depend on hashing. `"trainable"` is every layer's, and may be `true` or `false` (the
    /// layer reads it with `trainable(of:)`); another value throws.
    static func check(_ config: [String: ConfigValue], known: Set<String>, extraDefaults: [String: [ConfigValue]] = [:],
                      of type: String) throws {
        for key in config.keys.sorted() where !known.contains(key) {
            let value = config[key]!
            if key == "trainable" {
                _ = try config.trainable(of: type)
                continue
            }
            guard let allowed = extraDefaults[key] ?? defaultOnly[key] else {
                throw LayerError("\(type) config has key \"\(key)\" (value \(value)), which Neurite does not implement")
            }
            guard allowed.contains(value) || allowed.contains(simplified(value)) else {
                let expected = allowed.map { "\($0)" }.joined(separator: " or ")
                throw LayerError("\(type) config has \(key) \(value); Neurite implements only \(expected)")
            }
        }
    }

    /// Keras 3's object form of a simple value, as its string: a dtype policy
    /// `{"class_name": "DTypePolicy", "config": {"name": "float32"}}` is `"float32"`, an object
    /// without settings such as `{"class_name": "Zeros", "config": {}}` is `"zeros"` (the class
    /// name in snake case). Anything else is returned unchanged.
    static func simplified(_ value: ConfigValue) -> ConfigValue {
        guard case .object(let object) = value, case .string(let className)? = object["class_name"] else { return value }
        let settings: [String: ConfigValue]
        switch object["config"] {
        case .object(let c)?: settings = c
        case nil, .null?: settings = [:]
        default: return value
        }
        if className == "DTypePolicy", case .string(let name)? = settings["name"] { return .string(name) }
        guard settings.values.allSatisfy({ $0 == .null }) else { return value }
        var snake = ""
        for (i, ch) in className.enumerated() {
            if ch.isUppercase && i > 0 { snake.append("_") }
            snake += ch.lowercased()
        }
        return .string(snake)
    }
}
