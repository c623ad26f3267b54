import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// `ExponentialMovingAverage` against a Float64 average written from the formula, over the
/// weights a recording callback saw after every step of a real `fit` (batch normalisation's
/// moving statistics included).
final class ExponentialMovingAverageTests: XCTestCase {
    /// Records every weight after each step, as Float64.
    private final class WeightRecorder: Callback {
        var steps: [[String: [Double]]] = []
        func onBatchEnd(_ step: Int, logs: [String: Double], context: TrainingContext) throws {
            steps.append(context.model.weights().mapValues { $0.scalars.map(Double.init) })
        }
    }

    private func model() -> Sequential {
        let model = Sequential(inputShape: [2]) {
            Dense(7, activation: .tanh)
            BatchNormalization()
            Dense(2)
        }
        model.compile(optimizer: Adam(learningRate: 0.05), loss: SoftmaxCrossEntropy())
        return model
    }

    /// The reference: `a ← d a + (1 - d) w` from the first step's weights, with
    /// `d = min(decay, (1 + n) / (10 + n))` when warming up (n: steps averaged so far).
    private func reference(_ steps: [[String: [Double]]], decay: Double, warmUp: Bool) -> [String: [Double]] {
        var average = steps[0]
        for (n, weights) in steps.enumerated().dropFirst() {
            let d = warmUp ? min(decay, Double(1 + n) / Double(10 + n)) : decay
            for (name, w) in weights {
                average[name] = zip(average[name]!, w).map { d * $0 + (1 - d) * $1 }
            }
        }
        return average
    }

    func testAveragesMatchTheFormulaWithAndWithoutWarmUp() throws {
        let (x, y) = spiralData(perClass: 30, seed: 3)  // 60 samples in batches of 8: a short last batch
        for warmUp in [true, false] {
            let net = model()
            let recorder = WeightRecorder()
            let average = ExponentialMovingAverage(decay: 0.9, warmUp: warmUp)
            try net.fit(x: x, y: y, epochs: 3, batchSize: 8, seed: 5, callbacks: [recorder, average], verbose: 0)
            XCTAssertEqual(recorder.steps.count, 24)
            XCTAssertEqual(average.steps, 24)
            let expected = reference(recorder.steps, decay: 0.9, warmUp: warmUp)
            XCTAssertEqual(Set(average.averages.keys), Set(expected.keys))
            XCTAssertTrue(expected.keys.contains { $0.contains("moving") }, "batch normalisation's statistics are averaged: \(expected.keys)")
            for (name, values) in expected {
                assertClose(average.averages[name]!.scalars, values, rtol: 1e-5, atol: 1e-6, "\(name), warm-up \(warmUp)")
            }
            // The control: the average is not simply the last weights.
            let last = recorder.steps.last!
            let differs = expected.contains { name, values in zip(values, last[name]!).contains { abs($0 - $1) > 1e-3 } }
            XCTAssertTrue(differs, "the average must lag the last weights")
        }
    }

    func testWarmUpLowersTheEarlyDecay() {
        let average = ExponentialMovingAverage(decay: 0.999)
        XCTAssertEqual(average.currentDecay, 0.1, accuracy: 1e-12)  // (1 + 0) / (10 + 0)
        XCTAssertEqual(ExponentialMovingAverage(decay: 0.05).currentDecay, 0.05)
        XCTAssertEqual(ExponentialMovingAverage(decay: 0.999, warmUp: false).currentDecay, 0.999)
    }

    func testAveragesSpanSeveralFitCallsAndApplyLoadsThem() throws {
        let (x, y) = spiralData(perClass: 16, seed: 2)
        // One fit of two epochs against two fits of one epoch each: the same averages.
        let whole = model(), split = model()
        let one = ExponentialMovingAverage(decay: 0.8), two = ExponentialMovingAverage(decay: 0.8)
        try whole.fit(x: x, y: y, epochs: 2, batchSize: 16, seed: 9, callbacks: [one], verbose: 0)
        try split.fit(x: x, y: y, epochs: 1, batchSize: 16, seed: 9, callbacks: [two], verbose: 0)
        try split.fit(x: x, y: y, epochs: 2, initialEpoch: 1, batchSize: 16, seed: 9, callbacks: [two], verbose: 0)
        XCTAssertEqual(one.steps, two.steps)
        for (name, value) in one.averages { assertClose(two.averages[name]!, value, rtol: 1e-6, atol: 1e-7, name) }

        let own = whole.weights()
        XCTAssertTrue(one.averages.contains { own[$0.key]?.scalars != $0.value.scalars },
                      "before apply the model keeps its own weights")
        try one.apply(to: whole)
        for (name, value) in whole.weights() { XCTAssertEqual(value.scalars, one.averages[name]!.scalars, name) }

        one.reset()
        XCTAssertEqual(one.steps, 0)
        XCTAssertThrowsError(try one.apply(to: whole)) { XCTAssertTrue($0 is LayerError, "\($0)") }
        // Averages of another model do not fit: a typed error, and the model is unchanged.
        let other = Sequential(inputShape: [2]) { Dense(4) }
        let before = whole.weights()
        XCTAssertThrowsError(try two.apply(to: other)) { XCTAssertTrue($0 is LayerError, "\($0)") }
        XCTAssertEqual(whole.weights().mapValues(\.scalars), before.mapValues(\.scalars))
    }
}
