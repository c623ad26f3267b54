// sequence-classifier: reads each 28x28 image as a sequence of 28 rows of 28 pixels and
// classifies it with a recurrent layer (LSTM by default, GRU or SimpleRNN by flag) and a Dense
// layer on its last output: the model the issue's Keras reference times, LSTM(128) then Dense(10),
// Adam 1e-3, batch 128.
//
//   swift run -c release sequence-classifier [--cell lstm|gru|rnn] [--units N] [--dataset fashion|mnist]
//       [--data DIR] [--download] [--epochs N] [--batch-size N] [--seed N] [--output DIR] [--json]
//       [--learning-rate X] [--schedule constant|cosine] [--augment]
//
// Prints each epoch's loss, accuracy and seconds (the library's progress bar on a terminal), then the test accuracy and the median seconds per
// epoch (training steps only). With --output, the per-epoch history is written as
// <cell>-history.csv and the trained model is saved under <output>/model.
import ArgumentParser
import Foundation
import Layers
import Recurrent
import _AppSupport

/// The recurrent layer the demo uses.
enum Cell: String, ExpressibleByArgument, CaseIterable {
    case lstm, gru, rnn

    func make(units: Int) -> RecurrentLayer {
        switch self {
        case .lstm: LSTM(units)
        case .gru: GRU(units)
        case .rnn: SimpleRNN(units)
        }
    }

    var typeName: String {
        switch self {
        case .lstm: "LSTM"
        case .gru: "GRU"
        case .rnn: "SimpleRNN"
        }
    }
}

struct SequenceClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sequence-classifier",
        abstract: "Classify MNIST or Fashion-MNIST images read row by row by an LSTM, GRU or SimpleRNN.",
        discussion: """
            Model: Reshape to [28, 28] (28 time steps of 28 features), the recurrent layer (--units, default \
            128, returning its last output), Dense 10. Adam (learning rate 1e-3) on softmax cross-entropy; \
            seconds per epoch count the training steps only (the median over the epochs). Keras 3 on \
            TensorFlow takes 9.8 to 11.3 s per epoch for the LSTM on a 2-core machine (test accuracy \
            0.8275 on Fashion-MNIST after 2 epochs); Tools/reference/keras_lstm.py runs it.
            """
    )

    @OptionGroup var options: DemoOptions

    @OptionGroup var training: TrainingOptions

    @Option(help: "The recurrent layer: lstm, gru or rnn (SimpleRNN).")
    var cell: Cell = .lstm

    @Option(help: "The recurrent layer's state size.")
    var units: Int = 128

    func validate() throws {
        guard units >= 1 else { throw ValidationError("--units must be at least 1, got \(units).") }
    }

    func run() throws {
        try reportingFailures(of: "sequence-classifier") {
            let data = try DemoData(options)
            if !options.json { print(runHeader(data, options: options, training: training)) }
            let model = Sequential(inputShape: [28, 28, 1]) {
                Reshape([28, 28])
                cell.make(units: units)
                Dense(10)
            }
            let name = cell.rawValue
            let result = try trainAndEvaluate(model, name: name,
                                              architecture: "28 steps x 28 features, \(cell.typeName)(\(units)), Dense 10",
                                              data: data, options: options, training: training)
            var files: [String] = []
            if let output = options.output {
                files.append("\(output)/\(name)-history.csv")
                let directory = try makeOutputDirectory(output) + "/model"
                try model.save(to: directory, classNames: data.dataset.classNames,
                               metadata: ["app": "sequence-classifier", "dataset": data.dataset.rawValue])
                files.append(directory)
            }
            if options.json {
                try printJSONLine(DemoReport(app: "sequence-classifier", options: options, models: [result], files: files))
                return
            }
            print("")
            print(sideBySide(columns: [name], rows: [
                ("parameters", [grouped(result.parameters)]),
                ("seconds per epoch", [String(format: "%.2f", result.medianEpochSeconds)]),
                ("train accuracy", [String(format: "%.4f", result.trainAccuracy)]),
                ("test accuracy", [String(format: "%.4f", result.testAccuracy)]),
            ]))
            print("(seconds per epoch: median over \(options.epochs) epoch\(options.epochs == 1 ? "" : "s"), training steps only)")
            for file in files { print("wrote \(file)") }
        }
    }
}

SequenceClassifier.main()
