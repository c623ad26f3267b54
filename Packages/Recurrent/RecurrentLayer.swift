import Layers
import Optimizers
import TensorCore

/// What the three recurrent layers (``SimpleRNN``, ``LSTM``, ``GRU``) share: the loop over time,
/// the fused matrix products, masking, states, truncated backpropagation and the configuration.
/// Use the subclasses; this class only holds their common machinery and options.
///
/// **Shapes.** Input `[B, T, F]`; output `[B, T, U]` with `returnSequences`, else `[B, U]` (the
/// last step's output). Weights as Keras stores them: `kernel` `[F, G·U]`, `recurrent_kernel`
/// `[U, G·U]` and `bias`, where `G` is the number of gates (1, 3 or 4), gates side by side in
/// Keras' order.
///
/// **Cost.** Forward: one GEMM `[T·B, F] x [F, G·U]` for the input part of every step at once,
/// then per step one GEMM `[B, U] x [U, G·U]` for the recurrent part (the kernel packed once per
/// pass, see `PackedMatrix`) and one fused pass over the gates (a C kernel per ISA path for Keras'
/// activations, `LSTMKernels`/`GRUKernels`). Backward: per step one pass over the gates and one
/// GEMM `[B, G·U] x [G·U, U]`; then both kernels' gradients as one GEMM over all steps,
/// `[x_t, h_(t-1)]ᵀ·dZ` (depth `T·B`), and the input gradient as one GEMM (skipped when the layer
/// is a model's first). Samples are independent through time, so the batch is cut into row ranges
/// that run the whole loop over the steps on the pool's threads: one dispatch per pass. Inside,
/// sequences are time-major (`[T, B, ·]`) so each step's rows are contiguous, and scratch space is
/// owned by the layer and reused, so a step allocates nothing. A training-mode forward keeps its
/// input, gates and states (about `T·B·(F + (G + 2)·U)` floats) until the backward pass.
///
/// **Masking.** With `maskValue`, a step where every feature of a sample equals it (Keras'
/// `Masking(mask_value)` in front of the layer) is skipped for that sample: its state is carried
/// through unchanged, its output (with `returnSequences`) repeats the previous one, and it gets no
/// gradient. Padding a batch of sequences of different lengths with the mask value therefore gives
/// each sample the result of its own length. ``Embedding`` with `maskZero` writes zero vectors for
/// token 0, so an `Embedding(maskZero: true)` followed by a layer with `maskValue: 0` masks padding.
/// There is no separate `Masking` layer: a `Sequential` passes one tensor from layer to layer and
/// no mask beside it, so the mask is recomputed from the values by the layer that needs it.
///
/// **States.** ``initialState`` sets the state the next forward passes start from (`[h]`, or
/// `[h, c]` for an LSTM, each `[B, U]`); ``finalState`` is the state after the last forward, and
/// ``initialStateGradient`` the gradient of the last backward with respect to the initial state.
/// With `stateful`, each forward starts from the previous forward's final state (for long texts
/// cut into consecutive batches of the same size), until ``resetStates()``.
///
/// **Returning the state.** Keras' `return_state` makes the layer's call return
/// `[output, state_h(, state_c)]`. Here ``forwardReturningState(_:training:)`` returns the output
/// and the final state of any recurrent layer, and ``backward(_:stateGradient:)`` takes the
/// gradients of both (an encoder whose final state starts a decoder: feed the decoder's
/// ``initialStateGradient`` back as the encoder's state gradient). `returnState` records Keras'
/// flag: the layer then counts as producing several tensors (`MultipleOutputLayer`), so a
/// `Sequential`, which passes one tensor from layer to layer, refuses to build with it (a thrown
/// `LayerError`, as Keras refuses) instead of silently dropping the states; it is saved in the
/// config.
///
/// **Dropout.** `dropout` drops a fraction of the inputs `x_t` and `recurrentDropout` a fraction
/// of the state `h_(t-1)` where it enters the recurrent product, as Keras 3 does: in training only,
/// survivors scaled by `1 / (1 - rate)`, with masks drawn once per forward pass (one mask per
/// sample, the same at every time step: "variational" dropout). With `recurrentDropout` above 0,
/// an LSTM or GRU draws a separate pair of masks for each gate, as Keras 3 does then
/// (`implementation=1`): `z_k = (x ⊙ m_k)·W_k + (h ⊙ r_k)·U_k + b_k`; otherwise one input mask
/// serves every gate. The state itself (carried on, mixed by the GRU's update gate, returned) is
/// never dropped. The masks come from the layer's own stream, seeded like `Dropout`'s: from
/// `seed`, or from a number drawn from the model's generator at build (only when a rate is above
/// 0, so the weights of a model without recurrent dropout do not move); under `fit` the stream
/// restarts at every step from `(seed, step)` (``beginStep(_:)``), so a resumed run draws the masks
/// an uninterrupted one drew. ``dropoutMasks`` and ``recurrentDropoutMasks`` show the last
/// forward's. Cost: a few multiplies per element of `x` and `h` in training; with recurrent
/// dropout, `G` products `[B, U] x [U, U]` per step instead of one `[B, U] x [U, G·U]` (the same
/// arithmetic, smaller products), and both weight gradients as separate GEMMs. With both rates 0,
/// or at inference, the passes are the plain ones.
///
/// **Truncated backpropagation.** With `truncateGradient: k`, gradients flow back through at
/// most the `k` steps of their chunk (steps `0..<k`, `k..<2k`, ...): the state's gradient is cut at
/// chunk boundaries. With `stateful`, feeding a long sequence in chunks of `k` steps gives the
/// classic truncated BPTT too.
public class RecurrentLayer: Layer, TrainingStateOwner, StepSeeded, MultipleOutputLayer {
    /// The Keras type name; each subclass has its own.
    public class var typeName: String { "RNN" }
    /// Whether training updates `kernel`, `recurrent_kernel` and `bias` (Keras' `trainable`);
    /// see `Layer.trainable`. Kept before `build` and saved in ``config`` when false.
    public var trainable = true { didSet { for p in parameters { p.isTrainable = trainable } } }
    /// The layer's name, unique in its model; renaming renames its parameters
    /// (`"<name>.kernel"`, `"<name>.recurrent_kernel"`, `"<name>.bias"`).
    public var name: String { didSet { nameParameters() } }
    /// The state size `U`.
    public let units: Int
    /// The output (candidate) activation, Keras' `activation` (tanh by default).
    public let activation: ActivationFunction
    /// The gates' activation, Keras' `recurrent_activation` (sigmoid by default; SimpleRNN has none).
    public let recurrentActivation: ActivationFunction
    /// Whether the layer has a bias.
    public let useBias: Bool
    /// Whether the output is every step's output `[B, T, U]` rather than the last one `[B, U]`.
    public let returnSequences: Bool
    /// Keras' `return_state`: whether the layer counts as producing its output and its final
    /// state (``outputCount`` tensors), which a `Sequential` refuses; see the type's discussion.
    public let returnState: Bool
    /// Whether the sequence is processed from its last step to its first (Keras' `go_backwards`);
    /// the outputs are then in processing order, i.e. reversed, as in Keras.
    public let goBackwards: Bool
    /// Whether each forward starts from the previous forward's final state.
    public let stateful: Bool
    /// The padding value that marks a skipped step, if any (see the type's discussion).
    public let maskValue: Float?
    /// The chunk length of truncated backpropagation through time, if any.
    public let truncateGradient: Int?
    /// The fraction of the inputs `x_t` dropped in training (Keras' `dropout`), in `0..<1`.
    public let dropout: Float
    /// The fraction of the state `h_(t-1)` dropped in the recurrent product in training (Keras'
    /// `recurrent_dropout`), in `0..<1`.
    public let recurrentDropout: Float
    /// The seed of the dropout masks' stream, or nil to draw one from the model's generator at build.
    public let seed: UInt64?
    /// How `kernel` is filled at build (Glorot-uniform by default).
    public let kernelInitializer: Initializer
    /// How `recurrent_kernel` is filled at build; nil means orthogonal, Keras' default.
    public let recurrentInitializer: Initializer?
    /// How `bias` is filled at build (zeros by default; an LSTM with `unitForgetBias` then sets its
    /// forget gate's part to 1).
    public let biasInitializer: Initializer

    /// The input weights `[F, G·U]`, once built.
    public private(set) var kernel: Parameter?
    /// The recurrent weights `[U, G·U]`, once built.
    public private(set) var recurrentKernel: Parameter?
    /// The bias, once built with `useBias` (`[G·U]`; a GRU's is `[2, 3U]`).
    public private(set) var bias: Parameter?
    /// The per-sample input shape `[T, F]` the layer was built for.
    public private(set) var builtInputShape: [Int]?

    /// The state the next forward passes start from: `[h]` (`[h, c]` for an LSTM), each `[B, U]`;
    /// nil starts from zeros (or, when `stateful`, from the previous final state). It stays set
    /// until set to nil.
    public var initialState: [Tensor]?
    /// The state after the last forward: `[h]` (`[h, c]` for an LSTM), each `[B, U]`.
    public private(set) var finalState: [Tensor] = []
    /// dLoss/dInitialState from the last backward, in the order of ``initialState``.
    public private(set) var initialStateGradient: [Tensor] = []
    /// The input dropout masks of the last forward, each `[B, F]` with entries 0 or
    /// `1 / (1 - dropout)`: one, or one per gate (Keras' order) when `recurrentDropout` is above 0
    /// in an LSTM or GRU; empty after an inference-mode forward or with `dropout` 0.
    public private(set) var dropoutMasks: [Tensor] = []
    /// The recurrent dropout masks of the last forward, one per gate (Keras' order), each `[B, U]`
    /// with entries 0 or `1 / (1 - recurrentDropout)`; empty after an inference-mode forward or
    /// with `recurrentDropout` 0.
    public private(set) var recurrentDropoutMasks: [Tensor] = []

    // Subclass hooks and their data.
    /// Gates per unit (1, 3 or 4).
    class var gateCount: Int { 1 }
    /// Whether there is a cell state beside `h` (the LSTM).
    class var hasCellState: Bool { false }
    /// Whether a separate recurrent projection is kept per step (the GRU with reset_after).
    class var keepsRecurrentProjection: Bool { false }
    /// Prefix of parameter roles, set by `Bidirectional` (`"forward_"`, `"backward_"`).
    var rolePrefix = "" { didSet { nameParameters() } }

    let outputGate: GateFunction
    let gateFunction: GateFunction
    /// The seed in force once built with a rate above 0: `seed`, or the number drawn at build.
    private(set) var streamSeed: UInt64?
    private var dropoutGenerator: SeededGenerator?
    private var carriedState: [Tensor]?
    private var tape: [Pass] = []
    private var lastPopped: Pass?
    private var freePasses: [Pass] = []
    private let work = Workspace()

    /// The common initialiser of the subclasses.
    init(units: Int, activation: ActivationFunction, recurrentActivation: ActivationFunction, useBias: Bool,
         returnSequences: Bool, returnState: Bool, goBackwards: Bool, stateful: Bool, maskValue: Float?,
         truncateGradient: Int?, dropout: Float, recurrentDropout: Float, seed: UInt64?,
         kernelInitializer: Initializer, recurrentInitializer: Initializer?, biasInitializer: Initializer, name: String) {
        let type = Self.typeName
        neuritePrecondition(units > 0, "\(type) needs a positive number of units, got \(units)")
        neuritePrecondition(truncateGradient.map { $0 > 0 } ?? true,
                            "\(type) needs a positive truncateGradient, got \(truncateGradient ?? 0)")
        neuritePrecondition(dropout >= 0 && dropout < 1, "\(type) dropout must be in 0..<1, got \(dropout)")
        neuritePrecondition(recurrentDropout >= 0 && recurrentDropout < 1,
                            "\(type) recurrentDropout must be in 0..<1, got \(recurrentDropout)")
        neuritePrecondition(activation.isRecurrentGate,
                            "\(type) supports activation tanh, sigmoid, relu or linear, got \(activation.configName)")
        neuritePrecondition(recurrentActivation.isRecurrentGate,
                            "\(type) supports recurrent activation tanh, sigmoid, relu or linear, got \(recurrentActivation.configName)")
        self.units = units
        self.activation = activation
        self.recurrentActivation = recurrentActivation
        self.useBias = useBias
        self.returnSequences = returnSequences
        self.returnState = returnState
        self.goBackwards = goBackwards
        self.stateful = stateful
        self.maskValue = maskValue
        self.truncateGradient = truncateGradient
        self.dropout = dropout
        self.recurrentDropout = recurrentDropout
        self.seed = seed
        self.kernelInitializer = kernelInitializer
        self.recurrentInitializer = recurrentInitializer
        self.biasInitializer = biasInitializer
        self.name = name
        outputGate = try! GateFunction(activation, role: "activation", layer: type)
        gateFunction = try! GateFunction(recurrentActivation, role: "recurrent activation", layer: type)
        RecurrentLayers.register()
    }

    /// Rebuilds from a config with Keras' key names and defaults (each subclass reads its own keys;
    /// see ``config``). Keys Keras writes that do not change what the layer computes are accepted
    /// with the values that keep it so: `dtype` (null or `"float32"`),
    /// `unroll`, `zero_output_for_mask` (false), the regularizers and constraints (null), and for
    /// an LSTM or GRU `use_cudnn` and `implementation` (2, or 1 where it computes the same). Any
    /// other key, or another value, throws a `LayerError` naming the layer, the key and the value.
    /// `trainable` (true or false) sets ``trainable``.
    public required convenience init(config: [String: ConfigValue]) throws {
        fatalError("init(config:) is implemented by SimpleRNN, LSTM and GRU")
    }

    // MARK: Configuration

    /// The keys every recurrent layer saves: `name`, `units`, `activation`, `recurrent_activation`
    /// (not SimpleRNN's), `use_bias`, `return_sequences`, `return_state`, `go_backwards`,
    /// `stateful`, `mask_value`, `truncate_gradient`, `dropout`, `recurrent_dropout`, `seed`,
    /// `kernel_initializer`, `recurrent_initializer`, `bias_initializer`, and `trainable: false`
    /// for a frozen layer. `seed` is the seed in
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
        if Self.gateCount > 1 { c["recurrent_activation"] = .string(recurrentActivation.configName) }
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
        /// Keras' `trainable`: the subclass sets the layer's flag from it.
        var trainable = true
        /// `"LSTM 'encoder'"`, or `"LSTM"` for an unnamed layer: how errors name the layer.
        let who: String

        /// Reads `c` for a layer of type `t` with `gates` gates; `own` are the keys the subclass
        /// reads itself (`unit_forget_bias`, `reset_after`).
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

    // MARK: Shapes and weights

    /// `[T, U]` with `returnSequences`, else `[U]`, for a per-sample input `[T, F]`; throws for
    /// another rank, or another `F` than the layer was built for.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 2, inputShape.allSatisfy({ $0 > 0 }) else {
            throw LayerError("\(label) needs per-sample input [T, F] (time steps, features), got input shape \(inputShape)")
        }
        if let built = builtInputShape, built[1] != inputShape[1] {
            throw LayerError("\(label) was built for input shape \(built) (\(built[1]) features) and cannot take input shape \(inputShape)")
        }
        return returnSequences ? [inputShape[0], units] : [units]
    }

    /// Creates `kernel`, `recurrent_kernel` and `bias` for per-sample inputs `[T, F]`, and, with a
    /// dropout rate above 0, seeds the masks' stream (one number drawn from `generator`). Building
    /// again keeps the weights and the stream.
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        let output = try outputShape(for: inputShape)
        if kernel == nil {
            let g = Self.gateCount * units
            kernel = Parameter(name: "", value: kernelInitializer.make([inputShape[1], g], generator: &generator),
                               isTrainable: trainable)
            let rec = recurrentInitializer.map { $0.make([units, g], generator: &generator) }
                ?? orthogonalMatrix(rows: units, cols: g, generator: &generator)
            recurrentKernel = Parameter(name: "", value: rec, isTrainable: trainable)
            if useBias { bias = Parameter(name: "", value: makeBias(generator: &generator), isTrainable: trainable) }
            if dropout > 0 || recurrentDropout > 0 {
                // Drawn even with a given seed, so the next layers' weights do not depend on it.
                let drawn = generator.next()
                streamSeed = seed ?? drawn
                dropoutGenerator = SeededGenerator(seed: streamSeed!)
            }
            builtInputShape = inputShape
            nameParameters()
        }
        return output
    }

    /// The initial bias (subclasses shape it).
    func makeBias(generator: inout SeededGenerator) -> Tensor {
        biasInitializer.make([Self.gateCount * units], generator: &generator)
    }

    /// `[kernel, recurrent_kernel, bias]` (without the bias when `useBias` is false); empty before build.
    public var parameters: [Parameter] { [kernel, recurrentKernel, bias].compactMap { $0 } }

    /// Forgets the state carried by a `stateful` layer (the next forward starts from zeros or
    /// ``initialState``).
    public func resetStates() { carriedState = nil }

    /// `fit` calls this before each training step: the dropout masks of step `step` come from the
    /// stream `(seed, step)`, so a run resumed at any epoch draws the masks an uninterrupted run
    /// drew. Does nothing without dropout or before build.
    public func beginStep(_ step: Int) {
        guard let streamSeed else { return }
        dropoutGenerator = SeededGenerator(seed: streamSeed, stream: UInt64(step))
    }

    /// 1, or with `returnState` the output and the state tensors (3 for an LSTM, 2 otherwise).
    public var outputCount: Int { returnState ? 1 + Self.stateCount : 1 }

    /// The number of state tensors: `[h]`, or `[h, c]` for an LSTM.
    static var stateCount: Int { hasCellState ? 2 : 1 }

    /// The backward pass without the input gradient (one GEMM `[T·B, G·U] x [G·U, F]` fewer).
    public func backwardParameterGradients(_ outputGradient: Tensor) {
        _ = backward(outputGradient, inputGradient: false)
    }

    /// Drops what training-mode forwards kept for their backward passes.
    public func clearTrainingState() {
        freePasses.append(contentsOf: tape)
        tape.removeAll()
        lastPopped = nil
    }

    func nameParameters() {
        let prefix = name.isEmpty ? rolePrefix : "\(name).\(rolePrefix)"
        kernel?.name = prefix + "kernel"
        recurrentKernel?.name = prefix + "recurrent_kernel"
        bias?.name = prefix + "bias"
    }

    var label: String { "\(Self.typeName) '\(name)'" }

    // MARK: Forward

    /// Runs the layer over `input` `[B, T, F]`: `[B, T, U]` with `returnSequences`, else `[B, U]`.
    /// In training with a dropout rate above 0, draws this pass's masks first.
    /// - Precondition: built, the input is `[B, T, F]` with the built `F`, and any
    ///   ``initialState`` (or carried state) has `B` rows; the messages name the shapes.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        guard let kernel, let recurrentKernel else {
            neuritePreconditionFailure("\(label) is not built: build it (or its model) before calling forward")
        }
        let features = kernel.value.shape[0]
        neuritePrecondition(input.rank == 3 && input.shape[2] == features && input.shape[0] > 0 && input.shape[1] > 0,
                            "\(label) expects input [B, T, \(features)] (kernel \(kernel.value.shape)), got \(input.shape)")
        let (b, steps, u, g) = (input.shape[0], input.shape[1], units, Self.gateCount * units)
        let pass = freePasses.popLast() ?? Pass()
        // Keras 3 draws one input mask per gate when recurrent dropout is on (its implementation 1).
        let inputMasks = training && dropout > 0 ? (recurrentDropout > 0 ? Self.gateCount : 1) : 0
        pass.prepare(batch: b, steps: steps, features: features, units: u, gates: g,
                     cells: Self.hasCellState, recurrent: Self.keepsRecurrentProjection, masked: maskValue != nil,
                     inputMasks: inputMasks, stateMasks: training && recurrentDropout > 0)
        drawDropoutMasks(pass)
        let inputMask: UnsafePointer<Float>? = inputMasks == 1 ? UnsafePointer(pass.inputMask.pointer) : nil
        // Each row of `xh` is [x_t, h_(t-1)] for one sample and step: the input part feeds the input
        // GEMM, the state part the recurrent one, and the weight gradients of both come from one
        // GEMM over all steps, xhᵀ·dZ.
        let rowStride = features + u
        let x = pass.xh.pointer, z = pass.gates.pointer, states = pass.xh.pointer + features

        // Time-major copy of the input (reversed for goBackwards) and the mask.
        input.withUnsafeBufferPointer { src in
            let s = src.baseAddress!
            for t in 0..<steps {
                let ts = goBackwards ? steps - 1 - t : t
                for r in 0..<b {
                    let from = s + (r * steps + ts) * features, to = x + (t * b + r) * rowStride
                    if let inputMask {
                        // One mask for every gate: the input GEMM and the kernel's gradient read x ⊙ m.
                        let m = inputMask + r * features
                        for j in 0..<features { to[j] = from[j] * m[j] }
                    } else {
                        to.update(from: from, count: features)
                    }
                    if let maskValue {
                        var keep: Float = 0
                        for j in 0..<features where from[j] != maskValue { keep = 1; break }
                        pass.mask.pointer[t * b + r] = keep
                    }
                }
            }
        }
        // The input part of every step at once: Z = X·W (+ input bias).
        kernel.value.withUnsafeBufferPointer { w in
            if inputMasks > 1 {
                // A mask per gate: Z_k = (X ⊙ m_k)·W_k, gate by gate.
                let masked = work.maskedInput.reserve(steps * b * features)
                for k in 0..<Self.gateCount {
                    Self.multiplyRows(x, stride: rowStride, by: pass.inputMask.pointer + k * b * features,
                                      batch: b, rows: steps * b, width: features, into: masked)
                    sgemm(transposeA: false, transposeB: false, m: steps * b, n: u, k: features, alpha: 1,
                          a: masked, lda: features, b: w.baseAddress! + k * u, ldb: g, beta: 0, c: z + k * u, ldc: g)
                }
            } else {
                sgemm(transposeA: false, transposeB: false, m: steps * b, n: g, k: features, alpha: 1,
                      a: x, lda: rowStride, b: w.baseAddress!, ldb: g, beta: 0, c: z, ldc: g)
            }
        }
        // Initial states.
        let start = initialState ?? (stateful ? carriedState : nil)
        let stateCount = Self.stateCount
        if let start {
            neuritePrecondition(start.count == stateCount && start.allSatisfy { $0.shape == [b, u] },
                                "\(label) needs an initial state of \(stateCount) tensor(s) [\(b), \(u)] for input \(input.shape), got \(start.map(\.shape))")
            start[0].withUnsafeBufferPointer { h in
                for r in 0..<b { (states + r * rowStride).update(from: h.baseAddress! + r * u, count: u) }
            }
            if stateCount == 2 { start[1].withUnsafeBufferPointer { pass.cells.pointer.update(from: $0.baseAddress!, count: b * u) } }
        } else {
            for r in 0..<b { (states + r * rowStride).update(repeating: 0, count: u) }
            if stateCount == 2 { pass.cells.pointer.update(repeating: 0, count: b * u) }
        }
        // The loop over time.
        // The recurrent kernel packed once for the GEMMs of every step.
        // With recurrent dropout, each gate's block of it, for the products with h ⊙ r_k.
        let (packed, gateKernels) = recurrentKernel.value.withUnsafeBufferPointer { p in
            let k = p.baseAddress!
            return (PackedMatrix(k, ldb: g, transposed: false, k: u, n: g),
                    pass.stateMasks ? (0..<Self.gateCount).map { PackedMatrix(k + $0 * u, ldb: g, transposed: false, k: u, n: u) } : nil)
        }
        withBiases { ib, rb in
            let step = StepPointers(pass: pass, work: work, units: u, gateWidth: g, recurrent: packed, gateKernels: gateKernels,
                                    inputBias: ib, recurrentBias: rb, outputGate: outputGate, gate: gateFunction)
            step.parallelBatch { _, rows in
                for t in 0..<steps { forwardStep(step, t: t, rows: rows) }
            }
        }
        // Final state, outputs.
        let last = states + steps * b * rowStride
        finalState = [Tensor(shape: [b, u]) { h in
            for r in 0..<b { (h.baseAddress! + r * u).update(from: last + r * rowStride, count: u) }
        }]
        if stateCount == 2 {
            let lastC = pass.cells.pointer + steps * b * u
            finalState.append(Tensor(shape: [b, u]) { $0.baseAddress!.update(from: lastC, count: b * u) })
        }
        if stateful { carriedState = finalState }
        let output: Tensor
        if returnSequences {
            output = Tensor(shape: [b, steps, u]) { out in
                let o = out.baseAddress!
                for r in 0..<b {
                    for t in 0..<steps { (o + (r * steps + t) * u).update(from: states + ((t + 1) * b + r) * rowStride, count: u) }
                }
            }
        } else {
            output = finalState[0]
        }
        if training {
            tape.append(pass)
        } else {
            freePasses.append(pass)
        }
        return output
    }

    /// Draws the dropout masks `pass` needs (none at inference or with both rates 0): the input
    /// masks first, then the recurrent ones, each `[B, ·]` row by row, as ``Dropout`` draws its
    /// masks; sets ``dropoutMasks`` and ``recurrentDropoutMasks``.
    private func drawDropoutMasks(_ pass: Pass) {
        guard pass.inputMasks > 0 || pass.stateMasks else {
            if !dropoutMasks.isEmpty || !recurrentDropoutMasks.isEmpty {
                dropoutMasks = []
                recurrentDropoutMasks = []
            }
            return
        }
        guard var generator = dropoutGenerator else {
            neuritePreconditionFailure("\(label) has no dropout stream: build it (or its model) before a training-mode forward")
        }
        let (b, f, u) = (pass.batch, pass.features, units)
        func draw(_ rate: Float, width: Int, into buffer: UnsafeMutablePointer<Float>) -> Tensor {
            let keep = 1 - rate, scale = 1 / (1 - rate)
            let mask = Tensor(shape: [b, width]) { m in
                for i in 0..<m.count { m[i] = generator.nextUnitFloat() < keep ? scale : 0 }
            }
            mask.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: b * width) }
            return mask
        }
        dropoutMasks = (0..<pass.inputMasks).map { draw(dropout, width: f, into: pass.inputMask.pointer + $0 * b * f) }
        recurrentDropoutMasks = pass.stateMasks
            ? (0..<Self.gateCount).map { draw(recurrentDropout, width: u, into: pass.stateMask.pointer + $0 * b * u) } : []
        dropoutGenerator = generator
    }

    /// `into[i, j] = a[i·stride + j] · mask[(i mod batch)·width + j]` for `i < rows`, `j < width`:
    /// time-major rows times the per-sample mask.
    static func multiplyRows(_ a: UnsafePointer<Float>, stride: Int, by mask: UnsafePointer<Float>, batch: Int,
                             rows: Int, width: Int, into: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            let src = a + i * stride, m = mask + (i % batch) * width, dst = into + i * width
            for j in 0..<width { dst[j] = src[j] * m[j] }
        }
    }

    /// Calls `body` with the input bias (`[G·U]`) and the recurrent bias (the GRU's second bias
    /// row), or nil where there is none.
    func withBiases<R>(_ body: (UnsafePointer<Float>?, UnsafePointer<Float>?) -> R) -> R {
        guard let bias else { return body(nil, nil) }
        let g = Self.gateCount * units
        return bias.value.withUnsafeBufferPointer { p in
            body(p.baseAddress!, Self.keepsRecurrentProjection ? p.baseAddress! + g : nil)
        }
    }

    /// One step of the cell for the samples `rows`: the recurrent GEMM and the gates for step `t`
    /// (subclasses).
    func forwardStep(_ p: StepPointers, t: Int, rows: Range<Int>) { fatalError("forwardStep is implemented by the subclasses") }

    /// One step back: `dh` is the output gradient in `p.dH`'s row block `t` plus the gradient from
    /// step `t + 1` in `p.dhNext` (the cell adds them); the gates' gradients go into `p.dZ` and the
    /// state gradients into `p.dhNext`/`p.dcNext`.
    func backwardStep(_ p: StepPointers, t: Int, rows: Range<Int>) { fatalError("backwardStep is implemented by the subclasses") }

    // MARK: Backward

    /// Accumulates the gradients of `kernel`, `recurrent_kernel` and `bias` through every time step
    /// and returns dLoss/dInput `[B, T, F]`; also sets ``initialStateGradient``. The gradients go
    /// through the dropout masks of the matching forward.
    /// - Precondition: `outputGradient` has the shape of the last training-mode forward's output.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        backward(outputGradient, inputGradient: true, stateGradient: nil)!
    }

    /// The output and the final state of a forward pass over `input` `[B, T, F]`: Keras'
    /// `[output, state_h(, state_c)]` of a layer with `return_state`. The output is ``forward(_:training:)``'s;
    /// the state is ``finalState`` (`[h]`, or `[h, c]` for an LSTM, each `[B, U]`). Works whatever
    /// `returnState` says (that flag only tells a model the layer has several outputs); for
    /// training, pair it with ``backward(_:stateGradient:)``. Cost: the forward pass's.
    public func forwardReturningState(_ input: Tensor, training: Bool) -> (output: Tensor, state: [Tensor]) {
        let output = forward(input, training: training)
        return (output, finalState)
    }

    /// The backward pass of ``forwardReturningState(_:training:)``: `outputGradient` is dLoss/dOutput
    /// and `stateGradient` dLoss/dFinalState (`[dh]`, or `[dh, dc]` for an LSTM, each `[B, U]`).
    /// Accumulates the parameters' gradients, sets ``initialStateGradient`` and returns dLoss/dInput
    /// `[B, T, F]`. Cost: ``backward(_:)``'s.
    /// - Precondition: the shapes of the last training-mode forward's output and final state.
    public func backward(_ outputGradient: Tensor, stateGradient: [Tensor]) -> Tensor {
        backward(outputGradient, inputGradient: true, stateGradient: stateGradient)!
    }

    func backward(_ outputGradient: Tensor, inputGradient: Bool, stateGradient: [Tensor]? = nil) -> Tensor? {
        let pass: Pass
        if let p = tape.popLast() {
            if let old = lastPopped { freePasses.append(old) }
            lastPopped = p
            pass = p
        } else if let p = lastPopped {
            pass = p
        } else {
            neuritePreconditionFailure("backward of \(label) without a training-mode forward: call forward(_:training: true) first")
        }
        let (b, steps, features, u, g) = (pass.batch, pass.steps, pass.features, units, Self.gateCount * units)
        let expected = returnSequences ? [b, steps, u] : [b, u]
        neuritePrecondition(outputGradient.shape == expected,
                            "\(label) backward: output gradient has shape \(outputGradient.shape), the output had \(expected)")
        let kernel = kernel!, recurrentKernel = recurrentKernel!
        work.prepare(batch: b, steps: steps, units: u, gates: g, features: features,
                     recurrent: Self.keepsRecurrentProjection)
        let dH = work.dH.pointer
        // Time-major output gradient.
        outputGradient.withUnsafeBufferPointer { src in
            let s = src.baseAddress!
            if returnSequences {
                for t in 0..<steps {
                    for r in 0..<b { (dH + (t * b + r) * u).update(from: s + (r * steps + t) * u, count: u) }
                }
            } else {
                dH.update(repeating: 0, count: (steps - 1) * b * u)
                (dH + (steps - 1) * b * u).update(from: s, count: b * u)
            }
        }
        // The gradient reaching the final state from outside (zero unless given), where the
        // gradient from the steps after the last would be.
        if let stateGradient {
            neuritePrecondition(stateGradient.count == Self.stateCount && stateGradient.allSatisfy { $0.shape == [b, u] },
                                "\(label) backward: the state gradient must be \(Self.stateCount) tensor(s) [\(b), \(u)], got \(stateGradient.map(\.shape))")
            stateGradient[0].withUnsafeBufferPointer { work.dhNext.pointer.update(from: $0.baseAddress!, count: b * u) }
        } else {
            work.dhNext.pointer.update(repeating: 0, count: b * u)
        }
        if let stateGradient, Self.hasCellState {
            stateGradient[1].withUnsafeBufferPointer { work.dcNext.pointer.update(from: $0.baseAddress!, count: b * u) }
        } else {
            work.dcNext.pointer.update(repeating: 0, count: b * u)
        }
        let dZ = work.dZ.pointer
        // The recurrent kernel, transposed, packed once for every step's dZ·Uᵀ (with recurrent
        // dropout, each gate's block for dZ_k·U_kᵀ).
        let (packed, gateKernels) = recurrentKernel.value.withUnsafeBufferPointer { p in
            let k = p.baseAddress!
            return (PackedMatrix(k, ldb: g, transposed: true, k: g, n: u),
                    pass.stateMasks ? (0..<Self.gateCount).map { PackedMatrix(k + $0 * u, ldb: g, transposed: true, k: u, n: u) } : nil)
        }
        withBiases { ib, rb in
            let step = StepPointers(pass: pass, work: work, units: u, gateWidth: g, recurrent: packed, gateKernels: gateKernels,
                                    inputBias: ib, recurrentBias: rb, outputGate: outputGate, gate: gateFunction)
            let chunks = step.batchChunks
            let partials = work.biasGradient.reserve(chunks * 2 * g)
            partials.update(repeating: 0, count: chunks * 2 * g)
            step.parallelBatch { chunk, rows in
                let r0 = rows.lowerBound
                for t in stride(from: steps - 1, through: 0, by: -1) {
                    backwardStep(step, t: t, rows: rows)
                    if useBias {
                        // The bias gradient, while this step's gate gradients are in cache.
                        let sums = partials + chunk * 2 * g
                        Self.addColumnSums(dZ + (t * b + r0) * g, rows: rows.count, cols: g, into: sums)
                        if Self.keepsRecurrentProjection {
                            Self.addColumnSums(work.dR.pointer + (t * b + r0) * g, rows: rows.count, cols: g, into: sums + g)
                        }
                    }
                    if let k = truncateGradient, t % k == 0, t > 0 {
                        (work.dhNext.pointer + r0 * u).update(repeating: 0, count: rows.count * u)
                        (work.dcNext.pointer + r0 * u).update(repeating: 0, count: rows.count * u)
                    }
                }
            }
        }
        // Weight gradients, each one GEMM over all steps.
        let dRec = Self.keepsRecurrentProjection ? work.dR.pointer : dZ
        let rows = steps * b
        let rowStride = features + u, xh = pass.xh.pointer
        if Self.keepsRecurrentProjection || pass.inputMasks > 1 || pass.stateMasks {
            // The GRU's input and recurrent parts have different gate gradients, and with dropout
            // masks per gate each gate has its own inputs: separate GEMMs.
            kernel.gradient.withUnsafeMutableBufferPointer { gk in
                if pass.inputMasks > 1 {
                    // dW_k = (X ⊙ m_k)ᵀ·dZ_k.
                    let masked = work.maskedInput.reserve(rows * features)
                    for k in 0..<Self.gateCount {
                        Self.multiplyRows(xh, stride: rowStride, by: pass.inputMask.pointer + k * b * features,
                                          batch: b, rows: rows, width: features, into: masked)
                        sgemm(transposeA: true, transposeB: false, m: features, n: u, k: rows, alpha: 1,
                              a: masked, lda: features, b: dZ + k * u, ldb: g, beta: 1, c: gk.baseAddress! + k * u, ldc: g)
                    }
                } else {
                    sgemm(transposeA: true, transposeB: false, m: features, n: g, k: rows, alpha: 1,
                          a: xh, lda: rowStride, b: dZ, ldb: g, beta: 1, c: gk.baseAddress!, ldc: g)
                }
            }
            recurrentKernel.gradient.withUnsafeMutableBufferPointer { gr in
                if pass.stateMasks {
                    // dU_k = (H ⊙ r_k)ᵀ·dZ_k, with the dropped states the forward kept.
                    let dropped = pass.droppedStates.pointer
                    for k in 0..<Self.gateCount {
                        sgemm(transposeA: true, transposeB: false, m: u, n: u, k: rows, alpha: 1,
                              a: dropped + k * u, lda: g, b: dRec + k * u, ldb: g, beta: 1, c: gr.baseAddress! + k * u, ldc: g)
                    }
                } else {
                    sgemm(transposeA: true, transposeB: false, m: u, n: g, k: rows, alpha: 1,
                          a: xh + features, lda: rowStride, b: dRec, ldb: g, beta: 1, c: gr.baseAddress!, ldc: g)
                }
            }
        } else {
            // [dW; dU] = [x, h]ᵀ·dZ: one GEMM, dZ read once.
            let both = work.weightGradient.reserve(rowStride * g)
            sgemm(transposeA: true, transposeB: false, m: rowStride, n: g, k: rows, alpha: 1,
                  a: xh, lda: rowStride, b: dZ, ldb: g, beta: 0, c: both, ldc: g)
            kernel.gradient.withUnsafeMutableBufferPointer { gk in
                for i in 0..<(features * g) { gk[i] += both[i] }
            }
            recurrentKernel.gradient.withUnsafeMutableBufferPointer { gr in
                let part = both + features * g
                for i in 0..<(u * g) { gr[i] += part[i] }
            }
        }
        if let bias {
            let chunks = StepPointers.chunks(batch: b, gateWidth: g)
            bias.gradient.withUnsafeMutableBufferPointer { gb in
                let p = gb.baseAddress!, sums = work.biasGradient.pointer
                for c in 0..<chunks {
                    for j in 0..<bias.value.count { p[j] += sums[c * 2 * g + j] }
                }
            }
        }
        var states = [Tensor(shape: [b, u]) { $0.baseAddress!.update(from: work.dhNext.pointer, count: b * u) }]
        if Self.hasCellState {
            states.append(Tensor(shape: [b, u]) { $0.baseAddress!.update(from: work.dcNext.pointer, count: b * u) })
        }
        initialStateGradient = states
        guard inputGradient else { return nil }
        // dX = dZ·Wᵀ, back to batch-major (and to input order); through the input masks.
        let dxT = work.dx.reserve(rows * features)
        kernel.value.withUnsafeBufferPointer { w in
            if pass.inputMasks > 1 {
                // dX = Σ_k (dZ_k·W_kᵀ) ⊙ m_k.
                let part = work.maskedInput.reserve(rows * features)
                for k in 0..<Self.gateCount {
                    sgemm(transposeA: false, transposeB: true, m: rows, n: features, k: u, alpha: 1,
                          a: dZ + k * u, lda: g, b: w.baseAddress! + k * u, ldb: g, beta: 0, c: part, ldc: features)
                    let mask = pass.inputMask.pointer + k * b * features
                    for i in 0..<rows {
                        let p = part + i * features, m = mask + (i % b) * features, d = dxT + i * features
                        if k == 0 {
                            for j in 0..<features { d[j] = p[j] * m[j] }
                        } else {
                            for j in 0..<features { d[j] += p[j] * m[j] }
                        }
                    }
                }
            } else {
                sgemm(transposeA: false, transposeB: true, m: rows, n: features, k: g, alpha: 1,
                      a: dZ, lda: g, b: w.baseAddress!, ldb: g, beta: 0, c: dxT, ldc: features)
            }
        }
        let inputMask: UnsafePointer<Float>? = pass.inputMasks == 1 ? UnsafePointer(pass.inputMask.pointer) : nil
        return Tensor(shape: [b, steps, features]) { out in
            let o = out.baseAddress!
            for t in 0..<steps {
                let ts = goBackwards ? steps - 1 - t : t
                for r in 0..<b {
                    let to = o + (r * steps + ts) * features, from = dxT + (t * b + r) * features
                    if let inputMask {
                        let m = inputMask + r * features
                        for j in 0..<features { to[j] = from[j] * m[j] }
                    } else {
                        to.update(from: from, count: features)
                    }
                }
            }
        }
    }

    /// `into[j] += Σ_r m[r, j]`.
    static func addColumnSums(_ m: UnsafePointer<Float>, rows: Int, cols: Int, into: UnsafeMutablePointer<Float>) {
        let acc = UnsafeMutableBufferPointer(start: into, count: cols)
        for r in 0..<rows {
            let row = UnsafeBufferPointer(start: m + r * cols, count: cols)
            for j in 0..<cols { acc[j] += row[j] }
        }
    }
}


/// What one training-mode forward keeps for its backward pass (time-major).
final class Pass {
    var batch = 0, steps = 0, features = 0
    let xh = FloatBuffer()       // [(T+1)·B, F+U]: rows [x_t, h_(t-1)]; block T holds the final h
    let gates = FloatBuffer()    // [T·B, G·U]: activated gates
    let cells = FloatBuffer()    // [(T+1)·B, U]: the LSTM's c
    let recurrent = FloatBuffer() // [T·B, 3U]: the GRU's h·U + b_rec
    let mask = FloatBuffer()     // [T·B]: 1 where the step is taken
    var masked = false
    let inputMask = FloatBuffer()  // [M, B, F]: the input dropout masks (M = inputMasks)
    let stateMask = FloatBuffer()  // [G, B, U]: the recurrent dropout masks, one per gate
    let droppedStates = FloatBuffer()  // [T·B, G·U]: rows [h_(t-1) ⊙ r_1, ..., h_(t-1) ⊙ r_G]
    /// How many input dropout masks this pass uses: 0, 1 (for every gate) or G (one per gate).
    var inputMasks = 0
    /// Whether this pass drops the state in the recurrent products.
    var stateMasks = false

    func prepare(batch: Int, steps: Int, features: Int, units: Int, gates g: Int, cells: Bool, recurrent: Bool, masked: Bool,
                 inputMasks: Int, stateMasks: Bool) {
        self.batch = batch
        self.steps = steps
        self.features = features
        self.masked = masked
        self.inputMasks = inputMasks
        self.stateMasks = stateMasks
        if inputMasks > 0 { inputMask.reserve(inputMasks * batch * features) }
        if stateMasks {
            stateMask.reserve(g * batch)
            droppedStates.reserve(steps * batch * g)
        }
        let rows = batch * steps
        xh.reserve((steps + 1) * batch * (features + units))
        gates.reserve(rows * g)
        if cells { self.cells.reserve((steps + 1) * batch * units) }
        if recurrent { self.recurrent.reserve(rows * g) }
        if masked { mask.reserve(rows) }
    }
}

/// Backward scratch space, kept by the layer between batches.
final class Workspace {
    let dH = FloatBuffer()      // [T·B, U]: output gradient, then dh per step
    let dZ = FloatBuffer()      // [T·B, G·U]: gate gradients (input side)
    let dR = FloatBuffer()      // [T·B, 3U]: the GRU's recurrent-side gate gradients
    let dhNext = FloatBuffer()  // [B, U]
    let dcNext = FloatBuffer()  // [B, U]
    let dx = FloatBuffer()      // [T·B, F]
    let biasGradient = FloatBuffer()  // [chunks, 2·G·U]: each row range's part of the bias gradient
    let weightGradient = FloatBuffer()  // [F+U, G·U]: both kernels' gradients of one backward pass
    let maskedInput = FloatBuffer()  // [T·B, F]: x ⊙ m_k for one gate's mask, or one gate's part of dX
    let stateScratch = FloatBuffer()  // [B, U]: one gate's part of dh_(t-1), with recurrent dropout

    func prepare(batch: Int, steps: Int, units: Int, gates: Int, features: Int, recurrent: Bool) {
        let rows = batch * steps
        dH.reserve(rows * units)
        dZ.reserve(rows * gates)
        if recurrent { dR.reserve(rows * gates) }
        dhNext.reserve(batch * units)
        dcNext.reserve(batch * units)
        stateScratch.reserve(batch * units)
    }
}

/// Raw pointers of one pass, for the cells' step functions.
struct StepPointers {
    let batch: Int, units: Int, gateWidth: Int
    let x: UnsafeMutablePointer<Float>
    let gates: UnsafeMutablePointer<Float>
    /// `h` before step `t` for sample `r` is at `states + (t·B + r)·stateStride`.
    let states: UnsafeMutablePointer<Float>
    let stateStride: Int
    let cells: UnsafeMutablePointer<Float>
    let recurrent: UnsafeMutablePointer<Float>
    let mask: UnsafeMutablePointer<Float>?
    let dH: UnsafeMutablePointer<Float>
    let dZ: UnsafeMutablePointer<Float>
    let dR: UnsafeMutablePointer<Float>
    let dhNext: UnsafeMutablePointer<Float>
    let dcNext: UnsafeMutablePointer<Float>
    /// The recurrent kernel `[U, G·U]` packed for the steps' products (forward), or its transpose
    /// `[G·U, U]` (backward).
    let packedKernel: PackedMatrix
    /// With recurrent dropout: each gate's block `[U, U]` of the recurrent kernel packed (forward),
    /// or of its transpose (backward); nil without.
    let gateKernels: [PackedMatrix]?
    /// The recurrent dropout masks `[G, B, U]`, or nil.
    let stateMasks: UnsafePointer<Float>?
    /// `[T·B, G·U]`: the dropped states of each step, rows `[h ⊙ r_1, ..., h ⊙ r_G]`.
    let droppedStates: UnsafeMutablePointer<Float>
    /// `[B, U]` backward scratch.
    let stateScratch: UnsafeMutablePointer<Float>
    let recurrentBias: UnsafePointer<Float>?
    let outputGate: GateFunction
    let gate: GateFunction
    let isa = KernelISA.current
    /// The input bias `[G·U]`, added to each row's gates in the step (where the row is in cache).
    let inputBias: UnsafePointer<Float>?

    /// How many row ranges a batch is cut into: samples are independent through time, so each
    /// range runs the whole loop over the steps on its own (up to two ranges of at least 32 rows
    /// per thread, handed out as threads come free). One dispatch per pass, not per step: a step
    /// is too short (about 0.1 ms) for a barrier per step, which on a machine shared with other
    /// work costs a scheduling slice whenever one thread is not running.
    static func chunks(batch: Int, gateWidth: Int) -> Int {
        let width = ThreadPool.shared.effectiveWidth
        if width == 1 || batch * gateWidth < 32768 { return 1 }
        return Swift.max(1, Swift.min(2 * width, batch / 32))
    }

    var batchChunks: Int { Self.chunks(batch: batch, gateWidth: gateWidth) }

    /// Runs `body(chunk, rows)` for each of ``batchChunks`` row ranges, in parallel; each range's
    /// GEMMs run on its own thread.
    func parallelBatch(_ body: (Int, Range<Int>) -> Void) {
        let chunks = batchChunks, b = batch
        if chunks == 1 {
            body(0, 0..<b)
            return
        }
        ThreadPool.shared.parallelFor(chunks) { c, _ in
            ThreadPool.withWidthLimit(1) { body(c, (b * c / chunks)..<(b * (c + 1) / chunks)) }
        }
    }

    init(pass: Pass, work: Workspace, units: Int, gateWidth: Int, recurrent: PackedMatrix, gateKernels: [PackedMatrix]?,
         inputBias: UnsafePointer<Float>?, recurrentBias: UnsafePointer<Float>?, outputGate: GateFunction, gate: GateFunction) {
        self.inputBias = inputBias
        batch = pass.batch
        self.units = units
        self.gateWidth = gateWidth
        x = pass.xh.pointer
        stateStride = pass.features + units
        gates = pass.gates.pointer
        states = pass.xh.pointer + pass.features
        cells = pass.cells.pointer
        self.recurrent = pass.recurrent.pointer
        mask = pass.masked ? pass.mask.pointer : nil
        dH = work.dH.pointer
        dZ = work.dZ.pointer
        dR = work.dR.pointer
        dhNext = work.dhNext.pointer
        dcNext = work.dcNext.pointer
        packedKernel = recurrent
        self.gateKernels = gateKernels
        stateMasks = pass.stateMasks ? UnsafePointer(pass.stateMask.pointer) : nil
        droppedStates = pass.droppedStates.pointer
        stateScratch = work.stateScratch.pointer
        self.recurrentBias = recurrentBias
        self.outputGate = outputGate
        self.gate = gate
    }

    /// The recurrent part of step `t` for the samples `rows`: `c = h_(t-1)·U + beta·c` in rows
    /// `rows` of the step's block `c` (`[B, G·U]`); with recurrent dropout, gate by gate,
    /// `c_k = (h_(t-1) ⊙ r_k)·U_k + beta·c_k`, keeping the dropped states for the weights' gradient.
    @inline(__always)
    func multiplyRecurrent(t: Int, rows: Range<Int>, into c: UnsafeMutablePointer<Float>, beta: Float) {
        let (r0, g, u) = (rows.lowerBound, gateWidth, units)
        guard let kernels = gateKernels, let masks = stateMasks else {
            packedKernel.multiply(m: rows.count, a: states + (t * batch + r0) * stateStride, lda: stateStride,
                                  beta: beta, c: c + r0 * g, ldc: g)
            return
        }
        let dropped = droppedStates + t * batch * g
        for r in rows {
            let h = states + (t * batch + r) * stateStride
            for k in 0..<kernels.count {
                let m = masks + (k * batch + r) * u, d = dropped + r * g + k * u
                for j in 0..<u { d[j] = h[j] * m[j] }
            }
        }
        for (k, kernel) in kernels.enumerated() {
            kernel.multiply(m: rows.count, a: dropped + r0 * g + k * u, lda: g, beta: beta, c: c + r0 * g + k * u, ldc: g)
        }
    }

    /// The gradient reaching `h_(t-1)` through the recurrent product, from the gate gradients in
    /// rows `rows` of the step's block `dz` (`[B, G·U]`): `dhNext = dz·Uᵀ`, or with recurrent
    /// dropout `Σ_k (dz_k·U_kᵀ) ⊙ r_k`, in `dhNext`'s rows.
    @inline(__always)
    func multiplyRecurrentBack(_ dz: UnsafePointer<Float>, rows: Range<Int>) {
        let (r0, g, u) = (rows.lowerBound, gateWidth, units)
        guard let kernels = gateKernels, let masks = stateMasks else {
            packedKernel.multiply(m: rows.count, a: dz + r0 * g, lda: g, beta: 0, c: dhNext + r0 * u, ldc: u)
            return
        }
        let range = (r0 * u)..<(rows.upperBound * u)
        for (k, kernel) in kernels.enumerated() {
            kernel.multiply(m: rows.count, a: dz + r0 * g + k * u, lda: g, beta: 0, c: stateScratch + r0 * u, ldc: u)
            let m = masks + k * batch * u
            if k == 0 {
                for i in range { dhNext[i] = stateScratch[i] * m[i] }
            } else {
                for i in range { dhNext[i] += stateScratch[i] * m[i] }
            }
        }
    }
}

