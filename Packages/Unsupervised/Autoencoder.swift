import Foundation
import Layers
import Optimizers
import TensorCore

/// An autoencoder: an `encoder` model that compresses a sample to a code and a `decoder` model
/// that rebuilds the sample from the code, trained together to give back their input.
///
/// The two halves are ordinary `Sequential` models nested in one ``model``
/// (`Sequential(encoder, decoder)`), so training is Layers' `fit` with the input as its own
/// target, and saving is the model's. ``dense(inputShape:hidden:codeSize:codeActivation:)`` and
/// ``convolutional(inputShape:filters:codeSize:)`` make the usual shapes; any pair of models whose
/// shapes chain works.
///
/// With a ``Noise``, training is *denoising*: each epoch the inputs are corrupted afresh (seeded)
/// while the targets stay clean.
///
/// ```swift
/// let ae = Autoencoder.dense(inputShape: [28, 28, 1], hidden: [128], codeSize: 32)
/// try ae.fit(images, epochs: 3, batchSize: 256)
/// let codes = ae.encode(testImages)              // [N, 32]
/// print(ae.reconstructionError(testImages))      // mean squared error
/// ```
public final class Autoencoder {
    /// Sample to code.
    public let encoder: Sequential
    /// Code to sample.
    public let decoder: Sequential
    /// `encoder` then `decoder`, the model that is trained.
    public let model: Sequential

    /// An autoencoder from two models: `encoder` maps `[inputShape]` to a code, `decoder` maps
    /// the code back to `[inputShape]` (checked when built).
    public init(inputShape: [Int], encoder: Sequential, decoder: Sequential) {
        self.encoder = encoder
        self.decoder = decoder
        if encoder.name.isEmpty { encoder.name = "encoder" }
        if decoder.name.isEmpty { decoder.name = "decoder" }
        model = Sequential(inputShape: inputShape, name: "autoencoder", layers: [encoder, decoder])
    }

    /// An autoencoder around a model made of exactly two nested `Sequential`s, encoder then
    /// decoder (what ``save(to:)`` writes and ``load(from:)`` reads).
    /// - Throws: `LayerError` when `model` is not shaped so.
    public init(model: Sequential) throws {
        guard model.layers.count == 2, let encoder = model.layers[0] as? Sequential,
              let decoder = model.layers[1] as? Sequential else {
            throw LayerError("Autoencoder needs a model of two nested Sequential models (encoder, decoder), got \(model.layers.map { type(of: $0).typeName })")
        }
        self.encoder = encoder
        self.decoder = decoder
        self.model = model
    }

    /// Saves ``model`` (architecture as JSON, weights as safetensors) into `directory`, with
    /// `Sequential.save(to:)`.
    public func save(to directory: String) throws { try model.save(to: directory) }

    /// Loads an autoencoder written by ``save(to:)``.
    /// - Throws: what `Sequential.load(from:)` throws, or `LayerError` when the saved model is
    ///   not an encoder and a decoder.
    public static func load(from directory: String) throws -> Autoencoder {
        try Autoencoder(model: Sequential.load(from: directory))
    }

    /// A fully connected autoencoder: `Flatten`, `Dense` layers of `hidden` units (relu), a linear
    /// `Dense(codeSize)` code; then the mirror image, ending in `Dense(D, sigmoid)` reshaped to
    /// `inputShape` (inputs in `0...1`). `hidden: [128], codeSize: 32` on MNIST is the
    /// 784-128-32-128-784 network of the Keras tutorial.
    public static func dense(inputShape: [Int], hidden: [Int] = [128], codeSize: Int,
                             codeActivation: ActivationFunction = .linear) -> Autoencoder {
        let d = inputShape.reduce(1, *)
        let encoder = Sequential(name: "encoder", layers: [Flatten()] + hidden.map { Dense($0, activation: .relu) as any Layer }
                                 + [Dense(codeSize, activation: codeActivation)])
        let decoder = Sequential(name: "decoder", layers: hidden.reversed().map { Dense($0, activation: .relu) as any Layer }
                                 + [Dense(d, activation: .sigmoid), Reshape(inputShape)])
        return Autoencoder(inputShape: inputShape, encoder: encoder, decoder: decoder)
    }

    /// A convolutional autoencoder for `[H, W, C]` images whose sides divide by
    /// `2^filters.count`: per entry of `filters`, `Conv2D(f, 3x3, same, relu)` and
    /// `MaxPool2D(2)`; with `codeSize`, a `Flatten` and a linear `Dense(codeSize)` code. The
    /// decoder mirrors it with `Conv2DTranspose(f, 3x3, stride 2, same, relu)` and ends in
    /// `Conv2D(C, 3x3, same, sigmoid)`.
    public static func convolutional(inputShape: [Int], filters: [Int] = [16, 8], codeSize: Int? = nil) -> Autoencoder {
        neuritePrecondition(inputShape.count == 3, "Autoencoder.convolutional needs an image shape [H, W, C], got \(inputShape)")
        let factor = 1 << filters.count
        neuritePrecondition(inputShape[0] % factor == 0 && inputShape[1] % factor == 0,
                            "Autoencoder.convolutional: \(inputShape) does not divide by \(factor) (2 per level of \(filters))")
        let (h, w) = (inputShape[0] / factor, inputShape[1] / factor)
        var encoderLayers: [any Layer] = []
        for f in filters {
            encoderLayers.append(Conv2D(filters: f, kernelSize: (3, 3), padding: .same, activation: .relu))
            encoderLayers.append(MaxPool2D(poolSize: (2, 2)))
        }
        var decoderLayers: [any Layer] = []
        let last = filters.last ?? inputShape[2]
        if let codeSize {
            encoderLayers += [Flatten(), Dense(codeSize)]
            decoderLayers += [Dense(h * w * last, activation: .relu), Reshape([h, w, last])]
        }
        for f in filters.reversed() {
            decoderLayers.append(Conv2DTranspose(filters: f, kernelSize: (3, 3), strides: (2, 2), padding: .same,
                                                 activation: .relu))
        }
        decoderLayers.append(Conv2D(filters: inputShape[2], kernelSize: (3, 3), padding: .same, activation: .sigmoid))
        return Autoencoder(inputShape: inputShape, encoder: Sequential(name: "encoder", layers: encoderLayers),
                           decoder: Sequential(name: "decoder", layers: decoderLayers))
    }

    /// Builds the model's weights from `seed` (does nothing when built).
    /// - Throws: `LayerError` when the halves' shapes do not chain back to the input shape.
    public func build(seed: UInt64 = 0) throws {
        try model.build(seed: seed)
        if let input = model.builtInputShape, let output = model.builtOutputShape, input != output {
            throw LayerError("Autoencoder: the decoder gives \(output), not the input shape \(input)")
        }
    }

    /// Trains `model` to reproduce `x` `[N, ...]`: `epochs` passes with `optimizer` (Adam 1e-3 by
    /// default) on `loss` (binary cross-entropy by default, for data in `0...1`). With `noise`,
    /// epoch `e` trains on `noise.apply(to: x, seed: seed + e + 1)` against the clean `x`.
    /// Validation data (clean samples) are evaluated after each epoch, as `"val_loss"`.
    /// - Returns: what `fit` logs, one value per epoch for each key (`"loss"`, `"val_loss"`).
    /// - Throws: what `fit` throws.
    @discardableResult
    public func fit(_ x: Tensor, epochs: Int, batchSize: Int = 256, noise: Noise? = nil,
                    optimizer: any Optimizer = Adam(learningRate: 1e-3), loss: any Loss = BinaryCrossEntropy(),
                    validation: Tensor? = nil, seed: UInt64 = 0, callbacks: [any Callback] = [],
                    verbose: Int = 0) throws -> [String: [Double]] {
        try build(seed: seed)
        if model.optimizer == nil || model.optimizer !== optimizer {
            model.compile(optimizer: optimizer, loss: loss)
        }
        guard let noise else {
            return try model.fit(x: x, y: x, epochs: epochs, batchSize: batchSize,
                                 validationData: validation.map { ($0, $0) }, seed: seed, callbacks: callbacks,
                                 verbose: verbose).history
        }
        var combined: [String: [Double]] = [:]
        for epoch in 0..<epochs {
            let noisy = noise.apply(to: x, seed: seed &+ UInt64(epoch) &+ 1)
            let history = try model.fit(x: noisy, y: x, epochs: epoch + 1, initialEpoch: epoch, batchSize: batchSize,
                                        validationData: validation.map { ($0, $0) }, seed: seed, callbacks: callbacks,
                                        verbose: verbose)
            for (key, values) in history.history { combined[key, default: []] += values }
        }
        return combined
    }

    /// The codes of `x` `[N, ...]`, in inference mode.
    /// - Throws: `TrainingError` when the autoencoder is not built or `x` does not fit it.
    public func encode(_ x: Tensor, batchSize: Int = 1000) throws -> Tensor { try encoder.predict(x, batchSize: batchSize) }

    /// The samples rebuilt from `codes`, in inference mode.
    /// - Throws: `TrainingError` when the autoencoder is not built or `codes` do not fit the decoder.
    public func decode(_ codes: Tensor, batchSize: Int = 1000) throws -> Tensor { try decoder.predict(codes, batchSize: batchSize) }

    /// `decode(encode(x))`.
    /// - Throws: as ``encode(_:batchSize:)``.
    public func reconstruct(_ x: Tensor, batchSize: Int = 1000) throws -> Tensor { try model.predict(x, batchSize: batchSize) }

    /// The mean squared difference between `x` and its reconstruction (over every value).
    /// - Throws: as ``encode(_:batchSize:)``.
    public func reconstructionError(_ x: Tensor, batchSize: Int = 1000) throws -> Double {
        meanSquaredError(try reconstruct(x, batchSize: batchSize), x)
    }
}

/// The mean of `(a - b)²` over every element, accumulated in Float64.
/// - Precondition: the same number of elements.
public func meanSquaredError(_ a: Tensor, _ b: Tensor) -> Double {
    neuritePrecondition(a.count == b.count, "meanSquaredError of shapes \(a.shape) and \(b.shape), which differ in size")
    return a.withUnsafeBufferPointer { p in
        b.withUnsafeBufferPointer { q in
            var total = 0.0
            var i = 0
            while i < p.count {
                var block: Float = 0
                let end = Swift.min(p.count, i + 4096)
                while i < end { let t = p[i] - q[i]; block += t * t; i += 1 }
                total += Double(block)
            }
            return p.count == 0 ? 0 : total / Double(p.count)
        }
    }
}
