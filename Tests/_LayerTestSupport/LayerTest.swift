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
///    with finite values; and a second inference pass right after the first (and `resetState`)
///    gives the same output, so nothing leaks from one pass into the next;
/// 2. config round trip: `init(config:)` of `config` gives the same `config` (also after a trip
///    through JSON text) and, built from the same seed, the same outputs;
/// 3. save/load round trip: the layer, with every weight moved off its initial value, saved in a
///    `Sequential` with `save(to:)` and read back with `Sequential.load(from:)`, predicts the same.
///    A ``MultipleOutputLayer`` with more than one output (Keras' `return_state`) cannot stand in a
///    `Sequential`: for it, building one must throw a `LayerError` instead;
/// 4. gradients in training mode: dLoss/dInput (unless `checkInputGradient` is false) and every
///    trainable parameter's gradient against central finite differences (`checkGradient`) of
///    `Σ forward(x, training: true) ⊙ w` for fixed random `w`. A ``StepSeeded`` layer (dropout) is
///    restarted at the same step before every forward, so each evaluation draws the same masks;
/// 5. accumulation, as when a layer is used twice: forward `x1`/backward `dy1`, then forward
///    `x2`/backward `dy2`, without zeroing the gradients or dropping training state in between,
///    leave the sum of the parameter gradients of the two passes done apart (each from zero), and
///    each pass returns the dLoss/dInput it returns apart;
/// 6. shape errors: `outputShape(for:)`, `build` on a fresh layer and `build` on the built layer all
///    throw `LayerError` for `badInputShape` (pass nil only for a layer that accepts every shape);
/// 7. with `statePasses` (a layer that returns its state): the output of the state-returning
///    forward equals `forward`'s, it returns `outputCount - 1` state tensors, and the gradients
///    through output and state (`Σ y ⊙ w + Σ s_i ⊙ v_i`) match finite differences.
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
///   - checkInputGradient: false for inputs that are not differentiable (integer tokens, or
///     steps a recurrent layer masks by their values).
///   - statePasses: for a layer with several outputs, its state-returning forward and backward
///     passes (see ``StatePasses``); nil for an ordinary layer.
///   - resetState: puts the layer (or a copy of it) in the state every pass starts from; called
///     before every forward pass. A stateful recurrent layer passes `resetStates()` here, so every
///     pass starts from zeros as the finite differences need; nil for a layer without state.
///   - epsilon, rtol, atol: the finite-difference step and tolerances of `checkGradient`.
///   - maxElements: how many elements of each tensor the finite-difference check perturbs at most.
/// - Throws: whatever `make`, `build` or saving throws where the layer should have worked.
public func layerTest(
    _ make: () throws -> any Layer,
    inputShape: [Int], batch: Int = 3, seed: UInt64 = 1,
    badInputShape: [Int]?,
    input: ((_ shape: [Int], _ seed: UInt64) -> Tensor)? = nil,
    checkInputGradient: Bool = true,
    statePasses: ((any Layer) -> StatePasses)? = nil,
    resetState: ((any Layer) -> Void)? = nil,
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
    resetState?(layer)
    let y = layer.forward(x, training: false)
    XCTAssertEqual(y.shape, [batch] + outputShape, "\(typeName): inference output shape", file: file, line: line)
    XCTAssertTrue(y.scalars.allSatisfy(\.isFinite), "\(typeName): inference output is finite", file: file, line: line)
    resetState?(layer)
    XCTAssertEqual(layer.forward(x, training: false), y,
                   "\(typeName): a second inference pass gives another output (state leaks from one pass into the next)",
                   file: file, line: line)
    beginTrainingForward(layer, step: 0, resetState: resetState)
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
        resetState?(copy)
        XCTAssertEqual(copy.forward(x, training: false), y, "\(typeName): \(how) copy, built from the same seed, computes other outputs",
                       file: file, line: line)
    }

    // 3. Save/load round trip, with every weight moved off its initial value (a positive shift keeps
    // running variances positive), so a loader that skipped the weights would be caught.
    for (i, p) in layer.parameters.enumerated() {
        p.value = p.value + 0.05 * (randomTensor(p.value.shape, seed: seed &+ 100 &+ UInt64(i)) + 1)
    }
    resetState?(layer)
    let moved = layer.forward(x, training: false)
    let outputCount = (layer as? MultipleOutputLayer)?.outputCount ?? 1
    if outputCount > 1 {
        // A Sequential passes one tensor from layer to layer: it must refuse the layer, not drop outputs.
        let model = Sequential(layers: [layer])
        var modelGenerator = SeededGenerator(seed: seed)
        assertThrowsLayerError("building a Sequential that holds \(typeName) with \(outputCount) outputs", file: file, line: line) {
            _ = try model.build(inputShape: inputShape, generator: &modelGenerator)
        }
    } else {
        let model = Sequential(layers: [layer])
        var modelGenerator = SeededGenerator(seed: seed)
        _ = try model.build(inputShape: inputShape, generator: &modelGenerator)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("layerTest-\(typeName)-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try model.save(to: directory)
        let loaded = try Sequential.load(from: directory)
        XCTAssertEqual(loaded.layers.map { type(of: $0).typeName }, [typeName], "\(typeName): the loaded model's layers", file: file, line: line)
        if let resetState { loaded.layers.forEach(resetState) }
        XCTAssertEqual(try loaded.predict(x, batchSize: batch), moved, "\(typeName): the loaded model predicts otherwise", file: file, line: line)
    }

    // 4. Finite differences in training mode.
    checkLayerBackward(layer, input: x, seed: seed &+ 2, checkInput: checkInputGradient, resetState: resetState,
                       epsilon: epsilon, rtol: rtol, atol: atol, maxElements: maxElements, file: file, line: line)

    // 5. Accumulation over two uses (other inputs, other output gradients) without zeroing.
    let x2 = input?([batch] + inputShape, seed &+ 3) ?? randomTensor([batch] + inputShape, seed: seed &+ 3)
    let uses = [(x, randomTensor(y.shape, seed: seed &+ 2), 0), (x2, randomTensor(y.shape, seed: seed &+ 4), 1)]
    func use(_ u: (x: Tensor, dy: Tensor, step: Int), clear: Bool) -> Tensor {
        if clear {
            beginTrainingForward(layer, step: u.step, resetState: resetState)
        } else {
            // A second use in the same step: the layer keeps what it kept, only its masks and state restart.
            (layer as? StepSeeded)?.beginStep(u.step)
            resetState?(layer)
        }
        _ = layer.forward(u.x, training: true)
        return layer.backward(u.dy)
    }
    var apart: [(dx: Tensor, gradients: [Tensor])] = []
    for u in uses {
        for p in layer.parameters { p.zeroGradient() }
        let dx = use(u, clear: true)
        apart.append((dx, layer.parameters.map(\.gradient)))
    }
    for p in layer.parameters { p.zeroGradient() }
    for (i, u) in uses.enumerated() {
        assertClose(use(u, clear: i == 0), apart[i].dx, rtol: 1e-5, atol: 1e-6,
                    "\(typeName): the input gradient of use \(i + 1) of two differs from the same pass done apart", file: file, line: line)
    }
    for (k, p) in layer.parameters.enumerated() where p.isTrainable {
        let first = apart[0].gradients[k], second = apart[1].gradients[k]
        XCTAssertGreaterThan(first.abs().max(), 0, "\(typeName): \(p.name) received no gradient", file: file, line: line)
        assertClose(p.gradient, first + second, rtol: 1e-5, atol: 1e-6,
                    "\(typeName): \(p.name) gradient after two uses is not the sum of the two passes done apart", file: file, line: line)
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

    // 7. The returned state.
    if let statePasses {
        let passes = statePasses(layer)
        resetState?(layer)
        let plain = layer.forward(x, training: false)
        resetState?(layer)
        let (output, state) = passes.forward(x, false)
        XCTAssertEqual(output, plain, "\(typeName): the state-returning forward's output differs from forward's", file: file, line: line)
        XCTAssertEqual(state.count, outputCount - 1,
                       "\(typeName): \(state.count) state tensors beside the output, but outputCount is \(outputCount)", file: file, line: line)
        checkLayerBackward(layer, input: x, seed: seed &+ 5, checkInput: checkInputGradient, statePasses: passes, resetState: resetState,
                           epsilon: epsilon, rtol: rtol, atol: atol, maxElements: maxElements, file: file, line: line)
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

/// Collects the failures a test case reports while ``capturing(_:)`` runs, instead of reporting
/// them: how the harness's controls show that a check fails on a flawed layer. The test case
/// forwards its `recordFailure` here and reports what this does not take:
///
/// ```swift
/// override func recordFailure(withDescription d: String, inFile f: String, atLine l: Int, expected e: Bool) {
///     if !capture.take(d) { super.recordFailure(withDescription: d, inFile: f, atLine: l, expected: e) }
/// }
/// ```
public final class FailureCapture {
    private var captured: [String]?

    public init() {}

    /// Whether a capture is running; if so, keeps `description`.
    public func take(_ description: String) -> Bool {
        guard captured != nil else { return false }
        captured!.append(description)
        return true
    }

    /// Runs `body` and returns the failures reported meanwhile (and only those).
    public func capturing(_ body: () throws -> Void) rethrows -> [String] {
        captured = []
        defer { captured = nil }
        try body()
        return captured!
    }
}
