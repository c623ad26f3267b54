import Datasets
import Foundation
import Synchronization
import TensorCore
import XCTest
import _NeuriteTestSupport

/// `n` samples whose label is their index and whose row `i` is `[i, 1000 + i, -i]`, so a batch's
/// rows can be checked against its labels and against `gather`.
private func indexedData(_ n: Int) -> TensorDataset {
    TensorDataset(x: Tensor(shape: [n, 3], scalars: (0..<n).flatMap { [Float($0), Float(1000 + $0), -Float($0)] }),
                  y: Array(0..<n))
}

/// Counts calls and records that it has been released; shared by the copies of a data set.
private final class Probe: Sendable {
    let samplesRead = Atomic<Int>(0)
}

/// A file-backed stand-in: no batch fast path (the protocol's default stacks samples), can fail
/// at one index, can be slow, and counts what it reads.
private struct LazyDataset: Dataset {
    let n: Int
    var failAt: Int? = nil
    var delay: TimeInterval = 0
    let probe = Probe()

    var count: Int { n }

    func sample(at index: Int) throws -> (x: Tensor, y: Int) {
        probe.samplesRead.wrappingAdd(1, ordering: .relaxed)
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if index == failAt { throw DatasetError(.corrupt, path: "sample-\(index).png", "bad chunk") }
        return (Tensor(shape: [2, 2], scalars: [Float(index), 0.5, -Float(index), 7]), index)
    }
}

/// Reads every batch of one epoch, failing the test on an error.
private func collect<D: Dataset>(_ loader: DataLoader<D>, epoch: Int, file: StaticString = #filePath, line: UInt = #line)
    -> [(x: Tensor, y: [Int])] {
    var batches: [(x: Tensor, y: [Int])] = []
    let iterator = loader.batches(epoch: epoch)
    do {
        while let batch = try iterator.next() { batches.append(batch) }
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
    return batches
}

/// Polls `condition` every 10 ms for at most `seconds`; true as soon as it holds.
private func eventually(within seconds: TimeInterval, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return condition()
}

final class DataLoaderTests: XCTestCase {
    // MARK: Epoch coverage and batch sizes

    func testKeepPolicyVisitsEverySampleOnceWithExpectedBatchSizes() {
        for prefetch in [0, 2] {
            let loader = DataLoader(indexedData(23), batchSize: 5, seed: 3, prefetch: prefetch)
            XCTAssertEqual(loader.batchesPerEpoch, 5)
            for epoch in 0..<3 {
                let batches = collect(loader, epoch: epoch)
                XCTAssertEqual(batches.map { $0.y.count }, [5, 5, 5, 5, 3], "prefetch \(prefetch), epoch \(epoch)")
                XCTAssertEqual(batches.map { $0.x.shape }, [[5, 3], [5, 3], [5, 3], [5, 3], [3, 3]])
                let seen = batches.flatMap(\.y)
                XCTAssertEqual(seen.sorted(), Array(0..<23), "every sample exactly once, prefetch \(prefetch)")
                XCTAssertEqual(seen, loader.order(epoch: epoch))
            }
        }
    }

    func testDropPolicyDropsOnlyTheTail() {
        let loader = DataLoader(indexedData(23), batchSize: 5, seed: 3, lastBatch: .drop)
        XCTAssertEqual(loader.batchesPerEpoch, 4)
        let batches = collect(loader, epoch: 1)
        XCTAssertEqual(batches.map { $0.y.count }, [5, 5, 5, 5])
        XCTAssertEqual(batches.flatMap(\.y), Array(loader.order(epoch: 1).prefix(20)))
        XCTAssertEqual(Set(loader.order(epoch: 1)).count, 23, "the order itself still holds every sample")

        // An exact multiple drops nothing; fewer samples than a batch gives no batch.
        let exact = DataLoader(indexedData(20), batchSize: 5, seed: 3, lastBatch: .drop)
        XCTAssertEqual(collect(exact, epoch: 0).flatMap(\.y).sorted(), Array(0..<20))
        let tiny = DataLoader(indexedData(4), batchSize: 5, lastBatch: .drop, prefetch: 2)
        XCTAssertEqual(tiny.batchesPerEpoch, 0)
        XCTAssertTrue(collect(tiny, epoch: 0).isEmpty)
        XCTAssertEqual(collect(DataLoader(indexedData(4), batchSize: 5), epoch: 0).map(\.y.count), [4])
    }

    // MARK: Order

    func testShuffleOrderIsFixedBySeedAndEpochAndDiffersBetweenEpochs() {
        let data = indexedData(50)
        let a = DataLoader(data, batchSize: 8, seed: 11), b = DataLoader(data, batchSize: 8, seed: 11)
        for epoch in 0..<4 {
            XCTAssertEqual(a.order(epoch: epoch), b.order(epoch: epoch), "same seed and epoch, epoch \(epoch)")
            XCTAssertEqual(collect(a, epoch: epoch).flatMap(\.y), collect(b, epoch: epoch).flatMap(\.y))
            // The documented derivation: a seeded Fisher-Yates shuffle from stream `epoch`.
            var generator = SeededGenerator(seed: 11, stream: UInt64(epoch))
            var expected = Array(0..<50)
            expected.seededShuffle(using: &generator)
            XCTAssertEqual(a.order(epoch: epoch), expected)
        }
        let orders = (0..<4).map { a.order(epoch: $0) }
        XCTAssertEqual(Set(orders.map { $0.description }).count, 4, "epochs must differ")
        XCTAssertNotEqual(a.order(epoch: 0), Array(0..<50), "shuffled")
        XCTAssertNotEqual(DataLoader(data, batchSize: 8, seed: 12).order(epoch: 0), a.order(epoch: 0), "seeds must differ")
        XCTAssertEqual(DataLoader(data, batchSize: 8, shuffle: false, seed: 11).order(epoch: 3), Array(0..<50))
    }

    // MARK: Batch contents

    func testBatchesHoldExactlyTheGatheredRows() {
        var g = SeededGenerator(seed: 5)
        let x = Tensor.randomUniform([37, 2, 3], using: &g)
        let labels = (0..<37).map { ($0 * 7) % 5 }
        let data = TensorDataset(x: x, y: labels)
        let loader = DataLoader(data, batchSize: 8, seed: 9)
        let order = loader.order(epoch: 2)
        for (k, batch) in collect(loader, epoch: 2).enumerated() {
            let indices = Array(order[(k * 8)..<min(k * 8 + 8, 37)])
            XCTAssertEqual(batch.x, x.gather(indices), "batch \(k)")
            XCTAssertEqual(batch.y, indices.map { labels[$0] }, "batch \(k)")
        }

        // Rows match labels when x encodes the index, through the stacking default too.
        let lazy = DataLoader(LazyDataset(n: 13), batchSize: 4, seed: 2)
        for batch in collect(lazy, epoch: 0) {
            XCTAssertEqual(batch.x.shape, [batch.y.count, 2, 2])
            for (row, label) in batch.y.enumerated() {
                XCTAssertEqual(batch.x[row, 0, 0], Float(label))
                XCTAssertEqual(batch.x[row, 1, 0], -Float(label))
            }
        }
    }

    func testDefaultBatchStacksSamplesLikeGatherAndRejectsMixedShapes() throws {
        let lazy = LazyDataset(n: 9)
        let samples = try (0..<9).map { try lazy.sample(at: $0).x.scalars }
        let dense = TensorDataset(x: Tensor(shape: [9, 2, 2], scalars: samples.flatMap { $0 }), y: Array(0..<9))
        let indices = [4, 0, 8, 4, 1]
        let stacked = try lazy.batch(at: indices), gathered = try dense.batch(at: indices)
        XCTAssertEqual(stacked.x, gathered.x)
        XCTAssertEqual(stacked.y, gathered.y)
        XCTAssertEqual(stacked.y, indices)
        let one = try dense.sample(at: 8)
        XCTAssertEqual(one.x, Tensor(shape: [2, 2], scalars: [8, 0.5, -8, 7]))
        XCTAssertEqual(one.y, 8)

        struct Ragged: Dataset {
            var count: Int { 3 }
            func sample(at index: Int) throws -> (x: Tensor, y: Int) { (Tensor.zeros([index == 2 ? 3 : 2]), index) }
        }
        XCTAssertThrowsError(try Ragged().batch(at: [0, 1, 2])) { error in
            XCTAssertEqual((error as? DatasetError)?.kind, .invalidArgument)
            XCTAssertTrue("\(error)".contains("[2]") && "\(error)".contains("[3]"), "\(error)")
        }
    }

    func testSubsetMapsIndicesThroughItsBase() throws {
        let data = indexedData(10)
        let subset = Subset(data, indices: [7, 2, 9])
        XCTAssertEqual(subset.count, 3)
        XCTAssertEqual(try subset.sample(at: 1).y, 2)
        let batch = try subset.batch(at: [2, 0])
        XCTAssertEqual(batch.y, [9, 7])
        XCTAssertEqual(batch.x, data.x.gather([9, 7]))
        let loaded = collect(DataLoader(subset, batchSize: 2, seed: 1), epoch: 0).flatMap(\.y)
        XCTAssertEqual(loaded.sorted(), [2, 7, 9])
    }

    // MARK: Prefetching

    func testPrefetchingYieldsTheSameBatchesAsLoadingInline() throws {
        let noise: SampleTransform = { x, g in
            var y = x
            y.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] += g.nextUnitFloat() } }
            return y
        }
        let sampler = try WeightedSampler(weights: (0..<31).map { Double($0 % 4) }, count: 40)
        let configurations: [(LazyDataset, (any Sampler)?, SampleTransform?)] = [
            (LazyDataset(n: 31), nil, nil), (LazyDataset(n: 31), nil, noise), (LazyDataset(n: 31), sampler, noise),
        ]
        for (c, (data, sampler, transform)) in configurations.enumerated() {
            let inline = DataLoader(data, batchSize: 6, seed: 21, sampler: sampler, transform: transform)
            for (depth, workers) in [(1, 1), (3, 1), (16, 1), (1, 3), (4, 2), (16, 5)] {
                let ahead = DataLoader(data, batchSize: 6, seed: 21, sampler: sampler, prefetch: depth, workers: workers,
                                       transform: transform)
                for epoch in 0..<2 {
                    let expected = collect(inline, epoch: epoch), got = collect(ahead, epoch: epoch)
                    XCTAssertEqual(got.count, expected.count, "configuration \(c), depth \(depth), workers \(workers)")
                    XCTAssertEqual(got.count, inline.batchesPerEpoch)
                    for (e, g) in zip(expected, got) {
                        XCTAssertEqual(g.x, e.x, "configuration \(c), depth \(depth), workers \(workers), epoch \(epoch)")
                        XCTAssertEqual(g.y, e.y, "configuration \(c), depth \(depth), epoch \(epoch)")
                    }
                }
            }
        }
    }

    // MARK: Errors and early stops

    func testDataSetErrorSurfacesAtItsBatchAndEndsTheEpoch() {
        for (prefetch, workers) in [(0, 1), (1, 1), (3, 1), (3, 3), (8, 2)] {
            for failAt in [0, 13, 30] {
                let loader = DataLoader(LazyDataset(n: 31, failAt: failAt), batchSize: 4, seed: 8, prefetch: prefetch,
                                        workers: workers)
                let failingBatch = loader.order(epoch: 1).firstIndex(of: failAt)! / 4
                let iterator = loader.batches(epoch: 1)
                var good = 0
                var caught: (any Error)?
                do {
                    while try iterator.next() != nil { good += 1 }
                } catch {
                    caught = error
                }
                let context = "prefetch \(prefetch), workers \(workers), failing sample \(failAt)"
                XCTAssertEqual(good, failingBatch, "batches before the failure, \(context)")
                XCTAssertEqual(caught as? DatasetError, DatasetError(.corrupt, path: "sample-\(failAt).png", "bad chunk"), context)
                XCTAssertNil(try iterator.next(), "the epoch ends after an error, \(context)")
                XCTAssertNil(try iterator.next(), context)
            }
        }
    }

    func testTransformErrorsAndShapeChangesAreReported() {
        struct Refused: Error, Equatable {}
        let refuse: SampleTransform = { x, _ in if x[0] == 5 { throw Refused() }; return x }
        for prefetch in [0, 2] {
            let iterator = DataLoader(indexedData(12), batchSize: 4, shuffle: false, prefetch: prefetch, transform: refuse)
                .batches(epoch: 0)
            XCTAssertEqual(try iterator.next()?.y, [0, 1, 2, 3])
            XCTAssertThrowsError(try iterator.next()) { XCTAssertTrue($0 is Refused, "\($0)") }
            XCTAssertNil(try iterator.next())
        }
        // A transform may change the shape if all samples agree...
        let crop: SampleTransform = { x, _ in x.slice(0..<2) }
        XCTAssertEqual(collect(DataLoader(indexedData(6), batchSize: 4, transform: crop), epoch: 0).map(\.x.shape), [[4, 2], [2, 2]])
        // ...and a batch whose samples disagree is a thrown error.
        let ragged: SampleTransform = { x, _ in x[0] == 2 ? x.slice(0..<1) : x }
        XCTAssertThrowsError(try DataLoader(indexedData(6), batchSize: 4, shuffle: false, transform: ragged).batches(epoch: 0).next()) {
            XCTAssertEqual(($0 as? DatasetError)?.kind, .invalidArgument, "\($0)")
        }
    }

    func testAbandonedPrefetchingIteratorStopsItsThreadAndReleasesTheDataSet() throws {
        weak var released: Probe?
        do {
            let data = LazyDataset(n: 1000, delay: 0.001)
            released = data.probe
            let loader = DataLoader(data, batchSize: 10, seed: 4, prefetch: 2)
            let iterator = loader.batches(epoch: 0)
            XCTAssertEqual(try iterator.next()?.y.count, 10)
            // Let the producer fill its queue and block on it.
            XCTAssertTrue(eventually(within: 5) { data.probe.samplesRead.load(ordering: .relaxed) >= 30 })
            Thread.sleep(forTimeInterval: 0.05)
            let readWhenAbandoned = data.probe.samplesRead.load(ordering: .relaxed)
            XCTAssertLessThanOrEqual(readWhenAbandoned, 40, "consumed 1 batch, queue of 2, 1 in the making")
            withExtendedLifetime(iterator) {}
        }
        // The only other owner of the data set is the prefetch thread: once it has stopped, the probe goes.
        XCTAssertTrue(eventually(within: 5) { released == nil }, "the prefetch thread did not stop")

        // Several workers stop too, and release the data set once the last one has.
        weak var sharedProbe: Probe?
        do {
            let data = LazyDataset(n: 1000, delay: 0.001)
            sharedProbe = data.probe
            let iterator = DataLoader(data, batchSize: 10, seed: 4, prefetch: 3, workers: 3).batches(epoch: 0)
            XCTAssertEqual(try iterator.next()?.y.count, 10)
            XCTAssertTrue(eventually(within: 5) { data.probe.samplesRead.load(ordering: .relaxed) >= 40 })
            Thread.sleep(forTimeInterval: 0.05)
            XCTAssertLessThanOrEqual(data.probe.samplesRead.load(ordering: .relaxed), 50, "consumed 1 batch, at most 3 + 1 ahead")
            withExtendedLifetime(iterator) {}
        }
        XCTAssertTrue(eventually(within: 5) { sharedProbe == nil }, "the prefetch threads did not stop")

        // Abandoned while the producer is still busy with a batch.
        weak var busyProbe: Probe?
        do {
            let data = LazyDataset(n: 400, delay: 0.002)
            busyProbe = data.probe
            let iterator = DataLoader(data, batchSize: 50, prefetch: 4).batches(epoch: 0)
            _ = iterator
        }
        XCTAssertTrue(eventually(within: 5) { busyProbe == nil }, "the prefetch thread did not stop")
    }

    // MARK: Random streams

    func testAugmentationStreamsAreReproducibleAndDistinctPerEpochAndWorker() {
        func firstDraws(_ seed: UInt64, _ epoch: Int, _ worker: Int) -> [UInt64] {
            var g = SeededGenerator(seed: seed, epoch: epoch, worker: worker)
            return (0..<4).map { _ in g.next() }
        }
        XCTAssertEqual(firstDraws(1, 2, 3), firstDraws(1, 2, 3))
        var seen = Set<[UInt64]>()
        for epoch in 0..<8 {
            for worker in 0..<64 { seen.insert(firstDraws(1, epoch, worker)) }
        }
        XCTAssertEqual(seen.count, 8 * 64, "every (epoch, worker) pair has its own stream")
        XCTAssertNotEqual(firstDraws(1, 0, 0), firstDraws(2, 0, 0))
        var shuffle = SeededGenerator(seed: 1, stream: 0)
        XCTAssertNotEqual(firstDraws(1, 0, 0), (0..<4).map { _ in shuffle.next() }, "apart from the shuffle stream")

        // The loader augments sample at position p of epoch e with stream (seed, e, p).
        let jitter: SampleTransform = { x, g in Tensor([x[0] + g.nextUnitFloat()]) }
        let loader = DataLoader(indexedData(10), batchSize: 4, seed: 77, transform: jitter)
        for epoch in 0..<2 {
            let order = loader.order(epoch: epoch)
            let values = collect(loader, epoch: epoch).flatMap { $0.x.scalars }
            let expected = order.enumerated().map { position, index -> Float in
                var g = SeededGenerator(seed: 77, epoch: epoch, worker: position)
                return Float(index) + g.nextUnitFloat()
            }
            XCTAssertEqual(values, expected, "epoch \(epoch)")
        }
    }

    // MARK: Samplers in the loader

    func testSamplerChoosesTheEpochIndices() throws {
        let weights: [Double] = [0, 1, 0, 2, 0, 1]
        let sampler = try WeightedSampler(weights: weights, count: 50)
        let loader = DataLoader(indexedData(6), batchSize: 8, seed: 5, sampler: sampler, prefetch: 1)
        XCTAssertEqual(loader.samplesPerEpoch, 50)
        let batches = collect(loader, epoch: 0)
        XCTAssertEqual(batches.map(\.y.count), [8, 8, 8, 8, 8, 8, 2])
        let drawn = batches.flatMap(\.y)
        XCTAssertTrue(drawn.allSatisfy { weights[$0] > 0 }, "\(drawn)")
        var g = SeededGenerator(seed: 5, stream: 0)
        XCTAssertEqual(drawn, sampler.indices(using: &g), "drawn from the epoch's shuffle stream")
        XCTAssertNotEqual(loader.order(epoch: 1), drawn)
    }
}
