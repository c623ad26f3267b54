import Foundation
import TensorCore

// Keras' cross-entropy losses under Keras' names and defaults (`fromLogits: false`: the model
// ends in a softmax or sigmoid), and the fused path that lets such a model train on the
// gradient with respect to its logits (see `Sequential+OutputActivation.swift`).

// MARK: - Categorical cross-entropy

/// Categorical cross-entropy, Keras' `CategoricalCrossentropy`, against one-hot or probability
/// rows `[B, ..., C]` (or integer labels, one per row, as ``SoftmaxCrossEntropy`` takes them).
///
/// With `fromLogits: false` (Keras' default) the predictions are probabilities, the output of a
/// softmax last layer. As Keras does, each row `p` is first scaled to sum to 1 (`r = p / Σp`), then
/// clipped to `[1e-7, 1 - 1e-7]` so the logarithm stays finite:
/// `loss = -Σ_k q_k log clip(r_k)`, and the gradient with respect to `p` is
/// `(1/Σp) (-q_j / r_j [r_j inside the clip] + Σ_k q_k [r_k inside the clip])` (the clip's own
/// derivative is 0). With label smoothing `ε` the target row becomes `(1 - ε) q + ε / C`.
///
/// When the model's last layer applies the softmax (an `ActivationLayer(.softmax)` or a `Dense`
/// with `activation: .softmax`), `fit` and `trainOnBatch` do not take this gradient back through
/// the softmax: they use the gradient with respect to the logits, `p Σq - q`, directly (the fused
/// softmax-cross-entropy, as Keras' TensorFlow backend does), which is the same math, stable for
/// confident predictions, and saves the softmax's backward pass. The logged loss is still the loss
/// of the probabilities above.
///
/// With `fromLogits: true` it is ``SoftmaxCrossEntropy`` (give it a linear last layer).
///
/// Cost: one pass over the predictions with a logarithm per element (in Float64), one to form the gradient.
public struct CategoricalCrossentropy: Loss, Sendable {
    /// Whether the predictions are logits (softmax applied by the loss) rather than probabilities.
    public var fromLogits: Bool
    /// The label smoothing `ε`, in `0..<1`.
    public var labelSmoothing: Float
    /// The clipping epsilon for probabilities, Keras' `backend.epsilon()`.
    public static let epsilon: Float = 1e-7

    /// The loss, from probabilities (the default, as in Keras) or from logits, with optional label smoothing.
    /// - Precondition: `0 <= labelSmoothing < 1`.
    public init(fromLogits: Bool = false, labelSmoothing: Float = 0) {
        neuritePrecondition(labelSmoothing >= 0 && labelSmoothing < 1, "label smoothing must be in 0..<1, got \(labelSmoothing)")
        self.fromLogits = fromLogits
        self.labelSmoothing = labelSmoothing
    }

    /// `"categorical_crossentropy"`.
    public var name: String { "categorical_crossentropy" }
    /// True.
    public var isClassification: Bool { true }

    /// Labels need predictions `[C]` per sample and values in `0..<C`; target tensors need the
    /// predictions' shape.
    public func validate(predictionShape: [Int], targets: Targets) throws {
        try validateCategorical(predictionShape: predictionShape, targets: targets, loss: "CategoricalCrossentropy")
    }

    /// The mean cross-entropy and its gradient with respect to the predictions.
    public func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        if fromLogits {
            return SoftmaxCrossEntropy(labelSmoothing: labelSmoothing).compute(predictions, targets, sampleWeights: sampleWeights)
        }
        return probabilityCrossEntropy(predictions, targets, sampleWeights, labelSmoothing: labelSmoothing,
                                       throughSoftmax: false, name: "CategoricalCrossentropy")
    }
}

/// Categorical cross-entropy against integer labels, Keras' `SparseCategoricalCrossentropy`: the
/// loss of ``CategoricalCrossentropy`` with one-hot rows, from probabilities by default (a softmax
/// last layer, fused with it in training as described there) or from logits (then it is
/// ``SoftmaxCrossEntropy``).
///
/// Keras clips each probability before scaling the row to sum 1, where this scales first, as
/// `CategoricalCrossentropy` does; the two differ only for rows that do not sum to 1 and hold
/// values below 1e-7, never for a softmax's output.
public struct SparseCategoricalCrossentropy: Loss, Sendable {
    /// Whether the predictions are logits rather than probabilities.
    public var fromLogits: Bool

    /// The loss, from probabilities (the default, as in Keras) or from logits.
    public init(fromLogits: Bool = false) { self.fromLogits = fromLogits }

    /// `"sparse_categorical_crossentropy"`.
    public var name: String { "sparse_categorical_crossentropy" }
    /// True.
    public var isClassification: Bool { true }

    /// Needs integer labels in `0..<C` for predictions `[C]` per sample.
    public func validate(predictionShape: [Int], targets: Targets) throws {
        guard case .labels = targets else {
            throw TrainingError("SparseCategoricalCrossentropy takes integer labels (fit(x:y:) with [Int]); "
                                + "for one-hot or probability rows use CategoricalCrossentropy")
        }
        try validateCategorical(predictionShape: predictionShape, targets: targets, loss: "SparseCategoricalCrossentropy")
    }

    /// The mean cross-entropy and its gradient with respect to the predictions.
    public func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        CategoricalCrossentropy(fromLogits: fromLogits).compute(predictions, targets, sampleWeights: sampleWeights)
    }
}

/// Keras' spelling of ``BinaryCrossEntropy`` (`BinaryCrossentropy(fromLogits: false)` is Keras'
/// `BinaryCrossentropy()`): the same type, so configurations, metrics and the fused sigmoid path
/// treat both spellings alike.
public typealias BinaryCrossentropy = BinaryCrossEntropy

// MARK: - What a loss expects of the model's last layer

/// A loss that applies a softmax or sigmoid itself, or not: `compile` warns when one that does
/// follows a last layer that already applied one (the activation would be applied twice).
protocol LogitsExpectingLoss: Loss {
    /// Whether the predictions are expected to be logits.
    var expectsLogits: Bool { get }
}

/// A loss on probabilities that can take over the backward pass of the activation that made them:
/// `fit` and `trainOnBatch` then skip that activation's backward pass (see
/// `Sequential.fusesOutputActivation(with:)`).
protocol ActivationFusableLoss: Loss {
    /// The activation (`.softmax`, `.sigmoid`) whose backward pass the loss can absorb, or nil.
    var fusableActivation: ActivationFunction? { get }
    /// The loss of `probabilities`, the output of ``fusableActivation`` (the value `compute` gives),
    /// and its gradient with respect to that activation's *input*, the logits.
    func computeThroughActivation(_ probabilities: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult
}

extension SoftmaxCrossEntropy: LogitsExpectingLoss {
    var expectsLogits: Bool { true }
}

extension CategoricalCrossentropy: LogitsExpectingLoss, ActivationFusableLoss {
    var expectsLogits: Bool { fromLogits }
    var fusableActivation: ActivationFunction? { fromLogits ? nil : .softmax }
    func computeThroughActivation(_ probabilities: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        probabilityCrossEntropy(probabilities, targets, sampleWeights, labelSmoothing: labelSmoothing,
                                throughSoftmax: true, name: "CategoricalCrossentropy")
    }
}

extension SparseCategoricalCrossentropy: LogitsExpectingLoss, ActivationFusableLoss {
    var expectsLogits: Bool { fromLogits }
    var fusableActivation: ActivationFunction? { fromLogits ? nil : .softmax }
    func computeThroughActivation(_ probabilities: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        CategoricalCrossentropy().computeThroughActivation(probabilities, targets, sampleWeights: sampleWeights)
    }
}

extension BinaryCrossEntropy: LogitsExpectingLoss, ActivationFusableLoss {
    var expectsLogits: Bool { fromLogits }
    var fusableActivation: ActivationFunction? { fromLogits ? nil : .sigmoid }
    func computeThroughActivation(_ probabilities: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
        compute(probabilities, targets, sampleWeights: sampleWeights, throughSigmoid: true)
    }
}

// MARK: - Machinery

/// The checks of the categorical losses: labels for predictions `[C]` per sample, or a target
/// tensor of the predictions' shape.
func validateCategorical(predictionShape: [Int], targets: Targets, loss: String) throws {
    guard let classes = predictionShape.last, classes > 0 else {
        throw TrainingError("\(loss) needs predictions with a class axis, got per-sample shape \(predictionShape)")
    }
    switch targets {
    case .labels(let labels):
        guard predictionShape.count == 1 else {
            throw TrainingError("\(loss) takes integer labels for predictions [B, C], the model gives [B] + \(predictionShape); "
                                + "use one-hot targets of that shape")
        }
        if let i = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw TrainingError("label \(labels[i]) at index \(i) is out of range for \(classes) classes (0..<\(classes))")
        }
    case .values(let t):
        try checkSameShape(t, predictionShape, loss: loss)
    }
}

/// Cross-entropy of probability rows `[B, ..., C]` (see ``CategoricalCrossentropy``), summed in
/// Float64. With `throughSoftmax` the gradient is the one with respect to the logits of the
/// softmax that made the rows, `p Σq - q`, unclipped (the exact derivative, as the fused logits
/// loss has it); otherwise the gradient with respect to `p`. A row summing to 0 is taken as is
/// (every entry clips to 1e-7) rather than divided by 0.
private func probabilityCrossEntropy(_ predictions: Tensor, _ targets: Targets, _ sampleWeights: [Float]?,
                                     labelSmoothing: Float, throughSoftmax: Bool, name: String) -> LossResult {
    neuritePrecondition(predictions.rank >= 2, "\(name) needs probabilities [B, ..., C], got \(predictions.shape)")
    let batch = predictions.shape[0], classes = predictions.shape[predictions.rank - 1]
    let rows = predictions.count / Swift.max(classes, 1), rowsPerSample = rows / Swift.max(batch, 1)
    if let sampleWeights {
        neuritePrecondition(sampleWeights.count == batch, "\(sampleWeights.count) sample weights for a batch of \(batch)")
    }
    let eps = Double(CategoricalCrossentropy.epsilon), smoothing = Double(labelSmoothing)
    let uniform = smoothing / Double(classes)
    var q = [Double](repeating: 0, count: classes)
    var total = 0.0
    let gradient = predictions.withUnsafeBufferPointer { p in
        Tensor(shape: predictions.shape) { g in
            func run(_ fillTarget: (Int, inout [Double]) -> Void) {
                for r in 0..<rows {
                    fillTarget(r, &q)
                    let scale = Double(sampleWeights?[r / rowsPerSample] ?? 1) / Double(rows)
                    let base = r * classes
                    var sum = 0.0
                    for k in 0..<classes { sum += Double(p[base + k]) }
                    let s = sum > 0 ? sum : 1
                    var rowLoss = 0.0, mass = 0.0, massInside = 0.0
                    for k in 0..<classes {
                        let rk = Double(p[base + k]) / s
                        mass += q[k]
                        if rk >= eps && rk <= 1 - eps { massInside += q[k] }
                        if q[k] != 0 { rowLoss -= q[k] * Foundation.log(Swift.min(Swift.max(rk, eps), 1 - eps)) }
                    }
                    total += scale * rowLoss
                    for k in 0..<classes {
                        if throughSoftmax {
                            g[base + k] = Float(scale * (Double(p[base + k]) * mass - q[k]))
                        } else {
                            let rk = Double(p[base + k]) / s
                            let inside = rk >= eps && rk <= 1 - eps
                            g[base + k] = Float(scale * ((inside ? -q[k] / rk : 0) + massInside) / s)
                        }
                    }
                }
            }
            switch targets {
            case .labels(let labels):
                neuritePrecondition(labels.count == rows, "\(name): \(labels.count) labels for probabilities \(predictions.shape)")
                run { r, q in
                    let y = labels[r]
                    neuritePrecondition(y >= 0 && y < classes, "label \(y) is out of range for \(classes) classes")
                    for k in 0..<classes { q[k] = (k == y ? 1 - smoothing : 0) + uniform }
                }
            case .values(let t):
                neuritePrecondition(t.shape == predictions.shape, "\(name): targets \(t.shape) differ from probabilities \(predictions.shape)")
                t.withUnsafeBufferPointer { tq in
                    run { r, q in
                        for k in 0..<classes { q[k] = (1 - smoothing) * Double(tq[r * classes + k]) + uniform }
                    }
                }
            }
        }
    }
    return LossResult(loss: Float(total), gradient: gradient)
}
