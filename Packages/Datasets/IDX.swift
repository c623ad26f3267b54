import TensorCore

/// The element type of an IDX file, named by the type code in its third header byte.
public enum IDXDataType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Unsigned 8-bit integers (type code 0x08), as in MNIST images and labels.
    case uint8 = 0x08
    /// Signed 8-bit integers (0x09).
    case int8 = 0x09
    /// Signed 16-bit big-endian integers (0x0B).
    case int16 = 0x0B
    /// Signed 32-bit big-endian integers (0x0C).
    case int32 = 0x0C
    /// 32-bit big-endian IEEE floats (0x0D).
    case float32 = 0x0D
    /// 64-bit big-endian IEEE floats (0x0E).
    case float64 = 0x0E

    /// The size of one element in bytes.
    public var byteWidth: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16: return 2
        case .int32, .float32: return 4
        case .float64: return 8
        }
    }

    /// Whether elements are integers (the types `IDXFile.labels()` accepts).
    public var isInteger: Bool { self != .float32 && self != .float64 }

    /// A short name with the type code, e.g. `"u8 (0x08)"`.
    public var description: String {
        let name: String
        switch self {
        case .uint8: name = "u8"
        case .int8: name = "i8"
        case .int16: name = "i16"
        case .int32: name = "i32"
        case .float32: name = "f32"
        case .float64: name = "f64"
        }
        let hex = String(rawValue, radix: 16, uppercase: true)
        return "\(name) (0x\(hex.count < 2 ? "0" : "")\(hex))"
    }
}

/// How much an IDX read may take in, so that a corrupt or hostile file fails with
/// `DatasetError.Kind.tooLarge` instead of exhausting memory.
public struct IDXLimits: Sendable, Equatable {
    /// The most bytes of IDX content (header and data, after decompression) one read may
    /// hold; it also bounds the size of the file itself. Default 1 GiB.
    public var maxBytes: Int

    /// Limits with the given maximum content size in bytes.
    public init(maxBytes: Int = 1 << 30) {
        neuritePrecondition(maxBytes > 0, "IDXLimits.maxBytes must be positive, got \(maxBytes)")
        self.maxBytes = maxBytes
    }

    /// 1 GiB of content, several times the largest common IDX data set (MNIST train is 47 MB).
    public static let `default` = IDXLimits()
}

/// A parsed, validated IDX file: its element type, its shape and its data.
///
/// Reading checks everything before anything is trusted: the magic, the type code, the
/// rank, that no dimension is zero, that the dimensions' product does not overflow, and
/// that the data is exactly as long as the header says (no more, no less). Accessors then
/// convert the big-endian data to what the caller wants.
///
/// ```swift
/// let images = try IDX.read(contentsOf: "train-images-idx3-ubyte.gz")  // shape [60000, 28, 28]
/// let x = images.tensor(dividedBy: 255)                                 // Float32 in 0...1
/// let y = try IDX.read(contentsOf: "train-labels-idx1-ubyte.gz").labels()
/// ```
public struct IDXFile: Sendable {
    /// The file this was read from.
    public let path: String
    /// The element type.
    public let dataType: IDXDataType
    /// The dimensions, outermost first (e.g. `[60000, 28, 28]`). None is zero.
    public let shape: [Int]
    /// The number of elements: the product of `shape`.
    public let count: Int

    let storage: ByteBuffer
    let dataOffset: Int

    /// Parses IDX content held in `storage` (which this value then owns).
    init(parsing storage: ByteBuffer, path: String) throws {
        let n = storage.count
        let b = storage.bytes
        guard n >= 4 else {
            throw DatasetError(.corrupt, path: path,
                               "file holds \(n) bytes of IDX content, too short for the 4-byte magic number")
        }
        guard b[0] == 0, b[1] == 0 else {
            let magic = (0..<4).map { hex2(b[$0]) }.joined()
            throw DatasetError(.corrupt, path: path,
                               "bad magic number 0x\(magic) at byte 0: an IDX file starts with two zero bytes, a type code and a rank")
        }
        guard let type = IDXDataType(rawValue: b[2]) else {
            throw DatasetError(.corrupt, path: path,
                               "unknown IDX type code 0x\(hex2(b[2])) at byte 2 (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)")
        }
        let rank = Int(b[3])
        guard rank > 0 else {
            throw DatasetError(.corrupt, path: path, "rank 0 at byte 3: an IDX file needs at least one dimension")
        }
        let headerSize = 4 + 4 * rank
        guard n >= headerSize else {
            throw DatasetError(.corrupt, path: path,
                               "file holds \(n) bytes, too short for the \(headerSize)-byte header of a rank-\(rank) IDX file")
        }
        var shape: [Int] = []
        shape.reserveCapacity(rank)
        var elements = 1
        var overflow = false
        for axis in 0..<rank {
            let offset = 4 + 4 * axis
            let d = Int(UInt32(bigEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            guard d > 0 else {
                throw DatasetError(.corrupt, path: path, "dimension \(axis) is 0 (at byte offset \(offset))")
            }
            shape.append(d)
            let (product, o) = elements.multipliedReportingOverflow(by: d)
            elements = product
            overflow = overflow || o
        }
        let (dataBytes, o2) = elements.multipliedReportingOverflow(by: type.byteWidth)
        let available = n - headerSize
        guard !overflow, !o2 else {
            throw DatasetError(.corrupt, path: path,
                               "dimensions \(shape) of \(type) elements claim more bytes than can be counted (overflow); the file holds \(available) bytes of data")
        }
        guard dataBytes <= available else {
            throw DatasetError(.corrupt, path: path,
                               "header claims \(dataBytes) bytes of data (dimensions \(shape), \(type)) from byte offset \(headerSize), but only \(available) bytes follow: the file is truncated or the header is wrong")
        }
        guard dataBytes == available else {
            throw DatasetError(.corrupt, path: path,
                               "\(available - dataBytes) bytes of trailing data after the \(dataBytes) bytes the header describes, starting at byte offset \(headerSize + dataBytes)")
        }
        self.path = path
        self.dataType = type
        self.shape = shape
        self.count = elements
        self.storage = storage
        self.dataOffset = headerSize
    }

    /// The raw big-endian element bytes.
    var data: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base + dataOffset, count: count * dataType.byteWidth)
    }

    /// The elements as a Float32 tensor of shape `shape`, each divided by `divisor` when one is given.
    ///
    /// With `dividedBy: 255`, u8 images become floats in 0...1 exactly as `x / 255` does in
    /// numpy or PyTorch (a correctly rounded division, so 255 maps to exactly 1). Without a
    /// divisor the values are the stored ones, converted to Float32 (exact for u8, i8, i16
    /// and f32; i32 beyond ±2^24 and f64 round to the nearest Float32). Large arrays are
    /// converted in parallel on `ThreadPool.shared`.
    ///
    /// - Parameter divisor: a nonzero value to divide every element by, or nil for raw values.
    public func tensor(dividedBy divisor: Float? = nil) -> Tensor {
        if let divisor { neuritePrecondition(divisor != 0, "IDXFile.tensor(dividedBy:) needs a nonzero divisor") }
        let src = data
        let type = dataType
        return Tensor(shape: shape) { dst in
            ThreadPool.shared.parallelChunks(dst.count, grain: 1 << 18) { range in
                IDXFile.convert(src, type, range, into: dst, divisor: divisor)
            }
        }
    }

    /// Converts elements `range` of big-endian `src` to Float, optionally dividing.
    private static func convert(_ src: UnsafeRawBufferPointer, _ type: IDXDataType, _ range: Range<Int>,
                                into dst: UnsafeMutableBufferPointer<Float>, divisor: Float?) {
        let s = src.baseAddress!
        let d = dst.baseAddress!
        switch type {
        case .uint8:
            let p = s.assumingMemoryBound(to: UInt8.self)
            if let divisor {
                for i in range { d[i] = Float(p[i]) / divisor }
            } else {
                for i in range { d[i] = Float(p[i]) }
            }
            return
        case .int8:
            let p = s.assumingMemoryBound(to: Int8.self)
            for i in range { d[i] = Float(p[i]) }
        case .int16:
            for i in range { d[i] = Float(Int16(bitPattern: UInt16(bigEndian: s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
        case .int32:
            for i in range { d[i] = Float(Int32(bitPattern: UInt32(bigEndian: s.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))) }
        case .float32:
            for i in range { d[i] = Float(bitPattern: UInt32(bigEndian: s.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .float64:
            for i in range { d[i] = Float(Double(bitPattern: UInt64(bigEndian: s.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        }
        if let divisor {
            for i in range { d[i] /= divisor }
        }
    }

    /// The element at flat (row-major) index `i` as a Double, which holds every IDX type exactly.
    private func double(at i: Int) -> Double {
        let s = data
        switch dataType {
        case .uint8: return Double(s[i])
        case .int8: return Double(Int8(bitPattern: s[i]))
        case .int16: return Double(Int16(bitPattern: UInt16(bigEndian: s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
        case .int32: return Double(Int32(bitPattern: UInt32(bigEndian: s.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
        case .float32: return Double(Float(bitPattern: UInt32(bigEndian: s.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
        case .float64: return Double(bitPattern: UInt64(bigEndian: s.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
        }
    }

    /// All elements in row-major order as Doubles: exact for every IDX type (unlike `tensor`,
    /// which rounds i32 and f64 to Float32).
    public func doubleValues() -> [Double] {
        (0..<count).map(double(at:))
    }

    /// All elements in row-major order as integers, for label files.
    ///
    /// - Throws: `.invalidArgument` when the file holds floating-point elements.
    public func labels() throws -> [Int] {
        guard dataType.isInteger else {
            throw DatasetError(.invalidArgument, path: path,
                               "labels need an integer IDX file; this one holds \(dataType) elements")
        }
        if dataType == .uint8 {
            let p = data
            return [Int](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count { buffer[i] = Int(p[i]) }
                initialized = count
            }
        }
        return (0..<count).map { Int(double(at: $0)) }
    }
}

/// Two uppercase hex digits.
private func hex2(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}

/// Reading and writing IDX files, the format of MNIST and Fashion-MNIST.
///
/// An IDX file is a 4-byte magic number (two zero bytes, a type code, the rank), one
/// big-endian 32-bit size per dimension, then the elements, big-endian, in row-major order.
/// Files may be gzip-compressed; reading recognises gzip by its magic bytes, not by the name.
public enum IDX {
    /// Reads and validates an IDX file, plain or gzip-compressed.
    ///
    /// Memory is bounded by what the file really holds and by `limits`: a plain file's
    /// header is checked against the file's actual size, and gzip data is inflated into a
    /// buffer that grows with the real output and stops at `limits.maxBytes`.
    ///
    /// - Parameters:
    ///   - path: the file to read.
    ///   - limits: the most content a read may hold (default 1 GiB).
    /// - Throws: `DatasetError` naming `path`: `.notFound`; `.io`; `.corrupt` for a wrong
    ///   magic, an unknown type code, rank 0, a zero or overflowing dimension, data shorter or
    ///   longer than the header says, a truncated gzip stream, a CRC-32 mismatch or trailing
    ///   garbage after the gzip stream; `.tooLarge` when the file or its decompressed content
    ///   exceeds `limits.maxBytes`.
    public static func read(contentsOf path: String, limits: IDXLimits = .default) throws -> IDXFile {
        let raw = try FileIO.readAll(path, limit: limits.maxBytes)
        if Gzip.hasMagic(raw.bytes) {
            let inflated = try Gzip.decompress(raw.bytes, path: path, limit: limits.maxBytes)
            return try IDXFile(parsing: inflated, path: path)
        }
        return try IDXFile(parsing: raw, path: path)
    }

    /// Writes a tensor as an IDX file of the given element type, atomically.
    ///
    /// The tensor's shape becomes the IDX dimensions. Values must be representable in
    /// `dataType`: integral and in range for integer types; f32 stores Float32 exactly.
    /// The file is written to a temporary file in the same directory and renamed into
    /// place, so `path` never holds a half-written file.
    ///
    /// - Parameters:
    ///   - tensor: rank 1...255, every extent in 1...2^32-1.
    ///   - dataType: the element type to store.
    ///   - path: the destination.
    ///   - gzip: compress with gzip (zlib level 6, as `gzip` does by default).
    /// - Throws: `.invalidArgument` for a shape IDX cannot hold or a value the type cannot
    ///   represent (naming its index); `.io` or `.notFound` when writing fails.
    public static func write(_ tensor: Tensor, as dataType: IDXDataType, to path: String, gzip: Bool = false) throws {
        try tensor.withUnsafeBufferPointer { values in
            try write(values, shape: tensor.shape, as: dataType, to: path, gzip: gzip)
        }
    }

    /// Writes Double values with the given shape as an IDX file, atomically; the way to
    /// store f64 and i32 data that Float32 cannot hold exactly.
    ///
    /// - Parameters:
    ///   - values: the elements in row-major order; their count must equal the product of `shape`.
    ///   - shape: rank 1...255, every extent in 1...2^32-1.
    ///   - dataType: the element type to store (values must be representable; f32 rounds to nearest).
    ///   - path: the destination.
    ///   - gzip: compress with gzip.
    /// - Throws: as `write(_:as:to:gzip:)`.
    public static func write(_ values: [Double], shape: [Int], as dataType: IDXDataType, to path: String,
                             gzip: Bool = false) throws {
        try values.withUnsafeBufferPointer { buffer in
            try write(buffer, shape: shape, as: dataType, to: path, gzip: gzip)
        }
    }

    /// Writes integer labels as a rank-1 IDX file (u8 by default, as MNIST labels), atomically.
    ///
    /// - Throws: `.invalidArgument` for an empty array or a label outside `dataType`'s range.
    public static func write(labels: [Int], as dataType: IDXDataType = .uint8, to path: String,
                             gzip: Bool = false) throws {
        try write(labels.map(Double.init), shape: [labels.count], as: dataType, to: path, gzip: gzip)
    }

    private static func write<T: BinaryFloatingPoint>(_ values: UnsafeBufferPointer<T>, shape: [Int], as type: IDXDataType,
                                                      to path: String, gzip: Bool) throws {
        guard (1...255).contains(shape.count) else {
            throw DatasetError(.invalidArgument, path: path, "IDX files hold rank 1...255, this shape \(shape) has rank \(shape.count)")
        }
        for (axis, d) in shape.enumerated() where d < 1 || d > Int(UInt32.max) {
            throw DatasetError(.invalidArgument, path: path,
                               "IDX dimensions must be in 1...\(UInt32.max); dimension \(axis) of shape \(shape) is \(d)")
        }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int(Int32.max) * 1024 else {
                throw DatasetError(.invalidArgument, path: path, "shape \(shape) has too many elements to write")
            }
            count = product
        }
        neuritePrecondition(values.count == count, "IDX.write: \(values.count) values do not fill shape \(shape) (\(count) elements)")
        let headerSize = 4 + 4 * shape.count
        let total = headerSize + count * type.byteWidth
        let content = try ByteBuffer(capacity: total, path: path)
        let out = content.base
        out.storeBytes(of: 0, toByteOffset: 0, as: UInt8.self)
        out.storeBytes(of: 0, toByteOffset: 1, as: UInt8.self)
        out.storeBytes(of: type.rawValue, toByteOffset: 2, as: UInt8.self)
        out.storeBytes(of: UInt8(shape.count), toByteOffset: 3, as: UInt8.self)
        for (axis, d) in shape.enumerated() {
            out.storeBytes(of: UInt32(d).bigEndian, toByteOffset: 4 + 4 * axis, as: UInt32.self)
        }
        try encode(values, as: type, into: out + headerSize, path: path)
        content.count = total
        if gzip {
            let packed = try Gzip.compress(content.bytes, path: path)
            try FileIO.writeAtomically(packed.bytes, to: path)
        } else {
            try FileIO.writeAtomically(content.bytes, to: path)
        }
    }

    /// Stores `values` big-endian as `type`, checking that each is representable.
    private static func encode<T: BinaryFloatingPoint>(_ values: UnsafeBufferPointer<T>, as type: IDXDataType,
                                                       into out: UnsafeMutableRawPointer, path: String) throws {
        func unrepresentable(_ i: Int) -> DatasetError {
            DatasetError(.invalidArgument, path: path, "element \(i) is \(values[i]), which \(type) cannot represent")
        }
        switch type {
        case .uint8:
            for i in values.indices {
                guard let v = UInt8(exactly: values[i]) else { throw unrepresentable(i) }
                out.storeBytes(of: v, toByteOffset: i, as: UInt8.self)
            }
        case .int8:
            for i in values.indices {
                guard let v = Int8(exactly: values[i]) else { throw unrepresentable(i) }
                out.storeBytes(of: v, toByteOffset: i, as: Int8.self)
            }
        case .int16:
            for i in values.indices {
                guard let v = Int16(exactly: values[i]) else { throw unrepresentable(i) }
                out.storeBytes(of: UInt16(bitPattern: v).bigEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
        case .int32:
            for i in values.indices {
                guard let v = Int32(exactly: values[i]) else { throw unrepresentable(i) }
                out.storeBytes(of: UInt32(bitPattern: v).bigEndian, toByteOffset: 4 * i, as: UInt32.self)
            }
        case .float32:
            for i in values.indices {
                let v = Float(values[i])
                if v.isInfinite && values[i].isFinite { throw unrepresentable(i) }
                out.storeBytes(of: v.bitPattern.bigEndian, toByteOffset: 4 * i, as: UInt32.self)
            }
        case .float64:
            for i in values.indices {
                out.storeBytes(of: Double(values[i]).bitPattern.bigEndian, toByteOffset: 8 * i, as: UInt64.self)
            }
        }
    }
}
