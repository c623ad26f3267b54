import Optimizers
import TensorCore

/// Batch normalisation (Keras `BatchNormalization`): normalises each channel (the extent along
/// ``axis``) with statistics over every other axis, batch included, then scales by `gamma` and
/// shifts by `beta`.
///
/// Works after a dense layer (`[B, F]`: statistics over `B`) and after a convolution
/// (`[B, H, W, C]`: statistics over `B`, `H`, `W`).
///
/// - Training (`forward(_:training: true)`): with the batch mean `μ` and the *biased* batch
///   variance `σ²` (divided by the element count `M` per channel),
///   `y = gamma * (x - μ) / sqrt(σ² + epsilon) + beta`, and the running statistics move as
///   `running = momentum * running + (1 - momentum) * batch`, for the mean and for `σ²`.
///   Keras 3 does exactly this (`ops.moments` gives the biased variance, used for both); Keras 2
///   with TensorFlow's fused kernel fed the *unbiased* variance `σ² * M / (M - 1)` to the running
///   variance instead, which differs noticeably only for small batches.
/// - Inference (`training: false`, or any call while the layer is frozen, ``trainable`` false):
///   `y = gamma * (x - runningMean) / sqrt(runningVariance + epsilon) + beta`, the running
///   statistics unchanged. A frozen layer runs so even in a model being trained, as Keras 3's
///   does (the fine-tuning behaviour it documents).
///
/// Parameters, created by ``build(inputShape:generator:)``, with Keras' names and order:
/// `"<name>.gamma"` (ones, with ``scale``), `"<name>.beta"` (zeros, with ``center``), and the
/// non-trainable `"<name>.moving_mean"` (zeros) and `"<name>.moving_variance"` (ones), which are
/// parameters so that they are saved with the weights, but which optimizers skip.
///
/// Cost: training forward makes three passes over the input (mean, variance, normalise), with
/// per-channel sums in Float64; it keeps the normalised input `x̂` and `1 / sqrt(σ² + epsilon)`
/// for ``backward(_:)``, which makes two passes and implements the closed form through the batch
/// statistics: `dx = gamma / sqrt(σ² + epsilon) * (dy - mean(dy) - x̂ * mean(dy * x̂))`.
/// After an inference-mode forward, ``backward(_:)`` is that mode's adjoint, the statistics being
/// constants: `dx = dy * gamma / sqrt(runningVariance + epsilon)`, one pass.
public final class BatchNormalization: Layer {
    /// `"BatchNormalization"`, Keras' class name.
    public static let typeName = "BatchNormalization"
    /// Whether training updates `gamma` and `beta` (Keras' `trainable`); see ``Layer/trainable``.
    /// A frozen layer normalises with its running statistics even in training, and leaves them as
    /// they are (Keras 3's fine-tuning behaviour); the running statistics are never trainable.
    public var trainable = true {
        didSet { for p in [gamma, beta].compactMap({ $0 }) { p.isTrainable = trainable } }
    }

    /// The layer's name; renaming a built layer renames its parameters.
    public var name: String {
        didSet {
            gamma?.name = "\(name).gamma"
            beta?.name = "\(name).beta"
            movingMean?.name = "\(name).moving_mean"
            movingVariance?.name = "\(name).moving_variance"
        }
    }
    /// The channel axis in Keras' convention, counting the batch axis: -1 (the default) is the last
    /// axis, 1 the first per-sample axis. Never 0, the batch axis.
    public let axis: Int
    /// The running statistics' decay, in `0...1`: Keras' default 0.99 averages over about 100 batches.
    public let momentum: Double
    /// Added to the variance before the square root, greater than 0; Keras' default 1e-3.
    public let epsilon: Double
    /// Whether a learned `beta` is added.
    public let center: Bool
    /// Whether a learned `gamma` multiplies.
    public let scale: Bool

    /// The scale `[C]` (ones initially), or nil before `build` or without ``scale``.
    public private(set) var gamma: Parameter?
    /// The offset `[C]` (zeros initially), or nil before `build` or without ``center``.
    public private(set) var beta: Parameter?
    /// The running mean `[C]`, non-trainable, or nil before `build`.
    public private(set) var movingMean: Parameter?
    /// The running (biased) variance `[C]`, non-trainable, or nil before `build`.
    public private(set) var movingVariance: Parameter?
    /// The per-sample input shape the layer was built for, or nil before `build`.
    public private(set) var builtInputShape: [Int]?

    /// What the last training-mode forward kept: the input, the batch mean and
    /// `1 / sqrt(σ² + epsilon)` per channel, and the input viewed as `[outer, C, inner]`. The
    /// normalised input `x̂` is recomputed from them in the backward pass rather than kept: that
    /// saves a tensor the size of the input and a pass that writes it.
    /// With a relu fused in (see `forward(_:training:fusingReLU:)`), also the forward pass's
    /// per-channel `factor` and `shift`: the backward pass recomputes where the relu let the
    /// gradient through (`factor * x + shift > 0`, the same bits as the forward's test) instead of
    /// keeping the output, a tensor the size of the input, until then.
    /// `elements` is the number of elements per channel the statistics were taken over: this
    /// batch's, or the global batch's when they were combined across replicas.
    ///
    /// `inference` marks what an inference-mode forward kept (see ``backward(_:)``): `mean` and
    /// `inverseDeviation` then come from the running statistics, and `elements` is unused.
    private var saved: (input: Tensor, mean: [Float], inverseDeviation: [Float], layout: ChannelLayout,
                        relu: ReLUMask?, elements: Int, inference: Bool)?

    /// Set by `fit` with a ``DistributionStrategy`` that synchronises batch normalisation: the
    /// training-mode passes then combine their per-channel sums with the other replicas' (two
    /// small collectives per layer and step), so the layer sees the global batch.
    var replicaStatistics: ReplicaStatistics?

    private var label: String { SpatialLayerConfig.label(BatchNormalization.typeName, name) }

    /// A batch normalisation layer; parameters are created by ``build(inputShape:generator:)``.
    /// - Parameters:
    ///   - axis: the channel axis, counting the batch axis (-1: last); not 0.
    ///   - momentum: the running statistics' decay, in `0...1`.
    ///   - epsilon: added to the variance, greater than 0.
    ///   - center: whether to learn an offset `beta`.
    ///   - scale: whether to learn a scale `gamma`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: the values are in the ranges above; the message names the offending value.
    public init(axis: Int = -1, momentum: Double = 0.99, epsilon: Double = 1e-3, center: Bool = true,
                scale: Bool = true, name: String = "") {
        let problem = BatchNormalization.problem(axis: axis, momentum: momentum, epsilon: epsilon)
        neuritePrecondition(problem == nil, "BatchNormalization: \(problem ?? "")")
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.name = name
    }

    /// What is wrong with a configuration, or nil when it is usable.
    private static func problem(axis: Int, momentum: Double, epsilon: Double) -> String? {
        if axis == 0 { return "axis 0 is the batch axis; the channel axis must be another one" }
        if !(0...1).contains(momentum) { return "momentum \(momentum) must lie in 0...1" }
        if !(epsilon > 0) || !epsilon.isFinite { return "epsilon \(epsilon) must be a positive number" }
        return nil
    }

    /// Keras' keys: `name`, `axis`, `momentum`, `epsilon`, `center`, `scale`.
    public var config: [String: ConfigValue] { configWithoutTrainable.addingTrainable(trainable) }

    /// The configuration's own keys, without `trainable`.
    private var configWithoutTrainable: [String: ConfigValue] {
        [
            "name": .string(name), "axis": .int(axis), "momentum": .double(momentum),
            "epsilon": .double(epsilon), "center": .bool(center), "scale": .bool(scale),
        ]
    }

    /// Rebuilds an unbuilt layer from ``config``; missing keys take Keras' defaults. Throws
    /// `LayerError` for an ill-typed or out-of-range entry.
    public convenience init(config: [String: ConfigValue]) throws {
        let type = BatchNormalization.typeName
        // Keras' renormalisation, synchronisation flag, initialisers, regularisers and
        // constraints: accepted only at their defaults (synchronisation comes from fit's strategy).
        try LayerConfigKeys.check(config, known: ["name", "axis", "momentum", "epsilon", "center", "scale"], extraDefaults: [
            "renorm": [.bool(false)], "renorm_clipping": [.null], "renorm_momentum": [.double(0.99)],
            "synchronized": [.bool(false)], "beta_initializer": [.string("zeros")], "gamma_initializer": [.string("ones")],
            "moving_mean_initializer": [.string("zeros")], "moving_variance_initializer": [.string("ones")],
            "beta_regularizer": [.null], "gamma_regularizer": [.null], "beta_constraint": [.null], "gamma_constraint": [.null],
        ], of: type)
        let axis = config["axis"] == nil ? -1 : try config.int("axis", of: type)
        let momentum = config["momentum"] == nil ? 0.99 : try config.double("momentum", of: type)
        let epsilon = config["epsilon"] == nil ? 1e-3 : try config.double("epsilon", of: type)
        let center = config["center"] == nil ? true : try config.bool("center", of: type)
        let scale = config["scale"] == nil ? true : try config.bool("scale", of: type)
        if let problem = BatchNormalization.problem(axis: axis, momentum: momentum, epsilon: epsilon) {
            throw LayerError("\(type) config: \(problem)")
        }
        self.init(axis: axis, momentum: momentum, epsilon: epsilon, center: center, scale: scale,
                  name: try SpatialLayerConfig.name(config, of: type))
        trainable = try config.trainable(of: Self.typeName)
    }

    /// The per-sample index of the channel axis for a per-sample rank, or nil when out of range.
    private func channelIndex(perSampleRank rank: Int) -> Int? {
        let full = axis < 0 ? rank + 1 + axis : axis
        return full >= 1 && full <= rank ? full - 1 : nil
    }

    /// The input shape itself. Throws `LayerError` naming the layer and the shape when ``axis``
    /// does not exist in it, its channel extent is 0, or (once built) the rank or the channel
    /// count differs from the built one.
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard let c = channelIndex(perSampleRank: inputShape.count) else {
            throw LayerError("\(label) has axis \(axis), which a per-sample input \(inputShape) (batch axis not counted) does not have")
        }
        guard inputShape[c] >= 1 else {
            throw LayerError("\(label) needs at least one channel along axis \(axis), got input \(inputShape)")
        }
        if let built = builtInputShape {
            guard built.count == inputShape.count, built[c] == inputShape[c] else {
                throw LayerError("\(label) was built for input \(built) (\(built[channelIndex(perSampleRank: built.count)!]) channels), got input \(inputShape)")
            }
        }
        return inputShape
    }

    /// Creates `gamma`, `beta` and the running statistics, each `[C]`, and returns the input
    /// shape; `generator` is unused (the initial values are constants). Building again with the
    /// same shape keeps them; another shape throws `LayerError`.
    @discardableResult
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        let output = try outputShape(for: inputShape)
        if let built = builtInputShape {
            guard built == inputShape else {
                throw LayerError("\(label) was built for input \(built), cannot build again for \(inputShape)")
            }
            return output
        }
        let channels = inputShape[channelIndex(perSampleRank: inputShape.count)!]
        if scale { gamma = Parameter(name: "\(name).gamma", value: Tensor.ones([channels]), isTrainable: trainable) }
        if center { beta = Parameter(name: "\(name).beta", value: Tensor.zeros([channels]), isTrainable: trainable) }
        movingMean = Parameter(name: "\(name).moving_mean", value: Tensor.zeros([channels]), isTrainable: false)
        movingVariance = Parameter(name: "\(name).moving_variance", value: Tensor.ones([channels]), isTrainable: false)
        builtInputShape = inputShape
        return output
    }

    /// `[gamma, beta, moving_mean, moving_variance]`, leaving out `gamma` without ``scale`` and
    /// `beta` without ``center``; empty before `build`.
    public var parameters: [Parameter] {
        [gamma, beta, movingMean, movingVariance].compactMap { $0 }
    }

    /// Normalises a batch `[B, ...]` of the built rank and channel count (other extents may vary).
    /// With `training: true` it uses the batch statistics, updates the running ones and keeps
    /// what ``backward(_:)`` needs; with `training: false`, or when the layer is frozen
    /// (``trainable`` false), it uses the running statistics and changes none of them. Either way
    /// it keeps a reference to its input (not a copy) until the next forward, for ``backward(_:)``
    /// (a `Sequential` drops it sooner: before its own training-mode forward, and after a training
    /// step's backward pass).
    /// - Precondition: the layer is built and `input` matches it; the message names both shapes.
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        forward(input, training: training, fusingReLU: false)
    }

    /// Whether a relu can be fused into this layer's passes: channels last (one pass each way).
    func canFuseReLU(perSampleRank rank: Int) -> Bool {
        channelIndex(perSampleRank: rank) == rank - 1
    }

    /// `forward`, followed by `relu()` in the same pass when `fusingReLU` is true (a `Sequential`
    /// does this for a batch normalisation followed by a relu activation layer, which then passes
    /// its input through); the backward pass then takes the gradient back through the relu too.
    func forward(_ input: Tensor, training: Bool, fusingReLU: Bool) -> Tensor {
        let layout = checkedLayout(of: input)
        let relu = fusingReLU && layout.inner == 1
        let channels = layout.channels
        let gammaValues = gamma?.value.scalars ?? [Float](repeating: 1, count: channels)
        let betaValues = beta?.value.scalars ?? [Float](repeating: 0, count: channels)
        // Keras 3: `training and self.trainable` selects the batch statistics.
        guard training && trainable else {
            let runningMean = movingMean!.value.scalars, runningVariance = movingVariance!.value.scalars
            var factor = [Float](repeating: 0, count: channels), shift = factor, inverseDeviation = factor
            for c in 0..<channels {
                let inverse = 1 / (Double(runningVariance[c]) + epsilon).squareRoot()
                inverseDeviation[c] = Float(inverse)
                factor[c] = Float(Double(gammaValues[c]) * inverse)
                shift[c] = Float(Double(betaValues[c]) - Double(runningMean[c]) * Double(gammaValues[c]) * inverse)
            }
            let output = layout.affine(input, factor: factor, shift: shift, relu: relu)
            saved = (input, runningMean, inverseDeviation, layout, relu ? ReLUMask(factor: factor, shift: shift) : nil,
                     layout.elementsPerChannel, true)
            return output
        }
        var (mean, variance) = layout.moments(input)
        var elements = layout.elementsPerChannel
        if let replicaStatistics {
            (elements, mean, variance) = replicaStatistics.combine(count: elements, mean: mean, variance: variance)
        }
        var inverseDeviation = [Float](repeating: 0, count: channels)
        var factor = inverseDeviation, shift = inverseDeviation
        for c in 0..<channels {
            let inverse = 1 / (variance[c] + epsilon).squareRoot()
            inverseDeviation[c] = Float(inverse)
            // y = gamma (x - mean) inverse + beta, as one multiply-add per element.
            factor[c] = Float(Double(gammaValues[c]) * inverse)
            shift[c] = Float(Double(betaValues[c]) - mean[c] * Double(gammaValues[c]) * inverse)
        }
        updateRunningStatistics(mean: mean, variance: variance)
        let output = layout.affine(input, factor: factor, shift: shift, relu: relu)
        saved = (input, mean.map { Float($0) }, inverseDeviation, layout, relu ? ReLUMask(factor: factor, shift: shift) : nil,
                 elements, false)
        return output
    }

    /// `running = momentum * running + (1 - momentum) * batch` for the mean and the variance.
    private func updateRunningStatistics(mean: [Double], variance: [Double]) {
        for (parameter, batch) in [(movingMean!, mean), (movingVariance!, variance)] {
            let running = parameter.value.scalars
            parameter.value = Tensor(shape: parameter.value.shape, scalars: running.indices.map { c in
                Float(momentum * Double(running[c]) + (1 - momentum) * batch[c])
            })
        }
    }

    /// Accumulates `gamma`'s and `beta`'s gradients for the last forward pass and returns the
    /// input gradient, with the adjoint of the mode that forward ran in.
    ///
    /// After a batch-statistics (training-mode) forward it differentiates through the batch mean
    /// and variance: `dbeta = Σ dy`, `dgamma = Σ dy * x̂`,
    /// `dx = gamma / sqrt(σ² + epsilon) * (dy - dbeta / M - x̂ * dgamma / M)` per channel, sums
    /// over the `M` elements of each channel.
    ///
    /// After an inference-mode forward (`training: false`, or a frozen layer), the running
    /// statistics are constants: `dx = dy * gamma / sqrt(runningVariance + epsilon)`, and, for
    /// `gamma` and `beta` while they are trainable, `dgamma = Σ dy * x̂` with
    /// `x̂ = (x - runningMean) / sqrt(runningVariance + epsilon)` and `dbeta = Σ dy` (a frozen
    /// layer skips those sums: nothing would apply them). These are the gradients Keras computes
    /// for `BatchNormalization(x, training=False)`. Calling it twice accumulates twice.
    /// - Precondition: a forward ran, and `outputGradient` has its output's shape.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        backward(consuming: outputGradient)
    }

    /// ``backward(_:)``, writing the input gradient over `outputGradient`'s storage when the caller
    /// gave away the only reference to it (a training step's backward pass does): that saves a
    /// tensor the size of the input, 11 MB for the BatchNorm CNN's first layer at batch 128.
    /// Otherwise (a caller that keeps its tensor) the gradient goes to a new tensor. The same bits.
    func backward(consuming outputGradient: consuming Tensor) -> Tensor {
        var gradient = consume outputGradient
        neuritePrecondition(saved != nil, "\(label) backward needs a forward pass first")
        let (input, mean, inverseDeviation, layout, reluOutput, elements, inference) = saved!
        neuritePrecondition(gradient.shape == input.shape,
                            "\(label) backward: output gradient \(gradient.shape) does not match output \(input.shape)")
        let channels = layout.channels
        if inference {
            inferenceBackward(&gradient, input: input, mean: mean, inverseDeviation: inverseDeviation,
                              layout: layout, reluOutput: reluOutput)
            return gradient
        }
        var (gradientSum, gradientDotNormalized) = layout.gradientSums(gradient, input, reluOutput: reluOutput,
                                                                       mean: mean, inverseDeviation: inverseDeviation)
        // gamma and beta take this replica's share (the strategy sums them with the others');
        // the input gradient needs the sums over the global batch its statistics came from.
        gamma?.accumulateGradient(Tensor(shape: [channels], scalars: gradientDotNormalized.map { Float($0) }))
        beta?.accumulateGradient(Tensor(shape: [channels], scalars: gradientSum.map { Float($0) }))
        if let replicaStatistics {
            let both = replicaStatistics.sum(gradientSum + gradientDotNormalized)
            gradientSum = Array(both[..<channels])
            gradientDotNormalized = Array(both[channels...])
        }
        let gammaValues = gamma?.value.scalars ?? [Float](repeating: 1, count: channels)
        let m = Double(elements)
        // dx = gamma s (dy - Σdy / M - x̂ Σ(dy x̂) / M) with x̂ = (x - mean) s, written as
        // a dy + b x + d per channel: one pass over dy and x.
        var a = [Float](repeating: 0, count: channels), b = a, d = a
        for c in 0..<channels {
            let s = Double(inverseDeviation[c]), gs = Double(gammaValues[c]) * s
            let meanGradient = gradientSum[c] / m, meanProduct = gradientDotNormalized[c] / m
            a[c] = Float(gs)
            b[c] = Float(-gs * s * meanProduct)
            d[c] = Float(-gs * meanGradient + gs * s * meanProduct * Double(mean[c]))
        }
        layout.inputGradient(overwriting: &gradient, input, reluOutput: reluOutput, a: a, b: b, d: d)
        return gradient
    }

    /// The adjoint of an inference-mode forward (see ``backward(_:)``): `dx = dy * gamma * s`
    /// per channel with `s = 1 / sqrt(runningVariance + epsilon)`, and the trainable ones of
    /// `gamma` and `beta` accumulate `Σ dy * x̂` and `Σ dy`. `dy` is first taken back through a
    /// fused relu, as in training mode. `outputGradient` becomes the input gradient.
    private func inferenceBackward(_ outputGradient: inout Tensor, input: Tensor, mean: [Float], inverseDeviation: [Float],
                                   layout: ChannelLayout, reluOutput: ReLUMask?) {
        let channels = layout.channels
        let learnGamma = gamma?.isTrainable == true, learnBeta = beta?.isTrainable == true
        if learnGamma || learnBeta {
            let (gradientSum, gradientDotNormalized) = layout.gradientSums(outputGradient, input, reluOutput: reluOutput,
                                                                           mean: mean, inverseDeviation: inverseDeviation)
            if learnGamma { gamma!.accumulateGradient(Tensor(shape: [channels], scalars: gradientDotNormalized.map { Float($0) })) }
            if learnBeta { beta!.accumulateGradient(Tensor(shape: [channels], scalars: gradientSum.map { Float($0) })) }
        }
        let gammaValues = gamma?.value.scalars ?? [Float](repeating: 1, count: channels)
        let a = (0..<channels).map { c in Float(Double(gammaValues[c]) * Double(inverseDeviation[c])) }
        let zeros = [Float](repeating: 0, count: channels)
        layout.inputGradient(overwriting: &outputGradient, input, reluOutput: reluOutput, a: a, b: zeros, d: zeros)
    }

    /// The layout of `input`, after checking that the layer is built and `input` fits it.
    private func checkedLayout(of input: Tensor) -> ChannelLayout {
        neuritePrecondition(builtInputShape != nil, "\(label) forward before build(inputShape:generator:)")
        let built = builtInputShape!
        let c = channelIndex(perSampleRank: built.count)! + 1
        neuritePrecondition(input.rank == built.count + 1 && input.shape[c] == built[c - 1],
                            "\(label) forward: input \(input.shape) does not match [B] + \(built) (\(built[c - 1]) channels on axis \(axis))")
        return ChannelLayout(shape: input.shape, channelAxis: c)
    }
}

extension BatchNormalization: TrainingCacheOwner, GradientConsumingBackward {
    /// Drops what the last forward kept for ``backward(_:)`` (a `Sequential` calls it before each
    /// training-mode forward and after each training step's backward pass), so the saved input of
    /// one step is not still held while the next step makes its own.
    func clearTrainingCache() { saved = nil }
}

/// A layer whose backward pass can write its input gradient over the output gradient's storage
/// when it is handed the only reference to it: `Sequential`'s training backward pass hands each
/// gradient on that way, as nothing else reads it afterwards.
protocol GradientConsumingBackward: AnyObject {
    /// `backward(_:)`, free to reuse `outputGradient`'s storage when it is not shared; the same
    /// result and side effects.
    func backward(consuming outputGradient: consuming Tensor) -> Tensor
}

/// Where a relu fused into batch normalisation let the gradient through: the forward pass's
/// per-channel affine map, whose value `factor[c] * x + shift[c]` was positive exactly there.
private struct ReLUMask {
    var factor: [Float]
    var shift: [Float]
}

/// A tensor viewed as `[outer, channels, inner]` around its channel axis: element
/// `(o, c, i)` is at `(o * channels + c) * inner + i`. With the channel axis last, `inner` is 1.
/// The per-channel loops of batch normalisation, each one pass over memory. The common
/// channels-last case (`inner == 1`) walks rows of `channels` elements, so the loops over
/// channels vectorise; otherwise each `(o, c)` run of `inner` contiguous elements is a loop.
private struct ChannelLayout {
    var outer: Int
    var channels: Int
    var inner: Int

    init(shape: [Int], channelAxis: Int) {
        outer = shape[..<channelAxis].reduce(1, *)
        channels = shape[channelAxis]
        inner = shape[(channelAxis + 1)...].reduce(1, *)
    }

    /// The number of elements of one channel, `outer * inner`.
    var elementsPerChannel: Int { outer * inner }

    /// Per-channel sums of `term(c, i)` over every element `i` of channel `c`, in Float64.
    @inline(__always)
    private func channelSums(_ term: (Int, Int) -> Double) -> [Double] {
        var sums = [Double](repeating: 0, count: channels)
        sums.withUnsafeMutableBufferPointer { total in
            if inner == 1 {
                for o in 0..<outer {
                    let base = o * channels
                    for c in 0..<channels { total[c] += term(c, base + c) }
                }
            } else {
                for o in 0..<outer {
                    for c in 0..<channels {
                        let base = (o * channels + c) * inner
                        var s = 0.0
                        for i in base..<(base + inner) { s += term(c, i) }
                        total[c] += s
                    }
                }
            }
        }
        return sums
    }

    /// A new tensor of `shape` with element `i` of channel `c` set to `value(c, i)`.
    @inline(__always)
    private func perChannelMap(_ shape: [Int], _ value: (Int, Int) -> Float) -> Tensor {
        Tensor(shape: shape) { y in
            if inner == 1 {
                for o in 0..<outer {
                    let base = o * channels
                    for c in 0..<channels { y[base + c] = value(c, base + c) }
                }
            } else {
                for o in 0..<outer {
                    for c in 0..<channels {
                        let base = (o * channels + c) * inner
                        for i in base..<(base + inner) { y[i] = value(c, i) }
                    }
                }
            }
        }
    }

    /// Per-channel mean and biased variance, sums in Float64 (channels last: one parallel pass
    /// through TensorCore's `channelMoments`; otherwise two passes).
    func moments(_ x: Tensor) -> (mean: [Double], variance: [Double]) {
        if inner == 1 { return x.channelMoments() }
        let m = Double(elementsPerChannel)
        return x.withUnsafeBufferPointer { p in
            let mean = channelSums { _, i in Double(p[i]) }.map { $0 / m }
            let variance = mean.withUnsafeBufferPointer { mu in
                channelSums { c, i in
                    let d = Double(p[i]) - mu[c]
                    return d * d
                }
            }.map { $0 / m }
            return (mean, variance)
        }
    }

    /// `x * factor[c] + shift[c]` per channel, then a relu when `relu` (channels last only).
    func affine(_ x: Tensor, factor: [Float], shift: [Float], relu: Bool = false) -> Tensor {
        if inner == 1 { return x.channelAffine(scale: factor, shift: shift, relu: relu) }
        return x.withUnsafeBufferPointer { p in
            factor.withUnsafeBufferPointer { a in
                shift.withUnsafeBufferPointer { b in
                    perChannelMap(x.shape) { c, i in p[i] * a[c] + b[c] }
                }
            }
        }
    }

    /// Per-channel `Σ dy` and `Σ dy * x̂` in Float64, with `x̂ = (x - mean) * inverseDeviation`.
    /// With a `reluOutput` mask (channels last only), `dy` is first taken back through that relu.
    func gradientSums(_ dy: Tensor, _ x: Tensor, reluOutput: ReLUMask?, mean: [Float],
                      inverseDeviation: [Float]) -> (sum: [Double], dot: [Double]) {
        if inner == 1 {
            guard let relu = reluOutput else {
                return Tensor.channelGradientSums(dy, x, mean: mean, inverseDeviation: inverseDeviation)
            }
            return Tensor.channelGradientSums(dy, x, reluScale: relu.factor, reluShift: relu.shift, mean: mean,
                                              inverseDeviation: inverseDeviation)
        }
        return dy.withUnsafeBufferPointer { g in
            x.withUnsafeBufferPointer { h in
                (channelSums { _, i in Double(g[i]) },
                 channelSums { c, i in Double(g[i]) * Double((h[i] - mean[c]) * inverseDeviation[c]) })
            }
        }
    }

    /// ``inputGradient(_:_:reluOutput:a:b:d:)`` stored in `dy`: over its own storage when it is
    /// not shared (channels last), otherwise in a new tensor.
    func inputGradient(overwriting dy: inout Tensor, _ x: Tensor, reluOutput: ReLUMask?, a: [Float], b: [Float], d: [Float]) {
        guard inner == 1 else {
            dy = inputGradient(dy, x, reluOutput: reluOutput, a: a, b: b, d: d)
            return
        }
        Tensor.channelAffine(overwriting: &dy, x, reluScale: reluOutput?.factor, reluShift: reluOutput?.shift, a: a, b: b, d: d)
    }

    /// `a[c] * dy + b[c] * x + d[c]` per channel (`dy` masked by a `reluOutput` mask, channels last only).
    func inputGradient(_ dy: Tensor, _ x: Tensor, reluOutput: ReLUMask?, a: [Float], b: [Float], d: [Float]) -> Tensor {
        if inner == 1 {
            guard let relu = reluOutput else { return Tensor.channelAffine(dy, x, a: a, b: b, d: d) }
            return Tensor.channelAffine(dy, x, reluScale: relu.factor, reluShift: relu.shift, a: a, b: b, d: d)
        }
        return dy.withUnsafeBufferPointer { g in
            x.withUnsafeBufferPointer { h in
                perChannelMap(dy.shape) { c, i in a[c] * g[i] + b[c] * h[i] + d[c] }
            }
        }
    }
}
