import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _NeuriteTestSupport

/// The forward passes against Float64 references written from Keras 3's cell equations
/// (`keras/src/layers/rnn/lstm.py`, `gru.py` with `reset_after=True`, `simple_rnn.py`), with the
/// layer's own weights; and Keras' initial weights.
final class KerasEquivalenceTests: XCTestCase {
    let (batch, steps, features, units) = (3, 6, 5, 4)

    private func built<L: RecurrentLayer>(_ layer: L, seed: UInt64 = 2) throws -> L {
        var g = SeededGenerator(seed: seed)
        _ = try layer.build(inputShape: [steps, features], generator: &g)
        // Non-zero biases, so their placement is checked too.
        if let bias = layer.bias { bias.value = randomTensor(bias.value.shape, seed: 77, scale: 0.3) }
        return layer
    }

    private func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    /// `x·W + h·R (+ b)` for one sample and step: `[n]`.
    private func affine(_ x: [Double], _ w: Tensor, _ h: [Double], _ r: Tensor, _ b: [Double]?) -> [Double] {
        let n = w.shape[1]
        var out = b ?? [Double](repeating: 0, count: n)
        let ws = w.scalars, rs = r.scalars
        for j in 0..<n {
            for k in 0..<x.count { out[j] += x[k] * Double(ws[k * n + j]) }
            for k in 0..<h.count { out[j] += h[k] * Double(rs[k * n + j]) }
        }
        return out
    }

    private func row(_ x: Tensor, _ b: Int, _ t: Int) -> [Double] {
        (0..<features).map { Double(x[b, t, $0]) }
    }

    func testLSTMMatchesKerasEquations() throws {
        let layer = try built(LSTM(units: units, returnSequences: true))
        let x = randomTensor([batch, steps, features], seed: 4)
        let y = layer.forward(x, training: false)
        let bias = layer.bias!.value.scalars.map(Double.init)
        var expected: [Double] = []
        var finalC: [Double] = []
        for b in 0..<batch {
            var h = [Double](repeating: 0, count: units), c = h
            for t in 0..<steps {
                let z = affine(row(x, b, t), layer.kernel!.value, h, layer.recurrentKernel!.value, bias)
                for j in 0..<units {
                    let i = sigmoid(z[j]), f = sigmoid(z[units + j]), g = Foundation.tanh(z[2 * units + j]), o = sigmoid(z[3 * units + j])
                    c[j] = f * c[j] + i * g
                    h[j] = o * Foundation.tanh(c[j])
                }
                expected += h
            }
            finalC += c
        }
        assertClose(y.scalars, expected, rtol: 1e-4, atol: 1e-5)
        assertClose(layer.finalState[1].scalars, finalC, rtol: 1e-4, atol: 1e-5)
    }

    func testGRUMatchesKerasResetAfterEquations() throws {
        let layer = try built(GRU(units: units, returnSequences: true))
        let x = randomTensor([batch, steps, features], seed: 5)
        let y = layer.forward(x, training: false)
        let bias = layer.bias!.value.scalars.map(Double.init)
        let g3 = 3 * units
        let zeros = [Double](repeating: 0, count: units)
        var expected: [Double] = []
        for b in 0..<batch {
            var h = zeros
            for t in 0..<steps {
                let mx = affine(row(x, b, t), layer.kernel!.value, [], Tensor.zeros([0, g3]), Array(bias[0..<g3]))
                let mi = affine([], Tensor.zeros([0, g3]), h, layer.recurrentKernel!.value, Array(bias[g3..<(2 * g3)]))
                var next = zeros
                for j in 0..<units {
                    let z = sigmoid(mx[j] + mi[j]), r = sigmoid(mx[units + j] + mi[units + j])
                    let hh = Foundation.tanh(mx[2 * units + j] + r * mi[2 * units + j])
                    next[j] = z * h[j] + (1 - z) * hh
                }
                h = next
                expected += h
            }
        }
        assertClose(y.scalars, expected, rtol: 1e-4, atol: 1e-5)
    }

    func testSimpleRNNMatchesKerasEquations() throws {
        let layer = try built(SimpleRNN(units: units))
        let x = randomTensor([batch, steps, features], seed: 6)
        let y = layer.forward(x, training: false)
        let bias = layer.bias!.value.scalars.map(Double.init)
        var expected: [Double] = []
        for b in 0..<batch {
            var h = [Double](repeating: 0, count: units)
            for t in 0..<steps { h = affine(row(x, b, t), layer.kernel!.value, h, layer.recurrentKernel!.value, bias).map(Foundation.tanh) }
            expected += h
        }
        assertClose(y.scalars, expected, rtol: 1e-4, atol: 1e-5)
    }

    func testKerasInitialWeights() throws {
        let lstm = LSTM(8)
        var g = SeededGenerator(seed: 1)
        _ = try lstm.build(inputShape: [3, 5], generator: &g)
        XCTAssertEqual(lstm.kernel!.value.shape, [5, 32])
        XCTAssertEqual(lstm.recurrentKernel!.value.shape, [8, 32])
        XCTAssertEqual(lstm.bias!.value.scalars, [Float](repeating: 0, count: 8) + [Float](repeating: 1, count: 8) + [Float](repeating: 0, count: 16))
        // Orthogonal recurrent kernel: its 8 rows are orthonormal.
        let r = lstm.recurrentKernel!.value
        let gram = Tensor.matmul(r, r, transposeB: true)
        var identity = [Double](repeating: 0, count: 64)
        for i in 0..<8 { identity[i * 9] = 1 }
        assertClose(gram.scalars, identity, rtol: 0, atol: 1e-5)
        // Glorot-uniform kernel: within sqrt(6 / (5 + 32)).
        XCTAssertLessThanOrEqual(lstm.kernel!.value.scalars.map(abs).max()!, (6.0 / 37.0).squareRoot())
        XCTAssertEqual(lstm.parameters.map(\.name), ["kernel", "recurrent_kernel", "bias"])  // unnamed: roles only
        let gru = GRU(4)
        _ = try gru.build(inputShape: [3, 5], generator: &g)
        XCTAssertEqual(gru.bias!.value.shape, [2, 12])
    }

    func testKerasWeightNamesInAModel() throws {
        let model = Sequential(inputShape: [4, 3]) {
            LSTM(5, returnSequences: true)
            LSTM(5)
            Dense(2)
        }
        try model.build(seed: 1)
        XCTAssertEqual(model.parameters.map(\.name), [
            "lstm.kernel", "lstm.recurrent_kernel", "lstm.bias",
            "lstm_1.kernel", "lstm_1.recurrent_kernel", "lstm_1.bias",
            "dense.kernel", "dense.bias",
        ])
    }
}

/// The fused LSTM and GRU kernels have one variant per ISA path (AVX-512, AVX2, portable); they
/// must agree (the Keras-equation tests above check the default path against Float64).
final class RecurrentKernelPathTests: XCTestCase {
    func testEveryISAPathGivesTheSameOutputsAndGradients() throws {
        for make in [{ LSTM(units: 20, returnSequences: true) }, { GRU(units: 20, returnSequences: true) }] as [() -> RecurrentLayer] {
            try checkPaths(make)
        }
    }

    private func checkPaths(_ make: () -> RecurrentLayer) throws {
        var outputs: [[Float]] = [], gradients: [[Float]] = []
        let x = randomTensor([5, 7, 3], seed: 12)
        try forEachISA { isa in
            try KernelISA.withISA(isa) {
                let layer = make()  // 20 units: one 16-lane block and a remainder
                var g = SeededGenerator(seed: 3)
                _ = try layer.build(inputShape: [7, 3], generator: &g)
                outputs.append(layer.forward(x, training: true).scalars)
                gradients.append(layer.backward(randomTensor([5, 7, 20], seed: 4)).scalars
                                 + layer.parameters.flatMap(\.gradient.scalars))
            }
        }
        for i in 1..<outputs.count {
            assertClose(outputs[i], outputs[0].map(Double.init), rtol: 1e-5, atol: 1e-6)
            assertClose(gradients[i], gradients[0].map(Double.init), rtol: 1e-4, atol: 1e-5)
        }
    }
}
