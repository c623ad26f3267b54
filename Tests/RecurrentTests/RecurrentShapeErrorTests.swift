import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest

/// Shapes and configs that do not fit give errors naming the layer and the shapes.
final class RecurrentShapeErrorTests: XCTestCase {
    private func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    func testWrongRankIsNamed() {
        let m = message { _ = try LSTM(4, name: "enc").outputShape(for: [28]) }
        XCTAssertTrue(m.contains("LSTM 'enc'") && m.contains("[T, F]") && m.contains("[28]"), m)
    }

    func testOtherFeatureCountIsNamed() throws {
        let layer = GRU(3, name: "g")
        var g = SeededGenerator(seed: 1)
        _ = try layer.build(inputShape: [5, 4], generator: &g)
        let m = message { _ = try layer.outputShape(for: [5, 6]) }
        XCTAssertTrue(m.contains("[5, 4]") && m.contains("[5, 6]"), m)
    }

    func testModelBuildNamesTheLayer() {
        let model = Sequential(inputShape: [10]) { SimpleRNN(3) }
        let m = message { try model.build(seed: 1) }
        XCTAssertTrue(m.contains("simple_rnn") && m.contains("[10]"), m)
    }

    func testBadConfigsThrow() {
        XCTAssertTrue(message { _ = try GRU(config: ["units": .int(3), "reset_after": .bool(false)]) }.contains("reset_after"))
        XCTAssertTrue(message { _ = try LSTM(config: ["units": .int(3), "activation": .string("softmax")]) }.contains("softmax"))
        XCTAssertTrue(message { _ = try LSTM(config: ["units": .int(0)]) }.contains("units"))
        XCTAssertTrue(message { _ = try Bidirectional(config: ["layer": .string("Dense")]) }.contains("Dense"))
        XCTAssertTrue(message { _ = try Embedding(config: ["input_dim": .int(3)]) }.contains("output_dim"))
    }

    func testBidirectionalShapes() throws {
        XCTAssertEqual(try Bidirectional(LSTM(4)).outputShape(for: [3, 2]), [8])
        XCTAssertEqual(try Bidirectional(LSTM(4, returnSequences: true), mergeMode: .sum).outputShape(for: [3, 2]), [3, 4])
        XCTAssertEqual(try Embedding(inputDim: 5, outputDim: 7).outputShape(for: [9]), [9, 7])
    }
}
