import TensorCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable byte buffer: `malloc`ed when small, its own anonymous `mmap` when large.
///
/// Large buffers (a whole IDX or gzip file, its inflated contents: tens of MB) are mapped
/// directly so that freeing one gives its pages back to the system at once. Through `malloc`
/// they would not always: once glibc has freed one mapped block it raises its mapping threshold
/// to that size, later blocks below it come from the heap, and freed heap memory mostly stays
/// resident (issue 14: loading Fashion-MNIST left part of its files resident for the whole run). Pages
/// of a mapping are only resident once written, so a generous first capacity costs nothing.
/// Only the owner writes to it, and only before it is shared; after that it is read-only, which
/// is why it may be `Sendable`.
final class ByteBuffer: @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// Whether `base` is a mapping of `capacity` bytes (else a `malloc` block).
    private var mapped: Bool
    /// The number of bytes written so far (the first `count` bytes of `base`).
    var count: Int = 0

    /// Capacities from which a buffer is mapped rather than `malloc`ed.
    static let mappingThreshold = 1 << 20

    /// An empty buffer with room for `capacity` bytes (at least one).
    init(capacity: Int, path: String?) throws {
        let size = max(1, capacity)
        (base, mapped) = try ByteBuffer.allocate(size, path: path)
        self.capacity = size
    }

    deinit { ByteBuffer.release(base, capacity: capacity, mapped: mapped) }

    private static func allocate(_ size: Int, path: String?) throws -> (UnsafeMutableRawPointer, Bool) {
        if size >= mappingThreshold {
            let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            if let p, p != UnsafeMutableRawPointer(bitPattern: -1) { return (p, true) }
        }
        guard let p = malloc(size) else {
            throw DatasetError(.io, path: path, "out of memory allocating \(size) bytes")
        }
        return (p, false)
    }

    private static func release(_ pointer: UnsafeMutableRawPointer, capacity: Int, mapped: Bool) {
        if mapped { munmap(pointer, capacity) } else { free(pointer) }
    }

    /// Grows the capacity to `newCapacity` bytes, keeping the contents.
    func grow(to newCapacity: Int, path: String?) throws {
        guard newCapacity > capacity else { return }
        if !mapped && newCapacity < ByteBuffer.mappingThreshold {
            guard let p = realloc(base, newCapacity) else {
                throw DatasetError(.io, path: path, "out of memory growing a buffer to \(newCapacity) bytes")
            }
            base = p
        } else {
            // Doubling: the copies add up to less than the final size.
            let (p, isMapped) = try ByteBuffer.allocate(newCapacity, path: path)
            p.copyMemory(from: base, byteCount: count)
            ByteBuffer.release(base, capacity: capacity, mapped: mapped)
            (base, mapped) = (p, isMapped)
        }
        capacity = newCapacity
    }

    /// The bytes written so far.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// The bytes as an array (a copy).
    var array: [UInt8] { [UInt8](bytes) }
}

/// Whole-file reading with a size limit, and atomic writing; POSIX calls, with errors that
/// name the file and the operating system's reason.
enum FileIO {
    /// The text of the current `errno`.
    static func errorText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// Reads the whole file into a buffer, refusing files larger than `limit` bytes.
    ///
    /// The file's size from `fstat` only chooses the first capacity; the buffer then grows
    /// with the bytes that actually arrive, so a file that grows while being read, or a
    /// device or pipe that reports size 0, is handled and still held to `limit`.
    static func readAll(_ path: String, limit: Int, what: String = "file") throws -> ByteBuffer {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw DatasetError(.notFound, path: path, "no such \(what)")
            }
            throw DatasetError(.io, path: path, "cannot open: \(errorText(code))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DatasetError(.io, path: path, "cannot stat: \(errorText())")
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw DatasetError(.io, path: path, "is a directory, not a \(what)")
        }
        let statedSize = Int(info.st_size)
        if statedSize > limit {
            throw DatasetError(.tooLarge, path: path,
                               "file is \(statedSize) bytes, over the limit of \(limit) bytes")
        }
        // One byte more than the stated size, so that the end of the file is seen without growing.
        let buffer = try ByteBuffer(capacity: min(limit, max(statedSize, 1 << 16)) + 1, path: path)
        while true {
            if buffer.count == buffer.capacity {
                if buffer.count > limit {
                    throw DatasetError(.tooLarge, path: path, "file holds more than the limit of \(limit) bytes")
                }
                try buffer.grow(to: min(limit + 1, buffer.capacity * 2), path: path)
            }
            let want = min(buffer.capacity - buffer.count, 1 << 30)
            let got = read(fd, buffer.base + buffer.count, want)
            if got < 0 {
                if errno == EINTR { continue }
                throw DatasetError(.io, path: path, "read failed at byte offset \(buffer.count): \(errorText())")
            }
            if got == 0 { break }
            buffer.count += got
        }
        if buffer.count > limit {
            throw DatasetError(.tooLarge, path: path, "file holds more than the limit of \(limit) bytes")
        }
        return buffer
    }

    /// The size of a regular file, or nil when there is no such file.
    static func fileSize(_ path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    /// Whether `path` names a directory.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The folder part of a path ("." when there is none).
    static func directoryPart(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// Makes a directory and its missing parents (mode 0755).
    static func makeDirectories(_ path: String) throws {
        if path.isEmpty || isDirectory(path) { return }
        let parent = directoryPart(path)
        if parent != path && parent != "." && parent != "/" { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw DatasetError(.io, path: path, "cannot create directory: \(errorText())")
        }
    }

    /// Writes all of `bytes` to `fd`, retrying short writes.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw DatasetError(.io, path: path, "write failed at byte offset \(done): \(errorText())")
            }
            done += n
        }
    }

    /// Writes `bytes` to `path` atomically through TensorCore's `AtomicFile` (a temporary file
    /// in the same directory, flushed, then renamed over `path`; on any error `path` is left as
    /// it was), reporting failures as `DatasetError`: `.notFound` when the directory is missing,
    /// `.invalidArgument` for a path that names no file, `.io` otherwise.
    static func writeAtomically(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        do {
            try AtomicFile.write(to: path) { file in try file.write(bytes) }
        } catch let error as AtomicFileError {
            let kind: DatasetError.Kind
            switch error.errorNumber {
            case nil: kind = .invalidArgument
            case ENOENT?, ENOTDIR?: kind = .notFound
            default: kind = .io
            }
            throw DatasetError(kind, path: path, error.message)
        }
    }
}

