import Datasets
import Foundation
import TensorCore
import XCTest
import _NeuriteTestSupport

final class JPEGTests: XCTestCase {
    private func jpegDirectory() throws -> String { try ImageTestData.directory("jpeg") }

    /// Largest |a - b| over two sample lists of the same length.
    private func maxDifference(_ a: [Float], _ b: [Int]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - Float($1.1))) }
    }

    /// jpeg/reference/ holds `djpeg -ppm/-pnm` outputs (libjpeg-turbo 2.1.5, default islow DCT and
    /// fancy upsampling); the decoder uses the same settings.
    func testDecodesMatchDjpegReferenceFiles() throws {
        let directory = try jpegDirectory()
        let cases = [("libjpeg-turbo/testorig.jpg", "testorig.jpg.djpeg.ppm"),
                     ("go/video-001.progressive.jpeg", "video-001.progressive.jpeg.djpeg.ppm"),
                     ("go/video-005.gray.jpeg", "video-005.gray.jpeg.djpeg.pgm")]
        for (file, referenceName) in cases {
            let reference = PNMImage(try ImageTestData.bytes(of: "\(directory)/reference/\(referenceName)"))
            let decoded = try ImageDecoder.decode(fileAt: "\(directory)/\(file)", scaled: false)
            XCTAssertEqual(decoded.shape, [reference.height, reference.width, reference.channels], file)
            XCTAssertLessThanOrEqual(maxDifference(decoded.scalars, reference.samples), 1, file)
        }
    }

    /// Geometry, channels and mean sample of `djpeg -pnm FILE` (libjpeg-turbo 2.1.5), recorded
    /// when these tests were written.
    private let djpegSummaries: [(file: String, width: Int, height: Int, channels: Int, mean: Double)] = [
        ("libjpeg-turbo/testimgari.jpg", 227, 149, 3, 106.1301),  // arithmetic coding
        ("libjpeg-turbo/testimgint.jpg", 227, 149, 3, 106.1301),
        ("libjpeg-turbo/testorig.jpg", 227, 149, 3, 106.1564),
        ("go/video-001.cmyk.jpeg", 150, 103, 3, 68.3599),
        ("go/video-001.jpeg", 150, 103, 3, 103.2163),
        ("go/video-001.progressive.jpeg", 150, 103, 3, 103.2163),
        // Fewer scans, but a complete file ending with EOI: valid (djpeg: exit 0, no warning).
        ("go/video-001.progressive.truncated.jpeg", 150, 103, 3, 102.9496),
        ("go/video-001.q50.422.jpeg", 150, 103, 3, 103.1548),
        ("go/video-001.rgb.jpeg", 150, 103, 3, 103.1648),
        ("go/video-005.gray.jpeg", 150, 103, 1, 125.5755),
        ("go/video-005.gray.q50.progressive.jpeg", 150, 103, 1, 125.6019),
    ]

    func testEveryJPEGDecodesOrIsRejectedWithATypedError() throws {
        let directory = try jpegDirectory()
        var seen: [String] = []
        for folder in ["libjpeg-turbo", "go", "corrupt"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(folder)").sorted() {
                let file = "\(folder)/\(name)", path = "\(directory)/\(file)"
                seen.append(file)
                if let summary = djpegSummaries.first(where: { $0.file == file }) {
                    let image = try ImageDecoder.decode(fileAt: path, scaled: false)
                    XCTAssertEqual(image.shape, [summary.height, summary.width, summary.channels], file)
                    let values = image.scalars
                    let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
                    XCTAssertEqual(mean, summary.mean, accuracy: 0.01, file)
                    let info = try ImageDecoder.info(ofFileAt: path)
                    XCTAssertEqual(info, ImageInfo(format: .jpeg, width: summary.width, height: summary.height,
                                                   channels: summary.channels, hasAlpha: false, bitDepth: 8), file)
                } else if name == "testorig12.jpg" {
                    let error = assertImageError([.unsupported], file) { try ImageDecoder.decode(fileAt: path) }
                    XCTAssertTrue(error?.message.contains("12") ?? false, "\(String(describing: error))")
                    assertImageError([.unsupported], file) { try ImageDecoder.info(ofFileAt: path) }
                } else if folder == "corrupt" {
                    let error = assertImageError([.corrupt], file) { try ImageDecoder.decode(fileAt: path) }
                    XCTAssertEqual(error?.path, path)
                } else {
                    XCTFail("\(file): not covered by this test")
                }
            }
        }
        XCTAssertEqual(seen.count, 14, "jpeg/ should hold 4 + 8 + 2 files")
    }

    func testTruncatedMidScanIsCorruptWhereLibjpegOnlyWarns() throws {
        let path = try jpegDirectory() + "/corrupt/testorig.truncated-mid-scan.jpg"
        let error = assertImageError([.corrupt]) { try ImageDecoder.decode(fileAt: path) }
        XCTAssertTrue(error?.message.contains("truncated") ?? false, "\(String(describing: error))")
        // The header is intact, so its info reads fine.
        XCTAssertEqual(try ImageDecoder.info(ofFileAt: path).width, 227)
    }

    func testCMYKConvertsToRGBLikeDjpeg() throws {
        let path = try jpegDirectory() + "/go/video-001.cmyk.jpeg"
        let reference = PNMImage(base64: cmykReferencePPM)
        XCTAssertEqual([reference.width, reference.height, reference.channels], [150, 103, 3])
        let decoded = try ImageDecoder.decode(fileAt: path, scaled: false)
        XCTAssertEqual(decoded.shape, [103, 150, 3])
        XCTAssertLessThanOrEqual(maxDifference(decoded.scalars, reference.samples), 1)
    }

    func testChannelConversions() throws {
        let directory = try jpegDirectory()
        let rgb = try ImageDecoder.decode(fileAt: directory + "/go/video-001.jpeg", scaled: false)
        let gray = try ImageDecoder.decode(fileAt: directory + "/go/video-001.jpeg", channels: 1, scaled: false)
        assertClose(gray.scalars, ImageTestData.luma(ofRGB: rgb.scalars), rtol: 1e-6, atol: 1e-4)
        let g = try ImageDecoder.decode(fileAt: directory + "/go/video-005.gray.jpeg")
        let g3 = try ImageDecoder.decode(fileAt: directory + "/go/video-005.gray.jpeg", channels: 3)
        XCTAssertEqual(g3.scalars, g.scalars.flatMap { [$0, $0, $0] })
        let g4 = try ImageDecoder.decode(fileAt: directory + "/go/video-005.gray.jpeg", channels: 4)
        XCTAssertEqual(g4.scalars, g.scalars.flatMap { [$0, $0, $0, 1] })
    }

    /// Data loaders decode on several threads at once: libpng and libjpeg keep all state per call.
    func testConcurrentDecodesMatchSerialDecodes() throws {
        let directory = try jpegDirectory(), pngs = try ImageTestData.directory("pngsuite")
        let paths = ["libjpeg-turbo/testorig.jpg", "libjpeg-turbo/testimgari.jpg", "go/video-001.progressive.jpeg",
                     "go/video-001.cmyk.jpeg", "go/video-005.gray.jpeg"].map { directory + "/" + $0 }
            + ["basi6a16.png", "basn3p04.png", "tbrn2c08.png", "basn0g16.png"].map { pngs + "/" + $0 }
        let serial = try paths.map { try ImageDecoder.decode(fileAt: $0) }
        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var agreeing = 0
            var differing: [String] = []
        }
        let tally = Tally()
        let rounds = 8
        DispatchQueue.concurrentPerform(iterations: paths.count * rounds) { i in
            let k = i % paths.count
            let agrees = (try? ImageDecoder.decode(fileAt: paths[k])) == serial[k]
            tally.lock.lock()
            defer { tally.lock.unlock() }
            if agrees { tally.agreeing += 1 } else { tally.differing.append(paths[k]) }
        }
        XCTAssertEqual(tally.differing, [], "concurrent decodes that failed or differed from the serial ones")
        XCTAssertEqual(tally.agreeing, paths.count * rounds)
    }

    // MARK: - Damage made here

    private func testorig() throws -> [UInt8] {
        try ImageTestData.bytes(of: try jpegDirectory() + "/libjpeg-turbo/testorig.jpg")
    }

    func testTruncatedJPEGIsCorrupt() throws {
        let jpeg = try testorig()
        XCTAssertEqual(jpeg.count, 5770)
        // Headers end and entropy-coded data starts at byte 623.
        for length in [0, 3, 4, 20, 100, 300, 622, 623, 700, 2000, 4000, 5700, 5768] {
            assertImageError([.corrupt], "cut at \(length)") { try ImageDecoder.decode(data: Array(jpeg.prefix(length))) }
        }
        assertImageError([.unsupported]) { try ImageDecoder.decode(data: Array(jpeg.prefix(2))) }
    }

    /// Offset of the first byte after the marker `FF code`.
    private func segment(_ code: UInt8, in jpeg: [UInt8]) -> Int {
        (0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == code }! + 2
    }

    func testDamagedHeaderFieldsGiveTypedErrors() throws {
        let jpeg = try testorig()
        let sof = segment(0xC0, in: jpeg)  // length(2) precision(1) height(2) width(2) components(1)
        XCTAssertEqual(Array(jpeg[(sof + 3)...(sof + 6)]), [0, 149, 0, 227])

        var zeroHeight = jpeg
        zeroHeight[sof + 3] = 0; zeroHeight[sof + 4] = 0
        assertImageError([.corrupt]) { try ImageDecoder.decode(data: zeroHeight) }

        var noComponents = jpeg
        noComponents[sof + 7] = 0
        assertImageError([.corrupt]) { try ImageDecoder.decode(data: noComponents) }

        var twelveBit = jpeg
        twelveBit[sof + 2] = 12
        assertImageError([.unsupported]) { try ImageDecoder.decode(data: twelveBit) }

        var lossless = jpeg  // SOF3
        lossless[sof - 1] = 0xC3
        assertImageError([.unsupported]) { try ImageDecoder.decode(data: lossless) }

        var badMarker = jpeg  // the SOS marker replaced by an undefined one
        badMarker[segment(0xDA, in: jpeg) - 1] = 0x02
        assertImageError([.corrupt]) { try ImageDecoder.decode(data: badMarker) }

        var badTableLength = jpeg
        let dht = segment(0xC4, in: jpeg)
        badTableLength[dht] = 0xFF; badTableLength[dht + 1] = 0xFF
        assertImageError([.corrupt]) { try ImageDecoder.decode(data: badTableLength) }

        // 65000 x 65000 declared: refused before anything that size is allocated.
        var huge = jpeg
        huge[sof + 3] = 0xFD; huge[sof + 4] = 0xE8; huge[sof + 5] = 0xFD; huge[sof + 6] = 0xE8
        XCTAssertEqual(try ImageDecoder.info(of: huge).width, 65000)
        let error = assertImageError([.tooLarge]) { try ImageDecoder.decode(data: huge) }
        XCTAssertTrue(error?.message.contains("65000 x 65000") ?? false, "\(String(describing: error))")
        assertImageError([.tooLarge]) { try ImageDecoder.decode(data: jpeg, limits: ImageLimits(maxHeight: 148)) }

    }

    /// Damage that libjpeg only warns about ("Corrupt JPEG data: premature end of data segment";
    /// djpeg exits with status 2 and writes a partly grey picture) is an error here.
    func testDamageLibjpegOnlyWarnsAboutIsCorrupt() throws {
        let jpeg = try testorig()
        // The scan cut short, then a proper EOI: no "end of file" involved.
        let cutWithEOI = Array(jpeg.prefix(3000)) + [0xFF, 0xD9]
        let error = assertImageError([.corrupt]) { try ImageDecoder.decode(data: cutWithEOI) }
        XCTAssertTrue(error?.message.contains("Corrupt JPEG data") ?? false, "\(String(describing: error))")
        // An unexpected restart marker in the middle of the entropy-coded data.
        var strayMarker = jpeg
        strayMarker[2000] = 0xFF; strayMarker[2001] = 0xD0
        assertImageError([.corrupt]) { try ImageDecoder.decode(data: strayMarker) }
    }

    func testFlippingAnyHeaderByteNeverCrashes() throws {
        let jpeg = try testorig()
        var refused = 0
        for offset in 0..<623 {
            var damaged = jpeg
            damaged[offset] ^= 0xA5
            do {
                let image = try ImageDecoder.decode(data: damaged)
                XCTAssertEqual(image.rank, 3)
            } catch is DatasetError {
                refused += 1
            }
        }
        // Damaged tables may still decode (to other pixels), but markers and lengths may not.
        XCTAssertGreaterThan(refused, 50)
    }
}
