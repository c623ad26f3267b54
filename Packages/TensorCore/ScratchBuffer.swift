import Synchronization

/// A cache of aligned float buffers for kernels' temporary space (packed GEMM panels,
/// im2col columns), so that a kernel called thousands of times per epoch does not pay for
/// `malloc`, `mmap` and first-touch page faults on every call.
///
/// Buffers go back to the cache when the `ScratchBuffer` is released; the cache keeps a few
/// of them and frees the rest.
final class ScratchBuffer: @unchecked Sendable {
    let capacity: Int
    let base: UnsafeMutablePointer<Float>

    private static let cache = Mutex<[(Int, UnsafeMutablePointer<Float>)]>([])
    private static let cacheLimit = 8

    /// A buffer of at least `count` floats, uninitialised.
    init(count: Int) {
        let found: UnsafeMutablePointer<Float>?, capacity: Int
        (found, capacity) = ScratchBuffer.cache.withLock { cache in
            if let i = cache.firstIndex(where: { $0.0 >= count && $0.0 <= 4 * max(count, 1024) }) {
                let entry = cache.remove(at: i)
                return (entry.1, entry.0)
            }
            return (nil, count)
        }
        self.capacity = capacity
        if let found {
            base = found
        } else {
            base = UnsafeMutableRawPointer.allocate(byteCount: max(1, capacity) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(1, capacity))
        }
    }

    deinit {
        let overflow: UnsafeMutablePointer<Float>? = ScratchBuffer.cache.withLock { cache in
            cache.append((capacity, base))
            if cache.count > ScratchBuffer.cacheLimit {
                // Drop the smallest: large buffers are the expensive ones to remake.
                let i = cache.indices.min(by: { cache[$0].0 < cache[$1].0 })!
                return cache.remove(at: i).1
            }
            return nil
        }
        if let overflow { UnsafeMutableRawPointer(overflow).deallocate() }
    }
}
