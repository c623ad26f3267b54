/// The one error type of the Datasets module: what went wrong, with which file, and why.
///
/// Everything that comes from outside the process (files, downloads, directories) is validated
/// and reported through this error; nothing a file says is trusted before it is checked, and no
/// allocation is sized by a header alone.
public struct DatasetError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The broad class of failure, for code that wants to react to some of them.
    public enum Kind: String, Sendable, Equatable {
        /// The file or directory does not exist.
        case notFound
        /// Reading or writing failed at the operating-system level.
        case io
        /// The bytes are not a valid file of the expected format (bad magic, truncated, inconsistent header...).
        case corrupt
        /// The file is valid but uses a feature we do not support (e.g. 12-bit JPEG).
        case unsupported
        /// The file declares, or would decompress to, more data than the allowed limit.
        case tooLarge
        /// Downloaded or cached data does not have the expected SHA-256.
        case checksumMismatch
        /// A download failed (connection, HTTP status, cut-off transfer).
        case network
        /// The caller asked for something the data cannot give (wrong split name, bad option).
        case invalidArgument
    }

    /// What kind of failure this is.
    public var kind: Kind
    /// The file, directory or URL concerned, when there is one.
    public var path: String?
    /// A human-readable account of what was wrong and where (byte offset, field, limit...).
    public var message: String

    /// Makes an error.
    public init(_ kind: Kind, path: String? = nil, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    /// `"<path>: <message>"`, or just the message without a path.
    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }
}
