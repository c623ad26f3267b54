import Synchronization
import TensorCore
import XCTest

final class ThreadPoolTests: XCTestCase {
    func testEveryIndexRunsExactlyOnceWithDistinctConcurrentLanes() {
        let pool = ThreadPool.shared
        let n = 10_000
        var hits = [Int](repeating: 0, count: n)
        let lanesSeen = Mutex<Set<Int>>([])
        hits.withUnsafeMutableBufferPointer { h in
            let base = h.baseAddress!
            pool.parallelFor(n) { i, lane in
                base[i] += 1
                XCTAssertTrue(lane >= 0 && lane < pool.effectiveWidth)
                if i % 97 == 0 { lanesSeen.withLock { _ = $0.insert(lane) } }
            }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: n))
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
