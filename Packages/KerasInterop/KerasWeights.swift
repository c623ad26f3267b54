import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore

// Where Keras 3 keeps each layer's variables in `model.weights.h5`, and how they map to
// Neurite's parameters.
//
// Keras does not address a layer by its `name` but by its place: Sequential's `layers` list is
// walked in order and each layer gets the snake-case name of its class, made unique in that list
// by `_1`, `_2`, ... (`saving_lib._save_container_state`). So the second Dense of a model is
// `layers/dense_1`, whatever it is called. A layer's own variables are the datasets `0`, `1`, ...
// of the group `<path>/vars`, in the order the layer created them; the group's `name`
// attribute holds the layer's name. A recurrent layer keeps its variables in its cell
// (`layers/lstm/cell/vars`), and `Bidirectional` in its two wrapped layers' cells
// (`layers/bidirectional/forward_layer/cell/vars`, `.../backward_layer/cell/vars`). Checked
// against files Keras 3.15 writes (KerasRoundTripTests).
//
// Layouts, Keras' against Neurite's (every one is the same, so values are copied as they are;
// no transposes or gate reorderings are needed):
// - Dense: kernel `(in, units)`, bias `(units)`; Neurite's `kernel` `[in, units]`, `bias`.
// - Conv2D: kernel `(kh, kw, cin, cout)`, bias `(cout)`; Neurite's kernel `[KH, KW, Cin, Cout]`.
// - Conv1D: kernel `(k, cin, cout)`, bias; Neurite's `[K, F, filters]`.
// - Conv2DTranspose: kernel `(kh, kw, cout, cin)` (output channels first), bias `(cout)`;
//   Neurite's `[KH, KW, filters, Cin]`, the same.
// - BatchNormalization: gamma (with `scale`), beta (with `center`), moving_mean,
//   moving_variance, each `(C)`; Neurite's parameters in the same order, the same optional ones.
// - Embedding: embeddings `(input_dim, output_dim)`; Neurite's `embeddings`, the same.
// - SimpleRNN: kernel `(F, U)`, recurrent_kernel `(U, U)`, bias `(U)`.
// - LSTM: kernel `(F, 4U)`, recurrent_kernel `(U, 4U)`, bias `(4U)`, gates in Keras' order
//   i, f, c, o; Neurite's LSTM keeps the same order (`i, f, g, o`, g being Keras' c).
// - GRU (reset_after, Keras 3's default and the only form Neurite implements): kernel `(F, 3U)`,
//   recurrent_kernel `(U, 3U)`, bias `(2, 3U)` (input bias, then recurrent bias), gates z, r, h;
//   Neurite's GRU: the same shapes and gate order.
// - Bidirectional: the forward layer's three variables, then the backward layer's.

/// One Keras variable: its dataset path, its role (for messages) and its shape.
struct KerasVariable: Equatable {
    var path: String
    var role: String
    var shape: [Int]
}

/// A layer's place in the weights file: the groups Keras writes for it (with their `name`
/// attribute) and its variables in Keras' order.
struct KerasLayerWeights {
    var layerName: String
    var className: String
    var groups: [(path: String, name: String)]
    var variables: [KerasVariable]
}

enum KerasWeights {
    /// At most this many elements per sample in any layer's input or output (2^31): far above any
    /// model that fits in memory, and low enough that no shape arithmetic of a layer can overflow
    /// on a hostile configuration.
    static let maxElementsPerSample = 1 << 31

    /// Keras' `naming.to_snake_case`: drop non-word characters, then `(.)([A-Z][a-z]+)` ->
    /// `\1_\2`, then `([a-z])([A-Z])` -> `\1_\2`, lower-cased. `"Conv2DTranspose"` ->
    /// `"conv2d_transpose"`, `"SimpleRNN"` -> `"simple_rnn"`.
    static func snakeCase(_ name: String) -> String {
        var chars = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
        // (.)([A-Z][a-z]+): scanned left to right without overlap, as re.sub does.
        var out: [Character] = []
        var i = 0
        while i < chars.count {
            if i + 2 < chars.count, chars[i + 1].isUppercase, chars[i + 2].isLowercase {
                var j = i + 2
                while j < chars.count && chars[j].isLowercase { j += 1 }
                out.append(chars[i])
                out.append("_")
                out.append(contentsOf: chars[(i + 1)..<j])
                i = j
            } else {
                out.append(chars[i])
                i += 1
            }
        }
        chars = out
        out = []
        i = 0
        while i < chars.count {
            if i + 1 < chars.count, chars[i].isLowercase, chars[i + 1].isUppercase {
                out.append(chars[i])
                out.append("_")
                out.append(chars[i + 1])
                i += 2
            } else {
                out.append(chars[i])
                i += 1
            }
        }
        return String(out).lowercased()
    }

    /// The weights layout of every layer of `model` for per-sample inputs `inputShape`, computed
    /// from the layers' configurations and `outputShape(for:)` alone (nothing is allocated), with
    /// the total parameter count. Throws for a layer whose Keras layout Neurite does not know, a
    /// shape a layer rejects, a per-sample size above ``maxElementsPerSample``, or more parameters
    /// than `maxParameters`.
    static func layout(of model: Sequential, inputShape: [Int], maxParameters: Int) throws -> [KerasLayerWeights] {
        try checkElements(inputShape, layer: "the input", className: "InputLayer")
        var usedNames: [String: Int] = [:]
        var shape = inputShape
        var result: [KerasLayerWeights] = []
        var total = 0
        var seen = Set<ObjectIdentifier>()
        for layer in model.layers {
            let className = type(of: layer).typeName
            guard seen.insert(ObjectIdentifier(layer)).inserted else {
                throw KerasInteropError.unsupportedLayer(layer: layer.name, className: className,
                                                         reason: "the same layer is used twice in the model; a Keras file holds each layer once")
            }
            let base = "layers/" + uniqueName(snakeCase(className), &usedNames)
            let entry = try weights(of: layer, base: base, inputShape: shape)
            for v in entry.variables {
                let (count, overflow) = v.shape.reduce((1, false)) { acc, e in
                    let (p, o) = acc.0.multipliedReportingOverflow(by: e)
                    return (p, acc.1 || o)
                }
                let (sum, o2) = total.addingReportingOverflow(count)
                guard !overflow, !o2 else { throw KerasInteropError.tooManyParameters(count: Int.max, limit: maxParameters) }
                total = sum
            }
            result.append(entry)
            do {
                shape = try layer.outputShape(for: shape)
            } catch let error as LayerError {
                throw KerasInteropError.unsupportedLayerConfig(layer: layer.name, className: className,
                                                               reason: "on input shape \(shape): \(error.message)")
            }
            try checkElements(shape, layer: layer.name, className: className)
        }
        guard total <= maxParameters else { throw KerasInteropError.tooManyParameters(count: total, limit: maxParameters) }
        return result
    }

    /// Throws unless every extent is positive and the product is at most ``maxElementsPerSample``.
    static func checkElements(_ shape: [Int], layer: String, className: String) throws {
        var product = 1
        for e in shape {
            let (p, overflow) = product.multipliedReportingOverflow(by: e)
            guard e > 0, !overflow, p <= maxElementsPerSample else {
                throw KerasInteropError.unsupportedLayerConfig(
                    layer: layer, className: className,
                    reason: "per-sample shape \(shape) has a non-positive extent or more than \(maxElementsPerSample) elements")
            }
            product = p
        }
    }

    /// Keras' `_get_unique_name`: the first use of a name is bare, the next ones `_1`, `_2`, ...
    static func uniqueName(_ name: String, _ used: inout [String: Int]) -> String {
        if let n = used[name] {
            used[name] = n + 1
            return "\(name)_\(n + 1)"
        }
        used[name] = 0
        return name
    }

    /// The layout of one layer whose Keras path is `base`, for per-sample input `inputShape`.
    private static func weights(of layer: any Layer, base: String, inputShape: [Int]) throws -> KerasLayerWeights {
        let className = type(of: layer).typeName
        var entry = KerasLayerWeights(layerName: layer.name, className: className,
                                      groups: [(base + "/vars", layer.name)], variables: [])
        func add(_ group: String, _ roles: [(String, [Int])]) {
            for (i, (role, shape)) in roles.enumerated() {
                entry.variables.append(KerasVariable(path: "\(group)/\(i)", role: role, shape: shape))
            }
        }
        func unfit(_ what: String) -> KerasInteropError {
            .unsupportedLayerConfig(layer: layer.name, className: className, reason: "input shape \(inputShape): \(what)")
        }
        let vars = base + "/vars"
        switch layer {
        case let l as Dense:
            guard let features = inputShape.last else { throw unfit("needs rank >= 1") }
            add(vars, [("kernel", [features, l.units])] + (l.useBias ? [("bias", [l.units])] : []))
        case let l as Conv2D:
            guard inputShape.count == 3 else { throw unfit("needs [H, W, C]") }
            add(vars, [("kernel", [l.kernelSize.0, l.kernelSize.1, inputShape[2], l.filters])]
                + (l.useBias ? [("bias", [l.filters])] : []))
        case let l as Conv1D:
            guard inputShape.count == 2 else { throw unfit("needs [T, F]") }
            add(vars, [("kernel", [l.kernelSize, inputShape[1], l.filters])] + (l.useBias ? [("bias", [l.filters])] : []))
        case let l as Conv2DTranspose:
            guard inputShape.count == 3 else { throw unfit("needs [H, W, C]") }
            add(vars, [("kernel", [l.kernelSize.0, l.kernelSize.1, l.filters, inputShape[2]])]
                + (l.useBias ? [("bias", [l.filters])] : []))
        case let l as BatchNormalization:
            let full = l.axis < 0 ? inputShape.count + 1 + l.axis : l.axis
            guard full >= 1 && full <= inputShape.count else { throw unfit("has no axis \(l.axis)") }
            let c = [inputShape[full - 1]]
            var roles: [(String, [Int])] = []
            if l.scale { roles.append(("gamma", c)) }
            if l.center { roles.append(("beta", c)) }
            add(vars, roles + [("moving_mean", c), ("moving_variance", c)])
        case let l as Embedding:
            add(vars, [("embeddings", [l.inputDim, l.outputDim])])
        case let l as RecurrentLayer:
            guard inputShape.count == 2 else { throw unfit("needs [T, F]") }
            entry.groups.append((base + "/cell/vars", snakeCase(className) + "_cell"))
            add(base + "/cell/vars", recurrentRoles(l, features: inputShape[1]))
        case let l as Bidirectional:
            guard inputShape.count == 2 else { throw unfit("needs [T, F]") }
            let inner = type(of: l.forwardLayer).typeName
            for (direction, sub) in [("forward", l.forwardLayer), ("backward", l.backwardLayer)] {
                let group = "\(base)/\(direction)_layer"
                entry.groups.append((group + "/vars", "\(direction)_\(l.name)"))
                entry.groups.append((group + "/cell/vars", snakeCase(inner) + "_cell"))
                add(group + "/cell/vars", recurrentRoles(sub, features: inputShape[1]).map { ("\(direction)_\($0.0)", $0.1) })
            }
        case is Sequential:
            throw KerasInteropError.unsupportedLayer(layer: layer.name, className: className,
                                                     reason: "a model nested in the model; KerasInterop converts flat Sequential models")
        case is Dropout, is Flatten, is Reshape, is MaxPool2D, is AveragePool2D, is GlobalAveragePool2D, is MaxPool1D,
             is AveragePool1D, is GlobalMaxPool1D, is GlobalAveragePool1D, is ActivationLayer, is UpSampling2D:
            break
        default:
            throw KerasInteropError.unsupportedLayer(layer: layer.name, className: className,
                                                     reason: "KerasInterop does not know the Keras form of this layer type")
        }
        return entry
    }

    /// kernel `(F, G·U)`, recurrent_kernel `(U, G·U)`, bias `(G·U)` (a GRU's `(2, 3U)`).
    private static func recurrentRoles(_ l: RecurrentLayer, features: Int) -> [(String, [Int])] {
        let gates = l is LSTM ? 4 : l is GRU ? 3 : 1
        let u = l.units
        var roles: [(String, [Int])] = [("kernel", [features, gates * u]), ("recurrent_kernel", [u, gates * u])]
        if l.useBias { roles.append(("bias", l is GRU ? [2, 3 * u] : [gates * u])) }
        return roles
    }

    /// Every layer's parameters in Keras' variable order (the order of `layout`'s variables).
    /// - Throws: when a built layer's parameters do not have the layout's count or shapes (an
    ///   internal inconsistency, reported rather than trapped).
    static func parameters(of model: Sequential, layout: [KerasLayerWeights]) throws -> [[Parameter]] {
        try zip(model.layers, layout).map { layer, entry in
            let params = layer.parameters
            guard params.count == entry.variables.count,
                  zip(params, entry.variables).allSatisfy({ $0.value.shape == $1.shape }) else {
                throw KerasInteropError.unsupportedLayerConfig(
                    layer: entry.layerName, className: entry.className,
                    reason: "its parameters \(params.map(\.value.shape)) do not match Keras' variables \(entry.variables.map(\.shape))")
            }
            return params
        }
    }

    /// Sets the built `model`'s parameters from `file`, all or none. Datasets under `optimizer/`
    /// (Keras' optimizer state) are not read; any other dataset no layer takes is an error.
    static func load(_ file: HDF5WeightsFile, into model: Sequential, layout: [KerasLayerWeights]) throws {
        let params = try parameters(of: model, layout: layout)
        var values: [String: Tensor] = [:]
        var used = Set<String>()
        for (entry, layerParams) in zip(layout, params) {
            for (variable, parameter) in zip(entry.variables, layerParams) {
                guard let tensor = file.datasets[variable.path] else {
                    throw KerasInteropError.missingWeight(layer: entry.layerName, variable: variable.role, path: variable.path)
                }
                guard tensor.shape == variable.shape, tensor.values.count == variable.shape.reduce(1, *) else {
                    throw KerasInteropError.weightShapeMismatch(layer: entry.layerName, variable: variable.role, path: variable.path,
                                                                expected: variable.shape, found: tensor.shape)
                }
                values[parameter.name] = Tensor(shape: tensor.shape, scalars: tensor.values)
                used.insert(variable.path)
            }
        }
        let unexpected = file.datasets.keys.filter { !used.contains($0) && !$0.hasPrefix("optimizer/") }.sorted()
        guard unexpected.isEmpty else { throw KerasInteropError.unexpectedWeights(paths: unexpected) }
        do {
            try model.loadWeights(values)
        } catch let error as LayerError {
            throw KerasInteropError.unsupportedModel(className: "Sequential", reason: error.message)
        }
    }

    /// The weights file Keras writes for the built `model`: every layer's groups and variables,
    /// and the model's own (empty) `vars` group.
    static func file(of model: Sequential, layout: [KerasLayerWeights]) throws -> HDF5WeightsFile {
        let params = try parameters(of: model, layout: layout)
        var file = HDF5WeightsFile()
        file.groups["vars"] = ["name": model.name.isEmpty ? "sequential" : model.name]
        for (entry, layerParams) in zip(layout, params) {
            for group in entry.groups { file.groups[group.path] = ["name": group.name] }
            for (variable, parameter) in zip(entry.variables, layerParams) {
                file.datasets[variable.path] = HDF5Tensor(shape: variable.shape, values: parameter.value.scalars)
            }
        }
        return file
    }
}
