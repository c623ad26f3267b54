import Foundation
import XCTest
import _NeuriteTestSupport

/// The FLOP rule of `neurite-bench training` (issue 14's arithmetic floor), which lives in the
/// benchmark executable: `neurite-bench flops` counts every training-suite model's FLOPs per epoch
/// from its built layers and compares them with multiply-adds counted by hand from the layer sizes,
/// and checks that a layer the rule does not know (Conv1D) makes the count refuse rather than count
/// it as free. Nothing is timed and nothing trains.
final class TrainingFLOPsTests: XCTestCase {
    /// The models the training suite runs, each of which must be counted and agree with the hand count.
    private static let models = ["shallow_mlp", "deep_mlp", "course_cnn", "batchnorm_cnn", "lstm",
                                 "dense_autoencoder", "conv_autoencoder", "rbm"]

    func testEveryModelMatchesItsHandCountAndUnknownLayersAreRefused() throws {
        let run = try BuiltProducts.run("neurite-bench", ["flops"], anchor: Self.self)
        XCTAssertEqual(run.status, 0, "neurite-bench flops failed:\n\(run.output)\n\(run.errors)")
        var lines: [String: [String: Any]] = [:]
        for text in run.output.split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                  let model = object["model"] as? String else { continue }
            lines[model] = object
        }
        for model in Self.models {
            let line = try XCTUnwrap(lines[model], "no line for \(model) in:\n\(run.output)")
            XCTAssertEqual(line["ok"] as? Bool, true, "\(model): \(line)")
            let counted = try XCTUnwrap(line["gflop_per_epoch"] as? Double, "\(model): \(line)")
            XCTAssertEqual(counted, try XCTUnwrap(line["by_hand_gflop"] as? Double), accuracy: 1e-3, model)
            XCTAssertGreaterThan(counted, 1, "\(model): an epoch of 60,000 samples is more than 1 GFLOP")
        }
        // Issue 14's figures, which were worked out by hand before this rule existed.
        XCTAssertEqual(lines["shallow_mlp"]?["gflop_per_epoch"] as? Double ?? 0, 36.588, accuracy: 0.01)
        XCTAssertEqual(lines["lstm"]?["gflop_per_epoch"] as? Double ?? 0, 805.571, accuracy: 0.01)
        XCTAssertEqual(lines["conv1d_control"]?["refused"] as? Bool, true, "a layer the rule does not know was counted")
    }
}
