import TensorCore
import XCTest

/// Asserts two float sequences agree element by element within `atol + rtol * |expected|`,
/// reporting the first index that does not.
public func assertClose(_ actual: [Float], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-5,
                 _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "element counts differ. \(message())", file: file, line: line)
    for i in 0..<min(actual.count, expected.count) {
        let a = Double(actual[i]), e = expected[i]
        if !(abs(a - e) <= atol + rtol * abs(e)) && !(a.isNaN && e.isNaN) && !(a == e) {
            XCTFail("element \(i): got \(a), expected \(e). \(message())", file: file, line: line)
            return
        }
    }
}

public func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-5, atol: Double = 1e-5,
                 _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "shapes differ. \(message())", file: file, line: line)
    assertClose(actual.scalars, expected.scalars.map(Double.init), rtol: rtol, atol: atol, message(), file: file, line: line)
}

/// Runs `body` once per kernel path this CPU supports (portable, AVX2, AVX-512), naming the path.
public func forEachISA(_ body: (KernelISA) throws -> Void) rethrows {
    for isa in KernelISA.supported {
        try KernelISA.withISA(isa) { try body(isa) }
    }
}

/// Deterministic random floats in [-1, 1).
public func randomScalars(_ count: Int, seed: UInt64) -> [Float] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in 2 * g.nextUnitFloat() - 1 }
}

/// A tensor of deterministic random values in [-scale, scale).
public func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    Tensor(shape: shape, scalars: randomScalars(shape.reduce(1, *), seed: seed).map { $0 * scale })
}
