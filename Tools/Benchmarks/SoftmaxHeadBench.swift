import Datasets
import Foundation
import Layers
import Optimizers
import TensorCore
import _AppSupport

/// The `softmax-head` suite (issue 12): a demo model with a softmax appended, as a Keras user
/// writes it, trained on Fashion-MNIST against the same model ending in logits, one JSON line per
/// model and setup (`fit`, batch 128, Adam 1e-3, the same seed and so the same initial weights):
///
/// - `logits`: the demo model as it is, `SoftmaxCrossEntropy` (the reference);
/// - `softmax_fused`: softmax appended, `CategoricalCrossentropy()` (fit's fused path);
/// - `softmax_unfused`: the same through a loss wrapper that hides the fusion (the chain rule
///   through the clipped probability loss and the softmax's backward pass);
/// - `softmax_logits_loss`: softmax appended, `SoftmaxCrossEntropy` (the softmax applied twice).
enum SoftmaxHeadBench {
    /// `CategoricalCrossentropy` without its fused path.
    struct Unfused: Loss {
        var inner = CategoricalCrossentropy()
        var name: String { inner.name }
        var isClassification: Bool { true }
        func validate(predictionShape: [Int], targets: Targets) throws {
            try inner.validate(predictionShape: predictionShape, targets: targets)
        }
        func compute(_ predictions: Tensor, _ targets: Targets, sampleWeights: [Float]?) -> LossResult {
            inner.compute(predictions, targets, sampleWeights: sampleWeights)
        }
    }

    static func run(epochs: Int, seed: UInt64, dataDirectory: String?, only: Set<String>?) {
        let train: MNISTDataset, test: MNISTDataset
        do {
            train = try FashionMNIST.load(.train, from: dataDirectory)
            test = try FashionMNIST.load(.test, from: dataDirectory)
        } catch {
            print("softmax-head suite skipped: \(error)")
            return
        }
        let setups: [(String, Bool, any Loss)] = [("logits", false, SoftmaxCrossEntropy()),
                                                  ("softmax_fused", true, CategoricalCrossentropy()),
                                                  ("softmax_unfused", true, Unfused()),
                                                  ("softmax_logits_loss", true, SoftmaxCrossEntropy())]
        for (name, make) in LayersBench.models where only?.contains(name) ?? ["shallow_mlp", "course_cnn"].contains(name) {
            for (setup, softmax, loss) in setups {
                let model = make()
                let fitted = softmax ? Sequential(inputShape: [28, 28, 1], layers: [model, ActivationLayer(.softmax)]) : model
                fitted.compile(optimizer: Adam(learningRate: 1e-3), loss: loss, metrics: [.accuracy], printWarnings: false)
                let timer = EpochTimer(label: name, quiet: true)
                do {
                    try fitted.fit(x: train.images, y: train.labels, epochs: epochs, batchSize: 128, seed: seed,
                                   callbacks: [timer], verbose: 0)
                    let result = try fitted.evaluate(x: test.images, y: test.labels, batchSize: 1000)
                    emit([("bench", "softmax_head"), ("model", name), ("setup", setup), ("loss", loss.name),
                          ("epochs", epochs), ("seed", seed), ("threads", ThreadPool.shared.effectiveWidth),
                          ("epoch_s", median(timer.seconds)), ("test_accuracy", result["accuracy"] ?? .nan),
                          ("warnings", fitted.compileWarnings.count)])
                } catch {
                    print("softmax-head \(name) \(setup) failed: \(error)")
                }
            }
        }
    }
}
