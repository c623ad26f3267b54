import Layers
import TensorCore
import XCTest

/// Every layer's `init(config:)` reads its own config back, accepts Keras' extra keys at their
/// defaults, and throws, naming the layer, the key and the value, for anything it does not implement.
final class ConfigKeyTests: XCTestCase {
    private let layers: [any Layer] = [
        Dense(4, activation: .relu), Conv2D(filters: 3, kernelSize: (3, 3)), Conv2DTranspose(filters: 2, kernelSize: (2, 2)),
        Dropout(0.2), BatchNormalization(), MaxPool2D(poolSize: (2, 2)), AveragePool2D(poolSize: (2, 2)),
        GlobalAveragePool2D(), Flatten(), Reshape([2, 2]), UpSampling2D(), ActivationLayer(.tanh),
        Conv1D(filters: 2, kernelSize: 3), MaxPool1D(), GlobalMaxPool1D(),
    ]

    private func rebuild(_ layer: any Layer, _ config: [String: ConfigValue]) throws -> any Layer {
        try type(of: layer).init(config: config)
    }

    func testOwnConfigsRoundTrip() throws {
        for layer in layers {
            let again = try rebuild(layer, layer.config)
            XCTAssertEqual(again.config, layer.config, "\(type(of: layer))")
        }
    }

    func testAnUnknownKeyThrowsNamingTheLayerTheKeyAndTheValue() {
        for layer in layers {
            var config = layer.config
            config["frobnicate"] = .int(7)
            XCTAssertThrowsError(try rebuild(layer, config), "\(type(of: layer))") { error in
                let message = (error as? LayerError)?.message ?? ""
                XCTAssertTrue(message.contains("\"frobnicate\"") && message.contains("7"), message)
            }
        }
    }

    func testKerasKeysThatChangeNothingAreAcceptedAndOthersRejected() throws {
        var dense = Dense(4).config
        dense["trainable"] = .bool(true)
        dense["dtype"] = .string("float32")
        dense["kernel_constraint"] = .null
        XCTAssertNoThrow(try Dense(config: dense))
        dense["kernel_constraint"] = .string("max_norm")
        XCTAssertThrowsError(try Dense(config: dense)) { error in
            XCTAssertTrue("\(error)".contains("kernel_constraint"), "\(error)")
        }

        var conv = Conv2D(filters: 4, kernelSize: (3, 3)).config
        conv["groups"] = .int(1)
        XCTAssertNoThrow(try Conv2D(config: conv))
        conv["groups"] = .int(2)
        XCTAssertThrowsError(try Conv2D(config: conv)) { error in
            XCTAssertTrue("\(error)".contains("groups 2"), "\(error)")
        }

        var norm = BatchNormalization().config
        norm["renorm"] = .bool(false)
        norm["gamma_initializer"] = .string("ones")
        XCTAssertNoThrow(try BatchNormalization(config: norm))
        for (key, value) in [("renorm", ConfigValue.bool(true)), ("synchronized", .bool(true)), ("gamma_initializer", .string("zeros"))] {
            var bad = norm
            bad[key] = value
            XCTAssertThrowsError(try BatchNormalization(config: bad), key) { error in
                XCTAssertTrue("\(error)".contains("BatchNormalization") && "\(error)".contains(key), "\(error)")
            }
        }

        var dropout = Dropout(0.5).config
        dropout["noise_shape"] = .ints([1, 4])
        XCTAssertThrowsError(try Dropout(config: dropout))
    }
}
