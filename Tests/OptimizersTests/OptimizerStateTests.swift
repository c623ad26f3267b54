import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Exporting and restoring optimizer state: resuming is bit-identical, and bad state is
/// refused with an error that names the key.
final class OptimizerStateTests: XCTestCase {
    /// Every optimizer in a configuration that uses all its slots, with a schedule or
    /// clipping on some, so that the step count and the rate are part of what must resume.
    private let configurations: [(name: String, make: () -> any Optimizer)] = [
        ("SGD", { SGD(learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01, clipValue: 1.5) }),
        ("Adam", { Adam(amsgrad: true, schedule: ExponentialDecay(initial: 0.01, decaySteps: 3, decayRate: 0.7)) }),
        ("AdamW", { AdamW(learningRate: 0.01, weightDecay: 0.1, globalClipNorm: 1) }),
        ("RMSprop", { RMSprop(learningRate: 0.01, momentum: 0.5, centered: true, clipNorm: 0.8) }),
        ("Adagrad", { Adagrad(learningRate: 0.1, schedule: LinearWarmup(warmupSteps: 4, then: StepDecay(initial: 0.1, dropEvery: 3, factor: 0.5))) }),
    ]

    /// Fresh parameters with the same names and the values of `parameters` (as a model
    /// reloaded from its saved weights would have).
    private func reloaded(_ parameters: [Parameter]) -> [Parameter] {
        parameters.map { Parameter(name: $0.name, value: $0.value, isTrainable: $0.isTrainable) }
    }

    func testResumingIsBitIdenticalToAnUninterruptedRun() throws {
        for (name, make) in configurations {
            let straight = makeFixtureParameters()
            let uninterrupted = make()
            for step in 0..<10 {
                setFixtureGradients(straight, step: step)
                uninterrupted.step(straight)
            }

            let first = makeFixtureParameters()
            let before = make()
            for step in 0..<5 {
                setFixtureGradients(first, step: step)
                before.step(first)
            }
            let saved = before.stateTensors()
            let resumedParameters = reloaded(first)
            let resumed = make()
            try resumed.loadStateTensors(saved, for: resumedParameters)
            XCTAssertEqual(resumed.iterations, 5, name)
            XCTAssertEqual(resumed.learningRate, before.learningRate, name)
            for step in 5..<10 {
                setFixtureGradients(resumedParameters, step: step)
                resumed.step(resumedParameters)
            }

            for (a, b) in zip(resumedParameters, straight) {
                XCTAssertEqual(a.value.scalars, b.value.scalars, "\(name): \(a.name) differs after resuming")
            }
            XCTAssertEqual(resumed.stateTensors(), uninterrupted.stateTensors(), "\(name): final state differs")
        }
    }

    func testResumingWithoutStateWouldDiffer() {
        // The check above can fail: a fresh optimizer that skips the load ends elsewhere.
        let straight = makeFixtureParameters(), split = makeFixtureParameters()
        let a = Adam(learningRate: 0.01)
        for step in 0..<10 {
            setFixtureGradients(straight, step: step)
            a.step(straight)
        }
        var b = Adam(learningRate: 0.01)
        for step in 0..<10 {
            if step == 5 { b = Adam(learningRate: 0.01) }
            setFixtureGradients(split, step: step)
            b.step(split)
        }
        XCTAssertNotEqual(straight[0].value, split[0].value)
    }

    func testExportedKeysAndShapes() {
        let parameters = makeFixtureParameters()
        let optimizer = Adam(amsgrad: true)
        XCTAssertEqual(Set(optimizer.stateTensors().keys), ["iterations", "learning_rate"], "no slots before the first step")
        for step in 0..<3 {
            setFixtureGradients(parameters, step: step)
            optimizer.step(parameters)
        }
        let state = optimizer.stateTensors()
        XCTAssertEqual(Set(state.keys), [
            "iterations", "learning_rate",
            "dense.kernel.m", "dense.kernel.v", "dense.kernel.v_max",
            "dense.bias.m", "dense.bias.v", "dense.bias.v_max",
        ], "the frozen norm.mean has no state")
        XCTAssertEqual(state["iterations"]?.scalars, [3])
        XCTAssertEqual(state["learning_rate"]?.count, 1)
        XCTAssertEqual(state["dense.kernel.v"]?.shape, [2, 3])
        XCTAssertEqual(state["dense.bias.m"]?.shape, [5])

        XCTAssertEqual(Set(SGD().stateTensors().keys), ["iterations", "learning_rate"])
        let sgd = SGD(momentum: 0.5)
        sgd.step(parameters)
        XCTAssertEqual(Set(sgd.stateTensors().keys), ["iterations", "learning_rate", "dense.kernel.momentum", "dense.bias.momentum"])
        let rms = RMSprop(momentum: 0.5, centered: true)
        rms.step(parameters)
        XCTAssertTrue(rms.stateTensors().keys.contains("dense.bias.average_gradient"))
        let adagrad = Adagrad(initialAccumulator: 0.5)
        adagrad.step(parameters)
        XCTAssertEqual(adagrad.stateTensors()["dense.bias.accumulator"]?.shape, [5])
    }

    func testExplicitlySetLearningRateIsRestored() throws {
        let parameters = makeFixtureParameters()
        let optimizer = SGD(learningRate: 0.1)
        optimizer.step(parameters)
        optimizer.learningRate = 0.025
        let restored = SGD(learningRate: 0.1)
        try restored.loadStateTensors(optimizer.stateTensors(), for: parameters)
        XCTAssertEqual(restored.learningRate, 0.025)
        XCTAssertEqual(restored.iterations, 1)
    }

    func testStateBeforeTheFirstStepLoads() throws {
        let parameters = makeFixtureParameters()
        let restored = Adam()
        try restored.loadStateTensors(Adam().stateTensors(), for: parameters)
        XCTAssertEqual(restored.iterations, 0)
    }

    func testStateOfAParameterFrozenAfterTrainingLoads() throws {
        let parameters = makeFixtureParameters()
        let optimizer = Adam()
        setFixtureGradients(parameters, step: 0)
        optimizer.step(parameters)
        parameters[1].isTrainable = false
        let state = optimizer.stateTensors()
        XCTAssertNotNil(state["dense.bias.m"], "the state of a frozen parameter is kept")
        let restored = Adam()
        try restored.loadStateTensors(state, for: reloaded(parameters))
        XCTAssertEqual(restored.stateTensors(), state)
    }

    // MARK: - Errors

    /// Adam state after two steps on the fixture.
    private func adamState() -> (state: [String: Tensor], parameters: [Parameter]) {
        let parameters = makeFixtureParameters()
        let optimizer = Adam()
        for step in 0..<2 {
            setFixtureGradients(parameters, step: step)
            optimizer.step(parameters)
        }
        return (optimizer.stateTensors(), parameters)
    }

    private func loadError(_ state: [String: Tensor], _ parameters: [Parameter], into optimizer: any Optimizer = Adam(),
                           file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            try optimizer.loadStateTensors(state, for: parameters)
            XCTFail("the load should have failed", file: file, line: line)
            return ""
        } catch let error as OptimizerError {
            XCTAssertEqual(optimizer.iterations, 0, "a failed load changed the optimizer", file: file, line: line)
            return error.message
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return ""
        }
    }

    func testMissingKeyIsNamed() {
        var (state, parameters) = adamState()
        state["dense.kernel.v"] = nil
        let message = loadError(state, parameters)
        XCTAssertTrue(message.contains("missing key 'dense.kernel.v'"), message)
        state["iterations"] = nil
        XCTAssertTrue(loadError(state, parameters).contains("missing key 'iterations'"))
    }

    func testUnexpectedKeyIsNamed() {
        var (state, parameters) = adamState()
        state["dense.kernel.velocity"] = Tensor.zeros([2, 3])
        let message = loadError(state, parameters)
        XCTAssertTrue(message.contains("unexpected key 'dense.kernel.velocity'"), message)
        // Another optimizer's state is refused, naming its slots.
        let rmsMessage = loadError(state, parameters, into: RMSprop())
        XCTAssertTrue(rmsMessage.contains("unexpected key 'dense.kernel.m'"), rmsMessage)
        XCTAssertTrue(rmsMessage.contains("missing key 'dense.bias.velocity'"), rmsMessage)
    }

    func testStateOfARenamedParameterIsRefused() {
        let (state, parameters) = adamState()
        let renamed = reloaded(parameters)
        renamed[1].name = "dense_2.bias"
        let message = loadError(state, renamed)
        XCTAssertTrue(message.contains("missing key 'dense_2.bias.m'"), message)
        XCTAssertTrue(message.contains("unexpected key 'dense.bias.m'"), message)
    }

    func testMisShapedKeyIsNamedWithBothShapes() {
        var (state, parameters) = adamState()
        state["dense.bias.m"] = Tensor.zeros([4])
        let message = loadError(state, parameters)
        XCTAssertTrue(message.contains("key 'dense.bias.m' has shape [4], parameter 'dense.bias' has shape [5]"), message)
        state["dense.bias.m"] = Tensor.zeros([5])
        state["iterations"] = Tensor([2, 0])
        XCTAssertTrue(loadError(state, parameters).contains("key 'iterations' has shape [2]"))
        state["iterations"] = Tensor(scalar: 2.5)
        XCTAssertTrue(loadError(state, parameters).contains("key 'iterations' holds 2.5"))
    }

    func testDuplicateParameterNamesAreRefused() {
        let (state, parameters) = adamState()
        let twins = reloaded(parameters)
        twins[1].name = "dense.kernel"
        XCTAssertTrue(loadError(state, twins).contains("two parameters are named 'dense.kernel'"))
    }
}
