import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

// Helpers for the convolution, pooling and batch-normalisation layer tests. Names carry a
// `convTest` prefix so they cannot clash with other helpers of this test target.

/// Builds `layer` for a per-sample `inputShape` from a fixed seed and returns the output shape.
@discardableResult
func convTestBuild(_ layer: any Layer, _ inputShape: [Int], seed: UInt64 = 7,
                   file: StaticString = #filePath, line: UInt = #line) -> [Int] {
    var generator = SeededGenerator(seed: seed)
    do {
        return try layer.build(inputShape: inputShape, generator: &generator)
    } catch {
        XCTFail("build(\(inputShape)) threw \(error)", file: file, line: line)
        return []
    }
}

/// Runs forward once and backward twice with the same output gradient, and checks that every
/// parameter's gradient is twice that of one backward pass (gradients accumulate).
func convTestCheckGradientsAccumulate(_ layer: any Layer, input: Tensor, seed: UInt64,
                                      file: StaticString = #filePath, line: UInt = #line) {
    for parameter in layer.parameters { parameter.zeroGradient() }
    let output = layer.forward(input, training: true)
    let weights = randomTensor(output.shape, seed: seed)
    let first = layer.backward(weights)
    let once = layer.parameters.map(\.gradient)
    let second = layer.backward(weights)
    XCTAssertEqual(first, second, "the input gradient does not depend on earlier backward passes", file: file, line: line)
    XCTAssertFalse(layer.parameters.isEmpty, "layer has parameters to accumulate into", file: file, line: line)
    for (parameter, single) in zip(layer.parameters, once) where parameter.isTrainable {
        XCTAssertGreaterThan(single.abs().max(), 0, "\(parameter.name) received a gradient", file: file, line: line)
        assertClose(parameter.gradient, single * 2, rtol: 1e-6, atol: 1e-6,
                    "\(parameter.name) gradient after two backward passes", file: file, line: line)
    }
}

/// `init(config:)` of `layer.config` (also after a trip through JSON text) gives an equal config.
func convTestAssertConfigRoundTrip<L: Layer>(_ layer: L, file: StaticString = #filePath, line: UInt = #line) {
    do {
        let config = layer.config
        XCTAssertEqual(try L(config: config).config, config, "\(L.typeName) config round trip", file: file, line: line)
        let json = try JSONEncoder().encode(config)
        let decoded = try JSONDecoder().decode([String: ConfigValue].self, from: json)
        XCTAssertEqual(try L(config: decoded).config, config, "\(L.typeName) config through JSON", file: file, line: line)
    } catch {
        XCTFail("\(L.typeName) config round trip threw \(error)", file: file, line: line)
    }
}

/// Asserts that `body` throws a `LayerError` whose message contains every string in `parts`.
func convTestAssertLayerError(mentioning parts: [String], file: StaticString = #filePath, line: UInt = #line,
                              _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected a LayerError mentioning \(parts)", file: file, line: line)
    } catch let error as LayerError {
        for part in parts {
            XCTAssertTrue(error.message.contains(part), "\"\(error.message)\" should mention \(part)", file: file, line: line)
        }
    } catch {
        XCTFail("expected a LayerError, got \(error)", file: file, line: line)
    }
}

/// The number of weights in `layer`'s trainable and non-trainable parameters.
func convTestWeightCount(_ layer: any Layer) -> Int {
    layer.parameters.reduce(0) { $0 + $1.value.count }
}
