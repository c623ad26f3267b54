import Optimizers
import TensorCore

/// One stage of a network, with its forward and backward passes written out explicitly.
///
/// A layer's life, as in Keras: configuration at `init`, weights created by `build` from the
/// per-sample input shape (the batch axis is never part of a layer's shapes), the math in
/// `forward`, its adjoint in `backward`, and a `config` that serialises the configuration so a
/// saved architecture can be rebuilt with `init(config:)`.
///
/// `forward(_:training: true)` keeps whatever `backward` needs (inputs, masks, activations);
/// `backward` then accumulates every parameter's gradient (adding to what is there, so a layer
/// used twice gets both contributions) and returns the gradient with respect to the input.
/// Shapes are written `[B, ...]`; images are NHWC.
public protocol Layer: AnyObject {
    /// The type's name in saved architectures, as Keras names it (`"Dense"`, `"Conv2D"`).
    static var typeName: String { get }
    /// The layer's name, unique within a model (`"dense_1"`); the model assigns one when empty.
    /// Parameter names are `"<name>.<role>"`, so renaming a built layer renames its parameters.
    var name: String { get set }
    /// The configuration as JSON-compatible values: everything `init(config:)` needs to make
    /// an equivalent unbuilt layer (not the weights, which are saved separately).
    var config: [String: ConfigValue] { get }
    /// Rebuilds a layer from `config`; throws `LayerError` for a missing or ill-typed entry.
    init(config: [String: ConfigValue]) throws
    /// The per-sample output shape for a per-sample input shape, without building; throws
    /// `LayerError` naming the layer and the shape when the input does not fit.
    func outputShape(for inputShape: [Int]) throws -> [Int]
    /// Creates the weights for `inputShape` (per sample), drawing initial values and any
    /// random streams the layer needs (dropout masks) from `generator`, and returns the
    /// per-sample output shape. Building again with the same shape keeps the weights;
    /// with another shape it throws. The result may be ignored (`@discardableResult`): building
    /// is often done for its weights alone.
    @discardableResult
    func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int]
    /// Every parameter, trainable or not (running statistics are non-trainable parameters, so
    /// they are saved with the weights), in a fixed order.
    var parameters: [Parameter] { get }
    /// Whether training updates the layer's weights: Keras' `trainable`, `true` by default.
    ///
    /// Setting it to `false` freezes the layer: every weight it learns gets
    /// `Parameter.isTrainable == false`, so optimizers skip it, while gradients still flow
    /// through the layer to the layers before it. Running statistics are never trainable, and a
    /// frozen `BatchNormalization` also normalises with them in training (Keras 3's fine-tuning
    /// behaviour). The flag is kept before `build` and honoured by it, appears in ``config`` as
    /// `"trainable": false` when the layer is frozen (a trainable layer's config is unchanged),
    /// and `init(config:)` reads it back. A change takes effect at the next training step, with no
    /// need to compile again; an optimizer keeps a frozen weight's state (Adam's moments) and
    /// goes on from it when the weight is unfrozen.
    ///
    /// The built-in layers store the flag. A layer of your own may too (set its parameters'
    /// `isTrainable` from it in `build` and when it changes); the default implementation, for a
    /// layer that does not, reads `true` when any parameter is trainable (or there are none) and
    /// sets `isTrainable` on every parameter the layer has now. It therefore acts on built layers
    /// only, and is wrong for a layer with non-trainable state of its own (running statistics):
    /// such a layer should store the flag.
    var trainable: Bool { get set }
    /// Runs the layer on a batch `[B, ...]`. With `training: true` it behaves as in training
    /// (dropout active, batch statistics) and keeps what `backward` needs.
    func forward(_ input: Tensor, training: Bool) -> Tensor
    /// Given dLoss/dOutput for the last training-mode `forward`, accumulates the parameters'
    /// gradients and returns dLoss/dInput. A layer may skip the gradients of its frozen
    /// (non-trainable) parameters, which optimizers never apply.
    func backward(_ outputGradient: Tensor) -> Tensor
}

extension Layer {
    /// The default for layers that keep no flag of their own: see the requirement's discussion.
    public var trainable: Bool {
        get { parameters.isEmpty || parameters.contains { $0.isTrainable } }
        set { for p in parameters { p.isTrainable = newValue } }
    }
}

/// A layer that can be configured to produce several tensors, as Keras' recurrent layers with
/// `return_state` produce `[output, state_h(, state_c)]`. `Layer.forward` returns the first of them;
/// the others come from the layer's own API. A `Sequential` passes exactly one tensor from layer to
/// layer, so building one that holds such a layer with ``outputCount`` above 1 throws a
/// `LayerError` (Keras refuses the same: "All layers in a Sequential model should have a single
/// output tensor"), rather than silently dropping the other outputs.
public protocol MultipleOutputLayer: Layer {
    /// How many tensors the layer produces as configured (1 when it is an ordinary layer).
    var outputCount: Int { get }
}

/// A JSON-compatible configuration value of a layer (or of a whole model's architecture).
public enum ConfigValue: Codable, Equatable, Sendable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)
    case ints([Int])
    case null
    /// A list that is not all integers (Keras writes lists of strings, numbers, objects).
    case list([ConfigValue])
    /// A JSON object: Keras writes initialisers, dtype policies and nested layers as
    /// `{"class_name": ..., "config": {...}}`.
    case object([String: ConfigValue])

    /// Decodes from a JSON value: a number, string, bool, null, a list (`.ints` when every
    /// element is an integer) or an object. Nesting is bounded by the JSON decoder's own depth
    /// limit, so a hostile file cannot exhaust the stack.
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([Int].self) { self = .ints(a) }
        else if let a = try? c.decode([ConfigValue].self) { self = .list(a) }
        else if let o = try? c.decode([String: ConfigValue].self) { self = .object(o) }
        else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a layer configuration value")
        }
    }

    /// Encodes as a plain JSON value.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        case .ints(let v): try c.encode(v)
        case .null: try c.encodeNil()
        case .list(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }

    /// The value as JSON text.
    public var description: String {
        switch self {
        case .int(let v): "\(v)"
        case .double(let v): "\(v)"
        case .string(let v): "\"\(v)\""
        case .bool(let v): "\(v)"
        case .ints(let v): "\(v)"
        case .null: "null"
        case .list(let v): "[" + v.map(\.description).joined(separator: ", ") + "]"
        case .object(let v): "{" + v.keys.sorted().map { "\"\($0)\": \(v[$0]!)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A layer or model could not be built, configured or restored; the message names the layer,
/// the shapes or keys concerned, and what was expected.
public struct LayerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What was wrong.
    public var message: String
    /// Makes an error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

extension Dictionary where Key == String, Value == ConfigValue {
    /// The integer at `key`, or a `LayerError` naming the key and the layer type.
    public func int(_ key: String, of type: String) throws -> Int {
        guard case .int(let v)? = self[key] else { throw LayerError("\(type) config needs an integer \"\(key)\", got \(self[key].map { "\($0)" } ?? "nothing")") }
        return v
    }

    /// The number (integer or floating point) at `key`, or a `LayerError`.
    public func double(_ key: String, of type: String) throws -> Double {
        switch self[key] {
        case .double(let v)?: return v
        case .int(let v)?: return Double(v)
        default: throw LayerError("\(type) config needs a number \"\(key)\", got \(self[key].map { "\($0)" } ?? "nothing")")
        }
    }

    /// The string at `key`, or a `LayerError`.
    ///
    /// Keras 3's object form of a simple value counts as its string: a float32 dtype policy is
    /// `"float32"`, an initialiser object without settings (`{"class_name": "GlorotUniform",
    /// "config": {"seed": null}}`) is its snake-case class name, `"glorot_uniform"`.
    public func string(_ key: String, of type: String) throws -> String {
        guard case .string(let v)? = self[key].map(LayerConfigKeys.simplified) else { throw LayerError("\(type) config needs a string \"\(key)\", got \(self[key].map { "\($0)" } ?? "nothing")") }
        return v
    }

    /// The boolean at `key`, or a `LayerError`.
    public func bool(_ key: String, of type: String) throws -> Bool {
        guard case .bool(let v)? = self[key] else { throw LayerError("\(type) config needs a boolean \"\(key)\", got \(self[key].map { "\($0)" } ?? "nothing")") }
        return v
    }

    /// The integer list at `key`, or a `LayerError`.
    public func ints(_ key: String, of type: String) throws -> [Int] {
        guard case .ints(let v)? = self[key] else { throw LayerError("\(type) config needs a list of integers \"\(key)\", got \(self[key].map { "\($0)" } ?? "nothing")") }
        return v
    }
}
