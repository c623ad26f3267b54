import Foundation
import Layers
import Synchronization
import TensorCore

/// `neurite-bench training --threads 1,2 [--load 0,2] [--rounds R]`: issue 14's thread-scaling goal
/// ("two threads at 1.8x one thread or better, and no collapse when the machine is shared").
///
/// For every model, every load level and every round, each thread count trains the model in its
/// own child process (`training --only NAME` with `NEURITE_THREADS` set), one JSON line per run
/// with `epoch_s` (wall seconds per epoch, as the suite measures them) and `epoch_cpu_s` (the
/// child's user plus system CPU seconds over the same epochs). The thread counts alternate within
/// a round, so a disturbance of the machine falls on all of them alike. Then one `scaling` line per
/// model and load: the best of the rounds for each thread count, `speedup_tN` (the first count's
/// best seconds over count N's) and `cpu_ratio_tN` (count N's CPU seconds over the first's: what
/// spreading the work costs in cycles, spinning included).
///
/// A load level `L > 0` starts `L` threads in this (parent) process that spin on arithmetic for
/// as long as the children of that level train, so they compete with the children's threads for
/// the cores the way another program would. Without Keras, PyTorch or the FMA probe: the plain
/// suite compares with the peers.
extension TrainingBench {
    /// Runs the scaling measurement (see the extension's comment).
    /// - Throws: ``BenchError`` when `only` names a model the suite does not have.
    static func runScaling(epochs: Int, seed: UInt64, dataDirectory: String?, only: Set<String>?, limit: Int?,
                           threads: [Int], loads: [Int], rounds: Int) throws {
        let known = models.map(\.name)
        if let only, !only.isSubset(of: known) {
            throw BenchError("training: no model \(only.subtracting(known).sorted().joined(separator: ", ")); "
                             + "the models are \(known.joined(separator: ", "))")
        }
        let isa = KernelISA.current.description
        for model in models where only?.contains(model.name) ?? true {
            for load in loads {
                let spinners = CompetingLoad(threads: load)
                var best: [Int: (wall: Double, cpu: Double)] = [:]
                for round in 0..<rounds {
                    for count in threads {
                        guard let line = runChild(model.name, epochs: epochs, seed: seed, dataDirectory: dataDirectory,
                                                  limit: limit, threads: count) else { continue }
                        let wall = line["epoch_s"] as? Double ?? .nan, cpu = line["epoch_cpu_s"] as? Double ?? .nan
                        var fields: [(String, Any)] = [("bench", "training"), ("impl", "neurite"), ("isa", isa),
                                                       ("model", model.name), ("epochs", epochs), ("seed", seed),
                                                       ("threads", count), ("load", load), ("round", round),
                                                       ("samples", line["samples"] as? Int ?? 0),
                                                       ("epoch_s", wall), ("epoch_cpu_s", cpu)]
                        for key in ["test_accuracy", "test_mse", "test_pseudo_likelihood", "peak_rss_mb"] {
                            if let value = line[key] as? Double { fields.append((key, value)) }
                        }
                        emit(fields)
                        if wall < best[count]?.wall ?? .infinity { best[count] = (wall, cpu) }
                    }
                }
                spinners.stop()
                guard let first = threads.first, let base = best[first] else { continue }
                var fields: [(String, Any)] = [("bench", "training"), ("scaling", "threads"), ("isa", isa),
                                               ("model", model.name), ("load", load), ("rounds", rounds)]
                for count in threads {
                    guard let figures = best[count] else { continue }
                    fields += [("epoch_s_t\(count)", figures.wall), ("epoch_cpu_s_t\(count)", figures.cpu)]
                }
                for count in threads.dropFirst() {
                    guard let figures = best[count] else { continue }
                    fields += [("speedup_t\(count)", base.wall / figures.wall), ("cpu_ratio_t\(count)", figures.cpu / base.cpu)]
                }
                emit(fields)
            }
        }
    }

    /// This process's user plus system CPU seconds so far, all its threads together.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

/// The process's CPU seconds over each epoch's training steps, the span `EpochTimer` times.
final class EpochCPUTimer: Callback {
    /// CPU seconds of each finished epoch.
    private(set) var seconds: [Double] = []
    private var start = 0.0

    func onEpochBegin(_ epoch: Int, context: TrainingContext) throws {
        start = TrainingBench.processCPUSeconds()
    }

    func onBatchEnd(_ step: Int, logs: [String: Double], context: TrainingContext) throws {
        if step == context.stepsPerEpoch - 1 { seconds.append(TrainingBench.processCPUSeconds() - start) }
    }
}

/// Threads that spin on arithmetic until stopped: another program's demand for the cores.
final class CompetingLoad: Sendable {
    private let running = Atomic<Bool>(true)
    private let alive = Atomic<Int>(0)

    /// Starts `threads` spinning threads (none for 0).
    init(threads: Int) {
        for index in 0..<threads {
            alive.wrappingAdd(1, ordering: .relaxed)
            let thread = Thread { [self] in
                var x = Double(index) + 1
                while running.load(ordering: .relaxed) {
                    for _ in 0..<10_000 { x = x * 0.999_999 + 1e-6 }
                }
                if x.isNaN { print("unreachable") }  // keeps the arithmetic
                alive.wrappingSubtract(1, ordering: .releasing)
            }
            thread.name = "neurite-bench-load-\(index)"
            thread.start()
        }
    }

    /// Stops the threads and returns once all of them have.
    func stop() {
        running.store(false, ordering: .relaxed)
        while alive.load(ordering: .acquiring) > 0 { usleep(1000) }
    }
}
