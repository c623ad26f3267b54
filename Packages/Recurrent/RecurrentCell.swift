import Layers
import Optimizers
import TensorCore

/// What a recurrent cell provides to the ``RecurrentLayer`` that drives it through time: its
/// shape (gates per unit, a cell state beside `h`, a recurrent projection kept per step), its
/// initial bias and its own config keys, and one step forwards and one backwards for a range of
/// samples. `SimpleRNNCell`, `LSTMCell` and `GRUCell` conform.
///
/// The layer owns everything else: the options, the weights, the input product (of all steps at
/// once, or within each step's product: ``StepPointers/stackedInput``), masking, dropout,
/// initial, final and carried states, the loop over time (cut into row ranges that run on the
/// pool's threads), truncation, and the weight and input gradients as
/// GEMMs over all steps. A step sees the pass through ``StepPointers``; it runs the recurrent
/// product for its rows itself (``StepPointers/multiplyRecurrent(t:rows:into:beta:)``), so it can
/// add it where the cell needs it (into the gates, or kept apart as the GRU's `h·U + b_rec`).
protocol RecurrentCell {
    /// Gates per unit `G` (1, 3 or 4): the weights are `[F, G·U]` and `[U, G·U]`.
    static var gateCount: Int { get }
    /// Whether there is a cell state `c` beside `h` (the LSTM's): the state is then `[h, c]`.
    static var hasCellState: Bool { get }
    /// Whether the recurrent projection is kept apart per step (the GRU with `reset_after`).
    static var keepsRecurrentProjection: Bool { get }
    /// The config keys the cell reads and writes itself, beside the layer's common ones.
    static var ownKeys: Set<String> { get }

    /// Reads the cell's own keys from a layer's config (absent or null: Keras' default); `who`
    /// names the layer in a thrown `LayerError`.
    init(config: [String: ConfigValue], who: String) throws
    /// The cell's own keys and values, for the layer's `config`.
    var config: [String: ConfigValue] { get }
    /// The initial bias for `units` units (`[G·U]` unless the cell shapes it otherwise).
    func makeBias(units: Int, initializer: Initializer, generator: inout SeededGenerator) -> Tensor
    /// One step of the cell for the samples `rows`: the recurrent product and the gates for step
    /// `t`, writing `h` (and `c`) after the step into the pass's state rows; a masked sample carries
    /// its state through unchanged.
    func forwardStep(_ p: StepPointers, t: Int, rows: Range<Int>)
    /// One step back: `dh` is the output gradient in `p.dH`'s row block `t` (zero and unwritten
    /// for `t < p.zeroGradientSteps`: read it through `p.outputGradient(t:rows:)`) plus the gradient from
    /// step `t + 1` in `p.dhNext` (the cell adds them); the gates' gradients go into `p.dZ` (and
    /// `p.dR`), and the state gradients for step `t - 1` into `p.dhNext`/`p.dcNext`.
    func backwardStep(_ p: StepPointers, t: Int, rows: Range<Int>)
}

extension RecurrentCell {
    static var hasCellState: Bool { false }
    static var keepsRecurrentProjection: Bool { false }
    static var ownKeys: Set<String> { [] }
    var config: [String: ConfigValue] { [:] }

    func makeBias(units: Int, initializer: Initializer, generator: inout SeededGenerator) -> Tensor {
        initializer.make([Self.gateCount * units], generator: &generator)
    }
}

extension RecurrentLayer {
    /// Gates per unit of the layer's cell.
    var gateCount: Int { type(of: cell).gateCount }
    /// Whether the layer's cell keeps a cell state beside `h`.
    var hasCellState: Bool { type(of: cell).hasCellState }
    /// Whether the layer's cell keeps its recurrent projection apart.
    var keepsRecurrentProjection: Bool { type(of: cell).keepsRecurrentProjection }
}
