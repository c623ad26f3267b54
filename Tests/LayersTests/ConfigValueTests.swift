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
}
