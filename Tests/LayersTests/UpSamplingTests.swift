import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

final class UpSamplingTests: XCTestCase {
    func testNearestRepeatsEachPixelIntoABlock() {
        let layer = UpSampling2D(size: (2, 3))
        XCTAssertEqual(convTestBuild(layer, [2, 2, 2]), [4, 6, 2])
        let x = Tensor(shape: [1, 2, 2, 2], scalars: [1, 10, 2, 20, 3, 30, 4, 40])
        let y = layer.forward(x, training: false)
        XCTAssertEqual(y.shape, [1, 4, 6, 2])
        for r in 0..<4 {
            for c in 0..<6 {
                let source = (r / 2) * 2 + c / 3
                XCTAssertEqual(y[0, r, c, 0], Float(source + 1))
                XCTAssertEqual(y[0, r, c, 1], Float((source + 1) * 10))
            }
        }
    }

    /// The finite-difference check is `LayerHarnessTests.testUpSampling2D`'s.
    func testBackwardSumsEachBlock() {
        let layer = UpSampling2D(size: (2, 2))
        convTestBuild(layer, [3, 2, 3])
        let x = randomTensor([2, 3, 2, 3], seed: 11)
        let ones = Tensor.ones([2, 6, 4, 3])
        _ = layer.forward(x, training: true)
        XCTAssertEqual(layer.backward(ones), Tensor(shape: [2, 3, 2, 3], repeating: 4))
    }

    func testConfigRoundTripsAndRejectsBilinear() {
        convTestAssertConfigRoundTrip(UpSampling2D(size: (3, 2), name: "up"))
        convTestAssertLayerError(mentioning: ["interpolation", "nearest"]) {
            _ = try UpSampling2D(config: ["size": .ints([2, 2]), "interpolation": .string("bilinear")])
        }
        convTestAssertLayerError(mentioning: ["UpSampling2D", "[4, 4]"]) {
            _ = try UpSampling2D().outputShape(for: [4, 4])
        }
    }
}
