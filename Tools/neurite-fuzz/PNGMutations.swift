/// A PNG file taken apart into its chunks, so mutations can change one chunk and give it a
/// correct CRC again (otherwise libpng stops at the CRC check and nothing behind it is reached).
struct PNGFile {
    struct Chunk {
        var type: [UInt8]
        var data: [UInt8]
        /// The stored CRC, or nil to compute the right one when the file is rebuilt.
        var crc: UInt32?
    }

    var signature: [UInt8]
    var chunks: [Chunk]
    /// Bytes after the last whole chunk.
    var trailing: [UInt8]

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Splits `bytes` into chunks; nil when it does not hold a signature and at least one chunk.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 8 + 12 else { return nil }
        signature = Array(bytes[0..<8])
        chunks = []
        var offset = 8
        while offset + 12 <= bytes.count {
            let length = Int(readBigEndian32(bytes, at: offset))
            guard length <= bytes.count - offset - 12 else { break }
            let type = Array(bytes[(offset + 4)..<(offset + 8)])
            let data = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            let crc = readBigEndian32(bytes, at: offset + 8 + length)
            chunks.append(Chunk(type: type, data: data, crc: crc))
            offset += 12 + length
        }
        trailing = Array(bytes[offset...])
        if chunks.isEmpty { return nil }
    }

    var bytes: [UInt8] {
        var out = signature
        for chunk in chunks {
            out += bigEndian(UInt32(chunk.data.count))
            out += chunk.type
            out += chunk.data
            out += bigEndian(chunk.crc ?? CRC32.checksum(chunk.type + chunk.data))
        }
        return out + trailing
    }

    func index(of type: String) -> Int? {
        let code = Array(type.utf8)
        return chunks.firstIndex { $0.type == code }
    }

    /// Width, height, bit depth, colour type and interlace method from IHDR.
    var header: (width: Int, height: Int, depth: Int, color: Int, interlace: Int)? {
        guard let i = index(of: "IHDR"), chunks[i].data.count >= 13 else { return nil }
        let d = chunks[i].data
        return (Int(readBigEndian32(d, at: 0)), Int(readBigEndian32(d, at: 4)), Int(d[8]), Int(d[9]), Int(d[12]))
    }
}

/// Mutations that know the PNG chunk layout.
enum PNGMutations {
    static let names = ["png_chunk_data", "png_ihdr_field", "png_chunk_drop", "png_chunk_duplicate", "png_chunk_swap",
                        "png_chunk_insert", "png_regenerate_idat", "png_synthesize", "png_split_idat"]

    private static let chunkTypes = ["PLTE", "tRNS", "gAMA", "cHRM", "sRGB", "iCCP", "sBIT", "bKGD", "hIST", "pHYs",
                                     "sPLT", "tIME", "tEXt", "zTXt", "iTXt", "oFFs", "pCAL", "sCAL", "eXIf", "IDAT",
                                     "IEND", "IHDR", "acTL", "fcTL", "fdAT", "vpAg", "cICP", "mDCv"]

    /// Applies one PNG-aware mutation; returns its name, or nil when `bytes` is not chunked PNG.
    static func mutate(_ bytes: inout [UInt8], dice: inout Dice) -> String? {
        guard var png = PNGFile(bytes) else { return nil }
        let choice = dice.below(names.count)
        switch choice {
        case 0:  // havoc inside one chunk's data; usually give it a correct CRC again
            let i = dice.below(png.chunks.count)
            for _ in 0..<dice.pick([1, 1, 2, 4]) {
                Havoc.mutate(&png.chunks[i].data, other: nil, dice: &dice)
            }
            png.chunks[i].crc = dice.chance(7, in: 8) ? nil : png.chunks[i].crc
        case 1:
            guard let i = png.index(of: "IHDR"), png.chunks[i].data.count >= 13 else { return nil }
            setHeaderField(&png.chunks[i].data, dice: &dice)
            png.chunks[i].crc = nil
        case 2:
            png.chunks.remove(at: dice.below(png.chunks.count))
        case 3:
            let i = dice.below(png.chunks.count)
            let copies = dice.pick([1, 1, 2, 16])
            png.chunks.insert(contentsOf: Array(repeating: png.chunks[i], count: copies), at: dice.below(png.chunks.count + 1))
        case 4:
            let i = dice.below(png.chunks.count)
            let j = dice.chance(1, in: 2) ? min(i + 1, png.chunks.count - 1) : dice.below(png.chunks.count)
            png.chunks.swapAt(i, j)
        case 5:
            let chunk = syntheticChunk(png: png, dice: &dice)
            // Ancillary chunks go between IHDR and IDAT, where libpng parses them with the header known.
            let at = dice.chance(3, in: 4) ? min(1, png.chunks.count) : dice.below(png.chunks.count + 1)
            png.chunks.insert(chunk, at: at)
        case 6:
            guard png.header != nil else { return nil }
            regenerateImageData(&png, valid: dice.chance(1, in: 2), dice: &dice)
        case 7:
            synthesize(&png, dice: &dice)
        default:
            guard let i = png.index(of: "IDAT"), png.chunks[i].data.count >= 2 else { return nil }
            let cut = dice.within(1...(png.chunks[i].data.count - 1))
            let data = png.chunks[i].data
            png.chunks[i] = PNGFile.Chunk(type: png.chunks[i].type, data: Array(data[..<cut]), crc: nil)
            png.chunks.insert(PNGFile.Chunk(type: png.chunks[i].type, data: Array(data[cut...]), crc: nil), at: i + 1)
        }
        bytes = png.bytes
        return names[choice]
    }

    private static func setHeaderField(_ d: inout [UInt8], dice: inout Dice) {
        switch dice.below(6) {
        case 0, 1:  // width or height
            let value = dice.chance(1, in: 2) ? dice.pick(Interesting.words32) : UInt32(dice.within(1...300))
            writeBigEndian32(value, into: &d, at: dice.chance(1, in: 2) ? 0 : 4)
        case 2: d[8] = dice.pick([0, 1, 2, 3, 4, 5, 7, 8, 16, 32, 255])
        case 3: d[9] = dice.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 255])
        case 4: d[10 + dice.below(2)] = dice.pick([0, 1, 255])
        default: d[12] = dice.pick([0, 1, 1, 2, 255])
        }
    }

    /// A chunk of a type libpng knows (or a random one), with plausible or random content.
    private static func syntheticChunk(png: PNGFile, dice: inout Dice) -> PNGFile.Chunk {
        let type = dice.chance(7, in: 8) ? Array(dice.pick(chunkTypes).utf8) : dice.bytes(4)
        var data: [UInt8]
        switch String(decoding: type, as: UTF8.self) {
        case "PLTE":
            data = dice.bytes(3 * dice.pick([0, 1, 2, 16, 255, 256, 257]))
            if dice.chance(1, in: 4) { data.removeLast(min(data.count, dice.within(1...2))) }
        case "tRNS":
            data = dice.bytes(dice.pick([0, 1, 2, 6, 16, 255, 256, 300]))
        case "iCCP", "zTXt":
            // keyword, NUL, method 0, then a zlib stream of random or repeated content
            let inner = dice.chance(1, in: 2) ? dice.bytes(dice.smallLength(upTo: 4096))
                : [UInt8](repeating: 0, count: dice.pick([10, 1000, 100_000, 2_000_000]))
            data = Array("name".utf8) + [0, dice.chance(7, in: 8) ? 0 : 1] + Wrap.zlib(inner, compressed: true)
        case "iTXt":
            let compressed: UInt8 = dice.chance(1, in: 2) ? 1 : 0
            let text = dice.bytes(dice.smallLength(upTo: 256))
            data = Array("key".utf8) + [0, compressed, 0] + Array("en".utf8) + [0, 0]
                + (compressed == 1 ? Wrap.zlib(text, compressed: true) : text)
        case "IHDR":
            data = dice.bytes(13)
        case "sBIT":
            data = (0..<dice.within(1...4)).map { _ in dice.pick([0, 1, 8, 16, 17, 255]) }
        case "sPLT":
            data = Array("p".utf8) + [0, dice.pick([8, 16, 7])] + dice.bytes(dice.pick([0, 6, 10, 11, 60]))
        default:
            data = dice.bytes(dice.smallLength(upTo: 64))
        }
        return PNGFile.Chunk(type: type, data: data, crc: dice.chance(15, in: 16) ? nil : dice.chance(1, in: 2) ? 0 : 1)
    }

    /// Channels per pixel of each colour type, or nil for an invalid type.
    private static func channels(colorType: Int) -> Int? {
        switch colorType {
        case 0: return 1
        case 2: return 3
        case 3: return 1
        case 4: return 2
        case 6: return 4
        default: return nil
        }
    }

    /// The rows of filtered, uncompressed image data the header calls for, as (bytes per row
    /// including its filter byte, number of rows) per pass (Adam7 has seven sub-images), or nil
    /// when the total would exceed `cap`.
    static func rowLayout(width: Int, height: Int, bitsPerPixel: Int, interlaced: Bool, cap: Int) -> [(Int, Int)]? {
        guard width <= 1 << 31, height <= 1 << 31 else { return nil }
        var total = 0
        var layout: [(Int, Int)] = []
        let passes: [(Int, Int, Int, Int)] = interlaced
            ? [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            : [(0, 0, 1, 1)]
        for (x0, y0, dx, dy) in passes {
            let w = (width - x0 + dx - 1) / dx, h = (height - y0 + dy - 1) / dy
            guard w > 0, h > 0 else { continue }
            let row = (w * bitsPerPixel + 7) / 8 + 1
            let (size, overflow) = row.multipliedReportingOverflow(by: h)
            guard !overflow, size <= cap - total else { return nil }
            total += size
            layout.append((row, h))
        }
        return layout
    }

    /// Replaces every IDAT with new filtered rows of the size the header calls for (give or take
    /// a few bytes, or with a bad filter type, when `valid` is false), compressed or stored, in
    /// one to three chunks.
    private static func regenerateImageData(_ png: inout PNGFile, valid: Bool, dice: inout Dice) {
        guard let h = png.header else { return }
        let bits = (channels(colorType: h.color) ?? dice.within(1...4)) * max(1, min(h.depth, 16))
        let layout = rowLayout(width: h.width, height: h.height, bitsPerPixel: bits, interlaced: h.interlace == 1,
                               cap: 1 << 22) ?? [(dice.smallLength(upTo: 1 << 12), dice.smallLength(upTo: 64))]
        let style = dice.below(3)
        var raw: [UInt8] = []
        for (rowBytes, rows) in layout {
            for _ in 0..<rows {
                raw.append(valid || dice.chance(31, in: 32) ? UInt8(dice.below(5)) : dice.byte())  // filter type
                switch style {
                case 0: raw += repeatElement(0, count: rowBytes - 1)
                case 1: raw += dice.bytes(rowBytes - 1)
                default: raw += (0..<(rowBytes - 1)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ raw.count) }
                }
            }
        }
        if !valid && dice.chance(1, in: 2) {
            let change = dice.pick([-17, -2, -1, 1, 3, 1000])
            if change < 0 { raw.removeLast(min(raw.count, -change)) } else { raw += dice.bytes(change) }
        }
        let stream = Wrap.zlib(raw, compressed: dice.chance(3, in: 4))
        let first = png.index(of: "IDAT") ?? min(1, png.chunks.count)
        png.chunks.removeAll { String(decoding: $0.type, as: UTF8.self) == "IDAT" }
        let parts = min(dice.within(1...3), max(1, stream.count))
        var pieces: [PNGFile.Chunk] = []
        var start = 0
        for p in 0..<parts {
            let end = p == parts - 1 ? stream.count : start + stream.count / parts
            pieces.append(PNGFile.Chunk(type: Array("IDAT".utf8), data: Array(stream[start..<end]), crc: nil))
            start = end
        }
        png.chunks.insert(contentsOf: pieces, at: min(first, png.chunks.count))
    }

    /// A new header of a valid random type and size (with a palette and transparency where they
    /// apply), then new image data: reaches every libpng transform we ask for.
    private static func synthesize(_ png: inout PNGFile, dice: inout Dice) {
        let combinations: [(Int, [Int])] = [(0, [1, 2, 4, 8, 16]), (2, [8, 16]), (3, [1, 2, 4, 8]), (4, [8, 16]), (6, [8, 16])]
        let (color, depths) = dice.pick(combinations)
        let depth = dice.pick(depths)
        let width = dice.chance(1, in: 8) ? dice.within(1...2048) : dice.within(1...40)
        let height = dice.chance(1, in: 8) ? dice.within(1...2048) : dice.within(1...40)
        var ihdr = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        ihdr += [UInt8(depth), UInt8(color), 0, 0, dice.chance(1, in: 3) ? 1 : 0]
        var chunks = [PNGFile.Chunk(type: Array("IHDR".utf8), data: ihdr, crc: nil)]
        if color == 3 || (color == 2 || color == 6) && dice.chance(1, in: 4) {
            let entries = dice.chance(7, in: 8) ? dice.within(1...(1 << min(depth, 8))) : dice.within(1...256)
            chunks.append(PNGFile.Chunk(type: Array("PLTE".utf8), data: dice.bytes(3 * entries), crc: nil))
        }
        if color != 4 && color != 6 && dice.chance(1, in: 3) {
            let length = color == 3 ? dice.within(1...256) : color == 0 ? 2 : 6
            chunks.append(PNGFile.Chunk(type: Array("tRNS".utf8), data: dice.bytes(length), crc: nil))
        }
        if dice.chance(1, in: 4) {
            chunks.append(PNGFile.Chunk(type: Array("sBIT".utf8), data: dice.bytes(channels(colorType: color)!), crc: nil))
        }
        chunks.append(PNGFile.Chunk(type: Array("IDAT".utf8), data: [], crc: nil))
        chunks.append(PNGFile.Chunk(type: Array("IEND".utf8), data: [], crc: nil))
        png = PNGFile(signature: PNGFile.pngSignature, chunks: chunks, trailing: [])
        regenerateImageData(&png, valid: dice.chance(7, in: 8), dice: &dice)
    }
}

extension PNGFile {
    init(signature: [UInt8], chunks: [Chunk], trailing: [UInt8]) {
        self.signature = signature
        self.chunks = chunks
        self.trailing = trailing
    }
}
