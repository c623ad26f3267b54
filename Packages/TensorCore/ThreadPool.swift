import Foundation
import Synchronization

/// The one pool of worker threads that every parallel kernel in Neurite uses.
///
/// Its width comes from the `NEURITE_THREADS` environment variable, or else from the number of
/// active processors. The calling thread always takes part, so a pool of width `w` starts
/// `w - 1` threads. Work is handed out index by index from an atomic counter, so uneven items
/// balance themselves.
///
/// Kernels decide what is worth spreading: small work stays on the calling thread, because
/// waking a sleeping thread costs on the order of ten microseconds. A `parallelFor` issued
/// while the pool is busy (from inside another `parallelFor`, or from a second thread) runs
/// serially on its caller instead of waiting, so nesting can never deadlock.
public final class ThreadPool: @unchecked Sendable {
    /// The pool all kernels use.
    public static let shared = ThreadPool(width: ThreadPool.configuredWidth())

    /// The number of threads, the caller's included, that a `parallelFor` may use.
    public let width: Int

    @TaskLocal private static var widthLimit: Int?

    private final class Job: @unchecked Sendable {
        let count: Int
        /// The lanes this job may use, the caller's included.
        let lanes: Int
        /// Read only by a thread that has claimed an index below `count`, and cleared by the
        /// submitter once all `count` indices are done: so no call, and no copy of the
        /// (non-escaping) body, outlives `parallelFor`, while a worker that joins late, or is
        /// descheduled between joining and claiming, holds up nobody (it claims nothing).
        var body: ((Int, Int) -> Void)?
        let next = Atomic<Int>(0)
        /// Indices whose call has returned.
        let done = Atomic<Int>(0)
        var slots: Int  // workers that may still join; guarded by the pool's condition lock
        /// Set by the caller, under the pool's `finished` lock, before it sleeps until `done` is `count`.
        let callerSleeps = Atomic<Bool>(false)

        init(count: Int, lanes: Int, body: @escaping (Int, Int) -> Void) {
            self.count = count
            self.lanes = lanes
            self.slots = lanes - 1
            self.body = body
        }

        /// Claims and runs indices until none is left; whether this thread finished the job's last index.
        func run(lane: Int) -> Bool {
            var finishedLast = false
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= count { return finishedLast }
                call(i, lane: lane)
                // Sequentially consistent, paired with the caller's `callerSleeps` (see `workerLoop`);
                // also releases the call's writes to the caller, which acquires `done`.
                finishedLast = done.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue == count
            }
        }

        /// One call of the body, in a function of its own so that the copy of the body it makes
        /// is released before `done` counts the index.
        @inline(never)
        private func call(_ i: Int, lane: Int) {
            body.unsafelyUnwrapped(i, lane)
        }
    }

    private let condition = NSCondition()
    private var job: Job?
    /// Bumped (under `condition`) for every job; workers spin on it briefly before sleeping.
    private let generation = Atomic<Int>(0)
    /// How long an idle worker keeps watching for the next job before it sleeps. Kernels in a
    /// training step follow each other within microseconds; waking a sleeping thread costs
    /// tens of them. (50 us saved CPU time but lost 10-20% of the 2-thread wall time of the
    /// course CNN and the shallow MLP to wake-ups.)
    private static let spinSeconds = 2e-4
    /// How long the caller polls for the workers still on their last indices before it sleeps
    /// until the last of them wakes it: long enough that on a quiet machine it never sleeps,
    /// short against a time slice. Sleeping, not `sched_yield`: a thread that yields to
    /// another program's busy thread waits out that thread's whole time slice (milliseconds),
    /// while one woken from sleep runs at once.
    private static let callerSpinSeconds = 2e-4
    /// Where the caller sleeps until a job's workers are done.
    private let finished = NSCondition()
    private let busy = Atomic<Bool>(false)

    /// Makes a pool that runs work on `width` threads (the caller's included). Its threads live as
    /// long as the process, which is why kernels share one pool (tests make another of a chosen width).
    package init(width: Int) {
        self.width = max(1, width)
        for lane in 1..<self.width {
            let thread = Thread { [unowned self] in self.workerLoop() }
            thread.name = "neurite-worker-\(lane)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// `NEURITE_THREADS` when it is a positive integer, else the number of active processors.
    public static func configuredWidth() -> Int {
        if let text = ProcessInfo.processInfo.environment["NEURITE_THREADS"], let n = Int(text), n > 0 {
            return n
        }
        return ProcessInfo.processInfo.activeProcessorCount
    }

    /// The width a `parallelFor` started now on this task would use (`width`, or less inside `withWidthLimit`).
    public var effectiveWidth: Int { min(width, ThreadPool.widthLimit ?? width) }

    /// Runs `body` with parallel kernels limited to `limit` threads (1 makes them serial).
    /// Benchmarks use it to measure one thread and all threads in one process.
    public static func withWidthLimit<R>(_ limit: Int, _ body: () throws -> R) rethrows -> R {
        try $widthLimit.withValue(max(1, limit), operation: body)
    }

    /// Calls `body(index, lane)` for every index in `0..<count`, spread over up to
    /// `effectiveWidth` threads, and returns when all calls have returned.
    ///
    /// `lane` is in `0..<effectiveWidth` and is unique among calls running at the same time,
    /// so it can index per-thread scratch space. Lane 0 is the caller.
    public func parallelFor(_ count: Int, _ body: (_ index: Int, _ lane: Int) -> Void) {
        let lanes = min(effectiveWidth, count)
        guard lanes > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<count { body(i, 0) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escapable in
            let job = Job(count: count, lanes: lanes, body: escapable)
            condition.lock()
            self.job = job
            generation.wrappingAdd(1, ordering: .releasing)
            condition.broadcast()
            condition.unlock()

            _ = job.run(lane: 0)

            // Every index is claimed now. The workers still running hold the last ones; they finish
            // soon, unless one was preempted in the middle of its index: then sleep until it is done.
            // A worker that joined but claimed nothing is not waited for.
            if !ThreadPool.poll(for: ThreadPool.callerSpinSeconds, until: { job.done.load(ordering: .acquiring) == count }) {
                finished.lock()
                job.callerSleeps.store(true, ordering: .sequentiallyConsistent)
                while job.done.load(ordering: .sequentiallyConsistent) < count { finished.wait() }
                finished.unlock()
            }
            job.body = nil
        }
    }

    /// Splits `0..<total` into contiguous chunks of at least `grain` elements and runs them in
    /// parallel; stays on the calling thread when `total < 2 * grain`.
    ///
    /// With more than one thread the chunks shrink as they go (see `guidedBounds`: each a
    /// `2 * width`-th of what is left, down to a sixteenth of a thread's share), about six per
    /// thread, claimed as threads come free: the large first chunks keep the overhead low, and
    /// a thread that runs slowly or is descheduled for a while on a shared machine holds back
    /// only a small last piece, where one chunk per thread would make everyone wait for it. The
    /// boundaries depend only on `total`, `grain` and the width, never on timing.
    public func parallelChunks(_ total: Int, grain: Int, _ body: (Range<Int>) -> Void) {
        let width = effectiveWidth
        if width <= 1 || total < 2 * max(1, grain) {
            if total > 0 { body(0..<total) }
            return
        }
        let bounds = ThreadPool.guidedBounds(total: total, grain: max(1, grain), width: width)
        parallelFor(bounds.count - 1) { c, _ in body(bounds[c]..<bounds[c + 1]) }
    }

    /// Chunk boundaries of `0..<total` that shrink as they go: each chunk is a `2 * width`-th of what
    /// is left, down to a sixteenth-per-thread share (and never below `grain`), so the large first
    /// chunks cost little in overhead and the small last ones leave little to wait for.
    package static func guidedBounds(total: Int, grain: Int, width: Int) -> [Int] {
        let smallest = max(grain, (total + 16 * width - 1) / (16 * width))
        var bounds = [0]
        var start = 0
        while start < total {
            let left = total - start
            var size = max(smallest, left / (2 * width))
            if left - size < smallest { size = left }
            start += size
            bounds.append(start)
        }
        return bounds
    }

    private func workerLoop() {
        var seen = 0
        while true {
            _ = ThreadPool.poll(for: ThreadPool.spinSeconds, until: { generation.load(ordering: .acquiring) != seen })
            condition.lock()
            while generation.load(ordering: .acquiring) == seen { condition.wait() }
            seen = generation.load(ordering: .acquiring)
            guard let job = self.job, job.slots > 0 else {
                condition.unlock()
                continue
            }
            // Lanes 1..<job.lanes, one per joining worker: unique within the job and below its width
            // (a pool wider than a `withWidthLimit` never hands out a lane past the limit).
            let lane = job.lanes - job.slots
            job.slots -= 1
            condition.unlock()
            // The thread that finishes the last index wakes a sleeping caller. Both sides are
            // sequentially consistent: either this load sees the caller's flag, or the caller's
            // check sees `done` at `count`.
            if job.run(lane: lane), job.callerSleeps.load(ordering: .sequentiallyConsistent) {
                finished.lock()
                finished.broadcast()
                finished.unlock()
            }
        }
    }

    /// Polls `done` for up to `seconds`; whether it became true.
    ///
    /// Never `sched_yield`: on a loaded machine a thread that yields goes behind the other
    /// programs' threads and comes back only after their time slices, so the caller has done the
    /// job alone by then, while a thread woken from sleep runs at once. (An idle worker that
    /// yielded while it watched for the next job, even only after 50 us, ran under 5% of the
    /// shallow MLP's GEMM work beside other builds, against 40% without: two threads ran as one.)
    private static func poll(for seconds: Double, until done: () -> Bool) -> Bool {
        if done() { return true }
        let start = monotonicSeconds()
        var polls = 0
        while !done() {
            polls += 1
            if polls & 63 == 0 && monotonicSeconds() - start > seconds { return false }
        }
        return true
    }

    private static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
