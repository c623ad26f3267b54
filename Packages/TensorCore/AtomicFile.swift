#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that a reader sees either the old contents or all of the new ones, never a
/// part: what Neurite's checkpoints, weights and architecture files are written with.
///
/// The bytes go to a temporary file in the destination's directory (the same file system, so
/// the final rename is atomic), which is flushed to disk with `fsync`, closed, and renamed over
/// the destination; the directory is then synced so that the rename itself survives a crash.
/// On any error, the temporary file is removed and the destination is left as it was (absent,
/// or with its old contents). The new file gets mode `0644` less the process's umask, whatever
/// the mode of the file it replaces.
///
/// Cost: the write itself plus two `fsync` calls, which on an SSD add a few milliseconds per
/// file; small writes are gathered in a 1 MiB buffer, large ones go straight to the file.
///
/// ```swift
/// try AtomicFile.write(Array("hello\n".utf8), to: "/tmp/greeting.txt")
/// try AtomicFile.write(to: "/tmp/two-parts.bin") { file in
///     try file.write(header)
///     try file.write(payload)
/// }
/// ```
public enum AtomicFile {
    /// Writes `bytes` as the whole new contents of `path`, atomically.
    /// - Throws: `AtomicFileError` naming `path` and the operating system's reason.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { file in try file.write(bytes) }
    }

    /// Writes the bytes that `body` hands to its `Writer` as the whole new contents of `path`,
    /// atomically: `path` changes only if `body` returns normally and every write succeeds.
    ///
    /// An error thrown by `body` is rethrown as it is, after the temporary file is removed.
    /// - Throws: `AtomicFileError` naming `path` and the operating system's reason, or what
    ///   `body` throws.
    public static func write(to path: String, _ body: (inout Writer) throws -> Void) throws {
        guard let slash = path.lastIndex(of: "/") else {
            return try write(to: path, directory: ".", name: path, body)
        }
        let name = String(path[path.index(after: slash)...])
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        try write(to: path, directory: directory, name: name, body)
    }

    private static func write(to path: String, directory: String, name: String,
                              _ body: (inout Writer) throws -> Void) throws {
        guard !name.isEmpty, name != ".", name != ".." else {
            throw AtomicFileError(path: path, "not a file name (the path ends in \"\(name.isEmpty ? "/" : name)\")")
        }
        let temporary = directory + "/." + name + ".tmp-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let code = errno
            let reason = code == ENOENT ? "the directory \(directory) does not exist" : errorText(code)
            throw AtomicFileError(path: path, "cannot create a temporary file in \(directory): \(reason)", errorNumber: code)
        }
        var isOpen = true
        do {
            var writer = Writer(fd: fd, path: path)
            try body(&writer)
            try writer.flush()
            guard fsync(fd) == 0 else { throw AtomicFileError(path: path, "fsync failed: \(errorText(errno))", errorNumber: errno) }
            isOpen = false
            // Not retried on EINTR: on Linux the descriptor is closed even when close reports it.
            guard close(fd) == 0 else { throw AtomicFileError(path: path, "close failed: \(errorText(errno))", errorNumber: errno) }
            guard rename(temporary, path) == 0 else {
                throw AtomicFileError(path: path, "cannot rename the temporary file into place: \(errorText(errno))",
                                      errorNumber: errno)
            }
        } catch {
            if isOpen { close(fd) }
            unlink(temporary)
            throw error
        }
        syncDirectory(directory)
    }

    /// Makes a rename in `directory` durable. Best effort: some file systems refuse `fsync` on
    /// a directory, and the file is already complete and in place by then.
    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// The operating system's text for an `errno` value.
    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// Appends bytes to the temporary file of one `AtomicFile.write(to:_:)` call; exists only
    /// inside that call's body.
    public struct Writer {
        private let fd: Int32
        private let path: String
        private var buffer: [UInt8] = []
        /// Writes smaller than this are gathered in `buffer`; larger ones go straight to the file.
        private static let bufferSize = 1 << 20

        /// The number of bytes handed to `write` so far.
        public private(set) var count = 0
        /// The number of bytes that reached the file so far.
        private var written = 0

        fileprivate init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        /// Appends `bytes` to the file.
        /// - Throws: `AtomicFileError` when the operating system refuses the write (disk full).
        public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard bytes.count > 0 else { return }
            count += bytes.count
            if buffer.count + bytes.count <= Writer.bufferSize {
                buffer.append(contentsOf: bytes)
                return
            }
            try flush()
            if bytes.count < Writer.bufferSize {
                buffer.append(contentsOf: bytes)
            } else {
                try writeAll(bytes)
            }
        }

        /// Appends `bytes` to the file.
        /// - Throws: `AtomicFileError` when the operating system refuses the write (disk full).
        public mutating func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }

        /// Writes out what is gathered in the buffer.
        fileprivate mutating func flush() throws {
            guard !buffer.isEmpty else { return }
            // Moved out of `self` while it is written, keeping its capacity for the next round.
            var pending: [UInt8] = []
            swap(&pending, &buffer)
            try pending.withUnsafeBytes { try writeAll($0) }
            pending.removeAll(keepingCapacity: true)
            buffer = pending
        }

        private mutating func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = posixWrite(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AtomicFileError(path: path, "write failed at byte offset \(written): \(AtomicFile.errorText(errno))",
                                          errorNumber: errno)
                }
                done += n
                written += n
            }
        }
    }
}

/// `write(2)`, named apart from `Writer.write` so the call inside the writer is unambiguous.
@inline(__always)
private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}

/// A file could not be written atomically; the message names the file and the operating
/// system's reason. The destination was left as it was.
public struct AtomicFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file that was to be written.
    public var path: String
    /// What went wrong.
    public var message: String
    /// The operating system's `errno` when a system call failed (so callers can map it onto
    /// their own error kinds, e.g. `ENOENT` to "not found"), or nil for a bad path.
    public var errorNumber: Int32?

    /// Makes an error about `path`.
    public init(path: String, _ message: String, errorNumber: Int32? = nil) {
        self.path = path
        self.message = message
        self.errorNumber = errorNumber
    }

    /// `"<path>: <message>"`.
    public var description: String { "\(path): \(message)" }
}
