import TensorCore
import Testing

/// API misuse stops the process with a message naming both shapes, in release builds too
/// (`neuritePrecondition` keeps the message where `precondition` would drop it). Each case runs
/// in a child process (a Swift Testing exit test) and checks what it printed.
@Suite struct ShapeErrorTests {
    private func expectStop(mentioning parts: [String], sourceLocation: SourceLocation = #_sourceLocation,
                            _ result: ExitTest.Result?) {
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        for part in parts {
            #expect(stderr.contains(part), "stderr should mention \(part): \(stderr)", sourceLocation: sourceLocation)
        }
    }

    @Test func broadcastingMismatchNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]) + Tensor.zeros([4])
        }
        expectStop(mentioning: ["cannot broadcast", "[2, 3]", "[4]"], result)
    }

    @Test func matmulMismatchNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 5]))
        }
        expectStop(mentioning: ["[2, 3]", "[4, 5]"], result)
    }

    @Test func inPlaceUpdateCannotChangeTheShape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var a = Tensor.zeros([3])
            a += Tensor.zeros([2, 3])
        }
        expectStop(mentioning: ["[3]", "[2, 3]"], result)
    }

    @Test func convolutionChannelMismatchNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.conv2D(Tensor.zeros([2, 8, 8, 3]), kernel: Tensor.zeros([3, 3, 1, 4]))
        }
        expectStop(mentioning: ["[2, 8, 8, 3]", "[3, 3, 1, 4]"], result)
    }

    @Test func reshapeToAnotherCountNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Tensor.zeros([2, 3]).reshaped([4, 2])
        }
        expectStop(mentioning: ["[2, 3]", "[4, 2]"], result)
    }

    @Test func validUseDoesNotStop() {
        // The same operations with agreeing shapes run (so the cases above fail for the shapes alone).
        let sum = Tensor.zeros([2, 3]) + Tensor.ones([3])
        #expect(sum.shape == [2, 3] && sum.sum() == 6)
        #expect(Tensor.matmul(Tensor.ones([2, 3]), Tensor.ones([3, 5])).shape == [2, 5])
    }
}
