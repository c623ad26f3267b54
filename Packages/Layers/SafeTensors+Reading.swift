#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// The element types the reader converts to Float32, by their safetensors names.
enum SafeTensorsElementType: String {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f64 = "F64"

    /// Bytes per element.
    var size: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .f64: 8
        }
    }

    /// The format's other dtypes (as of safetensors 0.8): known, so a file holding them is
    /// well formed, but not read.
    static let unreadNames: Set<String> = [
        "BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "C64",
        "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F4", "F6_E2M3", "F6_E3M2",
    ]
}

/// One tensor as the header describes it, checked on its own (not yet against the others).
struct SafeTensorsEntry {
    var name: String
    var type: SafeTensorsElementType
    var shape: [Int]
    var count: Int
    /// Byte range in the data section.
    var begin: Int
    var end: Int
}

extension SafeTensors {
    /// Decodes a file of `size` bytes whose bytes `read(offset, count, destination)` copies out.
    ///
    /// Every length and range is checked against `size` before anything is allocated for it:
    /// the header buffer is at most `min(size, maximumHeaderSize)` bytes, and the tensors'
    /// byte ranges tile the data section exactly, so their elements cannot outgrow the file.
    static func decode(size: Int, origin: String?,
                       read: (_ offset: Int, _ count: Int, _ destination: UnsafeMutableRawPointer) throws -> Void)
        throws -> (tensors: [String: Tensor], metadata: [String: String])
    {
        let what = origin == nil ? "the buffer" : "the file"
        guard size >= 8 else {
            throw SafeTensorsError(.truncated, path: origin,
                                   "\(what) is \(size) bytes, too short for the 8-byte header length")
        }
        var rawLength: UInt64 = 0
        try withUnsafeMutableBytes(of: &rawLength) { try read(0, 8, $0.baseAddress!) }
        let headerLength = UInt64(littleEndian: rawLength)
        guard headerLength <= UInt64(maximumHeaderSize) else {
            throw SafeTensorsError(.headerTooLarge, path: origin,
                                   "the header length is \(headerLength) bytes, over the limit of \(maximumHeaderSize)")
        }
        let n = Int(headerLength)
        guard n <= size - 8 else {
            throw SafeTensorsError(.truncated, path: origin,
                                   "the header length \(n) reaches past the end of \(what): the header would end at byte \(8 + n), \(what) has \(size) bytes")
        }
        var header = [UInt8](repeating: 0, count: n)
        if n > 0 { try header.withUnsafeMutableBytes { try read(8, n, $0.baseAddress!) } }
        let dataStart = 8 + n
        let dataSize = size - dataStart
        let (entries, metadata) = try header.withUnsafeBytes { try parseHeader($0, origin: origin) }
        try checkRanges(entries, dataSize: dataSize, origin: origin)

        var tensors: [String: Tensor] = [:]
        tensors.reserveCapacity(entries.count)
        var scratch: [UInt8] = []
        for entry in entries {
            tensors[entry.name] = try Tensor(shape: entry.shape) { elements in
                guard entry.count > 0 else { return }
                if entry.type == .f32 {
                    try read(dataStart + entry.begin, entry.count * 4, UnsafeMutableRawPointer(elements.baseAddress!))
                    #if _endian(big)
                    for i in elements.indices { elements[i] = Float(bitPattern: UInt32(littleEndian: elements[i].bitPattern)) }
                    #endif
                    return
                }
                // Converted in pieces of at most 1 MiB, so the scratch stays small.
                let perPiece = (1 << 20) / entry.type.size
                if scratch.count < min(entry.count, perPiece) * entry.type.size {
                    scratch = [UInt8](repeating: 0, count: min(entry.count, perPiece) * entry.type.size)
                }
                var start = 0
                while start < entry.count {
                    let n = min(perPiece, entry.count - start)
                    try scratch.withUnsafeMutableBytes { raw in
                        try read(dataStart + entry.begin + start * entry.type.size, n * entry.type.size, raw.baseAddress!)
                        convert(UnsafeRawBufferPointer(raw), from: entry.type,
                                into: UnsafeMutableBufferPointer(rebasing: elements[start..<(start + n)]))
                    }
                    start += n
                }
            }
        }
        return (tensors, metadata)
    }

    /// Converts little-endian elements of `type` to Float32: exactly for F16 and BF16 (every
    /// value, infinities, NaN payloads and subnormals included, has a Float32 equal to it), to
    /// the nearest Float32 for F64 (ties to even, as a C cast rounds; out-of-range values become
    /// infinities).
    static func convert(_ source: UnsafeRawBufferPointer, from type: SafeTensorsElementType,
                        into destination: UnsafeMutableBufferPointer<Float>) {
        switch type {
        case .f32:
            for i in destination.indices {
                destination[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        case .f16:
            for i in destination.indices {
                destination[i] = floatFromHalf(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in destination.indices {
                let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                destination[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        case .f64:
            for i in destination.indices {
                destination[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
            }
        }
    }

    /// The Float32 equal to an IEEE 754 binary16 value given by its bits. Written out rather
    /// than through `Float16`, which Swift does not offer on every platform we build for.
    static func floatFromHalf(_ bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa × 2⁻²⁴, exact in Float32.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:
            // Infinity or NaN, keeping the payload.
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        default:
            return Float(bitPattern: sign | (exponent + 127 - 15) << 23 | mantissa << 13)
        }
    }

    /// Parses and checks the header: JSON syntax, the shape of every entry, dtypes, and each
    /// tensor's byte count against its shape. Entries come back in header order.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer, origin: String?) throws
        -> (entries: [SafeTensorsEntry], metadata: [String: String])
    {
        let json: HeaderJSON
        do throws(HeaderJSONError) {
            json = try HeaderJSONParser.parse(bytes)
        } catch {
            switch error {
            case .syntax(let message, let offset):
                throw SafeTensorsError(.invalidJSON, path: origin, "the header is not valid JSON: \(message) (header byte \(offset))")
            case .duplicateKey(let key, let context, let offset):
                throw SafeTensorsError(.duplicateKey, path: origin,
                                       "the key \"\(key)\" appears twice in \(context) (header byte \(offset)); names must be unique")
            }
        }
        guard case .object(let members) = json else {
            throw SafeTensorsError(.invalidHeader, path: origin, "the header is \(json.kindDescription), not a JSON object")
        }
        func invalid(_ message: String) -> SafeTensorsError {
            SafeTensorsError(.invalidHeader, path: origin, message)
        }

        var entries: [SafeTensorsEntry] = []
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                switch value {
                case .null: continue
                case .object(let pairs):
                    for (key, item) in pairs {
                        guard case .string(let text) = item else {
                            throw invalid("\"__metadata__\" must map strings to strings; \"\(key)\" is \(item.kindDescription)")
                        }
                        metadata[key] = text
                    }
                default:
                    throw invalid("\"__metadata__\" must be an object of strings, found \(value.kindDescription)")
                }
                continue
            }
            guard case .object(let fields) = value else {
                throw invalid("tensor \"\(name)\" must be an object with dtype, shape and data_offsets, found \(value.kindDescription)")
            }
            func field(_ key: String) throws -> HeaderJSON {
                guard let found = fields.first(where: { $0.key == key }) else {
                    throw invalid("tensor \"\(name)\" has no \"\(key)\"")
                }
                return found.value
            }
            guard case .string(let dtype) = try field("dtype") else {
                throw invalid("tensor \"\(name)\": \"dtype\" must be a string, found \(try field("dtype").kindDescription)")
            }
            let shapeValue = try field("shape")
            guard let shape = nonNegativeIntegers(shapeValue) else {
                throw invalid("tensor \"\(name)\": \"shape\" must be an array of non-negative integers, found \(describeIntegers(shapeValue))")
            }
            let offsetsValue = try field("data_offsets")
            guard let offsets = nonNegativeIntegers(offsetsValue), offsets.count == 2 else {
                throw invalid("tensor \"\(name)\": \"data_offsets\" must be two non-negative integers [begin, end], found \(describeIntegers(offsetsValue))")
            }
            guard let type = SafeTensorsElementType(rawValue: dtype) else {
                if SafeTensorsElementType.unreadNames.contains(dtype) {
                    throw SafeTensorsError(.unsupportedDType, path: origin,
                                           "tensor \"\(name)\" has dtype \(dtype), which Neurite does not read (it reads F32, F16, BF16 and F64)")
                }
                throw SafeTensorsError(.unknownDType, path: origin, "tensor \"\(name)\" has dtype \"\(dtype)\", which is not a safetensors dtype")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin <= end else {
                throw SafeTensorsError(.invalidOffsets, path: origin,
                                       "tensor \"\(name)\": data_offsets [\(begin), \(end)] begin after they end")
            }
            var count = 1
            var overflow = false
            for extent in shape where !overflow {
                (count, overflow) = count.multipliedReportingOverflow(by: extent)
            }
            let (byteCount, byteOverflow) = count.multipliedReportingOverflow(by: type.size)
            guard !overflow, !byteOverflow else {
                throw SafeTensorsError(.shapeMismatch, path: origin,
                                       "tensor \"\(name)\": shape \(shape) of \(dtype) has more bytes than a machine can address")
            }
            guard byteCount == end - begin else {
                throw SafeTensorsError(.shapeMismatch, path: origin,
                                       "tensor \"\(name)\": shape \(shape) of \(dtype) needs \(byteCount) bytes, but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
            entries.append(SafeTensorsEntry(name: name, type: type, shape: shape, count: count, begin: begin, end: end))
        }
        return (entries, metadata)
    }

    /// The integers of a JSON array of non-negative integers that fit in `Int`, or nil.
    private static func nonNegativeIntegers(_ value: HeaderJSON) -> [Int]? {
        guard case .array(let elements) = value else { return nil }
        var result: [Int] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard case .number(let text) = element, let n = Int(text), n >= 0, text.first != "-" else { return nil }
            result.append(n)
        }
        return result
    }

    /// What is wrong with a value that should be an array of non-negative integers.
    private static func describeIntegers(_ value: HeaderJSON) -> String {
        guard case .array(let elements) = value else { return value.kindDescription }
        for element in elements {
            guard case .number(let text) = element else { return "an array holding \(element.kindDescription)" }
            if Int(text) == nil || text.first == "-" {
                let tooLarge = text.allSatisfy(\.isASCII) && text.allSatisfy(\.isNumber)
                return "an array holding the number \(text)" + (tooLarge ? " (too large)" : "")
            }
        }
        return "an array of \(elements.count) integers"
    }

    /// Checks that the byte ranges tile the data section: each within it, none overlapping,
    /// no bytes between them or after the last (empty tensors may sit at any boundary).
    static func checkRanges(_ entries: [SafeTensorsEntry], dataSize: Int, origin: String?) throws {
        for entry in entries where entry.end > dataSize {
            throw SafeTensorsError(.outOfRange, path: origin,
                                   "tensor \"\(entry.name)\": data_offsets [\(entry.begin), \(entry.end)] reach beyond the data section, which holds \(dataSize) bytes")
        }
        let order = entries.indices.sorted {
            (entries[$0].begin, entries[$0].end, entries[$0].name) < (entries[$1].begin, entries[$1].end, entries[$1].name)
        }
        var covered = 0
        var previous: SafeTensorsEntry?
        for index in order {
            let entry = entries[index]
            if entry.begin < covered, let previous {
                throw SafeTensorsError(.overlap, path: origin,
                                       "the bytes of tensor \"\(entry.name)\" [\(entry.begin), \(entry.end)) overlap those of tensor \"\(previous.name)\" [\(previous.begin), \(previous.end))")
            }
            if entry.begin > covered {
                let place = previous.map { "between tensors \"\($0.name)\" and \"\(entry.name)\"" } ?? "before tensor \"\(entry.name)\""
                throw SafeTensorsError(.hole, path: origin,
                                       "bytes [\(covered), \(entry.begin)) of the data section, \(place), belong to no tensor")
            }
            covered = entry.end
            previous = entry
        }
        if covered < dataSize {
            let after = previous.map { "after the end of the last tensor, \"\($0.name)\"" } ?? "though the header lists no tensor"
            throw SafeTensorsError(.trailingBytes, path: origin,
                                   "\(dataSize - covered) bytes follow in the data section \(after) (it ends at \(covered) of \(dataSize))")
        }
    }
}

/// An open safetensors file, read with positioned reads.
struct SafeTensorsFile {
    let fd: Int32
    let path: String
    /// The size when it was opened; reads never go past it.
    let size: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            let reason = code == ENOENT ? "no such file" : "cannot open: \(String(cString: strerror(code)))"
            throw SafeTensorsError(.io, path: path, reason)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            posixClose(fd)
            throw SafeTensorsError(.io, path: path, "cannot stat: \(reason)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            posixClose(fd)
            let what = (info.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file"
            throw SafeTensorsError(.io, path: path, "is \(what), not a safetensors file")
        }
        self.fd = fd
        self.path = path
        self.size = Int(info.st_size)
    }

    /// Reads exactly `count` bytes at `offset`.
    func read(at offset: Int, count: Int, into destination: UnsafeMutableRawPointer) throws {
        var done = 0
        while done < count {
            let n = pread(fd, destination + done, min(count - done, 1 << 30), off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError(.io, path: path, "read failed at byte offset \(offset + done): \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                throw SafeTensorsError(.io, path: path,
                                       "the file ended at byte \(offset + done), though it had \(size) bytes when opened (was it changed while being read?)")
            }
            done += n
        }
    }

    func close() {
        posixClose(fd)
    }
}

/// `close(2)`, named apart from `SafeTensorsFile.close`.
@inline(__always)
private func posixClose(_ fd: Int32) {
    _ = close(fd)
}
