import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

final class PoolingLayerTests: XCTestCase {
    func testMaxPoolForwardMatchesNaivePooling() {
        let x = randomTensor([2, 5, 7, 3], seed: 1)
        let cases: [(MaxPool2D, (Int, Int), (Int, Int), Bool)] = [
            (MaxPool2D(), (2, 2), (2, 2), false),
            (MaxPool2D(poolSize: (2, 2), padding: .same), (2, 2), (2, 2), true),
            (MaxPool2D(poolSize: (3, 2), strides: (2, 1)), (3, 2), (2, 1), false),
            (MaxPool2D(poolSize: (3, 3), strides: (2, 2), padding: .same), (3, 3), (2, 2), true),
        ]
        for (layer, pool, strides, same) in cases {
            convTestBuild(layer, [5, 7, 3])
            let y = layer.forward(x, training: false)
            let reference = naivePooling(x, pool: pool, strides: strides, padding: same ? .same : .valid, max: true)
            XCTAssertEqual(y.shape, reference.shape, "\(layer.config)")
            assertClose(y.scalars, reference.values, rtol: 0, atol: 0, "\(layer.config)")
        }
    }

    func testMaxPoolGradientsMatchFiniteDifferences() {
        // Distinct inputs 0.05 apart: a window's winner survives the 0.01 finite-difference step.
        let x = distinctTensor([2, 6, 5, 3], seed: 2)
        for layer in [MaxPool2D(), MaxPool2D(padding: .same), MaxPool2D(poolSize: (3, 3), strides: (2, 1), padding: .same)] {
            convTestBuild(layer, [6, 5, 3])
            let gradient = checkLayerBackward(layer, input: x, seed: 3, "\(layer.config)")
            // Only winners receive a gradient: at most one cell per window is non-zero.
            let windows = layer.forward(x, training: false).count
            XCTAssertLessThanOrEqual(gradient.scalars.filter { $0 != 0 }.count, windows, "\(layer.config)")
        }
    }

    func testAveragePoolForwardAndGradients() {
        let x = randomTensor([2, 5, 7, 3], seed: 4)
        let cases: [(AveragePool2D, (Int, Int), (Int, Int), Bool)] = [
            (AveragePool2D(), (2, 2), (2, 2), false),
            (AveragePool2D(padding: .same), (2, 2), (2, 2), true),
            (AveragePool2D(poolSize: (3, 2), strides: (1, 2), padding: .same), (3, 2), (1, 2), true),
        ]
        for (layer, pool, strides, same) in cases {
            convTestBuild(layer, [5, 7, 3])
            let y = layer.forward(x, training: false)
            let reference = naivePooling(x, pool: pool, strides: strides, padding: same ? .same : .valid, max: false)
            XCTAssertEqual(y.shape, reference.shape, "\(layer.config)")
            assertClose(y.scalars, reference.values, rtol: 1e-5, atol: 1e-6, "\(layer.config)")
            checkLayerBackward(layer, input: x, seed: 5, "\(layer.config)")
        }
    }

    func testGlobalAveragePoolForwardAndGradients() {
        let x = randomTensor([3, 4, 5, 2], seed: 6)
        for keep in [false, true] {
            let layer = GlobalAveragePool2D(keepDimensions: keep)
            XCTAssertEqual(convTestBuild(layer, [4, 5, 2]), keep ? [1, 1, 2] : [2])
            let y = layer.forward(x, training: false)
            XCTAssertEqual(y.shape, keep ? [3, 1, 1, 2] : [3, 2])
            let reference = naivePooling(x, pool: (4, 5), strides: (4, 5), padding: .valid, max: false)
            assertClose(y.scalars, reference.values, rtol: 1e-5, atol: 1e-6)
            let gradient = checkLayerBackward(layer, input: x, seed: 7, "keepDimensions \(keep)")
            // Every position of an image gets the same share.
            XCTAssertEqual(gradient[1, 0, 0, 1], gradient[1, 3, 4, 1])
        }
    }

    func testOutputShapesMatchKeras() throws {
        XCTAssertEqual(try MaxPool2D().outputShape(for: [28, 28, 16]), [14, 14, 16])
        XCTAssertEqual(try MaxPool2D().outputShape(for: [11, 11, 8]), [5, 5, 8])
        XCTAssertEqual(try MaxPool2D(padding: .same).outputShape(for: [11, 11, 8]), [6, 6, 8])
        XCTAssertEqual(try MaxPool2D(poolSize: (3, 3), strides: (2, 2)).outputShape(for: [7, 7, 1]), [3, 3, 1])
        XCTAssertEqual(try MaxPool2D(poolSize: (3, 3), strides: (1, 1), padding: .same).outputShape(for: [7, 9, 1]),
                       [7, 9, 1])
        XCTAssertEqual(try AveragePool2D(poolSize: (2, 3)).outputShape(for: [8, 9, 4]), [4, 3, 4])
        XCTAssertEqual(try GlobalAveragePool2D().outputShape(for: [7, 7, 32]), [32])
        let pool = MaxPool2D(poolSize: (3, 2))
        XCTAssertTrue(pool.strides == (3, 2), "strides default to the pool size")
        XCTAssertTrue(pool.parameters.isEmpty && AveragePool2D().parameters.isEmpty
                      && GlobalAveragePool2D().parameters.isEmpty)
    }

    func testConfigRoundTripAndKerasNames() throws {
        convTestAssertConfigRoundTrip(MaxPool2D(poolSize: (3, 2), strides: (1, 2), padding: .same, name: "pool"))
        convTestAssertConfigRoundTrip(MaxPool2D())
        convTestAssertConfigRoundTrip(AveragePool2D(poolSize: (2, 3), padding: .same, name: "avg"))
        convTestAssertConfigRoundTrip(GlobalAveragePool2D(keepDimensions: true, name: "gap"))
        convTestAssertConfigRoundTrip(GlobalAveragePool2D())
        XCTAssertEqual([MaxPool2D.typeName, AveragePool2D.typeName, GlobalAveragePool2D.typeName],
                       ["MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D"])

        let config = MaxPool2D(poolSize: (3, 3)).config
        XCTAssertEqual(config["pool_size"], .ints([3, 3]))
        XCTAssertEqual(config["strides"], .ints([3, 3]), "strides written out, as Keras resolves them")
        XCTAssertEqual(config["padding"], .string("valid"))

        // Keras writes `strides: null` for the default and accepts a single integer.
        let fromKeras = try MaxPool2D(config: ["pool_size": .int(3), "strides": .null, "padding": .string("same")])
        XCTAssertTrue(fromKeras.poolSize == (3, 3) && fromKeras.strides == (3, 3) && fromKeras.padding == .same)
        XCTAssertTrue(try AveragePool2D(config: [:]).poolSize == (2, 2))
        XCTAssertTrue(try GlobalAveragePool2D(config: ["keepdims": .bool(true)]).keepDimensions)

        convTestAssertLayerError(mentioning: ["MaxPooling2D", "pool_size"]) {
            _ = try MaxPool2D(config: ["pool_size": .string("2x2")])
        }
        convTestAssertLayerError(mentioning: ["AveragePooling2D", "strides (0, 1)"]) {
            _ = try AveragePool2D(config: ["strides": .ints([0, 1])])
        }
        convTestAssertLayerError(mentioning: ["GlobalAveragePooling2D", "keepdims"]) {
            _ = try GlobalAveragePool2D(config: ["keepdims": .int(1)])
        }
    }

    func testShapeErrorsNameTheLayerAndTheShape() throws {
        convTestAssertLayerError(mentioning: ["MaxPooling2D \"pool\"", "[10]"]) {
            _ = try MaxPool2D(name: "pool").outputShape(for: [10])
        }
        convTestAssertLayerError(mentioning: ["AveragePooling2D \"avg\"", "[1, 1, 3]", "2x2"]) {
            _ = try AveragePool2D(name: "avg").outputShape(for: [1, 1, 3])
        }
        convTestAssertLayerError(mentioning: ["GlobalAveragePooling2D \"gap\"", "[5, 5]"]) {
            _ = try GlobalAveragePool2D(name: "gap").outputShape(for: [5, 5])
        }
        // `.same` always fits, even a window larger than the image.
        XCTAssertEqual(try MaxPool2D(poolSize: (4, 4), padding: .same).outputShape(for: [1, 1, 3]), [1, 1, 3])

        let pool = MaxPool2D(name: "pool")
        convTestBuild(pool, [8, 8, 3])
        var generator = SeededGenerator(seed: 1)
        convTestAssertLayerError(mentioning: ["pool", "[8, 8, 3]", "[6, 6, 3]"]) {
            _ = try pool.build(inputShape: [6, 6, 3], generator: &generator)
        }
        XCTAssertEqual(try pool.build(inputShape: [8, 8, 3], generator: &generator), [4, 4, 3])
    }
}
