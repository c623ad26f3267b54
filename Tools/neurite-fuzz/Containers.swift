// The container formats the mutators rebuild after changing what is inside them: CRC-32 (PNG
// chunks, gzip trailers), Adler-32 (zlib), and a small deflate encoder (stored blocks, or fixed
// Huffman codes with run-length matches) wrapped as zlib (PNG IDAT) or gzip (IDX files).
//
// The encoder is deliberately simple: the point is to hand the decoders well-formed containers
// around mutated content, so that the mutation reaches the header and pixel checks behind the
// checksums, and to make small files that inflate to a lot (run-length matches) for the limits.

/// CRC-32 (IEEE 802.3, reflected, as PNG and gzip use), table-driven.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The CRC-32 of `bytes[range]`.
    static func checksum(_ bytes: [UInt8], _ range: Range<Int>? = nil) -> UInt32 {
        let range = range ?? bytes.indices
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for i in range { c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}

/// Adler-32, the zlib stream checksum.
func adler32(_ bytes: [UInt8]) -> UInt32 {
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in bytes {
        a = (a + UInt32(byte)) % 65521
        b = (b + a) % 65521
    }
    return (b << 16) | a
}

/// Bits written least-significant first, as deflate packs them.
private struct BitWriter {
    var bytes: [UInt8] = []
    private var accumulator: UInt64 = 0
    private var filled = 0

    mutating func write(_ value: UInt32, count: Int) {
        accumulator |= UInt64(value) << UInt64(filled)
        filled += count
        while filled >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: accumulator))
            accumulator >>= 8
            filled -= 8
        }
    }

    /// A Huffman code, which deflate stores most-significant bit first.
    mutating func writeCode(_ code: UInt32, length: Int) {
        var reversed: UInt32 = 0
        for i in 0..<length where (code >> UInt32(i)) & 1 != 0 { reversed |= 1 << UInt32(length - 1 - i) }
        write(reversed, count: length)
    }

    mutating func flush() -> [UInt8] {
        if filled > 0 { write(0, count: 8 - filled) }
        return bytes
    }
}

/// Raw deflate (RFC 1951) encoders.
enum Deflate {
    /// Stored (uncompressed) blocks: 5 bytes of framing per 65535 bytes of data.
    static func stored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 5 * (data.count / 65535 + 1))
        var offset = 0
        repeat {
            let n = min(65535, data.count - offset)
            let last: UInt8 = offset + n == data.count ? 1 : 0
            out.append(last)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[offset..<(offset + n)]
            offset += n
        } while offset < data.count
        return out
    }

    /// Length codes 257...285: (code, base length, extra bits).
    private static let lengthCodes: [(UInt32, Int, Int)] = {
        let bases = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                     131, 163, 195, 227, 258]
        let extras = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
        return (0..<29).map { (UInt32(257 + $0), bases[$0], extras[$0]) }
    }()

    private static func writeLiteralOrLength(_ symbol: UInt32, to w: inout BitWriter) {
        switch symbol {
        case 0...143: w.writeCode(0x30 + symbol, length: 8)
        case 144...255: w.writeCode(0x190 + symbol - 144, length: 9)
        case 256...279: w.writeCode(symbol - 256, length: 7)
        default: w.writeCode(0xC0 + symbol - 280, length: 8)
        }
    }

    /// One fixed-Huffman block; runs of a repeated byte become matches at distance 1, so a run of
    /// n bytes costs about n / 258 * 1.5 bytes (this is what makes small "bombs").
    static func fixedHuffman(_ data: [UInt8]) -> [UInt8] {
        var w = BitWriter()
        w.write(1, count: 1)  // final block
        w.write(1, count: 2)  // fixed Huffman codes
        var i = 0
        while i < data.count {
            var run = 0
            if i > 0 {
                while i + run < data.count && run < 258 && data[i + run] == data[i - 1] { run += 1 }
            }
            if run >= 3 {
                let (code, base, extra) = lengthCodes.last { $0.1 <= run }!
                writeLiteralOrLength(code, to: &w)
                if extra > 0 { w.write(UInt32(run - base), count: extra) }
                w.writeCode(0, length: 5)  // distance code 0: distance 1
                i += run
            } else {
                writeLiteralOrLength(UInt32(data[i]), to: &w)
                i += 1
            }
        }
        writeLiteralOrLength(256, to: &w)
        return w.flush()
    }

    /// One fixed-Huffman block holding `prefix` then `count` copies of `byte`, without building
    /// them: a few hundred kilobytes that inflate to `count` bytes (a "bomb" for the size limits).
    static func fixedHuffmanRun(prefix: [UInt8], repeating byte: UInt8, count: Int) -> [UInt8] {
        var w = BitWriter()
        w.write(1, count: 1)
        w.write(1, count: 2)
        for b in prefix { writeLiteralOrLength(UInt32(b), to: &w) }
        var left = count
        if left > 0 {
            writeLiteralOrLength(UInt32(byte), to: &w)
            left -= 1
        }
        while left >= 3 {
            let run = min(left, 258)
            let (code, base, extra) = lengthCodes.last { $0.1 <= run }!
            writeLiteralOrLength(code, to: &w)
            if extra > 0 { w.write(UInt32(run - base), count: extra) }
            w.writeCode(0, length: 5)
            left -= run
        }
        for _ in 0..<left { writeLiteralOrLength(UInt32(byte), to: &w) }
        writeLiteralOrLength(256, to: &w)
        return w.flush()
    }
}

/// zlib (RFC 1950) and gzip (RFC 1952) wrappers around raw deflate data.
enum Wrap {
    static func zlib(_ data: [UInt8], compressed: Bool) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]  // 32 KiB window, no dictionary; (0x78 * 256 + 0x01) % 31 == 0
        out += compressed ? Deflate.fixedHuffman(data) : Deflate.stored(data)
        out += bigEndian(adler32(data))
        return out
    }

    /// Optional gzip header fields, set by the mutators to reach zlib's header parser.
    struct GzipHeader {
        var extra: [UInt8]? = nil
        var name: [UInt8]? = nil
        var comment: [UInt8]? = nil
        var headerCRC = false
        var flagNoise: UInt8 = 0  // reserved flag bits (5...7), which a reader must reject
    }

    static func gzip(_ data: [UInt8], compressed: Bool, header: GzipHeader = GzipHeader()) -> [UInt8] {
        gzip(deflated: compressed ? Deflate.fixedHuffman(data) : Deflate.stored(data),
             crc: CRC32.checksum(data), size: data.count, header: header)
    }

    /// A gzip member around raw deflate data, with the given trailer values.
    static func gzip(deflated: [UInt8], crc: UInt32, size: Int, header: GzipHeader = GzipHeader()) -> [UInt8] {
        var flags: UInt8 = header.flagNoise & 0xE0
        if header.headerCRC { flags |= 0x02 }
        if header.extra != nil { flags |= 0x04 }
        if header.name != nil { flags |= 0x08 }
        if header.comment != nil { flags |= 0x10 }
        var out: [UInt8] = [0x1F, 0x8B, 8, flags, 0, 0, 0, 0, 0, 3]
        if let extra = header.extra {
            let n = min(extra.count, 65535)
            out += [UInt8(n & 0xFF), UInt8(n >> 8)]
            out += extra.prefix(n)
        }
        if let name = header.name { out += name.filter { $0 != 0 } + [0] }
        if let comment = header.comment { out += comment.filter { $0 != 0 } + [0] }
        if header.headerCRC {
            let crc = CRC32.checksum(out)
            out += [UInt8(crc & 0xFF), UInt8((crc >> 8) & 0xFF)]
        }
        out += deflated
        out += littleEndian(crc)
        out += littleEndian(UInt32(truncatingIfNeeded: size))
        return out
    }
}

func bigEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
}

func littleEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)]
}

func readBigEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
}

func writeBigEndian32(_ value: UInt32, into bytes: inout [UInt8], at offset: Int) {
    bytes[offset] = UInt8(value >> 24)
    bytes[offset + 1] = UInt8((value >> 16) & 0xFF)
    bytes[offset + 2] = UInt8((value >> 8) & 0xFF)
    bytes[offset + 3] = UInt8(value & 0xFF)
}
