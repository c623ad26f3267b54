import ArgumentParser
import Datasets
import Foundation
import TensorCore

/// The data and run options every image demo takes, as `mlp-from-scratch` spells them:
/// `--dataset fashion|mnist`, `--data DIR`, `--download`, `--epochs N`, `--batch-size N`, `--seed N`,
/// `--output DIR` and `--json`. A demo adds them to its command with `@OptionGroup`; the demos
/// whose training goes through ``trainAndEvaluate(_:name:architecture:data:options:training:)``
/// add ``TrainingOptions`` as well.
public struct DemoOptions: ParsableArguments {
    /// Which data set: Fashion-MNIST (the default) or the MNIST digits.
    @Option(help: "The data set: fashion (Fashion-MNIST) or mnist.")
    public var dataset: DemoDataset = .fashion

    /// The folder holding the four IDX files; nil searches the loaders' default places.
    @Option(help: "The folder holding the four IDX files (plain or .gz); default: the loader's search path ($NEURITE_DATA, the per-user cache, and /usr/share/datasets/fashion-mnist for Fashion-MNIST).")
    public var data: String?

    /// Whether missing files are downloaded (checked by SHA-256) instead of reported.
    @Flag(help: "When the data set's files are not found, download them (SHA-256 checked) into --data DIR, or without it the per-user cache ($XDG_CACHE_HOME/neurite or ~/.cache/neurite), and use them. Without --download nothing is downloaded.")
    public var download = false

    /// Passes over the training set per model.
    @Option(help: "Passes over the 60,000 training images, per model.")
    public var epochs: Int = 5

    /// Samples per optimisation step.
    @Option(name: .customLong("batch-size"), help: "Samples per optimisation step.")
    public var batchSize: Int = 128

    /// The one seed of a run: initial weights, dropout and the order of the batches.
    @Option(help: "The seed of the initial weights, dropout masks and batch order; same seed, same run.")
    public var seed: UInt64 = 1

    /// Where files are written; nothing is written without it.
    @Option(help: "A folder for the files the demo writes (created if missing); without it nothing is written.")
    public var output: String?

    /// Whether to print one JSON object as the last line instead of the human-readable report.
    @Flag(help: "Print only one JSON object with the results, on the last line.")
    public var json = false

    /// Makes the defaults (ArgumentParser fills in the values it parses).
    public init() {}

    /// Checks the ranges ArgumentParser cannot.
    public func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs).") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize).") }
    }
}

/// How the demos that train with ``trainAndEvaluate(_:name:architecture:data:options:training:)``
/// optimise and select: `--learning-rate X`, `--schedule constant|cosine`, `--augment`,
/// `--validation N`, `--label-smoothing X`, `--weight-decay X`, `--warmup-epochs N`, `--ema X`,
/// `--shift N`, `--erase P` and `--tta`.
/// Only those demos take these options; the others declare their own learning rates, if any.
public struct TrainingOptions: ParsableArguments {
    /// Adam's learning rate (the initial one under a schedule).
    @Option(name: .customLong("learning-rate"), help: "Adam's learning rate (with --schedule cosine, the first step's).")
    public var learningRate: Double = 1e-3

    /// How the learning rate changes over the run.
    @Option(help: "The learning rate over the run: constant, or cosine (decays along a half cosine to 0 at the last step).")
    public var schedule: DemoSchedule = .constant

    /// Whether each epoch trains on a fresh random variant of the training images.
    @Flag(help: "Augment the training images anew each epoch: shift by up to 2 pixels (--shift; a random 28x28 crop of the image padded by 2) and, for Fashion-MNIST, mirror left-right with probability 1/2.")
    public var augment = false

    /// The largest shift, in pixels, of `--augment`'s random crops (0: no shifts).
    @Option(help: "With --augment, shift each training image by up to this many pixels (a random crop of the image padded by N zeros); 0 keeps the images in place.")
    public var shift: Int = 2

    /// The probability of random erasing in `--augment` (0: none).
    @Option(help: "With --augment, also set one random rectangle (2-33% of the image) of each training image to 0 with this probability (random erasing); 0 erases nothing.")
    public var erase: Double = 0

    /// Whether accuracies after training average each image's prediction with its mirror's.
    @Flag(help: "Test-time augmentation: after training, classify each validation and test image by the mean of the softmax for it and for its left-right mirror (Fashion-MNIST only: digits are not mirror-symmetric). The single-image accuracies are reported beside them.")
    public var tta = false

    /// How many of the 60,000 training images are held out as the validation split.
    @Option(help: "Hold out N of the 60,000 training images as the validation split (the last N of a shuffle with a fixed seed, the same for every --seed): training uses the rest, val_ values are measured on it after each epoch, and the test set is evaluated once, after training. 0 trains on all 60,000 without validation.")
    public var validation: Int = ValidationOptions.defaultValidation

    /// The label smoothing of the softmax cross-entropy (0: none).
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing of the softmax cross-entropy, in 0..<1 (0: none).")
    public var labelSmoothing: Double = 0

    /// AdamW's decoupled weight decay; 0 trains with plain Adam.
    @Option(name: .customLong("weight-decay"), help: "Decoupled weight decay: with a positive value the optimiser is AdamW (each step shrinks every weight by learning rate x decay); 0 is plain Adam.")
    public var weightDecay: Double = 0

    /// Epochs over which the learning rate rises linearly from 0 before the schedule starts.
    @Option(name: .customLong("warmup-epochs"), help: "Raise the learning rate linearly from 0 over the first N epochs, then follow --schedule over the rest.")
    public var warmupEpochs: Int = 0

    /// The decay of an exponential moving average of the weights; 0 keeps none.
    @Option(help: "Keep an exponential moving average of the weights with this decay per step, in 0..<1 (e.g. 0.999), and evaluate and save the averaged weights; 0 keeps none.")
    public var ema: Double = 0

    /// Makes the defaults (ArgumentParser fills in the values it parses).
    public init() {}

    /// Checks the ranges ArgumentParser cannot.
    public func validate() throws {
        guard learningRate > 0 && learningRate.isFinite else {
            throw ValidationError("--learning-rate must be positive, got \(learningRate).")
        }
        try ValidationOptions.checkRange(validation)
        guard labelSmoothing >= 0 && labelSmoothing < 1 else {
            throw ValidationError("--label-smoothing must be in 0..<1, got \(labelSmoothing).")
        }
        guard weightDecay >= 0 && weightDecay.isFinite else {
            throw ValidationError("--weight-decay must be 0 or positive, got \(weightDecay).")
        }
        guard warmupEpochs >= 0 else { throw ValidationError("--warmup-epochs must not be negative, got \(warmupEpochs).") }
        guard ema >= 0 && ema < 1 else { throw ValidationError("--ema must be in 0..<1, got \(ema).") }
        guard erase >= 0 && erase <= 1 else { throw ValidationError("--erase must be in 0...1, got \(erase).") }
        guard erase == 0 || augment else { throw ValidationError("--erase needs --augment.") }
        guard (0...8).contains(shift) else { throw ValidationError("--shift must be in 0...8, got \(shift).") }
    }
}

/// How a demo's learning rate changes over its run.
public enum DemoSchedule: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// The same rate at every step.
    case constant
    /// Cosine decay from the rate to 0 over all the run's steps (`CosineDecay`).
    case cosine
}

/// The data sets the demos train on: both are 28x28 grayscale images in 10 classes.
public enum DemoDataset: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Fashion-MNIST (Zalando): clothing, the default.
    case fashion
    /// The MNIST handwritten digits.
    case mnist

    /// The data set's usual name, `"Fashion-MNIST"` or `"MNIST"`.
    public var displayName: String { self == .fashion ? "Fashion-MNIST" : "MNIST" }

    /// The class names, indexed by label.
    public var classNames: [String] { self == .fashion ? FashionMNIST.classNames : MNIST.classNames }
}

/// The training and test splits of a demo's data set.
public struct DemoData: Sendable {
    /// 60,000 images `[N, 28, 28, 1]` in 0...1 and their labels.
    public var train: MNISTDataset
    /// 10,000 images `[N, 28, 28, 1]` in 0...1 and their labels.
    public var test: MNISTDataset
    /// Which data set it is.
    public var dataset: DemoDataset
    /// Seconds spent reading and decoding the files.
    public var loadSeconds: Double

    /// Loads both splits of `options.dataset` from `options.data` (or the default places); with
    /// `options.download`, first downloads the files that are not found (a note goes to standard
    /// error, so `--json` output stays one line).
    /// - Throws: `DemoFailure` saying what could not be loaded and how to get it.
    public init(_ options: DemoOptions) throws {
        let clock = Stopwatch()
        do {
            (train, test) = try Self.load(options.dataset, from: options.data)
        } catch let error as DatasetError where error.kind == .notFound && options.download {
            let destination = options.data ?? "the per-user cache"
            FileHandle.standardError.write(Data("downloading \(options.dataset.displayName) into \(destination) (SHA-256 checked)...\n".utf8))
            do {
                let folder = try options.dataset == .fashion ? FashionMNIST.download(to: options.data)
                                                               : MNIST.download(to: options.data)
                (train, test) = try Self.load(options.dataset, from: folder)
            } catch {
                throw DemoFailure("cannot download \(options.dataset.displayName): \(error)")
            }
        } catch {
            let hint = if let directory = options.data {
                "check that \(directory) holds the four \(options.dataset.displayName) IDX files, or pass --download to fetch them there"
            } else if options.dataset == .fashion {
                "install it with Tools/install-deps.sh (Debian's dataset-fashion-mnist), pass --data DIR, or pass --download "
                    + "to fetch it into the per-user cache"
            } else {
                "pass --download to fetch it into the per-user cache (SHA-256 checked), or --data DIR with the four MNIST IDX files"
            }
            throw DemoFailure("cannot load \(options.dataset.displayName): \(error)\n\(hint)")
        }
        dataset = options.dataset
        loadSeconds = clock.seconds
    }

    /// The seed of the shuffle behind ``trainingSplit(validation:)`` (the number, 16).
    public static let splitSeed: UInt64 = 16

    /// The training images split into the part that trains and the validation part: the last
    /// `validation` images of a `seededShuffle` of the training set's indices by a fixed seed, so
    /// the split is the same for every run, whatever its `--seed` (as Keras' `validation_split`
    /// holds out the last images, here after one fixed shuffle, so that the validation split has
    /// every class in its usual share). With `validation` 0 the validation part is empty.
    /// - Throws: `DemoFailure` when `validation` is negative or not less than the number of training images.
    public func trainingSplit(validation: Int) throws -> (train: MNISTDataset, validation: MNISTDataset) {
        guard (0..<train.count).contains(validation) else {
            throw DemoFailure("--validation \(validation) must be less than the \(train.count) training images of \(train.directory)")
        }
        var order = Array(0..<train.count)
        var generator = SeededGenerator(seed: Self.splitSeed)
        order.seededShuffle(using: &generator)
        let kept = order.count - validation
        func subset(_ indices: ArraySlice<Int>) -> MNISTDataset {
            let list = Array(indices)
            var part = train
            part.images = train.images.gather(list)
            part.labels = list.map { train.labels[$0] }
            return part
        }
        return (subset(order[..<kept]), subset(order[kept...]))
    }

    private static func load(_ dataset: DemoDataset, from directory: String?) throws -> (MNISTDataset, MNISTDataset) {
        switch dataset {
        case .fashion: (try FashionMNIST.load(.train, from: directory), try FashionMNIST.load(.test, from: directory))
        case .mnist: (try MNIST.load(.train, from: directory), try MNIST.load(.test, from: directory))
        }
    }
}

/// A failure a demo reports on standard error before exiting with status 1.
public struct DemoFailure: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public var description: String
    /// A failure saying `description`.
    public init(_ description: String) { self.description = description }
}

/// Runs a demo's work, turning a thrown error into a message on standard error (prefixed with the
/// program's name) and exit status 1, instead of ArgumentParser's usage text.
public func reportingFailures(of program: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("\(program): error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// Makes `path` (and its parents) if it does not exist, and returns it.
/// - Throws: `DemoFailure` naming the folder when it cannot be made.
@discardableResult
public func makeOutputDirectory(_ path: String) throws -> String {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw DemoFailure("cannot create the output folder \(path): \(error)")
    }
    return path
}
