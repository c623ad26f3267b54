import Layers
import TensorCore
import XCTest
import _LayerTestSupport
import _NeuriteTestSupport

/// Every layer type of the Layers module through `layerTest`: shapes, config and save/load round
/// trips, training-mode gradients against finite differences, accumulation and shape errors, on
/// awkward shapes (odd extents, batch 3).
final class LayerHarnessTests: XCTestCase {
    func testDense() throws {
        try layerTest({ Dense(units: 5, activation: .tanh) }, inputShape: [7], badInputShape: [])
        try layerTest({ Dense(units: 3, useBias: false) }, inputShape: [2, 5], badInputShape: [])
    }

    func testConv1D() throws {
        try layerTest({ Conv1D(filters: 3, kernelSize: 3, strides: 2, padding: .same, activation: .tanh) },
                      inputShape: [9, 2], badInputShape: [9])
        try layerTest({ Conv1D(filters: 2, kernelSize: 2, padding: .causal, dilation: 2) }, inputShape: [7, 3], badInputShape: [7, 3, 1])
    }

    func testConv2D() throws {
        try layerTest({ Conv2D(filters: 3, kernelSize: (3, 2), strides: (2, 1), padding: .same, activation: .sigmoid) },
                      inputShape: [5, 4, 2], badInputShape: [5, 4])
        try layerTest({ Conv2D(filters: 2, kernelSize: (2, 2), dilation: (2, 1)) }, inputShape: [5, 3, 1], badInputShape: [5, 3, 1, 1])
    }

    func testConv2DTranspose() throws {
        try layerTest({ Conv2DTranspose(filters: 3, kernelSize: (3, 2), strides: (2, 1), padding: .same) },
                      inputShape: [3, 4, 2], badInputShape: [3, 4])
        try layerTest({ Conv2DTranspose(filters: 2, kernelSize: (2, 3), strides: (2, 2), activation: .tanh) },
                      inputShape: [3, 2, 1], badInputShape: [3, 0, 1])
    }

    func testMaxPool1D() throws {
        try layerTest({ MaxPool1D(poolSize: 3, strides: 2, padding: .same) }, inputShape: [7, 3], badInputShape: [7],
                      input: distinctTensor)
    }

    func testAveragePool1D() throws {
        try layerTest({ AveragePool1D(poolSize: 2, padding: .same) }, inputShape: [7, 3], badInputShape: [7])
        try layerTest({ AveragePool1D(poolSize: 3, strides: 1) }, inputShape: [5, 2], badInputShape: [2, 2])
    }

    func testGlobalPools1D() throws {
        try layerTest({ GlobalMaxPool1D() }, inputShape: [7, 3], badInputShape: [7, 3, 2], input: distinctTensor)
        try layerTest({ GlobalAveragePool1D(keepDimensions: true) }, inputShape: [5, 3], badInputShape: [5])
    }

    func testMaxPool2D() throws {
        try layerTest({ MaxPool2D(poolSize: (3, 2), strides: (2, 1), padding: .same) }, inputShape: [5, 3, 2],
                      badInputShape: [5, 3], input: distinctTensor)
    }

    func testAveragePool2D() throws {
        try layerTest({ AveragePool2D(poolSize: (2, 2), padding: .same) }, inputShape: [5, 3, 2], badInputShape: [5, 3])
    }

    func testGlobalAveragePool2D() throws {
        try layerTest({ GlobalAveragePool2D() }, inputShape: [3, 5, 2], badInputShape: [3, 5])
        try layerTest({ GlobalAveragePool2D(keepDimensions: true) }, inputShape: [3, 1, 3], badInputShape: [3])
    }

    func testUpSampling2D() throws {
        try layerTest({ UpSampling2D(size: (2, 3)) }, inputShape: [3, 2, 2], badInputShape: [3, 2])
    }

    func testBatchNormalization() throws {
        try layerTest({ BatchNormalization() }, inputShape: [3, 5], badInputShape: [])
        try layerTest({ BatchNormalization(axis: 1, center: false) }, inputShape: [3, 2, 2], badInputShape: [])
    }

    func testDropout() throws {
        try layerTest({ Dropout(rate: 0.3) }, inputShape: [3, 5], badInputShape: nil)
        try layerTest({ Dropout(rate: 0.5, seed: 11) }, inputShape: [7], badInputShape: nil)
    }

    func testFlatten() throws {
        try layerTest({ Flatten() }, inputShape: [3, 2, 5], badInputShape: nil)
    }

    func testReshape() throws {
        try layerTest({ Reshape(targetShape: [5, -1]) }, inputShape: [3, 5], badInputShape: [7])
        try layerTest({ Reshape(targetShape: [2, 3]) }, inputShape: [6], badInputShape: [5])
    }

    func testActivationLayer() throws {
        try layerTest({ ActivationLayer(.softmax) }, inputShape: [5], badInputShape: [])
        try layerTest({ ActivationLayer(.gelu) }, inputShape: [3, 5], badInputShape: nil)
        try layerTest({ ActivationLayer(.elu(alpha: 1)) }, inputShape: [7], badInputShape: nil)
    }
}
