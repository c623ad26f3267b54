import Foundation
import Layers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// The vectorised path of `BinaryCrossEntropy` (probabilities against target tensors) against a
/// Float64 reference of Keras' formula, with sample weights and clipped predictions.
final class BinaryCrossEntropyTests: XCTestCase {
    func testProbabilitiesAgainstTargetTensorsMatchAFloat64Reference() {
        let (batch, width) = (6, 50)
        var p = randomScalars(batch * width, seed: 1).map { ($0 + 1) / 2 }
        p[3] = 0; p[7] = 1; p[11] = 1e-9
        let t = randomScalars(batch * width, seed: 2).map { ($0 + 1) / 2 }
        let weights: [Float] = [1, 0.5, 2, 0, 1, 3]
        let result = BinaryCrossEntropy()(Tensor(shape: [batch, width], scalars: p), targets: Tensor(shape: [batch, width], scalars: t),
                                          sampleWeights: weights)
        let eps = Double(BinaryCrossEntropy.epsilon)
        var expected = 0.0
        var gradient = [Double](repeating: 0, count: batch * width)
        for s in 0..<batch {
            let scale = Double(weights[s]) / Double(batch * width)
            for j in (s * width)..<((s + 1) * width) {
                let raw = Double(p[j]), tj = Double(t[j])
                let q = min(max(raw, eps), 1 - eps)
                expected += scale * -(tj * log(q) + (1 - tj) * log(1 - q))
                gradient[j] = raw >= eps && raw <= 1 - eps ? scale * (q - tj) / (q * (1 - q)) : 0
            }
        }
        XCTAssertEqual(Double(result.loss), expected, accuracy: 1e-5 * abs(expected))
        assertClose(result.gradient.scalars, gradient, rtol: 1e-4, atol: 1e-7)
    }
}
