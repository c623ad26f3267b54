import Datasets
import TensorCore
import XCTest
import _NeuriteTestSupport

final class SamplingTests: XCTestCase {
    // MARK: Labels

    func testOneHotIsExact() {
        let encoded = oneHot([2, 0, 1, 2], classes: 3)
        XCTAssertEqual(encoded.shape, [4, 3])
        XCTAssertEqual(encoded.scalars, [0, 0, 1,
                                         1, 0, 0,
                                         0, 1, 0,
                                         0, 0, 1])
        XCTAssertEqual(oneHot([], classes: 5).shape, [0, 5])
        // Larger: exactly one 1 per row, in the label's column.
        let labels = (0..<200).map { ($0 * 37) % 10 }
        let big = oneHot(labels, classes: 10).scalars
        for (i, label) in labels.enumerated() {
            let row = Array(big[(i * 10)..<(i * 10 + 10)])
            XCTAssertEqual(row, (0..<10).map { $0 == label ? 1 : 0 }, "row \(i)")
        }
    }

    func testClassCounts() {
        XCTAssertEqual(classCounts(labels: [3, 0, 3, 1, 3]), [1, 1, 0, 3])
        XCTAssertEqual(classCounts(labels: [1, 1], classes: 4), [0, 2, 0, 0])
        XCTAssertEqual(classCounts(labels: []), [])
    }

    func testBalancingWeightsGiveEveryClassTheSameTotal() {
        let labels = [Int](repeating: 0, count: 70) + [Int](repeating: 1, count: 20) + [Int](repeating: 2, count: 10) + [5]
        let weights = balancingWeights(labels: labels)
        XCTAssertEqual(weights.count, labels.count)
        // sklearn: n_samples / (n_classes * bincount), with n_classes the classes present (4).
        XCTAssertEqual(weights[0], 101.0 / (4 * 70), accuracy: 1e-12)
        XCTAssertEqual(weights[100], 101.0 / 4, accuracy: 1e-12)
        var totals: [Int: Double] = [:]
        for (label, w) in zip(labels, weights) { totals[label, default: 0] += w }
        XCTAssertEqual(totals.count, 4)
        for (label, total) in totals {
            XCTAssertEqual(total, 101.0 / 4, accuracy: 1e-9, "class \(label)")
        }
        XCTAssertEqual(weights.reduce(0, +), 101, accuracy: 1e-9)
    }

    // MARK: Weighted sampler

    func testWeightedSamplerFrequenciesMatchTheWeights() throws {
        let weights: [Double] = [1, 0, 3, 0.5, 0, 5.5, 0.01, 2, 0]
        let sampler = try WeightedSampler(weights: weights)
        XCTAssertEqual(sampler.count, weights.count)
        XCTAssertEqual(sampler.populationCount, weights.count)
        var g = SeededGenerator(seed: 2024)
        let n = 200_000
        var counts = [Int](repeating: 0, count: weights.count)
        for i in sampler.draw(n, using: &g) { counts[i] += 1 }
        let total = weights.reduce(0, +)
        for (i, w) in weights.enumerated() {
            let p = w / total
            if w == 0 {
                XCTAssertEqual(counts[i], 0, "zero-weight index \(i) was drawn")
            } else {
                let expected = Double(n) * p, standardError = (Double(n) * p * (1 - p)).squareRoot()
                XCTAssertLessThan(abs(Double(counts[i]) - expected), 5 * standardError,
                                  "index \(i): \(counts[i]) draws, expected \(expected) ± \(standardError)")
            }
        }
        // A zero weight at either end is never drawn either.
        let edges = try WeightedSampler(weights: [0, 1, 1, 0])
        XCTAssertTrue(edges.draw(20_000, using: &g).allSatisfy { $0 == 1 || $0 == 2 })
        let single = try WeightedSampler(weights: [0, 0, 4, 0], count: 7)
        XCTAssertEqual(single.indices(using: &g), [Int](repeating: 2, count: 7))
    }

    func testWeightedSamplerIsSeeded() throws {
        let sampler = try WeightedSampler(weights: [1, 2, 3, 4, 5, 6, 7, 8])
        var a = SeededGenerator(seed: 1), b = SeededGenerator(seed: 1), c = SeededGenerator(seed: 2)
        let first = sampler.draw(100, using: &a)
        XCTAssertEqual(first, sampler.draw(100, using: &b))
        XCTAssertNotEqual(first, sampler.draw(100, using: &c))
    }

    func testWeightedSamplerRejectsInvalidWeights() {
        let invalid: [[Double]] = [[], [0, 0, 0], [1, -1, 2], [1, .nan], [1, .infinity], [-.infinity], [1e308, 1e308]]
        for weights in invalid {
            XCTAssertThrowsError(try WeightedSampler(weights: weights), "\(weights)") { error in
                XCTAssertEqual((error as? DatasetError)?.kind, .invalidArgument, "\(weights)")
            }
        }
        XCTAssertThrowsError(try WeightedSampler(weights: [1, 2, -0.5])) { error in
            XCTAssertTrue("\(error)".contains("weight 2 is -0.5"), "\(error)")
        }
        XCTAssertNoThrow(try WeightedSampler(weights: [0, 1e-300]))
    }

    func testBalancedSamplingDrawsClassesEquallyOften() throws {
        let labels = [Int](repeating: 0, count: 90) + [Int](repeating: 1, count: 9) + [2]
        let sampler = try WeightedSampler(weights: balancingWeights(labels: labels), count: 60_000)
        var g = SeededGenerator(seed: 3)
        let counts = classCounts(labels: sampler.indices(using: &g).map { labels[$0] }, classes: 3)
        let expected = 20_000.0, standardError = (60_000.0 * (1.0 / 3) * (2.0 / 3)).squareRoot()
        for (c, count) in counts.enumerated() {
            XCTAssertLessThan(abs(Double(count) - expected), 5 * standardError, "class \(c): \(count) draws")
        }
    }

    // MARK: Stratified split

    func testStratifiedSplitIsDisjointCompleteProportionalAndSeeded() {
        let sizes = [50, 30, 7, 1, 12, 3]
        var labels: [Int] = []
        for (c, size) in sizes.enumerated() { labels += [Int](repeating: c * 3 - 2, count: size) }  // -2, 1, 4, ...
        var g = SeededGenerator(seed: 8)
        labels.seededShuffle(using: &g)

        for fraction in [0.0, 0.2, 0.25, 0.5, 0.9, 1.0] {
            let split = stratifiedSplit(labels: labels, fraction: fraction, seed: 42)
            let context = "fraction \(fraction)"
            XCTAssertTrue(Set(split.train).isDisjoint(with: split.validation), context)
            XCTAssertEqual((split.train + split.validation).sorted(), Array(labels.indices), context)
            XCTAssertEqual(split.train, split.train.sorted(), context)
            XCTAssertEqual(split.validation, split.validation.sorted(), context)
            XCTAssertEqual(split.validation.count, Int((fraction * Double(labels.count)).rounded()), context)
            for (c, size) in sizes.enumerated() {
                let inValidation = split.validation.filter { labels[$0] == c * 3 - 2 }.count
                XCTAssertLessThan(abs(Double(inValidation) - fraction * Double(size)), 1, "class \(c), \(context)")
            }
        }
        let a = stratifiedSplit(labels: labels, fraction: 0.3, seed: 1)
        let b = stratifiedSplit(labels: labels, fraction: 0.3, seed: 1)
        let c = stratifiedSplit(labels: labels, fraction: 0.3, seed: 2)
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.validation, b.validation)
        XCTAssertNotEqual(a.validation, c.validation, "the seed chooses the samples")
        XCTAssertEqual(a.validation.count, c.validation.count)
        let empty = stratifiedSplit(labels: [], fraction: 0.5, seed: 0)
        XCTAssertTrue(empty.train.isEmpty && empty.validation.isEmpty)
    }
}
