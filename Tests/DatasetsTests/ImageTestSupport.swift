import Datasets
import Foundation
import XCTest
import _NeuriteTestSupport

/// Helpers shared by the PNG, JPEG and image-transform tests (namespaced to stay out of other tests' way).
enum ImageTestData {
    /// `<repository>/../shared/data`, found from this file's path (`<repository>/Tests/DatasetsTests/`).
    static let sharedDataRoot: String = {
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repository.appendingPathComponent("../shared/data").standardizedFileURL.path
    }()

    /// The folder `relative` under the shared test data, or ``unavailable`` saying where it was looked for.
    static func directory(_ relative: String) throws -> String {
        let path = sharedDataRoot + "/" + relative
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw unavailable("shared test data is absent: no folder \(path) (see shared/data/README.md)")
        }
        return path
    }

    /// A fresh empty temporary directory; remove it with `removeTemporaryDirectory`.
    static func makeTemporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("neurite-image-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func removeTemporaryDirectory(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// ITU-R BT.601 luma of interleaved RGB values, in Float64.
    static func luma(ofRGB values: [Float]) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(values.count / 3)
        for i in stride(from: 0, to: values.count, by: 3) {
            let r = Double(values[i]), g = Double(values[i + 1]), b = Double(values[i + 2])
            out.append(0.299 * r + 0.587 * g + 0.114 * b)
        }
        return out
    }

    /// Channels `channels` of every pixel of interleaved values with `stride` channels per pixel.
    static func select(_ channels: Range<Int>, of values: [Float], stride: Int) -> [Float] {
        var out: [Float] = []
        for i in Swift.stride(from: 0, to: values.count, by: stride) { out += values[(i + channels.lowerBound)..<(i + channels.upperBound)] }
        return out
    }

    static func bytes(of path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

/// A decoded PNM file (P4, P5 or P6, binary): samples row-major, interleaved.
struct PNMImage {
    var width: Int, height: Int, channels: Int, maxValue: Int
    var samples: [Int]

    /// Samples scaled to 8 bits, `round(v * 255 / maxValue)`.
    var samples8: [Int] {
        samples.map { ($0 * 255 + maxValue / 2) / maxValue }
    }

    /// Parses a binary PNM file; P4 bits (1 = black) become samples 0 (black) and 1 (white).
    init(_ data: [UInt8]) {
        var position = 0
        func token() -> String {
            while position < data.count {
                if data[position] == UInt8(ascii: "#") {
                    while position < data.count && data[position] != 10 { position += 1 }
                } else if [9, 10, 13, 32].contains(data[position]) {
                    position += 1
                } else { break }
            }
            let start = position
            while position < data.count && ![9, 10, 13, 32].contains(data[position]) { position += 1 }
            return String(decoding: data[start..<position], as: UTF8.self)
        }
        let magic = token()
        width = Int(token())!
        height = Int(token())!
        maxValue = magic == "P4" ? 1 : Int(token())!
        position += 1  // the single whitespace byte before the raster
        switch magic {
        case "P4":
            channels = 1
            let rowBytes = (width + 7) / 8
            samples = []
            for y in 0..<height {
                for x in 0..<width {
                    let byte = data[position + y * rowBytes + x / 8]
                    samples.append((byte >> (7 - UInt8(x % 8))) & 1 == 1 ? 0 : 1)
                }
            }
        case "P5", "P6":
            channels = magic == "P5" ? 1 : 3
            let count = width * height * channels
            if maxValue > 255 {
                samples = (0..<count).map { Int(data[position + 2 * $0]) << 8 | Int(data[position + 2 * $0 + 1]) }
            } else {
                samples = (0..<count).map { Int(data[position + $0]) }
            }
        default:
            fatalError("not a binary PNM file: magic \(magic)")
        }
    }

    /// Parses base64-encoded PNM bytes (line breaks allowed).
    init(base64: String) {
        self.init([UInt8](Data(base64Encoded: base64, options: .ignoreUnknownCharacters)!))
    }
}

/// Asserts that `body` throws a DatasetError whose kind is one of `kinds`; returns it.
@discardableResult
func assertImageError<T>(_ kinds: Set<DatasetError.Kind>, _ message: @autoclosure () -> String = "",
                                 file: StaticString = #filePath, line: UInt = #line,
                                 _ body: () throws -> T) -> DatasetError? {
    do {
        _ = try body()
        XCTFail("expected a DatasetError of kind \(kinds.map(\.rawValue).sorted()), nothing was thrown. \(message())",
                file: file, line: line)
    } catch let error as DatasetError {
        XCTAssertTrue(kinds.contains(error.kind), "expected kind \(kinds.map(\.rawValue).sorted()), got \(error). \(message())",
                      file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, "error without a message. \(message())", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a DatasetError, got \(type(of: error)): \(error). \(message())", file: file, line: line)
    }
    return nil
}
