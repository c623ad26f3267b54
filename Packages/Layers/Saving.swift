import Foundation
import Optimizers
import TensorCore

// MARK: - Layer registry

/// The layer types a saved architecture can name, by their `typeName`: what
/// ``Sequential/load(from:)`` calls `init(config:)` on.
///
/// Every layer type of this module is registered, with Keras' aliases (`"MaxPool2D"`,
/// `"AvgPool2D"`, `"GlobalAvgPool2D"`, `"Convolution2D"`, and the same for the 1-D layers:
/// `"Convolution1D"`, `"MaxPool1D"`, `"AvgPool1D"`, `"GlobalMaxPool1D"`, `"GlobalAvgPool1D"`).
/// A layer type of your own is added with ``register(_:alias:)`` before loading a model that uses it:
///
/// ```swift
/// LayerRegistry.register(MyLayer.self)        // under MyLayer.typeName
/// let model = try Sequential.load(from: "checkpoints/best")
/// ```
///
/// The registry only maps names to types compiled into the program: a saved model holds JSON and
/// tensors, never code. It is safe to use from several threads.
public enum LayerRegistry {
    /// The table, behind a lock. `@unchecked Sendable`: `table` is read and written only while
    /// `lock` is held (a `Mutex` would not do, as layer metatypes are not `Sendable`).
    private final class Table: @unchecked Sendable {
        private let lock = NSLock()
        private var table: [String: any Layer.Type]
        init(_ table: [String: any Layer.Type]) { self.table = table }
        func withLock<R>(_ body: (inout [String: any Layer.Type]) -> R) -> R {
            lock.lock()
            defer { lock.unlock() }
            return body(&table)
        }
    }

    private static let types = Table(builtIn())

    private static func builtIn() -> [String: any Layer.Type] {
        var table: [String: any Layer.Type] = [:]
        let all: [any Layer.Type] = [
            Dense.self, Conv2D.self, BatchNormalization.self, Dropout.self, MaxPool2D.self, AveragePool2D.self,
            GlobalAveragePool2D.self, Flatten.self, Reshape.self, ActivationLayer.self, Sequential.self, Input.self, UpSampling2D.self, Conv2DTranspose.self,
            Conv1D.self, MaxPool1D.self, AveragePool1D.self, GlobalMaxPool1D.self, GlobalAveragePool1D.self,
        ]
        for type in all { table[type.typeName] = type }
        table["MaxPool2D"] = MaxPool2D.self
        table["AvgPool2D"] = AveragePool2D.self
        table["GlobalAvgPool2D"] = GlobalAveragePool2D.self
        table["Convolution2D"] = Conv2D.self
        table["Convolution1D"] = Conv1D.self
        table["MaxPool1D"] = MaxPool1D.self
        table["AvgPool1D"] = AveragePool1D.self
        table["GlobalMaxPool1D"] = GlobalMaxPool1D.self
        table["GlobalAvgPool1D"] = GlobalAveragePool1D.self
        return table
    }

    /// Registers `type` under its `typeName` (and under `alias` too, when given), replacing any
    /// type registered under that name before.
    /// - Precondition: the names are not empty.
    public static func register(_ type: any Layer.Type, alias: String? = nil) {
        let names = [type.typeName] + (alias.map { [$0] } ?? [])
        neuritePrecondition(names.allSatisfy { !$0.isEmpty }, "LayerRegistry.register needs a non-empty type name for \(type)")
        types.withLock { table in
            for name in names { table[name] = type }
        }
    }

    /// The type registered under `typeName`, if any.
    public static func type(named typeName: String) -> (any Layer.Type)? {
        types.withLock { $0[typeName] }
    }

    /// Every registered name (type names and aliases), sorted.
    public static var registeredNames: [String] {
        types.withLock { Array($0.keys) }.sorted()
    }
}

// MARK: - Saved model files

/// What ``Sequential/loadSaved(from:)`` returns: the model with what was saved beside it.
public struct SavedModel {
    /// The rebuilt model, built and with its saved weights (unbuilt if it was saved unbuilt).
    public var model: Sequential
    /// The class names given to `save`, if any.
    public var classNames: [String]?
    /// The metadata given to `save`.
    public var metadata: [String: String]
    /// The format version of the files.
    public var formatVersion: Int
}

/// One layer of a saved architecture: `{"type": "Dense", "config": {...}}`, with `"layers"` for a
/// container and `"shared": true` for a second use of a layer saved earlier in the same container
/// (whose config then holds only its name).
struct LayerRecord: Codable {
    var type: String
    var config: [String: ConfigValue]
    var layers: [LayerRecord]?
    var shared: Bool?
}

/// The contents of `model.json`.
struct ModelFile: Codable {
    var format: String
    var formatVersion: Int
    var model: LayerRecord
    var buildInputShape: [Int]?
    var classNames: [String]?
    var metadata: [String: String]?

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case model
        case buildInputShape = "build_input_shape"
        case classNames = "class_names"
        case metadata
    }
}

extension Sequential {
    /// The version of the saved-model format that ``save(to:optimizer:classNames:metadata:)``
    /// writes and the newest that ``load(from:)`` reads.
    public static let savedModelFormatVersion = 1
    /// The architecture file's name in a saved model's directory.
    public static let architectureFileName = "model.json"
    /// The weights file's name in a saved model's directory.
    public static let weightsFileName = "model.safetensors"
    /// The optimizer state file's name in a saved model's directory.
    public static let optimizerFileName = "optimizer.safetensors"
    private static let formatName = "neurite.sequential"

    /// Saves the model in `directory` (created if missing), Keras-style:
    ///
    /// - `model.json`: the format version, the architecture (the model's config and each layer as
    ///   `{"type": "Dense", "config": {...}}`, nested models with their own `"layers"`), the input
    ///   shape it was built for, and `classNames` and `metadata` when given;
    /// - `model.safetensors`: every parameter by its name (`"dense_1.kernel"`,
    ///   `"encoder.dense.bias"`), non-trainable ones (running statistics) included, with the format
    ///   version in `__metadata__`;
    /// - `optimizer.safetensors`: when `optimizer` is given, its `stateTensors()`, so training can
    ///   resume exactly (see ``loadOptimizerState(into:from:)``). Saving without an optimizer
    ///   removes an `optimizer.safetensors` left in the directory, which would no longer match.
    ///
    /// Each file is written atomically (see `AtomicFile`): a reader sees the old file or the new
    /// one, never a part; the weights are written before the architecture. Nothing but JSON and
    /// tensors is written, so loading a model never runs code from the files.
    /// - Throws: `LayerError` naming the directory or file that cannot be written.
    public func save(to directory: String, optimizer: (any Optimizer)? = nil,
                     classNames: [String]? = nil, metadata: [String: String] = [:]) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LayerError("cannot create the model directory \(directory): \(error.localizedDescription)")
        }
        let versionMetadata = ["format": Self.formatName, "format_version": String(Self.savedModelFormatVersion)]
        let weightsPath = Self.path(directory, Self.weightsFileName)
        do {
            try SafeTensors.write(isBuilt ? weights() : [:], metadata: versionMetadata, to: weightsPath)
        } catch {
            throw LayerError("cannot write \(weightsPath): \(error)")
        }
        let optimizerPath = Self.path(directory, Self.optimizerFileName)
        if let optimizer {
            do {
                try SafeTensors.write(optimizer.stateTensors(), metadata: versionMetadata, to: optimizerPath)
            } catch {
                throw LayerError("cannot write \(optimizerPath): \(error)")
            }
        } else if FileManager.default.fileExists(atPath: optimizerPath) {
            do {
                try FileManager.default.removeItem(atPath: optimizerPath)
            } catch {
                throw LayerError("cannot remove the stale \(optimizerPath): \(error.localizedDescription)")
            }
        }
        let file = ModelFile(format: Self.formatName, formatVersion: Self.savedModelFormatVersion,
                             model: Self.record(of: self), buildInputShape: builtInputShape,
                             classNames: classNames, metadata: metadata.isEmpty ? nil : metadata)
        let modelPath = Self.path(directory, Self.architectureFileName)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(Array(try encoder.encode(file)) + [UInt8(ascii: "\n")], to: modelPath)
        } catch {
            throw LayerError("cannot write \(modelPath): \(error)")
        }
    }

    /// Loads a model saved by ``save(to:optimizer:classNames:metadata:)``: rebuilds the
    /// architecture from `model.json` through ``LayerRegistry``, builds it for the saved input
    /// shape, and loads the weights from `model.safetensors`. The result predicts exactly as the
    /// saved model did; compile it to train on.
    ///
    /// - Throws: `LayerError` naming the file and the problem: a missing or corrupt `model.json`,
    ///   a format version newer than this library reads, a layer type not registered (named), a
    ///   layer config that does not fit its type, or weights that do not fit the model (naming every
    ///   missing, unexpected and mis-shaped key); `SafeTensorsError` naming a corrupt weights file.
    public static func load(from directory: String) throws -> Sequential {
        try loadSaved(from: directory).model
    }

    /// ``load(from:)``, returning also the class names and metadata saved with the model.
    public static func loadSaved(from directory: String) throws -> SavedModel {
        let modelPath = path(directory, architectureFileName)
        guard let data = FileManager.default.contents(atPath: modelPath) else {
            let reason = FileManager.default.fileExists(atPath: directory) ? "no such file (or unreadable)" : "the directory does not exist"
            throw LayerError("\(modelPath): cannot read the model architecture: \(reason)")
        }
        let file: ModelFile
        do {
            file = try JSONDecoder().decode(ModelFile.self, from: data)
        } catch {
            throw LayerError("\(modelPath): not a valid model architecture file: \(describe(error))")
        }
        guard file.format == formatName else {
            throw LayerError("\(modelPath): format \"\(file.format)\" is not a Neurite Sequential model (\"\(formatName)\")")
        }
        guard file.formatVersion >= 1 && file.formatVersion <= savedModelFormatVersion else {
            throw LayerError("\(modelPath): format version \(file.formatVersion) is not one this library reads "
                             + "(1...\(savedModelFormatVersion)); it was written by a newer Neurite")
        }
        let layer: any Layer
        do {
            layer = try makeLayer(file.model, path: "model")
        } catch let error as LayerError {
            throw LayerError("\(modelPath): \(error.message)")
        }
        guard let model = layer as? Sequential else {
            throw LayerError("\(modelPath): the model is a \(file.model.type), not a Sequential")
        }

        let weightsPath = path(directory, weightsFileName)
        let weights = try SafeTensors.read(contentsOf: weightsPath).tensors
        if let shape = file.buildInputShape {
            var generator = SeededGenerator(seed: 0)
            do {
                _ = try model.build(inputShape: shape, generator: &generator)
                try model.loadWeights(weights)
            } catch let error as LayerError {
                throw LayerError("\(weightsPath): \(error.message)")
            }
        } else if !weights.isEmpty {
            throw LayerError("\(weightsPath): the model was saved unbuilt but the file holds weights \(weights.keys.sorted())")
        }
        return SavedModel(model: model, classNames: file.classNames, metadata: file.metadata ?? [:],
                          formatVersion: file.formatVersion)
    }

    /// Restores `optimizer`'s state from the `optimizer.safetensors` of a model saved in
    /// `directory`, for this model's parameters (matched by name): further training then goes on
    /// exactly as if it had never stopped. Use it on the loaded model with a fresh optimizer of
    /// the saved one's type and settings.
    /// - Throws: `LayerError` naming the file when it is missing; `SafeTensorsError` when it is
    ///   corrupt; `OptimizerError` (its message starting with the file) naming missing, unexpected
    ///   or mis-shaped keys.
    public func loadOptimizerState(into optimizer: any Optimizer, from directory: String) throws {
        let optimizerPath = Self.path(directory, Self.optimizerFileName)
        guard FileManager.default.fileExists(atPath: optimizerPath) else {
            throw LayerError("\(optimizerPath): no optimizer state was saved (save(to:optimizer:) with an optimizer writes it)")
        }
        let state = try SafeTensors.read(contentsOf: optimizerPath).tensors
        do {
            try optimizer.loadStateTensors(state, for: parameters)
        } catch let error as OptimizerError {
            throw OptimizerError("\(optimizerPath): \(error.message)")
        }
    }

    // MARK: Machinery

    static func path(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The architecture record of `layer`, with a container's layers (a layer used again in the
    /// same container is recorded by name only).
    static func record(of layer: any Layer) -> LayerRecord {
        var result = LayerRecord(type: type(of: layer).typeName, config: layer.config)
        if let container = layer as? any LayerContainer {
            var seen = Set<ObjectIdentifier>()
            result.layers = container.layers.map { sub in
                if seen.insert(ObjectIdentifier(sub)).inserted { return record(of: sub) }
                return LayerRecord(type: type(of: sub).typeName, config: ["name": .string(sub.name)], shared: true)
            }
        }
        return result
    }

    /// A layer made from `record` through the registry; `path` locates it in messages.
    static func makeLayer(_ record: LayerRecord, path: String) throws -> any Layer {
        guard let type = LayerRegistry.type(named: record.type) else {
            throw LayerError("\(path): unknown layer type \"\(record.type)\"; register it with LayerRegistry.register(_:) "
                             + "before loading (known types: \(LayerRegistry.registeredNames.joined(separator: ", ")))")
        }
        let layer: any Layer
        do {
            layer = try type.init(config: record.config)
        } catch let error as LayerError {
            throw LayerError("\(path) (\(record.type)): \(error.message)")
        }
        guard let sublayers = record.layers else { return layer }
        guard let model = layer as? Sequential else {
            throw LayerError("\(path): a \(record.type) cannot hold layers")
        }
        var made: [String: any Layer] = [:]
        for (i, sub) in sublayers.enumerated() {
            let subPath = "\(path).layers[\(i)]"
            if sub.shared == true {
                guard case .string(let name)? = sub.config["name"], let earlier = made[name] else {
                    throw LayerError("\(subPath): a shared layer must name a layer saved before it in the same model")
                }
                model.add(earlier)
                continue
            }
            if sub.type == Input.typeName && i > 0 {
                throw LayerError("\(subPath): an InputLayer can only come first")
            }
            let built = try makeLayer(sub, path: subPath)
            if let input = built as? Input, let declared = model.inputShape, declared != input.shape {
                throw LayerError("\(subPath): the InputLayer's shape \(input.shape) differs from the model's input shape \(declared)")
            }
            model.add(built)
            made[built.name] = built
        }
        return model
    }

    /// A decoding error as a short sentence with the path to the offending value.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let c): return c.debugDescription + at(c.codingPath)
        case .keyNotFound(let key, let c): return "missing \"\(key.stringValue)\"" + at(c.codingPath)
        case .typeMismatch(_, let c): return c.debugDescription + at(c.codingPath)
        case .valueNotFound(_, let c): return c.debugDescription + at(c.codingPath)
        @unknown default: return "\(error)"
        }
    }
}
