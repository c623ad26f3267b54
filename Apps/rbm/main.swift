// rbm: a restricted Boltzmann machine on binarised MNIST (or Fashion-MNIST). Trains it with
// persistent or plain contrastive divergence, prints per epoch the time, the reconstruction error
// and the test pseudo-likelihood, then compares a softmax classifier on the RBM's hidden
// probabilities with one on the raw pixels. With --output it draws the learned filters and
// chains of Gibbs samples, and saves the RBM (safetensors + JSON).
//
//   swift run -c release rbm --dataset mnist [--data DIR] [--download] [--epochs N] [--batch-size N] [--seed N]
//       [--output DIR] [--json] [--hidden 256] [--learning-rate 0.05] [--method pcd|cd] [--steps 1]
//       [--momentum 0] [--classifier-epochs 10] [--decay none|linear] [--features rbm|rbm+pixels]
//       [--split test|validation]
import ArgumentParser
import Foundation
import Layers
import Optimizers
import TensorCore
import Unsupervised
import _AppSupport

enum MethodChoice: String, ExpressibleByArgument, CaseIterable { case pcd, cd }

/// How the RBM's learning rate changes over the epochs.
enum DecayChoice: String, ExpressibleByArgument, CaseIterable {
    /// The same rate every epoch.
    case none
    /// Epoch `e` (from 0) trains at `rate · (1 - e / epochs)`.
    case linear
}

/// What the second classifier sees.
enum FeatureChoice: String, ExpressibleByArgument, CaseIterable {
    /// The RBM's hidden probabilities alone.
    case rbm
    /// The hidden probabilities beside the (binarised) pixels.
    case rbmAndPixels = "rbm+pixels"
}

/// Where the classifiers are evaluated.
enum Split: String, ExpressibleByArgument, CaseIterable {
    /// Train on the 60,000 training images, evaluate on the test set.
    case test
    /// Train on the first 50,000 training images, evaluate on the last 10,000: for choosing a recipe
    /// without looking at the test set.
    case validation
}

struct RBMDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rbm",
        abstract: "A restricted Boltzmann machine on binarised MNIST: filters, Gibbs samples, features for a classifier.",
        discussion: """
            Pixels are binarised at 0.5. The RBM trains for --epochs with batches of --batch-size; the features \
            are its hidden probabilities. Both classifiers are softmax regressions (Dense 10, Adam 1e-3, batch \
            128, --classifier-epochs). With --output: rbm-filters.png (the first 100 hidden units' weights, each \
            scaled to its own range), rbm-gibbs.png (10 chains started at test images; rows after 0, 1, 10, 100 \
            and 1000 Gibbs steps, drawn as visible means) and the model in rbm/.
            """
    )

    @OptionGroup var options: DemoOptions

    @Option(help: "Hidden units.")
    var hidden: Int = 256

    @Option(name: .customLong("learning-rate"), help: "The RBM's learning rate.")
    var learningRate: Float = 0.05

    @Option(help: "pcd (persistent contrastive divergence, scikit-learn's) or cd.")
    var method: MethodChoice = .pcd

    @Option(help: "Gibbs steps per update (the k of CD-k).")
    var steps: Int = 1

    @Option(help: "Momentum of the updates, in [0, 1).")
    var momentum: Float = 0

    @Option(name: .customLong("classifier-epochs"), help: "Epochs of each softmax classifier.")
    var classifierEpochs: Int = 10

    @Option(help: "The RBM's learning-rate schedule: none (constant) or linear (to zero over the epochs).")
    var decay: DecayChoice = .none

    @Option(help: "The second classifier's input: rbm (hidden probabilities) or rbm+pixels (both, side by side).")
    var features: FeatureChoice = .rbm

    @Option(help: "test: train on the training set, evaluate on the test set; validation: train on the first 50,000 training images, evaluate on the last 10,000.")
    var split: Split = .test

    func validate() throws {
        guard hidden >= 1, steps >= 1, classifierEpochs >= 1 else { throw ValidationError("--hidden, --steps and --classifier-epochs must be at least 1.") }
        guard momentum >= 0 && momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum).") }
    }

    func run() throws {
        try reportingFailures(of: "rbm") {
            let data = try DemoData(options)
            let binary = { (t: Tensor) in t.reshaped([t.shape[0], 784]).map { $0 > 0.5 ? 1 : 0 } }
            let poolCount = split == .test ? data.train.count : Swift.min(50_000, data.train.count * 5 / 6)
            let x = binary(data.train.images.slice(0..<poolCount))
            let xt = binary(split == .test ? data.test.images : data.train.images.slice(poolCount..<data.train.count))
            let trainLabels = Array(data.train.labels.prefix(poolCount))
            let evaluationLabels = split == .test ? data.test.labels : Array(data.train.labels.suffix(from: poolCount))
            let evaluationName = split == .test ? "test" : "validation"
            let rbm = RBM(visibleCount: 784, hiddenCount: hidden, learningRate: learningRate, momentum: momentum,
                          batchSize: options.batchSize,
                          method: method == .pcd ? .persistent(steps: steps) : .contrastiveDivergence(steps: steps),
                          seed: options.seed)
            if !options.json {
                print("binarised \(data.dataset.displayName): \(x.shape[0]) training and \(xt.shape[0]) \(evaluationName) images; "
                      + "RBM 784-\(hidden), \(method.rawValue.uppercased())-\(steps), learning rate \(learningRate)"
                      + "\(decay == .linear ? " decaying linearly" : ""), momentum \(momentum), "
                      + "batch \(options.batchSize), seed \(options.seed), \(ThreadPool.shared.width) threads")
            }
            var epochSeconds: [Double] = [], pseudoLikelihood: [Double] = [], reconstruction: [Double] = []
            rbm.fit(x, epochs: options.epochs) { epoch, seconds in
                epochSeconds.append(seconds)
                pseudoLikelihood.append(rbm.meanPseudoLikelihood(xt, seed: options.seed))
                reconstruction.append(rbm.reconstructionError(xt))
                if decay == .linear { rbm.learningRate = learningRate * Float(options.epochs - epoch - 1) / Float(options.epochs) }
                if !options.json {
                    print(String(format: "epoch %2d/%d  %6.2f s  %@ pseudo-likelihood %8.2f  %@ reconstruction MSE %.4f",
                                 epoch + 1, options.epochs, seconds, evaluationName, pseudoLikelihood.last!, evaluationName, reconstruction.last!))
                }
            }

            func softmaxAccuracy(_ train: Tensor, _ test: Tensor) throws -> (Double, Double) {
                let model = Sequential(inputShape: [train.shape[1]]) { Dense(10) }
                model.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy())
                let clock = Stopwatch()
                try model.fit(x: train, y: trainLabels, epochs: classifierEpochs, batchSize: 128, seed: options.seed,
                              callbacks: terminalProgressBar(json: options.json).map { [$0] } ?? [], verbose: 0)
                let seconds = clock.seconds
                let predicted = try model.predict(test, batchSize: 1000).argmax(alongAxis: 1)
                return (ConfusionMatrix(predicted: predicted, actual: evaluationLabels, classes: 10).accuracy, seconds)
            }
            let raw = try softmaxAccuracy(x, xt)
            let featureAccuracy = features == .rbm
                ? try softmaxAccuracy(rbm.transform(x), rbm.transform(xt))
                : try softmaxAccuracy(Tensor.concatenate([rbm.transform(x), x], axis: 1), Tensor.concatenate([rbm.transform(xt), xt], axis: 1))
            if !options.json {
                let name = features == .rbm ? "RBM features (\(hidden))" : "RBM features and pixels (\(hidden) + 784)"
                print(String(format: "softmax classifier on raw pixels (784): %@ %@ accuracy %.4f (%.1f s)",
                             String(repeating: " ", count: Swift.max(0, name.count - 16)), evaluationName, raw.0, raw.1))
                print(String(format: "softmax classifier on %@: %@ accuracy %.4f (%.1f s)", name, evaluationName,
                             featureAccuracy.0, featureAccuracy.1))
            }

            var files: [String] = []
            if let output = options.output {
                let directory = try makeOutputDirectory(output)
                // Filters: each hidden unit's weights as a 28x28 image, scaled to its own range.
                let w = rbm.weights.transposed()           // [H, 784]
                let shown = Swift.min(100, hidden)
                var filters: [Tensor] = []
                for row in 0..<((shown + 9) / 10) {
                    let units = (row * 10)..<Swift.min(shown, row * 10 + 10)
                    let tiles = w.slice(units).reshaped([units.count, 784])
                    let scaled = (0..<units.count).map { i -> Tensor in
                        let t = tiles.slice(i..<(i + 1))
                        let (lo, hi) = (t.min(), t.max())
                        return (t - lo) / Swift.max(hi - lo, 1e-6)
                    }
                    filters.append(Tensor.concatenate(scaled, axis: 0).reshaped([units.count, 28, 28, 1]))
                }
                try writeImageRows(filters, title: "RBM filters: weights of hidden units 1-\(shown)", to: directory + "/rbm-filters.png")
                // Gibbs chains from 10 test images.
                var generator = SeededGenerator(seed: options.seed)
                var v = xt.gather((0..<10).map { _ in generator.nextIndex(below: xt.shape[0]) })
                var rows = [v.reshaped([10, 28, 28, 1])]
                var done = 0
                for target in [1, 10, 100, 1000] {
                    if target - 1 > done { v = rbm.gibbs(v, steps: target - 1 - done) }
                    rows.append(rbm.visibleMeans(rbm.sampleHidden(v)).reshaped([10, 28, 28, 1]))
                    v = rbm.gibbs(v, steps: 1)
                    done = target
                }
                try writeImageRows(rows, title: "Gibbs chains from 10 test images",
                                   rowLabels: ["start", "1 step", "10 steps", "100 steps", "1000 steps"],
                                   to: directory + "/rbm-gibbs.png")
                try rbm.save(to: directory + "/rbm")
                files = [directory + "/rbm-filters.png", directory + "/rbm-gibbs.png", directory + "/rbm"]
                if !options.json {
                    print("wrote \(files[0]) (filters), \(files[1]) (Gibbs chains: rows after 0, 1, 10, 100, 1000 steps) and the model in \(files[2])")
                }
            }
            if options.json {
                struct Report: Encodable {
                    var app = "rbm"
                    var dataset: String, split: String, epochs: Int, batchSize: Int, seed: UInt64, hidden: Int, method: String, steps: Int
                    var learningRate: Float, momentum: Float, decay: String, features: String
                    var epochSeconds: [Double], testPseudoLikelihood: [Double], testReconstructionMSE: [Double]
                    var rawPixelAccuracy: Double, rbmFeatureAccuracy: Double, files: [String]
                    enum CodingKeys: String, CodingKey {
                        case app, dataset, split, epochs, batchSize = "batch_size", seed, hidden, method, steps,
                             learningRate = "learning_rate", momentum, decay, features, epochSeconds = "epoch_seconds",
                             testPseudoLikelihood = "test_pseudo_likelihood", testReconstructionMSE = "test_reconstruction_mse",
                             rawPixelAccuracy = "raw_pixel_accuracy", rbmFeatureAccuracy = "rbm_feature_accuracy", files
                    }
                }
                try printJSONLine(Report(dataset: options.dataset.rawValue, split: split.rawValue, epochs: options.epochs,
                                         batchSize: options.batchSize,
                                         seed: options.seed, hidden: hidden, method: method.rawValue, steps: steps,
                                         learningRate: learningRate, momentum: momentum, decay: decay.rawValue,
                                         features: features.rawValue,
                                         epochSeconds: epochSeconds.map { rounded($0, 3) },
                                         testPseudoLikelihood: pseudoLikelihood.map { rounded($0, 3) },
                                         testReconstructionMSE: reconstruction.map { rounded($0, 5) },
                                         rawPixelAccuracy: rounded(raw.0, 4), rbmFeatureAccuracy: rounded(featureAccuracy.0, 4), files: files))
            }
        }
    }
}

RBMDemo.main()
