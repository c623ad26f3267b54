import Optimizers
import TensorCore

// What the layers with a kernel share: the convolution family (Conv2D, Conv1D, Conv2DTranspose)
// its parameters, configuration keys and the bias-and-activation tail of both passes; Dense the
// latter. Each layer keeps only its own geometry and arithmetic.

/// What a training-mode forward pass of a layer with a kernel and an activation keeps for its
/// backward pass.
struct ActivationRecord {
    /// The input as the layer's arithmetic read it (a causally padded sequence, a flattened batch).
    var input: Tensor
    /// The input's shape as the caller passed it.
    var inputShape: [Int]
    /// The pre-activation, only when the activation's derivative needs it (gelu, elu).
    var preActivation: Tensor?
    /// The output.
    var output: Tensor
}

extension ActivationFunction {
    /// Adds `bias` (when there is one) to `z` and applies the activation: one fused pass for a
    /// linear, relu, leaky relu, sigmoid or tanh activation, instead of two. Returns the
    /// pre-activation when the backward pass needs it (``needsInputForBackward``), else nil.
    func applyAfterBias(_ z: inout Tensor, bias: Tensor?) -> Tensor? {
        if needsInputForBackward {
            if let bias { z.addBias(bias) }
            let preActivation = z
            z = forward(z)
            return preActivation
        }
        if let bias { addBiasAndActivate(&z, bias: bias) } else { z = forward(z) }
        return nil
    }
}

/// The convolution family: a kernel drawn from ``kernelInitializer`` at build, an optional zero
/// bias `[filters]`, an activation after the bias, and Keras' configuration keys. The default
/// implementations below do what the three layers did alike; each layer keeps its geometry, its
/// arithmetic and its messages.
protocol ConvolutionLayer: Layer, TrainingCacheOwner {
    var filters: Int { get }
    var useBias: Bool { get }
    var activation: ActivationFunction { get }
    var kernelInitializer: Initializer { get }
    var kernel: Parameter? { get set }
    var bias: Parameter? { get set }
    var builtInputShape: [Int]? { get set }
    var tape: Tape<ActivationRecord> { get set }
}

extension ConvolutionLayer {
    /// How error messages name the layer: `Conv2D "conv_1"`, or just the type when unnamed.
    var label: String { SpatialLayerConfig.label(Self.typeName, name) }

    /// `[kernel, bias]` (just `[kernel]` without bias); empty before `build`.
    public var parameters: [Parameter] { [kernel, bias].compactMap { $0 } }

    func clearTrainingCache() { tape.clear() }

    /// Names the parameters after the layer, `"<name>.kernel"` and `"<name>.bias"` (on renaming).
    func nameParameters() {
        kernel?.name = "\(name).kernel"
        bias?.name = "\(name).bias"
    }

    /// Keras' keys the family writes alike (`name`, `filters`, `data_format`, `activation`,
    /// `use_bias`, `kernel_initializer`) with the layer's own `geometry` keys.
    func convolutionConfig(_ geometry: [String: ConfigValue]) -> [String: ConfigValue] {
        geometry.merging([
            "name": .string(name),
            "filters": .int(filters),
            "data_format": .string("channels_last"),
            "activation": .string(activation.configName),
            "use_bias": .bool(useBias),
            "kernel_initializer": .string(kernelInitializer.configName),
        ]) { _, common in common }
    }

    /// Throws when the layer is built and `inputShape` has another channel count; `what` is how
    /// the layer calls its channels ("channels", "features").
    func checkBuiltChannels(_ inputShape: [Int], _ what: String) throws {
        if let built = builtInputShape, built.last != inputShape.last {
            throw LayerError("\(label) was built for \(built.last!) input \(what) (input \(built)), got input \(inputShape)")
        }
    }

    /// `build`'s work: checks the shape (``Layer/outputShape(for:)``), then on the first build
    /// creates the kernel `kernelShape(C)` from ``kernelInitializer`` (drawing from `generator`)
    /// and the zero bias, and returns the output shape. Building again with the same input shape
    /// keeps the weights; another shape throws `LayerError`.
    func buildParameters(inputShape: [Int], kernelShape: (_ channels: Int) -> [Int],
                         generator: inout SeededGenerator) throws -> [Int] {
        let output = try outputShape(for: inputShape)
        if let built = builtInputShape {
            guard built == inputShape else {
                throw LayerError("\(label) was built for input \(built), cannot build again for \(inputShape)")
            }
            return output
        }
        kernel = Parameter(name: "\(name).kernel", value: kernelInitializer.make(kernelShape(inputShape.last!), generator: &generator),
                           isTrainable: trainable)
        if useBias { bias = Parameter(name: "\(name).bias", value: Tensor.zeros([filters]), isTrainable: trainable) }
        builtInputShape = inputShape
        return output
    }

    /// The kernel parameter, stopping with a message naming the layer when it is not built.
    func builtKernel(_ operation: String) -> Parameter {
        neuritePrecondition(kernel != nil, "\(label) \(operation) before build(inputShape:generator:)")
        return kernel!
    }

    /// The forward pass's tail: the bias and the activation on `output` (see
    /// `ActivationFunction.applyAfterBias`), and in training a record for the backward pass.
    func activate(_ output: inout Tensor, input: Tensor, inputShape: [Int], training: Bool) {
        let preActivation = activation.applyAfterBias(&output, bias: bias?.value)
        if training {
            tape.push(ActivationRecord(input: input, inputShape: inputShape, preActivation: preActivation, output: output))
        }
    }

    /// The backward pass's head: the matching forward's record, and the output gradient taken back
    /// through the activation (for relu, masked where the output was zero).
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    func deactivate(_ outputGradient: Tensor) -> (record: ActivationRecord, gradient: Tensor) {
        let record = popRecord(matching: outputGradient)
        return (record, activation.backward(outputGradient, input: record.preActivation, output: record.output))
    }

    /// The matching forward's record, for a backward pass that takes the gradient through the
    /// activation itself.
    /// - Precondition: a training-mode forward ran, and `outputGradient` has its output's shape.
    func popRecord(matching outputGradient: Tensor) -> ActivationRecord {
        let record = tape.pop(layer: self)
        neuritePrecondition(outputGradient.shape == record.output.shape,
                            "\(label) backward: output gradient \(outputGradient.shape) does not match output \(record.output.shape)")
        return record
    }
}

/// Reading the configuration keys the convolution family shares.
enum ConvolutionConfig {
    /// The keys every convolution layer reads.
    static let keys: Set<String> = ["name", "filters", "kernel_size", "strides", "padding", "data_format",
                                    "dilation_rate", "activation", "use_bias", "kernel_initializer"]

    /// Checks the keys (``keys`` and `extraKeys`) and the data format; returns `filters`.
    static func filters(_ config: [String: ConfigValue], extraKeys: Set<String> = [], of type: String) throws -> Int {
        try LayerConfigKeys.check(config, known: keys.union(extraKeys), of: type)
        try SpatialLayerConfig.checkDataFormat(config, of: type)
        return try config.int("filters", of: type)
    }

    /// `use_bias` (true when missing), `activation` (linear when missing or null) and
    /// `kernel_initializer` (Glorot uniform when missing); an unknown name throws `LayerError`
    /// prefixed with `"<type> config: "`.
    static func options(_ config: [String: ConfigValue], of type: String) throws
        -> (useBias: Bool, activation: ActivationFunction, initializer: Initializer) {
        let useBias = config["use_bias"] == nil ? true : try config.bool("use_bias", of: type)
        do {
            let activation = try config["activation"].flatMap { $0 == .null ? nil : $0 }
                .map { _ in try ActivationFunction(configName: config.string("activation", of: type)) } ?? .linear
            let initializer = try config["kernel_initializer"]
                .map { _ in try Initializer(configName: config.string("kernel_initializer", of: type)) } ?? .glorotUniform
            return (useBias, activation, initializer)
        } catch let error as LayerError {
            throw LayerError("\(type) config: \(error.message)")
        }
    }
}
