import TensorCore
import XCTest

/// Checks an analytic gradient against central finite differences.
///
/// `f` maps the input to a scalar (compute it in Float64 where you can: a common choice is
/// `sum(output * fixedRandomWeights)`, whose gradient with respect to the output is the weights).
/// Every element of `x` is perturbed by `±epsilon` (or only `maxElements` of them, spread evenly,
/// for large inputs), and the numeric slope is compared with `analytic` within
/// `atol + rtol * max(|numeric|, |analytic|)`.
public func checkGradient(
    of f: (Tensor) -> Double, at x: Tensor, analytic: Tensor,
    epsilon: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 2e-3, maxElements: Int = 400,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(analytic.shape, x.shape, "gradient shape differs from input shape. \(message())", file: file, line: line)
    guard analytic.shape == x.shape else { return }
    let step = max(1, x.count / maxElements)
    let flatAnalytic = analytic.scalars
    var failures = 0
    for i in stride(from: 0, to: x.count, by: step) {
        var plus = x, minus = x
        plus.withUnsafeMutableBufferPointer { $0[i] += epsilon }
        minus.withUnsafeMutableBufferPointer { $0[i] -= epsilon }
        let numeric = (f(plus) - f(minus)) / (2 * Double(epsilon))
        let a = Double(flatAnalytic[i])
        if abs(numeric - a) > atol + rtol * max(abs(numeric), abs(a)) {
            failures += 1
            if failures <= 3 {
                XCTFail("gradient element \(i): analytic \(a), finite difference \(numeric). \(message())", file: file, line: line)
            }
        }
    }
}

/// `sum(t * weights)` in Float64: a scalar whose gradient with respect to `t` is `weights`.
public func weightedSum(_ t: Tensor, _ weights: Tensor) -> Double {
    precondition(t.shape == weights.shape, "weightedSum shapes differ: \(t.shape) vs \(weights.shape)")
    let a = t.scalars, w = weights.scalars
    var s = 0.0
    for i in a.indices { s += Double(a[i]) * Double(w[i]) }
    return s
}
