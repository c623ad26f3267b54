import Layers

/// The layer types of this module, for loading saved models.
///
/// `Sequential.load(from:)` rebuilds layers through `LayerRegistry`, which knows the `Layers`
/// module's types by itself. This module's types are added by ``register()``: it runs
/// automatically the first time any of them is made, so a program that builds a model and loads
/// one needs nothing, but a program that *only* loads must call it first:
///
/// ```swift
/// RecurrentLayers.register()
/// let model = try Sequential.load(from: "models/text")
/// ```
public enum RecurrentLayers {
    /// Every layer type of the module: `SimpleRNN`, `LSTM`, `GRU`, `Bidirectional`, `Embedding`.
    public static var types: [any Layer.Type] { [SimpleRNN.self, LSTM.self, GRU.self, Bidirectional.self, Embedding.self] }

    private static let registered: Bool = {
        for type in types { LayerRegistry.register(type) }
        return true
    }()

    /// Registers ``types`` with `LayerRegistry`, once (later calls do nothing; thread-safe).
    public static func register() { _ = registered }
}
