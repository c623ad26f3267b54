import Optimizers
import TensorCore
import XCTest

/// `Parameter`'s gradient: sums of contributions, zeroing in O(1), value semantics throughout.
final class ParameterTests: XCTestCase {
    func testGradientSumsContributionsAndZeroingForgetsThem() {
        let p = Parameter(name: "w", value: Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        XCTAssertEqual(p.gradient, Tensor.zeros([2, 2]))
        var contribution = Tensor(shape: [2, 2], scalars: [1, 1, 1, 1])
        p.accumulateGradient(contribution)
        p.accumulateGradient(Tensor(shape: [2, 2], scalars: [0, 1, 2, 3]))
        XCTAssertEqual(p.gradient, Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        // The first contribution was taken without a copy, but it is still a value: changing the
        // caller's tensor afterwards changes nothing here, and the sum did not change the caller's.
        contribution[0, 0] = 100
        XCTAssertEqual(contribution, Tensor(shape: [2, 2], scalars: [100, 1, 1, 1]))
        XCTAssertEqual(p.gradient, Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))

        p.zeroGradient()
        XCTAssertEqual(p.gradient, Tensor.zeros([2, 2]))
        let single = Tensor(shape: [2, 2], scalars: [5, 6, 7, 8])
        p.zeroGradient()
        p.accumulateGradient(single)
        p.gradient.withUnsafeMutableBufferPointer { $0[0] = -1 }  // in-place, through the accessor
        XCTAssertEqual(p.gradient, Tensor(shape: [2, 2], scalars: [-1, 6, 7, 8]))
        XCTAssertEqual(single, Tensor(shape: [2, 2], scalars: [5, 6, 7, 8]))

        p.zeroGradient()
        p.gradient += Tensor(shape: [2, 2], scalars: [1, 0, 0, 1])
        XCTAssertEqual(p.gradient, Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]))
        p.gradient = Tensor(shape: [2, 2], repeating: 3)
        p.accumulateGradient(Tensor(shape: [2, 2], repeating: 1))
        XCTAssertEqual(p.gradient, Tensor(shape: [2, 2], repeating: 4))
    }
}
