import _AppSupport
import Datasets
import TensorCore

/// Draws up to `limit` misclassified images (the first ones, in test-set order) in a grid of ten
/// columns and writes it as a PNG, magnified twice. Each tile is the gray image in a red frame,
/// with the predicted class (red) and the true class (green) written under it as numbers; a key
/// under the grid names the classes (`classNames[i]` for number `i`, e.g. "0 T-shirt/top").
///
/// - Parameters:
///   - images: `[N, 28, 28, 1]` in 0...1.
///   - labels: the true classes, 0...9.
///   - predicted: the predicted classes, 0...9.
///   - classNames: the data set's class names, label `i` first at index `i`.
/// - Returns: how many images the picture shows (0 when nothing was misclassified; the grid is then
///   a single black tile).
/// - Throws: `DatasetError` when the file cannot be written.
func writeMisclassified(images: Tensor, labels: [Int], predicted: [Int], classNames: [String], limit: Int = 100,
                        to path: String) throws -> Int {
    let wrong = Array(labels.indices.filter { labels[$0] != predicted[$0] }.prefix(limit))
    let (side, border, caption, gap) = (images.shape[1], 2, BitmapFont.lineHeight + 1, 2)
    let tileWidth = side + 2 * border, tileHeight = side + 2 * border + caption
    let columns = 10, rows = max(1, (wrong.count + columns - 1) / columns)
    let width = columns * (tileWidth + gap) + gap, gridHeight = rows * (tileHeight + gap) + gap
    let red: RGB = (0.95, 0.2, 0.2), green: RGB = (0.3, 0.9, 0.3), ink: RGB = (0.9, 0.9, 0.9)
    let header = "predicted (red), true (green):"
    // Names the numbers only where they differ from them (not for MNIST's "0"..."9").
    let key = classNames.enumerated().map { "\($0.offset) \($0.element)" }
    let namesAreNumbers = classNames.enumerated().allSatisfy { $0.element == String($0.offset) }
    let keyHeight = BitmapFont.lineHeight + (namesAreNumbers ? 0 : PictureCanvas.legendHeight(key, width: width - 2 * gap))
    var canvas = PictureCanvas(height: gridHeight + keyHeight + gap, width: width)
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
            canvas.text(String(predicted[index]), top: captionTop, center: left + tileWidth / 4, red)
            canvas.text(String(labels[index]), top: captionTop, center: left + 3 * tileWidth / 4, green)
        }
    }
    canvas.text(header, top: gridHeight, left: gap, ink)
    if !namesAreNumbers {
        canvas.legend(key.map { (name: $0, color: (0.45, 0.45, 0.45)) },
                      top: gridHeight + BitmapFont.lineHeight, left: gap, width: width - 2 * gap, ink: ink)
    }
    try canvas.magnified(2).writePNG(to: path)
    return wrong.count
}
