import Neurite
import XCTest

/// `import Neurite` alone reaches the recurrent layers too.
final class UmbrellaRecurrentTests: XCTestCase {
    func testOneImportReachesRecurrentLayers() throws {
        let model = Sequential(inputShape: [3]) {
            Embedding(inputDim: 5, outputDim: 2)
            Bidirectional(LSTM(2, returnSequences: true))
            GRU(2)
            Dense(1)
        }
        try model.build(seed: 1)
        XCTAssertEqual(try model.predict(Tensor(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 0])).shape, [2, 1])
    }
}
