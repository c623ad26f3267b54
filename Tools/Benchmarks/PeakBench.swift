import CFMAPeak
import TensorCore

/// The `peak` suite: this CPU's single-precision FMA throughput, the ceiling every kernel is
/// measured against, from the C probe in `Tools/FMAPeak` (independent accumulator chains of
/// fused multiply-adds, one function per ISA path with its own `target` attribute, chosen at run
/// time as CKernels does).
///
/// For each path the CPU supports (AVX-512, AVX2, portable) it prints GFLOP/s on one thread and
/// on all of the pool's threads (`NEURITE_THREADS`), the best of repetitions lasting at least
/// `minSeconds`. The all-threads figure is the wall-clock rate of every lane running the loop at
/// once, so a lane that the machine deschedules lowers it, as it would lower a kernel's.
enum PeakBench {
    /// One figure: `isa`'s GFLOP/s with `threads` threads.
    struct Peak {
        var isa: KernelISA
        var threads: Int
        var gflops: Double
    }

    /// The probe's paths this CPU runs, fastest first.
    static var supportedPaths: [KernelISA] {
        KernelISA.allCases.reversed().filter { $0.isSupported }
    }

    /// Best GFLOP/s of `isa`'s loop on `threads` threads at once, over repetitions lasting at least
    /// `minSeconds` (each about 20 ms).
    static func measure(isa: KernelISA, threads: Int, minSeconds: Double) -> Double {
        precondition(isa.isSupported, "the FMA probe cannot run \(isa) on this CPU")
        // Calibrate on one thread: rounds for about 20 ms.
        var sink: Float = 0
        var rounds = 1000
        while true {
            let t0 = now()
            _ = fma_peak_run(isa.rawValue, rounds, &sink)
            let elapsed = now() - t0
            if elapsed > 0.005 || rounds > 1 << 30 {
                rounds = max(1, Int(Double(rounds) * 0.02 / max(elapsed, 1e-9)))
                break
            }
            rounds *= 4
        }
        let lanes = max(1, threads)
        var best = 0.0
        let start = now()
        var repetitions = 0
        while repetitions < 3 || now() - start < minSeconds {
            var flops = 0.0
            let t0 = now()
            ThreadPool.withWidthLimit(lanes) {
                // One index per lane: with fewer lanes actually free, the wall time shows it.
                var perLane = [Double](repeating: 0, count: lanes)
                perLane.withUnsafeMutableBufferPointer { results in
                    ThreadPool.shared.parallelFor(lanes) { index, _ in
                        var local: Float = 0
                        results[index] = fma_peak_run(isa.rawValue, rounds, &local)
                    }
                }
                flops = perLane.reduce(0, +)
            }
            best = max(best, flops / (now() - t0))
            repetitions += 1
        }
        return best / 1e9
    }

    /// Measures every supported path on one thread and on all threads; prints one JSON line per
    /// figure and returns them.
    @discardableResult
    static func run(minSeconds: Double, threadCounts: [Int], print: Bool = true) -> [Peak] {
        var peaks: [Peak] = []
        for isa in supportedPaths {
            for threads in threadCounts {
                let gflops = measure(isa: isa, threads: threads, minSeconds: minSeconds)
                peaks.append(Peak(isa: isa, threads: threads, gflops: gflops))
                if print {
                    emit([("bench", "peak"), ("impl", "fma_probe"), ("isa", isa.description), ("threads", threads),
                          ("gflops", gflops)])
                }
            }
        }
        return peaks
    }
}
