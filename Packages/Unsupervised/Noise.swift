import TensorCore

/// A corruption of the inputs for denoising autoencoders: the model sees the corrupted sample
/// and learns to give back the clean one.
public enum Noise: Equatable, Sendable, CustomStringConvertible {
    /// Adds `N(0, σ²)` to every value, then clips to `0...1` (images).
    case gaussian(standardDeviation: Float)
    /// Sets each value to 0 with probability `fraction` (masking noise, dropout of the input).
    case masking(fraction: Float)
    /// Sets each value to 0 or 1 (equally likely) with probability `fraction`.
    case saltAndPepper(fraction: Float)

    /// `"gaussian(0.3)"`, `"masking(0.25)"`, `"salt-and-pepper(0.1)"`.
    public var description: String {
        switch self {
        case .gaussian(let s): "gaussian(\(s))"
        case .masking(let f): "masking(\(f))"
        case .saltAndPepper(let f): "salt-and-pepper(\(f))"
        }
    }

    /// `x` corrupted, with every draw from `generator`: same generator state, same result.
    public func apply(to x: Tensor, using generator: inout SeededGenerator) -> Tensor {
        switch self {
        case .gaussian(let s):
            let noise = Tensor.randomNormal(x.shape, standardDeviation: s, using: &generator)
            return (x + noise).clipped(to: 0...1)
        case .masking(let f):
            return x.withUnsafeBufferPointer { src in
                Tensor(shape: x.shape) { out in
                    for i in 0..<out.count { out[i] = generator.nextUnitFloat() < f ? 0 : src[i] }
                }
            }
        case .saltAndPepper(let f):
            return x.withUnsafeBufferPointer { src in
                Tensor(shape: x.shape) { out in
                    for i in 0..<out.count {
                        let u = generator.nextUnitFloat()
                        out[i] = u < f ? (u < f / 2 ? 0 : 1) : src[i]
                    }
                }
            }
        }
    }

    /// `x` corrupted with draws from `SeededGenerator(seed:)`.
    public func apply(to x: Tensor, seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return apply(to: x, using: &generator)
    }
}
