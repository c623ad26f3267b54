import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Sanity: each optimizer drives a simple objective to its minimum.
final class ConvergenceTests: XCTestCase {
    /// Minimises `f` from `start` with `optimizer` for `steps` steps, where `gradient` gives ∇f.
    private func minimise(_ optimizer: some Optimizer, from start: [Float], steps: Int,
                          gradient: ([Float]) -> [Float]) -> [Float] {
        let p = Parameter(name: "x", value: Tensor(start))
        for _ in 0..<steps {
            p.zeroGradient()
            p.accumulateGradient(Tensor(gradient(p.value.scalars)))
            optimizer.step([p])
        }
        return p.value.scalars
    }

    /// f(x) = Σ cᵢ (xᵢ − tᵢ)²: an ill-conditioned bowl (curvatures 0.5 to 20) with minimum at t.
    private let curvature: [Float] = [0.5, 2, 20, 5]
    private let target: [Float] = [3, -1, 0.5, 2]
    private func quadraticGradient(_ x: [Float]) -> [Float] {
        x.indices.map { 2 * curvature[$0] * (x[$0] - target[$0]) }
    }

    private func assertNear(_ x: [Float], _ expected: [Float], within tolerance: Float, _ name: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        for (a, b) in zip(x, expected) {
            XCTAssertEqual(a, b, accuracy: tolerance, "\(name) ended at \(x)", file: file, line: line)
        }
    }

    func testEveryOptimizerMinimisesAQuadratic() {
        let start: [Float] = [0, 0, 0, 0]
        let cases: [(String, any Optimizer, Int)] = [
            ("SGD", SGD(learningRate: 0.02), 600),
            ("SGD momentum", SGD(learningRate: 0.01, momentum: 0.9), 400),
            ("SGD nesterov", SGD(learningRate: 0.01, momentum: 0.9, nesterov: true), 400),
            ("Adam", Adam(learningRate: 0.05), 1500),
            ("Adam amsgrad", Adam(learningRate: 0.05, amsgrad: true), 1500),
            ("AdamW", AdamW(learningRate: 0.05, weightDecay: 1e-4), 1500),
            ("RMSprop", RMSprop(learningRate: 0.01, schedule: ExponentialDecay(initial: 0.05, decaySteps: 200, decayRate: 0.3)), 1500),
            ("RMSprop centered", RMSprop(learningRate: 0.005, momentum: 0.5, centered: true), 2000),
            ("Adagrad", Adagrad(learningRate: 0.5), 1500),
        ]
        for (name, optimizer, steps) in cases {
            let x = minimise(optimizer, from: start, steps: steps, gradient: quadraticGradient)
            assertNear(x, target, within: 2e-2, name)
        }
    }

    func testAdamMinimisesRosenbrock() {
        // f(x, y) = (1 − x)² + 100 (y − x²)², minimum at (1, 1), from the classic start (−1.2, 1).
        let rosenbrockGradient = { (v: [Float]) -> [Float] in
            let x = v[0], y = v[1]
            return [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)]
        }
        let schedule = CosineDecay(initial: 0.05, decaySteps: 6000, alpha: 0.01)
        let x = minimise(Adam(schedule: schedule), from: [-1.2, 1], steps: 6000, gradient: rosenbrockGradient)
        assertNear(x, [1, 1], within: 2e-2, "Adam on Rosenbrock")
    }
}
