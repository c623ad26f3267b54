import Foundation
import Neurite
import XCTest

/// The layer of the Layers catalog's "Writing a layer" article
/// (Packages/Layers/Documentation.docc/WritingALayer.md), as printed there: keep the two in step.
final class FeatureScale: Layer {
    static let typeName = "FeatureScale"
    var name: String
    private var scale: Parameter?
    private var input: Tensor?

    init(name: String = "") { self.name = name }
    convenience init(config: [String: ConfigValue]) throws {
        self.init(name: try config.string("name", of: Self.typeName))
    }
    var config: [String: ConfigValue] { ["name": .string(name)] }

    func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == 1 else {
            throw LayerError("FeatureScale '\(name)' needs [features], got \(inputShape)")
        }
        return inputShape
    }
    func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        let shape = try outputShape(for: inputShape)
        if scale == nil { scale = Parameter(name: "scale", value: .ones(shape)) }
        return shape
    }
    var parameters: [Parameter] { scale.map { [$0] } ?? [] }

    func forward(_ input: Tensor, training: Bool) -> Tensor {
        if training { self.input = input }
        return input * scale!.value                      // [B, F] * [F], broadcast
    }
    func backward(_ outputGradient: Tensor) -> Tensor {
        let scale = scale!
        // dL/ds sums dL/dy ⊙ x over the batch; dL/dx is dL/dy ⊙ s.
        scale.accumulateGradient((outputGradient * input!).reduced(toShape: scale.value.shape))
        return outputGradient * scale.value
    }
}

final class DocsWritingALayerTests: XCTestCase {
    func testTheArticlesLayerTrainsSavesAndLoadsAfterRegistering() throws {
        // As in the article.
        let model = Sequential(inputShape: [784]) {
            FeatureScale()
            Dense(10, activation: .softmax)
        }
        var g = SeededGenerator(seed: 9)
        let x = Tensor.randomUniform([32, 784], in: 0...1, using: &g)
        let y = (0..<32).map { $0 % 10 }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy())
        try model.fit(x: x, y: y, epochs: 2, batchSize: 8, verbose: 0)
        XCTAssertEqual(model.parameters.map(\.name), ["feature_scale.scale", "dense.kernel", "dense.bias"])
        // The scale has learnt: it no longer holds its initial ones.
        XCTAssertNotEqual(model.parameters[0].value.scalars, [Float](repeating: 1, count: 784))

        // The backward pass against central differences of L = sum(y ⊙ r) for a fixed r.
        let layer = FeatureScale()
        _ = try layer.build(inputShape: [3], generator: &g)
        let input = Tensor(shape: [2, 3], scalars: [0.5, -1, 2, 1.5, 0.25, -0.75])
        let r = Tensor(shape: [2, 3], scalars: [1, 2, -1, 0.5, -2, 3])
        layer.parameters[0].value = Tensor(shape: [3], scalars: [0.9, 1.1, -0.4])
        layer.parameters[0].zeroGradient()
        _ = layer.forward(input, training: true)
        let inputGradient = layer.backward(r)
        func loss(_ x: Tensor) -> Float { (layer.forward(x, training: false) * r).sum() }
        let h: Float = 1e-2
        for i in 0..<6 {
            var plus = input.scalars, minus = input.scalars
            plus[i] += h; minus[i] -= h
            let numeric = (loss(Tensor(shape: [2, 3], scalars: plus)) - loss(Tensor(shape: [2, 3], scalars: minus))) / (2 * h)
            XCTAssertEqual(inputGradient.scalars[i], numeric, accuracy: 1e-3)
        }
        let s = layer.parameters[0]
        let accumulated = s.gradient.scalars
        for j in 0..<3 {
            let saved = s.value
            var plus = saved.scalars, minus = saved.scalars
            plus[j] += h; minus[j] -= h
            s.value = Tensor(shape: [3], scalars: plus); let lp = loss(input)
            s.value = Tensor(shape: [3], scalars: minus); let lm = loss(input)
            s.value = saved
            XCTAssertEqual(accumulated[j], (lp - lm) / (2 * h), accuracy: 1e-3)
        }

        // Saving, registering and loading, as in the article.
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("neurite-docs-feature-scale-\(ProcessInfo.processInfo.processIdentifier)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try model.save(to: directory)
        LayerRegistry.register(FeatureScale.self)        // under FeatureScale.typeName
        let loaded = try Sequential.load(from: directory)
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
    }
}
