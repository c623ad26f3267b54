import Datasets
import Dispatch
import Foundation
import Layers
import Optimizers
import TensorCore
import Unsupervised

/// The `unsupervised` suite, beside Tools/reference/sklearn_unsupervised.py (scikit-learn and
/// imbalanced-learn on the same data and settings):
/// - `rbm`: an RBM with 256 hidden units, batch 64, learning rate 0.05 (PCD-1, scikit-learn's
///   `BernoulliRBM` rule) on Fashion-MNIST in 0...1: seconds per pass over the 60,000 training
///   images (best and median of 5) and the mean pseudo-likelihood of the 10,000 test images after
///   5, with the pool's width and on one thread.
/// - `smote`: Fashion-MNIST with class 9 cut to its first 100 training images; the seconds of
///   `SMOTE().fitResample` (best of several), then a softmax regression (Dense 10, Adam 1e-3,
///   batch 128, 5 epochs) trained without resampling and with random, SMOTE and RBM
///   oversampling (`rbm`: ``RBMOverSampler/recommended(strategy:seed:)``, chosen on a validation
///   split by `Apps/rebalance` (then `--split validation`, now `--validation N`); `rbm_original`: the first recipe,
///   `RBMOverSampler()`): class-9 recall and macro-F1 on the untouched test set.
enum UnsupervisedBench {
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    static func run(minSeconds: Double, dataDirectory: String?, quick: Bool) {
        let train: MNISTDataset, test: MNISTDataset
        do {
            train = try FashionMNIST.load(.train, from: dataDirectory)
            test = try FashionMNIST.load(.test, from: dataDirectory)
        } catch {
            print("unsupervised suite skipped: cannot load Fashion-MNIST: \(error)")
            return
        }
        let x = train.images.reshaped([train.count, 784]), xt = test.images.reshaped([test.count, 784])

        // RBM, as scikit-learn's BernoulliRBM(n_components=256, batch_size=64, learning_rate=0.05, n_iter=5),
        // with the pool's width and on one thread (its products have only 64 to 128 rows).
        for threads in Set([ThreadPool.shared.width, 1]).sorted(by: >) {
            ThreadPool.withWidthLimit(threads) {
                let rbm = RBM(visibleCount: 784, hiddenCount: 256, learningRate: 0.05, batchSize: 64,
                              method: .persistent(steps: 1), seed: 0)
                var epochs: [Double] = []
                rbm.fit(x, epochs: quick ? 2 : 5) { _, s in epochs.append(s) }
                let pl = rbm.meanPseudoLikelihood(xt, seed: 0)
                let sorted = epochs.sorted()
                emit([("bench", "unsupervised"), ("impl", "neurite"), ("op", "rbm_fashion_256h_b64_lr0.05"), ("threads", threads),
                      ("iterations", epochs.count), ("best_s_per_iter", sorted[0]), ("median_s_per_iter", sorted[sorted.count / 2]),
                      ("test_pseudo_likelihood", pl), ("reconstruction_mse", rbm.reconstructionError(xt))])
            }
        }

        // SMOTE on class 9 cut to 100.
        var keep: [Int] = []
        var nines = 0
        for (i, label) in train.labels.enumerated() {
            if label == 9 { nines += 1; if nines > 100 { continue } }
            keep.append(i)
        }
        let xi = x.gather(keep), yi = keep.map { train.labels[$0] }
        var resampled: (x: Tensor, y: [Int]) = (xi, yi)
        var best = Double.infinity
        let start = DispatchTime.now().uptimeNanoseconds
        repeat {
            best = min(best, try! seconds { resampled = try SMOTE(seed: 0).fitResample(xi, yi) })
        } while Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < minSeconds
        emit([("bench", "unsupervised"), ("impl", "neurite"), ("op", "smote_fashion_class9_100"),
              ("samples_out", resampled.y.count), ("seconds", best)])

        var sets: [(String, Tensor, [Int], Double)] = [("none", xi, yi, 0), ("smote", resampled.x, resampled.y, best)]
        var r: (x: Tensor, y: [Int]) = (xi, yi)
        let randomSeconds = try! seconds { r = try RandomOverSampler(seed: 0).fitResample(xi, yi) }
        sets.append(("random", r.x, r.y, randomSeconds))
        // The RBMs' products have 10 to 20 rows: one thread, as the RBM case shows.
        let rbmSeconds = try! ThreadPool.withWidthLimit(1) { try seconds { r = try RBMOverSampler.recommended(seed: 0).fitResample(xi, yi) } }
        sets.append(("rbm", r.x, r.y, rbmSeconds))
        let originalSeconds = try! ThreadPool.withWidthLimit(1) { try seconds { r = try RBMOverSampler(seed: 0).fitResample(xi, yi) } }
        sets.append(("rbm_original", r.x, r.y, originalSeconds))
        for (name, sx, sy, resampleSeconds) in sets {
            let (recall, f1, trainSeconds) = softmaxRegression(sx, sy, test: xt, testLabels: test.labels, minority: 9)
            emit([("bench", "unsupervised"), ("impl", "neurite"), ("op", "softmax_regression_after_resampling"),
                  ("resampling", name), ("resample_seconds", resampleSeconds), ("train_seconds", trainSeconds),
                  ("class9_recall", recall), ("macro_f1", f1)])
        }
    }

    /// Trains `Dense(10)` with Adam 1e-3, batch 128, 5 epochs (seed 0) and returns the test recall
    /// of `minority`, the macro-F1 and the training seconds.
    static func softmaxRegression(_ x: Tensor, _ y: [Int], test: Tensor, testLabels: [Int], minority: Int) -> (Double, Double, Double) {
        let model = Sequential(inputShape: [784]) { Dense(10) }
        model.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy())
        let s = try! seconds { try model.fit(x: x, y: y, epochs: 5, batchSize: 128, seed: 0, verbose: 0) }
        let predicted = try! model.predict(test, batchSize: 1000).argmax(alongAxis: 1)
        let confusion = ConfusionMatrix(predicted: predicted, actual: testLabels, classes: 10)
        return (confusion.recall[minority], confusion.macroF1, s)
    }
}
