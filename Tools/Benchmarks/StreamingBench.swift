import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import _AppSupport

/// The `streaming` suite: the course CNN trained for one epoch (batch 128, Adam 1e-3) from a
/// folder of PNG files (`neurite-data export` writes one), read through `DataLoader` with
/// prefetching while `fit` trains, or from Fashion-MNIST's IDX files in memory (`--source memory`),
/// with the epoch's seconds, images per second and the process's peak resident memory. Run each
/// source in its own process, so that one's memory does not count in the other's peak:
///
///     neurite-bench streaming --source folder --data /tmp/fmnist-png [--prefetch 4] [--workers 1] [--epochs 1] [--models batchnorm_cnn]
///     neurite-bench streaming --source memory [--data IDX_DIR]
///     neurite-bench streaming --source decode --data /tmp/fmnist-png     (the loader alone, no training)
///
/// Tools/reference/torch_streaming.py and keras_streaming.py measure PyTorch's `DataLoader` and
/// Keras' `image_dataset_from_directory` on the same folder.
enum StreamingBench {
    static func run(source: String, dataDirectory: String?, prefetch: Int, workers: Int, epochs: Int, seed: UInt64, modelName: String) {
        do {
            let loader: any BatchSource
            let started = now()
            switch source {
            case "folder", "decode":
                guard let dataDirectory else {
                    print("streaming suite: --data FOLDER is needed for --source \(source)")
                    return
                }
                let folder = try ImageFolder(directory: dataDirectory, imageSize: (28, 28), channels: 1)
                loader = DataLoader(folder, batchSize: 128, seed: seed, prefetch: prefetch, workers: workers)
            case "memory":
                let train = try FashionMNIST.load(.train, from: dataDirectory)
                loader = DataLoader(TensorDataset(x: train.images, y: train.labels), batchSize: 128, seed: seed)
            default:
                print("streaming suite: --source is folder, memory or decode, not \(source)")
                return
            }
            let setupSeconds = now() - started
            let images = Double(loader.samplesPerEpoch)
            if source == "decode" {
                for epoch in 0..<epochs {
                    let t0 = now()
                    let stream = loader.makeBatchStream(epoch: epoch)
                    while try stream.nextBatch() != nil {}
                    let seconds = now() - t0
                    emit([("bench", "streaming"), ("impl", "neurite"), ("source", source), ("what", "decode"),
                          ("images", Int(images)), ("seconds", seconds), ("images_per_second", images / seconds),
                          ("prefetch", prefetch), ("workers", workers), ("threads", ThreadPool.shared.width),
                          ("peak_rss_mb", TrainingBench.peakResidentMegabytes())])
                }
                return
            }
            guard let make = LayersBench.models.first(where: { $0.name == modelName })?.make else {
                print("streaming suite: no model \(modelName); models: \(LayersBench.models.map(\.name))")
                return
            }
            let model = make()
            model.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy(), metrics: [.accuracy])
            let timer = EpochTimer(label: modelName, quiet: true)
            try model.fit(loader, epochs: epochs, seed: seed, callbacks: [timer], verbose: 0)
            for (epoch, seconds) in timer.seconds.enumerated() {
                emit([("bench", "streaming"), ("impl", "neurite"), ("source", source), ("what", "train"), ("model", modelName),
                      ("epoch", epoch + 1), ("images", Int(images)), ("seconds", seconds), ("images_per_second", images / seconds),
                      ("batch_size", 128), ("prefetch", source == "folder" ? prefetch : 0), ("workers", workers), ("threads", ThreadPool.shared.width),
                      ("setup_seconds", setupSeconds), ("peak_rss_mb", TrainingBench.peakResidentMegabytes())])
            }
        } catch {
            print("streaming suite failed: \(error)")
        }
    }
}
