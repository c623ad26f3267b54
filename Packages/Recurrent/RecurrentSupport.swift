import Layers
import Optimizers
import TensorCore

// Internal machinery of the recurrent layers: owned scratch buffers, gate non-linearities on raw
// rows, and the orthogonal initialiser.

/// A 64-byte-aligned float buffer owned by a layer and reused from batch to batch, so a training
/// step allocates nothing per time step (and, once warm, nothing per batch).
final class FloatBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(capacity: Int = 0) {
        self.capacity = Swift.max(capacity, 16)
        pointer = FloatBuffer.allocate(self.capacity)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    /// Makes room for `count` floats (contents are lost when it grows) and returns the base.
    @discardableResult
    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            UnsafeMutableRawPointer(pointer).deallocate()
            capacity = count
            pointer = FloatBuffer.allocate(count)
        }
        return pointer
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }
}

/// The activations a recurrent cell supports: those whose derivative follows from their output,
/// so the backward pass needs only the activated gates it keeps anyway.
enum GateFunction {
    case tanh, sigmoid, relu, linear

    /// The gate for `f`, which the layer's initialiser has checked is one of these
    /// (`isRecurrentGate`).
    init(checked f: ActivationFunction) {
        switch f {
        case .tanh: self = .tanh
        case .sigmoid: self = .sigmoid
        case .relu: self = .relu
        case .linear: self = .linear
        default: neuritePreconditionFailure("a recurrent gate must be tanh, sigmoid, relu or linear, got \(f.configName)")
        }
    }

    /// `p[i] = f(p[i])` for `i < n`, with the kernels of `isa`.
    @inline(__always)
    func apply(_ p: UnsafeMutablePointer<Float>, _ n: Int, isa: KernelISA) {
        switch self {
        case .tanh: VectorMath.tanh(p, p, count: n, isa: isa)
        case .sigmoid: VectorMath.sigmoid(p, p, count: n, isa: isa)
        case .relu: for i in 0..<n { p[i] = Swift.max(p[i], 0) }
        case .linear: break
        }
    }

    /// `y[i] = f(x[i])` for `i < n`, with the kernels of `isa` (`x` and `y` may not overlap partially).
    @inline(__always)
    func apply(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int, isa: KernelISA) {
        switch self {
        case .tanh: VectorMath.tanh(x, y, count: n, isa: isa)
        case .sigmoid: VectorMath.sigmoid(x, y, count: n, isa: isa)
        case .relu: for i in 0..<n { y[i] = Swift.max(x[i], 0) }
        case .linear: y.update(from: x, count: n)
        }
    }

    /// `f'(x)` given `y = f(x)`.
    @inline(__always)
    func derivative(output y: Float) -> Float {
        switch self {
        case .tanh: 1 - y * y
        case .sigmoid: y * (1 - y)
        case .relu: y > 0 ? 1 : 0
        case .linear: 1
        }
    }
}

extension ActivationFunction {
    /// Whether a recurrent layer accepts it (its derivative follows from its output).
    var isRecurrentGate: Bool {
        switch self {
        case .tanh, .sigmoid, .relu, .linear: true
        default: false
        }
    }
}

/// Keras' `Orthogonal` initialiser (gain 1) for a `[rows, cols]` weight: a normal matrix of shape
/// `[max, min]` made orthonormal by Gram-Schmidt (the Q of its QR decomposition with R's diagonal
/// made positive, as Keras does), transposed when `rows < cols`. For a recurrent kernel
/// `[U, 4U]` its rows are orthonormal.
func orthogonalMatrix(rows: Int, cols: Int, generator: inout SeededGenerator) -> Tensor {
    let n = Swift.max(rows, cols), k = Swift.min(rows, cols)
    let a = Tensor.randomNormal([n, k], using: &generator).scalars.map(Double.init)
    // Columns of a, orthonormalised in place (modified Gram-Schmidt, in Float64).
    var q = a
    for j in 0..<k {
        for p in 0..<j {
            var dot = 0.0
            for i in 0..<n { dot += q[i * k + p] * q[i * k + j] }
            for i in 0..<n { q[i * k + j] -= dot * q[i * k + p] }
        }
        var norm = 0.0
        for i in 0..<n { norm += q[i * k + j] * q[i * k + j] }
        norm = norm.squareRoot()
        for i in 0..<n { q[i * k + j] /= Swift.max(norm, 1e-30) }
    }
    if rows >= cols { return Tensor(shape: [rows, cols], scalars: q.map(Float.init)) }
    // q is [cols, rows]: transpose.
    var t = [Float](repeating: 0, count: rows * cols)
    for i in 0..<n { for j in 0..<k { t[j * cols + i] = Float(q[i * k + j]) } }
    return Tensor(shape: [rows, cols], scalars: t)
}
