import Foundation
import Layers
import Recurrent
import TensorCore

/// Keras 3 models to and from Neurite's `Sequential`: `.keras` archives and `model.to_json()`.
///
/// ```swift
/// let model = try KerasModel.load(from: "mnist_cnn.keras")      // saved by Keras' model.save
/// let predictions = try model.predict(images)
/// try KerasModel.save(model, to: "from_neurite.keras")            // keras.models.load_model reads it
/// ```
///
/// A `.keras` archive holds `config.json` (the architecture), `metadata.json` and
/// `model.weights.h5` (the weights). Reading builds the `Sequential` with the same layers (by
/// their Keras class names), the input shape of its `InputLayer`, and every layer's weights; it
/// predicts what the Keras model predicts. Anything Neurite cannot represent, a functional model,
/// a layer class it does not have, an option a layer does not implement, weights that are
/// missing or of the wrong shape, is a ``KerasInteropError`` naming the layer and what is wrong:
/// nothing is silently dropped. The optimizer state and `compile_config` are not read; compile
/// the loaded model to train it.
public enum KerasModel {
    /// Reads a Keras 3 `.keras` archive: the model, built for its `InputLayer`'s shape, with its
    /// weights.
    ///
    /// - Parameters:
    ///   - path: the `.keras` file.
    ///   - inputShape: the per-sample shape to build the model for, when the file's `InputLayer`
    ///     leaves an axis variable (`Input((None, 8))`, common for sequences): it must agree with
    ///     the file's shape on every fixed axis. Nil uses the file's shape.
    ///   - limits: bounds on the archive's and weights file's sizes, and so on the model's
    ///     parameter count (checked from the configuration before any weight is allocated).
    /// - Throws: ``KerasInteropError``: a file that is not a readable archive or weights file; a
    ///   model that is not a `Sequential`, has no fixed input shape (and none is given), or holds a layer or option
    ///   Neurite lacks; weights missing, extra or of another shape than the layers'.
    public static func load(from path: String, inputShape: [Int]? = nil, limits: KerasFileLimits = .default) throws -> Sequential {
        let archive = try KerasArchive.read(path: path, limits: limits)
        let weights = try HDF5WeightsFile.read(data: archive.weights, limits: limits)
        return try model(config: archive.config, weights: weights, inputShape: inputShape, limits: limits)
    }

    /// The model of Keras' `model.to_json()` (or a `.keras` archive's `config.json`), with fresh
    /// weights drawn from `seed`: built when the configuration declares an input shape
    /// (`InputLayer` `batch_shape` or `build_input_shape`) or `inputShape` is given (as in
    /// ``load(from:inputShape:limits:)``), unbuilt otherwise.
    /// - Throws: ``KerasInteropError`` as ``load(from:inputShape:limits:)`` does for the architecture.
    public static func fromJSON(_ json: String, inputShape: [Int]? = nil, seed: UInt64 = 0,
                                limits: KerasFileLimits = .default) throws -> Sequential {
        let (model, inputShape) = try KerasConfigReader.read(Data(json.utf8), inputShape: inputShape)
        if let inputShape {
            _ = try KerasWeights.layout(of: model, inputShape: inputShape, maxParameters: maxParameters(limits))
            try build(model, inputShape: inputShape, seed: seed)
        }
        return model
    }

    /// Writes `model` as a Keras 3 `.keras` archive that `keras.models.load_model` reads and
    /// that predicts what `model` predicts. The file is written atomically (a temporary file,
    /// then a rename).
    /// - Throws: ``KerasInteropError`` for an unbuilt model, a layer or setting Keras cannot
    ///   express (named), or a file that cannot be written.
    public static func save(_ model: Sequential, to path: String) throws {
        let parts = try archiveParts(of: model)
        try KerasArchive(config: parts.config, metadata: parts.metadata, weights: try parts.weights.encoded()).write(path: path)
    }

    /// The model's architecture as Keras' `model.to_json()` writes it, which
    /// `keras.models.model_from_json` reads (without weights: Keras draws fresh ones).
    /// - Throws: ``KerasInteropError`` for a layer or setting Keras cannot express.
    public static func toJSON(_ model: Sequential) throws -> String {
        String(decoding: try KerasConfigWriter.json(try KerasConfigWriter.config(of: model)), as: UTF8.self)
    }

    // MARK: In memory (the file formats are KerasArchive's and HDF5WeightsFile's)

    /// The model of `config` with the weights of `weights`.
    static func model(config: Data, weights: HDF5WeightsFile, inputShape given: [Int]? = nil,
                      limits: KerasFileLimits = .default) throws -> Sequential {
        let (model, inputShape) = try KerasConfigReader.read(config, inputShape: given)
        guard let inputShape else {
            throw KerasInteropError.unsupportedModel(
                className: "Sequential", reason: "the config declares no input shape (no InputLayer batch_shape or build_input_shape), so its weights cannot be placed")
        }
        let layout = try KerasWeights.layout(of: model, inputShape: inputShape, maxParameters: maxParameters(limits))
        try build(model, inputShape: inputShape, seed: 0)
        try KerasWeights.load(weights, into: model, layout: layout)
        return model
    }

    /// `config.json`, `metadata.json` and the weights of a built `model`.
    static func archiveParts(of model: Sequential, date: Date = Date()) throws -> (config: Data, metadata: Data, weights: HDF5WeightsFile) {
        guard let inputShape = model.builtInputShape else {
            throw KerasInteropError.unsupportedModel(className: "Sequential",
                                                     reason: "the model is not built; build it (or fit it) before saving its weights")
        }
        let layout = try KerasWeights.layout(of: model, inputShape: inputShape, maxParameters: .max)
        let config = try KerasConfigWriter.json(try KerasConfigWriter.config(of: model))
        let metadata = try KerasConfigWriter.json(KerasConfigWriter.metadata(date: date))
        return (config, metadata, try KerasWeights.file(of: model, layout: layout))
    }

    /// The most parameters a model read under `limits` may have: as many values as its weights
    /// file may hold in all.
    static func maxParameters(_ limits: KerasFileLimits) -> Int {
        max(0, limits.maxTotalElements)
    }

    private static func build(_ model: Sequential, inputShape: [Int], seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        do {
            _ = try model.build(inputShape: inputShape, generator: &generator)
        } catch let error as LayerError {
            throw KerasInteropError.invalidModelConfig(path: "config.layers", reason: error.message)
        }
    }
}
