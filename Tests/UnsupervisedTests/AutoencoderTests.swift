import Foundation
import Layers
import Optimizers
import TensorCore
import Unsupervised
import XCTest
import _NeuriteTestSupport

final class AutoencoderTests: XCTestCase {
    /// 64 images 8x8 of bars: a horizontal or vertical bar at a random place.
    private func bars(seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        var pixels: [Float] = []
        for _ in 0..<64 {
            let vertical = g.nextIndex(below: 2) == 1, at = g.nextIndex(below: 8)
            for r in 0..<8 { for c in 0..<8 { pixels.append((vertical ? c : r) == at ? 1 : 0) } }
        }
        return Tensor(shape: [64, 8, 8, 1], scalars: pixels)
    }

    func testDenseAutoencoderLearnsToReconstruct() throws {
        let x = bars(seed: 1)
        let ae = Autoencoder.dense(inputShape: [8, 8, 1], hidden: [32], codeSize: 8)
        try ae.build(seed: 2)
        let before = try ae.reconstructionError(x)
        let history = try ae.fit(x, epochs: 60, batchSize: 16, optimizer: Adam(learningRate: 0.01), seed: 2)
        XCTAssertEqual(history["loss"]?.count, 60)
        XCTAssertEqual(try ae.encode(x).shape, [64, 8])
        XCTAssertEqual(try ae.decode(try ae.encode(x)).shape, [64, 8, 8, 1])
        XCTAssertLessThan(try ae.reconstructionError(x), before * 0.5)
    }

    func testConvolutionalAutoencoderShapesAndDenoisingTraining() throws {
        let x = bars(seed: 3)
        let ae = Autoencoder.convolutional(inputShape: [8, 8, 1], filters: [4, 4], codeSize: 6)
        try ae.build(seed: 1)
        XCTAssertEqual(try ae.encode(x).shape, [64, 6])
        XCTAssertEqual(try ae.reconstruct(x).shape, [64, 8, 8, 1])
        let before = try ae.reconstructionError(x)
        let history = try ae.fit(x, epochs: 30, batchSize: 16, noise: .masking(fraction: 0.2),
                                 optimizer: Adam(learningRate: 0.01), validation: x, seed: 1)
        XCTAssertEqual(history["val_loss"]?.count, 30)
        XCTAssertLessThan(try ae.reconstructionError(x), before)
    }

    func testSaveAndLoadKeepTheHalves() throws {
        let x = bars(seed: 5)
        let ae = Autoencoder.convolutional(inputShape: [8, 8, 1], filters: [4], codeSize: 3)
        try ae.fit(x, epochs: 1, batchSize: 32, seed: 1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-ae-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ae.save(to: dir)
        let loaded = try Autoencoder.load(from: dir)
        XCTAssertEqual(try loaded.encode(x), try ae.encode(x))
        XCTAssertEqual(try loaded.reconstruct(x), try ae.reconstruct(x))
        XCTAssertThrowsError(try Autoencoder(model: Sequential(inputShape: [2]) { Dense(2) }))
    }

    func testNoiseIsSeededAndHasItsKind() {
        let x = Tensor(shape: [1000], repeating: 0.5)
        for noise in [Noise.gaussian(standardDeviation: 0.3), .masking(fraction: 0.25), .saltAndPepper(fraction: 0.2)] {
            XCTAssertEqual(noise.apply(to: x, seed: 4), noise.apply(to: x, seed: 4), "\(noise)")
            XCTAssertNotEqual(noise.apply(to: x, seed: 4), noise.apply(to: x, seed: 5), "\(noise)")
        }
        let masked = Noise.masking(fraction: 0.25).apply(to: x, seed: 1).scalars
        XCTAssertEqual(Double(masked.filter { $0 == 0 }.count) / 1000, 0.25, accuracy: 0.05)
        XCTAssertTrue(masked.allSatisfy { $0 == 0 || $0 == 0.5 })
        let salted = Noise.saltAndPepper(fraction: 0.2).apply(to: x, seed: 1).scalars
        XCTAssertEqual(Double(salted.filter { $0 != 0.5 }.count) / 1000, 0.2, accuracy: 0.05)
        XCTAssertTrue(salted.allSatisfy { $0 == 0 || $0 == 1 || $0 == 0.5 })
        let gaussian = Noise.gaussian(standardDeviation: 1).apply(to: x, seed: 1)
        XCTAssertGreaterThanOrEqual(gaussian.min(), 0)
        XCTAssertLessThanOrEqual(gaussian.max(), 1)
    }
}
