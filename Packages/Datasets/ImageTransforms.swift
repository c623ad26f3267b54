import Foundation
import TensorCore

/// How `Tensor.resized(to:method:)` computes an output pixel.
public enum ResizeMethod: Sendable, Equatable {
    /// Bilinear interpolation with half-pixel centres: output pixel `o` samples the input at
    /// `(o + 0.5) * in / out - 0.5`, clamped to the edge pixels. This is `tf.image.resize`'s
    /// (and Keras' `Resizing` layer's) default `bilinear` with `antialias=False`; it is the
    /// identity when the size does not change. Downscaling by more than 2 skips input pixels.
    case bilinear
    /// Box filter: output pixel `o` is the average of the input over `[o * in/out, (o+1) * in/out)`,
    /// partly covered pixels weighted by the covered fraction, as `tf.image.resize(method: "area")`
    /// and OpenCV's `INTER_AREA` when shrinking. Shrinking by an integer factor gives block averages.
    case area
}

/// Geometry of an image tensor `[H, W, C]` or a batch `[N, H, W, C]`.
private struct ImageLayout {
    var batch: Int, height: Int, width: Int, channels: Int
    var isBatch: Bool

    init(_ shape: [Int], _ function: String) {
        neuritePrecondition(shape.count == 3 || shape.count == 4,
                     "\(function) needs an image [H, W, C] or a batch [N, H, W, C], got shape \(shape)")
        isBatch = shape.count == 4
        batch = isBatch ? shape[0] : 1
        height = shape[shape.count - 3]
        width = shape[shape.count - 2]
        channels = shape[shape.count - 1]
    }

    func shape(height: Int, width: Int) -> [Int] {
        isBatch ? [batch, height, width, channels] : [height, width, channels]
    }
}

/// Input taps of each output position along one axis, in compressed rows: output `o` reads
/// `indices[starts[o] ..< starts[o + 1]]` with `weights` of the same range.
private struct AxisTaps {
    var starts: [Int] = [0]
    var indices: [Int] = []
    var weights: [Float] = []

    init(input: Int, output: Int, method: ResizeMethod) {
        let scale = Double(input) / Double(output)
        for o in 0..<output {
            switch method {
            case .bilinear:
                let position = min(max((Double(o) + 0.5) * scale - 0.5, 0), Double(input - 1))
                let lower = Int(position.rounded(.down))
                let upper = min(lower + 1, input - 1)
                let t = position - Double(lower)
                indices.append(lower); weights.append(Float(1 - t))
                if t > 0 { indices.append(upper); weights.append(Float(t)) }
            case .area:
                let start = Double(o) * scale, end = Double(o + 1) * scale
                var i = Int(start.rounded(.down))
                while Double(i) < end && i < input {
                    let covered = min(end, Double(i + 1)) - max(start, Double(i))
                    if covered > 0 { indices.append(i); weights.append(Float(covered / scale)) }
                    i += 1
                }
            }
            starts.append(indices.count)
        }
    }
}

extension Tensor {
    /// This image (or each image of a batch) resampled to `size`.
    ///
    /// - Parameters:
    ///   - size: the output height and width, each at least 1.
    ///   - method: ``ResizeMethod/bilinear`` (default) or ``ResizeMethod/area``.
    /// - Returns: `[h, w, C]` for an input `[H, W, C]`, `[N, h, w, C]` for `[N, H, W, C]`.
    ///
    /// Separable: rows are resampled, then columns, in Float32; cost is about
    /// `N * C * (H * w * tapsW + h * w * tapsH)` multiply-adds, with 1 or 2 taps for bilinear.
    public func resized(to size: (height: Int, width: Int), method: ResizeMethod = .bilinear) -> Tensor {
        let layout = ImageLayout(shape, "resized(to:)")
        neuritePrecondition(size.height > 0 && size.width > 0, "resized(to:) needs a positive size, got \(size) for shape \(shape)")
        neuritePrecondition(layout.height > 0 && layout.width > 0, "resized(to:) cannot resize an empty image of shape \(shape)")
        if size.height == layout.height && size.width == layout.width && method == .bilinear { return self }
        let c = layout.channels, inH = layout.height, inW = layout.width, outH = size.height, outW = size.width
        let columns = AxisTaps(input: inW, output: outW, method: method)
        let rows = AxisTaps(input: inH, output: outH, method: method)
        // Pass 1: along the width, [N, H, W, C] -> [N, H, w, C].
        let narrow = withUnsafeBufferPointer { source in
            Tensor(shape: [layout.batch * inH, outW, c]) { out in
                out.initialize(repeating: 0)
                for line in 0..<(layout.batch * inH) {
                    let src = source.baseAddress! + line * inW * c, dst = out.baseAddress! + line * outW * c
                    for o in 0..<outW {
                        for k in columns.starts[o]..<columns.starts[o + 1] {
                            let w = columns.weights[k], s = src + columns.indices[k] * c
                            for ch in 0..<c { dst[o * c + ch] += w * s[ch] }
                        }
                    }
                }
            }
        }
        // Pass 2: along the height, [N, H, w, C] -> [N, h, w, C].
        let rowLength = outW * c
        return narrow.withUnsafeBufferPointer { source in
            Tensor(shape: layout.shape(height: outH, width: outW)) { out in
                out.initialize(repeating: 0)
                for n in 0..<layout.batch {
                    for o in 0..<outH {
                        let dst = out.baseAddress! + (n * outH + o) * rowLength
                        for k in rows.starts[o]..<rows.starts[o + 1] {
                            let w = rows.weights[k], src = source.baseAddress! + (n * inH + rows.indices[k]) * rowLength
                            for i in 0..<rowLength { dst[i] += w * src[i] }
                        }
                    }
                }
            }
        }
    }

    /// The central `size` region of this image (or of each image of a batch), as Keras'
    /// `CenterCrop`: the top-left corner is at `((H - h) / 2, (W - w) / 2)`, rounded down.
    /// - Precondition: `size` is positive and no larger than the image.
    public func centerCropped(to size: (height: Int, width: Int)) -> Tensor {
        let layout = ImageLayout(shape, "centerCropped(to:)")
        neuritePrecondition(size.height > 0 && size.width > 0 && size.height <= layout.height && size.width <= layout.width,
                     "centerCropped(to: \(size)) needs a positive size no larger than the image, shape is \(shape)")
        let top = (layout.height - size.height) / 2, left = (layout.width - size.width) / 2
        return croppedImages(layout, size, corners: Array(repeating: (top, left), count: layout.batch))
    }

    /// `(x - mean[c]) / std[c]` for every value of channel `c`, as
    /// `torchvision.transforms.Normalize` and Keras' `Normalization` with fixed statistics.
    /// - Parameters:
    ///   - mean: one value per channel (or one for all channels).
    ///   - std: one positive value per channel (or one for all channels).
    /// - Precondition: the last axis has `mean.count` (and `std.count`) channels, or the counts are 1.
    public func normalized(mean: [Float], std: [Float]) -> Tensor {
        neuritePrecondition(rank >= 1, "normalized(mean:std:) needs at least one axis, got shape \(shape)")
        let c = shape[rank - 1]
        neuritePrecondition((mean.count == c || mean.count == 1) && (std.count == c || std.count == 1),
                     "normalized(mean:std:) got \(mean.count) means and \(std.count) deviations for shape \(shape) with \(c) channels")
        neuritePrecondition(std.allSatisfy { $0 > 0 }, "normalized(mean:std:) needs positive deviations, got \(std)")
        let means = mean.count == c ? mean : Array(repeating: mean[0], count: c)
        let deviations = std.count == c ? std : Array(repeating: std[0], count: c)
        guard c > 0 else { return self }
        return withUnsafeBufferPointer { source in
            Tensor(shape: shape) { out in
                for start in stride(from: 0, to: source.count, by: c) {
                    for ch in 0..<c { out[start + ch] = (source[start + ch] - means[ch]) / deviations[ch] }
                }
            }
        }
    }

    /// This image (or each image of a batch) mirrored left to right.
    public func flippedHorizontally() -> Tensor {
        let layout = ImageLayout(shape, "flippedHorizontally()")
        return flippingImages(layout, Array(repeating: true, count: layout.batch))
    }

    /// Mirrors this image, or each image of a batch independently, left to right with the given probability.
    ///
    /// Exactly one value is drawn from `generator` per image (`nextUnitFloat() < probability` flips),
    /// whatever the probability, so the same seed gives the same result and leaves the generator in
    /// the same state.
    public func randomFlipHorizontal<G: RandomNumberGenerator>(probability: Float = 0.5, using generator: inout G) -> Tensor {
        let layout = ImageLayout(shape, "randomFlipHorizontal(probability:using:)")
        neuritePrecondition((0...1).contains(probability), "randomFlipHorizontal needs a probability in 0...1, got \(probability)")
        let flips = (0..<layout.batch).map { _ in generator.nextUnitFloat() < probability }
        return flippingImages(layout, flips)
    }

    /// A random `size` window of this image (or of each image of a batch independently), after
    /// padding every side with `padding` zeros: the CIFAR-style "pad 4, crop 32" augmentation.
    ///
    /// Per image, the window's top is drawn first, then its left, each uniformly over every
    /// position that keeps the window inside the padded image (`nextIndex(below:)`).
    /// - Precondition: `size` is positive and fits in the padded image; `padding >= 0`.
    public func randomCrop<G: RandomNumberGenerator>(to size: (height: Int, width: Int), padding: Int = 0,
                                                     using generator: inout G) -> Tensor {
        let layout = ImageLayout(shape, "randomCrop(to:padding:using:)")
        neuritePrecondition(padding >= 0, "randomCrop needs padding >= 0, got \(padding)")
        let paddedH = layout.height + 2 * padding, paddedW = layout.width + 2 * padding
        neuritePrecondition(size.height > 0 && size.width > 0 && size.height <= paddedH && size.width <= paddedW,
                     "randomCrop(to: \(size), padding: \(padding)) does not fit in shape \(shape)")
        let corners = (0..<layout.batch).map { _ -> (Int, Int) in
            let top = generator.nextIndex(below: paddedH - size.height + 1) - padding
            let left = generator.nextIndex(below: paddedW - size.width + 1) - padding
            return (top, left)
        }
        return croppedImages(layout, size, corners: corners)
    }

    /// Random erasing (Zhong et al., 2017; torchvision's `RandomErasing`): with probability
    /// `probability`, one random rectangle of the image (or of each image of a batch independently)
    /// is set to `value` in every channel.
    ///
    /// Per image, one `nextUnitFloat()` decides whether to erase. An erased image then tries up to
    /// 10 rectangles: each draws its area as a fraction of the image uniformly in `scale` and its
    /// aspect ratio (height / width) log-uniformly in `ratio`, and is kept when it fits in the image;
    /// its top and then its left are drawn uniformly over the positions that keep it inside
    /// (`nextIndex(below:)`). When no try fits, the image is left as it is. The same seed gives the
    /// same result.
    /// - Precondition: `probability` in 0...1; `scale` within 0...1 with a positive upper bound;
    ///   `ratio` positive.
    public func randomErase<G: RandomNumberGenerator>(probability: Float = 0.5, scale: ClosedRange<Float> = 0.02...0.33,
                                                      ratio: ClosedRange<Float> = 0.3...3.3, value: Float = 0,
                                                      using generator: inout G) -> Tensor {
        let layout = ImageLayout(shape, "randomErase(probability:scale:ratio:value:using:)")
        neuritePrecondition((0...1).contains(probability), "randomErase needs a probability in 0...1, got \(probability)")
        neuritePrecondition(scale.lowerBound >= 0 && scale.upperBound <= 1 && scale.upperBound > 0,
                            "randomErase needs a scale within 0...1, got \(scale)")
        neuritePrecondition(ratio.lowerBound > 0 && ratio.upperBound.isFinite, "randomErase needs a positive ratio, got \(ratio)")
        let h = layout.height, w = layout.width, c = layout.channels
        let logLow = Foundation.log(ratio.lowerBound), logHigh = Foundation.log(ratio.upperBound)
        var boxes: [(top: Int, left: Int, height: Int, width: Int)?] = []
        boxes.reserveCapacity(layout.batch)
        for _ in 0..<layout.batch {
            guard generator.nextUnitFloat() < probability else { boxes.append(nil); continue }
            var box: (top: Int, left: Int, height: Int, width: Int)?
            for _ in 0..<10 {
                let area = Float(h * w) * (scale.lowerBound + (scale.upperBound - scale.lowerBound) * generator.nextUnitFloat())
                let aspect = Foundation.exp(logLow + (logHigh - logLow) * generator.nextUnitFloat())
                let boxH = Int((area * aspect).squareRoot().rounded()), boxW = Int((area / aspect).squareRoot().rounded())
                guard boxH >= 1 && boxW >= 1 && boxH <= h && boxW <= w else { continue }
                let top = generator.nextIndex(below: h - boxH + 1)
                let left = generator.nextIndex(below: w - boxW + 1)
                box = (top, left, boxH, boxW)
                break
            }
            boxes.append(box)
        }
        return withUnsafeBufferPointer { source in
            Tensor(shape: shape) { out in
                _ = out.initialize(fromContentsOf: source)
                for (n, box) in boxes.enumerated() {
                    guard let box else { continue }
                    for y in box.top..<(box.top + box.height) {
                        let start = ((n * h + y) * w + box.left) * c
                        out.baseAddress!.advanced(by: start).update(repeating: value, count: box.width * c)
                    }
                }
            }
        }
    }

    /// Copies a `size` window at each image's `(top, left)` corner; pixels outside the image are 0.
    private func croppedImages(_ layout: ImageLayout, _ size: (height: Int, width: Int), corners: [(Int, Int)]) -> Tensor {
        let c = layout.channels, h = size.height, w = size.width
        return withUnsafeBufferPointer { source in
            Tensor(shape: layout.shape(height: h, width: w)) { out in
                out.initialize(repeating: 0)
                for n in 0..<layout.batch {
                    let (top, left) = corners[n]
                    let x0 = Swift.max(0, -left), x1 = Swift.min(w, layout.width - left)
                    guard x0 < x1 else { continue }
                    for y in 0..<h {
                        let sy = top + y
                        guard sy >= 0 && sy < layout.height else { continue }
                        let src = source.baseAddress! + ((n * layout.height + sy) * layout.width + left + x0) * c
                        let dst = out.baseAddress! + ((n * h + y) * w + x0) * c
                        dst.update(from: src, count: (x1 - x0) * c)
                    }
                }
            }
        }
    }

    /// Mirrors the images whose entry in `flips` is true; copies the others.
    private func flippingImages(_ layout: ImageLayout, _ flips: [Bool]) -> Tensor {
        let c = layout.channels, width = layout.width
        return withUnsafeBufferPointer { source in
            Tensor(shape: shape) { out in
                for n in 0..<layout.batch {
                    for y in 0..<layout.height {
                        let row = (n * layout.height + y) * width * c
                        let src = source.baseAddress! + row, dst = out.baseAddress! + row
                        if flips[n] {
                            for x in 0..<width { (dst + x * c).update(from: src + (width - 1 - x) * c, count: c) }
                        } else {
                            dst.update(from: src, count: width * c)
                        }
                    }
                }
            }
        }
    }
}
