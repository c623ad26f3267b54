import TensorCore

/// One generator for all benchmark inputs, so every run measures the same data.
enum SeededGeneratorBox {
    nonisolated(unsafe) static var shared = SeededGenerator(seed: 42)
}

/// Element-wise operations measured against a plain copy: (name, (bytes moved, operation)).
/// Bytes count what the operation must read plus write: 12 per element for `x + y`, 8 for `exp(x)`.
enum ElementwiseCases {
    static func all(_ x: Tensor, _ y: Tensor) -> [(String, (Int, () -> Void))] {
        let n = x.count
        nonisolated(unsafe) var z = x + 0  // a private copy to update in place
        var bias = [Float](repeating: 0, count: 1024)
        for i in bias.indices { bias[i] = Float(i) * 1e-3 }
        let biasTensor = Tensor(bias)
        nonisolated(unsafe) var rows = x.reshaped([n / 1024, 1024])
        let magnitudes = x.abs()  // sqrt of non-negative inputs, its usual domain
        func keep(_ t: Tensor) { precondition(t.count == n) }
        return [
            ("add_in_place", (12 * n, { z += y })),
            ("scale_in_place", (8 * n, { z *= 1.0001 })),
            ("bias_relu_in_place", (8 * n, { rows.addBias(biasTensor, activation: .relu) })),
            ("add", (12 * n, { keep(x + y) })),
            ("mul", (12 * n, { keep(x * y) })),
            ("relu", (8 * n, { keep(x.relu()) })),
            ("exp", (8 * n, { keep(x.exp()) })),
            ("sqrt", (8 * n, { keep(magnitudes.sqrt()) })),
            ("sigmoid", (8 * n, { keep(x.sigmoid()) })),
            ("tanh", (8 * n, { keep(x.tanh()) })),
        ]
    }
}
