import Datasets
import XCTest
import _NeuriteTestSupport

/// Inputs found by `neurite-fuzz` (Tools/neurite-fuzz), replayed byte for byte, with a
/// minimal version of each made here, so that the fix stays.
final class FuzzFindingsTests: XCTestCase {
    private func bytes(hex lines: [String]) -> [UInt8] {
        let hex = Array(lines.joined().utf8)
        return stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
    }

    private func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    private func chunk(_ type: String, _ data: [UInt8], declaredLength: UInt32? = nil) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(declaredLength ?? UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    /// neurite-fuzz seed 1, PNG input 43742 (849 bytes): a 7 x 7 palette PNG whose pCAL chunk
    /// declares 969474081 bytes. libpng allocated and zero-filled a buffer of that size before
    /// finding the data missing (its own length check only warns when reading), so each call
    /// took 1 to 3 seconds and touched about 1 GB. The decoder now refuses a chunk that claims
    /// more bytes than follow it before libpng starts.
    private let pCALClaimingAGigabyte = [
        "89504e470d0a1a0a0000000d4948445200000007000000070203000000b93cbf400000001d6d444376c31bcb1510c23388302726",
        "b7c62172e95e91f9f5e7f5cf2b32e6bc864ec32c6bc900000003734249541001117c7daea139c900217043414c1046e047339d52",
        "b3d900caf25088a47a14fd1dd0af32e0515e4e07ac25a90260855bcd74920000000467414d41000186a031e8965f000000037342",
        "495404040477f8b5a30000000c504c5445ff007700ff77ffff000000ff1b43b39c0000001d4944415478016364e46061e16661e7",
        "63e11264e615611010671496020006ac00cf3ef181190000000467414d41000186a031e8965f0000000467414d41000186a031e8",
        "965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f0000",
        "000467414d41000186a031e8965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f000000046741",
        "4d41000186a031e8965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f0000000467414d410001",
        "86a031e8965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8",
        "965f0000000467414d41000186a0ff00965f0000001d6d444376c31bcb1523c23388302726b7c62172e95e91f9f5e7535855e839",
        "f19ae90268c592d62bee4d41000186a031e8965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f",
        "0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f00000004",
        "67414d41000186a031e8965f0000000467414d41000186a067414d41000186a031e8965f0000000467414d41000186a031e8965f",
        "0000000467414d41000186a031e8965f0000000467414d41000186a031e8965f0000000467414d41000186a031e8965fd62bee4f",
        "d9205b8209d20199a7a768b3f5cf2b32e6bc864e36a41e3d39c9c0fbc7772fb80889f492055f000d494844520000000700000007",
        "0203000000b93cbf400000000467414d41000186a031e8965f000000037342495404040477f8b5a30000000c504c5445ff007700",
        "ff77ffff000000ff1b43b39c0000805bd0",
    ]

    func testPNGChunkClaimingMoreThanTheFileHoldsIsRefusedBeforeLibpngAllocatesIt() throws {
        let found = bytes(hex: pCALClaimingAGigabyte)
        XCTAssertEqual(found.count, 849)
        for call in [{ _ = try ImageDecoder.info(of: found) }, { _ = try ImageDecoder.decode(data: found) }] {
            XCTAssertThrowsError(try call()) { error in
                let error = error as? DatasetError
                XCTAssertEqual(error?.kind, .corrupt)
                // Named by the length check, which runs before libpng sees the file.
                XCTAssertTrue(error?.message.contains("chunk pCAL at byte offset 89 declares 969474081 bytes") ?? false,
                              String(describing: error))
            }
        }
    }

    func testChunkLengthsAreCheckedUpToIENDForDecodingAndUpToIDATForTheHeader() throws {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let header = chunk("IHDR", bigEndian(1) + bigEndian(1) + [8, 0, 0, 0, 0])
        // One gray pixel of value 7: a stored deflate block in a zlib stream (filter byte 0, then 7).
        let pixels = chunk("IDAT", [0x78, 0x01, 0x01, 0x02, 0x00, 0xFD, 0xFF, 0x00, 0x07, 0x00, 0x09, 0x00, 0x08])
        let valid = signature + header + pixels + chunk("IEND", [])
        XCTAssertEqual(try ImageDecoder.decode(data: valid, scaled: false).scalars, [7])

        // Before IDAT: both the header read and the decode refuse it.
        let early = signature + header + chunk("tEXt", Array("a\u{0}b".utf8), declaredLength: 0x7FFF_FFFF) + pixels + chunk("IEND", [])
        for call in [{ _ = try ImageDecoder.info(of: early) }, { _ = try ImageDecoder.decode(data: early) }] {
            XCTAssertThrowsError(try call()) { error in
                XCTAssertEqual((error as? DatasetError)?.kind, .corrupt)
                XCTAssertTrue((error as? DatasetError)?.message.contains("chunk tEXt at byte offset 33 declares 2147483647 bytes") ?? false,
                              "\(error)")
            }
        }
        // After IDAT: the header is whole, so info reads it; decoding, which reads to IEND, refuses it.
        let late = signature + header + pixels + chunk("tEXt", Array("a\u{0}b".utf8), declaredLength: 0x7FFF_FFFF) + chunk("IEND", [])
        XCTAssertEqual(try ImageDecoder.info(of: late).width, 1)
        XCTAssertThrowsError(try ImageDecoder.decode(data: late)) { error in
            XCTAssertTrue((error as? DatasetError)?.message.contains("chunk tEXt") ?? false, "\(error)")
        }
        // Bytes after IEND are not chunks; libpng ignores them, and so does the check.
        XCTAssertEqual(try ImageDecoder.decode(data: valid + [0, 0, 0xFF, 0xFF, 1, 2, 3, 4, 5], scaled: false).scalars, [7])
    }
}
