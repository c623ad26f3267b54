// autoencoder: dense and convolutional autoencoders on Fashion-MNIST (or MNIST) against PCA.
// Holds out a validation split of the training images (--validation N, 5,000 by default; the
// classifier demos' split), fits everything on the rest, and prints a table of reconstruction
// error (MSE) for each autoencoder and for PCA at the same code sizes (2, 16, 32 by default): on
// the validation split (what recipes are chosen on) and, once after training, on the test set.
// It trains denoising autoencoders too, and with --output draws originals, noisy inputs and
// reconstructions, and the test set's 2-D codes beside PCA's 2-D projection.
//
//   swift run -c release autoencoder [--dataset fashion|mnist] [--data DIR] [--download] [--epochs N]
//       [--batch-size N] [--seed N] [--output DIR] [--json] [--code-sizes 2,16,32] [--models dense,conv]
//       [--conv-samples N] [--learning-rate X] [--conv-learning-rate X]
//       [--noise gaussian|masking|salt-and-pepper|none] [--noise-level 0.3] [--validation N]
//
// The deprecated `--split test|validation` still parses (see ValidationOptions).
//
// Before each model trains it says which one; the library's progress bar then shows its epochs on
// a terminal (one plain line per epoch otherwise, nothing but the JSON line with --json).
import ArgumentParser
import Foundation
import Layers
import Optimizers
import TensorCore
import Unsupervised
import _AppSupport

enum NoiseChoice: String, ExpressibleByArgument, CaseIterable {
    case gaussian, masking, saltAndPepper = "salt-and-pepper", none
}

/// One trained autoencoder's figures: the reconstruction error on the validation split (nil
/// without one) and, once after training, on the test set.
struct AutoencoderRun: Encodable {
    var model: String
    var codeSize: Int
    var noise: String
    var parameters: Int
    var trainingImages: Int
    var epochSeconds: [Double]
    var validationMSE: Double?
    var testMSE: Double

    enum CodingKeys: String, CodingKey {
        case model, codeSize = "code_size", noise, parameters, trainingImages = "training_images", epochSeconds = "epoch_seconds"
        case validationMSE = "validation_mse", testMSE = "test_mse"
    }
}

struct AutoencoderDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autoencoder",
        abstract: "Dense and convolutional autoencoders against PCA: reconstruction error, denoising, 2-D codes.",
        discussion: """
            dense: Flatten, Dense 128 relu, Dense <code> (linear), Dense 128 relu, Dense 784 sigmoid. conv: Conv 16 3x3 \
            relu, pool, Conv 8 3x3 relu, pool, Dense <code>; decoder Dense 392 relu, Conv2DTranspose 8 and 16 (3x3, \
            stride 2) relu, Conv 1 3x3 sigmoid. Both train with Adam (1e-3 dense, 3e-3 conv) on binary cross-entropy, and PCA \
            fits, on the training images less the --validation split; the error is the mean squared error, on that \
            split (choose recipes on it; the autoencoders also log val_loss on it per epoch) and once, after \
            training, on the test images. Denoising: a dense (code 32) and a convolutional \
            autoencoder (no dense code, a 7x7x8 bottleneck) train on freshly corrupted images each epoch, against \
            the clean ones. With --output: denoising.png (labelled rows: originals, noisy, dense, conv, PCA 32 of the \
            noisy input) and codes-2d.png (test codes of the 2-D dense autoencoder, left, and PCA's 2-D projection, \
            right, with titles, numbered axes and a legend of the class names).
            """
    )

    @OptionGroup var options: DemoOptions

    @Option(name: .customLong("code-sizes"), help: "Code sizes to compare, comma-separated.")
    var codeSizes: String = "2,16,32"

    @Option(help: "Autoencoders to train, comma-separated: dense, conv.")
    var models: String = "dense,conv"

    @Option(name: .customLong("conv-samples"), help: "Training images for the convolutional autoencoders (the first ones; 0: all). Their convolutions cost about 30 times the dense network's time per image.")
    var convSamples: Int = 10000

    @Option(name: .customLong("learning-rate"), help: "Adam's learning rate for the dense autoencoders (Keras' default).")
    var learningRate: Float = 1e-3

    @Option(name: .customLong("conv-learning-rate"), help: "Adam's learning rate for the convolutional autoencoders, which learn slowly at 1e-3.")
    var convLearningRate: Float = 3e-3

    @Option(help: "Noise of the denoising autoencoders: gaussian, masking, salt-and-pepper or none (skip them).")
    var noise: NoiseChoice = .gaussian

    @Option(name: .customLong("noise-level"), help: "Standard deviation (gaussian) or fraction of pixels (masking, salt-and-pepper).")
    var noiseLevel: Float = 0.3

    @OptionGroup var selection: ValidationOptions

    func run() throws {
        try reportingFailures(of: "autoencoder") {
            let sizes = try codeSizes.split(separator: ",").map { text -> Int in
                guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 1, n <= 784 else {
                    throw DemoFailure("--code-sizes: \"\(text)\" is not a size in 1...784")
                }
                return n
            }
            let kinds = models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for kind in kinds where kind != "dense" && kind != "conv" {
                throw DemoFailure("--models: unknown model \"\(kind)\"; use dense, conv")
            }
            let data = try DemoData(options)
            let split = try selection.split(of: data, program: "autoencoder")
            let x = split.train.images
            let xv = split.validation?.images
            let xt = data.test.images
            let evaluationLabels = data.test.labels
            if !options.json {
                print("\(data.dataset.displayName): \(grouped(x.shape[0])) training and \(grouped(xt.shape[0])) test images, \(split.summary); "
                      + "batch \(options.batchSize), \(options.epochs) epochs, Adam \(learningRate) (conv \(convLearningRate)), binary cross-entropy, seed \(options.seed), "
                      + "\(ThreadPool.shared.width) threads")
            }

            // PCA once with the largest code, truncated for the others.
            let clock = Stopwatch()
            var pca = PCA(componentCount: Swift.max(sizes.max() ?? 2, 2))
            pca.fit(x)
            let pcaSeconds = clock.seconds
            var pcaMSE: [Int: Double] = [:], pcaValidationMSE: [Int: Double] = [:]
            for size in sizes {
                if let xv { pcaValidationMSE[size] = pca.keepingComponents(size).reconstructionError(xv) }
                pcaMSE[size] = pca.keepingComponents(size).reconstructionError(xt)
            }
            if !options.json { print(String(format: "PCA fitted in %.2f s", pcaSeconds)) }

            var runs: [AutoencoderRun] = []
            var trained: [String: Autoencoder] = [:]
            let convX = convSamples > 0 && convSamples < x.shape[0] ? x.slice(0..<convSamples) : x
            func train(_ ae: Autoencoder, _ name: String, code: Int, noise: Noise?) throws -> AutoencoderRun {
                try ae.build(seed: options.seed)
                let parameters = ae.model.parameters.reduce(0) { $0 + $1.value.count }
                let timer = EpochTimer(label: "", quiet: true)
                let images = name == "conv" ? convX.shape[0] : x.shape[0]
                if !options.json {
                    print("training the \(name) autoencoder, code \(code)\(noise.map { ", denoising \($0)" } ?? ""): "
                          + "\(grouped(parameters)) parameters, \(grouped(images)) images, \(options.epochs) epoch"
                          + "\(options.epochs == 1 ? "" : "s")")
                }
                // The library's bar on a terminal, one plain line per epoch anywhere else.
                let progress: [any Callback] = options.json ? [] : [ProgressBar(verbose: 1, output: DemoProgressOutput())]
                // val_loss on the clean validation images, for the plain autoencoders (a denoiser's
                // figure is its error on corrupted copies, measured below).
                try ae.fit(name == "conv" ? convX : x, epochs: options.epochs, batchSize: options.batchSize, noise: noise,
                           optimizer: Adam(learningRate: name == "conv" ? convLearningRate : learningRate),
                           validation: noise == nil ? xv : nil, seed: options.seed, callbacks: [timer] + progress)
                func error(_ images: Tensor) throws -> Double {
                    rounded(try noise.map { try Self.denoisedError(ae, images, $0, options.seed) } ?? ae.reconstructionError(images), 5)
                }
                let validationMSE = try xv.map { try error($0) }
                let run = AutoencoderRun(model: name, codeSize: code, noise: noise?.description ?? "none", parameters: parameters,
                                         trainingImages: name == "conv" ? convX.shape[0] : x.shape[0],
                                         epochSeconds: timer.seconds.map { rounded($0, 3) },
                                         validationMSE: validationMSE, testMSE: try error(xt))
                if !options.json {
                    let medianSeconds = median(timer.seconds)
                    print(name.padding(toLength: 5, withPad: " ", startingAt: 0)
                          + String(format: " code %3d%@: %@ parameters, %@ training images, %.2f s per epoch (median), ",
                                   code, noise.map { ", denoising \($0)" } ?? "", grouped(parameters), grouped(run.trainingImages),
                                   medianSeconds)
                          + (validationMSE.map { String(format: "validation MSE %.5f, ", $0) } ?? "")
                          + String(format: "test MSE %.5f", run.testMSE))
                }
                return run
            }
            for size in sizes {
                for kind in kinds {
                    let ae = kind == "dense"
                        ? Autoencoder.dense(inputShape: [28, 28, 1], hidden: [128], codeSize: size)
                        : Autoencoder.convolutional(inputShape: [28, 28, 1], filters: [16, 8], codeSize: size)
                    runs.append(try train(ae, kind, code: size, noise: nil))
                    trained["\(kind)-\(size)"] = ae
                }
            }

            // Denoising autoencoders.
            let corruption: Noise? = switch noise {
            case .gaussian: .gaussian(standardDeviation: noiseLevel)
            case .masking: .masking(fraction: noiseLevel)
            case .saltAndPepper: .saltAndPepper(fraction: noiseLevel)
            case .none: nil
            }
            var denoisers: [(String, Autoencoder)] = []
            if let corruption {
                for kind in kinds {
                    let ae = kind == "dense"
                        ? Autoencoder.dense(inputShape: [28, 28, 1], hidden: [128], codeSize: 32)
                        : Autoencoder.convolutional(inputShape: [28, 28, 1], filters: [16, 8])
                    runs.append(try train(ae, kind, code: kind == "dense" ? 32 : 392, noise: corruption))
                    denoisers.append((kind, ae))
                }
            }

            if !options.json {
                print("")
                let columns = ["PCA"] + kinds
                // The validation rows (what recipes are chosen on), then the test rows (measured once, after training).
                let tables: [(String, [Int: Double], (AutoencoderRun) -> Double?)] =
                    (xv == nil ? [] : [("validation", pcaValidationMSE, { $0.validationMSE })])
                    + [("test", pcaMSE, { $0.testMSE })]
                print(sideBySide(columns: columns, rows: tables.flatMap { table in
                    sizes.map { size in
                        ("\(table.0) MSE, code \(size)", [String(format: "%.5f", table.1[size]!)] + kinds.map { kind in
                            runs.first { $0.model == kind && $0.codeSize == size && $0.noise == "none" }
                                .flatMap(table.2).map { String(format: "%.5f", $0) } ?? "-"
                        })
                    }
                }))
                if let corruption {
                    let projection = pca.keepingComponents(Swift.min(32, pca.componentCount))
                    print("denoising (\(corruption)): MSE between the clean images and the reconstruction of their noisy copies; "
                          + "PCA 32 of the noisy copies: "
                          + (xv.map { String(format: "validation %.5f, ", Self.pcaDenoisedError(projection, $0, corruption, options.seed)) } ?? "")
                          + String(format: "test %.5f", Self.pcaDenoisedError(projection, xt, corruption, options.seed)))
                }
            }

            var files: [String] = []
            if let output = options.output {
                let directory = try makeOutputDirectory(output)
                let shown = xt.slice(0..<12)
                if let corruption {
                    let noisy = corruption.apply(to: shown, seed: options.seed)
                    var rows = [shown, noisy]
                    for (_, ae) in denoisers { rows.append(try ae.reconstruct(noisy)) }
                    let projection = pca.keepingComponents(Swift.min(32, pca.componentCount))
                    rows.append(projection.inverseTransform(projection.transform(noisy)).reshaped([12, 28, 28, 1]))
                    let names = denoisers.map { $0.0 == "dense" ? "dense autoencoder" : $0.0 == "conv" ? "convolutional autoencoder" : $0.0 }
                    try writeImageRows(rows, title: "denoising \(noise.rawValue) noise, level \(noiseLevel)",
                                       rowLabels: ["original", "noisy"] + names + ["PCA (\(projection.componentCount) components)"],
                                       to: directory + "/denoising.png")
                    files.append(directory + "/denoising.png")
                }
                // 2-D codes: the dense autoencoder with code 2 (trained here if the table had none).
                let twoD: Autoencoder
                if let ae = trained["dense-2"] { twoD = ae } else {
                    twoD = Autoencoder.dense(inputShape: [28, 28, 1], hidden: [128], codeSize: 2)
                    runs.append(try train(twoD, "dense", code: 2, noise: nil))
                }
                let count = Swift.min(5000, xt.shape[0])
                let sample = xt.slice(0..<count), labels = Array(evaluationLabels.prefix(count))
                func points(_ t: Tensor) -> [(Float, Float)] { let v = t.scalars; return (0..<count).map { (v[2 * $0], v[2 * $0 + 1]) } }
                let side = 420, gap = 16, names = data.dataset.classNames
                let legend = PictureCanvas.legendHeight(names, width: 2 * side + gap, scale: 2)
                var canvas = PictureCanvas(height: side + 3 * gap + legend, width: 2 * side + 3 * gap, background: (1, 1, 1))
                canvas.scatter(points(try twoD.encode(sample)), labels: labels, top: gap, left: gap, size: side,
                               title: "dense autoencoder codes")
                canvas.scatter(points(pca.keepingComponents(2).transform(sample)), labels: labels, top: gap, left: 2 * gap + side, size: side,
                               title: "PCA codes")
                canvas.legend(names.enumerated().map { (name: $0.element, color: classPalette[$0.offset % classPalette.count]) },
                              top: side + 2 * gap, left: gap, width: 2 * side + gap, scale: 2)
                try canvas.writePNG(to: directory + "/codes-2d.png")
                files.append(directory + "/codes-2d.png")
                if !options.json {
                    print("wrote " + files.joined(separator: ", ")
                          + " (denoising rows: originals, noisy, " + denoisers.map(\.0).joined(separator: ", ")
                          + ", PCA 32; codes: dense autoencoder left, PCA right, classes " + data.dataset.classNames.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ") + ")")
                }
            }
            if options.json {
                struct Report: Encodable {
                    var app = "autoencoder"
                    var dataset: String, epochs: Int, batchSize: Int, seed: UInt64
                    var trainingImages: Int, validationImages: Int
                    var pcaValidationMSE: [String: Double]?, pcaTestMSE: [String: Double], pcaSeconds: Double
                    var autoencoders: [AutoencoderRun], files: [String]
                    enum CodingKeys: String, CodingKey {
                        case app, dataset, epochs, batchSize = "batch_size", seed, trainingImages = "training_images",
                             validationImages = "validation_images", pcaValidationMSE = "pca_validation_mse", pcaTestMSE = "pca_test_mse",
                             pcaSeconds = "pca_seconds", autoencoders, files
                    }
                }
                try printJSONLine(Report(dataset: options.dataset.rawValue, epochs: options.epochs, batchSize: options.batchSize,
                                         seed: options.seed, trainingImages: x.shape[0], validationImages: xv?.shape[0] ?? 0,
                                         pcaValidationMSE: xv == nil ? nil : Dictionary(uniqueKeysWithValues: pcaValidationMSE.map { ("\($0.key)", rounded($0.value, 5)) }),
                                         pcaTestMSE: Dictionary(uniqueKeysWithValues: pcaMSE.map { ("\($0.key)", rounded($0.value, 5)) }),
                                         pcaSeconds: rounded(pcaSeconds, 3), autoencoders: runs, files: files))
            }
        }
    }

    static func corrupt(_ x: Tensor, _ noise: Noise, seed: UInt64) -> Tensor { noise.apply(to: x, seed: seed &+ 7919) }

    /// MSE between the clean images and the reconstruction of their corrupted copies.
    static func denoisedError(_ ae: Autoencoder, _ x: Tensor, _ noise: Noise, _ seed: UInt64) throws -> Double {
        meanSquaredError(try ae.reconstruct(corrupt(x, noise, seed: seed)), x)
    }

    static func pcaDenoisedError(_ pca: PCA, _ x: Tensor, _ noise: Noise, _ seed: UInt64) -> Double {
        let noisy = corrupt(x, noise, seed: seed)
        return meanSquaredError(pca.inverseTransform(pca.transform(noisy)), x)
    }
}

AutoencoderDemo.main()
