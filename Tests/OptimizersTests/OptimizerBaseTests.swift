import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// What every optimizer shares: frozen parameters, step counting, gradients left as they were,
/// and large parameters split over the thread pool with the same result.
final class OptimizerBaseTests: XCTestCase {
    private let allOptimizers: [() -> any Optimizer] = [
        { SGD(learningRate: 0.1, momentum: 0.9) }, { Adam() }, { AdamW() },
        { RMSprop(momentum: 0.2, centered: true) }, { Adagrad() },
    ]

    func testNonTrainableParametersAreUntouchedAndHaveNoState() {
        for make in allOptimizers {
            let optimizer = make()
            let parameters = makeFixtureParameters()
            let frozen = parameters[2].value
            for step in 0..<3 {
                setFixtureGradients(parameters, step: step)
                optimizer.step(parameters)
            }
            XCTAssertEqual(parameters[2].value, frozen, "\(type(of: optimizer)) moved a frozen parameter")
            XCTAssertFalse(optimizer.stateTensors().keys.contains { $0.hasPrefix("norm.mean.") },
                           "\(type(of: optimizer)) keeps state for a frozen parameter")
            XCTAssertNotEqual(parameters[1].value, makeFixtureParameters()[1].value, "\(type(of: optimizer)) did nothing")
        }
    }

    func testStepCountsAndLeavesGradientsAlone() {
        for make in allOptimizers {
            let optimizer = make()
            let parameters = makeFixtureParameters()
            setFixtureGradients(parameters, step: 1)
            let gradients = parameters.map(\.gradient)
            XCTAssertEqual(optimizer.iterations, 0)
            optimizer.step(parameters)
            optimizer.step(parameters)
            optimizer.step([])
            XCTAssertEqual(optimizer.iterations, 3, "\(type(of: optimizer))")
            XCTAssertEqual(parameters.map(\.gradient), gradients, "\(type(of: optimizer)) changed a gradient")
        }
    }

    func testLargeParametersGiveTheSameResultAsSmallOnes() {
        // An element's update does not depend on its neighbours, so a 2^17-element parameter,
        // split over the pool, must match the same numbers updated in small pieces.
        let n = 1 << 17
        let values = randomScalars(n, seed: 5), grads = randomScalars(n, seed: 6)
        for make in allOptimizers {
            let whole = Parameter(name: "big", value: Tensor(values))
            whole.accumulateGradient(Tensor(grads))
            let wholeOptimizer = make()
            wholeOptimizer.step([whole])
            wholeOptimizer.step([whole])

            let pieceCount = 64, size = n / pieceCount
            let pieces = (0..<pieceCount).map { k in
                let p = Parameter(name: "piece\(k)", value: Tensor(Array(values[k * size..<(k + 1) * size])))
                p.accumulateGradient(Tensor(Array(grads[k * size..<(k + 1) * size])))
                return p
            }
            let piecesOptimizer = make()
            piecesOptimizer.step(pieces)
            piecesOptimizer.step(pieces)
            XCTAssertEqual(whole.value.scalars, pieces.flatMap(\.value.scalars), "\(type(of: wholeOptimizer))")
        }
    }

    func testOptimizersConformAndExposeTheirConfiguration() {
        let sgd = SGD(learningRate: 0.2, momentum: 0.9, nesterov: true, weightDecay: 0.1, clipNorm: 1)
        XCTAssertEqual(sgd.learningRate, 0.2)
        XCTAssertEqual(sgd.momentum, 0.9)
        XCTAssertTrue(sgd.nesterov)
        XCTAssertEqual(sgd.clipNorm, 1)
        let adam = Adam()
        XCTAssertEqual(adam.learningRate, 1e-3)
        XCTAssertEqual(adam.epsilon, 1e-7, "Keras' default epsilon")
        XCTAssertFalse(adam is AdamW)
        XCTAssertEqual(AdamW().weightDecay, 0.01)
        let rms = RMSprop()
        XCTAssertEqual(rms.rho, 0.9)
        XCTAssertEqual(Adagrad().initialAccumulator, 0.1)
    }
}
