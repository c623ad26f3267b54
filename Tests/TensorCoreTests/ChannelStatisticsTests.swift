import TensorCore
import XCTest
import _NeuriteTestSupport

/// The per-channel passes of batch normalisation against Float64 references.
final class ChannelStatisticsTests: XCTestCase {
    /// Shapes with 1, 3, 17 and 64 channels; the last spans many 64-row blocks and several chunks.
    private let shapes: [[Int]] = [[5, 1], [2, 3, 3, 3], [7, 4, 17], [9, 30, 30, 64]]

    private func referenceMoments(_ x: [Float], channels: Int) -> (mean: [Double], variance: [Double]) {
        let rows = x.count / channels
        var mean = [Double](repeating: 0, count: channels), variance = mean
        for r in 0..<rows { for c in 0..<channels { mean[c] += Double(x[r * channels + c]) } }
        for c in 0..<channels { mean[c] /= Double(rows) }
        for r in 0..<rows {
            for c in 0..<channels {
                let d = Double(x[r * channels + c]) - mean[c]
                variance[c] += d * d
            }
        }
        for c in 0..<channels { variance[c] /= Double(rows) }
        return (mean, variance)
    }

    func testMomentsMatchTheReferenceEvenFarFromZero() {
        forEachISA { isa in
            for (index, shape) in shapes.enumerated() {
                let channels = shape.last!
                for offset: Float in [0, 1_000] {
                    // Values near `offset` with unit spread: a naive Σx² - (Σx)² would cancel.
                    let x = randomScalars(shape.reduce(1, *), seed: UInt64(index)).map { $0 + offset }
                    let (mean, variance) = Tensor(shape: shape, scalars: x).channelMoments()
                    let expected = referenceMoments(x, channels: channels)
                    for c in 0..<channels {
                        XCTAssertEqual(mean[c], expected.mean[c], accuracy: 1e-6 * Double(offset) + 1e-6, "\(isa) \(shape) mean")
                        XCTAssertEqual(variance[c], expected.variance[c], accuracy: 1e-4 * expected.variance[c] + 1e-6,
                                       "\(isa) \(shape) variance, offset \(offset)")
                    }
                }
            }
        }
    }

    func testGradientSumsAndAffinePassesMatchTheReference() {
        forEachISA { isa in
            for (index, shape) in shapes.enumerated() {
                let channels = shape.last!, count = shape.reduce(1, *), rows = count / channels
                let x = randomScalars(count, seed: UInt64(10 + index)), dy = randomScalars(count, seed: UInt64(20 + index))
                let mean = randomScalars(channels, seed: UInt64(30 + index))
                let inv = randomScalars(channels, seed: UInt64(40 + index)).map { abs($0) + 0.5 }
                let sums = Tensor.channelGradientSums(Tensor(shape: shape, scalars: dy), Tensor(shape: shape, scalars: x),
                                                      mean: mean, inverseDeviation: inv)
                var sum = [Double](repeating: 0, count: channels), dot = sum
                for r in 0..<rows {
                    for c in 0..<channels {
                        let i = r * channels + c
                        sum[c] += Double(dy[i])
                        dot[c] += Double(dy[i]) * (Double(x[i]) - Double(mean[c])) * Double(inv[c])
                    }
                }
                assertClose(sums.sum.map { Float($0) }, sum, rtol: 1e-5, atol: 1e-4, "\(isa) \(shape) Σdy")
                assertClose(sums.dot.map { Float($0) }, dot, rtol: 1e-5, atol: 1e-4, "\(isa) \(shape) Σdy·x̂")

                let a = randomScalars(channels, seed: 50), b = randomScalars(channels, seed: 51), d = randomScalars(channels, seed: 52)
                let y = Tensor(shape: shape, scalars: x).channelAffine(scale: a, shift: b)
                let z = Tensor.channelAffine(Tensor(shape: shape, scalars: dy), Tensor(shape: shape, scalars: x), a: a, b: b, d: d)
                XCTAssertEqual(y.shape, shape)
                var expectedY = [Double](repeating: 0, count: count), expectedZ = expectedY
                for i in 0..<count {
                    let c = i % channels
                    let ax: Double = Double(a[c]) * Double(x[i])
                    expectedY[i] = ax + Double(b[c])
                    let ady: Double = Double(a[c]) * Double(dy[i])
                    let bx: Double = Double(b[c]) * Double(x[i])
                    expectedZ[i] = ady + bx + Double(d[c])
                }
                assertClose(y.scalars, expectedY, rtol: 1e-6, atol: 1e-6, "\(isa) \(shape) affine")
                assertClose(z.scalars, expectedZ, rtol: 1e-5, atol: 1e-5, "\(isa) \(shape) two-input affine")
            }
        }
    }

    /// Batch normalisation's input gradient written over the output gradient: the same bits as
    /// the returning forms (with and without the relu mask), in the output gradient's own storage
    /// when nothing else holds it, and into a new one, the other holder's values untouched, when
    /// something does.
    func testOverwritingAffineGivesTheSameBitsInPlaceAndLeavesSharedStorageAlone() {
        forEachISA { isa in
            for (index, shape) in shapes.enumerated() {
                let channels = shape.last!, count = shape.reduce(1, *)
                let x = Tensor(shape: shape, scalars: randomScalars(count, seed: UInt64(60 + index)))
                let dyScalars = randomScalars(count, seed: UInt64(70 + index))
                let a = randomScalars(channels, seed: 71), b = randomScalars(channels, seed: 72), d = randomScalars(channels, seed: 73)
                let scale = randomScalars(channels, seed: 74), shift = randomScalars(channels, seed: 75)
                for relu in [false, true] {
                    let dy = Tensor(shape: shape, scalars: dyScalars)
                    let expected = relu ? Tensor.channelAffine(dy, x, reluScale: scale, reluShift: shift, a: a, b: b, d: d)
                                        : Tensor.channelAffine(dy, x, a: a, b: b, d: d)
                    // Unique: written in place.
                    var unique = Tensor(shape: shape, scalars: dyScalars)
                    let before = unique.withUnsafeBufferPointer { $0.baseAddress }
                    Tensor.channelAffine(overwriting: &unique, x, reluScale: relu ? scale : nil, reluShift: relu ? shift : nil,
                                         a: a, b: b, d: d)
                    XCTAssertEqual(unique.withUnsafeBufferPointer { $0.baseAddress }, before, "\(isa) \(shape) relu \(relu): not in place")
                    XCTAssertEqual(unique.shape, shape)
                    XCTAssertEqual(unique.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(isa) \(shape) relu \(relu) in place")
                    // Shared: a new tensor, the other holder unchanged.
                    var shared = Tensor(shape: shape, scalars: dyScalars)
                    let holder = shared
                    Tensor.channelAffine(overwriting: &shared, x, reluScale: relu ? scale : nil, reluShift: relu ? shift : nil,
                                         a: a, b: b, d: d)
                    XCTAssertEqual(holder.scalars, dyScalars, "\(isa) \(shape) relu \(relu): a shared tensor was written")
                    XCTAssertEqual(shared.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "\(isa) \(shape) relu \(relu) shared")
                }
            }
        }
    }

    func testSumsAreTheSameBitsOnOneThreadAndOnAll() {
        let shape = [16, 26, 26, 32]
        let x = Tensor(shape: shape, scalars: randomScalars(shape.reduce(1, *), seed: 9))
        let dy = Tensor(shape: shape, scalars: randomScalars(shape.reduce(1, *), seed: 10))
        let mean = [Float](repeating: 0.1, count: 32), inv = [Float](repeating: 2, count: 32)
        let one = ThreadPool.withWidthLimit(1) { (x.channelMoments(), Tensor.channelGradientSums(dy, x, mean: mean, inverseDeviation: inv)) }
        let all = (x.channelMoments(), Tensor.channelGradientSums(dy, x, mean: mean, inverseDeviation: inv))
        XCTAssertEqual(one.0.mean, all.0.mean)
        XCTAssertEqual(one.0.variance, all.0.variance)
        XCTAssertEqual(one.1.sum, all.1.sum)
        XCTAssertEqual(one.1.dot, all.1.dot)
    }
}
