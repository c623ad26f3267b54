/// The heap buffer behind a `Tensor`: a 64-byte-aligned run of `Float`s.
///
/// Tensors share a storage until one of them writes; `Tensor` checks uniqueness before every
/// mutation and copies first when needed (copy-on-write). The storage itself is therefore only
/// ever written through a uniquely referenced instance, which is what makes `@unchecked Sendable` sound.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    /// Alignment of every tensor buffer: one cache line, and one AVX-512 vector.
    static let alignment = 64

    @usableFromInline let count: Int
    @usableFromInline let base: UnsafeMutablePointer<Float>

    /// Allocates `count` uninitialised floats (a `Float` needs no initialisation to be read
    /// safely, but callers must write every element before exposing it).
    @usableFromInline
    init(uninitializedCount count: Int) {
        precondition(count >= 0, "Tensor element count must be non-negative, got \(count)")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride,
            alignment: TensorStorage.alignment)
        self.base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    @usableFromInline
    convenience init(repeating value: Float, count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: value, count: count)
    }

    @usableFromInline
    func copy() -> TensorStorage {
        let other = TensorStorage(uninitializedCount: count)
        other.base.update(from: base, count: count)
        return other
    }

    deinit {
        UnsafeMutableRawPointer(base).deallocate()
    }
}
