/// An n-dimensional array of `Float`, stored contiguously in row-major order.
///
/// `Tensor` has value semantics: assigning or passing a tensor never copies its elements;
/// the first write to a tensor whose storage is shared copies it (copy-on-write).
/// Reshaping never copies.
///
/// ```swift
/// var x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
/// x[1, 2] = 60          // element access
/// let y = x.reshaped([3, 2])  // shares storage with x until one of them is written
/// ```
///
/// Shapes are written `[N, H, W, C]` for images (channels last) and `[B, T, F]` for sequences.
public struct Tensor: Sendable {
    /// The extent of each axis. Its product is `count`.
    public private(set) var shape: [Int]

    @usableFromInline
    internal var storage: TensorStorage

    @usableFromInline
    internal init(shape: [Int], storage: TensorStorage) {
        self.shape = shape
        self.storage = storage
    }

    /// The number of elements: the product of `shape` (1 for a rank-0 tensor).
    @inlinable public var count: Int { storage.count }

    /// The number of axes.
    @inlinable public var rank: Int { shape.count }

    // MARK: - Making tensors

    /// A tensor with the given shape whose elements are `scalars`, in row-major order.
    /// - Precondition: `scalars.count` equals the product of `shape`.
    public init(shape: [Int], scalars: [Float]) {
        let n = Tensor.elementCount(of: shape)
        neuritePrecondition(scalars.count == n,
                     "Tensor(shape: \(shape)) needs \(n) scalars, got \(scalars.count)")
        let storage = TensorStorage(uninitializedCount: n)
        scalars.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: n) }
        self.init(shape: shape, storage: storage)
    }

    /// A rank-1 tensor holding `scalars`.
    public init(_ scalars: [Float]) {
        self.init(shape: [scalars.count], scalars: scalars)
    }

    /// A rank-0 tensor holding one value.
    public init(scalar: Float) {
        self.init(shape: [], scalars: [scalar])
    }

    /// A tensor with every element equal to `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, storage: TensorStorage(repeating: value, count: Tensor.elementCount(of: shape)))
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }

    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }

    /// A tensor whose elements are written by `initializer`, which must write every element.
    ///
    /// This is the zero-overhead way to make a tensor from a computation: no element is
    /// written twice.
    // Public though raw-pointer: it is how users write their own kernels over a tensor without a copy.
    @inlinable
    public init(shape: [Int], unsafeUninitialized initializer: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let storage = TensorStorage(uninitializedCount: Tensor.elementCount(of: shape))
        try initializer(UnsafeMutableBufferPointer(start: storage.base, count: storage.count))
        self.init(shape: shape, storage: storage)
    }

    /// The product of `shape`, checking that no extent is negative.
    @inlinable
    public static func elementCount(of shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            neuritePrecondition(d >= 0, "Tensor shape \(shape) has a negative extent")
            n *= d
        }
        return n
    }

    // MARK: - Reading and writing elements

    /// All elements in row-major order.
    public var scalars: [Float] {
        withUnsafeBufferPointer { Array($0) }
    }

    /// The single element of a tensor with one element (any rank).
    public var scalar: Float {
        neuritePrecondition(count == 1, "scalar needs a tensor with one element, shape is \(shape)")
        return storage.base[0]
    }

    /// Calls `body` with the elements in row-major order.
    // Public though raw-pointer: users' own kernels (and the C and HDF5 bridges) read a tensor without a copy.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) {
            try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
        }
    }

    /// Calls `body` with mutable access to the elements, copying the storage first if it is shared.
    // Public though raw-pointer: users' own kernels write a tensor in place through it.
    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try withExtendedLifetime(storage) {
            try body(UnsafeMutableBufferPointer(start: storage.base, count: storage.count))
        }
    }

    @inlinable
    internal mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
        }
    }

    /// The row-major offset of a multi-index, with bounds checks that name the shape.
    @inlinable
    internal func offset(of indices: [Int]) -> Int {
        neuritePrecondition(indices.count == shape.count,
                     "index \(indices) has \(indices.count) components, tensor shape \(shape) has \(shape.count) axes")
        var offset = 0
        for (axis, i) in indices.enumerated() {
            neuritePrecondition(i >= 0 && i < shape[axis], "index \(indices) is out of bounds for shape \(shape)")
            offset = offset * shape[axis] + i
        }
        return offset
    }

    /// The element at a multi-index (one index per axis).
    @inlinable
    public subscript(indices: Int...) -> Float {
        get { storage.base[offset(of: indices)] }
        set {
            let o = offset(of: indices)
            makeUnique()
            storage.base[o] = newValue
        }
    }

    // MARK: - Shape

    /// The same elements viewed with another shape; never copies.
    ///
    /// One extent may be `-1`, meaning "whatever makes the count match".
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        neuritePrecondition(inferred.count <= 1, "reshape from \(shape) to \(newShape): at most one extent may be -1")
        if let axis = inferred.first {
            let known = newShape.enumerated().reduce(1) { $1.offset == axis ? $0 : $0 * $1.element }
            neuritePrecondition(known > 0 && count % known == 0,
                         "cannot reshape \(shape) (\(count) elements) to \(newShape)")
            resolved[axis] = count / known
        }
        neuritePrecondition(Tensor.elementCount(of: resolved) == count,
                     "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        return Tensor(shape: resolved, storage: storage)
    }
}

extension Tensor: Equatable {
    /// Two tensors are equal when their shapes and all their elements are equal.
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.shape == rhs.shape else { return false }
        if lhs.storage === rhs.storage { return true }
        return lhs.withUnsafeBufferPointer { a in rhs.withUnsafeBufferPointer { b in a.elementsEqual(b) } }
    }
}
