/// One fuzz input: the bytes fed to the decoder and, for a gzip file whose content is known (one
/// the tool made, or one a mutation rebuilt), that content, so it can be mutated and compressed again.
struct FuzzInput {
    var bytes: [UInt8]
    var inner: [UInt8]? = nil
}

/// Mutations that know the IDX header and the gzip container around it.
enum IDXMutations {
    static let names = ["idx_dimension", "idx_type_code", "idx_rank", "idx_magic", "idx_data_length",
                        "idx_new_header", "idx_huge_claim", "gzip_rewrap", "gzip_bomb", "gzip_members",
                        "gzip_trailer", "gzip_header"]

    static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

    /// Applies one IDX- or gzip-aware mutation; returns its name, or nil when it does not apply.
    static func mutate(_ input: inout FuzzInput, limit: Int, dice: inout Dice) -> String? {
        let gzipped = isGzip(input.bytes)
        let plain = gzipped ? input.inner : input.bytes
        let choice = dice.below(names.count)
        switch choice {
        case 0...6:
            guard var p = plain, mutateHeader(&p, choice: choice, limit: limit, dice: &dice) else { return nil }
            // A gzip input stays gzip (the header checks run after inflating); a plain one stays plain.
            input = gzipped ? rewrap(p, dice: &dice) : FuzzInput(bytes: p)
        case 7:
            guard var p = plain else { return nil }
            if dice.chance(1, in: 2) { Havoc.mutate(&p, other: nil, dice: &dice) }
            input = rewrap(p, dice: &dice)
        case 8:  // a small file that inflates past the limit, behind a header that claims it all
            let count = dice.pick([limit - 15, limit, limit + 1, 4 * limit, 1 << 28])
            let images = UInt32(max(1, count / 784))
            let header: [UInt8] = [0, 0, 8, 3] + bigEndian(images) + bigEndian(28) + bigEndian(28)
            let deflated = Deflate.fixedHuffmanRun(prefix: header, repeating: 0, count: Int(images) * 784)
            input = FuzzInput(bytes: Wrap.gzip(deflated: deflated, crc: 0, size: header.count + Int(images) * 784))
        case 9:  // concatenated members, trailing garbage, or a member cut short
            guard gzipped || plain != nil else { return nil }
            var first = gzipped ? input.bytes : Wrap.gzip(plain!, compressed: true)
            switch dice.below(4) {
            case 0:
                guard let p = plain, p.count >= 2 else { return nil }
                let cut = dice.within(1...(p.count - 1))
                first = Wrap.gzip(Array(p[..<cut]), compressed: dice.chance(1, in: 2))
                    + Wrap.gzip(Array(p[cut...]), compressed: dice.chance(1, in: 2))
            case 1: first += dice.bytes(dice.smallLength(upTo: 64))
            case 2: first += [0x1F, 0x8B] + dice.bytes(dice.smallLength(upTo: 16))
            default:
                let member = Wrap.gzip(dice.bytes(dice.smallLength(upTo: 512)), compressed: true)
                first += member.prefix(dice.below(member.count + 1))
            }
            input = FuzzInput(bytes: first)
        case 10:
            guard gzipped, input.bytes.count >= 18 else { return nil }
            let at = input.bytes.count - 8 + dice.below(8)
            input.bytes[at] = dice.chance(1, in: 2) ? dice.byte() : input.bytes[at] ^ 1
            input.inner = nil
        default:  // header fields: method, flags, XLEN, unterminated name
            guard let p = plain else { return nil }
            var g = rewrap(p, dice: &dice).bytes
            switch dice.below(4) {
            case 0: g[2] = dice.pick([0, 7, 9, 255])
            case 1: g[3] = dice.byte()
            case 2: g[3] |= 0x04; g.insert(contentsOf: [dice.byte(), dice.byte()], at: 10)
            default: g[3] |= 0x08
            }
            input = FuzzInput(bytes: g)
        }
        return names[choice]
    }

    /// Gzip around `plain`, compressed or stored, with optional header fields.
    static func rewrap(_ plain: [UInt8], dice: inout Dice) -> FuzzInput {
        var header = Wrap.GzipHeader()
        if dice.chance(1, in: 4) { header.name = Array("t10k-labels.idx1-ubyte".utf8) }
        if dice.chance(1, in: 8) { header.extra = dice.bytes(dice.smallLength(upTo: 64)) }
        if dice.chance(1, in: 8) { header.comment = dice.bytes(dice.smallLength(upTo: 64)) }
        if dice.chance(1, in: 8) { header.headerCRC = true }
        if dice.chance(1, in: 32) { header.flagNoise = 0x20 << UInt8(dice.below(3)) }
        return FuzzInput(bytes: Wrap.gzip(plain, compressed: dice.chance(3, in: 4), header: header), inner: plain)
    }

    /// The plain-IDX mutations (choices 0...6 of `mutate`); false when one does not apply.
    private static func mutateHeader(_ p: inout [UInt8], choice: Int, limit: Int, dice: inout Dice) -> Bool {
        switch choice {
        case 0:
            guard p.count >= 8 else { return false }
            let dims = min(Int(p[3]), (p.count - 4) / 4)
            guard dims > 0 else { return false }
            let at = 4 + 4 * dice.below(dims)
            let d = readBigEndian32(p, at: at)
            let value = dice.pick([0, 1, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 0x1_0000, d &+ 1, d &- 1, d &* 2, d / 2, 60000])
            writeBigEndian32(value, into: &p, at: at)
        case 1:
            guard p.count >= 3 else { return false }
            p[2] = dice.pick([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x0A, 0x0F, 0xFF])
        case 2:
            guard p.count >= 4 else { return false }
            let rank = Int(p[3])
            let newRank = dice.pick([0, 1, 2, 3, 4, 5, 255, rank + 1, max(0, rank - 1)])
            p[3] = UInt8(min(newRank, 255))
            if dice.chance(1, in: 2) {  // keep the data where it was: add or drop dimensions of 1
                if newRank > rank {
                    let ones = (0..<(newRank - rank)).flatMap { _ in bigEndian(1) }
                    p.insert(contentsOf: ones, at: min(p.count, 4 + 4 * rank))
                } else if newRank < rank {
                    let from = min(p.count, 4 + 4 * newRank), to = min(p.count, 4 + 4 * rank)
                    p.removeSubrange(from..<to)
                }
            }
        case 3:
            guard p.count >= 2 else { return false }
            p[dice.below(2)] = dice.pick([1, 8, 0x80, 0xFF])
        case 4:
            let n = dice.pick([1, 2, 3, 4, 7, 8, 100])
            if dice.chance(1, in: 2) { p += dice.bytes(n) } else { p.removeLast(min(n, p.count)) }
        case 5:  // a new, self-consistent header of a random type and rank, or one whose size overflows
            let type = dice.pick([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E] as [UInt8])
            let width = [0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8][Int(type)]!
            let rank = dice.within(1...4)
            if dice.chance(1, in: 4) {
                p = [0, 0, type, UInt8(rank)] + (0..<rank).flatMap { _ in bigEndian(dice.pick([0xFFFF_FFFF, 0x1_0000, 0x8000_0000])) }
                p += dice.bytes(dice.smallLength(upTo: 64))
            } else {
                let dims = (0..<rank).map { _ in dice.within(1...(rank == 1 ? 4096 : 24)) }
                let count = dims.reduce(1, *) * width
                p = [0, 0, type, UInt8(rank)] + dims.flatMap { bigEndian(UInt32($0)) }
                p += dice.chance(1, in: 2) ? dice.bytes(count) : [UInt8](repeating: dice.pick(Interesting.bytes), count: count)
            }
        default:  // a header that claims far more than follows, or a file just over the limit
            if dice.chance(3, in: 4) {
                p = [0, 0, 8, 3] + bigEndian(60000) + bigEndian(28) + bigEndian(28) + dice.bytes(dice.smallLength(upTo: 1024))
            } else {
                let count = limit - 8 + dice.pick([-1, 0, 1, 1000])  // the whole file: limit - 1 ... limit + 1000
                p = [0, 0, 8, 1] + bigEndian(UInt32(count)) + [UInt8](repeating: 0, count: count)
            }
        }
        return true
    }
}
