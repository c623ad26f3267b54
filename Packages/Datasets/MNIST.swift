import Foundation
import TensorCore

/// Which half of an MNIST-style data set to load.
public enum MNISTSplit: String, Sendable, CaseIterable {
    /// The 60,000 training examples (files `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`).
    case train
    /// The 10,000 test examples (files `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`).
    case test

    /// The file-name prefix the split uses: `train` or `t10k`.
    public var filePrefix: String { self == .train ? "train" : "t10k" }

    /// The image file's name, without `.gz`.
    public var imagesFileName: String { "\(filePrefix)-images-idx3-ubyte" }

    /// The label file's name, without `.gz`.
    public var labelsFileName: String { "\(filePrefix)-labels-idx1-ubyte" }
}

/// One split of MNIST or Fashion-MNIST: images, labels and class names.
public struct MNISTDataset: Sendable {
    /// The images, `[N, 28, 28, 1]` Float32 (NHWC), in 0...1 unless loaded with `normalized: false`
    /// (then the raw 0...255 values).
    public var images: Tensor
    /// The class of each image, in 0...9.
    public var labels: [Int]
    /// The name of each class, indexed by label.
    public var classNames: [String]
    /// The directory the files were read from.
    public var directory: String

    /// The number of examples.
    public var count: Int { labels.count }
}

/// Where an MNIST-style data set lives, what its files are, and how to check them.
struct MNISTFamily: Sendable {
    /// The name used in messages ("MNIST").
    let name: String
    /// The folder name under `$NEURITE_DATA` and the cache ("mnist").
    let folder: String
    let classNames: [String]
    /// Folders a system package installs the files into.
    let systemDirectories: [String]
    /// Base URLs (ending in "/") to download the `.gz` files from, tried in order.
    let baseURLs: [String]
    /// For each `.gz` file name: the SHA-256 of the file, when pinned.
    let fileSHA256: [String: String]
    /// For each `.gz` file name: the SHA-256 of its decompressed IDX content.
    let contentSHA256: [String: String]

    static let mnist = MNISTFamily(
        name: "MNIST", folder: "mnist", classNames: (0...9).map(String.init), systemDirectories: [],
        baseURLs: [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        fileSHA256: [
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ],
        contentSHA256: [
            "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ])

    // Fashion-MNIST's .gz files differ between distributions (Debian's are recompressed), so
    // downloads are checked against the SHA-256 of the decompressed content, which is the same
    // everywhere. These sums were computed from Debian's `dataset-fashion-mnist`.
    static let fashion = MNISTFamily(
        name: "Fashion-MNIST", folder: "fashion-mnist",
        classNames: ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        systemDirectories: ["/usr/share/datasets/fashion-mnist"],
        baseURLs: ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        fileSHA256: [:],
        contentSHA256: [
            "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ])

    /// The per-user cache folder: `$XDG_CACHE_HOME/neurite/<folder>` or `~/.cache/neurite/<folder>`.
    func cacheDirectory(environment: [String: String]) -> String? {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return xdg + "/neurite/" + folder
        }
        if let home = environment["HOME"], !home.isEmpty {
            return home + "/.cache/neurite/" + folder
        }
        return nil
    }

    /// The folders searched, in order, when no directory is given.
    func searchDirectories(environment: [String: String]) -> [String] {
        var result: [String] = []
        if let root = environment["NEURITE_DATA"], !root.isEmpty {
            result.append(root + "/" + folder)
            result.append(root)
        }
        if let cache = cacheDirectory(environment: environment) { result.append(cache) }
        result += systemDirectories
        return result
    }

    /// The existing file `name` or `name.gz` in `directory` (the uncompressed one first).
    func existingFile(_ name: String, in directory: String) -> String? {
        for candidate in [directory + "/" + name, directory + "/" + name + ".gz"]
        where FileIO.fileSize(candidate) != nil {
            return candidate
        }
        return nil
    }

    func load(_ split: MNISTSplit, directory: String?, normalized: Bool, downloadIfMissing: Bool,
              environment: [String: String], limits: IDXLimits) throws -> MNISTDataset {
        let candidates = directory.map { [$0] } ?? searchDirectories(environment: environment)
        var partial: [String] = []
        for folder in candidates {
            let images = existingFile(split.imagesFileName, in: folder)
            let labels = existingFile(split.labelsFileName, in: folder)
            if let images, let labels {
                return try load(images: images, labels: labels, directory: folder, normalized: normalized, limits: limits)
            }
            if let found = images ?? labels { partial.append(found) }
        }
        if downloadIfMissing {
            let folder = try download(to: directory, baseURL: nil, environment: environment, timeout: 60)
            return try load(split, directory: folder, normalized: normalized, downloadIfMissing: false,
                            environment: environment, limits: limits)
        }
        var message = "\(name) \(split.rawValue) split not found: looked for \(split.imagesFileName)[.gz] and \(split.labelsFileName)[.gz] in "
        message += candidates.isEmpty ? "no folder (no directory given, NEURITE_DATA and HOME unset)" : candidates.joined(separator: ", ")
        if !partial.isEmpty {
            message += "; found only one of the pair: " + partial.joined(separator: ", ")
        }
        message += ". Pass a directory, set NEURITE_DATA, or download the files (\(name == "MNIST" ? "MNIST" : "FashionMNIST").download())."
        throw DatasetError(.notFound, path: directory, message)
    }

    func load(images imagesPath: String, labels labelsPath: String, directory: String, normalized: Bool,
              limits: IDXLimits) throws -> MNISTDataset {
        let images = try IDX.read(contentsOf: imagesPath, limits: limits)
        guard images.dataType == .uint8, images.shape.count == 3, images.shape[1] == 28, images.shape[2] == 28 else {
            throw DatasetError(.corrupt, path: imagesPath,
                               "\(name) images must be u8 of shape [N, 28, 28]; this file holds \(images.dataType) of shape \(images.shape)")
        }
        let labelFile = try IDX.read(contentsOf: labelsPath, limits: limits)
        guard labelFile.dataType == .uint8, labelFile.shape.count == 1 else {
            throw DatasetError(.corrupt, path: labelsPath,
                               "\(name) labels must be u8 of shape [N]; this file holds \(labelFile.dataType) of shape \(labelFile.shape)")
        }
        let n = images.shape[0]
        guard labelFile.count == n else {
            throw DatasetError(.corrupt, path: labelsPath,
                               "holds \(labelFile.count) labels, but \(imagesPath) holds \(n) images")
        }
        let labels = try labelFile.labels()
        if let bad = labels.firstIndex(where: { !(0...9).contains($0) }) {
            throw DatasetError(.corrupt, path: labelsPath,
                               "label \(labels[bad]) at index \(bad) (byte offset \(8 + bad) of the IDX content) is outside 0...9")
        }
        let tensor = images.tensor(dividedBy: normalized ? 255 : nil).reshaped([n, 28, 28, 1])
        return MNISTDataset(images: tensor, labels: labels, classNames: classNames, directory: directory)
    }

    /// Downloads the four `.gz` files into `directory` (default: the cache folder), skipping
    /// those already present with the right checksum, and returns the folder.
    func download(to directory: String?, baseURL: String?, environment: [String: String], timeout: Double) throws -> String {
        guard let folder = directory ?? cacheDirectory(environment: environment) else {
            throw DatasetError(.invalidArgument, "no directory given and neither XDG_CACHE_HOME nor HOME is set")
        }
        try FileIO.makeDirectories(folder)
        let bases = baseURL.map { [$0.hasSuffix("/") ? $0 : $0 + "/"] } ?? baseURLs
        for split in MNISTSplit.allCases {
            for file in [split.imagesFileName + ".gz", split.labelsFileName + ".gz"] {
                let expected = Download.Expected(fileSHA256: fileSHA256[file], contentSHA256: contentSHA256[file])
                var failures: [DatasetError] = []
                var done = false
                for base in bases {
                    do {
                        try Download.fetch(from: base + file, to: folder + "/" + file, expected: expected,
                                           timeout: timeout, maxBytes: 1 << 28)
                        done = true
                        break
                    } catch let error as DatasetError {
                        if error.kind == .io { throw error }
                        failures.append(error)
                    }
                }
                if !done {
                    if failures.count == 1 { throw failures[0] }
                    throw DatasetError(.network, path: folder + "/" + file,
                                       "every source failed: " + failures.map(\.description).joined(separator: "; "))
                }
            }
        }
        return folder
    }
}

/// The MNIST handwritten digits (LeCun, Cortes, Burges): 28x28 grayscale, classes 0...9.
///
/// ```swift
/// let train = try MNIST.load(.train)          // images [60000, 28, 28, 1] in 0...1, labels [60000]
/// let test = try MNIST.load(.test, from: "/data/mnist")
/// ```
///
/// Files are found, in order, in: the directory given (only there, when one is given);
/// `$NEURITE_DATA/mnist`, `$NEURITE_DATA`; the per-user cache `$XDG_CACHE_HOME/neurite/mnist`
/// or `~/.cache/neurite/mnist`. Each file may be plain or gzip-compressed (`.gz`).
public enum MNIST {
    /// The class names: "0" ... "9".
    public static var classNames: [String] { MNISTFamily.mnist.classNames }

    /// Loads one split, checking that image and label counts agree and every label is in 0...9.
    ///
    /// - Parameters:
    ///   - split: `.train` (60,000) or `.test` (10,000).
    ///   - directory: the folder holding the files; nil searches the default places.
    ///   - normalized: scale pixels to 0...1 (`x / 255`); false keeps 0...255.
    ///   - downloadIfMissing: when nothing is found, download into `directory` (or the per-user cache when
    ///     none is given), verified by SHA-256, and load that.
    ///   - environment: the variables to search with (default: the process's).
    ///   - limits: read limits for each file.
    /// - Throws: `DatasetError`: `.notFound` listing every folder searched; `.corrupt` for bad
    ///   files (naming the file); anything `IDX.read` or a download throws.
    public static func load(_ split: MNISTSplit, from directory: String? = nil, normalized: Bool = true,
                            downloadIfMissing: Bool = false,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            limits: IDXLimits = .default) throws -> MNISTDataset {
        try MNISTFamily.mnist.load(split, directory: directory, normalized: normalized, downloadIfMissing: downloadIfMissing,
                                   environment: environment, limits: limits)
    }

    /// The folders searched, in order, when `load` gets no directory.
    public static func searchDirectories(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        MNISTFamily.mnist.searchDirectories(environment: environment)
    }

    /// Downloads the four `.gz` files (train and test) into `directory`, default the per-user
    /// cache, and returns that folder. Files already there with the right SHA-256 are kept;
    /// others are fetched (resuming any `.part` file), verified, then renamed into place.
    ///
    /// - Parameters:
    ///   - directory: where to put the files; nil means the per-user cache.
    ///   - baseURL: a mirror holding the four files; nil tries the canonical mirrors in turn.
    ///   - timeout: seconds without progress before a transfer is abandoned.
    ///   - environment: the variables that locate the per-user cache (default: the process's).
    /// - Throws: `DatasetError` `.network`, `.checksumMismatch`, `.io`.
    @discardableResult
    public static func download(to directory: String? = nil, from baseURL: String? = nil, timeout: Double = 60,
                                environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        try MNISTFamily.mnist.download(to: directory, baseURL: baseURL, environment: environment, timeout: timeout)
    }
}

/// Fashion-MNIST (Zalando Research): 28x28 grayscale images of clothing in 10 classes,
/// a drop-in replacement for MNIST.
///
/// Searched like `MNIST` (with the subfolder `fashion-mnist`), and finally in
/// `/usr/share/datasets/fashion-mnist`, where Debian's `dataset-fashion-mnist` package puts it.
public enum FashionMNIST {
    /// The class names, indexed by label: "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    /// "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot".
    public static var classNames: [String] { MNISTFamily.fashion.classNames }

    /// Loads one split; see `MNIST.load(_:from:normalized:downloadIfMissing:environment:limits:)`.
    public static func load(_ split: MNISTSplit, from directory: String? = nil, normalized: Bool = true,
                            downloadIfMissing: Bool = false,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            limits: IDXLimits = .default) throws -> MNISTDataset {
        try MNISTFamily.fashion.load(split, directory: directory, normalized: normalized, downloadIfMissing: downloadIfMissing,
                                     environment: environment, limits: limits)
    }

    /// The folders searched, in order, when `load` gets no directory.
    public static func searchDirectories(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        MNISTFamily.fashion.searchDirectories(environment: environment)
    }

    /// Downloads the four `.gz` files into `directory` (default: the per-user cache); see
    /// `MNIST.download(to:from:timeout:environment:)`. Files are checked by the SHA-256 of their
    /// decompressed content, since mirrors compress them differently.
    @discardableResult
    public static func download(to directory: String? = nil, from baseURL: String? = nil, timeout: Double = 60,
                                environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        try MNISTFamily.fashion.download(to: directory, baseURL: baseURL, environment: environment, timeout: timeout)
    }
}
