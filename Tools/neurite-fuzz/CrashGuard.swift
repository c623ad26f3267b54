import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps the input being decoded where a crash handler and a watchdog can reach it, so that a
/// crash (a signal: SIGSEGV, SIGBUS, SIGILL/SIGTRAP from a Swift trap, SIGABRT, SIGFPE) or a hang
/// still leaves the input on disk, named by target, seed and iteration.
///
/// The signal handler only uses async-signal-safe calls (open, write, close) on memory prepared
/// beforehand. Under AddressSanitizer, run with `ASAN_OPTIONS=abort_on_error=1` so that a report
/// ends in SIGABRT, which this handler sees.
enum CrashGuard {
    // Set up once, before the handlers are installed; then written only by the fuzzing thread
    // between inputs, and read by the handler or the watchdog while an input runs.
    nonisolated(unsafe) private static var buffer: UnsafeMutablePointer<UInt8>?
    nonisolated(unsafe) private static var capacity = 0
    nonisolated(unsafe) private static var length = 0
    nonisolated(unsafe) private static var directory: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) private static var targetNames: [UnsafeMutablePointer<CChar>] = []
    nonisolated(unsafe) private static var target = 0
    nonisolated(unsafe) private static var seed: UInt64 = 0
    nonisolated(unsafe) private static var iteration: UInt64 = 0
    nonisolated(unsafe) private static var pathBuffer: UnsafeMutablePointer<CChar>?
    /// The harness's own temporary file, removed when a crash or hang ends the process.
    nonisolated(unsafe) static var temporaryFile: UnsafeMutablePointer<CChar>?
    /// Kept here so that LeakSanitizer sees it as reachable (the kernel holds the only other reference).
    nonisolated(unsafe) private static var alternateStack: UnsafeMutableRawPointer?
    nonisolated(unsafe) private static var previous: [sigaction?] = Array(repeating: nil, count: 65)
    /// When the current input started (CLOCK_MONOTONIC nanoseconds), 0 between inputs.
    static let startedAt = Atomic<UInt64>(0)
    /// The process's CPU time (CLOCK_PROCESS_CPUTIME_ID nanoseconds) when the current input started.
    static let cpuStartedAt = Atomic<UInt64>(0)

    static let signals: [Int32] = [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE]
    /// Set by the watchdog before it interrupts a hung fuzzing thread, so that the crash handler
    /// (which then prints where that thread is stuck) does not save the input a second time.
    static let hangDetected = Atomic<Bool>(false)
    /// The fuzzing thread, which the watchdog interrupts with SIGABRT when an input hangs.
    nonisolated(unsafe) private static var fuzzingThread = pthread_self()
    /// Set by SIGINT or SIGTERM: finish the current input, then stop and print the summary.
    static let stopRequested = Atomic<Bool>(false)

    /// Prepares the buffers and installs the handlers; `directory` must exist.
    static func install(directory path: String, seed: UInt64) {
        fuzzingThread = pthread_self()
        directory = strdup(path)
        targetNames = FuzzTarget.allCases.map { strdup($0.rawValue + "." + $0.fileExtension)! }
        self.seed = seed
        pathBuffer = .allocate(capacity: Int(PATH_MAX) + 128)
        capacity = 1 << 16
        buffer = .allocate(capacity: capacity)

        // An alternate stack, so that a stack overflow can still be reported.
        let altSize = 1 << 16
        var alt = stack_t()
        alternateStack = UnsafeMutableRawPointer.allocate(byteCount: altSize, alignment: 16)
        alt.ss_sp = alternateStack
        alt.ss_size = altSize
        alt.ss_flags = 0
        sigaltstack(&alt, nil)

        for sig in signals {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = crashHandler
            #else
            action.__sigaction_u.__sa_handler = crashHandler
            #endif
            action.sa_flags = Int32(SA_ONSTACK)
            sigemptyset(&action.sa_mask)
            var old = sigaction()
            sigaction(sig, &action, &old)
            previous[Int(sig)] = old
        }
        for sig in [SIGINT, SIGTERM] {
            var action = sigaction()
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = stopHandler
            #else
            action.__sigaction_u.__sa_handler = stopHandler
            #endif
            action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)  // a second signal ends the process at once
            sigemptyset(&action.sa_mask)
            sigaction(sig, &action, nil)
        }
    }

    /// Records the input about to run (call before `begin`).
    static func hold(_ bytes: [UInt8], target: FuzzTarget, iteration: Int) {
        if bytes.count > capacity {
            buffer?.deallocate()
            capacity = max(bytes.count, capacity * 2)
            buffer = .allocate(capacity: capacity)
        }
        bytes.withUnsafeBufferPointer { buffer!.update(from: $0.baseAddress!, count: $0.count) }
        length = bytes.count
        self.target = FuzzTarget.allCases.firstIndex(of: target)!
        self.iteration = UInt64(iteration)
    }

    static func begin() {
        cpuStartedAt.store(processCPUNanos(), ordering: .relaxed)
        startedAt.store(monotonicNanos(), ordering: .releasing)
    }
    static func end() { startedAt.store(0, ordering: .releasing) }

    /// Writes the held input to `<directory>/<kind>-<target>-seed<seed>-iter<iteration>.<ext>`
    /// with async-signal-safe calls only, and returns the path (in a static buffer).
    @discardableResult
    static func saveHeld(kind: StaticString) -> UnsafeMutablePointer<CChar>? {
        guard let out = pathBuffer, let directory, let buffer else { return nil }
        var n = 0
        func append(_ s: UnsafePointer<CChar>) {
            var i = 0
            while s[i] != 0 && n < Int(PATH_MAX) + 100 { out[n] = s[i]; n += 1; i += 1 }
        }
        func append(_ s: StaticString) {
            s.withUTF8Buffer { b in for c in b { out[n] = CChar(bitPattern: c); n += 1 } }
        }
        func append(_ v: UInt64) {
            var digits: (CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar,
                         CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var count = 0
            var x = v
            withUnsafeMutableBytes(of: &digits) { d in
                repeat {
                    d[count] = UInt8(48 + x % 10)
                    x /= 10
                    count += 1
                } while x > 0
                for k in stride(from: count - 1, through: 0, by: -1) { out[n] = CChar(bitPattern: d[k]); n += 1 }
            }
        }
        let name = targetNames[target]
        var dot = 0
        while name[dot] != 0x2E { dot += 1 }
        append(directory); append("/"); append(kind); append("-")
        for i in 0..<dot { out[n] = name[i]; n += 1 }
        append("-seed"); append(seed); append("-iter"); append(iteration)
        append(name + dot)
        out[n] = 0
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd >= 0 {
            var done = 0
            while done < length {
                let w = write(fd, buffer + done, length - done)
                if w <= 0 { break }
                done += w
            }
            close(fd)
        }
        return out
    }

    /// Writes to stderr with async-signal-safe calls.
    static func say(_ text: StaticString) {
        _ = write(2, text.utf8Start, text.utf8CodeUnitCount)
    }

    static func say(_ text: UnsafePointer<CChar>) {
        _ = write(2, text, strlen(text))
    }

    /// Checks every 100 ms whether the current input has used more than `limit` seconds of CPU
    /// time, or has been running for six times that (a deadlock uses no CPU; the factor leaves
    /// room for a machine shared with other work, where wall time alone says little); if so, saves
    /// it as a hang, interrupts the fuzzing thread with SIGABRT so that the runtime's backtracer
    /// shows where it is stuck, and ends the process with status 3 if that does not.
    static func startWatchdog(limit: Double) {
        let limitNanos = UInt64(limit * 1e9)
        var thread = pthread_t()
        let box = Unmanaged.passRetained(WatchdogLimit(limitNanos)).toOpaque()
        pthread_create(&thread, nil, { raw in
            let limit = Unmanaged<WatchdogLimit>.fromOpaque(raw!).takeRetainedValue().nanos
            while true {
                usleep(100_000)
                let started = CrashGuard.startedAt.load(ordering: .acquiring)
                let cpu = processCPUNanos() &- CrashGuard.cpuStartedAt.load(ordering: .relaxed)
                if started != 0 && (cpu > limit || monotonicNanos() &- started > 6 * limit) {
                    let path = CrashGuard.saveHeld(kind: "hang")
                    CrashGuard.say("\nneurite-fuzz: HANG: an input ran past the hang limit; saved to ")
                    if let path { CrashGuard.say(path) }
                    CrashGuard.say("\n")
                    if let file = CrashGuard.temporaryFile { unlink(file) }
                    CrashGuard.hangDetected.store(true, ordering: .releasing)
                    pthread_kill(CrashGuard.fuzzingThread, SIGABRT)
                    sleep(30)
                    _exit(3)
                }
            }
        }, box)
    }
}

private final class WatchdogLimit: Sendable {
    let nanos: UInt64
    init(_ nanos: UInt64) { self.nanos = nanos }
}

private let stopHandler: @convention(c) (Int32) -> Void = { _ in
    CrashGuard.stopRequested.store(true, ordering: .relaxed)
}

private let crashHandler: @convention(c) (Int32) -> Void = { sig in
    if CrashGuard.hangDetected.load(ordering: .acquiring) {
        CrashGuard.say("neurite-fuzz: the hung thread was interrupted; where it was stuck follows\n")
        CrashGuard.restorePrevious(sig)
        raise(sig)
        return
    }
    let path = CrashGuard.saveHeld(kind: "crash")
    if let file = CrashGuard.temporaryFile { unlink(file) }
    CrashGuard.say("\nneurite-fuzz: CRASH: signal ")
    var digits: (CChar, CChar, CChar) = (0, 0, 0)
    withUnsafeMutableBytes(of: &digits) { d in
        d[0] = UInt8(48 + (sig / 10) % 10)
        d[1] = UInt8(48 + sig % 10)
        _ = write(2, d.baseAddress!, 2)
    }
    if CrashGuard.startedAt.load(ordering: .acquiring) != 0 {
        CrashGuard.say(" while decoding an input; saved to ")
    } else {
        CrashGuard.say(" between inputs; the last input was saved to ")
    }
    if let path { CrashGuard.say(path) }
    CrashGuard.say("\n")
    // Hand the signal to whoever had it before (the Swift runtime's backtracer, or the default).
    CrashGuard.restorePrevious(sig)
    raise(sig)
}

extension CrashGuard {
    static func restorePrevious(_ sig: Int32) {
        guard var old = previous[Int(sig)] else { signal(sig, SIG_DFL); return }
        sigaction(sig, &old, nil)
    }
}

/// CPU time used by the whole process (every thread, so the thread pool's work counts too).
func processCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
