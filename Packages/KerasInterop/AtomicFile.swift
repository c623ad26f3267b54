import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files the way the design asks for (temp file in the same directory, then rename), so a
/// crash or a full disk never leaves a half-written file under the final name.
enum AtomicFile {
    /// Writes `data` to a fresh temporary file beside `path`, syncs it and renames it over `path`;
    /// on any failure the temporary file is removed and `path` is untouched.
    static func write(_ data: Data, to path: String) throws(KerasInteropError) {
        try write(to: path) { (temporary: String) throws(KerasInteropError) in
            guard FileManager.default.createFile(atPath: temporary, contents: data) else {
                throw .io("cannot write \(temporary)")
            }
        }
    }

    /// Calls `fill` with the path of a temporary file (not yet existing) beside `path`, then
    /// syncs and renames it over `path`. The temporary file is removed when anything fails.
    static func write(to path: String, _ fill: (String) throws(KerasInteropError) -> Void) throws(KerasInteropError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/.\(url.lastPathComponent).\(UUID().uuidString).tmp"
        var done = false
        defer { if !done { unlink(temporary) } }
        try fill(temporary)
        let fd = open(temporary, O_RDONLY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        guard rename(temporary, path) == 0 else {
            throw .io("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
        done = true
    }
}
