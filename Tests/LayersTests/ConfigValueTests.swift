import Foundation
import Layers
import XCTest

final class ConfigValueTests: XCTestCase {
    func testConfigRoundTripsThroughPlainJSON() throws {
        let config: [String: ConfigValue] = [
            "units": .int(128), "rate": .double(0.25), "activation": .string("relu"),
            "use_bias": .bool(true), "kernel_size": .ints([3, 3]), "seed": .null,
        ]
        let data = try JSONEncoder().encode(config)
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"units\":128") && text.contains("\"kernel_size\":[3,3]"), text)
        XCTAssertEqual(try JSONDecoder().decode([String: ConfigValue].self, from: data), config)
        XCTAssertEqual(try config.int("units", of: "Dense"), 128)
        XCTAssertEqual(try config.double("units", of: "Dense"), 128)
        XCTAssertThrowsError(try config.int("activation", of: "Dense")) { error in
            XCTAssertTrue("\(error)".contains("Dense config needs an integer \"activation\""))
        }
    }

    /// Keras configs hold objects and mixed lists; they decode, encode back to the same JSON
    /// values, and an object whose meaning is a default (a float32 dtype policy, a zeros
    /// initialiser) is accepted where the default is.
    func testNestedObjectsAndListsFromAKerasDenseConfig() throws {
        let json = """
        {"name": "dense", "trainable": true, "units": 4, "activation": "relu", "use_bias": true,
         "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null},
         "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null},
         "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null},
         "kernel_regularizer": null, "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null,
         "lora_rank": null, "tags": ["a", 1, 2.5, null]}
        """
        var config = try JSONDecoder().decode([String: ConfigValue].self, from: Data(json.utf8))
        XCTAssertEqual(config["tags"], .list([.string("a"), .int(1), .double(2.5), .null]))
        guard case .object(let dtype)? = config["dtype"] else { return XCTFail("dtype should be an object") }
        XCTAssertEqual(dtype["config"], .object(["name": .string("float32")]))
        let again = try JSONDecoder().decode([String: ConfigValue].self, from: JSONEncoder().encode(config))
        XCTAssertEqual(again, config)
        // "tags" is not a Dense key: named in the error. Without it the config loads.
        XCTAssertThrowsError(try Dense(config: config)) { XCTAssertTrue("\($0)".contains("\"tags\""), "\($0)") }
        config["tags"] = nil
        let dense = try Dense(config: config)
        XCTAssertEqual(dense.units, 4)
        XCTAssertEqual(dense.config["kernel_initializer"], .string("glorot_uniform"))
        // An initialiser with a seed is not the default: an error naming it, not a silent default.
        var seeded = config
        seeded["kernel_initializer"] = .object(["class_name": .string("GlorotUniform"), "config": .object(["seed": .int(3)])])
        XCTAssertThrowsError(try Dense(config: seeded)) { XCTAssertTrue("\($0)".contains("kernel_initializer"), "\($0)") }
        // A float64 policy or a ones bias initialiser changes the math: rejected, naming it.
        config["dtype"] = .object(["class_name": .string("DTypePolicy"), "config": .object(["name": .string("float64")])])
        XCTAssertThrowsError(try Dense(config: config)) { XCTAssertTrue("\($0)".contains("dtype"), "\($0)") }
    }

    func testHostileNestingIsADecodingErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSONDecoder().decode(ConfigValue.self, from: Data(deep.utf8)))
        let wide = "{\"a\": " + String(repeating: "{\"b\": ", count: 5000) + "1" + String(repeating: "}", count: 5001)
        XCTAssertThrowsError(try JSONDecoder().decode(ConfigValue.self, from: Data(wide.utf8)))
    }
}
