// text-generator: a character-level LSTM trained on a text file, then sampled with a temperature.
//
//   swift run -c release text-generator [--data FILE] [--epochs N] [--batch-size N] [--seed N]
//       [--output DIR] [--json] [--load DIR] [--temperature 0.5,1.0] [--length N] [--prime TEXT]
//       [--window N] [--units N]
//
// The default text is the GNU GPL version 3 (/usr/share/common-licenses/GPL-3, on every Debian
// system), so it runs offline. The model reads `--window` characters (token ids through an
// Embedding) and predicts the next: Embedding(V, 32), LSTM(--units), Dense(V), trained with Adam on
// softmax cross-entropy over windows taken every 3 characters. With --output the model is saved
// (its vocabulary as class names, the window in the metadata); --load DIR reloads such a model and
// only generates.
import ArgumentParser
import Datasets
import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import _AppSupport

struct TextGenerator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text-generator",
        abstract: "Train a character-level LSTM on a text file and generate text from it.")

    @Option(help: "The text file to learn from.")
    var data: String = "/usr/share/common-licenses/GPL-3"

    @Option(help: "Passes over the text's windows.")
    var epochs: Int = 10

    @Option(name: .customLong("batch-size"), help: "Windows per optimisation step.")
    var batchSize: Int = 128

    @Option(help: "The seed of the initial weights, the batch order and the sampling.")
    var seed: UInt64 = 1

    @Option(help: "A folder to save the trained model in (created if missing).")
    var output: String?

    @Flag(help: "Print only one JSON object with the results, on the last line.")
    var json = false

    @Option(help: "Reload a model saved with --output and only generate.")
    var load: String?

    @Option(help: "Sampling temperatures, comma-separated: low is cautious, high is adventurous.")
    var temperature: String = "0.5,1.0"

    @Option(help: "Characters to generate per temperature.")
    var length: Int = 300

    @Option(help: "Text to start from (default: a window of the training text, or spaces when loading).")
    var prime: String?

    @Option(help: "Characters the model reads to predict the next one.")
    var window: Int = 40

    @Option(help: "The LSTM's state size.")
    var units: Int = 128

    func validate() throws {
        guard epochs >= 0 else { throw ValidationError("--epochs must be at least 0, got \(epochs).") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
        guard window >= 2 else { throw ValidationError("--window must be at least 2, got \(window).") }
        guard units >= 1 else { throw ValidationError("--units must be at least 1, got \(units).") }
        guard length >= 0 else { throw ValidationError("--length must be at least 0, got \(length).") }
        guard !temperatures.isEmpty, temperatures.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--temperature needs positive numbers separated by commas, got \(temperature).")
        }
    }

    var temperatures: [Double] { temperature.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) } }

    struct Report: Encodable {
        var app = "text-generator"
        var text: String?
        var characters: Int?
        var vocabulary: Int
        var window: Int
        var units: Int?
        var epochs: Int
        var loss: [Double]
        var accuracy: [Double]
        var secondsPerEpoch: Double?
        var samples: [String: String]
        var files: [String]

        enum CodingKeys: String, CodingKey {
            case app, text, characters, vocabulary, window, units, epochs, loss, accuracy
            case secondsPerEpoch = "seconds_per_epoch", samples, files
        }
    }

    func run() throws {
        try reportingFailures(of: "text-generator") {
            var generator = SeededGenerator(seed: seed, stream: 99)
            let model: Sequential
            let vocabulary: Vocabulary
            let windowLength: Int
            var report: Report
            var corpus: [String] = []
            if let load {
                if load.hasSuffix(".keras") {
                    // A Keras archive holds the network but not the vocabulary and window this
                    // demo generates with; its --output folders hold all three.
                    throw DemoFailure("\(load): a .keras file holds no vocabulary or window, which text-generator needs; "
                                      + "load a folder written by --output (the network alone loads with KerasModel.load)")
                }
                RecurrentLayers.register()
                let saved: SavedModel
                do { saved = try Sequential.loadSaved(from: load) } catch { throw DemoFailure("cannot load \(load): \(error)") }
                guard let names = saved.classNames, names.allSatisfy({ $0.count == 1 }),
                      let w = saved.metadata["window"].flatMap(Int.init) else {
                    throw DemoFailure("\(load) does not hold a text-generator model (no vocabulary or window)")
                }
                model = saved.model
                do {
                    vocabulary = try Vocabulary(tokens: names, split: .characters, reservingSpecialTokens: false)
                } catch {
                    throw DemoFailure("\(load) holds no usable vocabulary: \(error)")
                }
                windowLength = w
                report = Report(vocabulary: vocabulary.count, window: w, epochs: 0, loss: [], accuracy: [], samples: [:], files: [])
                if !json { print("loaded \(load): \(vocabulary.count) characters, window \(w)") }
            } else {
                guard let text = try? String(contentsOfFile: data, encoding: .utf8) else {
                    throw DemoFailure("cannot read \(data) as UTF-8 text")
                }
                guard text.count > window + 1 else {
                    throw DemoFailure("\(data) has \(text.count) characters; it needs more than the window (\(window))")
                }
                // Characters as tokens, most frequent first; the output layer predicts one of them.
                vocabulary = try Vocabulary(fitting: [text], split: .characters, reservingSpecialTokens: false)
                corpus = vocabulary.tokenize(text)
                windowLength = window
                let tokens = try vocabulary.encode(text).map(Float.init)
                let starts = Array(stride(from: 0, to: tokens.count - window, by: 3))
                var x = [Float](), y = [Int]()
                x.reserveCapacity(starts.count * window)
                for s in starts {
                    x += tokens[s..<(s + window)]
                    y.append(Int(tokens[s + window]))
                }
                let inputs = Tensor(shape: [starts.count, window], scalars: x)
                let v = vocabulary.count
                model = Sequential(inputShape: [window]) {
                    Embedding(inputDim: v, outputDim: 32)
                    LSTM(units)
                    Dense(v)
                }
                model.compile(optimizer: Adam(learningRate: 3e-3, clipNorm: 5), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
                try model.build(seed: seed)
                if !json {
                    print("\(data): \(corpus.count) characters, \(v) distinct; \(starts.count) windows of \(window); "
                          + "Embedding(\(v), 32), LSTM(\(units)), Dense(\(v)); \(ThreadPool.shared.width) threads")
                }
                let timer = EpochTimer(label: "lstm", quiet: true)
                // The library's progress bar on a terminal, this demo's plain epoch lines otherwise.
                let bar = terminalProgressBar(json: json)
                let history = try model.fit(x: inputs, y: y, epochs: epochs, batchSize: batchSize, seed: seed,
                                            callbacks: [timer, EpochLine(timer: timer, quiet: json || bar != nil)]
                                                + (bar.map { [$0] } ?? []), verbose: 0)
                let seconds = timer.seconds.sorted()
                report = Report(text: data, characters: corpus.count, vocabulary: v, window: window, units: units, epochs: epochs,
                                loss: (history["loss"] ?? []).map { rounded($0, 4) },
                                accuracy: (history["accuracy"] ?? []).map { rounded($0, 4) },
                                secondsPerEpoch: seconds.isEmpty ? nil : rounded(seconds[seconds.count / 2], 3),
                                samples: [:], files: [])
            }
            if let output, load == nil {
                try model.save(to: output, classNames: vocabulary.tokens,
                               metadata: ["app": "text-generator", "window": String(windowLength), "text": data])
                report.files.append(output)
            }
            // The text to start from, as known characters.
            var start: [String]
            if let prime {
                start = vocabulary.tokenize(prime).filter { vocabulary.id(of: $0) != nil }
            } else if !corpus.isEmpty {
                let at = generator.nextIndex(below: corpus.count - windowLength)
                start = Array(corpus[at..<(at + windowLength)])
            } else {
                start = []
            }
            let pad = vocabulary.id(of: " ") != nil ? " " : vocabulary.tokens[0]
            for t in temperatures {
                let text = try sample(model: model, vocabulary: vocabulary, window: windowLength, start: start, pad: pad,
                                  temperature: t, generator: &generator)
                report.samples[String(t)] = text
                if !json {
                    print("\n--- temperature \(t) ---")
                    print(start.joined() + text)
                }
            }
            if json { try printJSONLine(report) } else { for f in report.files { print("wrote \(f)") } }
        }
    }

    /// `length` characters drawn one at a time from the model's softmax at `temperature`.
    func sample(model: Sequential, vocabulary: Vocabulary, window: Int, start: [String], pad: String,
                temperature: Double, generator: inout SeededGenerator) throws -> String {
        var context = (Array(repeating: pad, count: Swift.max(0, window - start.count)) + start).suffix(window)
            .map { vocabulary.id(of: $0)! }
        var out = ""
        for _ in 0..<length {
            let logits = try model.predict(Tensor(shape: [1, window], scalars: context.map(Float.init))).scalars
            let scaled = logits.map { Double($0) / temperature }
            let top = scaled.max() ?? 0
            let weights = scaled.map { Foundation.exp($0 - top) }
            var u = Double(generator.nextUnitFloat()) * weights.reduce(0, +)
            var choice = weights.count - 1
            for (i, w) in weights.enumerated() {
                u -= w
                if u <= 0 { choice = i; break }
            }
            out += vocabulary.tokens[choice]
            context.removeFirst()
            context.append(choice)
        }
        return out
    }
}

/// One line per epoch: loss, accuracy of the next character, and seconds (there is no test split).
final class EpochLine: Callback {
    let timer: EpochTimer
    let quiet: Bool
    init(timer: EpochTimer, quiet: Bool) {
        self.timer = timer
        self.quiet = quiet
    }

    func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
        guard !quiet else { return }
        print(String(format: "epoch %2d/%d  loss %.4f  accuracy %.4f  %6.2f s", epoch + 1, context.epochs,
                     logs["loss"] ?? .nan, logs["accuracy"] ?? .nan, timer.seconds.last ?? .nan))
    }
}

TextGenerator.main()
