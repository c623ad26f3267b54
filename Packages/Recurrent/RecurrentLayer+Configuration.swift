import Layers
import Optimizers
import TensorCore

// The configuration of a recurrent layer: what `config` saves and how a config is read back.

extension RecurrentLayer {
    /// The keys every recurrent layer saves: `name`, `units`, `activation`, `recurrent_activation`
    /// (not SimpleRNN's), `use_bias`, `return_sequences`, `return_state`, `go_backwards`,
    /// `stateful`, `mask_value`, `truncate_gradient`, `dropout`, `recurrent_dropout`, `seed`,
    /// `kernel_initializer`, `recurrent_initializer`, `bias_initializer`, and `trainable: false`
    /// for a frozen layer, and the cell's own keys (an LSTM's `unit_forget_bias`, a GRU's
    /// `reset_after: true`). `seed` is the seed in
    /// force once built with a rate above 0 (given or drawn, so a reloaded model draws the same
    /// masks), else the given one or null.
    public var config: [String: ConfigValue] {
        var c: [String: ConfigValue] = [
            "name": .string(name), "units": .int(units), "activation": .string(activation.configName),
            "use_bias": .bool(useBias), "return_sequences": .bool(returnSequences), "return_state": .bool(returnState),
            "go_backwards": .bool(goBackwards), "stateful": .bool(stateful),
            "mask_value": maskValue.map { .double(Double($0)) } ?? .null,
            "truncate_gradient": truncateGradient.map { .int($0) } ?? .null,
            "dropout": .double(Double(dropout)), "recurrent_dropout": .double(Double(recurrentDropout)),
            "seed": (streamSeed ?? seed).map { .int(Int(truncatingIfNeeded: $0)) } ?? .null,
            "kernel_initializer": .string(kernelInitializer.configName),
            "recurrent_initializer": .string(recurrentInitializer?.configName ?? "orthogonal"),
            "bias_initializer": .string(biasInitializer.configName),
        ]
        if type(of: cell).gateCount > 1 { c["recurrent_activation"] = .string(recurrentActivation.configName) }
        c.merge(cell.config) { _, own in own }
        return c.addingTrainable(trainable)
    }

    /// The common options read back from a config, with Keras' defaults for absent keys (null
    /// counts as absent). Every key is checked: one the layer does not implement, or a value that
    /// would make it compute something else than the config says, throws a `LayerError` naming
    /// the layer, the key and the value. Keys Keras writes that do not change the math are
    /// accepted with the values that keep it so (see ``RecurrentLayer/init(config:)``).
    struct Options {
        var units: Int
        var activation: ActivationFunction = .tanh
        var recurrentActivation: ActivationFunction = .sigmoid
        var useBias = true
        var returnSequences = false
        var returnState = false
        var goBackwards = false
        var stateful = false
        var maskValue: Float?
        var truncateGradient: Int?
        var dropout: Float = 0
        var recurrentDropout: Float = 0
        var seed: UInt64?
        var kernelInitializer: Initializer = .glorotUniform
        var recurrentInitializer: Initializer?
        var biasInitializer: Initializer = .zeros
        var name = ""
        /// Keras' `trainable`: the layer's initialiser sets its flag from it.
        var trainable = true
        /// `"LSTM 'encoder'"`, or `"LSTM"` for an unnamed layer: how errors name the layer (set
        /// when read from a config).
        var who = ""
    }
}

extension RecurrentLayer.Options {
    /// Reads `c` for a layer of type `t` with `gates` gates; `own` are the keys its cell reads
    /// itself (`unit_forget_bias`, `reset_after`).
    init(config c: [String: ConfigValue], type t: String, gates: Int, own: Set<String> = []) throws {
        switch c["name"] {
        case nil, .null?: break
        case .string(let s)?: name = s
        case let v?: throw LayerError("\(t) config \"name\" must be a string, got \(v)")
        }
        let who = name.isEmpty ? t : "\(t) '\(name)'"
        self.who = who
        func has(_ k: String) -> Bool { if case .null? = c[k] { return false }; return c[k] != nil }
        func unsupported(_ k: String, _ why: String) -> LayerError {
            LayerError("\(who) config \"\(k)\": \(c[k].map { "\($0)" } ?? "nothing") is not supported (\(why))")
        }
        units = try c.int("units", of: who)
        guard units > 0 else { throw LayerError("\(who) config needs a positive \"units\", got \(units)") }
        func gate(_ k: String) throws -> ActivationFunction {
            let f: ActivationFunction
            do { f = try ActivationFunction(configName: c.string(k, of: who)) } catch let e as LayerError {
                throw LayerError("\(who) config \"\(k)\": \(e.message)")
            }
            guard f.isRecurrentGate else {
                throw LayerError("\(who) config \"\(k)\": \(f.configName) is not supported (tanh, sigmoid, relu or linear)")
            }
            return f
        }
        func initializer(_ k: String) throws -> Initializer {
            do { return try Initializer(configName: c.string(k, of: who)) } catch let e as LayerError {
                throw LayerError("\(who) config \"\(k)\": \(e.message)")
            }
        }
        func rate(_ k: String) throws -> Float {
            let r = try c.double(k, of: who)
            guard r >= 0 && r < 1 else { throw LayerError("\(who) config \"\(k)\" must be in 0..<1, got \(r)") }
            return Float(r)
        }
        if has("activation") { activation = try gate("activation") }
        if has("recurrent_activation") { recurrentActivation = try gate("recurrent_activation") }
        if has("use_bias") { useBias = try c.bool("use_bias", of: who) }
        if has("return_sequences") { returnSequences = try c.bool("return_sequences", of: who) }
        if has("return_state") { returnState = try c.bool("return_state", of: who) }
        if has("go_backwards") { goBackwards = try c.bool("go_backwards", of: who) }
        if has("stateful") { stateful = try c.bool("stateful", of: who) }
        if has("mask_value") { maskValue = Float(try c.double("mask_value", of: who)) }
        if has("truncate_gradient") {
            let k = try c.int("truncate_gradient", of: who)
            guard k > 0 else { throw LayerError("\(who) config needs a positive \"truncate_gradient\", got \(k)") }
            truncateGradient = k
        }
        if has("dropout") { dropout = try rate("dropout") }
        if has("recurrent_dropout") { recurrentDropout = try rate("recurrent_dropout") }
        if has("seed") { seed = UInt64(truncatingIfNeeded: try c.int("seed", of: who)) }
        if has("kernel_initializer") { kernelInitializer = try initializer("kernel_initializer") }
        if has("recurrent_initializer") {
            let s = try c.string("recurrent_initializer", of: who)
            recurrentInitializer = s == "orthogonal" ? nil : try initializer("recurrent_initializer")
        }
        if has("bias_initializer") { biasInitializer = try initializer("bias_initializer") }

        // Every other key: accepted only where it leaves the math as the layer computes it.
        let read: Set<String> = [
            "name", "units", "activation", "use_bias", "return_sequences", "return_state", "go_backwards",
            "stateful", "mask_value", "truncate_gradient", "dropout", "recurrent_dropout", "seed",
            "kernel_initializer", "recurrent_initializer", "bias_initializer",
        ]
        for key in c.keys.sorted() where !read.contains(key) && !own.contains(key) {
            let v = c[key]!
            switch key {
            case "recurrent_activation" where gates > 1:
                continue
            case "trainable":
                guard case .bool(let flag) = v else { throw unsupported(key, "true or false") }
                trainable = flag
            case "dtype":
                guard v == .null || v == .string("float32") else { throw unsupported(key, "the layer computes in float32") }
            case "unroll":
                // Unrolling the loop is Keras' speed option; the result is the same.
                guard case .bool = v else { throw unsupported(key, "true or false") }
            case "zero_output_for_mask":
                guard v == .bool(false) || v == .null else {
                    throw unsupported(key, "masked steps repeat the previous output, Keras' default false")
                }
            case "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                 "kernel_constraint", "recurrent_constraint", "bias_constraint":
                guard v == .null else { throw unsupported(key, "no regularizers or constraints in recurrent layers: null only") }
            case "use_cudnn" where gates > 1:
                // Which backend kernel Keras picks; the result is the same.
                guard v == .string("auto") || v == .bool(true) || v == .bool(false) else {
                    throw unsupported(key, "\"auto\", true or false")
                }
            case "implementation" where gates > 1:
                // Keras' implementation 1 draws one input mask per gate; 2 (its default) one
                // for all gates, unless recurrent dropout is on (then 1 is forced), which is
                // what this layer does. Without dropout both compute the same.
                guard v == .int(2) || v == .int(1) && (dropout == 0 || recurrentDropout > 0) else {
                    throw unsupported(key, "2, or 1 where it computes the same (no dropout, or recurrent_dropout above 0)")
                }
            default:
                throw LayerError("\(who) config has key \"\(key)\" (value \(v)), which \(t) does not implement")
            }
        }
    }
}

extension RecurrentLayer {
    /// Reads `config` for a layer of this type whose cell is `C`: the common options (every key
    /// checked), then the cell's own keys. What each subclass's `init(config:)` starts with.
    static func read<C: RecurrentCell>(_ config: [String: ConfigValue], cell: C.Type) throws -> (Options, C) {
        let options = try Options(config: config, type: typeName, gates: C.gateCount, own: C.ownKeys)
        return (options, try C(config: config, who: options.who))
    }
}
