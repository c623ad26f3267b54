import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Recurrent models save and load with the rest of a model, and configs round-trip.
final class RecurrentSavingTests: XCTestCase {
    private func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "neurite-recurrent-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testModelRoundTripPredictsTheSame() throws {
        let model = Sequential(inputShape: [6, 3]) {
            Bidirectional(LSTM(units: 4, returnSequences: true, maskValue: 0), mergeMode: .ave)
            GRU(units: 5, returnSequences: true, truncateGradient: 3)
            SimpleRNN(units: 3, activation: .relu)
            Dense(2)
        }
        try model.build(seed: 3)
        let x = randomTensor([4, 6, 3], seed: 2)
        let expected = try model.predict(x)
        let directory = temporaryDirectory()
        try model.save(to: directory)
        let loaded = try Sequential.load(from: directory)
        XCTAssertEqual(try loaded.predict(x).scalars, expected.scalars)
        XCTAssertEqual(loaded.parameters.map(\.name), model.parameters.map(\.name))
        XCTAssertTrue(loaded.parameters.map(\.name).contains("bidirectional.backward_recurrent_kernel"))
        for (a, b) in zip(loaded.layers, model.layers) { XCTAssertEqual(a.config, b.config) }
    }

    func testEmbeddingModelRoundTrip() throws {
        let model = Sequential(inputShape: [5]) {
            Embedding(inputDim: 7, outputDim: 3, maskZero: true)
            LSTM(units: 4, maskValue: 0)
            Dense(7)
        }
        try model.build(seed: 1)
        let x = Tensor(shape: [2, 5], scalars: [0, 1, 2, 3, 4, 6, 5, 4, 3, 2])
        let directory = temporaryDirectory()
        try model.save(to: directory)
        XCTAssertEqual(try Sequential.load(from: directory).predict(x).scalars, try model.predict(x).scalars)
    }

    func testRegistrationIsIdempotentAndCoversEveryType() {
        RecurrentLayers.register()
        RecurrentLayers.register()
        for name in ["LSTM", "GRU", "SimpleRNN", "Bidirectional", "Embedding"] {
            XCTAssertNotNil(LayerRegistry.type(named: name), name)
        }
    }

    func testConfigRoundTripsKeepEveryOption() throws {
        let layers: [any Layer] = [
            LSTM(units: 3, activation: .relu, recurrentActivation: .tanh, useBias: false, returnSequences: true,
                 goBackwards: true, stateful: true, maskValue: -1, truncateGradient: 4, unitForgetBias: false,
                 kernelInitializer: .heUniform, recurrentInitializer: .glorotNormal, name: "l"),
            GRU(units: 2, returnSequences: true, name: "g"),
            SimpleRNN(units: 2, activation: .linear),
            Bidirectional(SimpleRNN(2), mergeMode: .mul, name: "b"),
            Embedding(inputDim: 4, outputDim: 2, maskZero: true),
        ]
        for layer in layers {
            let type = LayerRegistry.type(named: Swift.type(of: layer).typeName)!
            let again = try type.init(config: layer.config)
            XCTAssertEqual(again.config, layer.config, "\(Swift.type(of: layer).typeName)")
        }
    }
}
