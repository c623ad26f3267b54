import TensorCore
import _NeuriteTestSupport
import XCTest

/// The buffer cache keeps large freed buffers for the next request of their size class, and
/// `releaseIdle()` gives the idle ones back (issue 14: `Sequential` calls it when training turns
/// to inference and back). Whether a kernel gets fresh memory or a recycled buffer full of an
/// earlier result must not change what it computes.
final class BufferCacheTests: XCTestCase {
    func testReleasedBuffersAreKeptAndReleaseIdleGivesThemBack() throws {
        guard BufferCache.limitBytes >= 4 << 20 else {
            throw unavailable("the buffer cache is off or small here (NEURITE_BUFFER_CACHE_MB=\(BufferCache.limitBytes >> 20))")
        }
        BufferCache.releaseIdle()
        XCTAssertEqual(BufferCache.statistics.idleBytes, 0)
        let floats = 300_000  // 1.2 MB, above the cache's 256 KiB minimum
        do {
            let t = Tensor(shape: [floats], scalars: [Float](repeating: 1, count: floats))
            XCTAssertEqual(t.count, floats)
        }
        let kept = BufferCache.statistics.idleBytes
        XCTAssertGreaterThanOrEqual(kept, floats * 4)
        let hits = BufferCache.statistics.hits
        do {
            let again = Tensor.zeros([floats])
            XCTAssertEqual(again.scalars.max(), 0)  // a recycled buffer is overwritten
        }
        XCTAssertEqual(BufferCache.statistics.hits, hits + 1, "the same size class is served from the idle buffer")
        BufferCache.releaseIdle()
        XCTAssertEqual(BufferCache.statistics.idleBytes, 0)
        // Small buffers are never kept.
        do { _ = Tensor.zeros([1000]) }
        XCTAssertEqual(BufferCache.statistics.idleBytes, 0)
    }

    #if os(Linux)
    /// `releaseIdle()` gives idle buffers back to the system, not to `malloc`: resident memory
    /// falls by their size, and still does after a large buffer was freed before (which raised
    /// glibc's mmap threshold, so that `malloc` kept the next buffers of that size in its heap and
    /// the BatchNorm CNN's second epoch held 19 MB more than its first).
    func testReleaseIdleReturnsTheMemoryToTheSystem() throws {
        guard BufferCache.limitBytes >= 64 << 20 else {
            throw unavailable("the buffer cache is off or small here (NEURITE_BUFFER_CACHE_MB=\(BufferCache.limitBytes >> 20))")
        }
        func residentBytes() throws -> Int {
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                  let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
                throw unavailable("no VmRSS line in /proc/self/status")
            }
            return kib << 10
        }
        BufferCache.releaseIdle()
        // 32 MiB, then 16 MiB twice, then 17 MiB (whose size class reserves 18 MiB).
        for floats in [8 << 20, 4 << 20, 4 << 20, 17 << 18] {
            let before = try residentBytes()
            do {
                let t = Tensor.ones([floats])  // every page written
                XCTAssertEqual(t.count, floats)
            }
            XCTAssertGreaterThanOrEqual(BufferCache.statistics.idleBytes, floats * 4, "the buffer is kept idle")
            let held = try residentBytes()
            BufferCache.releaseIdle()
            let after = try residentBytes()
            XCTAssertGreaterThan(held - before, floats * 4 * 3 / 4, "\(floats * 4 >> 20) MiB: the idle buffer was resident")
            XCTAssertLessThan(held - before, floats * 4 + (1 << 20), "\(floats * 4 >> 20) MiB: more resident than was written")
            XCTAssertLessThan(after - before, floats * 4 / 4, "\(floats * 4 >> 20) MiB: releaseIdle kept \((after - before) >> 20) MiB resident")
        }
    }
    #endif

    /// Requests of nearly the same size share a size class (the slices of an inference pass that
    /// differ by a sample), and sizes a quarter apart (an epoch's smaller last batch) do not.
    func testNearlyEqualSizesShareABuffer() throws {
        guard BufferCache.limitBytes >= 64 << 20 else {
            throw unavailable("the buffer cache is off or small here (NEURITE_BUFFER_CACHE_MB=\(BufferCache.limitBytes >> 20))")
        }
        let perSample = 26 * 26 * 32  // the BatchNorm CNN's first activation, 86.5 KB a sample
        BufferCache.releaseIdle()
        do { _ = Tensor.zeros([84, perSample]) }
        var hits = BufferCache.statistics.hits
        do { XCTAssertEqual(Tensor.ones([83, perSample]).scalars.min(), 1) }
        XCTAssertEqual(BufferCache.statistics.hits, hits + 1, "83 samples take the buffer of 84")
        hits = BufferCache.statistics.hits
        do { _ = Tensor.zeros([63, perSample]) }
        XCTAssertEqual(BufferCache.statistics.hits, hits, "63 samples do not take the buffer of 84")
        for bytes in [256 << 10, 300 << 10, 7 << 20, 7_300_000, 11_075_584, 1 << 30] {
            let size = BufferCache.roundedSize(bytes)
            XCTAssertGreaterThanOrEqual(size, bytes)
            XCTAssertLessThanOrEqual(size, bytes + Swift.max(64 << 10, bytes / 8), "\(bytes) bytes")
            XCTAssertEqual(size % (64 << 10), 0, "\(bytes) bytes: whole 64 KiB granules")
        }
        BufferCache.releaseIdle()
    }

    /// The same products and convolutions from fresh memory and from recycled buffers that hold
    /// other results: the same bits.
    func testKernelsGiveTheSameBitsFromFreshAndRecycledBuffers() {
        let a = Tensor(shape: [300, 257], scalars: randomScalars(300 * 257, seed: 3))
        let b = Tensor(shape: [257, 300], scalars: randomScalars(257 * 300, seed: 4))
        let images = Tensor(shape: [64, 20, 20, 3], scalars: randomScalars(64 * 20 * 20 * 3, seed: 5))
        let kernel = Tensor(shape: [3, 3, 3, 16], scalars: randomScalars(3 * 3 * 3 * 16, seed: 6))
        func compute() -> (Tensor, Tensor) { (a.matmul(b), Tensor.conv2D(images, kernel: kernel, padding: .same)) }

        BufferCache.releaseIdle()
        let (fresh, freshConvolution) = compute()
        // Fill the cache with buffers of these size classes holding other values.
        for _ in 0..<3 { _ = compute().0 * 7 + 1 }
        XCTAssertGreaterThan(BufferCache.statistics.idleBytes, 0)
        let (recycled, recycledConvolution) = compute()
        XCTAssertEqual(recycled.scalars, fresh.scalars)
        XCTAssertEqual(recycledConvolution.scalars, freshConvolution.scalars)
        BufferCache.releaseIdle()
        let (again, againConvolution) = compute()
        XCTAssertEqual(again.scalars, fresh.scalars)
        XCTAssertEqual(againConvolution.scalars, freshConvolution.scalars)
    }
}
