import Foundation
import Optimizers
import TensorCore

/// What a running `fit` shows its callbacks (Keras' `callback.model` and `callback.params`).
public final class TrainingContext {
    /// The model being trained.
    public let model: Sequential
    /// Its optimizer (a scheduler may change `learningRate`).
    public let optimizer: any Optimizer
    /// The number of epochs asked for.
    public let epochs: Int
    /// The number of steps (batches) per epoch.
    public let stepsPerEpoch: Int
    /// The number of training samples.
    public let samples: Int
    /// The batch size.
    public let batchSize: Int
    /// `fit`'s verbosity.
    public let verbose: Int
    /// This process's rank in a data-parallel run (0 alone): callbacks that write files or
    /// print do so on rank 0 only.
    public let rank: Int
    /// The number of replicas in a data-parallel run (1 alone).
    public let replicas: Int
    /// The current epoch, counted from 0.
    public internal(set) var epoch = 0
    /// Set to true to end training after the current step (checked after each step and epoch).
    public var stopTraining = false

    init(model: Sequential, optimizer: any Optimizer, epochs: Int, stepsPerEpoch: Int, samples: Int,
         batchSize: Int, verbose: Int, rank: Int = 0, replicas: Int = 1) {
        self.rank = rank
        self.replicas = replicas
        self.model = model
        self.optimizer = optimizer
        self.epochs = epochs
        self.stepsPerEpoch = stepsPerEpoch
        self.samples = samples
        self.batchSize = batchSize
        self.verbose = verbose
    }
}

/// Something `fit` calls at the boundaries of training, epochs and batches, as Keras callbacks.
///
/// Epochs and steps are counted from 0. `logs` hold the running means of the epoch so far
/// (`"loss"` and the metrics) at a batch's end, and the epoch's values with the validation ones
/// (`"val_loss"`, ...) at an epoch's end. Every method has an empty default; a callback that
/// throws ends training with its error (after every callback's `onTrainEnd`).
///
/// Saving checkpoints is an ordinary callback too: `onEpochEnd` reads `context.model.weights()`
/// (named, copy-on-write snapshots) and writes them; ``ModelCheckpoint`` saves the whole model.
public protocol Callback: AnyObject {
    /// Before the first epoch.
    func onTrainBegin(_ context: TrainingContext) throws
    /// After the last epoch, however training ended (also after an error), with the last logs.
    func onTrainEnd(_ context: TrainingContext, logs: [String: Double]) throws
    /// Before each epoch.
    func onEpochBegin(_ epoch: Int, context: TrainingContext) throws
    /// After each epoch, with its training and validation values.
    func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws
    /// After each optimisation step, with the epoch's running means.
    func onBatchEnd(_ step: Int, logs: [String: Double], context: TrainingContext) throws
}

extension Callback {
    /// Does nothing.
    public func onTrainBegin(_ context: TrainingContext) throws {}
    /// Does nothing.
    public func onTrainEnd(_ context: TrainingContext, logs: [String: Double]) throws {}
    /// Does nothing.
    public func onEpochBegin(_ epoch: Int, context: TrainingContext) throws {}
    /// Does nothing.
    public func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {}
    /// Does nothing.
    public func onBatchEnd(_ step: Int, logs: [String: Double], context: TrainingContext) throws {}
}

// MARK: - Output

/// Where progress text goes: standard output, or a buffer in tests.
public protocol TextOutput: AnyObject {
    /// Whether it is an interactive terminal (then a progress bar redraws itself with `\r`).
    var isTerminal: Bool { get }
    /// Writes `text` as it is (the caller adds the newlines).
    func write(_ text: String)
}

/// The process's standard output, written unbuffered (so a bar shows at once).
public final class StandardOutput: TextOutput, Sendable {
    /// Standard output.
    public init() {}
    /// Whether standard output is a terminal (`isatty`).
    public var isTerminal: Bool { isatty(STDOUT_FILENO) != 0 }
    /// Writes `text` at once.
    public func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

/// Collects text in memory, posing as a terminal or not: for tests, or to show progress elsewhere.
public final class TextBuffer: TextOutput {
    /// Everything written so far.
    public private(set) var text = ""
    /// Whether it claims to be a terminal.
    public let isTerminal: Bool
    /// An empty buffer.
    public init(isTerminal: Bool = false) { self.isTerminal = isTerminal }
    /// Appends `text`.
    public func write(_ text: String) { self.text += text }
}

/// `"0.3412"`, or `"1.2000e-05"` for small values, as Keras formats logs.
func formatLogValue(_ v: Double) -> String {
    Swift.abs(v) >= 1e-3 || v == 0 || !v.isFinite ? String(format: "%.4f", v) : String(format: "%.4e", v)
}

// MARK: - Progress bar

/// Keras' progress display: per epoch, a bar redrawn after every step on a terminal,
/// `step/steps [=====>....] - ETA: 2s - loss: 0.3412 - accuracy: 0.8812`, ending in the epoch's
/// line with its time and validation values.
///
/// On a terminal (``TextOutput/isTerminal``) the bar is redrawn with `\r` (at most every 50 ms,
/// and at the last step). Anywhere else (a file, a pipe, a CI log) nothing is redrawn: each epoch
/// writes one plain line, with no `\r` or escape sequences.
///
/// Verbosity: 0 writes nothing; 1 the bar (or, off a terminal, its final line per epoch);
/// 2 one line per epoch without a bar, also on a terminal; 3 and above also a closing line with
/// the total time. `fit(verbose:)` adds one of these writing to standard output.
public final class ProgressBar: Callback {
    /// The verbosity (see the type's description).
    public let verbose: Int
    /// Where it writes.
    public let output: any TextOutput
    private let width = 30
    private var trainStart = ContinuousClock.now
    private var epochStart = ContinuousClock.now
    private var lastDraw: ContinuousClock.Instant?
    private var lastLength = 0
    private var lineOpen = false

    /// A progress display of verbosity `verbose` writing to `output`.
    public init(verbose: Int = 1, output: any TextOutput = StandardOutput()) {
        self.verbose = verbose
        self.output = output
    }

    private var animated: Bool { verbose == 1 && output.isTerminal }

    /// Notes the start time.
    public func onTrainBegin(_ context: TrainingContext) throws {
        trainStart = .now
    }

    /// On a terminal at verbosity 1, writes the `Epoch e/E` header.
    public func onEpochBegin(_ epoch: Int, context: TrainingContext) throws {
        epochStart = .now
        lastDraw = nil
        lastLength = 0
        if animated { output.write("Epoch \(epoch + 1)/\(context.epochs)\n") }
    }

    /// On a terminal at verbosity 1, redraws the bar.
    public func onBatchEnd(_ step: Int, logs: [String: Double], context: TrainingContext) throws {
        guard animated else { return }
        let now = ContinuousClock.now
        let last = step + 1 == context.stepsPerEpoch
        if let lastDraw, !last, now - lastDraw < .milliseconds(50) { return }
        lastDraw = now
        let elapsed = seconds(now - epochStart)
        let remaining = Double(context.stepsPerEpoch - step - 1) * elapsed / Double(step + 1)
        let line = progress(step + 1, context.stepsPerEpoch, bar: true) + " - ETA: " + Self.duration(remaining) + Self.logText(logs)
        output.write("\r" + line + String(repeating: " ", count: Swift.max(0, lastLength - line.count)))
        lastLength = line.count
        lineOpen = true
    }

    /// Writes the epoch's line (over the bar on a terminal).
    public func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
        guard verbose > 0 else { return }
        let elapsed = seconds(.now - epochStart)
        let steps = context.stepsPerEpoch
        let perStep = elapsed / Double(Swift.max(steps, 1))
        let timing = " - \(Self.duration(elapsed)) \(Self.stepTime(perStep))/step"
        let body = progress(steps, steps, bar: verbose == 1) + timing + Self.logText(logs)
        if animated {
            output.write("\r" + body + String(repeating: " ", count: Swift.max(0, lastLength - body.count)) + "\n")
        } else {
            output.write("Epoch \(epoch + 1)/\(context.epochs): " + body + "\n")
        }
        lineOpen = false
    }

    /// Ends an unfinished bar line; at verbosity 3 and above, writes the total time.
    public func onTrainEnd(_ context: TrainingContext, logs: [String: Double]) throws {
        if lineOpen {
            output.write("\n")
            lineOpen = false
        }
        if verbose >= 3 {
            output.write("Trained \(context.epoch + 1) epoch\(context.epoch == 0 ? "" : "s") in \(Self.duration(seconds(.now - trainStart)))\n")
        }
    }

    private func progress(_ done: Int, _ total: Int, bar: Bool) -> String {
        let digits = String(total).count
        let count = String(repeating: " ", count: Swift.max(0, digits - String(done).count)) + "\(done)/\(total)"
        guard bar else { return count }
        let filled = total == 0 ? width : Swift.min(width, width * done / total)
        var b = String(repeating: "=", count: filled)
        if filled < width { b += ">" + String(repeating: ".", count: width - filled - 1) }
        return count + " [" + b + "]"
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    static func logText(_ logs: [String: Double]) -> String {
        // loss first, then training metrics, then validation values, each group alphabetical.
        let keys = logs.keys.sorted { a, b in
            func rank(_ k: String) -> Int { k == "loss" ? 0 : (k == "val_loss" ? 2 : (k.hasPrefix("val_") ? 3 : 1)) }
            return (rank(a), a) < (rank(b), b)
        }
        return keys.map { " - \($0): \(formatLogValue(logs[$0]!))" }.joined()
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) }
        if t >= 60 { return String(format: "%d:%02d", t / 60, t % 60) }
        return "\(t)s"
    }

    static func stepTime(_ s: Double) -> String {
        if s >= 1 { return String(format: "%.0fs", s) }
        if s >= 1e-3 { return String(format: "%.0fms", s * 1e3) }
        return String(format: "%.0fus", s * 1e6)
    }
}

// MARK: - Early stopping

/// Stops training when a monitored value has stopped improving (Keras `EarlyStopping`), and can
/// put back the weights of the best epoch.
///
/// After each epoch, the value improves when it is better than the best so far by more than
/// `minDelta` (lower for losses, higher for accuracies: `mode` `.auto` picks `max` when the name
/// contains `"acc"`). After `patience` epochs in a row without improvement, training stops.
/// With `restoreBestWeights`, the weights of the best epoch are restored when training ends,
/// however it ends: stopped here, by another callback, at the last epoch, or by an error; then
/// ``restoredEpoch`` says which epoch (counted from 0) and, with `verbose > 0`, it says so in the
/// output. Cost: a copy-on-write snapshot of the weights at each improvement.
public final class EarlyStopping: Callback {
    /// Whether smaller or larger values are better.
    public enum Mode: Sendable {
        /// `max` when the monitored name contains `"acc"`, else `min`.
        case auto
        /// Lower is better (losses, errors).
        case min
        /// Higher is better (accuracies).
        case max

        /// Whether larger values of `monitor` are better under this mode.
        public func maximizes(_ monitor: String) -> Bool {
            switch self {
            case .min: false
            case .max: true
            case .auto: monitor.contains("acc")
            }
        }
    }
    /// The logged value watched (`"val_loss"`, `"val_accuracy"`, `"loss"`, ...).
    public let monitor: String
    /// Epochs without improvement before stopping.
    public let patience: Int
    /// The smallest change that counts as an improvement.
    public let minDelta: Double
    /// Whether smaller or larger values are better.
    public let mode: Mode
    /// Whether to restore the best epoch's weights at the end.
    public let restoreBestWeights: Bool
    /// 0 silent; above, a line when stopping and when restoring.
    public let verbose: Int
    /// Where messages go.
    public let output: any TextOutput
    /// The best value seen.
    public private(set) var best: Double?
    /// The epoch of the best value, counted from 0.
    public private(set) var bestEpoch: Int?
    /// The epoch after which this callback stopped training, if it did.
    public private(set) var stoppedEpoch: Int?
    /// The epoch whose weights were restored at the end, if any.
    public private(set) var restoredEpoch: Int?
    private var wait = 0
    private var bestWeights: [Tensor]?

    /// Early stopping on `monitor`.
    /// - Precondition: `patience >= 0` and `minDelta >= 0`.
    public init(monitor: String = "val_loss", patience: Int = 0, minDelta: Double = 0, mode: Mode = .auto,
                restoreBestWeights: Bool = false, verbose: Int = 0, output: any TextOutput = StandardOutput()) {
        neuritePrecondition(patience >= 0 && minDelta >= 0, "EarlyStopping needs patience >= 0 and minDelta >= 0, got \(patience) and \(minDelta)")
        self.monitor = monitor
        self.patience = patience
        self.minDelta = minDelta
        self.mode = mode
        self.restoreBestWeights = restoreBestWeights
        self.verbose = verbose
        self.output = output
    }

    private var maximizes: Bool { mode.maximizes(monitor) }

    /// Resets the state, so one instance serves several `fit` calls.
    public func onTrainBegin(_ context: TrainingContext) throws {
        best = nil; bestEpoch = nil; stoppedEpoch = nil; restoredEpoch = nil
        wait = 0; bestWeights = nil
    }

    /// Records an improvement, or counts an epoch without one and stops after `patience` of them.
    /// - Throws: `TrainingError` when the logs lack the monitored value.
    public func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
        guard let current = logs[monitor] else {
            throw TrainingError("EarlyStopping monitors \"\(monitor)\", which the logs lack (they have \(logs.keys.sorted()))"
                                + (monitor.hasPrefix("val_") ? "; pass validationData or validationSplit to fit" : ""), epoch: epoch)
        }
        let improved: Bool
        if let best {
            improved = maximizes ? current - minDelta > best : current + minDelta < best
        } else {
            improved = !current.isNaN
        }
        if improved {
            best = current
            bestEpoch = epoch
            wait = 0
            if restoreBestWeights { bestWeights = context.model.parameters.map(\.value) }
            return
        }
        wait += 1
        if wait >= patience {
            stoppedEpoch = epoch
            context.stopTraining = true
            if verbose > 0 { output.write("Epoch \(epoch + 1): early stopping\n") }
        }
    }

    /// Restores the best epoch's weights when asked to.
    public func onTrainEnd(_ context: TrainingContext, logs: [String: Double]) throws {
        guard restoreBestWeights, let bestWeights, let bestEpoch else { return }
        let params = context.model.parameters
        for (p, w) in zip(params, bestWeights) { p.value = w }
        restoredEpoch = bestEpoch
        if verbose > 0 { output.write("Restoring model weights from the end of the best epoch: \(bestEpoch + 1).\n") }
    }
}

// MARK: - Learning-rate schedule

/// Sets the optimizer's learning rate before each epoch from `schedule(epoch, currentRate)`
/// (Keras `LearningRateScheduler`; epochs counted from 0).
public final class LearningRateScheduler: Callback {
    private let schedule: (Int, Float) -> Float
    /// 0 silent; above, a line per change.
    public let verbose: Int
    /// Where messages go.
    public let output: any TextOutput

    /// A scheduler: `LearningRateScheduler { epoch, lr in epoch < 10 ? lr : lr * 0.9 }`.
    public init(verbose: Int = 0, output: any TextOutput = StandardOutput(), _ schedule: @escaping (Int, Float) -> Float) {
        self.schedule = schedule
        self.verbose = verbose
        self.output = output
    }

    /// Sets the rate for `epoch`.
    /// - Throws: `TrainingError` when the schedule gives a rate that is not finite and non-negative.
    public func onEpochBegin(_ epoch: Int, context: TrainingContext) throws {
        let rate = schedule(epoch, context.optimizer.learningRate)
        guard rate.isFinite && rate >= 0 else {
            throw TrainingError("LearningRateScheduler gave learning rate \(rate) for epoch \(epoch + 1)", epoch: epoch)
        }
        context.optimizer.learningRate = rate
        if verbose > 0 { output.write("Epoch \(epoch + 1): LearningRateScheduler setting learning rate to \(rate).\n") }
    }
}

// MARK: - CSV log

/// Writes each epoch's logs to a CSV file (Keras `CSVLogger`): a header `epoch,<keys>` (keys
/// sorted) and one row per epoch, epochs counted from 0.
///
/// The file is rewritten *atomically after every epoch* (through `AtomicFile`: a temporary file
/// in the same directory, synced, then renamed), so at any moment it holds a complete table of the epochs so far, even if
/// training is killed; the cost, rewriting a few lines per epoch, is negligible. With
/// `append: true`, the rows of an existing file are kept and new rows go after them (its header
/// is not repeated).
public final class CSVLogger: Callback {
    /// The file written.
    public let path: String
    /// The field separator.
    public let separator: String
    /// Whether to keep an existing file's rows.
    public let append: Bool
    private var text = ""
    private var keys: [String]?

    /// A logger writing to `path`.
    public init(path: String, separator: String = ",", append: Bool = false) {
        self.path = path
        self.separator = separator
        self.append = append
    }

    /// Reads the existing file when appending.
    public func onTrainBegin(_ context: TrainingContext) throws {
        keys = nil
        text = ""
        if append, let existing = try? String(contentsOfFile: path, encoding: .utf8), !existing.isEmpty {
            text = existing.hasSuffix("\n") ? existing : existing + "\n"
            if let header = existing.split(separator: "\n").first {
                keys = Array(String(header).components(separatedBy: separator).dropFirst())
            }
        }
    }

    /// Adds the epoch's row and rewrites the file.
    /// - Throws: `TrainingError` when the file cannot be written.
    public func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
        if keys == nil {
            keys = logs.keys.sorted()
            text += (["epoch"] + keys!).joined(separator: separator) + "\n"
        }
        text += ([String(epoch)] + keys!.map { logs[$0].map { "\($0)" } ?? "" }).joined(separator: separator) + "\n"
        do {
            try AtomicFile.write(Array(text.utf8), to: path)
        } catch {
            throw TrainingError("CSVLogger cannot write \(path): \(error)", epoch: epoch)
        }
    }
}
