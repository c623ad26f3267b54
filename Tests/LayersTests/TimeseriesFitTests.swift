import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Datasets' `TimeseriesWindows` is a `BatchSource`: `fit` reads it directly, and the result is
/// the tensor form of `fit` on the same windows materialised.
final class TimeseriesFitTests: XCTestCase {
    private func model() -> Sequential {
        let m = Sequential(inputShape: [12, 2]) {
            Flatten()
            Dense(8, activation: .tanh)
            Dense(1)
        }
        m.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        return m
    }

    func testFitOnWindowsMatchesFitOnMaterialisedWindows() throws {
        // Two features (a sine and a cosine); predict the sine 1 step after each 12-step window.
        let n = 200, length = 12, h = 1
        let series = Tensor(shape: [n, 2], scalars: (0..<n).flatMap { t in [Float(sin(Double(t) * 0.3)), Float(cos(Double(t) * 0.3))] })
        let shift = (length - 1) + h
        let target = Tensor(shape: [n - shift, 1], scalars: (shift..<n).map { Float(sin(Double($0) * 0.3)) })
        let windows = try TimeseriesWindows(data: series.slice(0..<(n - shift)), targets: .values(target),
                                            sequenceLength: length, batchSize: 16, shuffle: true, seed: 9)
        let all = windows.batch(at: Array(0..<windows.count))
        guard case .values(let y) = all.targets else { return XCTFail("expected values") }
        XCTAssertEqual(all.x.shape, [windows.count, 12, 2])

        let reference = model()
        let expected = try reference.fit(x: all.x, y: y, epochs: 3, batchSize: 16, seed: 9, verbose: 0)
        let streamed = model()
        let history = try streamed.fit(windows, epochs: 3, seed: 9, verbose: 0)
        XCTAssertEqual(history, expected)
        XCTAssertEqual(streamed.parameters.map(\.value), reference.parameters.map(\.value))
        let losses = history.history["loss"]!
        XCTAssertLessThan(losses.last!, losses.first!)
        // Control: another window seed shuffles otherwise and ends elsewhere.
        let other = model()
        let reseeded = try TimeseriesWindows(data: series.slice(0..<(n - shift)), targets: .values(target),
                                             sequenceLength: length, batchSize: 16, shuffle: true, seed: 10)
        try other.fit(reseeded, epochs: 3, seed: 9, verbose: 0)
        XCTAssertNotEqual(other.parameters.map(\.value), reference.parameters.map(\.value))
        // predict reads windows without targets too.
        let unlabelled = try TimeseriesWindows(data: series.slice(0..<(n - shift)), sequenceLength: length, batchSize: 50)
        let predictions = try streamed.predict(unlabelled)
        XCTAssertEqual(predictions.shape, [windows.count, 1])
        assertClose(predictions, try streamed.predict(all.x), rtol: 1e-5, atol: 1e-6)
    }
}
