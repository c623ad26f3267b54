import Foundation
import Layers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// The Keras-named cross-entropies from probabilities against a Float64 reference of Keras'
/// formula, and their gradients against central differences of that reference (in Float64, with
/// steps small enough not to cross the clip at 1e-7), on rows near 0 and 1, clipped and unnormalised.
final class CategoricalCrossentropyTests: XCTestCase {
    /// Rows of 3 classes: softmax rows, values near 0 and 1 (inside the clip), a saturated row
    /// (clipped) and a row that does not sum to 1.
    let probabilities: Tensor = {
        let soft = Tensor(shape: [3, 3], scalars: randomScalars(9, seed: 4).map { $0 * 4 }).softmax().scalars
        return Tensor(shape: [7, 3], scalars: soft + [2e-6, 1 - 3e-6, 1e-6,
                                                      0, 1, 0,
                                                      0.2, 0.6, 0.4,
                                                      1e-9, 0.5, 0.5])
    }()
    let labels = [2, 0, 1, 2, 0, 1, 0]
    let weights: [Float] = [1, 0.5, 2, 1, 3, 0, 1]

    /// Keras' categorical cross-entropy of one batch in Float64: rows scaled to sum 1, clipped to
    /// [1e-7, 1 - 1e-7], `-Σ q log`, weighted, divided by the number of rows.
    func reference(_ p: [Double], _ q: [Double], weights: [Float]?, classes: Int = 3) -> Double {
        let rows = p.count / classes
        var total = 0.0
        for r in 0..<rows {
            let row = Array(p[(r * classes)..<((r + 1) * classes)])
            let s = row.reduce(0, +)
            var loss = 0.0
            for k in 0..<classes {
                let c = min(max(row[k] / s, 1e-7), 1 - 1e-7)
                loss -= q[r * classes + k] * log(c)
            }
            total += Double(weights?[r] ?? 1) * loss
        }
        return total / Double(rows)
    }

    /// Central differences of `f` at `p` in Float64: inside the clip a step of 1e-4 of the
    /// distance to 0 or 1 (so it stays inside), outside it 1e-8 (it stays outside).
    func numericGradient(_ f: ([Double]) -> Double, at p: [Double]) -> [Double] {
        (0..<p.count).map { i in
            let inside = p[i] >= 1e-7 && p[i] <= 1 - 1e-7
            let h = inside ? 1e-4 * min(p[i], 1 - p[i]) : 1e-8
            var plus = p, minus = p
            plus[i] += h
            minus[i] -= h
            return (f(plus) - f(minus)) / (2 * h)
        }
    }

    func oneHot(_ labels: [Int], smoothing: Double = 0) -> [Double] {
        labels.flatMap { y in (0..<3).map { ($0 == y ? 1 - smoothing : 0) + smoothing / 3 } }
    }

    func testCategoricalCrossentropyFromProbabilitiesMatchesAFloat64Reference() {
        let p = probabilities.scalars.map(Double.init)
        for smoothing in [0.0, 0.1] {
            let loss = CategoricalCrossentropy(labelSmoothing: Float(smoothing))
            let q = oneHot(labels, smoothing: smoothing)
            let result = loss(probabilities, labels: labels, sampleWeights: weights)
            let expected = reference(p, q, weights: weights)
            XCTAssertEqual(Double(result.loss), expected, accuracy: 1e-6 * expected)
            let numeric = numericGradient({ self.reference($0, q, weights: self.weights) }, at: p)
            assertClose(result.gradient.scalars, numeric, rtol: 1e-4, atol: 1e-6)
            // One-hot target rows give what labels give.
            let rows = Tensor(shape: [7, 3], scalars: oneHot(labels).map(Float.init))
            let fromRows = loss(probabilities, targets: rows, sampleWeights: weights)
            XCTAssertEqual(fromRows.loss, result.loss, accuracy: 1e-6 * result.loss)
            assertClose(fromRows.gradient, result.gradient, rtol: 1e-5, atol: 1e-7)
        }
        // The saturated row with the wrong class is clipped: -log(1e-7), and no gradient through
        // the clip for the clipped entries.
        let saturated = CategoricalCrossentropy()(Tensor(shape: [1, 3], scalars: [0, 1, 0]), labels: [0])
        XCTAssertEqual(Double(saturated.loss), -log(1e-7), accuracy: 1e-4)
        XCTAssertEqual(saturated.gradient.scalars, [0, 0, 0])
    }

    func testCategoricalCrossentropyWithProbabilityTargets() {
        let soft: [Float] = [0.2, 0.3, 0.5, 1, 0, 0, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4, 0, 0.5, 0.5, 0.25, 0.25, 0.5, 0.6, 0.2, 0.2]
        let targets = Tensor(shape: [7, 3], scalars: soft)
        let p = probabilities.scalars.map(Double.init), q = soft.map(Double.init)
        let result = CategoricalCrossentropy()(probabilities, targets: targets)
        let expected = reference(p, q, weights: nil)
        XCTAssertEqual(Double(result.loss), expected, accuracy: 1e-6 * expected)
        assertClose(result.gradient.scalars, numericGradient({ self.reference($0, q, weights: nil) }, at: p), rtol: 1e-4, atol: 1e-6)
    }

    func testSparseCategoricalCrossentropyIsCategoricalWithLabels() throws {
        let sparse = SparseCategoricalCrossentropy()(probabilities, labels: labels, sampleWeights: weights)
        let categorical = CategoricalCrossentropy()(probabilities, labels: labels, sampleWeights: weights)
        XCTAssertEqual(sparse.loss, categorical.loss)
        XCTAssertEqual(sparse.gradient.scalars, categorical.gradient.scalars)
        let rows = Tensor(shape: [7, 3], scalars: oneHot(labels).map(Float.init))
        XCTAssertThrowsError(try SparseCategoricalCrossentropy().validate(predictionShape: [3], targets: .values(rows)))
        XCTAssertThrowsError(try SparseCategoricalCrossentropy().validate(predictionShape: [3], targets: .labels([3])))
        XCTAssertNoThrow(try SparseCategoricalCrossentropy().validate(predictionShape: [3], targets: .labels(labels)))
    }

    func testFromLogitsIsSoftmaxCrossEntropy() {
        let logits = Tensor(shape: [4, 3], scalars: randomScalars(12, seed: 8).map { $0 * 3 })
        let labels = [0, 2, 1, 1]
        let fused = SoftmaxCrossEntropy(labelSmoothing: 0.1)(logits, labels: labels)
        for loss in [CategoricalCrossentropy(fromLogits: true, labelSmoothing: 0.1)(logits, labels: labels)] {
            XCTAssertEqual(loss.loss, fused.loss)
            XCTAssertEqual(loss.gradient.scalars, fused.gradient.scalars)
        }
        let sparse = SparseCategoricalCrossentropy(fromLogits: true)(logits, labels: labels)
        XCTAssertEqual(sparse.loss, SoftmaxCrossEntropy()(logits, labels: labels).loss)
        // From probabilities, the softmax of the logits gives the same loss.
        XCTAssertEqual(CategoricalCrossentropy()(logits.softmax(), labels: labels).loss,
                       SoftmaxCrossEntropy()(logits, labels: labels).loss, accuracy: 1e-5)
    }

    func testBinaryCrossentropyFromProbabilitiesNearZeroAndOne() {
        let p: [Float] = [1e-6, 1 - 2e-6, 0.3, 0.999, 2e-7, 0.5]
        let t: [Float] = [1, 0, 1, 1, 0, 0.25]
        func reference(_ p: [Double]) -> Double {
            zip(p, t).reduce(0.0) { s, e in
                let q = min(max(e.0, 1e-7), 1 - 1e-7), t = Double(e.1)
                return s - (t * log(q) + (1 - t) * log(1 - q))
            } / Double(p.count)
        }
        let loss: BinaryCrossentropy = BinaryCrossentropy()
        XCTAssertFalse(loss.fromLogits)
        let pd = p.map(Double.init)
        for (predictions, targets) in [(Tensor(shape: [6, 1], scalars: p), Tensor(shape: [6, 1], scalars: t)),
                                       (Tensor(shape: [1, 6], scalars: p), Tensor(shape: [1, 6], scalars: t))] {
            let result = loss(predictions, targets: targets)
            XCTAssertEqual(Double(result.loss), reference(pd), accuracy: 1e-5 * reference(pd))
            assertClose(result.gradient.scalars, numericGradient(reference, at: pd), rtol: 1e-4, atol: 1e-6)
        }
    }

    func testNamesAreKeras() {
        XCTAssertEqual(CategoricalCrossentropy().name, "categorical_crossentropy")
        XCTAssertEqual(CategoricalCrossentropy(fromLogits: true).name, "categorical_crossentropy")
        XCTAssertEqual(SparseCategoricalCrossentropy().name, "sparse_categorical_crossentropy")
        XCTAssertEqual(BinaryCrossentropy().name, "binary_crossentropy")
        XCTAssertTrue(CategoricalCrossentropy().isClassification && SparseCategoricalCrossentropy().isClassification)
    }
}
