import Foundation
import XCTest
import _NeuriteTestSupport

/// Runs Python scripts in the Keras virtual environment that `Tools/reference/setup_venvs.sh`
/// makes (Keras 3 with TensorFlow, h5py, numpy): the reference KerasInterop is tested against.
///
/// The interpreter is `$NEURITE_KERAS_PYTHON`, else `~/.cache/neurite/keras-venv/bin/python`.
/// Tests never create the environment or install packages. When the interpreter is missing, a
/// test is skipped, except under CI (`CI` set), where it fails and names the setup script.
enum KerasPython {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The interpreter's path: ``ReferencePython/keras(file:line:)`` of the shared test support,
    /// which skips when it is missing, or fails under CI.
    static func interpreter() throws -> String {
        try ReferencePython.keras()
    }

    /// Runs `script` (Python source) with `arguments` as `sys.argv[1...]` and returns its standard
    /// output. Throws when the interpreter is missing (see ``interpreter()``) or the script exits
    /// with a non-zero status; the error carries its standard error.
    @discardableResult
    static func run(_ script: String, arguments: [String] = []) throws -> String {
        let python = try interpreter()
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("neurite-keras-python-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // Output goes to files, not pipes, so a chatty TensorFlow can never fill a pipe and block.
        let scriptURL = folder.appendingPathComponent("script.py")
        let outURL = folder.appendingPathComponent("stdout")
        let errURL = folder.appendingPathComponent("stderr")
        try Data(script.utf8).write(to: scriptURL)
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [scriptURL.path] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = environment
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        let stdout = String(decoding: try Data(contentsOf: outURL), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let stderr = String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
            throw Failure(description: "python exited with status \(process.terminationStatus):\n\(stderr.suffix(4000))")
        }
        return stdout
    }
}
