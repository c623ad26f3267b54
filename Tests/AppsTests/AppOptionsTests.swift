import Foundation
import XCTest
import _NeuriteTestSupport

/// Every app under `Apps/` accepts exactly the options it uses: its `--help` lists them and no
/// others, each option it lacks is a usage error (ArgumentParser's exit status 64; 2 for
/// `mlp-from-scratch`, which parses by hand), and its own options parse. The apps run from the
/// products folder beside this test bundle and never train here: the runs that get past parsing
/// point `--data` at an empty folder, so they stop at loading the data.
final class AppOptionsTests: XCTestCase {
    private typealias Run = ProductRun

    /// The options of `DemoOptions`, which every image demo built on `_AppSupport` takes.
    private static let dataOptions: Set<String> = ["--dataset", "--data", "--download", "--epochs", "--batch-size",
                                                   "--seed", "--output", "--json", "--help"]
    /// The options of `TrainingOptions`, only for the demos that train with `trainAndEvaluate`.
    private static let trainingOptions: Set<String> = ["--learning-rate", "--schedule", "--augment", "--validation",
                                                       "--label-smoothing", "--weight-decay", "--warmup-epochs", "--ema",
                                                       "--shift", "--erase", "--tta"]

    /// The options of `ValidationOptions`, which the unsupervised demos take instead of
    /// `TrainingOptions`: `--validation N` and the deprecated `--split`.
    private static let validationOptions: Set<String> = ["--validation", "--split"]

    /// Each app's options, as `--help` must list them.
    private static let expected: [String: Set<String>] = [
        "shallow-vs-deep": dataOptions.union(trainingOptions),
        "cnn": dataOptions.union(trainingOptions).union(["--model", "--recipe", "--load", "--classify"]),
        "sequence-classifier": dataOptions.union(trainingOptions).union(["--cell", "--units"]),
        "autoencoder": dataOptions.union(["--code-sizes", "--models", "--conv-samples", "--learning-rate",
                                          "--conv-learning-rate", "--noise", "--noise-level"]).union(validationOptions),
        "rbm": dataOptions.union(["--hidden", "--learning-rate", "--method", "--steps", "--momentum",
                                  "--classifier-epochs", "--decay", "--features"]).union(validationOptions),
        "rebalance": dataOptions.union(["--minority", "--keep", "--fraction", "--classifier", "--samplers"])
            .union(validationOptions),
        "text-generator": ["--data", "--epochs", "--batch-size", "--seed", "--output", "--json", "--load",
                           "--temperature", "--length", "--prime", "--window", "--units", "--help"],
        "forecast": ["--data", "--series", "--model", "--epochs", "--seed", "--output", "--json", "--help"],
        "genome": ["--data", "--epochs", "--context", "--window", "--seed", "--output", "--json", "--help"],
        "distributed-train": ["--model", "--epochs", "--batch-size", "--seed", "--learning-rate", "--data", "--idx",
                              "--prefetch", "--workers", "--output", "--json", "--no-baseline", "--help"],
        "mlp-from-scratch": ["--dataset", "--data", "--epochs", "--batch-size", "--hidden", "--learning-rate",
                             "--validation", "--seed", "--output", "--json"],
    ]

    /// A valid value for each option that takes one (flags take none).
    private static let values: [String: String] = [
        "--dataset": "mnist", "--data": "/nonexistent", "--epochs": "1", "--batch-size": "8", "--seed": "3",
        "--output": "/nonexistent", "--learning-rate": "0.01", "--schedule": "cosine", "--model": "course",
        "--load": "/nonexistent", "--classify": "x.png", "--cell": "gru", "--units": "4", "--code-sizes": "2",
        "--models": "dense", "--conv-samples": "10", "--conv-learning-rate": "0.01", "--noise": "masking",
        "--noise-level": "0.2", "--hidden": "4", "--method": "cd", "--steps": "2", "--momentum": "0.5",
        "--classifier-epochs": "1", "--minority": "3", "--keep": "5", "--fraction": "0.5", "--classifier": "mlp",
        "--samplers": "none,smote", "--temperature": "1.0", "--length": "10", "--prime": "a", "--window": "8",
        "--series": "stocks", "--context": "4", "--idx": "/nonexistent", "--prefetch": "1", "--workers": "1",
        "--split": "validation", "--decay": "linear", "--features": "rbm+pixels",
        "--validation": "100", "--label-smoothing": "0.1", "--weight-decay": "0.01", "--warmup-epochs": "1",
        "--ema": "0.99", "--recipe": "best", "--shift": "1", "--erase": "0.5",
    ]

    private static let flags: Set<String> = ["--download", "--json", "--augment", "--no-baseline", "--help", "--tta"]

    private func run(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Run {
        try BuiltProducts.run(tool, arguments, environment: environment, threads: 1, anchor: AppOptionsTests.self)
    }

    /// The long options `--help` lists: ArgumentParser's option lines (two spaces, then the names),
    /// or every `--name` in `mlp-from-scratch`'s one usage line.
    private func listedOptions(_ tool: String) throws -> Set<String> {
        let help = try run(tool, ["--help"])
        XCTAssertEqual(help.status, 0, "\(tool) --help: \(help.errors)")
        let pattern = tool == "mlp-from-scratch" ? #"--[a-z][a-z0-9-]*"# : #"(?m)^  (?:-[A-Za-z], )?(--[a-z][a-z0-9-]*)"#
        let regex = try NSRegularExpression(pattern: pattern)
        let text = help.output
        let matches = regex.matches(in: text, range: NSRange(text.startIndex..., in: text))
        return Set(matches.map { match in
            let range = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
            return String(text[Range(range, in: text)!])
        })
    }

    /// `option`, followed by a valid value when it takes one.
    private func arguments(_ option: String) -> [String] {
        Self.flags.contains(option) ? [option] : [option, Self.values[option] ?? "1"]
    }

    /// A fresh empty folder, removed at the end of the test.
    private func emptyFolder() throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("app-options-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder.path
    }

    func testHelpListsExactlyEachAppsOptions() throws {
        for (tool, options) in Self.expected.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(try listedOptions(tool), options, tool)
        }
    }

    func testOptionsAnAppDoesNotUseAreUsageErrors() throws {
        let everyOption = Self.expected.values.reduce(Set<String>()) { $0.union($1) }.subtracting(["--help"])
        for (tool, options) in Self.expected.sorted(by: { $0.key < $1.key }) {
            for option in everyOption.subtracting(options).sorted() {
                let result = try run(tool, arguments(option))
                if tool == "mlp-from-scratch" {
                    XCTAssertEqual(result.status, 2, "\(tool) \(option): \(result.errors)")
                    XCTAssertTrue(result.errors.contains("unknown option \(option)"), "\(tool) \(option): \(result.errors)")
                } else {
                    XCTAssertEqual(result.status, 64, "\(tool) \(option) must be a usage error: \(result.errors)")
                    XCTAssertTrue(result.errors.contains("Unknown option '\(option)'"), "\(tool) \(option): \(result.errors)")
                }
                XCTAssertEqual(result.output, "", "\(tool) \(option) printed on standard output")
            }
        }
    }

    func testTheFlagsTheIssueNamesAreRejected() throws {
        for (tool, arguments) in [("rbm", ["--schedule", "cosine"]), ("autoencoder", ["--augment"]),
                                  ("rbm", ["--augment"]), ("rebalance", ["--learning-rate", "0.1"]),
                                  ("autoencoder", ["--schedule", "cosine"]), ("rebalance", ["--schedule", "cosine"])] {
            let result = try run(tool, arguments)
            XCTAssertEqual(result.status, 64, "\(tool) \(arguments): \(result.errors)")
        }
    }

    /// Every option of the image demos parses and validates: the run stops only at the data,
    /// which is not in the empty `--data` folder, and the error says how to get it.
    func testEveryOptionOfTheImageDemosParses() throws {
        let data = try emptyFolder()
        for tool in ["shallow-vs-deep", "cnn", "sequence-classifier", "autoencoder", "rbm", "rebalance"] {
            var all: [String] = []
            // --download would fetch the files; --load makes cnn classify instead of training; --split
            // is a deprecated spelling of --validation that cannot be combined with it (checked below).
            for option in Self.expected[tool]!.subtracting(["--help", "--download", "--load", "--data", "--split"]).sorted() {
                all += arguments(option)
            }
            let result = try run(tool, all + ["--data", data])
            XCTAssertEqual(result.status, 1, "\(tool) \(all): \(result.errors)")
            XCTAssertTrue(result.errors.contains("\(tool): error: cannot load MNIST"), "\(tool): \(result.errors)")
            XCTAssertTrue(result.errors.contains("pass --download"), "\(tool): \(result.errors)")
            XCTAssertEqual(result.output, "", "\(tool) printed on standard output with --json")
        }
        // The deprecated --split parses alone, and stops at the data as well.
        for tool in ["autoencoder", "rbm", "rebalance"] {
            for split in ["test", "validation"] {
                let result = try run(tool, ["--dataset", "mnist", "--split", split, "--data", data, "--json"])
                XCTAssertEqual(result.status, 1, "\(tool) --split \(split): \(result.errors)")
                XCTAssertTrue(result.errors.contains("\(tool): error: cannot load MNIST"), "\(tool) --split \(split): \(result.errors)")
            }
        }
        // cnn --load: parses, then fails on the missing model folder (exit 1, not a usage error).
        let load = try run("cnn", ["--load", data + "/missing-model", "--classify", "x.png", "--json"])
        XCTAssertEqual(load.status, 1, load.errors)
        XCTAssertTrue(load.errors.hasPrefix("cnn: error:"), load.errors)
    }

    /// The sequence demos' options parse too: each run stops at its missing data file (exit 1 with
    /// the demo's own error, not a usage error). distributed-train runs only under mpirun, so its
    /// options are checked by `--help` and the rejections above.
    func testEveryOptionOfTheSequenceDemosParses() throws {
        let folder = try emptyFolder()
        let runs: [(String, [String])] = [
            ("forecast", ["--data", folder, "--series", "stocks", "--model", "conv1d", "--epochs", "1", "--seed", "2",
                          "--output", folder + "/out", "--json"]),
            ("genome", ["--data", folder + "/missing.fa", "--epochs", "1", "--context", "4", "--window", "16", "--seed", "2",
                        "--output", folder + "/out", "--json"]),
            ("text-generator", ["--data", folder + "/missing.txt", "--epochs", "1", "--batch-size", "8", "--seed", "2",
                                "--output", folder + "/out", "--json", "--temperature", "0.5,1.0", "--length", "10",
                                "--prime", "a", "--window", "8", "--units", "4"]),
            ("text-generator", ["--load", folder + "/missing-model", "--length", "5"]),
        ]
        for (tool, arguments) in runs {
            let result = try run(tool, arguments)
            XCTAssertEqual(result.status, 1, "\(tool) \(arguments): \(result.errors)")
            XCTAssertTrue(result.errors.hasPrefix("\(tool): error:"), "\(tool): \(result.errors)")
        }
    }

    /// Out-of-range values are usage errors too, checked before anything is loaded.
    func testBadValuesAreUsageErrors() throws {
        for (tool, arguments) in [("shallow-vs-deep", ["--learning-rate", "0"]), ("cnn", ["--learning-rate", "-1"]),
                                  ("sequence-classifier", ["--schedule", "linear"]), ("rbm", ["--epochs", "0"]),
                                  ("autoencoder", ["--batch-size", "0"]), ("rebalance", ["--dataset", "cifar"]),
                                  ("cnn", ["--validation", "60000"]), ("cnn", ["--validation", "-1"]),
                                  ("shallow-vs-deep", ["--label-smoothing", "1"]), ("cnn", ["--ema", "1"]),
                                  ("cnn", ["--weight-decay", "-0.1"]), ("sequence-classifier", ["--warmup-epochs", "-1"]),
                                  ("cnn", ["--recipe", "fastest"]), ("cnn", ["--model", "huge"]),
                                  ("rebalance", ["--validation", "60000"]), ("rbm", ["--validation", "-1"]),
                                  ("autoencoder", ["--validation", "60000"]), ("rbm", ["--split", "train"]),
                                  ("rebalance", ["--split", "validation", "--validation", "100"]),
                                  ("autoencoder", ["--split", "test", "--validation", "0"])] {
            let result = try run(tool, arguments)
            XCTAssertEqual(result.status, 64, "\(tool) \(arguments): \(result.errors)")
        }
    }

    /// `neurite-bench --help` prints its suites and options and benchmarks nothing; an unknown
    /// suite or option is a usage error instead of a run of nothing (or of the default suites).
    func testBenchmarkHelpListsSuitesAndOptionsWithoutRunning() throws {
        let help = try run("neurite-bench", ["--help"])
        XCTAssertEqual(help.status, 0, help.errors)
        XCTAssertFalse(help.output.contains("\"bench\""), "--help started a benchmark: \(help.output)")
        for suite in ["gemm", "microkernel", "elementwise", "optimizers", "datasets", "layers", "recurrent", "sequence",
                      "unsupervised", "training", "softmax-head", "streaming", "all"] {
            XCTAssertTrue(help.output.contains(suite), "--help does not name the suite \(suite)")
        }
        for option in ["--quick", "--min-seconds", "--sizes", "--data", "--epochs", "--seed", "--models", "--python",
                       "--source", "--prefetch", "--workers"] {
            XCTAssertTrue(help.output.contains("  " + option), "--help does not list \(option)")
        }
        for arguments in [["no-such-suite"], ["gemm", "--min-seconds", "0"], ["--schedule", "cosine"],
                          ["streaming", "--source", "network"], ["gemm", "--sizes", "big"]] {
            let result = try run("neurite-bench", arguments)
            XCTAssertEqual(result.status, 64, "neurite-bench \(arguments): \(result.errors)")
            XCTAssertEqual(result.output, "", "neurite-bench \(arguments) ran something")
        }
    }

    /// `--dataset mnist` with no files anywhere: the error names `--download` instead of failing
    /// without a way out (nothing is downloaded without it).
    func testMissingMNISTSuggestsDownload() throws {
        let home = try emptyFolder()
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home
        environment["NEURITE_DATA"] = nil
        environment["XDG_CACHE_HOME"] = nil
        let result = try run("rbm", ["--dataset", "mnist", "--json"], environment: environment)
        XCTAssertEqual(result.status, 1, result.errors)
        XCTAssertTrue(result.errors.contains("cannot load MNIST"), result.errors)
        XCTAssertTrue(result.errors.contains("pass --download to fetch it into the per-user cache"), result.errors)
        XCTAssertTrue(result.errors.contains(home + "/.cache/neurite/mnist"), "the cache searched: \(result.errors)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: home + "/.cache/neurite/mnist"), "nothing is downloaded")
        XCTAssertEqual(result.output, "")
    }
}
