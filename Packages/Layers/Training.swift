import Foundation
import Optimizers
import TensorCore

/// Training could not start or could not go on: bad arguments (mismatched sample counts, targets
/// that do not fit the loss, a class without a class weight), a model that was not compiled, or a
/// loss that became NaN or infinite (then ``epoch`` and ``step`` say where).
public struct TrainingError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What was wrong and where.
    public var message: String
    /// The epoch where training stopped, counted from 0 as callbacks count it (nil before training).
    public var epoch: Int?
    /// The step (batch) within that epoch, counted from 0.
    public var step: Int?

    /// Makes an error.
    public init(_ message: String, epoch: Int? = nil, step: Int? = nil) {
        self.message = message
        self.epoch = epoch
        self.step = step
    }

    /// The message.
    public var description: String { message }
}

/// The per-epoch record of a `fit`: Keras' `History`. `history["loss"]![e]` is the mean training
/// loss of epoch `e` (counted from 0), and the same for every metric and their `"val_"` forms.
public struct History: Sendable, Equatable {
    /// The epochs run, counted from 0 (fewer than asked when training stopped early).
    public internal(set) var epochs: [Int] = []
    /// One value per epoch for each logged key: `"loss"`, the metrics' names, `"val_loss"`, ...
    public internal(set) var history: [String: [Double]] = [:]

    /// An empty history, to which the histories of a run continued over several `fit` calls can
    /// be appended.
    public init() {}

    /// The values of `key`, one per epoch, or nil if it was never logged.
    public subscript(key: String) -> [Double]? { history[key] }

    /// Adds the epochs of `later`, a history of the same run continued (`fit` with `initialEpoch`).
    public mutating func append(_ later: History) {
        epochs += later.epochs
        for (key, values) in later.history { history[key, default: []] += values }
    }

    mutating func append(epoch: Int, logs: [String: Double]) {
        epochs.append(epoch)
        for (key, value) in logs { history[key, default: []].append(value) }
    }
}

/// What `compile` set.
struct CompiledSetup {
    var optimizer: any Optimizer
    var loss: any Loss
    var metrics: [Metric]
    /// What `compile` warned about (see `Sequential.compileWarnings(for:)`).
    var warnings: [String] = []
}

extension Sequential {
    /// Sets the optimizer, loss and metrics that ``fit(x:y:epochs:initialEpoch:batchSize:validationData:validationSplit:shuffle:classWeights:seed:callbacks:verbose:strategy:)-(_,[Int],_,_,_,_,_,_,_,_,_,_,_)``
    /// and ``evaluate(x:y:batchSize:)-(_,[Int],_)`` use, as Keras' `compile` does.
    ///
    /// Why `compile` rather than arguments to `fit`: `evaluate` needs the same loss and metrics,
    /// and calling `fit` again (to train on) keeps the optimizer's state, as Keras users expect.
    /// Calling it again replaces all three (a new optimizer starts afresh).
    ///
    /// As Keras does, it warns when the loss expects logits (``SoftmaxCrossEntropy``, or a loss
    /// with `fromLogits: true`) but the model's last layer already applies a softmax or sigmoid,
    /// which the loss would then apply a second time: the warnings are kept in
    /// ``compileWarnings`` and, unless `printWarnings` is false, written to standard error, one
    /// line each, once per call.
    public func compile(optimizer: any Optimizer, loss: any Loss, metrics: [Metric] = [], printWarnings: Bool = true) {
        let warnings = compileWarnings(for: loss)
        compiled = CompiledSetup(optimizer: optimizer, loss: loss, metrics: metrics, warnings: warnings)
        if printWarnings {
            for warning in warnings { FileHandle.standardError.write(Data("Neurite warning: \(warning)\n".utf8)) }
        }
    }

    /// What the latest ``compile(optimizer:loss:metrics:printWarnings:)`` warned about (a loss
    /// that expects logits after a softmax or sigmoid last layer); empty when nothing was wrong
    /// or the model is not compiled.
    public var compileWarnings: [String] { compiled?.warnings ?? [] }

    /// The optimizer set by `compile`.
    public var optimizer: (any Optimizer)? { compiled?.optimizer }
    /// The loss set by `compile`.
    public var loss: (any Loss)? { compiled?.loss }
    /// The metrics set by `compile`.
    public var metrics: [Metric] { compiled?.metrics ?? [] }

    /// Trains on `x` `[N, ...]` with integer class labels `y` (N of them); see the tensor form for
    /// everything else, which is the same.
    @discardableResult
    public func fit(x: Tensor, y: [Int], epochs: Int = 1, initialEpoch: Int = 0, batchSize: Int = 32,
                    validationData: (x: Tensor, y: [Int])? = nil, validationSplit: Double = 0,
                    shuffle: Bool = true, classWeights: [Int: Float]? = nil, seed: UInt64 = 0,
                    callbacks: [any Callback] = [], verbose: Int = 1,
                    strategy: (any DistributionStrategy)? = nil) throws -> History {
        try train(x: x, targets: .labels(y), epochs: epochs, initialEpoch: initialEpoch, batchSize: batchSize,
                  validation: validationData.map { ($0.x, .labels($0.y)) }, validationSplit: validationSplit,
                  shuffle: shuffle, classWeights: classWeights, seed: seed, callbacks: callbacks, verbose: verbose,
                  strategy: strategy)
    }

    /// Trains the model for `epochs` passes over `x` `[N, ...]` and its targets `y` `[N, ...]`
    /// (one-hot rows, binary targets or regression values, the shape of the model's output), and
    /// returns the per-epoch losses and metrics.
    ///
    /// Each step takes the next `batchSize` samples (the last batch of an epoch may be smaller),
    /// zeroes the gradients, runs `forward(_:training: true)`, the loss, `backward`, and
    /// `optimizer.step`. The logged `"loss"` and metrics are means over the epoch's samples (of
    /// each batch's value, as Keras logs them, so they mix the weights of the whole epoch);
    /// validation values (`"val_loss"`, ...) are computed after each epoch in inference mode.
    ///
    /// - Parameters:
    ///   - x: the samples, `[N, ...]`.
    ///   - y: the targets, `[N, ...]`, one row per sample.
    ///   - epochs: the index of the last epoch, counted from 1, as in Keras: training runs epochs
    ///     `initialEpoch..<epochs` (counted from 0), so `epochs - initialEpoch` of them.
    ///   - initialEpoch: the epoch to start at (counted from 0), to resume a run: a model and
    ///     optimizer restored after epoch `k` and trained with `initialEpoch: k` and the same seed
    ///     see the same batches, and end where an uninterrupted run would (Keras' `initial_epoch`).
    ///   - batchSize: samples per step (the last batch of an epoch may be smaller).
    ///   - validationData: samples to evaluate after each epoch.
    ///   - validationSplit: instead, the fraction of `x` kept for validation: the *last* samples,
    ///     taken before any shuffling (as Keras does). Not both.
    ///   - shuffle: a new order each epoch, `seededShuffle` by `SeededGenerator(seed:stream: epoch)`
    ///     (the order `DataLoader` uses for the same seed).
    ///   - classWeights: a weight per class, multiplying each sample's loss (validation losses are
    ///     not weighted). Needs a classification loss; a class present in the targets without a
    ///     weight throws. One-hot targets take the argmax as the class, single-output targets 0 or 1.
    ///   - seed: the one seed of the run: it builds an unbuilt model (initial weights and dropout
    ///     streams) and orders the batches. Same seed, same model, same data: same weights and
    ///     loss curve. A model built before keeps its weights and dropout streams.
    ///   - callbacks: called at train, epoch and batch boundaries, in order; see ``Callback``.
    ///   - verbose: 0 silent, 1 a progress bar (animated only on a terminal), 2 one line per epoch,
    ///     3 also a closing line. A `ProgressBar` among `callbacks` replaces the default one.
    ///   - strategy: train as one replica of a data-parallel run (see ``DistributionStrategy``):
    ///     each replica takes its interleaved share of every epoch's order (`batchSize` samples
    ///     per replica and step, the last share padded from the start so that all take the same
    ///     steps) and of the validation data, and gradients, losses and metrics are combined
    ///     across replicas. `nil` (the default) trains in this process alone.
    /// - Throws: `TrainingError` for arguments that do not fit (before any step), and when the loss
    ///   becomes NaN or infinite, naming the epoch and step (callbacks' `onTrainEnd` still runs, so
    ///   `EarlyStopping` restores its best weights); `LayerError` when the model cannot be built.
    @discardableResult
    public func fit(x: Tensor, y: Tensor, epochs: Int = 1, initialEpoch: Int = 0, batchSize: Int = 32,
                    validationData: (x: Tensor, y: Tensor)? = nil, validationSplit: Double = 0,
                    shuffle: Bool = true, classWeights: [Int: Float]? = nil, seed: UInt64 = 0,
                    callbacks: [any Callback] = [], verbose: Int = 1,
                    strategy: (any DistributionStrategy)? = nil) throws -> History {
        try train(x: x, targets: .values(y), epochs: epochs, initialEpoch: initialEpoch, batchSize: batchSize,
                  validation: validationData.map { ($0.x, .values($0.y)) }, validationSplit: validationSplit,
                  shuffle: shuffle, classWeights: classWeights, seed: seed, callbacks: callbacks, verbose: verbose,
                  strategy: strategy)
    }

    /// One optimisation step on one batch, as Keras' `train_on_batch`: zeroes the gradients, runs
    /// the training-mode forward pass, the loss, the backward pass (skipping the first layer's
    /// input gradient) and `optimizer.step`, and returns the batch's loss and metrics. What the
    /// layers kept for the backward pass is dropped after it (as in `fit`), so nothing of the
    /// batch stays in memory until the next call.
    ///
    /// For training loops of your own; `fit` does the same per batch and adds shuffling,
    /// callbacks and history. The model must be compiled and built (or have an input shape, in
    /// which case it is built with `seed: 0`).
    /// - Throws: `TrainingError` when the model is not compiled, the batch does not fit the model,
    ///   or the loss is NaN or infinite (the weights are then left unchanged).
    @discardableResult
    public func trainOnBatch(x: Tensor, y: [Int]) throws -> [String: Double] {
        try trainOnBatch(x: x, targets: .labels(y))
    }

    /// ``trainOnBatch(x:y:)`` with a target tensor (one-hot rows, binary or regression targets).
    @discardableResult
    public func trainOnBatch(x: Tensor, y: Tensor) throws -> [String: Double] {
        try trainOnBatch(x: x, targets: .values(y))
    }

    private func trainOnBatch(x: Tensor, targets: Targets) throws -> [String: Double] {
        guard let setup = compiled else { throw TrainingError("compile(optimizer:loss:metrics:) the model before trainOnBatch") }
        if !isBuilt {
            guard inputShape != nil else {
                throw TrainingError("trainOnBatch needs a built model or one with an input shape")
            }
            try build(seed: 0)
        }
        try checkData(x: x, targets: targets, what: "trainOnBatch", built: builtInputShape!, batchSize: Swift.max(1, x.shape.first ?? 1))
        try validateTargets(targets, setup)
        let params = parameters
        for p in params { p.zeroGradient() }
        let out = forward(x, training: true)
        let fused = fusesOutputActivation(with: setup.loss)
        let result = trainingLoss(out, targets, sampleWeights: nil, setup: setup, fused: fused)
        guard result.loss.isFinite else {
            clearTrainingCaches()
            throw TrainingError("trainOnBatch: loss became \(result.loss); lower the learning rate, or check the data for NaN or infinite values")
        }
        backwardForTraining(result.gradient, skippingOutputActivation: fused)
        clearTrainingCaches()  // no second backward pass follows: free the saved activations now
        setup.optimizer.step(params)
        var logs = ["loss": Double(result.loss)]
        let logits = (setup.loss as? BinaryCrossEntropy)?.fromLogits ?? false
        for m in setup.metrics {
            let s = m.score(out, targets, logits: logits)
            logs[m.name] = s.count == 0 ? 0 : s.sum / Double(s.count)
        }
        return logs
    }

    /// The compiled loss and metrics of the model on `x` with labels `y`, in inference mode,
    /// `batchSize` samples at a time: `["loss": ..., "accuracy": ...]`.
    ///
    /// The loss and metrics of each batch are computed over the whole batch, but its forward
    /// pass runs in slices of at most 128 samples, as ``predict(_:batchSize:)`` does, so a
    /// large `batchSize` does not make the activations in flight large.
    /// - Throws: `TrainingError` when the model is not compiled or built, or the data do not fit.
    public func evaluate(x: Tensor, y: [Int], batchSize: Int = 32) throws -> [String: Double] {
        try evaluate(x: x, targets: .labels(y), batchSize: batchSize)
    }

    /// The compiled loss and metrics of the model on `x` with target tensor `y`; see the label form.
    public func evaluate(x: Tensor, y: Tensor, batchSize: Int = 32) throws -> [String: Double] {
        try evaluate(x: x, targets: .values(y), batchSize: batchSize)
    }

    /// The compiled loss and metrics on `x` against `targets`.
    public func evaluate(x: Tensor, targets: Targets, batchSize: Int = 32) throws -> [String: Double] {
        guard let setup = compiled else { throw TrainingError("compile(optimizer:loss:metrics:) the model before evaluate") }
        guard let built = builtInputShape else { throw TrainingError("\(label) is not built: build or fit it before evaluate") }
        try checkData(x: x, targets: targets, what: "evaluate", built: built, batchSize: batchSize)
        try validateTargets(targets, setup)
        let source = TensorBatches(x: x, targets: targets, batchSize: batchSize, shuffle: false, seed: 0, shard: nil, padded: false)
        return try measure(source, what: "evaluate", setup: setup, strategy: nil)
    }

    // MARK: Machinery

    func checkData(x: Tensor, targets: Targets, what: String, built: [Int], batchSize: Int) throws {
        guard batchSize > 0 else { throw TrainingError("\(what) needs a positive batch size, got \(batchSize)") }
        guard x.rank == built.count + 1, Array(x.shape.dropFirst()) == built else {
            throw TrainingError("\(what): x has shape \(x.shape), \(label) takes [N] + \(built)")
        }
        guard x.shape[0] == targets.count else {
            throw TrainingError("\(what): x has \(x.shape[0]) samples but y has \(targets.count)")
        }
    }

    func validateTargets(_ targets: Targets, _ setup: CompiledSetup) throws {
        let out = builtOutputShape ?? []
        try setup.loss.validate(predictionShape: out, targets: targets)
        for m in setup.metrics { try m.validate(predictionShape: out, targets: targets) }
    }

    /// The class of every sample, for class weights.
    func classes(of targets: Targets, loss: any Loss) throws -> [Int] {
        guard loss.isClassification else {
            throw TrainingError("classWeights need a classification loss, and \(loss.name) compares values: "
                                + "drop classWeights, or pass per-sample weights through a classification loss")
        }
        switch targets {
        case .labels(let labels):
            return labels
        case .values(let t):
            let perSample = t.count / Swift.max(t.shape.first ?? 1, 1)
            if perSample == 1 {
                return try t.scalars.enumerated().map { i, v in
                    guard v == 0 || v == 1 else {
                        throw TrainingError("classWeights need targets 0 or 1 for one output per sample, sample \(i) has \(v)")
                    }
                    return Int(v)
                }
            }
            guard t.rank == 2 else {
                throw TrainingError("classWeights need labels, one-hot rows [N, C] or 0/1 targets, got targets of shape \(t.shape)")
            }
            return t.argmax(alongAxis: 1)
        }
    }

    private func train(x: Tensor, targets: Targets, epochs: Int, initialEpoch: Int, batchSize: Int,
                       validation: (Tensor, Targets)?, validationSplit: Double, shuffle: Bool,
                       classWeights: [Int: Float]?, seed: UInt64, callbacks: [any Callback], verbose: Int,
                       strategy: (any DistributionStrategy)?) throws -> History {
        guard let setup = compiled else { throw TrainingError("compile(optimizer:loss:metrics:) the model before fit") }
        try checkEpochs(epochs: epochs, initialEpoch: initialEpoch)
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw TrainingError("validationSplit must be in 0..<1, got \(validationSplit)")
        }
        guard validation == nil || validationSplit == 0 else {
            throw TrainingError("pass validationData or validationSplit, not both")
        }
        guard x.rank >= 1 else { throw TrainingError("fit: x needs a batch axis, got shape \(x.shape)") }

        // Build before touching any data, so shape errors come first.
        if !isBuilt {
            if inputShape != nil {
                try build(seed: seed)
            } else {
                var generator = SeededGenerator(seed: seed)
                _ = try build(inputShape: Array(x.shape.dropFirst()), generator: &generator)
            }
        }
        let built = builtInputShape!
        try checkData(x: x, targets: targets, what: "fit", built: built, batchSize: batchSize)

        var trainX = x, trainTargets = targets
        var validationSet = validation
        if validationSplit > 0 {
            let n = x.shape[0]
            let splitAt = Int((Double(n) * (1 - validationSplit)).rounded(.up))
            guard splitAt > 0 && splitAt < n else {
                throw TrainingError("validationSplit \(validationSplit) of \(n) samples leaves \(splitAt) for training and \(n - splitAt) for validation")
            }
            trainX = x.slice(0..<splitAt)
            trainTargets = targets.sliced(0..<splitAt)
            validationSet = (x.slice(splitAt..<n), targets.sliced(splitAt..<n))
        }
        try validateTargets(trainTargets, setup)
        if let (vx, vt) = validationSet {
            try checkData(x: vx, targets: vt, what: "fit validation data", built: built, batchSize: batchSize)
            try validateTargets(vt, setup)
        }
        if let classWeights {
            // Every class must have a weight: say so before the first step, not at the batch
            // where the class first appears.
            _ = try sampleWeights(for: trainTargets, classWeights: classWeights, loss: setup.loss)
        }
        guard trainX.shape[0] > 0 else { throw TrainingError("fit needs at least one training sample") }

        let shard = strategy.map { (rank: $0.rank, replicas: $0.replicas) }
        let source = TensorBatches(x: trainX, targets: trainTargets, batchSize: batchSize, shuffle: shuffle,
                                   seed: seed, shard: shard, padded: true)
        let validationSource = validationSet.map { vx, vt in
            TensorBatches(x: vx, targets: vt, batchSize: batchSize, shuffle: false, seed: seed, shard: shard, padded: false)
        }
        return try runFit(source: source, validation: validationSource, epochs: epochs, initialEpoch: initialEpoch,
                          classWeights: classWeights, seed: seed, callbacks: callbacks, verbose: verbose,
                          strategy: strategy, setup: setup)
    }
}
