import Datasets
import TensorCore
import XCTest

final class DistributedSamplerTests: XCTestCase {
    /// Two replicas with batch 4 see, batch by batch, exactly the samples one loader with batch 8
    /// and the same seed sees: the shards interleave one shared permutation.
    func testReplicaBatchesUnionToTheSingleProcessBatches() throws {
        let n = 48
        let data = TensorDataset(x: Tensor(shape: [n, 1], scalars: (0..<n).map(Float.init)), y: Array(0..<n))
        let single = DataLoader(data, batchSize: 8, seed: 21)
        for epoch in 0..<3 {
            let whole = single.batches(epoch: epoch)
            let shards = try (0..<2).map { rank in
                DataLoader(data, batchSize: 4, seed: 21,
                           sampler: try DistributedSampler(count: n, rank: rank, replicas: 2)).batches(epoch: epoch)
            }
            var batches = 0
            while let global = try whole.next() {
                let parts = try shards.map { try XCTUnwrap($0.next()).y }
                XCTAssertEqual(Set(parts[0] + parts[1]), Set(global.y), "epoch \(epoch) batch \(batches)")
                XCTAssertTrue(Set(parts[0]).isDisjoint(with: parts[1]))
                batches += 1
            }
            XCTAssertEqual(batches, 6)
            XCTAssertNil(try shards[0].next())
        }
        // Different epochs, different permutations.
        let sampler = try DistributedSampler(count: n, rank: 0, replicas: 2)
        var e0 = SeededGenerator(seed: 21, stream: 0), e1 = SeededGenerator(seed: 21, stream: 1)
        XCTAssertNotEqual(sampler.indices(using: &e0), sampler.indices(using: &e1))
    }

    func testPaddedShardsAreEqualAndCoverEverySampleUnpaddedShardsCountEachOnce() throws {
        for (n, replicas) in [(10, 3), (7, 4), (3, 5), (0, 2), (64, 2)] {
            var padded: [[Int]] = [], plain: [[Int]] = []
            for rank in 0..<replicas {
                var g = SeededGenerator(seed: 3, stream: 0)
                let p = try DistributedSampler(count: n, rank: rank, replicas: replicas)
                let indices = p.indices(using: &g)
                XCTAssertEqual(indices.count, p.count)
                padded.append(indices)
                var h = SeededGenerator(seed: 3, stream: 0)
                let u = try DistributedSampler(count: n, rank: rank, replicas: replicas, padded: false)
                let share = u.indices(using: &h)
                XCTAssertEqual(share.count, u.count)
                plain.append(share)
            }
            XCTAssertEqual(Set(padded.map(\.count)).count, 1, "n \(n), replicas \(replicas)")
            XCTAssertEqual(Set(padded.joined()), Set(0..<n))
            XCTAssertEqual(plain.joined().sorted(), Array(0..<n), "n \(n), replicas \(replicas)")
        }
    }

    func testInvalidArgumentsThrow() {
        XCTAssertThrowsError(try DistributedSampler(count: 10, rank: 2, replicas: 2)) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .invalidArgument)
        }
        XCTAssertThrowsError(try DistributedSampler(count: 10, rank: 0, replicas: 0))
        XCTAssertThrowsError(try DistributedSampler(count: -1, rank: 0, replicas: 1))
        XCTAssertThrowsError(try DistributedSampler(count: 5, rank: -1, replicas: 2))
    }

    /// The loader as a batch source gives its own batches, labels as `.labels`.
    func testLoaderBatchStreamYieldsTheLoadersBatches() throws {
        let data = TensorDataset(x: Tensor(shape: [10, 2], scalars: (0..<20).map(Float.init)), y: Array(0..<10))
        let loader = DataLoader(data, batchSize: 4, seed: 5)
        XCTAssertEqual(loader.batchesPerEpoch, 3)
        let stream = loader.makeBatchStream(epoch: 2)
        let reference = loader.batches(epoch: 2)
        while let expected = try reference.next() {
            let batch = try XCTUnwrap(stream.nextBatch())
            XCTAssertEqual(batch.x, expected.x)
            guard case .labels(let labels) = batch.targets else { return XCTFail("labels expected") }
            XCTAssertEqual(labels, expected.y)
        }
        XCTAssertNil(try stream.nextBatch())
    }
}
