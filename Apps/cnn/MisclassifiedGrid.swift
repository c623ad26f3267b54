import Datasets
import TensorCore

/// Digits 0...9 in a 3x5 pixel font, row by row from the top, `1` for a lit pixel.
private let digitFont: [String] = [
    "111101101101111", "010110010010111", "111001111100111", "111001111001111", "101101111001001",
    "111100111001111", "111100111101111", "111001010010010", "111101111101111", "111101111001111",
]

/// An RGB canvas of Float pixels in 0...1, black to begin with.
private struct Canvas {
    let height: Int, width: Int
    var pixels: [Float]

    init(height: Int, width: Int) {
        self.height = height
        self.width = width
        pixels = [Float](repeating: 0, count: height * width * 3)
    }

    mutating func set(_ y: Int, _ x: Int, _ rgb: (Float, Float, Float)) {
        let i = (y * width + x) * 3
        pixels[i] = rgb.0
        pixels[i + 1] = rgb.1
        pixels[i + 2] = rgb.2
    }

    mutating func fill(top: Int, left: Int, height h: Int, width w: Int, _ rgb: (Float, Float, Float)) {
        for y in top..<(top + h) { for x in left..<(left + w) { set(y, x, rgb) } }
    }

    mutating func digit(_ d: Int, top: Int, left: Int, _ rgb: (Float, Float, Float)) {
        for (i, bit) in digitFont[d].enumerated() where bit == "1" { set(top + i / 3, left + i % 3, rgb) }
    }

    /// The canvas as `[H * scale, W * scale, 3]`, each pixel repeated `scale` times each way.
    func tensor(scale: Int) -> Tensor {
        let (h, w) = (height * scale, width * scale)
        var out = [Float](repeating: 0, count: h * w * 3)
        for y in 0..<h {
            for x in 0..<w {
                let source = ((y / scale) * width + x / scale) * 3, target = (y * w + x) * 3
                out[target] = pixels[source]
                out[target + 1] = pixels[source + 1]
                out[target + 2] = pixels[source + 2]
            }
        }
        return Tensor(shape: [h, w, 3], scalars: out)
    }
}

/// Draws up to `limit` misclassified images (the first ones, in test-set order) in a grid of ten
/// columns and writes it as a PNG, magnified twice. Each tile is the gray image in a red frame,
/// with the predicted class (red) and the true class (green) written under it as digits.
///
/// - Parameters:
///   - images: `[N, 28, 28, 1]` in 0...1.
///   - labels: the true classes, 0...9.
///   - predicted: the predicted classes, 0...9.
/// - Returns: how many images the picture shows (0 when nothing was misclassified; the file is then
///   a single black tile).
/// - Throws: `DatasetError` when the file cannot be written.
func writeMisclassified(images: Tensor, labels: [Int], predicted: [Int], limit: Int = 100, to path: String) throws -> Int {
    let wrong = Array(labels.indices.filter { labels[$0] != predicted[$0] }.prefix(limit))
    let (side, border, caption, gap) = (images.shape[1], 2, 8, 2)
    let tileWidth = side + 2 * border, tileHeight = side + 2 * border + caption
    let columns = 10, rows = max(1, (wrong.count + columns - 1) / columns)
    var canvas = Canvas(height: rows * (tileHeight + gap) + gap, width: columns * (tileWidth + gap) + gap)
    let red: (Float, Float, Float) = (0.95, 0.2, 0.2), green: (Float, Float, Float) = (0.3, 0.9, 0.3)
    images.withUnsafeBufferPointer { pixels in
        for (k, index) in wrong.enumerated() {
            let top = gap + (k / columns) * (tileHeight + gap), left = gap + (k % columns) * (tileWidth + gap)
            canvas.fill(top: top, left: left, height: side + 2 * border, width: tileWidth, red)
            for y in 0..<side {
                for x in 0..<side {
                    let v = pixels[(index * side + y) * side + x]
                    canvas.set(top + border + y, left + border + x, (v, v, v))
                }
            }
            // Caption: predicted class on the left, true class on the right.
            let captionTop = top + side + 2 * border + 2
            canvas.digit(predicted[index] % 10, top: captionTop, left: left + tileWidth / 4 - 1, red)
            canvas.digit(labels[index] % 10, top: captionTop, left: left + 3 * tileWidth / 4 - 2, green)
        }
    }
    try ImageEncoder.writePNG(canvas.tensor(scale: 2), to: path)
    return wrong.count
}
