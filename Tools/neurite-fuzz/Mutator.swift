import TensorCore

/// The one source of randomness of a run: a `SeededGenerator`, plus the few draws the mutators need.
/// Every choice goes through `nextIndex(below:)`, whose results are the same on every platform.
struct Dice {
    var generator: SeededGenerator

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    /// A uniform integer in `0..<n` (n > 0).
    mutating func below(_ n: Int) -> Int { generator.nextIndex(below: n) }

    /// A uniform integer in `range`.
    mutating func within(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    /// True with probability `numerator / denominator`.
    mutating func chance(_ numerator: Int, in denominator: Int) -> Bool { below(denominator) < numerator }

    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: generator.next()) }

    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in byte() } }

    mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }

    /// A length from 1 to `limit`, small ones far more likely (1-4 half the time).
    mutating func smallLength(upTo limit: Int) -> Int {
        guard limit > 1 else { return 1 }
        let scale = pick([4, 16, 64, 512])
        return 1 + below(min(limit, scale))
    }
}

/// Values that sit on the edges of what parsers expect: signs, powers of two, all ones.
enum Interesting {
    static let bytes: [UInt8] = [0, 255, 0x7F, 0x80, 1, 0xFE, 0x81, 16, 32, 64]
    static let words16: [UInt16] = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0xFFFE, 1024, 4096]
    static let words32: [UInt32] = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000,
                                    0xFFFF_FFFF, 0xFFFF_FFFE, 0x4000_0000, 0x0100_0000, 4096, 32768, 65535]
}

/// Format-blind mutations of a byte array (the "havoc" stage of AFL-style fuzzers).
enum Havoc {
    /// The names of the mutations, for the summary.
    static let names = ["bit_flip", "interesting_byte", "interesting_word", "random_byte", "arith",
                        "insert_chunk", "delete_chunk", "duplicate_chunk", "overwrite_chunk", "truncate", "splice"]

    /// Applies one randomly chosen mutation to `bytes[range]` (the whole array by default), keeping
    /// changes inside the range except for insertions and deletions, which move the bytes after it.
    /// Returns the index of the mutation applied and the change in length.
    @discardableResult
    static func mutate(_ bytes: inout [UInt8], in range: Range<Int>? = nil, other: [UInt8]?,
                       dice: inout Dice) -> (mutation: Int, delta: Int) {
        let range = range ?? bytes.indices
        let lo = range.lowerBound, n = range.count
        // With nothing to change in place, only growing makes sense.
        let choice = n == 0 ? 5 : dice.below(other == nil ? names.count - 1 : names.count)
        switch choice {
        case 0:  // flip 1, 2 or 4 neighbouring bits, or one bit in each of a few bytes
            let count = dice.pick([1, 1, 2, 4])
            let start = dice.below(n * 8)
            for k in 0..<count {
                let bit = min(start + k, n * 8 - 1)
                bytes[lo + bit / 8] ^= 1 << UInt8(bit % 8)
            }
        case 1:
            bytes[lo + dice.below(n)] = dice.pick(Interesting.bytes)
        case 2:  // a 16- or 32-bit edge value, big- or little-endian
            let wide = n >= 4 && dice.chance(1, in: 2)
            let width = wide ? 4 : min(2, n)
            let at = lo + dice.below(n - width + 1)
            let value = wide ? dice.pick(Interesting.words32) : UInt32(dice.pick(Interesting.words16))
            let big = dice.chance(3, in: 4)
            for k in 0..<width {
                let shift = big ? 8 * (width - 1 - k) : 8 * k
                bytes[at + k] = UInt8(truncatingIfNeeded: value >> UInt32(shift))
            }
        case 3:
            bytes[lo + dice.below(n)] = dice.byte()
        case 4:  // add or subtract 1...35
            let at = lo + dice.below(n)
            let amount = UInt8(dice.within(1...35))
            bytes[at] = dice.chance(1, in: 2) ? bytes[at] &+ amount : bytes[at] &- amount
        case 5:  // insert random bytes, a repeated byte, or a copy of a piece of the input
            let at = lo + dice.below(n + 1)
            let length = dice.smallLength(upTo: 1024)
            let insert: [UInt8]
            switch dice.below(3) {
            case 0: insert = dice.bytes(length)
            case 1: insert = [UInt8](repeating: dice.pick(Interesting.bytes), count: length)
            default:
                if n == 0 { insert = dice.bytes(length) } else {
                    let from = lo + dice.below(n)
                    insert = Array(bytes[from..<min(from + length, range.upperBound)])
                }
            }
            bytes.insert(contentsOf: insert, at: at)
            return (choice, insert.count)
        case 6:
            let length = dice.smallLength(upTo: n)
            let at = lo + dice.below(n - length + 1)
            bytes.removeSubrange(at..<(at + length))
            return (choice, -length)
        case 7:  // copy a piece and insert it right after itself or elsewhere in the range
            let length = dice.smallLength(upTo: n)
            let from = lo + dice.below(n - length + 1)
            let piece = Array(bytes[from..<(from + length)])
            let at = dice.chance(1, in: 2) ? from + length : lo + dice.below(n + 1)
            bytes.insert(contentsOf: piece, at: at)
            return (choice, length)
        case 8:
            let length = dice.smallLength(upTo: n)
            let from = lo + dice.below(n - length + 1)
            let to = lo + dice.below(n - length + 1)
            let piece = Array(bytes[from..<(from + length)])
            bytes.replaceSubrange(to..<(to + length), with: piece)
        case 9:  // cut off the end of the range: usually a little, sometimes most of it
            let keep = dice.chance(1, in: 2) ? n - dice.smallLength(upTo: n) : dice.below(n)
            bytes.removeSubrange((lo + keep)..<range.upperBound)
            return (choice, keep - n)
        default:  // splice: this input's head, the other's tail
            let other = other!
            let cut = lo + dice.below(n + 1)
            let otherCut = dice.below(other.count + 1)
            let tail = Array(other[otherCut...])
            bytes.replaceSubrange(cut..<range.upperBound, with: tail)
            return (choice, tail.count - (range.upperBound - cut))
        }
        return (choice, 0)
    }
}
