import Foundation
import Layers
import Recurrent

// Reading a Keras 3 model configuration (`config.json` of a `.keras` archive, or
// `model.to_json()`, which has the same form) into a `Sequential`:
//
//   {"module": "keras", "class_name": "Sequential", "config": {"name": ..., "layers": [
//       {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1], ...}},
//       {"module": "keras.layers", "class_name": "Conv2D", "config": {...}, "build_config": {...}}, ...]},
//    "compile_config": ...}
//
// Each layer's config goes to the Neurite layer of the same class name (`LayerRegistry`, which
// knows Keras' names and aliases) after the Keras 3 object forms its `init(config:)` does not
// read are turned into its strings: initialiser objects with settings (`RandomUniform` with its
// bounds, `Orthogonal` with gain 1) become `"random_uniform(minval=...,maxval=...)"` and
// `"orthogonal"`; `quantization_config: null` is dropped. `Bidirectional`'s nested `layer` (and
// its `backward_layer`, which must mirror it) becomes Neurite's flattened `layer.<key>` form.
// Everything else is the layer's own business: a key or value it does not implement makes it
// throw a `LayerError`, reported as `KerasInteropError.unsupportedLayerConfig` naming the layer.
// `compile_config` (the optimizer and loss) is not read: compile the model in Neurite.

/// A layer of the Keras configuration, read but not made yet.
private struct PendingLayer {
    var index: Int
    var name: String
    var className: String
    var type: any Layer.Type
    var config: [String: ConfigValue]
    /// For Keras' `Masking` layer, which becomes the next layer's `mask_value`: its mask value.
    var masking: Double?

    var isRecurrent: Bool { ["SimpleRNN", "LSTM", "GRU", "Bidirectional"].contains(className) }
    /// The key of a recurrent setting: Bidirectional keeps its wrapped layer's as `layer.<key>`.
    func key(_ k: String) -> String { className == "Bidirectional" ? "layer." + k : k }
}

enum KerasConfigReader {
    /// The per-sample input shape a configuration declares, `nil` for a variable (None) axis,
    /// with where it was declared (for messages).
    struct DeclaredShape {
        var extents: [Int?]
        var layer: String
        var className: String
        var key: String
        var text: String
    }

    /// The model described by `data`, unbuilt, and the per-sample input shape to build it for:
    /// `inputShape` when given (it must agree with the declared shape on every fixed axis, and
    /// fills its variable ones), else the one its `InputLayer` (or `build_input_shape`)
    /// declares, if any.
    static func read(_ data: Data, inputShape given: [Int]? = nil) throws -> (model: Sequential, inputShape: [Int]?) {
        RecurrentLayers.register()
        let root: ConfigValue
        do {
            root = try JSONDecoder().decode(ConfigValue.self, from: data)
        } catch {
            throw KerasInteropError.invalidModelConfig(path: "", reason: "not a JSON model configuration (\(error))")
        }
        guard case .object(let top) = root else { throw invalid("", "expected a JSON object, got \(root)") }
        guard case .string(let className)? = top["class_name"] else {
            throw invalid("class_name", "expected the model's class name, got \(top["class_name"].map { "\($0)" } ?? "nothing")")
        }
        guard className == "Sequential" else {
            let kind = ["Functional", "Model"].contains(className) ? "a functional model" : "a model of class \(className)"
            throw KerasInteropError.unsupportedModel(className: className,
                                                     reason: "\(kind); KerasInterop reads Sequential models only")
        }
        guard case .object(let config)? = top["config"] else { throw invalid("config", "expected an object") }
        for key in config.keys.sorted() {
            let value = config[key]!
            switch key {
            case "name", "layers", "build_input_shape": continue
            case "trainable" where value == .bool(true): continue
            case "dtype" where isFloat32(value): continue
            default:
                throw KerasInteropError.unsupportedModel(className: "Sequential",
                                                         reason: "model config \"\(key)\": \(value) is not supported")
            }
        }
        let name: String
        switch config["name"] {
        case nil, .null?: name = ""
        case .string(let s)?: name = s
        case let other?: throw invalid("config.name", "expected a string, got \(other)")
        }
        let entries: [ConfigValue]
        switch config["layers"] {
        case .list(let l)?: entries = l
        case .ints([])?: entries = []
        default: throw invalid("config.layers", "expected a list of layers")
        }

        var inputShape: DeclaredShape?
        var pending: [PendingLayer] = []
        for (i, entry) in entries.enumerated() {
            let path = "config.layers[\(i)]"
            guard case .object(let layer) = entry else { throw invalid(path, "expected an object") }
            for key in layer.keys where !["module", "class_name", "config", "registered_name", "build_config", "shared_object_id"].contains(key) {
                throw invalid(path, "unexpected key \"\(key)\" (a functional model's layer?)")
            }
            guard case .string(let layerClass)? = layer["class_name"] else { throw invalid(path + ".class_name", "expected a string") }
            guard case .object(let layerConfig)? = layer["config"] else { throw invalid(path + ".config", "expected an object") }
            let layerName: String
            switch layerConfig["name"] {
            case nil, .null?: layerName = ""
            case .string(let s)?: layerName = s
            case let other?: throw invalid(path + ".config.name", "expected a string, got \(other)")
            }
            let label = layerName.isEmpty ? "layer \(i)" : layerName
            if case .string(let module)? = layer["module"], !module.hasPrefix("keras") {
                throw KerasInteropError.unsupportedLayer(layer: label, className: layerClass,
                                                         reason: "a custom layer from module \(module)")
            }
            if let registered = layer["registered_name"], registered != .null, registered != .string(layerClass) {
                throw KerasInteropError.unsupportedLayer(layer: label, className: layerClass,
                                                         reason: "a custom layer registered as \(registered)")
            }
            if layerClass == "InputLayer" {
                guard i == 0 else { throw invalid(path, "an InputLayer can only come first") }
                inputShape = try readInputLayer(layerConfig, label: label)
                continue
            }
            pending.append(try pendingLayer(layerClass, layerConfig, name: layerName, label: label, index: i))
        }
        if inputShape == nil, let shape = config["build_input_shape"], shape != .null {
            inputShape = try perSampleShape(shape, layer: "the model", className: "Sequential", key: "build_input_shape")
        }
        try resolveMasks(&pending)

        let model = Sequential(name: name)
        for p in pending where p.masking == nil {
            let layer: any Layer
            do {
                layer = try p.type.init(config: p.config)
            } catch let error as LayerError {
                throw KerasInteropError.unsupportedLayerConfig(layer: p.name.isEmpty ? "layer \(p.index)" : p.name,
                                                               className: p.className, reason: error.message)
            }
            // A frozen Keras layer must come out frozen: a layer type that does not keep the
            // flag (its config would say so) cannot represent it.
            if p.config["trainable"] == .bool(false) && layer.config["trainable"] != .bool(false) {
                throw KerasInteropError.unsupportedLayerConfig(layer: p.name.isEmpty ? "layer \(p.index)" : p.name,
                                                               className: p.className,
                                                               reason: "trainable false (a frozen layer) is not supported by Neurite's \(p.className)")
            }
            model.add(layer)
        }
        return (model, try resolve(inputShape, given: given))
    }

    /// The shape to build for: `given` checked against `declared`, or `declared` without
    /// variable axes.
    static func resolve(_ declared: DeclaredShape?, given: [Int]?) throws -> [Int]? {
        if let given {
            if let declared {
                let agrees = declared.extents.count == given.count
                    && zip(declared.extents, given).allSatisfy { d, g in d == nil || d == g }
                guard agrees else {
                    throw KerasInteropError.unsupportedLayerConfig(
                        layer: declared.layer, className: declared.className,
                        reason: "\(declared.key) \(declared.text) does not fit the input shape \(given) given to load it with")
                }
            }
            try KerasWeights.checkElements(given, layer: declared?.layer ?? "the input", className: declared?.className ?? "InputLayer")
            return given
        }
        guard let declared else { return nil }
        let fixed = declared.extents.compactMap { $0 }
        guard fixed.count == declared.extents.count else {
            let axis = declared.extents.firstIndex(where: { $0 == nil })! + 1
            throw KerasInteropError.unsupportedLayerConfig(
                layer: declared.layer, className: declared.className,
                reason: "\(declared.key) \(declared.text) leaves axis \(axis) variable (None); Neurite builds a model for one "
                    + "per-sample shape: give the shape to load it with (inputShape:)")
        }
        return fixed
    }

    // MARK: Layers

    /// The Neurite type and config of one Keras layer.
    private static func pendingLayer(_ className: String, _ config: [String: ConfigValue], name: String, label: String,
                                     index: Int) throws -> PendingLayer {
        if className == "Masking" {
            return PendingLayer(index: index, name: name, className: className, type: Input.self, config: [:],
                                masking: try maskValue(config, label: label))
        }
        if className == "Bidirectional" {
            return PendingLayer(index: index, name: name, className: className, type: Bidirectional.self,
                                config: try bidirectionalConfig(config, label: label))
        }
        guard !["Sequential", "Functional", "Model"].contains(className),
              let type = LayerRegistry.type(named: className), !(type is Sequential.Type), !(type is Input.Type) else {
            let reason = ["Sequential", "Functional", "Model"].contains(className)
                ? "a model nested in the model; KerasInterop reads flat Sequential models"
                : "Neurite has no \(className) layer"
            throw KerasInteropError.unsupportedLayer(layer: label, className: className, reason: reason)
        }
        var converted = try neuriteConfig(config, className: className, label: label)
        if className == "Embedding" { try checkEmbedding(converted, label: label) }
        if ["SimpleRNN", "LSTM", "GRU"].contains(className) {
            // Keras writes it; without a mask (see resolveMasks) it changes nothing.
            converted["zero_output_for_mask"] = converted["zero_output_for_mask"] ?? .bool(false)
        }
        return PendingLayer(index: index, name: name, className: className, type: type, config: converted)
    }

    /// A Keras layer config with Keras 3's object forms turned into the strings Neurite's layers
    /// read (see the top of this file).
    static func neuriteConfig(_ config: [String: ConfigValue], className: String, label: String) throws -> [String: ConfigValue] {
        func unsupported(_ key: String, _ why: String) -> KerasInteropError {
            .unsupportedLayerConfig(layer: label, className: className, reason: "\"\(key)\": \(config[key]!) \(why)")
        }
        var out: [String: ConfigValue] = [:]
        for key in config.keys.sorted() {
            let value = config[key]!
            switch key {
            case "quantization_config":
                guard value == .null else { throw unsupported(key, "is not supported (quantised layers)") }
            case "dtype":
                guard isFloat32(value) else { throw unsupported(key, "is not supported: Neurite computes in float32") }
                out[key] = .string("float32")
            case let k where k.hasSuffix("_initializer"):
                out[key] = .string(try initializerName(value, key: key, className: className, label: label))
            case "seed":
                out[key] = value
            default:
                guard integersAreBounded(value) else { throw unsupported(key, "holds an integer beyond ±2^31") }
                out[key] = value
            }
        }
        if className == "Reshape", case .ints(let target)? = out["target_shape"] {
            // Reshape multiplies the extents; a hostile target must not overflow there.
            try KerasWeights.checkElements(target.map { $0 == -1 ? 1 : $0 }, layer: label, className: className)
        }
        return out
    }

    /// Embedding reads the keys it knows and ignores the rest; a Keras key it does not implement
    /// must not pass unnoticed.
    private static func checkEmbedding(_ config: [String: ConfigValue], label: String) throws {
        let known: Set<String> = ["name", "input_dim", "output_dim", "embeddings_initializer", "mask_zero", "dtype"]
        let nullOnly: Set<String> = ["embeddings_regularizer", "activity_regularizer", "embeddings_constraint",
                                     "lora_rank", "lora_alpha", "input_length"]
        for key in config.keys.sorted() where !known.contains(key) {
            let value = config[key]!
            if nullOnly.contains(key) && value == .null { continue }
            // Whether the layer keeps a false one is checked once it is made (see read).
            if key == "trainable", case .bool = value { continue }
            throw KerasInteropError.unsupportedLayerConfig(layer: label, className: "Embedding",
                                                           reason: "\"\(key)\": \(value) is not supported")
        }
    }

    /// Keras' Bidirectional (`layer` and optional `backward_layer` objects) as Neurite's config
    /// (`layer`: the class name, the wrapped layer's keys as `layer.<key>`).
    private static func bidirectionalConfig(_ config: [String: ConfigValue], label: String) throws -> [String: ConfigValue] {
        let className = "Bidirectional"
        func unsupported(_ why: String) -> KerasInteropError {
            .unsupportedLayerConfig(layer: label, className: className, reason: why)
        }
        var out: [String: ConfigValue] = [:]
        for key in config.keys.sorted() where !["layer", "backward_layer"].contains(key) {
            let value = config[key]!
            switch key {
            case "name", "trainable": out[key] = value
            case "merge_mode":
                guard value != .null else { throw unsupported("merge_mode null (two outputs) is not supported in a Sequential") }
                out[key] = value
            case "dtype":
                guard isFloat32(value) else { throw unsupported("\"dtype\": \(value) is not supported: Neurite computes in float32") }
                out[key] = .string("float32")
            default:
                throw unsupported("\"\(key)\": \(value) is not supported")
            }
        }
        func wrapped(_ key: String) throws -> (String, [String: ConfigValue])? {
            guard let value = config[key] else { return nil }
            guard case .object(let o) = value, case .string(let inner)? = o["class_name"], case .object(let c)? = o["config"] else {
                throw KerasInteropError.invalidModelConfig(path: "\(label).\(key)", reason: "expected a layer object")
            }
            guard ["SimpleRNN", "LSTM", "GRU"].contains(inner) else {
                throw KerasInteropError.unsupportedLayer(layer: label, className: className,
                                                         reason: "wraps a \(inner); Neurite's Bidirectional wraps SimpleRNN, LSTM or GRU")
            }
            var converted = try neuriteConfig(c, className: inner, label: "\(label).\(key)")
            converted["name"] = nil
            return (inner, converted)
        }
        guard let (inner, forward) = try wrapped("layer") else {
            throw KerasInteropError.invalidModelConfig(path: label, reason: "Bidirectional without \"layer\"")
        }
        if let (backwardClass, backward) = try wrapped("backward_layer") {
            // Neurite's backward layer is the forward one's configuration run backwards.
            var mirrored = forward
            mirrored["go_backwards"] = .bool(!(forward["go_backwards"] == .bool(true)))
            var b = backward
            b["seed"] = nil
            mirrored["seed"] = nil
            guard backwardClass == inner, b == mirrored else {
                throw unsupported("its backward_layer is not its layer run backwards (same class and settings), which Neurite requires")
            }
        }
        out["layer"] = .string(inner)
        for (k, v) in forward { out["layer." + k] = v }
        out["layer.zero_output_for_mask"] = nil  // decided by resolveMasks
        return out
    }

    /// Keras' masks, as the recurrent layers' `mask_value`. `Embedding(mask_zero=True)` masks the
    /// padding steps of the recurrent layer after it; Neurite's embedding outputs zero vectors for
    /// token 0 and the recurrent layer skips steps whose features all equal its `mask_value`, so
    /// that layer gets `mask_value` 0. `Masking(mask_value=v)` masks the steps whose features all
    /// equal v, which is what Neurite's recurrent layers do with `mask_value` v, so it becomes the
    /// next layer's `mask_value` (and is not kept as a layer). Supported where that computes what
    /// Keras computes: the recurrent layer comes right after the embedding or masking layer and,
    /// if it returns sequences, no recurrent layer follows (Keras would pass the mask on) and
    /// masked steps repeat the previous output (Keras' `zero_output_for_mask` false, which
    /// Bidirectional's wrapped layers do not use).
    private static func resolveMasks(_ layers: inout [PendingLayer]) throws {
        var masked: [Int: Double] = [:]
        for (i, layer) in layers.enumerated() {
            let value: Double
            if layer.className == "Embedding" && layer.config["mask_zero"] == .bool(true) {
                value = 0
            } else if let v = layer.masking {
                value = v
            } else {
                continue
            }
            let label = layer.name.isEmpty ? "layer \(layer.index)" : layer.name
            guard i + 1 < layers.count, layers[i + 1].isRecurrent else {
                let what = layer.masking == nil ? "mask_zero true is" : "a Masking layer is"
                throw KerasInteropError.unsupportedLayerConfig(
                    layer: label, className: layer.className,
                    reason: "\(what) supported only right before a SimpleRNN, LSTM, GRU or Bidirectional layer")
            }
            masked[i + 1] = value
        }
        for i in layers.indices where layers[i].isRecurrent {
            let next = layers[i]
            let label = next.name.isEmpty ? "layer \(next.index)" : next.name
            guard let value = masked[i] else {
                layers[i].config[next.key("zero_output_for_mask")] = .bool(false)  // no mask: no effect
                continue
            }
            let sequences = next.config[next.key("return_sequences")] == .bool(true)
            if sequences {
                if next.className == "Bidirectional" || next.config["zero_output_for_mask"] == .bool(true) {
                    throw KerasInteropError.unsupportedLayerConfig(
                        layer: label, className: next.className,
                        reason: "masked with return_sequences, where Keras outputs zeros at masked steps; Neurite repeats the previous output")
                }
                if layers[(i + 1)...].contains(where: \.isRecurrent) {
                    throw KerasInteropError.unsupportedLayerConfig(
                        layer: label, className: next.className,
                        reason: "masked with return_sequences before another recurrent layer, which Keras would mask too; Neurite masks only the layer right after the mask")
                }
            }
            layers[i].config[next.key("zero_output_for_mask")] = .bool(false)
            layers[i].config[next.key("mask_value")] = .double(value)
        }
    }

    /// The `mask_value` of a Keras `Masking` layer, after checking its other keys.
    private static func maskValue(_ config: [String: ConfigValue], label: String) throws -> Double {
        for key in config.keys.sorted() {
            let value = config[key]!
            switch key {
            case "name", "mask_value": continue
            case "trainable" where value == .bool(true): continue
            case "dtype" where isFloat32(value): continue
            default:
                throw KerasInteropError.unsupportedLayerConfig(layer: label, className: "Masking", reason: "\"\(key)\": \(value) is not supported")
            }
        }
        switch config["mask_value"] {
        case nil: return 0
        case .int(let v)?: return Double(v)
        case .double(let v)? where v.isFinite: return v
        case let other?:
            throw KerasInteropError.unsupportedLayerConfig(layer: label, className: "Masking", reason: "mask_value \(other) is not a finite number")
        }
    }

    // MARK: Values

    /// The per-sample shape declared by the InputLayer's `batch_shape` (or Keras 2's
    /// `batch_input_shape`, or `shape`), after checking its other keys.
    private static func readInputLayer(_ config: [String: ConfigValue], label: String) throws -> DeclaredShape {
        let className = "InputLayer"
        func unsupported(_ key: String, _ why: String) -> KerasInteropError {
            .unsupportedLayerConfig(layer: label, className: className, reason: "\"\(key)\": \(config[key]!) \(why)")
        }
        for key in config.keys.sorted() {
            let value = config[key]!
            switch key {
            case "name", "batch_shape", "batch_input_shape", "shape", "batch_size": continue
            case "sparse", "ragged", "optional":
                guard value == .bool(false) || value == .null else { throw unsupported(key, "is not supported (dense inputs only)") }
            case "dtype":
                let simplified: ConfigValue
                if case .object(let o) = value, case .object(let c)? = o["config"], let n = c["name"] { simplified = n } else { simplified = value }
                guard case .string(let dtype) = simplified, dtype.hasPrefix("float") || dtype.hasPrefix("int") || dtype.hasPrefix("uint") else {
                    throw unsupported(key, "is not supported (numeric inputs only)")
                }
            default:
                throw unsupported(key, "is not supported")
            }
        }
        if let shape = config["batch_shape"] ?? config["batch_input_shape"], shape != .null {
            return try perSampleShape(shape, layer: label, className: className, key: "batch_shape")
        }
        if let shape = config["shape"], shape != .null {
            return try perSampleShape(.list([.null] + (listElements(shape) ?? [shape])), layer: label, className: className, key: "shape")
        }
        throw unsupported("name", "has no batch_shape")
    }

    /// `[null, 28, 28, 1]` -> `[28, 28, 1]`: the batch axis dropped, every other extent a
    /// positive integer or null (a variable axis, which ``resolve(_:given:)`` fills or refuses).
    static func perSampleShape(_ value: ConfigValue, layer: String, className: String, key: String) throws -> DeclaredShape {
        guard let elements = listElements(value), !elements.isEmpty else {
            throw KerasInteropError.invalidModelConfig(path: "\(layer).\(key)", reason: "expected a list with the batch axis first, got \(value)")
        }
        var shape: [Int?] = []
        for (axis, e) in elements.enumerated().dropFirst() {
            switch e {
            case .int(let n): shape.append(n)
            case .null: shape.append(nil)
            default:
                throw KerasInteropError.invalidModelConfig(path: "\(layer).\(key)", reason: "axis \(axis) is \(e), not an extent")
            }
        }
        try KerasWeights.checkElements(shape.map { $0 ?? 1 }, layer: layer, className: className)
        return DeclaredShape(extents: shape, layer: layer, className: className, key: key, text: "\(value)")
    }

    private static func listElements(_ value: ConfigValue) -> [ConfigValue]? {
        switch value {
        case .ints(let v): v.map { .int($0) }
        case .list(let v): v
        default: nil
        }
    }

    /// A float32 dtype: `"float32"`, null, or the `DTypePolicy` object naming float32.
    static func isFloat32(_ value: ConfigValue) -> Bool {
        switch value {
        case .null, .string("float32"): return true
        case .object(let o):
            guard o["class_name"] == .string("DTypePolicy"), case .object(let c)? = o["config"] else { return false }
            return c["name"] == .string("float32")
        default: return false
        }
    }

    /// Whether every integer in `value` (nested lists too) lies within ±2^31, so no layer's shape
    /// arithmetic overflows on it.
    private static func integersAreBounded(_ value: ConfigValue) -> Bool {
        let bound = 1 << 31
        switch value {
        case .int(let v): return abs(v) <= bound
        case .ints(let v): return v.allSatisfy { abs($0) <= bound }
        case .list(let v): return v.allSatisfy(integersAreBounded)
        case .object(let o): return o.values.allSatisfy(integersAreBounded)
        default: return true
        }
    }

    /// Neurite's name for a Keras initialiser: a string as it is, or an object
    /// `{"class_name": "RandomUniform", "config": {"minval": -0.05, "maxval": 0.05, "seed": null}}`
    /// as `"random_uniform(minval=-0.05,maxval=0.05)"`. An initialiser's `seed` is not kept: it
    /// only picks the initial values, which a loaded model replaces and which Neurite's generator
    /// would draw differently anyway.
    static func initializerName(_ value: ConfigValue, key: String, className: String, label: String) throws -> String {
        func unsupported(_ why: String) -> KerasInteropError {
            .unsupportedLayerConfig(layer: label, className: className, reason: "\"\(key)\": \(value) \(why)")
        }
        let simpleNames = ["Zeros": "zeros", "Ones": "ones", "GlorotUniform": "glorot_uniform", "GlorotNormal": "glorot_normal",
                           "HeUniform": "he_uniform", "HeNormal": "he_normal", "Orthogonal": "orthogonal"]
        if case .string(let s) = value { return simpleNames[s] ?? s }
        guard case .object(let o) = value, case .string(let initializer)? = o["class_name"] else {
            throw unsupported("is not an initialiser Neurite reads")
        }
        var settings: [String: ConfigValue] = [:]
        switch o["config"] {
        case .object(let c)?: settings = c
        case nil, .null?: break
        default: throw unsupported("has a config that is not an object")
        }
        settings["seed"] = nil
        func number(_ k: String) throws -> Double {
            switch settings.removeValue(forKey: k) {
            case .double(let v)?: return v
            case .int(let v)?: return Double(v)
            default: throw unsupported("needs a number \"\(k)\"")
            }
        }
        let name: String
        switch initializer {
        case "Zeros", "Ones", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal":
            name = simpleNames[initializer]!
        case "Orthogonal":
            guard try number("gain") == 1 else { throw unsupported("is supported with gain 1 only") }
            name = "orthogonal"
        case "Constant":
            name = "constant(value=\(Float(try number("value"))))"
        case "RandomNormal":
            let mean = Float(try number("mean")), std = Float(try number("stddev"))
            name = "random_normal(mean=\(mean),stddev=\(std))"
        case "RandomUniform":
            let lo = Float(try number("minval")), hi = Float(try number("maxval"))
            name = "random_uniform(minval=\(lo),maxval=\(hi))"
        default:
            throw unsupported("is not an initialiser Neurite implements")
        }
        for (k, v) in settings where v != .null {
            throw unsupported("has \"\(k)\": \(v), which Neurite does not implement")
        }
        return name
    }

    private static func invalid(_ path: String, _ reason: String) -> KerasInteropError {
        .invalidModelConfig(path: path, reason: reason)
    }
}
