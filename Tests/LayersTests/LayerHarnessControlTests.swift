import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport

/// `y = x ⊙ scale + offset` over `[features]`, with one deliberate flaw chosen by its config: the
/// control that shows each of `layerTest`'s checks can fail.
///
/// Two options make it stand in for a recurrent layer's variants: `withState` returns the state
/// `s = x ⊙ scale` beside the output (Keras' `return_state`: two outputs, through
/// `forwardReturningState`/`backward(_:stateGradient:)`), and `stateful` adds a tenth of the
/// previous pass's output to the next one until `resetStates()`.
private final class FlawedScale: Layer, TrainingStateOwner, MultipleOutputLayer {
    static let typeName = "FlawedScale"
    var name = ""
    let flaw: String
    let offset: Float
    let withState: Bool
    let stateful: Bool
    private var scale: Parameter?
    private var input: Tensor?
    private var carried: Tensor?

    init(flaw: String, offset: Float = 0.25, withState: Bool = false, stateful: Bool = false) {
        self.flaw = flaw
        self.offset = offset
        self.withState = withState
        self.stateful = stateful
    }
    convenience init(config: [String: ConfigValue]) throws {
        self.init(flaw: try config.string("flaw", of: Self.typeName),
                  offset: Float(try config["offset"] == nil ? 0 : config.double("offset", of: Self.typeName)),
                  withState: try config["state"] == nil ? false : config.bool("state", of: Self.typeName),
                  stateful: try config["stateful"] == nil ? false : config.bool("stateful", of: Self.typeName))
    }
    var config: [String: ConfigValue] {
        let c: [String: ConfigValue] = ["flaw": .string(flaw), "state": .bool(withState), "stateful": .bool(stateful)]
        return flaw == "config" ? c : c.merging(["offset": .double(Double(offset))]) { a, _ in a }
    }
    /// Two with `withState`, except for the flaw `count`, which returns a state but claims one output.
    var outputCount: Int { withState && flaw != "count" ? 2 : 1 }
    func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 1 || flaw == "shape" else { throw LayerError("FlawedScale needs [features], got \(inputShape)") }
        return inputShape
    }
    func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        let shape = try outputShape(for: inputShape)
        if scale == nil {
            scale = Parameter(name: "scale", value: Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in 0.5 + generator.nextUnitFloat() }))
        }
        return shape
    }
    var parameters: [Parameter] { scale.map { [$0] } ?? [] }
    func forward(_ input: Tensor, training: Bool) -> Tensor {
        // The flaw `stale` keeps the first input until the training state is cleared.
        if training && (flaw != "stale" || self.input == nil) { self.input = input }
        var y = input * scale!.value + offset
        if stateful {
            if let carried { y = y + carried }
            carried = y * 0.1
        }
        return y
    }
    func backward(_ outputGradient: Tensor) -> Tensor {
        backward(outputGradient, stateGradient: [])
    }
    func forwardReturningState(_ input: Tensor, training: Bool) -> (output: Tensor, state: [Tensor]) {
        (forward(input, training: training), [input * scale!.value])
    }
    /// `s = x ⊙ scale` adds `ds ⊙ x` to the scale's gradient and `ds ⊙ scale` to the input's; the
    /// flaw `state` drops it.
    func backward(_ outputGradient: Tensor, stateGradient: [Tensor]) -> Tensor {
        let scale = scale!
        var total = outputGradient
        if let ds = stateGradient.first, flaw != "state" { total = total + ds }
        var gradient = (total * input!).reduced(toShape: scale.value.shape)
        if flaw == "gradient" { gradient = gradient * 1.5 }
        if flaw == "accumulate" { scale.zeroGradient() }
        scale.accumulateGradient(gradient)
        return total * scale.value
    }
    func backwardParameterGradients(_ outputGradient: Tensor) { _ = backward(outputGradient) }
    func clearTrainingState() { input = nil }
    /// Forgets the carried output; the flaw `leak` forgets nothing.
    func resetStates() { if flaw != "leak" { carried = nil } }
}

/// Runs `layerTest` on layers with one flaw each and checks that it reports a failure: a harness
/// that passed everything would pass these too.
final class LayerHarnessControlTests: XCTestCase {
    private let capture = FailureCapture()

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        if !capture.take(description) {
            super.recordFailure(withDescription: description, inFile: filePath, atLine: lineNumber, expected: expected)
        }
    }

    private static func statePasses(_ layer: any Layer) -> StatePasses {
        StatePasses(forward: { x, training -> (output: Tensor, state: [Tensor]) in
            guard let flawed = layer as? FlawedScale else { return (layer.forward(x, training: training), []) }
            return flawed.forwardReturningState(x, training: training)
        }, backward: { dy, ds -> Tensor in
            guard let flawed = layer as? FlawedScale else { return layer.backward(dy) }
            return flawed.backward(dy, stateGradient: ds)
        })
    }

    private func failures(_ flaw: String, withState: Bool = false, stateful: Bool = false) throws -> [String] {
        LayerRegistry.register(FlawedScale.self)
        var passes: ((any Layer) -> StatePasses)?
        if withState { passes = Self.statePasses }
        var reset: ((any Layer) -> Void)?
        if stateful { reset = { layer in (layer as? FlawedScale)?.resetStates() } }
        return try capture.capturing {
            try layerTest({ FlawedScale(flaw: flaw, withState: withState, stateful: stateful) }, inputShape: [5], badInputShape: [5, 2],
                          statePasses: passes, resetState: reset)
        }
    }

    func testTheSoundLayerPasses() throws {
        XCTAssertEqual(try failures("none"), [])
        XCTAssertEqual(try failures("none", withState: true), [], "with a returned state")
        XCTAssertEqual(try failures("none", stateful: true), [], "stateful, reset before every pass")
    }

    func testEachFlawIsCaught() throws {
        let cases: [(flaw: String, withState: Bool, stateful: Bool, expected: String)] = [
            ("gradient", false, false, "gradient of"),
            ("config", false, false, "copy, built from the same seed"),
            ("accumulate", false, false, "after two uses"),
            // Kept from the first use: only a second use with another input shows it.
            ("stale", false, false, "two passes done apart"),
            ("shape", false, false, "should throw a LayerError"),
            // A stateful layer whose reset does not reset.
            ("leak", false, true, "state leaks"),
            // The state's gradient dropped in the backward pass.
            ("state", true, false, "(with its returned state) gradient of"),
            ("count", true, false, "state tensors beside the output"),
        ]
        for c in cases {
            let found = try failures(c.flaw, withState: c.withState, stateful: c.stateful)
            XCTAssertTrue(found.contains { $0.contains(c.expected) },
                          "flaw \(c.flaw): expected a failure mentioning \"\(c.expected)\", got \(found)")
        }
    }
}
