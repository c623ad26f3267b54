import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A directory of image files, one sub-folder per class, as a labelled data set: Keras'
/// `image_dataset_from_directory` with `labels="inferred"`.
///
/// ```
/// flowers/                     let data = try ImageFolder(directory: "flowers", imageSize: (180, 180))
///   daisy/  a.jpg  b.png ...   data.classNames   // ["daisy", "tulip"]: label 0 is daisy
///   tulip/  c.jpeg ...         let (train, validation) = data.split(validationFraction: 0.2, seed: 42)
///                              let loader = DataLoader(train, batchSize: 32, seed: 1)
/// ```
///
/// **What is a class, what is a sample.** Every visible sub-folder of `directory` is a class,
/// even an empty one (its label then has no samples), and files directly in `directory` are
/// ignored. Class names are sorted byte-wise by their UTF-8 bytes, which is Unicode code-point
/// order and therefore the order of Python's `sorted()` that Keras uses: `"B" < "a"`,
/// `"10" < "9"`. Label `i` is `classNames[i]`. Inside a class folder, sub-folders are searched
/// too, and every file whose name ends in `.png`, `.jpg` or `.jpeg` (any letter case) is a
/// sample; other files (`.txt`, `.csv`, `.gif`, no extension...) are ignored. The extension
/// only selects files: the decoder recognises PNG and JPEG by their first bytes, so a PNG
/// named `x.jpg` decodes. Samples are ordered by label, then by path inside their class folder,
/// byte-wise.
///
/// **Hidden entries.** A file or folder whose name starts with `.` (`.DS_Store`,
/// `.ipynb_checkpoints`, `._photo.jpg`) is never a class and never a sample, at any depth.
///
/// **Symbolic links** are followed, to files and to folders alike, so a data set assembled
/// from links works. A link to a folder that is already being searched (one of its own
/// ancestors, `directory` included) is skipped, so a cycle cannot loop forever; a broken link with an image
/// extension is an unreadable file (see below).
///
/// **The scan checks every file's header.** Making an `ImageFolder` reads each image file
/// once, in parallel on `ThreadPool.shared`, and parses its PNG or JPEG header
/// (``ImageDecoder/info(ofFileAt:)``), so that a file that is not an image, a truncated header
/// or an image beyond `limits` is found before training, and ``count`` is right. The cost is
/// one read of the whole data set (no pixel is decoded). Damage past the header (a JPEG cut
/// off mid-scan) is found only when the file is decoded, by ``sample(at:)``, which then throws.
///
/// **Unreadable files** are handled by `onUnreadable`: ``UnreadablePolicy/error`` (the
/// default) throws the first one's ``DatasetError``, which names its path;
/// ``UnreadablePolicy/skip`` leaves them out and lists each, with its reason, in ``skipped``.
///
/// **Lazy decoding.** Only paths and labels are kept. ``sample(at:)`` decodes one file and
/// prepares it: `channels` 1 (gray, ITU-R BT.601 luma) or 3 (RGB), values `k / 255` in `0...1`,
/// then resized to ``imageSize`` (``ResizeMethod/bilinear`` by default, as Keras). ``load()``
/// decodes everything into a ``TensorDataset`` instead. The value is immutable and `Sendable`,
/// so a ``DataLoader`` may read it from its prefetch thread.
public struct ImageFolder: Dataset {
    /// What the scan does with an image file it cannot read.
    public enum UnreadablePolicy: Sendable, Equatable {
        /// Throw the first unreadable file's error (which names the file). The default.
        case error
        /// Leave unreadable files out and list them in ``ImageFolder/skipped``.
        case skip
    }

    /// An image file left out by the ``UnreadablePolicy/skip`` policy, and why.
    public struct SkippedFile: Sendable, Equatable, CustomStringConvertible {
        /// The file's path (as ``ImageFolder/paths`` would hold it).
        public var path: String
        /// What was wrong with it.
        public var reason: DatasetError

        /// Records that `path` was skipped because of `reason`.
        public init(path: String, reason: DatasetError) {
            self.path = path
            self.reason = reason
        }

        /// `"<path>: <reason's message>"`.
        public var description: String { "\(path): \(reason.message)" }
    }

    /// The folder that was scanned, as given (without a trailing `/`).
    public let directory: String
    /// The class names, sorted byte-wise; label `i` is `classNames[i]`. Kept so that a model
    /// trained on this data can report names rather than numbers.
    public let classNames: [String]
    /// The path of each sample (`directory/<class>/<relative path>`), ordered by label, then by
    /// path within the class.
    public let paths: [String]
    /// The label of each sample: `labels[i]` is the class of `paths[i]`, in `0..<classNames.count`.
    public let labels: [Int]
    /// The height and width every sample is resized to.
    public let imageSize: (height: Int, width: Int)
    /// The channels of every sample: 1 (gray) or 3 (RGB).
    public let channels: Int
    /// How samples are resized to ``imageSize``.
    public let resizeMethod: ResizeMethod
    /// The image files the scan left out under the ``UnreadablePolicy/skip`` policy, in path
    /// order, each with its reason; always empty under ``UnreadablePolicy/error``. The halves of
    /// a ``split(validationFraction:seed:)`` keep the whole scan's list.
    public let skipped: [SkippedFile]
    /// The decoder's bounds, applied at the scan and at every decode.
    public let limits: ImageLimits

    /// Scans `directory` (see ``ImageFolder`` for the rules) and checks every image's header.
    ///
    /// - Parameters:
    ///   - directory: the folder holding one sub-folder per class.
    ///   - imageSize: the `(height, width)` every sample is resized to; Keras' default is
    ///     `(256, 256)`. `nil` keeps the files' own size, which must then be the same for all
    ///     of them (checked by the scan).
    ///   - channels: 1 (gray) or 3 (RGB, the default, as Keras' `color_mode="rgb"`); `nil`
    ///     chooses 1 when every file is stored gray, 3 otherwise.
    ///   - resizeMethod: how to resize, ``ResizeMethod/bilinear`` by default.
    ///   - onUnreadable: ``UnreadablePolicy/error`` (default) or ``UnreadablePolicy/skip``.
    ///   - limits: bounds on file size and image dimensions.
    /// - Throws: ``DatasetError``: `.notFound` when `directory` does not exist;
    ///   `.invalidArgument` when it is not a folder, holds no class folder, or its class folders
    ///   hold no readable image, when `channels` or `imageSize` is out of range, or when
    ///   `imageSize` is `nil` and the images differ in size (naming two of them); `.io` when
    ///   `directory` cannot be listed; under ``UnreadablePolicy/error``, the first unreadable
    ///   file's error (`.corrupt`, `.unsupported`, `.tooLarge`, `.io`, `.notFound`), whose
    ///   `path` is that file.
    public init(directory: String, imageSize: (height: Int, width: Int)? = (256, 256), channels: Int? = 3,
                resizeMethod: ResizeMethod = .bilinear, onUnreadable: UnreadablePolicy = .error,
                limits: ImageLimits = .default) throws {
        var root = directory
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        if let channels, channels != 1 && channels != 3 {
            throw DatasetError(.invalidArgument, path: root, "an image folder gives 1 or 3 channels, not \(channels)")
        }
        if let imageSize, imageSize.height < 1 || imageSize.width < 1 {
            throw DatasetError(.invalidArgument, path: root,
                               "image size must be positive, got \(imageSize.height)x\(imageSize.width)")
        }
        let scan = try FolderScan(root: root, policy: onUnreadable)
        let checked = try scan.checkHeaders(limits: limits)

        if checked.paths.isEmpty {
            var message = "no readable PNG or JPEG image in the \(scan.classNames.count) class folder"
                + (scan.classNames.count == 1 ? "" : "s") + " (\(quotedList(scan.classNames)))"
            if let first = checked.skipped.first {
                message += "; \(checked.skipped.count) image file(s) were skipped, the first: \(first)"
            }
            throw DatasetError(.invalidArgument, path: root, message)
        }
        let size: (height: Int, width: Int)
        if let imageSize {
            size = imageSize
        } else {
            let first = checked.infos[0]
            for (i, info) in checked.infos.enumerated() where info.height != first.height || info.width != first.width {
                throw DatasetError(.invalidArgument, path: root,
                                   "images differ in size, so they cannot be batched without an imageSize: "
                                   + "\(checked.paths[0]) is \(first.height)x\(first.width) (height x width) but "
                                   + "\(checked.paths[i]) is \(info.height)x\(info.width)")
            }
            size = (first.height, first.width)
        }
        self.directory = root
        self.classNames = scan.classNames
        self.paths = checked.paths
        self.labels = checked.labels
        self.imageSize = size
        self.channels = channels ?? (checked.infos.allSatisfy { $0.channels == 1 } ? 1 : 3)
        self.resizeMethod = resizeMethod
        self.skipped = checked.skipped
        self.limits = limits
    }

    /// A copy holding only the samples at `positions` (for ``split(validationFraction:seed:)``).
    private init(_ base: ImageFolder, positions: [Int]) {
        directory = base.directory
        classNames = base.classNames
        paths = positions.map { base.paths[$0] }
        labels = positions.map { base.labels[$0] }
        imageSize = base.imageSize
        channels = base.channels
        resizeMethod = base.resizeMethod
        skipped = base.skipped
        limits = base.limits
    }

    /// The number of samples (image files that passed the scan).
    public var count: Int { paths.count }

    /// The shape of every sample: `[imageSize.height, imageSize.width, channels]`.
    public var sampleShape: [Int] { [imageSize.height, imageSize.width, channels] }

    /// Decodes sample `index`: `x` is `[H, W, C]` (``sampleShape``), Float32 in `0...1`; `y` its label.
    ///
    /// Reads and decodes one file, then resizes it when its size differs from ``imageSize``
    /// (about `H * W * C` multiply-adds per resized axis beyond the decode itself).
    ///
    /// - Precondition: `0 <= index < count`.
    /// - Throws: ``DatasetError`` naming the file when it cannot be read or decoded (it may have
    ///   changed since the scan, or be damaged past its header).
    public func sample(at index: Int) throws -> (x: Tensor, y: Int) {
        neuritePrecondition(index >= 0 && index < count, "ImageFolder: sample index \(index) is out of range for \(count) samples")
        var image = try ImageDecoder.decode(fileAt: paths[index], channels: channels, scaled: true, limits: limits)
        if image.shape[0] != imageSize.height || image.shape[1] != imageSize.width {
            image = image.resized(to: imageSize, method: resizeMethod)
        }
        return (image, labels[index])
    }

    /// The samples at `indices`, decoded in parallel on `ThreadPool.shared` straight into one
    /// `[B, H, W, C]` tensor, and their labels. An empty `indices` gives `x` of shape `[0, H, W, C]`.
    ///
    /// - Precondition: every index is in `0..<count`.
    /// - Throws: the error of the first index (in `indices` order) whose file fails to decode.
    public func batch(at indices: [Int]) throws -> (x: Tensor, y: [Int]) {
        for i in indices {
            neuritePrecondition(i >= 0 && i < count, "ImageFolder: sample index \(i) is out of range for \(count) samples")
        }
        let shape = sampleShape
        let stride = shape.reduce(1, *)
        let failures = UnsafeMutableBufferPointer<(any Error)?>.allocate(capacity: Swift.max(indices.count, 1))
        failures.initialize(repeating: nil)
        defer {
            _ = failures.deinitialize()
            failures.deallocate()
        }
        let x = Tensor(shape: [indices.count] + shape) { out in
            ThreadPool.shared.parallelFor(indices.count) { row, _ in
                let slot = UnsafeMutableBufferPointer(rebasing: out[(row * stride)..<((row + 1) * stride)])
                do {
                    let image = try sample(at: indices[row]).x
                    image.withUnsafeBufferPointer { values in _ = slot.initialize(fromContentsOf: values) }
                } catch {
                    slot.initialize(repeating: 0)
                    failures[row] = error
                }
            }
        }
        if let failure = failures.lazy.compactMap({ $0 }).first { throw failure }
        return (x, indices.map { labels[$0] })
    }

    /// Decodes every sample into memory: `x` is `[N, H, W, C]`, `y` the `N` labels, in this
    /// data set's order.
    ///
    /// Costs one decode per file (in parallel) and `N * H * W * C * 4` bytes; afterwards
    /// batches are gathered from memory without touching the files.
    ///
    /// - Throws: the first file's error, as ``batch(at:)``.
    public func load() throws -> TensorDataset {
        let all = try batch(at: Array(0..<count))
        return TensorDataset(x: all.x, y: all.y)
    }

    /// Splits the samples into training and validation folders with the same class proportions.
    ///
    /// The split is made on the scan's fixed order, before any shuffling, by
    /// ``stratifiedSplit(labels:fraction:seed:)``: each class gives `floor` or `ceil` of
    /// `validationFraction` of its files to validation, chosen with `SeededGenerator(seed:)`, so
    /// the same folder and seed always give the same split. The two halves are disjoint, hold
    /// every sample once between them, keep this folder's order, ``classNames`` and options, and
    /// stay lazy. Shuffle for training in the ``DataLoader``.
    ///
    /// - Precondition: `0 <= validationFraction <= 1`.
    public func split(validationFraction: Double, seed: UInt64) -> (train: ImageFolder, validation: ImageFolder) {
        neuritePrecondition(validationFraction >= 0 && validationFraction <= 1,
                     "ImageFolder.split needs a validation fraction in 0...1, got \(validationFraction)")
        let halves = stratifiedSplit(labels: labels, fraction: validationFraction, seed: seed)
        return (ImageFolder(self, positions: halves.train), ImageFolder(self, positions: halves.validation))
    }
}

// MARK: - Scanning

/// Whether `a` sorts before `b` by their UTF-8 bytes (code-point order, as Python's `sorted`).
private func byteWiseLess(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}

/// `"a", "b", "c"`, or the first few and a count.
private func quotedList(_ names: [String]) -> String {
    let shown = names.prefix(5).map { "\"\($0)\"" }.joined(separator: ", ")
    return names.count > 5 ? shown + ", ... (\(names.count) in all)" : shown
}

/// Whether a file name ends in `.png`, `.jpg` or `.jpeg`, in any letter case.
private func hasImageExtension(_ name: String) -> Bool {
    guard let dot = name.lastIndex(of: ".") else { return false }
    switch name[name.index(after: dot)...].lowercased() {
    case "png", "jpg", "jpeg": return true
    default: return false
    }
}

/// What `stat` (which follows links) says about a path.
private struct FileStatus {
    enum Kind { case directory, regular, other }
    var kind: Kind
    var device: UInt64
    var inode: UInt64
    var size: Int

    /// The status of `path`, or the `errno` of the failed `stat`.
    static func of(_ path: String) -> Result<FileStatus, SystemErrno> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failure(SystemErrno(code: errno)) }
        let kind: Kind
        switch info.st_mode & S_IFMT {
        case S_IFDIR: kind = .directory
        case S_IFREG: kind = .regular
        default: kind = .other
        }
        return .success(FileStatus(kind: kind, device: UInt64(info.st_dev), inode: UInt64(info.st_ino),
                                   size: Int(info.st_size)))
    }
}

/// An `errno` value, as an error.
private struct SystemErrno: Error {
    var code: Int32
    var text: String { String(cString: strerror(code)) }
}

/// The entries of a folder (without `.` and `..`), in no particular order. `valid` is false for
/// a name that is not valid UTF-8; its `name` is then decoded lossily, good for messages only.
private func listDirectory(_ path: String) -> Result<[(name: String, valid: Bool)], SystemErrno> {
    guard let handle = opendir(path) else { return .failure(SystemErrno(code: errno)) }
    defer { closedir(handle) }
    var names: [(name: String, valid: Bool)] = []
    while true {
        errno = 0
        guard let entry = readdir(handle) else {
            if errno != 0 { return .failure(SystemErrno(code: errno)) }
            break
        }
        let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
        if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
        if let name = String(validating: bytes, as: UTF8.self) {
            names.append((name, true))
        } else {
            names.append((String(decoding: bytes, as: UTF8.self), false))
        }
    }
    return .success(names)
}

/// The result of walking an image folder: class names and candidate files, before any header is read.
private struct FolderScan {
    let root: String
    let policy: ImageFolder.UnreadablePolicy
    private(set) var classNames: [String] = []
    /// Candidate image files: path, label and size, ordered by label then relative path.
    private(set) var files: [(path: String, label: Int, size: Int)] = []
    /// Problems met while walking (unlistable folders, broken links...), under `.skip`.
    private(set) var problems: [ImageFolder.SkippedFile] = []

    /// Lists the class folders of `root` and walks each; under `.error`, throws the first problem.
    init(root: String, policy: ImageFolder.UnreadablePolicy) throws {
        self.root = root
        self.policy = policy
        let rootIdentity: Identity
        switch FileStatus.of(root) {
        case .failure(let e):
            if e.code == ENOENT || e.code == ENOTDIR {
                throw DatasetError(.notFound, path: root, "no such image folder")
            }
            throw DatasetError(.io, path: root, "cannot inspect the image folder: \(e.text)")
        case .success(let status) where status.kind != .directory:
            throw DatasetError(.invalidArgument, path: root,
                               "is not a folder; an image folder holds one sub-folder of images per class")
        case .success(let status):
            rootIdentity = Identity(status)
        }
        let entries: [(name: String, valid: Bool)]
        switch listDirectory(root) {
        case .failure(let e): throw DatasetError(.io, path: root, "cannot list the image folder: \(e.text)")
        case .success(let list): entries = list
        }
        var classes: [(name: String, status: FileStatus)] = []
        for entry in entries where entry.valid && !entry.name.hasPrefix(".") {
            if case .success(let status) = FileStatus.of(root + "/" + entry.name), status.kind == .directory {
                classes.append((entry.name, status))
            }
        }
        guard !classes.isEmpty else {
            let what = entries.isEmpty ? "the folder is empty" : "it holds no visible sub-folder"
            throw DatasetError(.invalidArgument, path: root,
                               "no class folders: \(what); an image folder holds one sub-folder of PNG or JPEG files per class")
        }
        classes.sort { byteWiseLess($0.name, $1.name) }
        classNames = classes.map(\.name)
        for (label, entry) in classes.enumerated() {
            var found: [(relative: String, size: Int)] = []
            try walk(root + "/" + entry.name, relative: "", ancestors: [rootIdentity, Identity(entry.status)], into: &found)
            found.sort { byteWiseLess($0.relative, $1.relative) }
            files += found.map { (root + "/" + entry.name + "/" + $0.relative, label, $0.size) }
        }
        problems.sort { byteWiseLess($0.path, $1.path) }
    }

    /// A folder's identity, to recognise a link back to a folder being searched.
    private struct Identity: Hashable {
        var device: UInt64, inode: UInt64
        init(_ status: FileStatus) { device = status.device; inode = status.inode }
    }

    /// Records a problem with `path`: thrown under `.error`, listed under `.skip`.
    private mutating func report(_ error: DatasetError) throws {
        if policy == .error { throw error }
        problems.append(ImageFolder.SkippedFile(path: error.path ?? root, reason: error))
    }

    /// Adds the image files under `folder` (depth first) to `found`, with paths relative to the class folder.
    private mutating func walk(_ folder: String, relative: String, ancestors: Set<Identity>,
                               into found: inout [(relative: String, size: Int)]) throws {
        let entries: [(name: String, valid: Bool)]
        switch listDirectory(folder) {
        case .failure(let e):
            try report(DatasetError(.io, path: folder, "cannot list the folder: \(e.text)"))
            return
        case .success(let list):
            entries = list
        }
        for entry in entries where !entry.name.hasPrefix(".") {
            let path = folder + "/" + entry.name
            guard entry.valid else {
                // The name cannot be spelled as a Swift string, so the file cannot be opened by it.
                if hasImageExtension(entry.name) {
                    try report(DatasetError(.io, path: path, "the file name is not valid UTF-8"))
                }
                continue
            }
            switch FileStatus.of(path) {
            case .failure(let e):
                if hasImageExtension(entry.name) {
                    let reason = e.code == ENOENT ? "broken symbolic link (or the file vanished)" : "cannot inspect: \(e.text)"
                    try report(DatasetError(e.code == ENOENT ? .notFound : .io, path: path, reason))
                }
            case .success(let status):
                switch status.kind {
                case .directory:
                    let identity = Identity(status)
                    if ancestors.contains(identity) { continue }  // a link back up: a cycle
                    try walk(path, relative: relative + entry.name + "/", ancestors: ancestors.union([identity]), into: &found)
                case .regular where hasImageExtension(entry.name):
                    found.append((relative + entry.name, status.size))
                case .other where hasImageExtension(entry.name):
                    // Opening a FIFO or device could block or read forever, so it is never opened.
                    try report(DatasetError(.io, path: path, "not a regular file"))
                default:
                    break
                }
            }
        }
    }

    /// Reads every candidate's header in parallel and applies the policy.
    func checkHeaders(limits: ImageLimits) throws
        -> (paths: [String], labels: [Int], infos: [ImageInfo], skipped: [ImageFolder.SkippedFile]) {
        let n = files.count
        let results = UnsafeMutableBufferPointer<Result<ImageInfo, DatasetError>?>.allocate(capacity: Swift.max(n, 1))
        results.initialize(repeating: nil)
        defer {
            _ = results.deinitialize()
            results.deallocate()
        }
        let files = self.files
        ThreadPool.shared.parallelFor(n) { i, _ in
            results[i] = Result { try FolderScan.header(of: files[i].path, size: files[i].size, limits: limits) }
                .mapError { $0 as? DatasetError ?? DatasetError(.io, path: files[i].path, "\($0)") }
        }
        var paths: [String] = [], labels: [Int] = [], infos: [ImageInfo] = []
        var skipped = problems
        for i in 0..<n {
            switch results[i]! {
            case .success(let info):
                paths.append(files[i].path)
                labels.append(files[i].label)
                infos.append(info)
            case .failure(let error):
                if policy == .error { throw error }
                skipped.append(ImageFolder.SkippedFile(path: files[i].path, reason: error))
            }
        }
        skipped.sort { byteWiseLess($0.path, $1.path) }
        return (paths, labels, infos, skipped)
    }

    /// The header of one file, held to `limits` (file size first, then dimensions).
    private static func header(of path: String, size: Int, limits: ImageLimits) throws -> ImageInfo {
        if size > limits.maxFileBytes {
            throw DatasetError(.tooLarge, path: path, "file is \(size) bytes, above the limit of \(limits.maxFileBytes)")
        }
        let info = try ImageDecoder.info(ofFileAt: path)
        if info.width > limits.maxWidth || info.height > limits.maxHeight || info.width * info.height > limits.maxPixels {
            throw DatasetError(.tooLarge, path: path,
                               "image is \(info.width)x\(info.height) (width x height), beyond the limits of "
                               + "\(limits.maxWidth)x\(limits.maxHeight) and \(limits.maxPixels) pixels")
        }
        return info
    }
}
