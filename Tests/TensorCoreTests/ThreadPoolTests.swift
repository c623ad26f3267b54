import Synchronization
import TensorCore
import XCTest

final class ThreadPoolTests: XCTestCase {
    func testEveryIndexRunsExactlyOnceWithDistinctConcurrentLanes() {
        let pool = ThreadPool.shared
        let n = 10_000
        var hits = [Int](repeating: 0, count: n)
        // Which lanes are inside a call right now: a lane entering while it is still marked busy
        // would mean two concurrent calls shared a lane (and so a lane's scratch buffer).
        let busy = Mutex<Set<Int>>([])
        let lanesSeen = Mutex<Set<Int>>([])
        let collisions = Atomic<Int>(0)
        hits.withUnsafeMutableBufferPointer { h in
            let base = h.baseAddress!
            pool.parallelFor(n) { i, lane in
                let fresh = busy.withLock { $0.insert(lane).inserted }
                if !fresh { collisions.wrappingAdd(1, ordering: .relaxed) }
                base[i] += 1
                lanesSeen.withLock { _ = $0.insert(lane) }
                if fresh { busy.withLock { _ = $0.remove(lane) } }
            }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: n))
        XCTAssertEqual(collisions.load(ordering: .relaxed), 0, "two concurrent calls ran with the same lane")
        let seen = lanesSeen.withLock { $0 }
        XCTAssertFalse(seen.isEmpty)
        XCTAssertTrue(seen.allSatisfy { (0..<min(pool.effectiveWidth, n)).contains($0) },
                      "lanes \(seen.sorted()) outside 0..<\(pool.effectiveWidth)")
    }

    func testNestedParallelForRunsAndDoesNotDeadlock() {
        let total = Atomic<Int>(0)
        ThreadPool.shared.parallelFor(8) { _, _ in
            ThreadPool.shared.parallelFor(8) { _, _ in total.wrappingAdd(1, ordering: .relaxed) }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 64)
    }

    func testWidthLimitOfOneRunsOnTheCaller() {
        ThreadPool.withWidthLimit(1) {
            XCTAssertEqual(ThreadPool.shared.effectiveWidth, 1)
            ThreadPool.shared.parallelFor(100) { _, lane in XCTAssertEqual(lane, 0) }
        }
    }

    func testChunksCoverTheRangeWithoutOverlap() {
        for total in [0, 1, 5, 1000, 12345] {
            var seen = [UInt8](repeating: 0, count: total)
            seen.withUnsafeMutableBufferPointer { s in
                let base = s.baseAddress!
                ThreadPool.shared.parallelChunks(total, grain: 100) { range in
                    for i in range { base[i] += 1 }
                }
            }
            XCTAssertEqual(seen, [UInt8](repeating: 1, count: total), "total \(total)")
        }
    }
}
