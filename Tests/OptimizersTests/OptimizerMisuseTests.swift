import Optimizers
import TensorCore
import Testing

/// API misuse stops with a message naming what was wrong (each case runs in a child process,
/// as a Swift Testing exit test, and checks what it printed).
@Suite struct OptimizerMisuseTests {
    private func expectStop(mentioning parts: [String], _ result: ExitTest.Result?,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        for part in parts {
            #expect(stderr.contains(part), "stderr should mention \(part): \(stderr)", sourceLocation: sourceLocation)
        }
    }

    @Test func gradientOfAnotherShapeNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let p = Parameter(name: "dense.kernel", value: Tensor.zeros([2, 3]))
            p.gradient = Tensor.zeros([3, 2])
            SGD().step([p])
        }
        expectStop(mentioning: ["dense.kernel", "[3, 2]", "[2, 3]"], result)
    }

    @Test func parameterThatChangedShapeAfterItsFirstStepNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let p = Parameter(name: "dense.bias", value: Tensor.zeros([4]))
            let optimizer = Adam()
            optimizer.step([p])
            p.value = Tensor.zeros([5])
            p.gradient = Tensor.zeros([5])
            optimizer.step([p])
        }
        expectStop(mentioning: ["dense.bias", "[4]", "[5]"], result)
    }

    @Test func outOfRangeHyperparameterIsNamed() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Adam(beta1: 1)
        }
        expectStop(mentioning: ["beta1", "0..<1"], result)
    }

    @Test func validUseDoesNotStop() {
        let p = Parameter(name: "dense.bias", value: Tensor.zeros([4]))
        p.gradient = Tensor.ones([4])
        let optimizer = Adam(beta1: 0.5)
        optimizer.step([p])
        #expect(optimizer.iterations == 1 && p.value.scalars.allSatisfy { $0 < 0 })
    }
}
