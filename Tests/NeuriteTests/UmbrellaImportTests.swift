import Neurite
import XCTest

/// `import Neurite` alone reaches every module it re-exports.
final class UmbrellaImportTests: XCTestCase {
    func testOneImportReachesTensorsLayersOptimizersAndDatasets() throws {
        let model = Sequential(inputShape: [4]) {      // Layers
            Dense(3, activation: .relu)
            Dense(2)
        }
        try model.build(seed: 1)
        var generator = SeededGenerator(seed: 2)          // TensorCore
        let x = Tensor.randomNormal([5, 4], using: &generator)
        XCTAssertEqual(try model.predict(x).shape, [5, 2])
        model.compile(optimizer: Adam(), loss: SoftmaxCrossEntropy())   // Optimizers
        let loader = DataLoader(TensorDataset(x: x, y: [0, 1, 0, 1, 1]), batchSize: 2, shuffle: false)   // Datasets
        XCTAssertEqual(loader.batchesPerEpoch, 3)
        XCTAssertEqual(FashionMNIST.classNames.count, 10)
    }
}
