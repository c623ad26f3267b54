import Datasets
import Foundation

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

    /// Plots each series as a polyline in the panel at `(top, left)` of `height x width` pixels:
    /// `title` (large) and a legend of `names` (one per series) above, numbered ticks on both
    /// axes, all series on one vertical scale (their joint minimum to maximum) and the same
    /// horizontal one (index 0 at the left edge, the longest series' last index at the right,
    /// numbered from `xRange.0` to `xRange.1`; default the indices). Non-finite values break a line.
    public mutating func plot(_ series: [(values: [Double], color: RGB)], top: Int, left: Int, height: Int, width: Int,
                              title: String? = nil, names: [String]? = nil, xRange: (Double, Double)? = nil,
                              ink: RGB = (0.85, 0.85, 0.85)) {
        let finite = series.flatMap { $0.values.filter(\.isFinite) }
        let longest = series.map(\.values.count).max() ?? 0
        var yRange = (finite.min() ?? 0, finite.max() ?? 1)
        if yRange.1 <= yRange.0 { yRange = (yRange.0 - 1, yRange.0 + 1) }
        var x = xRange ?? (0, Double(Swift.max(1, longest - 1)))
        if x.1 <= x.0 { x.1 = x.0 + 1 }
        let entries = zip(names ?? [], series).map { (name: $0, color: $1.color) }
        let frame = PlotFrame(top: top, left: left, height: height, width: width, title: title, xRange: x, yRange: yRange,
                              inset: 2, headerMinimum: entries.isEmpty ? 0 : BitmapFont.lineHeight + 4)
        frame.drawAxes(on: &self, ink: ink, frame: (0.6, 0.6, 0.6), inside: nil)
        if let title { text(title, top: top, left: frame.plotLeft, scale: 2, ink) }
        if !entries.isEmpty {
            let legendWidth = entries.map { 7 + BitmapFont.width(of: $0.name) }.reduce(0, +) + (entries.count - 1) * 3 * BitmapFont.advance
            legend(entries, top: frame.plotTop - BitmapFont.lineHeight - 3, left: frame.plotRight + 1 - legendWidth,
                   width: legendWidth + 1, ink: ink)
        }
        guard longest > 1 else { return }
        for (values, color) in series {
            var previous: (Int, Int)?
            for (i, v) in values.enumerated() {
                guard v.isFinite else { previous = nil; continue }
                let p = frame.pixel(x.0 + Double(i) / Double(longest - 1) * (x.1 - x.0), v)
                if let q = previous { line(q.0, q.1, p.0, p.1, color) } else { set(p.0, p.1, color) }
                previous = p
            }
        }
    }
}

/// The axes of one plot panel: where the frame goes inside the panel (below a title, right of the
/// y tick labels, above the x tick labels), the ticks at round numbers, and data to pixels.
struct PlotFrame {
    /// The frame's edges (its lines are on these rows and columns).
    let plotTop: Int, plotLeft: Int, plotBottom: Int, plotRight: Int
    let xRange: (Double, Double), yRange: (Double, Double)
    /// Pixels between the frame and the data range's ends.
    let inset: Int
    let xTicks: (values: [Double], step: Double), yTicks: (values: [Double], step: Double)

    init(top: Int, left: Int, height: Int, width: Int, title: String?, xRange: (Double, Double), yRange: (Double, Double),
         inset: Int, headerMinimum: Int = 0) {
        self.xRange = xRange
        self.yRange = yRange
        self.inset = inset
        let yt = Self.ticks(yRange.0, yRange.1, target: Swift.max(2, height / 45))
        let xt = Self.ticks(xRange.0, xRange.1, target: Swift.max(2, width / 70))
        yTicks = yt
        xTicks = xt
        let yLabelWidth = yt.values.map { BitmapFont.width(of: Self.label($0, step: yt.step)) }.max() ?? 0
        let xLabelHalf = (xt.values.map { BitmapFont.width(of: Self.label($0, step: xt.step)) }.max() ?? 0) / 2
        plotTop = top + Swift.max(title == nil ? 4 : BitmapFont.height(scale: 2) + 6, headerMinimum)
        plotLeft = left + yLabelWidth + 6
        plotBottom = top + height - 1 - (BitmapFont.height() + 5)
        plotRight = left + width - 1 - xLabelHalf
    }

    /// The pixel `(row, column)` of the data point `(x, y)`.
    func pixel(_ x: Double, _ y: Double) -> (Int, Int) {
        let w = Double(plotRight - plotLeft - 2 * inset), h = Double(plotBottom - plotTop - 2 * inset)
        let column = plotLeft + inset + Int(((x - xRange.0) / (xRange.1 - xRange.0) * w).rounded())
        let row = plotTop + inset + Int(((yRange.1 - y) / (yRange.1 - yRange.0) * h).rounded())
        return (row, column)
    }

    /// The frame (filled with `inside` when given), tick marks and their numbers in `ink`.
    func drawAxes(on canvas: inout PictureCanvas, ink: RGB, frame: RGB, inside: RGB?) {
        if let inside {
            canvas.fill(top: plotTop, left: plotLeft, height: plotBottom - plotTop + 1, width: plotRight - plotLeft + 1, inside)
        }
        canvas.line(plotTop, plotLeft, plotTop, plotRight, frame)
        canvas.line(plotBottom, plotLeft, plotBottom, plotRight, frame)
        canvas.line(plotTop, plotLeft, plotBottom, plotLeft, frame)
        canvas.line(plotTop, plotRight, plotBottom, plotRight, frame)
        for v in yTicks.values {
            let row = pixel(xRange.0, v).0
            canvas.line(row, plotLeft - 3, row, plotLeft - 1, frame)
            canvas.text(Self.label(v, step: yTicks.step), top: row - 3, right: plotLeft - 4, ink)
        }
        for v in xTicks.values {
            let column = pixel(v, yRange.0).1
            canvas.line(plotBottom + 1, column, plotBottom + 3, column, frame)
            canvas.text(Self.label(v, step: xTicks.step), top: plotBottom + 5, center: column + 1, ink)
        }
    }

    /// Round numbers (multiples of 1, 2 or 5 times a power of ten) in `lo...hi`, about `target` of them.
    static func ticks(_ lo: Double, _ hi: Double, target: Int) -> (values: [Double], step: Double) {
        guard lo.isFinite, hi.isFinite, hi > lo else { return ([], 1) }
        let raw = (hi - lo) / Double(Swift.max(1, target))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw * 0.999 } ?? 10 * magnitude
        let first = (lo / step - 1e-9).rounded(.up)
        var values: [Double] = []
        var k = 0.0
        while (first + k) * step <= hi + step * 1e-9 {
            values.append((first + k) * step)
            k += 1
        }
        return (values, step)
    }

    /// `value` with as many decimals as `step` needs (`0.5` → one), never `-0`.
    static func label(_ value: Double, step: Double) -> String {
        let decimals = Swift.max(0, Int((-log10(step)).rounded(.up)))
        let v = abs(value) < step * 1e-6 ? 0 : value
        return String(format: "%.\(decimals)f", v)
    }
}
