import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Runs a Keras-style `layer_test` on one layer type: every check a layer owes its users, each of
/// which can fail on its own.
///
/// For a layer made by `make` and a per-sample `inputShape` (batch axis excluded), it checks:
/// 1. shapes: `outputShape(for:)` before building equals what `build` returns, and the inference
///    and training forward passes on a `[batch] + inputShape` input produce `[batch] + outputShape`
///    with finite values;
/// 2. config round trip: `init(config:)` of `config` gives the same `config` (also after a trip
///    through JSON text) and, built from the same seed, the same outputs;
/// 3. save/load round trip: the layer, with every weight moved off its initial value, saved in a
///    `Sequential` with `save(to:)` and read back with `Sequential.load(from:)`, predicts the same;
/// 4. gradients in training mode: dLoss/dInput (unless `checkInputGradient` is false) and every
///    trainable parameter's gradient against central finite differences (`checkGradient`) of
///    `Σ forward(x, training: true) ⊙ w` for fixed random `w`. A ``StepSeeded`` layer (dropout) is
///    restarted at the same step before every forward, so each evaluation draws the same masks;
/// 5. accumulation: two forward/backward passes without zeroing leave twice the parameter
///    gradients of one (as when a layer is used twice), and each pass returns the same dLoss/dInput;
/// 6. shape errors: `outputShape(for:)`, `build` on a fresh layer and `build` on the built layer all
///    throw `LayerError` for `badInputShape` (pass nil only for a layer that accepts every shape).
///
/// Cost: one forward per perturbed element (two for central differences), at most `maxElements`
/// elements per tensor, plus a save to a temporary directory.
///
/// - Parameters:
///   - make: makes a fresh, unbuilt layer; called twice (the shape-error check needs an unbuilt one).
///   - inputShape: the per-sample input shape, e.g. `[7, 5]` for sequences of 7 steps of 5 features.
///   - batch: the batch size of the test input.
///   - seed: seeds the weights (`SeededGenerator(seed:)`), the input and the loss weights.
///   - badInputShape: a per-sample shape the layer must reject, or nil when it accepts every shape.
///   - input: makes the test input `[batch] + inputShape` from a seed; by default values uniform in
///     [-1, 1). Give integer-valued tokens for `Embedding`, values spaced wider than `2 * epsilon`
///     for max pooling (so a window's winner does not change under a finite-difference step).
///   - checkInputGradient: false for inputs that are not differentiable (integer tokens).
///   - epsilon, rtol, atol: the finite-difference step and tolerances of `checkGradient`.
///   - maxElements: how many elements of each tensor the finite-difference check perturbs at most.
/// - Throws: whatever `make`, `build` or saving throws where the layer should have worked.
public func layerTest(
    _ make: () throws -> any Layer,
    inputShape: [Int], batch: Int = 3, seed: UInt64 = 1,
    badInputShape: [Int]?,
    input: ((_ shape: [Int], _ seed: UInt64) -> Tensor)? = nil,
    checkInputGradient: Bool = true,
    epsilon: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 2e-3, maxElements: Int = 200,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    let layer = try make()
    let typeName = type(of: layer).typeName
    let x = input?([batch] + inputShape, seed &+ 1) ?? randomTensor([batch] + inputShape, seed: seed &+ 1)
    XCTAssertEqual(x.shape, [batch] + inputShape, "\(typeName): the input generator's shape", file: file, line: line)

    // 1. Shapes.
    let inferred = try layer.outputShape(for: inputShape)
    var generator = SeededGenerator(seed: seed)
    let outputShape = try layer.build(inputShape: inputShape, generator: &generator)
    XCTAssertEqual(outputShape, inferred, "\(typeName): build's output shape differs from outputShape(for:)", file: file, line: line)
    let y = layer.forward(x, training: false)
    XCTAssertEqual(y.shape, [batch] + outputShape, "\(typeName): inference output shape", file: file, line: line)
    XCTAssertTrue(y.scalars.allSatisfy(\.isFinite), "\(typeName): inference output is finite", file: file, line: line)
    beginTrainingForward(layer, step: 0)
    let yTraining = layer.forward(x, training: true)
    XCTAssertEqual(yTraining.shape, [batch] + outputShape, "\(typeName): training output shape", file: file, line: line)
    XCTAssertTrue(yTraining.scalars.allSatisfy(\.isFinite), "\(typeName): training output is finite", file: file, line: line)
    (layer as? TrainingStateOwner)?.clearTrainingState()

    // 2. Config round trip, directly and through JSON text.
    let config = layer.config
    let json = try JSONEncoder().encode(config)
    let decoded = try JSONDecoder().decode([String: ConfigValue].self, from: json)
    for (how, source) in [("config", config), ("config through JSON", decoded)] {
        let copy = try type(of: layer).init(config: source)
        XCTAssertEqual(copy.config, config, "\(typeName): \(how) round trip changes the config", file: file, line: line)
        var copyGenerator = SeededGenerator(seed: seed)
        let copyShape = try copy.build(inputShape: inputShape, generator: &copyGenerator)
        XCTAssertEqual(copyShape, outputShape, "\(typeName): \(how) copy builds another shape", file: file, line: line)
        XCTAssertEqual(copy.parameters.map(\.value.shape), layer.parameters.map(\.value.shape),
                       "\(typeName): \(how) copy has other weights", file: file, line: line)
        XCTAssertEqual(copy.forward(x, training: false), y, "\(typeName): \(how) copy, built from the same seed, computes other outputs",
                       file: file, line: line)
    }

    // 3. Save/load round trip, with every weight moved off its initial value (a positive shift keeps
    // running variances positive), so a loader that skipped the weights would be caught.
    for (i, p) in layer.parameters.enumerated() {
        p.value = p.value + 0.05 * (randomTensor(p.value.shape, seed: seed &+ 100 &+ UInt64(i)) + 1)
    }
    let moved = layer.forward(x, training: false)
    let model = Sequential(layers: [layer])
    var modelGenerator = SeededGenerator(seed: seed)
    _ = try model.build(inputShape: inputShape, generator: &modelGenerator)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("layerTest-\(typeName)-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try model.save(to: directory)
    let loaded = try Sequential.load(from: directory)
    XCTAssertEqual(loaded.layers.map { type(of: $0).typeName }, [typeName], "\(typeName): the loaded model's layers", file: file, line: line)
    XCTAssertEqual(try loaded.predict(x, batchSize: batch), moved, "\(typeName): the loaded model predicts otherwise", file: file, line: line)

    // 4. Finite differences in training mode.
    checkLayerBackward(layer, input: x, seed: seed &+ 2, checkInput: checkInputGradient, epsilon: epsilon, rtol: rtol, atol: atol,
                       maxElements: maxElements, file: file, line: line)
    let w = randomTensor(y.shape, seed: seed &+ 2)

    // 5. Accumulation over two uses without zeroing.
    for p in layer.parameters { p.zeroGradient() }
    var inputGradients: [Tensor] = []
    var once: [Tensor] = []
    for use in 0..<2 {
        beginTrainingForward(layer, step: 0)
        _ = layer.forward(x, training: true)
        inputGradients.append(layer.backward(w))
        if use == 0 { once = layer.parameters.map(\.gradient) }
    }
    XCTAssertEqual(inputGradients[0], inputGradients[1], "\(typeName): the input gradient depends on an earlier pass", file: file, line: line)
    for (p, single) in zip(layer.parameters, once) where p.isTrainable {
        XCTAssertGreaterThan(single.abs().max(), 0, "\(typeName): \(p.name) received no gradient", file: file, line: line)
        assertClose(p.gradient, single * 2, rtol: 1e-5, atol: 1e-6, "\(typeName): \(p.name) gradient after two uses", file: file, line: line)
    }

    // 6. Shape errors.
    if let badInputShape {
        assertThrowsLayerError("\(typeName).outputShape(for: \(badInputShape))", file: file, line: line) {
            _ = try layer.outputShape(for: badInputShape)
        }
        let fresh = try make()
        var badGenerator = SeededGenerator(seed: seed)
        assertThrowsLayerError("a fresh \(typeName).build(inputShape: \(badInputShape))", file: file, line: line) {
            _ = try fresh.build(inputShape: badInputShape, generator: &badGenerator)
        }
        assertThrowsLayerError("the built \(typeName).build(inputShape: \(badInputShape))", file: file, line: line) {
            _ = try layer.build(inputShape: badInputShape, generator: &badGenerator)
        }
    }
}

/// Asserts that `body` throws a `LayerError` (any other error, or none, fails).
public func assertThrowsLayerError(_ what: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line,
                                   _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("\(what()) should throw a LayerError", file: file, line: line)
    } catch is LayerError {
    } catch {
        XCTFail("\(what()) should throw a LayerError, threw \(error)", file: file, line: line)
    }
}

/// Distinct values 0.05 apart in a seeded random order: a max-pooling window's winner stays the
/// winner under a finite-difference step of 0.01, so the numeric gradient is exact there.
public func distinctTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    let count = shape.reduce(1, *)
    var generator = SeededGenerator(seed: seed)
    var values = (0..<count).map { Float($0) * 0.05 - Float(count) * 0.025 }
    for i in stride(from: count - 1, to: 0, by: -1) {
        values.swapAt(i, generator.nextIndex(below: i + 1))
    }
    return Tensor(shape: shape, scalars: values)
}
