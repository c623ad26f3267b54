import TensorCore
import XCTest
import _AppSupport

/// The apps' text renderer (`BitmapFont` in `_AppSupport`): every printable ASCII character has
/// its own glyph, text stays inside the box the font measures, and titles and labels reach the
/// pictures.
final class PictureTextTests: XCTestCase {
    private let printable = (0x20...0x7E).map { Character(Unicode.Scalar(UInt8($0))) }

    func testEveryPrintableCharacterHasItsOwnGlyph() throws {
        var seen: [[UInt8]: Character] = [:]
        for character in printable {
            let rows = try XCTUnwrap(BitmapFont.glyph(character), "no glyph for \(character)")
            XCTAssertEqual(rows.count, BitmapFont.glyphHeight)
            XCTAssertTrue(rows.allSatisfy { $0 < 1 << BitmapFont.glyphWidth }, "\(character) is wider than the cell")
            XCTAssertEqual(rows.allSatisfy { $0 == 0 }, character == " ", "only the space is blank (\(character))")
            if let other = seen[Array(rows)] { XCTFail("\(character) and \(other) share a glyph") }
            seen[Array(rows)] = character
        }
        XCTAssertEqual(seen.count, 95)
        XCTAssertNil(BitmapFont.glyph("\u{7F}"))
        XCTAssertNil(BitmapFont.glyph("\n"))
        XCTAssertNil(BitmapFont.glyph("é"))
    }

    func testMeasuredWidth() {
        XCTAssertEqual(BitmapFont.width(of: ""), 0)
        XCTAssertEqual(BitmapFont.width(of: "A"), BitmapFont.glyphWidth)
        XCTAssertEqual(BitmapFont.width(of: "T-shirt/top", scale: 2), 2 * (11 * BitmapFont.advance - 1))
        XCTAssertEqual(BitmapFont.height(scale: 3), 3 * BitmapFont.glyphHeight)
    }

    /// Lit pixels of `canvas` as (row, column), where any component is above zero.
    private func lit(_ canvas: PictureCanvas) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        for y in 0..<canvas.height {
            for x in 0..<canvas.width where (0..<3).contains(where: { canvas.pixels[(y * canvas.width + x) * 3 + $0] > 0 }) {
                out.append((y, x))
            }
        }
        return out
    }

    func testTextMarksPixelsInsideItsMeasuredBoxOnly() {
        for (text, scale) in [("Hg_", 1), ("Hg_", 3), (String(printable), 1), ("T-shirt/top", 2)] {
            var canvas = PictureCanvas(height: 60, width: 700)
            let (top, left) = (7, 11)
            canvas.text(text, top: top, left: left, scale: scale, (1, 1, 1))
            let width = BitmapFont.width(of: text, scale: scale), height = BitmapFont.height(scale: scale)
            let pixels = lit(canvas)
            XCTAssertFalse(pixels.isEmpty, text)
            for (y, x) in pixels {
                XCTAssertTrue((top..<(top + height)).contains(y) && (left..<(left + width)).contains(x),
                              "\(text) at scale \(scale) lit (\(y), \(x)) outside its box")
            }
            if text == "Hg_" {
                // The box is tight: H reaches the top-left corner, g the bottom row, _ the right edge.
                XCTAssertEqual(pixels.map(\.0).min(), top)
                XCTAssertEqual(pixels.map(\.0).max(), top + height - 1)
                XCTAssertEqual(pixels.map(\.1).min(), left)
                XCTAssertEqual(pixels.map(\.1).max(), left + width - 1)
            }
        }
        // Clipped at the canvas' edges, not wrapped.
        var small = PictureCanvas(height: 5, width: 5)
        small.text("WWW", top: -2, left: -3, scale: 2, (1, 1, 1))
        XCTAssertFalse(lit(small).isEmpty)
    }

    func testTitlesAndLabelsChangeThePictures() {
        let rows = [Tensor(shape: [3, 4, 4, 1], scalars: (0..<48).map { Float($0 % 7) / 7 })]
        let plain = imageRowsPicture(rows)
        let titled = imageRowsPicture(rows, title: "original"), other = imageRowsPicture(rows, title: "noisy")
        XCTAssertGreaterThan(titled.height, plain.height)
        XCTAssertEqual(titled.height, other.height)
        XCTAssertNotEqual(titled.pixels, other.pixels, "the title is drawn")
        let labelled = imageRowsPicture(rows, rowLabels: ["PCA"]), relabelled = imageRowsPicture(rows, rowLabels: ["GAN"])
        XCTAssertGreaterThan(labelled.width, plain.width)
        XCTAssertNotEqual(labelled.pixels, relabelled.pixels, "the row label is drawn")

        func plot(_ title: String?, _ names: [String]?) -> PictureCanvas {
            var canvas = PictureCanvas(height: 200, width: 400)
            canvas.plot([([0.5, 0.3, 0.2, 0.15], (1, 0.5, 0)), ([0.6, 0.4, 0.35, 0.3], (0, 0.5, 1))],
                        top: 0, left: 0, height: 200, width: 400, title: title, names: names)
            return canvas
        }
        XCTAssertNotEqual(plot("loss", nil).pixels, plot("accuracy", nil).pixels)
        XCTAssertNotEqual(plot(nil, ["training", "validation"]).pixels, plot(nil, ["train", "test"]).pixels)

        var a = PictureCanvas(height: 300, width: 300, background: (1, 1, 1)), b = a
        let points: [(Float, Float)] = (0..<50).map { (Float($0), Float($0 * $0) / 10) }
        a.scatter(points, labels: Array(repeating: 0, count: 50), top: 0, left: 0, size: 300, title: "PCA codes")
        b.scatter(points, labels: Array(repeating: 0, count: 50), top: 0, left: 0, size: 300, title: "dense autoencoder codes")
        XCTAssertNotEqual(a.pixels, b.pixels)
    }
}
