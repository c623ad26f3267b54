import Datasets
import Foundation
import XCTest
import _NeuriteTestSupport

/// The repository's root, found from this file's path (Tests/DatasetsTests/<file>).
func repositoryRoot(_ file: String = #filePath) -> URL {
    URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

/// The shared MNIST folder (`<repo>/../shared/data/mnist`), or a visible skip when it is absent.
func mnistDirectory() throws -> String {
    let dir = repositoryRoot().appendingPathComponent("../shared/data/mnist").standardized.path
    guard FileManager.default.fileExists(atPath: dir + "/t10k-images-idx3-ubyte.gz") else {
        throw unavailable("MNIST test data not found at \(dir) (see shared/data/README.md)")
    }
    return dir
}

/// Debian's Fashion-MNIST folder, or a visible skip when the package is not installed.
func fashionDirectory() throws -> String {
    let dir = "/usr/share/datasets/fashion-mnist"
    guard FileManager.default.fileExists(atPath: dir + "/t10k-images-idx3-ubyte.gz") else {
        throw unavailable("Fashion-MNIST not found at \(dir) (apt-get install dataset-fashion-mnist)")
    }
    return dir
}

/// A fresh temporary folder, removed with everything in it when the value is released.
final class TemporaryDirectory {
    let path: String

    init() {
        var root = NSTemporaryDirectory()
        while root.hasSuffix("/") { root.removeLast() }
        let template = root + "/neurite-datasets-XXXXXX"
        var bytes = Array(template.utf8CString)
        let made = bytes.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let p = mkdtemp(buffer.baseAddress!) else { return nil }
            return String(cString: p)
        }
        guard let made else { preconditionFailure("mkdtemp failed for \(template)") }
        path = made
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// `path/name`.
    func file(_ name: String) -> String { path + "/" + name }

    /// The names in the folder, sorted.
    func contents() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }
}

func writeBytes(_ bytes: [UInt8], to path: String) {
    XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
}

func readBytes(_ path: String) -> [UInt8] {
    [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
}

/// Asserts that `body` throws a `DatasetError` of `kind` whose path is `path` and whose message
/// contains each of `fragments` (case-insensitive); returns the error.
@discardableResult
func assertDatasetError<T>(_ kind: DatasetError.Kind, path: String?, _ fragments: [String] = [],
                           file: StaticString = #filePath, line: UInt = #line,
                           _ body: () throws -> T) -> DatasetError? {
    do {
        _ = try body()
        XCTFail("expected a DatasetError(.\(kind)), but nothing was thrown", file: file, line: line)
        return nil
    } catch let error as DatasetError {
        XCTAssertEqual(error.kind, kind, "wrong kind for: \(error)", file: file, line: line)
        if let path {
            XCTAssertEqual(error.path, path, "error does not name the file: \(error)", file: file, line: line)
            XCTAssertTrue(error.description.contains(path), "description lacks the path: \(error)", file: file, line: line)
        }
        for fragment in fragments {
            XCTAssertTrue(error.message.lowercased().contains(fragment.lowercased()),
                          "message lacks \"\(fragment)\": \(error.message)", file: file, line: line)
        }
        return error
    } catch {
        XCTFail("expected a DatasetError, got \(error)", file: file, line: line)
        return nil
    }
}

/// One gzip member holding `bytes` in stored (uncompressed) deflate blocks, made by hand so
/// that tests can build multi-member files and files with an FNAME field like MNIST's.
func gzipStored(_ bytes: [UInt8], name: String? = nil) -> [UInt8] {
    var out: [UInt8] = [0x1F, 0x8B, 8, name == nil ? 0 : 0x08, 0, 0, 0, 0, 0, 3]
    if let name { out += Array(name.utf8) + [0] }
    var offset = 0
    repeat {
        let n = min(65535, bytes.count - offset)
        let final: UInt8 = offset + n == bytes.count ? 1 : 0
        out += [final, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
        out += bytes[offset..<(offset + n)]
        offset += n
    } while offset < bytes.count
    let crc = crc32(bytes), size = UInt32(truncatingIfNeeded: bytes.count)
    for v in [crc, size] { out += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
    return out
}

/// An IDX header: two zero bytes, type code, rank, big-endian dimensions.
func idxHeader(type: UInt8, dims: [UInt32]) -> [UInt8] {
    var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { out += [UInt8(d >> 24), UInt8((d >> 16) & 0xFF), UInt8((d >> 8) & 0xFF), UInt8(d & 0xFF)] }
    return out
}
