import Optimizers
import TensorCore
import XCTest

final class ParameterTests: XCTestCase {
    func testGradientsAccumulateUntilZeroed() {
        let p = Parameter(name: "dense_1.kernel", value: Tensor(shape: [2], scalars: [1, 2]))
        XCTAssertEqual(p.gradient, Tensor.zeros([2]))
        p.accumulateGradient(Tensor(shape: [2], scalars: [0.5, -1]))
        p.accumulateGradient(Tensor(shape: [2], scalars: [0.25, 3]))
        XCTAssertEqual(p.gradient.scalars, [0.75, 2])
        p.zeroGradient()
        XCTAssertEqual(p.gradient.scalars, [0, 0])
        XCTAssertEqual(p.value.scalars, [1, 2])
    }
}
