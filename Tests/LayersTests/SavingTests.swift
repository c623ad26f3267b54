import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class SavingTests: XCTestCase {
    private var directories: [String] = []

    /// A fresh, empty directory path (not created), removed after the test.
    private func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-saving-\(UUID().uuidString)").path
        directories.append(path)
        return path
    }

    override func tearDown() {
        for d in directories { try? FileManager.default.removeItem(atPath: d) }
        directories = []
        super.tearDown()
    }

    private func bits(_ t: Tensor) -> [UInt32] { t.scalars.map(\.bitPattern) }

    private func mlp() -> Sequential {
        Sequential(inputShape: [2]) {
            Dense(16, activation: .relu)
            Dense(8, activation: .tanh)
            Dense(2)
        }
    }

    private func cnn() -> Sequential {
        Sequential(inputShape: [6, 6, 1]) {
            Conv2D(filters: 4, kernelSize: (3, 3), padding: .same)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Dropout(0.3)
            Flatten()
            Dense(3)
        }
    }

    private func imageData(count: Int, seed: UInt64) -> (x: Tensor, y: [Int]) {
        let x = randomTensor([count, 6, 6, 1], seed: seed)
        let y = (0..<count).map { $0 % 3 }
        return (x, y)
    }

    private func readJSON(_ directory: String) throws -> [String: Any] {
        let data = try XCTUnwrap(FileManager.default.contents(atPath: directory + "/model.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func writeJSONText(_ directory: String, _ transform: (String) -> String) throws {
        let path = directory + "/model.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let changed = transform(text)
        XCTAssertNotEqual(changed, text, "the edit must change the file")
        try changed.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Asserts that `body` throws an error whose description contains every part.
    private func assertThrows(mentioning parts: [String], file: StaticString = #filePath, line: UInt = #line,
                              _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected an error mentioning \(parts)", file: file, line: line)
        } catch {
            let text = "\(error)"
            for part in parts { XCTAssertTrue(text.contains(part), "error lacks \"\(part)\": \(text)", file: file, line: line) }
        }
    }

    // MARK: Round trips

    func testMLPRoundTripPredictsBitForBit() throws {
        let (x, y) = spiralData(perClass: 16, seed: 3)
        let model = mlp()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SoftmaxCrossEntropy())
        try model.fit(x: x, y: y, epochs: 2, batchSize: 8, seed: 5, verbose: 0)
        let dir = temporaryDirectory() + "/nested/dirs"
        try model.save(to: dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/optimizer.safetensors"))

        let loaded = try Sequential.load(from: dir)
        XCTAssertEqual(loaded.layers.map(\.name), model.layers.map(\.name))
        XCTAssertEqual(Set(loaded.weights().keys), Set(model.weights().keys))
        XCTAssertEqual(bits(try loaded.predict(x)), bits(try model.predict(x)))
        // A differently initialised model does not predict the same: the weights really came from the file.
        let fresh = mlp()
        try fresh.build(seed: 99)
        XCTAssertNotEqual(bits(try fresh.predict(x)), bits(try model.predict(x)))
    }

    func testCNNWithBatchNormalizationAndDropoutRoundTripsInInference() throws {
        let (x, y) = imageData(count: 12, seed: 4)
        let model = cnn()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SoftmaxCrossEntropy())
        try model.fit(x: x, y: y, epochs: 2, batchSize: 4, seed: 2, verbose: 0)
        let weights = model.weights()
        let meanKey = try XCTUnwrap(weights.keys.first { $0.hasSuffix("moving_mean") }, "\(weights.keys.sorted())")
        XCTAssertTrue(weights[meanKey]!.scalars.contains { $0 != 0 }, "training moved the running mean")

        let dir = temporaryDirectory()
        try model.save(to: dir)
        let loaded = try Sequential.load(from: dir)
        XCTAssertEqual(bits(loaded.weights()[meanKey]!), bits(weights[meanKey]!))
        XCTAssertEqual(bits(try loaded.predict(x)), bits(try model.predict(x)))
        XCTAssertEqual(loaded.layers.map { type(of: $0).typeName }, model.layers.map { type(of: $0).typeName })
        let dropout = try XCTUnwrap(loaded.layers.compactMap { $0 as? Dropout }.first)
        XCTAssertEqual(dropout.rate, 0.3)
    }

    func testNestedSequentialParameterNamesSurvive() throws {
        let model = Sequential(inputShape: [4]) {
            Sequential(name: "encoder") {
                Dense(6, activation: .relu)
                Dense(5, activation: .relu)
            }
            Dense(2)
        }
        try model.build(seed: 1)
        let dir = temporaryDirectory()
        try model.save(to: dir)
        let (tensors, metadata) = try SafeTensors.read(contentsOf: dir + "/model.safetensors")
        XCTAssertNotNil(tensors["encoder.dense_1.kernel"], "\(tensors.keys.sorted())")
        XCTAssertNotNil(tensors["encoder.dense.bias"], "\(tensors.keys.sorted())")
        XCTAssertEqual(metadata["format_version"], "1")

        let loaded = try Sequential.load(from: dir)
        let encoder = try XCTUnwrap(loaded.layers.first as? Sequential)
        XCTAssertEqual(encoder.name, "encoder")
        XCTAssertEqual(encoder.layers.count, 2)
        XCTAssertEqual(Set(loaded.weights().keys), Set(tensors.keys))
        let x = randomTensor([5, 4], seed: 8)
        XCTAssertEqual(bits(try loaded.predict(x)), bits(try model.predict(x)))
    }

    func testUnbuiltModelsAndUndeclaredInputShapesRoundTrip() throws {
        let unbuilt = mlp()
        let dir = temporaryDirectory()
        try unbuilt.save(to: dir)
        let loadedUnbuilt = try Sequential.load(from: dir)
        XCTAssertFalse(loadedUnbuilt.isBuilt)
        XCTAssertEqual(loadedUnbuilt.inputShape, [2])
        XCTAssertEqual(loadedUnbuilt.layers.map(\.name), ["dense", "dense_1", "dense_2"])

        // Built through build(inputShape:generator:), without a declared input shape.
        let undeclared = Sequential { Dense(3, activation: .relu); Dense(2) }
        var generator = SeededGenerator(seed: 4)
        _ = try undeclared.build(inputShape: [5], generator: &generator)
        try undeclared.save(to: dir)
        let loaded = try Sequential.load(from: dir)
        XCTAssertNil(loaded.inputShape)
        XCTAssertEqual(loaded.builtInputShape, [5])
        let x = randomTensor([3, 5], seed: 2)
        XCTAssertEqual(bits(try loaded.predict(x)), bits(try undeclared.predict(x)))
    }

    func testASharedLayerStaysShared() throws {
        let shared = Dense(4, activation: .tanh, name: "shared")
        let model = Sequential(inputShape: [4]) {
            shared
            shared
            Dense(2)
        }
        try model.build(seed: 2)
        let dir = temporaryDirectory()
        try model.save(to: dir)
        let loaded = try Sequential.load(from: dir)
        XCTAssertEqual(loaded.layers.count, 3)
        XCTAssertTrue(loaded.layers[0] === loaded.layers[1])
        XCTAssertEqual(loaded.parameters.count, model.parameters.count)
        let x = randomTensor([3, 4], seed: 5)
        XCTAssertEqual(bits(try loaded.predict(x)), bits(try model.predict(x)))
    }

    // MARK: The architecture file

    func testJSONHoldsKerasTypeNamesClassNamesAndMetadata() throws {
        let model = cnn()
        try model.build(seed: 3)
        let dir = temporaryDirectory()
        try model.save(to: dir, classNames: ["cat", "dog", "emu"], metadata: ["dataset": "toy"])
        let json = try readJSON(dir)
        XCTAssertEqual(json["format_version"] as? Int, 1)
        XCTAssertEqual(json["build_input_shape"] as? [Int], [6, 6, 1])
        let top = try XCTUnwrap(json["model"] as? [String: Any])
        XCTAssertEqual(top["type"] as? String, "Sequential")
        let layers = try XCTUnwrap(top["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.compactMap { $0["type"] as? String },
                       ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Dropout", "Flatten", "Dense"])
        let denseConfig = try XCTUnwrap(layers.last?["config"] as? [String: Any])
        XCTAssertEqual(denseConfig["units"] as? Int, 3)

        let saved = try Sequential.loadSaved(from: dir)
        XCTAssertEqual(saved.classNames, ["cat", "dog", "emu"])
        XCTAssertEqual(saved.metadata, ["dataset": "toy"])
        XCTAssertEqual(saved.formatVersion, 1)
    }

    func testKerasAliasesAndRegisteredTypesLoad() throws {
        let model = cnn()
        try model.build(seed: 3)
        let dir = temporaryDirectory()
        try model.save(to: dir)
        try writeJSONText(dir) {
            $0.replacingOccurrences(of: "\"MaxPooling2D\"", with: "\"MaxPool2D\"")
                .replacingOccurrences(of: "\"Conv2D\"", with: "\"Convolution2D\"")
                .replacingOccurrences(of: "\"Dense\"", with: "\"SavingTestsDense\"")
        }
        assertThrows(mentioning: ["SavingTestsDense", "model.json"]) { _ = try Sequential.load(from: dir) }
        LayerRegistry.register(Dense.self, alias: "SavingTestsDense")
        let loaded = try Sequential.load(from: dir)
        XCTAssertTrue(loaded.layers[0] is Conv2D)
        XCTAssertTrue(loaded.layers[3] is MaxPool2D)
        let x = randomTensor([2, 6, 6, 1], seed: 1)
        XCTAssertEqual(bits(try loaded.predict(x)), bits(try model.predict(x)))
    }

    func testUnknownLayerTypeIsNamed() throws {
        let model = mlp()
        try model.build(seed: 1)
        let dir = temporaryDirectory()
        try model.save(to: dir)
        try writeJSONText(dir) { $0.replacingOccurrences(of: "\"Dense\"", with: "\"FancyDense\"") }
        assertThrows(mentioning: ["unknown layer type \"FancyDense\"", dir + "/model.json", "LayerRegistry.register"]) {
            _ = try Sequential.load(from: dir)
        }
    }

    func testMissingAndCorruptArchitectureFilesAreNamed() throws {
        let dir = temporaryDirectory()
        assertThrows(mentioning: [dir + "/model.json"]) { _ = try Sequential.load(from: dir) }
        let model = mlp()
        try model.build(seed: 1)
        try model.save(to: dir)
        try "{\"format\": \"neurite.sequential\", \"format_version\": 1, \"model\": ".write(
            toFile: dir + "/model.json", atomically: true, encoding: .utf8)
        assertThrows(mentioning: [dir + "/model.json", "not a valid model architecture"]) { _ = try Sequential.load(from: dir) }
        try model.save(to: dir)
        try writeJSONText(dir) { $0.replacingOccurrences(of: "\"format_version\" : 1", with: "\"format_version\" : 7") }
        assertThrows(mentioning: [dir + "/model.json", "format version 7"]) { _ = try Sequential.load(from: dir) }
    }

    // MARK: Tampered weights

    func testTamperedWeightsNameTheKey() throws {
        let model = mlp()
        try model.build(seed: 1)
        let dir = temporaryDirectory()
        try model.save(to: dir)
        let path = dir + "/model.safetensors"
        let good = try SafeTensors.read(contentsOf: path).tensors
        XCTAssertNoThrow(try Sequential.load(from: dir))

        var missing = good
        missing["dense_1.bias"] = nil
        try SafeTensors.write(missing, to: path)
        assertThrows(mentioning: ["missing", "dense_1.bias", path]) { _ = try Sequential.load(from: dir) }

        var extra = good
        extra["dense_9.kernel"] = Tensor(shape: [2, 2], repeating: 1)
        try SafeTensors.write(extra, to: path)
        assertThrows(mentioning: ["unexpected", "dense_9.kernel", path]) { _ = try Sequential.load(from: dir) }

        var misShaped = good
        misShaped["dense.kernel"] = Tensor(shape: [3, 16], repeating: 0)
        try SafeTensors.write(misShaped, to: path)
        assertThrows(mentioning: ["dense.kernel", "[2, 16]", "[3, 16]"]) { _ = try Sequential.load(from: dir) }

        try Array("not safetensors".utf8).withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
        assertThrows(mentioning: [path]) { _ = try Sequential.load(from: dir) }
    }

    // MARK: Resuming

    /// Trains `model()` for 4 epochs straight, and for 2 epochs, saved with its optimizer state,
    /// reloaded and resumed at epoch 2; checks that both runs give the same losses, history and
    /// weights, bit for bit, and returns what a caller needs for further checks.
    private func checkResumeEqualsUninterrupted(_ model: () -> Sequential, x: Tensor, y: [Int], seed: UInt64,
                                                file: StaticString = #filePath, line: UInt = #line) throws
        -> (full: History, tail: History, directory: String) {
        let straight = model()
        straight.compile(optimizer: Adam(learningRate: 0.02), loss: SoftmaxCrossEntropy())
        let full = try straight.fit(x: x, y: y, epochs: 4, batchSize: 10, seed: seed, verbose: 0)

        let first = model()
        let adam = Adam(learningRate: 0.02)
        first.compile(optimizer: adam, loss: SoftmaxCrossEntropy())
        let head = try first.fit(x: x, y: y, epochs: 2, batchSize: 10, seed: seed, verbose: 0)
        let dir = temporaryDirectory()
        try first.save(to: dir, optimizer: adam)

        let resumed = try Sequential.load(from: dir)
        let freshAdam = Adam(learningRate: 0.02)
        try resumed.loadOptimizerState(into: freshAdam, from: dir)
        resumed.compile(optimizer: freshAdam, loss: SoftmaxCrossEntropy())
        let tail = try resumed.fit(x: x, y: y, epochs: 4, initialEpoch: 2, batchSize: 10, seed: seed, verbose: 0)

        XCTAssertEqual(tail.epochs, [2, 3], file: file, line: line)
        XCTAssertEqual(head["loss"]! + tail["loss"]!, full["loss"]!, file: file, line: line)
        var joined = History()
        joined.append(head)
        joined.append(tail)
        XCTAssertEqual(joined, full, file: file, line: line)
        XCTAssertEqual(resumed.weights().mapValues(bits), straight.weights().mapValues(bits), file: file, line: line)
        return (full, tail, dir)
    }

    func testResumedTrainingEqualsAnUninterruptedRun() throws {
        let (x, y) = spiralData(perClass: 24, seed: 11)
        let (_, tail, dir) = try checkResumeEqualsUninterrupted({
            Sequential(inputShape: [2]) {
                Dense(12, activation: .relu)
                BatchNormalization()
                Dense(2)
            }
        }, x: x, y: y, seed: 6)

        // Without the optimizer's state the curve differs: the test above can fail.
        let cold = try Sequential.load(from: dir)
        cold.compile(optimizer: Adam(learningRate: 0.02), loss: SoftmaxCrossEntropy())
        let coldTail = try cold.fit(x: x, y: y, epochs: 4, initialEpoch: 2, batchSize: 10, seed: 6, verbose: 0)
        XCTAssertNotEqual(coldTail["loss"]!, tail["loss"]!)
    }

    func testResumedTrainingWithDropoutEqualsAnUninterruptedRun() throws {
        let (x, y) = spiralData(perClass: 24, seed: 12)
        func model(rate: Float) -> Sequential {
            Sequential(inputShape: [2]) {
                Dense(16, activation: .relu)
                Dropout(rate)
                Dense(2)
            }
        }
        let (full, _, _) = try checkResumeEqualsUninterrupted({ model(rate: 0.4) }, x: x, y: y, seed: 7)

        // The masks matter: the same run without dropout ends elsewhere.
        let plain = model(rate: 0)
        plain.compile(optimizer: Adam(learningRate: 0.02), loss: SoftmaxCrossEntropy())
        XCTAssertNotEqual(try plain.fit(x: x, y: y, epochs: 4, batchSize: 10, seed: 7, verbose: 0)["loss"]!, full["loss"]!)
    }

    func testOptimizerStateErrorsNameTheFile() throws {
        let model = mlp()
        try model.build(seed: 1)
        let dir = temporaryDirectory()
        try model.save(to: dir)
        assertThrows(mentioning: [dir + "/optimizer.safetensors"]) { try model.loadOptimizerState(into: Adam(), from: dir) }
        let other = Sequential(inputShape: [2]) { Dense(3) }
        try other.build(seed: 1)
        let (x, y) = spiralData(perClass: 4, seed: 1)
        let adam = Adam()
        other.compile(optimizer: adam, loss: SoftmaxCrossEntropy())
        try other.fit(x: x, y: y, epochs: 1, batchSize: 8, verbose: 0)
        try other.save(to: dir, optimizer: adam)
        assertThrows(mentioning: [dir + "/optimizer.safetensors", "dense.kernel"]) {
            try model.loadOptimizerState(into: Adam(), from: dir)
        }
        // Saving without an optimizer removes the state that no longer matches.
        try model.save(to: dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/optimizer.safetensors"))
    }

    // MARK: ModelCheckpoint

    /// Reloads the checkpoint after every epoch (it runs after the checkpoint) and records its predictions.
    private final class CheckpointProbe: Callback {
        let directory: String
        let x: Tensor
        var predictions: [Tensor] = []
        var saved: [Tensor?] = []
        init(directory: String, x: Tensor) {
            self.directory = directory
            self.x = x
        }
        func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
            predictions.append(try context.model.predict(x))
            saved.append(FileManager.default.fileExists(atPath: directory + "/model.json")
                         ? try Sequential.load(from: directory).predict(x) : nil)
        }
    }

    func testModelCheckpointSavesOnlyOnImprovement() throws {
        let (x, y) = spiralData(perClass: 20, seed: 2)
        let model = Sequential(inputShape: [2]) { Dense(16, activation: .relu); Dense(2) }
        // A large step, so that the validation loss goes up as well as down.
        model.compile(optimizer: Adam(learningRate: 0.3), loss: SoftmaxCrossEntropy())
        let dir = temporaryDirectory()
        let checkpoint = ModelCheckpoint(directory: dir, monitor: "val_loss")
        let probe = CheckpointProbe(directory: dir, x: x)
        let history = try model.fit(x: x, y: y, epochs: 8, batchSize: 8, validationSplit: 0.25, seed: 3,
                                    callbacks: [checkpoint, probe], verbose: 0)
        let losses = history["val_loss"]!
        var expected: [Int] = []
        var best = Double.infinity
        for (e, l) in losses.enumerated() where l < best {
            best = l
            expected.append(e)
        }
        XCTAssertEqual(checkpoint.savedEpochs, expected, "val_loss \(losses)")
        XCTAssertLessThan(expected.count, losses.count, "some epoch must fail to improve for this test to mean anything: \(losses)")
        XCTAssertEqual(checkpoint.best, best)
        // After each epoch the directory holds the best model so far.
        for e in losses.indices {
            let bestSoFar = try XCTUnwrap(expected.last { $0 <= e })
            let saved = try XCTUnwrap(probe.saved[e], "epoch \(e)")
            XCTAssertEqual(bits(saved), bits(probe.predictions[bestSoFar]), "epoch \(e)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/optimizer.safetensors"))
        let final = try Sequential.load(from: dir)
        XCTAssertEqual(bits(try final.predict(x)), bits(probe.predictions[expected.last!]))
    }

    func testModelCheckpointWithoutSaveBestOnlySavesEveryEpoch() throws {
        let (x, y) = spiralData(perClass: 8, seed: 2)
        let model = Sequential(inputShape: [2]) { Dense(4, activation: .relu); Dense(2) }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SoftmaxCrossEntropy())
        let dir = temporaryDirectory()
        let checkpoint = ModelCheckpoint(directory: dir, saveBestOnly: false, saveOptimizer: false)
        try model.fit(x: x, y: y, epochs: 3, batchSize: 8, seed: 3, callbacks: [checkpoint], verbose: 0)
        XCTAssertEqual(checkpoint.savedEpochs, [0, 1, 2])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/optimizer.safetensors"))
        XCTAssertEqual(bits(try Sequential.load(from: dir).predict(x)), bits(try model.predict(x)))
    }

    func testModelCheckpointNeedsTheMonitoredValue() throws {
        let (x, y) = spiralData(perClass: 4, seed: 2)
        let model = Sequential(inputShape: [2]) { Dense(2) }
        model.compile(optimizer: Adam(), loss: SoftmaxCrossEntropy())
        let checkpoint = ModelCheckpoint(directory: temporaryDirectory(), monitor: "val_loss")
        assertThrows(mentioning: ["val_loss", "validationData"]) {
            try model.fit(x: x, y: y, epochs: 1, callbacks: [checkpoint], verbose: 0)
        }
    }
}
