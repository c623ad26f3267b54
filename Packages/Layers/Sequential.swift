import Foundation
import Optimizers
import TensorCore

/// Builds a list of layers from a block, one layer per line, with `if`, `if`-`else` and `for`
/// allowed: the body of `Sequential { ... }`.
@resultBuilder
public enum LayerBuilder {
    /// One layer.
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    /// Several layers at once (a helper returning a block of layers).
    public static func buildExpression(_ layers: [any Layer]) -> [any Layer] { layers }
    /// The lines of a block, in order.
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    /// An `if` without `else`.
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    /// The `if` branch of an `if`-`else`.
    public static func buildEither(first part: [any Layer]) -> [any Layer] { part }
    /// The `else` branch of an `if`-`else`.
    public static func buildEither(second part: [any Layer]) -> [any Layer] { part }
    /// A `for` loop.
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}

/// A layer made of other layers (a `Sequential`, and later wrappers such as `Bidirectional`).
///
/// Its parameters are its layers' parameters, named by their path from the outermost model:
/// a `Dense` named `dense_1` inside a model named `encoder` owns `"encoder.dense_1.kernel"`.
public protocol LayerContainer: Layer {
    /// The layers it holds, in order (a shared layer appears at each place it is used).
    var layers: [any Layer] { get }
}

/// A stack of layers, each feeding the next: Keras' `Sequential`. It is itself a `Layer`, so
/// models nest.
///
/// ```swift
/// let model = Sequential(inputShape: [28, 28, 1]) {
///     Flatten()
///     Dense(128, activation: .relu)
///     Dropout(0.2)
///     Dense(10)
/// }
/// try model.build(seed: 42)        // or let fit build it with its seed
/// print(model.summary())
/// ```
///
/// **Building.** `init` only records the layers; weights are created by ``build(seed:)``, by
/// `fit` (with its seed) or, for a nested model, by its parent's `build`. Building walks the
/// layers from the declared input shape, so a shape that does not fit throws a `LayerError` then,
/// naming the layer and both shapes, never in the middle of training. Rebuilding with the same
/// shape keeps every weight.
///
/// **Names.** Layers without a name get Keras' automatic ones, unique within the model: the
/// type in snake case, then `_1`, `_2`, ... (`dense`, `dense_1`, `conv2d`, `batch_normalization`).
/// Two different layers with one name make `build` throw. Reading ``parameters`` names every
/// parameter by its path from this model (`"encoder.dense_1.kernel"` for a nested model).
///
/// **Shared layers.** The same layer instance may appear more than once (its weights are then
/// used at each place, and receive the sum of the gradients); ``parameters`` lists it once.
public final class Sequential: LayerContainer {
    /// `"Sequential"`.
    public static let typeName = "Sequential"
    /// The model's name: empty unless given (summaries then say `"sequential"`); a nested model
    /// gets a unique automatic name from its parent (`"sequential"`, `"sequential_1"`, ...).
    public var name: String
    /// The layers, in order.
    public private(set) var layers: [any Layer]
    /// The declared per-sample input shape (from `inputShape:` or a leading `Input`), if any.
    public private(set) var inputShape: [Int]?
    /// The per-sample input shape the model was built for, nil before build.
    public private(set) var builtInputShape: [Int]?
    /// The per-sample output shape of every layer, once built.
    public private(set) var layerOutputShapes: [[Int]] = []
    /// The optimizer, loss and metrics set by `compile`.
    var compiled: CompiledSetup?
    /// What the latest of `fit`'s steps, `evaluate` and `predict` ran: training steps of how many
    /// samples, or inference (nil before any); see ``enterPhase(trainingBatch:)``.
    var lastPhase: Int??

    /// The model's own `trainable` flag, as Keras' `model.trainable`: setting it sets every
    /// layer's flag (nested models included), so `model.trainable = false` freezes the whole
    /// model and `true` unfreezes every layer again. Reading it returns the model's flag, not a
    /// summary of its layers' (as in Keras); a layer set afterwards keeps its own setting (Keras
    /// would leave every weight of a frozen model frozen), and a layer added later is not
    /// changed. Freezing or unfreezing takes effect at the next training step: there is no need
    /// to compile again (Keras needs it), and the optimizer keeps the state of frozen weights.
    /// Saved in ``config`` as `"trainable": false` when false.
    public var trainable = true {
        didSet { for layer in layers { layer.trainable = trainable } }
    }

    /// A model of the layers in the block, for per-sample inputs of `inputShape` when given
    /// (otherwise give it to `build(inputShape:generator:)`, or start the block with `Input(shape:)`).
    /// - Precondition: an `Input` appears only first, and agrees with `inputShape`.
    public convenience init(inputShape: [Int]? = nil, name: String = "", @LayerBuilder _ layers: () -> [any Layer]) {
        self.init(inputShape: inputShape, name: name, layers: layers())
    }

    /// A model of `layers`, in order; see ``init(inputShape:name:_:)``.
    public init(inputShape: [Int]? = nil, name: String = "", layers: [any Layer] = []) {
        self.name = name
        self.inputShape = inputShape
        self.layers = []
        for layer in layers { add(layer) }
    }

    /// Appends a layer (a leading `Input` declares the input shape instead). A built model becomes
    /// unbuilt; the next build keeps the existing layers' weights.
    /// - Precondition: an `Input` comes before any other layer and agrees with a declared shape.
    public func add(_ layer: any Layer) {
        if let input = layer as? Input {
            neuritePrecondition(layers.isEmpty, "Input(shape: \(input.shape)) must come first in \(label)")
            neuritePrecondition(inputShape == nil || inputShape == input.shape,
                                "\(label) declares input shape \(inputShape ?? []) but its Input has \(input.shape)")
            inputShape = input.shape
            return
        }
        layers.append(layer)
        builtInputShape = nil
        assignNames()
    }

    /// Whether ``build(seed:)`` (or `build(inputShape:generator:)`) has run since the last change.
    public var isBuilt: Bool { builtInputShape != nil }

    /// The per-sample output shape, once built.
    public var builtOutputShape: [Int]? { isBuilt ? (layerOutputShapes.last ?? builtInputShape) : nil }

    // MARK: Layer

    /// `["name", "input_shape"]`, and `"trainable": false` for a frozen model. The layers are
    /// saved as an architecture list beside it (by the model saver), each with its own flag, and
    /// added back with ``add(_:)``.
    public var config: [String: ConfigValue] {
        let own: [String: ConfigValue] = ["name": .string(name), "input_shape": inputShape.map { .ints($0) } ?? .null]
        return own.addingTrainable(trainable)
    }

    /// An empty model with the configured name and input shape; the loader then adds its layers.
    public convenience init(config: [String: ConfigValue]) throws {
        let shape: [Int]? = switch config["input_shape"] {
        case nil, .null?: nil
        default: try config.ints("input_shape", of: Self.typeName)
        }
        self.init(inputShape: shape, name: try config.optionalName(of: Self.typeName), layers: [])
        // The model holds no layers yet: this sets the model's flag alone.
        trainable = try config.trainable(of: Self.typeName)
    }

    /// The last layer's output shape, computed layer by layer without building; throws a
    /// `LayerError` naming the first layer that does not fit and its input shape.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        try checkDeclared(inputShape)
        var shape = inputShape
        for (i, layer) in layers.enumerated() {
            do {
                try checkSingleOutput(layer)
                shape = try layer.outputShape(for: shape)
            } catch { throw wrap(error, layer: layer, index: i, input: shape) }
        }
        return shape
    }

    /// Builds every layer in turn from `inputShape`, drawing initial weights (and dropout seeds)
    /// from `generator`, and returns the output shape. Throws a `LayerError` naming the layer and
    /// both shapes when a layer does not fit its input, or when two layers share a name.
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try checkDeclared(inputShape)
        if let built = builtInputShape, built != inputShape {
            throw LayerError("\(label) was built for input shape \(built) and cannot be built again for \(inputShape)")
        }
        try checkUniqueNames()
        var shape = inputShape
        var shapes: [[Int]] = []
        for (i, layer) in layers.enumerated() {
            do {
                try checkSingleOutput(layer)
                shape = try layer.build(inputShape: shape, generator: &generator)
            } catch { throw wrap(error, layer: layer, index: i, input: shape) }
            shapes.append(shape)
        }
        layerOutputShapes = shapes
        builtInputShape = inputShape
        nameParameters()
        return shape
    }

    /// Builds from the declared input shape with `SeededGenerator(seed: seed)`: the same seed gives
    /// the same weights. Does nothing when already built.
    /// - Throws: `LayerError` when no input shape is declared or a layer does not fit.
    public func build(seed: UInt64 = 0) throws {
        if isBuilt { return }
        guard let inputShape else {
            throw LayerError("\(label) has no declared input shape: pass inputShape:, start with Input(shape:), "
                             + "or call build(inputShape:generator:)")
        }
        var generator = SeededGenerator(seed: seed)
        _ = try build(inputShape: inputShape, generator: &generator)
    }

    /// Every layer's parameters, each once (shared layers and weights are not repeated), in layer
    /// order, named by their path from this model.
    public var parameters: [Parameter] {
        nameParameters()
        return uniqueParameters
    }

    /// Every layer's parameters, each once, without renaming them (a nested model's own
    /// `parameters` would name them from itself).
    var uniqueParameters: [Parameter] {
        var seen = Set<ObjectIdentifier>()
        var result: [Parameter] = []
        for layer in layers {
            let own = (layer as? Sequential)?.uniqueParameters ?? layer.parameters
            for p in own where seen.insert(ObjectIdentifier(p)).inserted { result.append(p) }
        }
        return result
    }

    /// Runs the layers in order on a batch `[B] + inputShape`. A training-mode call first drops
    /// what earlier training-mode calls left for backward passes that never came.
    /// - Precondition: built, and the input is `[B] + builtInputShape`; the message names both.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        guard let built = builtInputShape else {
            neuritePreconditionFailure("\(label) is not built: call build(seed:) or fit first")
        }
        neuritePrecondition(input.rank == built.count + 1 && Array(input.shape.dropFirst()) == built,
                            "\(label) expects input [B] + \(built), got \(input.shape)")
        if training { clearTrainingCaches() }
        return runLayers(input, training: training)
    }

    /// Runs the layers' backward passes in reverse order and returns dLoss/dInput.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        var g = outputGradient
        for layer in layers.reversed() { g = layer.backward(g) }
        return g
    }

    // MARK: Inference

    /// The model's outputs for `x` `[N] + inputShape`, computed in inference mode (dropout off)
    /// `batchSize` samples at a time and joined: `[N] + outputShape`.
    ///
    /// A large `batchSize` does not make the activations in flight large: each batch runs in
    /// slices of at most 128 samples, fewer when the model's layer outputs exceed 32 MiB for
    /// them (see ``forward(_:training:)`` for one pass over a whole batch). Each sample's
    /// output depends on that sample alone, so the outputs are those of one pass.
    /// - Throws: `TrainingError` when the model is not built, `batchSize < 1`, or `x` is not
    ///   `[N] + inputShape` (the message names both shapes): a user's data never traps.
    public func predict(_ x: Tensor, batchSize: Int = 32) throws -> Tensor {
        guard batchSize > 0 else { throw TrainingError("predict needs a positive batch size, got \(batchSize)") }
        try checkInference(x, what: "predict")
        enterPhase(trainingBatch: nil)
        let n = x.shape[0]
        var ranges: [Range<Int>] = []
        for start in stride(from: 0, to: n, by: batchSize) {
            let batch = start..<Swift.min(start + batchSize, n)
            ranges += inferenceSlices(batch.count).map { (batch.lowerBound + $0.lowerBound)..<(batch.lowerBound + $0.upperBound) }
        }
        guard ranges.count > 1, let outputShape = builtOutputShape else { return forward(x, training: false) }
        // Each slice's outputs go straight into the result: joining the slices' outputs at the
        // end would hold the result twice (an autoencoder's reconstruction of 10,000 images is
        // 31 MB).
        let perSample = outputShape.reduce(1, *)
        return Tensor(shape: [n] + outputShape, unsafeUninitialized: { result in
            for rows in ranges {
                let out = forward(x.slice(rows), training: false)
                neuritePrecondition(out.count == rows.count * perSample,
                                    "\(label): a layer gave \(out.shape) for \(rows.count) samples of built output \(outputShape)")
                out.withUnsafeBufferPointer { src in
                    (result.baseAddress! + rows.lowerBound * perSample).update(from: src.baseAddress!, count: src.count)
                }
            }
        })
    }

    /// The most samples one inference pass of ``predict(_:batchSize:)`` and `evaluate` runs at once.
    package static let inferenceSliceSamples = 128
    /// The most bytes of layer outputs (the input and every layer's output, per sample, times
    /// the samples) that one such pass may make: buffers freed during a pass stay cached for the
    /// next (TensorCore's buffer cache), so all of a pass's outputs count, not just the largest.
    package static let inferenceSliceBytes = 32 << 20

    /// The samples of one inference pass: at most ``inferenceSliceSamples``, and at most
    /// ``inferenceSliceBytes`` of this model's per-sample inputs and layer outputs, at least 1.
    package var inferenceSliceLimit: Int {
        let shapes = [builtInputShape ?? []] + layerOutputShapes
        let floats = shapes.reduce(0) { $0 + $1.reduce(1, *) }
        let perSample = Swift.max(1, floats * MemoryLayout<Float>.stride)
        return Swift.max(1, Swift.min(Self.inferenceSliceSamples, Self.inferenceSliceBytes / perSample))
    }

    /// `0..<count` cut into the fewest slices of at most ``inferenceSliceLimit`` samples, of
    /// equal size give or take one (1,000 samples at 128: eight of 125, never a last sliver).
    package func inferenceSlices(_ count: Int) -> [Range<Int>] {
        let limit = inferenceSliceLimit
        guard count > limit else { return [0..<count] }
        let slices = (count + limit - 1) / limit
        return (0..<slices).map { (count * $0 / slices)..<(count * ($0 + 1) / slices) }
    }

    /// Called before a training step of `trainingBatch` samples, or an inference pass (nil), to
    /// tell TensorCore's buffer cache when the sizes of the work change: training turning to
    /// inference or back, and a training step of another batch size (an epoch's last, smaller
    /// batch, and the first full one after it). The buffers kept for the old sizes do not fit
    /// the new ones, so idle they would only add to the resident memory (issue 14: the BatchNorm
    /// CNN's evaluation after training peaked at the sum of both). They are given back at each
    /// change, which costs one step's page faults (two per epoch in `fit`); calls of the same
    /// kind keep them.
    func enterPhase(trainingBatch: Int?) {
        if lastPhase != .some(trainingBatch) { BufferCache.releaseIdle() }
        lastPhase = .some(trainingBatch)
    }

    /// The inference-mode outputs of the batch `x` `[B] + builtInputShape`, computed in slices of
    /// ``inferenceSlices(_:)`` and joined: what ``forward(_:training:)`` would return, with the
    /// activations of at most one slice in flight.
    func inferenceForward(_ x: Tensor) -> Tensor {
        let slices = inferenceSlices(x.shape.first ?? 0)
        if slices.count <= 1 { return forward(x, training: false) }
        return Tensor.concatenate(slices.map { forward(x.slice($0), training: false) }, axis: 0)
    }

    /// The model's outputs for the batch `x` `[B] + inputShape` in inference mode, as Keras'
    /// `model(x)`: ``predict(_:batchSize:)`` over the whole batch at once.
    /// - Throws: `TrainingError` when the model is not built or `x` does not fit it.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try checkInference(x, what: "calling \(label)")
        return forward(x, training: false)
    }

    /// Throws unless the model is built and `x` is `[N] + builtInputShape`.
    private func checkInference(_ x: Tensor, what: String) throws {
        guard let built = builtInputShape else {
            throw TrainingError("\(label) is not built: build(seed:) or fit it before \(what)")
        }
        guard x.rank == built.count + 1, Array(x.shape.dropFirst()) == built else {
            throw TrainingError("\(what): x has shape \(x.shape), \(label) takes [N] + \(built)")
        }
    }

    // MARK: Weights

    /// Every parameter's value by its name (a copy-on-write snapshot: later training does not
    /// change it). With ``loadWeights(_:)``, the hook for checkpoints and early stopping.
    public func weights() -> [String: Tensor] {
        Dictionary(parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// Sets every parameter from `weights`, by name. Throws a `LayerError` listing missing,
    /// unexpected and mis-shaped keys, and then changes nothing.
    public func loadWeights(_ weights: [String: Tensor]) throws {
        let params = parameters
        var problems: [String] = []
        let missing = params.filter { weights[$0.name] == nil }.map(\.name)
        if !missing.isEmpty { problems.append("missing \(missing)") }
        let names = Set(params.map(\.name))
        let unexpected = weights.keys.filter { !names.contains($0) }.sorted()
        if !unexpected.isEmpty { problems.append("unexpected \(unexpected)") }
        for p in params {
            if let w = weights[p.name], w.shape != p.value.shape {
                problems.append("\(p.name) has shape \(p.value.shape), the weights have \(w.shape)")
            }
        }
        guard problems.isEmpty else {
            throw LayerError("cannot load weights into \(label): " + problems.joined(separator: "; "))
        }
        for p in params { p.value = weights[p.name]! }
    }

    // MARK: Summary

    /// A Keras-like table of the layers: name (type), output shape and parameter count, with the
    /// totals (trainable and non-trainable) and their size in memory. An unbuilt model shows the
    /// shapes it can infer and `0 (unbuilt)` parameters.
    public func summary() -> String {
        var rows: [(String, String, String)] = []
        var shape: [Int]? = builtInputShape ?? inputShape
        var seen = Set<ObjectIdentifier>()
        for (i, layer) in layers.enumerated() {
            if isBuilt {
                shape = layerOutputShapes[i]
            } else if let s = shape {
                shape = try? layer.outputShape(for: s)
            }
            let count: String
            if isBuilt {
                let unique = ((layer as? Sequential)?.uniqueParameters ?? layer.parameters).filter { seen.insert(ObjectIdentifier($0)).inserted }
                count = Self.grouped(unique.reduce(0) { $0 + $1.value.count })
            } else {
                count = "0 (unbuilt)"
            }
            rows.append(("\(layer.name) (\(type(of: layer).typeName))", shape.map(kerasShape) ?? "?", count))
        }
        let w0 = Swift.max(29, (rows.map { $0.0.count }.max() ?? 0) + 2)
        let w1 = Swift.max(26, (rows.map { $0.1.count }.max() ?? 0) + 2)
        let w2 = Swift.max(12, (rows.map { $0.2.count }.max() ?? 0))
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: Swift.max(0, w - s.count)) }
        let width = 1 + w0 + w1 + w2
        var lines = ["Model: \"\(name.isEmpty ? "sequential" : name)\""]
        lines.append(String(repeating: "_", count: width))
        lines.append(" " + pad("Layer (type)", w0) + pad("Output Shape", w1) + "Param #")
        lines.append(String(repeating: "=", count: width))
        for r in rows { lines.append(" " + pad(r.0, w0) + pad(r.1, w1) + r.2) }
        lines.append(String(repeating: "=", count: width))
        let params = isBuilt ? parameters : []
        let total = params.reduce(0) { $0 + $1.value.count }
        let trainable = params.filter(\.isTrainable).reduce(0) { $0 + $1.value.count }
        lines.append("Total params: \(Self.grouped(total)) (\(Self.memorySize(total * 4)))")
        lines.append("Trainable params: \(Self.grouped(trainable)) (\(Self.memorySize(trainable * 4)))")
        lines.append("Non-trainable params: \(Self.grouped(total - trainable)) (\(Self.memorySize((total - trainable) * 4)))")
        lines.append(String(repeating: "_", count: width))
        return lines.joined(separator: "\n")
    }

    /// Prints ``summary()``.
    public func printSummary() { print(summary()) }

    // MARK: Machinery

    /// `12345` as `"12,345"`.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Bytes as Keras prints them: `"397.54 KB"`.
    static func memorySize(_ bytes: Int) -> String {
        var value = Double(bytes)
        for unit in ["B", "KB", "MB", "GB"] {
            if value < 1024 || unit == "GB" { return String(format: "%.2f", value) + " " + unit }
            value /= 1024
        }
        return ""
    }

    /// `Sequential 'name'` for messages.
    var label: String { "Sequential '\(name.isEmpty ? "sequential" : name)'" }

    private func checkDeclared(_ shape: [Int]) throws {
        if let declared = inputShape, declared != shape {
            throw LayerError("\(label) declares input shape \(declared) but gets input shape \(shape)")
        }
    }

    /// Throws for a layer configured to produce several tensors (see `MultipleOutputLayer`).
    private func checkSingleOutput(_ layer: any Layer) throws {
        guard let multiple = layer as? any MultipleOutputLayer, multiple.outputCount > 1 else { return }
        throw LayerError("produces \(multiple.outputCount) tensors (return_state), but a Sequential passes a single "
                         + "tensor from layer to layer: configure it without return_state, or run it outside a Sequential "
                         + "and take its states from its own API")
    }

    private func wrap(_ error: any Error, layer: any Layer, index: Int, input: [Int]) -> any Error {
        guard let e = error as? LayerError else { return error }
        return LayerError("\(label), layer \(index) '\(layer.name)' (\(type(of: layer).typeName)) on input shape \(input): \(e.message)")
    }

    /// Gives every unnamed layer a unique automatic name.
    private func assignNames() {
        var taken = Set(layers.map(\.name).filter { !$0.isEmpty })
        for layer in layers where layer.name.isEmpty {
            let base = snakeCase(type(of: layer).typeName)
            var candidate = base, k = 0
            while taken.contains(candidate) {
                k += 1
                candidate = "\(base)_\(k)"
            }
            layer.name = candidate
            taken.insert(candidate)
        }
    }

    private func checkUniqueNames() throws {
        var owner: [String: ObjectIdentifier] = [:]
        for layer in layers {
            let id = ObjectIdentifier(layer)
            if let other = owner[layer.name], other != id {
                throw LayerError("\(label) has two different layers named '\(layer.name)': layer names must be unique")
            }
            owner[layer.name] = id
        }
    }

    /// Names parameters `"<layer>.<role>"`, with nested containers' names in front.
    private func nameParameters() {
        for layer in layers { Self.nameParameters(of: layer, prefix: "") }
    }

    private static func nameParameters(of layer: any Layer, prefix: String) {
        if let container = layer as? any LayerContainer {
            for sub in container.layers { nameParameters(of: sub, prefix: prefix + container.name + ".") }
        } else {
            for p in layer.parameters {
                let role = p.name.split(separator: ".").last.map(String.init) ?? p.name
                p.name = "\(prefix)\(layer.name).\(role)"
            }
        }
    }

    /// The forward pass without the checks and cache clearing of the outermost call.
    ///
    /// A batch normalisation over the last axis followed by a relu activation layer runs as one
    /// fused pass (and so does its backward pass), which saves two passes over the activations
    /// each way; the results are those of the two layers run one after the other.
    func runLayers(_ input: Tensor, training: Bool) -> Tensor {
        var x = input
        var i = 0
        while i < layers.count {
            let layer = layers[i]
            if let nested = layer as? Sequential {
                x = nested.runLayers(x, training: training)
            } else if let normalization = layer as? BatchNormalization, i + 1 < layers.count,
                      let activation = layers[i + 1] as? ActivationLayer, activation.function == .relu,
                      normalization.canFuseReLU(perSampleRank: x.rank - 1) {
                x = normalization.forward(x, training: training, fusingReLU: true)
                x = activation.forwardFused(x, training: training)
                i += 1
            } else {
                x = layer.forward(x, training: training)
            }
            i += 1
        }
        return x
    }

    /// The backward pass of a training step, which needs the trainable parameters' gradients but
    /// not the input gradient: layers before the first one with trainable parameters are skipped
    /// (a frozen base of a fine-tuned model costs no backward pass at all), and that one skips its
    /// input gradient when it can (a `Dense` saves a GEMM as large as its forward one).
    ///
    /// With `skippingOutputActivation`, `outputGradient` is dLoss/d(the last layer's activation
    /// input), and that layer skips its activation's derivative (the fused loss path; see
    /// `Sequential+OutputActivation.swift`).
    func backwardForTraining(_ outputGradient: Tensor, skippingOutputActivation: Bool = false) {
        let lastIndex = layers.count - 1
        let fusedLast = skippingOutputActivation ? layers.last as? OutputActivationLayer : nil
        neuritePrecondition(!skippingOutputActivation || fusedLast != nil,
                            "\(label): the fused loss path needs a last layer that applies an activation")
        guard let first = layers.firstIndex(where: Self.hasTrainableParameters) else {
            // Nothing to train: only the last layer's saved state must be popped.
            _ = fusedLast?.backwardSkippingActivation(outputGradient, inputGradient: false)
            return
        }
        var g = outputGradient
        for i in stride(from: lastIndex, to: first, by: -1) {
            if i == lastIndex, let fusedLast {
                g = fusedLast.backwardSkippingActivation(g, inputGradient: true)!
            } else if let layer = layers[i] as? GradientConsumingBackward {
                // Nothing reads g after this layer, which may write its input gradient over it.
                g = layer.backward(consuming: consume g)
            } else {
                g = layers[i].backward(g)
            }
        }
        if first == lastIndex, let fusedLast {
            _ = fusedLast.backwardSkippingActivation(g, inputGradient: false)
            return
        }
        switch layers[first] {
        case let nested as Sequential: nested.backwardForTraining(g)
        case let layer as ParameterGradientBackward: layer.backwardParameterGradients(g)
        case let layer as TrainingStateOwner: layer.backwardParameterGradients(g)
        case let layer: _ = layer.backward(g)
        }
    }

    /// Whether `layer` (a nested model: any of its layers) has a parameter that training updates.
    static func hasTrainableParameters(_ layer: any Layer) -> Bool {
        ((layer as? Sequential)?.uniqueParameters ?? layer.parameters).contains { $0.isTrainable }
    }

    /// The parameters of frozen layers (``Layer/trainable`` false), nested models included:
    /// they do not change in training, running statistics of a frozen batch normalisation
    /// included.
    var frozenLayerParameters: Set<ObjectIdentifier> {
        var result = Set<ObjectIdentifier>()
        for layer in layers {
            if let nested = layer as? Sequential {
                result.formUnion(nested.frozenLayerParameters)
            } else if !layer.trainable {
                for p in layer.parameters { result.insert(ObjectIdentifier(p)) }
            }
        }
        return result
    }

    /// Tells every step-seeded layer (dropout), nested models included, that training step `step`
    /// (counted from 0 over the whole run) begins.
    func beginTrainingStep(_ step: Int) {
        for layer in layers {
            if let nested = layer as? Sequential {
                nested.beginTrainingStep(step)
            } else {
                (layer as? StepSeeded)?.beginStep(step)
            }
        }
    }

    /// Drops every layer's kept training state.
    func clearTrainingCaches() {
        for layer in layers {
            if let nested = layer as? Sequential {
                nested.clearTrainingCaches()
            } else {
                (layer as? TrainingCacheOwner)?.clearTrainingCache()
                (layer as? TrainingStateOwner)?.clearTrainingState()
            }
        }
    }
}

/// Declares a model's per-sample input shape, as Keras' `Input(shape:)`:
/// `Sequential { Input(shape: [28, 28, 1]); Flatten(); Dense(10) }` is
/// `Sequential(inputShape: [28, 28, 1]) { Flatten(); Dense(10) }`.
///
/// A `Sequential` takes it as its input shape and does not keep it among its layers (Keras'
/// summaries do not list it either). Used on its own it passes its input through, after checking
/// the shape.
public final class Input: Layer {
    /// `"InputLayer"`, as Keras names it.
    public static let typeName = "InputLayer"
    /// Keras' `trainable` flag, kept in ``config``: the layer has no weights to freeze.
    public var trainable = true
    /// The layer's name.
    public var name: String
    /// The per-sample shape (no batch axis).
    public let shape: [Int]

    /// Declares inputs of per-sample shape `shape`.
    /// - Precondition: every extent is positive.
    public init(shape: [Int], name: String = "") {
        neuritePrecondition(shape.allSatisfy { $0 > 0 }, "Input shape \(shape) needs positive extents")
        self.shape = shape
        self.name = name
    }

    /// `["name", "shape"]`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] { ["name": .string(name), "shape": .ints(shape)] }

    /// Rebuilds from ``config``.
    public convenience init(config: [String: ConfigValue]) throws {
        let shape = try config.ints("shape", of: Self.typeName)
        guard shape.allSatisfy({ $0 > 0 }) else { throw LayerError("InputLayer config \"shape\" \(shape) needs positive extents") }
        self.init(shape: shape, name: try config.optionalName(of: Self.typeName))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// `shape`; throws when `inputShape` differs.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape == shape else {
            throw LayerError("Input '\(name)' declares shape \(shape) but gets input shape \(inputShape)")
        }
        return shape
    }

    /// Checks the shape; nothing to create.
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        try outputShape(for: inputShape)
    }

    /// None.
    public var parameters: [Parameter] { [] }

    /// The input itself.
    /// - Precondition: the input is `[B] + shape`.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        neuritePrecondition(Array(input.shape.dropFirst()) == shape && input.rank == shape.count + 1,
                            "Input '\(name)' declares shape [B] + \(shape), got \(input.shape)")
        return input
    }

    /// The gradient itself.
    public func backward(_ outputGradient: Tensor) -> Tensor { outputGradient }
}
