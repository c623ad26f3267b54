import ArgumentParser
import Datasets
import Foundation
import TensorCore

/// `--validation N` for the demos that select without ``trainAndEvaluate(_:name:architecture:data:options:training:)``
/// (`rebalance`, `rbm`, `autoencoder`): the classifier demos' convention (``TrainingOptions``'s
/// `--validation`, split by ``DemoData/trainingSplit(validation:)``) without their optimiser
/// options. A demo adds it with `@OptionGroup`, asks ``split(of:program:)`` for its parts, fits on
/// ``DemoSplit/train``, reports its selection figures on ``DemoSplit/validation`` and evaluates
/// ``DemoSplit/test`` once, after training.
///
/// `--split test|validation`, the unsupervised demos' earlier convention, is kept as a deprecated
/// alias so that the figures measured with it can be reproduced: `--split test` is `--validation 0`;
/// `--split validation` holds out the last 10,000 training images unshuffled (the first 50,000
/// train), and now evaluates the test set once at the end as well.
public struct ValidationOptions: ParsableArguments {
    /// The held-out count as given; nil when `--validation` was not given.
    @Option(name: .customLong("validation"),
            help: ArgumentHelp("Hold out N of the 60,000 training images as the validation split (the last N of a shuffle with a fixed seed, the same for every --seed, as the classifier demos' --validation): the demo fits on the rest, reports its figures on the held-out images, and evaluates the test set once, after training. 0 fits on all 60,000 (in file order) without validation. Default: 5000.",
                               valueName: "N"))
    public var requestedValidation: Int?

    /// The deprecated selection convention, if given.
    @Option(help: "Deprecated, use --validation N: test is --validation 0; validation fits on the first 50,000 training images and holds out the last 10,000 unshuffled (the split of earlier figures). Both now evaluate the test set once, after training. Cannot be combined with --validation.")
    public var split: LegacySplit?

    /// Held-out training images when neither `--validation` nor `--split` is given: as the classifier demos.
    public static let defaultValidation = 5_000

    /// The images held out (for `--split validation`, at most 10,000; the count is fixed by the data set, see ``split(of:program:)``).
    public var validation: Int {
        if let requestedValidation { return requestedValidation }
        switch split {
        case .test: return 0
        case .validation: return 10_000
        case nil: return Self.defaultValidation
        }
    }

    /// Makes the defaults (ArgumentParser fills in the values it parses).
    /// Throws the usage error for a `--validation` outside `0..<60000` (every demo's rule).
    public static func checkRange(_ validation: Int) throws {
        guard (0..<60_000).contains(validation) else {
            throw ValidationError("--validation must be in 0..<60000, got \(validation).")
        }
    }

    public init() {}

    /// Checks the range (as ``TrainingOptions`` does) and that the two conventions are not mixed.
    public func validate() throws {
        if let requestedValidation {
            try Self.checkRange(requestedValidation)
            if let split {
                throw ValidationError("--split \(split.rawValue) is a deprecated spelling of --validation and cannot be combined with it; use --validation \(requestedValidation) alone.")
            }
        }
    }

    /// `data`'s training images divided as the options say, with its test set beside them. With
    /// `--split`, a deprecation note goes to standard error (so `--json` output stays one line).
    ///
    /// - `--validation N` (N > 0, the default 5,000): ``DemoData/trainingSplit(validation:)``, the
    ///   classifier demos' split, the same for every `--seed`.
    /// - `--validation 0` or `--split test`: every training image, in file order, and no validation split.
    /// - `--split validation`: the first 50,000 training images (five sixths of a smaller set) and the
    ///   rest, in file order.
    /// - Throws: `DemoFailure` when the split is not smaller than the training set.
    public func split(of data: DemoData, program: String) throws -> DemoSplit {
        if let split {
            FileHandle.standardError.write(Data(("\(program): warning: --split \(split.rawValue) is deprecated; "
                + (split == .test ? "use --validation 0" : "use --validation N (a shuffled split, the same for every --seed)")
                + ". The test set is now evaluated once, after training, as well.\n").utf8))
        }
        switch (requestedValidation, split) {
        case (nil, .validation?):
            let kept = Swift.min(50_000, data.train.count * 5 / 6)
            return DemoSplit(train: data.train.subset(0..<kept), validation: data.train.subset(kept..<data.train.count),
                             test: data.test, words: "the last \(grouped(data.train.count - kept)) training images held out "
                                 + "for validation (deprecated --split validation, unshuffled)")
        case _ where validation == 0:
            return DemoSplit(train: data.train, validation: nil, test: data.test, words: "no validation split")
        default:
            let parts = try data.trainingSplit(validation: validation)
            return DemoSplit(train: parts.train, validation: parts.validation, test: data.test,
                             words: "\(grouped(validation)) training images held out for validation")
        }
    }
}

/// The values of the deprecated `--split` option (see ``ValidationOptions``).
public enum LegacySplit: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// No validation split: `--validation 0`.
    case test
    /// The first 50,000 training images fit, the last 10,000 are the validation split.
    case validation
}

/// What a demo fits on, selects on and reports once: the parts ``ValidationOptions/split(of:program:)`` makes.
public struct DemoSplit: Sendable {
    /// The training images the demo fits on, `[N, 28, 28, 1]`.
    public var train: MNISTDataset
    /// The held-out training images its figures are selected on; nil with `--validation 0`.
    public var validation: MNISTDataset?
    /// The test set, for the one evaluation after training.
    public var test: MNISTDataset
    /// How the training images were divided, in words, for the demo's first line.
    public var words: String

    /// The parts, as given.
    public init(train: MNISTDataset, validation: MNISTDataset?, test: MNISTDataset, words: String) {
        self.train = train
        self.validation = validation
        self.test = test
        self.words = words
    }

    /// The demo's account of the split: ``words``, then that the test set is evaluated once, after training.
    public var summary: String { words + "; the test set is evaluated once, after training" }
}

extension MNISTDataset {
    /// The images and labels at `range`, in order.
    func subset(_ range: Range<Int>) -> MNISTDataset {
        var part = self
        part.images = images.slice(range)
        part.labels = Array(labels[range])
        return part
    }
}
