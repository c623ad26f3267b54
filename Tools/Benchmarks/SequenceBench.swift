import Foundation
import Layers
import Optimizers
import TensorCore

/// The `sequence` suite, case `conv1d`: the genome model of issue 13 on one batch of 64 one-hot
/// DNA sequences of 200 bases, `[64, 200, 4]`:
///
///     Conv1D(64, 9, same, relu) -> MaxPool1D(3) -> Conv1D(64, 9, same, relu)
///       -> GlobalMaxPool1D -> Dense(1)      (binary cross-entropy from logits)
///
/// It times, best repetition each: the inference `forward`; `forward_backward`, a training-mode
/// forward, the loss and `model.backward` (which also computes the first layer's input gradient,
/// work Keras and PyTorch skip); and `train_step`, `trainOnBatch` with Adam as `fit` runs it
/// (the first layer skips its input gradient). Then every layer's inference forward and its
/// training forward plus backward. One JSON line per case. The references, timed the same way
/// with the same shapes, are Tools/reference/keras_conv1d.py and Tools/reference/torch_conv1d.py.
///
/// Figures for issue 13 (2-core AMD EPYC, AVX-512, shared and busy: another job held about one
/// core, so the 2-thread figures are unreliable; best of 3 alternating rounds, ms):
///
///     1 thread     forward  forward+backward  train step
///     Neurite        3.65        12.45*           11.09
///     Keras 3.15     3.57        11.12            11.35    (TensorFlow 2.21, tf.function)
///     PyTorch 2.15   8.84        20.40            22.42    (eager)
///     2 threads: Neurite 2.04 / 13.8* / 9.03, Keras 2.76 / 12.2 / 8.93, PyTorch 10.4 / 60 / 42
///
/// (* Neurite's forward+backward also computes the first layer's input gradient, about 1.4 ms,
/// which the others skip; its train step skips it too.)
enum SequenceBench {
    static let (batch, length, bases, filters, kernelSize) = (64, 200, 4, 64, 9)

    static func model() -> Sequential {
        Sequential(inputShape: [length, bases]) {
            Conv1D(filters: filters, kernelSize: kernelSize, padding: .same, activation: .relu)
            MaxPool1D(poolSize: 3)
            Conv1D(filters: filters, kernelSize: kernelSize, padding: .same, activation: .relu)
            GlobalMaxPool1D()
            Dense(1)
        }
    }

    /// One-hot sequences `[batch, length, 4]` of random bases, and random 0/1 labels.
    static func data() -> (x: Tensor, y: [Int]) {
        var generator = SeededGenerator(seed: 13)
        var scalars = [Float](repeating: 0, count: batch * length * bases)
        for position in 0..<(batch * length) { scalars[position * bases + generator.nextIndex(below: bases)] = 1 }
        let labels = (0..<batch).map { _ in generator.nextIndex(below: 2) }
        return (Tensor(shape: [batch, length, bases], scalars: scalars), labels)
    }

    static func run(minSeconds: Double, threadCounts: [Int], isa: String) {
        let (x, y) = data()
        let targets = Tensor(shape: [batch, 1], scalars: y.map(Float.init))
        for threads in threadCounts {
            ThreadPool.withWidthLimit(threads) {
                let model = model()
                try! model.build(seed: 1)
                let loss = BinaryCrossEntropy(fromLogits: true)
                model.compile(optimizer: Adam(learningRate: 1e-3), loss: loss)
                let common: [(String, Any)] = [("bench", "sequence"), ("case", "conv1d"), ("impl", "neurite"), ("isa", isa),
                                               ("batch", batch), ("length", length), ("threads", threads)]
                let forward = measure(minSeconds: minSeconds) { _ = model.forward(x, training: false) }
                let forwardBackward = measure(minSeconds: minSeconds) {
                    for p in model.parameters { p.zeroGradient() }
                    let logits = model.forward(x, training: true)
                    _ = model.backward(loss.compute(logits, .values(targets), sampleWeights: nil).gradient)
                }
                let step = measure(minSeconds: minSeconds) { _ = try! model.trainOnBatch(x: x, y: targets) }
                emit(common + [("op", "forward"), ("ms", forward * 1e3)])
                emit(common + [("op", "forward_backward"), ("ms", forwardBackward * 1e3)])
                emit(common + [("op", "train_step"), ("ms", step * 1e3)])

                // Each convolution's three products alone ([64, 1, 200, 4] and [64, 1, 66, 64] with
                // [1, 9, Cin, 64] kernels), by each method TensorCore has (NEURITE_BENCH_PARTS=1;
                // for choosing paths).
                if ProcessInfo.processInfo.environment["NEURITE_BENCH_PARTS"] != nil {
                    var g = SeededGenerator(seed: 3)
                    for (steps, channels) in [(length, bases), (66, filters)] {
                        let input = Tensor.randomUniform([batch, 1, steps, channels], in: -1...1, using: &g)
                        let kernel = Tensor.randomUniform([1, kernelSize, channels, filters], in: -1...1, using: &g)
                        let dy = Tensor.randomUniform([batch, 1, steps, filters], in: -1...1, using: &g)
                        for (label, algorithm) in [("automatic", ConvolutionAlgorithm.automatic), ("direct", .direct), ("im2col", .im2col)] {
                            ConvolutionAlgorithm.with(algorithm) {
                                let f = measure(minSeconds: minSeconds / 4) { _ = Tensor.conv2D(input, kernel: kernel, padding: .same) }
                                let dk = measure(minSeconds: minSeconds / 4) {
                                    _ = Tensor.conv2DBackwardKernel(input: input, outputGradient: dy, kernelShape: kernel.shape, padding: .same)
                                }
                                let dx = measure(minSeconds: minSeconds / 4) {
                                    _ = Tensor.conv2DBackwardInput(outputGradient: dy, kernel: kernel, inputShape: input.shape, padding: .same)
                                }
                                emit(common + [("op", "conv_parts"), ("steps", steps), ("channels", channels), ("algorithm", label),
                                               ("forward_us", f * 1e6), ("kernel_gradient_us", dk * 1e6), ("input_gradient_us", dx * 1e6)])
                            }
                        }
                    }
                }

                var inputs: [Tensor] = [x]
                for layer in model.layers { inputs.append(layer.forward(inputs.last!, training: false)) }
                var generator = SeededGenerator(seed: 5)
                for (k, layer) in model.layers.enumerated() {
                    let input = inputs[k]
                    let gradient = Tensor.randomUniform(inputs[k + 1].shape, in: -1...1, using: &generator)
                    let inference = measure(minSeconds: minSeconds / 4) { _ = layer.forward(input, training: false) }
                    let training = measure(minSeconds: minSeconds / 4) {
                        _ = layer.forward(input, training: true)
                        _ = layer.backward(gradient)
                    }
                    emit(common + [("op", "layer"), ("layer", "\(k):\(type(of: layer).typeName)"),
                                   ("forward_us", inference * 1e6), ("forward_backward_us", training * 1e6)])
                }
            }
        }
    }
}
