// cnn: convolutional networks on Fashion-MNIST (or MNIST) with the Layers module: the course's
// small CNN and a stronger one with batch normalisation and dropout. For each it prints the test
// accuracy, the seconds per epoch and the confusion matrix, and with --output it draws the test
// images it got wrong.
//
//   swift run -c release cnn [--dataset fashion|mnist] [--data DIR] [--epochs N] [--batch-size N]
//       [--seed N] [--output DIR] [--json] [--model course|batchnorm|both] [--classify IMAGE ...]
//   swift run -c release cnn --load DIR|FILE.keras --classify IMAGE [IMAGE ...]
//
// With --output each trained model is saved to <output>/<name>-model (safetensors weights and a
// JSON architecture) and to <output>/<name>.keras (Keras 3's format); --load reads such a folder
// or any Keras 3 .keras file of a Sequential model back and classifies PNG or JPEG files with it.
import ArgumentParser
import Datasets
import Foundation
import KerasInterop
import Layers
import TensorCore
import _AppSupport

/// Which of the networks to train: `both` is the two demo models, course and batchnorm.
enum CNNChoice: String, ExpressibleByArgument, CaseIterable {
    case course, batchnorm, both, wide, large
}

/// A fixed training recipe that replaces the model and training options.
enum CNNRecipe: String, ExpressibleByArgument, CaseIterable {
    /// The best model found within 10 minutes of wall time on a 2-core machine (see README).
    case best

    /// The recipe's epochs (fixed, so that a seed reproduces a run), chosen so that training fits
    /// in 10 minutes on 2 cores of an AMD EPYC with AVX-512.
    static let bestEpochs = 20

    /// Sets `options` and `training` to the recipe's settings for `options.dataset` and returns
    /// the network to train; the data set, data folder, seed, validation split, output folder
    /// and `--json` stay the caller's. Fashion-MNIST: the `large` network, shifts of up to 1 pixel
    /// and mirroring, evaluated with mirror averaging. MNIST: the `wide` network, shifts of up to
    /// 2 pixels (digits are not mirrored).
    func apply(to options: inout DemoOptions, _ training: inout TrainingOptions) -> CNNChoice {
        options.epochs = Self.bestEpochs
        options.batchSize = 128
        training.learningRate = 2e-3
        training.schedule = .cosine
        training.warmupEpochs = 1
        training.augment = true
        training.erase = 0
        training.labelSmoothing = 0.1
        training.weightDecay = 0
        training.ema = 0.999
        switch options.dataset {
        case .fashion:
            training.shift = 1
            training.tta = true
            return .large
        case .mnist:
            training.shift = 2
            training.tta = false
            return .wide
        }
    }
}

struct CNN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cnn",
        abstract: "Train convolutional networks on Fashion-MNIST: the course CNN and one with batch normalisation.",
        discussion: """
            course: Conv2D 16 5x5 relu, MaxPool 2, Conv2D 8 2x2 relu, MaxPool 2, Flatten, Dense 100 relu, Dense 10. \
            batchnorm: Conv2D 32 3x3, BatchNormalization, relu, MaxPool 2, Conv2D 64 3x3, BatchNormalization, relu, \
            MaxPool 2, Flatten, Dense 128 relu, Dropout 0.3, Dense 10. Both train with Adam (learning rate 1e-3) on \
            softmax cross-entropy. With --output, each model's history goes to <name>-history.csv, a picture of \
            misclassified test images to <name>-misclassified.png, and the trained model to <name>-model/ \
            (model.safetensors and model.json) and to <name>.keras (a Keras 3 archive). --classify FILE classifies PNG \
            or JPEG images with the model just trained, or, with --load DIR or --load FILE.keras, with a saved one \
            (no training). Images are read as grayscale, resized to \
            28x28 and inverted when their border is light (the data sets are light on dark).
            """
    )

    @OptionGroup var options: DemoOptions

    @OptionGroup var training: TrainingOptions

    @Option(help: "Which network to train: course, batchnorm, both (those two), wide (the --recipe best network) or large (same padding, 32-64-128 channels).")
    var model: CNNChoice = .both

    @Option(help: """
        best: train the best CNN found within 10 minutes on 2 cores and print its test accuracy: \(CNNRecipe.bestEpochs) \
        epochs, batch 128, Adam 2e-3 with 1 warm-up epoch and cosine decay, label smoothing 0.1, weight EMA 0.999; \
        for Fashion-MNIST the large network with shifts of up to 1 pixel and mirroring, evaluated with mirror \
        averaging (--tta); for MNIST the wide network with shifts of up to 2 pixels. It replaces --model, --epochs, \
        --batch-size and the training options; --dataset, --data, --seed, --validation, --output and --json still apply.
        """)
    var recipe: CNNRecipe?

    @Option(help: """
        A model folder written by --output (<name>-model), or a Keras 3 .keras file (from Keras' model.save or \
        --output's <name>.keras): classify the --classify images with it, without training.
        """)
    var load: String?

    @Option(parsing: .upToNextOption, help: "PNG or JPEG images to classify with the trained (or --load) model.")
    var classify: [String] = []

    func validate() throws {
        if load != nil && classify.isEmpty { throw ValidationError("--load needs images to classify: add --classify FILE.") }
    }

    func run() throws {
        try reportingFailures(of: "cnn") {
            if let load {
                let model: Sequential
                var names = options.dataset.classNames
                if load.hasSuffix(".keras") {
                    // A Keras 3 archive holds no class names: the data set's are used.
                    model = try KerasModel.load(from: load)
                } else {
                    let saved = try Sequential.loadSaved(from: load)
                    model = saved.model
                    names = saved.classNames ?? names
                }
                let results = try classify.map { try classifyImage($0, with: model, classNames: names) }
                if options.json {
                    try printJSONLine(ClassifyReport(app: "cnn", model: load, images: results))
                } else {
                    print("model \(load): \(model.layers.count) layers, \(model.parameters.reduce(0) { $0 + $1.value.count }) parameters")
                    for result in results { print(result.line) }
                }
                return
            }
            var options = self.options, training = self.training, model = self.model
            if let recipe {
                model = recipe.apply(to: &options, &training)
            }
            let data = try DemoData(options)
            if !options.json { print(runHeader(data, options: options, training: training)) }
            var models: [(name: String, architecture: String, model: Sequential)] = []
            if model == .wide {
                models.append(("wide", "Conv 32 3x3 + BN + relu, pool, Conv 64 3x3 + BN + relu, Conv 64 3x3 + BN + relu, "
                               + "pool, Dense 256 relu, Dropout 0.3, Dense 10", DemoModels.wideCNN()))
            }
            if model == .large {
                models.append(("large", "Conv 32 3x3 same + BN + relu, pool, Conv 64 3x3 same + BN + relu, pool, "
                               + "Conv 128 3x3 same + BN + relu, pool, Dense 256 relu, Dropout 0.3, Dense 10",
                               DemoModels.largeCNN()))
            }
            if model == .course || model == .both {
                models.append(("course", "Conv 16 5x5 relu, pool, Conv 8 2x2 relu, pool, Dense 100 relu, Dense 10",
                               DemoModels.courseCNN()))
            }
            if model == .batchnorm || model == .both {
                models.append(("batchnorm", "Conv 32 3x3 + BN + relu, pool, Conv 64 3x3 + BN + relu, pool, "
                               + "Dense 128 relu, Dropout 0.3, Dense 10", DemoModels.batchNormCNN()))
            }

            var runs: [ModelRun] = []
            var matrices: [String: [[Int]]] = [:]
            var files: [String] = []
            for entry in models {
                if !options.json { print("") }
                let run = try trainAndEvaluate(entry.model, name: entry.name, architecture: entry.architecture,
                                               data: data, options: options, training: training)
                runs.append(run)
                let predicted = try entry.model.predict(data.test.images, batchSize: 1000).argmax(alongAxis: 1)
                let confusion = ConfusionMatrix(predicted: predicted, actual: data.test.labels, classes: 10)
                matrices[entry.name] = confusion.counts
                if !options.json {
                    let validation = run.validationAccuracy.map { String(format: "validation accuracy %.4f, ", $0) } ?? ""
                    let single = run.singleViewAccuracy.map {
                        String(format: " with mirror averaging (each image alone: %@test %.4f)",
                               $0.validation.map { String(format: "validation %.4f, ", $0) } ?? "", $0.test)
                    } ?? ""
                    print(String(format: "%@: %@test accuracy %.4f%@ (evaluated once, after training), %.2f s per epoch "
                                 + "(median, training steps only)", entry.name, validation, run.testAccuracy, single,
                                 run.medianEpochSeconds))
                    print(confusionTable(confusion, classNames: data.dataset.classNames))
                }
                if let output = options.output {
                    files.append("\(output)/\(entry.name)-history.csv")
                    let path = try makeOutputDirectory(output) + "/\(entry.name)-misclassified.png"
                    let shown = try writeMisclassified(images: data.test.images, labels: data.test.labels,
                                                       predicted: predicted, classNames: data.dataset.classNames, to: path)
                    files.append(path)
                    if !options.json {
                        print("wrote \(path): \(shown) misclassified test images; under each, the predicted class "
                              + "(red) and the true one (green)")
                    }
                }
                if let output = options.output {
                    let folder = try makeOutputDirectory(output) + "/\(entry.name)-model"
                    try entry.model.save(to: folder, classNames: data.dataset.classNames,
                                         metadata: ["dataset": data.dataset.displayName,
                                                    "test_accuracy": String(format: "%.4f", confusion.accuracy)])
                    files.append(folder)
                    let kerasFile = try makeOutputDirectory(output) + "/\(entry.name).keras"
                    try KerasModel.save(entry.model, to: kerasFile)
                    files.append(kerasFile)
                    if !options.json {
                        print("saved \(folder) (model.safetensors, model.json) and \(kerasFile) (Keras 3: "
                              + "keras.models.load_model reads it); classify with: cnn --load \(folder) --classify IMAGE")
                    }
                }
                if !classify.isEmpty && !options.json {
                    for path in classify {
                        print(try classifyImage(path, with: entry.model, classNames: data.dataset.classNames).line)
                    }
                }
            }

            if options.json {
                try printJSONLine(DemoReport(app: "cnn", options: options, models: runs, confusionMatrices: matrices,
                                             files: files, recipe: recipe?.rawValue, training: trainingRecipeWords(training)))
                return
            }
            print("")
            print(sideBySide(columns: runs.map(\.name), rows: [
                ("parameters", runs.map { grouped($0.parameters) }),
                ("seconds per epoch", runs.map { String(format: "%.2f", $0.medianEpochSeconds) }),
                ("train accuracy", runs.map { String(format: "%.4f", $0.trainAccuracy) }),
                ("validation accuracy", runs.map { $0.validationAccuracy.map { String(format: "%.4f", $0) } ?? "-" }),
                ("test accuracy", runs.map { String(format: "%.4f", $0.testAccuracy) }),
            ]))
            print("(seconds per epoch: median over \(options.epochs) epoch\(options.epochs == 1 ? "" : "s"), training steps only)")
            if !classLegend(data.dataset.classNames).isEmpty { print(classLegend(data.dataset.classNames)) }
        }
    }
}

/// The confusion matrix with class indices as column heads and `index name` as row heads
/// (rows: true class, columns: predicted class).
func confusionTable(_ matrix: ConfusionMatrix, classNames: [String]) -> String {
    let width = max(4, (matrix.counts.flatMap { $0 }.map { String($0).count }.max() ?? 1) + 1)
    let labels = (0..<matrix.classes).map { c in "\(c) " + (c < classNames.count && classNames[c] != "\(c)" ? classNames[c] : "") }
    let labelWidth = max(labels.map(\.count).max() ?? 0, "true \\ predicted".count)
    func cell(_ text: String) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
    var lines = ["true \\ predicted".padding(toLength: labelWidth, withPad: " ", startingAt: 0)
                 + (0..<matrix.classes).map { cell("\($0)") }.joined()]
    for (c, row) in matrix.counts.enumerated() {
        lines.append(labels[c].padding(toLength: labelWidth, withPad: " ", startingAt: 0) + row.map { cell("\($0)") }.joined())
    }
    return lines.joined(separator: "\n")
}

/// `"classes: 0 T-shirt/top, 1 Trouser, ..."` when the class names are more than their indices.
func classLegend(_ classNames: [String]) -> String {
    guard classNames.enumerated().contains(where: { $1 != "\($0)" }) else { return "" }
    return "classes: " + classNames.enumerated().map { "\($0) \($1)" }.joined(separator: ", ")
}

CNN.main()

/// One classified image: the file, the top classes and their probabilities.
struct Classification: Encodable {
    var file: String
    var predicted: Int
    var className: String
    var probability: Double
    /// The three most probable classes, best first, as (class, name, probability).
    var top: [TopClass]
    var inverted: Bool

    struct TopClass: Encodable {
        var label: Int
        var name: String
        var probability: Double
    }

    /// A line for people: `shirt.png: 6 Shirt (0.91); then 0 T-shirt/top (0.05), 2 Pullover (0.02)`.
    var line: String {
        let rest = top.dropFirst().map { String(format: "%d %@ (%.2f)", $0.label, $0.name, $0.probability) }
        return String(format: "%@: %d %@ (%.2f)", file, predicted, className, probability)
            + (rest.isEmpty ? "" : "; then " + rest.joined(separator: ", "))
            + (inverted ? "  [inverted: light background]" : "")
    }
}

/// The JSON summary of a `--load` run.
struct ClassifyReport: Encodable {
    var app: String
    var model: String
    var images: [Classification]
}

/// Reads `path` (PNG or JPEG) as a 28x28 grayscale image in 0...1, light on dark like the data
/// sets (inverting it when the mean of its border is above one half), and classifies it.
func classifyImage(_ path: String, with model: Sequential, classNames: [String]) throws -> Classification {
    var image = try ImageDecoder.decode(fileAt: path, channels: 1)
    if image.shape[0] != 28 || image.shape[1] != 28 {
        image = image.resized(to: (height: 28, width: 28), method: .bilinear)
    }
    let pixels = image.scalars
    var border: [Float] = []
    for i in 0..<28 {
        border += [pixels[i], pixels[27 * 28 + i], pixels[i * 28], pixels[i * 28 + 27]]
    }
    let inverted = border.reduce(0, +) / Float(border.count) > 0.5
    if inverted { image = Tensor(shape: image.shape, scalars: pixels.map { 1 - $0 }) }
    let probabilities = try model.predict(image.reshaped([1, 28, 28, 1]), batchSize: 1).softmax().scalars
    let order = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }
    func name(_ c: Int) -> String { c < classNames.count ? classNames[c] : "\(c)" }
    let top = order.prefix(3).map { Classification.TopClass(label: $0, name: name($0), probability: Double(probabilities[$0])) }
    return Classification(file: path, predicted: order[0], className: name(order[0]),
                          probability: Double(probabilities[order[0]]), top: top, inverted: inverted)
}
