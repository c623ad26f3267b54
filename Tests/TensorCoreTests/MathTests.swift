import Foundation
import TensorCore
import _NeuriteTestSupport
import XCTest

final class MathTests: XCTestCase {
    /// The distance from `y` to the exact value `exact`, in units of the last place of the Float
    /// nearest `exact` (subnormals count in units of the smallest subnormal). 0 when both are the
    /// same NaN or infinity; infinite for a NaN or infinity where none belongs.
    private func ulpError(_ y: Float, _ exact: Double) -> Double {
        if exact.isNaN { return y.isNaN ? 0 : .infinity }
        let rounded = Float(exact)
        if rounded.isInfinite { return y == rounded ? 0 : .infinity }
        if !y.isFinite {
            // Allow overflow to infinity right at the edge of the Float range.
            let edge = Double(Float.greatestFiniteMagnitude) * (1 - 1e-6)
            return y.isInfinite && Swift.abs(exact) > edge && (y > 0) == (exact > 0) ? 0 : .infinity
        }
        let unit = Double(Swift.max(rounded.magnitude, Float.leastNormalMagnitude).ulp)
        return Swift.abs(Double(y) - exact) / unit
    }

    /// Every 8191st bit pattern (all signs and exponents, NaNs, infinities and subnormals), a dense
    /// sweep of -100...100, and the small and special values where the kernels switch methods.
    private lazy var sweep: [Float] = {
        var values = [Float]()
        var bits: UInt64 = 0
        while bits < 1 << 32 {
            values.append(Float(bitPattern: UInt32(bits)))
            bits += 8191
        }
        for i in 0...200_000 { values.append(-100 + Float(i) * 0.001) }
        for i in 0...4000 { values.append(Float(i - 2000) * 1e-4) }
        values += [0, -0.0, .infinity, -.infinity, .nan, 1, -1, 0.625, -0.625, 0.6249999, 9.01, 9.1, -9.1,
                   88.72, 88.7228, 88.73, -87.33, -88, -100, -103.9, -104, -104.5,
                   .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, 1e-30, -1e-30]
        return values
    }()

    private func sigmoidReference(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    func testVectorMathKernelsOnEveryISAAreWithinAFewUlps() {
        let input = Tensor(sweep)
        let x = sweep.map(Double.init)
        let cases: [(String, (Tensor) -> Tensor, (Double) -> Double, Double)] = [
            ("exp", { $0.exp() }, { Foundation.exp($0) }, 1.5),
            ("log", { $0.log() }, { Foundation.log($0) }, 1.5),
            ("tanh", { $0.tanh() }, { Foundation.tanh($0) }, 2),
            ("sigmoid", { $0.sigmoid() }, sigmoidReference, 3),
        ]
        for (name, function, reference, bound) in cases {
            let exact = x.map(reference)
            forEachISA { isa in
                let y = function(input).scalars
                var worst = 0.0, worstX: Float = 0
                for i in y.indices {
                    let e = ulpError(y[i], exact[i])
                    if !(e <= worst) { worst = e; worstX = sweep[i] }
                }
                XCTAssertLessThanOrEqual(worst, bound, "\(name) on \(isa): \(worst) ulp at x = \(worstX)")
            }
        }
    }

    func testVectorMathSpecialValuesOnEveryISA() {
        forEachISA { isa in
            let e = Tensor([-.infinity, .infinity, .nan, 89, 200, -104, -1000, 0, 1, -100]).exp().scalars
            XCTAssertEqual(Array(e[0..<2]), [0, .infinity], "\(isa)")
            XCTAssertTrue(e[2].isNaN, "\(isa)")
            XCTAssertEqual(Array(e[3..<8]), [.infinity, .infinity, 0, 0, 1], "\(isa)")
            XCTAssertEqual(Double(e[8]), M_E, accuracy: 3e-7, "\(isa)")
            XCTAssertTrue(e[9] > 0 && e[9] < .leastNormalMagnitude, "exp(-100) is a subnormal on \(isa)")

            let l = Tensor([0, -0.0, -1, -.infinity, .infinity, .nan, 1, .leastNonzeroMagnitude]).log().scalars
            XCTAssertEqual(Array(l[0..<2]), [-.infinity, -.infinity], "\(isa)")
            XCTAssertTrue(l[2].isNaN && l[3].isNaN && l[5].isNaN, "\(isa)")
            XCTAssertEqual(l[4], .infinity, "\(isa)")
            XCTAssertEqual(l[6], 0, "\(isa)")
            XCTAssertEqual(Double(l[7]), Foundation.log(Double(Float.leastNonzeroMagnitude)), accuracy: 2e-5, "\(isa)")

            let t = Tensor([.infinity, -.infinity, 20, -20, -0.0, .nan, 1e-30]).tanh().scalars
            XCTAssertEqual(Array(t[0..<4]), [1, -1, 1, -1], "\(isa)")
            XCTAssertTrue(t[4] == 0 && t[4].sign == .minus, "tanh(-0) is -0 on \(isa)")
            XCTAssertTrue(t[5].isNaN, "\(isa)")
            XCTAssertEqual(t[6], 1e-30, "\(isa)")

            let s = Tensor([-.infinity, .infinity, -1000, 1000, 0, .nan, -90]).sigmoid().scalars
            XCTAssertEqual(Array(s[0..<5]), [0, 1, 0, 1, 0.5], "\(isa)")
            XCTAssertTrue(s[5].isNaN, "\(isa)")
            XCTAssertEqual(Double(s[6]) / Foundation.exp(-90.0), 1, accuracy: 1e-3, "sigmoid(-90) keeps its subnormal value on \(isa)")
        }
    }

    func testSqrtIsCorrectlyRoundedOnEveryISA() {
        // IEEE 754 square roots are correctly rounded, and so is Float(Double(x).squareRoot())
        // (a Double has more than 2 * 24 + 2 bits), so the two must agree bit for bit: zeros
        // keep their sign, subnormals are exact, negatives and NaN give NaN. The sweep (over
        // 64Ki values) is split over the pool; the short arrays go through the remainder code.
        let specials: [Float] = [0, -0.0, .infinity, -.infinity, .nan, -1, -.leastNonzeroMagnitude,
                                 .leastNonzeroMagnitude, Float(bitPattern: 0x007f_ffff), .leastNormalMagnitude,
                                 .greatestFiniteMagnitude, 1, 2, 4, 0.25, 1e-30, 3e38]
        func check(_ x: [Float], _ label: String) {
            let y = Tensor(x).sqrt().scalars
            for i in x.indices {
                let want = Float(Double(x[i]).squareRoot())
                if !(y[i].bitPattern == want.bitPattern || (y[i].isNaN && want.isNaN)) {
                    XCTFail("sqrt(\(x[i])) = \(y[i]), expected \(want) (\(label))")
                    return
                }
            }
        }
        forEachISA { isa in
            check(sweep + specials, "sweep, \(isa)")
            for n in 1...specials.count { check(Array(specials.prefix(n)), "\(n) special values, \(isa)") }
            check(Array(repeating: 0, count: 16) + specials, "special values after a full vector, \(isa)")
        }
    }

    func testVectorMathTailsMatchFullVectorsOnEveryISA() {
        // Each lane computes independently, so a value must not depend on where it sits in the
        // array: prefixes of every length (the vector tails) must agree exactly with the full run.
        let data = randomScalars(80, seed: 77).map { $0 * 12 }
        let positive = data.map { Swift.abs($0) + 1e-3 }
        forEachISA { isa in
            let fullExp = Tensor(data).exp().scalars, fullTanh = Tensor(data).tanh().scalars
            let fullSigmoid = Tensor(data).sigmoid().scalars, fullLog = Tensor(positive).log().scalars
            for n in Array(0...40) + [47, 48, 49, 63, 64, 65, 79] {
                let x = Tensor(Array(data[0..<n])), p = Tensor(Array(positive[0..<n]))
                XCTAssertEqual(x.exp().scalars, Array(fullExp[0..<n]), "exp n=\(n) \(isa)")
                XCTAssertEqual(x.tanh().scalars, Array(fullTanh[0..<n]), "tanh n=\(n) \(isa)")
                XCTAssertEqual(x.sigmoid().scalars, Array(fullSigmoid[0..<n]), "sigmoid n=\(n) \(isa)")
                XCTAssertEqual(p.log().scalars, Array(fullLog[0..<n]), "log n=\(n) \(isa)")
            }
            // And all paths agree closely with each other (same algorithm, same constants).
            let reference = data.map { Foundation.exp(Double($0)) }
            assertClose(fullExp, reference, rtol: 3e-7, atol: 0, "exp \(isa)")
        }
    }

    func testElementwiseFunctionsMatchFloat64Reference() {
        for shape in [[1], [3], [7, 17], [63], [65], [129, 3], [2, 3, 16], [70_000]] {
            let n = shape.reduce(1, *)
            let values = randomScalars(n, seed: UInt64(n)).map { $0 * 4 }
            let x = Tensor(shape: shape, scalars: values)
            let v = values.map(Double.init)
            func check(_ got: Tensor, _ f: (Double) -> Double, rtol: Double = 0, atol: Double = 0, _ name: String,
                       line: UInt = #line) {
                XCTAssertEqual(got.shape, shape, name, line: line)
                if rtol == 0 && atol == 0 {
                    XCTAssertEqual(got.scalars, v.map { Float(f($0)) }, "\(name) \(shape)", line: line)
                } else {
                    assertClose(got.scalars, v.map(f), rtol: rtol, atol: atol, "\(name) \(shape)", line: line)
                }
            }
            check(x.abs().sqrt(), { Swift.abs($0).squareRoot() }, "sqrt")
            check(x.squared(), { $0 * $0 }, "squared")
            check(x.abs(), { Swift.abs($0) }, "abs")
            check(x.relu(), { Swift.max($0, 0) }, "relu")
            check(x.leakyRelu(), { $0 < 0 ? Double(Float(0.01)) * $0 : $0 }, "leakyRelu")
            check(x.leakyRelu(alpha: 0.2), { $0 < 0 ? Double(Float(0.2)) * $0 : $0 }, "leakyRelu 0.2")
            check(x.elu(), { $0 > 0 ? $0 : Foundation.expm1($0) }, rtol: 5e-7, atol: 1e-30, "elu")
            check(x.elu(alpha: 0.5), { $0 > 0 ? $0 : 0.5 * Foundation.expm1($0) }, rtol: 5e-7, atol: 1e-30, "elu 0.5")
            check(x.clipped(to: -1.5...2), { Swift.min(Swift.max($0, -1.5), 2) }, "clipped")
            check(x.map { $0 * 3 + 1 }, { Double(Float(Float($0) * 3) + 1) }, "map")
        }
        let special = Tensor([.nan, -.infinity, .infinity, -0.0])
        XCTAssertTrue(special.relu().scalars[0].isNaN, "relu keeps NaN")
        XCTAssertEqual(Array(special.relu().scalars[1...]), [0, .infinity, -0.0])
        XCTAssertEqual(Array(special.elu().scalars[1...]), [-1, .infinity, 0])
        XCTAssertTrue(special.clipped(to: 0...1).scalars[0].isNaN, "clipped keeps NaN")
        XCTAssertEqual(Array(special.clipped(to: 0...1).scalars[1...3]), [0, 1, 0])
    }

    func testEluIsAccurateForTinyNegativeInputs() {
        // e^x - 1 cancels for x near 0; the series keeps full relative accuracy there.
        let values: [Float] = [-1e-8, -1e-6, -1e-4, -0.01, -0.1, -0.3, -0.349, -0.35, -0.351, -0.5, -3, -20]
        forEachISA { isa in
            let y = Tensor(values).elu(alpha: 2).scalars
            assertClose(y, values.map { 2 * Foundation.expm1(Double($0)) }, rtol: 3e-7, atol: 0, "\(isa)")
        }
    }

    func testDerivativeHelpersMatchFiniteDifferences() {
        let shape = [7, 9]
        // Inputs kept at least 0.05 from 0, so no finite difference straddles a kink.
        let raw = randomScalars(63, seed: 31).map { $0 * 3 }
        let x = Tensor(shape: shape, scalars: raw.map { $0 < 0 ? $0 - 0.05 : $0 + 0.05 })
        let w = Tensor(shape: shape, scalars: randomScalars(63, seed: 32))
        checkGradient(of: { weightedSum($0.relu(), w) }, at: x,
                      analytic: Tensor.reluBackward(gradient: w, input: x), "relu")
        checkGradient(of: { weightedSum($0.leakyRelu(alpha: 0.1), w) }, at: x,
                      analytic: Tensor.leakyReluBackward(gradient: w, input: x, alpha: 0.1), "leakyRelu")
        checkGradient(of: { weightedSum($0.leakyRelu(), w) }, at: x,
                      analytic: Tensor.leakyReluBackward(gradient: w, input: x), "leakyRelu default alpha")
        checkGradient(of: { weightedSum($0.sigmoid(), w) }, at: x,
                      analytic: Tensor.sigmoidBackward(gradient: w, output: x.sigmoid()), "sigmoid")
        checkGradient(of: { weightedSum($0.tanh(), w) }, at: x,
                      analytic: Tensor.tanhBackward(gradient: w, output: x.tanh()), "tanh")
        checkGradient(of: { weightedSum($0.elu(alpha: 0.7), w) }, at: x,
                      analytic: Tensor.eluBackward(gradient: w, input: x, alpha: 0.7), "elu")
        checkGradient(of: { weightedSum($0.elu(), w) }, at: x,
                      analytic: Tensor.eluBackward(gradient: w, input: x), "elu default alpha")
        // The relu gradient is exactly the gradient or 0.
        let g = Tensor.reluBackward(gradient: w, input: x).scalars
        let expected = zip(w.scalars, x.scalars).map { $1 > 0 ? $0 : 0 }
        XCTAssertEqual(g, expected)
        // Large inputs take the parallel path and must agree with small ones element by element.
        let big = Tensor(shape: [70_000], scalars: randomScalars(70_000, seed: 33))
        let bigW = Tensor(shape: [70_000], scalars: randomScalars(70_000, seed: 34))
        let slice = Tensor(Array(big.scalars[0..<100])), sliceW = Tensor(Array(bigW.scalars[0..<100]))
        XCTAssertEqual(Array(Tensor.eluBackward(gradient: bigW, input: big).scalars[0..<100]),
                       Tensor.eluBackward(gradient: sliceW, input: slice).scalars)
        XCTAssertEqual(Array(Tensor.tanhBackward(gradient: bigW, output: big).scalars[0..<100]),
                       Tensor.tanhBackward(gradient: sliceW, output: slice).scalars)
    }

    func testAddingBiasMatchesTheUnfusedOperationsForEveryActivation() {
        let activations: [ActivationFunction] = [.linear, .relu, .leakyRelu(alpha: 0.2), .sigmoid, .tanh]
        func reference(_ z: Double, _ a: ActivationFunction) -> Double {
            switch a {
            case .linear: z
            case .relu: Swift.max(z, 0)
            case .leakyRelu(let alpha): z < 0 ? Double(alpha) * z : z
            case .sigmoid: 1 / (1 + Foundation.exp(-z))
            case .tanh: Foundation.tanh(z)
            case .elu, .gelu, .softmax: .nan  // not in `activations`
            }
        }
        forEachISA { isa in
            for shape in [[1], [1, 1], [7, 17], [3, 5, 33], [129, 16], [65, 15], [2, 3000], [300, 257]] {
                let n = shape.reduce(1, *), cols = shape.last!
                let x = Tensor(shape: shape, scalars: randomScalars(n, seed: UInt64(n + 1)).map { $0 * 3 })
                let b = Tensor(shape: [cols], scalars: randomScalars(cols, seed: UInt64(cols)))
                let sum = x + b
                for activation in activations {
                    let fused = x.addingBias(b, activation: activation)
                    let unfused: Tensor
                    switch activation {
                    case .linear: unfused = sum
                    case .relu: unfused = sum.relu()
                    case .leakyRelu(let alpha): unfused = sum.leakyRelu(alpha: alpha)
                    case .sigmoid: unfused = sum.sigmoid()
                    case .tanh: unfused = sum.tanh()
                    case .elu, .gelu, .softmax: unfused = activation.forward(sum)
                    }
                    XCTAssertEqual(fused, unfused, "\(shape) \(activation) \(isa)")
                    let exact = sum.scalars.map { reference(Double($0), activation) }
                    assertClose(fused.scalars, exact, rtol: 5e-7, atol: 1e-30, "\(shape) \(activation) \(isa)")

                    var inPlace = x
                    inPlace.addBias(b, activation: activation)  // x still shares the buffer: copies
                    XCTAssertEqual(inPlace, fused, "\(shape) \(activation) in place")
                }
            }
        }
        XCTAssertNotEqual(ActivationFunction.leakyRelu(alpha: 0.1), .leakyRelu(alpha: 0.2))
        XCTAssertEqual(Tensor(shape: [1, 3], scalars: [1, 2, 3]).addingBias(Tensor([1, 1, 1])), Tensor(shape: [1, 3], scalars: [2, 3, 4]))
    }

    func testAddingBiasWithAnUnfusedActivationIsTheBiasThenTheActivation() {
        let x = Tensor(shape: [5, 7], scalars: randomScalars(35, seed: 43).map { $0 * 3 })
        let b = Tensor(shape: [7], scalars: randomScalars(7, seed: 44))
        for activation in [ActivationFunction.elu(alpha: 1), .gelu, .softmax, .leakyRelu(alpha: -0.3)] {
            let expected = activation.forward(x + b)
            XCTAssertEqual(x.addingBias(b, activation: activation), expected, "\(activation)")
            var inPlace = x
            inPlace.addBias(b, activation: activation)
            XCTAssertEqual(inPlace, expected, "\(activation) in place")
            var z = x
            activation.addBiasAndActivate(&z, bias: b)
            XCTAssertEqual(z, expected, "\(activation) addBiasAndActivate")
        }
    }

    func testAddBiasInPlaceReusesAUniqueBuffer() {
        var x = Tensor(shape: [65, 33], scalars: randomScalars(65 * 33, seed: 41))
        let b = Tensor(shape: [33], scalars: randomScalars(33, seed: 42))
        let expected = x.addingBias(b, activation: .tanh)
        let before = x.withUnsafeBufferPointer { $0.baseAddress }
        x.addBias(b, activation: .tanh)
        XCTAssertEqual(x, expected)
        XCTAssertEqual(before, x.withUnsafeBufferPointer { $0.baseAddress })
    }
}

final class StreamedResultTests: XCTestCase {
    /// Results of 4Mi floats or more are streamed to the new tensor with non-temporal stores:
    /// vector by vector from C (`ck_vmap_stream`, `ck_vzip_stream`), or through stack blocks for
    /// the other operations, with unaligned chunk heads and tails either way. They must hold exactly
    /// what the same operations give on small tensors, which take the ordinary path, on every ISA
    /// path, on one thread and on all.
    func testLargeResultsEqualTheSameOperationsInSmallPieces() {
        let count = (4 << 20) + 37
        var xs = randomScalars(count, seed: 5).map { $0 * 8 }
        let ys = randomScalars(count, seed: 6)
        xs.replaceSubrange(100..<104, with: [.nan, -0.0, .infinity, -.infinity])  // compared bit for bit
        let positive = xs.map { Swift.abs($0) + 0.5 }
        let x = Tensor(xs), y = Tensor(ys), p = Tensor(positive)
        typealias Case = (String, (Tensor, Tensor, Tensor) -> Tensor)
        let cases: [Case] = [
            ("x + y", { a, b, _ in a + b }), ("x - y", { a, b, _ in a - b }),
            ("x * y", { a, b, _ in a * b }), ("x / y", { a, b, _ in a / b }),
            ("x * 3", { a, _, _ in a * 3 }), ("2 - x", { a, _, _ in 2 - a }),
            ("relu", { a, _, _ in a.relu() }), ("exp", { a, _, _ in a.exp() }),
            ("log", { _, _, c in c.log() }), ("sqrt", { _, _, c in c.sqrt() }),
            ("tanh", { a, _, _ in a.tanh() }), ("sigmoid", { a, _, _ in a.sigmoid() }),
            ("reluBackward", { a, b, _ in Tensor.reluBackward(gradient: b, input: a) }),
        ]
        forEachISA { isa in
            for width in [1, ThreadPool.shared.width] {
                ThreadPool.withWidthLimit(width) {
                    for (name, operation) in cases {
                        let big = operation(x, y, p)
                        XCTAssertEqual(big.shape, [count], name)
                        let got = big.scalars.map(\.bitPattern)
                        // Pieces at odd offsets and lengths, spread over the whole result, and the last element.
                        for start in Array(stride(from: 3, to: count, by: 499_979)) + [count - 1] {
                            let n = Swift.min(1_001, count - start)
                            let piece = operation(Tensor(Array(xs[start..<start + n])), Tensor(Array(ys[start..<start + n])),
                                                  Tensor(Array(positive[start..<start + n])))
                            if piece.scalars.map(\.bitPattern) != Array(got[start..<start + n]) {
                                XCTFail("\(name) differs at \(start)..<\(start + n) on \(width) threads, \(isa)")
                                break
                            }
                        }
                    }
                }
            }
        }
    }
}
