import Datasets
import Foundation
import TensorCore
import XCTest
import _NeuriteTestSupport

/// A `[n, 1]` series whose row `t` holds `t`, so a window's values are its row numbers.
private func ramp(_ n: Int) -> Tensor {
    Tensor(shape: [n, 1], scalars: (0..<n).map(Float.init))
}

/// Every window's rows, read back from a `ramp` series.
private func rowsOfWindows(_ w: TimeseriesWindows) -> [[Int]] {
    (0..<w.count).map { w.window(at: $0).scalars.map { Int($0) } }
}

final class TimeSeriesTests: XCTestCase {
    /// The example of Keras' `timeseries_dataset_from_array` documentation: indices 0...98,
    /// sequence_length=10, sampling_rate=2, sequence_stride=3.
    func testKerasDocumentationExample() throws {
        let w = try TimeseriesWindows(data: ramp(99), sequenceLength: 10, sequenceStride: 3, samplingRate: 2)
        let rows = rowsOfWindows(w)
        XCTAssertEqual(rows[0], [0, 2, 4, 6, 8, 10, 12, 14, 16, 18])
        XCTAssertEqual(rows[1], [3, 5, 7, 9, 11, 13, 15, 17, 19, 21])
        XCTAssertEqual(rows[2], [6, 8, 10, 12, 14, 16, 18, 20, 22, 24])
        XCTAssertEqual(rows.last, [78, 80, 82, 84, 86, 88, 90, 92, 94, 96])
        XCTAssertEqual(w.count, 27)  // starts 0, 3, ..., 78
        XCTAssertEqual(w.window(at: 0).shape, [10, 1])
    }

    /// Hand computed: rows 3..<15 of 0...19, length 3, rate 2, stride 2 gives starts 3, 5, 7, 9
    /// (a window at 11 would need row 15, which endIndex excludes).
    func testStartAndEndIndex() throws {
        let w = try TimeseriesWindows(data: ramp(20), sequenceLength: 3, sequenceStride: 2, samplingRate: 2,
                                      startIndex: 3, endIndex: 15)
        XCTAssertEqual(rowsOfWindows(w), [[3, 5, 7], [5, 7, 9], [7, 9, 11], [9, 11, 13]])
        XCTAssertEqual((0..<w.count).map(w.startRow(of:)), [3, 5, 7, 9])
        let whole = try TimeseriesWindows(data: ramp(20), sequenceLength: 3, samplingRate: 2, endIndex: 20)
        XCTAssertEqual(whole.count, 16)  // starts 0...15, the last ending at row 19
        XCTAssertEqual(rowsOfWindows(whole).last, [15, 17, 19])
    }

    /// Against a brute-force enumeration (every start that keeps the whole window in range) on a
    /// grid of parameters.
    func testCountsAgainstEnumeration() throws {
        for n in [1, 2, 7, 20] {
            for length in 1...4 {
                for stride in 1...3 {
                    for rate in 1...3 {
                        for start in [0, 1] where start < n {
                            var starts: [Int] = []
                            var s = start
                            while s + (length - 1) * rate < n { starts.append(s); s += stride }
                            let built = try? TimeseriesWindows(data: ramp(n), sequenceLength: length, sequenceStride: stride,
                                                               samplingRate: rate, startIndex: start)
                            guard let w = built else {
                                XCTAssertTrue(starts.isEmpty, "n \(n) L \(length) stride \(stride) rate \(rate) start \(start) threw")
                                continue
                            }
                            XCTAssertEqual(rowsOfWindows(w), starts.map { s in (0..<length).map { s + $0 * rate } },
                                           "n \(n) L \(length) stride \(stride) rate \(rate) start \(start)")
                        }
                    }
                }
            }
        }
    }

    /// Keras' temporal-regression idiom: data[:-10] with targets data[10:] pairs the window
    /// starting at t with the value at t + 10; shifting by (L - 1) + h predicts h steps ahead.
    func testShiftedTargetsPredictAhead() throws {
        let n = 50, length = 10, h = 3
        let series = ramp(n)
        let shift = (length - 1) + h
        let w = try TimeseriesWindows(data: series.slice(0..<(n - shift)), targets: .values(series.slice(shift..<n)),
                                      sequenceLength: length, batchSize: 4)
        XCTAssertEqual(w.count, n - shift - (length - 1))
        for i in 0..<w.count {
            let batch = w.batch(at: [i])
            let last = Int(batch.x.scalars.last!)
            guard case .values(let y) = batch.targets else { return XCTFail("expected values") }
            XCTAssertEqual(y.shape, [1, 1])
            XCTAssertEqual(Int(y.scalar), last + h, "window \(i)")
        }
    }

    func testBatchSourceOrderShuffleAndTargets() throws {
        let n = 23, f = 3
        let data = Tensor(shape: [n, f], scalars: (0..<(n * f)).map(Float.init))
        let labels = (0..<n).map { $0 % 5 }
        let plain = try TimeseriesWindows(data: data, targets: .labels(labels), sequenceLength: 4, batchSize: 6)
        XCTAssertEqual(plain.count, 20)
        XCTAssertEqual(plain.batchesPerEpoch, 4)
        XCTAssertEqual(plain.samplesPerEpoch, 20)
        let stream = plain.makeBatchStream(epoch: 0)
        var sizes: [Int] = [], seen: [Int] = []
        while let batch = try stream.nextBatch() {
            XCTAssertEqual(Array(batch.x.shape.dropFirst()), [4, f])
            sizes.append(batch.count)
            guard case .labels(let y) = batch.targets else { return XCTFail("expected labels") }
            XCTAssertEqual(y.count, batch.count)
            // Each window's first row is its start, and its label is labels[start].
            for b in 0..<batch.count {
                let start = Int(batch.x.scalars[b * 4 * f]) / f
                XCTAssertEqual(y[b], labels[start])
                XCTAssertEqual(Array(batch.x.scalars[(b * 4 * f)..<((b + 1) * 4 * f)]),
                               (start * f..<((start + 4) * f)).map(Float.init))
                seen.append(start)
            }
        }
        XCTAssertNil(try stream.nextBatch())
        XCTAssertEqual(sizes, [6, 6, 6, 2])
        XCTAssertEqual(seen, Array(0..<20))

        let shuffled = try TimeseriesWindows(data: data, targets: .labels(labels), sequenceLength: 4,
                                             batchSize: 6, shuffle: true, seed: 11)
        var expected = Array(0..<20)
        var generator = SeededGenerator(seed: 11, stream: 1)
        expected.seededShuffle(using: &generator)
        XCTAssertEqual(shuffled.order(epoch: 1), expected)
        XCTAssertEqual(shuffled.order(epoch: 1), shuffled.order(epoch: 1))
        XCTAssertNotEqual(shuffled.order(epoch: 0), shuffled.order(epoch: 1))
        let first = try shuffled.makeBatchStream(epoch: 1).nextBatch()!
        XCTAssertEqual((0..<6).map { Int(first.x.scalars[$0 * 4 * f]) / f }, Array(expected.prefix(6)))

        // Without targets a batch carries each window's start row as its labels.
        let unlabelled = try TimeseriesWindows(data: data, sequenceLength: 4, sequenceStride: 5, batchSize: 10)
        guard case .labels(let starts) = unlabelled.batch(at: [3, 0]).targets else { return XCTFail("expected labels") }
        XCTAssertEqual(starts, [15, 0])
    }

    func testBadArguments() {
        let data = ramp(10)
        assertDatasetError(.invalidArgument, path: nil, ["11 rows", "only 10 rows"]) {
            try TimeseriesWindows(data: data, sequenceLength: 11)
        }
        assertDatasetError(.invalidArgument, path: nil, ["sequenceLength must be >= 1", "got 0"]) {
            try TimeseriesWindows(data: data, sequenceLength: 0)
        }
        assertDatasetError(.invalidArgument, path: nil, ["sequenceStride must be >= 1", "got 0"]) {
            try TimeseriesWindows(data: data, sequenceLength: 2, sequenceStride: 0)
        }
        assertDatasetError(.invalidArgument, path: nil, ["samplingRate must be >= 1", "got -1"]) {
            try TimeseriesWindows(data: data, sequenceLength: 2, samplingRate: -1)
        }
        assertDatasetError(.invalidArgument, path: nil, ["batchSize"]) {
            try TimeseriesWindows(data: data, sequenceLength: 2, batchSize: 0)
        }
        assertDatasetError(.invalidArgument, path: nil, ["targets have 9 rows but data has 10"]) {
            try TimeseriesWindows(data: data, targets: .labels(Array(0..<9)), sequenceLength: 2)
        }
        assertDatasetError(.invalidArgument, path: nil, ["scalar"]) {
            try TimeseriesWindows(data: Tensor(shape: [1, 1], scalars: [0]), targets: .values(Tensor(scalar: 1)), sequenceLength: 1)
        }
        assertDatasetError(.invalidArgument, path: nil, ["endIndex", "got 11"]) {
            try TimeseriesWindows(data: data, sequenceLength: 2, endIndex: 11)
        }
        assertDatasetError(.invalidArgument, path: nil, ["endIndex", "got 4"]) {
            try TimeseriesWindows(data: data, sequenceLength: 2, startIndex: 4, endIndex: 4)
        }
        assertDatasetError(.invalidArgument, path: nil, ["startIndex", "got 10"]) {
            try TimeseriesWindows(data: data, sequenceLength: 1, startIndex: 10)
        }
        assertDatasetError(.invalidArgument, path: nil, ["spans 5 rows", "only 4 rows lie in 6..<10"]) {
            try TimeseriesWindows(data: data, sequenceLength: 3, samplingRate: 2, startIndex: 6)
        }
        assertDatasetError(.invalidArgument, path: nil, ["too many"]) {
            try TimeseriesWindows(data: data, sequenceLength: Int.max, samplingRate: 3)
        }
        assertDatasetError(.invalidArgument, path: nil, ["no rows"]) {
            try TimeseriesWindows(data: Tensor.zeros([0, 2]), sequenceLength: 1)
        }
        XCTAssertEqual(try TimeseriesWindows(data: data, sequenceLength: 2, sequenceStride: Int.max).count, 1)
        assertDatasetError(.invalidArgument, path: nil, ["rank"]) {
            try TimeseriesWindows(data: Tensor(scalar: 1), sequenceLength: 1)
        }
    }

    func testTimeOrderedSplit() throws {
        let a = try timeOrderedSplit(count: 10, trainFraction: 0.7, validationFraction: 0.2)
        XCTAssertEqual([a.train, a.validation, a.test], [0..<7, 7..<9, 9..<10])
        let b = try timeOrderedSplit(count: 1461, trainFraction: 0.7, validationFraction: 0.15)
        XCTAssertEqual([b.train, b.validation, b.test], [0..<1023, 1023..<1242, 1242..<1461])  // 1022.7, 219.15
        let c = try timeOrderedSplit(count: 5, trainFraction: 0.7, validationFraction: 0.3)
        XCTAssertEqual([c.train, c.validation, c.test], [0..<4, 4..<5, 5..<5])  // 3.5 -> 4, 1.5 -> 2 cut to 1
        let d = try timeOrderedSplit(count: 0, trainFraction: 1, validationFraction: 0)
        XCTAssertEqual([d.train, d.validation, d.test], [0..<0, 0..<0, 0..<0])
        for (t, v) in [(0.0, 0.1), (-0.1, 0.1), (1.1, 0), (0.8, 0.3), (.nan, 0.1), (0.5, -0.1), (0.5, .infinity)] {
            assertDatasetError(.invalidArgument, path: nil, ["timeOrderedSplit"]) {
                try timeOrderedSplit(count: 10, trainFraction: t, validationFraction: v)
            }
        }
        assertDatasetError(.invalidArgument, path: nil, ["count"]) {
            try timeOrderedSplit(count: -1, trainFraction: 0.5, validationFraction: 0.1)
        }
    }

    /// The whole path on real data: temperatures, split in time, scaled with training statistics,
    /// windowed to predict the next hour.
    func testSeattleTemperaturesEndToEnd() throws {
        let table = try CSVTable(contentsOf: try sequencesFile("seattle-temps.csv"))
        let temps = try table.numericMatrix(columns: ["temp"])
        let n = temps.shape[0]
        let split = try timeOrderedSplit(count: n, trainFraction: 0.8, validationFraction: 0.1)
        var scaler = StandardScaler()
        try scaler.fit(temps.slice(split.train))
        let train = try scaler.transform(temps.slice(split.train))
        let length = 24
        let m = train.shape[0]
        let w = try TimeseriesWindows(data: train.slice(0..<(m - length)), targets: .values(train.slice(length..<m)),
                                      sequenceLength: length, batchSize: 128, shuffle: true, seed: 3)
        XCTAssertEqual(w.count, m - length - (length - 1))
        let batch = try w.makeBatchStream(epoch: 0).nextBatch()!
        XCTAssertEqual(batch.x.shape, [128, 24, 1])
        guard case .values(let y) = batch.targets else { return XCTFail("expected values") }
        XCTAssertEqual(y.shape, [128, 1])
        // Each target is the hour after its window, in the original units after inverting.
        let original = temps.scalars
        let back = try scaler.inverseTransform(y).scalars
        let firstRows = try scaler.inverseTransform(batch.x).scalars
        let order = w.order(epoch: 0)
        let offset = split.train.lowerBound
        for b in 0..<128 {
            let start = offset + w.startRow(of: order[b])
            for t in 0..<length {
                XCTAssertEqual(Double(firstRows[b * length + t]), Double(original[start + t]), accuracy: 1e-3)
            }
            XCTAssertEqual(Double(back[b]), Double(original[start + length]), accuracy: 1e-3)
        }
    }
}
