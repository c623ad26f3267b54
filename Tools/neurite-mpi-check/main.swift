// neurite-mpi-check: small data-parallel runs that DistributedTrainingTests start under mpirun,
// to check what cannot be checked inside one test process: that R ranks train as one process
// with an R times larger batch, that a failing or killed rank ends the whole job, and that a run
// resumed from a checkpoint after a failure ends where an uninterrupted run does.
//
//   mpirun -np 2 neurite-mpi-check train --model dense|batchnorm --batch 64 --epochs 2 --out DIR
//       [--checkpoint DIR] [--resume] [--fail MODE --fail-rank R --fail-epoch E --fail-step S]
//
//   mpirun -np 2 neurite-mpi-check bandwidth      (all-reduce bandwidth, 1 to 64 MiB; a benchmark)
//
// MODE is throw (the rank's data source throws, as for an unreadable file), nan (the rank's batch
// holds NaN), kill (the rank sends itself SIGKILL) or exit (the rank calls exit(3) without MPI).
// Rank 0 saves the final model to --out (Sequential.save). Every rank's final weights are
// gathered and compared bit for bit; a difference ends the job with exit code 3.
import DistributedTraining
import Foundation
import Layers
import Optimizers
import TensorCore

struct Options {
    var model = "dense"
    var batch = 64
    var epochs = 2
    var samples = 1024
    var out: String?
    var checkpoint: String?
    var resume = false
    var fail: String?
    var failRank = 1
    var failEpoch = 0
    var failStep = 2
    var syncBatchNorm = true

    init(_ arguments: [String]) throws {
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < arguments.count else { throw TrainingError("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        func int() throws -> Int {
            let text = try value()
            guard let n = Int(text) else { throw TrainingError("\(arguments[i - 1]) needs an integer, got \(text)") }
            return n
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--model": model = try value()
            case "--batch": batch = try int()
            case "--epochs": epochs = try int()
            case "--samples": samples = try int()
            case "--out": out = try value()
            case "--checkpoint": checkpoint = try value()
            case "--resume": resume = true
            case "--fail": fail = try value()
            case "--fail-rank": failRank = try int()
            case "--fail-epoch": failEpoch = try int()
            case "--fail-step": failStep = try int()
            case "--local-batch-norm": syncBatchNorm = false
            default: throw TrainingError("unknown option \(arguments[i])")
            }
            i += 1
        }
    }
}

/// `samples` images `[12, 12, 1]` of seeded noise whose label depends on their mean brightness,
/// the same on every rank.
func syntheticData(samples: Int) -> (x: Tensor, y: [Int]) {
    var g = SeededGenerator(seed: 2024)
    let x = Tensor.randomUniform([samples, 12, 12, 1], in: 0...1, using: &g)
    let y = x.reshaped([samples, 144]).scalars.chunks(144).map { row -> Int in
        let mean = row.reduce(0, +) / 144
        return min(9, max(0, Int((mean - 0.45) * 100) + 5))
    }
    return (x, y)
}

extension Array {
    func chunks(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}

func makeModel(_ name: String) throws -> Sequential {
    switch name {
    case "dense":
        return Sequential(inputShape: [12, 12, 1]) {
            Flatten()
            Dense(32, activation: .relu)
            Dense(10)
        }
    case "frozen":
        // A fine-tuned model: its convolution and batch normalisation frozen (the normalisation
        // then runs in inference mode under the synchronising strategy), the dense head learning.
        // No batch normalisation follows the head's first layer: the gradient of a bias just
        // before one is zero up to rounding, which Adam would blow up to steps of the learning
        // rate, differently on one and two ranks.
        let model = Sequential(inputShape: [12, 12, 1]) {
            Conv2D(filters: 8, kernelSize: (3, 3), useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Flatten()
            Dense(16, activation: .relu)
            Dense(10)
        }
        model.layers[0].trainable = false
        model.layers[1].trainable = false
        return model
    case "batchnorm":
        return Sequential(inputShape: [12, 12, 1]) {
            Conv2D(filters: 8, kernelSize: (3, 3), useBias: false)
            BatchNormalization()
            ActivationLayer(.relu)
            MaxPool2D(poolSize: (2, 2))
            Flatten()
            Dense(16, activation: .relu)
            BatchNormalization()
            Dense(10)
        }
    default:
        throw TrainingError("unknown model \(name): dense, batchnorm or frozen")
    }
}

/// The tensors' batches for this rank, with the fault injected when asked.
struct FaultySource: BatchSource {
    let x: Tensor
    let y: [Int]
    let batchSize: Int
    let rank: Int
    let replicas: Int
    let options: Options

    var samplesPerEpoch: Int { (y.count + replicas - 1) / replicas }
    var batchesPerEpoch: Int { (samplesPerEpoch + batchSize - 1) / batchSize }

    func makeBatchStream(epoch: Int) -> any BatchStream {
        var g = SeededGenerator(seed: 11, stream: UInt64(epoch))
        var order = Array(0..<y.count)
        order.seededShuffle(using: &g)
        return Stream(source: self, epoch: epoch, order: replicaShard(of: order, rank: rank, replicas: replicas, padded: true))
    }

    final class Stream: BatchStream {
        let source: FaultySource
        let epoch: Int
        let order: [Int]
        var step = 0

        init(source: FaultySource, epoch: Int, order: [Int]) {
            self.source = source
            self.epoch = epoch
            self.order = order
        }

        func nextBatch() throws -> TrainingBatch? {
            let start = step * source.batchSize
            guard start < order.count else { return nil }
            let indices = Array(order[start..<min(start + source.batchSize, order.count)])
            var x = source.x.gather(indices)
            let o = source.options
            if let mode = o.fail, source.rank == o.failRank, epoch == o.failEpoch, step == o.failStep {
                switch mode {
                case "throw": throw TrainingError("rank \(source.rank) cannot read sample file \(indices[0]).png (injected)")
                case "nan": x = x * Float.nan
                case "kill": kill(getpid(), SIGKILL)
                case "exit": exit(3)
                default: throw TrainingError("unknown fault \(mode)")
                }
            }
            step += 1
            return TrainingBatch(x: x, labels: indices.map { source.y[$0] })
        }
    }
}

/// Writes the last finished epoch beside the checkpoint (rank 0, after ModelCheckpoint).
final class EpochRecorder: Callback {
    let path: String
    init(path: String) { self.path = path }
    func onEpochEnd(_ epoch: Int, logs: [String: Double], context: TrainingContext) throws {
        guard context.rank == 0 else { return }
        try AtomicFile.write(Array("\(epoch)".utf8), to: path)
    }
}

/// All-reduce bandwidth for 1 to 64 MiB of Float32, one JSON line per size on rank 0: the best
/// and median seconds of 20 calls after 3 warm-ups, and the "bus bandwidth" `2 (R-1)/R * bytes /
/// seconds` (what each rank sends and receives in a ring all-reduce, NCCL's convention).
func bandwidth(_ world: Communicator) throws {
    for megabytes in [1, 2, 4, 8, 16, 32, 64] {
        let count = megabytes * 1_048_576 / 4
        var values = [Float](repeating: 1, count: count)
        var times: [Double] = []
        for i in 0..<23 {
            try world.barrier()
            let start = DispatchTime.now().uptimeNanoseconds
            try world.allreduce(&values, .mean)
            if i >= 3 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        guard values[0] == 1 else { throw TrainingError("all-reduce of ones by mean gave \(values[0])") }
        times.sort()
        if world.rank == 0 {
            let bytes = Double(count * 4)
            let bus = 2 * Double(world.size - 1) / Double(world.size) * bytes / times[0] / 1e9
            print("{\"bench\": \"allreduce\", \"ranks\": \(world.size), \"megabytes\": \(megabytes), "
                  + "\"best_seconds\": \(times[0]), \"median_seconds\": \(times[times.count / 2]), "
                  + "\"bus_gigabytes_per_second\": \(bus)}")
        }
    }
}

Communicator.run { world in
    if CommandLine.arguments.count >= 2, CommandLine.arguments[1] == "bandwidth" {
        try bandwidth(world)
        return
    }
    let options = try Options(Array(CommandLine.arguments.dropFirst(2)))
    guard CommandLine.arguments.count >= 2, CommandLine.arguments[1] == "train" else {
        throw TrainingError("usage: neurite-mpi-check train [options] | bandwidth")
    }
    let strategy = DataParallel(world, synchronizeBatchNormalization: options.syncBatchNorm)
    let (x, y) = syntheticData(samples: options.samples)
    var model = try makeModel(options.model)
    var initialEpoch = 0
    let optimizer = Adam(learningRate: 0.01)
    if options.resume, let dir = options.checkpoint {
        model = try Sequential.load(from: dir)
        model.compile(optimizer: optimizer, loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
        try model.loadOptimizerState(into: optimizer, from: dir)
        let text = try String(contentsOfFile: dir + "/epoch.txt", encoding: .utf8)
        guard let last = Int(text) else { throw TrainingError("bad epoch file: \(text)") }
        initialEpoch = last + 1
    } else {
        model.compile(optimizer: optimizer, loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
    }
    var callbacks: [any Callback] = []
    if let dir = options.checkpoint {
        callbacks.append(ModelCheckpoint(directory: dir, monitor: "loss", saveBestOnly: false, saveOptimizer: true, verbose: 0))
        callbacks.append(EpochRecorder(path: dir + "/epoch.txt"))
    }
    let source = FaultySource(x: x, y: y, batchSize: options.batch, rank: world.rank, replicas: world.size, options: options)
    let history = try model.fit(source, epochs: options.epochs, initialEpoch: initialEpoch, seed: 5,
                                callbacks: callbacks, verbose: 0, strategy: strategy)

    // Every rank must hold the same weights, bit for bit.
    let mine = model.parameters.flatMap { $0.value.scalars }
    let all = try world.allgather(mine)
    for r in 1..<world.size where Array(all[(r * mine.count)..<((r + 1) * mine.count)]) != Array(all[0..<mine.count]) {
        FileHandle.standardError.write(Data("rank \(r)'s weights differ from rank 0's\n".utf8))
        world.abort(code: 3)
    }
    if world.rank == 0 {
        if let out = options.out { try model.save(to: out, optimizer: optimizer) }
        let losses = history["loss"] ?? []
        print("ranks \(world.size) epochs \(history.epochs) loss \(losses) allreduces \(strategy.gradientAllreduces)")
    }
}
