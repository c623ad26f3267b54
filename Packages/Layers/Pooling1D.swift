import Optimizers
import TensorCore

// The 1-D pooling layers over sequences `[B, T, F]` (channels last). They have no weights;
// everything they do is the pooling core they share with the 2-D layers (Pooling+Core.swift),
// which views a sequence as an image of one row, `[B, 1, T, F]` (a free view), with a `1 x P`
// window.

// MARK: - MaxPool1D

/// Max pooling over sequences (Keras `MaxPooling1D`): `[B, T, F]` to `[B, OT, F]`, each output
/// the largest input in its `poolSize`-step window, per feature.
///
/// Output lengths as Keras: `.valid` `OT = (T - P) / s + 1`, `.same` `OT = ceil(T / s)` (padding
/// steps never win). Ties go to the earliest step of the window, which alone receives the
/// gradient. **Cost:** `Tensor.maxPool2D` on `[B, 1, T, F]`, one read of every window cell; a
/// training-mode forward keeps the winners' flat indices (4 bytes per output element) for
/// `backward(_:)`, which scatters the output gradient onto them (overlapping windows add).
/// No parameters.
///
/// Configuration (`config`, `init(config:)`): Keras' keys `name`, `pool_size` and `strides`
/// (one-element lists; `n` is read as `[n]`), `padding` and `data_format` (`"channels_last"`);
/// missing keys take Keras' defaults (`pool_size` 2, `strides` null = the pool size, `padding`
/// `"valid"`).
public final class MaxPool1D: PoolingLayer {
    /// `"MaxPooling1D"`, Keras' class name (Keras also exports it as `MaxPool1D`; the registry
    /// accepts both).
    public static let typeName = "MaxPooling1D"
    /// `P`, the window's length in steps.
    public var poolSize: Int { core.poolSize.1 }
    /// `s`, the step between windows (the pool size unless given).
    public var strides: Int { core.strides.1 }
    /// `.valid` or `.same`; see TensorCore's `Padding`.
    public var padding: Padding { core.padding }
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public var builtInputShape: [Int]? { core.builtInputShape }

    var core: WindowPoolingCore

    /// A max pooling layer.
    /// - Parameters:
    ///   - poolSize: `P`, at least 1.
    ///   - strides: `s`, at least 1; nil (Keras' default) means `poolSize`.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: the size and strides are at least 1; the message names the value.
    public convenience init(poolSize: Int = 2, strides: Int? = nil, padding: Padding = .valid, name: String = "") {
        self.init(core: WindowPoolingCore(.max, .sequence, poolSize: (1, poolSize), strides: strides.map { (1, $0) },
                                          padding: padding, name: name, layer: "MaxPool1D"))
    }

    init(core: WindowPoolingCore) { self.core = core }

    static func makeCore(config: [String: ConfigValue], of type: String) throws -> WindowPoolingCore {
        try WindowPoolingCore(.max, .sequence, config: config, of: type)
    }
}

// MARK: - AveragePool1D

/// Average pooling over sequences (Keras `AveragePooling1D`): `[B, T, F]` to `[B, OT, F]`, each
/// output the mean of its `poolSize`-step window, per feature.
///
/// Output lengths as ``MaxPool1D``. With `.same`, padding steps are left out of both the sum
/// and the divisor, as in Keras (TensorFlow's `avg_pool`): a window covering 2 real steps of 3
/// divides by 2. **Cost:** `Tensor.averagePool2D` on `[B, 1, T, F]`; backward shares each output
/// gradient equally among its window's real steps; a training-mode forward keeps only the input
/// shape. No parameters. Configuration as ``MaxPool1D``'s.
public final class AveragePool1D: PoolingLayer {
    /// `"AveragePooling1D"`, Keras' class name (Keras also exports it as `AvgPool1D`; the
    /// registry accepts both).
    public static let typeName = "AveragePooling1D"
    /// `P`, the window's length in steps.
    public var poolSize: Int { core.poolSize.1 }
    /// `s`, the step between windows (the pool size unless given).
    public var strides: Int { core.strides.1 }
    /// `.valid` or `.same`; see TensorCore's `Padding`.
    public var padding: Padding { core.padding }
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public var builtInputShape: [Int]? { core.builtInputShape }

    var core: WindowPoolingCore

    /// An average pooling layer.
    /// - Parameters:
    ///   - poolSize: `P`, at least 1.
    ///   - strides: `s`, at least 1; nil (Keras' default) means `poolSize`.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: the size and strides are at least 1; the message names the value.
    public convenience init(poolSize: Int = 2, strides: Int? = nil, padding: Padding = .valid, name: String = "") {
        self.init(core: WindowPoolingCore(.average, .sequence, poolSize: (1, poolSize), strides: strides.map { (1, $0) },
                                          padding: padding, name: name, layer: "AveragePool1D"))
    }

    init(core: WindowPoolingCore) { self.core = core }

    static func makeCore(config: [String: ConfigValue], of type: String) throws -> WindowPoolingCore {
        try WindowPoolingCore(.average, .sequence, config: config, of: type)
    }
}

// MARK: - GlobalMaxPool1D

/// The largest value over all steps of each sequence and feature (Keras `GlobalMaxPooling1D`):
/// `[B, T, F]` to `[B, F]`, or `[B, 1, F]` with `keepDimensions`.
///
/// The gradient goes to the step that holds the maximum, shared equally among tied steps, as
/// TensorFlow's `reduce_max` (which Keras' layer runs) shares it. **Cost:** `Tensor.maxPool2D`
/// with a `1 x T` window on `[B, 1, T, F]`, one pass over the input; a training-mode forward keeps
/// references to its input and output (no copies), and `backward(_:)` makes two passes over
/// the input (counting the ties, then writing the gradient). No parameters. Configuration:
/// Keras' keys `name`, `data_format` (`"channels_last"`) and `keepdims` (false when missing).
public final class GlobalMaxPool1D: PoolingLayer {
    /// `"GlobalMaxPooling1D"`, Keras' class name (Keras also exports it as `GlobalMaxPool1D`;
    /// the registry accepts both).
    public static let typeName = "GlobalMaxPooling1D"
    /// Whether the output keeps the time axis as extent 1 (`[1, F]` per sample; Keras `keepdims`).
    public var keepDimensions: Bool { core.keepDimensions }
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public var builtInputShape: [Int]? { core.builtInputShape }

    var core: GlobalPoolingCore

    /// A global max pooling layer.
    /// - Parameters:
    ///   - keepDimensions: `false` (Keras' default) gives `[B, F]`, `true` gives `[B, 1, F]`.
    ///   - name: the layer's name; the model assigns one when empty.
    public convenience init(keepDimensions: Bool = false, name: String = "") {
        self.init(core: GlobalPoolingCore(.max, .sequence, keepDimensions: keepDimensions, name: name))
    }

    init(core: GlobalPoolingCore) { self.core = core }

    static func makeCore(config: [String: ConfigValue], of type: String) throws -> GlobalPoolingCore {
        try GlobalPoolingCore(.max, .sequence, config: config, of: type)
    }
}

// MARK: - GlobalAveragePool1D

/// The mean over all steps of each sequence and feature (Keras `GlobalAveragePooling1D`, without
/// masking): `[B, T, F]` to `[B, F]`, or `[B, 1, F]` with `keepDimensions`.
///
/// **Cost:** `Tensor.globalAveragePool2D` on `[B, 1, T, F]`, one pass over the input (sums in
/// Float blocks added in Float64). Backward gives every step `outputGradient / T`; a
/// training-mode forward keeps only the input shape. No parameters. Configuration as
/// ``GlobalMaxPool1D``'s.
public final class GlobalAveragePool1D: PoolingLayer {
    /// `"GlobalAveragePooling1D"`, Keras' class name (Keras also exports it as
    /// `GlobalAvgPool1D`; the registry accepts both).
    public static let typeName = "GlobalAveragePooling1D"
    /// Whether the output keeps the time axis as extent 1 (`[1, F]` per sample; Keras `keepdims`).
    public var keepDimensions: Bool { core.keepDimensions }
    /// The per-sample input shape `[T, F]` the layer was built for, or nil before `build`.
    public var builtInputShape: [Int]? { core.builtInputShape }

    var core: GlobalPoolingCore

    /// A global average pooling layer.
    /// - Parameters:
    ///   - keepDimensions: `false` (Keras' default) gives `[B, F]`, `true` gives `[B, 1, F]`.
    ///   - name: the layer's name; the model assigns one when empty.
    public convenience init(keepDimensions: Bool = false, name: String = "") {
        self.init(core: GlobalPoolingCore(.average, .sequence, keepDimensions: keepDimensions, name: name))
    }

    init(core: GlobalPoolingCore) { self.core = core }

    static func makeCore(config: [String: ConfigValue], of type: String) throws -> GlobalPoolingCore {
        try GlobalPoolingCore(.average, .sequence, config: config, of: type)
    }
}
