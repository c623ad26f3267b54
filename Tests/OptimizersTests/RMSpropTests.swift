import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// RMSprop against Keras' rule, computed in Float64.
final class RMSpropTests: XCTestCase {
    func testRMSpropMatchesReference() {
        checkOptimizerAgainstReference(RMSprop(learningRate: 0.01), reference: ReferenceRMSprop(), learningRate: { _ in 0.01 })
    }

    func testMomentumMatchesReference() {
        checkOptimizerAgainstReference(RMSprop(learningRate: 0.01, rho: 0.8, momentum: 0.9),
                                       reference: ReferenceRMSprop(rho: 0.8, momentum: 0.9), learningRate: { _ in 0.01 })
    }

    func testCenteredMatchesReference() {
        checkOptimizerAgainstReference(RMSprop(learningRate: 0.01, centered: true),
                                       reference: ReferenceRMSprop(centered: true), learningRate: { _ in 0.01 })
    }

    func testCenteredWithMomentumMatchesReference() {
        checkOptimizerAgainstReference(RMSprop(learningRate: 0.005, rho: 0.95, momentum: 0.5, epsilon: 1e-6, centered: true),
                                       reference: ReferenceRMSprop(rho: 0.95, momentum: 0.5, epsilon: 1e-6, centered: true),
                                       learningRate: { _ in 0.005 })
    }

    func testFirstStepDividesByTheRootOfTheScaledSquare() {
        // v = (1 - rho) g^2, so step 1 is w - lr * g / sqrt(0.1 g^2 + eps) ≈ w - lr * sign(g) * sqrt(10).
        let p = Parameter(name: "w", value: Tensor([1, 1]))
        p.accumulateGradient(Tensor([2, -0.5]))
        RMSprop(learningRate: 0.01, epsilon: 0).step([p])
        let move = 0.01 * 10.0.squareRoot()
        assertClose(p.value.scalars, [1 - move, 1 + move])
    }
}
