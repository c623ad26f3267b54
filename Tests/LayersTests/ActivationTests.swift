import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class ActivationTests: XCTestCase {
    static let all: [ActivationFunction] = [.linear, .relu, .leakyRelu(alpha: 0.2), .leakyRelu(alpha: -0.3), .elu(alpha: 1),
                                            .elu(alpha: 0.5), .gelu, .sigmoid, .tanh, .softmax]

    /// Inputs kept at least 0.05 away from the kinks at 0, so finite differences do not straddle them.
    static let input = Tensor(shape: [3, 4], scalars: [-2.5, -1, -0.3, -0.05, 0.05, 0.4, 1.2, 3,
                                                       -0.7, 0.9, -4, 2.2])

    static func reference(_ f: ActivationFunction, _ x: [Double]) -> [Double] {
        switch f {
        case .linear: return x
        case .relu: return x.map { max($0, 0) }
        case .leakyRelu(let a): return x.map { $0 > 0 ? $0 : Double(a) * $0 }
        case .elu(let a): return x.map { $0 > 0 ? $0 : Double(a) * (exp($0) - 1) }
        case .gelu: return x.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
        case .sigmoid: return x.map { 1 / (1 + exp(-$0)) }
        case .tanh: return x.map { Foundation.tanh($0) }
        case .softmax:
            var out: [Double] = []
            for row in stride(from: 0, to: x.count, by: 4) {
                let r = Array(x[row..<row + 4]), m = r.max()!
                let e = r.map { exp($0 - m) }, s = e.reduce(0, +)
                out += e.map { $0 / s }
            }
            return out
        }
    }

    func testForwardMatchesFloat64Reference() {
        let x = Self.input.scalars.map(Double.init)
        for f in Self.all {
            assertClose(f.forward(Self.input).scalars, Self.reference(f, x), rtol: 2e-5, atol: 2e-6, "\(f)")
        }
        // GELU is the exact erf form, not the tanh approximation (which gives 0.841192 at 1).
        XCTAssertEqual(Double(ActivationFunction.gelu.forward(Tensor([1])).scalar), 0.841_344_7, accuracy: 1e-6)
    }

    func testBackwardMatchesFiniteDifferences() {
        for f in Self.all {
            let layer = ActivationLayer(f, name: "act_\(f)")
            numericLayerGradientCheck(layer: layer, inputShape: [4], input: Self.input, epsilon: 1e-3)
        }
    }

    func testBackwardFromTheOutputAloneAgreesWithBackwardFromTheInput() {
        let g = Tensor(shape: [3, 4], scalars: randomScalars(12, seed: 8))
        for f in Self.all where !f.needsInputForBackward {
            let y = f.forward(Self.input)
            assertClose(f.backward(g, input: nil, output: y), f.backward(g, input: Self.input, output: y), rtol: 1e-5, atol: 1e-6, "\(f)")
        }
        XCTAssertTrue(ActivationFunction.gelu.needsInputForBackward)
        XCTAssertTrue(ActivationFunction.leakyRelu(alpha: -0.3).needsInputForBackward)
        XCTAssertFalse(ActivationFunction.elu(alpha: 1).needsInputForBackward)
    }

    func testSoftmaxBackwardIsTheJacobianProductPerRow() {
        let y = ActivationFunction.softmax.forward(Self.input)
        let g = Tensor(shape: [3, 4], scalars: randomScalars(12, seed: 2))
        let dx = ActivationFunction.softmax.backward(g, input: nil, output: y)
        var expected: [Double] = []
        for r in 0..<3 {
            var dot = 0.0
            for j in 0..<4 { dot += Double(g[r, j]) * Double(y[r, j]) }
            for j in 0..<4 { expected.append(Double(y[r, j]) * (Double(g[r, j]) - dot)) }
        }
        assertClose(dx.scalars, expected, rtol: 1e-5, atol: 1e-7)
        // Rows of the gradient sum to 0: softmax is invariant to adding a constant to a row.
        for r in 0..<3 { XCTAssertEqual((0..<4).reduce(0) { $0 + dx[r, $1] }, 0, accuracy: 1e-6) }
    }

    func testFusedBiasPathAgreesWithTheUnfusedOne() {
        let bias = Tensor([0.1, -0.2, 0.3, -0.4])
        for f in Self.all {
            var z = Self.input
            f.addBiasAndActivate(&z, bias: bias)
            assertClose(z, f.forward(Self.input + bias), rtol: 1e-5, atol: 1e-6, "\(f)")
        }
    }

    func testConfigNamesRoundTrip() throws {
        for f in Self.all {
            XCTAssertEqual(try ActivationFunction(configName: f.configName), f, f.configName)
        }
        XCTAssertEqual(ActivationFunction.leakyRelu(alpha: 0.2).configName, "leaky_relu")
        XCTAssertEqual(try ActivationFunction(configName: "elu"), .elu(alpha: 1))
        XCTAssertThrowsError(try ActivationFunction(configName: "swishy")) { error in
            XCTAssertTrue("\(error)".contains("swishy"), "\(error)")
        }
        let layer = ActivationLayer(.tanh, name: "t")
        XCTAssertEqual(ActivationLayer.typeName, "Activation")
        let copy = try ActivationLayer(config: layer.config)
        XCTAssertEqual(copy.function, .tanh)
        XCTAssertEqual(copy.name, "t")
    }

    func testSoftmaxLayerRejectsScalarSamples() {
        XCTAssertThrowsError(try ActivationLayer(.softmax, name: "probs").outputShape(for: [])) { error in
            XCTAssertTrue("\(error)".contains("probs"), "\(error)")
        }
        XCTAssertEqual(try ActivationLayer(.relu).outputShape(for: [2, 3]), [2, 3])
    }
}
