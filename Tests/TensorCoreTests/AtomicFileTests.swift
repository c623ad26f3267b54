import Foundation
import TensorCore
import XCTest

/// Atomic file writing: a file is replaced whole or not at all, and no temporary file outlives
/// a failed write.
final class AtomicFileTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    private func contents(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
    }

    private func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }

    func testWritesAndReplacesWholeFiles() throws {
        let path = folder.appendingPathComponent("a.bin").path
        try AtomicFile.write(Array("first version".utf8), to: path)
        XCTAssertEqual(try contents("a.bin"), Array("first version".utf8))
        try AtomicFile.write([7], to: path)
        XCTAssertEqual(try contents("a.bin"), [7])
        try AtomicFile.write([], to: path)
        XCTAssertEqual(try contents("a.bin"), [])
        XCTAssertEqual(try names(), ["a.bin"])
    }

    func testStreamedWritesArriveInOrderAcrossTheBuffer() throws {
        // Small pieces gathered in the buffer, then pieces larger than it, then small ones again.
        var expected: [UInt8] = []
        let pieces: [[UInt8]] = (0..<300).map { i in [UInt8](repeating: UInt8(i % 251), count: i % 17) }
            + [[UInt8](repeating: 1, count: 3 << 20), [UInt8](repeating: 2, count: (1 << 20) - 5)]
            + (0..<50).map { [UInt8($0)] }
        let path = folder.appendingPathComponent("stream.bin").path
        var reported = 0
        try AtomicFile.write(to: path) { file in
            for piece in pieces {
                try file.write(piece)
                expected += piece
            }
            reported = file.count
        }
        XCTAssertEqual(reported, expected.count)
        XCTAssertEqual(try contents("stream.bin"), expected)
    }

    func testAnErrorInTheBodyLeavesTheOldFileAndNoTemporary() throws {
        struct Stop: Error {}
        let path = folder.appendingPathComponent("keep.bin").path
        try AtomicFile.write([1, 2, 3], to: path)
        XCTAssertThrowsError(try AtomicFile.write(to: path) { file in
            try file.write([UInt8](repeating: 9, count: 2 << 20))
            throw Stop()
        }) { error in
            XCTAssertTrue(error is Stop, "\(error)")
        }
        XCTAssertEqual(try contents("keep.bin"), [1, 2, 3])
        XCTAssertEqual(try names(), ["keep.bin"])
    }

    func testFailuresNameThePathAndLeaveNothing() throws {
        let missing = folder.appendingPathComponent("no/such/dir/x.bin").path
        XCTAssertThrowsError(try AtomicFile.write([1], to: missing)) { error in
            guard let error = error as? AtomicFileError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.path, missing)
            XCTAssertTrue(error.description.hasPrefix(missing + ": "), error.description)
            XCTAssertTrue(error.message.contains("does not exist"), error.message)
        }
        let trailingSlash = folder.path + "/"
        XCTAssertThrowsError(try AtomicFile.write([1], to: trailingSlash)) { error in
            XCTAssertTrue("\(error)".contains("not a file name"), "\(error)")
        }
        // Renaming over a directory fails after the data is written: the temporary goes away.
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("dir"), withIntermediateDirectories: false)
        XCTAssertThrowsError(try AtomicFile.write([1], to: folder.appendingPathComponent("dir").path)) { error in
            XCTAssertTrue("\(error)".contains("cannot rename"), "\(error)")
        }
        XCTAssertEqual(try names(), ["dir"])
    }
}
