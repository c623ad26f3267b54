import Datasets
import Foundation
import TensorCore
import XCTest
import _NeuriteTestSupport

final class PNGTests: XCTestCase {
    // MARK: - PngSuite

    private func pngSuite() throws -> (directory: String, files: [String]) {
        let directory = try ImageTestData.directory("pngsuite")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".png") }.sorted()
        XCTAssertEqual(files.count, 175, "PngSuite should hold 175 PNG files")
        return (directory, files)
    }

    func testEveryCorruptPngSuiteFileIsRejectedWithATypedError() throws {
        let (directory, files) = try pngSuite()
        let corrupt = files.filter { $0.hasPrefix("x") }
        XCTAssertEqual(corrupt.count, 14)
        for name in corrupt {
            assertImageError([.corrupt, .unsupported], name) {
                try ImageDecoder.decode(fileAt: directory + "/" + name)
            }
        }
        // A bad signature is not taken for a PNG (xs1: first byte) or is a corrupt PNG (xs7: text-mode damage).
        assertImageError([.unsupported]) { try ImageDecoder.decode(fileAt: directory + "/xs1n0g01.png") }
        assertImageError([.corrupt]) { try ImageDecoder.decode(fileAt: directory + "/xs7n0g01.png") }
        let crc = assertImageError([.corrupt]) { try ImageDecoder.decode(fileAt: directory + "/xhdn0g08.png") }
        XCTAssertEqual(crc?.path, directory + "/xhdn0g08.png")
        XCTAssertTrue(crc?.message.contains("CRC") ?? false, "message should name the CRC: \(String(describing: crc))")
    }

    /// Name scheme (PngSuite.README): a 3-letter test code, `n` or `i` (interlaced), the colour type
    /// digit, a letter, then the bit depth in 2 digits; `sNN` files are NN x NN, the others 32 x 32.
    func testEveryOtherPngSuiteFileDecodesWithTheGeometryItsNameDeclares() throws {
        let (directory, files) = try pngSuite()
        var decoded = 0
        for name in files where !name.hasPrefix("x") {
            let path = directory + "/" + name
            let image = try ImageDecoder.decode(fileAt: path)
            let info = try ImageDecoder.info(ofFileAt: path)
            XCTAssertEqual(image.shape, [info.height, info.width, info.channels], name)
            XCTAssertEqual(info.format, .png)
            let values = image.scalars
            XCTAssertTrue(values.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(name): values outside 0...1")
            decoded += 1
            if name == "PngSuite.png" { continue }  // the logo does not follow the naming scheme
            let characters = Array(name)
            let colorType = Int(String(characters[4]))!
            let bitDepth = Int(String(characters[6...7]))!
            let side = name.hasPrefix("s") ? Int(String(characters[1...2]))! : 32
            // The pHYs tests have their own sizes: 8 x 32 flat, 32 x 8 high and 8 x 8 square pixels.
            let (width, height) = ["cdfn": (8, 32), "cdhn": (32, 8), "cdsn": (8, 8)][String(name.prefix(4))] ?? (side, side)
            XCTAssertEqual(info.width, width, name)
            XCTAssertEqual(info.height, height, name)
            XCTAssertEqual(info.bitDepth, bitDepth, name)
            XCTAssertEqual(info.channels, colorType == 0 || colorType == 4 ? 1 : 3, name)
            // t* files carry tRNS, except tp0* ("not transparent, for reference").
            let transparent = name.hasPrefix("t") && !name.hasPrefix("tp0")
            XCTAssertEqual(info.hasAlpha, colorType == 4 || colorType == 6 || transparent, name)
        }
        XCTAssertEqual(decoded, 161)
    }

    func testSampleOfPngSuiteMatchesPngtopnmFixtures() throws {
        let (directory, _) = try pngSuite()
        XCTAssertGreaterThanOrEqual(pngSuiteReferencePNM.count, 10)
        for (name, base64) in pngSuiteReferencePNM.sorted(by: { $0.key < $1.key }) {
            let reference = PNMImage(base64: base64)
            let raw = try ImageDecoder.decode(fileAt: "\(directory)/\(name).png", scaled: false)
            XCTAssertEqual(raw.shape, [reference.height, reference.width, reference.channels], name)
            guard raw.shape == [reference.height, reference.width, reference.channels] else { continue }
            let expected = reference.samples8
            let actual = raw.scalars
            var mismatches = 0
            for i in 0..<expected.count where Float(expected[i]) != actual[i] {
                if mismatches == 0 { XCTFail("\(name): sample \(i) is \(actual[i]), pngtopnm gives \(expected[i])") }
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, "\(name): samples differing from pngtopnm")
            // Scaled values are exactly k / 255.
            let scaled = try ImageDecoder.decode(fileAt: "\(directory)/\(name).png")
            XCTAssertEqual(scaled.scalars, actual.map { $0 / 255 }, name)
        }
    }

    func testChannelConversions() throws {
        let (directory, _) = try pngSuite()
        let rgb = try ImageDecoder.decode(fileAt: directory + "/basn2c08.png", scaled: false)
        let gray = try ImageDecoder.decode(fileAt: directory + "/basn2c08.png", channels: 1, scaled: false)
        XCTAssertEqual(gray.shape, [32, 32, 1])
        assertClose(gray.scalars, ImageTestData.luma(ofRGB: rgb.scalars), rtol: 1e-6, atol: 1e-4)

        let g = try ImageDecoder.decode(fileAt: directory + "/basn0g08.png")
        let g3 = try ImageDecoder.decode(fileAt: directory + "/basn0g08.png", channels: 3)
        XCTAssertEqual(g3.shape, [32, 32, 3])
        XCTAssertEqual(g3.scalars, g.scalars.flatMap { [$0, $0, $0] })

        let rgba = try ImageDecoder.decode(fileAt: directory + "/basn6a08.png", channels: 4)
        let rgbOfRGBA = try ImageDecoder.decode(fileAt: directory + "/basn6a08.png")
        XCTAssertEqual(rgbOfRGBA.shape, [32, 32, 3])
        let v = rgba.scalars
        XCTAssertEqual(ImageTestData.select(0..<3, of: v, stride: 4), rgbOfRGBA.scalars)
        XCTAssertTrue(Set(ImageTestData.select(3..<4, of: v, stride: 4)).count > 1, "basn6a08's alpha varies")
        let opaque = try ImageDecoder.decode(fileAt: directory + "/basn2c08.png", channels: 4, scaled: false)
        XCTAssertEqual(Set(ImageTestData.select(3..<4, of: opaque.scalars, stride: 4)), [255])

        assertImageError([.invalidArgument]) { try ImageDecoder.decode(fileAt: directory + "/basn2c08.png", channels: 2) }
    }

    // MARK: - Damage made here

    private func validPNG() throws -> [UInt8] {
        try ImageTestData.bytes(of: try ImageTestData.directory("pngsuite") + "/basn2c08.png")
    }

    func testTruncatedPNGIsCorrupt() throws {
        let png = try validPNG()
        for length in [0, 2, 8, 12, 20, 33, 40, 60, png.count / 2, png.count - 12, png.count - 1] {
            let kinds: Set<DatasetError.Kind> = length < 4 && length > 0 ? [.unsupported] : [.corrupt]
            assertImageError(kinds, "cut at \(length)") { try ImageDecoder.decode(data: Array(png.prefix(length))) }
        }
    }

    func testDamagedSignatureAndHeaderBytesAreCorrupt() throws {
        let png = try validPNG()
        // Signature bytes 4...7 and every byte of the IHDR chunk (length, type, data, CRC).
        for offset in 4..<33 {
            var damaged = png
            damaged[offset] ^= 0xFF
            assertImageError([.corrupt], "byte \(offset) flipped") { try ImageDecoder.decode(data: damaged) }
        }
    }

    func testFlippingAnyByteNeverCrashes() throws {
        let png = try validPNG()
        // basn2c08.png: signature, IHDR at 8, gAMA at 33, IDAT at 49, IEND at 133 (145 bytes).
        XCTAssertEqual(png.count, 145)
        let ancillary = 33..<49
        for offset in 0..<png.count {
            var damaged = png
            damaged[offset] ^= 0x55
            do {
                _ = try ImageDecoder.decode(data: damaged)
                // libpng drops an ancillary chunk with a bad CRC (a warning), so only there may decoding succeed.
                XCTAssertTrue(ancillary.contains(offset), "flipping byte \(offset) went unnoticed")
            } catch let error as DatasetError {
                XCTAssertTrue(error.kind == .corrupt || error.kind == .unsupported, "byte \(offset): \(error)")
            }
        }
    }

    func testEmptyMissingAndDirectoryPathsGiveTypedErrors() throws {
        let directory = try ImageTestData.makeTemporaryDirectory()
        defer { ImageTestData.removeTemporaryDirectory(directory) }
        try ImageTestData.write([], to: directory + "/empty.png")
        assertImageError([.corrupt]) { try ImageDecoder.decode(fileAt: directory + "/empty.png") }
        assertImageError([.notFound]) { try ImageDecoder.decode(fileAt: directory + "/missing.png") }
        assertImageError([.notFound]) { try ImageDecoder.info(ofFileAt: directory + "/missing/x.png") }
        assertImageError([.io]) { try ImageDecoder.decode(fileAt: directory) }
        try ImageTestData.write(Array("hello, world".utf8), to: directory + "/text.png")
        assertImageError([.unsupported]) { try ImageDecoder.decode(fileAt: directory + "/text.png") }
    }

    /// A PNG whose IHDR declares `width` x `height` (with a correct CRC, so only a size check can
    /// refuse it), followed by an empty IDAT and IEND.
    private func pngHeader(width: UInt32, height: UInt32) -> [UInt8] {
        func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
        }
        let header = bigEndian(width) + bigEndian(height) + [8, 2, 0, 0, 0]  // 8-bit RGB, not interlaced
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", []) + chunk("IEND", [])
    }

    func testHugeDeclaredDimensionsAreRefusedBeforeAllocation() throws {
        // The header alone is valid: its info reads fine.
        let huge = pngHeader(width: 100_000, height: 100_000)
        let info = try ImageDecoder.info(of: huge)
        XCTAssertEqual(info.width, 100_000)
        let error = assertImageError([.tooLarge]) { try ImageDecoder.decode(data: huge) }
        XCTAssertTrue(error?.message.contains("100000 x 100000") ?? false, "\(String(describing: error))")
        assertImageError([.tooLarge]) { try ImageDecoder.decode(data: pngHeader(width: 40000, height: 1)) }
        assertImageError([.tooLarge]) { try ImageDecoder.decode(data: pngHeader(width: 20000, height: 20000)) }
        // Inside the limits, the missing image data is what fails.
        assertImageError([.corrupt]) { try ImageDecoder.decode(data: pngHeader(width: 100, height: 100)) }

        let png = try validPNG()
        assertImageError([.tooLarge]) { try ImageDecoder.decode(data: png, limits: ImageLimits(maxWidth: 31)) }
        assertImageError([.tooLarge]) { try ImageDecoder.decode(data: png, limits: ImageLimits(maxPixels: 1023)) }
        assertImageError([.tooLarge]) { try ImageDecoder.decode(data: png, limits: ImageLimits(maxFileBytes: png.count - 1)) }
        XCTAssertEqual(try ImageDecoder.decode(data: png, limits: ImageLimits(maxWidth: 32, maxHeight: 32, maxPixels: 1024)).shape,
                       [32, 32, 3])
    }

    // MARK: - Encoding

    private func randomImage(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor(shape: shape) { buffer in
            for i in buffer.indices { buffer[i] = Float(generator.nextIndex(below: 256)) / 255 }
        }
    }

    func testWritePNGThenDecodeGivesTheSameValues() throws {
        let directory = try ImageTestData.makeTemporaryDirectory()
        defer { ImageTestData.removeTemporaryDirectory(directory) }
        for (shape, seed) in [([7, 13, 3], UInt64(1)), ([16, 5, 1], 2), ([9, 4], 3), ([1, 1, 3], 4)] {
            let image = randomImage(shape, seed: seed)
            let path = directory + "/image.png"
            try ImageEncoder.writePNG(image, to: path)
            let decoded = try ImageDecoder.decode(fileAt: path)
            let expectedShape = shape.count == 2 ? shape + [1] : shape
            XCTAssertEqual(decoded, image.reshaped(expectedShape), "shape \(shape)")
            let info = try ImageDecoder.info(ofFileAt: path)
            XCTAssertEqual(info, ImageInfo(format: .png, width: shape[1], height: shape[0], channels: expectedShape[2],
                                           hasAlpha: false, bitDepth: 8))
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["image.png"],
                           "no temporary file is left behind")
            // The same bytes in memory.
            XCTAssertEqual(try ImageEncoder.encodePNG(image), try ImageTestData.bytes(of: path))
        }
    }

    func testEncoderClampsAndRounds() throws {
        let image = Tensor(shape: [1, 5, 1], scalars: [-0.5, 1.5, .nan, 0.5, 0.2])
        let decoded = try ImageDecoder.decode(data: try ImageEncoder.encodePNG(image), scaled: false)
        XCTAssertEqual(decoded.scalars, [0, 255, 0, 128, 51])
    }

    func testWriteReplacesAnExistingFileWhole() throws {
        let directory = try ImageTestData.makeTemporaryDirectory()
        defer { ImageTestData.removeTemporaryDirectory(directory) }
        let path = directory + "/picture.png"
        try ImageEncoder.writePNG(randomImage([8, 8, 3], seed: 5), to: path)
        let second = randomImage([4, 6, 1], seed: 6)
        try ImageEncoder.writePNG(second, to: path)
        XCTAssertEqual(try ImageDecoder.decode(fileAt: path), second)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["picture.png"])
    }

    func testFailedWritesLeaveNoFileBehind() throws {
        let directory = try ImageTestData.makeTemporaryDirectory()
        defer { ImageTestData.removeTemporaryDirectory(directory) }
        let image = randomImage([4, 4, 3], seed: 7)
        // A missing directory: nothing is created.
        let missing = directory + "/missing/picture.png"
        assertImageError([.notFound]) { try ImageEncoder.writePNG(image, to: missing) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/missing"))
        // The target is a directory: the rename fails after the data was written, and the
        // temporary file is removed.
        try FileManager.default.createDirectory(atPath: directory + "/taken.png", withIntermediateDirectories: false)
        assertImageError([.io]) { try ImageEncoder.writePNG(image, to: directory + "/taken.png") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["taken.png"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory + "/taken.png"), [])
    }
}
