import ArgumentParser
import Datasets
import Foundation
import TensorCore

/// `neurite-data export`: an IDX data set (images and labels) as a folder of class folders of PNG files.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an IDX data set as class folders of PNG files: OUTPUT/<class>/<index>.png.",
        discussion: """
            Images may be [N, H, W] or [N, H, W, C] with C = 1 or 3, stored as u8 (0...255) or as \
            f32/f64 in 0...1; PNG is lossless, so u8 values come back exactly. <index> is the image's \
            position in the IDX file, zero-padded so that names sort in index order. Without \
            --class-names, label k's folder is k, zero-padded to the width of the largest label, so \
            that the folders sort in label order and `import` gives every image its old label. A \
            folder is made for every class, even one with no image. OUTPUT must be new or empty.
            """
    )

    @Option(help: "The images' IDX file (plain or .gz).")
    var images: String

    @Option(help: "The labels' IDX file (plain or .gz), one integer label per image.")
    var labels: String

    @Option(help: "The folder to create.")
    var output: String

    @Option(help: "Export only the first N images.")
    var limit: Int?

    @Option(name: .customLong("class-names"),
            help: "Comma-separated folder names, by label: the first names label 0.")
    var classNames: String?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit).") }
    }

    func run() throws {
        try reportingFailures(export)
    }

    private func export() throws {
        let imageFile = try IDX.read(contentsOf: images)
        let shape = imageFile.shape
        guard shape.count == 3 || (shape.count == 4 && (shape[3] == 1 || shape[3] == 3)) else {
            throw DatasetError(.invalidArgument, path: images,
                               "images must have dimensions [N, H, W] or [N, H, W, C] with C = 1 or 3, not \(shape)")
        }
        let pixels: Tensor
        switch imageFile.dataType {
        case .uint8:
            pixels = imageFile.tensor(dividedBy: 255)
        case .float32, .float64:
            pixels = imageFile.tensor()
            if let i = pixels.scalars.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
                throw DatasetError(.invalidArgument, path: images,
                                   "floating-point images must hold values in 0...1; element \(i) is \(pixels.scalars[i])")
            }
        default:
            throw DatasetError(.unsupported, path: images,
                               "images must be u8 (0...255) or f32/f64 (0...1), not \(imageFile.dataType)")
        }

        let labelFile = try IDX.read(contentsOf: labels)
        let allLabels = try labelFile.labels()
        guard labelFile.shape.count == 1, allLabels.count == shape[0] else {
            throw DatasetError(.invalidArgument, path: labels,
                               "expected \(shape[0]) labels (dimensions [\(shape[0])]) to match \(images), found dimensions \(labelFile.shape)")
        }
        if let i = allLabels.firstIndex(where: { $0 < 0 }) {
            throw DatasetError(.invalidArgument, path: labels, "label \(i) is \(allLabels[i]); labels must be non-negative")
        }
        let n = min(shape[0], limit ?? shape[0])
        let names = try folderNames(allLabels: allLabels, used: allLabels[..<n])

        try prepareOutputFolder()
        for name in names {
            try FileManager.default.createDirectory(atPath: output + "/" + name, withIntermediateDirectories: true)
        }

        let imageShape = shape.count == 3 ? [shape[1], shape[2]] : Array(shape[1...])
        let digits = String(n - 1).count
        let failures = UnsafeMutableBufferPointer<(any Error)?>.allocate(capacity: n)
        failures.initialize(repeating: nil)
        defer {
            _ = failures.deinitialize()
            failures.deallocate()
        }
        ThreadPool.shared.parallelFor(n) { i, _ in
            let number = String(i)
            let file = String(repeating: "0", count: digits - number.count) + number + ".png"
            do {
                try ImageEncoder.writePNG(pixels.slice(i..<(i + 1)).reshaped(imageShape),
                                          to: output + "/" + names[allLabels[i]] + "/" + file)
            } catch {
                failures[i] = error
            }
        }
        if let failure = failures.lazy.compactMap({ $0 }).first { throw failure }
        print("wrote \(n) image\(n == 1 ? "" : "s") into \(names.count) class folders under \(output)")
    }

    /// The folder name of each label: from --class-names, or zero-padded numbers.
    private func folderNames(allLabels: [Int], used: ArraySlice<Int>) throws -> [String] {
        guard let classNames else {
            let largest = allLabels.max() ?? 0
            let width = String(largest).count
            return (0...largest).map { label in
                let number = String(label)
                return String(repeating: "0", count: width - number.count) + number
            }
        }
        let names = classNames.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        for name in names {
            if name.isEmpty || name.hasPrefix(".") || name.contains("/") || name.contains("\0") {
                throw DatasetError(.invalidArgument,
                                   "--class-names: \"\(name)\" cannot be a folder name (empty, starting with \".\", or holding \"/\")")
            }
        }
        if Set(names).count != names.count {
            throw DatasetError(.invalidArgument, "--class-names: the names \(names) are not all different")
        }
        if let i = used.firstIndex(where: { $0 >= names.count }) {
            throw DatasetError(.invalidArgument, path: labels,
                               "label \(i) is \(allLabels[i]), but --class-names gives only \(names.count) names")
        }
        let sorted = names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        if sorted != names {
            printError("neurite-data: note: the class names are not in byte-wise order, so `import` will number "
                       + "the classes in the order \(sorted.joined(separator: ",")), not by the original labels")
        }
        return names
    }

    /// Creates the output folder, or accepts it when it exists and is empty.
    private func prepareOutputFolder() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw DatasetError(.invalidArgument, path: output, "exists and is not a folder")
            }
            let contents = try FileManager.default.contentsOfDirectory(atPath: output)
            guard contents.isEmpty else {
                throw DatasetError(.invalidArgument, path: output,
                                   "the output folder is not empty (it holds \(contents.count) entries); give a new or empty folder")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            throw DatasetError(.io, path: output, "cannot create the output folder: \(error.localizedDescription)")
        }
    }
}
