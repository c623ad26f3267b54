import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class DropoutTests: XCTestCase {
    private func built(_ rate: Float, seed: UInt64 = 1) throws -> Dropout {
        let dropout = Dropout(rate)
        var g = SeededGenerator(seed: seed)
        _ = try dropout.build(inputShape: [100], generator: &g)
        return dropout
    }

    func testInferenceIsTheIdentity() throws {
        let dropout = try built(0.5)
        let x = Tensor(shape: [4, 100], scalars: randomScalars(400, seed: 3))
        XCTAssertEqual(dropout.forward(x, training: false), x)
    }

    func testTrainingDropsTheRateAndScalesTheSurvivors() throws {
        let dropout = try built(0.3)
        let x = Tensor.ones([100, 100])
        let y = dropout.forward(x, training: true).scalars
        let zeros = y.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 10_000, 0.3, accuracy: 0.02)
        XCTAssertTrue(y.allSatisfy { $0 == 0 || $0 == 1 / Float(0.7) }, "survivors are scaled by 1 / (1 - rate)")
        XCTAssertEqual(Double(y.reduce(0, +)) / 10_000, 1, accuracy: 0.03, "the mean is kept")
    }

    func testBackwardUsesTheForwardsMask() throws {
        let dropout = try built(0.5)
        let x = Tensor(shape: [3, 100], scalars: randomScalars(300, seed: 4)) + 2  // no zeros in x
        let y = dropout.forward(x, training: true)
        let g = Tensor(shape: [3, 100], scalars: randomScalars(300, seed: 5))
        let dx = dropout.backward(g)
        let mask = y / x
        assertClose(dx, g * mask, rtol: 1e-5, atol: 1e-6)
        XCTAssertTrue(mask.scalars.contains { $0 == 0 } && mask.scalars.contains { $0 > 1.9 })
    }

    func testBackwardMatchesFiniteDifferencesForAFixedMask() throws {
        // A fresh layer with an explicit seed draws the same first mask, so the training-mode
        // forward is a fixed function of x that finite differences can probe.
        func fresh() throws -> Dropout {
            let dropout = Dropout(0.4, seed: 42)
            var g = SeededGenerator(seed: 0)
            _ = try dropout.build(inputShape: [6], generator: &g)
            return dropout
        }
        let x = Tensor(shape: [4, 6], scalars: randomScalars(24, seed: 6))
        let w = Tensor(shape: [4, 6], scalars: randomScalars(24, seed: 7))
        let layer = try fresh()
        _ = layer.forward(x, training: true)
        let dx = layer.backward(w)
        checkGradient(of: { x in
            do {
                return weightedSum(try fresh().forward(x, training: true), w)
            } catch {
                XCTFail("a fresh Dropout does not build: \(error)")
                return .nan
            }
        }, at: x, analytic: dx)
        XCTAssertTrue(dx.scalars.contains(0), "some elements are dropped")
    }

    func testTheSameSeedGivesTheSameMasks() throws {
        let x = Tensor.ones([2, 100])
        let a = try built(0.5, seed: 7), b = try built(0.5, seed: 7), c = try built(0.5, seed: 8)
        let first = a.forward(x, training: true)
        XCTAssertEqual(first, b.forward(x, training: true))
        XCTAssertNotEqual(first, c.forward(x, training: true))
        XCTAssertNotEqual(first, a.forward(x, training: true), "each forward draws a new mask")
        // An explicit seed fixes the stream whatever the model's generator.
        let d = Dropout(0.5, seed: 99), e = Dropout(0.5, seed: 99)
        var g1 = SeededGenerator(seed: 1), g2 = SeededGenerator(seed: 2)
        _ = try d.build(inputShape: [100], generator: &g1)
        _ = try e.build(inputShape: [100], generator: &g2)
        XCTAssertEqual(d.forward(x, training: true), e.forward(x, training: true))
    }

    func testRateZeroIsTheIdentityInTraining() throws {
        let dropout = try built(0)
        let x = Tensor(shape: [2, 100], scalars: randomScalars(200, seed: 1))
        XCTAssertEqual(dropout.forward(x, training: true), x)
        XCTAssertEqual(dropout.backward(x), x)
    }

    func testConfigRoundTrip() throws {
        let dropout = Dropout(rate: 0.25, seed: 5, name: "drop")
        let copy = try Dropout(config: dropout.config)
        XCTAssertEqual(copy.rate, 0.25)
        XCTAssertEqual(copy.seed, 5)
        XCTAssertEqual(copy.name, "drop")
        XCTAssertThrowsError(try Dropout(config: ["rate": .double(1.5)]))
    }
}
