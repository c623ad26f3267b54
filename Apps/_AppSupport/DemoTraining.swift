import Datasets
import Dispatch
import Foundation
import Layers
import Optimizers
import TensorCore

/// Wall-clock time since the stopwatch was made (a monotonic clock).
public struct Stopwatch: Sendable {
    private let start = DispatchTime.now().uptimeNanoseconds

    /// Starts timing now.
    public init() {}

    /// Seconds since `init`.
    public var seconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}

/// Times each epoch's optimisation steps and, unless quiet, prints one line per epoch.
///
/// An epoch's time runs from its start to the end of its last step: it leaves out the
/// evaluation of the validation data that `fit` runs after the steps, so it is the training
/// time alone, the figure Keras and PyTorch runs are compared on.
public final class EpochTimer: Callback {
    /// Training seconds of each finished epoch.
    public private(set) var seconds: [Double] = []
    private let label: String
    private let quiet: Bool
    private var clock = Stopwatch()

    /// A timer that prints its lines prefixed with `label`, or nothing when `quiet`.
    public init(label: String, quiet: Bool) {
        self.label = label
        self.quiet = quiet
    }

    /// Starts the epoch's clock.
    public func onEpochBegin(_ epoch: Int, context: TrainingContext) throws {
        clock = Stopwatch()
    }

    /// Stops the clock at the epoch's last step.
    public func onBatchEnd(_ step: Int, logs: [String: Double], context: TrainingContext) throws {
        if step == context.stepsPerEpoch - 1 { seconds.append(clock.seconds) }
    }

    /// Prints the epoch's loss and accuracy, on the training steps and on the validation split
    /// (when `fit` has validation data).
    public func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
        guard !quiet else { return }
        let time = seconds.last.map { String(format: "%6.2f s", $0) } ?? ""
        var line = String(format: "%@ epoch %2d/%d  loss %.4f  accuracy %.4f", label, epoch + 1, context.epochs,
                          logs["loss"] ?? .nan, logs["accuracy"] ?? .nan)
        if let loss = logs["val_loss"], let accuracy = logs["val_accuracy"] {
            line += String(format: "  val loss %.4f  val accuracy %.4f", loss, accuracy)
        }
        print(line + "  " + time)
    }
}

/// What training one model gave: its size, speed, accuracies and per-epoch history.
public struct ModelRun: Encodable, Sendable {
    /// A short name (`"shallow"`, `"course"`).
    public var name: String
    /// The layers in words (`"Dense 128 relu"`).
    public var architecture: String
    /// The number of weights, trainable and not.
    public var parameters: Int
    /// Training seconds of each epoch (see `EpochTimer`).
    public var epochSeconds: [Double]
    /// The number of training images the model trained on (the training set less the validation split).
    public var trainingImages: Int
    /// The number of training images held out as the validation split (0: none).
    public var validationImages: Int
    /// Accuracy on the images it trained on, after training, in inference mode.
    public var trainAccuracy: Double
    /// Accuracy on the validation split after training (with the final weights, the averaged
    /// ones under `--ema`); nil without a validation split. Recipes are chosen on this figure.
    public var validationAccuracy: Double?
    /// Accuracy on the test set, evaluated once, after training (with the final weights).
    public var testAccuracy: Double
    /// The per-epoch values `fit` logged: `loss`, `accuracy` (running means over the epoch's
    /// steps), `val_loss` and `val_accuracy` (on the validation split, after the epoch, with the
    /// weights `fit` trains: not the averaged ones under `--ema`).
    public var history: [String: [Double]]
    /// Under `--tta`, the validation and test accuracies of each image alone (without averaging
    /// with its mirror): ``validationAccuracy`` and ``testAccuracy`` are then the averaged ones.
    /// Nil without `--tta`.
    public var singleViewAccuracy: (validation: Double?, test: Double)?

    /// The median of ``epochSeconds``: the first epoch, which warms caches and buffers, and a
    /// noisy neighbour on a shared machine move it less than they move the mean.
    public var medianEpochSeconds: Double { epochSeconds.isEmpty ? 0 : median(epochSeconds) }

    private enum CodingKeys: String, CodingKey {
        case name, architecture, parameters, secondsPerEpoch = "seconds_per_epoch", epochSeconds = "epoch_seconds"
        case trainingImages = "training_images", validationImages = "validation_images"
        case trainAccuracy = "train_accuracy", validationAccuracy = "validation_accuracy", testAccuracy = "test_accuracy", history
        case singleViewValidationAccuracy = "single_view_validation_accuracy", singleViewTestAccuracy = "single_view_test_accuracy"
    }

    /// Encodes with snake-case keys, times to milliseconds and the rest to 4 decimals.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(architecture, forKey: .architecture)
        try c.encode(parameters, forKey: .parameters)
        try c.encode(rounded(medianEpochSeconds, 3), forKey: .secondsPerEpoch)
        try c.encode(epochSeconds.map { rounded($0, 3) }, forKey: .epochSeconds)
        try c.encode(trainingImages, forKey: .trainingImages)
        try c.encode(validationImages, forKey: .validationImages)
        try c.encode(rounded(trainAccuracy, 4), forKey: .trainAccuracy)
        try c.encodeIfPresent(validationAccuracy.map { rounded($0, 4) }, forKey: .validationAccuracy)
        try c.encode(rounded(testAccuracy, 4), forKey: .testAccuracy)
        try c.encode(history.mapValues { $0.map { rounded($0, 4) } }, forKey: .history)
        if let single = singleViewAccuracy {
            try c.encodeIfPresent(single.validation.map { rounded($0, 4) }, forKey: .singleViewValidationAccuracy)
            try c.encode(rounded(single.test, 4), forKey: .singleViewTestAccuracy)
        }
    }
}

/// `value` rounded to `digits` decimals, so JSON shows `0.8712` rather than `0.87119996547698975`.
public func rounded(_ value: Double, _ digits: Int) -> Double {
    let scale = Foundation.pow(10, Double(digits))
    return (value * scale).rounded() / scale
}

/// Trains `model` on the training images less a validation split, with Adam or AdamW
/// (`training`'s learning rate, schedule, warm-up and weight decay) on softmax cross-entropy
/// (with `training`'s label smoothing), logging `val_loss` and `val_accuracy` on the validation
/// split after every epoch; then, with the final weights (the moving average's under
/// `training.ema`), measures the accuracy on the images it trained on, on the validation split,
/// and once on the test set. The test set plays no part in training or in the per-epoch logs, so
/// choices made by looking at the validation figures stay honest. Unless `options.json`, progress
/// goes to standard output: the library's `ProgressBar` on a terminal, one plain line per epoch
/// otherwise. With `options.output`, the history is also written to `<output>/<name>-history.csv`
/// after every epoch.
///
/// - Parameters:
///   - model: a model for `[28, 28, 1]` images with 10 outputs (logits), declaring its input
///     shape; an unbuilt one is built here from `options.seed`.
///   - name: a short name for lines, files and JSON.
///   - architecture: the layers in words.
///   - training: the optimiser, schedule, augmentation, validation split and averaging.
/// - Throws: `DemoFailure` when the validation split is not smaller than the training set; what
///   `fit` and `evaluate` throw (`LayerError`, `TrainingError`).
public func trainAndEvaluate(_ model: Sequential, name: String, architecture: String, data: DemoData,
                             options: DemoOptions, training: TrainingOptions) throws -> ModelRun {
    if training.tta && data.dataset != .fashion {
        throw DemoFailure("--tta averages each image with its mirror, which suits Fashion-MNIST only (digits are not mirror-symmetric)")
    }
    let split = try data.trainingSplit(validation: training.validation)
    let trainSet = split.train
    let validationData = split.validation.count > 0 ? (x: split.validation.images, y: split.validation.labels) : nil
    model.compile(optimizer: demoOptimizer(training, options: options, trainingSamples: trainSet.count),
                  loss: SoftmaxCrossEntropy(labelSmoothing: Float(training.labelSmoothing)), metrics: [.accuracy])
    try model.build(seed: options.seed)
    let parameters = model.parameters.reduce(0) { $0 + $1.value.count }
    if !options.json {
        print("\(name): \(architecture); \(grouped(parameters)) parameters")
    }
    let bar = terminalProgressBar(json: options.json)
    let timer = EpochTimer(label: name.padding(toLength: max(10, name.count), withPad: " ", startingAt: 0),
                           quiet: options.json || bar != nil)
    let average = training.ema > 0 ? ExponentialMovingAverage(decay: training.ema) : nil
    let csvPath = try options.output.map { try makeOutputDirectory($0) + "/\(name)-history.csv" }
    var history = History()
    if training.augment {
        // One `fit` call per epoch on that epoch's variant of the images: `initialEpoch` keeps the
        // batch order, the dropout masks and the learning-rate schedule those of one long run
        // (and the moving average, which lives in its callback, spans them all).
        for epoch in 0..<options.epochs {
            let images = augmented(trainSet.images, dataset: data.dataset, seed: options.seed, epoch: epoch,
                                   shift: training.shift, erase: training.erase)
            var callbacks: [any Callback] = [timer] + (bar.map { [$0] } ?? []) + (average.map { [$0] } ?? [])
            if let csvPath { callbacks.append(CSVLogger(path: csvPath, append: epoch > 0)) }
            let part = try model.fit(x: images, y: trainSet.labels, epochs: epoch + 1, initialEpoch: epoch,
                                     batchSize: options.batchSize, validationData: validationData,
                                     seed: options.seed, callbacks: callbacks, verbose: 0)
            history.append(part)
        }
    } else {
        var callbacks: [any Callback] = [timer] + (bar.map { [$0] } ?? []) + (average.map { [$0] } ?? [])
        if let csvPath { callbacks.append(CSVLogger(path: csvPath)) }
        history = try model.fit(x: trainSet.images, y: trainSet.labels, epochs: options.epochs,
                                batchSize: options.batchSize, validationData: validationData,
                                seed: options.seed, callbacks: callbacks, verbose: 0)
    }
    try average?.apply(to: model)
    let train = try model.evaluate(x: trainSet.images, y: trainSet.labels, batchSize: 1000)
    let validation = try validationData.map { try model.evaluate(x: $0.x, y: $0.y, batchSize: 1000) }
    let test = try model.evaluate(x: data.test.images, y: data.test.labels, batchSize: 1000)
    var run = ModelRun(name: name, architecture: architecture, parameters: parameters, epochSeconds: timer.seconds,
                       trainingImages: trainSet.count, validationImages: split.validation.count,
                       trainAccuracy: train["accuracy"] ?? 0, validationAccuracy: validation.map { $0["accuracy"] ?? 0 },
                       testAccuracy: test["accuracy"] ?? 0, history: history.history)
    if training.tta {
        run.singleViewAccuracy = (run.validationAccuracy, run.testAccuracy)
        run.validationAccuracy = try validationData.map { try mirrorAveragedAccuracy(model, images: $0.x, labels: $0.y) }
        run.testAccuracy = try mirrorAveragedAccuracy(model, images: data.test.images, labels: data.test.labels)
    }
    return run
}

/// The accuracy of `model` on `images` `[N, H, W, C]` when each image's class probabilities are
/// the mean of the softmax of the model's logits for the image and for its left-right mirror
/// (test-time augmentation by flipping).
/// - Throws: what `predict` throws (`TrainingError`, `LayerError`).
public func mirrorAveragedAccuracy(_ model: Sequential, images: Tensor, labels: [Int]) throws -> Double {
    guard images.shape.first == labels.count else {
        throw DemoFailure("mirror-averaged accuracy needs one label per image: \(images.shape) images, \(labels.count) labels")
    }
    guard !labels.isEmpty else { return 0 }
    let plain = try model.predict(images, batchSize: 500).softmax()
    let mirrored = try model.predict(images.flippedHorizontally(), batchSize: 500).softmax()
    let predictions = (plain + mirrored).argmax(alongAxis: 1)
    let correct = zip(predictions, labels).reduce(0) { $0 + ($1.0 == $1.1 ? 1 : 0) }
    return Double(correct) / Double(labels.count)
}

/// Epoch `epoch`'s random variant of `images` `[N, 28, 28, 1]` for `--augment`: each image
/// shifted by up to `shift` pixels (a random 28x28 crop of it padded by `shift` zeros on every
/// side; none for 0) and, for
/// Fashion-MNIST, mirrored left-right with probability 1/2 (digits are not mirror-symmetric).
/// With `erase` above 0, each image then has one random rectangle set to 0 with that probability
/// (`randomErase`, areas 2-33% of the image). The draws come from `seed` and `epoch` alone.
public func augmented(_ images: Tensor, dataset: DemoDataset, seed: UInt64, epoch: Int, shift: Int = 2,
                      erase: Double = 0) -> Tensor {
    var generator = SeededGenerator(seed: seed, stream: 1_000 + UInt64(epoch))
    var result = shift > 0 ? images.randomCrop(to: (height: 28, width: 28), padding: shift, using: &generator) : images
    if dataset == .fashion { result = result.randomFlipHorizontal(using: &generator) }
    if erase > 0 { result = result.randomErase(probability: Float(erase), using: &generator) }
    return result
}

/// Adam with `training`'s learning rate and schedule, or AdamW when `training.weightDecay` is
/// positive. The schedule spans every step of the run (`options.epochs` epochs of
/// `trainingSamples` in batches of `options.batchSize`); `training.warmupEpochs` first raise the
/// rate linearly from 0 (`LinearWarmup`), and the schedule then covers the remaining steps.
public func demoOptimizer(_ training: TrainingOptions, options: DemoOptions, trainingSamples: Int) -> Adam {
    let rate = Float(training.learningRate)
    let stepsPerEpoch = (trainingSamples + options.batchSize - 1) / options.batchSize
    let steps = options.epochs * stepsPerEpoch
    let warmup = Swift.min(training.warmupEpochs * stepsPerEpoch, Swift.max(0, steps - 1))
    var schedule: (any LearningRateSchedule)? = switch training.schedule {
    case .constant: nil
    case .cosine: CosineDecay(initial: rate, decaySteps: Swift.max(1, steps - warmup))
    }
    if warmup > 0 {
        schedule = LinearWarmup(warmupSteps: warmup, then: schedule ?? ConstantLearningRate(rate))
    }
    if training.weightDecay > 0 {
        return AdamW(learningRate: rate, weightDecay: Float(training.weightDecay), schedule: schedule)
    }
    return Adam(learningRate: rate, schedule: schedule)
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
public func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/// `12345` as `"12,345"`, as Keras summaries print counts.
public func grouped(_ n: Int) -> String {
    n.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))
}

/// The library's progress bar for `fit` when standard output is a terminal and `json` is false;
/// nil otherwise (in a pipe, a file or a CI log the demos print plain per-epoch lines instead, and
/// with `--json` nothing but the JSON line goes to standard output).
public func terminalProgressBar(json: Bool) -> ProgressBar? {
    let output = DemoProgressOutput()
    guard !json, output.isTerminal else { return nil }
    return ProgressBar(verbose: 1, output: output)
}

/// Standard output for a demo's `ProgressBar`: written through `print`, as the demo's other
/// lines are, and flushed at once, so the bar shows as it is drawn and its lines stay in order
/// with the demo's in a pipe or a file (the library's `StandardOutput` writes around `print`'s buffer).
public final class DemoProgressOutput: TextOutput, Sendable {
    /// Standard output.
    public init() {}
    /// Whether standard output is a terminal (`isatty`).
    public var isTerminal: Bool { isatty(STDOUT_FILENO) != 0 }
    /// Prints `text` as it is and flushes standard output.
    public func write(_ text: String) {
        print(text, terminator: "")
        fflush(nil)
    }
}

/// The line a demo prints before training: the data, the batch size, the optimiser and the
/// machine's threads and kernels.
public func runHeader(_ data: DemoData, options: DemoOptions, training: TrainingOptions) -> String {
    "\(data.dataset.displayName): \(data.train.count) training and \(data.test.count) test images from "
        + "\(data.train.directory) (\(String(format: "%.2f", data.loadSeconds)) s); batch \(options.batchSize), "
        + "\(trainingRecipeWords(training)), seed \(options.seed), "
        + "\(ThreadPool.shared.width) threads, \(KernelISA.current) kernels; "
        + (training.validation > 0 ? "\(training.validation) training images held out for validation, " : "no validation split, ")
        + "the test set is evaluated once, after training"
}

/// The optimiser and its extras in words: `"Adam 0.001 (cosine decay), augmented"`.
public func trainingRecipeWords(_ training: TrainingOptions) -> String {
    var words = "\(training.weightDecay > 0 ? "AdamW" : "Adam") \(training.learningRate)"
    if training.weightDecay > 0 { words += " (weight decay \(training.weightDecay))" }
    if training.warmupEpochs > 0 { words += ", \(training.warmupEpochs) warm-up epoch\(training.warmupEpochs == 1 ? "" : "s")" }
    if training.schedule == .cosine { words += " (cosine decay)" }
    if training.augment {
        var parts = training.shift == 2 ? [] : ["shifts of up to \(training.shift) px"]
        if training.erase > 0 { parts.append("random erasing \(training.erase)") }
        words += parts.isEmpty ? ", augmented" : ", augmented (\(parts.joined(separator: ", ")))"
    }
    if training.labelSmoothing > 0 { words += ", label smoothing \(training.labelSmoothing)" }
    if training.ema > 0 { words += ", weight EMA \(training.ema)" }
    if training.tta { words += ", mirror-averaged evaluation" }
    return words
}

/// A table with one column per model: a header row of `columns` and then each row's label and
/// values, right-aligned.
public func sideBySide(columns: [String], rows: [(String, [String])]) -> String {
    let labelWidth = rows.map(\.0.count).max() ?? 0
    let widths = columns.indices.map { i in
        max(columns[i].count, rows.map { i < $0.1.count ? $0.1[i].count : 0 }.max() ?? 0)
    }
    func line(_ label: String, _ cells: [String]) -> String {
        var text = label.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
        for (i, cell) in cells.enumerated() {
            text += "  " + String(repeating: " ", count: max(0, widths[i] - cell.count)) + cell
        }
        return text
    }
    return ([line("", columns)] + rows.map { line($0.0, $0.1) }).joined(separator: "\n")
}

/// What a demo prints with `--json`: the run's settings, each model's results, and the files it
/// wrote. Keys are snake case.
public struct DemoReport: Encodable {
    /// The program's name.
    public var app: String
    /// The options of the run.
    public var options: DemoOptions
    /// Each model's results, in training order.
    public var models: [ModelRun]
    /// Per model name, `counts[true class][predicted class]` on the test set, when the demo computes them.
    public var confusionMatrices: [String: [[Int]]]?
    /// The files written under `--output`.
    public var files: [String]
    /// The named recipe of the run (`cnn --recipe best`), if any.
    public var recipe: String?
    /// The optimiser and its extras in words (``trainingRecipeWords(_:)``), when the demo trains with them.
    public var training: String?

    /// A report of `models` for a run of `app` with `options`.
    public init(app: String, options: DemoOptions, models: [ModelRun], confusionMatrices: [String: [[Int]]]? = nil,
                files: [String], recipe: String? = nil, training: String? = nil) {
        self.app = app
        self.options = options
        self.models = models
        self.confusionMatrices = confusionMatrices
        self.files = files
        self.recipe = recipe
        self.training = training
    }

    private enum CodingKeys: String, CodingKey {
        case app, dataset, epochs, batchSize = "batch_size", seed, models, confusionMatrices = "confusion_matrices", files
        case recipe, training
    }

    /// Encodes the settings flat beside the results.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(app, forKey: .app)
        try c.encode(options.dataset.rawValue, forKey: .dataset)
        try c.encode(options.epochs, forKey: .epochs)
        try c.encode(options.batchSize, forKey: .batchSize)
        try c.encode(options.seed, forKey: .seed)
        try c.encode(models, forKey: .models)
        try c.encodeIfPresent(confusionMatrices, forKey: .confusionMatrices)
        try c.encode(files, forKey: .files)
        try c.encodeIfPresent(recipe, forKey: .recipe)
        try c.encodeIfPresent(training, forKey: .training)
    }
}

/// Prints `value` as one line of JSON (keys sorted).
/// - Throws: what `JSONEncoder` throws (nothing, for the demos' types).
public func printJSONLine(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
