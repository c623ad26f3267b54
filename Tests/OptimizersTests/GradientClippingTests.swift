import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Clipping by value, per-parameter norm and global norm, as optimizer options and as functions.
/// With `SGD(learningRate: 1)` a step moves each weight by minus its clipped gradient, so the
/// clipped gradient can be read off the weights.
final class GradientClippingTests: XCTestCase {
    /// Parameters at zero with the given gradients.
    private func parameters(_ gradients: [[Float]], frozen: Set<Int> = []) -> [Parameter] {
        gradients.enumerated().map { j, g in
            let p = Parameter(name: "p\(j)", value: Tensor.zeros([g.count]), isTrainable: !frozen.contains(j))
            p.accumulateGradient(Tensor(g))
            return p
        }
    }

    /// The gradients each optimizer step applied: minus the weights after one step of SGD(lr: 1).
    private func appliedGradients(_ optimizer: SGD, _ parameters: [Parameter]) -> [[Double]] {
        optimizer.step(parameters)
        return parameters.map { $0.value.scalars.map { -Double($0) } }
    }

    func testClipValueClampsEachElement() {
        let ps = parameters([[2, -3, 0.1, -0.2], [0.7, -0.5]])
        let applied = appliedGradients(SGD(learningRate: 1, clipValue: 0.5), ps)
        assertClose(applied[0].map(Float.init), [0.5, -0.5, 0.1, -0.2])
        assertClose(applied[1].map(Float.init), [0.5, -0.5])
    }

    func testClipNormRescalesEachParameterOnItsOwn() {
        // |(3, 4)| = 5 is scaled to 1; |(0.3, 0.4)| = 0.5 is under the limit and stays.
        let ps = parameters([[3, 4], [0.3, 0.4]])
        let applied = appliedGradients(SGD(learningRate: 1, clipNorm: 1), ps)
        assertClose(applied[0].map(Float.init), [0.6, 0.8])
        assertClose(applied[1].map(Float.init), [0.3, 0.4])
    }

    func testGlobalClipNormRescalesAllTogether() {
        // Joint norm |(3, 4, 0, 12)| = 13: every gradient is multiplied by 2 / (13 + 1e-6).
        let ps = parameters([[3, 4], [0, 12]])
        let applied = appliedGradients(SGD(learningRate: 1, globalClipNorm: 2), ps)
        let f = 2 / (13 + 1e-6)
        assertClose(applied[0].map(Float.init), [3 * f, 4 * f])
        assertClose(applied[1].map(Float.init), [0, 12 * f])
    }

    func testGlobalClipNormLeavesSmallGradientsAlone() {
        let ps = parameters([[0.3, -0.4], [0.1]])
        let applied = appliedGradients(SGD(learningRate: 1, globalClipNorm: 1), ps)
        XCTAssertEqual(applied[0], [0.30000001192092896, -0.4000000059604645])
        XCTAssertEqual(applied[1], [0.10000000149011612])
    }

    func testFrozenParametersDoNotCountTowardsTheGlobalNorm() {
        let ps = parameters([[3, 4], [1000, 1000]], frozen: [1])
        let applied = appliedGradients(SGD(learningRate: 1, globalClipNorm: 10), ps)
        assertClose(applied[0].map(Float.init), [3, 4])
        XCTAssertEqual(ps[1].value.scalars, [0, 0])
    }

    func testOptionsCombineInOrderValueThenNormThenGlobal() {
        // clamp to 2: (2, 2) and (0.5, -2); per-parameter norm 1: (0.7071, 0.7071) and
        // (0.5, -2)/2.0616; joint norm sqrt(2) -> 0.5: all times 0.5 / (sqrt(2) + 1e-6).
        let ps = parameters([[3, 4], [0.5, -7]])
        let applied = appliedGradients(SGD(learningRate: 1, clipNorm: 1, globalClipNorm: 0.5, clipValue: 2), ps)
        let r = 0.5.squareRoot(), n2 = (0.25 + 4.0).squareRoot()
        let f = 0.5 / (2.0.squareRoot() + 1e-6)
        assertClose(applied[0].map(Float.init), [r * f, r * f])
        assertClose(applied[1].map(Float.init), [0.5 / n2 * f, -2 / n2 * f])
    }

    func testOptimizerClippingLeavesGradientsUnchanged() {
        let ps = parameters([[3, 4]])
        SGD(learningRate: 1, clipNorm: 1, clipValue: 3.5).step(ps)
        XCTAssertEqual(ps[0].gradient.scalars, [3, 4])
        XCTAssertNotEqual(ps[0].value.scalars, [-3, -4])
    }

    func testClippedAdamMatchesAdamOnPreClippedGradients() {
        // Clipping belongs to every optimizer: Adam with globalClipNorm equals Adam fed the
        // gradients clipped beforehand by clipGradients(_:byGlobalNorm:).
        let clipped = Adam(learningRate: 0.01, globalClipNorm: 0.5)
        let plain = Adam(learningRate: 0.01)
        let a = makeFixtureParameters(), b = makeFixtureParameters()
        for step in 0..<5 {
            setFixtureGradients(a, step: step)
            setFixtureGradients(b, step: step)
            clipped.step(a)
            clipGradients(b, byGlobalNorm: 0.5)
            plain.step(b)
        }
        for (x, y) in zip(a, b) { assertClose(x.value, y.value, rtol: 1e-6, atol: 1e-7) }
        XCTAssertNotEqual(a[0].value, makeFixtureParameters()[0].value)
    }

    func testClipGradientsByGlobalNormReturnsThePreClipNorm() {
        let ps = parameters([[3, 4], [0, 12], [100]], frozen: [2])
        let norm = clipGradients(ps, byGlobalNorm: 6.5)
        XCTAssertEqual(norm, 13, accuracy: 1e-5)
        let f = 6.5 / (13 + 1e-6)
        assertClose(ps[0].gradient.scalars, [3 * f, 4 * f])
        assertClose(ps[1].gradient.scalars, [0, 12 * f])
        XCTAssertEqual(ps[2].gradient.scalars, [100], "a frozen parameter's gradient is not clipped")
        // Under the limit: the norm is still reported and nothing changes.
        let small = parameters([[0.6, 0.8]])
        XCTAssertEqual(clipGradients(small, byGlobalNorm: 2), 1, accuracy: 1e-6)
        XCTAssertEqual(small[0].gradient.scalars, [0.6, 0.8])
    }

    func testClipGradientsByValue() {
        let ps = parameters([[3, -4, 0.25], [-0.5]])
        clipGradients(ps, byValue: 1)
        XCTAssertEqual(ps[0].gradient.scalars, [1, -1, 0.25])
        XCTAssertEqual(ps[1].gradient.scalars, [-0.5])
    }

    func testClipNormOnALargeParameter() {
        // Large enough (2^17 elements) to be split over the thread pool.
        let n = 1 << 17
        let p = Parameter(name: "big", value: Tensor.zeros([n]))
        p.accumulateGradient(Tensor(shape: [n], repeating: 0.5))
        SGD(learningRate: 1, clipNorm: 2).step([p])
        let expected = 2 / (0.5 * Double(n).squareRoot()) * 0.5
        assertClose(p.value.scalars, [Double](repeating: -expected, count: n), rtol: 1e-5, atol: 0)
    }
}
