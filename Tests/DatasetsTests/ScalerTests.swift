import Datasets
import Foundation
import TensorCore
import XCTest
import _NeuriteTestSupport

final class ScalerTests: XCTestCase {
    /// Hand computed on `[[1, 10], [3, 10], [5, 10]]`: column 0 spans 1...5 (mean 3, population
    /// std sqrt(8/3)); column 1 is constant.
    func testHandComputedValuesAndConstantFeature() throws {
        let x = Tensor(shape: [3, 2], scalars: [1, 10, 3, 10, 5, 10])
        var minMax = MinMaxScaler()
        try minMax.fit(x)
        XCTAssertEqual(minMax.dataMin, [1, 10])
        XCTAssertEqual(minMax.dataMax, [5, 10])
        XCTAssertEqual(try minMax.transform(x).scalars, [0, 0, 0.5, 0, 1, 0])
        var symmetric = MinMaxScaler(range: -1...1)
        try symmetric.fit(x)
        XCTAssertEqual(try symmetric.transform(x).scalars, [-1, -1, 0, -1, 1, -1])
        XCTAssertEqual(try symmetric.transform(Tensor(shape: [1, 2], scalars: [9, 12])).scalars, [3, 3])  // not clipped
        XCTAssertEqual(try symmetric.inverseTransform(Tensor(shape: [1, 2], scalars: [0.5, -1])).scalars, [4, 10])

        var standard = StandardScaler()
        try standard.fit(x)
        let std0 = (8.0 / 3).squareRoot()
        XCTAssertEqual(standard.mean, [3, 10])
        XCTAssertEqual(standard.standardDeviation![0], std0, accuracy: 1e-12)
        XCTAssertEqual(standard.standardDeviation![1], 0)
        assertClose(try standard.transform(x).scalars, [-2 / std0, 0, 0, 0, 2 / std0, 0], rtol: 1e-6, atol: 1e-6)
        assertClose(try standard.inverseTransform(standard.transform(x)), x, rtol: 1e-6, atol: 1e-6)
        XCTAssertFalse(try minMax.inverseTransform(minMax.transform(x)).scalars.contains { !$0.isFinite })
    }

    /// Seattle weather split in time, fitted on the training rows only, against Float64
    /// statistics computed here; every part round-trips within 1e-5.
    func testFitOnTrainingPartOfSeattleWeather() throws {
        let table = try CSVTable(contentsOf: try sequencesFile("seattle-weather.csv"))
        let x = try table.numericMatrix(columns: ["precipitation", "temp_max", "temp_min", "wind"])
        let split = try timeOrderedSplit(count: x.shape[0], trainFraction: 0.7, validationFraction: 0.15)
        let train = x.slice(split.train)
        let values = x.scalars
        func column(_ c: Int, _ rows: Range<Int>) -> [Double] { rows.map { Double(values[$0 * 4 + c]) } }

        var minMax = MinMaxScaler()
        try minMax.fit(train)
        var standard = StandardScaler()
        try standard.fit(train)
        for c in 0..<4 {
            let col = column(c, split.train)
            XCTAssertEqual(minMax.dataMin![c], col.min()!)
            XCTAssertEqual(minMax.dataMax![c], col.max()!)
            let mean = col.reduce(0, +) / Double(col.count)
            let std = (col.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(col.count)).squareRoot()
            XCTAssertEqual(standard.mean![c], mean, accuracy: 1e-9)
            XCTAssertEqual(standard.standardDeviation![c], std, accuracy: 1e-9)
            // Training statistics, not the whole series': the means differ.
            let whole = column(c, 0..<x.shape[0])
            XCTAssertNotEqual(standard.mean![c], whole.reduce(0, +) / Double(whole.count))
        }
        let scaledTrain = try minMax.transform(train).scalars
        for c in 0..<4 {
            let col = stride(from: c, to: scaledTrain.count, by: 4).map { scaledTrain[$0] }
            XCTAssertEqual(col.min(), 0)
            XCTAssertEqual(col.max()!, 1, accuracy: 1e-6)
        }
        for part in [split.train, split.validation, split.test] {
            let rows = x.slice(part)
            assertClose(try minMax.inverseTransform(minMax.transform(rows)), rows, rtol: 1e-5, atol: 1e-5)
            assertClose(try standard.inverseTransform(standard.transform(rows)), rows, rtol: 1e-5, atol: 1e-5)
        }
        // The scaler applies along the last axis of windows too: [B, T, F].
        let windows = x.slice(0..<12).reshaped([3, 4, 4])
        assertClose(try standard.transform(windows).reshaped([12, 4]), try standard.transform(x.slice(0..<12)))
    }

    func testErrors() throws {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        assertDatasetError(.invalidArgument, path: nil, ["not fitted"]) { try MinMaxScaler().transform(x) }
        assertDatasetError(.invalidArgument, path: nil, ["not fitted"]) { try MinMaxScaler().inverseTransform(x) }
        assertDatasetError(.invalidArgument, path: nil, ["not fitted"]) { try StandardScaler().transform(x) }
        assertDatasetError(.invalidArgument, path: nil, ["not fitted"]) { try StandardScaler().inverseTransform(x) }
        var scaler = StandardScaler()
        try scaler.fit(x)
        assertDatasetError(.invalidArgument, path: nil, ["[2, 2]", "3 features"]) {
            try scaler.transform(Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        }
        var minMax = MinMaxScaler()
        try minMax.fit(x)
        assertDatasetError(.invalidArgument, path: nil, ["[4]", "3 features"]) { try minMax.inverseTransform(Tensor([1, 2, 3, 4])) }
        assertDatasetError(.invalidArgument, path: nil, ["[N, F]"]) { try scaler.fit(Tensor([1, 2, 3])) }
        assertDatasetError(.invalidArgument, path: nil, ["no rows"]) { try scaler.fit(Tensor.zeros([0, 3])) }
        assertDatasetError(.invalidArgument, path: nil, ["nan", "row 1", "feature 0"]) {
            try minMax.fit(Tensor(shape: [2, 2], scalars: [1, 2, .nan, 4]))
        }
        // A failed fit leaves the earlier one in place.
        XCTAssertEqual(minMax.dataMin, [1, 2, 3])
    }
}
