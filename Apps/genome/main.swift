// genome: DNA with 1-D convolutions and an LSTM, on the lambda phage genome (48,502 bases, from
// Debian's bowtie2-examples), trained on its first 70% and tested on its last 20% (validation in
// between), against honest baselines:
//   1. next-base prediction: a Conv1D + LSTM reads the previous bases (one-hot) and gives the
//      next one's probabilities; scored in bits per base against the best k-th order Markov
//      model (k chosen on the validation region) fitted on the same training region;
//   2. real or shuffled: windows of the genome against the same windows with their bases shuffled
//      (which keeps their composition), told apart by a small CNN, against a logistic regression
//      on each window's 3-mer counts. Reverse complements double the training windows.
import ArgumentParser
import Datasets
import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import _AppSupport

struct TaskResult: Encodable {
    var task: String
    var metric: String
    var model: Double
    var baseline: Double
    var baselineName: String
    var winner: String
    var trainSamples: Int
    var testSamples: Int
    var epochs: Int
    var secondsPerEpoch: Double
}

struct Report: Encodable {
    var app = "genome"
    var bases: Int
    var regions: [String: [Int]]
    var results: [TaskResult]
}

struct Genome: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Learn the lambda phage genome with Conv1D and LSTM layers: next-base prediction against Markov models, real against shuffled windows against a k-mer logistic regression.")

    @Option(help: "A FASTA file (plain or gzip) with one genome; default: Debian bowtie2-examples' lambda phage.")
    var data = "/usr/share/doc/bowtie2/examples/reference/lambda_virus.fa.gz"

    @Option(help: "Epochs for each network (early stopping on the validation region keeps the best).")
    var epochs = 8

    @Option(help: "Bases the next-base model reads.")
    var context = 32

    @Option(help: "Bases per window in the real-or-shuffled task.")
    var window = 100

    @Option(help: "The seed of the initial weights, shuffles and batch order.")
    var seed: UInt64 = 1

    @Option(help: "A folder for the saved next-base model (next-base/), classifier (real-or-shuffled/) and next-base-surprise.png (bits per base along the test region, network against Markov model).")
    var output: String?

    @Flag(help: "Print only one JSON line with the results.")
    var json = false

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs).") }
        guard (4...512).contains(context) else { throw ValidationError("--context must be in 4...512, got \(context).") }
        guard (16...2000).contains(window) else { throw ValidationError("--window must be in 16...2000, got \(window).") }
    }

    func run() throws {
        try reportingFailures(of: "genome") {
            let records: [FASTARecord]
            do { records = try FASTA.read(contentsOf: data) } catch {
                throw DemoFailure("cannot read \(data): \(error)\ninstall bowtie2-examples (Tools/install-deps.sh) or pass --data FILE")
            }
            guard let genome = records.first else { throw DemoFailure("\(data) holds no sequence") }
            // A, C, G, T as 0...3; other letters (N, id 4) are dropped.
            let bases = FASTA.baseIDs(genome.sequence).filter { $0 < 4 }
            let n = bases.count
            guard n >= 20 * window else { throw DemoFailure("\(data) has \(n) bases; the demo needs at least \(20 * window)") }
            let trainEnd = n * 7 / 10, validationEnd = n * 8 / 10
            let regions = (train: 0..<trainEnd, validation: trainEnd..<validationEnd, test: validationEnd..<n)
            if !json {
                print("\(genome.name): \(n) bases; training on 0..<\(trainEnd), validation \(trainEnd)..<\(validationEnd), "
                      + "test \(validationEnd)..<\(n); \(ThreadPool.shared.width) threads")
            }
            let first = try nextBase(bases, regions)
            if !json { printResult(first) }
            let second = try realOrShuffled(bases, regions)
            if !json { printResult(second) }
            if json {
                try printJSONLine(Report(bases: n, regions: ["train": [0, trainEnd], "validation": [trainEnd, validationEnd],
                                                             "test": [validationEnd, n]], results: [first, second]))
            }
        }
    }

    /// One-hot windows `[count, length, 4]` of `bases` starting at `starts`.
    func oneHot(_ bases: [Int], starts: [Int], length: Int) -> Tensor {
        Tensor(shape: [starts.count, length, 4]) { out in
            out.initialize(repeating: 0)
            for (k, s) in starts.enumerated() {
                for t in 0..<length { out[(k * length + t) * 4 + bases[s + t]] = 1 }
            }
        }
    }

    // MARK: Task 1: next base

    func nextBase(_ bases: [Int], _ regions: (train: Range<Int>, validation: Range<Int>, test: Range<Int>)) throws -> TaskResult {
        let c = context
        // Window starting at s reads bases s..<s+c, all inside one region, and predicts base s+c.
        func starts(_ r: Range<Int>) -> [Int] { Array(r.lowerBound..<(r.upperBound - c)) }
        let train = starts(regions.train), validation = starts(regions.validation), test = starts(regions.test)
        let model = Sequential(inputShape: [c, 4]) {
            Conv1D(filters: 32, kernelSize: 5, padding: .causal, activation: .relu)
            LSTM(64)
            Dense(4)
        }
        model.compile(optimizer: Adam(learningRate: 2e-3), loss: SoftmaxCrossEntropy())
        let timer = EpochTimer(label: "next-base", quiet: true)
        let stopping = EarlyStopping(monitor: "val_loss", patience: 2, restoreBestWeights: true)
        try model.fit(x: oneHot(bases, starts: train, length: c), y: train.map { bases[$0 + c] }, epochs: epochs, batchSize: 128,
                      validationData: (oneHot(bases, starts: validation, length: c), validation.map { bases[$0 + c] }),
                      seed: seed, callbacks: [timer, stopping] + (terminalProgressBar(json: json).map { [$0] } ?? []), verbose: 0)
        let testLoss = try model.evaluate(x: oneHot(bases, starts: test, length: c), y: test.map { bases[$0 + c] }, batchSize: 512)["loss"]!
        let modelBits = testLoss / log(2)
        // Markov models of order 0...8 on the training region; the best on validation is scored on test.
        var best: (k: Int, validation: Double, test: Double, model: MarkovModel)?
        for k in 0...8 {
            let markov = MarkovModel(order: k, bases: Array(bases[regions.train]))
            let v = markov.bitsPerBase(bases, positions: validation.map { $0 + c })
            if best == nil || v < best!.validation {
                best = (k, v, markov.bitsPerBase(bases, positions: test.map { $0 + c }), markov)
            }
        }
        let baseline = best!
        if let output {
            let folder = try makeOutputDirectory(output)
            try model.save(to: folder + "/next-base", metadata: ["app": "genome", "context": "\(c)"])
            // The surprise of each base, -log2 p(base), along the first 2,000 test bases,
            // averaged over 50 bases: network (orange) against the Markov model (blue).
            let shown = Array(test.prefix(2000))
            let probabilities = try model.predict(oneHot(bases, starts: shown, length: c), batchSize: 512).softmax().scalars
            let network = shown.indices.map { -log2(Double(probabilities[$0 * 4 + bases[shown[$0] + c]])) }
            let markov = shown.map { baseline.model.bitsPerBase(bases, positions: [$0 + c]) }
            func smoothed(_ v: [Double]) -> [Double] {
                stride(from: 0, to: v.count - 49, by: 10).map { v[$0..<($0 + 50)].reduce(0, +) / 50 }
            }
            var canvas = PictureCanvas(height: 260, width: 920, background: (0.08, 0.08, 0.1))
            let curves = (smoothed(markov), smoothed(network))
            canvas.plot([(curves.0, (0.35, 0.55, 0.95)), (curves.1, (1.0, 0.55, 0.1))],
                        top: 10, left: 10, height: 240, width: 900, title: "bits per base along the test region",
                        names: ["order-\(baseline.k) Markov model", "Conv1D+LSTM"],
                        xRange: (25, 25 + 10 * Double(Swift.max(1, curves.0.count - 1))))
            try canvas.writePNG(to: folder + "/next-base-surprise.png")
            if !json { print("wrote \(folder)/next-base-surprise.png (bits per base along the test region: orange network, blue Markov)") }
        }
        return TaskResult(task: "next base", metric: "bits per base (lower is better)", model: rounded(modelBits, 4),
                          baseline: rounded(baseline.test, 4), baselineName: "order-\(baseline.k) Markov model",
                          winner: modelBits < baseline.test ? "Conv1D+LSTM" : "order-\(baseline.k) Markov model",
                          trainSamples: train.count, testSamples: test.count, epochs: timer.seconds.count,
                          secondsPerEpoch: rounded(timer.seconds.isEmpty ? 0 : median(timer.seconds), 3))
    }

    // MARK: Task 2: real or shuffled

    func realOrShuffled(_ bases: [Int], _ regions: (train: Range<Int>, validation: Range<Int>, test: Range<Int>)) throws -> TaskResult {
        let w = window
        var generator = SeededGenerator(seed: seed, stream: 7)
        // Windows every w/8 bases inside each region; each appears real (label 1) and shuffled (0).
        func samples(_ r: Range<Int>, reverseComplements: Bool) -> (windows: [[Int]], labels: [Int]) {
            var windows: [[Int]] = [], labels: [Int] = []
            for s in stride(from: r.lowerBound, through: r.upperBound - w, by: w / 8) {
                let real = Array(bases[s..<(s + w)])
                var shuffled = real
                shuffled.seededShuffle(using: &generator)
                windows += [real, shuffled]
                labels += [1, 0]
                if reverseComplements {
                    windows += [real.reversed().map { 3 - $0 }, shuffled.reversed().map { 3 - $0 }]
                    labels += [1, 0]
                }
            }
            return (windows, labels)
        }
        let train = samples(regions.train, reverseComplements: true)
        let validation = samples(regions.validation, reverseComplements: false)
        let test = samples(regions.test, reverseComplements: false)
        func encode(_ windows: [[Int]]) -> Tensor {
            oneHot(windows.flatMap { $0 }, starts: windows.indices.map { $0 * w }, length: w)
        }

        let model = Sequential(inputShape: [w, 4]) {
            Conv1D(filters: 64, kernelSize: 5, padding: .valid, activation: .relu)
            GlobalAveragePool1D()   // shuffles keep the composition, not the short words: average their detectors
            Dense(2)
        }
        model.compile(optimizer: Adam(learningRate: 2e-3), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        let timer = EpochTimer(label: "real-or-shuffled", quiet: true)
        let stopping = EarlyStopping(monitor: "val_loss", patience: 6, restoreBestWeights: true)
        try model.fit(x: encode(train.windows), y: train.labels, epochs: epochs * 3, batchSize: 64,
                      validationData: (encode(validation.windows), validation.labels), seed: seed,
                      callbacks: [timer, stopping] + (terminalProgressBar(json: json).map { [$0] } ?? []), verbose: 0)
        let accuracy = try model.evaluate(x: encode(test.windows), y: test.labels, batchSize: 512)["accuracy"]!
        if let output {
            try model.save(to: try makeOutputDirectory(output) + "/real-or-shuffled", classNames: ["shuffled", "real"],
                           metadata: ["app": "genome", "window": "\(w)"])
        }

        // Baseline: logistic regression on 3-mer frequencies (64 features), the same windows.
        func kmers(_ windows: [[Int]]) -> Tensor {
            Tensor(shape: [windows.count, 64]) { out in
                out.initialize(repeating: 0)
                for (k, window) in windows.enumerated() {
                    for t in 0..<(w - 2) { out[k * 64 + window[t] * 16 + window[t + 1] * 4 + window[t + 2]] += 1 }
                    for j in 0..<64 { out[k * 64 + j] *= 64 / Float(w - 2) }
                }
            }
        }
        let logistic = Sequential(inputShape: [64]) { Dense(2) }
        logistic.compile(optimizer: Adam(learningRate: 1e-2), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        try logistic.fit(x: kmers(train.windows), y: train.labels, epochs: 60, batchSize: 64,
                         validationData: (kmers(validation.windows), validation.labels), seed: seed,
                         callbacks: [EarlyStopping(monitor: "val_loss", patience: 5, restoreBestWeights: true)], verbose: 0)
        let baseline = try logistic.evaluate(x: kmers(test.windows), y: test.labels, batchSize: 512)["accuracy"]!
        return TaskResult(task: "real or shuffled", metric: "test accuracy (higher is better)", model: rounded(accuracy, 4),
                          baseline: rounded(baseline, 4), baselineName: "logistic regression on 3-mer counts",
                          winner: accuracy > baseline ? "CNN" : "logistic regression on 3-mer counts",
                          trainSamples: train.labels.count, testSamples: test.labels.count, epochs: timer.seconds.count,
                          secondsPerEpoch: rounded(timer.seconds.isEmpty ? 0 : median(timer.seconds), 3))
    }

    func printResult(_ r: TaskResult) {
        print("\(r.task): \(r.trainSamples) training samples, \(r.testSamples) test samples, \(r.epochs) epochs at "
              + String(format: "%.2f s", r.secondsPerEpoch))
        print(String(format: "  network %.4f, %@ %.4f (%@) => %@ wins", r.model, r.baselineName, r.baseline, r.metric, r.winner))
    }
}

/// A k-th order Markov model of DNA: the probability of each base given the `order` bases before
/// it, counted on a training sequence with add-one (Laplace) smoothing.
struct MarkovModel {
    let order: Int
    private var counts: [Double]

    init(order: Int, bases: [Int]) {
        self.order = order
        let contexts = 1 << (2 * order)
        counts = [Double](repeating: 1, count: contexts * 4)
        guard bases.count > order else { return }
        for i in order..<bases.count { counts[Self.context(bases, before: i, order: order) * 4 + bases[i]] += 1 }
    }

    static func context(_ bases: [Int], before i: Int, order: Int) -> Int {
        var c = 0
        for j in (i - order)..<i { c = c * 4 + bases[j] }
        return c
    }

    /// Mean of `-log2 p(base | context)` over `positions` (each at least `order` into `bases`).
    func bitsPerBase(_ bases: [Int], positions: [Int]) -> Double {
        var total = 0.0
        for i in positions {
            let c = Self.context(bases, before: i, order: order) * 4
            let sum = counts[c] + counts[c + 1] + counts[c + 2] + counts[c + 3]
            total -= log2(counts[c + bases[i]] / sum)
        }
        return total / Double(Swift.max(positions.count, 1))
    }
}

Genome.main()
