import Foundation
import Neurite
import XCTest
import _NeuriteTestSupport

/// `neurite-data predict`, the built tool run on a model saved here: its outputs are the model's
/// own predictions, and input that is not whole samples is a clear error, not a crash.
final class NeuriteDataPredictTests: XCTestCase {
    private func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-predict-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func writeFloats(_ values: [Float], to url: URL) throws {
        var data = Data(capacity: values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        try data.write(to: url)
    }

    func testPredictWritesTheSavedModelsOwnOutputsAndRejectsPartialSamples() throws {
        let folder = try scratch()
        let model = Sequential(inputShape: [3, 5]) {
            LSTM(4)
            Dense(3, activation: .softmax)
        }
        try model.build(seed: 11)
        let modelDir = folder.appendingPathComponent("model").path
        try model.save(to: modelDir)

        var g = SeededGenerator(seed: 5)
        let x = Tensor.randomNormal([7, 3, 5], using: &g)
        let input = folder.appendingPathComponent("x.f32"), output = folder.appendingPathComponent("y.f32")
        try writeFloats(x.scalars, to: input)
        let run = try BuiltProducts.run("neurite-data", ["predict", "--model", modelDir, "--input", input.path,
                                                         "--output", output.path], anchor: NeuriteDataPredictTests.self)
        XCTAssertEqual(run.status, 0, run.errors)
        XCTAssertTrue(run.output.contains("7 samples of shape [3, 5]"), run.output)
        let bytes = try Data(contentsOf: output)
        XCTAssertEqual(bytes.count, 7 * 3 * 4)
        let got = bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        assertClose(got, try model.predict(x).scalars.map(Double.init), rtol: 1e-6, atol: 1e-7)

        // One float short of a whole number of samples: an error naming the sizes, no output file.
        let partial = folder.appendingPathComponent("partial.f32"), none = folder.appendingPathComponent("none.f32")
        try writeFloats(Array(x.scalars.dropLast()), to: partial)
        let bad = try BuiltProducts.run("neurite-data", ["predict", "--model", modelDir, "--input", partial.path,
                                                         "--output", none.path], anchor: NeuriteDataPredictTests.self)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.errors.contains("is not a whole number of samples"), bad.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: none.path))
    }
}
