import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Keras' `trainable` on the recurrent layers: configs carry it, frozen weights stay put in
/// training, and a Bidirectional freezes both directions.
final class RecurrentFreezingTests: XCTestCase {
    func testRecurrentConfigsAcceptAndKeepTrainable() throws {
        let layers: [any Layer] = [
            SimpleRNN(3), LSTM(3), GRU(3), Embedding(inputDim: 5, outputDim: 2), Bidirectional(LSTM(2)),
        ]
        for layer in layers {
            let type = Swift.type(of: layer)
            var config = layer.config
            XCTAssertNil(config["trainable"], "\(type)")
            config["trainable"] = .bool(false)
            let frozen = try type.init(config: config)
            XCTAssertFalse(frozen.trainable, "\(type)")
            XCTAssertEqual(frozen.config["trainable"], .bool(false), "\(type)")
            var generator = SeededGenerator(seed: 1)
            let shape = frozen is Embedding ? [4] : [4, 3]
            _ = try frozen.build(inputShape: shape, generator: &generator)
            XCTAssertFalse(frozen.parameters.isEmpty, "\(type)")
            XCTAssertTrue(frozen.parameters.allSatisfy { !$0.isTrainable }, "\(type) builds frozen")
            frozen.trainable = true
            XCTAssertTrue(frozen.parameters.allSatisfy(\.isTrainable), "\(type) unfreezes")
            config["trainable"] = .int(1)
            XCTAssertThrowsError(try type.init(config: config), "\(type)") { error in
                XCTAssertTrue("\(error)".contains("trainable"), "\(error)")
            }
        }
    }

    func testAFrozenEmbeddingAndBidirectionalKeepTheirWeightsInTraining() throws {
        let embedding = Embedding(inputDim: 6, outputDim: 3)
        let recurrent = Bidirectional(GRU(4))
        let head = Dense(2)
        let model = Sequential(inputShape: [5]) { embedding; recurrent; head }
        model.compile(optimizer: Adam(learningRate: 0.02), loss: SoftmaxCrossEntropy())
        try model.build(seed: 3)
        embedding.trainable = false
        recurrent.trainable = false
        XCTAssertFalse(recurrent.forwardLayer.trainable || recurrent.backwardLayer.trainable)
        let tokens = (0..<40).map { Float($0 * 7 % 6) }
        let x = Tensor(shape: [8, 5], scalars: tokens)
        let y = (0..<8).map { Int(tokens[$0 * 5]) % 2 }
        let frozen = (embedding.parameters + recurrent.parameters).map(\.value.scalars)
        let headBefore = head.parameters.map(\.value.scalars)
        _ = try model.fit(x: x, y: y, epochs: 3, batchSize: 4, seed: 1, verbose: 0)
        XCTAssertEqual((embedding.parameters + recurrent.parameters).map(\.value.scalars), frozen)
        XCTAssertNotEqual(head.parameters.map(\.value.scalars), headBefore)

        recurrent.trainable = true
        _ = try model.fit(x: x, y: y, epochs: 1, batchSize: 4, seed: 2, verbose: 0)
        XCTAssertEqual(embedding.parameters.map(\.value.scalars), [frozen[0]])
        XCTAssertNotEqual(recurrent.parameters.map(\.value.scalars), Array(frozen.dropFirst()))
    }
}
