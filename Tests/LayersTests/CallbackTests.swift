import Foundation
import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class CallbackTests: XCTestCase {
    private func smallModel(learningRate: Float = 0.1) -> Sequential {
        let model = Sequential(inputShape: [2]) { Dense(8, activation: .tanh); Dense(2) }
        model.compile(optimizer: PlainSGD(learningRate: learningRate), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        return model
    }

    func testModeDecidesWhichDirectionImproves() {
        // `.auto` follows Keras: names with "acc" are maximised, everything else minimised.
        XCTAssertTrue(EarlyStopping.Mode.auto.maximizes("val_accuracy"))
        XCTAssertTrue(EarlyStopping.Mode.auto.maximizes("acc"))
        XCTAssertFalse(EarlyStopping.Mode.auto.maximizes("val_loss"))
        XCTAssertTrue(ModelCheckpoint.Mode.max.maximizes("loss"))
        XCTAssertFalse(ModelCheckpoint.Mode.min.maximizes("val_accuracy"))
    }

    func testProgressBarOffATerminalWritesOnePlainLinePerEpoch() throws {
        let (x, y) = spiralData(perClass: 20, seed: 1)
        let output = TextBuffer(isTerminal: false)
        try smallModel().fit(x: x, y: y, epochs: 3, batchSize: 8, validationSplit: 0.25,
                             callbacks: [ProgressBar(verbose: 1, output: output)], verbose: 1)
        let text = output.text
        XCTAssertFalse(text.contains("\r"), "no carriage returns off a terminal: \(text.debugDescription)")
        XCTAssertFalse(text.contains("\u{1B}"), "no escape sequences: \(text.debugDescription)")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.count, 3, text)
        XCTAssertTrue(lines[1].hasPrefix("Epoch 2/3: 4/4 [==============================] - "), String(lines[1]))
        for part in [" - loss: ", " - accuracy: ", " - val_loss: ", " - val_accuracy: ", "/step"] {
            XCTAssertTrue(lines[2].contains(part), "line lacks \(part): \(lines[2])")
        }
        XCTAssertTrue(text.hasSuffix("\n"))
    }

    func testProgressBarRedrawsOnATerminal() throws {
        let (x, y) = spiralData(perClass: 20, seed: 1)
        let output = TextBuffer(isTerminal: true)
        try smallModel().fit(x: x, y: y, epochs: 2, batchSize: 8, callbacks: [ProgressBar(output: output)], verbose: 1)
        let text = output.text
        XCTAssertTrue(text.contains("Epoch 1/2\n"), text)
        XCTAssertTrue(text.contains("\r1/5 [======>.......................] - ETA: "), text.debugDescription)
        XCTAssertTrue(text.contains("\r5/5 [==============================] - "), text.debugDescription)
        XCTAssertEqual(text.components(separatedBy: "\n").count - 1, 4, "a header and a final line per epoch")
    }

    func testVerbosityLevels() throws {
        let (x, y) = spiralData(perClass: 10, seed: 1)
        func run(_ verbose: Int, terminal: Bool) throws -> String {
            let output = TextBuffer(isTerminal: terminal)
            try smallModel().fit(x: x, y: y, epochs: 2, batchSize: 5, callbacks: [ProgressBar(verbose: verbose, output: output)], verbose: verbose)
            return output.text
        }
        XCTAssertEqual(try run(0, terminal: true), "")
        let two = try run(2, terminal: true)
        XCTAssertFalse(two.contains("\r") || two.contains("["), "verbose 2 has no bar: \(two.debugDescription)")
        XCTAssertEqual(two.split(separator: "\n").count, 2)
        XCTAssertTrue(two.hasPrefix("Epoch 1/2: 4/4 - "), two)
        let three = try run(3, terminal: false)
        XCTAssertEqual(three.split(separator: "\n").count, 3, "verbose 3 adds a closing line: \(three)")
        XCTAssertTrue(three.contains("Trained 2 epochs in "), three)
    }

    func testEarlyStoppingRestoresTheBestEpochsWeights() throws {
        // Validation labels are the opposite of the training labels: once training fits its
        // labels, validation loss rises, so the best validation epoch comes early.
        let (x, y) = spiralData(perClass: 30, seed: 2)
        let flipped = y.map { 1 - $0 }
        let model = smallModel(learningRate: 0.5)
        let recorder = RecordingCallback()
        let output = TextBuffer()
        let stopping = EarlyStopping(monitor: "val_loss", patience: 2, restoreBestWeights: true, verbose: 1, output: output)
        let history = try model.fit(x: x, y: y, epochs: 50, batchSize: 10, validationData: (x, flipped),
                                    callbacks: [recorder, stopping], verbose: 0)
        let valLoss = history["val_loss"]!
        let best = try XCTUnwrap(stopping.bestEpoch)
        XCTAssertEqual(valLoss[best], valLoss.min()!)
        XCTAssertEqual(stopping.stoppedEpoch, best + 2, "stops after `patience` epochs without improvement")
        XCTAssertEqual(history.epochs.count, best + 3)
        XCTAssertLessThan(history.epochs.count, 50)
        XCTAssertEqual(stopping.restoredEpoch, best)
        XCTAssertEqual(model.weights(), recorder.weightsAtEpochEnd[best])
        XCTAssertNotEqual(model.weights(), recorder.weightsAtEpochEnd.last!)
        XCTAssertTrue(output.text.contains("Restoring model weights from the end of the best epoch: \(best + 1)."), output.text)
    }

    func testEarlyStoppingAlsoRestoresWhenTrainingRunsToTheLastEpoch() throws {
        let (x, y) = spiralData(perClass: 30, seed: 2)
        let model = smallModel(learningRate: 0.5)
        let recorder = RecordingCallback()
        let stopping = EarlyStopping(monitor: "val_loss", patience: 100, restoreBestWeights: true)
        let history = try model.fit(x: x, y: y, epochs: 6, batchSize: 10, validationData: (x, y.map { 1 - $0 }),
                                    callbacks: [recorder, stopping], verbose: 0)
        XCTAssertEqual(history.epochs.count, 6)
        XCTAssertNil(stopping.stoppedEpoch)
        let best = try XCTUnwrap(stopping.restoredEpoch)
        XCTAssertLessThan(best, 5)
        XCTAssertEqual(model.weights(), recorder.weightsAtEpochEnd[best])
    }

    func testEarlyStoppingWithoutTheMonitoredValueThrows() {
        let (x, y) = spiralData(perClass: 5, seed: 1)
        XCTAssertThrowsError(try smallModel().fit(x: x, y: y, epochs: 2, callbacks: [EarlyStopping()], verbose: 0)) { error in
            XCTAssertTrue("\(error)".contains("\"val_loss\"") && "\(error)".contains("validationData"), "\(error)")
        }
    }

    func testLearningRateSchedulerSetsTheRateBeforeEachEpoch() throws {
        let (x, y) = spiralData(perClass: 5, seed: 1)
        let model = smallModel(learningRate: 0.4)
        let recorder = RecordingCallback()
        try model.fit(x: x, y: y, epochs: 3, callbacks: [LearningRateScheduler { epoch, lr in epoch == 0 ? lr : lr / 2 }, recorder], verbose: 0)
        XCTAssertEqual(recorder.learningRates, [0.4, 0.2, 0.1])
        XCTAssertEqual(model.optimizer?.learningRate, 0.1)
    }

    func testCallbacksSeeEventsInOrderAndCanStopTraining() throws {
        let (x, y) = spiralData(perClass: 5, seed: 1)
        let recorder = RecordingCallback()
        recorder.stopAfterEpoch = 1
        let history = try smallModel().fit(x: x, y: y, epochs: 5, batchSize: 6, callbacks: [recorder], verbose: 0)
        XCTAssertEqual(history.epochs, [0, 1])
        XCTAssertEqual(recorder.events, ["trainBegin", "epochBegin 0", "batchEnd 0", "batchEnd 1", "epochEnd 0",
                                         "epochBegin 1", "batchEnd 0", "batchEnd 1", "epochEnd 1", "trainEnd"])
    }

    func testCSVLoggerWritesACompleteTableAfterEveryEpoch() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-csv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("log.csv").path
        let (x, y) = spiralData(perClass: 5, seed: 1)
        let model = smallModel()
        let history = try model.fit(x: x, y: y, epochs: 3, callbacks: [CSVLogger(path: path)], verbose: 0)
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "epoch,accuracy,loss")
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(String(lines[3]), "2,\(history["accuracy"]![2]),\(history["loss"]![2])")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["log.csv"], "no temporary file is left")
        try model.fit(x: x, y: y, epochs: 2, callbacks: [CSVLogger(path: path, append: true)], verbose: 0)
        lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 6, "appended rows, one header")
        XCTAssertTrue(lines[5].hasPrefix("1,"))
    }

    func testEarlyStoppingRestoresWhenTrainingEndsWithAnError() throws {
        /// Turns the first kernel into NaN before epoch 2, so its first step's loss is NaN.
        final class Poison: Callback {
            func onEpochBegin(_ epoch: Int, context: TrainingContext) throws {
                guard epoch == 2 else { return }
                let p = context.model.parameters[0]
                p.value = Tensor(shape: p.value.shape, repeating: .nan)
            }
        }
        let (x, y) = spiralData(perClass: 10, seed: 1)
        let model = smallModel()
        let recorder = RecordingCallback()
        let stopping = EarlyStopping(monitor: "loss", patience: 5, restoreBestWeights: true)
        XCTAssertThrowsError(try model.fit(x: x, y: y, epochs: 5, batchSize: 5, callbacks: [recorder, stopping, Poison()], verbose: 0)) { error in
            XCTAssertEqual((error as? TrainingError)?.epoch, 2)
            XCTAssertEqual((error as? TrainingError)?.step, 0)
        }
        XCTAssertEqual(recorder.events.last, "trainEnd", "callbacks finish however training ends")
        let best = try XCTUnwrap(stopping.restoredEpoch)
        XCTAssertEqual(model.weights(), recorder.weightsAtEpochEnd[best])
        XCTAssertTrue(model.parameters[0].value.scalars.allSatisfy(\.isFinite))
    }
}
