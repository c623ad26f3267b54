import Foundation
import ZIPFoundation

/// The three members of a Keras 3 `.keras` file (a zip archive), as bytes.
///
/// Reading takes `config.json`, `metadata.json` and `model.weights.h5` and ignores any other
/// member (Keras may add `assets/`). Every member name is checked, needed or not: duplicate
/// names, absolute names and names with `..` components are refused. Sizes are checked against
/// `limits.maxMemberBytes` as declared and again while decompressing, so a member that claims to
/// be small but inflates to more is stopped as soon as it passes the limit. Checksums are verified.
///
/// Writing stores the three members uncompressed, as Keras does, with ZIPFoundation.
public struct KerasArchive: Equatable, Sendable {
    /// The bytes of `config.json` (the model's architecture).
    public var config: Data
    /// The bytes of `metadata.json` (Keras version, date).
    public var metadata: Data
    /// The bytes of `model.weights.h5` (see ``HDF5WeightsFile``).
    public var weights: Data

    /// The member names, in the order Keras writes them.
    public static let configName = "config.json"
    public static let metadataName = "metadata.json"
    public static let weightsName = "model.weights.h5"

    /// An archive with the given member bytes.
    public init(config: Data, metadata: Data, weights: Data) {
        self.config = config
        self.metadata = metadata
        self.weights = weights
    }

    /// Reads the `.keras` file at `path`.
    ///
    /// - Throws: ``KerasInteropError/io(_:)`` when the file cannot be read, otherwise as
    ///   ``read(data:limits:)``.
    public static func read(path: String, limits: KerasFileLimits = .default) throws -> KerasArchive {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw KerasInteropError.io("cannot read \(path): \(error.localizedDescription)")
        }
        return try read(data: data, source: path, limits: limits)
    }

    /// Reads a `.keras` file from its bytes.
    ///
    /// - Throws: ``KerasInteropError/notAZipArchive(_:)`` for bytes that are not a zip archive,
    ///   ``KerasInteropError/corruptArchive(_:)`` for a truncated or damaged one (or one with
    ///   duplicate or unsafe member names, encryption, or a compression method other than stored
    ///   and deflate), ``KerasInteropError/missingMember(_:)`` when one of the three members is
    ///   absent, ``KerasInteropError/memberTooLarge(name:limit:)`` when one of them declares or
    ///   inflates to more than `limits.maxMemberBytes`.
    public static func read(data: Data, limits: KerasFileLimits = .default) throws -> KerasArchive {
        try read(data: data, source: "zip data of \(data.count) bytes", limits: limits)
    }

    private static func read(data: Data, source: String, limits: KerasFileLimits) throws -> KerasArchive {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> KerasArchive in
            let reader = try ZipReader(bytes: raw, source: source)
            func member(_ name: String) throws(KerasInteropError) -> Data {
                guard let entry = reader.entries.first(where: { $0.name == name }) else {
                    throw .missingMember(name)
                }
                return try reader.extract(entry, limit: limits.maxMemberBytes)
            }
            return KerasArchive(config: try member(configName), metadata: try member(metadataName),
                                weights: try member(weightsName))
        }
    }

    /// The bytes of a zip archive holding the three members (stored, uncompressed).
    ///
    /// - Throws: ``KerasInteropError/io(_:)`` when ZIPFoundation cannot build the archive.
    public func encoded() throws -> Data {
        do {
            let archive = try Archive(data: Data(), accessMode: .create)
            for (name, bytes) in [(Self.metadataName, metadata), (Self.configName, config), (Self.weightsName, weights)] {
                try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(bytes.count),
                                     modificationDate: Date(), compressionMethod: .none) { position, size in
                    let start = bytes.startIndex + Int(position)
                    return bytes.subdata(in: start..<start + size)
                }
            }
            guard let data = archive.data else { throw KerasInteropError.io("ZIPFoundation returned no archive data") }
            return data
        } catch let error as KerasInteropError {
            throw error
        } catch {
            throw KerasInteropError.io("cannot build the .keras archive: \(error)")
        }
    }

    /// Writes the archive to `path` atomically: a temporary file in the same directory is
    /// written, synced and renamed over `path`, so `path` never holds a half-written archive.
    ///
    /// - Throws: ``KerasInteropError/io(_:)`` when the archive cannot be built or written.
    public func write(path: String) throws {
        try KerasFileWriter.write(try encoded(), to: path)
    }
}
