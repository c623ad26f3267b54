import Optimizers
import TensorCore

/// Saves the model during training (Keras `ModelCheckpoint`), through
/// ``Sequential/save(to:optimizer:classNames:metadata:)``: architecture, weights and, with
/// `saveOptimizer`, the optimizer's state, so that training can resume exactly from the checkpoint.
///
/// After each epoch, with `saveBestOnly` (the default) the model is saved only when the monitored
/// value improves on the best so far (lower for losses, higher for accuracies: `mode` `.auto` picks
/// `max` when the name contains `"acc"`), so `directory` always holds the best epoch's model;
/// otherwise it is saved after every epoch. The directory is overwritten each time, file by file,
/// each file atomically.
///
/// ```swift
/// let checkpoint = ModelCheckpoint(directory: "checkpoints/best", monitor: "val_loss")
/// try model.fit(x: x, y: y, epochs: 20, validationSplit: 0.1, callbacks: [checkpoint])
/// let best = try Sequential.load(from: "checkpoints/best")
/// ```
///
/// In a data-parallel run (`fit` with a strategy) every replica decides alike, on the same
/// combined logs, but only rank 0 prints and writes the files.
///
/// Cost: one save (a few small files, each synced to disk) per improvement.
public final class ModelCheckpoint: Callback {
    /// Whether smaller or larger values are better (as for `EarlyStopping`).
    public typealias Mode = EarlyStopping.Mode

    /// The directory the model is saved in.
    public let directory: String
    /// The logged value watched (`"val_loss"`, `"val_accuracy"`, `"loss"`, ...).
    public let monitor: String
    /// Whether to save only on improvement of `monitor` (otherwise after every epoch).
    public let saveBestOnly: Bool
    /// Whether smaller or larger values are better.
    public let mode: Mode
    /// Whether to save the optimizer's state beside the model.
    public let saveOptimizer: Bool
    /// Class names saved with the model, if any.
    public let classNames: [String]?
    /// Metadata saved with the model.
    public let metadata: [String: String]
    /// 0 silent; above, a line per save.
    public let verbose: Int
    /// Where messages go.
    public let output: any TextOutput
    /// The best monitored value seen in this `fit`.
    public private(set) var best: Double?
    /// The epoch (counted from 0) of the last save.
    public private(set) var lastSavedEpoch: Int?
    /// Every epoch (counted from 0) after which the model was saved, in this `fit`.
    public private(set) var savedEpochs: [Int] = []

    /// A checkpoint saving into `directory`.
    /// - Precondition: `directory` is not empty.
    public init(directory: String, monitor: String = "val_loss", saveBestOnly: Bool = true, mode: Mode = .auto,
                saveOptimizer: Bool = true, classNames: [String]? = nil, metadata: [String: String] = [:],
                verbose: Int = 0, output: any TextOutput = StandardOutput()) {
        neuritePrecondition(!directory.isEmpty, "ModelCheckpoint needs a directory")
        self.directory = directory
        self.monitor = monitor
        self.saveBestOnly = saveBestOnly
        self.mode = mode
        self.saveOptimizer = saveOptimizer
        self.classNames = classNames
        self.metadata = metadata
        self.verbose = verbose
        self.output = output
    }

    private var maximizes: Bool { mode.maximizes(monitor) }

    /// Resets the best value, so one instance serves several `fit` calls.
    public func onTrainBegin(_ context: TrainingContext) throws {
        best = nil
        lastSavedEpoch = nil
        savedEpochs = []
    }

    /// Saves the model when it improved (or always, without `saveBestOnly`).
    /// - Throws: `TrainingError` when the logs lack the monitored value (with `saveBestOnly`) or
    ///   the model cannot be saved.
    public func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
        if saveBestOnly {
            guard let current = logs[monitor] else {
                throw TrainingError("ModelCheckpoint monitors \"\(monitor)\", which the logs lack (they have \(logs.keys.sorted()))"
                                    + (monitor.hasPrefix("val_") ? "; pass validationData or validationSplit to fit" : ""), epoch: epoch)
            }
            let improved: Bool
            if let best {
                improved = maximizes ? current > best : current < best
            } else {
                improved = !current.isNaN
            }
            guard improved else { return }
            if verbose > 0 && context.rank == 0 {
                let previous = best.map(formatLogValue) ?? (maximizes ? "-inf" : "inf")
                output.write("Epoch \(epoch + 1): \(monitor) improved from \(previous) to \(formatLogValue(current)), saving model to \(directory)\n")
            }
            best = current
        } else if verbose > 0 && context.rank == 0 {
            output.write("Epoch \(epoch + 1): saving model to \(directory)\n")
        }
        if context.rank == 0 {
            do {
                try context.model.save(to: directory, optimizer: saveOptimizer ? context.optimizer : nil,
                                       classNames: classNames, metadata: metadata)
            } catch {
                throw TrainingError("ModelCheckpoint cannot save the model: \(error)", epoch: epoch)
            }
        }
        lastSavedEpoch = epoch
        savedEpochs.append(epoch)
    }
}
