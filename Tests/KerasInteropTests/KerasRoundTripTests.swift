import Foundation
import XCTest
import Layers
import Optimizers
import Recurrent
import TensorCore
import _NeuriteTestSupport
import KerasInterop

/// A real client both ways: Keras 3 (the virtual environment `.ci/run` prepares) trains small
/// models and saves them, Neurite loads them and predicts what Keras predicted; Neurite trains
/// models and saves them, Keras' `load_model` reads them and predicts what Neurite predicted.
/// Dense, Conv1D, Conv2D, Conv2DTranspose, pooling, UpSampling2D, BatchNormalization (after
/// training, so its statistics are not the initial ones), Dropout, LSTM, GRU, SimpleRNN, Embedding
/// (with and without mask_zero), Masking and Bidirectional. Each direction is one Python process (importing
/// TensorFlow costs seconds), shared by the tests that need it. These tests never skip in CI:
/// `KerasPython` fails when `CI` is set and the interpreter is missing.
final class KerasRoundTripTests: XCTestCase {
    /// Predictions agree within this relative tolerance (plus `absoluteTolerance`): both sides
    /// compute in float32, in different orders.
    static let relativeTolerance = 1e-4
    static let absoluteTolerance = 1e-5

    /// Inputs and predictions as the scripts write them (`<name>.json`).
    struct Sample: Codable {
        var input: [Float]
        var inputShape: [Int]
        var output: [Float]
        var outputShape: [Int]
        enum CodingKeys: String, CodingKey {
            case input, output
            case inputShape = "input_shape"
            case outputShape = "output_shape"
        }
        var inputTensor: Tensor { Tensor(shape: inputShape, scalars: input) }
    }

    static func readSample(_ url: URL) throws -> Sample {
        try JSONDecoder().decode(Sample.self, from: Data(contentsOf: url))
    }

    static func writeSample(_ sample: Sample, to url: URL) throws {
        try JSONEncoder().encode(sample).write(to: url)
    }

    static func makeDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-keras-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// `actual` against `expected` within the tolerances; returns the largest absolute and
    /// relative differences, for the record.
    @discardableResult
    static func compare(_ actual: Tensor, _ expected: Sample, _ name: String,
                        file: StaticString = #filePath, line: UInt = #line) -> (absolute: Double, relative: Double) {
        XCTAssertEqual(actual.shape, expected.outputShape, "\(name): shapes", file: file, line: line)
        assertClose(actual.scalars, expected.output.map(Double.init), rtol: relativeTolerance, atol: absoluteTolerance,
                    name, file: file, line: line)
        var absolute = 0.0, relative = 0.0
        for (a, e) in zip(actual.scalars, expected.output) {
            let d = abs(Double(a) - Double(e))
            absolute = max(absolute, d)
            relative = max(relative, d / max(abs(Double(e)), 1e-3))
        }
        return (absolute, relative)
    }

    // MARK: Keras -> Neurite

    /// What running the Keras side once gave: its directory, or why it was skipped or failed.
    enum Outcome: Sendable {
        case ready(URL)
        case skipped(String)
        case failed(String)
    }

    /// The Keras script, run once per test run for the tests that read its files.
    static let kerasSide: Outcome = {
        do {
            let directory = try makeDirectory("from-keras")
            try KerasPython.run(KerasScripts.trainAndSave, arguments: [directory.path])
            return .ready(directory)
        } catch let skip as XCTSkip {
            return .skipped("\(skip)")
        } catch {
            return .failed("\(error)")
        }
    }()

    /// The directory where the Keras script saved its models; skips or fails as it did.
    static func kerasDirectory() throws -> URL {
        switch kerasSide {
        case .ready(let url): return url
        case .skipped(let message): throw XCTSkip(message)
        case .failed(let message): throw KerasPython.Failure(description: message)
        }
    }

    static let kerasModelNames = ["dense", "cnn", "batchnorm", "conv1d", "transpose", "lstm", "gru", "simplernn",
                                  "embedding", "masked", "masking", "variable_length", "bidirectional"]

    /// The shape to load a model with: `variable_length` has a variable time axis, `Input((None, 3))`.
    static func loadShape(_ name: String) -> [Int]? { name == "variable_length" ? [7, 3] : nil }

    func testKerasTrainedModelsPredictTheSameInNeurite() throws {
        let directory = try Self.kerasDirectory()
        for name in Self.kerasModelNames {
            let model = try KerasModel.load(from: directory.appendingPathComponent("\(name).keras").path,
                                            inputShape: Self.loadShape(name))
            let sample = try Self.readSample(directory.appendingPathComponent("\(name).json"))
            let (absolute, relative) = Self.compare(try model.predict(sample.inputTensor), sample, name)
            print("Keras -> Neurite \(name): largest difference \(absolute) (relative \(relative))")
        }
    }

    func testKerasToJSONBuildsTheSameArchitecture() throws {
        let directory = try Self.kerasDirectory()
        for name in Self.kerasModelNames {
            let json = try String(contentsOf: directory.appendingPathComponent("\(name).to_json"), encoding: .utf8)
            let counts = try String(contentsOf: directory.appendingPathComponent("\(name).count"), encoding: .utf8)
            let model = try KerasModel.fromJSON(json, inputShape: Self.loadShape(name))
            XCTAssertTrue(model.isBuilt, name)
            XCTAssertEqual(model.parameters.reduce(0) { $0 + $1.value.count }, Int(counts.trimmingCharacters(in: .whitespacesAndNewlines)), name)
            let loaded = try KerasModel.load(from: directory.appendingPathComponent("\(name).keras").path,
                                             inputShape: Self.loadShape(name))
            XCTAssertEqual(model.layers.map(\.name), loaded.layers.map(\.name), name)
        }
    }

    func testBadKerasFilesAreErrorsNamingTheProblem() throws {
        let directory = try Self.kerasDirectory()
        let cases: [(String, [String])] = [
            ("missing_variable", ["'dense_1'", "bias", "layers/dense_1/vars/1"]),
            ("wrong_shape", ["'dense'", "kernel", "[8, 16]", "[16, 8]"]),
            ("extra_variable", ["layers/dense/vars/2"]),
            ("functional", ["Functional", "Sequential models only"]),
            ("leaky_relu", ["LeakyReLU"]),
            ("regularized", ["Dense", "kernel_regularizer"]),
            ("global_max_pooling", ["GlobalMaxPooling2D"]),
        ]
        // A variable axis needs the shape to load with, which must fit the fixed ones.
        let variable = directory.appendingPathComponent("variable_length.keras").path
        let refused = cases + [("variable_length", ["axis 1 variable (None)", "inputShape"])]
        do {
            _ = try KerasModel.load(from: variable, inputShape: [7, 4])
            XCTFail("loaded [7, 4] into a model of [None, 3]")
        } catch let error as KerasInteropError {
            XCTAssertTrue("\(error)".contains("does not fit the input shape [7, 4]"), "\(error)")
        }
        for (name, parts) in refused {
            do {
                _ = try KerasModel.load(from: directory.appendingPathComponent("\(name).keras").path)
                XCTFail("\(name): loaded, expected an error mentioning \(parts)")
            } catch let error as KerasInteropError {
                for part in parts where !"\(error)".contains(part) { XCTFail("\(name): \"\(error)\" does not mention \"\(part)\"") }
            }
        }
    }

    // MARK: Neurite -> Keras

    /// Neurite's versions of the models, trained a few steps on random data.
    static func neuriteModels() throws -> [(name: String, model: Sequential, input: Tensor)] {
        var result: [(String, Sequential, Tensor)] = []
        for (name, model, input) in try KerasConversionTests.models() {
            var g = SeededGenerator(seed: 11)
            let n = 16
            let x: Tensor
            if model.layers.first is Embedding {
                x = Tensor(shape: [n] + input.shape.dropFirst(), scalars: (0..<(n * input.shape[1])).map { i in
                    Float(i % 5 == 0 ? 0 : Int.random(in: 1..<10, using: &g))
                })
            } else {
                x = Tensor.randomUniform([n] + input.shape.dropFirst(), in: -1...1, using: &g)
            }
            let y = Tensor.randomUniform([n] + (model.builtOutputShape ?? []), in: 0...1, using: &g)
            model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
            _ = try model.fit(x: x, y: y, epochs: 2, batchSize: 4, seed: 3, verbose: 0)
            result.append((name, model, input))
        }
        return result
    }

    func testNeuriteTrainedModelsPredictTheSameInKeras() throws {
        let directory = try Self.makeDirectory("from-neurite")
        defer { try? FileManager.default.removeItem(at: directory) }
        let models = try Self.neuriteModels()
        var parameterCounts: [String: Int] = [:]
        for (name, model, input) in models {
            try KerasModel.save(model, to: directory.appendingPathComponent("\(name).keras").path)
            try KerasModel.toJSON(model).write(to: directory.appendingPathComponent("\(name).to_json"), atomically: true, encoding: .utf8)
            let output = try model.predict(input)
            try Self.writeSample(Sample(input: input.scalars, inputShape: input.shape, output: output.scalars, outputShape: output.shape),
                                 to: directory.appendingPathComponent("\(name).json"))
            parameterCounts[name] = model.parameters.reduce(0) { $0 + $1.value.count }
        }
        let report = try KerasPython.run(KerasScripts.loadAndPredict, arguments: [directory.path] + models.map(\.name))
        for (name, _, _) in models {
            let keras = try Self.readSample(directory.appendingPathComponent("\(name).keras_prediction.json"))
            let neurite = try Self.readSample(directory.appendingPathComponent("\(name).json"))
            // Keras' predictions compared with Neurite's (the roles of compare's arguments swapped).
            let (absolute, relative) = Self.compare(Tensor(shape: keras.outputShape, scalars: keras.output), neurite, name)
            print("Neurite -> Keras \(name): largest difference \(absolute) (relative \(relative))")
            XCTAssertTrue(report.contains("\(name) params \(parameterCounts[name]!) json_params \(parameterCounts[name]!)"),
                          "\(name): Keras counted other parameters: \(report)")
        }
    }
}
