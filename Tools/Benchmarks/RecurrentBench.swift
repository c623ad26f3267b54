import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore

/// The `recurrent` suite: one training step of the model, an LSTM(128) then Dense(10) on
/// Fashion-MNIST rows as sequences (batch 128 of 28 steps with 28 features), with softmax
/// cross-entropy and Adam, as `fit` runs it (the LSTM, first, skips its input gradient), on
/// random data of that shape (the arithmetic does not depend on the
/// values). `s_per_epoch` is the best step time times 469, the steps of one epoch of 60,000
/// samples; the inference forward pass alone and the GRU and SimpleRNN versions are reported too,
/// and `lstm_dropout`, the LSTM with `dropout: 0.2, recurrentDropout: 0.2` (masks per gate, four
/// recurrent products per step; the reference is `keras_lstm.py --dropout 0.2 --recurrent-dropout 0.2`).
/// The reference is Tools/reference/keras_lstm.py (Keras 3 on TensorFlow: 9.8-11.3 s per epoch
/// on this 2-core machine, as measured for issue 5).
enum RecurrentBench {
    static func run(minSeconds: Double, threadCounts: [Int], isa: String) {
        let (batch, steps, features, units, classes) = (128, 28, 28, 128, 10)
        var g = SeededGenerator(seed: 1)
        let x = Tensor.randomUniform([batch, steps, features], in: 0...1, using: &g)
        let labels = (0..<batch).map { $0 % classes }
        let cells: [(String, () -> RecurrentLayer)] = [("lstm", { LSTM(units) }), ("gru", { GRU(units) }),
                                                         ("simple_rnn", { SimpleRNN(units) }),
                                                         ("lstm_dropout", { LSTM(units, dropout: 0.2, recurrentDropout: 0.2) })]
        // NEURITE_BENCH_CELL=lstm|gru|simple_rnn|lstm_dropout|gemm runs only that part (for profiling).
        let only = ProcessInfo.processInfo.environment["NEURITE_BENCH_CELL"]
        // The products of one LSTM step alone: h·U [128x128]x[128x512] (forward, beta 1), dZ·Uᵀ
        // (backward), and the recurrent weight gradient over all steps [128x3584]x[3584x512].
        for (label, m, n, k, tA, tB) in [("lstm_step_forward", batch, 4 * units, units, false, false),
                                          ("lstm_step_backward", batch, units, 4 * units, false, true),
                                          ("lstm_recurrent_weight_gradient", units, 4 * units, batch * steps, true, false)]
            where only == nil || only == "gemm" {
            let a = Tensor.randomUniform(tA ? [k, m] : [m, k], in: -1...1, using: &g)
            let b = Tensor.randomUniform(tB ? [n, k] : [k, n], in: -1...1, using: &g)
            var c = Tensor.zeros([m, n])
            for threads in threadCounts {
                let seconds = ThreadPool.withWidthLimit(threads) {
                    measure(minSeconds: minSeconds) { Tensor.gemm(a, transposeA: tA, b, transposeB: tB, beta: 1, into: &c) }
                }
                emit([("bench", "recurrent"), ("impl", "neurite"), ("case", label), ("m", m), ("n", n), ("k", k),
                      ("threads", threads), ("gflops", 2.0 * Double(m * n * k) / seconds / 1e9), ("ms", seconds * 1e3)])
            }
        }
        for (name, make) in cells where only == nil || only == name {
            let cell = make(), dense = Dense(classes)
            let model = Sequential(inputShape: [steps, features], layers: [cell, dense])
            try! model.build(seed: 1)
            let optimizer = Adam()
            let loss = SoftmaxCrossEntropy()
            let params = model.parameters
            for threads in threadCounts {
                ThreadPool.withWidthLimit(threads) {
                    let train = measure(minSeconds: minSeconds) {
                        for p in params { p.zeroGradient() }
                        let out = model.forward(x, training: true)
                        let result = loss.compute(out, .labels(labels), sampleWeights: nil)
                        // As fit does: the first layer skips its input gradient.
                        cell.backwardParameterGradients(dense.backward(result.gradient))
                        optimizer.step(params)
                    }
                    let infer = measure(minSeconds: minSeconds) { _ = model.forward(x, training: false) }
                    // CPU seconds per training step, all threads together: on a machine shared
                    // with other work, the single-thread figure is the honest one.
                    let reps = 5
                    let cpu0 = cpuSeconds()
                    for _ in 0..<reps {
                        for p in params { p.zeroGradient() }
                        let out = model.forward(x, training: true)
                        cell.backwardParameterGradients(dense.backward(loss.compute(out, .labels(labels), sampleWeights: nil).gradient))
                        optimizer.step(params)
                    }
                    let cpu = (cpuSeconds() - cpu0) / Double(reps)
                    emit([("bench", "recurrent"), ("impl", "neurite"), ("isa", isa), ("cell", name),
                          ("units", units), ("batch", batch), ("steps", steps), ("features", features),
                          ("threads", threads), ("train_step_ms", train * 1e3), ("forward_ms", infer * 1e3),
                          ("s_per_epoch", train * 469), ("cpu_ms_per_step", cpu * 1e3)])
                }
            }
        }
    }
}

/// The CPU time of the whole process so far, in seconds.
func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
