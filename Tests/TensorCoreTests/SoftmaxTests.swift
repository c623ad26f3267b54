import Foundation
import TensorCore
import _NeuriteTestSupport
import XCTest

final class SoftmaxTests: XCTestCase {
    /// Float64 softmax, log-softmax and log-sum-exp of each row along the last axis.
    private func reference(_ x: Tensor) -> (softmax: [Double], logSoftmax: [Double], logSumExp: [Double]) {
        let n = x.shape.last!, v = x.scalars.map(Double.init)
        var softmax = [Double](), logSoftmax = [Double](), lse = [Double]()
        for r in 0..<(n == 0 ? 0 : v.count / n) {
            let row = v[(r * n)..<(r * n + n)]
            let m = row.max()!
            let s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            lse.append(m + Foundation.log(s))
            for value in row {
                softmax.append(Foundation.exp(value - m) / s)
                logSoftmax.append(value - m - Foundation.log(s))
            }
        }
        return (softmax, logSoftmax, lse)
    }

    func testSoftmaxLogSoftmaxAndLogSumExpMatchReferenceOnEveryISA() {
        let shapes = [[1], [7], [3, 17], [65, 15], [129, 33], [2, 3, 16], [5, 31], [4, 1], [200, 400]]
        forEachISA { isa in
            for shape in shapes {
                let n = shape.reduce(1, *)
                let x = Tensor(shape: shape, scalars: randomScalars(n, seed: UInt64(n) + 5).map { $0 * 4 })
                let want = reference(x)
                let label = "\(shape) \(isa)"
                let p = x.softmax(), lp = x.logSoftmax(), lse = x.logSumExp()
                XCTAssertEqual(p.shape, shape, label)
                XCTAssertEqual(lp.shape, shape, label)
                XCTAssertEqual(lse.shape, Array(shape.dropLast()), label)
                assertClose(p.scalars, want.softmax, rtol: 2e-6, atol: 1e-8, "softmax \(label)")
                assertClose(lp.scalars, want.logSoftmax, rtol: 1e-6, atol: 2e-6, "logSoftmax \(label)")
                assertClose(lse.scalars, want.logSumExp, rtol: 1e-6, atol: 1e-6, "logSumExp \(label)")
                // Rows sum to 1.
                let rowSums = p.sum(alongAxis: -1).scalars
                XCTAssertTrue(rowSums.allSatisfy { Swift.abs($0 - 1) < 2e-6 }, "row sums \(label)")
            }
        }
    }

    func testRowLengthsAroundVectorWidthsOnEveryISA() {
        forEachISA { isa in
            for n in Array(1...40) + [47, 63, 64, 65] {
                let x = Tensor(shape: [3, n], scalars: randomScalars(3 * n, seed: UInt64(n)).map { $0 * 8 })
                let want = reference(x)
                assertClose(x.softmax().scalars, want.softmax, rtol: 4e-6, atol: 1e-8, "softmax n=\(n) \(isa)")
                assertClose(x.logSoftmax().scalars, want.logSoftmax, rtol: 1e-6, atol: 4e-6, "logSoftmax n=\(n) \(isa)")
                assertClose(x.logSumExp().scalars, want.logSumExp, rtol: 1e-6, atol: 2e-6, "logSumExp n=\(n) \(isa)")
            }
        }
    }

    func testExtremeLogitsAndInfinities() {
        forEachISA { isa in
            let x = Tensor([1000, 1001, -1000])
            let e1 = Foundation.exp(-1.0), total = 1 + e1
            assertClose(x.softmax().scalars, [e1 / total, 1 / total, 0], rtol: 1e-6, atol: 0, "\(isa)")
            assertClose(x.logSoftmax().scalars, [-1 - Foundation.log(total), -Foundation.log(total), -2001 - Foundation.log(total)],
                        rtol: 1e-7, atol: 1e-6, "\(isa)")
            XCTAssertEqual(Double(x.logSumExp().scalar), 1001 + Foundation.log(total), accuracy: 1e-4, "\(isa)")
            XCTAssertEqual(x.logSumExp().shape, [])

            // A log-softmax far below where the softmax underflows stays finite.
            XCTAssertEqual(Tensor([0, -200]).logSoftmax().scalars, [0, -200], "\(isa)")

            // -inf entries (masked logits) get probability 0.
            let masked = Tensor(shape: [2, 3], scalars: [-.infinity, 0, 1, 2, -.infinity, -.infinity])
            let ez = 1 + Foundation.exp(1.0)
            assertClose(masked.softmax().scalars, [0, 1 / ez, Foundation.exp(1.0) / ez, 1, 0, 0], rtol: 1e-6, atol: 0, "\(isa)")
            let lsm = masked.logSoftmax().scalars
            XCTAssertEqual(lsm[0], -.infinity)
            XCTAssertEqual(Double(lsm[2]), 1 - Foundation.log(ez), accuracy: 1e-6)
            XCTAssertEqual(Array(lsm[3...]), [0, -.infinity, -.infinity])
            assertClose(masked.logSumExp().scalars, [Foundation.log(ez), 2], rtol: 1e-6, atol: 1e-6, "\(isa)")

            // Rows without a defined softmax.
            let allMasked = Tensor([-.infinity, -.infinity, -.infinity])
            XCTAssertTrue(allMasked.softmax().scalars.allSatisfy(\.isNaN))
            XCTAssertTrue(allMasked.logSoftmax().scalars.allSatisfy(\.isNaN))
            XCTAssertEqual(allMasked.logSumExp().scalar, -.infinity)
            let infinite = Tensor([1, .infinity, 2])
            XCTAssertEqual(infinite.logSumExp().scalar, .infinity)
            XCTAssertTrue(infinite.softmax().scalars.allSatisfy(\.isNaN))
            let withNaN = Tensor([1, .nan, 2])
            XCTAssertTrue(withNaN.softmax().scalars.allSatisfy(\.isNaN))
            XCTAssertTrue(withNaN.logSumExp().scalar.isNaN)
        }
    }

    func testZeroSizeShapes() {
        XCTAssertEqual(Tensor.zeros([3, 0]).softmax().shape, [3, 0])
        XCTAssertEqual(Tensor.zeros([0, 5]).logSoftmax().shape, [0, 5])
        XCTAssertEqual(Tensor.zeros([3, 0]).logSumExp(), Tensor(shape: [3], repeating: -.infinity), "log of an empty sum")
        XCTAssertEqual(Tensor.zeros([0, 5]).logSumExp().shape, [0])
        XCTAssertEqual(Tensor([7]).softmax().scalars, [1])
    }

    func testLogSumExpGradientIsTheSoftmax() {
        let x = Tensor(shape: [6, 17], scalars: randomScalars(102, seed: 71).map { $0 * 3 })
        let w = Tensor(shape: [6], scalars: randomScalars(6, seed: 72))
        checkGradient(of: { weightedSum($0.logSumExp(), w) }, at: x,
                      analytic: x.softmax() * w.reshaped([6, 1]))
        // And log-softmax is the log of the softmax.
        assertClose(x.logSoftmax(), x.softmax().log(), rtol: 1e-5, atol: 1e-6)
    }
}
