import Layers
import TensorCore
import XCTest

/// A user's data given to a model's inference calls gets a typed error, never a trap.
final class InferenceErrorTests: XCTestCase {
    private func model() -> Sequential {
        Sequential(inputShape: [4]) {
            Dense(3, activation: .relu)
            Dense(2)
        }
    }

    func testPredictAndCallOnAnUnbuiltModelThrow() {
        let unbuilt = model()
        for call in [{ try unbuilt.predict(Tensor.zeros([2, 4])) }, { try unbuilt(Tensor.zeros([2, 4])) }] {
            XCTAssertThrowsError(try call()) { error in
                XCTAssertTrue((error as? TrainingError)?.message.contains("is not built") ?? false, "\(error)")
            }
        }
    }

    func testAWrongShapeOrBatchSizeThrowsNamingBothShapes() throws {
        let m = model()
        try m.build(seed: 1)
        for bad in [Tensor.zeros([2, 5]), Tensor.zeros([4]), Tensor.zeros([2, 4, 1]), Tensor(scalar: 1)] {
            XCTAssertThrowsError(try m.predict(bad)) { error in
                let message = (error as? TrainingError)?.message ?? ""
                XCTAssertTrue(message.contains("\(bad.shape)") && message.contains("[4]"), message)
            }
            XCTAssertThrowsError(try m(bad))
        }
        XCTAssertThrowsError(try m.predict(Tensor.zeros([2, 4]), batchSize: 0))
        // The same model with good data: predict in pieces equals one call.
        var g = SeededGenerator(seed: 3)
        let x = Tensor.randomUniform([9, 4], using: &g)
        XCTAssertEqual(try m.predict(x, batchSize: 4), try m(x))
        XCTAssertEqual(try m(x).shape, [9, 2])
    }
}
