import Foundation
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

    /// `parallelChunks`' chunks shrink as they go (large first chunks for little overhead, small
    /// last ones so a thread that runs late leaves little to wait for), cover the range exactly,
    /// are never below the grain, and are not many more than sixteen per thread.
    func testChunkBoundsShrinkCoverAndKeepTheGrain() {
        for width in [2, 3, 8] {
            for (total, grain) in [(2, 1), (17, 3), (1000, 100), (12345, 7), (1 << 20, 1 << 12), (999_983, 1)] {
                let bounds = ThreadPool.guidedBounds(total: total, grain: grain, width: width)
                let sizes = zip(bounds.dropFirst(), bounds).map { $0 - $1 }
                let label = "width \(width), total \(total), grain \(grain): \(sizes)"
                XCTAssertEqual(bounds.first, 0, label)
                XCTAssertEqual(bounds.last, total, label)
                XCTAssertTrue(sizes.allSatisfy { $0 >= grain }, label)
                XCTAssertTrue(zip(sizes.dropFirst(), sizes).dropLast().allSatisfy { $0 <= $1 }, label)
                XCTAssertLessThanOrEqual(sizes.count, 16 * width + 2 * width * 4, label)
                if total >= 64 * width * grain { XCTAssertGreaterThanOrEqual(sizes.count, 2 * width, label) }
            }
        }
    }

    /// A lane held up inside one index holds up only that index: the other lanes run every other
    /// index meanwhile, the caller included.
    func testALaneHeldUpHoldsUpOnlyItsOwnIndex() {
        let pool = ThreadPool.shared
        guard pool.effectiveWidth > 1 else {
            // One thread: the caller runs everything, in order.
            var order: [Int] = []
            pool.parallelFor(5) { i, lane in order.append(i * 10 + lane) }
            XCTAssertEqual(order, [0, 10, 20, 30, 40])
            return
        }
        // Each index takes about 50 us, so the workers join; the first index a worker takes stalls
        // it for 100 ms, far longer than all the others together take.
        let n = 200
        var stalls = 0
        for _ in 0..<5 where stalls == 0 {
            let stalled = Atomic<Int>(-1)  // the lane that took the stalling index
            let runs = Mutex<[Int: Int]>([:])  // lane -> indices it ran
            pool.parallelFor(n) { i, lane in
                if lane != 0, stalled.compareExchange(expected: -1, desired: lane, ordering: .relaxed).exchanged {
                    usleep(100_000)
                } else {
                    let until = DispatchTime.now().uptimeNanoseconds + 50_000
                    while DispatchTime.now().uptimeNanoseconds < until {}
                }
                runs.withLock { $0[lane, default: 0] += 1 }
            }
            let counts = runs.withLock { $0 }
            XCTAssertEqual(counts.values.reduce(0, +), n)
            let lane = stalled.load(ordering: .relaxed)
            guard lane > 0 else { continue }
            stalls += 1
            XCTAssertEqual(counts[lane], 1, "the held-up lane ran more than its own index: \(counts)")
            XCTAssertGreaterThan(counts[0] ?? 0, n / (2 * pool.effectiveWidth), "the caller did not take over: \(counts)")
        }
        XCTAssertGreaterThan(stalls, 0, "no worker joined any of five jobs of 10 ms")
    }

    /// `parallelFor` returns only once every call has returned, also a call that a worker is
    /// still in long after the caller ran out of indices (the caller waits for the indices that
    /// are done, not for the ones claimed).
    func testReturnsOnlyAfterTheLastCallReturns() {
        let pool = ThreadPool.shared
        for _ in 0..<20 {
            let finished = Atomic<Int>(0)
            let slowLane = Atomic<Int>(-1)
            pool.parallelFor(64) { i, lane in
                if lane != 0, slowLane.compareExchange(expected: -1, desired: lane, ordering: .relaxed).exchanged {
                    usleep(5_000)
                } else {
                    let until = DispatchTime.now().uptimeNanoseconds + 20_000
                    while DispatchTime.now().uptimeNanoseconds < until {}
                }
                finished.wrappingAdd(1, ordering: .relaxed)
            }
            XCTAssertEqual(finished.load(ordering: .relaxed), 64, "parallelFor returned before its calls did")
        }
    }

    /// A pool wider than a `withWidthLimit` hands out only lanes below the limit (lanes index
    /// per-thread scratch space sized by `effectiveWidth`), and never one lane to two calls at once.
    func testLanesStayBelowTheWidthLimit() {
        let pool = ThreadPool.wide
        for limit in [2, 3] {
            ThreadPool.withWidthLimit(limit) {
                XCTAssertEqual(pool.effectiveWidth, limit)
                for _ in 0..<50 {
                    let lanes = Mutex<Set<Int>>([])
                    let busy = Mutex<Set<Int>>([])
                    let collisions = Atomic<Int>(0)
                    pool.parallelFor(40) { _, lane in
                        if !busy.withLock({ $0.insert(lane).inserted }) { collisions.wrappingAdd(1, ordering: .relaxed) }
                        let until = DispatchTime.now().uptimeNanoseconds + 10_000
                        while DispatchTime.now().uptimeNanoseconds < until {}
                        lanes.withLock { _ = $0.insert(lane) }
                        busy.withLock { _ = $0.remove(lane) }
                    }
                    let seen = lanes.withLock { $0 }
                    XCTAssertTrue(seen.allSatisfy { (0..<limit).contains($0) }, "limit \(limit): lanes \(seen.sorted())")
                    XCTAssertEqual(collisions.load(ordering: .relaxed), 0, "limit \(limit): two calls shared a lane")
                }
            }
        }
    }

    /// Short jobs in quick succession (a training step's kernels): every index of every job runs
    /// exactly once, workers that come late to a job finding nothing left to do.
    func testManyShortJobsEachRunEveryIndexOnce() {
        let pool = ThreadPool.wide
        var hits = [Int](repeating: 0, count: 5 * 1000)
        hits.withUnsafeMutableBufferPointer { h in
            let base = h.baseAddress!
            for job in 0..<1000 {
                pool.parallelFor(5) { i, _ in base[job * 5 + i] += 1 }
            }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: hits.count))
    }
}

extension ThreadPool {
    /// A pool of four threads, whatever this machine's width: its lanes can exceed a width limit.
    fileprivate static let wide = ThreadPool(width: 4)
}
