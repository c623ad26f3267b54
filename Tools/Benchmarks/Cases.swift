import TensorCore

/// One generator for all benchmark inputs, so every run measures the same data.
enum SeededGeneratorBox {
    nonisolated(unsafe) static var shared = SeededGenerator(seed: 42)
}

/// Element-wise operations measured against a plain copy: (name, (bytes moved, operation)).
enum ElementwiseCases {
    static func all(_ x: Tensor, _ y: Tensor) -> [(String, (Int, () -> Void))] {
        []
    }
}
