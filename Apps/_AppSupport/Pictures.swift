import Datasets
import TensorCore

/// Digits 0...9 in a 3x5 pixel font, row by row from the top, `1` for a lit pixel.
private let pictureDigitFont: [String] = [
    "111101101101111", "010110010010111", "111001111100111", "111001111001111", "101101111001001",
    "111100111001111", "111100111101111", "111001010010010", "111101111101111", "111101111001111",
]

/// An RGB colour with components in 0...1.
public typealias RGB = (Float, Float, Float)

/// Ten colours that stay apart on black and white (matplotlib's `tab10`), one per class.
public let classPalette: [RGB] = [
    (0.12, 0.47, 0.71), (1.0, 0.50, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16), (0.58, 0.40, 0.74),
    (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.50, 0.50, 0.50), (0.74, 0.74, 0.13), (0.09, 0.75, 0.81),
]

/// A small RGB raster for the demos' pictures: tiles of gray images, scatter plots, digits;
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

    /// Writes a non-negative integer in the 3x5 font, `scale` pixels per font pixel.
    public mutating func number(_ n: Int, top: Int, left: Int, scale: Int = 1, _ rgb: RGB = (1, 1, 1)) {
        for (k, ch) in String(n).enumerated() {
            guard let d = ch.wholeNumberValue else { continue }
            for (i, bit) in pictureDigitFont[d].enumerated() where bit == "1" {
                fill(top: top + (i / 3) * scale, left: left + k * 4 * scale + (i % 3) * scale, height: scale, width: scale, rgb)
            }
        }
    }

    /// A filled disc of `radius` pixels around `(y, x)`.
    public mutating func dot(_ y: Int, _ x: Int, radius: Int, _ rgb: RGB) {
        for dy in -radius...radius { for dx in -radius...radius where dy * dy + dx * dx <= radius * radius { set(y + dy, x + dx, rgb) } }
    }

    /// Draws a scatter plot of `points` coloured by `labels` (through ``classPalette``) in the
    /// square panel at `(top, left)` of side `size`, scaled to the points' range, in a gray frame.
    public mutating func scatter(_ points: [(Float, Float)], labels: [Int], top: Int, left: Int, size: Int) {
        fill(top: top, left: left, height: size, width: size, (0.35, 0.35, 0.35))
        fill(top: top + 1, left: left + 1, height: size - 2, width: size - 2, (1, 1, 1))
        guard !points.isEmpty else { return }
        // The central 99% of each axis, so a few outliers do not squash the plot.
        func range(_ values: [Float]) -> (Float, Float) {
            let s = values.sorted()
            let lo = s[s.count / 200], hi = s[Swift.min(s.count - 1, s.count - 1 - s.count / 200)]
            return hi > lo ? (lo, hi) : (lo - 1, lo + 1)
        }
        let (x0, x1) = range(points.map(\.0)), (y0, y1) = range(points.map(\.1))
        let margin = 6, inner = Float(size - 2 * margin)
        for (i, p) in points.enumerated() {
            let px = left + margin + Int((p.0 - x0) / (x1 - x0) * inner)
            let py = top + margin + Int((1 - (p.1 - y0) / (y1 - y0)) * inner)
            guard px >= left + 1, px < left + size - 1, py >= top + 1, py < top + size - 1 else { continue }
            dot(py, px, radius: 1, classPalette[labels[i] % classPalette.count])
        }
    }

    /// The canvas as a `[H, W, 3]` tensor.
    public var tensor: Tensor { Tensor(shape: [height, width, 3], scalars: pixels) }

    /// Writes the canvas as an 8-bit RGB PNG.
    /// - Throws: `DatasetError` when the file cannot be written.
    public func writePNG(to path: String) throws { try ImageEncoder.writePNG(tensor, to: path) }
}

/// Writes rows of gray images as one PNG: row `r` shows the images of `rows[r]` (`[n, H, W, 1]`
/// or `[n, H, W]`, values in 0...1) side by side, magnified `scale` times, with 2-pixel gaps;
/// row labels are drawn as numbers when `labels` is given.
/// - Throws: `DatasetError` when the file cannot be written.
public func writeImageRows(_ rows: [Tensor], scale: Int = 2, rowNumbers: [Int]? = nil, to path: String) throws {
    let gap = 2, labelWidth = rowNumbers == nil ? 0 : 14
    let h = rows.first?.shape[1] ?? 1, w = rows.first?.shape[2] ?? 1
    let columns = rows.map { $0.shape[0] }.max() ?? 1
    var canvas = PictureCanvas(height: rows.count * (h * scale + gap) + gap,
                               width: labelWidth + columns * (w * scale + gap) + gap, background: (0.15, 0.15, 0.2))
    for (r, row) in rows.enumerated() {
        let top = gap + r * (h * scale + gap)
        if let rowNumbers { canvas.number(rowNumbers[r], top: top + h * scale / 2 - 2, left: 2, (1, 0.8, 0.2)) }
        for c in 0..<row.shape[0] {
            canvas.image(row.slice(c..<(c + 1)).reshaped([h, w]), top: top, left: labelWidth + gap + c * (w * scale + gap), scale: scale)
        }
    }
    try canvas.writePNG(to: path)
}
