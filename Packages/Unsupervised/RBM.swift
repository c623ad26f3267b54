import Foundation
import Layers
import TensorCore

/// A restricted Boltzmann machine: visible units `v` (`V` of them) and hidden units `h` (`H`),
/// connected by weights `W` `[V, H]`, with biases `b` `[V]` (visible) and `c` `[H]` (hidden).
///
/// Hidden units are Bernoulli: `P(h = 1 | v) = σ(v·W + c)`. Visible units are Bernoulli,
/// `P(v = 1 | h) = σ(h·Wᵀ + b)` (data in `0...1`), or Gaussian with unit variance,
/// `v | h ~ N(h·Wᵀ + b, 1)` (standardise real-valued data first). The free energy is
/// `F(v) = -v·b - Σⱼ softplus(v·W + c)ⱼ` (Bernoulli) or `½‖v - b‖² - Σⱼ softplus(v·W + c)ⱼ`
/// (Gaussian), so `P(v) ∝ exp(-F(v))`.
///
/// Training follows the log-likelihood gradient approximated by contrastive divergence:
/// `ΔW = lr · (v₀ᵀ·P(h|v₀) / B - vₖᵀ·P(h|vₖ) / M) - lr · weightDecay · W`, with momentum
/// `velocity = momentum · velocity + ΔW; W += velocity` (likewise for the biases, without decay),
/// where `v₀` is the batch (`B` rows) and `vₖ` the end of `k` Gibbs steps (`M` rows): started at
/// the batch for CD-k, or continued from persistent chains for PCD-k. With PCD-1, no momentum and
/// no decay this is scikit-learn's `BernoulliRBM.fit` (which also starts from `N(0, 0.01)`
/// weights, zero biases and binary negative samples).
///
/// **Cost.** One update of a batch of `B` with `M` chains costs three GEMMs of about
/// `2 · (B + M) · V · H` flops in all three (the chains' visible means, the hidden probabilities of
/// batch and chains stacked in one product, and the weight update as one product of the stacked
/// visible rows with `[P(h|v₀) / B; -P(h|vₖ) / M]`, accumulated straight into the weights), plus
/// fused bias-sigmoid passes and one uniform draw per sampled unit.
///
/// ```swift
/// let rbm = RBM(visibleCount: 784, hiddenCount: 256, learningRate: 0.05, batchSize: 64, seed: 1)
/// rbm.fit(images.reshaped([-1, 784]), epochs: 5)
/// let features = rbm.transform(testImages.reshaped([-1, 784]))      // [N, 256]
/// ```
public final class RBM {
    /// What the visible units are.
    public enum VisibleUnits: String, Codable, Sendable {
        /// Binary units with Bernoulli conditionals; data in `0...1` (probabilities are accepted).
        case bernoulli
        /// Real units with unit-variance Gaussian conditionals; standardise the data first.
        case gaussian
    }

    /// How the negative phase of contrastive divergence is sampled.
    public enum Method: Equatable, Sendable {
        /// CD-k: `k` Gibbs steps from the batch itself.
        case contrastiveDivergence(steps: Int)
        /// PCD-k: `k` Gibbs steps continuing persistent chains (one per batch row), kept across batches.
        case persistent(steps: Int)

        var steps: Int {
            switch self {
            case .contrastiveDivergence(let k), .persistent(let k): k
            }
        }
    }

    /// `V`.
    public let visibleCount: Int
    /// `H`.
    public let hiddenCount: Int
    /// Bernoulli or Gaussian visible units.
    public let visibleUnits: VisibleUnits
    /// The step size of an update (the gradient is a mean over the batch).
    public var learningRate: Float
    /// How much of the previous update is added to the next one (0: none, as scikit-learn).
    public var momentum: Float
    /// L2 penalty on the weights (not the biases), multiplied by the learning rate.
    public var weightDecay: Float
    /// Rows per update.
    public var batchSize: Int
    /// CD-k or PCD-k.
    public var method: Method

    /// `W`, `[V, H]`.
    public var weights: Tensor
    /// `b`, `[V]`.
    public var visibleBias: Tensor
    /// `c`, `[H]`.
    public var hiddenBias: Tensor

    /// The random stream of sampling and batch order.
    public var generator: SeededGenerator
    /// The persistent chains' hidden states `[M, H]` (PCD), made at the first update.
    public private(set) var chains: Tensor?
    private var velocity: (weights: Tensor, visible: Tensor, hidden: Tensor)?

    /// An RBM with weights drawn from `N(0, 0.01²)` and zero biases.
    ///
    /// - Parameters:
    ///   - visibleCount: `V`, at least 1.
    ///   - hiddenCount: `H`, at least 1.
    ///   - visibleUnits: `.bernoulli` (default) or `.gaussian`.
    ///   - learningRate: 0.1 by default, as scikit-learn.
    ///   - momentum: in `0..<1`.
    ///   - weightDecay: at least 0.
    ///   - batchSize: at least 1.
    ///   - method: `.persistent(steps: 1)` (scikit-learn's) by default.
    ///   - seed: the initial weights and every later random draw.
    /// - Precondition: the ranges above; the message names the value.
    public init(visibleCount: Int, hiddenCount: Int, visibleUnits: VisibleUnits = .bernoulli,
                learningRate: Float = 0.1, momentum: Float = 0, weightDecay: Float = 0, batchSize: Int = 10,
                method: Method = .persistent(steps: 1), seed: UInt64 = 0) {
        neuritePrecondition(visibleCount >= 1 && hiddenCount >= 1,
                            "RBM needs at least one visible and one hidden unit, got \(visibleCount) and \(hiddenCount)")
        neuritePrecondition(momentum >= 0 && momentum < 1, "RBM momentum \(momentum) must be in 0..<1")
        neuritePrecondition(weightDecay >= 0, "RBM weight decay \(weightDecay) must not be negative")
        neuritePrecondition(batchSize >= 1, "RBM batch size \(batchSize) must be at least 1")
        neuritePrecondition(method.steps >= 1, "RBM needs at least one Gibbs step, got \(method)")
        self.visibleCount = visibleCount
        self.hiddenCount = hiddenCount
        self.visibleUnits = visibleUnits
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.batchSize = batchSize
        self.method = method
        generator = SeededGenerator(seed: seed)
        weights = Tensor.randomNormal([visibleCount, hiddenCount], standardDeviation: 0.01, using: &generator)
        visibleBias = Tensor.zeros([visibleCount])
        hiddenBias = Tensor.zeros([hiddenCount])
    }

    // MARK: - Conditionals and sampling

    private func checkVisible(_ v: Tensor, _ op: String) {
        neuritePrecondition(v.rank == 2 && v.shape[1] == visibleCount,
                            "RBM.\(op) needs visible rows [N, \(visibleCount)], got \(v.shape)")
    }

    /// `P(h = 1 | v) = σ(v·W + c)`, `[N, H]` for `[N, V]`: the features `transform` returns.
    public func hiddenProbabilities(_ visible: Tensor) -> Tensor {
        checkVisible(visible, "hiddenProbabilities")
        var z = product(visible, transposeWeights: false)
        z.addBias(hiddenBias, activation: .sigmoid)
        return z
    }

    /// `a·W` (`a` `[N, V]`) or `a·Wᵀ` (`a` `[N, H]`) into a new tensor that the product writes
    /// straight away (`Tensor.matmul` would fill it with zeros first; with beta 0 nothing is read).
    private func product(_ a: Tensor, transposeWeights: Bool) -> Tensor {
        let n = a.shape[0], k = a.shape[1], cols = transposeWeights ? visibleCount : hiddenCount
        return a.withUnsafeBufferPointer { pa in
            weights.withUnsafeBufferPointer { pw in
                Tensor(shape: [n, cols]) { out in
                    guard n > 0 else { return }
                    sgemm(transposeA: false, transposeB: transposeWeights, m: n, n: cols, k: k, alpha: 1,
                          a: pa.baseAddress!, lda: k, b: pw.baseAddress!, ldb: hiddenCount,
                          beta: 0, c: out.baseAddress!, ldc: cols)
                }
            }
        }
    }

    /// The features of `visible` `[N, V]`: the hidden probabilities `[N, H]` (scikit-learn's `transform`).
    public func transform(_ visible: Tensor) -> Tensor { hiddenProbabilities(visible) }

    /// `E[v | h]`, `[N, V]` for `[N, H]`: `σ(h·Wᵀ + b)` (Bernoulli) or `h·Wᵀ + b` (Gaussian).
    public func visibleMeans(_ hidden: Tensor) -> Tensor {
        neuritePrecondition(hidden.rank == 2 && hidden.shape[1] == hiddenCount,
                            "RBM.visibleMeans needs hidden rows [N, \(hiddenCount)], got \(hidden.shape)")
        var z = product(hidden, transposeWeights: true)
        z.addBias(visibleBias, activation: visibleUnits == .bernoulli ? .sigmoid : .linear)
        return z
    }

    /// Binary samples: 1 where a uniform draw is below the probability.
    static func bernoulli(_ probabilities: Tensor, using generator: inout SeededGenerator) -> Tensor {
        probabilities.withUnsafeBufferPointer { p in
            Tensor(shape: probabilities.shape) { out in
                guard out.count > 0 else { return }
                bernoulli(p.baseAddress!, into: out.baseAddress!, count: out.count, using: &generator)
            }
        }
    }

    /// `out[i] = 1` where a uniform draw is below `p[i]`, else 0, for `i < count`.
    static func bernoulli(_ p: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int,
                          using generator: inout SeededGenerator) {
        var i = 0
        // Two 24-bit uniforms from each 64-bit draw.
        while i + 1 < n {
            let bits = generator.next()
            out[i] = Float(bits >> 40) * 0x1p-24 < p[i] ? 1 : 0
            out[i + 1] = Float((bits >> 8) & 0xFF_FFFF) * 0x1p-24 < p[i + 1] ? 1 : 0
            i += 2
        }
        if i < n { out[i] = generator.nextUnitFloat() < p[i] ? 1 : 0 }
    }

    /// Samples `h ~ P(h | v)`, `[N, H]`.
    public func sampleHidden(_ visible: Tensor) -> Tensor {
        RBM.bernoulli(hiddenProbabilities(visible), using: &generator)
    }

    /// Samples `v ~ P(v | h)`, `[N, V]`: binary (Bernoulli) or the mean plus unit Gaussian noise.
    public func sampleVisible(_ hidden: Tensor) -> Tensor {
        let means = visibleMeans(hidden)
        switch visibleUnits {
        case .bernoulli: return RBM.bernoulli(means, using: &generator)
        case .gaussian: return means + Tensor.randomNormal(means.shape, using: &generator)
        }
    }

    /// Runs `steps` Gibbs steps `v → h → v` from `visible` `[N, V]` and returns the last visible
    /// state: samples, or with `meanField` the last step's visible means (smoother pictures).
    public func gibbs(_ visible: Tensor, steps: Int = 1, meanField: Bool = false) -> Tensor {
        checkVisible(visible, "gibbs")
        var v = visible
        for step in 0..<steps {
            let h = sampleHidden(v)
            v = meanField && step == steps - 1 ? visibleMeans(h) : sampleVisible(h)
        }
        return v
    }

    // MARK: - Monitoring

    /// The free energy `F(v)` of each row of `visible` `[N, V]`, as `[N]` (computed in Float64
    /// over each row's softplus terms).
    public func freeEnergy(_ visible: Tensor) -> [Double] {
        checkVisible(visible, "freeEnergy")
        let n = visible.shape[0], v = visibleCount, h = hiddenCount
        var pre = Tensor.matmul(visible, weights)
        pre.addBias(hiddenBias)
        var result = [Double](repeating: 0, count: n)
        visible.withUnsafeBufferPointer { x in
            pre.withUnsafeBufferPointer { z in
                visibleBias.withUnsafeBufferPointer { b in
                    for r in 0..<n {
                        var softplus = 0.0
                        for j in 0..<h {
                            let t = Double(z[r * h + j])
                            softplus += t > 0 ? t + Foundation.log1p(Foundation.exp(-t)) : Foundation.log1p(Foundation.exp(t))
                        }
                        var visibleTerm = 0.0
                        for i in 0..<v {
                            let xi = Double(x[r * v + i]), bi = Double(b[i])
                            visibleTerm += visibleUnits == .bernoulli ? -xi * bi : 0.5 * (xi - bi) * (xi - bi)
                        }
                        result[r] = visibleTerm - softplus
                    }
                }
            }
        }
        return result
    }

    /// The pseudo-likelihood of each row, exactly as scikit-learn's `BernoulliRBM.score_samples`
    /// computes it: one visible unit per row, chosen at random, is flipped (`v → 1 - v`), and the
    /// score is `V · log σ(F(ṽ) - F(v))`, an estimate of `Σᵢ log P(vᵢ | v₋ᵢ)`. Draws its flips
    /// from `generator`, so a seeded generator gives a repeatable score. Meaningful for binary
    /// (Bernoulli) visible units; with Gaussian units compare free energies instead.
    public func pseudoLikelihood(_ visible: Tensor, using generator: inout SeededGenerator) -> [Double] {
        checkVisible(visible, "pseudoLikelihood")
        var flipped = visible
        let n = visible.shape[0], v = visibleCount
        flipped.withUnsafeMutableBufferPointer { x in
            for r in 0..<n {
                let i = r * v + generator.nextIndex(below: v)
                x[i] = 1 - x[i]
            }
        }
        let f = freeEnergy(visible), g = freeEnergy(flipped)
        return (0..<n).map { r in
            // V · log σ(d) = -V · log(1 + e^-d), computed stably.
            let d = g[r] - f[r]
            return -Double(v) * (d > 0 ? Foundation.log1p(Foundation.exp(-d)) : -d + Foundation.log1p(Foundation.exp(d)))
        }
    }

    /// The mean pseudo-likelihood of `visible`'s rows, with flips drawn from `SeededGenerator(seed:)`.
    public func meanPseudoLikelihood(_ visible: Tensor, seed: UInt64 = 0) -> Double {
        var g = SeededGenerator(seed: seed)
        let scores = pseudoLikelihood(visible, using: &g)
        return scores.reduce(0, +) / Double(Swift.max(1, scores.count))
    }

    /// The mean squared difference between `visible` `[N, V]` and its one-step mean-field
    /// reconstruction `E[v | P(h | v)]`.
    public func reconstructionError(_ visible: Tensor) -> Double {
        let r = visibleMeans(hiddenProbabilities(visible))
        return Double((r - visible).squared().mean())
    }

    // MARK: - Training

    /// One update from the batch `positive` `[B, V]` and the negative visible states `negative`
    /// `[M, V]` (the ends of the Gibbs chains): the deterministic part of a CD or PCD step, which
    /// ``partialFit(_:)`` calls after sampling `negative`. Exposed so the rule can be checked
    /// against a reference with fixed samples.
    public func update(positive: Tensor, negative: Tensor) {
        checkVisible(positive, "update(positive:)")
        checkVisible(negative, "update(negative:)")
        let (b, m) = (positive.shape[0], negative.shape[0])
        guard b > 0, m > 0 else { return }
        _ = applyUpdate(stacked: Tensor.concatenate([positive, negative], axis: 0), batch: b, sampleChains: false)
    }

    /// The update from `stacked` `[B + M, V]`: the batch's `B` rows, then the negative states;
    /// with `sampleChains`, also returns binary samples of `P(h | negative)` drawn from the
    /// probabilities computed before the update (PCD's next chain states, as scikit-learn's
    /// `h_samples_`), so no second product is needed for them.
    private func applyUpdate(stacked: Tensor, batch b: Int, sampleChains: Bool) -> Tensor? {
        let m = stacked.shape[0] - b
        let vc = visibleCount, hc = hiddenCount
        // The hidden probabilities of batch and chains in one product.
        var hidden = hiddenProbabilities(stacked)                                 // [B + M, H]
        var chainStates: Tensor?
        if sampleChains {
            chainStates = hidden.withUnsafeBufferPointer { h in
                Tensor(shape: [m, hc]) { out in
                    let p = h.baseAddress! + b * hc
                    for i in 0..<(m * hc) { out[i] = generator.nextUnitFloat() < p[i] ? 1 : 0 }
                }
            }
        }
        let positiveScale = 1 / Float(b), negativeScale = -1 / Float(m)
        // Scale the rows (1/B for the batch, -1/M for the chains) so one product gives the
        // difference of the two correlation means; the column sums are the bias steps.
        var hiddenSums = [Float](repeating: 0, count: hc)
        var visibleSums = [Float](repeating: 0, count: vc)
        hidden.withUnsafeMutableBufferPointer { h in
            hiddenSums.withUnsafeMutableBufferPointer { sums in
                for r in 0..<(b + m) {
                    let s = r < b ? positiveScale : negativeScale
                    let row = h.baseAddress! + r * hc
                    for j in 0..<hc {
                        row[j] *= s
                        sums[j] += row[j]
                    }
                }
            }
        }
        stacked.withUnsafeBufferPointer { x in
            visibleSums.withUnsafeMutableBufferPointer { sums in
                for r in 0..<(b + m) {
                    let s = r < b ? positiveScale : negativeScale
                    let row = x.baseAddress! + r * vc
                    for i in 0..<vc { sums[i] += s * row[i] }
                }
            }
        }
        let lr = learningRate
        if momentum == 0 {
            if weightDecay > 0 { weights *= 1 - lr * weightDecay }
            Tensor.gemm(stacked, transposeA: true, hidden, alpha: lr, beta: 1, into: &weights)
            RBM.addScaled(visibleSums, lr, to: &visibleBias)
            RBM.addScaled(hiddenSums, lr, to: &hiddenBias)
            return chainStates
        }
        var vel = velocity ?? (Tensor.zeros(weights.shape), Tensor.zeros([visibleCount]), Tensor.zeros([hiddenCount]))
        velocity = nil
        if weightDecay > 0 {
            vel.weights *= momentum
            vel.weights -= weights * (lr * weightDecay)
            Tensor.gemm(stacked, transposeA: true, hidden, alpha: lr, beta: 1, into: &vel.weights)
        } else {
            Tensor.gemm(stacked, transposeA: true, hidden, alpha: lr, beta: momentum, into: &vel.weights)
        }
        vel.visible *= momentum
        RBM.addScaled(visibleSums, lr, to: &vel.visible)
        vel.hidden *= momentum
        RBM.addScaled(hiddenSums, lr, to: &vel.hidden)
        weights += vel.weights
        visibleBias += vel.visible
        hiddenBias += vel.hidden
        velocity = vel
        return chainStates
    }

    /// `target += scale * values`, in place.
    private static func addScaled(_ values: [Float], _ scale: Float, to target: inout Tensor) {
        target.withUnsafeMutableBufferPointer { t in
            for i in 0..<t.count { t[i] += scale * values[i] }
        }
    }

    /// One CD-k or PCD-k update on the batch `batch` `[B, V]`: samples the negative phase from
    /// ``generator`` and calls ``update(positive:negative:)``.
    public func partialFit(_ batch: Tensor) {
        checkVisible(batch, "partialFit")
        let steps = method.steps
        var h: Tensor
        switch method {
        case .contrastiveDivergence:
            h = sampleHidden(batch)
        case .persistent:
            h = chains ?? Tensor.zeros([batchSize, hiddenCount])
        }
        for _ in 1..<steps {
            h = sampleHidden(sampleVisible(h))
        }
        // The last step samples v_k straight into the rows after the batch's in the block
        // [batch; v_k] that the update multiplies (the draws in the same order as sampleVisible's).
        let b = batch.shape[0], m = h.shape[0], vc = visibleCount
        guard b > 0, m > 0 else {
            // Nothing to update: the step's draws as ever, and (as before) no chains kept.
            _ = sampleVisible(h)
            if case .persistent = method { chains = nil }
            return
        }
        let means = visibleMeans(h)
        let stacked = batch.withUnsafeBufferPointer { x in
            means.withUnsafeBufferPointer { p in
                Tensor(shape: [b + m, vc]) { out in
                    let o = out.baseAddress!
                    o.update(from: x.baseAddress!, count: b * vc)
                    switch visibleUnits {
                    case .bernoulli:
                        RBM.bernoulli(p.baseAddress!, into: o + b * vc, count: m * vc, using: &generator)
                    case .gaussian:
                        let noise = Tensor.randomNormal([m, vc], using: &generator)
                        noise.withUnsafeBufferPointer { e in
                            for i in 0..<(m * vc) { o[b * vc + i] = p[i] + e[i] }
                        }
                    }
                }
            }
        }
        if case .persistent = method {
            // The chains continue from h ~ P(h | v_k), sampled before the update (scikit-learn's h_samples_).
            chains = applyUpdate(stacked: stacked, batch: b, sampleChains: true)
        } else {
            _ = applyUpdate(stacked: stacked, batch: b, sampleChains: false)
        }
    }

    /// Trains for `epochs` passes over `data` `[N, V]` in batches of ``batchSize`` (the last one
    /// may be smaller), in a new seeded order each epoch when `shuffle` (scikit-learn keeps the
    /// data's order). Calls `onEpochEnd(epoch, seconds)` after each epoch, if given.
    public func fit(_ data: Tensor, epochs: Int, shuffle: Bool = true,
                    onEpochEnd: ((_ epoch: Int, _ seconds: Double) -> Void)? = nil) {
        checkVisible(data, "fit")
        let n = data.shape[0]
        guard n > 0 else { return }
        var order = Array(0..<n)
        for epoch in 0..<epochs {
            let start = DispatchTime.now().uptimeNanoseconds
            if shuffle { order.seededShuffle(using: &generator) }
            for b0 in stride(from: 0, to: n, by: batchSize) {
                let range = b0..<Swift.min(n, b0 + batchSize)
                let batch = shuffle ? data.gather(Array(order[range])) : data.slice(range)
                partialFit(batch)
            }
            onEpochEnd?(epoch, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
    }

    // MARK: - Saving

    /// The configuration saved beside the weights (`rbm.json`).
    struct Record: Codable {
        var format = "neurite.rbm"
        var version = 1
        var visibleCount: Int
        var hiddenCount: Int
        var visibleUnits: VisibleUnits
        var learningRate: Float
        var momentum: Float
        var weightDecay: Float
        var batchSize: Int
        var method: String
        var steps: Int
    }

    /// The architecture file's name in a saved RBM's folder.
    public static let configurationFileName = "rbm.json"
    /// The weights file's name: `weights` `[V, H]`, `visible_bias` `[V]`, `hidden_bias` `[H]`.
    public static let weightsFileName = "rbm.safetensors"

    /// Writes the configuration (JSON) and the weights (safetensors) into `directory`, creating
    /// it if needed; each file is written atomically.
    /// - Throws: `SafeTensorsError` or the file system's error.
    public func save(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (kind, steps): (String, Int) = switch method {
        case .contrastiveDivergence(let k): ("cd", k)
        case .persistent(let k): ("pcd", k)
        }
        let record = Record(visibleCount: visibleCount, hiddenCount: hiddenCount, visibleUnits: visibleUnits,
                            learningRate: learningRate, momentum: momentum, weightDecay: weightDecay,
                            batchSize: batchSize, method: kind, steps: steps)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(record)
        try AtomicFile.write(Array(json), to: directory + "/" + RBM.configurationFileName)
        try SafeTensors.write(["weights": weights, "visible_bias": visibleBias, "hidden_bias": hiddenBias],
                              metadata: ["format": "neurite.rbm"], to: directory + "/" + RBM.weightsFileName)
    }

    /// Reads an RBM written by ``save(to:)``; sampling restarts from `seed`.
    /// - Throws: `LayerError` naming the file and what is wrong (a missing key, a mis-shaped
    ///   tensor, an unknown method), or the reader's error.
    public static func load(from directory: String, seed: UInt64 = 0) throws -> RBM {
        let configPath = directory + "/" + configurationFileName
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw LayerError("cannot read \(configPath)")
        }
        let record: Record
        do { record = try JSONDecoder().decode(Record.self, from: data) } catch {
            throw LayerError("\(configPath) is not an RBM configuration: \(error)")
        }
        guard record.format == "neurite.rbm", record.visibleCount >= 1, record.hiddenCount >= 1, record.steps >= 1,
              record.batchSize >= 1, record.momentum >= 0, record.momentum < 1, record.weightDecay >= 0 else {
            throw LayerError("\(configPath) has an invalid RBM configuration")
        }
        let method: Method
        switch record.method {
        case "cd": method = .contrastiveDivergence(steps: record.steps)
        case "pcd": method = .persistent(steps: record.steps)
        default: throw LayerError("\(configPath) has method \"\(record.method)\"; expected \"cd\" or \"pcd\"")
        }
        let rbm = RBM(visibleCount: record.visibleCount, hiddenCount: record.hiddenCount,
                      visibleUnits: record.visibleUnits, learningRate: record.learningRate, momentum: record.momentum,
                      weightDecay: record.weightDecay, batchSize: record.batchSize, method: method, seed: seed)
        let weightsPath = directory + "/" + weightsFileName
        let tensors = try SafeTensors.read(contentsOf: weightsPath).tensors
        let expected = ["weights": [record.visibleCount, record.hiddenCount],
                        "visible_bias": [record.visibleCount], "hidden_bias": [record.hiddenCount]]
        for (key, shape) in expected {
            guard let t = tensors[key] else { throw LayerError("\(weightsPath) has no tensor \"\(key)\"") }
            guard t.shape == shape else {
                throw LayerError("\(weightsPath): \"\(key)\" has shape \(t.shape), expected \(shape)")
            }
        }
        rbm.weights = tensors["weights"]!
        rbm.visibleBias = tensors["visible_bias"]!
        rbm.hiddenBias = tensors["hidden_bias"]!
        return rbm
    }
}
