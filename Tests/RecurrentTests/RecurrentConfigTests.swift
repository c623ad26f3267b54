import Foundation
import Layers
import Optimizers
import Recurrent
import TensorCore
import XCTest
import _NeuriteTestSupport

/// `init(config:)` of the recurrent layers reads Keras' configs, keeps the dropout options through
/// save and load, and throws for what it does not implement instead of ignoring it.
final class RecurrentConfigTests: XCTestCase {
    private func message(_ body: () throws -> Void) -> String {
        do { try body() } catch let e as LayerError { return e.message } catch { return "other error: \(error)" }
        return "no error"
    }

    /// What Keras 3 writes for an LSTM, GRU and SimpleRNN with default options (initialisers by
    /// name, as `ConfigValue` holds them), plus the options under test.
    private func keras(_ type: String, _ extra: [String: ConfigValue] = [:]) -> [String: ConfigValue] {
        var c: [String: ConfigValue] = [
            "name": .string("rnn"), "trainable": .bool(true), "dtype": .string("float32"),
            "return_sequences": .bool(false), "return_state": .bool(false), "go_backwards": .bool(false),
            "stateful": .bool(false), "unroll": .bool(false), "zero_output_for_mask": .bool(false),
            "units": .int(4), "activation": .string("tanh"), "use_bias": .bool(true),
            "kernel_initializer": .string("glorot_uniform"), "recurrent_initializer": .string("orthogonal"),
            "bias_initializer": .string("zeros"), "kernel_regularizer": .null, "recurrent_regularizer": .null,
            "bias_regularizer": .null, "activity_regularizer": .null, "kernel_constraint": .null,
            "recurrent_constraint": .null, "bias_constraint": .null, "dropout": .double(0.0),
            "recurrent_dropout": .double(0.0), "seed": .null,
        ]
        if type != "SimpleRNN" { c["recurrent_activation"] = .string("sigmoid"); c["use_cudnn"] = .string("auto") }
        if type == "LSTM" { c["unit_forget_bias"] = .bool(true) }
        if type == "GRU" { c["reset_after"] = .bool(true) }
        c.merge(extra) { $1 }
        return c
    }

    func testKerasConfigsLoad() throws {
        let lstm = try LSTM(config: keras("LSTM", ["dropout": .double(0.25), "recurrent_dropout": .double(0.5), "seed": .int(7)]))
        XCTAssertEqual(lstm.dropout, 0.25)
        XCTAssertEqual(lstm.recurrentDropout, 0.5)
        XCTAssertEqual(lstm.seed, 7)
        XCTAssertEqual(lstm.name, "rnn")
        let gru = try GRU(config: keras("GRU", ["use_cudnn": .bool(false), "implementation": .int(2), "dropout": .int(0)]))
        XCTAssertEqual(gru.dropout, 0)
        let rnn = try SimpleRNN(config: keras("SimpleRNN", ["unroll": .bool(true), "dtype": .null]))
        XCTAssertEqual(rnn.units, 4)
        // implementation 1 is accepted where it computes what this layer computes.
        XCTAssertNoThrow(try LSTM(config: keras("LSTM", ["implementation": .int(1)])))
        XCTAssertNoThrow(try LSTM(config: keras("LSTM", ["implementation": .int(1), "dropout": .double(0.2), "recurrent_dropout": .double(0.1)])))
    }

    func testUnknownKeysThrowNamingLayerKeyAndValue() {
        let m = message { _ = try LSTM(config: ["units": .int(3), "name": .string("enc"), "time_major": .bool(true)]) }
        XCTAssertTrue(m.contains("LSTM 'enc'") && m.contains("\"time_major\"") && m.contains("true"), m)
        let s = message { _ = try SimpleRNN(config: ["units": .int(3), "recurrent_activation": .string("sigmoid")]) }
        XCTAssertTrue(s.contains("SimpleRNN") && s.contains("recurrent_activation") && s.contains("sigmoid"), s)
        let u = message { _ = try SimpleRNN(config: ["units": .int(3), "use_cudnn": .string("auto")]) }
        XCTAssertTrue(u.contains("use_cudnn"), u)
        let g = message { _ = try GRU(config: ["units": .int(3), "unit_forget_bias": .bool(true)]) }
        XCTAssertTrue(g.contains("GRU") && g.contains("unit_forget_bias"), g)
        let b = message { _ = try Bidirectional(config: ["layer": .string("LSTM"), "layer.units": .int(2), "backward_layer": .string("x")]) }
        XCTAssertTrue(b.contains("Bidirectional") && b.contains("backward_layer") && b.contains("\"x\""), b)
        let inner = message { _ = try Bidirectional(config: ["layer": .string("GRU"), "layer.units": .int(2), "layer.foo": .int(5)]) }
        XCTAssertTrue(inner.contains("GRU") && inner.contains("\"foo\"") && inner.contains("5"), inner)
    }

    func testValuesThatChangeTheMathThrow() {
        let cases: [(String, ConfigValue, String)] = [
            ("LSTM", .string("l2"), "kernel_regularizer"), ("GRU", .string("non_neg"), "recurrent_constraint"),
            ("LSTM", .bool(true), "zero_output_for_mask"), ("SimpleRNN", .string("no"), "trainable"),
            ("GRU", .string("float16"), "dtype"), ("GRU", .bool(false), "reset_after"),
            ("LSTM", .string("yes"), "unit_forget_bias"), ("LSTM", .double(1.0), "dropout"),
            ("GRU", .double(-0.1), "recurrent_dropout"), ("SimpleRNN", .string("half"), "dropout"),
            ("LSTM", .string("seven"), "seed"), ("GRU", .int(3), "implementation"),
            ("LSTM", .string("sometimes"), "use_cudnn"), ("SimpleRNN", .string("loud"), "unroll"),
            ("LSTM", .string("he"), "kernel_initializer"), ("GRU", .string("softmax"), "activation"),
        ]
        for (type, value, key) in cases {
            let config = keras(type, [key: value])
            let m = message {
                switch type {
                case "LSTM": _ = try LSTM(config: config)
                case "GRU": _ = try GRU(config: config)
                default: _ = try SimpleRNN(config: config)
                }
            }
            XCTAssertTrue(m.contains("\(type) 'rnn'") && m.contains("\"\(key)\"") && m.contains("\(value)".trimmingCharacters(in: ["\""])),
                          "\(type) \(key) \(value): \(m)")
        }
        // Implementation 1 with input dropout alone would draw a mask per gate: not this layer's math.
        let m = message { _ = try LSTM(config: keras("LSTM", ["implementation": .int(1), "dropout": .double(0.2)])) }
        XCTAssertTrue(m.contains("implementation"), m)
    }

    func testConfigRoundTripKeepsDropoutOptions() throws {
        let layers: [RecurrentLayer] = [
            LSTM(units: 3, returnState: true, dropout: 0.25, recurrentDropout: 0.5, seed: 11, name: "l"),
            GRU(units: 2, dropout: 0.125),
            SimpleRNN(units: 2, recurrentDropout: 0.75, seed: 3),
        ]
        for layer in layers {
            let again = try type(of: layer).init(config: layer.config)
            XCTAssertEqual(again.config, layer.config)
            XCTAssertEqual(again.dropout, layer.dropout)
            XCTAssertEqual(again.recurrentDropout, layer.recurrentDropout)
            XCTAssertEqual(again.seed, layer.seed)
        }
        let b = Bidirectional(GRU(2, dropout: 0.5), mergeMode: .sum, name: "b")
        XCTAssertEqual(try Bidirectional(config: b.config).config, b.config)
    }

    /// Saved and loaded, a model keeps its rates and the seeds in force (drawn ones included), so
    /// the same step draws the same masks and training-mode outputs agree.
    func testSaveAndLoadKeepRatesAndMasks() throws {
        let model = Sequential(inputShape: [5, 3]) {
            Bidirectional(LSTM(4, returnSequences: true, dropout: 0.3, recurrentDropout: 0.2))
            GRU(3, dropout: 0.1, recurrentDropout: 0.4)
            Dense(2)
        }
        try model.build(seed: 8)
        let directory = NSTemporaryDirectory() + "neurite-recurrent-config-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        try model.save(to: directory)
        let loaded = try Sequential.load(from: directory)
        for (a, b) in zip(loaded.layers, model.layers) { XCTAssertEqual(a.config, b.config) }
        let gru = try XCTUnwrap(loaded.layers[1] as? GRU)
        XCTAssertEqual(gru.dropout, 0.1)
        XCTAssertEqual(gru.recurrentDropout, 0.4)
        XCTAssertNotEqual(gru.config["seed"], .null)
        let x = randomTensor([6, 5, 3], seed: 9)
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
        func trainingOutput(_ m: Sequential) -> [Float] {
            for layer in m.layers { (layer as? StepSeeded)?.beginStep(4) }
            return m.forward(x, training: true).scalars
        }
        XCTAssertEqual(trainingOutput(loaded), trainingOutput(model))
        XCTAssertNotEqual(trainingOutput(model), try model.predict(x).scalars)
    }
}
