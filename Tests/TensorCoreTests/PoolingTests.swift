import TensorCore
import _NeuriteTestSupport
import XCTest

/// One pooling configuration over an input [n, h, w, c].
private struct PoolCase: CustomStringConvertible {
    var shape: [Int]
    var pool: (Int, Int)
    var strides: (Int, Int)?
    var padding: Padding

    var description: String { "input \(shape) pool \(pool) strides \(String(describing: strides)) \(padding)" }

    /// The shared Float64 reference (`_NeuriteTestSupport`) for this case.
    var naive: PoolingReference {
        PoolingReference(inputShape: shape, pool: pool, strides: strides, padding: ReferencePadding(padding))
    }

    var outputShape: [Int] { naive.outputShape }

    /// Calls `body(outputIndex, windowInputIndices)` for every output element (see
    /// `PoolingReference.forEachWindow`).
    func forEachWindow(_ body: (Int, [Int]) -> Void) { naive.forEachWindow(body) }

    /// Max values and first-winner indices.
    func referenceMax(_ x: [Float]) -> ([Float], [Int32]) { naive.max(x) }

    /// Means over real cells, in Float64.
    func referenceAverage(_ x: [Float]) -> [Double] { naive.average(x) }

    func tensor(_ scalars: [Float]) -> Tensor { Tensor(shape: shape, scalars: scalars) }
}

private let poolCases: [PoolCase] = [
    PoolCase(shape: [2, 5, 7, 3], pool: (2, 2), strides: nil, padding: .valid),
    PoolCase(shape: [2, 5, 7, 3], pool: (2, 2), strides: nil, padding: .same),
    PoolCase(shape: [1, 7, 5, 17], pool: (3, 3), strides: (2, 2), padding: .same),
    PoolCase(shape: [3, 8, 13, 1], pool: (2, 3), strides: (1, 2), padding: .valid),
    PoolCase(shape: [1, 13, 8, 4], pool: (3, 2), strides: (2, 1), padding: .same),
    PoolCase(shape: [2, 1, 5, 3], pool: (2, 2), strides: nil, padding: .same),
    PoolCase(shape: [1, 5, 5, 2], pool: (5, 5), strides: (1, 1), padding: .valid),
    PoolCase(shape: [2, 7, 7, 3], pool: (3, 3), strides: nil, padding: .same),
    PoolCase(shape: [1, 6, 6, 2], pool: (1, 1), strides: (2, 2), padding: .valid),
    PoolCase(shape: [1, 5, 8, 2], pool: (3, 2), strides: (3, 3), padding: .same),
    PoolCase(shape: [16, 28, 28, 32], pool: (2, 2), strides: nil, padding: .valid),  // large: thread pool paths
    // Whole 16-lane channel blocks, and a partial block after them.
    PoolCase(shape: [2, 6, 5, 16], pool: (2, 2), strides: nil, padding: .same),
    PoolCase(shape: [1, 7, 6, 33], pool: (3, 2), strides: (2, 1), padding: .same),
    // 8 channels (8-lane vectors), alone and after a 16-lane block, with whole 2 x 2 windows
    // (unrolled), odd extents that leave a row and a column out, and clipped `.same` windows.
    PoolCase(shape: [3, 11, 11, 8], pool: (2, 2), strides: nil, padding: .valid),
    PoolCase(shape: [1, 7, 9, 24], pool: (2, 2), strides: nil, padding: .same),
    PoolCase(shape: [2, 5, 6, 8], pool: (3, 3), strides: (1, 2), padding: .same),
]

final class PoolingTests: XCTestCase {
    // MARK: Max pooling

    func testMaxPoolMatchesNaiveReference() {
        forEachISA { _ in
            for (index, c) in poolCases.enumerated() {
                let x = randomScalars(c.shape.reduce(1, *), seed: UInt64(10 + index))
                let (output, indices) = Tensor.maxPool2D(c.tensor(x), poolSize: c.pool, strides: c.strides, padding: c.padding)
                let (values, expectedIndices) = c.referenceMax(x)
                XCTAssertEqual(output.shape, c.outputShape, "\(c)")
                XCTAssertEqual(output.scalars, values, "\(c)")
                XCTAssertEqual(indices, expectedIndices, "\(c)")
            }
        }
    }

    func testPoolingSamePaddingKnownValues() {
        // Keras: MaxPooling2D / AveragePooling2D(pool 2, padding "same") on a 3x3 image 1...9.
        let x = Tensor(shape: [1, 3, 3, 1], scalars: (1...9).map(Float.init))
        let maxed = Tensor.maxPool2D(x, poolSize: (2, 2), padding: .same)
        XCTAssertEqual(maxed.output, Tensor(shape: [1, 2, 2, 1], scalars: [5, 6, 8, 9]))
        XCTAssertEqual(maxed.indices, [4, 5, 7, 8])
        XCTAssertEqual(Tensor.averagePool2D(x, poolSize: (2, 2), padding: .same),
                       Tensor(shape: [1, 2, 2, 1], scalars: [3, 4.5, 7.5, 9]))
    }

    func testMaxPoolPaddingNeverWinsAndNaNPropagates() {
        forEachISA { _ in
            // All inputs negative: a zero from padding would win if padding were read.
            let x = Tensor(shape: [1, 5, 5, 2], repeating: -5)
            let (output, indices) = Tensor.maxPool2D(x, poolSize: (3, 3), strides: (2, 2), padding: .same)
            XCTAssertEqual(output, Tensor(shape: [1, 3, 3, 2], repeating: -5))
            XCTAssertTrue(indices.allSatisfy { $0 >= 0 && $0 < 50 })

            let infinite = Tensor(shape: [1, 3, 3, 1], repeating: -.infinity)
            let (allInfinite, infiniteIndices) = Tensor.maxPool2D(infinite, poolSize: (2, 2), padding: .same)
            XCTAssertEqual(allInfinite.scalars, [Float](repeating: -.infinity, count: 4))
            XCTAssertEqual(infiniteIndices, [0, 2, 6, 8])  // the first real cell of each window

            var withNaN = Tensor(shape: [1, 4, 4, 1], scalars: (0..<16).map(Float.init))
            withNaN[0, 0, 0, 0] = .nan
            let (pooled, nanIndices) = Tensor.maxPool2D(withNaN, poolSize: (2, 2))
            XCTAssertTrue(pooled[0, 0, 0, 0].isNaN)
            XCTAssertEqual(nanIndices[0], 0)
            XCTAssertEqual(Array(pooled.scalars[1...]), [7, 13, 15])

            // A NaN in a lane of the second, partial channel block wins only its own channel.
            var wide = Tensor(shape: [1, 2, 2, 20], scalars: (0..<80).map { Float($0) })
            wide[0, 1, 0, 18] = .nan
            let (widePooled, wideIndices) = Tensor.maxPool2D(wide, poolSize: (2, 2))
            XCTAssertTrue(widePooled[0, 0, 0, 18].isNaN)
            XCTAssertEqual(wideIndices[18], 58)
            XCTAssertEqual(widePooled[0, 0, 0, 19], 79)
            XCTAssertEqual(wideIndices[19], 79)
            XCTAssertEqual(widePooled[0, 0, 0, 3], 63)
        }
    }

    func testMaxPoolBackwardMatchesFiniteDifferences() {
        // Distinct values 0.1 apart, so the ±0.01 probes never change a window's winner.
        for (index, c) in poolCases.prefix(6).enumerated() {
            let count = c.shape.reduce(1, *)
            var g = SeededGenerator(seed: UInt64(40 + index))
            let x = c.tensor(Array(0..<count).shuffled(using: &g).map { Float($0) * 0.1 - 5 })
            let weights = Tensor(shape: c.outputShape, scalars: randomScalars(c.outputShape.reduce(1, *), seed: UInt64(60 + index)))
            let indices = Tensor.maxPool2D(x, poolSize: c.pool, strides: c.strides, padding: c.padding).indices
            let analytic = Tensor.maxPool2DBackward(outputGradient: weights, indices: indices, inputShape: c.shape)
            checkGradient(of: { weightedSum(Tensor.maxPool2D($0, poolSize: c.pool, strides: c.strides, padding: c.padding).output, weights) },
                          at: x, analytic: analytic, "\(c)")
        }
    }

    /// The pooling layers' backward (`maxPool2DBackward` with the window: written densely where
    /// the windows do not overlap) gives the bits of the general scatter, on every ISA path: every
    /// case above (overlapping ones go the general way), inputs with ties, and output gradients
    /// with -0 (stored as +0 by the scatter's add onto zero) and a NaN.
    func testMaxPoolBackwardWithTheWindowMatchesTheScatterBitForBit() {
        forEachISA { isa in
            for (index, c) in poolCases.enumerated() {
                let count = c.shape.reduce(1, *), outputCount = c.outputShape.reduce(1, *)
                let x = c.tensor(randomScalars(count, seed: UInt64(900 + index)).map { ($0 * 3).rounded() })
                var dy = randomScalars(outputCount, seed: UInt64(950 + index))
                dy[0] = -0.0
                if outputCount > 2 { dy[outputCount - 1] = .nan }
                let gradient = Tensor(shape: c.outputShape, scalars: dy)
                let indices = Tensor.maxPool2D(x, poolSize: c.pool, strides: c.strides, padding: c.padding).indices
                let general = Tensor.maxPool2DBackward(outputGradient: gradient, indices: indices, inputShape: c.shape)
                let windowed = Tensor.maxPool2DBackward(outputGradient: gradient, indices: indices, inputShape: c.shape,
                                                        poolSize: c.pool, strides: c.strides, padding: c.padding)
                XCTAssertEqual(windowed.shape, c.shape, "\(isa) \(c)")
                XCTAssertEqual(windowed.scalars.map(\.bitPattern), general.scalars.map(\.bitPattern), "\(isa) \(c)")
                XCTAssertEqual(windowed.scalars.filter { $0 != 0 }.count, general.scalars.filter { $0 != 0 }.count, "\(isa) \(c)")
            }
        }
    }

    func testMaxPoolTiesRouteTheGradientToExactlyOneElementPerWindow() {
        forEachISA { _ in
            // Flat input and an input of many ties, with non-overlapping and overlapping windows.
            let flat = [Float](repeating: 1, count: 50)
            let ties = randomScalars(50, seed: 7).map { $0 < 0 ? Float(0) : 1 }
            let cases = [
                PoolCase(shape: [1, 5, 5, 2], pool: (2, 2), strides: nil, padding: .same),
                PoolCase(shape: [1, 5, 5, 2], pool: (3, 3), strides: (2, 2), padding: .same),
                PoolCase(shape: [1, 5, 5, 2], pool: (3, 3), strides: (1, 1), padding: .valid),
            ]
            for c in cases {
                for x in [flat, ties] {
                    let indices = Tensor.maxPool2D(c.tensor(x), poolSize: c.pool, strides: c.strides, padding: c.padding).indices
                    let outputCount = c.outputShape.reduce(1, *)
                    XCTAssertEqual(indices.count, outputCount)
                    c.forEachWindow { o, cells in
                        // The gradient of this one output alone.
                        var oneHot = [Float](repeating: 0, count: outputCount)
                        oneHot[o] = 1
                        let grad = Tensor.maxPool2DBackward(outputGradient: Tensor(shape: c.outputShape, scalars: oneHot),
                                                            indices: indices, inputShape: c.shape).scalars
                        let nonzero = grad.indices.filter { grad[$0] != 0 }
                        XCTAssertEqual(nonzero.count, 1, "output \(o), \(c)")
                        guard let winner = nonzero.first else { return }
                        XCTAssertEqual(grad[winner], 1, "output \(o), \(c)")
                        XCTAssertTrue(cells.contains(winner), "output \(o) routed outside its window, \(c)")
                        XCTAssertEqual(x[winner], cells.map { x[$0] }.max(), "output \(o), \(c)")
                    }
                    // All outputs at once: the gradient mass is conserved.
                    let all = Tensor.maxPool2DBackward(outputGradient: Tensor(shape: c.outputShape, repeating: 1),
                                                       indices: indices, inputShape: c.shape)
                    XCTAssertEqual(all.scalars.reduce(0, +), Float(outputCount), "\(c)")
                }
            }
        }
    }

    // MARK: Average pooling

    func testAveragePoolMatchesNaiveReference() {
        for (index, c) in poolCases.enumerated() {
            let x = randomScalars(c.shape.reduce(1, *), seed: UInt64(80 + index))
            let y = Tensor.averagePool2D(c.tensor(x), poolSize: c.pool, strides: c.strides, padding: c.padding)
            XCTAssertEqual(y.shape, c.outputShape, "\(c)")
            assertClose(y.scalars, c.referenceAverage(x), rtol: 1e-5, atol: 1e-6, "\(c)")
        }
    }

    func testAveragePoolSamePaddingExcludesPaddingFromTheDivisor() {
        let y = Tensor.averagePool2D(Tensor.ones([2, 5, 7, 3]), poolSize: (3, 3), strides: (2, 2), padding: .same)
        XCTAssertEqual(y, Tensor.ones([2, 3, 4, 3]))
    }

    func testAveragePoolBackwardMatchesFiniteDifferencesAndReference() {
        for (index, c) in poolCases.prefix(10).enumerated() {
            let x = c.tensor(randomScalars(c.shape.reduce(1, *), seed: UInt64(100 + index)))
            let dy = randomScalars(c.outputShape.reduce(1, *), seed: UInt64(120 + index))
            let weights = Tensor(shape: c.outputShape, scalars: dy)
            let analytic = Tensor.averagePool2DBackward(outputGradient: weights, inputShape: c.shape, poolSize: c.pool,
                                                        strides: c.strides, padding: c.padding)
            checkGradient(of: { weightedSum(Tensor.averagePool2D($0, poolSize: c.pool, strides: c.strides, padding: c.padding), weights) },
                          at: x, analytic: analytic, "\(c)")
            var expected = [Double](repeating: 0, count: c.shape.reduce(1, *))
            c.forEachWindow { o, cells in
                for i in cells { expected[i] += Double(dy[o]) / Double(cells.count) }
            }
            assertClose(analytic.scalars, expected, rtol: 1e-5, atol: 1e-6, "\(c)")
        }
        // The large case once, against the reference only.
        let c = poolCases.last!
        let dy = randomScalars(c.outputShape.reduce(1, *), seed: 5)
        let analytic = Tensor.averagePool2DBackward(outputGradient: Tensor(shape: c.outputShape, scalars: dy),
                                                    inputShape: c.shape, poolSize: c.pool, strides: c.strides, padding: c.padding)
        var expected = [Double](repeating: 0, count: c.shape.reduce(1, *))
        c.forEachWindow { o, cells in for i in cells { expected[i] += Double(dy[o]) / Double(cells.count) } }
        assertClose(analytic.scalars, expected, rtol: 1e-5, atol: 1e-6, "\(c)")
    }

    // MARK: Global average pooling

    func testGlobalAveragePoolForwardAndBackward() {
        for shape in [[3, 5, 7, 17], [1, 1, 1, 3], [2, 13, 8, 1], [16, 28, 28, 32]] {
            let (n, positions, c) = (shape[0], shape[1] * shape[2], shape[3])
            let x = randomScalars(shape.reduce(1, *), seed: UInt64(shape.reduce(0, +)))
            let y = Tensor.globalAveragePool2D(Tensor(shape: shape, scalars: x))
            XCTAssertEqual(y.shape, [n, c])
            var expected = [Double](repeating: 0, count: n * c)
            for b in 0..<n {
                for p in 0..<positions { for ch in 0..<c { expected[b * c + ch] += Double(x[(b * positions + p) * c + ch]) } }
            }
            assertClose(y.scalars, expected.map { $0 / Double(positions) }, rtol: 1e-5, atol: 1e-6, "\(shape)")

            let dy = randomScalars(n * c, seed: 3)
            let dx = Tensor.globalAveragePool2DBackward(outputGradient: Tensor(shape: [n, c], scalars: dy), inputShape: shape)
            XCTAssertEqual(dx.shape, shape)
            let expectedDx = (0..<(n * positions * c)).map { i in Double(dy[(i / (positions * c)) * c + i % c]) / Double(positions) }
            assertClose(dx.scalars, expectedDx, rtol: 1e-6, atol: 1e-7, "\(shape)")
        }
        let shape = [2, 3, 4, 3]
        let x = Tensor(shape: shape, scalars: randomScalars(72, seed: 9))
        let weights = Tensor(shape: [2, 3], scalars: randomScalars(6, seed: 10))
        checkGradient(of: { weightedSum(Tensor.globalAveragePool2D($0), weights) }, at: x,
                      analytic: Tensor.globalAveragePool2DBackward(outputGradient: weights, inputShape: shape))
    }
}
