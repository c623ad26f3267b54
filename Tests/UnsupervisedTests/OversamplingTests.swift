import Foundation
import TensorCore
import Unsupervised
import XCTest
import _NeuriteTestSupport

final class OversamplingTests: XCTestCase {
    /// 40, 12 and 5 samples of classes 0, 1 and 2, as [N, 2, 2] images in 0...1.
    private func imbalanced() -> (x: Tensor, y: [Int]) {
        let y = Array(repeating: 0, count: 40) + Array(repeating: 1, count: 12) + Array(repeating: 2, count: 5)
        let x = Tensor(shape: [y.count, 2, 2], scalars: randomScalars(y.count * 4, seed: 1).map { ($0 + 1) / 2 })
        return (x, y)
    }

    private func counts(_ y: [Int]) -> [Int: Int] { y.reduce(into: [:]) { $0[$1, default: 0] += 1 } }

    private let samplers: [any Oversampler] = [
        RandomOverSampler(seed: 3), SMOTE(seed: 3), RBMOverSampler(hiddenUnits: 4, epochs: 3, minimumUpdates: 10, seed: 3),
        RBMOverSampler(hiddenUnits: 4, epochs: 3, minimumUpdates: 10, gibbsSteps: 3, visibleUnits: .gaussian,
                       trainingMethod: .contrastiveDivergence(steps: 1), sampling: .persistentChains(chains: 3),
                       candidateFactor: 2, realFraction: 0.25, meanField: false, seed: 3),
        RBMOverSampler(hiddenUnits: 4, epochs: 3, minimumUpdates: 10, gibbsSteps: 2, sampling: .reconstruction, seed: 3),
        RBMOverSampler.recommended(seed: 3),
    ]

    func testEverySamplerReturnsExactlyTheRequestedCounts() throws {
        let (x, y) = imbalanced()
        let strategies: [(SamplingStrategy, [Int: Int])] = [
            (.balanceAll, [0: 40, 1: 40, 2: 40]),
            (.ratio(0.5), [0: 40, 1: 20, 2: 20]),
            (.counts([2: 9]), [0: 40, 1: 12, 2: 9]),
        ]
        for var sampler in samplers {
            for (strategy, expected) in strategies {
                switch sampler {
                case var s as RandomOverSampler: s.strategy = strategy; sampler = s
                case var s as SMOTE: s.strategy = strategy; sampler = s
                case var s as RBMOverSampler: s.strategy = strategy; sampler = s
                default: XCTFail("unknown sampler")
                }
                let (rx, ry) = try sampler.fitResample(x, y)
                XCTAssertEqual(counts(ry), expected, "\(type(of: sampler)) \(strategy)")
                XCTAssertEqual(rx.shape, [ry.count, 2, 2])
                XCTAssertEqual(rx.slice(0..<y.count), x, "the original samples come first, unchanged")
                XCTAssertEqual(Array(ry.prefix(y.count)), y)
            }
        }
    }

    func testSamplersAreSeededAndRepeatable() throws {
        let (x, y) = imbalanced()
        for sampler in samplers {
            XCTAssertEqual(try sampler.fitResample(x, y).x, try sampler.fitResample(x, y).x, "\(type(of: sampler))")
        }
        XCTAssertNotEqual(try SMOTE(seed: 1).fitResample(x, y).x, try SMOTE(seed: 2).fitResample(x, y).x)
    }

    func testRBMVariantsKeepValuesInRangeAndMixRealCopiesAsAsked() throws {
        let (x, y) = imbalanced()
        let rows = x.reshaped([y.count, 4])
        let real = Set((0..<y.count).map { rows.slice($0..<($0 + 1)).scalars })
        for units in [RBM.VisibleUnits.bernoulli, .gaussian] {
            let sampler = RBMOverSampler(hiddenUnits: 4, epochs: 3, minimumUpdates: 20, visibleUnits: units, realFraction: 0.5, seed: 5)
            let minority = rows.slice(52..<57)
            let new = try sampler.generate(from: minority, count: 10, label: 2)
            XCTAssertEqual(new.shape, [10, 4])
            XCTAssertTrue(new.scalars.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(units): samples in 0...1")
            let minorityRows = Set((0..<5).map { minority.slice($0..<($0 + 1)).scalars })
            for r in 0..<10 {
                let row = new.slice(r..<(r + 1)).scalars
                // The first half is generated (mean field: not a copy), the second half real copies of the class.
                if r < 5 { XCTAssertFalse(real.contains(row), "\(units) row \(r) should be generated") }
                else { XCTAssertTrue(minorityRows.contains(row), "\(units) row \(r) should copy a sample of the class") }
            }
        }
    }

    func testFreeEnergyFilterKeepsASubsetOfTheCandidates() throws {
        // With candidateFactor K the sampler draws K·count candidates exactly as an unfiltered
        // sampler asked for K·count samples does, then keeps count of them.
        let (x, y) = imbalanced()
        let minority = x.reshaped([y.count, 4]).slice(40..<52)
        let filtered = try RBMOverSampler(hiddenUnits: 4, minimumUpdates: 30, candidateFactor: 4, seed: 9).generate(from: minority, count: 6)
        let all = try RBMOverSampler(hiddenUnits: 4, minimumUpdates: 30, seed: 9).generate(from: minority, count: 24)
        let candidates = (0..<24).map { all.slice($0..<($0 + 1)).scalars }
        let kept = (0..<6).map { filtered.slice($0..<($0 + 1)).scalars }
        for row in kept { XCTAssertTrue(candidates.contains(row), "a kept sample is one of the candidates") }
        XCTAssertNotEqual(kept, Array(candidates.prefix(6)), "the filter chose, not just the first candidates")
    }

    func testGenerateRefusesRowsThatAreNotAMatrixAndANegativeCount() {
        let sampler = RBMOverSampler(hiddenUnits: 4, minimumUpdates: 5, seed: 1)
        for (rows, count) in [(Tensor.zeros([6]), 2), (Tensor.zeros([0, 4]), 2), (Tensor.zeros([3, 0]), 2),
                              (Tensor.zeros([2, 3, 4]), 2), (Tensor.zeros([3, 4]), -1)] {
            XCTAssertThrowsError(try sampler.generate(from: rows, count: count), "\(rows.shape), count \(count)") { error in
                XCTAssertTrue(error is OversamplingError, "\(error)")
            }
        }
        XCTAssertEqual(try sampler.generate(from: Tensor.zeros([3, 4]), count: 0).shape.first, 0)
    }

    func testSMOTESamplesLieOnSegmentsBetweenSameClassNeighbours() throws {
        let (x, y) = imbalanced()
        let k = 3
        let (rx, ry) = try SMOTE(neighbours: k, seed: 7).fitResample(x, y)
        let flat = rx.reshaped([ry.count, 4]).scalars
        func row(_ i: Int) -> [Float] { Array(flat[(i * 4)..<(i * 4 + 4)]) }
        for label in [1, 2] {
            let members = y.indices.filter { y[$0] == label }
            let neighbours = SMOTE.nearestNeighbours(x.reshaped([y.count, 4]).gather(members), k: k)
            for s in y.count..<ry.count where ry[s] == label {
                let p = row(s)
                let onSegment = members.indices.contains { a in
                    neighbours[a].contains { b in
                        let (xa, xb) = (row(members[a]), row(members[b]))
                        let d = zip(xb, xa).map { $0 - $1 }, q = zip(p, xa).map { $0 - $1 }
                        let dd = d.reduce(0) { $0 + $1 * $1 }
                        let u = zip(q, d).reduce(0) { $0 + $1.0 * $1.1 } / dd
                        let residual = zip(q, d).reduce(Float(0)) { $0 + ($1.0 - u * $1.1) * ($1.0 - u * $1.1) }
                        return u >= -1e-5 && u <= 1 + 1e-5 && residual < 1e-9
                    }
                }
                XCTAssertTrue(onSegment, "sample \(s) of class \(label) lies on no segment to a neighbour")
            }
        }
    }

    func testNearestNeighboursThroughGEMMMatchBruteForce() {
        let rows = Tensor(shape: [30, 5], scalars: randomScalars(150, seed: 4))
        let found = SMOTE.nearestNeighbours(rows, k: 4)
        let v = rows.scalars
        for i in 0..<30 {
            let distances = (0..<30).filter { $0 != i }.map { j in
                (j, (0..<5).reduce(Float(0)) { $0 + (v[i * 5 + $1] - v[j * 5 + $1]) * (v[i * 5 + $1] - v[j * 5 + $1]) })
            }
            XCTAssertEqual(found[i], distances.sorted { $0.1 < $1.1 }.prefix(4).map(\.0), "row \(i)")
        }
    }

    func testImpossibleRequestsThrow() {
        let (x, y) = imbalanced()
        XCTAssertThrowsError(try RandomOverSampler(strategy: .counts([0: 10])).fitResample(x, y))
        XCTAssertThrowsError(try SMOTE(strategy: .counts([7: 10])).fitResample(x, y))
        XCTAssertThrowsError(try SMOTE(strategy: .ratio(1.5)).fitResample(x, y))
        XCTAssertThrowsError(try SMOTE().fitResample(x, Array(y.prefix(10))))
    }
}
