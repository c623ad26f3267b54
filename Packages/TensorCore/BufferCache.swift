import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Recycles large aligned float buffers between tensors and kernels' scratch space.
///
/// A training step allocates the same large activations, gradients and packing buffers again
/// and again. Fresh large allocations come from `mmap`, and every first touch of a 4 KiB page
/// faults: for a 64 MiB result that costs as much as computing it. Buffers of at least
/// `minimumBytes` are therefore kept when freed, keyed by their size class, and handed out again
/// on the next request of that class. The classes are an eighth of a power of two wide (at least
/// 64 KiB: 256 to 320 KiB, ..., 7 to 7.5 MiB, 7.5 to 8 MiB, 8 to 9 MiB, ...), so that requests of
/// nearly the same size share buffers: `predict` and `evaluate` run a large batch in slices that
/// differ by one sample (1,000 images in 84s and 83s), whose activations would otherwise keep
/// two sets of buffers. The wider classes cost no resident memory: a mapped buffer's pages
/// become resident only where they are written, so a buffer holds about the largest request it
/// served. At most `limitBytes` are kept idle
/// (`NEURITE_BUFFER_CACHE_MB`, default 256; 0 turns the cache off); the oldest go first.
/// Small buffers go straight to `malloc`, whose own free lists already serve them well.
///
/// Large buffers are mapped from the system directly (`mmap`, page-aligned) and unmapped when
/// they leave the cache, not taken from `malloc`: glibc raises its own mmap threshold to the
/// size of every mapped block it frees (up to 32 MiB), after which blocks of that size come
/// from its heaps, and freeing them there rarely gives memory back. That made `releaseIdle()`
/// nearly useless after its first call: the BatchNorm CNN's resident memory rose by 19 MB in
/// its second epoch (304 to 323 MB) with 31 of the 48 MB it released still resident.
///
/// The cache pays off while a program repeats the same sizes (the steps of an epoch); when it
/// turns to other sizes (training to evaluation, a batch of another size), the idle buffers of
/// the old ones would only add to the resident memory of the new ones. Callers that know of
/// such a turn call `releaseIdle()` (`Sequential` does before each inference pass and at each
/// epoch's start), which costs one pass of page faults on the sizes that come back. That cost
/// is small: the BatchNorm CNN (2 epochs of Fashion-MNIST, 2 threads) takes 127,000 minor page
/// faults with these releases and 127,000 without any (most are the data set's own pages), in
/// the same CPU time within noise, while keeping everything raised its peak resident memory
/// from 349 to 434 MB. Keeping the buffers of the phase that ended for the next one (and taking
/// a kept buffer up to 1.5x the size for an epoch's smaller last batch) saved 4% of the faults
/// and raised the peak by 9 MB, so the cache gives everything back.
package enum BufferCache {
    static let minimumBytes = 256 << 10
    static let granule = 64 << 10
    static let alignment = 64

    package static let limitBytes: Int = {
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
        var stats = Statistics()
    }

    /// Counters of the cache's traffic (buffers of at least `minimumBytes`), for benchmarks and tests.
    package struct Statistics: Sendable {
        /// Bytes handed out and not yet released.
        package var liveBytes = 0
        /// Bytes kept idle now.
        package var idleBytes = 0
        /// The most of `liveBytes + idleBytes` at any time.
        package var peakHeldBytes = 0
        /// Requests served from idle buffers, and those that needed fresh memory.
        package var hits = 0, misses = 0
        /// Fresh bytes allocated, and idle bytes given back to the system.
        package var freshBytes = 0, evictedBytes = 0
    }

    /// The counters so far.
    package static var statistics: Statistics {
        state.withLock { s in
            var out = s.stats
            out.idleBytes = s.idleBytes
            return out
        }
    }

    private static let state = Mutex(State())

    /// Size classes per doubling of the size (see the type's comment).
    static let classesPerDoubling = 8

    /// The number of bytes actually reserved for a request of `bytes`: its size class's upper end.
    package static func roundedSize(_ bytes: Int) -> Int {
        guard bytes >= minimumBytes else { return Swift.max(bytes, 1) }
        let powerOfTwo = 1 << (Int.bitWidth - 1 - bytes.leadingZeroBitCount)
        let step = Swift.max(granule, powerOfTwo / classesPerDoubling)
        return (bytes + step - 1) / step * step
    }

    /// A buffer of `roundedSize(bytes)` bytes, 64-byte aligned, contents undefined.
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let size = roundedSize(bytes)
        if size >= minimumBytes && limitBytes > 0 {
            let reused: UInt? = state.withLock { s in
                s.stats.liveBytes += size
                guard let address = s.free[size]?.popLast() else {
                    s.stats.misses += 1
                    s.stats.freshBytes += size
                    s.stats.peakHeldBytes = Swift.max(s.stats.peakHeldBytes, s.stats.liveBytes + s.idleBytes)
                    return nil
                }
                s.stats.hits += 1
                s.idleBytes -= size
                if let i = s.order.firstIndex(where: { $0.address == address }) { s.order.remove(at: i) }
                return address
            }
            if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused) { return pointer }
        }
        return size >= minimumBytes ? map(size) : UnsafeMutableRawPointer.allocate(byteCount: size, alignment: alignment)
    }

    /// `size` bytes (a multiple of `granule`) of fresh zeroed pages from the system.
    private static func map(_ size: Int) -> UnsafeMutableRawPointer {
        let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let pointer, pointer != MAP_FAILED else {
            neuritePreconditionFailure("out of memory: the system refused \(size) bytes (errno \(errno))")
        }
        return pointer
    }

    /// Gives a buffer of `size` bytes from `allocate` back: unmapped when large, freed otherwise.
    private static func giveBack(_ pointer: UnsafeMutableRawPointer, size: Int) {
        if size >= minimumBytes {
            munmap(pointer, size)
        } else {
            pointer.deallocate()
        }
    }

    /// Gives every idle buffer back to the system; buffers in use are untouched and return to
    /// the cache as usual when released.
    package static func releaseIdle() {
        let idle: [(bytes: Int, address: UInt)] = state.withLock { s in
            let addresses = s.order
            s.stats.evictedBytes += s.idleBytes
            s.free = [:]
            s.order = []
            s.idleBytes = 0
            return addresses
        }
        for buffer in idle {
            if let pointer = UnsafeMutableRawPointer(bitPattern: buffer.address) { giveBack(pointer, size: buffer.bytes) }
        }
    }

    /// Returns a buffer obtained from `allocate(bytes:)` with the same `bytes`.
    static func release(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        let size = roundedSize(bytes)
        guard size >= minimumBytes && size <= limitBytes else {
            if size >= minimumBytes && limitBytes > 0 { state.withLock { $0.stats.liveBytes -= size } }
            giveBack(pointer, size: size)
            return
        }
        let address = UInt(bitPattern: pointer)
        let evicted: [(bytes: Int, address: UInt)] = state.withLock { s in
            s.stats.liveBytes -= size
            s.free[size, default: []].append(address)
            s.order.append((size, address))
            s.idleBytes += size
            var out: [(bytes: Int, address: UInt)] = []
            while s.idleBytes > limitBytes, !s.order.isEmpty {
                let oldest = s.order.removeFirst()
                if let i = s.free[oldest.bytes]?.firstIndex(of: oldest.address) {
                    s.free[oldest.bytes]!.remove(at: i)
                }
                s.idleBytes -= oldest.bytes
                s.stats.evictedBytes += oldest.bytes
                out.append(oldest)
            }
            return out
        }
        for buffer in evicted {
            if let pointer = UnsafeMutableRawPointer(bitPattern: buffer.address) { giveBack(pointer, size: buffer.bytes) }
        }
    }
}
