import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport

/// `y = x ⊙ scale + offset` over `[features]`, with one deliberate flaw chosen by its config: the
/// control that shows each of `layerTest`'s checks can fail.
private final class FlawedScale: Layer {
    static let typeName = "FlawedScale"
    var name = ""
    let flaw: String
    let offset: Float
    private var scale: Parameter?
    private var input: Tensor?

    init(flaw: String, offset: Float = 0.25) {
        self.flaw = flaw
        self.offset = offset
    }
    convenience init(config: [String: ConfigValue]) throws {
        self.init(flaw: try config.string("flaw", of: Self.typeName),
                  offset: Float(try config["offset"] == nil ? 0 : config.double("offset", of: Self.typeName)))
    }
    var config: [String: ConfigValue] {
        flaw == "config" ? ["flaw": .string(flaw)] : ["flaw": .string(flaw), "offset": .double(Double(offset))]
    }
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
        if training { self.input = input }
        return input * scale!.value + offset
    }
    func backward(_ outputGradient: Tensor) -> Tensor {
        let scale = scale!
        var gradient = (outputGradient * input!).reduced(toShape: scale.value.shape)
        if flaw == "gradient" { gradient = gradient * 1.5 }
        if flaw == "accumulate" { scale.zeroGradient() }
        scale.accumulateGradient(gradient)
        return outputGradient * scale.value
    }
}

/// Runs `layerTest` on layers with one flaw each and checks that it reports a failure: a harness
/// that passed everything would pass these too.
final class LayerHarnessControlTests: XCTestCase {
    private var captured: [String]?

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        if captured != nil {
            captured!.append(description)
        } else {
            super.recordFailure(withDescription: description, inFile: filePath, atLine: lineNumber, expected: expected)
        }
    }

    private func failures(_ flaw: String) throws -> [String] {
        LayerRegistry.register(FlawedScale.self)
        captured = []
        defer { captured = nil }
        try layerTest({ FlawedScale(flaw: flaw) }, inputShape: [5], badInputShape: [5, 2])
        return captured!
    }

    func testTheSoundLayerPasses() throws {
        XCTAssertEqual(try failures("none"), [])
    }

    func testEachFlawIsCaught() throws {
        for (flaw, expected) in [("gradient", "gradient of"), ("config", "copy, built from the same seed"),
                                 ("accumulate", "after two uses"), ("shape", "should throw a LayerError")] {
            let found = try failures(flaw)
            XCTAssertTrue(found.contains { $0.contains(expected) }, "flaw \(flaw): expected a failure mentioning \"\(expected)\", got \(found)")
        }
    }
}
