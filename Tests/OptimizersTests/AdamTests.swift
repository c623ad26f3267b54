import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Adam and AdamW against PyTorch's rules (bias-corrected), computed in Float64.
final class AdamTests: XCTestCase {
    func testAdamMatchesReference() {
        checkOptimizerAgainstReference(Adam(learningRate: 0.01), reference: ReferenceAdam(), learningRate: { _ in 0.01 })
    }

    func testAdamWithPyTorchEpsilonAndOtherBetasMatchesReference() {
        checkOptimizerAgainstReference(Adam(learningRate: 0.02, beta1: 0.5, beta2: 0.9, epsilon: 1e-8),
                                       reference: ReferenceAdam(beta1: 0.5, beta2: 0.9, epsilon: 1e-8),
                                       learningRate: { _ in 0.02 })
    }

    func testAMSGradMatchesReference() {
        checkOptimizerAgainstReference(Adam(learningRate: 0.01, beta2: 0.9, amsgrad: true),
                                       reference: ReferenceAdam(beta2: 0.9, amsgrad: true), steps: 10,
                                       learningRate: { _ in 0.01 })
    }

    func testAMSGradDiffersFromAdamWhenTheGradientShrinks() {
        // The fixture's gradient scale falls from 4 to 0.3 at step 4: v drops, its maximum does not.
        let run = { (optimizer: Adam) -> Tensor in
            let parameters = makeFixtureParameters()
            for step in 0..<5 {
                setFixtureGradients(parameters, step: step)
                optimizer.step(parameters)
            }
            return parameters[0].value
        }
        XCTAssertNotEqual(run(Adam(learningRate: 0.01, beta2: 0.9)), run(Adam(learningRate: 0.01, beta2: 0.9, amsgrad: true)))
    }

    func testFirstAdamStepMovesEachWeightByTheLearningRate() {
        // With bias correction, step 1 is w - lr * g / (|g| + eps): a move of lr against the sign.
        let p = Parameter(name: "w", value: Tensor([1, -2, 3]))
        p.accumulateGradient(Tensor([0.5, -40, 1e-3]))
        Adam(learningRate: 0.1, epsilon: 1e-8).step([p])
        assertClose(p.value.scalars, [0.9, -1.9, 2.9], rtol: 1e-5, atol: 1e-5)
    }

    func testAdamWMatchesReference() {
        checkOptimizerAgainstReference(AdamW(learningRate: 0.01, weightDecay: 0.1),
                                       reference: ReferenceAdam(weightDecay: 0.1), learningRate: { _ in 0.01 })
    }

    func testAdamWWithAMSGradMatchesReference() {
        checkOptimizerAgainstReference(AdamW(learningRate: 0.01, epsilon: 1e-8, weightDecay: 0.05, amsgrad: true),
                                       reference: ReferenceAdam(epsilon: 1e-8, amsgrad: true, weightDecay: 0.05),
                                       learningRate: { _ in 0.01 })
    }

    func testAdamWDecaysWeightsWithZeroGradient() {
        // Decoupled decay acts even where the gradient (and so the Adam step) is zero.
        let p = Parameter(name: "w", value: Tensor([2, -4]))
        let optimizer = AdamW(learningRate: 0.1, weightDecay: 0.5)
        XCTAssertEqual(optimizer.weightDecay, 0.5)
        optimizer.step([p])
        assertClose(p.value.scalars, [1.9, -3.8])
    }
}
