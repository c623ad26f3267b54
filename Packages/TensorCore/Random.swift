import Foundation

/// A fast, seedable random number generator (xoshiro256**) whose sequence for a given seed
/// is the same on every platform and every run.
///
/// The 256-bit state is filled from the 64-bit seed by SplitMix64, as the algorithm's authors
/// recommend, so nearby seeds still give unrelated streams. Use `init(seed:stream:)` to derive
/// independent streams from one seed (per epoch, per worker).
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        var sm = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&sm); s1 = splitMix(&sm); s2 = splitMix(&sm); s3 = splitMix(&sm)
    }

    /// A generator for one of many independent streams derived from `seed`
    /// (for example `stream: epoch` or a hash of epoch and worker).
    public init(seed: UInt64, stream: UInt64) {
        var g = SeededGenerator(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        _ = g.next()
        self = g
    }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inlinable
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

extension RandomNumberGenerator {
    /// A uniform `Float` in `[0, 1)` from the top 24 bits of `next()`: exact and the same on
    /// every platform (unlike `Float.random(in:)`, whose algorithm is not specified).
    @inlinable
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// A uniform `Double` in `(0, 1]` from the top 53 bits (never 0, so its log is finite).
    @inlinable
    mutating func nextOpenUnitDouble() -> Double {
        (Double(next() >> 11) + 1) * 0x1p-53
    }

    /// Two independent standard normal samples (Box-Muller, computed in Double).
    @inlinable
    public mutating func nextNormalPair() -> (Float, Float) {
        let u1 = nextOpenUnitDouble(), u2 = nextOpenUnitDouble()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        return (Float(r * Foundation.cos(theta)), Float(r * Foundation.sin(theta)))
    }

    /// A uniform integer in `0..<upperBound` without modulo bias (Lemire's method).
    @inlinable
    public mutating func nextIndex(below upperBound: Int) -> Int {
        neuritePrecondition(upperBound > 0, "nextIndex(below:) needs a positive bound, got \(upperBound)")
        let bound = UInt64(upperBound)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }
}

extension Array {
    /// Shuffles in place with a Fisher-Yates shuffle driven by `generator`, identical on every platform
    /// for a seeded generator (the standard library's `shuffle(using:)` makes no such promise).
    public mutating func seededShuffle<G: RandomNumberGenerator>(using generator: inout G) {
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = generator.nextIndex(below: i + 1)
            if i != j { swapAt(i, j) }
        }
    }
}

extension Tensor {
    /// Uniform random values in `range` (the upper bound is approached but, for `[0, 1)`, not reached).
    public static func randomUniform<G: RandomNumberGenerator>(
        _ shape: [Int], in range: ClosedRange<Float> = 0...1, using generator: inout G
    ) -> Tensor {
        let low = range.lowerBound, width = range.upperBound - range.lowerBound
        return Tensor(shape: shape) { buffer in
            for i in buffer.indices { buffer[i] = low + width * generator.nextUnitFloat() }
        }
    }

    /// Normally distributed random values.
    /// - Parameters:
    ///   - shape: the shape of the result.
    ///   - mean: the mean of the distribution.
    ///   - standardDeviation: its standard deviation.
    ///   - truncated: when true, samples beyond two standard deviations are redrawn
    ///     (Keras' `TruncatedNormal`, used by its Glorot-normal and He-normal initialisers).
    ///   - generator: the source of randomness.
    public static func randomNormal<G: RandomNumberGenerator>(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, truncated: Bool = false,
        using generator: inout G
    ) -> Tensor {
        Tensor(shape: shape) { buffer in
            var i = 0
            while i < buffer.count {
                let (a, b) = generator.nextNormalPair()
                for z in [a, b] where i < buffer.count {
                    if truncated && Swift.abs(z) > 2 { continue }
                    buffer[i] = mean + standardDeviation * z
                    i += 1
                }
            }
        }
    }

    /// Fan-in and fan-out of a weight shape, as Keras computes them:
    /// `[in, out]` for dense kernels, `[kh, kw, cin, cout]` (receptive field times channels) for convolutions.
    public static func fans(of shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (shape[0], shape[0])
        case 2: return (shape[0], shape[1])
        default:
            let receptive = shape.dropLast(2).reduce(1, *)
            return (receptive * shape[shape.count - 2], receptive * shape[shape.count - 1])
        }
    }

    /// Glorot (Xavier) uniform: `U(-l, l)` with `l = sqrt(6 / (fanIn + fanOut))`; Keras' default kernel initialiser.
    public static func glorotUniform<G: RandomNumberGenerator>(_ shape: [Int], using generator: inout G) -> Tensor {
        let (fanIn, fanOut) = fans(of: shape)
        let limit = (6 / Float(Swift.max(1, fanIn + fanOut))).squareRoot()
        return randomUniform(shape, in: -limit...limit, using: &generator)
    }

    /// Glorot normal: truncated normal with `std = sqrt(2 / (fanIn + fanOut)) / 0.8796`
    /// (the factor undoes the truncation's shrinkage of the variance, as in Keras).
    public static func glorotNormal<G: RandomNumberGenerator>(_ shape: [Int], using generator: inout G) -> Tensor {
        let (fanIn, fanOut) = fans(of: shape)
        let std = (2 / Float(Swift.max(1, fanIn + fanOut))).squareRoot() / 0.879_625_7
        return randomNormal(shape, standardDeviation: std, truncated: true, using: &generator)
    }

    /// He uniform: `U(-l, l)` with `l = sqrt(6 / fanIn)`; suited to ReLU networks.
    public static func heUniform<G: RandomNumberGenerator>(_ shape: [Int], using generator: inout G) -> Tensor {
        let limit = (6 / Float(Swift.max(1, fans(of: shape).fanIn))).squareRoot()
        return randomUniform(shape, in: -limit...limit, using: &generator)
    }

    /// He normal: truncated normal with `std = sqrt(2 / fanIn) / 0.8796`, as Keras' `HeNormal`.
    public static func heNormal<G: RandomNumberGenerator>(_ shape: [Int], using generator: inout G) -> Tensor {
        let std = (2 / Float(Swift.max(1, fans(of: shape).fanIn))).squareRoot() / 0.879_625_7
        return randomNormal(shape, standardDeviation: std, truncated: true, using: &generator)
    }
}
