import Foundation
import Layers
import TensorCore
import Unsupervised
import XCTest
import _NeuriteTestSupport

final class RBMTests: XCTestCase {
    /// A small RBM with fixed, varied weights and biases.
    private func smallRBM(units: RBM.VisibleUnits = .bernoulli, momentum: Float = 0, decay: Float = 0) -> RBM {
        let rbm = RBM(visibleCount: 5, hiddenCount: 3, visibleUnits: units, learningRate: 0.1, momentum: momentum,
                      weightDecay: decay, batchSize: 4, seed: 1)
        rbm.weights = Tensor(shape: [5, 3], scalars: randomScalars(15, seed: 2))
        rbm.visibleBias = Tensor(randomScalars(5, seed: 3).map { $0 * 0.5 })
        rbm.hiddenBias = Tensor(randomScalars(3, seed: 4).map { $0 * 0.5 })
        return rbm
    }

    private func doubles(_ t: Tensor) -> [Double] { t.scalars.map(Double.init) }
    private func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
    private func softplus(_ x: Double) -> Double { Foundation.log(1 + Foundation.exp(x)) }

    /// `P(h = 1 | v)` in Float64, `[rows][H]`.
    private func hiddenReference(_ v: [Double], rows: Int, w: [Double], c: [Double]) -> [[Double]] {
        let (nv, nh) = (v.count / rows, c.count)
        return (0..<rows).map { r in
            (0..<nh).map { j in sigmoid(c[j] + (0..<nv).reduce(0.0) { $0 + v[r * nv + $1] * w[$1 * nh + j] }) }
        }
    }

    private func binaryRows(_ rows: Int, _ columns: Int, seed: UInt64) -> Tensor {
        Tensor(shape: [rows, columns], scalars: randomScalars(rows * columns, seed: seed).map { $0 > 0 ? 1 : 0 })
    }

    func testFreeEnergyMatchesAFloat64Reference() {
        for units in [RBM.VisibleUnits.bernoulli, .gaussian] {
            let rbm = smallRBM(units: units)
            let v = units == .bernoulli ? binaryRows(4, 5, seed: 7) : Tensor(shape: [4, 5], scalars: randomScalars(20, seed: 7))
            let (x, w, b, c) = (doubles(v), doubles(rbm.weights), doubles(rbm.visibleBias), doubles(rbm.hiddenBias))
            let energies = rbm.freeEnergy(v)
            for r in 0..<4 {
                var expected = 0.0
                for i in 0..<5 {
                    expected += units == .bernoulli ? -x[r * 5 + i] * b[i] : 0.5 * (x[r * 5 + i] - b[i]) * (x[r * 5 + i] - b[i])
                }
                for j in 0..<3 {
                    expected -= softplus(c[j] + (0..<5).reduce(0.0) { $0 + x[r * 5 + $1] * w[$1 * 3 + j] })
                }
                XCTAssertEqual(energies[r], expected, accuracy: 1e-5, "\(units) row \(r)")
            }
        }
    }

    func testCD1UpdateMatchesAFloat64Reference() {
        // Two updates, so momentum's carried velocity is checked too.
        for (momentum, decay) in [(Float(0), Float(0)), (0, 0.01), (0.5, 0.02)] {
            let rbm = smallRBM(momentum: momentum, decay: decay)
            var w = doubles(rbm.weights), b = doubles(rbm.visibleBias), c = doubles(rbm.hiddenBias)
            var vw = [Double](repeating: 0, count: 15), vb = [Double](repeating: 0, count: 5), vc = [Double](repeating: 0, count: 3)
            let lr = 0.1, m = Double(momentum), wd = Double(decay)
            for step in 0..<2 {
                let positive = binaryRows(4, 5, seed: 10 + UInt64(step)), negative = binaryRows(3, 5, seed: 20 + UInt64(step))
                let (p, q) = (doubles(positive), doubles(negative))
                let hp = hiddenReference(p, rows: 4, w: w, c: c), hq = hiddenReference(q, rows: 3, w: w, c: c)
                for i in 0..<5 {
                    for j in 0..<3 {
                        let pos = (0..<4).reduce(0.0) { $0 + p[$1 * 5 + i] * hp[$1][j] } / 4
                        let neg = (0..<3).reduce(0.0) { $0 + q[$1 * 5 + i] * hq[$1][j] } / 3
                        vw[i * 3 + j] = m * vw[i * 3 + j] + lr * (pos - neg) - lr * wd * w[i * 3 + j]
                    }
                    vb[i] = m * vb[i] + lr * ((0..<4).reduce(0.0) { $0 + p[$1 * 5 + i] } / 4 - (0..<3).reduce(0.0) { $0 + q[$1 * 5 + i] } / 3)
                }
                for j in 0..<3 {
                    vc[j] = m * vc[j] + lr * ((0..<4).reduce(0.0) { $0 + hp[$1][j] } / 4 - (0..<3).reduce(0.0) { $0 + hq[$1][j] } / 3)
                }
                for i in 0..<15 { w[i] += vw[i] }
                for i in 0..<5 { b[i] += vb[i] }
                for j in 0..<3 { c[j] += vc[j] }
                rbm.update(positive: positive, negative: negative)
                assertClose(rbm.weights.scalars, w, rtol: 1e-5, atol: 1e-6, "weights, momentum \(momentum), decay \(decay), step \(step)")
                assertClose(rbm.visibleBias.scalars, b, rtol: 1e-5, atol: 1e-6, "visible bias")
                assertClose(rbm.hiddenBias.scalars, c, rtol: 1e-5, atol: 1e-6, "hidden bias")
            }
        }
    }

    func testGaussianCDUpdateMatchesAFloat64Reference() {
        // Gaussian visible units: real-valued batch and chain ends, the same correlation rule;
        // the hidden probabilities come from the real values, not from binarised ones.
        let rbm = smallRBM(units: .gaussian)
        var w = doubles(rbm.weights), b = doubles(rbm.visibleBias), c = doubles(rbm.hiddenBias)
        let lr = 0.1
        for step in 0..<2 {
            let positive = Tensor(shape: [4, 5], scalars: randomScalars(20, seed: 50 + UInt64(step)).map { $0 * 2 })
            let negative = Tensor(shape: [3, 5], scalars: randomScalars(15, seed: 60 + UInt64(step)).map { $0 * 3 })
            let (p, q) = (doubles(positive), doubles(negative))
            let hp = hiddenReference(p, rows: 4, w: w, c: c), hq = hiddenReference(q, rows: 3, w: w, c: c)
            var nw = w, nb = b, nc = c
            for i in 0..<5 {
                for j in 0..<3 {
                    let pos = (0..<4).reduce(0.0) { $0 + p[$1 * 5 + i] * hp[$1][j] } / 4
                    let neg = (0..<3).reduce(0.0) { $0 + q[$1 * 5 + i] * hq[$1][j] } / 3
                    nw[i * 3 + j] += lr * (pos - neg)
                }
                nb[i] += lr * ((0..<4).reduce(0.0) { $0 + p[$1 * 5 + i] } / 4 - (0..<3).reduce(0.0) { $0 + q[$1 * 5 + i] } / 3)
            }
            for j in 0..<3 {
                nc[j] += lr * ((0..<4).reduce(0.0) { $0 + hp[$1][j] } / 4 - (0..<3).reduce(0.0) { $0 + hq[$1][j] } / 3)
            }
            (w, b, c) = (nw, nb, nc)
            rbm.update(positive: positive, negative: negative)
            assertClose(rbm.weights.scalars, w, rtol: 1e-5, atol: 1e-6, "Gaussian weights, step \(step)")
            assertClose(rbm.visibleBias.scalars, b, rtol: 1e-5, atol: 1e-6, "Gaussian visible bias, step \(step)")
            assertClose(rbm.hiddenBias.scalars, c, rtol: 1e-5, atol: 1e-6, "Gaussian hidden bias, step \(step)")
        }
    }

    func testGaussianVisibleMeansAndSamplesMatchTheModel() {
        // E[v | h] = h·Wᵀ + b in Float64; draws around it have unit variance.
        let rbm = smallRBM(units: .gaussian)
        let h = binaryRows(3, 3, seed: 71)
        let (hh, w, b) = (doubles(h), doubles(rbm.weights), doubles(rbm.visibleBias))
        var expected: [Double] = []
        for r in 0..<3 {
            for i in 0..<5 {
                var mean = b[i]
                for j in 0..<3 { mean += hh[r * 3 + j] * w[i * 3 + j] }
                expected.append(mean)
            }
        }
        assertClose(rbm.visibleMeans(h).scalars, expected, rtol: 1e-5, atol: 1e-6, "Gaussian visible means")
        let draws = 4000
        let many = Tensor.concatenate(Array(repeating: h.slice(0..<1), count: draws), axis: 0)
        let samples = rbm.sampleVisible(many).scalars
        for i in 0..<5 {
            let column = (0..<draws).map { Double(samples[$0 * 5 + i]) }
            let mean = column.reduce(0, +) / Double(draws)
            let variance = column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(draws - 1)
            XCTAssertEqual(mean, expected[i], accuracy: 0.06, "unit \(i) mean")     // 4 standard errors
            XCTAssertEqual(variance, 1, accuracy: 0.1, "unit \(i) variance")
        }
    }

    func testGibbsFromDataMatchesAStepByStepReference() {
        // One Gibbs chain per row, started at the data: h ~ P(h | v) with uniforms u < p, then
        // v ~ P(v | h) likewise, the last step's visible means with meanField. The reference
        // recomputes every conditional in Float64 from the same uniform draws.
        let rbm = smallRBM()
        let start = binaryRows(4, 5, seed: 81)
        var replay = rbm.generator
        let got = rbm.gibbs(start, steps: 3, meanField: true)
        let (w, b, c) = (doubles(rbm.weights), doubles(rbm.visibleBias), doubles(rbm.hiddenBias))
        func uniforms(_ n: Int) -> [Double] {
            // RBM.bernoulli: two 24-bit uniforms from each 64-bit draw, a last odd one from nextUnitFloat.
            var out: [Double] = []
            while out.count + 1 < n {
                let bits = replay.next()
                out.append(Double(bits >> 40) * 0x1p-24)
                out.append(Double((bits >> 8) & 0xFF_FFFF) * 0x1p-24)
            }
            if out.count < n { out.append(Double(replay.nextUnitFloat())) }
            return out
        }
        var v = doubles(start)
        var means: [Double] = []
        for step in 0..<3 {
            let ph = hiddenReference(v, rows: 4, w: w, c: c).flatMap { $0 }
            let uh = uniforms(12)
            let h = (0..<12).map { uh[$0] < ph[$0] ? 1.0 : 0.0 }
            means = []
            for r in 0..<4 {
                for i in 0..<5 {
                    var z = b[i]
                    for j in 0..<3 { z += h[r * 3 + j] * w[i * 3 + j] }
                    means.append(sigmoid(z))
                }
            }
            if step < 2 {
                let uv = uniforms(20)
                v = (0..<20).map { uv[$0] < means[$0] ? 1.0 : 0.0 }
            }
        }
        assertClose(got.scalars, means, rtol: 1e-5, atol: 1e-6, "Gibbs chain from data, mean field after 3 steps")
        XCTAssertNotEqual(got, rbm.gibbs(start, steps: 3, meanField: true), "the generator moved on: a second chain differs")
    }

    func testPartialFitIsSampleThenUpdate() {
        // CD-1: h ~ P(h | v0), v1 ~ P(v | h), then the update; PCD-1 starts from zero chains.
        for method in [RBM.Method.contrastiveDivergence(steps: 1), .persistent(steps: 1)] {
            let (a, b) = (smallRBM(), smallRBM())
            a.method = method
            let batch = binaryRows(4, 5, seed: 41)
            a.partialFit(batch)
            let h = method == .persistent(steps: 1) ? Tensor.zeros([4, 3]) : b.sampleHidden(batch)
            b.update(positive: batch, negative: b.sampleVisible(h))
            XCTAssertEqual(a.weights, b.weights, "\(method)")
            XCTAssertEqual(a.visibleBias, b.visibleBias, "\(method)")
            XCTAssertEqual(a.hiddenBias, b.hiddenBias, "\(method)")
        }
    }

    func testPartialFitIsTheGibbsChainThenUpdateForMoreStepsAndGaussianUnits() {
        // partialFit samples its last v_k straight into the block it multiplies: the same draws
        // and bits as the public steps, for k = 2 and 3 and for Gaussian visible units, over
        // several batches (PCD continues its chains, CD restarts from each batch).
        let methods: [(RBM.Method, Int)] = [(.contrastiveDivergence(steps: 2), 2), (.contrastiveDivergence(steps: 3), 3),
                                            (.persistent(steps: 2), 2)]
        for units in [RBM.VisibleUnits.bernoulli, .gaussian] {
            for (method, k) in methods {
                let (a, b) = (smallRBM(units: units), smallRBM(units: units))
                a.method = method
                let persistent = method == .persistent(steps: k)
                var chains = Tensor.zeros([4, 3])
                for step in 0..<3 {
                    let label = "\(units) \(method) batch \(step)"
                    let batch = units == .bernoulli ? binaryRows(4, 5, seed: 60 + UInt64(step))
                        : Tensor(shape: [4, 5], scalars: randomScalars(20, seed: 70 + UInt64(step)))
                    a.partialFit(batch)
                    var h = persistent ? chains : b.sampleHidden(batch)
                    var v = b.sampleVisible(h)
                    for _ in 1..<k {
                        h = b.sampleHidden(v)
                        v = b.sampleVisible(h)
                    }
                    if persistent {
                        // The next chains: samples of P(h | v_k) under the weights before the
                        // update, drawn right after v_k.
                        let p = b.hiddenProbabilities(v).scalars
                        var g = b.generator
                        chains = Tensor(shape: [4, 3], scalars: p.map { g.nextUnitFloat() < $0 ? 1 : 0 })
                        b.generator = g
                        XCTAssertEqual(a.chains, chains, label)
                    }
                    b.update(positive: batch, negative: v)
                    XCTAssertEqual(a.weights, b.weights, label)
                    XCTAssertEqual(a.visibleBias, b.visibleBias, label)
                    XCTAssertEqual(a.hiddenBias, b.hiddenBias, label)
                }
                XCTAssertNotEqual(a.weights, smallRBM(units: units).weights, "\(units) \(method) trained")
            }
        }
        // An empty batch changes nothing (and draws what the step draws).
        let (a, b) = (smallRBM(), smallRBM())
        a.partialFit(Tensor.zeros([0, 5]))
        XCTAssertEqual(a.weights, b.weights)
        XCTAssertNil(a.chains)
    }

    func testPseudoLikelihoodFlipsOneRandomBitPerRowAsScikitLearn() {
        let rbm = smallRBM()
        let v = binaryRows(6, 5, seed: 31)
        var generator = SeededGenerator(seed: 5)
        let scores = rbm.pseudoLikelihood(v, using: &generator)
        // The same flips, drawn again from the same seed.
        var replay = SeededGenerator(seed: 5)
        var flipped = v.scalars
        for r in 0..<6 { let i = r * 5 + replay.nextIndex(below: 5); flipped[i] = 1 - flipped[i] }
        let f = rbm.freeEnergy(v), g = rbm.freeEnergy(Tensor(shape: [6, 5], scalars: flipped))
        for r in 0..<6 {
            // score_samples: -V * logaddexp(0, -(F(flipped) - F(v))).
            let expected = -5 * Foundation.log(1 + Foundation.exp(-(g[r] - f[r])))
            XCTAssertEqual(scores[r], expected, accuracy: 1e-6)
            XCTAssertLessThan(scores[r], 0)
        }
    }

    /// Two noisy prototypes of 16 bits.
    private func toyData(seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        let prototypes: [[Float]] = [(0..<16).map { $0 < 8 ? 1 : 0 }, (0..<16).map { $0 % 2 == 0 ? 1 : 0 }]
        var rows: [Float] = []
        for n in 0..<200 {
            for bit in prototypes[n % 2] { rows.append(g.nextUnitFloat() < 0.05 ? 1 - bit : bit) }
        }
        return Tensor(shape: [200, 16], scalars: rows)
    }

    func testTrainingRaisesPseudoLikelihoodAndLowersReconstructionErrorRepeatably() {
        let data = toyData(seed: 3)
        for method in [RBM.Method.contrastiveDivergence(steps: 1), .persistent(steps: 1), .contrastiveDivergence(steps: 3)] {
            let rbm = RBM(visibleCount: 16, hiddenCount: 8, learningRate: 0.1, momentum: 0.5, batchSize: 10, method: method, seed: 4)
            let before = (rbm.meanPseudoLikelihood(data, seed: 1), rbm.reconstructionError(data))
            rbm.fit(data, epochs: 30)
            let after = (rbm.meanPseudoLikelihood(data, seed: 1), rbm.reconstructionError(data))
            XCTAssertGreaterThan(after.0, before.0 + 2, "\(method) pseudo-likelihood")
            XCTAssertLessThan(after.1, before.1 * 0.5, "\(method) reconstruction error")
            let again = RBM(visibleCount: 16, hiddenCount: 8, learningRate: 0.1, momentum: 0.5, batchSize: 10, method: method, seed: 4)
            again.fit(data, epochs: 30)
            XCTAssertEqual(again.weights, rbm.weights, "same seed, same weights")
        }
    }

    func testGibbsSamplesResembleTheTrainingPrototypes() {
        let data = toyData(seed: 3)
        let rbm = RBM(visibleCount: 16, hiddenCount: 8, learningRate: 0.1, momentum: 0.5, batchSize: 10, seed: 4)
        rbm.fit(data, epochs: 40)
        let samples = rbm.gibbs(data.slice(0..<20), steps: 5, meanField: true)
        XCTAssertEqual(samples.shape, [20, 16])
        XCTAssertLessThan(meanSquaredError(samples, data.slice(0..<20)), 0.1)
        XCTAssertEqual(rbm.transform(data).shape, [200, 8])
    }

    func testSaveAndLoadKeepTheModel() throws {
        let rbm = smallRBM(momentum: 0.3)
        rbm.method = .contrastiveDivergence(steps: 2)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-rbm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try rbm.save(to: dir)
        let loaded = try RBM.load(from: dir)
        XCTAssertEqual(loaded.weights, rbm.weights)
        XCTAssertEqual(loaded.visibleBias, rbm.visibleBias)
        XCTAssertEqual(loaded.hiddenBias, rbm.hiddenBias)
        XCTAssertEqual(loaded.method, .contrastiveDivergence(steps: 2))
        XCTAssertEqual(loaded.momentum, 0.3)
        // A weights file with the wrong shape is reported, naming the key.
        try SafeTensors.write(["weights": Tensor.zeros([2, 2]), "visible_bias": rbm.visibleBias, "hidden_bias": rbm.hiddenBias],
                              to: dir + "/" + RBM.weightsFileName)
        XCTAssertThrowsError(try RBM.load(from: dir)) { XCTAssertTrue("\($0)".contains("weights"), "\($0)") }
    }
}
