import Foundation
import XCTest
import _AppSupport
import _NeuriteTestSupport
import Layers
import TensorCore

/// Honest selection (issue 16): the demos hold a validation split out of the training images,
/// log `val_` figures on it, and evaluate the test set once, after training. Checked on a tiny
/// MNIST-format data set written here (300 training and 40 test images, each training image
/// marked with its index in its first two pixels), so the runs take a fraction of a second.
final class ValidationSplitTests: XCTestCase {
    private static let trainCount = 300, testCount = 40

    /// A folder with the four files. Training image i has pixels (i % 256, i / 256, ...) and label
    /// i % 10; every image has a bright 4x4 block placed by its label, so a model can learn it.
    private func tinyDataSet() throws -> String {
        let folder = try TinyIDXDataSet.write(prefix: "validation-split", trainCount: Self.trainCount,
                                              testCount: Self.testCount) { i, pixels in
            pixels[pixels.startIndex] = UInt8(i % 256)
            pixels[pixels.startIndex + 1] = UInt8(i / 256)
        }
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder.path
    }

    private func options(_ folder: String, seed: UInt64) -> DemoOptions {
        var options = DemoOptions()
        options.dataset = .mnist
        options.data = folder
        options.seed = seed
        return options
    }

    /// The index a training image carries in its first two pixels.
    private func marks(_ images: [Float], count: Int) -> [Int] {
        (0..<count).map { Int((images[$0 * 784] * 255).rounded()) + 256 * Int((images[$0 * 784 + 1] * 255).rounded()) }
    }

    func testTheSplitIsDisjointCompleteAndTheSameForEverySeed() throws {
        let folder = try tinyDataSet()
        let data = try DemoData(options(folder, seed: 1))
        let (train, validation) = try data.trainingSplit(validation: 50)
        XCTAssertEqual(train.count, 250)
        XCTAssertEqual(validation.count, 50)
        XCTAssertEqual(train.images.shape, [250, 28, 28, 1])
        let trainMarks = marks(train.images.scalars, count: 250), validationMarks = marks(validation.images.scalars, count: 50)
        XCTAssertTrue(Set(trainMarks).isDisjoint(with: validationMarks), "no image is in both parts")
        XCTAssertEqual(Set(trainMarks).union(validationMarks), Set(0..<300), "every image is in one part")
        XCTAssertEqual(train.labels, trainMarks.map { $0 % 10 }, "labels follow their images")
        XCTAssertEqual(validation.labels, validationMarks.map { $0 % 10 })
        XCTAssertNotEqual(validationMarks, Array(250..<300), "the split comes from a shuffle, not the file's last images")
        // Another --seed: the same split (the split's seed is fixed), and the same again on a second call.
        let other = try DemoData(options(folder, seed: 7))
        XCTAssertEqual(marks(try other.trainingSplit(validation: 50).validation.images.scalars, count: 50), validationMarks)
        XCTAssertEqual(try data.trainingSplit(validation: 0).train.count, 300)
        XCTAssertThrowsError(try data.trainingSplit(validation: 300)) { XCTAssertTrue($0 is DemoFailure, "\($0)") }
    }

    /// A run of `shallow-vs-deep` reports the validation and test accuracies apart, its per-epoch
    /// `val_accuracy` is the validation split's (its last value equals the final validation
    /// accuracy, since nothing changes the weights after the last epoch), and the training
    /// accuracy counts only the images it trained on.
    func testDemosLogTheValidationSplitAndReportTheTestSetApart() throws {
        let folder = try tinyDataSet()
        let run = try BuiltProducts.run("shallow-vs-deep", ["--dataset", "mnist", "--data", folder, "--epochs", "2",
                                                            "--batch-size", "25", "--validation", "60", "--json"],
                                        threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(run.status, 0, run.errors)
        let line = try XCTUnwrap(run.output.split(separator: "\n").last)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let models = try XCTUnwrap(report["models"] as? [[String: Any]])
        XCTAssertEqual(models.count, 2)
        for model in models {
            XCTAssertEqual(model["training_images"] as? Int, 240)
            XCTAssertEqual(model["validation_images"] as? Int, 60)
            let validation = try XCTUnwrap(model["validation_accuracy"] as? Double)
            let test = try XCTUnwrap(model["test_accuracy"] as? Double)
            let history = try XCTUnwrap(model["history"] as? [String: [Double]])
            XCTAssertEqual(history["val_accuracy"]?.count, 2)
            XCTAssertEqual(history["val_accuracy"]?.last ?? -1, validation, accuracy: 1e-4)
            // Accuracies on 60 and 40 images are multiples of 1/60 and 1/40.
            XCTAssertEqual((validation * 60).rounded(), validation * 60, accuracy: 0.01)
            XCTAssertEqual((test * 40).rounded(), test * 40, accuracy: 0.01)
        }
        // With --validation 0 nothing is held out and no val_ values are logged.
        let all = try BuiltProducts.run("shallow-vs-deep", ["--dataset", "mnist", "--data", folder, "--epochs", "1",
                                                            "--validation", "0", "--json"],
                                        threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(all.status, 0, all.errors)
        let allReport = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(all.output.split(separator: "\n").last!.utf8)) as? [String: Any])
        let first = try XCTUnwrap((allReport["models"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["training_images"] as? Int, 300)
        XCTAssertNil(first["validation_accuracy"])
        XCTAssertNil((first["history"] as? [String: [Double]])?["val_accuracy"])
        // A split as large as the training set is an error with a message, not a trap.
        let tooMany = try BuiltProducts.run("shallow-vs-deep", ["--dataset", "mnist", "--data", folder, "--validation", "300"],
                                            threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(tooMany.status, 1, tooMany.errors)
        XCTAssertTrue(tooMany.errors.contains("--validation 300 must be less than the 300 training images"), tooMany.errors)
    }

    /// mlp-from-scratch, which does not link `_AppSupport`, holds out the same images and reports
    /// the validation accuracy apart from the test accuracy.
    func testMLPFromScratchHoldsOutTheSameSplit() throws {
        let folder = try tinyDataSet()
        let run = try BuiltProducts.run("mlp-from-scratch", ["--dataset", "mnist", "--data", folder, "--epochs", "1",
                                                             "--validation", "50", "--json"],
                                        threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(run.status, 0, run.errors)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.split(separator: "\n").last!.utf8)) as? [String: Any])
        XCTAssertEqual(report["training_images"] as? Int, 250)
        XCTAssertEqual(report["validation_images"] as? Int, 50)
        XCTAssertNotNil(report["validation_accuracy"] as? Double)
        XCTAssertNotNil(report["test_accuracy"] as? Double)
        let tooMany = try BuiltProducts.run("mlp-from-scratch", ["--dataset", "mnist", "--data", folder, "--validation", "300"],
                                            threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(tooMany.status, 2, tooMany.errors)
        XCTAssertTrue(tooMany.errors.contains("--validation 300 must be less than the 300 training images"), tooMany.errors)
    }

    /// `mirrorAveragedAccuracy` against a Float64 reference written here: each image and its
    /// mirror (flipped by index arithmetic) through `predict` one at a time, softmax in Double,
    /// the mean's arg-max.
    func testMirrorAveragedAccuracyMatchesAReference() throws {
        let model = Sequential(inputShape: [6, 5, 1]) {
            Conv2D(filters: 3, kernelSize: (3, 3), activation: .relu)
            Flatten()
            Dense(4)
        }
        try model.build(seed: 4)
        var generator = SeededGenerator(seed: 9)
        let count = 40
        let images = Tensor(shape: [count, 6, 5, 1], scalars: (0..<(count * 30)).map { _ in generator.nextUnitFloat() })
        let labels = (0..<count).map { _ in generator.nextIndex(below: 4) }
        func softmax(_ logits: [Float]) -> [Double] {
            let m = Double(logits.max()!)
            let e = logits.map { Foundation.exp(Double($0) - m) }
            let total = e.reduce(0, +)
            return e.map { $0 / total }
        }
        var correct = 0, singleCorrect = 0
        for n in 0..<count {
            let pixels = Array(images.scalars[(n * 30)..<((n + 1) * 30)])
            var mirrored = pixels
            for y in 0..<6 {
                for x in 0..<5 { mirrored[y * 5 + x] = pixels[y * 5 + (4 - x)] }
            }
            let a = softmax(try model.predict(Tensor(shape: [1, 6, 5, 1], scalars: pixels)).scalars)
            let b = softmax(try model.predict(Tensor(shape: [1, 6, 5, 1], scalars: mirrored)).scalars)
            let mean = zip(a, b).map { $0 + $1 }
            if mean.indices.max(by: { mean[$0] < mean[$1] }) == labels[n] { correct += 1 }
            if a.indices.max(by: { a[$0] < a[$1] }) == labels[n] { singleCorrect += 1 }
        }
        let accuracy = try mirrorAveragedAccuracy(model, images: images, labels: labels)
        XCTAssertEqual(accuracy, Double(correct) / Double(count), accuracy: 1e-12)
        XCTAssertNotEqual(correct, singleCorrect, "this model and data set must tell averaging from one view apart")
        XCTAssertThrowsError(try mirrorAveragedAccuracy(model, images: images, labels: Array(labels.dropLast()))) {
            XCTAssertTrue($0 is DemoFailure, "\($0)")
        }
    }

    /// `cnn --tta` reports the mirror-averaged accuracies with the single-image ones beside them
    /// on Fashion-MNIST, and refuses MNIST (digits are not mirror-symmetric) with a message.
    func testCNNTestTimeMirroringReportsBothAccuraciesAndRefusesDigits() throws {
        let folder = try tinyDataSet()
        let common = ["--data", folder, "--model", "course", "--epochs", "1", "--batch-size", "30", "--validation", "60"]
        let run = try BuiltProducts.run("cnn", ["--dataset", "fashion", "--tta", "--json"] + common,
                                        threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(run.status, 0, run.errors)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.split(separator: "\n").last!.utf8)) as? [String: Any])
        let model = try XCTUnwrap((report["models"] as? [[String: Any]])?.first)
        for key in ["validation_accuracy", "test_accuracy", "single_view_validation_accuracy", "single_view_test_accuracy"] {
            XCTAssertNotNil(model[key] as? Double, key)
        }
        XCTAssertTrue((report["training"] as? String)?.contains("mirror-averaged evaluation") ?? false, "\(report)")
        let digits = try BuiltProducts.run("cnn", ["--dataset", "mnist", "--tta"] + common,
                                           threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(digits.status, 1, digits.errors)
        XCTAssertTrue(digits.errors.contains("suits Fashion-MNIST only"), digits.errors)
    }

    /// `cnn --recipe best` trains the network and settings README reports for each data set:
    /// for Fashion-MNIST the large network, 1-pixel shifts and mirror-averaged evaluation; for
    /// MNIST the wide network with 2-pixel shifts and no mirroring.
    func testCNNRecipeBestPicksEachDataSetsSettings() throws {
        let folder = try tinyDataSet()
        for (dataset, network, words, absent) in [
            ("fashion", "large", ["shifts of up to 1 px", "mirror-averaged evaluation", "cosine", "weight EMA 0.999"], "2 px"),
            ("mnist", "wide", ["augmented,", "cosine", "label smoothing 0.1", "weight EMA 0.999"], "mirror"),
        ] {
            let run = try BuiltProducts.run("cnn", ["--recipe", "best", "--dataset", dataset, "--data", folder,
                                                    "--validation", "60", "--json"],
                                            threads: 1, anchor: ValidationSplitTests.self)
            XCTAssertEqual(run.status, 0, run.errors)
            let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.split(separator: "\n").last!.utf8)) as? [String: Any])
            XCTAssertEqual(report["recipe"] as? String, "best")
            XCTAssertEqual(report["epochs"] as? Int, 20, dataset)
            let model = try XCTUnwrap((report["models"] as? [[String: Any]])?.first)
            XCTAssertEqual(model["name"] as? String, network, dataset)
            XCTAssertEqual((model["epoch_seconds"] as? [Double])?.count, 20, dataset)
            let training = try XCTUnwrap(report["training"] as? String)
            for word in words { XCTAssertTrue(training.contains(word), "\(dataset): \(training)") }
            XCTAssertFalse(training.contains(absent), "\(dataset): \(training)")
        }
    }

    /// The last line of a run's standard output, as a JSON object.
    private func report(_ run: ProductRun) throws -> [String: Any] {
        let line = try XCTUnwrap(run.output.split(separator: "\n").last, "no output: \(run.errors)")
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
    }

    /// Whether `value` is a whole number of `1 / count` (an accuracy or recall measured on `count` images).
    private func isFraction(_ value: Any?, of count: Int) -> Bool {
        guard let value = value as? Double else { return false }
        return abs((value * Double(count)).rounded() - value * Double(count)) < 0.01
    }

    /// `ValidationOptions`, which rebalance, rbm and autoencoder take, divides the training images
    /// as the classifier demos' `trainingSplit` does; `--validation 0` and the deprecated
    /// `--split test` keep every image in file order, and `--split validation` holds out the last
    /// sixth unshuffled, as it did before.
    func testTheUnsupervisedDemosSplitAsTheClassifierDemos() throws {
        let folder = try tinyDataSet()
        let data = try DemoData(options(folder, seed: 1))
        // As ArgumentParser leaves it when neither option is given (an unparsed option has no value to read).
        var selection = ValidationOptions()
        selection.requestedValidation = nil
        selection.split = nil
        XCTAssertEqual(selection.validation, 5_000, "the classifier demos' default")
        selection.requestedValidation = 50
        XCTAssertNoThrow(try selection.validate())
        let split = try selection.split(of: data, program: "test")
        let shared = try data.trainingSplit(validation: 50)
        let validation = try XCTUnwrap(split.validation)
        XCTAssertEqual(marks(split.train.images.scalars, count: 250), marks(shared.train.images.scalars, count: 250))
        XCTAssertEqual(marks(validation.images.scalars, count: 50), marks(shared.validation.images.scalars, count: 50))
        XCTAssertEqual(validation.labels, shared.validation.labels)
        XCTAssertEqual(split.test.count, Self.testCount)

        selection.requestedValidation = 0
        let all = try selection.split(of: data, program: "test")
        XCTAssertNil(all.validation)
        XCTAssertEqual(marks(all.train.images.scalars, count: 300), Array(0..<300), "every image, in file order")

        selection.requestedValidation = nil
        selection.split = .validation
        XCTAssertEqual(selection.validation, 10_000)
        let legacy = try selection.split(of: data, program: "test")
        XCTAssertEqual(marks(legacy.train.images.scalars, count: 250), Array(0..<250))
        XCTAssertEqual(marks(try XCTUnwrap(legacy.validation).images.scalars, count: 50), Array(250..<300))
        selection.split = .test
        XCTAssertNil(try selection.split(of: data, program: "test").validation)
        XCTAssertEqual(selection.validation, 0)
        selection.requestedValidation = 100
        XCTAssertThrowsError(try selection.validate(), "--split and --validation together")

        selection.split = nil
        selection.requestedValidation = 300
        XCTAssertThrowsError(try selection.split(of: data, program: "test")) { XCTAssertTrue($0 is DemoFailure, "\($0)") }
    }

    /// rebalance fits on the training images less the shared validation split (every class's
    /// count after a cut that keeps everything is that split's), scores each sampler there and
    /// once on the test set, and with `--validation 0` fits on all of them and reports no
    /// validation figures.
    func testRebalanceReportsTheValidationSplitAndTheTestSetApart() throws {
        let folder = try tinyDataSet()
        let run = try BuiltProducts.run("rebalance", ["--dataset", "mnist", "--data", folder, "--epochs", "1", "--batch-size", "25",
                                                      "--validation", "60", "--minority", "0,1,2,3,4,5,6,7,8,9", "--fraction", "1",
                                                      "--samplers", "none,random", "--json"],
                                        threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(run.status, 0, run.errors)
        let result = try report(run)
        XCTAssertEqual(result["training_images"] as? Int, 240)
        XCTAssertEqual(result["validation_images"] as? Int, 60)
        XCTAssertEqual(result["test_images"] as? Int, 40)
        let trainLabels = try DemoData(options(folder, seed: 1)).trainingSplit(validation: 60).train.labels
        let histogram = (0..<10).map { c in trainLabels.filter { $0 == c }.count }
        XCTAssertNotEqual(histogram, Array(repeating: 24, count: 10), "control: the last 60 images unshuffled would give 24 of each")
        XCTAssertEqual(result["minority_counts"] as? [Int], histogram, "the classes counted on the shared split's training part")
        let runs = try XCTUnwrap(result["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.map { $0["sampler"] as? String }, ["none", "random"])
        for entry in runs {
            XCTAssertTrue(isFraction(entry["validation_accuracy"], of: 60), "\(entry)")
            XCTAssertTrue(isFraction(entry["test_accuracy"], of: 40), "\(entry)")
            XCTAssertNotNil(entry["validation_macro_f1"] as? Double)
            XCTAssertNotNil(entry["test_macro_f1"] as? Double)
            XCTAssertEqual((entry["validation_minority_recall"] as? [String: Double])?.count, 10)
            XCTAssertEqual((entry["test_minority_recall"] as? [String: Double])?.count, 10)
        }

        let all = try BuiltProducts.run("rebalance", ["--dataset", "mnist", "--data", folder, "--epochs", "1", "--keep", "5",
                                                      "--samplers", "none", "--validation", "0", "--json"],
                                        threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(all.status, 0, all.errors)
        let allResult = try report(all)
        XCTAssertEqual(allResult["training_images"] as? Int, 300)
        XCTAssertEqual(allResult["validation_images"] as? Int, 0)
        XCTAssertEqual(allResult["minority_counts"] as? [Int], [5])
        let first = try XCTUnwrap((allResult["runs"] as? [[String: Any]])?.first)
        XCTAssertNil(first["validation_accuracy"])
        XCTAssertTrue(isFraction(first["test_accuracy"], of: 40), "\(first)")

        let tooMany = try BuiltProducts.run("rebalance", ["--dataset", "mnist", "--data", folder, "--validation", "300"],
                                            threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(tooMany.status, 1, tooMany.errors)
        XCTAssertTrue(tooMany.errors.contains("--validation 300 must be less than the 300 training images"), tooMany.errors)
    }

    /// rbm logs the validation split's pseudo-likelihood and reconstruction error per epoch, scores
    /// both classifiers there and once on the test set; the deprecated `--split validation` still
    /// runs, on the last sixth unshuffled, with a warning.
    func testRBMReportsTheValidationSplitAndTheTestSetApart() throws {
        let folder = try tinyDataSet()
        let common = ["--dataset", "mnist", "--data", folder, "--epochs", "2", "--hidden", "8", "--classifier-epochs", "1",
                      "--batch-size", "25", "--json"]
        let run = try BuiltProducts.run("rbm", common + ["--validation", "60"], threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(run.status, 0, run.errors)
        let result = try report(run)
        XCTAssertEqual(result["training_images"] as? Int, 240)
        XCTAssertEqual(result["validation_images"] as? Int, 60)
        XCTAssertEqual((result["validation_pseudo_likelihood"] as? [Double])?.count, 2)
        XCTAssertEqual((result["validation_reconstruction_mse"] as? [Double])?.count, 2)
        XCTAssertNotNil(result["test_pseudo_likelihood"] as? Double)
        XCTAssertNotNil(result["test_reconstruction_mse"] as? Double)
        for key in ["raw_pixel_validation_accuracy", "rbm_feature_validation_accuracy"] {
            XCTAssertTrue(isFraction(result[key], of: 60), "\(key): \(result[key] ?? "missing")")
        }
        for key in ["raw_pixel_test_accuracy", "rbm_feature_test_accuracy"] {
            XCTAssertTrue(isFraction(result[key], of: 40), "\(key): \(result[key] ?? "missing")")
        }

        let legacy = try BuiltProducts.run("rbm", common + ["--split", "validation"], threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(legacy.status, 0, legacy.errors)
        XCTAssertTrue(legacy.errors.contains("rbm: warning: --split validation is deprecated"), legacy.errors)
        let legacyResult = try report(legacy)
        XCTAssertEqual(legacyResult["training_images"] as? Int, 250)
        XCTAssertEqual(legacyResult["validation_images"] as? Int, 50)
        XCTAssertTrue(isFraction(legacyResult["raw_pixel_validation_accuracy"], of: 50))
        XCTAssertTrue(isFraction(legacyResult["raw_pixel_test_accuracy"], of: 40))

        let all = try BuiltProducts.run("rbm", common + ["--validation", "0"], threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(all.status, 0, all.errors)
        let allResult = try report(all)
        XCTAssertEqual(allResult["training_images"] as? Int, 300)
        XCTAssertNil(allResult["validation_pseudo_likelihood"])
        XCTAssertNil(allResult["raw_pixel_validation_accuracy"])
        XCTAssertTrue(isFraction(allResult["raw_pixel_test_accuracy"], of: 40))
    }

    /// autoencoder fits PCA and the autoencoders on the training images less the validation split
    /// and prints, and reports, the reconstruction errors there and once on the test set.
    func testAutoencoderReportsTheValidationSplitAndTheTestSetApart() throws {
        let folder = try tinyDataSet()
        let common = ["--dataset", "mnist", "--data", folder, "--epochs", "1", "--batch-size", "25", "--models", "dense",
                      "--code-sizes", "2", "--noise", "none", "--validation", "60"]
        let run = try BuiltProducts.run("autoencoder", common + ["--json"], threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(run.status, 0, run.errors)
        let result = try report(run)
        XCTAssertEqual(result["training_images"] as? Int, 240)
        XCTAssertEqual(result["validation_images"] as? Int, 60)
        XCTAssertNotNil((result["pca_validation_mse"] as? [String: Double])?["2"])
        XCTAssertNotNil((result["pca_test_mse"] as? [String: Double])?["2"])
        let autoencoder = try XCTUnwrap((result["autoencoders"] as? [[String: Any]])?.first)
        XCTAssertEqual(autoencoder["training_images"] as? Int, 240)
        XCTAssertNotNil(autoencoder["validation_mse"] as? Double)
        XCTAssertNotNil(autoencoder["test_mse"] as? Double)

        let text = try BuiltProducts.run("autoencoder", common, threads: 1, anchor: ValidationSplitTests.self)
        XCTAssertEqual(text.status, 0, text.errors)
        for row in ["validation MSE, code 2", "test MSE, code 2", "60 training images held out for validation",
                    "the test set is evaluated once, after training"] {
            XCTAssertTrue(text.output.contains(row), "missing \"\(row)\" in:\n\(text.output)")
        }
    }
}

