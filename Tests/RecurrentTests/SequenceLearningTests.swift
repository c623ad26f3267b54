import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest

/// Tiny sequence tasks that need memory across steps, learned to (near) perfection in seconds.
final class SequenceLearningTests: XCTestCase {
    /// Recall the first of 10 random symbols (one-hot, 4 kinds): the answer must be carried
    /// through 9 distracting steps.
    private func recallData(samples: Int, seed: UInt64) -> (Tensor, [Int]) {
        var g = SeededGenerator(seed: seed)
        let (steps, kinds) = (10, 4)
        var x = [Float](repeating: 0, count: samples * steps * kinds)
        var labels: [Int] = []
        for s in 0..<samples {
            for t in 0..<steps {
                let k = g.nextIndex(below: kinds)
                x[(s * steps + t) * kinds + k] = 1
                if t == 0 { labels.append(k) }
            }
        }
        return (Tensor(shape: [samples, steps, kinds], scalars: x), labels)
    }

    func testLSTMLearnsToRecallTheFirstSymbol() throws {
        try learnRecall(LSTM(16))
    }

    func testGRULearnsToRecallTheFirstSymbol() throws {
        try learnRecall(GRU(16))
    }

    private func learnRecall(_ cell: RecurrentLayer, file: StaticString = #filePath, line: UInt = #line) throws {
        let (x, y) = recallData(samples: 1024, seed: 1)
        let (tx, ty) = recallData(samples: 256, seed: 2)
        let model = Sequential(inputShape: [10, 4]) {
            cell
            Dense(4)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        try model.fit(x: x, y: y, epochs: 25, batchSize: 32, seed: 3, verbose: 0)
        let accuracy = try model.evaluate(x: tx, y: ty)["accuracy"]!
        XCTAssertGreaterThanOrEqual(accuracy, 0.98, "\(type(of: cell).typeName)", file: file, line: line)
    }

    /// The adding problem (Hochreiter & Schmidhuber): the sum of the two values marked in a
    /// sequence of 12 (value, marker) pairs, by regression; within 0.04 for nearly every sample.
    func testLSTMSolvesTheAddingProblem() throws {
        func data(_ n: Int, seed: UInt64) -> (Tensor, Tensor) {
            var g = SeededGenerator(seed: seed)
            var x: [Float] = [], y: [Float] = []
            for _ in 0..<n {
                let a = g.nextIndex(below: 12)
                var b = g.nextIndex(below: 11)
                if b >= a { b += 1 }
                var sum: Float = 0
                for t in 0..<12 {
                    let v = g.nextUnitFloat()
                    let marked = t == a || t == b
                    if marked { sum += v }
                    x += [v, marked ? 1 : 0]
                }
                y.append(sum)
            }
            return (Tensor(shape: [n, 12, 2], scalars: x), Tensor(shape: [n, 1], scalars: y))
        }
        let (x, y) = data(2048, seed: 1), (tx, ty) = data(256, seed: 2)
        let model = Sequential(inputShape: [12, 2]) {
            LSTM(24)
            Dense(1)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        try model.fit(x: x, y: y, epochs: 30, batchSize: 64, seed: 1, verbose: 0)
        let p = try model.predict(tx).scalars, t = ty.scalars
        let close = zip(p, t).filter { abs($0 - $1) < 0.04 }.count
        XCTAssertGreaterThanOrEqual(Double(close) / Double(t.count), 0.95, "MSE \(zip(p, t).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(t.count))")
    }
}
