import TensorCore
import _NeuriteTestSupport
import XCTest

final class ReductionTests: XCTestCase {
    func testWholeTensorReductionsMatchReferenceOnEveryISA() {
        forEachISA { isa in
            for n in [1, 3, 7, 15, 16, 17, 31, 32, 33, 63, 65, 129, 1000, 200_003] {
                let values = randomScalars(n, seed: UInt64(n) + 3)
                let x = Tensor(shape: [n], scalars: values)
                let exactSum = values.reduce(0.0) { $0 + Double($1) }
                XCTAssertEqual(Double(x.sum()), exactSum, accuracy: 1e-6 * Swift.max(1, Swift.abs(exactSum)), "sum n=\(n) \(isa)")
                XCTAssertEqual(Double(x.mean()), exactSum / Double(n), accuracy: 1e-7, "mean n=\(n) \(isa)")
                let largest = values.max()!, smallest = values.min()!
                XCTAssertEqual(x.max(), largest, "max n=\(n) \(isa)")
                XCTAssertEqual(x.min(), smallest, "min n=\(n) \(isa)")
                XCTAssertEqual(x.argmax(), values.firstIndex(of: largest)!, "argmax n=\(n) \(isa)")
                // Rank does not matter for whole-tensor reductions.
                XCTAssertEqual(x.reshaped([1, n, 1]).max(), largest)
            }
            XCTAssertEqual(Tensor(scalar: -2.5).sum(), -2.5)
            XCTAssertEqual(Tensor(scalar: -2.5).argmax(), 0)
            XCTAssertEqual(Tensor(shape: [0], scalars: []).sum(), 0)
            XCTAssertTrue(Tensor(shape: [3, 0], scalars: []).mean().isNaN, "the mean of nothing is NaN")
        }
    }

    func testSumOfTenMillionElementsIsAccurate() {
        let n = 10_000_000
        let x = Tensor(shape: [n], repeating: 0.1)
        let exact = Double(Float(0.1)) * Double(n)
        // A plain Float accumulator would be off by about 10% here.
        XCTAssertEqual(Double(x.sum()), exact, accuracy: exact * 1e-7)
        XCTAssertEqual(x.mean(), 0.1)
        // Alternating large and small magnitudes, summed across many chunks.
        let y = Tensor(shape: [n]) { buffer in
            for i in 0..<n { buffer[i] = i % 2 == 0 ? 1000 : 0.001 }
        }
        let exactY = Double(n / 2) * (1000 + Double(Float(0.001)))
        XCTAssertEqual(Double(y.sum()), exactY, accuracy: exactY * 1e-7)
    }

    /// Float64 reference for reductions along one axis: the tensor viewed as [outer, length, inner].
    private func alongAxis(_ x: Tensor, _ axis: Int) -> (sums: [Double], maxima: [Float], argmax: [Int]) {
        let a = axis < 0 ? axis + x.rank : axis
        let outer = x.shape[..<a].reduce(1, *), length = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
        let v = x.scalars
        var sums = [Double](), maxima = [Float](), argmax = [Int]()
        for o in 0..<outer {
            for i in 0..<inner {
                var s = 0.0, m = -Float.infinity, best = 0
                for k in 0..<length {
                    let value = v[(o * length + k) * inner + i]
                    s += Double(value)
                    if value > m { m = value; best = k }
                }
                sums.append(s); maxima.append(m); argmax.append(best)
            }
        }
        return (sums, maxima, argmax)
    }

    func testAxisReductionsMatchReference() {
        let shapes = [[7], [3, 17], [17, 3], [2, 3, 4], [4, 65, 3], [129, 7], [1, 1], [2, 1, 33], [5, 2, 1100],
                      [300, 257], [3, 16, 15]]
        forEachISA { isa in
            for shape in shapes {
                let n = shape.reduce(1, *)
                let x = Tensor(shape: shape, scalars: randomScalars(n, seed: UInt64(n) + 9))
                for axis in -shape.count..<shape.count {
                    let a = axis < 0 ? axis + shape.count : axis
                    var kept = shape
                    kept[a] = 1
                    var dropped = shape
                    dropped.remove(at: a)
                    let want = alongAxis(x, axis)
                    let label = "\(shape) axis \(axis) \(isa)"

                    let s = x.sum(alongAxis: axis), sk = x.sum(alongAxis: axis, keepingDimension: true)
                    XCTAssertEqual(s.shape, dropped, label)
                    XCTAssertEqual(sk.shape, kept, label)
                    assertClose(s.scalars, want.sums, rtol: 1e-6, atol: 1e-6, label)
                    XCTAssertEqual(sk.scalars, s.scalars, label)
                    // The split over threads (narrower column tiles for few rows) changes no bit.
                    XCTAssertEqual(ThreadPool.withWidthLimit(1) { x.sum(alongAxis: axis) }.scalars, s.scalars, label)
                    XCTAssertEqual(ThreadPool.withWidthLimit(1) { x.max(alongAxis: axis) }.scalars, x.max(alongAxis: axis).scalars, label)

                    let m = x.mean(alongAxis: axis, keepingDimension: true)
                    XCTAssertEqual(m.shape, kept, label)
                    assertClose(m.scalars, want.sums.map { $0 / Double(shape[a]) }, rtol: 1e-6, atol: 1e-7, label)
                    XCTAssertEqual(x.mean(alongAxis: axis).shape, dropped, label)

                    let mx = x.max(alongAxis: axis)
                    XCTAssertEqual(mx.shape, dropped, label)
                    XCTAssertEqual(mx.scalars, want.maxima, label)
                    XCTAssertEqual(x.max(alongAxis: axis, keepingDimension: true).shape, kept, label)

                    XCTAssertEqual(x.argmax(alongAxis: axis), want.argmax, label)
                }
            }
        }
    }

    func testZeroSizeAxes() {
        let x = Tensor.zeros([3, 0])
        XCTAssertEqual(x.sum(alongAxis: 1), Tensor.zeros([3]), "summing an empty axis gives zeros")
        XCTAssertTrue(x.mean(alongAxis: 1).scalars.allSatisfy { $0.isNaN }, "the mean over an empty axis is NaN")
        XCTAssertEqual(x.sum(alongAxis: 0).shape, [0])
        XCTAssertEqual(x.max(alongAxis: 0).shape, [0])
        XCTAssertEqual(x.argmax(alongAxis: 0), [])
        XCTAssertEqual(Tensor.zeros([0, 4, 2]).sum(alongAxis: -1, keepingDimension: true).shape, [0, 4, 1])
    }

    func testNaNPropagatesAndTiesGoToTheFirstIndex() {
        forEachISA { isa in
            for n in [5, 16, 17, 40, 70_000] {
                var values = randomScalars(n, seed: 61)
                values[n / 2] = 5
                values[n - 1] = 5
                let x = Tensor(values)
                XCTAssertEqual(x.argmax(), n / 2, "ties go to the first index, n=\(n) \(isa)")
                values[n - 2] = .nan
                values[n - 1] = .nan
                let y = Tensor(values)
                XCTAssertTrue(y.max().isNaN && y.min().isNaN, "n=\(n) \(isa)")
                XCTAssertTrue(y.sum().isNaN, "n=\(n) \(isa)")
                XCTAssertEqual(y.argmax(), n - 2, "the first NaN counts as the largest, n=\(n) \(isa)")
            }
            let rows = Tensor(shape: [2, 3, 2], scalars: [1, .nan, 3, 0, 2, 7,
                                                          4, 4, 4, 9, .nan, 4])
            // Along axis 1 the columns are [1, 3, 2], [nan, 0, 7], [4, 4, nan], [4, 9, 4].
            XCTAssertEqual(rows.argmax(alongAxis: 1), [1, 0, 2, 1], "\(isa)")
            let maxima = rows.max(alongAxis: 1).scalars
            XCTAssertTrue(maxima[0] == 3 && maxima[1].isNaN && maxima[2].isNaN && maxima[3] == 9, "\(maxima) \(isa)")
            XCTAssertEqual(rows.argmax(alongAxis: -1), [1, 0, 1, 0, 1, 0], "\(isa)")
            let rowMaxima = rows.max(alongAxis: -1).scalars
            XCTAssertEqual(Array(rowMaxima[1..<5]), [3, 7, 4, 9], "\(isa)")
            XCTAssertTrue(rowMaxima[5].isNaN, "\(isa)")
            XCTAssertTrue(rows.max(alongAxis: -1).scalars[0].isNaN)
        }
    }
}
