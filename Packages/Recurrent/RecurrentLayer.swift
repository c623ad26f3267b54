import Layers
import Optimizers
import TensorCore

// The recurrent layer drives time; what one step computes is its cell's (`RecurrentCell`:
// `SimpleRNNCell`, `LSTMCell`, `GRUCell`, each beside its layer). By concern:
//   RecurrentLayer.swift                 options, weights, shapes, states and the Layer plumbing
//   RecurrentLayer+Configuration.swift   `config` and reading a config back (`Options`)
//   RecurrentLayer+Forward.swift         the forward pass through time, dropout masks
//   RecurrentLayer+Backward.swift        the backward pass through time, weight and input gradients
//   RecurrentWorkspace.swift             what a forward keeps for its backward, backward scratch
//   RecurrentCell.swift, StepPointers.swift   what a cell provides, and what a step sees

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
    public internal(set) var kernel: Parameter?
    /// The recurrent weights `[U, G·U]`, once built.
    public internal(set) var recurrentKernel: Parameter?
    /// The bias, once built with `useBias` (`[G·U]`; a GRU's is `[2, 3U]`).
    public internal(set) var bias: Parameter?
    /// The per-sample input shape `[T, F]` the layer was built for.
    public internal(set) var builtInputShape: [Int]?

    /// The state the next forward passes start from: `[h]` (`[h, c]` for an LSTM), each `[B, U]`;
    /// nil starts from zeros (or, when `stateful`, from the previous final state). It stays set
    /// until set to nil.
    public var initialState: [Tensor]?
    /// The state after the last forward: `[h]` (`[h, c]` for an LSTM), each `[B, U]`.
    public internal(set) var finalState: [Tensor] = []
    /// dLoss/dInitialState from the last backward, in the order of ``initialState``.
    public internal(set) var initialStateGradient: [Tensor] = []
    /// The input dropout masks of the last forward, each `[B, F]` with entries 0 or
    /// `1 / (1 - dropout)`: one, or one per gate (Keras' order) when `recurrentDropout` is above 0
    /// in an LSTM or GRU; empty after an inference-mode forward or with `dropout` 0.
    public internal(set) var dropoutMasks: [Tensor] = []
    /// The recurrent dropout masks of the last forward, one per gate (Keras' order), each `[B, U]`
    /// with entries 0 or `1 / (1 - recurrentDropout)`; empty after an inference-mode forward or
    /// with `recurrentDropout` 0.
    public internal(set) var recurrentDropoutMasks: [Tensor] = []

    // The cell and the machinery that drives it (see RecurrentLayer+Forward.swift and +Backward.swift).
    /// What the cell computes in one step (``SimpleRNN``'s, ``LSTM``'s or ``GRU``'s); the layer
    /// drives it through time.
    let cell: any RecurrentCell
    /// Prefix of parameter roles, set by `Bidirectional` (`"forward_"`, `"backward_"`).
    var rolePrefix = "" { didSet { nameParameters() } }

    let outputGate: GateFunction
    let gateFunction: GateFunction
    /// The seed in force once built with a rate above 0: `seed`, or the number drawn at build.
    var streamSeed: UInt64?
    var dropoutGenerator: SeededGenerator?
    var carriedState: [Tensor]?
    /// The passes kept by training-mode forwards, last on top; `lastPopped` is the one the last
    /// backward used (a second backward of the same forward reuses it), `freePasses` are for reuse.
    var tape: [Pass] = []
    var lastPopped: Pass?
    var freePasses: [Pass] = []
    let work = Workspace()

    /// The common initialiser of the subclasses: the options as given (or read from a config) and
    /// the cell the layer drives.
    init(_ options: Options, cell: any RecurrentCell) {
        let type = Self.typeName
        neuritePrecondition(options.units > 0, "\(type) needs a positive number of units, got \(options.units)")
        neuritePrecondition(options.truncateGradient.map { $0 > 0 } ?? true,
                            "\(type) needs a positive truncateGradient, got \(options.truncateGradient ?? 0)")
        neuritePrecondition(options.dropout >= 0 && options.dropout < 1, "\(type) dropout must be in 0..<1, got \(options.dropout)")
        neuritePrecondition(options.recurrentDropout >= 0 && options.recurrentDropout < 1,
                            "\(type) recurrentDropout must be in 0..<1, got \(options.recurrentDropout)")
        neuritePrecondition(options.activation.isRecurrentGate,
                            "\(type) supports activation tanh, sigmoid, relu or linear, got \(options.activation.configName)")
        neuritePrecondition(options.recurrentActivation.isRecurrentGate,
                            "\(type) supports recurrent activation tanh, sigmoid, relu or linear, got \(options.recurrentActivation.configName)")
        units = options.units
        activation = options.activation
        recurrentActivation = options.recurrentActivation
        useBias = options.useBias
        returnSequences = options.returnSequences
        returnState = options.returnState
        goBackwards = options.goBackwards
        stateful = options.stateful
        maskValue = options.maskValue
        truncateGradient = options.truncateGradient
        dropout = options.dropout
        recurrentDropout = options.recurrentDropout
        seed = options.seed
        kernelInitializer = options.kernelInitializer
        recurrentInitializer = options.recurrentInitializer
        biasInitializer = options.biasInitializer
        name = options.name
        trainable = options.trainable
        self.cell = cell
        outputGate = GateFunction(checked: options.activation)
        gateFunction = GateFunction(checked: options.recurrentActivation)
        RecurrentLayers.register()
    }

    /// Rebuilds from a config with Keras' key names and defaults (the cell reads its own keys;
    /// see ``config``). Keys Keras writes that do not change what the layer computes are accepted
    /// with the values that keep it so: `dtype` (null or `"float32"`),
    /// `unroll`, `zero_output_for_mask` (false), the regularizers and constraints (null), and for
    /// an LSTM or GRU `use_cudnn` and `implementation` (2, or 1 where it computes the same). Any
    /// other key, or another value, throws a `LayerError` naming the layer, the key and the value.
    /// `trainable` (true or false) sets ``trainable``.
    ///
    /// Called on `RecurrentLayer` itself, which has no cell of its own, it throws a `LayerError`:
    /// use ``SimpleRNN``, ``LSTM`` or ``GRU``.
    public required convenience init(config: [String: ConfigValue]) throws {
        guard let cellType = Self.cellType else {
            throw LayerError("\(Self.typeName) is what SimpleRNN, LSTM and GRU share, not a layer of its own: "
                             + "rebuild one of those from this config")
        }
        let (options, cell) = try Self.read(config, cell: cellType)
        self.init(options, cell: cell)
    }

    /// The type of the cell each subclass drives, which reads its own config keys; nil for this
    /// class, which is no layer of its own.
    class var cellType: (any RecurrentCell.Type)? { nil }

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
            let g = gateWidth
            kernel = Parameter(name: "", value: kernelInitializer.make([inputShape[1], g], generator: &generator),
                               isTrainable: trainable)
            let rec = recurrentInitializer.map { $0.make([units, g], generator: &generator) }
                ?? orthogonalMatrix(rows: units, cols: g, generator: &generator)
            recurrentKernel = Parameter(name: "", value: rec, isTrainable: trainable)
            if useBias {
                bias = Parameter(name: "", value: cell.makeBias(units: units, initializer: biasInitializer, generator: &generator),
                                 isTrainable: trainable)
            }
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
    public var outputCount: Int { returnState ? 1 + stateCount : 1 }

    /// The number of state tensors: `[h]`, or `[h, c]` for an LSTM.
    var stateCount: Int { hasCellState ? 2 : 1 }

    /// The width `G·U` of the gates side by side.
    var gateWidth: Int { gateCount * units }

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

}
