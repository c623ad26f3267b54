import TensorCore

/// Classification and regression scores computed from predictions and labels: plain functions
/// for evaluating a model by hand (`fit` and `evaluate` use the same definitions through ``Metric``).
///
/// Predictions are scores `[N, C]` (logits or probabilities: only their order matters) unless
/// said otherwise; labels are class indices in `0..<C`.
public enum Metrics {
    /// The predicted class of each row: the index of its largest score (the first on ties).
    public static func predictedClasses(_ predictions: Tensor) -> [Int] {
        predictions.argmax(alongAxis: -1)
    }

    /// The fraction of rows whose largest score is at the label.
    /// - Precondition: `predictions` is `[N, C]` and there are `N` labels.
    public static func accuracy(_ predictions: Tensor, labels: [Int]) -> Double {
        neuritePrecondition(predictions.rank == 2 && predictions.shape[0] == labels.count,
                            "accuracy: predictions \(predictions.shape) for \(labels.count) labels")
        guard !labels.isEmpty else { return 0 }
        let predicted = predictedClasses(predictions)
        return Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(labels.count)
    }

    /// The fraction of rows whose label is among the `k` highest scores (a label tied with the
    /// k-th score counts as in). Keras' `SparseTopKCategoricalAccuracy`.
    /// - Precondition: `predictions` is `[N, C]`, there are `N` labels in range, and `k >= 1`.
    public static func topKAccuracy(_ predictions: Tensor, labels: [Int], k: Int) -> Double {
        neuritePrecondition(predictions.rank == 2 && predictions.shape[0] == labels.count,
                            "topKAccuracy: predictions \(predictions.shape) for \(labels.count) labels")
        neuritePrecondition(k >= 1, "topKAccuracy needs k >= 1, got \(k)")
        guard !labels.isEmpty else { return 0 }
        return Double(topKHits(predictions, labels: labels, k: k)) / Double(labels.count)
    }

    /// The number of rows whose label is among their `k` highest scores.
    static func topKHits(_ predictions: Tensor, labels: [Int], k: Int) -> Int {
        let classes = predictions.shape[1]
        var hits = 0
        predictions.withUnsafeBufferPointer { p in
            for (row, label) in labels.enumerated() {
                neuritePrecondition(label >= 0 && label < classes, "label \(label) is out of range for \(classes) classes")
                let base = row * classes, score = p[base + label]
                var better = 0
                for j in 0..<classes where p[base + j] > score { better += 1 }
                if better < k && !score.isNaN { hits += 1 }
            }
        }
        return hits
    }

    /// The fraction of outputs on the right side of `threshold`: a prediction above it means 1,
    /// and the target (0 or 1, or a probability) is 1 at 0.5 or above. Use `threshold: 0` for
    /// logits, 0.5 for probabilities. Keras' `BinaryAccuracy`.
    /// - Precondition: the shapes agree.
    public static func binaryAccuracy(_ predictions: Tensor, targets: Tensor, threshold: Float = 0.5) -> Double {
        neuritePrecondition(predictions.shape == targets.shape,
                            "binaryAccuracy: predictions \(predictions.shape) and targets \(targets.shape) differ")
        guard predictions.count > 0 else { return 0 }
        let p = predictions.scalars, t = targets.scalars
        return Double(zip(p, t).filter { ($0 > threshold) == ($1 >= 0.5) }.count) / Double(p.count)
    }
}

/// Counts of (actual class, predicted class) pairs, with the per-class scores derived from them.
///
/// `counts[a][p]` is the number of samples of class `a` predicted as `p` (rows actual, columns
/// predicted, as scikit-learn and `tf.math.confusion_matrix` lay it out). A score whose
/// denominator is 0 (a class never predicted, or absent) is 0, as scikit-learn's default.
public struct ConfusionMatrix: Equatable, Sendable, CustomStringConvertible {
    /// `counts[actual][predicted]`.
    public private(set) var counts: [[Int]]

    /// The matrix of `predicted` against `actual` labels.
    /// - Precondition: equal lengths and every label in `0..<classes`.
    public init(predicted: [Int], actual: [Int], classes: Int) {
        neuritePrecondition(predicted.count == actual.count,
                            "ConfusionMatrix: \(predicted.count) predictions for \(actual.count) labels")
        neuritePrecondition(classes > 0, "ConfusionMatrix needs at least one class")
        counts = Array(repeating: Array(repeating: 0, count: classes), count: classes)
        for (p, a) in zip(predicted, actual) {
            neuritePrecondition(p >= 0 && p < classes && a >= 0 && a < classes,
                                "ConfusionMatrix: label pair (actual \(a), predicted \(p)) is out of range for \(classes) classes")
            counts[a][p] += 1
        }
    }

    /// The matrix of the classes `predictions` `[N, C]` predicts (their argmax) against `labels`.
    public init(predictions: Tensor, labels: [Int]) {
        neuritePrecondition(predictions.rank == 2, "ConfusionMatrix needs predictions [N, C], got \(predictions.shape)")
        self.init(predicted: Metrics.predictedClasses(predictions), actual: labels, classes: predictions.shape[1])
    }

    /// The number of classes.
    public var classes: Int { counts.count }
    /// The number of samples of each class (row sums).
    public var support: [Int] { counts.map { $0.reduce(0, +) } }
    /// The fraction of samples on the diagonal.
    public var accuracy: Double {
        let total = support.reduce(0, +)
        return total == 0 ? 0 : Double((0..<classes).reduce(0) { $0 + counts[$1][$1] }) / Double(total)
    }

    /// Per class: true positives / predicted positives.
    public var precision: [Double] {
        (0..<classes).map { c in
            let predicted = (0..<classes).reduce(0) { $0 + counts[$1][c] }
            return predicted == 0 ? 0 : Double(counts[c][c]) / Double(predicted)
        }
    }

    /// Per class: true positives / actual positives.
    public var recall: [Double] {
        (0..<classes).map { c in
            let actual = counts[c].reduce(0, +)
            return actual == 0 ? 0 : Double(counts[c][c]) / Double(actual)
        }
    }

    /// Per class: the harmonic mean of precision and recall.
    public var f1: [Double] {
        zip(precision, recall).map { p, r in p + r == 0 ? 0 : 2 * p * r / (p + r) }
    }

    /// The unweighted mean of the per-class precisions.
    public var macroPrecision: Double { precision.reduce(0, +) / Double(classes) }
    /// The unweighted mean of the per-class recalls.
    public var macroRecall: Double { recall.reduce(0, +) / Double(classes) }
    /// The unweighted mean of the per-class F1 scores (scikit-learn's `f1_score(average="macro")`).
    public var macroF1: Double { f1.reduce(0, +) / Double(classes) }

    /// The matrix, one row per actual class.
    public var description: String {
        let width = (counts.flatMap { $0 }.map { String($0).count }.max() ?? 1) + 1
        return counts.map { row in
            row.map { String(repeating: " ", count: width - String($0).count) + String($0) }.joined()
        }.joined(separator: "\n")
    }
}

/// A score `fit` and `evaluate` report beside the loss, averaged over the samples of an epoch.
public enum Metric: Sendable, Equatable {
    /// The fraction of correct predictions, logged as `"accuracy"`. With `C > 1` outputs per row
    /// the prediction is the argmax; with one output per sample it is "above the threshold"
    /// (0 when the loss takes logits, `BinaryCrossEntropy(fromLogits: true)`, else 0.5).
    /// Targets may be labels or target tensors (their argmax, or `>= 0.5` for one output).
    case accuracy
    /// The fraction of samples whose label is among the `k` highest scores, logged as `"top_k_accuracy"` (k written out).
    case topKAccuracy(k: Int)
    /// The mean squared error, logged as `"mse"`.
    case meanSquaredError
    /// The mean absolute error, logged as `"mae"`.
    case meanAbsoluteError

    /// The key in logs and `History`: `"accuracy"`, `"top_5_accuracy"`, `"mse"`, `"mae"`
    /// (with `"val_"` in front for validation data).
    public var name: String {
        switch self {
        case .accuracy: "accuracy"
        case .topKAccuracy(let k): "top_\(k)_accuracy"
        case .meanSquaredError: "mse"
        case .meanAbsoluteError: "mae"
        }
    }

    /// Throws a `TrainingError` when the metric cannot be computed for these predictions and targets.
    func validate(predictionShape: [Int], targets: Targets) throws {
        switch (self, targets) {
        case (.topKAccuracy(let k), _):
            guard k >= 1, predictionShape.count == 1 else {
                throw TrainingError("metric \(name) needs predictions [B, C] and k >= 1, the model gives [B] + \(predictionShape)")
            }
            if case .values = targets {
                throw TrainingError("metric \(name) needs integer labels")
            }
        case (.meanSquaredError, .labels), (.meanAbsoluteError, .labels):
            throw TrainingError("metric \(name) needs target values as a tensor, not integer labels")
        case (.accuracy, .labels):
            guard predictionShape.count == 1 || predictionShape.reduce(1, *) == 1 else {
                throw TrainingError("metric accuracy with integer labels needs predictions [B, C] or [B, 1], the model gives [B] + \(predictionShape)")
            }
        default:
            break
        }
    }

    /// The sum of the scores of a batch and how many there were (samples, rows or elements).
    func score(_ predictions: Tensor, _ targets: Targets, logits: Bool) -> (sum: Double, count: Int) {
        switch self {
        case .accuracy:
            let columns = predictions.shape.last ?? 1
            if predictions.count == predictions.shape[0] || columns == 1 {
                // One output per sample (or per row): a yes/no decision.
                let threshold: Float = logits ? 0 : 0.5
                let p = predictions.scalars
                let truth: [Bool] = switch targets {
                case .labels(let l): l.map { $0 == 1 }
                case .values(let t): t.scalars.map { $0 >= 0.5 }
                }
                return (Double(zip(p, truth).filter { ($0 > threshold) == $1 }.count), p.count)
            }
            let predicted = predictions.argmax(alongAxis: -1)
            let truth: [Int] = switch targets {
            case .labels(let l): l
            case .values(let t): t.argmax(alongAxis: -1)
            }
            return (Double(zip(predicted, truth).filter { $0 == $1 }.count), predicted.count)
        case .topKAccuracy(let k):
            guard case .labels(let labels) = targets else { return (0, 0) }
            return (Double(Metrics.topKHits(predictions, labels: labels, k: k)), labels.count)
        case .meanSquaredError, .meanAbsoluteError:
            guard case .values(let t) = targets else { return (0, 0) }
            let p = predictions.scalars, v = t.scalars
            var sum = 0.0
            for i in p.indices {
                let d = Double(p[i]) - Double(v[i])
                sum += self == .meanSquaredError ? d * d : Swift.abs(d)
            }
            return (sum, p.count)
        }
    }
}
