import ArgumentParser
import Foundation
import KerasInterop
import Layers
import Recurrent
import TensorCore

/// `neurite-data predict --model DIR --input X.f32 --output Y.f32`: runs a saved model on raw
/// float32 samples, so other tools (the PyTorch recipe's check, a shell pipeline) can compare
/// against Neurite's own outputs without Swift code.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a saved model (model.json + model.safetensors, or a Keras 3 .keras file) on raw float32 samples.",
        discussion: """
            --input holds little-endian float32 samples one after another, each laid out as the \
            model's per-sample input shape (NHWC for images, [T, F] for sequences, token ids as \
            floats for an Embedding); the sample count is the file size divided by one sample's \
            size, and a remainder is an error. --output receives the model's outputs (inference \
            mode) as little-endian float32, sample after sample, written atomically. The input \
            shape comes from the saved model; one line on standard output names it and the \
            output shape.
            """
    )

    @Option(help: "A folder written by Sequential.save (model.json and model.safetensors), or a Keras 3 .keras file.")
    var model: String

    @Option(help: "Raw little-endian float32 samples.")
    var input: String

    @Option(help: "Where the outputs go (raw little-endian float32).")
    var output: String

    @Option(name: .customLong("batch-size"), help: "Samples per forward pass.")
    var batchSize: Int = 256

    func validate() throws {
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1.") }
    }

    func run() throws {
        try reportingFailures {
            RecurrentLayers.register()
            let net = model.hasSuffix(".keras") ? try KerasModel.load(from: model) : try Sequential.load(from: model)
            guard let shape = net.builtInputShape ?? net.inputShape else {
                throw ValidationError("\(model): the saved model has no input shape")
            }
            let perSample = shape.reduce(1, *)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: input), options: .alwaysMapped)
            let sampleBytes = perSample * MemoryLayout<Float>.size
            guard bytes.count > 0, bytes.count % sampleBytes == 0 else {
                throw ValidationError("\(input): \(bytes.count) bytes is not a whole number of samples of shape \(shape) (\(sampleBytes) bytes each)")
            }
            let count = bytes.count / sampleBytes
            let values = bytes.withUnsafeBytes { raw in
                (0..<(count * perSample)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
            let result = try net.predict(Tensor(shape: [count] + shape, scalars: values), batchSize: batchSize)
            var out = Data(capacity: result.count * 4)
            for v in result.scalars { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            try out.write(to: URL(fileURLWithPath: output), options: .atomic)
            print("\(count) samples of shape \(shape) -> outputs of shape \(Array(result.shape.dropFirst())) in \(output)")
        }
    }
}
