import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _NeuriteTestSupport

/// Keras' `return_state`: the output and the final state from `forwardReturningState`, gradients
/// into both through `backward(_:stateGradient:)`, and a thrown error from a `Sequential` that
/// would have to drop the states.
final class ReturnStateTests: XCTestCase {
    let input = randomTensor([3, 5, 4], seed: 71)

    private func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    func testForwardReturningStateGivesTheOutputAndTheFinalState() throws {
        let layer = LSTM(units: 4, returnState: true)
        var g = SeededGenerator(seed: 1)
        _ = try layer.build(inputShape: [5, 4], generator: &g)
        let (output, state) = layer.forwardReturningState(input, training: false)
        XCTAssertEqual(output.scalars, layer.forward(input, training: false).scalars)
        XCTAssertEqual(state.map(\.shape), [[3, 4], [3, 4]])
        XCTAssertEqual(state[0].scalars, output.scalars)  // without sequences, the output is h
        XCTAssertEqual(state.map(\.scalars), layer.finalState.map(\.scalars))
        XCTAssertEqual(layer.outputCount, 3)
        XCTAssertEqual(GRU(units: 4, returnState: true).outputCount, 2)
        XCTAssertEqual(SimpleRNN(4).outputCount, 1)
        let bidirectional = Bidirectional(LSTM(3, returnSequences: true, returnState: true))
        XCTAssertEqual(bidirectional.outputCount, 5)
        _ = try bidirectional.build(inputShape: [5, 4], generator: &g)
        let (merged, states) = bidirectional.forwardReturningState(input, training: false)
        XCTAssertEqual(merged.shape, [3, 5, 6])
        XCTAssertEqual(states.map(\.scalars), (bidirectional.forwardLayer.finalState + bidirectional.backwardLayer.finalState).map(\.scalars))
    }

    /// dLoss/dFinalState enters where the steps after the last would send theirs.
    func testStateGradientsMatchFiniteDifferences() throws {
        let h0 = [randomTensor([3, 4], seed: 72, scale: 0.5), randomTensor([3, 4], seed: 73, scale: 0.5)]
        try checkTrainingGradients(LSTM(units: 4, returnSequences: true, returnState: true), input: input,
                               initialState: h0, step: nil, withState: true)
        try checkTrainingGradients(LSTM(units: 4), input: input, initialState: h0, step: nil, withState: true)
        try checkTrainingGradients(GRU(units: 4, goBackwards: true), input: input,
                               initialState: [h0[0]], step: nil, withState: true)
        try checkTrainingGradients(SimpleRNN(units: 4, returnSequences: true, dropout: 0.3, recurrentDropout: 0.3),
                               input: input, initialState: [h0[0]], withState: true)
        try checkTrainingGradients(Bidirectional(LSTM(3, returnSequences: true, returnState: true, recurrentDropout: 0.3)),
                               input: input, withState: true)
    }

    /// The use `returnState` is for: an encoder's final state starts a decoder, and the decoder's
    /// initial-state gradient flows back into the encoder as its state gradient.
    func testEncoderDecoderChainMatchesFiniteDifferences() throws {
        let encoder = LSTM(units: 4, returnState: true), decoder = LSTM(units: 4, returnSequences: true)
        var g = SeededGenerator(seed: 3)
        _ = try encoder.build(inputShape: [5, 4], generator: &g)
        _ = try decoder.build(inputShape: [3, 2], generator: &g)
        let target = randomTensor([3, 3, 2], seed: 76)
        let w = randomTensor([3, 3, 4], seed: 77)
        func loss(_ x: Tensor) -> Double {
            decoder.initialState = encoder.forwardReturningState(x, training: false).state
            return weightedSum(decoder.forward(target, training: false), w)
        }
        for p in encoder.parameters { p.zeroGradient() }
        decoder.initialState = encoder.forwardReturningState(input, training: true).state
        _ = decoder.forward(target, training: true)
        _ = decoder.backward(w)
        let dx = encoder.backward(Tensor.zeros([3, 4]), stateGradient: decoder.initialStateGradient)
        checkGradient(of: loss, at: input, analytic: dx, epsilon: 5e-3, rtol: 2e-2, atol: 1e-3, "encoder input")
        let kernel = encoder.kernel!, original = kernel.value
        checkGradient(of: { v in kernel.value = v; defer { kernel.value = original }; return loss(input) },
                      at: original, analytic: kernel.gradient, epsilon: 5e-3, rtol: 2e-2, atol: 1e-3, "encoder kernel")
    }

    /// Without a state gradient the backward passes are the plain ones; with one, they differ.
    func testZeroStateGradientIsThePlainBackward() throws {
        let layer = GRU(units: 4, returnSequences: true)
        var g = SeededGenerator(seed: 2)
        _ = try layer.build(inputShape: [5, 4], generator: &g)
        let w = randomTensor([3, 5, 4], seed: 74)
        _ = layer.forward(input, training: true)
        let plain = layer.backward(w)
        _ = layer.forwardReturningState(input, training: true)
        XCTAssertEqual(layer.backward(w, stateGradient: [Tensor.zeros([3, 4])]).scalars, plain.scalars)
        _ = layer.forwardReturningState(input, training: true)
        XCTAssertNotEqual(layer.backward(w, stateGradient: [randomTensor([3, 4], seed: 75)]).scalars, plain.scalars)
    }

    func testSequentialRefusesALayerThatReturnsItsState() {
        let model = Sequential(inputShape: [5, 4]) {
            LSTM(4, returnState: true, name: "encoder")
            Dense(2)
        }
        let m = message { try model.build(seed: 1) }
        XCTAssertTrue(m.contains("encoder") && m.contains("LSTM") && m.contains("3 tensors") && m.contains("return_state"), m)
        XCTAssertTrue(message { _ = try model.outputShape(for: [5, 4]) }.contains("3 tensors"))
        let nested = Sequential(inputShape: [5, 4]) {
            Sequential { Bidirectional(GRU(4, returnState: true)) }
            Dense(2)
        }
        let n = message { try nested.build(seed: 1) }
        XCTAssertTrue(n.contains("3 tensors") && n.contains("bidirectional"), n)
        // The same model without returnState builds: the error is about the states alone.
        XCTAssertNoThrow(try Sequential(inputShape: [5, 4]) { LSTM(4); Dense(2) }.build(seed: 1))
    }

    func testReturnStateSurvivesTheConfig() throws {
        let layer = GRU(units: 3, returnState: true, name: "g")
        XCTAssertEqual(layer.config["return_state"], .bool(true))
        let again = try GRU(config: layer.config)
        XCTAssertTrue(again.returnState)
        let bidirectional = try Bidirectional(config: Bidirectional(LSTM(2, returnState: true)).config)
        XCTAssertEqual(bidirectional.outputCount, 5)
    }
}
