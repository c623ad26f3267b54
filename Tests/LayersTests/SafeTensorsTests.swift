import Foundation
import Layers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// The safetensors reader and writer: exact bytes, round trips, interoperation with Python's
/// `safetensors` package, and a typed error for every way a file can be malformed.
final class SafeTensorsTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("neurite-safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    // MARK: - Round trips

    /// Tensors of every awkward kind, with values whose bits must survive exactly.
    private func awkwardTensors() -> [String: Tensor] {
        let specials: [Float] = [0, -0.0, 1, -1.5, .infinity, -.infinity, .leastNonzeroMagnitude,
                                 .greatestFiniteMagnitude, .ulpOfOne, 0.1, -Float.leastNormalMagnitude / 4, 3.1415927]
        return [
            "encoder.dense_1.kernel": Tensor(shape: [3, 4], scalars: specials),
            "encoder.dense_1.bias": Tensor([0.5, -0.25, 8]),
            "scale": Tensor(scalar: 2.75),
            "empty": Tensor(shape: [0], scalars: []),
            "empty.matrix": Tensor(shape: [2, 0], scalars: []),
            "conv.kernel": Tensor(shape: [3, 3, 2, 4], scalars: randomScalars(72, seed: 11)),
            // Spans more than the writer's 1 MiB buffer.
            "large": Tensor(shape: [300_001], scalars: randomScalars(300_001, seed: 12)),
            "poids.\u{E9}l\u{E8}ve.\u{1F600}": Tensor([42]),
            "we\"ird\\name\n\tctl\u{1}": Tensor([-7, 7]),
            "": Tensor([1e30]),
        ]
    }

    private func assertBitIdentical(_ actual: [String: Tensor], _ expected: [String: Tensor],
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(actual.keys), Set(expected.keys), file: file, line: line)
        for (name, tensor) in expected {
            guard let got = actual[name] else { continue }
            XCTAssertEqual(got.shape, tensor.shape, "shape of \(name)", file: file, line: line)
            XCTAssertEqual(got.scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern), "bits of \(name)", file: file, line: line)
        }
    }

    func testFileRoundTripKeepsEveryTensorAndMetadataExactly() throws {
        let tensors = awkwardTensors()
        let metadata = ["format": "pt", "epoch": "12", "note": "quotes \" and \\ and \u{E9}", "": "empty key"]
        let file = path("model.safetensors")
        try SafeTensors.write(tensors, metadata: metadata, to: file)
        let (read, readMetadata) = try SafeTensors.read(contentsOf: file)
        assertBitIdentical(read, tensors)
        XCTAssertEqual(read["scale"]?.rank, 0)
        XCTAssertEqual(readMetadata, metadata)
        // The file is exactly what `encode` gives, and decodes the same way.
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        XCTAssertEqual(written, SafeTensors.encode(tensors, metadata: metadata))
        let decoded = try SafeTensors.decode(written)
        assertBitIdentical(decoded.tensors, tensors)
        XCTAssertEqual(decoded.metadata, metadata)
        // The header is padded to 8 bytes, so every tensor starts 8-byte aligned.
        XCTAssertEqual(headerLength(written) % 8, 0)
    }

    func testEmptyInputsRoundTrip() throws {
        let bytes = SafeTensors.encode([:])
        XCTAssertEqual(bytes, fileBytes(header: "{}      "))
        let (tensors, metadata) = try SafeTensors.decode(bytes)
        XCTAssertTrue(tensors.isEmpty)
        XCTAssertTrue(metadata.isEmpty)
        let onlyMetadata = try SafeTensors.decode(SafeTensors.encode([:], metadata: ["a": "b"]))
        XCTAssertEqual(onlyMetadata.metadata, ["a": "b"])
    }

    func testDecodeAcceptsUnalignedBytesFromData() throws {
        let tensors = ["w": Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])]
        // One byte in front, so the file's bytes start at an odd address.
        var shifted = Data([0xAA])
        shifted.append(contentsOf: SafeTensors.encode(tensors))
        let decoded = try shifted.dropFirst().withUnsafeBytes { try SafeTensors.decode($0) }
        assertBitIdentical(decoded.tensors, tensors)
    }

    // MARK: - Exact bytes

    /// A little-endian length, the header text, then `data`; `length` overrides the length.
    private func fileBytes(header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        let headerBytes = Array(header.utf8)
        let n = length ?? UInt64(headerBytes.count)
        return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + headerBytes + data
    }

    private func headerLength(_ bytes: [UInt8]) -> Int {
        (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
    }

    /// Little-endian bytes of Float32 values.
    private func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt32($0))) } }
    }

    func testTinyFileMatchesHandAssembledBytes() {
        let bytes = SafeTensors.encode(
            ["b.bias": Tensor([1, -2]), "a": Tensor(scalar: 0.5)],
            metadata: ["z": "last", "format": "pt"])
        // "__metadata__" first with its keys sorted, then the tensors sorted by name; compact JSON
        // with keys dtype, shape, data_offsets; padded with spaces to a multiple of 8.
        let json = #"{"__metadata__":{"format":"pt","z":"last"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b.bias":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        XCTAssertEqual(json.utf8.count, 154)
        let expected: [UInt8] = [160, 0, 0, 0, 0, 0, 0, 0] + Array(json.utf8) + [0x20, 0x20, 0x20, 0x20, 0x20, 0x20]
            + [0x00, 0x00, 0x00, 0x3F]     // 0.5
            + [0x00, 0x00, 0x80, 0x3F]     // 1
            + [0x00, 0x00, 0x00, 0xC0]     // -2
        XCTAssertEqual(bytes, expected)
    }

    /// The byte layouts the format's reference implementation (the Rust `safetensors` crate)
    /// checks its own writer against: headers padded with spaces, or not at all when they
    /// already end on a multiple of 8.
    func testEncodeMatchesTheReferenceWritersLayouts() {
        let sixFloats = f32Bytes([0, 1, 2, 3, 4, 5])
        XCTAssertEqual(SafeTensors.encode(["attn.0": Tensor(shape: [1, 2, 3], scalars: [0, 1, 2, 3, 4, 5])]),
                       fileBytes(header: #"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#, data: sixFloats))
        XCTAssertEqual(SafeTensors.encode(["attn0": Tensor(shape: [1, 1, 2, 3], scalars: [0, 1, 2, 3, 4, 5])]),
                       fileBytes(header: #"{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       "#, data: sixFloats))
        XCTAssertEqual(SafeTensors.encode([:], metadata: ["framework": "pt"]),
                       fileBytes(header: #"{"__metadata__":{"framework":"pt"}}     "#))
    }

    func testNamesAreEscapedAsJSON() throws {
        let bytes = SafeTensors.encode(["a\"b\\c\nd\u{1}\u{E9}": Tensor(scalar: 1)])
        let header = String(decoding: bytes[8..<(8 + headerLength(bytes))], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix(#"{"a\"b\\c\nd\u0001é":{"#), header)
    }

    // MARK: - Reading other dtypes

    func testReadsEveryHalfPrecisionValueExactly() throws {
        // Every bit pattern, nine times over: 1.1 MiB of F16 data, converted in more than one piece.
        let repeated = (0..<9).flatMap { _ in 0...UInt16.max }
        let data = repeated.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let bytes = fileBytes(header: #"{"h":{"dtype":"F16","shape":[\#(repeated.count)],"data_offsets":[0,\#(data.count)]}}"#, data: data)
        let h = try XCTUnwrap(try SafeTensors.decode(bytes).tensors["h"])
        XCTAssertEqual(h.shape, [repeated.count])
        let values = h.scalars
        for (i, bits) in repeated.enumerated() {
            let exponent = (bits >> 10) & 0x1F, mantissa = UInt32(bits & 0x3FF)
            let sign: Float = bits & 0x8000 != 0 ? -1 : 1
            // The value by its definition: (−1)^s × 2^(e−15) × (1 + m/1024), subnormals 2^−14 × m/1024.
            let expected: Float
            switch exponent {
            case 0: expected = sign * Float(mantissa) * 0x1p-24
            case 31: expected = mantissa == 0 ? sign * .infinity : .nan
            default: expected = sign * Float(sign: .plus, exponent: Int(exponent) - 15, significand: 1 + Float(mantissa) / 1024)
            }
            if expected.isNaN {
                XCTAssertTrue(values[i].isNaN, "F16 bits \(String(bits, radix: 16)) gave \(values[i])")
            } else if values[i].bitPattern != expected.bitPattern {
                XCTFail("F16 bits \(String(bits, radix: 16)) gave \(values[i]), expected \(expected)")
                return
            }
        }
    }

    func testReadsHandAssembledBFloat16() throws {
        // bfloat16 is the top half of a Float32: 1, -3, 0.15625, infinity, a subnormal, -0.
        let bits: [UInt16] = [0x3F80, 0xC040, 0x3E20, 0x7F80, 0x0001, 0x8000]
        let data = bits.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let bytes = fileBytes(header: #"{"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}"#, data: data)
        let b = try XCTUnwrap(try SafeTensors.decode(bytes).tensors["b"])
        XCTAssertEqual(b.shape, [2, 3])
        XCTAssertEqual(b.scalars.map(\.bitPattern), [1, -3, 0.15625, .infinity, Float(bitPattern: 0x0001_0000), -0.0].map(\.bitPattern))
    }

    func testReadsDoublesRoundedToNearestFloat() throws {
        let doubles: [Double] = [0.1, 1 + 0x1p-24, 1 + 3 * 0x1p-24, 1e300, -1e-300, -2.5, .nan]
        let data = doubles.flatMap { d in (0..<8).map { UInt8(truncatingIfNeeded: d.bitPattern >> (8 * UInt64($0))) } }
        // Padded with three spaces, so the data section starts at an address that is not 8-byte aligned.
        let header = #"{"d":{"dtype":"F64","shape":[7],"data_offsets":[0,56]},"f":{"dtype":"F32","shape":[1],"data_offsets":[56,60]}}"#
        let bytes = fileBytes(header: header + "   ", data: data + f32Bytes([9]))
        let tensors = try SafeTensors.decode(bytes).tensors
        let d = try XCTUnwrap(tensors["d"]).scalars
        XCTAssertEqual(Array(d[0..<6]).map(\.bitPattern),
                       [Float(0.1), 1, 1 + 0x1p-22, .infinity, -0.0, -2.5].map(\.bitPattern), "ties go to even")
        XCTAssertTrue(d[6].isNaN)
        XCTAssertEqual(tensors["f"]?.scalars, [9])
    }

    func testReadsHeadersInAnyOrderWithWhitespaceEscapesAndUnknownFields() throws {
        // Data order differs from header order, the header is unpadded JSON with white space
        // and escapes, and an entry carries a field the reader does not know.
        let header = """
        { "second" : {"data_offsets":[8, 12], "shape":[1], "dtype":"F32", "extra": {"x": [true, null, -1.5e3]}},
          "fi\\u0072st\\ud83d\\ude00\\/" : {"dtype":"F32","shape":[2],"data_offsets":[0,8]},
          "__metadata__": {"k\\n": "v\\u00e9"}, "zero": {"dtype":"F16","shape":[0, 5],"data_offsets":[12,12]}}\t\r
        """
        let bytes = fileBytes(header: header, data: f32Bytes([1, 2, 3]))
        let (tensors, metadata) = try SafeTensors.decode(bytes)
        XCTAssertEqual(tensors["first\u{1F600}/"]?.scalars, [1, 2])
        XCTAssertEqual(tensors["second"]?.scalars, [3])
        XCTAssertEqual(tensors["zero"]?.shape, [0, 5])
        XCTAssertEqual(metadata, ["k\n": "v\u{E9}"])
    }

    // MARK: - Malformed files

    /// Decodes `bytes` in memory and from a file, expecting a `SafeTensorsError` of `kind` whose
    /// message contains every fragment, and whose file error names the file.
    private func assertRejects(_ bytes: [UInt8], _ kind: SafeTensorsError.Kind, _ fragments: String...,
                               file: StaticString = #filePath, line: UInt = #line) {
        func check(_ error: Error, path expectedPath: String?) {
            guard let error = error as? SafeTensorsError else {
                return XCTFail("expected a SafeTensorsError, got \(type(of: error)): \(error)", file: file, line: line)
            }
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            XCTAssertEqual(error.path, expectedPath, file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(error.message.contains(fragment), "\"\(error.message)\" does not mention \"\(fragment)\"", file: file, line: line)
            }
            if let expectedPath {
                XCTAssertTrue(error.description.hasPrefix(expectedPath + ": "), error.description, file: file, line: line)
            }
        }
        XCTAssertThrowsError(try SafeTensors.decode(bytes), file: file, line: line) { check($0, path: nil) }
        let filePath = path("corrupt-\(line).safetensors")
        XCTAssertTrue(FileManager.default.createFile(atPath: filePath, contents: Data(bytes)), file: file, line: line)
        XCTAssertThrowsError(try SafeTensors.read(contentsOf: filePath), file: file, line: line) { check($0, path: filePath) }
    }

    func testRejectsFilesTruncatedAnywhere() {
        let whole = SafeTensors.encode(["a": Tensor([1, 2, 3]), "b": Tensor(shape: [2, 2], scalars: [4, 5, 6, 7])])
        let n = headerLength(whole)
        XCTAssertEqual(whole.count, 8 + n + 28)
        for cut in [0, 1, 7] {
            assertRejects(Array(whole[..<cut]), .truncated, "\(cut) bytes", "8-byte header length")
        }
        for cut in [8, 9, 8 + n / 2, 8 + n - 1] {
            assertRejects(Array(whole[..<cut]), .truncated, "header length \(n)", "has \(cut) bytes")
        }
        // With the header complete, a tensor's range runs past the shortened data.
        assertRejects(Array(whole[..<(8 + n)]), .outOfRange, "tensor \"a\"", "[0, 12]", "holds 0 bytes")
        for cut in [8 + n + 12, 8 + n + 20, whole.count - 1] {
            assertRejects(Array(whole[..<cut]), .outOfRange, "tensor \"b\"", "[12, 28]", "holds \(cut - 8 - n) bytes")
        }
    }

    func testRejectsHugeHeaderLengthsWithoutAllocatingThem() {
        assertRejects(fileBytes(header: "{}      ", length: UInt64.max), .headerTooLarge, "\(UInt64.max) bytes", "limit of 100000000")
        assertRejects(fileBytes(header: "{}      ", length: 100_000_001), .headerTooLarge, "100000001")
        // Within the limit but past the end of a 16-byte file: refused before a buffer is made.
        assertRejects(fileBytes(header: "{}      ", length: 99_999_999), .truncated, "header length 99999999", "has 16 bytes")
    }

    func testRejectsHeadersThatAreNotJSON() {
        let entry = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let four = f32Bytes([1])
        assertRejects(fileBytes(header: "", data: four), .invalidJSON, "end of the header")
        assertRejects(fileBytes(header: "not json", data: four), .invalidJSON, "invalid literal")
        assertRejects(fileBytes(header: "<tensors/>", data: four), .invalidJSON, "expected a value, found character '<'")
        assertRejects(fileBytes(header: String(entry.dropLast()), data: four), .invalidJSON, "unterminated object")
        assertRejects(fileBytes(header: entry + "x", data: four), .invalidJSON, "character 'x' after the end")
        assertRejects(fileBytes(header: entry + "\0\0", data: four), .invalidJSON, "byte 0x0 after the end")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}"#, data: four), .invalidJSON, "leading zero")
        assertRejects(fileBytes(header: #"{"a\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: four), .invalidJSON, "surrogate")
        assertRejects(fileBytes(header: "{\"a\u{1}\":1}"), .invalidJSON, "control character")
        assertRejects(fileBytes(header: "{\"a\":1,}"), .invalidJSON, "expected a key")
        assertRejects(fileBytes(header: String(repeating: "[", count: 200) + String(repeating: "]", count: 200)),
                      .invalidJSON, "deeper than 128")
        // Bytes that are not UTF-8 inside a string.
        var latin1 = Array(#"{"caf"#.utf8) + [0xE9] + Array(#"":1}"#.utf8)
        latin1 = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(latin1.count) >> (8 * UInt64($0))) } + latin1
        assertRejects(latin1, .invalidJSON, "not valid UTF-8")
    }

    func testRejectsHeadersThatAreNotSafeTensorsHeaders() {
        let four = f32Bytes([1])
        assertRejects(fileBytes(header: "[1, 2]"), .invalidHeader, "an array, not a JSON object")
        assertRejects(fileBytes(header: #"{"a":[0,4]}"#, data: four), .invalidHeader, "tensor \"a\" must be an object")
        assertRejects(fileBytes(header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: four), .invalidHeader, "tensor \"a\" has no \"dtype\"")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, data: four), .invalidHeader, "has no \"shape\"")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: four), .invalidHeader, "has no \"data_offsets\"")
        assertRejects(fileBytes(header: #"{"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, data: four), .invalidHeader, "\"dtype\" must be a string", "the number 32")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: four), .invalidHeader, "non-negative integers", "-1")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, data: four), .invalidHeader, "the number 1.0")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, data: four), .invalidHeader, "\"shape\"", "the string \"1\"")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#, data: four),
                      .invalidHeader, "(too large)")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, data: four), .invalidHeader, "two non-negative integers", "3 integers")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: four), .invalidHeader, "\"data_offsets\"")
        assertRejects(fileBytes(header: #"{"__metadata__":{"epoch":3}}"#), .invalidHeader, "\"epoch\" is the number 3")
        assertRejects(fileBytes(header: #"{"__metadata__":["x"]}"#), .invalidHeader, "\"__metadata__\" must be an object")
    }

    func testRejectsUnknownAndUnreadDTypes() {
        let four = f32Bytes([1])
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}"#, data: four),
                      .unknownDType, "tensor \"a\"", "\"F31\"", "not a safetensors dtype")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, data: four), .unknownDType, "\"f32\"")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#, data: four),
                      .unsupportedDType, "tensor \"a\" has dtype I32", "F32, F16, BF16 and F64")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}"#, data: four), .unsupportedDType, "BOOL")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F8_E4M3FNUZ","shape":[4],"data_offsets":[0,4]}}"#, data: four), .unsupportedDType, "F8_E4M3FNUZ")
    }

    func testRejectsShapesThatDoNotMatchTheirByteRange() {
        let data = f32Bytes([1, 2, 3, 4, 5, 6])
        assertRejects(fileBytes(header: #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, data: Array(data[..<20])),
                      .shapeMismatch, "tensor \"w\"", "shape [2, 3] of F32 needs 24 bytes", "[0, 20] span 20")
        assertRejects(fileBytes(header: #"{"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,24]}}"#, data: data),
                      .shapeMismatch, "F16 needs 12 bytes")
        // An element count past Int.max must not wrap around to a small number.
        assertRejects(fileBytes(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}"#),
                      .shapeMismatch, "more bytes than a machine can address")
        assertRejects(fileBytes(header: #"{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#),
                      .shapeMismatch, "more bytes than a machine can address")
    }

    func testRejectsOffsetsThatOverlapLeaveHolesOrRunPastTheData() {
        let data = f32Bytes([1, 2, 3, 4])
        func header(_ a: (Int, Int), _ b: (Int, Int)) -> String {
            #"{"a":{"dtype":"F32","shape":[\#((a.1 - a.0) / 4)],"data_offsets":[\#(a.0),\#(a.1)]},"b":{"dtype":"F32","shape":[\#((b.1 - b.0) / 4)],"data_offsets":[\#(b.0),\#(b.1)]}}"#
        }
        assertRejects(fileBytes(header: header((0, 8), (4, 16)), data: data), .overlap,
                      "tensor \"b\" [4, 16) overlap those of tensor \"a\" [0, 8)")
        assertRejects(fileBytes(header: header((0, 16), (0, 16)), data: data), .overlap, "\"b\"", "\"a\"")
        assertRejects(fileBytes(header: header((0, 4), (8, 16)), data: data), .hole,
                      "bytes [4, 8)", "between tensors \"a\" and \"b\"")
        assertRejects(fileBytes(header: header((4, 8), (8, 16)), data: data), .hole, "bytes [0, 4)", "before tensor \"a\"")
        assertRejects(fileBytes(header: header((0, 8), (8, 24)), data: data), .outOfRange,
                      "tensor \"b\"", "[8, 24]", "holds 16 bytes")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, data: data),
                      .invalidOffsets, "[8, 4] begin after they end")
        // An empty tensor inside another's bytes overlaps them; at a boundary it is fine.
        assertRejects(fileBytes(header: header((0, 16), (4, 4)), data: data), .overlap, "\"b\"")
        XCTAssertNoThrow(try SafeTensors.decode(fileBytes(header: header((0, 16), (16, 16)), data: data)))
    }

    func testRejectsDuplicateKeys() {
        let data = f32Bytes([1, 2])
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: data),
                      .duplicateKey, "\"a\" appears twice in the header")
        assertRejects(fileBytes(header: #"{"__metadata__":{"k":"1","k":"2"}}"#), .duplicateKey, "\"k\" appears twice in the entry \"__metadata__\"")
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}"#, data: Array(data[..<4])),
                      .duplicateKey, "\"dtype\" appears twice in the entry \"a\"")
        // The same name spelled with an escape is still the same name.
        assertRejects(fileBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: data),
                      .duplicateKey, "\"a\"")
    }

    func testRejectsTrailingBytes() {
        var bytes = SafeTensors.encode(["a": Tensor([1, 2])])
        bytes += [0xDE, 0xAD, 0xBE]
        assertRejects(bytes, .trailingBytes, "3 bytes follow", "last tensor, \"a\"", "ends at 8 of 11")
        assertRejects(fileBytes(header: "{}", data: [0]), .trailingBytes, "1 bytes follow", "lists no tensor")
    }

    // MARK: - Files

    func testReadingMissingFilesAndDirectoriesFailsNamingThem() {
        let missing = path("absent.safetensors")
        XCTAssertThrowsError(try SafeTensors.read(contentsOf: missing)) { error in
            XCTAssertEqual((error as? SafeTensorsError)?.kind, .io)
            XCTAssertEqual("\(error)", "\(missing): no such file")
        }
        XCTAssertThrowsError(try SafeTensors.read(contentsOf: scratch.path)) { error in
            XCTAssertEqual((error as? SafeTensorsError)?.kind, .io)
            XCTAssertTrue("\(error)".contains("is a directory"), "\(error)")
        }
    }

    func testWriteIntoMissingDirectoryFailsLeavingNothingBehind() throws {
        let target = path("missing/sub/model.safetensors")
        XCTAssertThrowsError(try SafeTensors.write(["a": Tensor([1])], to: target)) { error in
            guard let error = error as? SafeTensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.kind, .io)
            XCTAssertEqual(error.path, target)
            XCTAssertTrue(error.message.contains("does not exist"), error.message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("missing")))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [])
    }

    func testFailedWriteRemovesItsTemporaryFileAndKeepsTheOldFile() throws {
        // The destination is a directory: the rename at the end fails after all bytes are written.
        let directory = path("model.safetensors")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        XCTAssertThrowsError(try SafeTensors.write(["a": Tensor([1])], to: directory)) { error in
            XCTAssertEqual((error as? SafeTensorsError)?.kind, .io, "\(error)")
            XCTAssertTrue("\(error)".contains("rename"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["model.safetensors"])

        // Over an existing file, a successful write replaces it whole.
        let file = path("weights.safetensors")
        try SafeTensors.write(["old": Tensor([1, 2, 3])], to: file)
        try SafeTensors.write(["new": Tensor([4])], metadata: ["v": "2"], to: file)
        let (tensors, metadata) = try SafeTensors.read(contentsOf: file)
        XCTAssertEqual(tensors, ["new": Tensor([4])])
        XCTAssertEqual(metadata, ["v": "2"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(),
                       ["model.safetensors", "weights.safetensors"])
    }

    // MARK: - Python's safetensors

    func testPythonSafeTensorsReadsOurFilesExactly() throws {
        let python = try pythonWithSafeTensors()
        let tensors = awkwardTensors()
        let metadata = ["format": "np", "note": "\u{E9}t\u{E9}"]
        let file = path("ours.safetensors")
        try SafeTensors.write(tensors, metadata: metadata, to: file)
        let script = """
        import json, sys
        import numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
        tensors = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="np") as f:
            metadata = f.metadata()
        out = {"metadata": metadata, "tensors": {
            name: {"dtype": str(a.dtype), "shape": list(a.shape), "bits": a.reshape(-1).view(np.uint32).tolist()}
            for name, a in tensors.items()}}
        with open(sys.argv[2], "w", encoding="utf-8") as f:
            json.dump(out, f)
        """
        let output = path("python-view.json")
        try runPython(python, script, [file, output])
        struct View: Decodable {
            struct Entry: Decodable { var dtype: String; var shape: [Int]; var bits: [UInt32] }
            var metadata: [String: String]
            var tensors: [String: Entry]
        }
        let view = try JSONDecoder().decode(View.self, from: Data(contentsOf: URL(fileURLWithPath: output)))
        XCTAssertEqual(view.metadata, metadata)
        XCTAssertEqual(Set(view.tensors.keys), Set(tensors.keys))
        for (name, tensor) in tensors {
            guard let entry = view.tensors[name] else { continue }
            XCTAssertEqual(entry.dtype, "float32", name)
            XCTAssertEqual(entry.shape, tensor.shape, name)
            XCTAssertEqual(entry.bits, tensor.scalars.map(\.bitPattern), name)
        }
    }

    func testWeReadPythonSafeTensorsFilesExactly() throws {
        let python = try pythonWithSafeTensors()
        let script = """
        import json, sys
        import numpy as np
        from safetensors.numpy import save_file
        half = np.array([0, -0.0, 1, -2.5, 65504, 2**-24, 2**-14, 0.1, np.inf, -np.inf, np.nan, 1/3], dtype=np.float16)
        double = np.array([0.1, 1 + 2**-24, 1 + 3 * 2**-24, 1e300, -1e-300, 3.4028235677973366e38, -7.25, np.nan])
        tensors = {
            "layer.0.weight": (np.arange(12, dtype=np.float32).reshape(3, 4) / 7).astype(np.float32),
            "layer.0.half": half.reshape(3, 4),
            "layer.1.double": double.reshape(2, 2, 2),
            "scalar": np.array(3.5, dtype=np.float32),
            "empty": np.zeros((2, 0), dtype=np.float32),
            "empty.half": np.zeros((0,), dtype=np.float16),
        }
        save_file(tensors, sys.argv[1], metadata={"format": "np", "written by": "python"})
        with np.errstate(all="ignore"):
            expected = {name: {"shape": list(a.shape), "bits": a.astype(np.float32).reshape(-1).view(np.uint32).tolist()}
                        for name, a in tensors.items()}
        with open(sys.argv[2], "w") as f:
            json.dump(expected, f)
        """
        let file = path("python.safetensors"), expectedFile = path("expected.json")
        try runPython(python, script, [file, expectedFile])
        struct Entry: Decodable { var shape: [Int]; var bits: [UInt32] }
        let expected = try JSONDecoder().decode([String: Entry].self, from: Data(contentsOf: URL(fileURLWithPath: expectedFile)))
        let (tensors, metadata) = try SafeTensors.read(contentsOf: file)
        XCTAssertEqual(metadata, ["format": "np", "written by": "python"])
        XCTAssertEqual(Set(tensors.keys), Set(expected.keys))
        XCTAssertEqual(expected.count, 6)
        for (name, entry) in expected {
            guard let tensor = tensors[name] else { continue }
            XCTAssertEqual(tensor.shape, entry.shape, name)
            let bits = tensor.scalars.map(\.bitPattern)
            XCTAssertEqual(bits.count, entry.bits.count, name)
            for (i, (got, want)) in zip(bits, entry.bits).enumerated() {
                let gotValue = Float(bitPattern: got), wantValue = Float(bitPattern: want)
                if wantValue.isNaN {
                    XCTAssertTrue(gotValue.isNaN, "\(name)[\(i)]: \(gotValue), expected NaN")
                } else {
                    XCTAssertEqual(got, want, "\(name)[\(i)]: \(gotValue), expected \(wantValue)")
                }
            }
        }
        // Python's file reads back the same through `decode`, and our encoding of what we read
        // is read back identically (the values survive a second trip).
        let again = try SafeTensors.decode(SafeTensors.encode(tensors, metadata: metadata))
        assertBitIdentical(again.tensors, tensors)
    }
}

// MARK: - A Python with safetensors and numpy

/// The Keras reference environment's Python (it has `safetensors` and `numpy`: see
/// `Tools/reference/setup_venvs.sh`), or ``unavailable(_:file:line:)`` when it is missing.
private func pythonWithSafeTensors() throws -> String {
    let python = try ReferencePython.keras()
    let check = ReferencePython.run(python, ["-c", "import safetensors.numpy, numpy"], timeout: 120)
    guard check.status == 0 else {
        throw unavailable("\(python) cannot import safetensors and numpy (rerun Tools/reference/setup_venvs.sh): \(check.output)")
    }
    return python
}

/// Runs `script` with `python`, failing with its output when it exits with an error.
private func runPython(_ python: String, _ script: String, _ arguments: [String]) throws {
    try ReferencePython.runScript(python, script, arguments, timeout: 120)
}
