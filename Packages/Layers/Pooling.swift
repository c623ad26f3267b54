import Optimizers
import TensorCore

// The 2-D pooling layers over NHWC images. They have no weights; everything they do is the
// pooling core they share with the 1-D layers (Pooling+Core.swift).

// MARK: - MaxPool2D

/// Max pooling over NHWC images (Keras `MaxPooling2D`): `[B, H, W, C]` to `[B, OH, OW, C]`,
/// each output the largest input in its `poolSize` window, per channel.
///
/// Output extents follow TensorCore's `Padding` with the pool as the window; `.same` padding cells never
/// win. Ties go to the first cell of the window in row-major order, and that cell alone receives
/// the gradient. A training-mode forward keeps the winners' flat indices (4 bytes per output
/// element) for `backward(_:)`, which scatters the output gradient onto them (overlapping
/// windows add). No parameters.
///
/// Configuration (`config`, `init(config:)`): Keras' keys `name`, `pool_size`, `strides`,
/// `padding` and `data_format` (`"channels_last"`); missing keys take Keras' defaults
/// (`pool_size` `[2, 2]`, `strides` null = the pool size, `padding` `"valid"`).
public final class MaxPool2D: PoolingLayer {
    /// `"MaxPooling2D"`, Keras' class name (Keras also exports it as `MaxPool2D`; a loader
    /// should accept both).
    public static let typeName = "MaxPooling2D"
    /// `(PH, PW)`, the window whose largest value each output takes.
    public var poolSize: (Int, Int) { core.poolSize }
    /// `(sh, sw)`, the step between windows (the pool size unless given).
    public var strides: (Int, Int) { core.strides }
    /// How the border is treated; see TensorCore's `Padding`.
    public var padding: Padding { core.padding }
    /// The per-sample input shape `[H, W, C]` the layer was built for, or nil before `build`.
    public var builtInputShape: [Int]? { core.builtInputShape }

    var core: WindowPoolingCore

    /// A max pooling layer.
    /// - Parameters:
    ///   - poolSize: `(PH, PW)`, each at least 1.
    ///   - strides: `(sh, sw)`, each at least 1; nil (Keras' default) means `poolSize`.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: sizes and strides are at least 1; the message names the value.
    public convenience init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid,
                            name: String = "") {
        self.init(core: WindowPoolingCore(.max, .image, poolSize: poolSize, strides: strides, padding: padding,
                                          name: name, layer: "MaxPool2D"))
    }

    init(core: WindowPoolingCore) { self.core = core }

    static func makeCore(config: [String: ConfigValue], of type: String) throws -> WindowPoolingCore {
        try WindowPoolingCore(.max, .image, config: config, of: type)
    }
}

// MARK: - AveragePool2D

/// Average pooling over NHWC images (Keras `AveragePooling2D`): `[B, H, W, C]` to
/// `[B, OH, OW, C]`, each output the mean of its `poolSize` window, per channel.
///
/// With `.same`, padding cells are left out of both the sum and the divisor, as in Keras. The
/// backward pass shares each output gradient equally among its window's real cells; a
/// training-mode forward keeps only the input shape. No parameters. Configuration as
/// ``MaxPool2D``'s.
public final class AveragePool2D: PoolingLayer {
    /// `"AveragePooling2D"`, Keras' class name (Keras also exports it as `AvgPool2D`; a loader
    /// should accept both).
    public static let typeName = "AveragePooling2D"
    /// `(PH, PW)`, the window each output averages.
    public var poolSize: (Int, Int) { core.poolSize }
    /// `(sh, sw)`, the step between windows (the pool size unless given).
    public var strides: (Int, Int) { core.strides }
    /// How the border is treated (`.same` padding cells are left out of the mean); see TensorCore's `Padding`.
    public var padding: Padding { core.padding }
    /// The per-sample input shape `[H, W, C]` the layer was built for, or nil before `build`.
    public var builtInputShape: [Int]? { core.builtInputShape }

    var core: WindowPoolingCore

    /// An average pooling layer.
    /// - Parameters:
    ///   - poolSize: `(PH, PW)`, each at least 1.
    ///   - strides: `(sh, sw)`, each at least 1; nil (Keras' default) means `poolSize`.
    ///   - padding: `.valid` (Keras' default) or `.same`.
    ///   - name: the layer's name; the model assigns one when empty.
    /// - Precondition: sizes and strides are at least 1; the message names the value.
    public convenience init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid,
                            name: String = "") {
        self.init(core: WindowPoolingCore(.average, .image, poolSize: poolSize, strides: strides, padding: padding,
                                          name: name, layer: "AveragePool2D"))
    }

    init(core: WindowPoolingCore) { self.core = core }

    static func makeCore(config: [String: ConfigValue], of type: String) throws -> WindowPoolingCore {
        try WindowPoolingCore(.average, .image, config: config, of: type)
    }
}

// MARK: - GlobalAveragePool2D

/// The mean over all positions of each image and channel (Keras `GlobalAveragePooling2D`):
/// `[B, H, W, C]` to `[B, C]`, or `[B, 1, 1, C]` with `keepDimensions`.
///
/// Often the bridge from convolutions to a classifier, in place of flattening. Backward gives
/// every position `outputGradient / (H * W)`; a training-mode forward keeps only the input shape.
/// No parameters. Configuration: Keras' keys `name`, `data_format` (`"channels_last"`) and
/// `keepdims` (false when missing).
public final class GlobalAveragePool2D: PoolingLayer {
    /// `"GlobalAveragePooling2D"`, Keras' class name (Keras also exports it as
    /// `GlobalAvgPool2D`; a loader should accept both).
    public static let typeName = "GlobalAveragePooling2D"
    /// Whether the output keeps the spatial axes as extent 1 (`[1, 1, C]` per sample; Keras `keepdims`).
    public var keepDimensions: Bool { core.keepDimensions }
    /// The per-sample input shape `[H, W, C]` the layer was built for, or nil before `build`.
    public var builtInputShape: [Int]? { core.builtInputShape }

    var core: GlobalPoolingCore

    /// A global average pooling layer.
    /// - Parameters:
    ///   - keepDimensions: `false` (Keras' default) gives `[B, C]`, `true` gives `[B, 1, 1, C]`.
    ///   - name: the layer's name; the model assigns one when empty.
    public convenience init(keepDimensions: Bool = false, name: String = "") {
        self.init(core: GlobalPoolingCore(.average, .image, keepDimensions: keepDimensions, name: name))
    }

    init(core: GlobalPoolingCore) { self.core = core }

    static func makeCore(config: [String: ConfigValue], of type: String) throws -> GlobalPoolingCore {
        try GlobalPoolingCore(.average, .image, config: config, of: type)
    }
}
