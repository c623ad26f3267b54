import Datasets
import Foundation
import TensorCore

/// An RGB colour with components in 0...1.
public typealias RGB = (Float, Float, Float)

/// Ten colours that stay apart on black and white (matplotlib's `tab10`), one per class.
public let classPalette: [RGB] = [
    (0.12, 0.47, 0.71), (1.0, 0.50, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.40, 0.74),
    (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.50, 0.50, 0.50), (0.74, 0.74, 0.13), (0.09, 0.75, 0.81),
]

/// A small RGB raster for the demos' pictures: tiles of gray images, scatter plots, text (``BitmapFont``);
/// written as PNG through Datasets' `ImageEncoder`.
public struct PictureCanvas {
    /// Rows.
    public let height: Int
    /// Columns.
    public let width: Int
    /// `height * width * 3` components in 0...1, row-major.
    public private(set) var pixels: [Float]

    /// A canvas filled with `background`.
    public init(height: Int, width: Int, background: RGB = (0, 0, 0)) {
        self.height = height
        self.width = width
        pixels = [Float](repeating: 0, count: height * width * 3)
        fill(top: 0, left: 0, height: height, width: width, background)
    }

    /// Colours one pixel; points outside the canvas are ignored.
    public mutating func set(_ y: Int, _ x: Int, _ rgb: RGB) {
        guard y >= 0, y < height, x >= 0, x < width else { return }
        let i = (y * width + x) * 3
        pixels[i] = rgb.0
        pixels[i + 1] = rgb.1
        pixels[i + 2] = rgb.2
    }

    /// Fills a rectangle (clipped to the canvas).
    public mutating func fill(top: Int, left: Int, height h: Int, width w: Int, _ rgb: RGB) {
        for y in top..<(top + h) { for x in left..<(left + w) { set(y, x, rgb) } }
    }

    /// Draws a gray image `[H, W]` or `[H, W, 1]` (values clamped to 0...1), each pixel
    /// `scale x scale`.
    public mutating func image(_ image: Tensor, top: Int, left: Int, scale: Int = 1) {
        let h = image.shape[0], w = image.shape[1]
        let values = image.scalars
        for y in 0..<(h * scale) {
            for x in 0..<(w * scale) {
                let v = Swift.min(1, Swift.max(0, values[(y / scale) * w + x / scale]))
                set(top + y, left + x, (v, v, v))
            }
        }
    }

    /// A filled disc of `radius` pixels around `(y, x)`.
    public mutating func dot(_ y: Int, _ x: Int, radius: Int, _ rgb: RGB) {
        for dy in -radius...radius { for dx in -radius...radius where dy * dy + dx * dx <= radius * radius { set(y + dy, x + dx, rgb) } }
    }

    /// Draws a scatter plot of `points` coloured by `labels` (through ``classPalette``) in the
    /// square panel at `(top, left)` of side `size`: `title` above (when given), numbered ticks on
    /// both axes, and the points, scaled to their range, in a gray frame on white.
    public mutating func scatter(_ points: [(Float, Float)], labels: [Int], top: Int, left: Int, size: Int,
                                 title: String? = nil, ink: RGB = (0, 0, 0)) {
        // The central 99% of each axis, so a few outliers do not squash the plot.
        func range(_ values: [Float]) -> (Double, Double) {
            guard !values.isEmpty else { return (0, 1) }
            let s = values.sorted()
            let lo = Double(s[s.count / 200]), hi = Double(s[Swift.min(s.count - 1, s.count - 1 - s.count / 200)])
            return hi > lo ? (lo, hi) : (lo - 1, lo + 1)
        }
        let (x0, x1) = range(points.map(\.0)), (y0, y1) = range(points.map(\.1))
        let frame = PlotFrame(top: top, left: left, height: size, width: size, title: title,
                              xRange: (x0, x1), yRange: (y0, y1), inset: 6)
        frame.drawAxes(on: &self, ink: ink, frame: (0.35, 0.35, 0.35), inside: (1, 1, 1))
        if let title { text(title, top: top, center: frame.plotLeft + (frame.plotRight - frame.plotLeft) / 2, scale: 2, ink) }
        for (i, p) in points.enumerated() {
            let (py, px) = frame.pixel(Double(p.0), Double(p.1))
            guard px > frame.plotLeft, px < frame.plotRight, py > frame.plotTop, py < frame.plotBottom else { continue }
            dot(py, px, radius: 1, classPalette[labels[i] % classPalette.count])
        }
    }

    /// Draws a legend: for each entry a `4 * scale` square swatch of its colour and its name in
    /// `ink`, left to right from `(top, left)`, wrapping to a new line before `width` columns.
    /// - Returns: the rows it took (see ``legendHeight(_:width:scale:)``).
    @discardableResult
    public mutating func legend(_ entries: [(name: String, color: RGB)], top: Int, left: Int, width: Int,
                                scale: Int = 1, ink: RGB = (0, 0, 0)) -> Int {
        let places = Self.legendPlaces(entries.map(\.name), width: width, scale: scale)
        for (entry, place) in zip(entries, places) {
            let y = top + place.line * BitmapFont.lineHeight * scale, x = left + place.x
            fill(top: y + scale, left: x, height: 5 * scale, width: 5 * scale, entry.color)
            text(entry.name, top: y, left: x + 7 * scale, scale: scale, ink)
        }
        return ((places.map(\.line).max() ?? -1) + 1) * BitmapFont.lineHeight * scale
    }

    /// The rows ``legend(_:top:left:width:scale:ink:)`` takes for these names.
    public static func legendHeight(_ names: [String], width: Int, scale: Int = 1) -> Int {
        ((legendPlaces(names, width: width, scale: scale).map(\.line).max() ?? -1) + 1) * BitmapFont.lineHeight * scale
    }

    private static func legendPlaces(_ names: [String], width: Int, scale: Int) -> [(line: Int, x: Int)] {
        var places: [(line: Int, x: Int)] = [], line = 0, x = 0
        for name in names {
            let w = 7 * scale + BitmapFont.width(of: name, scale: scale)
            if x > 0 && x + w > width { line += 1; x = 0 }
            places.append((line, x))
            x += w + 3 * BitmapFont.advance * scale
        }
        return places
    }

    /// This canvas with each pixel repeated `factor` times each way.
    public func magnified(_ factor: Int) -> PictureCanvas {
        var out = PictureCanvas(height: height * factor, width: width * factor)
        for y in 0..<out.height {
            for x in 0..<out.width {
                let source = ((y / factor) * width + x / factor) * 3, target = (y * out.width + x) * 3
                out.pixels[target] = pixels[source]
                out.pixels[target + 1] = pixels[source + 1]
                out.pixels[target + 2] = pixels[source + 2]
            }
        }
        return out
    }

    /// The canvas as a `[H, W, 3]` tensor.
    public var tensor: Tensor { Tensor(shape: [height, width, 3], scalars: pixels) }

    /// Writes the canvas as an 8-bit RGB PNG.
    /// - Throws: `DatasetError` when the file cannot be written.
    public func writePNG(to path: String) throws { try ImageEncoder.writePNG(tensor, to: path) }
}

/// Writes rows of gray images as one PNG: row `r` shows the images of `rows[r]` (`[n, H, W, 1]`
/// or `[n, H, W]`, values in 0...1) side by side, magnified `scale` times, with 2-pixel gaps;
/// `title` above them and `rowLabels[r]` left of row `r` when given.
/// - Throws: `DatasetError` when the file cannot be written.
public func writeImageRows(_ rows: [Tensor], scale: Int = 2, title: String? = nil, rowLabels: [String]? = nil,
                           to path: String) throws {
    try imageRowsPicture(rows, scale: scale, title: title, rowLabels: rowLabels).writePNG(to: path)
}

/// The picture ``writeImageRows(_:scale:title:rowLabels:to:)`` writes.
public func imageRowsPicture(_ rows: [Tensor], scale: Int = 2, title: String? = nil, rowLabels: [String]? = nil) -> PictureCanvas {
    let gap = 2, ink: RGB = (0.95, 0.95, 0.95), labelInk: RGB = (1, 0.8, 0.2)
    let labelWidth = (rowLabels?.map { BitmapFont.width(of: $0) }.max()).map { $0 + 8 } ?? 0
    let header = title == nil ? 0 : BitmapFont.height(scale: 2) + 6
    let h = rows.first?.shape[1] ?? 1, w = rows.first?.shape[2] ?? 1
    let columns = rows.map { $0.shape[0] }.max() ?? 1
    let gridWidth = labelWidth + columns * (w * scale + gap) + gap
    let titleWidth = title.map { BitmapFont.width(of: $0, scale: 2) + 2 * gap + 4 } ?? 0
    var canvas = PictureCanvas(height: header + rows.count * (h * scale + gap) + gap,
                               width: Swift.max(gridWidth, titleWidth), background: (0.15, 0.15, 0.2))
    if let title { canvas.text(title, top: gap + 2, left: gap + 2, scale: 2, ink) }
    for (r, row) in rows.enumerated() {
        let top = header + gap + r * (h * scale + gap)
        if let rowLabels, r < rowLabels.count {
            canvas.text(rowLabels[r], top: top + (h * scale - BitmapFont.height()) / 2 + 1, left: gap + 2, labelInk)
        }
        for c in 0..<row.shape[0] {
            canvas.image(row.slice(c..<(c + 1)).reshaped([h, w]), top: top, left: labelWidth + gap + c * (w * scale + gap), scale: scale)
        }
    }
    return canvas
}
