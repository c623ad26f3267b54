import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class LossTests: XCTestCase {
    let logits = Tensor(shape: [4, 3], scalars: randomScalars(12, seed: 21).map { $0 * 3 })
    let labels = [2, 0, 1, 2]

    /// -log softmax(z)[y] in Float64.
    func crossEntropy(_ z: [Float], _ q: [Double]) -> Double {
        let m = Double(z.max()!)
        let logSum = log(z.reduce(0.0) { $0 + exp(Double($1) - m) }) + m
        return zip(z, q).reduce(0.0) { $0 - $1.1 * (Double($1.0) - logSum) }
    }

    func row(_ t: Tensor, _ r: Int) -> [Float] { Array(t.scalars[(r * 3)..<(r * 3 + 3)]) }

    func testSoftmaxCrossEntropyWithLabels() {
        let loss = SoftmaxCrossEntropy()
        let result = loss(logits, labels: labels)
        let expected = (0..<4).reduce(0.0) { s, r in
            s + crossEntropy(row(logits, r), (0..<3).map { $0 == labels[r] ? 1 : 0 })
        } / 4
        XCTAssertEqual(Double(result.loss), expected, accuracy: 1e-5)
        checkGradient(of: { Double(loss($0, labels: self.labels).loss) }, at: logits, analytic: result.gradient, epsilon: 1e-3)
        // The gradient is (softmax - onehot) / B.
        let p = logits.softmax()
        XCTAssertEqual(Double(result.gradient[1, 0]), (Double(p[1, 0]) - 1) / 4, accuracy: 1e-6)
    }

    func testSoftmaxCrossEntropyWithProbabilityTargetsAndSmoothing() {
        let oneHot = Tensor(shape: [4, 3], scalars: labels.flatMap { y in (0..<3).map { Float($0 == y ? 1 : 0) } })
        XCTAssertEqual(SoftmaxCrossEntropy()(logits, targets: oneHot).loss, SoftmaxCrossEntropy()(logits, labels: labels).loss,
                       accuracy: 1e-6)
        let soft = Tensor(shape: [4, 3], scalars: [0.2, 0.3, 0.5, 1, 0, 0, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4])
        let smoothing = SoftmaxCrossEntropy(labelSmoothing: 0.1)
        let result = smoothing(logits, targets: soft)
        let expected = (0..<4).reduce(0.0) { s, r in
            s + crossEntropy(row(logits, r), row(soft, r).map { 0.9 * Double($0) + 0.1 / 3 })
        } / 4
        XCTAssertEqual(Double(result.loss), expected, accuracy: 1e-5)
        checkGradient(of: { Double(smoothing($0, targets: soft).loss) }, at: logits, analytic: result.gradient, epsilon: 1e-3)
        // Smoothing applies to labels too: the same as smoothing one-hot rows.
        let fromLabels = smoothing(logits, labels: labels)
        let fromOneHot = smoothing(logits, targets: oneHot)
        XCTAssertEqual(fromLabels.loss, fromOneHot.loss, accuracy: 1e-6)
        assertClose(fromLabels.gradient, fromOneHot.gradient, rtol: 1e-5, atol: 1e-7)
        checkGradient(of: { Double(smoothing($0, labels: self.labels).loss) }, at: logits, analytic: fromLabels.gradient, epsilon: 1e-3)
    }

    func testSoftmaxCrossEntropyStaysFiniteForHugeLogits() {
        let z = Tensor(shape: [2, 2], scalars: [1000, 0, -1000, 1000])
        let result = SoftmaxCrossEntropy()(z, labels: [1, 1])
        XCTAssertEqual(result.loss, 500, accuracy: 1e-3, "(1000 + 0) / 2")
        XCTAssertTrue(result.gradient.scalars.allSatisfy(\.isFinite))
    }

    func testBinaryCrossEntropyFromLogitsIsStable() {
        let z = Tensor(shape: [3, 2], scalars: [-2, 0.5, 3, -0.1, 100, -100])
        let t = Tensor(shape: [3, 2], scalars: [0, 1, 1, 0, 0, 0])
        let loss = BinaryCrossEntropy(fromLogits: true)
        let result = loss(z, targets: t)
        var expected = 0.0
        for (zi, ti) in zip(z.scalars.map(Double.init), t.scalars.map(Double.init)) {
            // log(1 + e^z) - z t, written to avoid overflow for z = 100.
            expected += (zi > 0 ? zi + log1p(exp(-zi)) : log1p(exp(zi))) - zi * ti
        }
        XCTAssertEqual(Double(result.loss), expected / 6, accuracy: 1e-5)
        XCTAssertEqual(Double(result.loss) * 6, expected, accuracy: 1e-4, "z = 100 with target 0 contributes 100, not inf")
        let smooth = Tensor(shape: [3, 2], scalars: [-2, 0.5, 3, -0.1, 1.5, -1])
        checkGradient(of: { Double(loss($0, targets: t).loss) }, at: smooth, analytic: loss(smooth, targets: t).gradient, epsilon: 1e-3)
        // 0/1 labels work for one output per sample.
        let single = Tensor(shape: [3, 1], scalars: [2, -1, 0.3])
        XCTAssertEqual(loss(single, labels: [1, 0, 1]).loss, loss(single, targets: Tensor(shape: [3, 1], scalars: [1, 0, 1])).loss)
    }

    func testBinaryCrossEntropyFromProbabilitiesClipsLikeKeras() {
        let loss = BinaryCrossEntropy()
        let p = Tensor(shape: [4, 1], scalars: [0, 1, 0.3, 0.9])
        let t = Tensor(shape: [4, 1], scalars: [1, 0, 1, 0])
        let result = loss(p, targets: t)
        let eps = 1e-7
        let expected = (-log(eps) - log(eps) - log(0.3) - log(0.1)) / 4
        XCTAssertEqual(Double(result.loss), expected, accuracy: 1e-3)
        XCTAssertEqual(result.gradient[0, 0], 0, "clipped predictions get no gradient")
        let inside = Tensor(shape: [4, 1], scalars: [0.2, 0.6, 0.3, 0.9])
        checkGradient(of: { Double(loss($0, targets: t).loss) }, at: inside, analytic: loss(inside, targets: t).gradient, epsilon: 1e-3)
    }

    func testRegressionLosses() {
        let p = Tensor(shape: [3, 2], scalars: [0.5, -1, 2, 0.25, -0.75, 3])
        let t = Tensor(shape: [3, 2], scalars: [1, -1.5, 1, 1, 0, 2])
        let d = zip(p.scalars, t.scalars).map { Double($0) - Double($1) }
        let mse = MeanSquaredError(), mae = MeanAbsoluteError()
        XCTAssertEqual(Double(mse(p, targets: t).loss), d.reduce(0) { $0 + $1 * $1 } / 6, accuracy: 1e-6)
        XCTAssertEqual(Double(mae(p, targets: t).loss), d.reduce(0) { $0 + abs($1) } / 6, accuracy: 1e-6)
        checkGradient(of: { Double(mse($0, targets: t).loss) }, at: p, analytic: mse(p, targets: t).gradient, epsilon: 1e-3)
        checkGradient(of: { Double(mae($0, targets: t).loss) }, at: p, analytic: mae(p, targets: t).gradient, epsilon: 1e-3)
    }

    /// A batch large enough to be spread over the pool (an autoencoder's 128 x 784): the loss and
    /// gradient of each element-wise loss match a Float64 reference, with sample weights, and are
    /// the same bits on one thread as on all.
    func testRegressionLossesOfALargeBatchMatchTheReferenceOnAnyThreadCount() {
        var generator = SeededGenerator(seed: 7)
        let (batch, perSample) = (131, 397)
        let p = Tensor(shape: [batch, perSample], scalars: (0..<batch * perSample).map { _ in Float.random(in: -2...2, using: &generator) })
        let t = Tensor(shape: [batch, perSample], scalars: (0..<batch * perSample).map { _ in Float.random(in: -2...2, using: &generator) })
        let weights = (0..<batch).map { Float($0 % 5) * 0.5 }
        let pv = p.scalars, tv = t.scalars
        for (loss, f) in [(MeanSquaredError() as any Loss, { (d: Double) in (d * d, 2 * d) }),
                          (MeanAbsoluteError() as any Loss, { (d: Double) in (abs(d), d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) })] {
            let all = loss(p, targets: t, sampleWeights: weights)
            let one = ThreadPool.withWidthLimit(1) { loss(p, targets: t, sampleWeights: weights) }
            XCTAssertEqual(all.loss.bitPattern, one.loss.bitPattern, "\(loss.name): the loss differs between 1 and all threads")
            XCTAssertEqual(all.gradient.scalars.map(\.bitPattern), one.gradient.scalars.map(\.bitPattern), "\(loss.name): gradient")
            var expected = 0.0
            var mismatches = 0
            let gradient = all.gradient.scalars
            for s in 0..<batch {
                let scale = Double(weights[s]) / Double(batch * perSample)
                for j in (s * perSample)..<((s + 1) * perSample) {
                    let (l, d) = f(Double(pv[j]) - Double(tv[j]))
                    expected += scale * l
                    if gradient[j] != Float(scale * d) { mismatches += 1 }
                }
            }
            XCTAssertEqual(Double(all.loss), expected, accuracy: 1e-6 * abs(expected), loss.name)
            XCTAssertEqual(mismatches, 0, "\(loss.name): gradient elements that differ from the reference")
        }
    }

    func testSampleWeightsScaleEachSamplesLoss() {
        let weights: [Float] = [2, 0, 1, 0.5]
        let plain = SoftmaxCrossEntropy()(logits, labels: labels)
        let weighted = SoftmaxCrossEntropy()(logits, labels: labels, sampleWeights: weights)
        var expected = 0.0
        for r in 0..<4 {
            expected += Double(weights[r]) * crossEntropy(row(logits, r), (0..<3).map { $0 == labels[r] ? 1 : 0 })
        }
        XCTAssertEqual(Double(weighted.loss), expected / 4, accuracy: 1e-5, "Σ w l / B, as Keras")
        for c in 0..<3 {
            XCTAssertEqual(weighted.gradient[0, c], 2 * plain.gradient[0, c], accuracy: 1e-7)
            XCTAssertEqual(weighted.gradient[1, c], 0)
        }
        let p = Tensor(shape: [4, 1], scalars: [1, 2, 3, 4]), t = Tensor.zeros([4, 1])
        XCTAssertEqual(MeanSquaredError()(p, targets: t, sampleWeights: weights).loss, (2 + 0 + 9 + 8) / 4, accuracy: 1e-6)
    }

    func testValidationRejectsTargetsThatDoNotFit() {
        XCTAssertThrowsError(try SoftmaxCrossEntropy().validate(predictionShape: [3], targets: .labels([0, 3]))) { error in
            XCTAssertTrue("\(error)".contains("label 3 at index 1"), "\(error)")
        }
        XCTAssertThrowsError(try MeanSquaredError().validate(predictionShape: [1], targets: .labels([0, 1])))
        XCTAssertThrowsError(try BinaryCrossEntropy().validate(predictionShape: [1], targets: .labels([0, 2])))
        XCTAssertThrowsError(try MeanAbsoluteError().validate(predictionShape: [2], targets: .values(Tensor.zeros([5, 3])))) { error in
            XCTAssertTrue("\(error)".contains("[5, 3]") && "\(error)".contains("[2]"), "\(error)")
        }
        XCTAssertNoThrow(try SoftmaxCrossEntropy().validate(predictionShape: [3], targets: .labels([0, 2])))
    }
}
