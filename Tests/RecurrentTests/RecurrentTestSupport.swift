import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

/// Checks a layer's gradients against central finite differences for `Σ output ⊙ w` with fixed
/// random `w`: the input's (unless `checkInput` is false), every parameter's, and (for a recurrent
/// layer given `initialState`) the initial state's. Numeric sides use inference-mode forwards.
func checkLayerGradients(
    _ layer: any Layer, input: Tensor, initialState: [Tensor]? = nil, checkInput: Bool = true,
    seed: UInt64 = 7, epsilon: Float = 5e-3, rtol: Double = 2e-2, atol: Double = 1e-3,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    try checkTrainingGradients(layer, input: input, initialState: initialState, checkInput: checkInput, step: nil,
                           seed: seed, epsilon: epsilon, rtol: rtol, atol: atol, file: file, line: line)
}

/// The layer's forward pass returning its final state, and the matching backward pass, for the
/// recurrent layers and `Bidirectional` (nil for other layers).
private func statePasses(_ layer: any Layer)
    -> (forward: (Tensor, Bool) -> (output: Tensor, state: [Tensor]), backward: (Tensor, [Tensor]) -> Tensor)? {
    if let r = layer as? RecurrentLayer { return (r.forwardReturningState, r.backward(_:stateGradient:)) }
    if let b = layer as? Bidirectional { return (b.forwardReturningState, b.backward(_:stateGradient:)) }
    return nil
}

/// `forwardReturningState` and `backward(_:stateGradient:)` of a recurrent layer or a
/// `Bidirectional`, for `layerTest`'s returned-state check (plain passes for other layers).
func recurrentStatePasses(_ layer: any Layer) -> StatePasses {
    guard let passes = statePasses(layer) else {
        return StatePasses(forward: { x, training in (layer.forward(x, training: training), []) }, backward: { dy, _ in layer.backward(dy) })
    }
    return StatePasses(forward: passes.forward, backward: passes.backward)
}

/// Checks a layer's gradients against central finite differences for `Σ output ⊙ w` with fixed
/// random `w`, and with `withState` for `Σ output ⊙ w + Σ_i state_i ⊙ v_i` through
/// `forwardReturningState`/`backward(_:stateGradient:)`: the input's gradient (unless
/// `checkInput` is false), every parameter's and (for a recurrent layer given `initialState`) the
/// initial state's. With a `step`, the numeric sides are training-mode forwards that restart the
/// layer's dropout stream at `step`, so every evaluation draws the masks of the analytic pass;
/// with nil, inference-mode forwards. Throws what `build` throws.
func checkTrainingGradients(
    _ layer: any Layer, input: Tensor, initialState: [Tensor]? = nil, checkInput: Bool = true,
    step: Int? = 3, withState: Bool = false, seed: UInt64 = 7,
    epsilon: Float = 5e-3, rtol: Double = 2e-2, atol: Double = 1e-3,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    var generator = SeededGenerator(seed: seed)
    let perSample = Array(input.shape.dropFirst())
    let outShape = try layer.build(inputShape: perSample, generator: &generator)
    let recurrent = layer as? RecurrentLayer
    recurrent?.initialState = initialState
    if !withState && initialState == nil {
        // Nothing beyond the output: the shared checker does it (with `step` nil, at step 0 of a
        // layer without dropout, which is the inference-mode function).
        checkLayerBackward(layer, input: input, seed: seed + 1, step: step ?? 0, checkInput: checkInput,
                           epsilon: epsilon, rtol: rtol, atol: atol, file: file, line: line)
        return
    }
    let passes = withState ? statePasses(layer) : nil
    if withState && passes == nil { XCTFail("\(type(of: layer)) returns no state", file: file, line: line) }
    func run(_ x: Tensor, training: Bool) -> (Tensor, [Tensor]) {
        if let passes { return passes.forward(x, training) }
        return (layer.forward(x, training: training), [])
    }
    let w = randomTensor([input.shape[0]] + outShape, seed: seed + 1)
    let stateShapes = withState ? run(input, training: false).1.map(\.shape) : []
    let v = stateShapes.enumerated().map { randomTensor($0.element, seed: seed + 10 + UInt64($0.offset)) }
    func loss(_ x: Tensor) -> Double {
        let training = step != nil
        if let step { (layer as? StepSeeded)?.beginStep(step) }
        let (y, states) = run(x, training: training)
        if training { (layer as? TrainingStateOwner)?.clearTrainingState() }
        return weightedSum(y, w) + zip(states, v).reduce(0) { $0 + weightedSum($1.0, $1.1) }
    }

    for p in layer.parameters { p.zeroGradient() }
    if let step { (layer as? StepSeeded)?.beginStep(step) }
    _ = run(input, training: true)
    let dx = passes.map { $0.backward(w, v) } ?? layer.backward(w)
    if checkInput {
        checkGradient(of: loss, at: input, analytic: dx, epsilon: epsilon, rtol: rtol, atol: atol,
                      "input of \(type(of: layer).typeName)", file: file, line: line)
    }
    for p in layer.parameters {
        let original = p.value
        checkGradient(of: { value in p.value = value; defer { p.value = original }; return loss(input) },
                      at: original, analytic: p.gradient, epsilon: epsilon, rtol: rtol, atol: atol,
                      "parameter \(p.name)", file: file, line: line)
        p.value = original
    }
    if let recurrent, let initialState {
        let analytic = recurrent.initialStateGradient
        XCTAssertEqual(analytic.count, initialState.count, file: file, line: line)
        for (i, s) in initialState.enumerated() where i < analytic.count {
            checkGradient(of: { value in
                var states = initialState
                states[i] = value
                recurrent.initialState = states
                defer { recurrent.initialState = initialState }
                return loss(input)
            }, at: s, analytic: analytic[i], epsilon: epsilon, rtol: rtol, atol: atol,
               "initial state \(i)", file: file, line: line)
        }
    }
}
