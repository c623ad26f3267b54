import Foundation
import TensorCore
import Unsupervised
import XCTest
import _NeuriteTestSupport

final class PCATests: XCTestCase {
    func testAxisAlignedCrossHasKnownComponentsAndVariances() {
        // Mean 0, covariance diag(8/3, 2/3) after dividing by N - 1 = 3.
        let x = Tensor(shape: [4, 2], scalars: [2, 0, 0, 1, -2, 0, 0, -1])
        var pca = PCA(componentCount: 2)
        pca.fit(x)
        assertClose(pca.components!, Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]), atol: 1e-6)
        XCTAssertEqual(pca.explainedVariance[0], 8.0 / 3, accuracy: 1e-5)
        XCTAssertEqual(pca.explainedVariance[1], 2.0 / 3, accuracy: 1e-5)
        XCTAssertEqual(pca.explainedVarianceRatio[0], 0.8, accuracy: 1e-6)
        assertClose(pca.transform(x), x, atol: 1e-6)
        assertClose(pca.inverseTransform(pca.transform(x)), x, atol: 1e-6)
    }

    func testPointsOnALineGiveThatDirectionAndNoError() {
        // Points c + t·(0.6, 0.8, 0) for several t: one component explains everything.
        let ts: [Float] = [-3, -1, 0, 2, 5, 7]
        let x = Tensor(shape: [6, 3], scalars: ts.flatMap { [1 + 0.6 * $0, -2 + 0.8 * $0, 4] })
        var pca = PCA(componentCount: 1)
        pca.fit(x)
        assertClose(pca.components!, Tensor(shape: [1, 3], scalars: [0.6, 0.8, 0]), atol: 1e-5)
        XCTAssertEqual(pca.explainedVarianceRatio[0], 1, accuracy: 1e-6)
        XCTAssertLessThan(pca.reconstructionError(x), 1e-9)
        let mean = ts.reduce(0, +) / 6
        assertClose(pca.transform(x).scalars, ts.map { Double($0 - mean) }, atol: 1e-4)
    }

    func testEigendecompositionOfSymmetricMatrices() {
        for n in [1, 2, 7, 50] {
            let r = randomScalars(n * n, seed: UInt64(9 + n)).map(Double.init)
            var a = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { a[i * n + j] = r[i * n + j] + r[j * n + i] } }
            let e = SymmetricEigendecomposition(a, size: n)
            XCTAssertEqual(e.values, e.values.sorted())
            for k in 0..<n {
                let v = e.vector(k)
                for i in 0..<n {
                    let av = (0..<n).reduce(0.0) { $0 + a[i * n + $1] * v[$1] }
                    XCTAssertEqual(av, e.values[k] * v[i], accuracy: 1e-9, "n \(n), eigenpair \(k)")
                }
                for l in 0..<n {
                    let dot = zip(v, e.vector(l)).reduce(0.0) { $0 + $1.0 * $1.1 }
                    XCTAssertEqual(dot, k == l ? 1 : 0, accuracy: 1e-10)
                }
            }
            // The trace is the sum of the eigenvalues.
            XCTAssertEqual(e.values.reduce(0, +), (0..<n).reduce(0.0) { $0 + a[$1 * n + $1] }, accuracy: 1e-9)
        }
    }
}
