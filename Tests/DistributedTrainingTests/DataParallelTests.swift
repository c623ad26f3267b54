import DistributedTraining
import Foundation
import Layers
import TensorCore
import XCTest

/// Data-parallel training under a real `mpirun` (two ranks on this machine). Each test starts
/// `neurite-mpi-check` jobs; none runs MPI inside the test process itself.
final class DataParallelTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-mpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    private func train(ranks: Int, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Sequential {
        let out = scratch.appendingPathComponent("model-\(UUID().uuidString)").path
        let job = try MPIJob.run(ranks: ranks, ["train"] + arguments + ["--out", out])
        XCTAssertEqual(job.status, 0, job.output, file: file, line: line)
        return try Sequential.load(from: out)
    }

    private func largestDifference(_ a: Sequential, _ b: Sequential) -> Float {
        let wa = a.weights(), wb = b.weights()
        XCTAssertEqual(Set(wa.keys), Set(wb.keys))
        var largest: Float = 0
        for (name, value) in wa {
            guard let other = wb[name] else { continue }
            for (x, y) in zip(value.scalars, other.scalars) { largest = max(largest, abs(x - y)) }
        }
        return largest
    }

    /// Two ranks with batch 64 end where one process with batch 128 ends, after 16 Adam steps,
    /// for a dense network and for a CNN with two synchronised batch normalisations.
    ///
    /// Tolerance 1e-4 on weights of magnitude up to about 1: the two runs add the same terms in
    /// another order (each rank's GEMMs over 64 rows, then a sum of two halves; per-channel
    /// statistics combined from two partial means), so every step differs in the last bits of
    /// float32 (about 1e-7 relative), and Adam, which divides by the root of the squared
    /// gradients, can turn that into a few 1e-6 over 16 steps (we measure 3.6e-6). The control
    /// shows the check can fail: per-rank batch statistics move the weights by far more.
    func testTwoRanksWithBatch64MatchOneProcessWithBatch128() throws {
        for model in ["dense", "batchnorm"] {
            let two = try train(ranks: 2, ["--model", model, "--batch", "64", "--epochs", "2"])
            let one = try train(ranks: 1, ["--model", model, "--batch", "128", "--epochs", "2"])
            let difference = largestDifference(two, one)
            XCTAssertLessThan(difference, 1e-4, model)
            XCTAssertGreaterThan(two.weights().values.map { $0.scalars.map(abs).max() ?? 0 }.max() ?? 0, 0.05)
        }
        let local = try train(ranks: 2, ["--model", "batchnorm", "--batch", "64", "--epochs", "2", "--local-batch-norm"])
        let one = try train(ranks: 1, ["--model", "batchnorm", "--batch", "128", "--epochs", "2"])
        XCTAssertGreaterThan(largestDifference(local, one), 1e-3, "per-rank statistics should differ from the global batch's")
    }

    /// With frozen layers (a convolution and a batch normalisation), two ranks still end where one
    /// process ends, and the frozen weights and running statistics are those the model was built
    /// with (an `--epochs 0` run saves the built, untrained model).
    func testFrozenLayersStayFrozenAndRanksStillAgree() throws {
        let two = try train(ranks: 2, ["--model", "frozen", "--batch", "64", "--epochs", "2"])
        let one = try train(ranks: 1, ["--model", "frozen", "--batch", "128", "--epochs", "2"])
        let initial = try train(ranks: 1, ["--model", "frozen", "--batch", "128", "--epochs", "0"])
        XCTAssertLessThan(largestDifference(two, one), 1e-4)
        XCTAssertEqual(two.layers.map(\.trainable), [false, false, true, true, true, true, true])
        let frozen = Set(initial.layers[0].parameters.map(\.name) + initial.layers[1].parameters.map(\.name))
        XCTAssertEqual(frozen.count, 5)
        let (start, end) = (initial.weights(), two.weights())
        for (name, value) in start {
            if frozen.contains(name) {
                XCTAssertEqual(end[name]?.scalars, value.scalars, "\(name) is frozen")
            } else {
                XCTAssertNotEqual(end[name]?.scalars, value.scalars, "\(name) should learn")
            }
        }
    }

    /// A rank whose data cannot be read, or whose batch holds NaN, ends the job within seconds,
    /// with a non-zero exit and that rank's error printed; the other rank names it.
    func testAFailingRankEndsTheWholeJobWithItsError() throws {
        for (mode, message) in [("throw", "cannot read sample file"), ("nan", "loss became")] {
            let job = try MPIJob.run(ranks: 2, ["train", "--fail", mode, "--fail-rank", "1", "--fail-epoch", "1", "--fail-step", "2"],
                                     timeout: 90)
            XCTAssertFalse(job.timedOut, "\(mode): the job hung:\n\(job.output)")
            XCTAssertNotEqual(job.status, 0, mode)
            XCTAssertLessThan(job.seconds, 60, mode)
            XCTAssertTrue(job.output.contains("rank 1 of 2: error:") && job.output.contains(message), "\(mode):\n\(job.output)")
            XCTAssertTrue(job.output.contains("rank 0 of 2: error:") && job.output.contains("replica"), "\(mode):\n\(job.output)")
        }
    }

    /// A rank killed with SIGKILL, or one that exits without telling MPI, does not leave the
    /// other waiting: mpirun ends the job with a non-zero exit.
    func testAKilledOrVanishedRankDoesNotLeaveTheOthersWaiting() throws {
        for mode in ["kill", "exit"] {
            let job = try MPIJob.run(ranks: 2, ["train", "--fail", mode, "--fail-rank", "1", "--fail-step", "3"], timeout: 90)
            XCTAssertFalse(job.timedOut, "\(mode): the job hung:\n\(job.output)")
            XCTAssertNotEqual(job.status, 0, mode)
            XCTAssertLessThan(job.seconds, 60, mode)
        }
    }

    /// Checkpoints every epoch (rank 0 writes them), a failure in epoch 3, and a resumed run
    /// from the last checkpoint end where an uninterrupted run of 4 epochs ends.
    func testAResumedRunAfterAFailureEndsWhereAnUninterruptedOneEnds() throws {
        let checkpoint = scratch.appendingPathComponent("checkpoint").path
        let common = ["--model", "batchnorm", "--batch", "64", "--epochs", "4"]
        let uninterrupted = try train(ranks: 2, common)
        let failed = try MPIJob.run(ranks: 2, ["train"] + common + ["--checkpoint", checkpoint, "--fail", "throw",
                                                                  "--fail-rank", "1", "--fail-epoch", "2", "--fail-step", "3"])
        XCTAssertNotEqual(failed.status, 0)
        XCTAssertEqual(try String(contentsOfFile: checkpoint + "/epoch.txt", encoding: .utf8), "1")
        // Control: the checkpoint itself (after epoch 2) is not the end of the run.
        XCTAssertGreaterThan(largestDifference(try Sequential.load(from: checkpoint), uninterrupted), 1e-3)
        let resumed = try train(ranks: 2, common + ["--checkpoint", checkpoint, "--resume"])
        XCTAssertEqual(largestDifference(resumed, uninterrupted), 0)
    }

    func testBucketsAreConsecutiveRunsWithinCapacityAndLargeParametersStandAlone() {
        XCTAssertEqual(DataParallel.buckets(counts: [3, 4, 2, 10, 1, 1], capacity: 8), [0..<2, 2..<3, 3..<4, 4..<6])
        XCTAssertEqual(DataParallel.buckets(counts: [8, 8], capacity: 8), [0..<1, 1..<2])
        XCTAssertEqual(DataParallel.buckets(counts: [], capacity: 8), [])
        XCTAssertEqual(DataParallel.buckets(counts: [1, 1, 1], capacity: 100), [0..<3])
        // Every parameter lands in exactly one bucket, in order.
        let counts = (0..<40).map { ($0 * 7919) % 23 + 1 }
        let buckets = DataParallel.buckets(counts: counts, capacity: 30)
        XCTAssertEqual(buckets.flatMap { Array($0) }, Array(0..<40))
        for b in buckets where b.count > 1 { XCTAssertLessThanOrEqual(b.map { counts[$0] }.reduce(0, +), 30) }
    }
}
