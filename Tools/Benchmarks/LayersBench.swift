import Layers
import _AppSupport
import Optimizers
import TensorCore

/// The `layers` suite: where a training step of the demo CNNs spends its time.
///
/// For the MLPs of `Apps/shallow-vs-deep` and the CNNs of `Apps/cnn`, on one batch of 128 random
/// 28x28x1 images, it times every layer's inference `forward` and its training-mode `forward` plus
/// `backward` (best repetition), then single-image `predict` latency and a whole training step (`trainOnBatch`: forward, loss, backward without the first
/// layer's input gradient, Adam). One JSON line per layer and direction,
/// and one per model with the step time and the implied seconds per 60,000-image epoch
/// (469 steps). Compare against Keras with `Tools/reference/keras_training.py`.
enum LayersBench {
    /// The models measured, as `Apps/shallow-vs-deep` and `Apps/cnn` build them.
    static var models: [(name: String, make: () -> Sequential)] {
        [("shallow_mlp", DemoModels.shallowMLP), ("deep_mlp", DemoModels.deepMLP),
         ("course_cnn", DemoModels.courseCNN), ("batchnorm_cnn", DemoModels.batchNormCNN)]
    }

    /// Measures every model with each thread count, printing one JSON line per case.
    static func run(minSeconds: Double, threadCounts: [Int], isa: String, only: Set<String>?, batch: Int = 128) {
        for (name, make) in models where only?.contains(name) ?? true {
            for threads in threadCounts {
                ThreadPool.withWidthLimit(threads) {
                    let model = make()
                    try! model.build(seed: 1)
                    var generator = SeededGenerator(seed: 7)
                    let x = Tensor.randomUniform([batch, 28, 28, 1], in: 0...1, using: &generator)
                    var inputs: [Tensor] = [x]
                    for layer in model.layers { inputs.append(layer.forward(inputs.last!, training: true)) }
                    var total = 0.0
                    for (k, layer) in model.layers.enumerated() {
                        // A training-mode forward keeps what backward needs until backward pops it,
                        // so the two are timed as a pair; inference is timed alone.
                        let input = inputs[k]
                        let gradient = Tensor.randomUniform(inputs[k + 1].shape, in: -1...1, using: &generator)
                        let inference = measure(minSeconds: minSeconds / 4) { _ = layer.forward(input, training: false) }
                        let training = measure(minSeconds: minSeconds / 4) {
                            _ = layer.forward(input, training: true)
                            _ = layer.backward(gradient)
                        }
                        total += training
                        emit([("bench", "layers"), ("impl", "neurite"), ("isa", isa), ("model", name),
                              ("layer", "\(k):\(type(of: layer).typeName)"), ("threads", threads),
                              ("inference_us", inference * 1e6), ("train_forward_backward_us", training * 1e6)])
                    }
                    model.compile(optimizer: Adam(learningRate: 1e-3), loss: SoftmaxCrossEntropy())
                    let labels = (0..<batch).map { $0 % 10 }
                    let step = measure(minSeconds: minSeconds) { _ = try! model.trainOnBatch(x: x, y: labels) }
                    let one = x.slice(0..<1)
                    let predictOne = measure(minSeconds: minSeconds / 2) { _ = try? model.predict(one, batchSize: 1) }
                    emit([("bench", "layers"), ("impl", "neurite"), ("isa", isa), ("model", name), ("layer", "predict_one"),
                          ("threads", threads), ("us", predictOne * 1e6)])
                    emit([("bench", "layers"), ("impl", "neurite"), ("isa", isa), ("model", name), ("layer", "step"),
                          ("threads", threads), ("step_ms", step * 1e3), ("sum_of_layers_ms", total * 1e3),
                          ("epoch_s", step * 469)])
                }
            }
        }
    }
}
