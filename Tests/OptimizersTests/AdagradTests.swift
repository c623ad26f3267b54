import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Adagrad against Keras' rule, computed in Float64.
final class AdagradTests: XCTestCase {
    func testAdagradMatchesReference() {
        checkOptimizerAgainstReference(Adagrad(learningRate: 0.1), reference: ReferenceAdagrad(), learningRate: { _ in 0.1 })
    }

    func testOtherAccumulatorAndEpsilonMatchReference() {
        checkOptimizerAgainstReference(Adagrad(learningRate: 0.05, initialAccumulator: 0.01, epsilon: 1e-4),
                                       reference: ReferenceAdagrad(initialAccumulator: 0.01, epsilon: 1e-4),
                                       learningRate: { _ in 0.05 })
    }

    func testStepsShrinkAsSquaresAccumulate() {
        // The same gradient twice: the second move is smaller, by sqrt((0.1 + 1) / (0.1 + 2)).
        let p = Parameter(name: "w", value: Tensor([0]))
        p.accumulateGradient(Tensor([1]))
        let optimizer = Adagrad(learningRate: 1, epsilon: 0)
        optimizer.step([p])
        let first = -Double(p.value.scalar)
        optimizer.step([p])
        let second = -Double(p.value.scalar) - first
        XCTAssertEqual(first, 1 / 1.1.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(second, 1 / 2.1.squareRoot(), accuracy: 1e-6)
    }
}
