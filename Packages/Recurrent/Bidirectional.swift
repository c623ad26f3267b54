import Layers
import Optimizers
import TensorCore

/// Runs a recurrent layer over the sequence in both directions and merges the two outputs,
/// Keras' `Bidirectional`.
///
/// ```swift
/// Bidirectional(LSTM(64, returnSequences: true))             // [B, T, F] -> [B, T, 128]
/// Bidirectional(GRU(32), mergeMode: .sum)                     // [B, T, F] -> [B, 32]
/// ```
///
/// The layer given runs forwards; a copy of its configuration with `goBackwards` flipped runs
/// backwards (its own weights), and its sequence output is reversed back into input order before
/// merging, so step `t` of the output sees the whole sequence. Parameters are named
/// `"<name>.forward_kernel"`, `"<name>.backward_recurrent_kernel"`, ... (one dotted level, as every
/// parameter of a non-container layer; Keras nests them as `forward_lstm/...`). Masking and
/// states are the wrapped layers' own (set ``forwardLayer``'s and ``backwardLayer``'s
/// `initialState`). Cost: twice the wrapped layer's, plus one pass to merge.
///
/// **Dropout** is the wrapped layers' own: each direction draws its own masks from its own stream
/// (the backward layer's seed is saved as `backward_seed`, so a reloaded model draws the same).
/// **States**: with the wrapped layer's `returnState`, the layer counts as producing
/// `[output, forward states..., backward states...]`, Keras' order, which a `Sequential` refuses;
/// ``forwardReturningState(_:training:)`` and ``backward(_:stateGradient:)`` give and take them.
public final class Bidirectional: Layer, TrainingStateOwner, StepSeeded, MultipleOutputLayer {
    /// `"Bidirectional"`.
    public static let typeName = "Bidirectional"
    /// Whether training updates both directions' weights (Keras' `trainable`); see
    /// `Layer.trainable`. Setting it sets both wrapped layers' flags, as Keras does.
    public var trainable = true {
        didSet {
            forwardLayer.trainable = trainable
            backwardLayer.trainable = trainable
        }
    }

    /// How the two directions' outputs are combined (Keras' `merge_mode`).
    public enum MergeMode: String, Sendable, CaseIterable {
        /// Side by side on the last axis: `2U` features.
        case concat
        /// Added.
        case sum
        /// Averaged.
        case ave
        /// Multiplied element by element.
        case mul
    }

    /// The layer's name; the wrapped layers take it too, so parameters are `"<name>.forward_..."`.
    public var name: String {
        didSet {
            forwardLayer.name = name
            backwardLayer.name = name
        }
    }
    /// The layer run from the first step to the last.
    public let forwardLayer: RecurrentLayer
    /// The layer run from the last step to the first.
    public let backwardLayer: RecurrentLayer
    /// How the outputs are merged.
    public let mergeMode: MergeMode
    private var saved: [(Tensor, Tensor)] = []
    private var lastSaved: (Tensor, Tensor)?

    /// Wraps `layer` (which runs forwards) and a fresh copy of its configuration that runs backwards.
    /// - Precondition: `layer` is not built yet and not `stateful` in only one direction (it is copied).
    public convenience init(_ layer: RecurrentLayer, mergeMode: MergeMode = .concat, name: String = "") {
        self.init(layer, mergeMode: mergeMode, name: name, backwardSeed: nil)
    }

    /// `backwardSeed`: the backward layer's dropout seed when it differs from `layer`'s (a reloaded model's).
    private init(_ layer: RecurrentLayer, mergeMode: MergeMode, name: String, backwardSeed: UInt64?) {
        neuritePrecondition(layer.kernel == nil, "Bidirectional needs an unbuilt layer, got \(layer.label), already built")
        var c = layer.config
        c["go_backwards"] = .bool(!layer.goBackwards)
        if let backwardSeed { c["seed"] = .int(Int(truncatingIfNeeded: backwardSeed)) }
        forwardLayer = layer
        backwardLayer = try! type(of: layer).init(config: c)
        self.mergeMode = mergeMode
        self.name = name
        forwardLayer.name = name
        backwardLayer.name = name
        forwardLayer.rolePrefix = "forward_"
        backwardLayer.rolePrefix = "backward_"
        RecurrentLayers.register()
    }

    /// `name`, `merge_mode`, and the wrapped layer as `layer` (its type name) with its config under
    /// `layer.<key>` keys; with dropout, once built, `backward_seed`, the backward layer's seed.
    ///
    /// Why flattened keys: a layer config holds flat JSON values only (`ConfigValue`), and the
    /// saved-architecture format nests layers only inside a `Sequential`. Prefixed keys keep the
    /// wrapped layer's config readable and complete in `model.json` (`"layer.units": 64`) without
    /// changing that format; Keras writes the same information as a nested `"layer"` object.
    public var config: [String: ConfigValue] {
        var c: [String: ConfigValue] = ["name": .string(name), "merge_mode": .string(mergeMode.rawValue),
                                        "layer": .string(type(of: forwardLayer).typeName)]
        for (k, v) in forwardLayer.config where k != "name" { c["layer." + k] = v }
        if let s = backwardLayer.streamSeed { c["backward_seed"] = .int(Int(truncatingIfNeeded: s)) }
        return c.addingTrainable(trainable)
    }

    /// Rebuilds from ``config``. The wrapped layer's keys are checked by it; other keys than
    /// `name`, `merge_mode`, `layer`, `backward_seed`, and Keras' `trainable` (true or false: sets
    /// ``trainable``) and `dtype` (null or `"float32"`), throw a `LayerError` naming the key and
    /// the value.
    public convenience init(config: [String: ConfigValue]) throws {
        let t = Self.typeName
        for key in config.keys.sorted() where !key.hasPrefix("layer.") {
            let v = config[key]!
            switch key {
            case "name", "merge_mode", "layer", "backward_seed", "trainable": continue
            case "dtype" where v == .null || v == .string("float32"): continue
            case "dtype":
                throw LayerError("Bidirectional config \"\(key)\": \(v) is not supported (dtype float32 only)")
            default:
                throw LayerError("Bidirectional config has key \"\(key)\" (value \(v)), which Bidirectional does not implement")
            }
        }
        let typeName = try config.string("layer", of: t)
        guard let type = [SimpleRNN.self, LSTM.self, GRU.self].first(where: { $0.typeName == typeName }) as RecurrentLayer.Type? else {
            throw LayerError("Bidirectional config \"layer\" must be SimpleRNN, LSTM or GRU, got \"\(typeName)\"")
        }
        var inner: [String: ConfigValue] = [:]
        for (k, v) in config where k.hasPrefix("layer.") { inner[String(k.dropFirst(6))] = v }
        let layer: RecurrentLayer
        do { layer = try type.init(config: inner) } catch let e as LayerError { throw LayerError("Bidirectional's \(typeName): \(e.message)") }
        var mode = MergeMode.concat
        if config["merge_mode"] != nil {
            let s = try config.string("merge_mode", of: t)
            guard let m = MergeMode(rawValue: s) else {
                throw LayerError("Bidirectional config \"merge_mode\" must be concat, sum, ave or mul, got \"\(s)\"")
            }
            mode = m
        }
        var name = ""
        if case .string(let s)? = config["name"] { name = s }
        var backwardSeed: UInt64?
        if config["backward_seed"] != nil && config["backward_seed"] != .null {
            backwardSeed = UInt64(truncatingIfNeeded: try config.int("backward_seed", of: t))
        }
        self.init(layer, mergeMode: mode, name: name, backwardSeed: backwardSeed)
        // Absent, the wrapped layers keep the flag of their own config (`layer.trainable`).
        if config["trainable"] != nil {
            trainable = try config.trainable(of: t)
            // Property observers do not run in an initialiser: set both directions here.
            forwardLayer.trainable = trainable
            backwardLayer.trainable = trainable
        }
    }

    /// 1, or with the wrapped layer's `returnState` the output and both directions' states.
    public var outputCount: Int {
        forwardLayer.returnState ? 1 + 2 * forwardLayer.stateCount : 1
    }

    /// Restarts both directions' dropout streams for training step `step` (see ``RecurrentLayer/beginStep(_:)``).
    public func beginStep(_ step: Int) {
        forwardLayer.beginStep(step)
        backwardLayer.beginStep(step)
    }

    /// The merged output and the final states, forward layer's then backward layer's (Keras'
    /// `[output, forward_h(, forward_c), backward_h(, backward_c)]`), each `[B, U]`. Works whatever
    /// the wrapped layer's `returnState` says. Cost: the forward pass's.
    public func forwardReturningState(_ input: Tensor, training: Bool) -> (output: Tensor, state: [Tensor]) {
        let output = forward(input, training: training)
        return (output, forwardLayer.finalState + backwardLayer.finalState)
    }

    /// The backward pass of ``forwardReturningState(_:training:)``: `stateGradient` holds the
    /// gradients of the final states in the order they were returned. Returns dLoss/dInput.
    /// - Precondition: shapes of the last training-mode forward's output and states.
    public func backward(_ outputGradient: Tensor, stateGradient: [Tensor]) -> Tensor {
        let n = forwardLayer.finalState.count
        neuritePrecondition(stateGradient.count == n + backwardLayer.finalState.count,
                            "Bidirectional '\(name)' backward: \(n + backwardLayer.finalState.count) state gradients expected, got \(stateGradient.count)")
        let (da, db) = split(outputGradient)
        return forwardLayer.backward(da, stateGradient: Array(stateGradient[..<n]))
            + backwardLayer.backward(db, stateGradient: Array(stateGradient[n...]))
    }

    /// The wrapped layer's output shape, with twice the features for `concat`.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        var shape = try forwardLayer.outputShape(for: inputShape)
        if mergeMode == .concat { shape[shape.count - 1] *= 2 }
        return shape
    }

    /// Builds both directions (forward first, then backward, from `generator`).
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        _ = try forwardLayer.build(inputShape: inputShape, generator: &generator)
        _ = try backwardLayer.build(inputShape: inputShape, generator: &generator)
        return try outputShape(for: inputShape)
    }

    /// The forward layer's parameters, then the backward layer's.
    public var parameters: [Parameter] { forwardLayer.parameters + backwardLayer.parameters }

    /// Both directions over `input` `[B, T, F]`, merged.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let a = forwardLayer.forward(input, training: training)
        var b = backwardLayer.forward(input, training: training)
        if backwardLayer.returnSequences { b = Self.reversedInTime(b) }
        if training && mergeMode == .mul { saved.append((a, b)) }
        switch mergeMode {
        case .concat: return Self.concatenateLast(a, b)
        case .sum: return a + b
        case .ave: return (a + b) * 0.5
        case .mul: return a * b
        }
    }

    /// Splits the gradient between the directions and returns the sum of their input gradients.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let (da, db) = split(outputGradient)
        return forwardLayer.backward(da) + backwardLayer.backward(db)
    }

    /// The backward pass of both directions without their input gradients.
    public func backwardParameterGradients(_ outputGradient: Tensor) {
        let (da, db) = split(outputGradient)
        forwardLayer.backwardParameterGradients(da)
        backwardLayer.backwardParameterGradients(db)
    }

    /// The output gradient split into the two directions' (the backward one in its own order).
    private func split(_ outputGradient: Tensor) -> (Tensor, Tensor) {
        var da: Tensor, db: Tensor
        switch mergeMode {
        case .concat:
            (da, db) = Self.splitLast(outputGradient)
        case .sum:
            (da, db) = (outputGradient, outputGradient)
        case .ave:
            da = outputGradient * 0.5
            db = da
        case .mul:
            let pair: (Tensor, Tensor)
            if let p = saved.popLast() { lastSaved = p; pair = p } else if let p = lastSaved { pair = p } else {
                neuritePreconditionFailure("backward of Bidirectional '\(name)' without a training-mode forward")
            }
            neuritePrecondition(outputGradient.shape == pair.0.shape,
                                "Bidirectional '\(name)' backward: output gradient has shape \(outputGradient.shape), the output had \(pair.0.shape)")
            (da, db) = (outputGradient * pair.1, outputGradient * pair.0)
        }
        if backwardLayer.returnSequences { db = Self.reversedInTime(db) }
        return (da, db)
    }

    /// Drops both directions' kept state.
    public func clearTrainingState() {
        forwardLayer.clearTrainingState()
        backwardLayer.clearTrainingState()
        saved.removeAll()
        lastSaved = nil
    }

    // MARK: Machinery

    /// `[B, T, U]` with the time axis reversed.
    static func reversedInTime(_ x: Tensor) -> Tensor {
        let (b, t, u) = (x.shape[0], x.shape[1], x.shape[2])
        return x.withUnsafeBufferPointer { src in
            Tensor(shape: x.shape) { out in
                for r in 0..<b {
                    for s in 0..<t {
                        (out.baseAddress! + (r * t + s) * u).update(from: src.baseAddress! + (r * t + t - 1 - s) * u, count: u)
                    }
                }
            }
        }
    }

    static func concatenateLast(_ a: Tensor, _ b: Tensor) -> Tensor {
        let u = a.shape.last!, rows = a.count / u
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                Tensor(shape: Array(a.shape.dropLast()) + [2 * u]) { out in
                    for r in 0..<rows {
                        (out.baseAddress! + r * 2 * u).update(from: pa.baseAddress! + r * u, count: u)
                        (out.baseAddress! + r * 2 * u + u).update(from: pb.baseAddress! + r * u, count: u)
                    }
                }
            }
        }
    }

    static func splitLast(_ g: Tensor) -> (Tensor, Tensor) {
        let u2 = g.shape.last!, u = u2 / 2, rows = g.count / u2
        let shape = Array(g.shape.dropLast()) + [u]
        return g.withUnsafeBufferPointer { pg in
            (Tensor(shape: shape) { out in
                for r in 0..<rows { (out.baseAddress! + r * u).update(from: pg.baseAddress! + r * u2, count: u) }
            },
             Tensor(shape: shape) { out in
                for r in 0..<rows { (out.baseAddress! + r * u).update(from: pg.baseAddress! + r * u2 + u, count: u) }
            })
        }
    }
}
