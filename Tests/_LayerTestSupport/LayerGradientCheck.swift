import Layers
import TensorCore
import XCTest
import _NeuriteTestSupport

/// A layer's forward pass that also returns its final state, and the matching backward pass that
/// takes the state's gradient: Keras' `return_state`. For the recurrent layers these are
/// `forwardReturningState(_:training:)` and `backward(_:stateGradient:)`; this module sees only
/// `Layers`, so the tests that know the layer's type pass them in.
public struct StatePasses {
    /// `(input, training) -> (output, state tensors)`.
    public var forward: (Tensor, Bool) -> (output: Tensor, state: [Tensor])
    /// `(outputGradient, stateGradients) -> inputGradient`; accumulates the parameters' gradients.
    public var backward: (Tensor, [Tensor]) -> Tensor

    public init(forward: @escaping (Tensor, Bool) -> (output: Tensor, state: [Tensor]),
                backward: @escaping (Tensor, [Tensor]) -> Tensor) {
        self.forward = forward
        self.backward = backward
    }
}

/// Checks a built layer's backward pass at `input` against central finite differences, in
/// training mode: dLoss/dInput (unless `checkInput` is false) and the gradient of every trainable
/// parameter, for the scalar `Σ forward(x, training: true) ⊙ w` with fixed random weights `w`
/// (drawn from `seed`). Gradients are zeroed first; the numeric side runs forward passes only.
/// With `statePasses` the forward pass also returns the layer's state and the scalar is
/// `Σ output ⊙ w + Σ_i state_i ⊙ v_i` (random `v_i`), so the state's gradient is checked too.
///
/// Before every forward pass a ``StepSeeded`` layer (dropout, a model holding one) is restarted at
/// `step`, a ``TrainingStateOwner`` drops what earlier forwards kept, and `resetState` (if any)
/// puts a stateful layer back in the state every pass starts from, so every numeric evaluation
/// sees the masks and the state of the analytic pass. This is the one gradient checker for layers;
/// `layerTest` runs it as its fourth check.
///
/// Cost: two forward passes per perturbed element, at most `maxElements` per tensor.
/// - Returns: the analytic dLoss/dInput.
@discardableResult
public func checkLayerBackward(
    _ layer: any Layer, input: Tensor, seed: UInt64, step: Int = 0, checkInput: Bool = true,
    statePasses: StatePasses? = nil, resetState: ((any Layer) -> Void)? = nil,
    epsilon: Float = 1e-2, rtol: Double = 2e-2, atol: Double = 2e-3, maxElements: Int = 400,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) -> Tensor {
    let name = "\(type(of: layer).typeName) '\(layer.name)'" + (statePasses == nil ? "" : " (with its returned state)")
    func run(_ x: Tensor) -> (output: Tensor, state: [Tensor]) {
        beginTrainingForward(layer, step: step, resetState: resetState)
        if let statePasses { return statePasses.forward(x, true) }
        return (layer.forward(x, training: true), [])
    }
    for p in layer.parameters { p.zeroGradient() }
    let (output, state) = run(input)
    let w = randomTensor(output.shape, seed: seed)
    let v = state.enumerated().map { randomTensor($0.element.shape, seed: seed &+ 1 &+ UInt64($0.offset)) }
    let dx = statePasses.map { $0.backward(w, v) } ?? layer.backward(w)
    let gradients = layer.parameters.map(\.gradient)
    XCTAssertEqual(dx.shape, input.shape, "\(name): input gradient shape. \(message())", file: file, line: line)
    func loss(_ x: Tensor) -> Double {
        let (y, s) = run(x)
        (layer as? TrainingStateOwner)?.clearTrainingState()
        return weightedSum(y, w) + zip(s, v).reduce(0) { $0 + weightedSum($1.0, $1.1) }
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

/// Restarts a ``StepSeeded`` layer's random stream at `step`, drops what earlier training
/// forwards of a ``TrainingStateOwner`` kept, and applies `resetState`, so the next training
/// forward is reproducible.
func beginTrainingForward(_ layer: any Layer, step: Int, resetState: ((any Layer) -> Void)? = nil) {
    (layer as? TrainingStateOwner)?.clearTrainingState()
    (layer as? StepSeeded)?.beginStep(step)
    resetState?(layer)
}
