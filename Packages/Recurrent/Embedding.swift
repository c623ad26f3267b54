import Layers
import Optimizers
import TensorCore

/// Turns integer tokens into learned vectors, Keras' `Embedding`: `[B, T]` -> `[B, T, D]`.
///
/// ```swift
/// Embedding(inputDim: 10_000, outputDim: 64)   // token ids [B, T] (as Float) -> [B, T, 64]
/// ```
///
/// Tokens arrive as `Float`s holding whole numbers in `0..<inputDim` (tensors are Float32); any
/// other value stops with a precondition naming the value and where it is. Weights: `embeddings`
/// `[inputDim, outputDim]`, uniform in ±0.05 by default as in Keras. With `maskZero`, token 0 is
/// padding: its output is the zero vector and it gets no gradient, so a following recurrent layer
/// built with `maskValue: 0` skips those steps. Backward adds each position's gradient to its
/// token's row and returns a zero input gradient (tokens are not differentiable).
public final class Embedding: Layer, TrainingStateOwner {
    /// `"Embedding"`.
    public static let typeName = "Embedding"
    /// Whether training updates the table (Keras' `trainable`); see `Layer.trainable`. A frozen
    /// table is what a pretrained embedding usually is while the rest of a model learns.
    public var trainable = true { didSet { embeddings?.isTrainable = trainable } }
    /// The layer's name; renaming renames `"<name>.embeddings"`.
    public var name: String { didSet { embeddings?.name = name.isEmpty ? "embeddings" : "\(name).embeddings" } }
    /// The number of tokens (ids `0..<inputDim`).
    public let inputDim: Int
    /// The vector size `D`.
    public let outputDim: Int
    /// Whether token 0 is padding (zero output, no gradient).
    public let maskZero: Bool
    /// How the table is filled at build.
    public let embeddingsInitializer: Initializer
    /// The table `[inputDim, outputDim]`, once built.
    public private(set) var embeddings: Parameter?
    private var tape: [(tokens: [Int32], shape: [Int])] = []
    private var lastPopped: (tokens: [Int32], shape: [Int])?

    /// An embedding of `inputDim` tokens into `outputDim` features.
    /// - Precondition: both positive.
    public init(inputDim: Int, outputDim: Int, maskZero: Bool = false,
                embeddingsInitializer: Initializer = .randomUniform(min: -0.05, max: 0.05), name: String = "") {
        neuritePrecondition(inputDim > 0 && outputDim > 0,
                            "Embedding needs positive inputDim and outputDim, got \(inputDim) and \(outputDim)")
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.maskZero = maskZero
        self.embeddingsInitializer = embeddingsInitializer
        self.name = name
        RecurrentLayers.register()
    }

    /// `name`, `input_dim`, `output_dim`, `mask_zero`, `embeddings_initializer` (Keras' keys),
    /// and `trainable: false` when frozen.
    public var config: [String: ConfigValue] {
        let own: [String: ConfigValue] = [
            "name": .string(name), "input_dim": .int(inputDim), "output_dim": .int(outputDim),
            "mask_zero": .bool(maskZero), "embeddings_initializer": .string(embeddingsInitializer.configName),
        ]
        return own.addingTrainable(trainable)
    }

    /// Rebuilds from ``config``.
    public convenience init(config: [String: ConfigValue]) throws {
        let t = Self.typeName
        let inputDim = try config.int("input_dim", of: t), outputDim = try config.int("output_dim", of: t)
        guard inputDim > 0, outputDim > 0 else {
            throw LayerError("Embedding config needs positive \"input_dim\" and \"output_dim\", got \(inputDim) and \(outputDim)")
        }
        var maskZero = false
        if config["mask_zero"] != nil { maskZero = try config.bool("mask_zero", of: t) }
        var initializer = Initializer.randomUniform(min: -0.05, max: 0.05)
        if config["embeddings_initializer"] != nil {
            initializer = try Initializer(configName: config.string("embeddings_initializer", of: t))
        }
        var name = ""
        if case .string(let s)? = config["name"] { name = s }
        self.init(inputDim: inputDim, outputDim: outputDim, maskZero: maskZero, embeddingsInitializer: initializer, name: name)
        trainable = try config.trainable(of: t)
    }

    /// `[T, D]` for `[T]` (any per-sample shape gets a last axis `D`).
    public func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard !inputShape.isEmpty else { throw LayerError("Embedding '\(name)' needs per-sample input [T] of token ids, got input shape []") }
        return inputShape + [outputDim]
    }

    /// Creates `embeddings` `[inputDim, outputDim]`.
    public func build(inputShape: [Int], generator: inout SeededGenerator) throws -> [Int] {
        let output = try outputShape(for: inputShape)
        if embeddings == nil {
            embeddings = Parameter(name: name.isEmpty ? "embeddings" : "\(name).embeddings",
                                   value: embeddingsInitializer.make([inputDim, outputDim], generator: &generator),
                                   isTrainable: trainable)
        }
        return output
    }

    /// `[embeddings]`, empty before build.
    public var parameters: [Parameter] { embeddings.map { [$0] } ?? [] }

    /// The rows of the table for every token: `[B, T]` -> `[B, T, D]`.
    /// - Precondition: built; every element a whole number in `0..<inputDim` (the message names
    ///   the first bad value and its index).
    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        guard let embeddings else {
            neuritePreconditionFailure("Embedding '\(name)' is not built: build it (or its model) before calling forward")
        }
        neuritePrecondition(input.rank >= 2, "Embedding '\(name)' expects token ids [B, T], got \(input.shape)")
        let d = outputDim, n = inputDim
        let tokens: [Int32] = input.withUnsafeBufferPointer { src in
            src.enumerated().map { i, v in
                neuritePrecondition(v >= 0 && v < Float(n) && v == v.rounded(),
                                    "Embedding '\(name)' got token \(v) at flat index \(i) of input \(input.shape); tokens must be whole numbers in 0..<\(n)")
                return Int32(v)
            }
        }
        let output = embeddings.value.withUnsafeBufferPointer { table in
            Tensor(shape: input.shape + [d]) { out in
                for (i, tok) in tokens.enumerated() {
                    let o = out.baseAddress! + i * d
                    if maskZero && tok == 0 { o.update(repeating: 0, count: d) } else { o.update(from: table.baseAddress! + Int(tok) * d, count: d) }
                }
            }
        }
        if training { tape.append((tokens, input.shape)) }
        return output
    }

    /// Adds each position's gradient to its token's row; returns zeros shaped as the input.
    public func backward(_ outputGradient: Tensor) -> Tensor {
        let saved: (tokens: [Int32], shape: [Int])
        if let s = tape.popLast() { lastPopped = s; saved = s } else if let s = lastPopped { saved = s } else {
            neuritePreconditionFailure("backward of Embedding '\(name)' without a training-mode forward: call forward(_:training: true) first")
        }
        let d = outputDim
        neuritePrecondition(outputGradient.shape == saved.shape + [d],
                            "Embedding '\(name)' backward: output gradient has shape \(outputGradient.shape), the output had \(saved.shape + [d])")
        outputGradient.withUnsafeBufferPointer { g in
            embeddings!.gradient.withUnsafeMutableBufferPointer { table in
                for (i, tok) in saved.tokens.enumerated() where !(maskZero && tok == 0) {
                    let row = table.baseAddress! + Int(tok) * d, src = g.baseAddress! + i * d
                    for j in 0..<d { row[j] += src[j] }
                }
            }
        }
        return Tensor.zeros(saved.shape)
    }

    /// The backward pass (its input gradient is zeros anyway).
    public func backwardParameterGradients(_ outputGradient: Tensor) { _ = backward(outputGradient) }

    /// Drops the tokens kept for backward passes.
    public func clearTrainingState() {
        tape.removeAll()
        lastPopped = nil
    }
}
