/// Temporary aligned float space for a kernel (packed GEMM panels, im2col columns), taken
/// from `BufferCache` and given back when released, so a kernel called thousands of times
/// per epoch does not pay for `mmap` and first-touch page faults on every call.
final class ScratchBuffer: @unchecked Sendable {
    let count: Int
    let base: UnsafeMutablePointer<Float>

    /// A buffer of at least `count` floats, uninitialised.
    init(count: Int) {
        self.count = count
        base = BufferCache.allocate(bytes: count * MemoryLayout<Float>.stride)
            .bindMemory(to: Float.self, capacity: Swift.max(count, 1))
    }

    deinit {
        BufferCache.release(UnsafeMutableRawPointer(base), bytes: count * MemoryLayout<Float>.stride)
    }
}
