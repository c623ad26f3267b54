import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Verified, resumable downloads of data files.
///
/// A download goes to `<destination>.part`, is checked by SHA-256, and only then renamed to
/// `<destination>`, so the final name never holds a partial or unverified file. When a
/// transfer breaks off, the `.part` file stays; the next call asks the server for the rest
/// with an HTTP `Range` request and appends it (or starts over if the server ignores the
/// range). A checksum mismatch deletes the `.part` file, so the next call starts afresh.
///
/// Transfers use Foundation's `URLSession` (FoundationNetworking on Linux) for `http` and
/// `https`, with a timeout on stalled transfers and a cap on the size.
public enum Download {
    /// Downloads `url` to `destination`, verified against `sha256` (the file's SHA-256 as 64
    /// hex digits), resuming from `destination + ".part"` when one is left from a broken
    /// transfer. Does nothing when `destination` already exists with the right checksum.
    ///
    /// - Parameters:
    ///   - url: an `http://` or `https://` URL.
    ///   - destination: the final path; its folder is created when missing.
    ///   - sha256: the expected SHA-256 of the file, hex (either case).
    ///   - timeout: seconds without any progress before the transfer is abandoned.
    ///   - maxBytes: the largest file accepted (default 1 GiB).
    /// - Throws: `DatasetError`: `.invalidArgument` for a bad URL or checksum string;
    ///   `.network` for connection errors, HTTP errors, timeouts and transfers cut short
    ///   (the `.part` file is kept for resuming); `.checksumMismatch` (the `.part` file is
    ///   deleted); `.tooLarge` beyond `maxBytes`; `.io` for local file errors.
    public static func file(from url: String, to destination: String, sha256: String,
                            timeout: Double = 60, maxBytes: Int = 1 << 30) throws {
        let hex = sha256.lowercased()
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else {
            throw DatasetError(.invalidArgument, path: destination, "expected SHA-256 must be 64 hex digits, got \"\(sha256)\"")
        }
        try fetch(from: url, to: destination, expected: Expected(fileSHA256: hex, contentSHA256: nil),
                  timeout: timeout, maxBytes: maxBytes)
    }

    /// What a downloaded file must hash to: the file's own SHA-256, or that of its content
    /// after gzip decompression (for data whose mirrors compress it differently). Either
    /// match is enough.
    struct Expected: Sendable {
        var fileSHA256: String?
        var contentSHA256: String?

        /// Throws `.checksumMismatch` unless the file at `path` matches.
        func verify(_ path: String, source: String, reportAs destination: String) throws {
            let fileHash = try SHA256.hexDigest(ofFile: path)
            if fileHash == fileSHA256 { return }
            var contentHash: String?
            if let contentSHA256 {
                let raw = try FileIO.readAll(path, limit: 1 << 30)
                let content = Gzip.hasMagic(raw.bytes) ? try? Gzip.decompress(raw.bytes, path: path, limit: 1 << 30) : raw
                if let content {
                    let hash = SHA256.hexDigest(of: content.bytes)
                    if hash == contentSHA256 { return }
                    contentHash = hash
                }
            }
            var message = "SHA-256 of the data from \(source) is \(fileHash)"
            if let fileSHA256 { message += ", expected \(fileSHA256)" }
            if let contentSHA256 {
                message += "; its decompressed content hashes to \(contentHash ?? "(not valid gzip)"), expected \(contentSHA256)"
            }
            throw DatasetError(.checksumMismatch, path: destination, message)
        }
    }

    /// Fetches `url` into `destination` through `destination.part`; see `file(from:to:sha256:timeout:maxBytes:)`.
    static func fetch(from url: String, to destination: String, expected: Expected, timeout: Double, maxBytes: Int) throws {
        if FileIO.fileSize(destination) != nil,
           (try? expected.verify(destination, source: destination, reportAs: destination)) != nil {
            return
        }
        guard let target = URL(string: url), let scheme = target.scheme?.lowercased(),
              scheme == "http" || scheme == "https", target.host != nil else {
            throw DatasetError(.invalidArgument, path: destination, "cannot download from \"\(url)\": only http:// and https:// URLs are supported")
        }
        try FileIO.makeDirectories(FileIO.directoryPart(destination))
        let part = destination + ".part"
        // A second round only when the server cannot continue the .part file (it resumed at the
        // wrong offset); every round is one request, so this loop is bounded.
        for _ in 0..<2 {
            var offset = FileIO.fileSize(part) ?? 0
            if offset > maxBytes {
                unlink(part)
                offset = 0
            }
            let outcome = try Transfer.run(target, to: part, offset: offset, timeout: timeout, maxBytes: maxBytes,
                                           reportAs: destination)
            if outcome == .restart {
                unlink(part)
                continue
            }
            do {
                try expected.verify(part, source: url, reportAs: destination)
            } catch {
                unlink(part)
                throw error
            }
            guard rename(part, destination) == 0 else {
                throw DatasetError(.io, path: destination, "cannot rename \(part) into place: \(FileIO.errorText())")
            }
            return
        }
        throw DatasetError(.network, path: destination, "the server at \(url) did not resume the transfer where the .part file ends")
    }
}

/// One HTTP GET, streamed into the `.part` file, as a `URLSession` data-task delegate.
///
/// URLSession calls the delegate on its own queue; every field is guarded by `lock`, and the
/// caller waits on `finished`, so the class is safe to share.
private final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    enum Outcome { case complete, restart }

    private let lock = NSLock()
    private let finished = DispatchSemaphore(value: 0)
    private let url: String
    private let partPath: String
    private let destination: String
    private let offset: Int
    private let maxBytes: Int
    private let timeout: Double
    private var fd: Int32 = -1
    /// Bytes the .part file holds.
    private var written = 0
    /// The full size of the file, when the server says.
    private var total: Int?
    private var failure: DatasetError?
    private var outcome = Outcome.complete
    /// Set once the caller stops waiting; later callbacks do nothing.
    private var abandoned = false
    /// Set when this delegate cancelled the task, so its "cancelled" error is not a failure.
    private var cancelledByUs = false

    private init(url: String, partPath: String, destination: String, offset: Int, maxBytes: Int, timeout: Double) {
        self.url = url
        self.partPath = partPath
        self.destination = destination
        self.offset = offset
        self.maxBytes = maxBytes
        self.timeout = timeout
    }

    /// Runs the transfer and waits for it; appends to (or replaces) the .part file.
    static func run(_ url: URL, to part: String, offset: Int, timeout: Double, maxBytes: Int,
                    reportAs destination: String) throws -> Outcome {
        let transfer = Transfer(url: url.absoluteString, partPath: part, destination: destination,
                                offset: offset, maxBytes: maxBytes, timeout: timeout)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = max(timeout, 3600)
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: configuration, delegate: transfer, delegateQueue: nil)
        defer { session.invalidateAndCancel() }
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        if offset > 0 { request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
        let task = session.dataTask(with: request)
        task.resume()
        // URLSession enforces both timeouts itself; this wait only guards against it never answering.
        if transfer.finished.wait(timeout: .now() + configuration.timeoutIntervalForResource + 30) == .timedOut {
            task.cancel()
            transfer.abandon()
            throw DatasetError(.network, path: destination, "download from \(url.absoluteString) did not finish in time")
        }
        return try transfer.result()
    }

    private func abandon() {
        lock.lock()
        defer { lock.unlock() }
        abandoned = true
        closeFile()
    }

    private func result() throws -> Outcome {
        lock.lock()
        defer { lock.unlock() }
        closeFile()
        if let failure { throw failure }
        if outcome == .complete, let total, written != total {
            throw DatasetError(.network, path: destination,
                               "download from \(url) ended after \(written) of \(total) bytes; the .part file is kept, call again to resume")
        }
        return outcome
    }

    private func closeFile() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    private func fail(_ error: DatasetError, _ task: URLSessionTask) {
        if failure == nil { failure = error }
        cancelledByUs = true
        task.cancel()
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        lock.lock()
        let disposition = accept(response, dataTask)
        if disposition == .cancel { cancelledByUs = true }
        lock.unlock()
        completionHandler(disposition)
    }

    /// Decides from the status line and headers how to treat the body.
    private func accept(_ response: URLResponse, _ task: URLSessionTask) -> URLSession.ResponseDisposition {
        guard !abandoned else { return .cancel }
        guard let http = response as? HTTPURLResponse else {
            failure = DatasetError(.network, path: destination, "\(url) did not give an HTTP response")
            return .cancel
        }
        let length = http.expectedContentLength >= 0 ? Int(http.expectedContentLength) : nil
        switch http.statusCode {
        case 206 where offset > 0:
            let range = (http.value(forHTTPHeaderField: "Content-Range") ?? "")
            guard let parsed = Transfer.parseContentRange(range), parsed.start == offset else {
                outcome = .restart  // the server continues somewhere else: start over
                return .cancel
            }
            total = parsed.total ?? length.map { offset + $0 }
            fd = open(partPath, O_WRONLY | O_APPEND | O_CLOEXEC)
            written = offset
        case 200:
            total = length
            fd = open(partPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            written = 0
        case 416 where offset > 0:
            // "Range Not Satisfiable": the .part file already holds everything; verify it.
            return .cancel
        default:
            failure = DatasetError(.network, path: destination, "\(url) answered HTTP \(http.statusCode)")
            return .cancel
        }
        if fd < 0 {
            failure = DatasetError(.io, path: partPath, "cannot open for writing: \(FileIO.errorText())")
            return .cancel
        }
        if let total, total > maxBytes {
            failure = DatasetError(.tooLarge, path: destination, "\(url) is \(total) bytes, over the limit of \(maxBytes)")
            return .cancel
        }
        return .allow
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        defer { lock.unlock() }
        guard !abandoned, failure == nil, fd >= 0 else { return }
        if written + data.count > maxBytes {
            fail(DatasetError(.tooLarge, path: destination, "\(url) sends more than the limit of \(maxBytes) bytes"), dataTask)
            return
        }
        do {
            try data.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: partPath) }
            written += data.count
        } catch let error as DatasetError {
            fail(error, dataTask)
        } catch {
            fail(DatasetError(.io, path: partPath, "\(error)"), dataTask)
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        if let error, failure == nil, !cancelledByUs {
            let reason = (error as? URLError)?.code == .timedOut
                ? "no data arrived for \(timeout) s (timed out)" : error.localizedDescription
            var message = "download from \(url) failed: \(reason)"
            if written > 0 { message += "; \(written) bytes are kept in \(partPath), call again to resume" }
            failure = DatasetError(.network, path: destination, message)
        }
        closeFile()
        lock.unlock()
        finished.signal()
    }

    /// `bytes start-end/total` (total may be `*`).
    static func parseContentRange(_ text: String) -> (start: Int, end: Int, total: Int?)? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = trimmed.dropFirst(6)
        let halves = spec.split(separator: "/", maxSplits: 1)
        guard halves.count == 2 else { return nil }
        let bounds = halves[0].split(separator: "-", maxSplits: 1)
        guard bounds.count == 2, let start = Int(bounds[0]), let end = Int(bounds[1]), start <= end else { return nil }
        return (start, end, halves[1] == "*" ? nil : Int(halves[1]))
    }
}
