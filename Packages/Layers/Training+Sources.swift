import Foundation
import Optimizers
import TensorCore

extension Sequential {
    /// Trains the model on the batches of `source`: a Datasets `DataLoader` (over an image
    /// folder, IDX files, tensors or a data set of your own, with its sampler, transforms and
    /// prefetching) or any other `BatchSource`, as Keras' `fit(dataset)`.
    ///
    /// Epoch `e` reads `source.makeBatchStream(epoch: e)`, so the source decides the order
    /// (a loader shuffles by its own seed): the same source gives the same batches, and a run
    /// resumed with `initialEpoch` sees what an uninterrupted one would. Everything else is the
    /// tensor form's (``fit(x:y:epochs:initialEpoch:batchSize:validationData:validationSplit:shuffle:classWeights:seed:callbacks:verbose:strategy:)-(_,Tensor,_,_,_,_,_,_,_,_,_,_,_)``):
    /// the step, the logs, callbacks, NaN checks. Data are read while training, so memory does
    /// not grow with the data set; with a prefetching loader, decoding overlaps the steps.
    ///
    /// - Parameters:
    ///   - source: the batches: a `DataLoader`, `TimeseriesWindows` or any other `BatchSource`.
    ///   - epochs: the index of the last epoch, counted from 1; epochs `initialEpoch..<epochs` run.
    ///   - initialEpoch: the epoch to start at (counted from 0), to resume a run.
    ///   - validationData: batches to evaluate after each epoch (its epoch 0 is read each time).
    ///   - classWeights: a weight per class, multiplying each sample's loss; a batch holding a
    ///     class without a weight throws.
    ///   - seed: builds an unbuilt model (an unbuilt model without an input shape is built from
    ///     the first batch's shape). The order of the batches is the source's.
    ///   - callbacks: as for tensors.
    ///   - verbose: as for tensors.
    ///   - strategy: train as one replica of a data-parallel run; each replica's source must
    ///     yield its own share of the data and the same number of batches (a Datasets
    ///     `DistributedSampler` does both). `nil` trains in this process alone.
    /// - Throws: `TrainingError` when the model is not compiled, a batch does not fit the model
    ///   (naming the epoch and step), or the loss becomes NaN or infinite; the source's own
    ///   error when a batch cannot be read; with a strategy, a `TrainingError` on every replica
    ///   when another one failed.
    @discardableResult
    public func fit(_ source: some BatchSource, epochs: Int = 1, initialEpoch: Int = 0,
                    validationData: (any BatchSource)? = nil, classWeights: [Int: Float]? = nil,
                    seed: UInt64 = 0, callbacks: [any Callback] = [], verbose: Int = 1,
                    strategy: (any DistributionStrategy)? = nil) throws -> History {
        guard let setup = compiled else { throw TrainingError("compile(optimizer:loss:metrics:) the model before fit") }
        try checkEpochs(epochs: epochs, initialEpoch: initialEpoch)
        if let classWeights, let bad = classWeights.first(where: { !$0.value.isFinite || $0.value < 0 }) {
            throw TrainingError("class weight \(bad.value) for class \(bad.key) must be finite and non-negative")
        }
        return try runFit(source: source, validation: validationData, epochs: epochs, initialEpoch: initialEpoch,
                          classWeights: classWeights, seed: seed, callbacks: callbacks, verbose: verbose,
                          strategy: strategy, setup: setup)
    }

    /// The compiled loss and metrics over one pass of `source` (its epoch 0), in inference mode:
    /// `["loss": ..., "accuracy": ...]`, means over all samples.
    ///
    /// With a `strategy`, each replica evaluates its own share (give each a non-padded
    /// `DistributedSampler` to count every sample once) and the sums are combined, so every
    /// replica returns the same values.
    /// - Throws: `TrainingError` when the model is not compiled or built, or a batch does not fit
    ///   it; the source's own error when a batch cannot be read.
    public func evaluate(_ source: some BatchSource, strategy: (any DistributionStrategy)? = nil) throws -> [String: Double] {
        guard let setup = compiled else { throw TrainingError("compile(optimizer:loss:metrics:) the model before evaluate") }
        guard isBuilt else { throw TrainingError("\(label) is not built: build or fit it before evaluate") }
        return try measure(source, what: "evaluate", setup: setup, strategy: strategy)
    }

    /// The model's outputs for every batch of one pass of `source` (its epoch 0), in inference
    /// mode, joined in order: `[N] + outputShape`. The targets are ignored. Only the outputs are
    /// kept, so the inputs may be larger than memory; a large batch runs in slices, as in
    /// ``predict(_:batchSize:)``.
    /// - Throws: `TrainingError` when the model is not built or a batch does not fit it; the
    ///   source's own error when a batch cannot be read.
    public func predict(_ source: some BatchSource) throws -> Tensor {
        guard let built = builtInputShape else { throw TrainingError("\(label) is not built: build or fit it before predict") }
        enterPhase(trainingBatch: nil)
        let stream = source.makeBatchStream(epoch: 0)
        var parts: [Tensor] = []
        var step = 0
        while let batch = try stream.nextBatch() {
            try checkBatch(batch, what: "predict", built: built, epoch: nil, step: step)
            parts.append(inferenceForward(batch.x))
            step += 1
        }
        guard !parts.isEmpty else { return Tensor.zeros([0] + (builtOutputShape ?? [])) }
        return parts.count == 1 ? parts[0] : Tensor.concatenate(parts, axis: 0)
    }

    // MARK: Machinery

    func checkEpochs(epochs: Int, initialEpoch: Int) throws {
        guard epochs >= 0 else { throw TrainingError("fit needs epochs >= 0, got \(epochs)") }
        guard initialEpoch >= 0 && initialEpoch <= epochs else {
            throw TrainingError("fit needs 0 <= initialEpoch <= epochs, got initialEpoch \(initialEpoch) and epochs \(epochs)")
        }
    }

    /// Throws when `batch` does not fit a model built for `built` per-sample inputs.
    func checkBatch(_ batch: TrainingBatch, what: String, built: [Int], epoch: Int?, step: Int) throws {
        let place = epoch.map { "epoch \($0 + 1), batch \(step + 1)" } ?? "batch \(step + 1)"
        guard batch.x.rank == built.count + 1, Array(batch.x.shape.dropFirst()) == built else {
            throw TrainingError("\(what): \(place) has x of shape \(batch.x.shape), \(label) takes [B] + \(built)", epoch: epoch, step: step)
        }
        guard batch.x.shape[0] == batch.targets.count else {
            throw TrainingError("\(what): \(place) has \(batch.x.shape[0]) samples but \(batch.targets.count) targets", epoch: epoch, step: step)
        }
    }

    /// Each sample's weight from its class: the loss must classify, and every class needs a weight.
    func sampleWeights(for targets: Targets, classWeights: [Int: Float], loss: any Loss) throws -> [Float] {
        try classes(of: targets, loss: loss).enumerated().map { i, c in
            guard let w = classWeights[c] else {
                throw TrainingError("classWeights has no weight for class \(c) (first seen at sample \(i)); "
                                    + "it gives weights for classes \(classWeights.keys.sorted())")
            }
            return w
        }
    }

    /// With a strategy, every replica says whether it failed and how many samples it has, and
    /// all learn the others' answers: a replica's error is rethrown there, and the others throw a
    /// `TrainingError` naming it, so no replica is left waiting in a collective. Returns the
    /// global sample count and whether every replica ran out of batches.
    private func agree(_ strategy: any DistributionStrategy, failure: (any Error)?, samples: Int, exhausted: Bool,
                       doing what: String, epoch: Int?, step: Int?) throws -> (samples: Int, allExhausted: Bool) {
        let replicas = strategy.replicas
        var flags = [Double](repeating: 0, count: replicas + 2)
        if failure != nil { flags[strategy.rank] = 1 }
        flags[replicas] = exhausted && failure == nil ? 1 : 0
        flags[replicas + 1] = Double(samples)
        let totals = try strategy.sumAcrossReplicas(flags)
        if let failure { throw failure }
        if let bad = (0..<replicas).first(where: { totals[$0] > 0 }) {
            throw TrainingError("replica \(bad) of \(replicas) failed \(what); its own error says why", epoch: epoch, step: step)
        }
        let done = Int(totals[replicas])
        if done > 0 && done < replicas {
            throw TrainingError("\(done) of \(replicas) replicas ran out of batches \(what) while the others had more: "
                                + "give every replica the same number of batches (a padded DistributedSampler does)",
                                epoch: epoch, step: step)
        }
        return (Int(totals[replicas + 1]), done == replicas)
    }

    /// The loss and metric sums of one batch, in inference or training mode alike: `[loss sum,
    /// samples, metric sums..., metric counts...]`.
    private func batchTotals(_ out: Tensor, _ batch: TrainingBatch, lossValue: Float, setup: CompiledSetup) -> [Double] {
        let logits = (setup.loss as? BinaryCrossEntropy)?.fromLogits ?? false
        var sums: [Double] = [], counts: [Double] = []
        for m in setup.metrics {
            let s = m.score(out, batch.targets, logits: logits)
            sums.append(s.sum)
            counts.append(Double(s.count))
        }
        return [Double(lossValue) * Double(batch.count), Double(batch.count)] + sums + counts
    }

    /// Logs from running totals `[loss sum, samples, metric sums..., metric counts...]`.
    private func logs(from totals: [Double], setup: CompiledSetup) -> [String: Double] {
        let k = setup.metrics.count
        var logs = ["loss": totals[1] == 0 ? 0 : totals[0] / totals[1]]
        for (i, m) in setup.metrics.enumerated() { logs[m.name] = totals[2 + k + i] == 0 ? 0 : totals[2 + i] / totals[2 + k + i] }
        return logs
    }

    /// Loss and metrics, in inference mode, as means over the samples of one pass of `source`
    /// (over every replica's share with a strategy).
    func measure(_ source: any BatchSource, what: String, setup: CompiledSetup,
                 strategy: (any DistributionStrategy)?) throws -> [String: Double] {
        let built = builtInputShape!
        var totals = [Double](repeating: 0, count: 2 + 2 * setup.metrics.count)
        var failure: (any Error)?
        enterPhase(trainingBatch: nil)
        do {
            let stream = source.makeBatchStream(epoch: 0)
            var step = 0
            while let batch = try stream.nextBatch() {
                try checkBatch(batch, what: what, built: built, epoch: nil, step: step)
                try validateTargets(batch.targets, setup)
                // Sliced when the batch is large (the loss and metrics still see the whole batch).
                let out = inferenceForward(batch.x)
                let value = setup.loss.compute(out, batch.targets, sampleWeights: nil).loss
                for (i, v) in batchTotals(out, batch, lossValue: value, setup: setup).enumerated() { totals[i] += v }
                step += 1
            }
        } catch {
            failure = error
        }
        if let strategy {
            let replicas = strategy.replicas
            var flags = [Double](repeating: 0, count: replicas)
            if failure != nil { flags[strategy.rank] = 1 }
            let all = try strategy.sumAcrossReplicas(flags + totals)
            if let failure { throw failure }
            if let bad = (0..<replicas).first(where: { all[$0] > 0 }) {
                throw TrainingError("replica \(bad) of \(replicas) failed in \(what); its own error says why")
            }
            totals = Array(all[replicas...])
        } else if let failure {
            throw failure
        }
        return logs(from: totals, setup: setup)
    }

    /// Every batch-normalisation layer, nested models included.
    private var batchNormalizationLayers: [BatchNormalization] {
        layers.flatMap { layer -> [BatchNormalization] in
            if let nested = layer as? Sequential { return nested.batchNormalizationLayers }
            return (layer as? BatchNormalization).map { [$0] } ?? []
        }
    }

    /// The non-trainable values (running statistics), averaged over the replicas: what the
    /// replicas share when each normalised with its own batch statistics. The weights of frozen
    /// layers (and their running statistics) do not change, so they are left out.
    private func averageNonTrainable(_ params: [Parameter], strategy: any DistributionStrategy) throws {
        let unchanging = frozenLayerParameters
        let running = params.filter { !$0.isTrainable && !unchanging.contains(ObjectIdentifier($0)) }
        guard !running.isEmpty else { return }
        let sums = try strategy.sumAcrossReplicas(running.flatMap { $0.value.scalars.map(Double.init) })
        var offset = 0
        for p in running {
            let n = p.value.count
            p.value = Tensor(shape: p.value.shape, scalars: sums[offset..<(offset + n)].map { Float($0 / Double(strategy.replicas)) })
            offset += n
        }
    }

    /// The one training loop, over any batch source, in one process or as one replica.
    func runFit(source: any BatchSource, validation: (any BatchSource)?, epochs: Int, initialEpoch: Int,
                classWeights: [Int: Float]?, seed: UInt64, callbacks: [any Callback], verbose requested: Int,
                strategy: (any DistributionStrategy)?, setup: CompiledSetup) throws -> History {
        let rank = strategy?.rank ?? 0, replicas = strategy?.replicas ?? 1
        let verbose = rank == 0 ? requested : 0
        var history = History()

        // Build: from the input shape when there is one, else from the first batch's shape.
        var pending: (stream: any BatchStream, batch: TrainingBatch)?
        if !isBuilt {
            if inputShape != nil {
                try build(seed: seed)
            } else if initialEpoch == epochs {
                return history  // nothing to train, and no batch to build from
            } else {
                let stream = source.makeBatchStream(epoch: initialEpoch)
                var first: TrainingBatch?, failure: (any Error)?
                do {
                    first = try stream.nextBatch()
                    if first == nil {
                        throw TrainingError("fit: the source has no batch in epoch \(initialEpoch + 1) to build \(label) from")
                    }
                } catch {
                    failure = error
                }
                if let strategy {
                    _ = try agree(strategy, failure: failure, samples: 0, exhausted: false, doing: "reading the first batch",
                                  epoch: initialEpoch, step: 0)
                } else if let failure {
                    throw failure
                }
                var generator = SeededGenerator(seed: seed)
                _ = try build(inputShape: Array(first!.x.shape.dropFirst()), generator: &generator)
                pending = (stream, first!)
            }
        }
        let built = builtInputShape!
        let params = parameters
        // The fused softmax/sigmoid cross-entropy path (Sequential+OutputActivation.swift).
        let fused = fusesOutputActivation(with: setup.loss)
        let steps = source.batchesPerEpoch
        let context = TrainingContext(model: self, optimizer: setup.optimizer, epochs: epochs, stepsPerEpoch: steps,
                                      samples: source.samplesPerEpoch, batchSize: source.batchSize, verbose: verbose,
                                      rank: rank, replicas: replicas)
        var allCallbacks = callbacks
        if verbose > 0 && !callbacks.contains(where: { $0 is ProgressBar }) {
            allCallbacks.insert(ProgressBar(verbose: verbose), at: 0)
        }
        var lastLogs: [String: Double] = [:]

        // With a strategy: rank 0's weights everywhere, and batch statistics over the global batch.
        let statistics = strategy.flatMap { $0.synchronizesBatchNormalization ? ReplicaStatistics($0) : nil }
        let normalizations = batchNormalizationLayers
        if let strategy { try strategy.broadcastValues(of: params) }
        for layer in normalizations { layer.replicaStatistics = statistics }
        defer { for layer in normalizations { layer.replicaStatistics = nil } }

        do {
            for c in allCallbacks { try c.onTrainBegin(context) }
            epochLoop: for epoch in initialEpoch..<epochs {
                context.epoch = epoch
                for c in allCallbacks { try c.onEpochBegin(epoch, context: context) }
                let stream = pending?.stream ?? source.makeBatchStream(epoch: epoch)
                var totals = [Double](repeating: 0, count: 2 + 2 * setup.metrics.count)
                var step = 0
                while true {
                    // The batch, checked; with a strategy, every replica learns whether all have one.
                    var batch: TrainingBatch?, weights: [Float]?, failure: (any Error)?
                    do {
                        if let waiting = pending {
                            batch = waiting.batch
                            pending = nil
                        } else {
                            batch = try stream.nextBatch()
                        }
                        if let batch {
                            try checkBatch(batch, what: "fit", built: built, epoch: epoch, step: step)
                            try validateTargets(batch.targets, setup)
                            weights = try classWeights.map { try sampleWeights(for: batch.targets, classWeights: $0, loss: setup.loss) }
                        }
                    } catch {
                        failure = error
                    }
                    var globalSamples = batch?.count ?? 0
                    if let strategy {
                        let agreed = try agree(strategy, failure: failure, samples: globalSamples, exhausted: batch == nil,
                                               doing: "at epoch \(epoch + 1), step \(step + 1)", epoch: epoch, step: step)
                        if agreed.allExhausted { break }
                        globalSamples = agreed.samples
                    } else {
                        if let failure { throw failure }
                        if batch == nil { break }
                    }
                    let b = batch!

                    enterPhase(trainingBatch: b.count)
                    for p in params { p.zeroGradient() }
                    // Dropout masks: one stream per step and replica, so replicas draw different
                    // masks and a resumed run draws the ones an uninterrupted run drew.
                    beginTrainingStep((epoch * steps + step) * replicas + rank)
                    let out = forward(b.x, training: true)
                    try statistics?.rethrowFailure()
                    let result = trainingLoss(out, b.targets, sampleWeights: weights, setup: setup, fused: fused)
                    var stepTotals = batchTotals(out, b, lossValue: result.loss, setup: setup)
                    var nonFinite = result.loss.isFinite ? 0.0 : 1.0
                    if let strategy {
                        let all = try strategy.sumAcrossReplicas([nonFinite] + stepTotals)
                        nonFinite = all[0]
                        stepTotals = Array(all.dropFirst())
                    }
                    guard nonFinite == 0 else {
                        clearTrainingCaches()
                        let value = result.loss.isFinite ? "NaN or infinite on another replica" : "\(result.loss)"
                        throw TrainingError("loss became \(value) at epoch \(epoch + 1) of \(epochs), step \(step + 1) of \(steps) "
                                            + "(counting from 1): lower the learning rate, or check the data for NaN or infinite values",
                                            epoch: epoch, step: step)
                    }
                    // The loss is a mean over this replica's samples; scaled by its share of the
                    // global batch, the summed gradients are those of the mean over all of them.
                    var gradient = result.gradient
                    if strategy != nil && globalSamples != b.count {
                        gradient = gradient * Float(Double(b.count) / Double(Swift.max(globalSamples, 1)))
                    }
                    backwardForTraining(gradient, skippingOutputActivation: fused)
                    // No second backward pass follows: what the layers saved for this one goes
                    // now, not at the next step's forward (an epoch's smaller last batch, and the
                    // validation or evaluation after it, would otherwise run beside it).
                    clearTrainingCaches()
                    try statistics?.rethrowFailure()
                    try strategy?.sumGradients(of: params)
                    setup.optimizer.step(params)

                    for (i, v) in stepTotals.enumerated() { totals[i] += v }
                    lastLogs = logs(from: totals, setup: setup)
                    for c in allCallbacks { try c.onBatchEnd(step, logs: lastLogs, context: context) }
                    step += 1
                    if context.stopTraining { break }
                }
                if let strategy, statistics == nil { try averageNonTrainable(params, strategy: strategy) }
                if let validation {
                    for (key, value) in try measure(validation, what: "fit validation data", setup: setup, strategy: strategy) {
                        lastLogs["val_" + key] = value
                    }
                }
                history.append(epoch: epoch, logs: lastLogs)
                if let strategy {
                    // Rank 0 alone writes checkpoints: if that fails, the others must hear of it.
                    var failure: (any Error)?
                    do {
                        for c in allCallbacks { try c.onEpochEnd(epoch, logs: lastLogs, context: context) }
                    } catch {
                        failure = error
                    }
                    _ = try agree(strategy, failure: failure, samples: 0, exhausted: false,
                                  doing: "at the end of epoch \(epoch + 1)", epoch: epoch, step: nil)
                } else {
                    for c in allCallbacks { try c.onEpochEnd(epoch, logs: lastLogs, context: context) }
                }
                if context.stopTraining { break epochLoop }
            }
        } catch {
            // However training ends, callbacks finish (EarlyStopping restores its best weights,
            // the progress bar ends its line); the first error is the one reported.
            for c in allCallbacks { try? c.onTrainEnd(context, logs: lastLogs) }
            throw error
        }
        for c in allCallbacks { try c.onTrainEnd(context, logs: lastLogs) }
        return history
    }
}

/// Tensors in memory as a ``BatchSource``: what the tensor forms of `fit` and `evaluate` read.
///
/// Epoch `e` visits `0..<n`, or with `shuffle` its `seededShuffle` by `SeededGenerator(seed:
/// stream: e)` (the order a Datasets `DataLoader` with the same seed visits); with a shard, the
/// replica's ``replicaShard(of:rank:replicas:padded:)`` of it. Batches are slices when the order
/// is `0..<n` (no copy) and gathers otherwise.
struct TensorBatches: BatchSource {
    let x: Tensor
    let targets: Targets
    let batchSize: Int
    let shuffle: Bool
    let seed: UInt64
    let shard: (rank: Int, replicas: Int)?
    let padded: Bool

    var samplesPerEpoch: Int {
        let n = x.shape[0]
        guard let shard else { return n }
        return replicaShardCount(of: n, rank: shard.rank, replicas: shard.replicas, padded: padded)
    }

    var batchesPerEpoch: Int { (samplesPerEpoch + batchSize - 1) / batchSize }

    /// The epoch's sample indices, or nil for `0..<n` itself.
    func order(epoch: Int) -> [Int]? {
        guard shuffle || shard != nil else { return nil }
        var order = Array(0..<x.shape[0])
        if shuffle {
            var g = SeededGenerator(seed: seed, stream: UInt64(epoch))
            order.seededShuffle(using: &g)
        }
        if let shard { order = replicaShard(of: order, rank: shard.rank, replicas: shard.replicas, padded: padded) }
        return order
    }

    func makeBatchStream(epoch: Int) -> any BatchStream {
        Stream(source: self, order: order(epoch: epoch))
    }

    final class Stream: BatchStream {
        let source: TensorBatches
        let order: [Int]?
        var start = 0

        init(source: TensorBatches, order: [Int]?) {
            self.source = source
            self.order = order
        }

        func nextBatch() throws -> TrainingBatch? {
            let n = order?.count ?? source.x.shape[0]
            guard start < n else { return nil }
            let range = start..<Swift.min(start + source.batchSize, n)
            start = range.upperBound
            if let order {
                let indices = Array(order[range])
                return TrainingBatch(x: source.x.gather(indices), targets: source.targets.gathered(indices))
            }
            return TrainingBatch(x: source.x.slice(range), targets: source.targets.sliced(range))
        }
    }
}
