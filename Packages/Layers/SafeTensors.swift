import TensorCore

/// Weights files in the safetensors format (Hugging Face's `safetensors`), readable and
/// writable by Python's `safetensors`, PyTorch, Keras and MLX.
///
/// A file is:
/// 1. 8 bytes: `N`, the header's length, an unsigned 64-bit little-endian integer;
/// 2. `N` bytes: the header, UTF-8 JSON: an object mapping each tensor's name to
///    `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`, plus an optional
///    `"__metadata__"` object of string to string;
/// 3. the data section: every tensor's elements, row-major, little-endian, back to back.
///    `data_offsets` are byte positions in this section (`end` one past the last byte).
///
/// **Writing** (``encode(_:metadata:)``, ``write(_:metadata:to:)``) stores Float32 (`"F32"`)
/// tensors in the order of their names (compared byte by byte in UTF-8), so the same tensors
/// always give the same bytes; the header is compact JSON with `"__metadata__"` first (when
/// `metadata` is not empty, its keys sorted the same way), then the tensors, each with its keys
/// in the order `dtype`, `shape`, `data_offsets`, and it is padded with spaces to a multiple of
/// 8 bytes, as the reference writer pads it, so every tensor starts 8-byte aligned. Files are
/// written atomically (see `AtomicFile`). Rank-0 tensors (shape `[]`) and empty tensors
/// (an extent of 0: no bytes, `begin == end`) are allowed.
///
/// **Reading** (`decode(_:)`, ``read(contentsOf:)``) accepts `F32` and converts
/// `F16`, `BF16` and `F64` to Float32 (exactly for the 16-bit types; `F64` rounds to the
/// nearest Float32), so PyTorch and Keras files in those types load as they are. Everything
/// else is checked before any tensor is allocated, and a file that breaks a rule throws a
/// ``SafeTensorsError`` whose ``SafeTensorsError/kind`` says which rule and whose message names
/// the file, the tensor and the numbers: a header length past the end of the file or over
/// ``maximumHeaderSize``; a header that is not UTF-8 JSON or has anything but spaces after the
/// object; a key given twice; a tensor entry without a string `dtype`, an integer `shape` or
/// two integer `data_offsets`; a `__metadata__` that is not an object of strings; a dtype the
/// format does not have, or one Neurite does not read (integers, booleans, 8-bit floats); a
/// byte range whose length is not the shape's element count times the dtype's size; ranges
/// that end beyond the data section, overlap, or leave bytes between them that belong to no
/// tensor; and bytes after the last tensor. Unknown keys inside a tensor entry are ignored,
/// as the reference reader ignores them. Tensors need not be aligned or in any order.
///
/// ```swift
/// try SafeTensors.write(["dense_1.kernel": kernel, "dense_1.bias": bias],
///                       metadata: ["format": "pt"], to: "model.safetensors")
/// let (weights, metadata) = try SafeTensors.read(contentsOf: "model.safetensors")
/// ```
public enum SafeTensors {
    /// The largest header accepted, in bytes: 100,000,000, the limit of the reference
    /// implementation, which keeps a hostile file from making the reader parse gigabytes of JSON.
    public static let maximumHeaderSize = 100_000_000

    /// The file's bytes: `tensors` as Float32, sorted by name, with `metadata` in the header.
    ///
    /// Cost: one copy of every tensor's elements into the result; ``write(_:metadata:to:)``
    /// streams them to a file without it.
    /// - Precondition: no tensor is named `"__metadata__"`, a name the format reserves.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> [UInt8] {
        let layout = Layout(tensors: tensors, metadata: metadata)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + layout.header.count + layout.dataSize)
        layout.emit { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Writes `tensors` as Float32, sorted by name, with `metadata` in the header, to `path`,
    /// atomically: `path` is replaced only once the whole file is on disk, and a failure leaves
    /// it as it was (see `AtomicFile`). The elements are written straight from the tensors'
    /// storage, without a copy of the whole file in memory.
    /// - Throws: ``SafeTensorsError`` of kind ``SafeTensorsError/Kind/io`` naming `path` and the
    ///   operating system's reason (a missing directory, a full disk).
    /// - Precondition: no tensor is named `"__metadata__"`, a name the format reserves.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        let layout = Layout(tensors: tensors, metadata: metadata)
        do {
            try AtomicFile.write(to: path) { file in
                try layout.emit { try file.write($0) }
            }
        } catch let error as AtomicFileError {
            throw SafeTensorsError(.io, path: path, error.message)
        }
    }

    /// Reads a safetensors file: its tensors, as Float32, by name, and its `__metadata__`
    /// (empty when the file has none).
    ///
    /// The header length is checked against the file's size, and every tensor's byte range
    /// against the data section, before anything the header claims is allocated; then each
    /// tensor is read straight into its storage (`F32`) or converted in 1 MiB pieces. Memory:
    /// the header plus the tensors.
    /// - Throws: ``SafeTensorsError`` naming `path` and what was wrong (see ``SafeTensors``).
    public static func read(contentsOf path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let file = try SafeTensorsFile(path: path)
        defer { file.close() }
        return try decode(size: file.size, origin: path) { offset, count, destination in
            try file.read(at: offset, count: count, into: destination)
        }
    }

    /// Decodes the bytes of a safetensors file (see ``read(contentsOf:)``).
    /// - Throws: ``SafeTensorsError`` (without a path) saying what was wrong.
    public static func decode(_ bytes: [UInt8]) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try bytes.withUnsafeBytes { try decode($0) }
    }

    /// Decodes the bytes of a safetensors file held in memory, such as a Foundation `Data`
    /// (`try data.withUnsafeBytes { try SafeTensors.decode($0) }`); the bytes need no alignment.
    /// - Throws: ``SafeTensorsError`` (without a path) saying what was wrong.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try decode(size: bytes.count, origin: nil) { offset, count, destination in
            guard count > 0 else { return }
            destination.copyMemory(from: bytes.baseAddress! + offset, byteCount: count)
        }
    }
}

/// A safetensors file or buffer broke a rule of the format, or a file could not be read or
/// written. The message names the file (when there is one), the tensor and the numbers.
public struct SafeTensorsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Which rule was broken.
    public enum Kind: String, Equatable, Sendable, CaseIterable {
        /// The file could not be opened, read or written (missing, a directory, disk full).
        case io
        /// The file ends too early: under 8 bytes, or before the end of the header it announces.
        case truncated
        /// The announced header is longer than `SafeTensors.maximumHeaderSize`.
        case headerTooLarge
        /// The header is not UTF-8 JSON, or something other than spaces follows the object.
        case invalidJSON
        /// A JSON object in the header names the same key twice.
        case duplicateKey
        /// Valid JSON, but not a safetensors header: not an object, a tensor entry without
        /// `dtype`, `shape` or `data_offsets` of the right kinds, or metadata that is not strings.
        case invalidHeader
        /// A dtype the safetensors format does not define.
        case unknownDType
        /// A safetensors dtype that Neurite does not read (only F32, F16, BF16 and F64 are read).
        case unsupportedDType
        /// A tensor's byte range does not hold its shape's element count in its dtype.
        case shapeMismatch
        /// A tensor's `data_offsets` begin after they end.
        case invalidOffsets
        /// A tensor's byte range ends beyond the data section.
        case outOfRange
        /// Two tensors' byte ranges overlap.
        case overlap
        /// Bytes between two tensors (or before the first) belong to no tensor.
        case hole
        /// Bytes follow the end of the last tensor.
        case trailingBytes
    }

    /// Which rule was broken.
    public var kind: Kind
    /// The file concerned, or nil for bytes decoded from memory.
    public var path: String?
    /// What was wrong, with the tensor's name and the numbers involved.
    public var message: String

    /// Makes an error.
    public init(_ kind: Kind, path: String?, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    /// `"<path>: <message>"`, or `"safetensors data: <message>"` for bytes from memory.
    public var description: String { "\(path ?? "safetensors data"): \(message)" }
}

extension SafeTensors {
    /// The header and order of a file about to be written.
    struct Layout {
        /// The tensors in file order (by name, compared in UTF-8).
        var tensors: [(name: String, tensor: Tensor)]
        /// The header, padded with spaces to a multiple of 8 bytes.
        var header: [UInt8]
        /// The size of the data section in bytes.
        var dataSize: Int

        init(tensors: [String: Tensor], metadata: [String: String]) {
            neuritePrecondition(tensors["__metadata__"] == nil,
                                "a tensor cannot be named \"__metadata__\": the safetensors format reserves that name for the metadata")
            let byName: (String, String) -> Bool = { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            self.tensors = tensors.sorted { byName($0.key, $1.key) }.map { (name: $0.key, tensor: $0.value) }
            var json: [UInt8] = [UInt8(ascii: "{")]
            var first = true
            func separator() {
                if !first { json.append(UInt8(ascii: ",")) }
                first = false
            }
            if !metadata.isEmpty {
                separator()
                appendJSONString("__metadata__", to: &json)
                json.append(contentsOf: Array(":{".utf8))
                for (index, key) in metadata.keys.sorted(by: byName).enumerated() {
                    if index > 0 { json.append(UInt8(ascii: ",")) }
                    appendJSONString(key, to: &json)
                    json.append(UInt8(ascii: ":"))
                    appendJSONString(metadata[key]!, to: &json)
                }
                json.append(UInt8(ascii: "}"))
            }
            var offset = 0
            for (name, tensor) in self.tensors {
                let end = offset + tensor.count * MemoryLayout<Float>.size
                separator()
                appendJSONString(name, to: &json)
                let shape = tensor.shape.map(String.init).joined(separator: ",")
                json.append(contentsOf: Array(":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8))
                offset = end
            }
            json.append(UInt8(ascii: "}"))
            json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
            neuritePrecondition(json.count <= SafeTensors.maximumHeaderSize,
                                "the safetensors header would be \(json.count) bytes, over the format's limit of \(SafeTensors.maximumHeaderSize)")
            header = json
            dataSize = offset
        }

        /// Hands the file's bytes to `sink` in order: the header length, the header, then every
        /// tensor's elements in little-endian order (straight from the tensors' storage on a
        /// little-endian machine, through a 64 KiB buffer otherwise).
        func emit(_ sink: (UnsafeRawBufferPointer) throws -> Void) rethrows {
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try sink($0) }
            try header.withUnsafeBytes { try sink($0) }
            for (_, tensor) in tensors {
                try tensor.withUnsafeBufferPointer { elements in
                    #if _endian(little)
                    try sink(UnsafeRawBufferPointer(elements))
                    #else
                    var chunk = [UInt32](repeating: 0, count: 16_384)
                    var start = 0
                    while start < elements.count {
                        let n = min(chunk.count, elements.count - start)
                        for i in 0..<n { chunk[i] = elements[start + i].bitPattern.littleEndian }
                        try chunk.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[..<(n * 4)])) }
                        start += n
                    }
                    #endif
                }
            }
        }
    }
}
