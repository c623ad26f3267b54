import Datasets
import TensorCore
import XCTest
import _NeuriteTestSupport

final class ImageTransformTests: XCTestCase {
    /// An image whose every value is distinct: value = index + 1.
    private func countingImage(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { Float($0 + 1) })
    }

    /// Float64 bilinear resize with half-pixel centres, written from the definition in
    /// `tf.image.resize` (four neighbours, edge-clamped), for an image [H, W, C].
    private func referenceBilinear(_ image: Tensor, height: Int, width: Int) -> [Double] {
        let (h, w, c) = (image.shape[0], image.shape[1], image.shape[2])
        let x = image.scalars.map(Double.init)
        func source(_ o: Int, _ input: Int, _ output: Int) -> (Int, Int, Double) {
            let p = min(max((Double(o) + 0.5) * Double(input) / Double(output) - 0.5, 0), Double(input - 1))
            let i0 = Int(p.rounded(.down))
            return (i0, min(i0 + 1, input - 1), p - Double(i0))
        }
        var out: [Double] = []
        for oy in 0..<height {
            let (y0, y1, ty) = source(oy, h, height)
            for ox in 0..<width {
                let (x0, x1, tx) = source(ox, w, width)
                for ch in 0..<c {
                    func v(_ y: Int, _ xx: Int) -> Double { x[(y * w + xx) * c + ch] }
                    let top = v(y0, x0) + (v(y0, x1) - v(y0, x0)) * tx
                    let bottom = v(y1, x0) + (v(y1, x1) - v(y1, x0)) * tx
                    out.append(top + (bottom - top) * ty)
                }
            }
        }
        return out
    }

    func testBilinearByHand() {
        // A 1 x 2 row [0, 1] widened to 4: samples at -0.25, 0.25, 0.75, 1.25 (edges clamped).
        let row = Tensor(shape: [1, 2, 1], scalars: [0, 1])
        XCTAssertEqual(row.resized(to: (height: 1, width: 4)).scalars, [0, 0.25, 0.75, 1])
        // Halving samples between pixel pairs: a 4 x 4 image becomes its 2 x 2 block means.
        let image = countingImage([4, 4, 1])
        XCTAssertEqual(image.resized(to: (height: 2, width: 2)).scalars, [3.5, 5.5, 11.5, 13.5])
    }

    func testBilinearMatchesFloat64Reference() {
        var generator = SeededGenerator(seed: 11)
        let image = Tensor.randomUniform([5, 7, 3], using: &generator)
        for (h, w) in [(5, 7), (9, 4), (3, 11), (1, 1), (10, 14), (2, 3)] {
            let resized = image.resized(to: (height: h, width: w))
            XCTAssertEqual(resized.shape, [h, w, 3])
            assertClose(resized.scalars, referenceBilinear(image, height: h, width: w), rtol: 1e-5, atol: 1e-6, "\(h) x \(w)")
        }
        XCTAssertEqual(image.resized(to: (height: 5, width: 7)), image, "same size is the identity")
        // A batch is resized image by image.
        let batch = Tensor.concatenate([image.reshaped([1, 5, 7, 3]), (image.normalized(mean: [0.5], std: [2])).reshaped([1, 5, 7, 3])])
        let resizedBatch = batch.resized(to: (height: 3, width: 4))
        XCTAssertEqual(resizedBatch.shape, [2, 3, 4, 3])
        XCTAssertEqual(resizedBatch.slice(1..<2).reshaped([3, 4, 3]),
                       image.normalized(mean: [0.5], std: [2]).resized(to: (height: 3, width: 4)))
    }

    func testAreaDownscaleByIntegerFactorsGivesBlockMeans() {
        let batch = countingImage([2, 6, 6, 3])
        let resized = batch.resized(to: (height: 2, width: 3), method: .area)
        XCTAssertEqual(resized.shape, [2, 2, 3, 3])
        let x = batch.scalars
        var expected: [Double] = []
        for n in 0..<2 {
            for by in 0..<2 {
                for bx in 0..<3 {
                    for ch in 0..<3 {
                        var sum = 0.0
                        for y in (3 * by)..<(3 * by + 3) {
                            for xx in (2 * bx)..<(2 * bx + 2) { sum += Double(x[((n * 6 + y) * 6 + xx) * 3 + ch]) }
                        }
                        expected.append(sum / 6)
                    }
                }
            }
        }
        assertClose(resized.scalars, expected, rtol: 1e-6, atol: 0)
    }

    func testAreaWithFractionalCoverage() {
        // 3 -> 2: output 0 covers [0, 1.5): (x0 + x1 / 2) / 1.5; output 1 covers [1.5, 3).
        let row = Tensor(shape: [1, 3, 1], scalars: [3, 6, 9])
        assertClose(row.resized(to: (height: 1, width: 2), method: .area).scalars, [(3 + 3) / 1.5, (3 + 9) / 1.5])
        // Enlarging with area repeats pixels (a box filter).
        XCTAssertEqual(row.resized(to: (height: 1, width: 6), method: .area).scalars, [3, 3, 6, 6, 9, 9])
        XCTAssertEqual(row.resized(to: (height: 1, width: 3), method: .area), row)
    }

    func testCenterCropIsExact() {
        let image = countingImage([5, 6, 2])
        let crop = image.centerCropped(to: (height: 3, width: 2))
        // Top-left corner at ((5 - 3) / 2, (6 - 2) / 2) = (1, 2).
        var expected: [Float] = []
        for y in 1..<4 { for x in 2..<4 { for c in 0..<2 { expected.append(image[y, x, c]) } } }
        XCTAssertEqual(crop.shape, [3, 2, 2])
        XCTAssertEqual(crop.scalars, expected)
        XCTAssertEqual(image.centerCropped(to: (height: 5, width: 6)), image)
        let batch = countingImage([3, 4, 4, 1]).centerCropped(to: (height: 2, width: 2))
        XCTAssertEqual(batch.shape, [3, 2, 2, 1])
        XCTAssertEqual(batch.slice(2..<3).scalars, [38, 39, 42, 43])
    }

    func testFlipIsExact() {
        let image = countingImage([2, 3, 2])
        XCTAssertEqual(image.flippedHorizontally().scalars, [5, 6, 3, 4, 1, 2, 11, 12, 9, 10, 7, 8])
        XCTAssertEqual(image.flippedHorizontally().flippedHorizontally(), image)
    }

    func testNormalizeIsExact() {
        let image = countingImage([2, 2, 3])
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        let x = image.scalars
        let expected = x.indices.map { (x[$0] - mean[$0 % 3]) / std[$0 % 3] }
        XCTAssertEqual(image.normalized(mean: mean, std: std).scalars, expected)
        XCTAssertEqual(image.normalized(mean: [1], std: [2]).scalars, x.map { ($0 - 1) / 2 })
    }

    func testRandomFlipIsRepeatableAndFlipsWholeImages() {
        let batch = countingImage([64, 3, 4, 2])
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42)
        let first = batch.randomFlipHorizontal(using: &a)
        XCTAssertEqual(first, batch.randomFlipHorizontal(using: &b))
        XCTAssertEqual(a, b, "the same number of draws")
        var flipped = 0
        for n in 0..<64 {
            let original = batch.slice(n..<(n + 1)), result = first.slice(n..<(n + 1))
            if result == original.flippedHorizontally() { flipped += 1 } else { XCTAssertEqual(result, original) }
        }
        XCTAssertTrue((16...48).contains(flipped), "about half of 64 images flipped, got \(flipped)")
        var c = SeededGenerator(seed: 42)
        XCTAssertEqual(batch.randomFlipHorizontal(probability: 0, using: &c), batch)
        XCTAssertEqual(c, a, "one draw per image whatever the probability")
        XCTAssertEqual(batch.randomFlipHorizontal(probability: 1, using: &c), batch.flippedHorizontally())
        var d = SeededGenerator(seed: 43)
        XCTAssertNotEqual(batch.randomFlipHorizontal(using: &d), first, "another seed, other flips")
    }

    func testRandomCropIsRepeatableAndAlwaysAWindowOfThePaddedImage() {
        let image = countingImage([5, 6, 1])
        let padding = 2
        // The zero-padded image, built naively.
        let paddedH = 5 + 2 * padding, paddedW = 6 + 2 * padding
        var padded = [Float](repeating: 0, count: paddedH * paddedW)
        for y in 0..<5 { for x in 0..<6 { padded[(y + padding) * paddedW + x + padding] = image[y, x, 0] } }
        func window(_ top: Int, _ left: Int) -> [Float] {
            (0..<4).flatMap { y in (0..<3).map { x in padded[(top + y) * paddedW + left + x] } }
        }
        var generator = SeededGenerator(seed: 7)
        var corners = Set<[Int]>()
        for _ in 0..<300 {
            let crop = image.randomCrop(to: (height: 4, width: 3), padding: padding, using: &generator)
            XCTAssertEqual(crop.shape, [4, 3, 1])
            let matches = (0...(paddedH - 4)).flatMap { t in (0...(paddedW - 3)).map { [t, $0] } }
                .filter { window($0[0], $0[1]) == crop.scalars }
            XCTAssertEqual(matches.count, 1, "the crop is exactly one window of the padded image")
            if let corner = matches.first { corners.insert(corner) }
        }
        XCTAssertEqual(corners.count, (paddedH - 4 + 1) * (paddedW - 3 + 1), "every position is drawn")

        let batch = countingImage([8, 5, 6, 1])
        var a = SeededGenerator(seed: 3), b = SeededGenerator(seed: 3)
        let crops = batch.randomCrop(to: (height: 4, width: 3), padding: 1, using: &a)
        XCTAssertEqual(crops.shape, [8, 4, 3, 1])
        XCTAssertEqual(crops, batch.randomCrop(to: (height: 4, width: 3), padding: 1, using: &b))
        XCTAssertEqual(image.randomCrop(to: (height: 5, width: 6), using: &a), image, "a full-size crop without padding")
    }

    func testRandomEraseSetsOneRectangleInsideTheAreaAndRatioRanges() {
        // A batch of images with no zero pixel, 2 channels, so an erased pixel (value -1) shows.
        let batch = countingImage([200, 9, 12, 2])
        var generator = SeededGenerator(seed: 11)
        let erased = batch.randomErase(probability: 1, scale: 0.05...0.3, ratio: 0.5...2, value: -1, using: &generator)
        XCTAssertEqual(erased.shape, batch.shape)
        var heights = Set<Int>(), tops = Set<Int>()
        for n in 0..<200 {
            var cells: [(Int, Int)] = []
            for y in 0..<9 {
                for x in 0..<12 {
                    let a = erased[n, y, x, 0], b = erased[n, y, x, 1]
                    XCTAssertEqual(a == -1, b == -1, "every channel of a pixel is erased or none")
                    if a == -1 { cells.append((y, x)) } else {
                        XCTAssertEqual(a, batch[n, y, x, 0]); XCTAssertEqual(b, batch[n, y, x, 1])
                    }
                }
            }
            guard let first = cells.first, let last = cells.last else { continue }
            let h = last.0 - first.0 + 1, w = last.1 - first.1 + 1
            XCTAssertEqual(cells.count, h * w, "image \(n): the erased pixels form one rectangle")
            // Rounding each side to whole pixels moves the area and ratio a little past the ranges.
            let area = Float(h * w) / Float(9 * 12)
            XCTAssertGreaterThanOrEqual(area, 0.05 * 0.5, "image \(n): area \(area)")
            XCTAssertLessThanOrEqual(area, 0.3 * 1.5, "image \(n): area \(area)")
            XCTAssertGreaterThanOrEqual(Float(h) / Float(w), 0.5 / 2.2, "image \(n)")
            XCTAssertLessThanOrEqual(Float(h) / Float(w), 2 * 2.2, "image \(n)")
            heights.insert(h); tops.insert(first.0)
        }
        let per = 9 * 12 * 2
        func erasedImages(_ t: Tensor, value: Float) -> Int {
            let v = t.scalars
            return (0..<t.shape[0]).filter { n in v[(n * per)..<((n + 1) * per)].contains(value) }.count
        }
        let erasedCount = erasedImages(erased, value: -1)
        XCTAssertGreaterThan(erasedCount, 190, "with probability 1 nearly every image finds a rectangle that fits")
        XCTAssertGreaterThan(heights.count, 3, "the sizes vary")
        XCTAssertGreaterThan(tops.count, 3, "the positions vary")

        var a = SeededGenerator(seed: 5), b = SeededGenerator(seed: 5), c = SeededGenerator(seed: 5)
        XCTAssertEqual(batch.randomErase(using: &a), batch.randomErase(using: &b), "the same seed, the same result")
        XCTAssertEqual(batch.randomErase(probability: 0, using: &c), batch, "probability 0 changes nothing")
        let half = erasedImages(batch.randomErase(probability: 0.5, using: &a), value: 0)
        XCTAssertTrue((60...140).contains(half), "about half of the draws erase at probability 0.5, got \(half) of 200")
    }
}

