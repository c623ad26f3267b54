import TensorCore

/// The work every Neurite optimizer shares, done once for all of them.
///
/// `OptimizerBase` does everything around an update rule:
/// - it skips parameters whose `isTrainable` is `false` (running statistics, frozen layers); a
///   parameter frozen after its first step keeps its state as it was, and a later step after it
///   is unfrozen goes on from that state (Adam's moments), so freezing and unfreezing between
///   steps needs no new optimizer;
/// - it takes the learning rate of each step from the `schedule` (or the constant rate);
/// - it clips gradients by value, by per-parameter norm and by global norm (see `clipValue`,
///   `clipNorm`, `globalClipNorm`) without changing `Parameter.gradient`;
/// - it counts steps (`iterations`) and keeps each parameter's state (`Slots`), created at
///   the parameter's first step;
/// - it exports and restores that state by name (`stateTensors()`, `loadStateTensors(_:for:)`).
///
/// A concrete optimizer (`SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`) only writes its update
/// rule, over the buffers of one parameter, and names the tensors of its `Slots` struct.
///
/// Cost of `step`: one pass over each trainable parameter by the rule, a fused vectorised kernel
/// on the current `KernelISA` path (TensorCore's `OptimizerKernels`): bound by memory bandwidth
/// once a parameter leaves the caches, and by the square root and division in cache (Adam: about
/// 0.5 ns per element on one AVX-512 core). Parameters of 32Ki elements or more are split over
/// `ThreadPool.shared`; every rule is element-wise and no kernel path fuses a multiply-add, so
/// neither the split nor the path changes a bit. Clipping adds one read pass per gradient for
/// the norms and one pass to write the clipped gradient into a scratch buffer the optimizer
/// reuses. No tensor is allocated per step once every parameter has its state.
///
/// The class is not `Sendable`: an optimizer is mutable state owned by one training loop.
public class OptimizerBase<Slots>: Optimizer {
    /// Where the learning rate of each step comes from, when set: step `n` (counting from 0)
    /// uses `schedule.rate(at: n)`, where `n` is `iterations` before the step.
    ///
    /// Assigning a schedule mid-training applies it at the current `iterations` (it is not
    /// restarted from 0). Setting `learningRate` removes the schedule.
    public var schedule: (any LearningRateSchedule)?

    /// Rescales each parameter's gradient on its own so that its L2 norm is at most this
    /// (Keras' `clipnorm`): `g ← g · c / max(‖g‖, c)`. `nil` turns it off.
    /// - Precondition: positive and finite when set.
    public var clipNorm: Float? {
        didSet { Self.checkClipOption(clipNorm, "clipNorm") }
    }

    /// Rescales all trainable gradients together so that their joint L2 norm is at most this,
    /// as PyTorch's `clip_grad_norm_`: `g ← g · min(1, c / (‖(g₁, g₂, …)‖ + 1e-6))`.
    /// `nil` turns it off.
    /// - Precondition: positive and finite when set.
    public var globalClipNorm: Float? {
        didSet { Self.checkClipOption(globalClipNorm, "globalClipNorm") }
    }

    /// Clamps every gradient element to `-c...c` (Keras' `clipvalue`, PyTorch's
    /// `clip_grad_value_`). `nil` turns it off.
    ///
    /// When several clipping options are set they apply in this order: by value, then by each
    /// parameter's norm, then by the global norm (of the gradients clipped so far).
    /// - Precondition: positive and finite when set.
    public var clipValue: Float? {
        didSet { Self.checkClipOption(clipValue, "clipValue") }
    }

    /// The number of `step` calls made so far (restored by `loadStateTensors(_:for:)`).
    public internal(set) var iterations: Int = 0

    /// The rate used when there is no schedule.
    var constantRate: Float

    /// One parameter's state. A class, so a step updates the slots in place through it.
    final class SlotEntry {
        let parameter: Parameter
        /// The parameter's shape when the slots were made; every slot has it.
        let shape: [Int]
        var slots: Slots

        init(parameter: Parameter, shape: [Int], slots: Slots) {
            self.parameter = parameter
            self.shape = shape
            self.slots = slots
        }
    }

    /// State by parameter identity. Entries hold their parameter, so an identifier is never
    /// reused while its entry lives, and export reads the parameter's current name.
    var entries: [ObjectIdentifier: SlotEntry] = [:]

    /// Where clipped gradients are written; grows to the largest parameter and is reused.
    private var clipScratch: [Float] = []

    /// Sets up the shared configuration; concrete optimizers call it from their initialisers.
    init(learningRate: Float, schedule: (any LearningRateSchedule)?,
         clipNorm: Float?, globalClipNorm: Float?, clipValue: Float?) {
        checkNonNegative(learningRate, "learningRate")
        self.constantRate = learningRate
        self.schedule = schedule
        self.clipNorm = clipNorm
        self.globalClipNorm = globalClipNorm
        self.clipValue = clipValue
        Self.checkClipOption(clipNorm, "clipNorm")
        Self.checkClipOption(globalClipNorm, "globalClipNorm")
        Self.checkClipOption(clipValue, "clipValue")
    }

    private static func checkClipOption(_ value: Float?, _ name: String) {
        if let value {
            neuritePrecondition(value.isFinite && value > 0, "\(name) must be positive and finite, got \(value)")
        }
    }

    /// The learning rate the next `step` uses: `schedule.rate(at: iterations)` when there is a
    /// schedule, else the constant rate.
    ///
    /// Setting it (as a callback such as "reduce on plateau" does) fixes the rate from the next
    /// step on and removes the schedule (`schedule` becomes `nil`); assign `schedule` again to
    /// go back to a schedule.
    /// - Precondition: a set value is finite and non-negative.
    public var learningRate: Float {
        get { schedule?.rate(at: iterations) ?? constantRate }
        set {
            checkNonNegative(newValue, "learningRate")
            constantRate = newValue
            schedule = nil
        }
    }

    // MARK: - What each optimizer writes

    /// The state of a parameter at its first step. Slots this configuration does not use
    /// may be empty tensors (`Tensor.zeros([0])`).
    func makeSlots(for value: Tensor) -> Slots {
        fatalError("\(Self.self) must override makeSlots(for:)")
    }

    /// The slots this configuration keeps, each with its key suffix (`"m"` in
    /// `"dense_1.kernel.m"`). Every one of them has the parameter's shape.
    var slotKeys: [(name: String, path: WritableKeyPath<Slots, Tensor>)] { [] }

    /// Applies the update rule to one parameter: `weights` and `gradient` have the same count,
    /// as has every slot in `slotKeys`. The gradient is already clipped.
    func update(weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
                slots: inout Slots, context: StepContext) {
        fatalError("\(Self.self) must override update(weights:gradient:slots:context:)")
    }

    // MARK: - The step

    /// Applies one update to every trainable parameter from its current gradient, then counts
    /// the step. Gradients are read, never changed (clipping works on a copy): the training
    /// loop zeroes them before each batch. Non-trainable parameters are not touched.
    /// - Precondition: each trainable parameter's gradient has the shape of its value, and
    ///   that shape has not changed since the parameter's first step.
    public func step(_ parameters: [Parameter]) {
        let context = StepContext(learningRate: learningRate, iteration: iterations + 1)
        iterations += 1
        for p in parameters where p.isTrainable {
            neuritePrecondition(p.gradient.shape == p.value.shape,
                                "gradient of \(p.name) has shape \(p.gradient.shape), its value has \(p.value.shape)")
        }
        let scales = gradientScales(parameters)
        var index = 0
        for p in parameters where p.isTrainable {
            let entry = slotEntry(for: p)
            let scale = scales.isEmpty ? 1 : scales[index]
            index += 1
            if scale == 1 && clipValue == nil {
                p.gradient.withUnsafeBufferPointer { g in
                    p.value.withUnsafeMutableBufferPointer { w in
                        update(weights: w, gradient: g, slots: &entry.slots, context: context)
                    }
                }
            } else {
                let n = p.gradient.count
                if clipScratch.count < n { clipScratch = [Float](repeating: 0, count: n) }
                clipScratch.withUnsafeMutableBufferPointer { scratch in
                    let clipped = UnsafeMutableBufferPointer(rebasing: scratch[0..<n])
                    p.gradient.withUnsafeBufferPointer { g in
                        writeClipped(g, scale: scale, limit: clipValue, into: clipped)
                    }
                    p.value.withUnsafeMutableBufferPointer { w in
                        update(weights: w, gradient: UnsafeBufferPointer(clipped), slots: &entry.slots, context: context)
                    }
                }
            }
        }
    }

    /// The factor each trainable gradient is multiplied by after clipping by value, in the
    /// order of `parameters`; empty when neither norm option is set.
    private func gradientScales(_ parameters: [Parameter]) -> [Float] {
        guard clipNorm != nil || globalClipNorm != nil else { return [] }
        var scales: [Float] = []
        var norms: [Double] = []
        for p in parameters where p.isTrainable {
            let norm = p.gradient.withUnsafeBufferPointer { sumOfSquares($0, clampedTo: clipValue) }.squareRoot()
            var scale: Float = 1
            if let c = clipNorm {
                // Keras: g * c / max(norm, c).
                scale = Float(Double(c) / Swift.max(norm, Double(c)))
            }
            scales.append(scale)
            norms.append(norm * Double(scale))
        }
        if let c = globalClipNorm {
            let total = norms.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let factor = Float(Swift.min(1, Double(c) / (total + 1e-6)))
            if factor < 1 {
                for i in scales.indices { scales[i] *= factor }
            }
        }
        return scales
    }

    /// The state of `p`, made at its first step.
    private func slotEntry(for p: Parameter) -> SlotEntry {
        if let entry = entries[ObjectIdentifier(p)] {
            neuritePrecondition(entry.shape == p.value.shape,
                                "optimizer state of \(p.name) has shape \(entry.shape), the parameter now has \(p.value.shape)")
            return entry
        }
        let entry = SlotEntry(parameter: p, shape: p.value.shape, slots: makeSlots(for: p.value))
        entries[ObjectIdentifier(p)] = entry
        return entry
    }
}

/// What an update rule needs to know about the step being taken.
struct StepContext {
    /// The learning rate of this step (after the schedule).
    let learningRate: Float
    /// The number of this step, counting from 1 (`iterations` after the step), as bias
    /// corrections need.
    let iteration: Int
}

/// Gradient clipping splits its passes over the pool in chunks of at least this many elements,
/// so gradients under 32Ki elements (two chunks) stay on the calling thread (as the update kernels do).
let updateGrain = 1 << 14

/// Calls `body` over `0..<count` in contiguous chunks, spread over `ThreadPool.shared` when
/// the count is large. For element-wise work the result does not depend on the split.
@inline(__always)
func forEachChunk(_ count: Int, _ body: (Range<Int>) -> Void) {
    ThreadPool.shared.parallelChunks(count, grain: updateGrain, body)
}

/// Stops with a message naming the hyperparameter unless `value` is finite and non-negative.
func checkNonNegative(_ value: Float, _ name: @autoclosure () -> String) {
    neuritePrecondition(value.isFinite && value >= 0, "\(name()) must be finite and non-negative, got \(value)")
}

/// Stops with a message naming the hyperparameter unless `value` is a decay rate in `0..<1`.
func checkDecayRate(_ value: Float, _ name: @autoclosure () -> String) {
    neuritePrecondition(value >= 0 && value < 1, "\(name()) must be in 0..<1, got \(value)")
}
