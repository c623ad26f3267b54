import Foundation
import TensorCore

/// A loss's value on a batch and its gradient with respect to the predictions.
public struct LossResult {
    /// The weighted mean loss: `Σ_i w_i * loss_i / B` over the `B` samples (`w_i = 1` without
    /// sample weights). As in Keras, the sum is divided by the batch size, not by the sum of the
    /// weights, so class weights scale the loss as well as rebalance it.
    public var loss: Float
    /// d(loss)/d(predictions), the shape of the predictions.
    public var gradient: Tensor
}

/// A training objective: a mean over the samples of a batch, with its gradient.
///
/// Every loss takes optional per-sample weights (what `fit` uses for class weights). A sample's
/// loss is the mean over its elements (over the positions of a sequence, the outputs of a
/// regression).
public protocol Loss {
    /// The name in configurations, as Keras writes it (`"mean_squared_error"`).
    var name: String { get }
    /// Whether the targets are classes (so class weights and accuracy apply).
    var isClassification: Bool { get }
    /// Throws a `TrainingError` when `targets` cannot be compared with predictions of per-sample
    /// shape `predictionShape` (a tensor of another shape, labels out of range, labels for a
    /// regression loss). `fit` and `evaluate` call it once, before any step.
    func validate(predictionShape: [Int], targets: Targets) throws
    /// The weighted mean loss of `predictions` `[B, ...]` against `targets` (B samples) and its
    /// gradient.
    /// - Precondition: the targets fit (see ``validate(predictionShape:targets:)``), and
    ///   `sampleWeights`, when given, has `B` elements.
    func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult
}

extension Loss {
    /// The loss against class labels; see ``compute(_:_:sampleWeights:)``.
    public func callAsFunction(_ predictions: Tensor, labels: [Int], sampleWeights: [Float]? = nil) -> LossResult {
        compute(predictions, .labels(labels), sampleWeights: sampleWeights)
    }

    /// The loss against target values; see ``compute(_:_:sampleWeights:)``.
    public func callAsFunction(_ predictions: Tensor, targets: Tensor, sampleWeights: [Float]? = nil) -> LossResult {
        compute(predictions, .values(targets), sampleWeights: sampleWeights)
    }
}

// MARK: - Softmax cross-entropy

/// Cross-entropy of the softmax of logits, fused: Keras' `SparseCategoricalCrossentropy` (integer
/// labels) and `CategoricalCrossentropy` (one-hot or probability rows), both with
/// `from_logits=True`.
///
/// For logits `z` (rows along the last axis, `C` classes) and target row `q`:
/// `loss = -Σ_k q_k log softmax(z)_k`, computed with `logSoftmax` so it stays finite however large
/// the logits; the gradient is `softmax(z) * Σq - q` (`softmax(z) - q` for a probability row).
/// With label smoothing `ε`, the target becomes `(1 - ε) q + ε / C` (for labels too).
/// Give it the logits of a *linear* last layer: a softmax activation before it would be applied twice.
///
/// Cost: one log-softmax, one exponential and one pass to form the gradient.
public struct SoftmaxCrossEntropy: Loss, Sendable {
    /// The label smoothing `ε`, in `0..<1`.
    public var labelSmoothing: Float

    /// The loss, with optional label smoothing.
    /// - Precondition: `0 <= labelSmoothing < 1`.
    public init(labelSmoothing: Float = 0) {
        neuritePrecondition(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in 0..<1, got \(labelSmoothing)")
        self.labelSmoothing = labelSmoothing
    }

    /// `"categorical_crossentropy"`.
    public var name: String { "categorical_crossentropy" }
    /// True.
    public var isClassification: Bool { true }

    /// Labels need predictions `[C]` per sample and values in `0..<C`; target tensors need the
    /// predictions' shape.
    public func validate(predictionShape: [Int], targets: Targets) throws {
        try validateCategorical(predictionShape: predictionShape, targets: targets, loss: "SoftmaxCrossEntropy")
    }

    /// The fused loss and gradient.
    public func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        neuritePrecondition(predictions.rank >= 2, "SoftmaxCrossEntropy needs logits [B, ..., C], got \(predictions.shape)")
        let batch = predictions.shape[0], classes = predictions.shape[predictions.rank - 1]
        let rows = predictions.count / Swift.max(classes, 1), rowsPerSample = rows / Swift.max(batch, 1)
        checkWeights(sampleWeights, batch)
        let logP = predictions.logSoftmax()
        var gradient = logP.exp()
        let eps = Double(labelSmoothing), uniform = eps / Double(classes)
        var total = 0.0
        logP.withUnsafeBufferPointer { lp in
            gradient.withUnsafeMutableBufferPointer { g in
                switch targets {
                case .labels(let labels):
                    neuritePrecondition(labels.count == rows,
                                        "SoftmaxCrossEntropy: \(labels.count) labels for logits \(predictions.shape)")
                    for r in 0..<rows {
                        let scale = Double(sampleWeights?[r / rowsPerSample] ?? 1) / Double(rows)
                        let y = labels[r], base = r * classes
                        neuritePrecondition(y >= 0 && y < classes, "label \(y) is out of range for \(classes) classes")
                        var rowLoss = (1 - eps) * -Double(lp[base + y])
                        if eps > 0 {
                            var sum = 0.0
                            for k in 0..<classes { sum += Double(lp[base + k]) }
                            rowLoss -= uniform * sum
                        }
                        total += scale * rowLoss
                        for k in 0..<classes {
                            let q = (k == y ? 1 - eps : 0) + uniform
                            g[base + k] = Float((Double(g[base + k]) - q) * scale)
                        }
                    }
                case .values(let t):
                    neuritePrecondition(t.shape == predictions.shape,
                                        "SoftmaxCrossEntropy: targets \(t.shape) differ from logits \(predictions.shape)")
                    t.withUnsafeBufferPointer { tq in
                        for r in 0..<rows {
                            let scale = Double(sampleWeights?[r / rowsPerSample] ?? 1) / Double(rows)
                            let base = r * classes
                            var rowLoss = 0.0, mass = 0.0
                            for k in 0..<classes {
                                let q = (1 - eps) * Double(tq[base + k]) + uniform
                                mass += q
                                if q != 0 { rowLoss -= q * Double(lp[base + k]) }
                            }
                            total += scale * rowLoss
                            for k in 0..<classes {
                                let q = (1 - eps) * Double(tq[base + k]) + uniform
                                g[base + k] = Float((Double(g[base + k]) * mass - q) * scale)
                            }
                        }
                    }
                }
            }
        }
        return LossResult(loss: Float(total), gradient: gradient)
    }
}

// MARK: - Binary cross-entropy

/// Binary cross-entropy, Keras' `BinaryCrossentropy`, for one or more independent yes/no outputs
/// per sample, against targets in `0...1` (a tensor of the predictions' shape, or 0/1 labels
/// when there is one output per sample).
///
/// From logits z (`fromLogits: true`, recommended): `loss = max(z, 0) - z t + log(1 + e^-|z|)`,
/// the stable form of `-[t log σ(z) + (1 - t) log(1 - σ(z))]`, never overflowing; gradient
/// `σ(z) - t`. From probabilities p: p is first clipped to `[1e-7, 1 - 1e-7]` (Keras' epsilon) so
/// the logarithms stay finite; the gradient is `(p - t) / (p (1 - p))` inside that range and 0
/// outside it (the clip's own derivative). `BinaryCrossentropy` is the same type under Keras' spelling.
///
/// From probabilities after a sigmoid last layer (an `ActivationLayer(.sigmoid)` or a `Dense` with
/// `activation: .sigmoid`), `fit` and `trainOnBatch` take the gradient with respect to the
/// sigmoid's input, `p - t`, directly and skip the sigmoid's backward pass (as Keras' TensorFlow
/// backend does); the logged loss is still the one above.
public struct BinaryCrossEntropy: Loss, Sendable {
    /// Whether the predictions are logits rather than probabilities.
    public var fromLogits: Bool
    /// The clipping epsilon for probabilities, Keras' `backend.epsilon()`.
    public static let epsilon: Float = 1e-7

    /// The loss, from logits or from probabilities.
    public init(fromLogits: Bool = false) { self.fromLogits = fromLogits }

    /// `"binary_crossentropy"`.
    public var name: String { "binary_crossentropy" }
    /// True.
    public var isClassification: Bool { true }

    /// Labels need one output per sample and values 0 or 1; target tensors need the predictions' shape.
    public func validate(predictionShape: [Int], targets: Targets) throws {
        switch targets {
        case .labels(let labels):
            guard predictionShape.reduce(1, *) == 1 else {
                throw TrainingError("BinaryCrossEntropy takes 0/1 labels for one output per sample, the model gives [B] + \(predictionShape); "
                                    + "pass targets of that shape")
            }
            if let i = labels.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                throw TrainingError("BinaryCrossEntropy needs labels 0 or 1, got \(labels[i]) at index \(i)")
            }
        case .values(let t):
            try checkSameShape(t, predictionShape, loss: "BinaryCrossEntropy")
        }
    }

    /// The mean binary cross-entropy and its gradient.
    ///
    /// Probabilities against target tensors (an autoencoder's case: every pixel an output) take a
    /// vectorised path: the two logarithms come from TensorCore's SIMD `log` in Float, and the
    /// loss is summed in Float64 row by row; other cases compute each element in Float64.
    public func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        compute(predictions, targets, sampleWeights: sampleWeights, throughSigmoid: false)
    }

    /// `compute`, or with `throughSigmoid` (probabilities from a sigmoid, `fromLogits` false) the
    /// same loss with the gradient with respect to the sigmoid's input, `p - t` (unclipped, the
    /// exact derivative), for the fused path of `fit`.
    func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?, throughSigmoid: Bool) -> LossResult {
        if !fromLogits, case .values(let t) = targets, t.shape == predictions.shape, predictions.rank >= 1 {
            return probabilityLoss(predictions, t, sampleWeights, throughSigmoid: throughSigmoid)
        }
        let fromLogits = fromLogits
        let eps = Double(Self.epsilon)
        return elementwiseLoss(predictions, targets, sampleWeights, name: "BinaryCrossEntropy") { p, t in
            if fromLogits {
                let z = Double(p)
                let loss = Swift.max(z, 0) - z * t + Foundation.log1p(Foundation.exp(-Swift.abs(z)))
                return (loss, 1 / (1 + Foundation.exp(-z)) - t)
            }
            let raw = Double(p)
            let q = Swift.min(Swift.max(raw, eps), 1 - eps)
            let loss = -(t * Foundation.log(q) + (1 - t) * Foundation.log(1 - q))
            if throughSigmoid { return (loss, raw - t) }
            let inside = raw >= eps && raw <= 1 - eps
            return (loss, inside ? (q - t) / (q * (1 - q)) : 0)
        }
    }

    /// `compute` for probabilities against a target tensor of their shape, vectorised.
    private func probabilityLoss(_ predictions: Tensor, _ targets: Tensor, _ sampleWeights: [Float]?,
                                 throughSigmoid: Bool) -> LossResult {
        let batch = predictions.shape[0]
        let perSample = predictions.count / Swift.max(batch, 1)
        checkWeights(sampleWeights, batch)
        let eps = Self.epsilon
        // 1 - p is clipped on its own: 1 - 1e-7 is not a Float, so log(1 - clip(p)) would lose
        // the bound's exact value.
        let q = predictions.clipped(to: eps...(1 - eps)), notQ = (1 - predictions).clipped(to: eps...(1 - eps))
        let logQ = q.log(), logNotQ = notQ.log()
        var total = 0.0
        let gradient = predictions.withUnsafeBufferPointer { p in
            targets.withUnsafeBufferPointer { t in
                q.withUnsafeBufferPointer { q in
                  notQ.withUnsafeBufferPointer { nq in
                    logQ.withUnsafeBufferPointer { lq in
                        logNotQ.withUnsafeBufferPointer { ln in
                            Tensor(shape: predictions.shape) { g in
                                for s in 0..<batch {
                                    let scale = (sampleWeights?[s] ?? 1) / Float(batch * perSample)
                                    var row: Float = 0
                                    for j in (s * perSample)..<((s + 1) * perSample) {
                                        let (tj, qj) = (t[j], q[j])
                                        row -= tj * lq[j] + (1 - tj) * ln[j]
                                        let inside = p[j] >= eps && p[j] <= 1 - eps
                                        g[j] = throughSigmoid ? scale * (p[j] - tj)
                                            : (inside ? scale * (qj - tj) / (qj * nq[j]) : 0)
                                    }
                                    total += Double(scale) * Double(row)
                                }
                            }
                        }
                    }
                  }
                }
            }
        }
        return LossResult(loss: Float(total), gradient: gradient)
    }
}

// MARK: - Regression losses

/// The mean squared error, Keras' `MeanSquaredError`: `mean((p - t)²)`, gradient `2 (p - t) / n`.
public struct MeanSquaredError: Loss, Sendable {
    /// The loss.
    public init() {}
    /// `"mean_squared_error"`.
    public var name: String { "mean_squared_error" }
    /// False.
    public var isClassification: Bool { false }
    /// Needs a target tensor of the predictions' shape.
    public func validate(predictionShape: [Int], targets: Targets) throws {
        try checkRegressionTargets(targets, predictionShape, loss: "MeanSquaredError")
    }
    /// The mean squared error and its gradient.
    public func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        elementwiseLoss(predictions, targets, sampleWeights, name: "MeanSquaredError") { p, t in
            let d = Double(p) - t
            return (d * d, 2 * d)
        }
    }
}

/// The mean absolute error, Keras' `MeanAbsoluteError`: `mean(|p - t|)`, gradient `sign(p - t) / n`
/// (0 where they are equal).
public struct MeanAbsoluteError: Loss, Sendable {
    /// The loss.
    public init() {}
    /// `"mean_absolute_error"`.
    public var name: String { "mean_absolute_error" }
    /// False.
    public var isClassification: Bool { false }
    /// Needs a target tensor of the predictions' shape.
    public func validate(predictionShape: [Int], targets: Targets) throws {
        try checkRegressionTargets(targets, predictionShape, loss: "MeanAbsoluteError")
    }
    /// The mean absolute error and its gradient.
    public func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        elementwiseLoss(predictions, targets, sampleWeights, name: "MeanAbsoluteError") { p, t in
            let d = Double(p) - t
            return (Swift.abs(d), d > 0 ? 1 : (d < 0 ? -1 : 0))
        }
    }
}

// MARK: - Machinery

func checkSameShape(_ t: Tensor, _ predictionShape: [Int], loss: String) throws {
    guard t.rank >= 1, Array(t.shape.dropFirst()) == predictionShape else {
        throw TrainingError("\(loss): targets have shape \(t.shape), the model's predictions are [N] + \(predictionShape)")
    }
}

private func checkRegressionTargets(_ targets: Targets, _ predictionShape: [Int], loss: String) throws {
    switch targets {
    case .labels:
        throw TrainingError("\(loss) compares values: pass the targets as a tensor [N] + \(predictionShape), not as integer labels")
    case .values(let t):
        try checkSameShape(t, predictionShape, loss: loss)
    }
}

private func checkWeights(_ weights: [Float]?, _ batch: Int) {
    if let weights {
        neuritePrecondition(weights.count == batch, "\(weights.count) sample weights for a batch of \(batch)")
    }
}

/// A loss that is the mean over each sample's elements of `f(prediction, target) -> (loss, dloss/dprediction)`,
/// then the weighted mean over samples. Labels are read as one target value per sample.
private func elementwiseLoss(_ predictions: Tensor, _ targets: Targets, _ sampleWeights: [Float]?, name: String,
                             _ f: (Float, Double) -> (Double, Double)) -> LossResult {
    neuritePrecondition(predictions.rank >= 1, "\(name) needs predictions with a batch axis, got \(predictions.shape)")
    let batch = predictions.shape[0]
    let perSample = predictions.count / Swift.max(batch, 1)
    checkWeights(sampleWeights, batch)
    var total = 0.0
    let gradient = predictions.withUnsafeBufferPointer { p in
        Tensor(shape: predictions.shape) { g in
            func run(_ target: (Int) -> Double) {
                for s in 0..<batch {
                    let scale = Double(sampleWeights?[s] ?? 1) / Double(batch * perSample)
                    for j in (s * perSample)..<((s + 1) * perSample) {
                        let (l, d) = f(p[j], target(j))
                        total += scale * l
                        g[j] = Float(scale * d)
                    }
                }
            }
            switch targets {
            case .labels(let labels):
                neuritePrecondition(labels.count == batch && perSample == 1,
                                    "\(name): \(labels.count) labels for predictions \(predictions.shape)")
                run { Double(labels[$0]) }
            case .values(let t):
                neuritePrecondition(t.shape == predictions.shape, "\(name): targets \(t.shape) differ from predictions \(predictions.shape)")
                t.withUnsafeBufferPointer { tv in run { Double(tv[$0]) } }
            }
        }
    }
    return LossResult(loss: Float(total), gradient: gradient)
}
