import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// SGD against PyTorch's `torch.optim.SGD` rule, computed in Float64.
final class SGDTests: XCTestCase {
    func testPlainSGDMatchesReference() {
        checkOptimizerAgainstReference(SGD(learningRate: 0.1), reference: ReferenceSGD(), learningRate: { _ in 0.1 })
    }

    func testMomentumMatchesReference() {
        checkOptimizerAgainstReference(SGD(learningRate: 0.05, momentum: 0.9),
                                       reference: ReferenceSGD(momentum: 0.9), learningRate: { _ in 0.05 })
    }

    func testNesterovMatchesReference() {
        checkOptimizerAgainstReference(SGD(learningRate: 0.05, momentum: 0.8, nesterov: true),
                                       reference: ReferenceSGD(momentum: 0.8, nesterov: true), learningRate: { _ in 0.05 })
    }

    func testWeightDecayWithMomentumMatchesReference() {
        checkOptimizerAgainstReference(SGD(learningRate: 0.1, momentum: 0.5, weightDecay: 0.01),
                                       reference: ReferenceSGD(momentum: 0.5, weightDecay: 0.01), learningRate: { _ in 0.1 })
    }

    func testWeightDecayWithoutMomentumMatchesReference() {
        checkOptimizerAgainstReference(SGD(learningRate: 0.1, weightDecay: 0.3),
                                       reference: ReferenceSGD(weightDecay: 0.3), learningRate: { _ in 0.1 })
    }

    func testFirstMomentumStepIsAPlainStep() {
        // PyTorch starts the buffer at the first gradient, so step 1 is w - lr*g whatever the momentum.
        let p = Parameter(name: "w", value: Tensor([1, -2]))
        p.accumulateGradient(Tensor([0.5, 4]))
        SGD(learningRate: 0.1, momentum: 0.9).step([p])
        assertClose(p.value.scalars, [0.95, -2.4])
    }
}
