import Foundation
import Layers
import Recurrent

// Writing a `Sequential` as the Keras 3 model configuration `keras.models.load_model` (and
// `keras.models.model_from_json`) reads: an `InputLayer` with `batch_shape` first, then every
// layer as `{"module": "keras.layers", "class_name": ..., "config": ..., "registered_name": null,
// "build_config": {"input_shape": ...}}` (the build config makes Keras build each layer before
// loading its weights).
//
// A Neurite layer's config already uses Keras' key names; what differs is translated here:
// - initialisers (`"glorot_uniform"`, `"random_uniform(minval=..,maxval=..)"`, the recurrent
//   layers' `"orthogonal"`) become Keras' initialiser objects;
// - dropout seeds (Dropout's `seed`, the recurrent layers' `seed`) are written as null: a seed
//   picks which elements training drops, and Keras' generator would draw other masks from it
//   anyway, so it has no meaning there (predictions do not depend on it);
// - Neurite-only keys: the recurrent layers' `mask_value` is expressed as Keras'
//   `Embedding(mask_zero=True)` when the layer follows an embedding with `maskZero` and has mask
//   value 0, and as a Keras `Masking` layer before it otherwise (Keras passes a mask on from a
//   recurrent layer that returns sequences, so that is an error before another recurrent layer
//   or inside Bidirectional); `truncate_gradient` (a training setting Keras lacks)
//   must be null; Bidirectional's flattened `layer.<key>` entries become its nested `layer`
//   object, and `backward_seed` is dropped (a dropout seed, as above);
// - activations with settings Keras' names cannot carry (`leaky_relu(alpha=0.1)`) are errors.

enum KerasConfigWriter {
    /// The Keras version whose format this writes (`metadata.json`'s `keras_version`).
    static let kerasVersion = "3.15.1"

    /// The `config.json` object for `model`. `inputShape` is the per-sample input shape (the
    /// built or declared one), nil for a model that has neither.
    static func config(of model: Sequential) throws -> ConfigValue {
        let inputShape = model.builtInputShape ?? model.inputShape
        var layers: [ConfigValue] = []
        if let inputShape {
            let tokens = model.layers.first is Embedding
            layers.append(.object([
                "module": .string("keras.layers"), "class_name": .string("InputLayer"), "registered_name": .null,
                "config": .object([
                    "batch_shape": batchShape(inputShape), "dtype": .string(tokens ? "int32" : "float32"),
                    "sparse": .bool(false), "ragged": .bool(false), "optional": .bool(false),
                    "name": .string("input_layer"),
                ]),
            ]))
        }
        var shape = inputShape
        var seen = Set<ObjectIdentifier>()
        for (i, layer) in model.layers.enumerated() {
            let className = type(of: layer).typeName
            guard seen.insert(ObjectIdentifier(layer)).inserted else {
                throw KerasInteropError.unsupportedLayer(layer: layer.name, className: className,
                                                         reason: "the same layer is used twice in the model; a Keras file holds each layer once")
            }
            let previous = i > 0 ? model.layers[i - 1] : nil
            let next = i + 1 < model.layers.count ? model.layers[i + 1] : nil
            if let mask = maskingValue(of: layer, after: previous) {
                // Keras' Masking layer masks the steps whose features all equal the value, as
                // Neurite's recurrent layers do with maskValue.
                var masking: [String: ConfigValue] = [
                    "module": .string("keras.layers"), "class_name": .string("Masking"), "registered_name": .null,
                    "config": .object(["name": .string(layer.name + "_masking"), "mask_value": .double(Double(mask)),
                                       "trainable": .bool(true), "dtype": dtypePolicy]),
                ]
                if let s = shape { masking["build_config"] = .object(["input_shape": batchShape(s)]) }
                layers.append(.object(masking))
            }
            var entry: [String: ConfigValue] = [
                "module": .string("keras.layers"), "class_name": .string(className), "registered_name": .null,
                "config": .object(try kerasConfig(of: layer, previous: previous, next: next,
                                                  later: Array(model.layers[(i + 1)...]))),
            ]
            if let s = shape {
                entry["build_config"] = .object(["input_shape": batchShape(s)])
                shape = try? layer.outputShape(for: s)
            }
            layers.append(.object(entry))
        }
        var modelConfig: [String: ConfigValue] = [
            "name": .string(model.name.isEmpty ? "sequential" : model.name), "trainable": .bool(true),
            "dtype": dtypePolicy, "layers": .list(layers),
        ]
        var top: [String: ConfigValue] = [
            "module": .string("keras"), "class_name": .string("Sequential"), "registered_name": .null,
        ]
        if let inputShape {
            modelConfig["build_input_shape"] = batchShape(inputShape)
            top["build_config"] = .object(["input_shape": batchShape(inputShape)])
        }
        top["config"] = .object(modelConfig)
        return .object(top)
    }

    /// `metadata.json`: the Keras version of the format and the time of saving, as Keras writes it.
    static func metadata(date: Date = Date()) -> ConfigValue {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        return .object(["keras_version": .string(kerasVersion), "date_saved": .string(formatter.string(from: date))])
    }

    /// `value` as compact JSON text with sorted keys.
    static func json(_ value: ConfigValue) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    private static let dtypePolicy: ConfigValue = .object([
        "module": .string("keras"), "class_name": .string("DTypePolicy"),
        "config": .object(["name": .string("float32")]), "registered_name": .null,
    ])

    /// The mask value for which a Keras `Masking` layer goes before `layer`: a recurrent layer's
    /// (or Bidirectional's) `maskValue`, unless it is 0 right after an `Embedding` with
    /// `maskZero`, whose Keras `mask_zero` masks it.
    private static func maskingValue(of layer: any Layer, after previous: (any Layer)?) -> Float? {
        let value = (layer as? RecurrentLayer)?.maskValue ?? (layer as? Bidirectional)?.forwardLayer.maskValue
        guard let value else { return nil }
        if value == 0, let embedding = previous as? Embedding, embedding.maskZero { return nil }
        return value
    }

    private static func batchShape(_ shape: [Int]) -> ConfigValue { .list([.null] + shape.map { .int($0) }) }

    // MARK: Layers

    /// One layer's Keras config. `previous`, `next` and `later` are its neighbours, for masking.
    private static func kerasConfig(of layer: any Layer, previous: (any Layer)?, next: (any Layer)?,
                                    later: [any Layer]) throws -> [String: ConfigValue] {
        let className = type(of: layer).typeName
        func unsupported(_ why: String) -> KerasInteropError {
            .unsupportedLayerConfig(layer: layer.name, className: className, reason: why)
        }
        switch layer {
        case is Sequential:
            throw KerasInteropError.unsupportedLayer(layer: layer.name, className: className,
                                                     reason: "a model nested in the model; KerasInterop writes flat Sequential models")
        case let l as Bidirectional:
            var inner = try recurrentConfig(l.forwardLayer, label: layer.name, wrapped: true, previous: previous, later: later)
            inner["name"] = .string("forward_" + l.name)
            var c = common(l.config.filter { !$0.key.hasPrefix("layer") && $0.key != "backward_seed" })
            c["layer"] = .object(["module": .string("keras.layers"), "class_name": .string(type(of: l.forwardLayer).typeName),
                                  "config": .object(inner), "registered_name": .null])
            return c
        case let l as RecurrentLayer:
            return try recurrentConfig(l, label: layer.name, wrapped: false, previous: previous, later: later)
        case let l as Embedding:
            var c = try translated(layer.config, className: className, label: layer.name)
            if l.maskZero {
                let ok = (next as? RecurrentLayer)?.maskValue == 0 || (next as? Bidirectional)?.forwardLayer.maskValue == 0
                guard ok else {
                    throw unsupported("maskZero is written as Keras' mask_zero, which masks the next layer: it needs a recurrent "
                                      + "layer with maskValue 0 right after it")
                }
            }
            c["mask_zero"] = .bool(l.maskZero)
            return c
        case is Dropout:
            var c = try translated(layer.config, className: className, label: layer.name)
            c["seed"] = .null
            return c
        case is Dense, is Conv2D, is Conv1D, is Conv2DTranspose, is BatchNormalization, is Flatten, is Reshape, is MaxPool2D,
             is AveragePool2D, is GlobalAveragePool2D, is MaxPool1D, is AveragePool1D, is GlobalMaxPool1D, is GlobalAveragePool1D,
             is ActivationLayer, is UpSampling2D:
            return try translated(layer.config, className: className, label: layer.name)
        default:
            throw KerasInteropError.unsupportedLayer(layer: layer.name, className: className,
                                                     reason: "KerasInterop does not know the Keras form of this layer type")
        }
    }

    /// A SimpleRNN, LSTM or GRU config in Keras' form; see the top of this file for the mask.
    private static func recurrentConfig(_ l: RecurrentLayer, label: String, wrapped: Bool, previous: (any Layer)?,
                                        later: [any Layer]) throws -> [String: ConfigValue] {
        let className = type(of: l).typeName
        func unsupported(_ why: String) -> KerasInteropError {
            .unsupportedLayerConfig(layer: label, className: className, reason: why)
        }
        var config = l.config
        if l.maskValue != nil {
            // Written as Embedding(mask_zero=True) before it or a Masking layer (see config(of:)).
            if l.returnSequences && (wrapped || later.contains { $0 is RecurrentLayer || $0 is Bidirectional }) {
                throw unsupported("masked with return_sequences in a place where Keras would compute something else "
                                  + "(inside Bidirectional, or before another recurrent layer, which Keras would mask too)")
            }
        }
        if config["truncate_gradient"] != nil && config["truncate_gradient"] != .null {
            throw unsupported("truncate_gradient \(config["truncate_gradient"]!) is a Neurite training setting Keras does not have")
        }
        if l.stateful { throw unsupported("stateful layers need a fixed batch size in Keras; not written") }
        config["mask_value"] = nil
        config["truncate_gradient"] = nil
        config["seed"] = .null
        var c = try translated(config, className: className, label: label)
        c["zero_output_for_mask"] = .bool(false)
        c["unroll"] = .bool(false)
        return c
    }

    /// `config` with Keras' initialiser objects and the keys every Keras layer has.
    private static func translated(_ config: [String: ConfigValue], className: String, label: String) throws -> [String: ConfigValue] {
        var out = common(config)
        for (key, value) in config {
            if key.hasSuffix("_initializer") {
                out[key] = try initializerObject(value, key: key, className: className, label: label)
            } else if key == "activation" || key == "recurrent_activation" {
                guard case .string(let name) = value, !name.contains("(") else {
                    throw KerasInteropError.unsupportedLayerConfig(
                        layer: label, className: className,
                        reason: "\(key) \(value) has settings Keras' activation names cannot carry")
                }
            }
        }
        return out
    }

    /// `config` with `trainable` (true unless given) and the float32 `dtype` policy.
    private static func common(_ config: [String: ConfigValue]) -> [String: ConfigValue] {
        var out = config
        out["trainable"] = config["trainable"] ?? .bool(true)
        out["dtype"] = dtypePolicy
        return out
    }

    /// Keras' object for a Neurite initialiser name.
    static func initializerObject(_ value: ConfigValue, key: String, className: String, label: String) throws -> ConfigValue {
        func object(_ name: String, _ settings: [String: ConfigValue]) -> ConfigValue {
            .object(["module": .string("keras.initializers"), "class_name": .string(name),
                     "config": .object(settings), "registered_name": .null])
        }
        guard case .string(let name) = value else {
            throw KerasInteropError.unsupportedLayerConfig(layer: label, className: className,
                                                           reason: "\(key) \(value) is not an initialiser name")
        }
        if name == "orthogonal" { return object("Orthogonal", ["gain": .double(1), "seed": .null]) }
        let initializer: Initializer
        do {
            initializer = try Initializer(configName: name)
        } catch let error as LayerError {
            throw KerasInteropError.unsupportedLayerConfig(layer: label, className: className, reason: "\(key): \(error.message)")
        }
        switch initializer {
        case .zeros: return object("Zeros", [:])
        case .ones: return object("Ones", [:])
        case .constant(let v): return object("Constant", ["value": .double(Double(v))])
        case .glorotUniform: return object("GlorotUniform", ["seed": .null])
        case .glorotNormal: return object("GlorotNormal", ["seed": .null])
        case .heUniform: return object("HeUniform", ["seed": .null])
        case .heNormal: return object("HeNormal", ["seed": .null])
        case .randomNormal(let mean, let std):
            return object("RandomNormal", ["mean": .double(Double(mean)), "stddev": .double(Double(std)), "seed": .null])
        case .randomUniform(let lo, let hi):
            return object("RandomUniform", ["minval": .double(Double(lo)), "maxval": .double(Double(hi)), "seed": .null])
        }
    }
}
