import CKerasHDF5
import Foundation
import Synchronization

/// One HDF5 dataset as KerasInterop sees it: a row-major shape (empty for a scalar) and its
/// values as float32.
public struct HDF5Tensor: Equatable, Sendable {
    /// The dimensions, outermost first; `[]` for a scalar dataset.
    public var shape: [Int]
    /// The values in row-major order; `shape`'s product of elements (1 for a scalar).
    public var values: [Float]

    /// A dataset with the given shape and values (`values.count` must be the product of `shape`
    /// for it to be written; ``HDF5WeightsFile/encoded()`` checks).
    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// The content of an HDF5 file as a Keras 3 weights file (`model.weights.h5`) uses it: float
/// datasets and groups with string attributes, addressed by slash-separated paths without a
/// leading slash (`"layers/dense/vars/0"`).
///
/// Reading visits every object in the file. Datasets of any float or integer type become float32
/// (float64, int32 and int64 are converted by HDF5; Keras stores the optimizer's iteration counter
/// as an int64 scalar). Any other dataset type (strings, compound, enum, ...) is an
/// ``KerasInteropError/unsupportedDataset(path:reason:)`` error naming its path, wherever it is:
/// a weights file that holds one is not a file this module wrote or Keras wrote. String attributes
/// (scalar, fixed or variable length) of groups go into ``groups``; other attributes, attributes
/// of datasets and named datatypes are ignored. The root group appears in ``groups`` (as `""`)
/// only when it has string attributes.
///
/// Writing stores float32 datasets (little-endian, contiguous) and groups with scalar
/// variable-length UTF-8 string attributes, as h5py writes `group.attrs["name"] = "dense"`.
///
/// libhdf5 is not thread-safe as Debian builds it, so every read and write holds one process-wide
/// lock for its whole duration: files are read and written one at a time.
public struct HDF5WeightsFile: Equatable, Sendable {
    /// Every dataset, by full path without a leading slash (`"layers/dense/vars/0"`).
    public var datasets: [String: HDF5Tensor]
    /// Every group path (without a leading slash; `""` is the root) and its string attributes,
    /// e.g. `"layers/dense/vars": ["name": "dense"]`. Groups that datasets need are created when
    /// writing even when they are not listed here.
    public var groups: [String: [String: String]]

    /// A file with the given datasets and groups.
    public init(datasets: [String: HDF5Tensor] = [:], groups: [String: [String: String]] = [:]) {
        self.datasets = datasets
        self.groups = groups
    }

    /// Reads the HDF5 file at `path`.
    ///
    /// - Throws: ``KerasInteropError/io(_:)`` when the file cannot be read, otherwise as
    ///   `read(data:limits:)`.
    public static func read(path: String, limits: KerasFileLimits = .default) throws -> HDF5WeightsFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw KerasInteropError.io("cannot read \(path): \(error.localizedDescription)")
        }
        return try HDF5Reader.read(data, source: path, limits: limits)
    }

    /// Reads an HDF5 file from its bytes in memory (nothing is written to disk).
    ///
    /// - Throws: ``KerasInteropError/notHDF5(_:)`` without an HDF5 signature,
    ///   ``KerasInteropError/corruptHDF5(_:)`` when libhdf5 cannot read it or it has more than
    ///   `limits.maxObjects` objects or nesting deeper than ``KerasFileLimits/maxNestingDepth``,
    ///   ``KerasInteropError/datasetTooLarge(path:elements:)`` for a dataset over
    ///   `limits.maxElementsPerDataset` elements or a file over `limits.maxTotalElements`
    ///   (checked before anything is allocated), ``KerasInteropError/unsupportedDataset(path:reason:)``
    ///   for a dataset that is not numeric or has rank above ``KerasFileLimits/maxRank``.
    public static func read(data: Data, limits: KerasFileLimits = .default) throws -> HDF5WeightsFile {
        try HDF5Reader.read(data, source: "HDF5 data of \(data.count) bytes", limits: limits)
    }

    /// Reads an HDF5 file from its bytes in memory; see `read(data:limits:)`.
    public static func read(data: [UInt8], limits: KerasFileLimits = .default) throws -> HDF5WeightsFile {
        try read(data: Data(data), limits: limits)
    }

    /// The bytes of an HDF5 file holding these datasets and groups, built in memory.
    ///
    /// - Throws: ``KerasInteropError/unsupportedDataset(path:reason:)`` for a dataset whose shape
    ///   has a negative dimension, more than ``KerasFileLimits/maxRank`` dimensions or a product
    ///   other than its number of values; ``KerasInteropError/invalidPath(path:reason:)`` for an
    ///   empty, `.` or `..` path component, or a path that is both a dataset and a group.
    public func encoded() throws -> Data {
        try HDF5Writer.encode(self)
    }

    /// Writes the file to `path` atomically: the bytes go to a temporary file in the same
    /// directory, which is then renamed over `path`, so `path` never holds a partial file.
    ///
    /// - Throws: as ``encoded()``, and ``KerasInteropError/io(_:)`` when the file cannot be written.
    public func write(path: String) throws {
        try KerasFileWriter.write(try encoded(), to: path)
    }
}

/// The one lock every libhdf5 call is made under.
let hdf5Lock = Mutex<Void>(())

/// Runs `body` holding the HDF5 lock, with HDF5's error printing turned off.
func withHDF5<T: Sendable>(_ body: () throws(KerasInteropError) -> T) throws(KerasInteropError) -> T {
    try hdf5Lock.withLock { _ throws(KerasInteropError) -> T in
        nk_h5_quiet()
        return try body()
    }
}

/// The current HDF5 error stack as one line (clears it).
func hdf5ErrorMessage() -> String {
    var buffer = [CChar](repeating: 0, count: 768)
    nk_h5_error(&buffer, buffer.count)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The objects of a file, collected by nk_h5_visit's callback.
private final class VisitState {
    let maxObjects: Int
    var objects: [(path: String, kind: Int32)] = []
    var problem: String?

    init(maxObjects: Int) { self.maxObjects = maxObjects }
}

private let visitObject: nk_h5_visitor = { context, name, kind in
    let state = Unmanaged<VisitState>.fromOpaque(context!).takeUnretainedValue()
    let path = name.map { String(cString: $0) } ?? ""
    if state.objects.count >= state.maxObjects {
        state.problem = "more than \(state.maxObjects) objects"
        return 1
    }
    let depth = path == "." ? 0 : path.utf8.reduce(1) { $0 + ($1 == UInt8(ascii: "/") ? 1 : 0) }
    if depth > KerasFileLimits.maxNestingDepth {
        state.problem = "objects nested deeper than \(KerasFileLimits.maxNestingDepth) levels (at \"\(path.prefix(200))...\")"
        return 1
    }
    state.objects.append((path, kind))
    return 0
}

enum HDF5Reader {
    static func read(_ data: Data, source: String, limits: KerasFileLimits) throws(KerasInteropError) -> HDF5WeightsFile {
        let isHDF5 = data.withUnsafeBytes { nk_h5_is_hdf5_image($0.baseAddress, $0.count) == 1 }
        guard isHDF5 else {
            throw .notHDF5("\(source): no HDF5 signature")
        }
        let heaps = try bytes(of: data) { raw throws(KerasInteropError) in
            let heaps = try HDF5Preflight.globalHeaps(raw, source: source)
            try HDF5Preflight.localHeaps(raw, base: heaps.base, source: source)
            return heaps
        }
        return try withHDF5 { () throws(KerasInteropError) -> HDF5WeightsFile in
            let file = data.withUnsafeBytes { nk_h5_open_image($0.baseAddress, $0.count) }
            guard file >= 0 else {
                throw .corruptHDF5("\(source): libhdf5 cannot open it: \(hdf5ErrorMessage())")
            }
            defer { _ = nk_h5_close(file); nk_h5_error(nil, 0) }
            return try readObjects(file, data: data, heaps: heaps, source: source, limits: limits)
        }
    }

    /// `body` on the bytes of `data`, with its typed error (Data.withUnsafeBytes only rethrows).
    private static func bytes<T>(of data: Data, _ body: (UnsafeRawBufferPointer) throws(KerasInteropError) -> T) throws(KerasInteropError) -> T {
        let result = data.withUnsafeBytes { raw -> Result<T, KerasInteropError> in
            do throws(KerasInteropError) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private static func readObjects(_ file: Int64, data: Data, heaps: HDF5Preflight.Heaps, source: String,
                                    limits: KerasFileLimits) throws(KerasInteropError) -> HDF5WeightsFile {
        let state = VisitState(maxObjects: max(limits.maxObjects, 0))
        let status = withExtendedLifetime(state) {
            nk_h5_visit(file, visitObject, Unmanaged.passUnretained(state).toOpaque())
        }
        if let problem = state.problem { throw .corruptHDF5("\(source): \(problem)") }
        guard status == 0 else {
            throw .corruptHDF5("\(source): cannot list its objects: \(hdf5ErrorMessage())")
        }
        var result = HDF5WeightsFile()
        var totalElements = 0
        for (name, kind) in state.objects {
            let path = name == "." ? "" : name
            switch kind {
            case Int32(NK_H5_GROUP):
                let attributes = try readStringAttributes(file, path: path, data: data, heaps: heaps, source: source)
                if !path.isEmpty || !attributes.isEmpty { result.groups[path] = attributes }
            case Int32(NK_H5_DATASET):
                result.datasets[path] = try readDataset(file, path: path, source: source, limits: limits,
                                                        totalElements: &totalElements)
            default:
                continue  // named datatypes: nothing Keras stores
            }
        }
        return result
    }

    private static func readDataset(_ file: Int64, path: String, source: String, limits: KerasFileLimits,
                                    totalElements: inout Int) throws(KerasInteropError) -> HDF5Tensor {
        var typeClass: Int32 = 0, typeSize = 0, rank: Int32 = 0
        var dims = [UInt64](repeating: 0, count: KerasFileLimits.maxRank)
        guard nk_h5_dataset_info(file, path, &typeClass, &typeSize, &rank, &dims, Int32(dims.count)) == 0 else {
            throw .corruptHDF5("\(source): cannot read the description of dataset \"\(path)\": \(hdf5ErrorMessage())")
        }
        switch typeClass {
        case Int32(NK_H5_CLASS_FLOAT), Int32(NK_H5_CLASS_INTEGER): break
        case Int32(NK_H5_CLASS_STRING):
            throw .unsupportedDataset(path: path, reason: "holds strings, not numbers")
        default:
            throw .unsupportedDataset(path: path, reason: "holds a non-numeric type (compound, enum, array, ...)")
        }
        guard typeSize > 0 && typeSize <= 16 else {
            throw .unsupportedDataset(path: path, reason: "has numbers of \(typeSize) bytes")
        }
        guard rank >= 0 else { throw .unsupportedDataset(path: path, reason: "has a null dataspace (no shape)") }
        guard rank <= KerasFileLimits.maxRank else {
            throw .unsupportedDataset(path: path, reason: "has rank \(rank), more than \(KerasFileLimits.maxRank)")
        }
        var shape: [Int] = []
        var elements = 1
        var overflow = false
        for d in dims.prefix(Int(rank)) {
            guard d <= UInt64(Int.max) else { overflow = true; shape.append(-1); continue }
            shape.append(Int(d))
            let (product, over) = elements.multipliedReportingOverflow(by: Int(d))
            if over { overflow = true } else { elements = product }
        }
        if overflow && !dims.prefix(Int(rank)).contains(0) {
            let text = dims.prefix(Int(rank)).map(String.init).joined(separator: " x ")
            throw .datasetTooLarge(path: path, elements: "\(text) (more than Int.max)")
        }
        if overflow { elements = 0 }
        guard elements <= limits.maxElementsPerDataset else {
            throw .datasetTooLarge(path: path, elements: "\(elements) (limit \(limits.maxElementsPerDataset))")
        }
        let (total, over) = totalElements.addingReportingOverflow(elements)
        guard !over && total <= limits.maxTotalElements else {
            throw .datasetTooLarge(path: path, elements: "\(elements), bringing the file's total past its limit of \(limits.maxTotalElements)")
        }
        totalElements = total
        var values = [Float](repeating: 0, count: elements)
        let status = values.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var dummy: Float = 0
            return nk_h5_dataset_read_float(file, path, buffer.baseAddress ?? withUnsafeMutablePointer(to: &dummy) { $0 }, elements)
        }
        guard status == 0 else {
            throw .corruptHDF5("\(source): cannot read dataset \"\(path)\": \(hdf5ErrorMessage())")
        }
        return HDF5Tensor(shape: shape, values: values)
    }

    private static func readStringAttributes(_ file: Int64, path: String, data: Data, heaps: HDF5Preflight.Heaps,
                                             source: String) throws(KerasInteropError) -> [String: String] {
        let objectPath = path.isEmpty ? "/" : path
        let count = nk_h5_attribute_count(file, objectPath)
        guard count >= 0 else {
            throw .corruptHDF5("\(source): cannot count the attributes of group \"\(path)\": \(hdf5ErrorMessage())")
        }
        guard count <= 10_000 else { throw .corruptHDF5("\(source): group \"\(path)\" has \(count) attributes") }
        if count > 0 {
            var address: UInt64 = 0, size: UInt64 = 0
            guard nk_h5_object_header(file, objectPath, &address, &size) == 0,
                  address <= UInt64(data.count), heaps.base + Int(address) < data.count else {
                throw .corruptHDF5("\(source): cannot locate the header of group \"\(path)\": \(hdf5ErrorMessage())")
            }
            try bytes(of: data) { raw throws(KerasInteropError) in
                for message in HDF5Preflight.attributeMessages(raw, at: heaps.base + Int(address), base: heaps.base) {
                    try HDF5Preflight.checkAttribute(raw, message: message, heaps: heaps, source: source, path: path)
                }
            }
        }
        var attributes: [String: String] = [:]
        for index in 0..<UInt64(count) {
            var capacity = 1024
            while true {
                var name = [CChar](repeating: 0, count: 1024)
                var value = [CChar](repeating: 0, count: capacity)
                var nameLength = 0, valueLength = 0
                let status = nk_h5_attribute_string(file, objectPath, index, &name, name.count, &nameLength,
                                                    &value, value.count, &valueLength)
                guard status >= 0 else {
                    throw .corruptHDF5("\(source): cannot read attribute \(index) of group \"\(path)\": \(hdf5ErrorMessage())")
                }
                if status == 0 { break }
                if valueLength >= capacity && capacity < 1 << 24 {
                    capacity = min(valueLength + 1, 1 << 24)
                    continue
                }
                attributes[text(name)] = text(value)
                break
            }
        }
        return attributes
    }

    private static func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

enum HDF5Writer {
    static func encode(_ file: HDF5WeightsFile) throws(KerasInteropError) -> Data {
        for path in file.groups.keys where !path.isEmpty { try validate(path) }
        for (path, tensor) in file.datasets {
            try validate(path)
            guard tensor.shape.count <= KerasFileLimits.maxRank else {
                throw .unsupportedDataset(path: path, reason: "rank \(tensor.shape.count) is more than \(KerasFileLimits.maxRank)")
            }
            var elements = 1
            for d in tensor.shape {
                guard d >= 0 else { throw .unsupportedDataset(path: path, reason: "shape \(tensor.shape) has a negative dimension") }
                let (product, over) = elements.multipliedReportingOverflow(by: d)
                guard !over else { throw .unsupportedDataset(path: path, reason: "shape \(tensor.shape) overflows") }
                elements = product
            }
            guard elements == tensor.values.count else {
                throw .unsupportedDataset(path: path, reason: "shape \(tensor.shape) needs \(elements) values, has \(tensor.values.count)")
            }
        }
        return try withHDF5 { () throws(KerasInteropError) -> Data in
            let handle = nk_h5_create_image()
            guard handle >= 0 else { throw .io("libhdf5 cannot create a file in memory: \(hdf5ErrorMessage())") }
            defer { _ = nk_h5_close(handle); nk_h5_error(nil, 0) }
            for path in file.groups.keys.sorted() where !path.isEmpty {
                guard nk_h5_create_group(handle, path) == 0 else {
                    throw .invalidPath(path: path, reason: "cannot create the group: \(hdf5ErrorMessage())")
                }
            }
            for path in file.datasets.keys.sorted() {
                let tensor = file.datasets[path]!
                let dims = tensor.shape.map { UInt64($0) }
                let status = tensor.values.withUnsafeBufferPointer { values in
                    nk_h5_write_float_dataset(handle, path, Int32(dims.count), dims, values.baseAddress, values.count)
                }
                guard status == 0 else {
                    throw .invalidPath(path: path, reason: "cannot create the dataset: \(hdf5ErrorMessage())")
                }
            }
            for path in file.groups.keys.sorted() {
                for (name, value) in file.groups[path]!.sorted(by: { $0.key < $1.key }) {
                    guard !name.isEmpty, !name.utf8.contains(0), !value.utf8.contains(0) else {
                        throw .invalidPath(path: path, reason: "attribute names must be non-empty and names and values free of NUL characters")
                    }
                    guard nk_h5_set_string_attribute(handle, path.isEmpty ? "/" : path, name, value) == 0 else {
                        throw .invalidPath(path: path, reason: "cannot set attribute \"\(name)\": \(hdf5ErrorMessage())")
                    }
                }
            }
            let size = nk_h5_file_image(handle, nil, 0)
            guard size > 0 else { throw .io("libhdf5 cannot flush the file in memory: \(hdf5ErrorMessage())") }
            var bytes = Data(count: Int(size))
            let copied = bytes.withUnsafeMutableBytes { nk_h5_file_image(handle, $0.baseAddress, $0.count) }
            guard copied == size else { throw .io("libhdf5 cannot copy the file image: \(hdf5ErrorMessage())") }
            return bytes
        }
    }

    /// Paths are slash-separated names, each non-empty, not `.` or `..`, without NUL.
    private static func validate(_ path: String) throws(KerasInteropError) {
        guard !path.utf8.contains(0) else { throw .invalidPath(path: path, reason: "contains a NUL character") }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard !component.isEmpty, component != ".", component != ".." else {
                throw .invalidPath(path: path, reason: "every component must be a non-empty name other than . and ..")
            }
        }
    }
}
