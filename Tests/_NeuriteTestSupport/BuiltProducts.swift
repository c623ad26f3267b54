import Foundation
import XCTest

/// What a run of one of the package's executables gave.
public struct ProductRun: Sendable {
    /// The exit status.
    public var status: Int32
    /// Its standard output.
    public var output: String
    /// Its standard error.
    public var errors: String
}

/// Runs the package's executables (apps and tools), which `swift test` builds beside the test
/// bundles: the tests of the demos and of their options use it.
public enum BuiltProducts {
    /// The products folder: the test bundle's own on Linux, the one holding the `.xctest` on
    /// macOS. `anchor` is a class of the calling test bundle.
    public static func folder(anchor: AnyClass) -> URL {
        let bundle = Bundle(for: anchor).bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    /// Runs `tool` with `arguments` and `NEURITE_THREADS` set to `threads`, in `environment`
    /// (default: this process's), and returns its status and output. Its standard output and
    /// error go to files, not pipes, so a chatty program cannot fill a pipe and block.
    /// - Throws: a Cocoa "no such file" error when the tool was not built.
    public static func run(_ tool: String, _ arguments: [String], environment: [String: String]? = nil,
                           threads: Int = 1, anchor: AnyClass) throws -> ProductRun {
        let path = folder(anchor: anchor).appendingPathComponent(tool).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
        try Data().write(to: outURL)
        try Data().write(to: errURL)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var base = environment ?? ProcessInfo.processInfo.environment
        base["NEURITE_THREADS"] = String(threads)
        process.environment = base
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return ProductRun(status: process.terminationStatus,
                          output: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                          errors: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}
