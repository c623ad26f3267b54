import Optimizers
import TensorCore

/// How a layer fills a weight when it is built, as Keras' initialisers do.
///
/// Random initialisers draw from the generator the model passes to `build`, so the same seed
/// gives the same weights. Fan-in and fan-out are Keras' (`Tensor.fans(of:)`): `[in, out]` for a
/// dense kernel, receptive field times channels for a convolution kernel `[kh, kw, cin, cout]`.
public enum Initializer: Sendable, Equatable, CustomStringConvertible {
    /// All zeros (Keras' default for biases).
    case zeros
    /// All ones.
    case ones
    /// Every element equal to the value.
    case constant(Float)
    /// `U(-l, l)` with `l = sqrt(6 / (fanIn + fanOut))`: Keras' default for kernels.
    case glorotUniform
    /// Truncated normal with `std = sqrt(2 / (fanIn + fanOut))` (corrected for the truncation).
    case glorotNormal
    /// `U(-l, l)` with `l = sqrt(6 / fanIn)`.
    case heUniform
    /// Truncated normal with `std = sqrt(2 / fanIn)` (corrected for the truncation): suited to ReLU.
    case heNormal
    /// Normal with the given mean and standard deviation (not truncated).
    case randomNormal(mean: Float, standardDeviation: Float)
    /// Uniform in `min...max`.
    case randomUniform(min: Float, max: Float)

    /// A tensor of `shape` filled as this initialiser says, drawing from `generator` if it is random.
    public func make(_ shape: [Int], generator: inout SeededGenerator) -> Tensor {
        switch self {
        case .zeros: return .zeros(shape)
        case .ones: return .ones(shape)
        case .constant(let v): return Tensor(shape: shape, repeating: v)
        case .glorotUniform: return .glorotUniform(shape, using: &generator)
        case .glorotNormal: return .glorotNormal(shape, using: &generator)
        case .heUniform: return .heUniform(shape, using: &generator)
        case .heNormal: return .heNormal(shape, using: &generator)
        case .randomNormal(let mean, let std):
            return .randomNormal(shape, mean: mean, standardDeviation: std, using: &generator)
        case .randomUniform(let lo, let hi):
            return .randomUniform(shape, in: lo...hi, using: &generator)
        }
    }

    /// Keras' name: `"zeros"`, `"ones"`, `"glorot_uniform"`, `"glorot_normal"`, `"he_uniform"`,
    /// `"he_normal"`; with arguments `"constant(value=0.1)"`, `"random_normal(mean=0.0,stddev=0.05)"`,
    /// `"random_uniform(minval=-0.05,maxval=0.05)"`. ``init(configName:)`` reads it back.
    public var configName: String {
        switch self {
        case .zeros: "zeros"
        case .ones: "ones"
        case .constant(let v): "constant(value=\(v))"
        case .glorotUniform: "glorot_uniform"
        case .glorotNormal: "glorot_normal"
        case .heUniform: "he_uniform"
        case .heNormal: "he_normal"
        case .randomNormal(let mean, let std): "random_normal(mean=\(mean),stddev=\(std))"
        case .randomUniform(let lo, let hi): "random_uniform(minval=\(lo),maxval=\(hi))"
        }
    }

    /// The configuration name.
    public var description: String { configName }

    /// The initialiser named `configName` (see ``configName``); throws `LayerError` otherwise.
    public init(configName: String) throws {
        switch configName {
        case "zeros": self = .zeros
        case "ones": self = .ones
        case "glorot_uniform": self = .glorotUniform
        case "glorot_normal": self = .glorotNormal
        case "he_uniform": self = .heUniform
        case "he_normal": self = .heNormal
        default:
            // name(key=value,key=value)
            if let open = configName.firstIndex(of: "("), configName.hasSuffix(")") {
                let base = String(configName[..<open])
                var values: [String: Float] = [:]
                for part in configName[configName.index(after: open)..<configName.index(before: configName.endIndex)].split(separator: ",") {
                    let kv = part.split(separator: "=", maxSplits: 1)
                    if kv.count == 2, let v = Float(kv[1]) { values[String(kv[0])] = v }
                }
                switch (base, values["value"], values["mean"], values["stddev"], values["minval"], values["maxval"]) {
                case ("constant", let v?, _, _, _, _): self = .constant(v); return
                case ("random_normal", _, let m?, let s?, _, _): self = .randomNormal(mean: m, standardDeviation: s); return
                case ("random_uniform", _, _, _, let lo?, let hi?): self = .randomUniform(min: lo, max: hi); return
                default: break
                }
            }
            throw LayerError("unknown initializer \"\(configName)\"; expected zeros, ones, glorot_uniform, glorot_normal, "
                             + "he_uniform, he_normal, constant(value=V), random_normal(mean=M,stddev=S) or random_uniform(minval=A,maxval=B)")
        }
    }
}
