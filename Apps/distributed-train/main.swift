// distributed-train: one of the demo models trained data-parallel over MPI, on every rank of
// `mpirun -np N distributed-train ...`, in memory (Fashion-MNIST's IDX files) or streamed from an
// image folder (--data). Rank 0 reports; with --json it prints one summary line, the others nothing.
// The only demo that needs MPI, so the other demos never do.
import ArgumentParser
import Datasets
import DistributedTraining
import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import _AppSupport

enum DistributedModel: String, ExpressibleByArgument, CaseIterable {
    case shallow, deep, course, batchnorm, lstm

    func make() -> Sequential {
        switch self {
        case .shallow: DemoModels.shallowMLP()
        case .deep: DemoModels.deepMLP()
        case .course: DemoModels.courseCNN()
        case .batchnorm: DemoModels.batchNormCNN()
        case .lstm:
            Sequential(inputShape: [28, 28, 1]) {
                Reshape([28, 28])
                LSTM(128)
                Dense(10)
            }
        }
    }
}

struct Summary: Encodable {
    var model: String
    var ranks: Int
    var threadsPerRank: Int
    var batchPerRank: Int
    var globalBatch: Int
    var epochs: Int
    var source: String
    var epochSeconds: [Double]
    var secondsPerEpoch: Double
    var imagesPerSecond: Double
    var testAccuracy: Double
    var testLoss: Double
    var gradientMegabytesPerStep: Double
    var allreducesPerStep: Double
    var communicationShare: Double
    var baselineTestAccuracy: Double?
}

struct DistributedTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distributed-train",
        abstract: "Train a demo model data-parallel on the ranks of an MPI job (mpirun -np N distributed-train ...).",
        discussion: """
            Every rank trains on its own share of each epoch (a DistributedSampler over one seeded \
            permutation); gradients are summed across ranks in buckets after every step, batch \
            normalisation uses the global batch, and rank 0 prints the progress and the report. \
            The baseline is a softmax regression (Flatten, Dense 10) trained the same way.
            One machine:  mpirun -np 2 distributed-train --model batchnorm --epochs 2
            Several:      mpirun -np 8 --hostfile hosts distributed-train --model course --data /shared/fashion-png
            (as root add --allow-run-as-root; with more ranks than cores add --oversubscribe)
            """)

    @Option(help: "The model: \(DistributedModel.allCases.map(\.rawValue).joined(separator: ", ")).")
    var model: DistributedModel = .batchnorm

    @Option(help: "Passes over the training set.")
    var epochs: Int = 2

    @Option(name: .customLong("batch-size"), help: "Samples per step on each rank (default: 128 divided by the number of ranks, so the global batch stays 128).")
    var batchSize: Int?

    @Option(help: "The seed of the initial weights and of every epoch's order (the same on every rank).")
    var seed: UInt64 = 1

    @Option(name: .customLong("learning-rate"), help: "Adam's learning rate.")
    var learningRate: Double = 1e-3

    @Option(help: "An image folder (one sub-folder of 28x28 images per class, as `neurite-data export` writes) to stream the training images from; default: Fashion-MNIST's IDX files in memory.")
    var data: String?

    @Option(help: "The folder of the Fashion-MNIST IDX files (the test set, and the training set without --data); default: the loader's search path.")
    var idx: String?

    @Option(help: "Batches each rank decodes ahead on a background thread when streaming.")
    var prefetch: Int = 4

    @Option(help: "Background threads that decode batches when streaming.")
    var workers: Int = 1

    @Option(help: "A folder for the trained model (written by rank 0, atomically file by file).")
    var output: String?

    @Flag(help: "Print only one JSON line with the results (rank 0; the other ranks print nothing).")
    var json = false

    @Flag(name: .customLong("no-baseline"), help: "Skip the softmax-regression baseline.")
    var noBaseline = false

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs).") }
        if let batchSize, batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        guard prefetch >= 0 else { throw ValidationError("--prefetch must be at least 0, got \(prefetch).") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1, got \(workers).") }
    }

    func run() throws {
        let options = self
        Communicator.run { world in try options.train(world) }
    }

    func train(_ world: Communicator) throws {
        let chief = world.rank == 0
        let strategy = DataParallel(world)
        let batch = batchSize ?? Swift.max(1, 128 / world.size)
        let test: MNISTDataset
        do {
            test = try FashionMNIST.load(.test, from: idx)
        } catch {
            throw DemoFailure("cannot load the Fashion-MNIST test set: \(error)\ninstall it with Tools/install-deps.sh, or pass --idx DIR")
        }
        let testLoader = DataLoader(TensorDataset(x: test.images, y: test.labels), batchSize: 500, shuffle: false,
                                    sampler: try strategy.sampler(count: test.count, shuffle: false, padded: false))

        // The training data: this rank's share, streamed from the folder or gathered from memory.
        let source: any BatchSource
        let sourceName: String
        if let data {
            let folder = try ImageFolder(directory: data, imageSize: (28, 28), channels: 1)
            source = DataLoader(folder, batchSize: batch, seed: seed, sampler: try strategy.sampler(count: folder.count),
                                prefetch: prefetch, workers: workers)
            sourceName = "image folder \(data) (\(folder.count) images)"
        } else {
            let train: MNISTDataset
            do {
                train = try FashionMNIST.load(.train, from: idx)
            } catch {
                throw DemoFailure("cannot load the Fashion-MNIST training set: \(error)\ninstall it with Tools/install-deps.sh, or pass --idx DIR")
            }
            source = DataLoader(TensorDataset(x: train.images, y: train.labels), batchSize: batch, seed: seed,
                                sampler: try strategy.sampler(count: train.count))
            sourceName = "Fashion-MNIST in memory (\(train.count) images)"
        }

        func fit(_ network: Sequential, label: String, quiet: Bool) throws -> (timer: EpochTimer, test: [String: Double]) {
            network.compile(optimizer: Adam(learningRate: Float(learningRate)), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
            // Rank 0 only: the library's progress bar on a terminal, plain epoch lines otherwise.
            let bar = chief ? terminalProgressBar(json: quiet) : nil
            let timer = EpochTimer(label: label, quiet: quiet || !chief || bar != nil)
            try network.fit(source, epochs: epochs, validationData: testLoader, seed: seed,
                            callbacks: [timer] + (bar.map { [$0] } ?? []), verbose: 0,
                            strategy: strategy)
            return (timer, try network.evaluate(testLoader, strategy: strategy))
        }

        if chief && !json {
            print("distributed-train: \(model.rawValue) on \(world.size) rank(s) x \(ThreadPool.shared.width) thread(s), "
                  + "batch \(batch) per rank (\(batch * world.size) in all), \(sourceName)")
        }
        let network = model.make()
        let before = (strategy.gradientAllreduces, strategy.gradientBytes, strategy.communicationSeconds)
        let (timer, result) = try fit(network, label: model.rawValue, quiet: json)
        let steps = Double(source.batchesPerEpoch * epochs)
        let allreduces = Double(strategy.gradientAllreduces - before.0) / steps
        let megabytes = Double(strategy.gradientBytes - before.1) / steps / 1_048_576
        let communication = strategy.communicationSeconds - before.2
        if let output, chief {
            try makeOutputDirectory(output)
            try network.save(to: output, classNames: FashionMNIST.classNames)
        }
        var baseline: [String: Double]?
        if !noBaseline {
            let linear = Sequential(inputShape: [28, 28, 1]) { Flatten(); Dense(10) }
            baseline = try fit(linear, label: "softmax regression", quiet: true).test
        }

        guard chief else { return }
        let perEpoch = median(timer.seconds)
        let samples = Double(source.samplesPerEpoch * world.size)
        let summary = Summary(
            model: model.rawValue, ranks: world.size, threadsPerRank: ThreadPool.shared.width, batchPerRank: batch,
            globalBatch: batch * world.size, epochs: epochs, source: data == nil ? "memory" : "image-folder",
            epochSeconds: timer.seconds.map { rounded($0, 3) }, secondsPerEpoch: rounded(perEpoch, 3),
            imagesPerSecond: rounded(samples / perEpoch, 1), testAccuracy: rounded(result["accuracy"] ?? 0, 4),
            testLoss: rounded(result["loss"] ?? 0, 4), gradientMegabytesPerStep: rounded(megabytes, 3),
            allreducesPerStep: rounded(allreduces, 2),
            communicationShare: rounded(communication / Swift.max(timer.seconds.reduce(0, +), 1e-9), 3), baselineTestAccuracy: baseline.map { rounded($0["accuracy"] ?? 0, 4) })
        if json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            return
        }
        print(String(format: "%@: test accuracy %.4f, %.2f s per epoch (median), %.0f images/s over %d rank(s); "
                     + "%.2f MB of gradients in %.1f all-reduce(s) per step; %.1f%% of the time in collectives",
                     model.rawValue, summary.testAccuracy, perEpoch, summary.imagesPerSecond, world.size, megabytes, allreduces,
                     100 * summary.communicationShare))
        if let accuracy = summary.baselineTestAccuracy {
            let verdict = summary.testAccuracy > accuracy ? "\(model.rawValue) wins" : "the baseline wins"
            print(String(format: "baseline, softmax regression trained the same way: test accuracy %.4f; %@", accuracy, verdict))
        }
        if let output { print("model saved to \(output)") }
    }
}

DistributedTrain.main()
