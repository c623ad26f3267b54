import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class ReshapeTests: XCTestCase {
    func testFlattenKeepsRowMajorOrderAndUndoesItInBackward() throws {
        let flatten = Flatten()
        XCTAssertEqual(try flatten.outputShape(for: [28, 28, 1]), [784])
        XCTAssertEqual(try flatten.outputShape(for: []), [1])
        let x = Tensor(shape: [2, 2, 3, 1], scalars: (0..<12).map(Float.init))
        let y = flatten.forward(x, training: true)
        XCTAssertEqual(y.shape, [2, 6])
        XCTAssertEqual(y.scalars, x.scalars)
        let dx = flatten.backward(y * 2)
        XCTAssertEqual(dx.shape, [2, 2, 3, 1])
        XCTAssertEqual(dx.scalars, (0..<12).map { Float($0 * 2) })
        numericLayerGradientCheck(layer: Flatten(), inputShape: [2, 3, 2])
    }

    func testReshapeInfersOneExtent() throws {
        let reshape = Reshape([-1, 4])
        XCTAssertEqual(try reshape.outputShape(for: [2, 6]), [3, 4])
        let x = Tensor(shape: [2, 12], scalars: randomScalars(24, seed: 1))
        XCTAssertEqual(reshape.forward(x, training: false).shape, [2, 3, 4])
        numericLayerGradientCheck(layer: Reshape(targetShape: [3, 2]), inputShape: [6])
        numericLayerGradientCheck(layer: Reshape(targetShape: [-1]), inputShape: [2, 2])
    }

    func testReshapeToAnotherElementCountNamesTheLayerAndBothShapes() {
        let reshape = Reshape([5, 5], name: "to_square")
        XCTAssertThrowsError(try reshape.outputShape(for: [4, 6])) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("to_square") && message.contains("[4, 6]") && message.contains("[5, 5]"), message)
        }
        XCTAssertThrowsError(try Reshape([-1, 5]).outputShape(for: [12]))
    }

    func testConfigRoundTrip() throws {
        let reshape = Reshape([7, 7, 16], name: "r")
        XCTAssertEqual(reshape.config["target_shape"], .ints([7, 7, 16]))
        XCTAssertEqual(try Reshape(config: reshape.config).targetShape, [7, 7, 16])
        XCTAssertThrowsError(try Reshape(config: ["target_shape": .ints([-1, -1])]))
        XCTAssertEqual(try Flatten(config: ["name": .string("f")]).name, "f")
        XCTAssertEqual(try Input(config: Input(shape: [3, 2]).config).shape, [3, 2])
    }

    func testInputDeclaresTheModelsShape() throws {
        let model = Sequential {
            Input(shape: [4, 2])
            Flatten()
            Dense(3)
        }
        XCTAssertEqual(model.inputShape, [4, 2])
        XCTAssertEqual(model.layers.count, 2, "Input is not kept as a layer")
        try model.build(seed: 1)
        XCTAssertEqual(model.builtOutputShape, [3])
        XCTAssertThrowsError(try Input(shape: [4, 2]).outputShape(for: [8]))
    }
}
