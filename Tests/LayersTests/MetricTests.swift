import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class MetricTests: XCTestCase {
    // Rows' predicted classes: 2, 0, 1, 1, 2.
    let scores = Tensor(shape: [5, 3], scalars: [0.1, 0.3, 0.6,
                                                 0.8, 0.15, 0.05,
                                                 0.2, 0.7, 0.1,
                                                 0.4, 0.45, 0.15,
                                                 0.3, 0.3, 0.4])
    let labels = [2, 0, 0, 1, 1]

    func testAccuracyAndTopK() {
        XCTAssertEqual(Metrics.predictedClasses(scores), [2, 0, 1, 1, 2])
        XCTAssertEqual(Metrics.accuracy(scores, labels: labels), 3.0 / 5)
        XCTAssertEqual(Metrics.topKAccuracy(scores, labels: labels, k: 1), 3.0 / 5)
        // Row 2 (label 0, second best) and row 4 (label 1, tied for second) come in at k = 2.
        XCTAssertEqual(Metrics.topKAccuracy(scores, labels: labels, k: 2), 1)
        XCTAssertEqual(Metrics.topKAccuracy(scores, labels: [0, 1, 2, 2, 0], k: 3), 1)
        XCTAssertEqual(Metrics.topKAccuracy(scores, labels: [0, 1, 2, 2, 0], k: 1), 0)
    }

    func testBinaryAccuracyThresholds() {
        let p = Tensor(shape: [4, 1], scalars: [0.2, 0.7, -0.5, 0.45])
        let t = Tensor(shape: [4, 1], scalars: [0, 1, 0, 1])
        XCTAssertEqual(Metrics.binaryAccuracy(p, targets: t), 0.75)
        XCTAssertEqual(Metrics.binaryAccuracy(p, targets: t, threshold: 0), 0.75, "0.2 > 0 counts as 1 for logits")
    }

    func testConfusionMatrixAndPerClassScores() {
        // scikit-learn's classification_report on these labels gives the values below.
        let matrix = ConfusionMatrix(predictions: scores, labels: labels)
        XCTAssertEqual(matrix.counts, [[1, 1, 0],
                                       [0, 1, 1],
                                       [0, 0, 1]])
        XCTAssertEqual(matrix.support, [2, 2, 1])
        XCTAssertEqual(matrix.accuracy, 0.6)
        assertClose(matrix.precision.map(Float.init), [1, 0.5, 0.5])
        assertClose(matrix.recall.map(Float.init), [0.5, 0.5, 1])
        assertClose(matrix.f1.map(Float.init), [2.0 / 3, 0.5, 2.0 / 3])
        XCTAssertEqual(matrix.macroPrecision, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(matrix.macroRecall, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(matrix.macroF1, (2.0 / 3 + 0.5 + 2.0 / 3) / 3, accuracy: 1e-12)
        XCTAssertEqual(matrix.description, "1 1 0\n0 1 1\n0 0 1".split(separator: "\n").map { " " + $0 }.joined(separator: "\n"))
    }

    func testScoresOfAClassNeverPredictedAreZero() {
        let matrix = ConfusionMatrix(predicted: [0, 0, 0], actual: [0, 1, 1], classes: 3)
        XCTAssertEqual(matrix.precision, [1.0 / 3, 0, 0])
        XCTAssertEqual(matrix.recall, [1, 0, 0])
        XCTAssertEqual(matrix.f1[1], 0)
        XCTAssertEqual(matrix.support, [1, 2, 0])
    }

    func testMetricNamesAreTheLogKeys() {
        XCTAssertEqual(Metric.accuracy.name, "accuracy")
        XCTAssertEqual(Metric.topKAccuracy(k: 5).name, "top_5_accuracy")
        XCTAssertEqual(Metric.meanSquaredError.name, "mse")
        XCTAssertEqual(Metric.meanAbsoluteError.name, "mae")
    }
}
