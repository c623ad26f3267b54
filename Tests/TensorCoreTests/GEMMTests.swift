import TensorCore
import _NeuriteTestSupport
import XCTest

final class GEMMTests: XCTestCase {
    /// Float64 reference: alpha * op(A) op(B) + beta * C on row-major arrays.
    private func reference(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                           a: [Float], lda: Int, b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int) -> [Double] {
        var out = c.map(Double.init)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                let prior = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                out[i * ldc + j] = Double(alpha) * s + prior
            }
        }
        return out
    }

    private func check(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool,
                       alpha: Float = 1, beta: Float = 0, pad: Int = 0, seed: UInt64 = 1,
                       file: StaticString = #filePath, line: UInt = #line) {
        let lda = (transposeA ? m : k) + pad, ldb = (transposeB ? k : n) + pad, ldc = n + pad
        let a = randomScalars((transposeA ? k : m) * lda, seed: seed)
        let b = randomScalars((transposeB ? n : k) * ldb, seed: seed + 1)
        var c = randomScalars(m * ldc, seed: seed + 2)
        if beta == 0 { for i in c.indices { c[i] = .nan } }  // beta = 0 must never read C
        let expected = reference(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                 a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                          beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            }
        }
        // Padding columns of C (j >= n) must be left untouched: compare them too (reference keeps them).
        var expectedAll = expected
        if beta == 0 {
            for i in 0..<m { for j in n..<ldc { expectedAll[i * ldc + j] = .nan } }
        }
        let tolerance = 2e-6 * Double(max(k, 1)).squareRoot() + 1e-6
        assertClose(c, expectedAll, rtol: 1e-5, atol: tolerance,
                    "m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB) alpha=\(alpha) beta=\(beta) isa=\(KernelISA.current)",
                    file: file, line: line)
    }

    func testAwkwardShapesAllTranspositionsEveryISA() {
        let sizes = [1, 3, 7, 17, 63, 65, 129]
        forEachISA { _ in
            var seed: UInt64 = 10
            for m in sizes {
                for n in sizes {
                    // k sweeps a few values per (m, n) pair to keep the run short but varied.
                    for k in [1, 17, 65, 300] where (m * n * k) < 3_000_000 {
                        for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
                            seed += 3
                            check(m: m, n: n, k: k, transposeA: tA, transposeB: tB, seed: seed)
                        }
                    }
                }
            }
        }
    }

    func testAlphaBetaAndLeadingDimensionsEveryISA() {
        forEachISA { _ in
            for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
                check(m: 33, n: 47, k: 29, transposeA: tA, transposeB: tB, alpha: 0.5, beta: 0.75, pad: 5)
                check(m: 13, n: 70, k: 520, transposeA: tA, transposeB: tB, alpha: -2, beta: 1, pad: 3)
                check(m: 200, n: 31, k: 9, transposeA: tA, transposeB: tB, alpha: 1, beta: 0, pad: 1)
            }
        }
    }

    /// One to four rows of C take the unpacked path (a single image through a layer): every
    /// transposition, alpha and beta (beta 0 never reads C), padded leading dimensions, columns
    /// across its 512-column blocks and depths across its 16-lane dot products, on every path.
    func testFewRowsTakeTheUnpackedPathEveryISA() {
        forEachISA { _ in
            var seed: UInt64 = 500
            for m in 1...4 {
                for (n, k) in [(1, 1), (17, 15), (513, 33), (1030, 7), (10, 784)] {
                    for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
                        seed += 3
                        check(m: m, n: n, k: k, transposeA: tA, transposeB: tB, seed: seed)
                        check(m: m, n: n, k: k, transposeA: tA, transposeB: tB, alpha: -0.5, beta: 0.75, pad: 3,
                              seed: seed + 1)
                    }
                }
            }
        }
    }

    func testLargeMultiThreadedProductAcrossBlockBoundaries() {
        // Larger than one MC x KC block and than one NR panel range, so every split and the
        // K-block accumulation (beta = 1 after the first block) are exercised on the thread pool.
        forEachISA { _ in
            check(m: 401, n: 333, k: 517, transposeA: false, transposeB: false, alpha: 1, beta: 0.5)
            check(m: 257, n: 129, k: 700, transposeA: true, transposeB: true)
        }
    }

    func testProductWiderThanOnePackedColumnRange() {
        // K x N beyond the packed-B budget (4 Mi floats) makes several column ranges (NC) of B,
        // each packed and multiplied in turn; the next-panel prefetch stops at each range's end.
        forEachISA { _ in
            check(m: 13, n: 1100, k: 4097, transposeA: false, transposeB: true, alpha: 1, beta: 0.5)
            check(m: 14, n: 1100, k: 4097, transposeA: true, transposeB: false)
        }
    }

    func testSmallOutputWithLongDepthSplitsTheDepthAcrossThreads() {
        // Fewer register tiles than threads and a long K: the depth-split path (partial products
        // summed into C), as in a convolution's kernel gradient columns^T x dy.
        forEachISA { _ in
            check(m: 9, n: 32, k: 5000, transposeA: true, transposeB: false)
            check(m: 3, n: 5, k: 40001, transposeA: false, transposeB: true, alpha: 0.5, beta: 2, pad: 2)
        }
    }

    func testDegenerateSizes() {
        // k = 0: C = beta * C.
        var c: [Float] = [1, 2, 3, 4]
        let dummy: [Float] = [0]
        dummy.withUnsafeBufferPointer { p in
            c.withUnsafeMutableBufferPointer { pc in
                sgemm(transposeA: false, transposeB: false, m: 2, n: 2, k: 0, alpha: 1, a: p.baseAddress!, lda: 1,
                      b: p.baseAddress!, ldb: 2, beta: 2, c: pc.baseAddress!, ldc: 2)
            }
        }
        XCTAssertEqual(c, [2, 4, 6, 8])
    }

    func testTensorMatmul() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3, 2], scalars: [7, 8, 9, 10, 11, 12])
        XCTAssertEqual(a.matmul(b), Tensor(shape: [2, 2], scalars: [58, 64, 139, 154]))
        XCTAssertEqual(Tensor.matmul(a, transposeA: true, a), Tensor(shape: [3, 3], scalars: [17, 22, 27, 22, 29, 36, 27, 36, 45]))
        XCTAssertEqual(Tensor.matmul(a, a, transposeB: true), Tensor(shape: [2, 2], scalars: [14, 32, 32, 77]))
        var c = Tensor(shape: [2, 2], repeating: 1)
        Tensor.gemm(a, b, alpha: 2, beta: -1, into: &c)
        XCTAssertEqual(c, Tensor(shape: [2, 2], scalars: [115, 127, 277, 307]))
    }
}
