import Foundation
import XCTest

/// What a test needs but the machine lacks (a data set, a tool, a reference interpreter), as an
/// error to throw from the test: in CI (the `CI` environment variable set and not `0` or `false`,
/// as `.ci/run` sets it) a failure, so a missing install step can never pass as a skip;
/// elsewhere an `XCTSkip` with the reason, so a developer without the data still gets a green
/// run of everything else.
///
/// ```swift
/// guard FileManager.default.fileExists(atPath: path) else { throw unavailable("MNIST not found at \(path)") }
/// ```
public func unavailable(_ reason: String, file: StaticString = #filePath, line: UInt = #line) -> Error {
    if runningInCI {
        return RequirementMissing(description: "required in CI but missing: \(reason)")
    }
    return XCTSkip(reason, file: file, line: line)
}

/// Whether the tests run under CI (`CI` set, and not `0`, `false` or empty).
public var runningInCI: Bool {
    guard let value = ProcessInfo.processInfo.environment["CI"]?.lowercased() else { return false }
    return !["", "0", "false", "no"].contains(value)
}

/// The error ``unavailable(_:file:line:)`` throws in CI; thrown from a test, it fails it.
public struct RequirementMissing: Error, CustomStringConvertible {
    /// What was missing and where it was looked for.
    public var description: String
}

/// The reference Python interpreters that interoperability tests run (never install: the
/// environments are made by `Tools/reference/setup_venvs.sh`, which `.ci/run` calls).
public enum ReferencePython {
    /// The Keras virtual environment's interpreter (TensorFlow CPU with Keras 3, numpy, h5py,
    /// safetensors): `$NEURITE_KERAS_PYTHON`, else `~/.cache/neurite/keras-venv/bin/python`.
    /// - Throws: ``unavailable(_:file:line:)`` when it is not there.
    public static func keras(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let path = environment["NEURITE_KERAS_PYTHON"]
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/neurite/keras-venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw unavailable("no Keras reference interpreter at \(path) (NEURITE_KERAS_PYTHON); "
                              + "make it with Tools/reference/setup_venvs.sh", file: file, line: line)
        }
        return path
    }

    /// A reference script that exited with an error; thrown from a test, it fails it.
    public struct ScriptFailure: Error, CustomStringConvertible {
        /// The status and the script's output.
        public var description: String
    }

    /// Runs `script` with `python` (`python -c script arguments...`) and returns its standard
    /// output and error; throws ``ScriptFailure`` with that output when it exits with an error or
    /// runs past `timeout` seconds.
    @discardableResult
    public static func runScript(_ python: String, _ script: String, _ arguments: [String] = [],
                                 timeout: TimeInterval = 300) throws -> String {
        let result = run(python, ["-c", script] + arguments, timeout: timeout)
        guard result.status == 0 else {
            throw ScriptFailure(description: "the Python script failed (status \(result.status)):\n\(result.output)")
        }
        return result.output
    }

    /// Runs a program with a time limit, its standard output and error together in a file (a pipe
    /// could fill and block it). Status -1 when it could not start, -2 when it ran out of time.
    public static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 300) -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: executable) else { return (-1, "\(executable) not found") }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-python-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: log) else { return (-1, "cannot create \(log.path)") }
        defer { try? FileManager.default.removeItem(at: log) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        var environment = ProcessInfo.processInfo.environment
        environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
        process.environment = environment
        do { try process.run() } catch { return (-1, "cannot run \(executable): \(error)") }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        var timedOut = false
        if process.isRunning {
            timedOut = true
            process.terminate()
        }
        process.waitUntilExit()
        try? handle.close()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return (timedOut ? -2 : process.terminationStatus, timedOut ? "timed out after \(Int(timeout)) s\n" + output : output)
    }
}
