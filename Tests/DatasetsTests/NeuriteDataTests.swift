import Datasets
import Foundation
import XCTest
import _NeuriteTestSupport

/// The `neurite-data` tool, end to end: the built executable is run with `Process`, and its exit
/// status, messages and files are checked.
final class NeuriteDataTests: XCTestCase {
    /// Runs the built `neurite-data` with `arguments`.
    private func run(_ arguments: [String]) throws -> ProductRun {
        try BuiltProducts.run("neurite-data", arguments, anchor: NeuriteDataTests.self)
    }

    func testExportThenImportRoundTripsFiftyMNISTImagesExactly() throws {
        let mnist = try mnistDirectory()
        let scratch = TemporaryDirectory()
        let imagesIn = mnist + "/t10k-images-idx3-ubyte.gz", labelsIn = mnist + "/t10k-labels-idx1-ubyte.gz"

        let export = try run(["export", "--images", imagesIn, "--labels", labelsIn,
                              "--output", scratch.file("digits"), "--limit", "50"])
        XCTAssertEqual(export.status, 0, export.errors)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.file("digits")).sorted(),
                       (0...9).map(String.init))
        let pngCount = try (0...9).map { try FileManager.default.contentsOfDirectory(atPath: scratch.file("digits/\($0)")).count }
        XCTAssertEqual(pngCount.reduce(0, +), 50)

        let imported = try run(["import", scratch.file("digits"), "--images", scratch.file("images.idx.gz"),
                                "--labels", scratch.file("labels.idx"), "--size", "28x28", "--channels", "1"])
        XCTAssertEqual(imported.status, 0, imported.errors)

        // The folder lists images by label, then by (zero-padded) index: the same order here.
        let originalLabels = Array(try IDX.read(contentsOf: labelsIn).labels()[..<50])
        let order = (0..<50).sorted { (originalLabels[$0], $0) < (originalLabels[$1], $1) }
        let originalPixels = try IDX.read(contentsOf: imagesIn).doubleValues()
        let images = try IDX.read(contentsOf: scratch.file("images.idx.gz"))
        let labels = try IDX.read(contentsOf: scratch.file("labels.idx"))
        XCTAssertEqual(images.dataType, .uint8)
        XCTAssertEqual(images.shape, [50, 28, 28])
        XCTAssertEqual(try labels.labels(), order.map { originalLabels[$0] })
        let expected = order.flatMap { originalPixels[($0 * 784)..<(($0 + 1) * 784)] }
        XCTAssertEqual(images.doubleValues(), expected, "pixels changed in the PNG round trip")
    }

    func testInspectDescribesFilesAndFailsOnABadOne() throws {
        let mnist = try mnistDirectory()
        let scratch = TemporaryDirectory()
        let digit = scratch.file("digit.png")
        let first = try IDX.read(contentsOf: mnist + "/t10k-images-idx3-ubyte.gz").tensor(dividedBy: 255).slice(0..<1)
        try ImageEncoder.writePNG(first.reshaped([28, 28]), to: digit)
        let jpeg = try ImageTestData.directory("jpeg") + "/libjpeg-turbo/testorig.jpg"

        let good = try run(["inspect", mnist + "/t10k-images-idx3-ubyte.gz", mnist + "/t10k-labels-idx1-ubyte.gz", digit, jpeg])
        XCTAssertEqual(good.status, 0, good.errors)
        let lines = good.output.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 4, good.output)
        XCTAssertTrue(lines[0].contains("u8") && lines[0].contains("[10000, 28, 28]"), lines[0])
        XCTAssertTrue(lines[1].contains("[10000]"), lines[1])
        XCTAssertTrue(lines[2].contains("PNG") && lines[2].contains("width 28, height 28") && lines[2].contains("1 channel")
                      && lines[2].contains("8-bit"), lines[2])
        XCTAssertTrue(lines[3].contains("JPEG") && lines[3].contains("width 227, height 149") && lines[3].contains("3 channels"),
                      lines[3])

        let broken = scratch.file("broken.png")
        writeBytes(Array(readBytes(digit).prefix(30)), to: broken)
        let bad = try run(["inspect", digit, broken, scratch.file("absent.idx")])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.output.contains(digit), "the good file is still described: \(bad.output)")
        XCTAssertTrue(bad.errors.contains(broken + ": error"), bad.errors)
        XCTAssertTrue(bad.errors.contains(scratch.file("absent.idx") + ": error: no such file"), bad.errors)
    }

    func testFailuresPrintAMessageAndExitNonZero() throws {
        let mnist = try mnistDirectory()
        let scratch = TemporaryDirectory()
        let images = mnist + "/t10k-images-idx3-ubyte.gz", labels = mnist + "/t10k-labels-idx1-ubyte.gz"

        // Export refuses a folder that is not empty, and labels that do not match the images.
        try FileManager.default.createDirectory(atPath: scratch.file("busy"), withIntermediateDirectories: true)
        writeBytes([1], to: scratch.file("busy/file"))
        let busy = try run(["export", "--images", images, "--labels", labels, "--output", scratch.file("busy")])
        XCTAssertEqual(busy.status, 1)
        XCTAssertTrue(busy.errors.contains("not empty"), busy.errors)
        let swapped = try run(["export", "--images", labels, "--labels", labels, "--output", scratch.file("x")])
        XCTAssertEqual(swapped.status, 1)
        XCTAssertTrue(swapped.errors.contains("[N, H, W]"), swapped.errors)
        let names = try run(["export", "--images", images, "--labels", labels, "--output", scratch.file("y"),
                             "--limit", "20", "--class-names", "a,b"])
        XCTAssertEqual(names.status, 1)
        XCTAssertTrue(names.errors.contains("only 2 names"), names.errors)

        // Import of a missing folder or a folder with a corrupt image names the path.
        let missing = try run(["import", scratch.file("absent"), "--images", scratch.file("i.idx"), "--labels", scratch.file("l.idx")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.errors.contains(scratch.file("absent") + ": no such image folder"), missing.errors)
        try FileManager.default.createDirectory(atPath: scratch.file("bad/cls"), withIntermediateDirectories: true)
        writeBytes(Array("not a png".utf8), to: scratch.file("bad/cls/x.png"))
        let corrupt = try run(["import", scratch.file("bad"), "--images", scratch.file("i.idx"), "--labels", scratch.file("l.idx")])
        XCTAssertEqual(corrupt.status, 1)
        XCTAssertTrue(corrupt.errors.contains(scratch.file("bad/cls/x.png")), corrupt.errors)
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.file("i.idx")), "nothing is written after a failure")

        // Usage errors exit with ArgumentParser's status 64.
        let size = try run(["import", scratch.file("bad"), "--images", "i", "--labels", "l", "--size", "big"])
        XCTAssertEqual(size.status, 64)
        XCTAssertTrue(size.errors.contains("--size"), size.errors)
        let channels = try run(["import", scratch.file("bad"), "--images", "i", "--labels", "l", "--channels", "2"])
        XCTAssertEqual(channels.status, 64)
    }
}
