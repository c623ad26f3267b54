// TEMPORARY stand-ins for the file layer being written on branch h-h5zip (HDF5 and zip); this file
// is deleted when that branch is merged. Only the in-memory parts the conversion uses.
import Foundation

struct HDF5Tensor: Equatable, Sendable {
    var shape: [Int]
    var values: [Float]
}

struct HDF5WeightsFile {
    var datasets: [String: HDF5Tensor]
    var groups: [String: [String: String]]
    init(datasets: [String: HDF5Tensor] = [:], groups: [String: [String: String]] = [:]) {
        self.datasets = datasets
        self.groups = groups
    }
}

public struct KerasFileLimits: Sendable {
    public var maxWeightBytes: Int
    public static let `default` = KerasFileLimits(maxWeightBytes: 1 << 32)
}

public enum KerasInteropError: Error, Equatable, CustomStringConvertible {
    // Conversion errors
    case invalidModelConfig(path: String, reason: String)
    case unsupportedModel(className: String, reason: String)
    case unsupportedLayer(layer: String, className: String, reason: String)
    case unsupportedLayerConfig(layer: String, className: String, reason: String)
    case missingWeight(layer: String, variable: String, path: String)
    case weightShapeMismatch(layer: String, variable: String, path: String, expected: [Int], found: [Int])
    case unexpectedWeights(paths: [String])
    case tooManyParameters(count: Int, limit: Int)

    public var description: String { conversionDescription ?? "\(self)" }
}

struct KerasArchive {
    var config: Data
    var metadata: Data
    var weights: Data
    static func read(path: String, limits: KerasFileLimits = .default) throws -> KerasArchive { fatalError("pending h-h5zip") }
    func write(path: String) throws { fatalError("pending h-h5zip") }
}

extension HDF5WeightsFile {
    static func read(data: Data, limits: KerasFileLimits = .default) throws -> HDF5WeightsFile { fatalError("pending h-h5zip") }
    func encoded() throws -> Data { fatalError("pending h-h5zip") }
}
