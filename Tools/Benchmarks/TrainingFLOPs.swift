import Layers
import Recurrent

/// The arithmetic of one training epoch, counted from a model's layer shapes: the numerator of
/// the training suite's floor, `floor_s = flops / peak` (the FMA probe's all-threads GFLOP/s on the
/// path in use).
///
/// The rule, per sample (an epoch is `samples` times it):
/// - Only products are counted, at 2 operations per multiply-add (`2*M*N*K` for a GEMM): element-wise
///   work (activations, bias, pooling, batch normalisation, dropout, the loss, the optimizer) is
///   memory-bound and left out, so the floor is a lower bound.
/// - `Dense(units)` on `in` features: `in * units` multiply-adds forward.
/// - `Conv2D`: output pixels × kernel height × kernel width × input channels × filters;
///   `Conv2DTranspose`: input pixels × kernel height × kernel width × input channels × filters
///   (each input pixel scatters one kernel), forward.
/// - `LSTM(units)` over `T` steps of `F` features: `T * (F + units) * 4 * units` forward (the input and
///   the recurrent products of the four gates at every step); `GRU` with 3 gates, `SimpleRNN` with 1.
/// - Training (forward and backward) is 3× forward for each of these: the forward product, the
///   input gradient and the weight gradient are each as large as the forward product. The first
///   layer's input gradient, which `fit` skips, is counted too (the floor rounds the same way for
///   every model and for the peers, which compute it for some layers and not others).
/// - A nested `Sequential` (an autoencoder's encoder and decoder) counts its layers.
/// - An RBM trained with contrastive divergence (CD-k or PCD-k) on `V` visible and `H` hidden units:
///   per sample, the positive hidden probabilities (`V*H`), `k` Gibbs steps of a visible and a hidden
///   product (`2*k*V*H`) and the two outer products of the update (`2*V*H`): `(3 + 2k) * V * H`
///   multiply-adds, 5 for PCD-1, as scikit-learn's `BernoulliRBM` computes them.
enum TrainingFLOPs {
    /// Multiply-adds of one sample's forward pass through `layer` given `inputShape` (no batch
    /// axis), and the output shape; `nil` multiply-adds when `layer` has parameters but is not a
    /// kind the rule knows (so that a new layer cannot silently count as free).
    static func forwardMultiplyAdds(_ layer: any Layer, inputShape: [Int]) throws -> (Double?, [Int]) {
        let output = try layer.outputShape(for: inputShape)
        func pixels(_ shape: [Int]) -> Double { Double(shape.dropLast().reduce(1, *)) }
        switch layer {
        case let sequential as Sequential:
            var shape = inputShape, total = 0.0
            for inner in sequential.layers {
                let (count, next) = try forwardMultiplyAdds(inner, inputShape: shape)
                guard let count else { return (nil, output) }
                total += count
                shape = next
            }
            return (total, output)
        case let dense as Dense:
            return (pixels(inputShape) * Double(inputShape.last! * dense.units), output)
        case let conv as Conv2D:
            let kernel = conv.kernelSize.0 * conv.kernelSize.1 * inputShape.last! * conv.filters
            return (pixels(output) * Double(kernel), output)
        case let transpose as Conv2DTranspose:
            let kernel = transpose.kernelSize.0 * transpose.kernelSize.1 * inputShape.last! * transpose.filters
            return (pixels(inputShape) * Double(kernel), output)
        case let recurrent as RecurrentLayer:
            let gates: Int
            switch recurrent {
            case is LSTM: gates = 4
            case is GRU: gates = 3
            case is SimpleRNN: gates = 1
            default: return (nil, output)
            }
            let (steps, features) = (inputShape[0], inputShape[1])
            return (Double(steps * (features + recurrent.units) * gates * recurrent.units), output)
        default:
            let known: Bool = layer.parameters.isEmpty || layer is BatchNormalization
            return (known ? 0 : nil, output)
        }
    }

    /// Floating-point operations of one training epoch (forward and backward) of `model` over
    /// `samples` samples of `inputShape`, by the rule above; `nil` when a layer with parameters is of
    /// a kind the rule does not know.
    /// Builds `model` (seed 0) when it is not built: an unbuilt layer has no parameters yet, and the
    /// rule tells a layer it does not know by its parameters.
    static func trainingEpoch(_ model: Sequential, inputShape: [Int], samples: Int) throws -> Double? {
        if !model.isBuilt { try model.build(seed: 0) }
        guard let forward = try forwardMultiplyAdds(model, inputShape: inputShape).0 else { return nil }
        return 3 * 2 * forward * Double(samples)
    }

    /// Floating-point operations of one pass of contrastive divergence with `steps` Gibbs steps
    /// over `samples` samples, by the rule above.
    static func rbmEpoch(visible: Int, hidden: Int, gibbsSteps steps: Int, samples: Int) -> Double {
        2 * Double(3 + 2 * steps) * Double(visible * hidden) * Double(samples)
    }
}

/// The `flops` suite: the rule of ``TrainingFLOPs`` checked against multiply-adds counted by hand from
/// each training-suite model's layer sizes (written out below, independent of the layers' code), and
/// against a layer it does not know (a `Conv1D`, which must make the count `nil`, not free). Prints
/// one JSON line per model and returns the failures (the caller exits non-zero on any).
enum FLOPsSelfCheck {
    /// Multiply-adds of one sample's forward pass, by hand.
    static let expected: [String: Int] = [
        "shallow_mlp": 784 * 128 + 128 * 10,
        "deep_mlp": 784 * 512 + 512 * 256 + 256 * 128 + 128 * 10,
        // conv 5x5x1x16 on 24x24 outputs, pool to 12x12, conv 2x2x16x8 on 11x11, pool to 5x5x8 = 200.
        "course_cnn": 24 * 24 * 25 * 16 + 11 * 11 * 4 * 16 * 8 + 200 * 100 + 100 * 10,
        // conv 3x3x1x32 on 26x26, pool to 13x13, conv 3x3x32x64 on 11x11, pool to 5x5x64 = 1600.
        "batchnorm_cnn": 26 * 26 * 9 * 32 + 11 * 11 * 9 * 32 * 64 + 1600 * 128 + 128 * 10,
        // 28 steps of the input (28) and recurrent (128) products of 4 gates of 128 units.
        "lstm": 28 * (28 + 128) * 4 * 128 + 128 * 10,
        "dense_autoencoder": 784 * 128 + 128 * 32 + 32 * 128 + 128 * 784,
        // encoder: 3x3x1x16 and 3x3x16x8 at 28x28 and 14x14 ("same"), Dense 392-32; decoder: Dense
        // 32-392, transposed 3x3x8x8 from 7x7 and 3x3x8x16 from 14x14 inputs, 3x3x16x1 at 28x28.
        "conv_autoencoder": 28 * 28 * 9 * 16 + 14 * 14 * 9 * 16 * 8 + 392 * 32 + 32 * 392
            + 7 * 7 * 9 * 8 * 8 + 14 * 14 * 9 * 8 * 16 + 28 * 28 * 9 * 16,
        // PCD-1: positive hiddens, one visible and one hidden product, two outer products.
        "rbm": 5 * 784 * 256,
    ]

    static func run() -> [String] {
        var failures: [String] = []
        let samples = 60000
        for model in TrainingBench.models {
            let counted = (try? TrainingBench.flopsPerEpoch(model, samples: samples)) ?? nil
            guard let perSample = expected[model.name] else {
                failures.append("\(model.name): no hand count")
                continue
            }
            // 2 operations per multiply-add; forward and backward 3x forward, except the RBM,
            // whose count above is already the whole pass.
            let factor = model.task == .rbm ? 2.0 : 6.0
            let want = factor * Double(perSample) * Double(samples)
            let ok = counted == want
            if !ok { failures.append("\(model.name): counted \(counted.map { "\($0)" } ?? "nil"), by hand \(want)") }
            emit([("bench", "flops"), ("model", model.name), ("gflop_per_epoch", (counted ?? .nan) / 1e9),
                  ("by_hand_gflop", want / 1e9), ("ok", ok)])
        }
        // The control: a layer with parameters that the rule does not know.
        let unknown = Sequential(inputShape: [200, 4]) {
            Conv1D(filters: 8, kernelSize: 5)
        }
        let counted = (try? TrainingFLOPs.trainingEpoch(unknown, inputShape: [200, 4], samples: 1)) ?? nil
        if counted != nil { failures.append("a Conv1D model was counted (\(counted!)), not refused") }
        emit([("bench", "flops"), ("model", "conv1d_control"), ("refused", counted == nil)])
        return failures
    }
}
