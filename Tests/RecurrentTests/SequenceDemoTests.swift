import Foundation
import XCTest
import _NeuriteTestSupport

/// The sequence demos end to end: `forecast` and `genome`, built beside this test bundle, run on
/// the copies of their data in `../shared/data/sequences`, and their JSON results checked.
final class SequenceDemoTests: XCTestCase {
    private typealias Run = ProductRun

    private func run(_ tool: String, _ arguments: [String]) throws -> Run {
        try BuiltProducts.run(tool, arguments, threads: 2, anchor: SequenceDemoTests.self)
    }

    private var sequences: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/data/sequences").standardized.path
    }

    private func json(_ run: Run) throws -> [String: Any] {
        let line = try XCTUnwrap(run.output.split(separator: "\n").last, run.errors)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
    }

    func testForecastScoresEverySeriesAgainstItsBaselinesAndNamesTheRightWinner() throws {
        let result = try run("forecast", ["--data", sequences, "--json", "--epochs", "5"])
        XCTAssertEqual(result.status, 0, result.errors)
        let results = try XCTUnwrap(try json(result)["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["series"] as? String }, ["stocks", "weather", "temps"])
        for r in results {
            let rmse = try XCTUnwrap(r["rmse"] as? [String: Double])
            XCTAssertEqual(Set(rmse.keys), ["lstm", "last_value", "linear"])
            XCTAssertTrue(rmse.values.allSatisfy { $0.isFinite && $0 > 0 }, "\(rmse)")
            XCTAssertEqual(r["winner"] as? String, rmse.min { $0.value < $1.value }?.key)
        }
        // The last value's error does not depend on any training: check it on the hourly series
        // against the file itself (test part = the last 15% of the 8,735 windows of 24 hours).
        let temps = try String(contentsOfFile: sequences + "/seattle-temps.csv", encoding: .utf8)
            .split(whereSeparator: \.isNewline).dropFirst().map { Double($0.split(separator: ",")[1])! }
        let windows = temps.count - 24
        let testStart = Int((Double(windows) * 0.7).rounded()) + Int((Double(windows) * 0.15).rounded())
        let errors = (testStart..<windows).map { temps[$0 + 24] - temps[$0 + 23] }
        let expected = (errors.map { $0 * $0 }.reduce(0, +) / Double(errors.count)).squareRoot()
        let reported = try XCTUnwrap((results[2]["rmse"] as? [String: Double])?["last_value"])
        XCTAssertEqual(reported, expected, accuracy: 1e-3)
    }

    func testForecastRejectsACorruptFileNamingLineAndColumn() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("forecast-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "symbol,date,price\nAAPL,Jan 1 2000,25.94\nAAPL,Feb 1 2000,twenty\n".write(
            to: folder.appendingPathComponent("stocks.csv"), atomically: true, encoding: .utf8)
        let result = try run("forecast", ["--data", folder.path, "--series", "stocks"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.errors.contains("line 3") && result.errors.contains("column 3"), result.errors)
    }

    func testGenomeReportsBothTasksWithFiniteScoresOnDisjointRegions() throws {
        let result = try run("genome", ["--data", sequences + "/lambda_virus.fa.gz", "--epochs", "1", "--json"])
        XCTAssertEqual(result.status, 0, result.errors)
        let report = try json(result)
        XCTAssertEqual(report["bases"] as? Int, 48_502)
        let regions = try XCTUnwrap(report["regions"] as? [String: [Int]])
        XCTAssertEqual(regions["train"]?.last, regions["validation"]?.first)
        XCTAssertEqual(regions["validation"]?.last, regions["test"]?.first)
        let results = try XCTUnwrap(report["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 2)
        let bits = try XCTUnwrap(results[0]["model"] as? Double), markov = try XCTUnwrap(results[0]["baseline"] as? Double)
        // Four bases: at most 2 bits per base for any sensible model, well above 1.5 for DNA.
        XCTAssertTrue((1.5...2.1).contains(bits) && (1.5...2.01).contains(markov), "\(bits) \(markov)")
        let accuracy = try XCTUnwrap(results[1]["model"] as? Double)
        XCTAssertTrue((0.5...1).contains(accuracy), "\(accuracy)")
    }
}
