// shallow-vs-deep: one hidden layer against three, on Fashion-MNIST (or MNIST), with the Layers
// module's Sequential, fit and evaluate. Both models train the same way (Adam 1e-3, softmax
// cross-entropy, the same seed and batches); the table at the end puts their size, speed and
// accuracies side by side: the deep model has 5.6 times the weights and costs about four times as
// much per epoch, for a point or two of test accuracy on images this small.
//
//   swift run -c release shallow-vs-deep [--dataset fashion|mnist] [--data DIR] [--download] [--epochs N]
//       [--batch-size N] [--seed N] [--output DIR] [--json] [--learning-rate X] [--schedule constant|cosine]
//       [--augment]
//
// Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package (Tools/install-deps.sh), or
// --data / $NEURITE_DATA; MNIST from --data, $NEURITE_DATA or the per-user cache (--download fills it). With --output,
// each model's per-epoch history is written as <name>-history.csv.
import ArgumentParser
import Foundation
import Layers
import _AppSupport

struct ShallowVsDeep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shallow-vs-deep",
        abstract: "Train a shallow and a deep network on Fashion-MNIST and compare them side by side.",
        discussion: """
            shallow: Flatten, Dense 128 relu, Dense 10. deep: Flatten, Dense 512, 256 and 128 relu, Dense 10. \
            Both train with Adam (learning rate 1e-3) on softmax cross-entropy, from the same seed; seconds \
            per epoch count the training steps only (the median over the epochs), and accuracies are measured \
            after the last epoch on the whole training and test sets.
            """
    )

    @OptionGroup var options: DemoOptions

    @OptionGroup var training: TrainingOptions

    func run() throws {
        try reportingFailures(of: "shallow-vs-deep") {
            let data = try DemoData(options)
            if !options.json { print(runHeader(data, options: options, training: training)) }
            let models: [(name: String, architecture: String, hidden: String, model: Sequential)] = [
                ("shallow", "784-128-10, relu", "128", DemoModels.shallowMLP()),
                ("deep", "784-512-256-128-10, relu", "512-256-128", DemoModels.deepMLP()),
            ]
            var runs: [ModelRun] = []
            for entry in models {
                if !options.json { print("") }
                runs.append(try trainAndEvaluate(entry.model, name: entry.name, architecture: entry.architecture,
                                                 data: data, options: options, training: training))
            }
            let files = options.output.map { output in runs.map { "\(output)/\($0.name)-history.csv" } } ?? []
            if options.json {
                try printJSONLine(DemoReport(app: "shallow-vs-deep", options: options, models: runs, files: files))
                return
            }
            print("")
            print(sideBySide(columns: runs.map(\.name), rows: [
                ("hidden layers", models.map(\.hidden)),
                ("parameters", runs.map { grouped($0.parameters) }),
                ("seconds per epoch", runs.map { String(format: "%.2f", $0.medianEpochSeconds) }),
                ("train accuracy", runs.map { String(format: "%.4f", $0.trainAccuracy) }),
                ("test accuracy", runs.map { String(format: "%.4f", $0.testAccuracy) }),
            ]))
            print("(seconds per epoch: median over \(options.epochs) epoch\(options.epochs == 1 ? "" : "s"), training steps only)")
            for file in files { print("wrote \(file)") }
        }
    }
}

ShallowVsDeep.main()
