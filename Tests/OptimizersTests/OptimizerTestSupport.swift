import Foundation
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// A Float64 update rule written from the PyTorch/Keras formulas, to check an optimizer against.
/// `parameter` indexes the parameter (for per-parameter state), `t` counts steps from 1.
protocol ReferenceRule {
    mutating func update(_ w: inout [Double], gradient g: [Double], parameter: Int, t: Int, lr: Double)
}

/// Three parameters of awkward shapes, the last one frozen (non-trainable).
func makeFixtureParameters() -> [Parameter] {
    [
        Parameter(name: "dense.kernel", value: Tensor(shape: [2, 3], scalars: randomScalars(6, seed: 11))),
        Parameter(name: "dense.bias", value: Tensor(shape: [5], scalars: randomScalars(5, seed: 12))),
        Parameter(name: "norm.mean", value: Tensor(shape: [4], scalars: randomScalars(4, seed: 13)), isTrainable: false),
    ]
}

/// The gradient of parameter `index` at step `step` (from 0): random signs, a magnitude that
/// changes from step to step by up to four orders, and an exact zero now and then.
func fixtureGradient(step: Int, parameter index: Int, count: Int) -> [Float] {
    let scales: [Float] = [1, 0.05, 4, 0.3, 2, 0.001, 0.7]
    var g = randomScalars(count, seed: UInt64(1000 * step + index + 1)).map { $0 * scales[step % scales.count] }
    if step % 3 == 2 { g[step % count] = 0 }
    return g
}

/// Sets every parameter's gradient to the fixture gradient of `step`.
func setFixtureGradients(_ parameters: [Parameter], step: Int) {
    for (j, p) in parameters.enumerated() {
        p.zeroGradient()
        p.accumulateGradient(Tensor(shape: p.value.shape, scalars: fixtureGradient(step: step, parameter: j, count: p.value.count)))
    }
}

/// Runs `optimizer` for `steps` steps on the fixture parameters and `reference` on Float64
/// copies of them, with the same gradients, and checks after every step that the trainable
/// weights agree within `atol + rtol·|expected|`, that the frozen one has not moved, and that
/// the weights did move.
func checkOptimizerAgainstReference<R: ReferenceRule>(
    _ optimizer: some Optimizer, reference: R, steps: Int = 7,
    learningRate: (Int) -> Double, rtol: Double = 1e-5, atol: Double = 1e-6,
    file: StaticString = #filePath, line: UInt = #line
) {
    var reference = reference
    let parameters = makeFixtureParameters()
    let initial = parameters.map(\.value)
    var expected = parameters.map { $0.value.scalars.map(Double.init) }
    for step in 0..<steps {
        setFixtureGradients(parameters, step: step)
        optimizer.step(parameters)
        for (j, p) in parameters.enumerated() where p.isTrainable {
            reference.update(&expected[j], gradient: p.gradient.scalars.map(Double.init),
                             parameter: j, t: step + 1, lr: learningRate(step))
            assertClose(p.value.scalars, expected[j], rtol: rtol, atol: atol,
                        "\(p.name) after step \(step + 1)", file: file, line: line)
        }
    }
    XCTAssertEqual(optimizer.iterations, steps, file: file, line: line)
    XCTAssertEqual(parameters[2].value, initial[2], "the frozen parameter moved", file: file, line: line)
    XCTAssertNotEqual(parameters[0].value, initial[0], "the weights did not move", file: file, line: line)
}

// MARK: - Reference rules (Float64, from the published formulas)

/// PyTorch `torch.optim.SGD` (dampening 0).
struct ReferenceSGD: ReferenceRule {
    var momentum = 0.0, nesterov = false, weightDecay = 0.0
    var buffers: [Int: [Double]] = [:]

    mutating func update(_ w: inout [Double], gradient: [Double], parameter: Int, t: Int, lr: Double) {
        var d = gradient
        if weightDecay != 0 { for i in d.indices { d[i] += weightDecay * w[i] } }
        if momentum != 0 {
            var b = buffers[parameter] ?? d  // PyTorch: the buffer starts as a copy of the first gradient
            if buffers[parameter] != nil { for i in b.indices { b[i] = momentum * b[i] + d[i] } }
            buffers[parameter] = b
            if nesterov { for i in d.indices { d[i] += momentum * b[i] } } else { d = b }
        }
        for i in w.indices { w[i] -= lr * d[i] }
    }
}

/// PyTorch `torch.optim.Adam` / `AdamW` (decoupled decay when `weightDecay` ≠ 0).
struct ReferenceAdam: ReferenceRule {
    var beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7, amsgrad = false, weightDecay = 0.0
    var m: [Int: [Double]] = [:], v: [Int: [Double]] = [:], vMax: [Int: [Double]] = [:]

    mutating func update(_ w: inout [Double], gradient g: [Double], parameter j: Int, t: Int, lr: Double) {
        let zeros = [Double](repeating: 0, count: g.count)
        var m = self.m[j] ?? zeros, v = self.v[j] ?? zeros, vMax = self.vMax[j] ?? zeros
        let bc1 = 1 - Foundation.pow(beta1, Double(t)), bc2 = 1 - Foundation.pow(beta2, Double(t))
        for i in w.indices {
            w[i] *= 1 - lr * weightDecay
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            vMax[i] = Swift.max(vMax[i], v[i])
            let second = amsgrad ? vMax[i] : v[i]
            w[i] -= lr / bc1 * m[i] / (second.squareRoot() / bc2.squareRoot() + epsilon)
        }
        self.m[j] = m; self.v[j] = v; self.vMax[j] = vMax
    }
}

/// Keras `RMSprop`.
struct ReferenceRMSprop: ReferenceRule {
    var rho = 0.9, momentum = 0.0, epsilon = 1e-7, centered = false
    var velocity: [Int: [Double]] = [:], average: [Int: [Double]] = [:], buffer: [Int: [Double]] = [:]

    mutating func update(_ w: inout [Double], gradient g: [Double], parameter j: Int, t: Int, lr: Double) {
        let zeros = [Double](repeating: 0, count: g.count)
        var v = velocity[j] ?? zeros, a = average[j] ?? zeros, b = buffer[j] ?? zeros
        for i in w.indices {
            v[i] = rho * v[i] + (1 - rho) * g[i] * g[i]
            a[i] = rho * a[i] + (1 - rho) * g[i]
            let denominator = centered ? v[i] - a[i] * a[i] + epsilon : v[i] + epsilon
            let increment = lr * g[i] / denominator.squareRoot()
            if momentum > 0 {
                b[i] = momentum * b[i] + increment
                w[i] -= b[i]
            } else {
                w[i] -= increment
            }
        }
        velocity[j] = v; average[j] = a; buffer[j] = b
    }
}

/// Keras `Adagrad`.
struct ReferenceAdagrad: ReferenceRule {
    var initialAccumulator = 0.1, epsilon = 1e-7
    var accumulators: [Int: [Double]] = [:]

    mutating func update(_ w: inout [Double], gradient g: [Double], parameter j: Int, t: Int, lr: Double) {
        var s = accumulators[j] ?? [Double](repeating: initialAccumulator, count: g.count)
        for i in w.indices {
            s[i] += g[i] * g[i]
            w[i] -= lr * g[i] / (s[i] + epsilon).squareRoot()
        }
        accumulators[j] = s
    }
}
