import CNeuriteZlib
import Foundation

/// A strict reader for the zip archives `.keras` files are, over bytes in memory.
///
/// Why not ZIPFoundation's reader (which writes our archives): in 0.9.20 on Linux its inflate loop
/// never ends when a deflated member is cut short (the provider returns empty chunks and the loop
/// waits for Z_STREAM_END), and its in-memory file traps when a hostile header seeks past the end.
/// Both are reachable from a hostile `.keras` file, and a reader of untrusted files must throw
/// instead. This reader checks every offset and size against the bytes it has, counts inflated
/// bytes as they arrive, and verifies sizes and CRC-32 checksums.
struct ZipReader {
    /// One central-directory entry.
    struct Entry {
        var name: String
        var method: UInt16
        var flags: UInt16
        var crc: UInt32
        var compressedSize: UInt64
        var uncompressedSize: UInt64
        var localHeaderOffset: UInt64
    }

    let bytes: UnsafeRawBufferPointer
    let source: String
    private(set) var entries: [Entry] = []
    /// Where the central directory starts: member data must end before it.
    private var centralDirectoryOffset = 0

    /// Parses the end-of-central-directory record (zip64 too) and every central-directory entry.
    init(bytes: UnsafeRawBufferPointer, source: String) throws(KerasInteropError) {
        self.bytes = bytes
        self.source = source
        let looksLikeZip = bytes.count >= 4 && Self.u32(bytes, 0) == 0x0403_4b50
        guard let eocd = Self.findEndOfCentralDirectory(bytes) else {
            if looksLikeZip {
                throw .corruptArchive("\(source): truncated (no end-of-central-directory record)")
            }
            throw .notAZipArchive("\(source): no end-of-central-directory record")
        }
        var entryCount = UInt64(Self.u16(bytes, eocd + 10))
        var directorySize = UInt64(Self.u32(bytes, eocd + 12))
        var directoryOffset = UInt64(Self.u32(bytes, eocd + 16))
        guard Self.u16(bytes, eocd + 4) == 0 || Self.u16(bytes, eocd + 4) == 0xFFFF else {
            throw .corruptArchive("\(source): multi-disk archives are not supported")
        }
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // zip64: the locator sits just before the record and points at the zip64 record.
            let locator = eocd - 20
            guard locator >= 56, Self.u32(bytes, locator) == 0x0706_4b50 else {
                throw .corruptArchive("\(source): zip64 sizes without a zip64 end-of-central-directory locator")
            }
            let recordOffset = Self.u64(bytes, locator + 8)
            guard recordOffset <= UInt64(locator - 56), Self.u32(bytes, Int(recordOffset)) == 0x0606_4b50 else {
                throw .corruptArchive("\(source): bad zip64 end-of-central-directory record")
            }
            let record = Int(recordOffset)
            entryCount = Self.u64(bytes, record + 32)
            directorySize = Self.u64(bytes, record + 40)
            directoryOffset = Self.u64(bytes, record + 48)
        }
        let directoryEnd = directoryOffset.addingReportingOverflow(directorySize)
        guard !directoryEnd.overflow, directoryEnd.partialValue <= UInt64(eocd) else {
            throw .corruptArchive("\(source): the central directory (offset \(directoryOffset), \(directorySize) bytes) lies outside the file; truncated?")
        }
        guard entryCount <= directorySize / 46 else {
            throw .corruptArchive("\(source): \(entryCount) entries cannot fit a central directory of \(directorySize) bytes")
        }
        centralDirectoryOffset = Int(directoryOffset)
        var position = Int(directoryOffset)
        let end = Int(directoryEnd.partialValue)
        var seen = Set<String>()
        for index in 0..<Int(entryCount) {
            guard position + 46 <= end, Self.u32(bytes, position) == 0x0201_4b50 else {
                throw .corruptArchive("\(source): central-directory entry \(index) is damaged")
            }
            let nameLength = Int(Self.u16(bytes, position + 28))
            let extraLength = Int(Self.u16(bytes, position + 30))
            let commentLength = Int(Self.u16(bytes, position + 32))
            let next = position + 46 + nameLength + extraLength + commentLength
            guard next <= end else {
                throw .corruptArchive("\(source): central-directory entry \(index) runs past the directory")
            }
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(position + 46)..<(position + 46 + nameLength)])
            let name = String(decoding: nameBytes, as: UTF8.self)
            var entry = Entry(name: name, method: Self.u16(bytes, position + 10), flags: Self.u16(bytes, position + 8),
                              crc: Self.u32(bytes, position + 16),
                              compressedSize: UInt64(Self.u32(bytes, position + 20)),
                              uncompressedSize: UInt64(Self.u32(bytes, position + 24)),
                              localHeaderOffset: UInt64(Self.u32(bytes, position + 42)))
            try Self.applyZip64Extra(&entry, bytes: bytes, from: position + 46 + nameLength, count: extraLength, source: source)
            try Self.checkName(nameBytes, name: name, source: source)
            guard seen.insert(name).inserted else {
                throw .corruptArchive("\(source): the member name \"\(name)\" appears twice")
            }
            entries.append(entry)
            position = next
        }
    }

    /// The member's bytes, inflated if need be, with at most `limit` bytes ever held.
    func extract(_ entry: Entry, limit: Int) throws(KerasInteropError) -> Data {
        let name = entry.name
        guard entry.flags & 1 == 0 else { throw .corruptArchive("\(source): member \"\(name)\" is encrypted") }
        guard entry.uncompressedSize <= UInt64(max(limit, 0)) else { throw .memberTooLarge(name: name, limit: limit) }
        // The local header repeats the name and has its own extra field; the data follows it.
        let header = entry.localHeaderOffset
        guard header <= UInt64(centralDirectoryOffset), Int(header) + 30 <= centralDirectoryOffset,
              Self.u32(bytes, Int(header)) == 0x0403_4b50 else {
            throw .corruptArchive("\(source): member \"\(name)\" has no local header at offset \(header)")
        }
        let start = Int(header) + 30 + Int(Self.u16(bytes, Int(header) + 26)) + Int(Self.u16(bytes, Int(header) + 28))
        guard entry.compressedSize <= UInt64(centralDirectoryOffset), start <= centralDirectoryOffset,
              Int(entry.compressedSize) <= centralDirectoryOffset - start else {
            throw .corruptArchive("\(source): member \"\(name)\" (\(entry.compressedSize) bytes at offset \(start)) runs past its end; truncated?")
        }
        let stored = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Int(entry.compressedSize))])
        let content: Data
        switch entry.method {
        case 0:
            guard entry.compressedSize == entry.uncompressedSize else {
                throw .corruptArchive("\(source): stored member \"\(name)\" has different compressed and uncompressed sizes")
            }
            content = Data(stored)
        case 8:
            content = try inflate(stored, name: name, limit: limit, declared: Int(entry.uncompressedSize))
        default:
            throw .corruptArchive("\(source): member \"\(name)\" uses compression method \(entry.method) (only stored and deflate are supported)")
        }
        guard content.count == Int(entry.uncompressedSize) else {
            throw .corruptArchive("\(source): member \"\(name)\" holds \(content.count) bytes, its header says \(entry.uncompressedSize)")
        }
        let crc = content.withUnsafeBytes { raw -> UInt32 in
            var value = crc32(0, nil, 0)
            var offset = 0
            while offset < raw.count {
                let n = min(raw.count - offset, 1 << 30)
                value = crc32(value, raw.baseAddress! + offset, uInt(n))
                offset += n
            }
            return UInt32(truncatingIfNeeded: value)
        }
        guard crc == entry.crc else {
            throw .corruptArchive("\(source): member \"\(name)\" fails its CRC-32 check")
        }
        return content
    }

    /// Raw deflate, stopping as soon as the output passes `limit` or the declared size.
    private func inflate(_ input: UnsafeRawBufferPointer, name: String, limit: Int, declared: Int) throws(KerasInteropError) -> Data {
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .io("zlib cannot start inflating \"\(name)\"")
        }
        defer { inflateEnd(&stream) }
        var output = Data()
        output.reserveCapacity(min(declared, 1 << 24))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var offset = 0
        while true {
            // zlib counts in 32 bits: feed at most 1 GiB at a time.
            let available = min(input.count - offset, 1 << 30)
            stream.next_in = input.baseAddress.map { UnsafeMutablePointer(mutating: ($0 + offset).assumingMemoryBound(to: Bytef.self)) }
            stream.avail_in = uInt(available)
            let status = chunk.withUnsafeMutableBufferPointer { out -> Int32 in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                return CNeuriteZlib.inflate(&stream, Z_NO_FLUSH)
            }
            let consumed = available - Int(stream.avail_in)
            let produced = chunk.count - Int(stream.avail_out)
            offset += consumed
            switch status {
            case Z_STREAM_END, Z_OK: break
            case Z_BUF_ERROR where consumed > 0 || produced > 0: break
            case Z_BUF_ERROR:
                throw .corruptArchive("\(source): member \"\(name)\": its deflate data ends early; truncated?")
            default:
                throw .corruptArchive("\(source): member \"\(name)\": bad deflate data")
            }
            guard output.count + produced <= limit else { throw .memberTooLarge(name: name, limit: limit) }
            guard output.count + produced <= declared else {
                throw .corruptArchive("\(source): member \"\(name)\" inflates to more than the \(declared) bytes its header says")
            }
            output.append(contentsOf: chunk[0..<produced])
            if status == Z_STREAM_END { return output }
        }
    }

    private static func applyZip64Extra(_ entry: inout Entry, bytes: UnsafeRawBufferPointer, from start: Int, count: Int,
                                        source: String) throws(KerasInteropError) {
        var position = start
        let end = start + count
        while position + 4 <= end {
            let id = u16(bytes, position)
            let size = Int(u16(bytes, position + 2))
            guard position + 4 + size <= end else { break }
            if id == 0x0001 {
                var field = position + 4
                func next() throws(KerasInteropError) -> UInt64 {
                    guard field + 8 <= position + 4 + size else {
                        throw .corruptArchive("\(source): member \"\(entry.name)\" has a short zip64 extra field")
                    }
                    defer { field += 8 }
                    return u64(bytes, field)
                }
                if entry.uncompressedSize == 0xFFFF_FFFF { entry.uncompressedSize = try next() }
                if entry.compressedSize == 0xFFFF_FFFF { entry.compressedSize = try next() }
                if entry.localHeaderOffset == 0xFFFF_FFFF { entry.localHeaderOffset = try next() }
            }
            position += 4 + size
        }
    }

    /// Refuses names that could escape a folder if someone extracted the archive.
    private static func checkName(_ raw: UnsafeRawBufferPointer, name: String, source: String) throws(KerasInteropError) {
        let unsafe = raw.isEmpty || raw.contains(0) || name.hasPrefix("/") || name.hasPrefix("\\")
            || name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).contains("..")
            || (name.count >= 2 && name.dropFirst().first == ":")
        if unsafe { throw .corruptArchive("\(source): unsafe member name \"\(name)\"") }
    }

    /// The offset of the end-of-central-directory record: searched backwards over the longest
    /// comment a zip can carry.
    private static func findEndOfCentralDirectory(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 22 else { return nil }
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        var offset = bytes.count - 22
        while offset >= lowest {
            if u32(bytes, offset) == 0x0605_4b50 && offset + 22 + Int(u16(bytes, offset + 20)) <= bytes.count {
                return offset
            }
            offset -= 1
        }
        return nil
    }

    // Little-endian reads; callers have checked the offsets.
    private static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 {
        UInt16(b[at]) | UInt16(b[at + 1]) << 8
    }
    private static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(u16(b, at)) | UInt32(u16(b, at + 2)) << 16
    }
    private static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32
    }
}
