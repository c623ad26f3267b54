import Foundation
import XCTest
import Layers
import Recurrent
import TensorCore
import _NeuriteTestSupport
import KerasInterop

/// The conversion without Python: Neurite -> `.keras` file -> Neurite, `model.to_json()` text
/// Keras 3.15 wrote, and every kind of configuration the conversion must refuse (public API only,
/// as every suite). KerasRoundTripTests checks the same against a real Keras, and the weights
/// files it must refuse.
final class KerasConversionTests: XCTestCase {
    // MARK: Fixtures

    /// Small models covering every layer type KerasInterop converts, built, with batch
    /// normalisation statistics away from their initial values.
    static func models() throws -> [(name: String, model: Sequential, input: Tensor)] {
        var g = SeededGenerator(seed: 7)
        func x(_ shape: [Int]) -> Tensor { Tensor.randomUniform(shape, in: -1...1, using: &g) }
        func tokens(_ shape: [Int], zeros: Bool = false) -> Tensor {
            let n = shape.reduce(1, *)
            var values: [Float] = []
            for i in 0..<n {
                let token: Int = zeros && i % 6 < 2 ? 0 : (i * 7 + 3) % 10
                values.append(Float(token))
            }
            return Tensor(shape: shape, scalars: values)
        }
        var result: [(String, Sequential, Tensor)] = []
        result.append(
            ("dense", Sequential(inputShape: [6]) {
                Dense(5, activation: .relu)
                Dropout(0.2)
                Dense(3, activation: .softmax)
            }, x([4, 6])))
        result.append(
            ("cnn", Sequential(inputShape: [8, 8, 2]) {
                Conv2D(filters: 4, kernelSize: (3, 3), padding: .same, activation: .relu)
                BatchNormalization()
                MaxPool2D()
                Conv2D(filters: 3, kernelSize: (2, 2), useBias: false)
                AveragePool2D(poolSize: (2, 2))
                Flatten()
                Dense(2)
            }, x([3, 8, 8, 2])))
        result.append(
            ("conv1d", Sequential(inputShape: [10, 3]) {
                Conv1D(filters: 4, kernelSize: 3, activation: .relu)
                MaxPool1D()
                AveragePool1D()
                GlobalMaxPool1D()
                Dense(1, activation: .sigmoid)
            }, x([2, 10, 3])))
        result.append(
            ("transpose", Sequential(inputShape: [4, 4, 2]) {
                Conv2DTranspose(filters: 3, kernelSize: (3, 3), strides: (2, 2), padding: .same)
                UpSampling2D()
                ActivationLayer(.tanh)
                GlobalAveragePool2D()
                Reshape([3, 1])
                Flatten()
                Dense(2)
            }, x([2, 4, 4, 2])))
        result.append(
            ("recurrent", Sequential(inputShape: [7, 3]) {
                LSTM(4, returnSequences: true)
                GRU(3, returnSequences: true)
                SimpleRNN(2)
                Dense(1)
            }, x([3, 7, 3])))
        result.append(
            ("bidirectional", Sequential(inputShape: [6]) {
                Embedding(inputDim: 10, outputDim: 4)
                Bidirectional(LSTM(3, returnSequences: true))
                Bidirectional(GRU(2), mergeMode: .sum)
                Dense(2)
            }, tokens([3, 6])))
        result.append(
            ("masked", Sequential(inputShape: [6]) {
                Embedding(inputDim: 10, outputDim: 4, maskZero: true)
                LSTM(units: 3, maskValue: 0)
                Dense(1)
            }, tokens([3, 6], zeros: true)))
        // Steps whose features are all -1 are masked: sample b's first b steps.
        var stepped = x([3, 5, 3]).scalars
        for b in 0..<3 { for t in 0..<b { for f in 0..<3 { stepped[(b * 5 + t) * 3 + f] = -1 } } }
        result.append(
            ("masking", Sequential(inputShape: [5, 3]) {
                GRU(units: 3, maskValue: -1)
                Dense(1)
            }, Tensor(shape: [3, 5, 3], scalars: stepped)))
        for i in result.indices {
            try result[i].1.build(seed: UInt64(i + 1))
            for layer in result[i].1.layers {
                guard let bn = layer as? BatchNormalization else { continue }
                let c = bn.movingMean!.value.count
                bn.movingMean!.value = Tensor(shape: [c], scalars: (0..<c).map { Float($0) * 0.1 - 0.2 })
                bn.movingVariance!.value = Tensor(shape: [c], scalars: (0..<c).map { 0.5 + Float($0) * 0.3 })
                bn.gamma!.value = Tensor(shape: [c], scalars: (0..<c).map { 1 + Float($0) * 0.1 })
                bn.beta!.value = Tensor(shape: [c], scalars: (0..<c).map { Float($0) * -0.05 })
            }
        }
        return result
    }

    /// A Keras 3.15 `model.to_json()` of `Sequential([Input((5,), dtype="int32"), Embedding(10, 3), SimpleRNN(2)])`.
    static let embeddingJSON = """
    {"module": "keras", "class_name": "Sequential", "config": {"name": "sequential_3", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "layers": [{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 5], "dtype": "int32", "sparse": false, "ragged": false, "name": "input_layer_3", "optional": false}, "registered_name": null}, {"module": "keras.layers", "class_name": "Embedding", "config": {"name": "embedding", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "input_dim": 10, "output_dim": 3, "embeddings_initializer": {"module": "keras.initializers", "class_name": "RandomUniform", "config": {"seed": null, "minval": -0.05, "maxval": 0.05}, "registered_name": null}, "embeddings_regularizer": null, "activity_regularizer": null, "embeddings_constraint": null, "mask_zero": false, "quantization_config": null}, "registered_name": null, "build_config": {"input_shape": [null, 5]}}, {"module": "keras.layers", "class_name": "SimpleRNN", "config": {"name": "simple_rnn", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "return_sequences": false, "return_state": false, "go_backwards": false, "stateful": false, "unroll": false, "zero_output_for_mask": false, "units": 2, "activation": "tanh", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null, "input_axes": null, "output_axes": null}, "registered_name": null}, "recurrent_initializer": {"module": "keras.initializers", "class_name": "Orthogonal", "config": {"seed": null, "gain": 1.0}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "recurrent_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "recurrent_constraint": null, "bias_constraint": null, "dropout": 0.0, "recurrent_dropout": 0.0}, "registered_name": null, "build_config": {"input_shape": [null, 5, 3]}}], "build_input_shape": [null, 5]}, "registered_name": null, "build_config": {"input_shape": [null, 5]}, "compile_config": {}}
    """

    /// A model config around `layers` (JSON objects), with an InputLayer of `batchShape`.
    static func config(_ layers: [String], batchShape: String = "[null, 4]", className: String = "Sequential") -> Data {
        let input = #"{"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": \#(batchShape), "dtype": "float32", "sparse": false, "ragged": false, "name": "input_layer", "optional": false}, "registered_name": null}"#
        return Data(#"{"module": "keras", "class_name": "\#(className)", "config": {"name": "m", "trainable": true, "layers": [\#(([input] + layers).joined(separator: ", "))]}}"#.utf8)
    }

    static func dense(_ name: String, units: Int, extra: String = "") -> String {
        #"{"module": "keras.layers", "class_name": "Dense", "config": {"name": "\#(name)", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "units": \#(units), "activation": "relu", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null, "quantization_config": null\#(extra)}, "registered_name": null}"#
    }

    /// `KerasModel.fromJSON` of `config`.
    static func read(_ config: Data) throws -> Sequential { try KerasModel.fromJSON(String(decoding: config, as: UTF8.self)) }

    /// Runs `body`, which must throw a `KerasInteropError` whose message contains every one of `parts`.
    func assertConversionError(_ parts: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Any) {
        do {
            _ = try body()
            XCTFail("expected an error mentioning \(parts)", file: file, line: line)
        } catch let error as KerasInteropError {
            let message = "\(error)"
            for part in parts where !message.contains(part) {
                XCTFail("\"\(message)\" does not mention \"\(part)\"", file: file, line: line)
            }
        } catch {
            XCTFail("expected a KerasInteropError, got \(type(of: error)): \(error)", file: file, line: line)
        }
    }

    // MARK: Round trips

    func testEveryModelRoundTripsThroughAKerasFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-keras-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, model, input) in try Self.models() {
            let path = directory.appendingPathComponent("\(name).keras").path
            try KerasModel.save(model, to: path)
            let loaded = try KerasModel.load(from: path)
            XCTAssertEqual(loaded.builtInputShape, model.builtInputShape, name)
            XCTAssertEqual(loaded.layers.map { type(of: $0).typeName }, model.layers.map { type(of: $0).typeName }, name)
            XCTAssertEqual(loaded.layers.map(\.name), model.layers.map(\.name), name)
            XCTAssertEqual(try loaded.predict(input).scalars, try model.predict(input).scalars, name)
        }
    }

    func testEveryArchitectureRoundTripsThroughToJSON() throws {
        for (name, model, _) in try Self.models() {
            let fresh = try KerasModel.fromJSON(try KerasModel.toJSON(model))
            XCTAssertEqual(fresh.builtInputShape, model.builtInputShape, name)
            XCTAssertEqual(fresh.layers.map { type(of: $0).typeName }, model.layers.map { type(of: $0).typeName }, name)
            XCTAssertEqual(fresh.parameters.map(\.name), model.parameters.map(\.name), name)
            XCTAssertEqual(fresh.parameters.map(\.value.shape), model.parameters.map(\.value.shape), name)
        }
    }

    /// The weights file `KerasModel.save` wrote for `model`, with its archive and path.
    static func saved(_ model: Sequential, in directory: URL, as name: String) throws -> (path: String, archive: KerasArchive, weights: HDF5WeightsFile) {
        let path = directory.appendingPathComponent("\(name).keras").path
        try KerasModel.save(model, to: path)
        let archive = try KerasArchive.read(path: path)
        return (path, archive, try HDF5WeightsFile.read(data: archive.weights))
    }

    func testWeightsFileUsesKerasPathsAndShapes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-keras-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let models = try Self.models()
        let dense = try Self.saved(models[0].model, in: directory, as: "dense").weights
        XCTAssertEqual(dense.datasets.keys.sorted(), ["layers/dense/vars/0", "layers/dense/vars/1", "layers/dense_1/vars/0", "layers/dense_1/vars/1"])
        XCTAssertEqual(dense.datasets["layers/dense_1/vars/0"]?.shape, [5, 3])
        XCTAssertEqual(dense.groups["layers/dense/vars"], ["name": "dense"])
        XCTAssertEqual(dense.groups["layers/dropout/vars"], ["name": "dropout"])
        let bidirectional = try Self.saved(models[5].model, in: directory, as: "bidirectional").weights
        XCTAssertEqual(bidirectional.datasets["layers/bidirectional/forward_layer/cell/vars/0"]?.shape, [4, 12])
        XCTAssertEqual(bidirectional.datasets["layers/bidirectional/backward_layer/cell/vars/2"]?.shape, [12])
        XCTAssertEqual(bidirectional.datasets["layers/bidirectional_1/forward_layer/cell/vars/2"]?.shape, [2, 6])
        XCTAssertEqual(bidirectional.datasets["layers/embedding/vars/0"]?.shape, [10, 4])
        let cnn = try Self.saved(models[1].model, in: directory, as: "cnn").weights
        XCTAssertEqual(cnn.datasets["layers/conv2d_1/vars/0"]?.shape, [2, 2, 4, 3])
        XCTAssertNil(cnn.datasets["layers/conv2d_1/vars/1"])  // no bias
        XCTAssertEqual((0..<4).map { cnn.datasets["layers/batch_normalization/vars/\($0)"]?.shape }, Array(repeating: [4], count: 4))
        let transpose = try Self.saved(models[3].model, in: directory, as: "transpose").weights
        XCTAssertEqual(transpose.datasets["layers/conv2d_transpose/vars/0"]?.shape, [3, 3, 3, 2])
        let recurrent = try Self.saved(models[4].model, in: directory, as: "recurrent").weights
        XCTAssertEqual(recurrent.datasets["layers/lstm/cell/vars/1"]?.shape, [4, 16])
        XCTAssertEqual(recurrent.datasets["layers/gru/cell/vars/2"]?.shape, [2, 9])
        XCTAssertEqual(recurrent.datasets["layers/simple_rnn/cell/vars/0"]?.shape, [3, 2])
        XCTAssertEqual(recurrent.groups["layers/lstm/cell/vars"], ["name": "lstm_cell"])
    }

    func testWeightsMissingExtraOrMisShapedAreErrorsNamingTheVariable() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-keras-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (_, archive, weights) = try Self.saved(try Self.models()[0].model, in: directory, as: "dense")
        func variant(_ name: String, _ edit: (inout HDF5WeightsFile) -> Void) throws -> String {
            var changed = weights
            edit(&changed)
            var a = archive
            a.weights = try changed.encoded()
            let path = directory.appendingPathComponent("\(name).keras").path
            try a.write(path: path)
            return path
        }
        let missing = try variant("missing") { $0.datasets["layers/dense_1/vars/1"] = nil }
        assertConversionError(["'dense_1'", "bias", "layers/dense_1/vars/1"]) { try KerasModel.load(from: missing) }
        let misShaped = try variant("mis-shaped") { $0.datasets["layers/dense/vars/0"] = HDF5Tensor(shape: [5, 6], values: Array(repeating: 0, count: 30)) }
        assertConversionError(["'dense'", "kernel", "[6, 5]", "[5, 6]"]) { try KerasModel.load(from: misShaped) }
        let extra = try variant("extra") { $0.datasets["layers/dense/vars/2"] = HDF5Tensor(shape: [1], values: [0]) }
        assertConversionError(["layers/dense/vars/2"]) { try KerasModel.load(from: extra) }
        let optimizer = try variant("optimizer") { $0.datasets["optimizer/vars/0"] = HDF5Tensor(shape: [], values: [3]) }
        XCTAssertNoThrow(try KerasModel.load(from: optimizer))  // Keras' optimizer state is not read
        let tight = KerasFileLimits(maxTotalElements: 20)
        assertConversionError(["53 parameters", "limit of 20"]) {
            try KerasModel.fromJSON(String(decoding: archive.config, as: UTF8.self), limits: tight)
        }
    }

    // MARK: Keras' own JSON

    func testMaskValueIsWrittenAsKerasMasking() throws {
        let model = Sequential(inputShape: [4, 2]) { LSTM(units: 2, maskValue: 0.5) }
        try model.build()
        let json = try KerasModel.toJSON(model)
        XCTAssertTrue(json.contains(#""class_name":"Masking""#), json)
        let back = try KerasModel.fromJSON(json)
        XCTAssertEqual(back.layers.count, 1)
        XCTAssertEqual((back.layers[0] as? LSTM)?.maskValue, 0.5)
    }

    func testReadsKerasToJSON() throws {
        let model = try KerasModel.fromJSON(Self.embeddingJSON)
        XCTAssertEqual(model.name, "sequential_3")
        XCTAssertEqual(model.builtInputShape, [5])
        XCTAssertEqual(model.layers.map(\.name), ["embedding", "simple_rnn"])
        let embedding = try XCTUnwrap(model.layers[0] as? Embedding)
        XCTAssertEqual(embedding.embeddingsInitializer, .randomUniform(min: -0.05, max: 0.05))
        let rnn = try XCTUnwrap(model.layers[1] as? SimpleRNN)
        XCTAssertEqual(rnn.units, 2)
        XCTAssertNil(rnn.recurrentInitializer)  // Keras' Orthogonal(gain=1)
        XCTAssertEqual(model.builtOutputShape, [2])
    }

    func testWithoutInputShapeTheModelIsUnbuilt() throws {
        let json = String(decoding: Self.config([Self.dense("d", units: 3)]), as: UTF8.self)
        XCTAssertTrue(try KerasModel.fromJSON(json).isBuilt)
        let unbuilt = #"{"module": "keras", "class_name": "Sequential", "config": {"name": "m", "layers": [\#(Self.dense("d", units: 3))]}}"#
        let model = try KerasModel.fromJSON(unbuilt)
        XCTAssertFalse(model.isBuilt)
        XCTAssertEqual(model.layers.count, 1)
    }

    // MARK: What must be refused

    func testFunctionalModelIsAnError() {
        assertConversionError(["Functional", "Sequential models only"]) {
            try Self.read(Self.config([], className: "Functional"))
        }
    }

    func testUnknownLayerClassIsAnErrorNamingIt() {
        let layer = #"{"module": "keras.layers", "class_name": "LeakyReLU", "config": {"name": "leaky", "negative_slope": 0.3}, "registered_name": null}"#
        assertConversionError(["'leaky'", "LeakyReLU", "no LeakyReLU layer"]) { try Self.read(Self.config([layer])) }
        let custom = #"{"module": "my_layers", "class_name": "Dense", "config": {"name": "mine", "units": 2}, "registered_name": "Custom>Dense"}"#
        assertConversionError(["'mine'", "custom layer"]) { try Self.read(Self.config([custom])) }
    }

    func testUnsupportedOptionIsAnErrorNamingLayerAndKey() {
        let regularized = Self.dense("d", units: 3).replacingOccurrences(
            of: #""kernel_regularizer": null"#,
            with: #""kernel_regularizer": {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01}, "registered_name": null}"#)
        assertConversionError(["'d'", "Dense", "kernel_regularizer"]) { try Self.read(Self.config([regularized])) }
        let quantized = Self.dense("q", units: 3).replacingOccurrences(of: #""quantization_config": null"#, with: #""quantization_config": {"mode": "int8"}"#)
        assertConversionError(["'q'", "quantization_config"]) { try Self.read(Self.config([quantized])) }
        let initializer = Self.dense("v", units: 3).replacingOccurrences(of: #""class_name": "GlorotUniform", "config": {"seed": null}"#,
                                                                         with: #""class_name": "VarianceScaling", "config": {"scale": 3.0}"#)
        assertConversionError(["'v'", "kernel_initializer", "VarianceScaling"]) { try Self.read(Self.config([initializer])) }
        let grouped = #"{"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": [3, 3], "groups": 2}, "registered_name": null}"#
        assertConversionError(["'c'", "Conv2D", "groups"]) { try Self.read(Self.config([grouped], batchShape: "[null, 8, 8, 4]")) }
        let embedding = #"{"module": "keras.layers", "class_name": "Embedding", "config": {"name": "e", "input_dim": 5, "output_dim": 2, "embeddings_constraint": {"class_name": "NonNeg", "config": {}}}, "registered_name": null}"#
        assertConversionError(["'e'", "embeddings_constraint"]) { try Self.read(Self.config([embedding])) }
        let variable = String(decoding: Self.config([Self.dense("d", units: 3)], batchShape: "[null, null, 4]"), as: UTF8.self)
        assertConversionError(["variable (None)", "inputShape"]) { try KerasModel.fromJSON(variable) }
        XCTAssertEqual(try KerasModel.fromJSON(variable, inputShape: [7, 4]).builtOutputShape, [7, 3])
        assertConversionError(["does not fit", "[7, 5]"]) { try KerasModel.fromJSON(variable, inputShape: [7, 5]) }
    }

    /// A frozen Keras layer (`trainable: false`) loads frozen or is an error naming the flag, never
    /// a trainable layer.
    func testFrozenLayersStayFrozenOrAreRefused() {
        let embedding = #"{"module": "keras.layers", "class_name": "Embedding", "config": {"name": "e", "trainable": false, "input_dim": 5, "output_dim": 2}, "registered_name": null}"#
        let dense = Self.dense("d", units: 3).replacingOccurrences(of: #""trainable": true"#, with: #""trainable": false"#)
        for (layer, batchShape) in [(embedding, "[null, 4]"), (dense, "[null, 4]")] {
            do {
                let model = try Self.read(Self.config([layer], batchShape: batchShape))
                XCTAssertEqual(model.layers.first?.config["trainable"], .bool(false), layer)
            } catch let error as KerasInteropError {
                XCTAssertTrue("\(error)".contains("trainable"), "\(error)")
            } catch {
                XCTFail("\(error)")
            }
        }
    }

    func testHostileSizesAreRefusedBeforeAllocating() {
        // 2^31 x 2^31 weights: refused from the configuration, nothing allocated.
        let huge = Self.dense("big", units: 1 << 31)
        assertConversionError(["parameters", "limit"]) {
            try Self.read(Self.config([huge], batchShape: "[null, 2147483648]"))
        }
        assertConversionError(["'big'", "2^31"]) {
            try KerasModel.fromJSON(String(decoding: Self.config([Self.dense("big", units: 1 << 40)]), as: UTF8.self))
        }
        let reshape = #"{"module": "keras.layers", "class_name": "Reshape", "config": {"name": "r", "target_shape": [2147483647, 2147483647, 2147483647]}, "registered_name": null}"#
        assertConversionError(["'r'", "elements"]) { try Self.read(Self.config([reshape])) }
        assertConversionError(["elements"]) { try Self.read(Self.config([], batchShape: "[null, 2147483647, 2147483647, 2147483647]")) }
    }

    func testWhatKerasCannotExpressIsAnErrorOnWriting() throws {
        let leaky = Sequential(inputShape: [3]) { Dense(2, activation: .leakyRelu(alpha: 0.1)) }
        try leaky.build()
        assertConversionError(["'dense'", "activation"]) { try KerasModel.toJSON(leaky) }
        let masked = Sequential(inputShape: [4, 2]) {
            LSTM(units: 2, returnSequences: true, maskValue: 0)
            LSTM(units: 2)
        }
        try masked.build()
        assertConversionError(["'lstm'", "return_sequences"]) { try KerasModel.toJSON(masked) }
        let unbuilt = Sequential(inputShape: [3]) { Dense(2) }
        assertConversionError(["not built"]) { try KerasModel.save(unbuilt, to: "/nonexistent/unbuilt.keras") }
        let nested = Sequential(inputShape: [3]) { Sequential { Dense(2) } }
        try nested.build()
        assertConversionError(["nested"]) { try KerasModel.toJSON(nested) }
    }
}
