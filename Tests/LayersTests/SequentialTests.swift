import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class SequentialTests: XCTestCase {
    func testBuilderAndArrayInitialisersMakeTheSameModel() throws {
        let withHead = CommandLine.arguments.count >= 0  // true, but not a constant the compiler folds
        let a = Sequential(inputShape: [6]) {
            Dense(8, activation: .relu)
            for _ in 0..<2 { Dense(4, activation: .tanh) }
            if withHead { Dense(2) }
        }
        let b = Sequential(inputShape: [6], layers: [Dense(8, activation: .relu), Dense(4, activation: .tanh),
                                                     Dense(4, activation: .tanh), Dense(2)])
        try a.build(seed: 3)
        try b.build(seed: 3)
        XCTAssertEqual(a.parameters.map(\.name), b.parameters.map(\.name))
        XCTAssertEqual(a.parameters.map(\.value), b.parameters.map(\.value))
        let x = Tensor(shape: [5, 6], scalars: randomScalars(30, seed: 1))
        XCTAssertEqual(a.forward(x, training: false), b.forward(x, training: false))
    }

    func testAutomaticNamesFollowKeras() {
        let model = Sequential {
            Flatten()
            Dense(4)
            Dense(2, name: "dense_1")
            Dropout(0.1)
            Dense(1)
            ActivationLayer(.sigmoid)
            Reshape([1, 1])
        }
        XCTAssertEqual(model.layers.map(\.name), ["flatten", "dense", "dense_1", "dropout", "dense_2", "activation", "reshape"])
        let outer = Sequential { Sequential { Dense(1) }; Sequential { Dense(1) } }
        XCTAssertEqual(outer.layers.map(\.name), ["sequential", "sequential_1"])
    }

    func testSummaryMatchesKerasForA784_128_10MLP() throws {
        let model = Sequential(inputShape: [28, 28, 1]) {
            Flatten()
            Dense(128, activation: .relu)
            Dense(10)
        }
        let unbuilt = model.summary()
        XCTAssertTrue(unbuilt.contains("0 (unbuilt)"), unbuilt)
        XCTAssertTrue(unbuilt.contains("(None, 128)"), "shapes are inferred before build: \(unbuilt)")
        try model.build(seed: 0)
        let summary = model.summary()
        XCTAssertEqual(model.parameters.reduce(0) { $0 + $1.value.count }, 101_770)
        for expected in ["Model: \"sequential\"", "flatten (Flatten)", "(None, 784)", "dense (Dense)", "(None, 128)", "100,480",
                         "dense_1 (Dense)", "(None, 10)", "1,290", "Total params: 101,770 (397.54 KB)",
                         "Trainable params: 101,770", "Non-trainable params: 0 (0.00 B)"] {
            XCTAssertTrue(summary.contains(expected), "summary lacks \(expected):\n\(summary)")
        }
        model.parameters[0].isTrainable = false
        XCTAssertTrue(model.summary().contains("Non-trainable params: 100,352"), model.summary())
    }

    func testShapesAreInferredLayerByLayer() throws {
        let model = Sequential(inputShape: [28, 28, 1]) {
            Flatten()
            Dense(32)
            Reshape([4, 8])
            Dense(3)
        }
        XCTAssertEqual(try model.outputShape(for: [28, 28, 1]), [4, 3])
        try model.build(seed: 1)
        XCTAssertEqual(model.layerOutputShapes, [[784], [32], [4, 8], [4, 3]])
        XCTAssertEqual(model.builtOutputShape, [4, 3])
        XCTAssertEqual(model.forward(Tensor.zeros([2, 28, 28, 1]), training: false).shape, [2, 4, 3])
    }

    func testABadShapeFailsAtBuildNamingTheLayerAndBothShapes() {
        let model = Sequential(inputShape: [28, 28, 1]) {
            Flatten()
            Dense(128, activation: .relu)
            Reshape([7, 7])
            Dense(10)
        }
        XCTAssertThrowsError(try model.build(seed: 0)) { error in
            XCTAssertTrue(error is LayerError)
            let message = "\(error)"
            for part in ["'reshape'", "(Reshape)", "[128]", "[7, 7]"] {
                XCTAssertTrue(message.contains(part), "message lacks \(part): \(message)")
            }
        }
        XCTAssertFalse(model.isBuilt)
        // A model declared for one shape refuses another.
        let declared = Sequential(inputShape: [3]) { Dense(2) }
        var g = SeededGenerator(seed: 0)
        XCTAssertThrowsError(try declared.build(inputShape: [4], generator: &g)) { error in
            XCTAssertTrue("\(error)".contains("[3]") && "\(error)".contains("[4]"), "\(error)")
        }
        // Two different layers with one name.
        let clash = Sequential(inputShape: [3]) { Dense(2, name: "same"); Dense(2, name: "same") }
        XCTAssertThrowsError(try clash.build(seed: 0)) { error in
            XCTAssertTrue("\(error)".contains("'same'"), "\(error)")
        }
    }

    func testNestedModelsNameParametersHierarchically() throws {
        let encoder = Sequential(name: "encoder") {
            Dense(8, activation: .tanh)
            Dense(4)
        }
        let model = Sequential(inputShape: [6]) {
            encoder
            Dense(2)
        }
        try model.build(seed: 0)
        XCTAssertEqual(model.parameters.map(\.name), ["encoder.dense.kernel", "encoder.dense.bias",
                                                      "encoder.dense_1.kernel", "encoder.dense_1.bias",
                                                      "dense.kernel", "dense.bias"])
        XCTAssertEqual(encoder.builtOutputShape, [4])
        XCTAssertTrue(model.summary().contains("encoder (Sequential)"))
        XCTAssertTrue(model.summary().contains("92"), "8*6+8 + 4*8+4 = 92 parameters in the encoder")
        numericLayerGradientCheck(layer: model, inputShape: [6])
    }

    func testWholeModelBackwardMatchesFiniteDifferences() {
        let model = Sequential {
            Dense(5, activation: .tanh)
            Dense(6, activation: .gelu)
            Reshape([2, 3])
            ActivationLayer(.softmax)
            Flatten()
            Dense(3, activation: .sigmoid)
        }
        numericLayerGradientCheck(layer: model, inputShape: [4], epsilon: 3e-3)
    }

    func testPredictInBatchesEqualsOneForward() throws {
        let model = Sequential(inputShape: [3]) { Dense(4, activation: .relu); Dropout(0.5); Dense(2) }
        try model.build(seed: 5)
        let x = Tensor(shape: [23, 3], scalars: randomScalars(69, seed: 2))
        let whole = model.forward(x, training: false)
        assertClose(try model.predict(x, batchSize: 7), whole)
        XCTAssertEqual(try model.predict(x, batchSize: 7).shape, [23, 2])
    }

    func testWeightsRoundTripAndLoadingReportsBadKeys() throws {
        let model = Sequential(inputShape: [3]) { Dense(2) }
        try model.build(seed: 1)
        let saved = model.weights()
        XCTAssertEqual(Set(saved.keys), ["dense.kernel", "dense.bias"])
        model.parameters[0].value = Tensor.zeros([3, 2])
        try model.loadWeights(saved)
        XCTAssertEqual(model.weights(), saved)
        var bad = saved
        bad["dense.kernel"] = Tensor.zeros([2, 3])
        bad["extra"] = Tensor.zeros([1])
        bad["dense.bias"] = nil
        XCTAssertThrowsError(try model.loadWeights(bad)) { error in
            let message = "\(error)"
            for part in ["missing", "dense.bias", "unexpected", "extra", "[3, 2]", "[2, 3]"] {
                XCTAssertTrue(message.contains(part), "message lacks \(part): \(message)")
            }
        }
        XCTAssertEqual(model.weights(), saved, "a failed load changes nothing")
    }

    func testAddingALayerUnbuildsButKeepsWeights() throws {
        let model = Sequential(inputShape: [3]) { Dense(2) }
        try model.build(seed: 1)
        let kernel = model.parameters[0].value
        model.add(Dense(1))
        XCTAssertFalse(model.isBuilt)
        try model.build(seed: 9)
        XCTAssertEqual(model.parameters[0].value, kernel)
        XCTAssertEqual(model.builtOutputShape, [1])
        XCTAssertEqual(try Sequential(config: model.config).inputShape, [3])
    }
}
