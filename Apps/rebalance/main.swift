// rebalance: oversampling a minority class. Holds out a validation split of the training images
// (--validation N, 5,000 by default; the classifier demos' split), cuts one or more classes of the
// rest to 1% (or to a count), then trains the same classifier without resampling and after random
// oversampling, SMOTE and RBM oversampling, and prints each one's minority recall and macro-F1 on
// the validation split (what variants are chosen on) and, once after training, on the untouched
// test set. With --output it draws real and generated minority samples.
//
//   swift run -c release rebalance [--dataset fashion|mnist] [--data DIR] [--download] [--epochs N]
//       [--batch-size N] [--seed N] [--output DIR] [--json] [--minority 9] [--keep 100 | --fraction 0.01]
//       [--classifier linear|mlp] [--samplers none,random,smote,rbm] [--validation N]
//
// A sampler `rbm` is the recommended RBM variant (RBMVariant.recommended); `rbm-original` the
// first recipe; `rbm/key=value/...` any other (see RBMVariant.parse). The deprecated
// `--split test|validation` still parses (see ValidationOptions).
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

/// A classifier's figures on one evaluation set.
struct Scores {
    var minorityRecall: [String: Double]
    var macroF1: Double
    var accuracy: Double
}

/// One resampling method's results: on the validation split (absent with `--validation 0`) and,
/// once after training, on the test set.
struct SamplerRun: Encodable {
    var sampler: String
    var trainingSamples: Int
    var resampleSeconds: Double
    var trainSeconds: Double
    var validation: Scores?
    var test: Scores

    enum CodingKeys: String, CodingKey {
        case sampler, trainingSamples = "training_samples", resampleSeconds = "resample_seconds", trainSeconds = "train_seconds"
        case validationMinorityRecall = "validation_minority_recall", validationMacroF1 = "validation_macro_f1"
        case validationAccuracy = "validation_accuracy"
        case testMinorityRecall = "test_minority_recall", testMacroF1 = "test_macro_f1", testAccuracy = "test_accuracy"
    }

    /// Flat snake-case keys, `validation_` and `test_` before each figure, as the classifier demos'
    /// `validation_accuracy` and `test_accuracy`; no `validation_` keys without a validation split.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sampler, forKey: .sampler)
        try c.encode(trainingSamples, forKey: .trainingSamples)
        try c.encode(resampleSeconds, forKey: .resampleSeconds)
        try c.encode(trainSeconds, forKey: .trainSeconds)
        try c.encodeIfPresent(validation?.minorityRecall, forKey: .validationMinorityRecall)
        try c.encodeIfPresent(validation?.macroF1, forKey: .validationMacroF1)
        try c.encodeIfPresent(validation?.accuracy, forKey: .validationAccuracy)
        try c.encode(test.minorityRecall, forKey: .testMinorityRecall)
        try c.encode(test.macroF1, forKey: .testMacroF1)
        try c.encode(test.accuracy, forKey: .testAccuracy)
    }
}

struct Rebalance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebalance",
        abstract: "Oversampling a minority class: none, random, SMOTE and RBM oversampling side by side.",
        discussion: """
            The minority classes keep their first --keep training images (or --fraction of them); the other \
            classes, the validation split and the test set are untouched. Each sampler brings every class up to the largest one \
            (imbalanced-learn's "auto"); the classifier then trains with Adam 1e-3 for --epochs. RBM \
            oversampling trains an RBM on each minority class alone and draws new samples from it: `rbm` is the \
            recommended variant (\(RBMVariant.recommendedSpec)), `rbm-original` the first recipe (\(RBMVariant.originalSpec)), \
            and `rbm/key=value/...` any other, with keys \(RBMVariant.keysHelp). The classifiers train on the \
            training images less the --validation split, which is cut neither, and are scored there (choose \
            variants on these figures) and once, after training, on the test set. The variants were chosen on \
            the deprecated --split validation (fit on the first 50,000 training images, score on the last \
            10,000). With --output, minority-samples.png shows real samples (first row) and \
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

    @OptionGroup var selection: ValidationOptions

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
            let split = try selection.split(of: data, program: "rebalance")
            let x = split.train.images.reshaped([split.train.count, 784])
            let trainLabels = split.train.labels
            let validationSet = split.validation.map { (x: $0.images.reshaped([$0.count, 784]), y: $0.labels) }

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
                print("\(data.dataset.displayName): \(grouped(yi.count)) training images after cutting class"
                      + "\(minorityClasses.count > 1 ? "es" : "") \(minorityClasses.map(String.init).joined(separator: ", ")) to "
                      + minorityClasses.map { "\(counts[$0] ?? 0)" }.joined(separator: ", ")
                      + " (of \(grouped(split.train.count)); \(split.summary)); classifier \(classifier.rawValue), "
                      + "\(options.epochs) epochs, seed \(options.seed)")
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

            func scores(_ model: Sequential, _ x: Tensor, _ labels: [Int]) throws -> Scores {
                let predicted = try model.predict(x, batchSize: 1000).argmax(alongAxis: 1)
                let confusion = ConfusionMatrix(predicted: predicted, actual: labels, classes: 10)
                return Scores(minorityRecall: Dictionary(uniqueKeysWithValues: minorityClasses.map { ("\($0)", rounded(confusion.recall[$0], 4)) }),
                              macroF1: rounded(confusion.macroF1, 4), accuracy: rounded(confusion.accuracy, 4))
            }
            func figures(_ scores: Scores) -> String {
                String(format: "macro-F1 %.4f  accuracy %.4f  recall ", scores.macroF1, scores.accuracy)
                    + minorityClasses.map { String(format: "class %d %.4f", $0, scores.minorityRecall["\($0)"] ?? .nan) }.joined(separator: ", ")
            }

            // Sampler names in a column as wide as the longest (`rbm-original`, `rbm/...` included).
            let nameWidth = Swift.max(7, samplerNames.map(\.count).max() ?? 0)
            var trained: [(name: String, model: Sequential, samples: Int, resampleSeconds: Double, trainSeconds: Double, validation: Scores?)] = []
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
                let validation = try validationSet.map { try scores(model, $0.x, $0.y) }
                trained.append((name, model, resampled.y.count, resampleSeconds, trainSeconds, validation))
                if !options.json {
                    print(name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                          + String(format: " %6d samples  resample %6.2f s  train %6.2f s", resampled.y.count, resampleSeconds, trainSeconds)
                          + (validation.map { "  validation " + figures($0) } ?? ""))
                }
            }
            // The test set, once, after every classifier has trained.
            let testX = data.test.images.reshaped([data.test.count, 784])
            var runs: [SamplerRun] = []
            if !options.json { print("test set (\(grouped(data.test.count)) images), evaluated once after training:") }
            for entry in trained {
                let test = try scores(entry.model, testX, data.test.labels)
                runs.append(SamplerRun(sampler: entry.name, trainingSamples: entry.samples, resampleSeconds: entry.resampleSeconds,
                                       trainSeconds: entry.trainSeconds, validation: entry.validation, test: test))
                if !options.json { print(entry.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + " test " + figures(test)) }
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
                    var dataset: String, epochs: Int, batchSize: Int, seed: UInt64
                    var trainingImages: Int, validationImages: Int, testImages: Int
                    var minorityClasses: [Int], minorityCounts: [Int], classifier: String
                    var runs: [SamplerRun], files: [String]
                    enum CodingKeys: String, CodingKey {
                        case app, dataset, epochs, batchSize = "batch_size", seed, trainingImages = "training_images",
                             validationImages = "validation_images", testImages = "test_images", minorityClasses = "minority_classes",
                             minorityCounts = "minority_counts", classifier, runs, files
                    }
                }
                try printJSONLine(Report(dataset: options.dataset.rawValue, epochs: options.epochs, batchSize: options.batchSize,
                                         seed: options.seed, trainingImages: split.train.count,
                                         validationImages: split.validation?.count ?? 0, testImages: data.test.count,
                                         minorityClasses: minorityClasses,
                                         minorityCounts: minorityClasses.map { counts[$0] ?? 0 },
                                         classifier: classifier.rawValue, runs: runs, files: files))
            }
        }
    }
}

Rebalance.main()
