import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

/// Stochastic gradient descent with optional momentum (`v = m v - lr g; w += v`), local to the
/// tests so they do not depend on the Optimizers module's concrete optimizers.
final class PlainSGD: Optimizer {
    var learningRate: Float
    let momentum: Float
    private(set) var iterations = 0
    private var velocity: [ObjectIdentifier: Tensor] = [:]

    init(learningRate: Float, momentum: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
    }

    func step(_ parameters: [Parameter]) {
        for p in parameters where p.isTrainable {
            if momentum == 0 {
                p.value -= learningRate * p.gradient
            } else {
                let id = ObjectIdentifier(p)
                if velocity[id] == nil { velocity[id] = Tensor.zeros(p.value.shape) }
                velocity[id]! *= momentum   // in place: the dictionary's buffer is not shared
                velocity[id]! -= learningRate * p.gradient
                p.value += velocity[id]!
            }
        }
        iterations += 1
    }

    func stateTensors() -> [String: Tensor] { ["iterations": Tensor([Float(iterations)])] }

    func loadStateTensors(_ state: [String: Tensor], for parameters: [Parameter]) throws {
        guard let it = state["iterations"] else { throw OptimizerError("missing key iterations") }
        iterations = Int(it.scalar)
    }
}

/// Builds `layer` for `inputShape` from `SeededGenerator(seed:)` (a built layer keeps its
/// weights) and runs `checkLayerBackward` on `input`, or on a random `[batch] + inputShape` input.
func numericLayerGradientCheck(
    layer: any Layer, inputShape: [Int], batch: Int = 3, seed: UInt64 = 1, input: Tensor? = nil,
    epsilon: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 2e-3,
    file: StaticString = #filePath, line: UInt = #line
) {
    var generator = SeededGenerator(seed: seed)
    let outputShape: [Int]
    do {
        outputShape = try layer.build(inputShape: inputShape, generator: &generator)
    } catch {
        XCTFail("build failed: \(error)", file: file, line: line)
        return
    }
    let x = input ?? randomTensor([batch] + inputShape, seed: seed &+ 1)
    XCTAssertEqual(layer.forward(x, training: false).shape, [x.shape[0]] + outputShape, "forward shape", file: file, line: line)
    checkLayerBackward(layer, input: x, seed: seed &+ 2, epsilon: epsilon, rtol: rtol, atol: atol, file: file, line: line)
}

/// The four XOR points and their labels.
func xorData() -> (x: Tensor, y: [Int]) {
    (Tensor(shape: [4, 2], scalars: [0, 0, 0, 1, 1, 0, 1, 1]), [0, 1, 1, 0])
}

/// Two interleaved spirals (one per class) in [-1, 1]², with a little noise, `perClass` points each.
func spiralData(perClass: Int, seed: UInt64) -> (x: Tensor, y: [Int]) {
    var g = SeededGenerator(seed: seed)
    var xs: [Float] = [], ys: [Int] = []
    for c in 0..<2 {
        for i in 0..<perClass {
            let r = Float(i) / Float(perClass) * 0.9 + 0.1
            let t = Float(i) / Float(perClass) * 3.5 + Float(c) * .pi + (g.nextUnitFloat() - 0.5) * 0.2
            xs += [r * Foundation.cos(t), r * Foundation.sin(t)]
            ys.append(c)
        }
    }
    return (Tensor(shape: [2 * perClass, 2], scalars: xs), ys)
}

/// A callback that records what it sees, for tests.
final class RecordingCallback: Callback {
    var events: [String] = []
    var weightsAtEpochEnd: [[String: Tensor]] = []
    var learningRates: [Float] = []
    var stopAfterEpoch: Int?

    func onTrainBegin(_ context: TrainingContext) throws { events.append("trainBegin") }
    func onTrainEnd(_ context: TrainingContext, logs: [String: Double]) throws { events.append("trainEnd") }
    func onEpochBegin(_ epoch: Int, context: TrainingContext) throws {
        events.append("epochBegin \(epoch)")
        learningRates.append(context.optimizer.learningRate)
    }
    func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
        events.append("epochEnd \(epoch)")
        weightsAtEpochEnd.append(context.model.weights())
        if epoch == stopAfterEpoch { context.stopTraining = true }
    }
    func onBatchEnd(_ step: Int, logs: [String: Double], context: TrainingContext) throws {
        events.append("batchEnd \(step)")
    }
}
