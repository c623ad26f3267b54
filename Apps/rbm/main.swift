// rbm: a restricted Boltzmann machine on binarised MNIST (or Fashion-MNIST). Holds out a
// validation split of the training images (--validation N, 5,000 by default; the classifier
// demos' split), trains the RBM on the rest with persistent or plain contrastive divergence,
// prints per epoch the time and the validation split's pseudo-likelihood and reconstruction
// error, then compares a softmax classifier on the RBM's hidden probabilities with one on the raw
// pixels: validation accuracy (what recipes are chosen on) and, once after training, test
// accuracy. With --output it draws the learned filters and chains of Gibbs samples, and saves the
// RBM (safetensors + JSON).
//
//   swift run -c release rbm --dataset mnist [--data DIR] [--download] [--epochs N] [--batch-size N] [--seed N]
//       [--output DIR] [--json] [--hidden 256] [--learning-rate 0.05] [--method pcd|cd] [--steps 1]
//       [--momentum 0] [--classifier-epochs 10] [--decay none|linear] [--features rbm|rbm+pixels]
//       [--validation N]
//
// The deprecated `--split test|validation` still parses (see ValidationOptions).
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

struct RBMDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rbm",
        abstract: "A restricted Boltzmann machine on binarised MNIST: filters, Gibbs samples, features for a classifier.",
        discussion: """
            Pixels are binarised at 0.5. The RBM trains for --epochs with batches of --batch-size; the features \
            are its hidden probabilities. Both classifiers are softmax regressions (Dense 10, Adam 1e-3, batch \
            128, --classifier-epochs). The RBM and both classifiers train on the training images less the \
            --validation split; the per-epoch pseudo-likelihood and reconstruction error and the classifiers' \
            validation accuracy are measured on that split (choose recipes on them), and the test set is \
            evaluated once, after training. With --output: rbm-filters.png (the first 100 hidden units' weights, each \
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

    @OptionGroup var selection: ValidationOptions

    func validate() throws {
        guard hidden >= 1, steps >= 1, classifierEpochs >= 1 else { throw ValidationError("--hidden, --steps and --classifier-epochs must be at least 1.") }
        guard momentum >= 0 && momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum).") }
    }

    func run() throws {
        try reportingFailures(of: "rbm") {
            let data = try DemoData(options)
            let binary = { (t: Tensor) in t.reshaped([t.shape[0], 784]).map { $0 > 0.5 ? 1 : 0 } }
            let split = try selection.split(of: data, program: "rbm")
            let x = binary(split.train.images)
            let validationSet = split.validation.map { (x: binary($0.images), y: $0.labels) }
            let xv = validationSet?.x
            let xt = binary(data.test.images)
            let trainLabels = split.train.labels
            let rbm = RBM(visibleCount: 784, hiddenCount: hidden, learningRate: learningRate, momentum: momentum,
                          batchSize: options.batchSize,
                          method: method == .pcd ? .persistent(steps: steps) : .contrastiveDivergence(steps: steps),
                          seed: options.seed)
            if !options.json {
                print("binarised \(data.dataset.displayName): \(grouped(x.shape[0])) training and \(grouped(xt.shape[0])) test images, "
                      + "\(split.summary); "
                      + "RBM 784-\(hidden), \(method.rawValue.uppercased())-\(steps), learning rate \(learningRate)"
                      + "\(decay == .linear ? " decaying linearly" : ""), momentum \(momentum), "
                      + "batch \(options.batchSize), seed \(options.seed), \(ThreadPool.shared.width) threads")
            }
            var epochSeconds: [Double] = [], pseudoLikelihood: [Double] = [], reconstruction: [Double] = []
            rbm.fit(x, epochs: options.epochs) { epoch, seconds in
                epochSeconds.append(seconds)
                if let xv {
                    pseudoLikelihood.append(rbm.meanPseudoLikelihood(xv, seed: options.seed))
                    reconstruction.append(rbm.reconstructionError(xv))
                }
                if decay == .linear { rbm.learningRate = learningRate * Float(options.epochs - epoch - 1) / Float(options.epochs) }
                if !options.json {
                    print(String(format: "epoch %2d/%d  %6.2f s", epoch + 1, options.epochs, seconds)
                          + (xv == nil ? "" : String(format: "  validation pseudo-likelihood %8.2f  validation reconstruction MSE %.4f",
                                                      pseudoLikelihood.last!, reconstruction.last!)))
                }
            }

            /// A softmax regression trained on `features` of the training images: its accuracy on the validation split (nil
            /// without one) and on the test set, and its training seconds.
            func softmaxAccuracy(_ features: (Tensor) -> Tensor) throws -> (validation: Double?, test: Double, seconds: Double) {
                let train = features(x)
                let model = Sequential(inputShape: [train.shape[1]]) { Dense(10) }
                model.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy())
                let clock = Stopwatch()
                try model.fit(x: train, y: trainLabels, epochs: classifierEpochs, batchSize: 128, seed: options.seed,
                              callbacks: terminalProgressBar(json: options.json).map { [$0] } ?? [], verbose: 0)
                let seconds = clock.seconds
                func accuracy(_ images: Tensor, _ labels: [Int]) throws -> Double {
                    let predicted = try model.predict(features(images), batchSize: 1000).argmax(alongAxis: 1)
                    return ConfusionMatrix(predicted: predicted, actual: labels, classes: 10).accuracy
                }
                let validation = try validationSet.map { try accuracy($0.x, $0.y) }
                return (validation, try accuracy(xt, data.test.labels), seconds)
            }
            let raw = try softmaxAccuracy { $0 }
            let featureAccuracy = features == .rbm
                ? try softmaxAccuracy { rbm.transform($0) }
                : try softmaxAccuracy { Tensor.concatenate([rbm.transform($0), $0], axis: 1) }
            // The RBM itself on the test set, once, after training.
            let testPseudoLikelihood = rbm.meanPseudoLikelihood(xt, seed: options.seed)
            let testReconstruction = rbm.reconstructionError(xt)
            if !options.json {
                let name = features == .rbm ? "RBM features (\(hidden))" : "RBM features and pixels (\(hidden) + 784)"
                func line(_ input: String, _ result: (validation: Double?, test: Double, seconds: Double)) -> String {
                    "softmax classifier on " + (input + ":").padding(toLength: Swift.max(input.count, name.count) + 1, withPad: " ", startingAt: 0)
                        + (result.validation.map { String(format: " validation accuracy %.4f,", $0) } ?? "")
                        + String(format: " test accuracy %.4f (%.1f s)", result.test, result.seconds)
                }
                print(line("raw pixels (784)", raw))
                print(line(name, featureAccuracy))
                print(String(format: "RBM on the test set, once after training: pseudo-likelihood %.2f, reconstruction MSE %.4f",
                             testPseudoLikelihood, testReconstruction))
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
                    var dataset: String, epochs: Int, batchSize: Int, seed: UInt64, hidden: Int, method: String, steps: Int
                    var learningRate: Float, momentum: Float, decay: String, features: String
                    var trainingImages: Int, validationImages: Int, epochSeconds: [Double]
                    var validationPseudoLikelihood: [Double]?, validationReconstructionMSE: [Double]?
                    var testPseudoLikelihood: Double, testReconstructionMSE: Double
                    var rawPixelValidationAccuracy: Double?, rawPixelTestAccuracy: Double
                    var rbmFeatureValidationAccuracy: Double?, rbmFeatureTestAccuracy: Double, files: [String]
                    enum CodingKeys: String, CodingKey {
                        case app, dataset, epochs, batchSize = "batch_size", seed, hidden, method, steps,
                             learningRate = "learning_rate", momentum, decay, features, trainingImages = "training_images",
                             validationImages = "validation_images", epochSeconds = "epoch_seconds",
                             validationPseudoLikelihood = "validation_pseudo_likelihood",
                             validationReconstructionMSE = "validation_reconstruction_mse",
                             testPseudoLikelihood = "test_pseudo_likelihood", testReconstructionMSE = "test_reconstruction_mse",
                             rawPixelValidationAccuracy = "raw_pixel_validation_accuracy", rawPixelTestAccuracy = "raw_pixel_test_accuracy",
                             rbmFeatureValidationAccuracy = "rbm_feature_validation_accuracy",
                             rbmFeatureTestAccuracy = "rbm_feature_test_accuracy", files
                    }
                }
                try printJSONLine(Report(dataset: options.dataset.rawValue, epochs: options.epochs,
                                         batchSize: options.batchSize,
                                         seed: options.seed, hidden: hidden, method: method.rawValue, steps: steps,
                                         learningRate: learningRate, momentum: momentum, decay: decay.rawValue,
                                         features: features.rawValue, trainingImages: x.shape[0], validationImages: xv?.shape[0] ?? 0,
                                         epochSeconds: epochSeconds.map { rounded($0, 3) },
                                         validationPseudoLikelihood: xv == nil ? nil : pseudoLikelihood.map { rounded($0, 3) },
                                         validationReconstructionMSE: xv == nil ? nil : reconstruction.map { rounded($0, 5) },
                                         testPseudoLikelihood: rounded(testPseudoLikelihood, 3),
                                         testReconstructionMSE: rounded(testReconstruction, 5),
                                         rawPixelValidationAccuracy: raw.validation.map { rounded($0, 4) },
                                         rawPixelTestAccuracy: rounded(raw.test, 4),
                                         rbmFeatureValidationAccuracy: featureAccuracy.validation.map { rounded($0, 4) },
                                         rbmFeatureTestAccuracy: rounded(featureAccuracy.test, 4), files: files))
            }
        }
    }
}

RBMDemo.main()
