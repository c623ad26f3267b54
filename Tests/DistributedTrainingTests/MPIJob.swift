import Foundation
import XCTest

/// Runs `neurite-mpi-check` (built beside this test bundle) under Open MPI's `mpirun`, with the
/// flags this machine needs: `--oversubscribe` (more ranks than cores is fine for correctness
/// runs) and, as root, `--allow-run-as-root`. A job that does not end within `timeout` seconds
/// is killed and reported as a hang.
struct MPIJob {
    struct Outcome {
        var status: Int32
        var output: String
        var seconds: Double
        var timedOut: Bool
    }

    /// The folder that holds the package's built products: this test bundle's folder.
    static var productsDirectory: URL {
        let bundle = Bundle(for: BundleLocator.self).bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    /// `mpirun` from PATH (Debian's openmpi-bin, Homebrew's open-mpi), or nil.
    static var mpirun: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"] {
            let candidate = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func run(ranks: Int, _ arguments: [String], timeout: Double = 120) throws -> Outcome {
        let mpirun = try XCTUnwrap(Self.mpirun, "mpirun not found: install Open MPI (Tools/install-deps.sh)")
        let tool = productsDirectory.appendingPathComponent("neurite-mpi-check").path
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is not built")
        var flags = ["--oversubscribe", "-np", "\(ranks)"]
        if getuid() == 0 { flags.insert("--allow-run-as-root", at: 0) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun)
        process.arguments = flags + [tool] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["NEURITE_THREADS"] = "1"
        // Containers often forbid the cross-memory attach Open MPI's shared-memory transport tries first.
        environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let start = Date()
        try process.run()
        let reader = OutputReader(pipe.fileHandleForReading)
        let deadline = start.addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                process.terminate()
                Thread.sleep(forTimeInterval: 2)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, output: reader.finish(),
                       seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }
}

private final class BundleLocator {}

/// Drains a pipe on a thread of its own, so a chatty job never blocks on a full pipe.
private final class OutputReader: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock()
                data.append(chunk)
                lock.unlock()
            }
            done.signal()
        }
    }

    func finish() -> String {
        _ = done.wait(timeout: .now() + 10)
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
