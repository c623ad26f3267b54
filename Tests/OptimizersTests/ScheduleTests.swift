import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Schedules against their closed forms (values worked out by hand), and their use by optimizers.
final class ScheduleTests: XCTestCase {
    private func check(_ schedule: some LearningRateSchedule, _ expected: [Int: Double],
                       file: StaticString = #filePath, line: UInt = #line) {
        for (step, rate) in expected.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(Double(schedule.rate(at: step)), rate, accuracy: 1e-6 * Swift.max(1, abs(rate)),
                           "step \(step)", file: file, line: line)
        }
    }

    func testConstant() {
        check(ConstantLearningRate(0.25), [0: 0.25, 1: 0.25, 1_000_000: 0.25])
    }

    func testStepDecayDropsAtMultiplesOfDropEvery() {
        check(StepDecay(initial: 0.1, dropEvery: 3, factor: 0.5),
              [0: 0.1, 2: 0.1, 3: 0.05, 5: 0.05, 6: 0.025, 9: 0.0125, 10: 0.0125])
    }

    func testExponentialDecayIsSmooth() {
        // 0.1 * 0.5^(n/10): half way to the first halving is 0.1/sqrt(2).
        check(ExponentialDecay(initial: 0.1, decaySteps: 10, decayRate: 0.5),
              [0: 0.1, 5: 0.070710678, 10: 0.05, 25: 0.017677670, 40: 0.00625])
    }

    func testExponentialDecayStaircaseHoldsUntilEachBoundary() {
        check(ExponentialDecay(initial: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true),
              [0: 0.1, 9: 0.1, 10: 0.05, 19: 0.05, 20: 0.025, 25: 0.025, 30: 0.0125])
    }

    func testCosineDecayFollowsHalfACosineThenStays() {
        // 1 * (0.9 * (1 + cos(pi n / 100)) / 2 + 0.1)
        check(CosineDecay(initial: 1, decaySteps: 100, alpha: 0.1),
              [0: 1, 25: 0.868198052, 50: 0.55, 75: 0.231801948, 100: 0.1, 150: 0.1])
        check(CosineDecay(initial: 0.5, decaySteps: 4), [0: 0.5, 2: 0.25, 4: 0, 9: 0])
    }

    func testLinearWarmupRampsThenHandsOver() {
        let schedule = LinearWarmup(warmupSteps: 4, then: CosineDecay(initial: 1, decaySteps: 10))
        // Ramp 0, 1/4, 2/4, 3/4; then the cosine from its own step 0 (step 9 is its step 5).
        check(schedule, [0: 0, 1: 0.25, 2: 0.5, 3: 0.75, 4: 1, 9: 0.5, 14: 0, 20: 0])
    }

    func testLinearWarmupFromAnInitialRate() {
        let schedule = LinearWarmup(warmupSteps: 10, initial: 0.2, then: ConstantLearningRate(1))
        check(schedule, [0: 0.2, 5: 0.6, 9: 0.92, 10: 1, 11: 1])
        check(LinearWarmup(warmupSteps: 0, then: ConstantLearningRate(0.3)), [0: 0.3, 7: 0.3])
    }

    func testOptimizerUsesTheScheduleAtEachStep() {
        let schedule = StepDecay(initial: 1, dropEvery: 2, factor: 0.5)
        let optimizer = SGD(learningRate: 123, schedule: schedule)
        let p = Parameter(name: "w", value: Tensor([0]))
        p.accumulateGradient(Tensor([1]))
        var expected: Float = 0
        for step in 0..<6 {
            XCTAssertEqual(optimizer.learningRate, schedule.rate(at: step), "learningRate before step \(step)")
            expected -= schedule.rate(at: step)
            optimizer.step([p])
            XCTAssertEqual(p.value.scalar, expected, accuracy: 1e-6, "weight after step \(step)")
        }
        XCTAssertEqual(optimizer.learningRate, 0.125)
    }

    func testSettingTheLearningRateReplacesTheSchedule() {
        let optimizer = Adam(learningRate: 1, schedule: ExponentialDecay(initial: 0.5, decaySteps: 1, decayRate: 0.5))
        let p = Parameter(name: "w", value: Tensor([0]))
        p.accumulateGradient(Tensor([1]))
        optimizer.step([p])
        optimizer.step([p])
        XCTAssertEqual(optimizer.learningRate, 0.125)
        optimizer.learningRate = 0.01  // what a reduce-on-plateau callback does
        XCTAssertNil(optimizer.schedule)
        XCTAssertEqual(optimizer.learningRate, 0.01)
        optimizer.step([p])
        XCTAssertEqual(optimizer.learningRate, 0.01, "the set rate stays after a step")
        // A constant gradient keeps Adam's corrected step at lr, so the last move is 0.01.
        let before = p.value.scalar
        optimizer.step([p])
        XCTAssertEqual(Double(before - p.value.scalar), 0.01, accuracy: 1e-5)
    }

    func testAssigningAScheduleContinuesFromTheCurrentStep() {
        let optimizer = SGD(learningRate: 0.1)
        let p = Parameter(name: "w", value: Tensor([0]))
        for _ in 0..<3 { optimizer.step([p]) }
        optimizer.schedule = StepDecay(initial: 1, dropEvery: 2, factor: 0.3)
        XCTAssertEqual(optimizer.learningRate, 0.3, accuracy: 1e-7, "step 3 of the schedule, not its step 0")
        optimizer.schedule = nil
        XCTAssertEqual(optimizer.learningRate, 0.1, accuracy: 1e-7, "back to the constant rate")
    }

    func testScheduledAdamMatchesReference() {
        let schedule = LinearWarmup(warmupSteps: 3, initial: 0.001, then: CosineDecay(initial: 0.01, decaySteps: 5, alpha: 0.2))
        checkOptimizerAgainstReference(Adam(schedule: schedule), reference: ReferenceAdam(), steps: 10,
                                       learningRate: { Double(schedule.rate(at: $0)) })
    }
}
