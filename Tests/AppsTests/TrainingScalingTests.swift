import Foundation
import XCTest
import _NeuriteTestSupport

/// `neurite-bench training --threads 1,2 --load 0,1` (issue 14's thread-scaling measurement) on a
/// smoke run: a small Fashion-MNIST-format data set written here, two epochs of the shallow MLP.
/// The figures mean nothing at this size; the test checks that every run and every scaling line
/// is there with its fields, that the figures are positive and agree with each other, and that
/// one and two threads train to the same test accuracy (the pool's results do not depend on its width).
final class TrainingScalingTests: XCTestCase {
    private static let trainCount = 1024, testCount = 64

    /// A folder with the four files (each image also carries its index modulo 251 in its last pixel).
    private func tinyDataSet() throws -> String {
        let folder = try TinyIDXDataSet.write(prefix: "training-scaling", trainCount: Self.trainCount,
                                              testCount: Self.testCount) { i, pixels in
            pixels[pixels.startIndex + 783] = UInt8(i % 251)
        }
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder.path
    }

    func testThreadsAndLoadPrintRunsAndScalingLines() throws {
        let folder = try tinyDataSet()
        let run = try BuiltProducts.run("neurite-bench", ["training", "--models", "shallow_mlp", "--threads", "1,2",
                                                          "--load", "0,1", "--rounds", "2", "--epochs", "2",
                                                          "--limit", "1000", "--data", folder],
                                        anchor: Self.self)
        XCTAssertEqual(run.status, 0, "neurite-bench failed:\n\(run.output)\n\(run.errors)")
        var runs: [[String: Any]] = [], scaling: [[String: Any]] = []
        for text in run.output.split(separator: "\n") {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], String(text))
            if object["scaling"] as? String == "threads" { scaling.append(object) } else { runs.append(object) }
        }
        // 2 loads x 2 rounds x 2 thread counts, each its own child process.
        XCTAssertEqual(runs.count, 8, run.output)
        for load in [0, 1] {
            let mine = runs.filter { $0["load"] as? Int == load }
            XCTAssertEqual(mine.map { $0["threads"] as? Int ?? 0 }.sorted(), [1, 1, 2, 2], "load \(load): \(mine)")
            XCTAssertEqual(Set(mine.map { $0["round"] as? Int ?? -1 }), [0, 1], "load \(load): \(mine)")
            for line in mine {
                XCTAssertEqual(line["samples"] as? Int, 1000, "\(line)")
                XCTAssertGreaterThan(line["epoch_s"] as? Double ?? 0, 0, "\(line)")
                XCTAssertGreaterThan(line["epoch_cpu_s"] as? Double ?? 0, 0, "\(line)")
                XCTAssertGreaterThan(line["peak_rss_mb"] as? Double ?? 0, 1, "\(line)")
            }
            // One thread or two, the same training: the same test accuracy, and a learnt one.
            let accuracies = Set(mine.compactMap { $0["test_accuracy"] as? Double })
            XCTAssertEqual(accuracies.count, 1, "load \(load): \(mine)")
            XCTAssertGreaterThan(accuracies.first ?? 0, 0.3, "load \(load): \(mine)")

            let line = try XCTUnwrap(scaling.first { $0["load"] as? Int == load }, "no scaling line for load \(load):\n\(run.output)")
            XCTAssertEqual(line["model"] as? String, "shallow_mlp")
            XCTAssertEqual(line["rounds"] as? Int, 2)
            let t1 = try XCTUnwrap(line["epoch_s_t1"] as? Double), t2 = try XCTUnwrap(line["epoch_s_t2"] as? Double)
            // The best of the rounds: no run of that count was faster.
            XCTAssertEqual(t1, mine.filter { $0["threads"] as? Int == 1 }.compactMap { $0["epoch_s"] as? Double }.min() ?? -1)
            XCTAssertEqual(t2, mine.filter { $0["threads"] as? Int == 2 }.compactMap { $0["epoch_s"] as? Double }.min() ?? -1)
            let speedup = try XCTUnwrap(line["speedup_t2"] as? Double), cpuRatio = try XCTUnwrap(line["cpu_ratio_t2"] as? Double)
            // Each figure is printed to 0.0005: speedup x t2 is t1 to within what that rounding allows.
            XCTAssertEqual(speedup * t2, t1, accuracy: 0.0005 * (1 + speedup + t2) + 1e-9, "\(line)")
            XCTAssertGreaterThan(cpuRatio, 0, "\(line)")
            XCTAssertGreaterThan(line["epoch_cpu_s_t1"] as? Double ?? 0, 0, "\(line)")
        }
        XCTAssertEqual(scaling.count, 2, run.output)
    }

    /// `--isas portable`: the model trains in a child forced onto that path (not the best one this
    /// CPU has), and the summary line names it; with no Python given, the peers are skipped.
    func testIsasTrainsEachModelOnTheNamedPath() throws {
        let folder = try tinyDataSet()
        let run = try BuiltProducts.run("neurite-bench", ["training", "--models", "shallow_mlp", "--isas", "portable",
                                                          "--epochs", "2", "--limit", "300", "--data", folder,
                                                          "--python", "/nonexistent/python", "--torch-python", "/nonexistent/python"],
                                        anchor: Self.self)
        XCTAssertEqual(run.status, 0, "neurite-bench failed:\n\(run.output)\n\(run.errors)")
        let lines = try run.output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { text in
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], String(text))
        }
        let ours = lines.filter { $0["impl"] as? String == "neurite" }
        XCTAssertEqual(ours.count, 1, run.output)
        XCTAssertEqual(ours.first?["isa"] as? String, "portable", run.output)
        XCTAssertNil(ours.first?["failed"], run.output)
        XCTAssertGreaterThan(ours.first?["epoch_s"] as? Double ?? 0, 0, run.output)
        let summaries = lines.filter { $0["compare"] as? String == "summary" }
        XCTAssertEqual(summaries.map { $0["isa"] as? String ?? "" }, ["portable"], run.output)
        XCTAssertEqual(lines.filter { $0["skipped"] != nil }.count, 2, run.output)
    }

    /// The new options are refused where they mean nothing, as every other option is.
    func testScalingOptionsAreCheckedBeforeAnythingRuns() throws {
        for arguments in [["training", "--load", "1"], ["training", "--threads", "1,x"], ["training", "--threads", "0,2"],
                          ["gemm", "--threads", "1,2"], ["training", "--threads", "1,2", "--rounds", "0"],
                          ["training", "--threads", "1,2", "--load", "-1"], ["training", "--rounds", "2"],
                          ["training", "--isas", "sse"], ["training", "--isas", "portable,portable"], ["training", "--isas", ""],
                          ["gemm", "--isas", "portable"], ["training", "--isas", "portable", "--threads", "1,2"]] {
            let result = try BuiltProducts.run("neurite-bench", arguments, anchor: Self.self)
            XCTAssertEqual(result.status, 64, "neurite-bench \(arguments): \(result.errors)")
            XCTAssertEqual(result.output, "", "neurite-bench \(arguments) ran something")
        }
    }
}
