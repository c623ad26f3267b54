import Datasets
import Foundation
import XCTest

final class SHA256Tests: XCTestCase {
    func testStandardVectors() {
        // FIPS 180-2 examples and the empty message. The 56-byte one forces the padding into
        // a second block; the 112-byte one spans two blocks before padding.
        let vectors: [(String, String)] = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
             "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        ]
        for (message, digest) in vectors {
            XCTAssertEqual(SHA256.hex(SHA256.hash(Array(message.utf8))), digest, "\"\(message)\"")
        }
    }

    func testOneMillionAs() {
        var h = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(chunk) }
        XCTAssertEqual(h.hexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        XCTAssertEqual(SHA256.hex(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testStreamingInAnyPiecesEqualsOneShot() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        let oneShot = SHA256.hash(message)
        for pieceSize in [1, 3, 55, 56, 63, 64, 65, 127, 999] {
            var h = SHA256()
            var offset = 0
            while offset < message.count {
                let end = min(offset + pieceSize, message.count)
                h.update(Array(message[offset..<end]))
                offset = end
            }
            XCTAssertEqual(h.digest(), oneShot, "pieces of \(pieceSize)")
        }
        // digest() does not disturb the state.
        var h = SHA256()
        h.update(Array("ab".utf8))
        _ = h.digest()
        h.update(Array("c".utf8))
        XCTAssertEqual(h.hexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testRealMNISTFilesMatchTheirPublishedSums() throws {
        let dir = try mnistDirectory()
        let sums = [
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ]
        for (name, sum) in sums {
            XCTAssertEqual(try SHA256.hexDigest(ofFile: dir + "/" + name), sum, name)
        }
    }

    func testMissingFileIsATypedError() {
        assertDatasetError(.notFound, path: "/nonexistent-neurite/file") { try SHA256.hexDigest(ofFile: "/nonexistent-neurite/file") }
    }
}
