import Datasets
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The readers under test; printed as their command-line names.
enum FuzzTarget: String, CaseIterable, Sendable, CustomStringConvertible {
    var description: String { rawValue }

    case idx, png, jpeg
    case kerasArchive = "keras-archive"
    case kerasH5 = "keras-h5"

    /// The file extension for saved inputs.
    var fileExtension: String {
        switch self {
        case .idx: return "idx"
        case .png: return "png"
        case .jpeg: return "jpg"
        case .kerasArchive: return "keras"
        case .kerasH5: return "h5"
        }
    }
}

/// What one input did: accepted, rejected with a documented error (both fine), or a finding.
enum Verdict {
    /// Decoded; `signature` names the kind of image or file.
    case accepted(signature: String)
    /// Refused with the documented error; `kind` is the summary's column (a `DatasetError.Kind`'s
    /// raw value: corrupt, unsupported, tooLarge), `signature` its kind and digit-free message.
    case rejected(kind: String, signature: String)
    /// Anything else: another error type, an undocumented error kind, or a wrong result.
    case finding(kind: String, detail: String)

    var signature: String {
        switch self {
        case .accepted(let s), .rejected(_, let s): return s
        case .finding(let kind, let detail): return "finding \(kind) \(detail)"
        }
    }
}

/// Calls the decoders the way a user would, with tight limits, and checks what comes back.
struct Runner {
    /// Tight enough that a hostile header is refused in microseconds, loose enough for every seed.
    let imageLimits = ImageLimits(maxWidth: 4096, maxHeight: 4096, maxPixels: 1 << 21, maxFileBytes: 1 << 20)
    let idxLimits = IDXLimits(maxBytes: 1 << 22)
    /// Where IDX inputs are written: `IDX.read` takes a path (on tmpfs when there is one).
    let idxPath: String

    init() {
        var info = stat()
        let directory = stat("/dev/shm", &info) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : temporaryDirectory()
        idxPath = directory + "/neurite-fuzz-\(getpid()).idx"
    }

    func removeTemporaryFile() { unlink(idxPath) }

    func run(_ target: FuzzTarget, _ bytes: [UInt8], channels: Int?, scaled: Bool) -> Verdict {
        switch target {
        case .idx: return runIDX(bytes)
        case .png, .jpeg: return runImage(bytes, channels: channels, scaled: scaled)
        case .kerasArchive: return runKerasArchive(bytes)
        case .kerasH5: return runKerasH5(bytes)
        }
    }

    // MARK: - Images

    private func runImage(_ bytes: [UInt8], channels: Int?, scaled: Bool) -> Verdict {
        let documented: Set<DatasetError.Kind> = [.corrupt, .unsupported, .tooLarge]
        var info: ImageInfo?
        var infoSignature = "header read"
        do {
            info = try ImageDecoder.info(of: bytes)
        } catch let error as DatasetError {
            guard documented.contains(error.kind) else {
                return .finding(kind: "unexpected_kind", detail: "info(of:) threw .\(error.kind): \(error)")
            }
            // Only the kind: the decode's message names the same damage, and pairs of messages
            // would make every combination a new outcome.
            infoSignature = "header \(error.kind)"
        } catch {
            return .finding(kind: "foreign_error", detail: "info(of:) threw \(type(of: error)): \(error)")
        }
        do {
            let image = try ImageDecoder.decode(data: bytes, channels: channels, scaled: scaled, limits: imageLimits)
            if let problem = check(image, info: info, channels: channels, scaled: scaled) {
                return .finding(kind: "bad_result", detail: problem)
            }
            guard let info else {
                return .finding(kind: "bad_result", detail: "decode succeeded but info(of:) failed (\(infoSignature))")
            }
            return .accepted(signature: "ok \(info.format) c\(info.channels) a\(info.hasAlpha) d\(info.bitDepth)")
        } catch let error as DatasetError {
            guard documented.contains(error.kind) else {
                return .finding(kind: "unexpected_kind", detail: "decode(data:) threw .\(error.kind): \(error)")
            }
            return .rejected(kind: error.kind.rawValue, signature: infoSignature + " / " + signature(of: error))
        } catch {
            return .finding(kind: "foreign_error", detail: "decode(data:) threw \(type(of: error)): \(error)")
        }
    }

    /// A description of what is wrong with a decoded image, or nil when it is consistent.
    private func check(_ image: Tensor, info: ImageInfo?, channels: Int?, scaled: Bool) -> String? {
        let shape = image.shape
        guard shape.count == 3 else { return "decoded shape \(shape) is not [H, W, C]" }
        let (h, w, c) = (shape[0], shape[1], shape[2])
        guard h >= 1, w >= 1, h <= imageLimits.maxHeight, w <= imageLimits.maxWidth, h * w <= imageLimits.maxPixels else {
            return "decoded shape \(shape) is empty or beyond the limits \(imageLimits)"
        }
        if let info {
            guard info.width == w, info.height == h else { return "decoded shape \(shape) but info says \(info.width) x \(info.height)" }
            guard c == (channels ?? info.channels) else {
                return "decoded \(c) channels for a request of \(String(describing: channels)) (info: \(info.channels))"
            }
        }
        guard [1, 3, 4].contains(c) else { return "decoded \(c) channels" }
        let top: Float = scaled ? 1 : 255
        let bad = image.withUnsafeBufferPointer { values in values.firstIndex { !($0 >= 0 && $0 <= top) } }
        if let bad { return "value \(image.scalars[bad]) at flat index \(bad) is outside 0...\(top)" }
        return nil
    }

    // MARK: - IDX

    private func runIDX(_ bytes: [UInt8]) -> Verdict {
        guard writeFile(bytes, to: idxPath) else {
            return .finding(kind: "harness", detail: "cannot write \(idxPath): \(String(cString: strerror(errno)))")
        }
        do {
            let file = try IDX.read(contentsOf: idxPath, limits: idxLimits)
            if let problem = try check(file) { return .finding(kind: "bad_result", detail: problem) }
            return .accepted(signature: "ok \(file.dataType) rank \(file.shape.count)")
        } catch let error as DatasetError {
            guard error.kind == .corrupt || error.kind == .tooLarge else {
                return .finding(kind: "unexpected_kind", detail: "IDX.read threw .\(error.kind): \(error)")
            }
            guard error.path == idxPath else {
                return .finding(kind: "bad_result", detail: "error names \(String(describing: error.path)), not the file read")
            }
            return .rejected(kind: error.kind.rawValue, signature: signature(of: error))
        } catch {
            return .finding(kind: "foreign_error", detail: "IDX.read or an accessor threw \(type(of: error)): \(error)")
        }
    }

    /// Checks a parsed file and every accessor on it; throws what an accessor throws.
    private func check(_ file: IDXFile) throws -> String? {
        let shape = file.shape
        guard (1...255).contains(shape.count), shape.allSatisfy({ $0 > 0 }) else { return "shape \(shape) is not a valid IDX shape" }
        var product = 1
        for d in shape {
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow else { return "shape \(shape) overflows, yet was accepted" }
            product = p
        }
        guard product == file.count else { return "count \(file.count) is not the product of \(shape)" }
        guard 4 + 4 * shape.count + product * file.dataType.byteWidth <= idxLimits.maxBytes else {
            return "accepted \(product) elements of \(file.dataType), beyond the limit of \(idxLimits.maxBytes) bytes"
        }
        let tensor = file.tensor()
        guard tensor.shape == shape else { return "tensor() has shape \(tensor.shape), file has \(shape)" }
        if file.dataType == .uint8 {
            let unit = file.tensor(dividedBy: 255)
            let bad = unit.withUnsafeBufferPointer { v in v.firstIndex { !($0 >= 0 && $0 <= 1) } }
            if let bad { return "u8 value / 255 at \(bad) is \(unit.scalars[bad])" }
        }
        if file.dataType.isInteger {
            let labels = try file.labels()
            guard labels.count == product else { return "labels() gave \(labels.count) values for \(product) elements" }
        } else {
            do {
                _ = try file.labels()
                return "labels() accepted \(file.dataType) elements"
            } catch let error as DatasetError where error.kind == .invalidArgument {}
        }
        if product <= 1 << 16 {
            let values = file.doubleValues()
            guard values.count == product else { return "doubleValues() gave \(values.count) values for \(product) elements" }
        }
        return nil
    }

    private func signature(of error: DatasetError) -> String {
        "\(error.kind): " + digitFree(error.message)
    }
}

/// The message with every word that holds a digit, and every two-letter hex byte, replaced by
/// `#`, cut to 160 characters: messages that differ only in numbers count as one outcome.
func digitFree(_ text: String) -> String {
    text.prefix(160).split(separator: " ", omittingEmptySubsequences: false).map { word -> Substring in
        let isHexByte = word.count == 2 && word.allSatisfy(\.isHexDigit)
        return isHexByte || word.contains(where: \.isNumber) ? "#" : word
    }.joined(separator: " ")
}

/// Writes `bytes` over the file at `path` (not atomically: the file is the harness's own).
func writeFile(_ bytes: [UInt8], to path: String) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return bytes.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            done += n
        }
        return true
    }
}

func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { return out }
        out += chunk[0..<n]
    }
}

/// `$TMPDIR`, or /tmp.
func temporaryDirectory() -> String {
    var dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
    return dir.isEmpty ? "/tmp" : dir
}
