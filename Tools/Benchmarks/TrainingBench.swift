import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import _AppSupport

/// The `training` suite: the demo models trained on Fashion-MNIST as a user would train them
/// (`fit`, batch 128, Adam 1e-3, `--seed`, default 1), with seconds per epoch (median over the epochs, training
/// steps only), test accuracy, single-image prediction latency and the process's peak memory, one
/// JSON line per model. When a Python with Keras is found (`--python PATH`, else
/// `~/.cache/neurite/keras-venv/bin/python`), it then runs `Tools/reference/keras_training.py`
/// with the same settings and prints Keras' lines and the ratios side by side.
enum TrainingBench {
    /// The models, as `Apps/shallow-vs-deep` and `Apps/cnn` build them.
    static var models: [(name: String, make: () -> Sequential)] { LayersBench.models }

    static func run(epochs: Int, seed: UInt64, dataDirectory: String?, only: Set<String>?, python: String?) {
        let train: MNISTDataset, test: MNISTDataset
        do {
            train = try FashionMNIST.load(.train, from: dataDirectory)
            test = try FashionMNIST.load(.test, from: dataDirectory)
        } catch {
            print("training suite skipped: \(error)")
            return
        }
        var ours: [String: [String: Double]] = [:]
        for (name, make) in models where only?.contains(name) ?? true {
            let model = make()
            model.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
            let timer = EpochTimer(label: name, quiet: true)
            do {
                try model.fit(x: train.images, y: train.labels, epochs: epochs, batchSize: 128, seed: seed,
                              callbacks: [timer], verbose: 0)
                let accuracy = try model.evaluate(x: test.images, y: test.labels, batchSize: 1000)["accuracy"] ?? .nan
                let one = test.images.slice(0..<1)
                for _ in 0..<20 { _ = try model.predict(one, batchSize: 1) }
                var times: [Double] = []
                for _ in 0..<200 {
                    let t0 = now()
                    _ = try model.predict(one, batchSize: 1)
                    times.append(now() - t0)
                }
                let epoch = median(timer.seconds), predict = median(times) * 1e3
                ours[name] = ["epoch_s": epoch, "test_accuracy": accuracy, "predict_one_ms": predict]
                emit([("bench", "training"), ("impl", "neurite"), ("model", name), ("epochs", epochs), ("seed", seed),
                      ("threads", ThreadPool.shared.effectiveWidth), ("epoch_s", epoch), ("test_accuracy", accuracy),
                      ("predict_one_ms", predict), ("peak_rss_mb", peakResidentMegabytes())])
            } catch {
                print("training \(name) failed: \(error)")
            }
        }
        compareWithKeras(ours, epochs: epochs, seed: seed, dataDirectory: train.directory, python: python)
    }

    /// Runs the Keras script, echoes its lines and prints `neurite / keras` ratios per model.
    private static func compareWithKeras(_ ours: [String: [String: Double]], epochs: Int, seed: UInt64, dataDirectory: String,
                                         python: String?) {
        let defaultPython = FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/neurite/keras-venv/bin/python"
        let interpreter = python ?? defaultPython
        guard FileManager.default.isExecutableFile(atPath: interpreter) else {
            print("{\"bench\": \"training\", \"impl\": \"keras\", \"skipped\": \"no Python with Keras at \(interpreter); pass --python PATH\"}")
            return
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../reference/keras_training.py").standardized.path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: interpreter)
        process.arguments = [script, "--data", dataDirectory, "--epochs", "\(epochs)", "--seed", "\(seed)", "--models", ours.keys.sorted().joined(separator: ",")]
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch {
            print("{\"bench\": \"training\", \"impl\": \"keras\", \"skipped\": \"could not run \(interpreter): \(error)\"}")
            return
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        for line in output.split(separator: "\n") {
            print(line)
            guard let data = line.data(using: .utf8),
                  let keras = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let name = keras["model"] as? String, let mine = ours[name],
                  let kerasEpoch = keras["epoch_s"] as? Double, let kerasAccuracy = keras["test_accuracy"] as? Double,
                  let kerasPredict = keras["predict_one_ms"] as? Double else { continue }
            emit([("bench", "training"), ("compare", "neurite/keras"), ("model", name),
                  ("epoch_time_ratio", mine["epoch_s"]! / kerasEpoch),
                  ("accuracy_points", (mine["test_accuracy"]! - kerasAccuracy) * 100),
                  ("predict_time_ratio", mine["predict_one_ms"]! / kerasPredict)])
        }
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
