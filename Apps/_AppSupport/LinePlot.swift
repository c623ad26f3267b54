import Datasets

extension PictureCanvas {
    /// Draws a straight line from `(y0, x0)` to `(y1, x1)`, one pixel wide (Bresenham).
    public mutating func line(_ y0: Int, _ x0: Int, _ y1: Int, _ x1: Int, _ rgb: RGB) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        while true {
            set(y, x, rgb)
            if x == x1 && y == y1 { return }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    /// Plots each series as a polyline in the box at `(top, left)` of `height x width` pixels,
    /// all on one vertical scale (their joint minimum to maximum) and the same horizontal one
    /// (index 0 at the left edge, the longest series' last index at the right), with a frame.
    /// Non-finite values break a line.
    public mutating func plot(_ series: [(values: [Double], color: RGB)], top: Int, left: Int, height: Int, width: Int) {
        let frame: RGB = (0.6, 0.6, 0.6)
        line(top, left, top, left + width - 1, frame)
        line(top + height - 1, left, top + height - 1, left + width - 1, frame)
        line(top, left, top + height - 1, left, frame)
        line(top, left + width - 1, top + height - 1, left + width - 1, frame)
        let finite = series.flatMap { $0.values.filter(\.isFinite) }
        guard let low = finite.min(), let high = finite.max(), let longest = series.map(\.values.count).max(), longest > 1 else { return }
        let span = high > low ? high - low : 1
        func point(_ i: Int, _ v: Double) -> (Int, Int) {
            let x = left + 2 + Int((Double(i) / Double(longest - 1) * Double(width - 5)).rounded())
            let y = top + 2 + Int(((high - v) / span * Double(height - 5)).rounded())
            return (y, x)
        }
        for (values, color) in series {
            var previous: (Int, Int)?
            for (i, v) in values.enumerated() {
                guard v.isFinite else { previous = nil; continue }
                let p = point(i, v)
                if let q = previous { line(q.0, q.1, p.0, p.1, color) } else { set(p.0, p.1, color) }
                previous = p
            }
        }
    }
}
