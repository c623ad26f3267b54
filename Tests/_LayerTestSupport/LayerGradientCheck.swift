import Layers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Checks a built layer's backward pass at `input` against central finite differences, in
/// training mode: dLoss/dInput (unless `checkInput` is false) and the gradient of every trainable
/// parameter, for the scalar `Σ forward(x, training: true) ⊙ w` with fixed random weights `w`
/// (drawn from `seed`). Gradients are zeroed first; the numeric side runs forward passes only.
///
/// Before every forward pass a ``StepSeeded`` layer (dropout, a model holding one) is restarted at
/// `step`, and a ``TrainingStateOwner`` drops what earlier forwards kept, so every numeric
/// evaluation sees the masks of the analytic pass. This is the one gradient checker for layers;
/// `layerTest` runs it as its fourth check.
///
/// Cost: two forward passes per perturbed element, at most `maxElements` per tensor.
/// - Returns: the analytic dLoss/dInput.
@discardableResult
public func checkLayerBackward(
    _ layer: any Layer, input: Tensor, seed: UInt64, step: Int = 0, checkInput: Bool = true,
    epsilon: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 2e-3, maxElements: Int = 400,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) -> Tensor {
    let name = "\(type(of: layer).typeName) '\(layer.name)'"
    for p in layer.parameters { p.zeroGradient() }
    beginTrainingForward(layer, step: step)
    let output = layer.forward(input, training: true)
    let w = randomTensor(output.shape, seed: seed)
    let dx = layer.backward(w)
    let gradients = layer.parameters.map(\.gradient)
    XCTAssertEqual(dx.shape, input.shape, "\(name): input gradient shape. \(message())", file: file, line: line)
    func loss(_ x: Tensor) -> Double {
        beginTrainingForward(layer, step: step)
        let y = layer.forward(x, training: true)
        (layer as? TrainingStateOwner)?.clearTrainingState()
        return weightedSum(y, w)
    }
    if checkInput {
        checkGradient(of: loss, at: input, analytic: dx, epsilon: epsilon, rtol: rtol, atol: atol, maxElements: maxElements,
                      "\(name) input gradient. \(message())", file: file, line: line)
    }
    for (p, analytic) in zip(layer.parameters, gradients) where p.isTrainable {
        let original = p.value
        checkGradient(of: { value in
            p.value = value
            defer { p.value = original }
            return loss(input)
        }, at: original, analytic: analytic, epsilon: epsilon, rtol: rtol, atol: atol, maxElements: maxElements,
           "\(name) gradient of \(p.name). \(message())", file: file, line: line)
        p.value = original
    }
    return dx
}

/// Restarts a ``StepSeeded`` layer's random stream at `step` and drops what earlier training
/// forwards of a ``TrainingStateOwner`` kept, so the next training forward is reproducible.
func beginTrainingForward(_ layer: any Layer, step: Int) {
    (layer as? TrainingStateOwner)?.clearTrainingState()
    (layer as? StepSeeded)?.beginStep(step)
}
