/// How much a `.keras` file may ask of us before it is refused.
///
/// Every limit is checked against what a file *declares* before anything that size is allocated,
/// and sizes that are only known while decompressing are counted as the bytes arrive.
public struct KerasFileLimits: Sendable, Equatable {
    /// The most bytes one zip member may decompress to (declared or actual). Default 2 GiB.
    public var maxMemberBytes: Int
    /// The most elements one HDF5 dataset may hold (the product of its dimensions). Default 2^28.
    public var maxElementsPerDataset: Int
    /// The most elements all datasets of one HDF5 file may hold together. Default 2^29.
    public var maxTotalElements: Int
    /// The most objects (groups and datasets) one HDF5 file may hold. Default 100 000.
    public var maxObjects: Int

    /// Limits with the given values; each defaults to the value of ``default``.
    public init(maxMemberBytes: Int = 2 << 30, maxElementsPerDataset: Int = 1 << 28,
                maxTotalElements: Int = 1 << 29, maxObjects: Int = 100_000) {
        self.maxMemberBytes = maxMemberBytes
        self.maxElementsPerDataset = maxElementsPerDataset
        self.maxTotalElements = maxTotalElements
        self.maxObjects = maxObjects
    }

    /// 2 GiB per zip member, 2^28 elements per dataset, 2^29 in all, 100 000 objects.
    public static let `default` = KerasFileLimits()

    /// The deepest an HDF5 object may be nested (path components below the root).
    public static let maxNestingDepth = 64
    /// The highest rank an HDF5 dataset may have.
    public static let maxRank = 8
}

/// What went wrong reading or writing a Keras model file.
///
/// Every malformed, hostile or oversized input is one of these, never a crash; the description
/// says what was wrong and where (member name or dataset path).
public enum KerasInteropError: Error, Equatable, CustomStringConvertible, Sendable {
    // Zip container (.keras)
    /// The bytes are not a zip archive at all (no end-of-central-directory record). The payload
    /// names the file or says what was found.
    case notAZipArchive(String)
    /// A required member (`config.json`, `metadata.json`, `model.weights.h5`) is not in the archive.
    case missingMember(String)
    /// A member declares, or actually decompresses to, more than `limit` bytes.
    case memberTooLarge(name: String, limit: Int)
    /// The archive is a zip but is damaged: truncated, a bad checksum, duplicate or unsafe names,
    /// an unsupported compression method. The payload says which and where.
    case corruptArchive(String)

    // HDF5 weights (model.weights.h5)
    /// The bytes are not an HDF5 file (no HDF5 signature).
    case notHDF5(String)
    /// The bytes are an HDF5 file that libhdf5 cannot read (truncated, damaged), or the file has
    /// more objects or deeper nesting than allowed. The payload says what and where.
    case corruptHDF5(String)
    /// A dataset holds more elements than the limits allow (`elements` is the product of its
    /// dimensions as text, or a description when it overflows), or the file does in total.
    case datasetTooLarge(path: String, elements: String)
    /// A dataset KerasInterop cannot turn into float32 values (strings, compound types, rank
    /// above 8), or one it cannot write (a shape that does not match the values).
    case unsupportedDataset(path: String, reason: String)
    /// A group or dataset path that cannot be written (empty components, a dataset where a
    /// group is needed, ...).
    case invalidPath(path: String, reason: String)

    // Files
    /// Reading or writing a file failed: the payload names the file and the reason.
    case io(String)

    // Conversion errors
    /// The model configuration (`config.json`, `model.to_json()`) is not what Keras writes: at
    /// `path` (`"config.layers[2].config"`), `reason`.
    case invalidModelConfig(path: String, reason: String)
    /// The model is not one KerasInterop converts (a functional or subclassed model, an unbuilt
    /// one where weights are needed, a model-level option): its class and why.
    case unsupportedModel(className: String, reason: String)
    /// A layer Neurite has no equivalent of (or that Keras has none of, when writing): the
    /// layer's name, its class, and why.
    case unsupportedLayer(layer: String, className: String, reason: String)
    /// A layer whose configuration cannot be represented on the other side: the layer's name,
    /// its class, and the key and value concerned.
    case unsupportedLayerConfig(layer: String, className: String, reason: String)
    /// A variable the layer needs is not in the weights file: the layer, the variable's role
    /// (`"kernel"`) and its path (`"layers/dense_1/vars/0"`).
    case missingWeight(layer: String, variable: String, path: String)
    /// A variable of the weights file has another shape than the layer's.
    case weightShapeMismatch(layer: String, variable: String, path: String, expected: [Int], found: [Int])
    /// The weights file holds variables no layer of the model takes (their paths).
    case unexpectedWeights(paths: [String])
    /// The model would have more parameters than ``KerasFileLimits/maxTotalElements`` allows
    /// (`count` is `Int.max` when it overflows).
    case tooManyParameters(count: Int, limit: Int)

    /// A sentence saying what was wrong and where.
    public var description: String {
        switch self {
        case .notAZipArchive(let detail): return "not a zip archive (a .keras file is one): \(detail)"
        case .missingMember(let name): return "the .keras archive has no member \"\(name)\""
        case .memberTooLarge(let name, let limit):
            return "the .keras archive member \"\(name)\" is larger than the limit of \(limit) bytes"
        case .corruptArchive(let detail): return "corrupt .keras archive: \(detail)"
        case .notHDF5(let detail): return "not an HDF5 file: \(detail)"
        case .corruptHDF5(let detail): return "corrupt HDF5 weights file: \(detail)"
        case .datasetTooLarge(let path, let elements):
            return "HDF5 dataset \"\(path)\" is too large: \(elements) elements"
        case .unsupportedDataset(let path, let reason): return "HDF5 dataset \"\(path)\": \(reason)"
        case .invalidPath(let path, let reason): return "HDF5 path \"\(path)\": \(reason)"
        case .io(let detail): return "I/O error: \(detail)"
        default: return conversionDescription ?? "KerasInteropError"
        }
    }
}
