import Layers
import Optimizers
import TensorCore
import XCTest
import _NeuriteTestSupport

final class DenseTests: XCTestCase {
    func testForwardIsInputTimesKernelPlusBias() throws {
        let dense = Dense(3, biasInitializer: .constant(0.5))
        var g = SeededGenerator(seed: 3)
        XCTAssertEqual(try dense.build(inputShape: [4], generator: &g), [3])
        let kernel = try XCTUnwrap(dense.kernel).value
        XCTAssertEqual(kernel.shape, [4, 3], "Keras layout [in, units]")
        XCTAssertEqual(dense.bias?.value.scalars, [0.5, 0.5, 0.5])
        let x = Tensor(shape: [2, 4], scalars: randomScalars(8, seed: 9))
        var expected = [Double](repeating: 0.5, count: 6)
        for r in 0..<2 {
            for c in 0..<3 {
                for k in 0..<4 { expected[r * 3 + c] += Double(x[r, k]) * Double(kernel[k, c]) }
            }
        }
        assertClose(dense.forward(x, training: false).scalars, expected)
    }

    func testBackwardMatchesFiniteDifferencesForEveryActivation() {
        let activations: [ActivationFunction] = [.linear, .relu, .leakyRelu(alpha: 0.1), .elu(alpha: 1), .gelu,
                                                 .sigmoid, .tanh, .softmax, .leakyRelu(alpha: -0.5)]
        for activation in activations {
            let dense = Dense(5, activation: activation, biasInitializer: .randomUniform(min: -0.5, max: 0.5),
                              name: "dense_\(activation)")
            numericLayerGradientCheck(layer: dense, inputShape: [4], seed: 11, epsilon: 2e-3)
        }
    }

    func testWithoutBiasHasOnlyAKernel() {
        let dense = Dense(units: 2, useBias: false, name: "fc")
        numericLayerGradientCheck(layer: dense, inputShape: [3])
        XCTAssertEqual(dense.parameters.map(\.name), ["fc.kernel"])
        XCTAssertNil(dense.bias)
    }

    func testHigherRankInputsApplyToTheLastAxis() throws {
        let dense = Dense(5, activation: .tanh)
        numericLayerGradientCheck(layer: dense, inputShape: [3, 4], batch: 2)
        XCTAssertEqual(try dense.outputShape(for: [3, 4]), [3, 5])
        let x = Tensor(shape: [2, 3, 4], scalars: randomScalars(24, seed: 5))
        let y = dense.forward(x, training: false)
        XCTAssertEqual(y.shape, [2, 3, 5])
        // Every position is the same dense map: equal to the map of the flattened rows.
        assertClose(y.reshaped([6, 5]), dense.forward(x.reshaped([6, 4]), training: false))
        XCTAssertThrowsError(try dense.outputShape(for: [3, 7])) { error in
            XCTAssertTrue("\(error)".contains("[3, 4]") && "\(error)".contains("[3, 7]"), "\(error)")
        }
    }

    func testALayerUsedTwiceReceivesBothGradients() throws {
        let shared = Dense(4, activation: .tanh, biasInitializer: .constant(0.1), name: "shared")
        let model = Sequential(inputShape: [4]) { shared; shared }
        try model.build(seed: 2)
        XCTAssertEqual(model.parameters.count, 2, "a shared layer's weights are listed once")
        // The whole model's gradients against finite differences: both uses must be summed.
        numericLayerGradientCheck(layer: model, inputShape: [4], batch: 2)

        // Calling backward twice for one forward adds the gradient twice.
        let dense = Dense(3)
        var g = SeededGenerator(seed: 1)
        _ = try dense.build(inputShape: [2], generator: &g)
        let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        let dy = Tensor(shape: [2, 3], scalars: randomScalars(6, seed: 4))
        _ = dense.forward(x, training: true)
        _ = dense.backward(dy)
        let once = dense.kernel!.gradient
        _ = dense.backward(dy)
        assertClose(dense.kernel!.gradient, once * 2)
        XCTAssertNotEqual(once, Tensor.zeros([2, 3]))
    }

    /// After `zeroGradient()` the next backward pass's kernel gradient is its own contribution,
    /// though the gradient's storage still holds the last step's values (it is overwritten, not
    /// added to, and not zero-filled first), and a second contribution adds to it.
    func testAZeroedGradientIsOverwrittenByTheNextContribution() throws {
        let dense = Dense(5)
        var g = SeededGenerator(seed: 6)
        _ = try dense.build(inputShape: [7], generator: &g)
        let x = Tensor(shape: [3, 7], scalars: randomScalars(21, seed: 8))
        let dy = Tensor(shape: [3, 5], scalars: randomScalars(15, seed: 5))
        let kernel = try XCTUnwrap(dense.kernel)
        _ = dense.forward(x, training: true)
        _ = dense.backward(dy)
        let once = kernel.gradient.scalars  // a copy: the gradient's storage stays the only reference
        var expected = [Double](repeating: 0, count: 35)
        for k in 0..<7 {
            for u in 0..<5 {
                for r in 0..<3 { expected[k * 5 + u] += Double(x[r, k]) * Double(dy[r, u]) }
            }
        }
        assertClose(once, expected)
        for _ in 0..<2 {
            kernel.zeroGradient()
            _ = dense.forward(x, training: true)
            _ = dense.backward(dy)
            XCTAssertEqual(kernel.gradient.scalars, once, "the stale gradient was added to")
        }
        _ = dense.forward(x, training: true)
        _ = dense.backward(dy)
        assertClose(kernel.gradient.scalars, expected.map { 2 * $0 })
    }

    func testInitialisersAreSeededAndScaled() throws {
        func kernel(_ initializer: Initializer, seed: UInt64) throws -> Tensor {
            let dense = Dense(256, kernelInitializer: initializer)
            var g = SeededGenerator(seed: seed)
            _ = try dense.build(inputShape: [512], generator: &g)
            return dense.kernel!.value
        }
        XCTAssertEqual(try kernel(.glorotUniform, seed: 1), try kernel(.glorotUniform, seed: 1))
        XCTAssertNotEqual(try kernel(.glorotUniform, seed: 1), try kernel(.glorotUniform, seed: 2))
        let limit = (6.0 / Double(512 + 256)).squareRoot()
        let glorot = try kernel(.glorotUniform, seed: 1)
        XCTAssertLessThanOrEqual(Double(glorot.abs().max()), limit)
        XCTAssertGreaterThan(Double(glorot.abs().max()), 0.95 * limit)
        let he = try kernel(.heNormal, seed: 1)
        let std = Double(he.squared().mean()).squareRoot()
        XCTAssertEqual(std, (2.0 / 512).squareRoot(), accuracy: 0.003)
        XCTAssertEqual(try kernel(.constant(0.25), seed: 1).scalars.first, 0.25)
    }

    func testConfigRoundTripAndParameterNames() throws {
        let dense = Dense(7, activation: .leakyRelu(alpha: 0.1), useBias: false, kernelInitializer: .heNormal, name: "fc1")
        let config = dense.config
        XCTAssertEqual(config["units"], .int(7))
        XCTAssertEqual(config["activation"], .string("leaky_relu(alpha=0.1)"))
        XCTAssertEqual(config["kernel_initializer"], .string("he_normal"))
        let copy = try Dense(config: config)
        XCTAssertEqual(copy.config, config)
        XCTAssertEqual(copy.activation, .leakyRelu(alpha: 0.1))
        XCTAssertThrowsError(try Dense(config: ["units": .string("seven")])) { error in
            XCTAssertTrue("\(error)".contains("units"), "\(error)")
        }
        var g = SeededGenerator(seed: 0)
        _ = try copy.build(inputShape: [3], generator: &g)
        XCTAssertEqual(copy.parameters.map(\.name), ["fc1.kernel"])
        copy.name = "renamed"
        XCTAssertEqual(copy.parameters.map(\.name), ["renamed.kernel"])
    }

    func testBuildingAgainKeepsWeightsAndRejectsAnotherShape() throws {
        let dense = Dense(2)
        var g = SeededGenerator(seed: 0)
        _ = try dense.build(inputShape: [3], generator: &g)
        let before = dense.kernel!.value
        _ = try dense.build(inputShape: [3], generator: &g)
        XCTAssertEqual(dense.kernel!.value, before)
        XCTAssertThrowsError(try dense.build(inputShape: [5], generator: &g)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("[3]") && message.contains("[5]"), message)
        }
    }
}
