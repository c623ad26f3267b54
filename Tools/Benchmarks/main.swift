// neurite-bench: measures TensorCore's kernels and the optimizers' update rules, one JSON line per case.
//
//   swift run -c release neurite-bench [gemm|microkernel|elementwise|optimizers|datasets|layers|recurrent|sequence|unsupervised|all] [--quick | --min-seconds S] [--sizes 1024,2048] [--data DIR]
//   swift run -c release neurite-bench training [--epochs N] [--seed N] [--models course_cnn,...] [--data DIR] [--limit N] [--python PATH] [--torch-python PATH] [--isas avx512,avx2]
//   swift run -c release neurite-bench training --threads 1,2 [--load 0,2] [--rounds R] [--models ...]   # thread scaling, under a competing load
//   swift run -c release neurite-bench peak       # the FMA probe: GFLOP/s per ISA path, 1 thread and all threads
//   swift run -c release neurite-bench flops      # the training suite's FLOP rule against hand counts (exits 1 on a mismatch)
//   swift run -c release neurite-bench softmax-head [--epochs N] [--seed N] [--models shallow_mlp,course_cnn] [--data DIR]
//   swift run -c release neurite-bench streaming --source folder|memory|decode [--data DIR] [--prefetch N] [--workers N] [--epochs N]
//   swift run -c release neurite-bench --help      # the suites and options
//
// Each case runs a warm-up, then repeats until at least `minSeconds` have passed, and reports
// the best repetition (the least disturbed by the rest of the machine). GEMM cases run once
// limited to 1 thread and once with the whole pool (NEURITE_THREADS, default all cores).
// Tools/reference/numpy_reference.py prints the same lines for numpy/OpenBLAS.
import ArgumentParser
import Datasets
import Foundation
import TensorCore

/// The benchmark suites, as the first argument names them.
enum Suite: String, ExpressibleByArgument, CaseIterable {
    case gemm, microkernel, elementwise, optimizers, datasets, layers, recurrent, sequence, unsupervised
    case training, peak, flops
    case softmaxHead = "softmax-head"
    case streaming
    case all

    /// The suites `all` runs (the timed comparisons with Keras, training, softmax-head and
    /// streaming, and the peak and flops suites, run only by name).
    static let everyMicroSuite: Set<String> = ["gemm", "microkernel", "elementwise", "optimizers", "datasets", "layers",
                                               "recurrent", "sequence", "unsupervised"]
}

/// Where the streaming suite's training images come from.
enum StreamingSource: String, ExpressibleByArgument, CaseIterable {
    case folder, memory, decode
}

/// neurite-bench's command line. Parsing only: the benchmarks run below, in the order of the
/// suites, once the options are known (`--help` prints the suites and options and runs nothing).
struct NeuriteBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neurite-bench",
        abstract: "Measure Neurite's kernels, optimizers, layers, data loading and training; one JSON line per case.",
        discussion: """
            Without a suite, runs gemm and elementwise; all runs every suite but training, softmax-head, \
            streaming, peak and flops. training runs each model in its own child process (training --only NAME) \
            after the FMA probe (peak), then Keras and PyTorch on the same models. Each case runs a warm-up, then repeats until at least --min-seconds have passed, and \
            reports the best repetition. GEMM cases run once limited to 1 thread and once with the whole pool \
            (NEURITE_THREADS, default all cores). Tools/reference/numpy_reference.py prints the same lines for \
            numpy/OpenBLAS.
            """
    )

    @Argument(help: "The suite to run (default: gemm and elementwise; all: every suite but training, softmax-head, streaming, peak and flops).")
    var suite: Suite?

    @Flag(help: "Repeat each case for at least 0.1 s instead of 0.5 s (--min-seconds wins when both are given).")
    var quick = false

    @Option(name: .customLong("min-seconds"), help: "Repeat each case for at least this many seconds.")
    var minSeconds: Double?

    @Option(help: "gemm: only the cases whose largest dimension is one of these, comma-separated (e.g. 1024,2048).")
    var sizes: String?

    @Option(help: "The data folder: MNIST's IDX files (datasets), Fashion-MNIST's (training, softmax-head, unsupervised), or an image folder (streaming); default: the loaders' search path.")
    var data: String?

    @Option(help: "Epochs per model (training, softmax-head: default 2; streaming: default 1).")
    var epochs: Int?

    @Option(help: "The seed of the training, softmax-head and streaming runs.")
    var seed: UInt64 = 1

    @Option(help: "Only these models, comma-separated (training, softmax-head, layers; streaming: the first one, default course_cnn).")
    var models: String?

    @Option(help: "training: a Python interpreter with Keras for the comparison (default ~/.cache/neurite/keras-venv).")
    var python: String?

    @Option(name: .customLong("torch-python"), help: "training: a Python interpreter with PyTorch for the comparison (default ~/.cache/neurite/torch-venv).")
    var torchPython: String?

    @Option(help: "training: train and print this one model in this process (what the suite runs in each child process).")
    var only: String?

    @Option(help: "training: train and test on the first N images only (smoke runs; the figures mean little).")
    var limit: Int?

    @Option(help: "training: thread scaling instead of the comparison with the peers: each model with NEURITE_THREADS set to each of these counts, comma-separated (e.g. 1,2), one child process per run, then a line with each count's best seconds per epoch and the speed-up over the first.")
    var threads: String?

    @Option(help: "training: the kernel paths to train every model on, comma-separated (e.g. avx512,avx2): each model runs once per path (a child with NEURITE_ISA set), then the peers once, and a summary line per path and model; default: the path in use.")
    var isas: String?

    @Option(help: "training --threads: competing loads, comma-separated (e.g. 0,2): that many spinning threads run beside the children (default 0).")
    var load: String?

    @Option(help: "training --threads: rounds over the thread counts; the scaling line reports the best of them (default 1).")
    var rounds: Int?

    @Option(help: "streaming: where the images come from: folder (decode an image folder), memory, or decode (the loader alone).")
    var source: StreamingSource = .folder

    @Option(help: "streaming: batches decoded ahead.")
    var prefetch: Int = 4

    @Option(help: "streaming: background threads that decode batches.")
    var workers: Int = 1

    func validate() throws {
        if let minSeconds, !(minSeconds > 0 && minSeconds.isFinite) {
            throw ValidationError("--min-seconds must be positive, got \(minSeconds).")
        }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs).") }
        if let sizes, sizes.split(separator: ",").contains(where: { Int($0) == nil }) {
            throw ValidationError("--sizes must be comma-separated integers, got \"\(sizes)\".")
        }
        guard prefetch >= 0 else { throw ValidationError("--prefetch must be at least 0, got \(prefetch).") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit).") }
        if let only, suite != .training { throw ValidationError("--only \(only) is an option of the training suite.") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1, got \(workers).") }
        if let threads {
            guard suite == .training else { throw ValidationError("--threads \(threads) is an option of the training suite.") }
            guard only == nil else { throw ValidationError("--threads runs each model in child processes; it does not combine with --only.") }
            guard let counts = Self.integers(threads), !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }) else {
                throw ValidationError("--threads must be comma-separated positive integers, got \"\(threads)\".")
            }
        }
        if let isas {
            guard suite == .training, threads == nil, only == nil else {
                throw ValidationError("--isas \(isas) is an option of the training suite's comparison (not of --threads or --only).")
            }
            guard Self.kernelPaths(isas) != nil else {
                let names = KernelISA.supported.map(\.description).joined(separator: ", ")
                throw ValidationError("--isas must name kernel paths this CPU supports (\(names)), comma-separated, got \"\(isas)\".")
            }
        }
        if let load {
            guard threads != nil else { throw ValidationError("--load \(load) is an option of training --threads.") }
            guard let levels = Self.integers(load), !levels.isEmpty, levels.allSatisfy({ $0 >= 0 }) else {
                throw ValidationError("--load must be comma-separated integers of at least 0, got \"\(load)\".")
            }
        }
        if let rounds {
            guard threads != nil else { throw ValidationError("--rounds \(rounds) is an option of training --threads.") }
            guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1, got \(rounds).") }
        }
    }

    /// `text` as comma-separated kernel path names (`NEURITE_ISA`'s), or nil when one is unknown,
    /// unsupported on this CPU or repeated, or none is given.
    static func kernelPaths(_ text: String) -> [KernelISA]? {
        var paths: [KernelISA] = []
        for name in text.lowercased().split(separator: ",", omittingEmptySubsequences: false) {
            guard let isa = KernelISA.allCases.first(where: { $0.description == name }), isa.isSupported,
                  !paths.contains(isa) else { return nil }
            paths.append(isa)
        }
        return paths.isEmpty ? nil : paths
    }

    /// `text` as comma-separated integers, or nil when any of them is not one.
    static func integers(_ text: String) -> [Int]? {
        let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        return values.contains(where: { $0 == nil }) ? nil : values.compactMap { $0 }
    }
}

struct Options {
    var suites: Set<String> = ["gemm", "elementwise"]
    var minSeconds = 0.5
    /// Where `train-images-idx3-ubyte.gz` lives for the datasets suite (default: MNIST's search path).
    var dataDirectory: String?
    /// Only GEMM cases whose largest dimension is one of these (all when nil).
    var gemmSizes: Set<Int>?
    /// Epochs per model in the training suite.
    var epochs = 2
    /// The seed of the training suite's runs (both sides).
    var seed: UInt64 = 1
    /// Only these models in the training and layers suites (all when nil).
    var models: Set<String>?
    /// The Python interpreter with Keras for the training suite's comparison.
    var python: String?
}

let command = NeuriteBench.parseOrExit()
var options = Options()
if let suite = command.suite {
    options.suites = suite == .all ? Suite.everyMicroSuite : [suite.rawValue]
}
if command.quick { options.minSeconds = 0.1 }
if let seconds = command.minSeconds { options.minSeconds = seconds }
options.gemmSizes = command.sizes.map { Set($0.split(separator: ",").compactMap { Int($0) }) }
options.dataDirectory = command.data
if let epochs = command.epochs { options.epochs = epochs }
options.seed = command.seed
options.models = command.models.map { Set($0.split(separator: ",").map(String.init)) }
options.python = command.python

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Best seconds per call of `body` over repetitions lasting at least `minSeconds` in total.
func measure(minSeconds: Double, _ body: () -> Void) -> Double {
    body()  // warm-up: first-touch pages, scratch buffers, thread wake-up
    var best = Double.infinity
    let start = now()
    var reps = 0
    while reps < 3 || now() - start < minSeconds {
        let t0 = now()
        body()
        best = min(best, now() - t0)
        reps += 1
    }
    return best
}

func emit(_ fields: [(String, Any)]) {
    let parts = fields.map { key, value -> String in
        switch value {
        case let s as String: return "\"\(key)\": \"\(s)\""
        case let d as Double: return "\"\(key)\": \(String(format: "%.3f", d))"
        default: return "\"\(key)\": \(value)"
        }
    }
    print("{" + parts.joined(separator: ", ") + "}")
}

let allThreads = ThreadPool.shared.width
let threadCounts = allThreads > 1 ? [1, allThreads] : [1]
let isa = KernelISA.current.description

if options.suites.contains("gemm") {
    // (m, n, k, transposeA, transposeB, label)
    var cases: [(Int, Int, Int, Bool, Bool, String)] = []
    for s in [64, 128, 256, 512, 1024, 2048] { cases.append((s, s, s, false, false, "square")) }
    // The shapes a 784-128-10 MLP trains with at batch 128, in all three positions of the product:
    // forward x[128,784] W[784,128]; weight gradient x^T dy; input gradient dy W^T.
    for (m, n, k) in [(128, 784, 128), (128, 128, 784), (784, 128, 128)] {
        for (tA, tB) in [(false, false), (true, false), (false, true)] {
            cases.append((m, n, k, tA, tB, "layer"))
        }
    }
    for (m, n, k, tA, tB, label) in cases where options.gemmSizes?.contains(max(m, n, k)) ?? true {
        let a = Tensor.randomUniform(tA ? [k, m] : [m, k], in: -1...1, using: &SeededGeneratorBox.shared)
        let b = Tensor.randomUniform(tB ? [n, k] : [k, n], in: -1...1, using: &SeededGeneratorBox.shared)
        var c = Tensor.zeros([m, n])
        for threads in threadCounts {
            let seconds = ThreadPool.withWidthLimit(threads) {
                measure(minSeconds: options.minSeconds) {
                    Tensor.gemm(a, transposeA: tA, b, transposeB: tB, into: &c)
                }
            }
            emit([("bench", "gemm"), ("impl", "neurite"), ("isa", isa), ("case", label),
                  ("m", m), ("n", n), ("k", k), ("transA", tA), ("transB", tB), ("threads", threads),
                  ("gflops", 2.0 * Double(m * n * k) / seconds / 1e9), ("ms", seconds * 1e3)])
        }
    }
}

if options.suites.contains("elementwise") {
    // Two sizes: 1 MiB per tensor stays in the L2 cache (the size of most activations in a
    // training step); 64 MiB per tensor is well past the caches and measures memory bandwidth.
    for n in [1 << 18, 1 << 24] {
        let x = Tensor.randomUniform([n], in: -4...4, using: &SeededGeneratorBox.shared)
        let y = Tensor.randomUniform([n], in: -4...4, using: &SeededGeneratorBox.shared)
        for threads in threadCounts {
            ThreadPool.withWidthLimit(threads) {
                // The reference: a plain copy of the same bytes (read n floats, write n floats).
                var dst = Tensor.zeros([n])
                let copySeconds = measure(minSeconds: options.minSeconds) {
                    dst.withUnsafeMutableBufferPointer { d in
                        x.withUnsafeBufferPointer { s in
                            ThreadPool.shared.parallelChunks(n, grain: 1 << 16) { r in
                                (d.baseAddress! + r.lowerBound).update(from: s.baseAddress! + r.lowerBound, count: r.count)
                            }
                        }
                    }
                }
                let copyRate = 8.0 * Double(n) / copySeconds
                emit([("bench", "elementwise"), ("impl", "neurite"), ("op", "copy"), ("threads", threads),
                      ("elements", n), ("gbps", copyRate / 1e9)])
                for (name, op) in ElementwiseCases.all(x, y) {
                    let (bytes, body) = op
                    let seconds = measure(minSeconds: options.minSeconds, body)
                    emit([("bench", "elementwise"), ("impl", "neurite"), ("op", name), ("threads", threads),
                          ("elements", n), ("gbps", Double(bytes) / seconds / 1e9),
                          ("vs_copy", (Double(bytes) / seconds) / copyRate)])
                }
            }
        }
    }
}

if options.suites.contains("microkernel") {
    MicroKernelBench.run(minSeconds: options.minSeconds, isa: isa)
}

if options.suites.contains("optimizers") {
    OptimizerBench.run(minSeconds: options.minSeconds, threadCounts: threadCounts, isa: isa)
}

if options.suites.contains("peak") {
    PeakBench.run(minSeconds: options.minSeconds, threadCounts: threadCounts)
}

if options.suites.contains("flops") {
    let failures = FLOPsSelfCheck.run()
    for failure in failures { print("flops self-check failed: \(failure)") }
    if !failures.isEmpty { exit(1) }
}

if options.suites.contains("training") {
    if let only = command.only {
        do {
            try TrainingBench.runOne(only, epochs: options.epochs, seed: options.seed, dataDirectory: options.dataDirectory,
                                     limit: command.limit)
        } catch {
            print("training \(only) failed: \(error)")
            exit(1)
        }
    } else if let threads = command.threads {
        do {
            try TrainingBench.runScaling(epochs: options.epochs, seed: options.seed, dataDirectory: options.dataDirectory,
                                         only: options.models, limit: command.limit,
                                         threads: NeuriteBench.integers(threads) ?? [], loads: command.load.flatMap(NeuriteBench.integers) ?? [0],
                                         rounds: command.rounds ?? 1)
        } catch {
            print("\(error)")
            exit(1)
        }
    } else {
        do {
            try TrainingBench.run(epochs: options.epochs, seed: options.seed, dataDirectory: options.dataDirectory,
                                  only: options.models, limit: command.limit, python: options.python,
                                  torchPython: command.torchPython, isas: command.isas.flatMap(NeuriteBench.kernelPaths))
        } catch {
            print("\(error)")
            exit(1)
        }
    }
}

if options.suites.contains("softmax-head") {
    // Issue 12: a softmax last layer with each loss against the logits model.
    SoftmaxHeadBench.run(epochs: options.epochs, seed: options.seed, dataDirectory: options.dataDirectory, only: options.models)
}

if options.suites.contains("streaming") {
    StreamingBench.run(source: command.source.rawValue, dataDirectory: options.dataDirectory, prefetch: command.prefetch,
                       workers: command.workers, epochs: command.epochs ?? 1,
                       seed: options.seed, modelName: options.models?.first ?? "course_cnn")
}

if options.suites.contains("layers") {
    LayersBench.run(minSeconds: options.minSeconds, threadCounts: threadCounts, isa: isa, only: options.models)
}

if options.suites.contains("recurrent") {
    RecurrentBench.run(minSeconds: options.minSeconds, threadCounts: threadCounts, isa: isa)
}

if options.suites.contains("sequence") {
    // Conv1D, pooling and a whole training step of issue 13's genome model; the references are
    // Tools/reference/keras_conv1d.py and Tools/reference/torch_conv1d.py.
    SequenceBench.run(minSeconds: options.minSeconds, threadCounts: threadCounts, isa: isa)
}

if options.suites.contains("datasets") {
    // MNIST train images from the official .gz to a Float32 tensor in 0...1 (the reference is
    // Tools/reference/mnist_load_reference.py: Python gzip + numpy frombuffer + astype / 255).
    do {
        var loaded: [Int] = []
        let seconds = try measureThrowing(minSeconds: max(options.minSeconds, 1)) {
            loaded = try MNIST.load(.train, from: options.dataDirectory).images.shape
        }
        emit([("bench", "datasets"), ("impl", "neurite"), ("op", "mnist_train_gz_to_float32"),
              ("shape", "\(loaded)"), ("seconds", seconds)])
    } catch {
        print("datasets suite skipped: \(error)")
    }
    DatasetsBench.run(minSeconds: options.minSeconds, dataDirectory: options.dataDirectory)
}

if options.suites.contains("unsupervised") {
    // RBM and SMOTE on Fashion-MNIST (--data: its folder); Tools/reference/sklearn_unsupervised.py is the reference.
    UnsupervisedBench.run(minSeconds: max(options.minSeconds, 1), dataDirectory: options.dataDirectory,
                          quick: options.minSeconds < 0.5)
}

func measureThrowing(minSeconds: Double, _ body: () throws -> Void) throws -> Double {
    var failure: Error?
    let seconds = measure(minSeconds: minSeconds) {
        do { try body() } catch { failure = error }
    }
    if let failure { throw failure }
    return seconds
}
