// rebalance: oversampling a minority class. Cuts one or more classes of the training set to 1%
// (or to a count), then trains the same classifier without resampling and after random
// oversampling, SMOTE and RBM oversampling, and prints each one's minority recall and macro-F1
// on the untouched test set (or, with --split validation, on the last 10,000 training images, the
// classifier and samplers seeing only the first 50,000: the split on which the RBM variants were
// chosen). With --output it draws real and generated minority samples.
//
//   swift run -c release rebalance [--dataset fashion|mnist] [--data DIR] [--download] [--epochs N]
//       [--batch-size N] [--seed N] [--output DIR] [--json] [--minority 9] [--keep 100 | --fraction 0.01]
//       [--classifier linear|mlp] [--samplers none,random,smote,rbm] [--split test|validation]
//
// A sampler `rbm` is the recommended RBM variant (RBMVariant.recommended); `rbm-original` the
// first recipe; `rbm/key=value/...` any other (see RBMVariant.parse).
import ArgumentParser
import Foundation
import Layers
import Optimizers
import TensorCore
import Unsupervised
import _AppSupport

/// The classifier trained on each resampled set.
enum Classifier: String, ExpressibleByArgument, CaseIterable {
    /// Softmax regression: `Dense(10)` on the pixels, a logistic regression.
    case linear
    /// `Dense(128, relu)`, `Dense(10)`.
    case mlp
}

/// Where the classifiers are evaluated.
enum Split: String, ExpressibleByArgument, CaseIterable {
    /// Train on the (cut) 60,000 training images, evaluate on the test set.
    case test
    /// Train on the (cut) first 50,000 training images, evaluate on the last 10,000: for choosing
    /// a variant without looking at the test set.
    case validation
}

/// One resampling method's results.
struct SamplerRun: Encodable {
    var sampler: String
    var trainingSamples: Int
    var resampleSeconds: Double
    var trainSeconds: Double
    var minorityRecall: [String: Double]
    var macroF1: Double
    var accuracy: Double

    enum CodingKeys: String, CodingKey {
        case sampler, trainingSamples = "training_samples", resampleSeconds = "resample_seconds",
             trainSeconds = "train_seconds", minorityRecall = "minority_recall", macroF1 = "macro_f1", accuracy
    }
}

struct Rebalance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebalance",
        abstract: "Oversampling a minority class: none, random, SMOTE and RBM oversampling side by side.",
        discussion: """
            The minority classes keep their first --keep training images (or --fraction of them); the other \
            classes and the test set are untouched. Each sampler brings every class up to the largest one \
            (imbalanced-learn's "auto"); the classifier then trains with Adam 1e-3 for --epochs. RBM \
            oversampling trains an RBM on each minority class alone and draws new samples from it: `rbm` is the \
            recommended variant (\(RBMVariant.recommendedSpec)), `rbm-original` the first recipe (\(RBMVariant.originalSpec)), \
            and `rbm/key=value/...` any other, with keys \(RBMVariant.keysHelp). Variants were chosen with \
            --split validation (train on the first 50,000 training images, evaluate on the last 10,000), the test \
            set evaluated once at the end. With --output, minority-samples.png shows real samples (first row) and \
            each sampler's new ones (a row each, labelled with the sampler's name).
            """
    )

    @OptionGroup var options: DemoOptions

    @Option(help: "The classes to cut, comma-separated.")
    var minority: String = "9"

    @Option(help: "Training images kept per minority class (default: 1% of the class unless --fraction).")
    var keep: Int?

    @Option(help: "Fraction of each minority class kept, when --keep is not given.")
    var fraction: Double = 0.01

    @Option(help: "The classifier: linear (softmax regression) or mlp.")
    var classifier: Classifier = .linear

    @Option(help: "The samplers to compare, comma-separated: none, random, smote, rbm (the recommended RBM variant), rbm-original, rbm/key=value/... .")
    var samplers: String = "none,random,smote,rbm"

    @Option(help: "test: train on the training set, evaluate on the test set; validation: train on the first 50,000 training images, evaluate on the last 10,000.")
    var split: Split = .test

    func validate() throws {
        guard fraction > 0 && fraction <= 1 else { throw ValidationError("--fraction must be in (0, 1], got \(fraction).") }
        if let keep, keep < 2 { throw ValidationError("--keep must be at least 2 (SMOTE needs a neighbour), got \(keep).") }
    }

    func run() throws {
        try reportingFailures(of: "rebalance") {
            let minorityClasses = try minority.split(separator: ",").map { text -> Int in
                guard let c = Int(text.trimmingCharacters(in: .whitespaces)), (0..<10).contains(c) else {
                    throw DemoFailure("--minority: \"\(text)\" is not a class 0...9")
                }
                return c
            }
            let samplerNames = samplers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var variants: [String: RBMVariant] = [:]
            for name in samplerNames where !["none", "random", "smote"].contains(name) {
                guard name == "rbm" || name.hasPrefix("rbm-") || name.hasPrefix("rbm/") else {
                    throw DemoFailure("--samplers: unknown sampler \"\(name)\"; use none, random, smote, rbm, rbm-original or rbm/key=value/...")
                }
                variants[name] = try RBMVariant.parse(name)
            }
            let data = try DemoData(options)
            // The validation split: the first 50,000 training images train, the last 10,000 evaluate.
            let poolCount = split == .test ? data.train.count : Swift.min(50_000, data.train.count * 5 / 6)
            let allX = data.train.images.reshaped([data.train.count, 784])
            let x = allX.slice(0..<poolCount)
            let trainLabels = Array(data.train.labels.prefix(poolCount))
            let xt = split == .test ? data.test.images.reshaped([data.test.count, 784]) : allX.slice(poolCount..<data.train.count)
            let evaluationLabels = split == .test ? data.test.labels : Array(data.train.labels.suffix(from: poolCount))

            // Keep the first `keep` images of each minority class.
            var seen: [Int: Int] = [:]
            var kept: [Int] = []
            let classSize = Dictionary(grouping: trainLabels, by: { $0 }).mapValues(\.count)
            for (i, label) in trainLabels.enumerated() {
                if minorityClasses.contains(label) {
                    let limit = keep ?? Swift.max(2, Int((Double(classSize[label] ?? 0) * fraction).rounded()))
                    seen[label, default: 0] += 1
                    if seen[label]! > limit { continue }
                }
                kept.append(i)
            }
            let xi = x.gather(kept), yi = kept.map { trainLabels[$0] }
            let counts = Dictionary(grouping: yi, by: { $0 }).mapValues(\.count)
            if !options.json {
                print("\(data.dataset.displayName): \(yi.count) training images after cutting class"
                      + "\(minorityClasses.count > 1 ? "es" : "") \(minorityClasses.map(String.init).joined(separator: ", ")) to "
                      + minorityClasses.map { "\(counts[$0] ?? 0)" }.joined(separator: ", ")
                      + "; \(xt.shape[0]) \(split == .test ? "test" : "validation (the last training)") images; classifier \(classifier.rawValue), \(options.epochs) epochs, seed \(options.seed)")
            }

            func trainClassifier(_ x: Tensor, _ y: [Int]) throws -> Sequential {
                let model = classifier == .linear
                    ? Sequential(inputShape: [784]) { Dense(10) }
                    : Sequential(inputShape: [784]) { Dense(128, activation: .relu); Dense(10) }
                model.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy())
                try model.fit(x: x, y: y, epochs: options.epochs, batchSize: options.batchSize,
                              seed: options.seed, callbacks: terminalProgressBar(json: options.json).map { [$0] } ?? [],
                              verbose: 0)
                return model
            }
            // The classifier trained on the data as it is: the judge of the confidence filter.
            var plainClassifier: Sequential?

            var runs: [SamplerRun] = []
            var generated: [(String, Tensor)] = []
            for name in samplerNames {
                let clock = Stopwatch()
                let resampled: (x: Tensor, y: [Int])
                switch name {
                case "none": resampled = (xi, yi)
                case "random": resampled = try RandomOverSampler(seed: options.seed).fitResample(xi, yi)
                case "smote": resampled = try SMOTE(seed: options.seed).fitResample(xi, yi)
                default:
                    let variant = variants[name]!
                    if variant.confidenceFactor > 1 && plainClassifier == nil {
                        plainClassifier = try trainClassifier(xi, yi)
                    }
                    // The RBMs' products have 10 to 20 rows: faster on the calling thread alone.
                    resampled = try ThreadPool.withWidthLimit(1) {
                        try variant.fitResample(xi, yi, seed: options.seed, judge: plainClassifier)
                    }
                }
                let resampleSeconds = name == "none" ? 0 : clock.seconds
                if name != "none", let first = minorityClasses.first {
                    let new = (yi.count..<resampled.y.count).filter { resampled.y[$0] == first }.prefix(12)
                    generated.append((name, resampled.x.gather(Array(new)).reshaped([-1, 28, 28, 1])))
                }
                let trainClock = Stopwatch()
                let model = try trainClassifier(resampled.x, resampled.y)
                let trainSeconds = trainClock.seconds
                let predicted = try model.predict(xt, batchSize: 1000).argmax(alongAxis: 1)
                let confusion = ConfusionMatrix(predicted: predicted, actual: evaluationLabels, classes: 10)
                let run = SamplerRun(sampler: name, trainingSamples: resampled.y.count, resampleSeconds: resampleSeconds,
                                     trainSeconds: trainSeconds,
                                     minorityRecall: Dictionary(uniqueKeysWithValues: minorityClasses.map { ("\($0)", rounded(confusion.recall[$0], 4)) }),
                                     macroF1: rounded(confusion.macroF1, 4), accuracy: rounded(confusion.accuracy, 4))
                runs.append(run)
                if !options.json {
                    print(name.padding(toLength: 7, withPad: " ", startingAt: 0) + String(format: " %6d samples  resample %6.2f s  train %6.2f s  macro-F1 %.4f  accuracy %.4f  recall ",
                                 run.trainingSamples, resampleSeconds, trainSeconds, run.macroF1, run.accuracy)
                          + minorityClasses.map { String(format: "class %d %.4f", $0, confusion.recall[$0]) }.joined(separator: ", "))
                }
            }

            var files: [String] = []
            if let output = options.output, let first = minorityClasses.first {
                let path = try makeOutputDirectory(output) + "/minority-samples.png"
                let real = xi.gather(Array(yi.indices.filter { yi[$0] == first }.prefix(12))).reshaped([-1, 28, 28, 1])
                try writeImageRows([real] + generated.map(\.1), title: "minority class \(data.dataset.classNames[first]): real and generated",
                                   rowLabels: ["real"] + generated.map(\.0), to: path)
                files.append(path)
                if !options.json {
                    print("wrote \(path): real class-\(first) (\(data.dataset.classNames[first])) training images, then a row of new ones "
                          + "from each sampler: " + generated.map(\.0).joined(separator: ", "))
                }
            }
            if options.json {
                struct Report: Encodable {
                    var app = "rebalance"
                    var dataset: String, split: String, epochs: Int, batchSize: Int, seed: UInt64
                    var minorityClasses: [Int], minorityCounts: [Int], classifier: String
                    var runs: [SamplerRun], files: [String]
                    enum CodingKeys: String, CodingKey {
                        case app, dataset, split, epochs, batchSize = "batch_size", seed, minorityClasses = "minority_classes",
                             minorityCounts = "minority_counts", classifier, runs, files
                    }
                }
                try printJSONLine(Report(dataset: options.dataset.rawValue, split: split.rawValue, epochs: options.epochs, batchSize: options.batchSize,
                                         seed: options.seed, minorityClasses: minorityClasses,
                                         minorityCounts: minorityClasses.map { counts[$0] ?? 0 },
                                         classifier: classifier.rawValue, runs: runs, files: files))
            }
        }
    }
}

Rebalance.main()
