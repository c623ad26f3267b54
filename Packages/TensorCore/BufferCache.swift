import Foundation
import Synchronization

/// Recycles large aligned float buffers between tensors and kernels' scratch space.
///
/// A training step allocates the same large activations, gradients and packing buffers again
/// and again. Fresh large allocations come from `mmap`, and every first touch of a 4 KiB page
/// faults: for a 64 MiB result that costs as much as computing it. Buffers of at least
/// `minimumBytes` are therefore kept when freed, keyed by their size rounded up to 64 KiB, and
/// handed out again on the next request of that size class. At most `limitBytes` are kept idle
/// (`NEURITE_BUFFER_CACHE_MB`, default 256; 0 turns the cache off); the oldest go first.
/// Small buffers go straight to `malloc`, whose own free lists already serve them well.
enum BufferCache {
    static let minimumBytes = 256 << 10
    static let granule = 64 << 10
    static let alignment = 64

    static let limitBytes: Int = {
        if let text = ProcessInfo.processInfo.environment["NEURITE_BUFFER_CACHE_MB"], let mb = Int(text), mb >= 0 {
            return mb << 20
        }
        return 256 << 20
    }()

    /// Idle buffers by size class, as addresses (plain integers, so the state is `Sendable`).
    private struct State {
        var free: [Int: [UInt]] = [:]
        var order: [(bytes: Int, address: UInt)] = []  // oldest first
        var idleBytes = 0
    }

    private static let state = Mutex(State())

    /// The number of bytes actually reserved for a request of `bytes`.
    static func roundedSize(_ bytes: Int) -> Int {
        bytes < minimumBytes ? Swift.max(bytes, 1) : (bytes + granule - 1) / granule * granule
    }

    /// A buffer of `roundedSize(bytes)` bytes, 64-byte aligned, contents undefined.
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let size = roundedSize(bytes)
        if size >= minimumBytes && limitBytes > 0 {
            let reused: UInt? = state.withLock { s in
                guard let address = s.free[size]?.popLast() else { return nil }
                s.idleBytes -= size
                if let i = s.order.firstIndex(where: { $0.address == address }) { s.order.remove(at: i) }
                return address
            }
            if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused) { return pointer }
        }
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: alignment)
    }

    /// Returns a buffer obtained from `allocate(bytes:)` with the same `bytes`.
    static func release(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        let size = roundedSize(bytes)
        guard size >= minimumBytes && size <= limitBytes else {
            pointer.deallocate()
            return
        }
        let address = UInt(bitPattern: pointer)
        let evicted: [UInt] = state.withLock { s in
            s.free[size, default: []].append(address)
            s.order.append((size, address))
            s.idleBytes += size
            var out: [UInt] = []
            while s.idleBytes > limitBytes, !s.order.isEmpty {
                let oldest = s.order.removeFirst()
                if let i = s.free[oldest.bytes]?.firstIndex(of: oldest.address) {
                    s.free[oldest.bytes]!.remove(at: i)
                }
                s.idleBytes -= oldest.bytes
                out.append(oldest.address)
            }
            return out
        }
        for address in evicted { UnsafeMutableRawPointer(bitPattern: address)?.deallocate() }
    }
}
