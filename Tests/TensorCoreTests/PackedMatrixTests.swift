import TensorCore
import XCTest
import _NeuriteTestSupport

/// `PackedMatrix.multiply` gives `sgemm`'s results for the same operands, for both layouts of B,
/// transposed and plain A, several depth and column blocks, and beta 0 and 1.
final class PackedMatrixTests: XCTestCase {
    func testMatchesSGEMM() {
        for (m, n, k) in [(1, 1, 1), (13, 37, 5), (64, 512, 128), (37, 130, 300), (200, 40, 600)] {
            for transposeB in [false, true] {
                for transposeA in [false, true] {
                    for beta: Float in [0, 1] {
                        let a = randomScalars(m * k, seed: 1), b = randomScalars(k * n, seed: 2)
                        let c0 = randomScalars(m * n, seed: 3)
                        var expected = c0, actual = c0
                        let lda = transposeA ? m : k, ldb = transposeB ? k : n
                        a.withUnsafeBufferPointer { pa in
                            b.withUnsafeBufferPointer { pb in
                                expected.withUnsafeMutableBufferPointer { pc in
                                    sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5,
                                          a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                                          beta: beta, c: pc.baseAddress!, ldc: n)
                                }
                                let packed = PackedMatrix(pb.baseAddress!, ldb: ldb, transposed: transposeB, k: k, n: n)
                                actual.withUnsafeMutableBufferPointer { pc in
                                    packed.multiply(transposeA: transposeA, m: m, alpha: 0.5, a: pa.baseAddress!, lda: lda,
                                                    beta: beta, c: pc.baseAddress!, ldc: n)
                                }
                            }
                        }
                        assertClose(actual, expected.map(Double.init), rtol: 1e-5, atol: 1e-5,
                                    "m \(m) n \(n) k \(k) transposeA \(transposeA) transposeB \(transposeB) beta \(beta)")
                    }
                }
            }
        }
    }
}
