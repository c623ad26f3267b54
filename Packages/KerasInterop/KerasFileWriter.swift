import Foundation
import TensorCore

/// Writes KerasInterop's files atomically with TensorCore's `AtomicFile` (a temporary file in the
/// same directory, synced, then renamed over the path), so a crash or a full disk never leaves a
/// half-written file under the final name; its errors become ``KerasInteropError/io(_:)``.
enum KerasFileWriter {
    /// Writes `data` as the whole new contents of `path`, atomically.
    static func write(_ data: Data, to path: String) throws(KerasInteropError) {
        do {
            try AtomicFile.write(to: path) { file in
                try data.withUnsafeBytes { raw in try file.write(raw) }
            }
        } catch {
            throw .io("cannot write \(path): \(error)")
        }
    }
}
