// mlp-from-scratch: a shallow network (784 -> 128 relu -> 10 softmax) trained on Fashion-MNIST
// (or MNIST) with nothing but TensorCore's kernels and Datasets' loaders: every forward and
// backward step is written out below, so this is also a tour of the kernels a Dense layer uses.
//
//   swift run -c release mlp-from-scratch [--dataset fashion|mnist] [--data DIR] [--epochs N]
//       [--batch-size N] [--hidden N] [--learning-rate X] [--validation N] [--seed N] [--output DIR] [--json]
//
// --validation N (default 5,000) holds out N of the 60,000 training images (the last N of a
// shuffle with a fixed seed, the same split as the other demos'): the network trains on the rest,
// the per-epoch line reports the accuracy on the held-out images, and the test set is evaluated
// once, after the last epoch.
//
// Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package (or --data / $NEURITE_DATA);
// MNIST from --data, $NEURITE_DATA or the per-user cache.
import Datasets
import Foundation
import TensorCore

struct Options {
    var dataset = "fashion"
    var data: String?
    var epochs = 5
    var batchSize = 128
    var hidden = 128
    var learningRate: Float = 0.05
    var momentum: Float = 0.9
    var validation = 5_000
    var seed: UInt64 = 1
    var output: String?
    var json = false
}

func parseOptions() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    func value(_ flag: String) -> String {
        guard !args.isEmpty else { fail("\(flag) needs a value") }
        return args.removeFirst()
    }
    while !args.isEmpty {
        let flag = args.removeFirst()
        switch flag {
        case "--dataset": o.dataset = value(flag)
        case "--data": o.data = value(flag)
        case "--epochs": o.epochs = Int(value(flag)) ?? { fail("--epochs needs an integer") }()
        case "--batch-size": o.batchSize = Int(value(flag)) ?? { fail("--batch-size needs an integer") }()
        case "--hidden": o.hidden = Int(value(flag)) ?? { fail("--hidden needs an integer") }()
        case "--learning-rate": o.learningRate = Float(value(flag)) ?? { fail("--learning-rate needs a number") }()
        case "--validation": o.validation = Int(value(flag)) ?? { fail("--validation needs an integer") }()
        case "--seed": o.seed = UInt64(value(flag)) ?? { fail("--seed needs a non-negative integer") }()
        case "--output": o.output = value(flag)
        case "--json": o.json = true
        case "-h", "--help":
            print("usage: mlp-from-scratch [--dataset fashion|mnist] [--data DIR] [--epochs N] [--batch-size N] "
                  + "[--hidden N] [--learning-rate X] [--validation N] [--seed N] [--output DIR] [--json]")
            exit(0)
        default: fail("unknown option \(flag) (try --help)")
        }
    }
    guard ["fashion", "mnist"].contains(o.dataset) else { fail("--dataset must be fashion or mnist") }
    guard o.epochs >= 1, o.batchSize >= 1, o.hidden >= 1 else { fail("--epochs, --batch-size and --hidden must be positive") }
    guard (0..<60_000).contains(o.validation) else { fail("--validation must be in 0..<60000") }
    return o
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mlp-from-scratch: \(message)\n".utf8))
    exit(2)
}

func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

/// The network's parameters and their momentum buffers.
struct MLP {
    var w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor
    var velocity: [Tensor]

    init(inputs: Int, hidden: Int, classes: Int, generator: inout SeededGenerator) {
        w1 = .heNormal([inputs, hidden], using: &generator)
        b1 = .zeros([hidden])
        w2 = .glorotUniform([hidden, classes], using: &generator)
        b2 = .zeros([classes])
        velocity = [w1, b1, w2, b2].map { Tensor.zeros($0.shape) }
    }

    /// Logits [B, classes] for inputs [B, 784], and the hidden activations backward needs.
    func forward(_ x: Tensor) -> (logits: Tensor, hidden: Tensor) {
        var h = Tensor.matmul(x, w1)            // [B, hidden]
        h.addBias(b1, activation: .relu)         // fused bias + relu, in place
        var logits = Tensor.matmul(h, w2)       // [B, classes]
        logits.addBias(b2)
        return (logits, h)
    }

    /// One SGD-with-momentum step on a batch; returns the mean cross-entropy.
    mutating func trainStep(x: Tensor, labels: [Int], learningRate: Float, momentum: Float) -> Float {
        let batch = Float(labels.count)
        let (logits, h) = forward(x)
        // Softmax cross-entropy, fused: loss = -mean(log_softmax[y]); dlogits = (softmax - onehot) / B.
        let logProbabilities = logits.logSoftmax()
        var loss: Float = 0
        for (row, y) in labels.enumerated() { loss -= logProbabilities[row, y] }
        var dLogits = logProbabilities.exp()
        dLogits.withUnsafeMutableBufferPointer { d in
            let classes = logits.shape[1]
            for (row, y) in labels.enumerated() { d[row * classes + y] -= 1 }
        }
        dLogits *= 1 / batch
        // Backward through the two Dense layers: weight gradients are x^T dy, input gradients dy W^T.
        let dW2 = Tensor.matmul(h, transposeA: true, dLogits)
        let dB2 = dLogits.sum(alongAxis: 0)
        let dH = Tensor.reluBackward(gradient: Tensor.matmul(dLogits, w2, transposeB: true), input: h)
        let dW1 = Tensor.matmul(x, transposeA: true, dH)
        let dB1 = dH.sum(alongAxis: 0)
        // v = momentum * v - lr * g; w += v   (SGD with momentum, as PyTorch and Keras write it)
        let gradients = [dW1, dB1, dW2, dB2]
        for i in 0..<4 {
            velocity[i] *= momentum
            velocity[i] -= learningRate * gradients[i]
        }
        w1 += velocity[0]; b1 += velocity[1]; w2 += velocity[2]; b2 += velocity[3]
        return loss / batch
    }

    /// Fraction of `x` classified as `labels`, predicting in batches.
    func accuracy(_ x: Tensor, _ labels: [Int], batchSize: Int = 1000) -> Double {
        var correct = 0
        for start in stride(from: 0, to: labels.count, by: batchSize) {
            let end = min(start + batchSize, labels.count)
            let predicted = forward(x.slice(start..<end)).logits.argmax(alongAxis: 1)
            for (i, p) in predicted.enumerated() where p == labels[start + i] { correct += 1 }
        }
        return Double(correct) / Double(labels.count)
    }
}

let options = parseOptions()
let name = options.dataset == "fashion" ? "Fashion-MNIST" : "MNIST"
var train: MNISTDataset, test: MNISTDataset
do {
    let loadStart = DispatchTime.now().uptimeNanoseconds
    if options.dataset == "fashion" {
        train = try FashionMNIST.load(.train, from: options.data)
        test = try FashionMNIST.load(.test, from: options.data)
    } else {
        train = try MNIST.load(.train, from: options.data)
        test = try MNIST.load(.test, from: options.data)
    }
    if !options.json {
        print("\(name): \(train.count) training and \(test.count) test images from \(train.directory) "
              + "(\(String(format: "%.2f", seconds(since: loadStart))) s)")
    }
} catch {
    fail("cannot load \(name): \(error)\n"
         + (options.dataset == "fashion" ? "Install it with: apt-get install dataset-fashion-mnist, or pass --data DIR" : "Pass --data DIR"))
}

// The validation split: the last `options.validation` images of a seeded shuffle (seed 16, the
// same split as `_AppSupport`'s `DemoData.trainingSplit`, which this app does not link).
guard options.validation < train.count else {
    fail("--validation \(options.validation) must be less than the \(train.count) training images of \(train.directory)")
}
var order = Array(0..<train.count)
var splitGenerator = SeededGenerator(seed: 16)
order.seededShuffle(using: &splitGenerator)
let kept = Array(order[..<(train.count - options.validation)]), heldOut = Array(order[(train.count - options.validation)...])
let validationImages = train.images.gather(heldOut), validationLabels = heldOut.map { train.labels[$0] }
train.images = train.images.gather(kept)
train.labels = kept.map { train.labels[$0] }
if !options.json && options.validation > 0 {
    print("\(options.validation) training images held out for validation; training on \(train.count); "
          + "the test set is evaluated once, after training")
}

let features = 28 * 28
let xTrain = train.images.reshaped([train.count, features])
let xValidation = validationImages.reshaped([validationLabels.count, features])
let xTest = test.images.reshaped([test.count, features])
var generator = SeededGenerator(seed: options.seed)
var model = MLP(inputs: features, hidden: options.hidden, classes: 10, generator: &generator)
let loader = DataLoader(TensorDataset(x: xTrain, y: train.labels), batchSize: options.batchSize, seed: options.seed)
let parameters = [model.w1, model.b1, model.w2, model.b2].reduce(0) { $0 + $1.count }
if !options.json {
    print("784 -> \(options.hidden) relu -> 10 softmax, \(parameters) parameters, batch \(options.batchSize), "
          + "SGD lr \(options.learningRate) momentum \(options.momentum), \(ThreadPool.shared.width) threads, \(KernelISA.current) kernels")
}

var epochSeconds: [Double] = []
var trainAccuracy = 0.0, validationAccuracy: Double? = nil
for epoch in 0..<options.epochs {
    let start = DispatchTime.now().uptimeNanoseconds
    var lossSum: Float = 0, steps = 0
    let batches = loader.batches(epoch: epoch)
    do {
        while let (x, y) = try batches.next() {
            lossSum += model.trainStep(x: x, labels: y, learningRate: options.learningRate, momentum: options.momentum)
            steps += 1
        }
    } catch {
        fail("reading batch: \(error)")
    }
    let elapsed = seconds(since: start)
    epochSeconds.append(elapsed)
    trainAccuracy = model.accuracy(xTrain, train.labels)
    validationAccuracy = validationLabels.isEmpty ? nil : model.accuracy(xValidation, validationLabels)
    if !options.json {
        print(String(format: "epoch %2d  loss %.4f  train accuracy %.4f  %@%.2f s", epoch + 1, lossSum / Float(steps),
                     trainAccuracy, validationAccuracy.map { String(format: "val accuracy %.4f  ", $0) } ?? "", elapsed))
    }
}
// The test set, once, after training.
let testAccuracy = model.accuracy(xTest, test.labels)

var files: [String] = []
if let output = options.output {
    // A picture of the first 100 test images, each with its predicted class, for a person to look at.
    do {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let predicted = model.forward(xTest.slice(0..<100)).logits.argmax(alongAxis: 1)
        var grid = Tensor.zeros([10 * 30, 10 * 30, 3])
        let images = test.images.slice(0..<100)
        for i in 0..<100 {
            let (gy, gx) = (i / 10 * 30 + 1, i % 10 * 30 + 1)
            let right = predicted[i] == test.labels[i]
            for r in 0..<28 {
                for c in 0..<28 {
                    let v = images[i, r, c, 0]
                    // Correct predictions in gray, mistakes tinted red.
                    grid[gy + r, gx + c, 0] = v
                    grid[gy + r, gx + c, 1] = right ? v : v * 0.3
                    grid[gy + r, gx + c, 2] = right ? v : v * 0.3
                }
            }
        }
        let path = output + "/predictions.png"
        try ImageEncoder.writePNG(grid, to: path)
        files.append(path)
        if !options.json { print("wrote \(path) (mistakes in red)") }
    } catch {
        fail("writing pictures: \(error)")
    }
}

let sorted = epochSeconds.sorted()
let median = sorted[sorted.count / 2]
if options.json {
    let filesJSON = files.map { "\"\($0)\"" }.joined(separator: ", ")
    print("{\"app\": \"mlp-from-scratch\", \"dataset\": \"\(options.dataset)\", \"epochs\": \(options.epochs), "
          + "\"parameters\": \(parameters), \"seconds_per_epoch\": \(String(format: "%.3f", median)), "
          + "\"training_images\": \(train.count), \"validation_images\": \(validationLabels.count), "
          + "\"train_accuracy\": \(String(format: "%.4f", trainAccuracy)), "
          + (validationAccuracy.map { "\"validation_accuracy\": \(String(format: "%.4f", $0)), " } ?? "")
          + "\"test_accuracy\": \(String(format: "%.4f", testAccuracy)), "
          + "\"files\": [\(filesJSON)]}")
} else {
    let validation = validationAccuracy.map { String(format: "validation accuracy %.4f; ", $0) } ?? ""
    print(String(format: "median %.2f s per epoch; %@test accuracy %.4f (evaluated once, after training)", median,
                 validation, testAccuracy))
}
