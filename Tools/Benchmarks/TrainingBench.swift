import Datasets
import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import Unsupervised
import _AppSupport

/// The `training` suite (issue 14): every demo model trained on Fashion-MNIST as a user would train
/// it, side by side with Keras and PyTorch in one run, against its arithmetic floor, with its peak
/// memory.
///
/// - First the FMA probe (``PeakBench``): GFLOP/s of every ISA path on one thread and on all threads.
/// - Then each model in its own child process (`neurite-bench training --only NAME`), so that its
///   `peak_rss_mb` is that model's alone; the child trains with `fit` (batch 128, Adam 1e-3, `--seed`,
///   default 1) and prints one JSON line: seconds per epoch (median over the epochs after the
///   first, which pays for warm-up; training steps only), the test metric (accuracy; mean squared error for the autoencoders; mean pseudo-likelihood
///   for the RBM), single-image prediction latency, peak memory and the data set's size beside it
///   (issue 14's goal: peak at most the data set plus 100 MB). This process adds the model's FLOPs per
///   epoch (``TrainingFLOPs``), `floor_s` (those FLOPs at the probe's all-threads peak for the path in
///   use, `NEURITE_ISA`) and `ratio_to_floor`, and prints the line.
/// - Then `Tools/reference/keras_training.py` (`--python`, default `~/.cache/neurite/keras-venv`) and
///   `Tools/reference/torch_training.py` (`--torch-python`, default `~/.cache/neurite/torch-venv`),
///   whose lines it echoes, and one `compare` line per model: `neurite/keras`, `neurite/torch`,
///   `neurite/best_peer` (seconds per epoch) and each side's ratio to the floor.
///
/// The models: the MLPs and CNNs of `Apps/shallow-vs-deep` and `Apps/cnn`, an LSTM(128) then
/// Dense(10) over the 28 rows of an image, the dense autoencoder 784-128-32-128-784 and the
/// convolutional one of `Apps/autoencoder` (code 32), both trained on mean squared error to
/// reconstruct their input, and an RBM 784-256 (PCD-1, batch 64, learning rate 0.05, one pass per
/// epoch, as `Unsupervised`'s `RBM` and scikit-learn's `BernoulliRBM`). `--limit N` trains and tests on
/// the first N images only, for smoke runs; figures worth keeping come from full runs on a quiet machine.
enum TrainingBench {
    /// What a model learns, which decides its loss and its test metric.
    enum Task {
        /// Ten classes from logits: softmax cross-entropy, test accuracy.
        case classify
        /// Its own input: mean squared error, test mean squared error.
        case reconstruct
        /// An RBM's contrastive divergence: test mean pseudo-likelihood.
        case rbm
    }

    /// One model of the suite.
    struct Model {
        var name: String
        var task: Task
        /// The shape of one sample, without the batch axis.
        var inputShape: [Int]
        /// The network (nil for the RBM, which is not a `Sequential`).
        var make: (() -> Sequential)?
    }

    /// The RBM's settings, as the `unsupervised` suite and scikit-learn's reference use them.
    static let rbmVisible = 784, rbmHidden = 256, rbmBatch = 64, rbmLearningRate: Float = 0.05

    /// Every model of the suite, in the order it runs them.
    static var models: [Model] {
        LayersBench.models.map { Model(name: $0.name, task: .classify, inputShape: [28, 28, 1], make: $0.make) } + [
            Model(name: "lstm", task: .classify, inputShape: [28, 28], make: {
                Sequential(inputShape: [28, 28]) {
                    LSTM(128)
                    Dense(10)
                }
            }),
            Model(name: "dense_autoencoder", task: .reconstruct, inputShape: [28, 28, 1], make: {
                Autoencoder.dense(inputShape: [28, 28, 1], hidden: [128], codeSize: 32).model
            }),
            Model(name: "conv_autoencoder", task: .reconstruct, inputShape: [28, 28, 1], make: {
                Autoencoder.convolutional(inputShape: [28, 28, 1], filters: [16, 8], codeSize: 32).model
            }),
            Model(name: "rbm", task: .rbm, inputShape: [rbmVisible], make: nil),
        ]
    }

    /// FLOPs of one training epoch of `model` over `samples` samples (``TrainingFLOPs``' rule).
    static func flopsPerEpoch(_ model: Model, samples: Int) throws -> Double? {
        guard let make = model.make else {
            return TrainingFLOPs.rbmEpoch(visible: rbmVisible, hidden: rbmHidden, gibbsSteps: 1, samples: samples)
        }
        return try TrainingFLOPs.trainingEpoch(make(), inputShape: model.inputShape, samples: samples)
    }

    // MARK: - The parent: probe, children, peers, comparison

    /// Runs the whole suite (see the type's comment).
    /// - Throws: ``BenchError`` when `only` names a model the suite does not have.
    /// - Parameter isas: the kernel paths to train on, each model once per path (a child with
    ///   `NEURITE_ISA` set), before the peers run once; nil trains on the path in use.
    static func run(epochs: Int, seed: UInt64, dataDirectory: String?, only: Set<String>?, limit: Int?,
                    python: String?, torchPython: String?, isas: [KernelISA]? = nil) throws {
        let known = models.map(\.name)
        if let only, !only.isSubset(of: known) {
            throw BenchError("training: no model \(only.subtracting(known).sorted().joined(separator: ", ")); "
                             + "the models are \(known.joined(separator: ", "))")
        }
        let paths = isas ?? [KernelISA.current]
        let threads = ThreadPool.shared.effectiveWidth
        let peaks = PeakBench.run(minSeconds: 0.3, threadCounts: Array(Set([1, threads])).sorted())
        // Each floor's peak: that path, all threads.
        var peakOf: [KernelISA: Double] = [:]
        for isa in paths {
            peakOf[isa] = peaks.first { $0.isa == isa && $0.threads == threads }?.gflops ?? .nan
        }
        let chosen = models.filter { only?.contains($0.name) ?? true }
        var ours: [KernelISA: [String: [String: Any]]] = [:]
        var flops: [String: Double] = [:]
        var directory = dataDirectory
        for isa in paths {
            let peak = peakOf[isa] ?? .nan
            for model in chosen {
                let forced = isas == nil ? nil : isa
                guard let line = runChild(model.name, epochs: epochs, seed: seed, dataDirectory: dataDirectory, limit: limit,
                                          isa: forced) else {
                    continue
                }
                // A child that did not take the path asked for (NEURITE_ISA falls back silently) would be
                // reported under the wrong name.
                guard line["isa"] as? String == isa.description else {
                    emit([("bench", "training"), ("impl", "neurite"), ("model", model.name),
                          ("failed", "asked for the \(isa) path, the child ran \(line["isa"] as? String ?? "an unknown one")")])
                    continue
                }
                let samples = line["samples"] as? Int ?? 60000
                let perEpoch = (try? flopsPerEpoch(model, samples: samples)) ?? nil
                let epochSeconds = line["epoch_s"] as? Double ?? .nan
                if directory == nil { directory = line["data"] as? String }
                var fields: [(String, Any)] = [("bench", "training"), ("impl", "neurite"), ("isa", isa.description),
                                               ("model", model.name), ("epochs", epochs), ("seed", seed), ("threads", threads),
                                               ("samples", samples), ("epoch_s", epochSeconds)]
                for key in ["test_accuracy", "test_mse", "test_pseudo_likelihood", "predict_one_ms"] {
                    if let value = line[key] as? Double { fields.append((key, value)) }
                }
                if let perEpoch {
                    flops[model.name] = perEpoch
                    fields += [("gflop_per_epoch", perEpoch / 1e9), ("peak_gflops", peak),
                               ("floor_s", perEpoch / 1e9 / peak), ("ratio_to_floor", epochSeconds / (perEpoch / 1e9 / peak))]
                }
                fields += [("peak_rss_mb", line["peak_rss_mb"] as? Double ?? .nan), ("dataset_mb", line["dataset_mb"] as? Double ?? .nan)]
                emit(fields)
                ours[isa, default: [:]][model.name] = line
            }
        }
        let names = chosen.map(\.name).filter { name in paths.contains { ours[$0]?[name] != nil } }
        guard !names.isEmpty else { return }
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        var peers: [String: [String: Double]] = [:]  // impl -> model -> epoch_s
        for (impl, script, interpreter, fallback) in [
            ("keras", "keras_training.py", python, home + "/.cache/neurite/keras-venv/bin/python"),
            ("torch", "torch_training.py", torchPython, home + "/.cache/neurite/torch-venv/bin/python"),
        ] {
            let models = names.filter { impl == "torch" || $0 != "rbm" }
            guard !models.isEmpty else { continue }
            for line in runPeer(impl: impl, script: script, interpreter: interpreter ?? fallback, models: models,
                                epochs: epochs, seed: seed, dataDirectory: directory, limit: limit) {
                if let name = line["model"] as? String, let seconds = line["epoch_s"] as? Double {
                    peers[impl, default: [:]][name] = seconds
                }
            }
        }
        for isa in paths {
            let peak = peakOf[isa] ?? .nan
            for name in names {
                guard let mine = ours[isa]?[name]?["epoch_s"] as? Double else { continue }
                let floor = flops[name].map { $0 / 1e9 / peak }
                var fields: [(String, Any)] = [("bench", "training"), ("compare", "summary"), ("isa", isa.description),
                                               ("model", name), ("neurite_s", mine)]
                var best = Double.infinity
                for impl in ["keras", "torch"] {
                    guard let theirs = peers[impl]?[name] else { continue }
                    best = min(best, theirs)
                    fields += [("\(impl)_s", theirs), ("neurite/\(impl)", mine / theirs)]
                    if let floor { fields.append(("\(impl)_ratio_to_floor", theirs / floor)) }
                }
                if best.isFinite { fields.append(("neurite/best_peer", mine / best)) }
                if let floor { fields += [("floor_s", floor), ("ratio_to_floor", mine / floor)] }
                if let rss = ours[isa]?[name]?["peak_rss_mb"] as? Double, let data = ours[isa]?[name]?["dataset_mb"] as? Double {
                    fields += [("peak_rss_mb", rss), ("dataset_mb", data), ("rss_over_data_mb", rss - data)]
                }
                emit(fields)
            }
        }
    }

    /// This executable, to start a child with.
    static var executablePath: String {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }

    /// Runs `neurite-bench training --only NAME` (with `NEURITE_THREADS=threads` and `NEURITE_ISA=isa` when given) and
    /// returns its JSON line, or prints why not.
    static func runChild(_ name: String, epochs: Int, seed: UInt64, dataDirectory: String?, limit: Int?,
                         threads: Int? = nil, isa: KernelISA? = nil) -> [String: Any]? {
        var arguments = ["training", "--only", name, "--epochs", "\(epochs)", "--seed", "\(seed)"]
        if let dataDirectory { arguments += ["--data", dataDirectory] }
        if let limit { arguments += ["--limit", "\(limit)"] }
        var environment: [String: String]?
        if threads != nil || isa != nil { environment = ProcessInfo.processInfo.environment }
        if let threads { environment?["NEURITE_THREADS"] = "\(threads)" }
        if let isa { environment?["NEURITE_ISA"] = isa.description }
        let (status, output) = runProcess(executablePath, arguments, environment: environment)
        let lines = output.split(separator: "\n").compactMap(parseJSON)
        guard status == 0, let line = lines.last(where: { $0["impl"] as? String == "neurite" }) else {
            emit([("bench", "training"), ("impl", "neurite"), ("model", name),
                  ("failed", "child exited with status \(status): \(output.suffix(400))")])
            return nil
        }
        return line
    }

    /// Runs a reference script and echoes its JSON lines; returns them parsed.
    static func runPeer(impl: String, script: String, interpreter: String, models: [String], epochs: Int, seed: UInt64,
                        dataDirectory: String?, limit: Int?) -> [[String: Any]] {
        guard FileManager.default.isExecutableFile(atPath: interpreter) else {
            let option = impl == "keras" ? "--python" : "--torch-python"
            emit([("bench", "training"), ("impl", impl), ("skipped", "no Python with \(impl) at \(interpreter); pass \(option) PATH")])
            return []
        }
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../reference/\(script)").standardized.path
        var arguments = [path, "--epochs", "\(epochs)", "--seed", "\(seed)", "--models", models.joined(separator: ",")]
        if let dataDirectory { arguments += ["--data", dataDirectory] }
        if let limit { arguments += ["--limit", "\(limit)"] }
        let (status, output) = runProcess(interpreter, arguments)
        var lines: [[String: Any]] = []
        for text in output.split(separator: "\n") {
            guard let line = parseJSON(text) else { continue }
            print(text)
            lines.append(line)
        }
        if status != 0 {
            emit([("bench", "training"), ("impl", impl), ("failed", "\(script) exited with status \(status): \(output.suffix(400))")])
        }
        return lines
    }

    static func parseJSON(_ text: Substring) -> [String: Any]? {
        guard text.hasPrefix("{"), let data = text.data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// Runs `executable` with `arguments` (standard error passes through) in `environment` (default:
    /// this process's) and returns its exit status and standard output.
    static func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { return (-1, "could not start \(executable): \(error)") }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    // MARK: - The child: one model

    /// Trains `name` in this process and prints its JSON line (`--only NAME`).
    static func runOne(_ name: String, epochs: Int, seed: UInt64, dataDirectory: String?, limit: Int?) throws {
        guard let model = models.first(where: { $0.name == name }) else {
            throw BenchError("training: no model \"\(name)\"; the models are \(models.map(\.name).joined(separator: ", "))")
        }
        let train = try FashionMNIST.load(.train, from: dataDirectory)
        let test = try FashionMNIST.load(.test, from: dataDirectory)
        // The data as loaded (Float32 images, Int labels), whatever --limit later uses of it.
        let datasetBytes = 4 * (train.images.count + test.images.count) + 8 * (train.count + test.count)
        let n = min(limit ?? train.count, train.count), nt = min(limit ?? test.count, test.count)
        let x = n == train.count ? train.images : train.images.slice(0..<n)
        let tx = nt == test.count ? test.images : test.images.slice(0..<nt)
        let y = Array(train.labels.prefix(n)), ty = Array(test.labels.prefix(nt))
        var fields: [(String, Any)] = [("bench", "training"), ("impl", "neurite"), ("isa", KernelISA.current.description),
                                       ("model", name), ("epochs", epochs), ("seed", seed),
                                       ("threads", ThreadPool.shared.effectiveWidth), ("samples", n), ("data", train.directory)]
        switch model.task {
        case .rbm:
            let rbm = RBM(visibleCount: rbmVisible, hiddenCount: rbmHidden, learningRate: rbmLearningRate, batchSize: rbmBatch,
                          method: .persistent(steps: 1), seed: seed)
            var seconds: [Double] = [], cpuSeconds: [Double] = []
            var cpuMark = processCPUSeconds()
            rbm.fit(x.reshaped([n, rbmVisible]), epochs: epochs) { _, s in
                seconds.append(s)
                let cpu = processCPUSeconds()
                cpuSeconds.append(cpu - cpuMark)
                cpuMark = cpu
            }
            fields += [("epoch_s", steadyEpochSeconds(seconds)), ("epoch_cpu_s", steadyEpochSeconds(cpuSeconds)),
                       ("test_pseudo_likelihood", rbm.meanPseudoLikelihood(tx.reshaped([nt, rbmVisible]), seed: seed))]
        case .classify, .reconstruct:
            let network = model.make!()
            let shape = [n] + model.inputShape, testShape = [nt] + model.inputShape
            let (input, testInput) = (x.reshaped(shape), tx.reshaped(testShape))
            let timer = EpochTimer(label: name, quiet: true), cpuTimer = EpochCPUTimer()
            if model.task == .classify {
                network.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
                try network.fit(x: input, y: y, epochs: epochs, batchSize: 128, seed: seed, callbacks: [timer, cpuTimer], verbose: 0)
                let accuracy = try network.evaluate(x: testInput, y: ty, batchSize: 1000)["accuracy"] ?? .nan
                fields += [("epoch_s", steadyEpochSeconds(timer.seconds)), ("epoch_cpu_s", steadyEpochSeconds(cpuTimer.seconds)),
                           ("test_accuracy", accuracy)]
            } else {
                network.compile(optimizer: Adam(learningRate: 1e-3), loss: MeanSquaredError())
                try network.fit(x: input, y: input, epochs: epochs, batchSize: 128, seed: seed, callbacks: [timer, cpuTimer], verbose: 0)
                let mse = meanSquaredError(try network.predict(testInput, batchSize: 1000), testInput)
                fields += [("epoch_s", steadyEpochSeconds(timer.seconds)), ("epoch_cpu_s", steadyEpochSeconds(cpuTimer.seconds)),
                           ("test_mse", mse)]
            }
            let one = testInput.slice(0..<1)
            for _ in 0..<20 { _ = try network.predict(one, batchSize: 1) }
            var times: [Double] = []
            for _ in 0..<200 {
                let t0 = now()
                _ = try network.predict(one, batchSize: 1)
                times.append(now() - t0)
            }
            fields.append(("predict_one_ms", median(times) * 1e3))
        }
        fields += [("peak_rss_mb", peakResidentMegabytes()), ("dataset_mb", Double(datasetBytes) / 1_048_576)]
        emit(fields)
    }

    /// The process's peak resident memory, in MiB (Linux reports `ru_maxrss` in KiB).
    static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Double(usage.ru_maxrss) / (1024 * 1024)
        #endif
    }
}

/// A benchmark's own error: bad options or a model it does not know.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension TrainingBench {
    /// The median of the epochs after the first (the first pays for page faults, packing buffers
    /// and the pool's warm-up); the one epoch when there is only one.
    static func steadyEpochSeconds(_ seconds: [Double]) -> Double {
        median(seconds.count > 1 ? Array(seconds.dropFirst()) : seconds)
    }
}
