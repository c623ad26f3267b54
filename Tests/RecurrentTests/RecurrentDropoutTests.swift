import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Keras 3's `dropout` and `recurrent_dropout` in the recurrent layers: the forward passes against
/// Float64 references of Keras' cell equations with the layer's own masks, the backward passes
/// against finite differences with the masks held fixed, and the masks' shape, reuse over time,
/// reproducibility and absence at inference.
final class RecurrentDropoutTests: XCTestCase {
    let (batch, steps, features, units) = (4, 5, 3, 4)
    lazy var input = randomTensor([batch, steps, features], seed: 41)

    private func built<L: RecurrentLayer>(_ layer: L, seed: UInt64 = 2) throws -> L {
        var g = SeededGenerator(seed: seed)
        _ = try layer.build(inputShape: [steps, features], generator: &g)
        if let bias = layer.bias { bias.value = randomTensor(bias.value.shape, seed: 78, scale: 0.3) }
        return layer
    }

    private func states(_ count: Int) -> [Tensor] {
        (0..<count).map { randomTensor([batch, units], seed: 50 + UInt64($0), scale: 0.5) }
    }

    // MARK: Backward passes through fixed masks

    func testLSTMGradientsWithDropout() throws {
        for (d, r) in [(Float(0.3), Float(0)), (0, 0.4), (0.3, 0.4)] {
            try checkTrainingGradients(LSTM(units: units, returnSequences: true, dropout: d, recurrentDropout: r),
                                   input: input, initialState: states(2))
        }
    }

    func testGRUGradientsWithDropout() throws {
        for (d, r) in [(Float(0.3), Float(0)), (0, 0.4), (0.3, 0.4)] {
            try checkTrainingGradients(GRU(units: units, returnSequences: true, dropout: d, recurrentDropout: r),
                                   input: input, initialState: states(1))
        }
        // The generic (non-fused) cells too.
        try checkTrainingGradients(GRU(units: units, activation: .linear, recurrentActivation: .tanh, returnSequences: true,
                                   dropout: 0.3, recurrentDropout: 0.4),
                               input: input, initialState: states(1), rtol: 3e-2, atol: 2e-3)
        try checkTrainingGradients(LSTM(units: units, activation: .linear, recurrentActivation: .tanh, dropout: 0.3, recurrentDropout: 0.4),
                               input: input, initialState: states(2), rtol: 3e-2, atol: 2e-3)
    }

    func testSimpleRNNGradientsWithDropout() throws {
        for (d, r) in [(Float(0.3), Float(0)), (0, 0.4), (0.3, 0.4)] {
            try checkTrainingGradients(SimpleRNN(units: units, dropout: d, recurrentDropout: r), input: input, initialState: states(1))
        }
    }

    func testBidirectionalAndMaskedGradientsWithDropout() throws {
        try checkTrainingGradients(Bidirectional(LSTM(3, returnSequences: true, dropout: 0.3, recurrentDropout: 0.4)), input: input)
        try checkTrainingGradients(Bidirectional(GRU(3, goBackwards: true, dropout: 0.3), mergeMode: .mul), input: input)
        // Masked steps: weights and initial state (perturbing a masked input would unmask it).
        var x = input
        x.withUnsafeMutableBufferPointer { p in
            for (b, t) in [(1, 3), (1, 4), (2, 0)] { for f in 0..<features { p[(b * steps + t) * features + f] = 0 } }
        }
        try checkTrainingGradients(LSTM(units: units, returnSequences: true, maskValue: 0, dropout: 0.3, recurrentDropout: 0.4),
                               input: x, initialState: states(2), checkInput: false)
    }

    // MARK: The masks

    func testMaskShapesValuesAndCountsFollowKeras() throws {
        // (layer, input masks, recurrent masks): one input mask for all gates unless recurrent
        // dropout is on, then one per gate (Keras 3's implementation 1).
        let cases: [(RecurrentLayer, Int, Int)] = [
            (LSTM(units: units, dropout: 0.3), 1, 0), (LSTM(units: units, recurrentDropout: 0.4), 0, 4),
            (LSTM(units: units, dropout: 0.3, recurrentDropout: 0.4), 4, 4),
            (GRU(units: units, dropout: 0.3), 1, 0), (GRU(units: units, dropout: 0.3, recurrentDropout: 0.4), 3, 3),
            (SimpleRNN(units: units, dropout: 0.3, recurrentDropout: 0.4), 1, 1),
        ]
        // Enough samples and features that every mask has zeros, survivors and distinct rows.
        let x = randomTensor([8, steps, features], seed: 42)
        for (layer, inputCount, stateCount) in cases {
            let name = "\(type(of: layer)) \(layer.dropout) \(layer.recurrentDropout)"
            _ = try built(layer).forward(x, training: true)
            XCTAssertEqual(layer.dropoutMasks.count, inputCount, name)
            XCTAssertEqual(layer.recurrentDropoutMasks.count, stateCount, name)
            for (masks, rate, width) in [(layer.dropoutMasks, layer.dropout, features), (layer.recurrentDropoutMasks, layer.recurrentDropout, units)] {
                for m in masks {
                    XCTAssertEqual(m.shape, [8, width], name)
                    let scale = 1 / (1 - rate)
                    XCTAssertTrue(m.scalars.allSatisfy { $0 == 0 || $0 == scale }, name)
                    XCTAssertTrue(m.scalars.contains(0) && m.scalars.contains(scale), name)
                    // One mask per sample: the rows are not all the same.
                    let rows = (0..<8).map { r in (0..<width).map { m[r, $0] } }
                    XCTAssertGreaterThan(Set(rows).count, 1, name)
                }
                if masks.count > 1 { XCTAssertNotEqual(masks[0].scalars, masks[1].scalars, name) }
            }
        }
    }

    /// The input mask is the same at every step: the input gradient is exactly zero, at every
    /// step, for the features a sample's mask drops, and only for those.
    func testInputMaskIsTheSameAtEveryStep() throws {
        for layer in [LSTM(units: units, returnSequences: true, dropout: 0.5), GRU(units: units, dropout: 0.5),
                      SimpleRNN(units: units, returnSequences: true, dropout: 0.5)] as [RecurrentLayer] {
            let y = try built(layer).forward(input, training: true)
            let dx = layer.backward(randomTensor(y.shape, seed: 3))
            let m = layer.dropoutMasks[0]
            for r in 0..<batch {
                for f in 0..<features {
                    for t in 0..<steps {
                        if m[r, f] == 0 {
                            XCTAssertEqual(dx[r, t, f], 0, "\(type(of: layer)) sample \(r) step \(t) feature \(f)")
                        } else {
                            XCTAssertNotEqual(dx[r, t, f], 0, "\(type(of: layer)) sample \(r) step \(t) feature \(f)")
                        }
                    }
                }
            }
        }
    }

    func testInferenceIgnoresDropout() throws {
        let plain = try built(LSTM(units: units, returnSequences: true))
        let dropped = try built(LSTM(units: units, returnSequences: true, dropout: 0.5, recurrentDropout: 0.5))
        // The stream's seed is drawn after the weights: the same weights.
        XCTAssertEqual(dropped.parameters.map(\.value.scalars), plain.parameters.map(\.value.scalars))
        _ = dropped.forward(input, training: true)
        XCTAssertFalse(dropped.dropoutMasks.isEmpty)
        XCTAssertEqual(dropped.forward(input, training: false).scalars, plain.forward(input, training: false).scalars)
        XCTAssertTrue(dropped.dropoutMasks.isEmpty && dropped.recurrentDropoutMasks.isEmpty)
        // Training mode does drop something (the check above could fail).
        XCTAssertNotEqual(dropped.forward(input, training: true).scalars, plain.forward(input, training: true).scalars)
        // Rates of 0: no masks, the plain pass.
        let zero = try built(GRU(units: units, dropout: 0, recurrentDropout: 0)), gru = try built(GRU(units: units))
        XCTAssertEqual(zero.forward(input, training: true).scalars, gru.forward(input, training: true).scalars)
        XCTAssertTrue(zero.dropoutMasks.isEmpty && zero.recurrentDropoutMasks.isEmpty)
    }

    func testMasksAreReproducibleFromSeedAndStep() throws {
        func masks(_ layer: RecurrentLayer, step: Int?) -> [[Float]] {
            if let step { layer.beginStep(step) }
            _ = layer.forward(input, training: true)
            return (layer.dropoutMasks + layer.recurrentDropoutMasks).map(\.scalars)
        }
        let a = try built(LSTM(units: units, dropout: 0.3, recurrentDropout: 0.3, seed: 99), seed: 1)
        let b = try built(LSTM(units: units, dropout: 0.3, recurrentDropout: 0.3, seed: 99), seed: 2)
        XCTAssertEqual(masks(a, step: 5), masks(b, step: 5))  // the given seed, whatever the model's generator
        XCTAssertNotEqual(masks(a, step: 5), masks(a, step: 6))
        XCTAssertEqual(masks(a, step: 5), masks(b, step: 5))
        // Without beginStep each forward draws new masks from the stream.
        let first = masks(a, step: nil)
        XCTAssertNotEqual(masks(a, step: nil), first)
        // Without a seed: drawn from the model's generator, so the same build seed gives the same masks.
        let c = try built(GRU(units: units, dropout: 0.3, recurrentDropout: 0.3), seed: 4)
        let d = try built(GRU(units: units, dropout: 0.3, recurrentDropout: 0.3), seed: 4)
        let e = try built(GRU(units: units, dropout: 0.3, recurrentDropout: 0.3), seed: 5)
        XCTAssertEqual(masks(c, step: 0), masks(d, step: 0))
        XCTAssertNotEqual(masks(c, step: 0), masks(e, step: 0))
        XCTAssertEqual(c.config["seed"], d.config["seed"])
    }

    /// A model with recurrent dropout trained for 4 epochs, and for 2, saved, reloaded and resumed
    /// at epoch 2, ends with the same weights: the masks come from (seed, step) and the seeds,
    /// the backward direction's included, are saved in the config.
    func testResumedTrainingWithRecurrentDropoutEqualsAnUninterruptedRun() throws {
        let x = randomTensor([24, 5, 3], seed: 61)
        let y = (0..<24).map { $0 % 3 }
        func model() -> Sequential {
            Sequential(inputShape: [5, 3]) {
                Bidirectional(GRU(4, returnSequences: true, dropout: 0.2, recurrentDropout: 0.3))
                LSTM(5, dropout: 0.2, recurrentDropout: 0.3)
                Dense(3)
            }
        }
        func fit(_ m: Sequential, _ optimizer: Adam, epochs: Int, from: Int = 0) throws {
            m.compile(optimizer: optimizer, loss: SoftmaxCrossEntropy())
            _ = try m.fit(x: x, y: y, epochs: epochs, initialEpoch: from, batchSize: 8, seed: 3, verbose: 0)
        }
        let straight = model()
        try fit(straight, Adam(learningRate: 0.01), epochs: 4)

        let first = model()
        let adam = Adam(learningRate: 0.01)
        try fit(first, adam, epochs: 2)
        let directory = NSTemporaryDirectory() + "neurite-recurrent-dropout-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        try first.save(to: directory, optimizer: adam)
        let resumed = try Sequential.load(from: directory)
        let resumedAdam = Adam(learningRate: 0.01)
        try resumed.loadOptimizerState(into: resumedAdam, from: directory)
        try fit(resumed, resumedAdam, epochs: 4, from: 2)
        XCTAssertEqual(resumed.weights().mapValues(\.scalars), straight.weights().mapValues(\.scalars))
        let bidirectional = try XCTUnwrap(resumed.layers[0] as? Bidirectional)
        XCTAssertNotEqual(bidirectional.config["backward_seed"], bidirectional.config["layer.seed"])

        // Control: other masks (another backward seed) end elsewhere, so the check above can fail.
        var config = try XCTUnwrap(first.layers[0] as? Bidirectional).config
        config["backward_seed"] = .int(12345)
        let other = Sequential(inputShape: [5, 3], layers: [
            try Bidirectional(config: config),
            try LSTM(config: first.layers[1].config),
            try Dense(config: first.layers[2].config),
        ])
        try other.build(seed: 0)
        try other.loadWeights(first.weights())
        let otherAdam = Adam(learningRate: 0.01)
        try other.loadOptimizerState(into: otherAdam, from: directory)
        try fit(other, otherAdam, epochs: 4, from: 2)
        XCTAssertNotEqual(other.weights().mapValues(\.scalars), straight.weights().mapValues(\.scalars))
    }

    /// Split into row ranges on several threads, the masked passes give what one thread gives.
    func testSplitBatchWithDropoutMatchesOneThread() throws {
        let x = randomTensor([128, 4, 5], seed: 21)
        for make in [{ LSTM(units: 64, returnSequences: true, dropout: 0.2, recurrentDropout: 0.3) },
                     { GRU(units: 64, returnSequences: true, dropout: 0.2, recurrentDropout: 0.3) }] as [() -> RecurrentLayer] {
            var results: [[Float]] = []
            for width in [1, 4] {
                try ThreadPool.withWidthLimit(width) {
                    let layer = make()
                    var g = SeededGenerator(seed: 5)
                    _ = try layer.build(inputShape: [4, 5], generator: &g)
                    layer.beginStep(2)
                    let y = layer.forward(x, training: true)
                    let dx = layer.backward(randomTensor(y.shape, seed: 23))
                    results.append(y.scalars + dx.scalars + layer.parameters.flatMap(\.gradient.scalars))
                }
            }
            assertClose(results[1], results[0].map(Double.init), rtol: 1e-5, atol: 1e-6)
        }
    }

    // MARK: Keras 3's equations with the layer's masks

    private func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    /// `(x ⊙ m)·W[:, cols] + (h ⊙ r)·U[:, cols]` for one sample: `[cols.count]`.
    private func product(_ x: [Double], _ m: [Double], _ w: Tensor, _ h: [Double], _ r: [Double], _ u: Tensor,
                         cols: Range<Int>) -> [Double] {
        let n = w.shape[1], ws = w.scalars, us = u.scalars
        return cols.map { j in
            var s = 0.0
            for k in 0..<x.count { s += x[k] * m[k] * Double(ws[k * n + j]) }
            for k in 0..<h.count { s += h[k] * r[k] * Double(us[k * n + j]) }
            return s
        }
    }

    /// Gate `k`'s masks for sample `b`: the layer's (one for every gate, or one per gate), or ones.
    private func mask(_ masks: [Tensor], gate k: Int, sample b: Int, width: Int) -> [Double] {
        if masks.isEmpty { return [Double](repeating: 1, count: width) }
        let m = masks[masks.count == 1 ? 0 : k]
        return (0..<width).map { Double(m[b, $0]) }
    }

    private func row(_ b: Int, _ t: Int) -> [Double] { (0..<features).map { Double(input[b, t, $0]) } }

    func testLSTMMatchesKerasEquationsWithMasks() throws {
        for (d, r) in [(Float(0.3), Float(0)), (0.3, 0.4), (0, 0.4)] {
            let layer = try built(LSTM(units: units, returnSequences: true, dropout: d, recurrentDropout: r))
            layer.beginStep(1)
            let y = layer.forward(input, training: true)
            let bias = layer.bias!.value.scalars.map(Double.init)
            let (w, u) = (layer.kernel!.value, layer.recurrentKernel!.value)
            var expected: [Double] = []
            for b in 0..<batch {
                var h = [Double](repeating: 0, count: units), c = h
                for t in 0..<steps {
                    let z = (0..<4).map { k in
                        zip(product(row(b, t), mask(layer.dropoutMasks, gate: k, sample: b, width: features), w,
                                    h, mask(layer.recurrentDropoutMasks, gate: k, sample: b, width: units), u,
                                    cols: (k * units)..<((k + 1) * units)),
                            bias[(k * units)..<((k + 1) * units)]).map(+)
                    }
                    for j in 0..<units {
                        let i = sigmoid(z[0][j]), f = sigmoid(z[1][j]), g = Foundation.tanh(z[2][j]), o = sigmoid(z[3][j])
                        c[j] = f * c[j] + i * g
                        h[j] = o * Foundation.tanh(c[j])
                    }
                    expected += h
                }
            }
            assertClose(y.scalars, expected, rtol: 1e-4, atol: 1e-5)
        }
    }

    func testGRUMatchesKerasEquationsWithMasks() throws {
        for (d, r) in [(Float(0.3), Float(0)), (0.3, 0.4)] {
            let layer = try built(GRU(units: units, returnSequences: true, dropout: d, recurrentDropout: r))
            layer.beginStep(1)
            let y = layer.forward(input, training: true)
            let bias = layer.bias!.value.scalars.map(Double.init), g3 = 3 * units
            let (w, u) = (layer.kernel!.value, layer.recurrentKernel!.value)
            let none = Tensor.zeros([0, g3])
            var expected: [Double] = []
            for b in 0..<batch {
                var h = [Double](repeating: 0, count: units)
                for t in 0..<steps {
                    let cols = { (k: Int) in (k * self.units)..<((k + 1) * self.units) }
                    let a = (0..<3).map { k in
                        zip(product(row(b, t), mask(layer.dropoutMasks, gate: k, sample: b, width: features), w, [], [], none,
                                    cols: cols(k)), bias[cols(k)]).map(+)
                    }
                    let q = (0..<3).map { k in
                        zip(product([], [], none, h, mask(layer.recurrentDropoutMasks, gate: k, sample: b, width: units), u,
                                    cols: cols(k)), bias[(g3 + k * units)..<(g3 + (k + 1) * units)]).map(+)
                    }
                    h = (0..<units).map { j in
                        let z = sigmoid(a[0][j] + q[0][j]), rr = sigmoid(a[1][j] + q[1][j])
                        let hh = Foundation.tanh(a[2][j] + rr * q[2][j])
                        return z * h[j] + (1 - z) * hh  // the undropped state
                    }
                    expected += h
                }
            }
            assertClose(y.scalars, expected, rtol: 1e-4, atol: 1e-5)
        }
    }

    func testSimpleRNNMatchesKerasEquationsWithMasks() throws {
        let layer = try built(SimpleRNN(units: units, returnSequences: true, dropout: 0.3, recurrentDropout: 0.4))
        layer.beginStep(1)
        let y = layer.forward(input, training: true)
        let bias = layer.bias!.value.scalars.map(Double.init)
        var expected: [Double] = []
        for b in 0..<batch {
            var h = [Double](repeating: 0, count: units)
            for t in 0..<steps {
                h = zip(product(row(b, t), mask(layer.dropoutMasks, gate: 0, sample: b, width: features), layer.kernel!.value,
                                h, mask(layer.recurrentDropoutMasks, gate: 0, sample: b, width: units), layer.recurrentKernel!.value,
                                cols: 0..<units), bias).map { Foundation.tanh($0 + $1) }
                expected += h
            }
        }
        assertClose(y.scalars, expected, rtol: 1e-4, atol: 1e-5)
    }
}
