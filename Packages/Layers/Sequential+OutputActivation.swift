import Foundation
import TensorCore

// Where a model's last activation meets its loss: the fused softmax/sigmoid cross-entropy path
// of `fit` and `trainOnBatch`, and `compile`'s warning about an activation applied twice.
//
// Fusion: when the last layer of a `Sequential` (not of a nested one) is an `ActivationLayer` or a
// `Dense` whose function is the one an `ActivationFusableLoss` can absorb (softmax for the
// categorical cross-entropies, sigmoid for binary cross-entropy, both from probabilities), the
// training step asks the loss for its gradient with respect to the logits
// (`computeThroughActivation`: `p Σq - q`, `p - t`) and runs the last layer's backward pass
// without the activation's derivative. The math is the same as the unfused chain rule (apart from
// the clip at 1e-7, whose zero derivative the fused gradient does not have, just as Keras'
// TensorFlow backend), it cannot lose precision when the probabilities saturate, and it saves the
// activation's backward pass. Inference, `evaluate` and the logged losses use `compute` as before.

/// A layer whose output is an activation function of what it computed: the last layer a loss
/// can be fused with.
protocol OutputActivationLayer: Layer {
    /// The function applied last.
    var outputActivation: ActivationFunction { get }
    /// The backward pass of the latest training-mode forward, given dLoss/d(the activation's
    /// input): pops what `backward` pops and accumulates the same parameter gradients, but skips
    /// the activation's derivative. Returns the input gradient, or nil when `inputGradient` is
    /// false and the layer can skip it.
    func backwardSkippingActivation(_ preActivationGradient: Tensor, inputGradient: Bool) -> Tensor?
}

extension Sequential {
    /// The activation applied last by the model and the layer that applies it, looking into a
    /// nested `Sequential` at the end; nil when the last layer is not an `OutputActivationLayer`.
    func lastActivation() -> (function: ActivationFunction, layer: String)? {
        switch layers.last {
        case let nested as Sequential: return nested.lastActivation()
        case let layer as OutputActivationLayer: return (layer.outputActivation, layer.name)
        default: return nil
        }
    }

    /// Whether a training step fuses `loss` with the last layer's activation (see the file's
    /// header): the loss absorbs that activation, and the layer is this model's own last layer.
    func fusesOutputActivation(with loss: any Loss) -> Bool {
        guard let fusable = (loss as? ActivationFusableLoss)?.fusableActivation,
              let last = layers.last as? OutputActivationLayer else { return false }
        return last.outputActivation == fusable
    }

    /// The loss and the gradient that `backwardForTraining` starts from: with `fused`, the gradient
    /// with respect to the last activation's input.
    func trainingLoss(_ output: Tensor, _ targets: Targets, sampleWeights: [Float]?, setup: CompiledSetup, fused: Bool) -> LossResult {
        if fused, let loss = setup.loss as? ActivationFusableLoss {
            return loss.computeThroughActivation(output, targets, sampleWeights: sampleWeights)
        }
        return setup.loss.compute(output, targets, sampleWeights: sampleWeights)
    }

    /// What `compile` warns about for `loss` on this model: a loss that applies a softmax or
    /// sigmoid itself after a last layer that already applied one.
    func compileWarnings(for loss: any Loss) -> [String] {
        guard let expecting = loss as? LogitsExpectingLoss, expecting.expectsLogits,
              let (function, layer) = lastActivation(), function == .softmax || function == .sigmoid else { return [] }
        let probabilityLoss = function == .softmax ? "CategoricalCrossentropy() or SparseCategoricalCrossentropy()"
                                                   : "BinaryCrossentropy()"
        return ["\(label): the loss \(type(of: loss)) (\(loss.name)) expects logits, but the last layer '\(layer)' "
                + "already applies \(function.configName), so it would be applied twice and training suffers; "
                + "use \(probabilityLoss) (fromLogits: false), or make the last layer linear"]
    }
}
