import TensorCore
import _NeuriteTestSupport
import XCTest

final class ArithmeticTests: XCTestCase {
    private enum Op: String, CaseIterable {
        case add = "+", subtract = "-", multiply = "*", divide = "/"

        func double(_ a: Double, _ b: Double) -> Double {
            switch self {
            case .add: a + b
            case .subtract: a - b
            case .multiply: a * b
            case .divide: a / b
            }
        }

        func tensors(_ a: Tensor, _ b: Tensor) -> Tensor {
            switch self {
            case .add: a + b
            case .subtract: a - b
            case .multiply: a * b
            case .divide: a / b
            }
        }

        func inPlace(_ a: inout Tensor, _ b: Tensor) {
            switch self {
            case .add: a += b
            case .subtract: a -= b
            case .multiply: a *= b
            case .divide: a /= b
            }
        }
    }

    /// Random values in [-1.5, -0.5) ∪ [0.5, 1.5), safe to divide by.
    private func tensor(_ shape: [Int], seed: UInt64) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, scalars: randomScalars(n, seed: seed).map { $0 < 0 ? $0 - 0.5 : $0 + 0.5 })
    }

    /// Float64 broadcast reference, written independently of the library: shapes padded on the left
    /// with 1s, every output multi-index mapped to each operand by zeroing its broadcast axes.
    private func reference(_ a: Tensor, _ b: Tensor, _ f: (Double, Double) -> Double) -> (shape: [Int], values: [Double]) {
        let rank = Swift.max(a.rank, b.rank)
        let pa = [Int](repeating: 1, count: rank - a.rank) + a.shape
        let pb = [Int](repeating: 1, count: rank - b.rank) + b.shape
        let out = (0..<rank).map { pa[$0] == 1 ? pb[$0] : pa[$0] }
        let n = out.reduce(1, *)
        let av = a.scalars, bv = b.scalars
        var values = [Double]()
        values.reserveCapacity(n)
        var index = [Int](repeating: 0, count: rank)
        for _ in 0..<n {
            var ia = 0, ib = 0
            for k in 0..<rank {
                ia = ia * pa[k] + (pa[k] == 1 ? 0 : index[k])
                ib = ib * pb[k] + (pb[k] == 1 ? 0 : index[k])
            }
            values.append(f(Double(av[ia]), Double(bv[ib])))
            var k = rank - 1
            while k >= 0 {
                index[k] += 1
                if index[k] < out[k] { break }
                index[k] = 0
                k -= 1
            }
        }
        return (out, values)
    }

    private let awkwardPairs: [([Int], [Int])] = [
        ([7], [7]), ([1], [17]), ([17], [1]), ([], [63]), ([65], []), ([], []), ([1], []),
        ([3, 17], [17]), ([15], [4, 15]), ([129, 7], [129, 1]), ([1, 33], [31, 1]), ([7, 1], [1, 65]),
        ([3, 1, 5], [4, 1]), ([2, 3, 4, 16], [16]), ([2, 3, 4, 5], [3, 1, 1]), ([2, 1, 3, 1], [1, 4, 1, 5]),
        ([5, 1, 17], [1, 1, 17]), ([63, 16], [63, 16]), ([2, 31], [1, 1, 31]), ([4, 3, 2], [4, 1, 2]),
        ([1, 1], [3, 1]), ([2, 1, 3], [2, 5, 3]), ([0, 3], [3]), ([4, 0], [4, 1]), ([0], [1]), ([3, 0, 2], [1, 2]),
    ]

    func testBroadcastShapeFollowsNumpyRules() {
        XCTAssertEqual(Tensor.broadcastShape([2, 3], [3]), [2, 3])
        XCTAssertEqual(Tensor.broadcastShape([3], [2, 3]), [2, 3])
        XCTAssertEqual(Tensor.broadcastShape([3, 1, 5], [4, 1]), [3, 4, 5])
        XCTAssertEqual(Tensor.broadcastShape([8, 1], [1, 6]), [8, 6])
        XCTAssertEqual(Tensor.broadcastShape([5, 7, 7, 3], [3]), [5, 7, 7, 3])
        XCTAssertEqual(Tensor.broadcastShape([], [4, 2]), [4, 2])
        XCTAssertEqual(Tensor.broadcastShape([], []), [])
        XCTAssertEqual(Tensor.broadcastShape([1], [1, 1, 1]), [1, 1, 1])
        XCTAssertEqual(Tensor.broadcastShape([0], [1]), [0])
        XCTAssertEqual(Tensor.broadcastShape([1], [0]), [0])
        XCTAssertEqual(Tensor.broadcastShape([2, 0], [2, 1]), [2, 0])
        // Incompatible pairs ([2, 3] with [4]) stop with a precondition naming both shapes;
        // preconditions cannot be caught in XCTest, so only the accepted pairs are checked.
    }

    func testBinaryOperatorsMatchFloat64ReferenceOnAwkwardBroadcasts() {
        var seed: UInt64 = 100
        for (sa, sb) in awkwardPairs {
            let a = tensor(sa, seed: seed), b = tensor(sb, seed: seed + 1)
            seed += 2
            for op in Op.allCases {
                for (x, y) in [(a, b), (b, a)] {
                    let got = op.tensors(x, y)
                    let want = reference(x, y, op.double)
                    XCTAssertEqual(got.shape, want.shape, "\(x.shape) \(op.rawValue) \(y.shape)")
                    // One IEEE operation on floats is exactly the rounded Float64 result.
                    XCTAssertEqual(got.scalars, want.values.map { Float($0) }, "\(x.shape) \(op.rawValue) \(y.shape)")
                }
            }
        }
    }

    func testLargeOperandsSplitOverThePoolMatchTheReference() {
        let pairs: [([Int], [Int])] = [
            ([70_001], [70_001]), ([70_001], []), ([], [70_001]), ([257, 300], [300]), ([300], [257, 300]),
            ([300, 257], [300, 1]), ([4, 1, 20_000], [3, 1]),
        ]
        var seed: UInt64 = 500
        for (sa, sb) in pairs {
            let a = tensor(sa, seed: seed), b = tensor(sb, seed: seed + 1)
            seed += 2
            for op in [Op.subtract, .divide] {
                let got = op.tensors(a, b)
                let want = reference(a, b, op.double)
                XCTAssertEqual(got.shape, want.shape)
                XCTAssertEqual(got.scalars, want.values.map { Float($0) }, "\(sa) \(op.rawValue) \(sb)")
            }
        }
    }

    func testScalarFormsAndNegation() {
        for shape in [[], [1], [17], [3, 33], [70_000]] {
            let x = tensor(shape, seed: 7)
            let xs = x.scalars.map(Double.init)
            let s: Float = 0.75
            let d = Double(s)
            XCTAssertEqual((x + s).scalars, xs.map { Float($0 + d) })
            XCTAssertEqual((x - s).scalars, xs.map { Float($0 - d) })
            XCTAssertEqual((x * s).scalars, xs.map { Float($0 * d) })
            XCTAssertEqual((x / s).scalars, xs.map { Float($0 / d) })
            XCTAssertEqual((s + x).scalars, xs.map { Float(d + $0) })
            XCTAssertEqual((s - x).scalars, xs.map { Float(d - $0) })
            XCTAssertEqual((s * x).scalars, xs.map { Float(d * $0) })
            XCTAssertEqual((s / x).scalars, xs.map { Float(d / $0) })
            XCTAssertEqual((-x).scalars, xs.map { Float(-$0) })
            XCTAssertEqual((x * 2).shape, shape)

            var y = x
            y += s; y *= 3; y -= 1; y /= 2
            XCTAssertEqual(y.scalars, xs.map { v -> Float in
                let added = Float(v + d), scaled = Float(Double(added) * 3), shifted = Float(Double(scaled) - 1)
                return Float(Double(shifted) / 2)
            })
        }
    }

    func testInPlaceOperatorsMatchOutOfPlaceAndReuseAUniqueBuffer() {
        let pairs: [([Int], [Int])] = [
            ([7], [7]), ([17], []), ([17], [1]), ([129, 7], [7]), ([129, 7], [129, 1]), ([3, 4, 5], [4, 1]),
            ([2, 3, 4, 16], [3, 1, 16]), ([300, 257], [257]), ([300, 257], [300, 1]), ([70_001], [1]), ([4, 0], [1]),
        ]
        var seed: UInt64 = 900
        for (sl, sr) in pairs {
            let rhs = tensor(sr, seed: seed + 1)
            for op in Op.allCases {
                var lhs = tensor(sl, seed: seed)
                let expected = op.tensors(lhs, rhs)
                let before = lhs.withUnsafeBufferPointer { $0.baseAddress }
                op.inPlace(&lhs, rhs)
                let after = lhs.withUnsafeBufferPointer { $0.baseAddress }
                XCTAssertEqual(lhs.shape, sl)
                XCTAssertEqual(lhs, expected, "\(sl) \(op.rawValue)= \(sr)")
                XCTAssertEqual(before, after, "\(sl) \(op.rawValue)= \(sr) should update the unique buffer in place")
            }
            seed += 2
        }
        // Scalar in-place forms reuse the buffer too.
        var x = tensor([65], seed: 1)
        let before = x.withUnsafeBufferPointer { $0.baseAddress }
        x *= 2
        x += 1
        XCTAssertEqual(before, x.withUnsafeBufferPointer { $0.baseAddress })
    }

    func testInPlaceOnASharedBufferCopiesFirst() {
        var a = tensor([3, 17], seed: 3)
        let original = a
        let b = tensor([17], seed: 4)
        a += b
        XCTAssertEqual(original, tensor([3, 17], seed: 3), "the other owner of the buffer must not see the update")
        XCTAssertEqual(a, original + b)
        var c = tensor([33], seed: 5)
        c += c  // the right-hand side aliases the left
        XCTAssertEqual(c, tensor([33], seed: 5) * 2)
    }

    func testReducedToShapeSumsBroadcastAxes() {
        let x = tensor([4, 3, 5], seed: 11)
        let v = x.scalars.map(Double.init)
        func expected(_ target: [Int]) -> [Double] {
            let t = [Int](repeating: 1, count: 3 - target.count) + target
            var out = [Double](repeating: 0, count: t.reduce(1, *))
            for i in 0..<4 { for j in 0..<3 { for k in 0..<5 {
                let o = ((t[0] == 1 ? 0 : i) * t[1] + (t[1] == 1 ? 0 : j)) * t[2] + (t[2] == 1 ? 0 : k)
                out[o] += v[(i * 3 + j) * 5 + k]
            } } }
            return out
        }
        for target in [[4, 3, 5], [3, 5], [5], [3, 1], [4, 1, 1], [4, 1, 5], [1, 3, 1], [1], [], [1, 1, 1], [1, 5]] {
            let r = x.reduced(toShape: target)
            XCTAssertEqual(r.shape, target)
            assertClose(r.scalars, expected(target), rtol: 1e-6, atol: 1e-6, "target \(target)")
        }
        // Larger, with long runs in both the summed and the kept axes.
        let big = tensor([33, 2, 129], seed: 12)
        let bv = big.scalars.map(Double.init)
        var rows = [Double](repeating: 0, count: 33), columns = [Double](repeating: 0, count: 129)
        for i in 0..<33 { for j in 0..<2 { for k in 0..<129 {
            rows[i] += bv[(i * 2 + j) * 129 + k]; columns[k] += bv[(i * 2 + j) * 129 + k]
        } } }
        assertClose(big.reduced(toShape: [33, 1, 1]).scalars, rows, rtol: 1e-6, atol: 1e-5)
        assertClose(big.reduced(toShape: [129]).scalars, columns, rtol: 1e-6, atol: 1e-5)
        XCTAssertEqual(Tensor.zeros([0, 3]).reduced(toShape: [3]), Tensor.zeros([3]))
    }

    func testReducedToShapeIsTheGradientOfABroadcast() {
        let a = tensor([5, 3, 4], seed: 21)
        let weights = tensor([5, 3, 4], seed: 22)
        for shape in [[4], [3, 1], [1, 3, 4], []] {
            let b = tensor(shape, seed: 23)
            checkGradient(of: { weightedSum(a * $0, weights) }, at: b,
                          analytic: (weights * a).reduced(toShape: shape), "b shape \(shape)")
            checkGradient(of: { weightedSum(a + $0, weights) }, at: b,
                          analytic: weights.reduced(toShape: shape), "b shape \(shape)")
        }
    }
}
