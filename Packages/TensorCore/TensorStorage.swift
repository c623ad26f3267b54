/// The heap buffer behind a `Tensor`: a 64-byte-aligned run of `Float`s (one cache line,
/// one AVX-512 vector), recycled through `BufferCache` when large.
///
/// Tensors share a storage until one of them writes; `Tensor` checks uniqueness before every
/// mutation and copies first when needed (copy-on-write). The storage itself is therefore only
/// ever written through a uniquely referenced instance, which is what makes `@unchecked Sendable` sound.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let count: Int
    @usableFromInline let base: UnsafeMutablePointer<Float>

    /// Allocates `count` uninitialised floats (a `Float` needs no initialisation to be read
    /// safely, but callers must write every element before exposing it).
    @usableFromInline
    init(uninitializedCount count: Int) {
        neuritePrecondition(count >= 0, "Tensor element count must be non-negative, got \(count)")
        self.count = count
        let raw = BufferCache.allocate(bytes: count * MemoryLayout<Float>.stride)
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
        BufferCache.release(UnsafeMutableRawPointer(base), bytes: count * MemoryLayout<Float>.stride)
    }
}
