/// A JSON value as the safetensors header parser sees it. Objects keep their keys in file
/// order (a header's order is meaningless, but error messages then follow the file).
indirect enum HeaderJSON {
    case object([(key: String, value: HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    /// A number, as its text in the file (`"12"`, `"-1.5e3"`); callers convert what they need.
    case number(String)
    case bool(Bool)
    case null

    /// What the value is, for error messages: `"a string"`, `"the number 2.5"`, ...
    var kindDescription: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string(let s): "the string \"\(s.count > 40 ? String(s.prefix(40)) + "..." : s)\""
        case .number(let text): "the number \(text)"
        case .bool(let b): "\(b)"
        case .null: "null"
        }
    }
}

/// Why a header is not acceptable JSON.
enum HeaderJSONError: Error {
    /// Not JSON (or not UTF-8) at `offset`, a byte position in the header.
    case syntax(String, offset: Int)
    /// An object names `key` twice; `context` says which object.
    case duplicateKey(String, context: String, offset: Int)
}

/// A strict JSON parser (RFC 8259) for safetensors headers, over bytes that come from a file.
///
/// Strict where the format needs it: an object with the same key twice is an error (the
/// safetensors specification disallows duplicates, and generic parsers silently keep one of
/// them), strings must be valid UTF-8 without raw control characters, escapes must be complete
/// (no lone surrogates), nothing but white space may follow the top-level value (headers are
/// padded with spaces), and nesting is limited to 128 levels so that a hostile header cannot
/// exhaust the stack. Cost: one pass over the header; memory proportional to its size.
struct HeaderJSONParser {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private static let maximumDepth = 128

    /// Parses the whole of `bytes` as one JSON value followed only by white space.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(HeaderJSONError) -> HeaderJSON {
        var parser = HeaderJSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0, context: "the header")
        parser.skipWhitespace()
        if parser.position < bytes.count {
            throw .syntax("unexpected \(parser.describeByte(at: parser.position)) after the end of the JSON object "
                          + "(only spaces may pad a header)", offset: parser.position)
        }
        return value
    }

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    private var atEnd: Bool { position >= bytes.count }

    private func describeByte(at offset: Int) -> String {
        guard offset < bytes.count else { return "end of the header" }
        let b = bytes[offset]
        if b >= 0x21 && b < 0x7F { return "character '\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(HeaderJSONError) {
        guard !atEnd, bytes[position] == byte else {
            throw .syntax("expected \(what), found \(describeByte(at: position))", offset: position)
        }
        position += 1
    }

    private mutating func parseValue(depth: Int, context: String) throws(HeaderJSONError) -> HeaderJSON {
        guard !atEnd else { throw .syntax("expected a value, found the end of the header", offset: position) }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1, context: context)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1, context: context)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw .syntax("expected a value, found \(describeByte(at: position))", offset: position)
        }
    }

    private mutating func parseObject(depth: Int, context: String) throws(HeaderJSONError) -> HeaderJSON {
        guard depth <= HeaderJSONParser.maximumDepth else {
            throw .syntax("nesting is deeper than \(HeaderJSONParser.maximumDepth) levels", offset: position)
        }
        position += 1  // {
        var members: [(key: String, value: HeaderJSON)] = []
        var seen = Set<String>()
        skipWhitespace()
        if !atEnd && bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            let keyOffset = position
            guard !atEnd, bytes[position] == UInt8(ascii: "\"") else {
                throw .syntax("expected a key in double quotes, found \(describeByte(at: position))", offset: position)
            }
            let key = try parseString()
            guard seen.insert(key).inserted else {
                throw .duplicateKey(key, context: context, offset: keyOffset)
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after a key")
            skipWhitespace()
            let inner = depth == 1 ? "the entry \"\(key)\"" : context
            members.append((key, try parseValue(depth: depth, context: inner)))
            skipWhitespace()
            guard !atEnd else { throw .syntax("unterminated object: expected ',' or '}', found the end of the header", offset: position) }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}' in an object")
            return .object(members)
        }
    }

    private mutating func parseArray(depth: Int, context: String) throws(HeaderJSONError) -> HeaderJSON {
        guard depth <= HeaderJSONParser.maximumDepth else {
            throw .syntax("nesting is deeper than \(HeaderJSONParser.maximumDepth) levels", offset: position)
        }
        position += 1  // [
        var elements: [HeaderJSON] = []
        skipWhitespace()
        if !atEnd && bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth, context: context))
            skipWhitespace()
            guard !atEnd else { throw .syntax("unterminated array: expected ',' or ']', found the end of the header", offset: position) }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            try expect(UInt8(ascii: "]"), "',' or ']' in an array")
            return .array(elements)
        }
    }

    private mutating func parseLiteral(_ word: StaticString) throws(HeaderJSONError) {
        let start = position
        let count = word.utf8CodeUnitCount
        let matches = bytes.count - position >= count
            && (0..<count).allSatisfy { bytes[position + $0] == word.utf8Start[$0] }
        guard matches else { throw .syntax("invalid literal (expected \(word))", offset: start) }
        position += count
    }

    /// The text of a number in JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func parseNumber() throws(HeaderJSONError) -> String {
        let start = position
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard !atEnd, isDigit(bytes[position]) else { throw .syntax("invalid number: expected a digit", offset: position) }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if !atEnd && isDigit(bytes[position]) { throw .syntax("invalid number: leading zero", offset: start) }
        } else {
            while !atEnd && isDigit(bytes[position]) { position += 1 }
        }
        if !atEnd && bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard !atEnd, isDigit(bytes[position]) else { throw .syntax("invalid number: expected a digit after '.'", offset: position) }
            while !atEnd && isDigit(bytes[position]) { position += 1 }
        }
        if !atEnd && (bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E")) {
            position += 1
            if !atEnd && (bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")) { position += 1 }
            guard !atEnd, isDigit(bytes[position]) else { throw .syntax("invalid number: expected a digit in the exponent", offset: position) }
            while !atEnd && isDigit(bytes[position]) { position += 1 }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    /// A string starting at the opening quote; validates UTF-8 and decodes escapes.
    private mutating func parseString() throws(HeaderJSONError) -> String {
        position += 1  // "
        var utf8: [UInt8] = []
        var segmentStart = position
        func appendSegment(_ end: Int) throws(HeaderJSONError) {
            guard end > segmentStart else { return }
            let segment = UnsafeRawBufferPointer(rebasing: bytes[segmentStart..<end])
            if segment.contains(where: { $0 >= 0x80 }) {
                guard String(validating: segment, as: UTF8.self) != nil else {
                    throw .syntax("a string is not valid UTF-8", offset: segmentStart)
                }
            }
            utf8.append(contentsOf: segment)
        }
        while true {
            guard !atEnd else { throw .syntax("unterminated string", offset: position) }
            let b = bytes[position]
            if b == UInt8(ascii: "\"") {
                try appendSegment(position)
                position += 1
                return String(decoding: utf8, as: UTF8.self)
            }
            if b < 0x20 {
                throw .syntax("raw control character 0x\(String(b, radix: 16, uppercase: true)) in a string (it must be escaped)", offset: position)
            }
            if b != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            try appendSegment(position)
            let escapeOffset = position
            position += 1
            guard !atEnd else { throw .syntax("unterminated escape in a string", offset: escapeOffset) }
            let e = bytes[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = UInt32(try parseHex4())
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    // A leading surrogate must be followed by an escaped trailing one.
                    guard bytes.count - position >= 6, bytes[position] == UInt8(ascii: "\\"),
                          bytes[position + 1] == UInt8(ascii: "u") else {
                        throw .syntax("lone leading surrogate in a \\u escape", offset: escapeOffset)
                    }
                    position += 2
                    let low = UInt32(try parseHex4())
                    guard low >= 0xDC00 && low < 0xE000 else {
                        throw .syntax("a leading surrogate is not followed by a trailing one", offset: escapeOffset)
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    throw .syntax("lone trailing surrogate in a \\u escape", offset: escapeOffset)
                }
                utf8.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
            default:
                throw .syntax("invalid escape \\\(Character(Unicode.Scalar(e))) in a string", offset: escapeOffset)
            }
            segmentStart = position
        }
    }

    private mutating func parseHex4() throws(HeaderJSONError) -> UInt16 {
        guard bytes.count - position >= 4 else { throw .syntax("incomplete \\u escape", offset: position) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let b = bytes[position]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw .syntax("invalid hexadecimal digit in a \\u escape", offset: position)
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }
}

/// Appends `string` as a JSON string literal, escaped as serde_json (the reference writer)
/// escapes: `"` and `\`, the short escapes `\b \f \n \r \t`, other control characters as
/// `\u00xx`; everything else, non-ASCII included, as its UTF-8 bytes.
func appendJSONString(_ string: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for b in string.utf8 {
        switch b {
        case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
        case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
        case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: Array("\\u00".utf8))
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0xF)])
        default: out.append(b)
        }
    }
    out.append(UInt8(ascii: "\""))
}
