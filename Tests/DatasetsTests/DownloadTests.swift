import Datasets
import Foundation
import XCTest
import _NeuriteTestSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small HTTP/1.1 server on 127.0.0.1 (an ephemeral port), serving files from memory with
/// `Range` support, plus a few ways to misbehave. One connection at a time, `Connection: close`.
/// Its accept loop polls with a timeout and ends on `stop()` or after 60 s at most.
final class LocalHTTPServer: @unchecked Sendable {
    enum Behavior: Sendable {
        case normal
        /// Every response body has one byte changed.
        case wrongBytes
        /// The first response announces the full length but closes after this many body bytes.
        case cutOffFirstResponse(afterBytes: Int)
        /// Answers every request with the whole file and status 200, whatever the Range says.
        case ignoreRange
        /// Answers every request with this status and no body.
        case status(Int)
        /// Reads the request, then says nothing until stopped (at most 10 s).
        case stall
    }

    struct Request: Equatable {
        var path: String
        var range: String?
    }

    let port: UInt16
    var baseURL: String { "http://127.0.0.1:\(port)/" }
    private let listener: Int32
    private let files: [String: [UInt8]]
    private let behavior: Behavior
    private let lock = NSLock()
    private var stopping = false
    private var recorded: [Request] = []
    private var cutDone = false
    private let finished = DispatchSemaphore(value: 0)

    init(files: [String: [UInt8]], behavior: Behavior = .normal) throws {
        self.files = files
        self.behavior = behavior
        #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw unavailable("cannot create a socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian  // 127.0.0.1 only
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            close(fd)
            throw unavailable("cannot listen on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in serve() }
        thread.name = "LocalHTTPServer"
        thread.start()
    }

    /// The requests served so far.
    var requests: [Request] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    private var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    /// Stops the accept loop (waiting for it at most 12 s) and closes the socket.
    func stop() {
        lock.lock()
        let already = stopping
        stopping = true
        lock.unlock()
        if already { return }
        _ = finished.wait(timeout: .now() + 12)
        close(listener)
    }

    deinit { stop() }

    private func serve() {
        let deadline = Date().addingTimeInterval(60)
        while !isStopping && Date() < deadline {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 50) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            #if canImport(Darwin)
            var one: Int32 = 1
            setsockopt(connection, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            handle(connection)
            close(connection)
        }
        finished.signal()
    }

    /// Reads one request head (at most 16 KiB) and answers it.
    private func handle(_ connection: Int32) {
        var head: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while head.count < 16384 {
            let n = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            head += chunk[0..<n]
            if String(decoding: head, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        let text = String(decoding: head, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2 else { return }
        let path = String(parts[1])
        var range: String?
        for line in lines.dropFirst() where line.lowercased().hasPrefix("range:") {
            range = line.dropFirst(6).trimmingCharacters(in: .whitespaces)
        }
        lock.lock()
        recorded.append(Request(path: path, range: range))
        var cutAfter: Int?
        if case .cutOffFirstResponse(let n) = behavior, !cutDone {
            cutDone = true
            cutAfter = n
        }
        lock.unlock()

        if case .status(let code) = behavior {
            send(connection, status: "\(code) Status", headers: [], body: [])
            return
        }
        if case .stall = behavior {
            let until = Date().addingTimeInterval(10)
            while !isStopping && Date() < until { usleep(20_000) }
            return
        }
        guard var body = files[String(path.drop(while: { $0 == "/" }))] else {
            send(connection, status: "404 Not Found", headers: [], body: [])
            return
        }
        if case .wrongBytes = behavior { body[body.count / 2] ^= 0x5A }
        var start = 0
        var honoursRange = true
        if case .ignoreRange = behavior { honoursRange = false }
        if honoursRange, let range, range.hasPrefix("bytes="), range.hasSuffix("-"),
           let from = Int(range.dropFirst(6).dropLast()) {
            guard from < body.count else {
                send(connection, status: "416 Range Not Satisfiable", headers: [("Content-Range", "bytes */\(body.count)")], body: [])
                return
            }
            start = from
        }
        let slice = Array(body[start...])
        var headers = [("Content-Type", "application/octet-stream")]
        let status: String
        if start > 0 {
            status = "206 Partial Content"
            headers.append(("Content-Range", "bytes \(start)-\(body.count - 1)/\(body.count)"))
        } else {
            status = "200 OK"
        }
        send(connection, status: status, headers: headers, body: slice, sendOnly: cutAfter)
    }

    private func send(_ connection: Int32, status: String, headers: [(String, String)], body: [UInt8], sendOnly: Int? = nil) {
        var head = "HTTP/1.1 \(status)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8) + body.prefix(sendOnly ?? body.count)
        var offset = 0
        while offset < bytes.count {
            #if os(Linux)
            let flags = Int32(MSG_NOSIGNAL)
            #else
            let flags: Int32 = 0
            #endif
            let n = bytes.withUnsafeMutableBytes { socketSend(connection, $0.baseAddress! + offset, $0.count - offset, flags) }
            if n <= 0 { return }
            offset += n
        }
        bytes.removeAll()
    }
}

/// `send(2)`, named apart from the server's own `send` method.
private func socketSend(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, _ flags: Int32) -> Int {
    #if canImport(Glibc)
    return Glibc.send(fd, p, n, flags)
    #else
    return Darwin.send(fd, p, n, flags)
    #endif
}

final class DownloadTests: XCTestCase {
    /// 300 KB of deterministic bytes.
    private let payload: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
    private var payloadSHA: String { SHA256.hex(SHA256.hash(payload)) }

    func testDownloadIsVerifiedThenRenamed() throws {
        let server = try LocalHTTPServer(files: ["data.bin": payload])
        defer { server.stop() }
        let dir = TemporaryDirectory()
        let destination = dir.file("sub/folder/data.bin")
        try Download.file(from: server.baseURL + "data.bin", to: destination, sha256: payloadSHA.uppercased(), timeout: 10)
        XCTAssertEqual(readBytes(destination), payload)
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination + ".part"))
        XCTAssertEqual(server.requests, [.init(path: "/data.bin", range: nil)])
        // Already there with the right checksum: no second request.
        try Download.file(from: server.baseURL + "data.bin", to: destination, sha256: payloadSHA, timeout: 10)
        XCTAssertEqual(server.requests.count, 1)
    }

    func testWrongBytesGiveChecksumMismatchAndNoFile() throws {
        let server = try LocalHTTPServer(files: ["data.bin": payload], behavior: .wrongBytes)
        defer { server.stop() }
        let dir = TemporaryDirectory()
        let destination = dir.file("data.bin")
        assertDatasetError(.checksumMismatch, path: destination, [payloadSHA, server.baseURL]) {
            try Download.file(from: server.baseURL + "data.bin", to: destination, sha256: payloadSHA, timeout: 10)
        }
        XCTAssertEqual(dir.contents(), [], "neither the final file nor a .part may remain")
    }

    func testCutOffTransferResumesWithARangeRequest() throws {
        let server = try LocalHTTPServer(files: ["data.bin": payload], behavior: .cutOffFirstResponse(afterBytes: 120_000))
        defer { server.stop() }
        let dir = TemporaryDirectory()
        let destination = dir.file("data.bin")
        let url = server.baseURL + "data.bin"
        assertDatasetError(.network, path: destination, ["resume"]) {
            try Download.file(from: url, to: destination, sha256: payloadSHA, timeout: 10)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination), "no file under the final name")
        let kept = readBytes(destination + ".part")
        XCTAssertGreaterThan(kept.count, 0)
        XCTAssertLessThanOrEqual(kept.count, 120_000)
        XCTAssertEqual(kept, Array(payload.prefix(kept.count)))

        try Download.file(from: url, to: destination, sha256: payloadSHA, timeout: 10)
        XCTAssertEqual(readBytes(destination), payload)
        XCTAssertEqual(dir.contents(), ["data.bin"])
        XCTAssertEqual(server.requests.map(\.range), [nil, "bytes=\(kept.count)-"])
    }

    func testServerIgnoringTheRangeStartsOver() throws {
        let server = try LocalHTTPServer(files: ["data.bin": payload], behavior: .ignoreRange)
        defer { server.stop() }
        let dir = TemporaryDirectory()
        let destination = dir.file("data.bin")
        writeBytes([UInt8](repeating: 0xEE, count: 1000), to: destination + ".part")  // stale, wrong prefix
        try Download.file(from: server.baseURL + "data.bin", to: destination, sha256: payloadSHA, timeout: 10)
        XCTAssertEqual(readBytes(destination), payload)
        XCTAssertEqual(server.requests.map(\.range), ["bytes=1000-"])
        XCTAssertEqual(dir.contents(), ["data.bin"])
    }

    func testCompletePartFileIsVerifiedAfter416() throws {
        let server = try LocalHTTPServer(files: ["data.bin": payload])
        defer { server.stop() }
        let dir = TemporaryDirectory()
        let destination = dir.file("data.bin")
        writeBytes(payload, to: destination + ".part")
        try Download.file(from: server.baseURL + "data.bin", to: destination, sha256: payloadSHA, timeout: 10)
        XCTAssertEqual(readBytes(destination), payload)
        XCTAssertEqual(server.requests.map(\.range), ["bytes=\(payload.count)-"])
    }

    func testHTTPErrorStatusIsANetworkError() throws {
        let server = try LocalHTTPServer(files: [:], behavior: .status(503))
        defer { server.stop() }
        let dir = TemporaryDirectory()
        assertDatasetError(.network, path: dir.file("x"), ["HTTP 503"]) {
            try Download.file(from: server.baseURL + "x", to: dir.file("x"), sha256: payloadSHA, timeout: 10)
        }
        let missing = try LocalHTTPServer(files: [:])
        defer { missing.stop() }
        assertDatasetError(.network, path: dir.file("y"), ["HTTP 404"]) {
            try Download.file(from: missing.baseURL + "y", to: dir.file("y"), sha256: payloadSHA, timeout: 10)
        }
        XCTAssertEqual(dir.contents().filter { !$0.hasSuffix(".part") }, [])
    }

    func testSizeLimit() throws {
        let server = try LocalHTTPServer(files: ["data.bin": payload])
        defer { server.stop() }
        let dir = TemporaryDirectory()
        assertDatasetError(.tooLarge, path: dir.file("data.bin"), ["limit of 100000"]) {
            try Download.file(from: server.baseURL + "data.bin", to: dir.file("data.bin"), sha256: payloadSHA,
                              timeout: 10, maxBytes: 100_000)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("data.bin")))
    }

    func testStalledServerTimesOut() throws {
        let server = try LocalHTTPServer(files: ["data.bin": payload], behavior: .stall)
        defer { server.stop() }
        let dir = TemporaryDirectory()
        let start = Date()
        assertDatasetError(.network, path: dir.file("data.bin")) {
            try Download.file(from: server.baseURL + "data.bin", to: dir.file("data.bin"), sha256: payloadSHA, timeout: 1)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 8, "the timeout must end a stalled transfer")
    }

    func testConnectionRefusedAndBadArguments() throws {
        // A port that was just free: bind one, note it, close it.
        let port: UInt16
        do {
            let probe = try LocalHTTPServer(files: [:])
            port = probe.port
            probe.stop()
        }
        let dir = TemporaryDirectory()
        assertDatasetError(.network, path: dir.file("a")) {
            try Download.file(from: "http://127.0.0.1:\(port)/a", to: dir.file("a"), sha256: payloadSHA, timeout: 5)
        }
        assertDatasetError(.invalidArgument, path: dir.file("a"), ["http"]) {
            try Download.file(from: "ftp://127.0.0.1/a", to: dir.file("a"), sha256: payloadSHA)
        }
        assertDatasetError(.invalidArgument, path: dir.file("a"), ["64 hex digits"]) {
            try Download.file(from: "http://127.0.0.1:1/a", to: dir.file("a"), sha256: "abc")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("a")))
    }

    private func mnistFiles(_ dir: String) -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for split in MNISTSplit.allCases {
            for name in [split.imagesFileName + ".gz", split.labelsFileName + ".gz"] {
                files[name] = readBytes(dir + "/" + name)
            }
        }
        return files
    }

    func testMNISTDownloadFromALocalMirror() throws {
        let server = try LocalHTTPServer(files: mnistFiles(try mnistDirectory()))
        defer { server.stop() }
        let cache = TemporaryDirectory()
        let environment = ["XDG_CACHE_HOME": cache.path]
        let folder = try MNIST.download(from: server.baseURL, timeout: 10, environment: environment)
        XCTAssertEqual(folder, cache.path + "/neurite/mnist")
        XCTAssertEqual(server.requests.count, 4)
        XCTAssertEqual(FileManager.default.fileExists(atPath: folder + "/train-images-idx3-ubyte.gz"), true)
        let test = try MNIST.load(.test, environment: environment)
        XCTAssertEqual(test.directory, folder)
        XCTAssertEqual(Array(test.labels.prefix(5)), [7, 2, 1, 0, 4])
        // Everything is there and verified: no more requests.
        try MNIST.download(to: folder, from: server.baseURL, timeout: 10)
        XCTAssertEqual(server.requests.count, 4)
    }

    func testMNISTDownloadRejectsAFileWithTheWrongContent() throws {
        var files = mnistFiles(try mnistDirectory())
        files["train-labels-idx1-ubyte.gz"] = files["t10k-labels-idx1-ubyte.gz"]
        let server = try LocalHTTPServer(files: files)
        defer { server.stop() }
        let cache = TemporaryDirectory()
        assertDatasetError(.checksumMismatch, path: cache.file("train-labels-idx1-ubyte.gz"), ["3552534a"]) {
            try MNIST.download(to: cache.path, from: server.baseURL, timeout: 10)
        }
        XCTAssertEqual(cache.contents(), ["train-images-idx3-ubyte.gz"])
    }

    func testFashionMNISTDownloadIsCheckedByContent() throws {
        let source = try fashionDirectory()
        var files = mnistFiles(source)
        // A mirror that serves one file uncompressed still passes: the content is what is checked.
        let plain = try IDX.read(contentsOf: source + "/t10k-labels-idx1-ubyte.gz")
        let scratch = TemporaryDirectory()
        try IDX.write(labels: try plain.labels(), to: scratch.file("labels"))
        files["t10k-labels-idx1-ubyte.gz"] = readBytes(scratch.file("labels"))
        let server = try LocalHTTPServer(files: files)
        defer { server.stop() }
        let cache = TemporaryDirectory()
        try FashionMNIST.download(to: cache.path, from: server.baseURL, timeout: 10)
        let test = try FashionMNIST.load(.test, from: cache.path)
        XCTAssertEqual(Array(test.labels.prefix(5)), [9, 2, 1, 1, 6])
    }
}
