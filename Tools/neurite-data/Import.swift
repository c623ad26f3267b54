import ArgumentParser
import Datasets
import Foundation
import TensorCore

/// `neurite-data import`: a folder of class folders (read through `ImageFolder`) as IDX images and labels.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read a folder of class folders of PNG/JPEG files and write IDX images and labels.",
        discussion: """
            Classes are the visible sub-folders of DIRECTORY, sorted byte-wise; label k is the k-th. \
            Images are written as u8, [N, H, W] for 1 channel (as MNIST) or [N, H, W, 3], each value \
            round(255 * v) of the decoded (and resized) image; labels as u8 (i32 beyond 256 classes). \
            A path ending in .gz is gzip-compressed. Without --size every image must have the same size.
            """
    )

    @Argument(help: "The folder holding one sub-folder of images per class.")
    var directory: String

    @Option(help: "The IDX file to write the images to (.gz to compress).")
    var images: String

    @Option(help: "The IDX file to write the labels to (.gz to compress).")
    var labels: String

    @Option(help: "Resize every image to HxW (height x width), e.g. 28x28.")
    var size: String?

    @Option(help: "1 (gray) or 3 (RGB); by default 1 when every image is gray, else 3.")
    var channels: Int?

    @Flag(name: .customLong("skip-unreadable"), help: "Leave out unreadable image files (each is listed) instead of failing.")
    var skipUnreadable = false

    func validate() throws {
        if let size, parseSize(size) == nil {
            throw ValidationError("--size must be HxW with positive integers up to 32768, e.g. 28x28; got \"\(size)\".")
        }
        if let channels, channels != 1 && channels != 3 {
            throw ValidationError("--channels must be 1 or 3, got \(channels).")
        }
    }

    func run() throws {
        try reportingFailures(importFolder)
    }

    private func importFolder() throws {
        let folder = try ImageFolder(directory: directory, imageSize: size.flatMap(parseSize), channels: channels,
                                     onUnreadable: skipUnreadable ? .skip : .error)
        for skipped in folder.skipped {
            printError("neurite-data: skipped \(skipped)")
        }
        let data = try folder.load()
        let n = data.count, h = folder.imageSize.height, w = folder.imageSize.width, c = folder.channels
        let bytes = data.x.withUnsafeBufferPointer { values in
            Tensor(shape: c == 1 ? [n, h, w] : [n, h, w, c]) { out in
                for i in 0..<values.count { out[i] = (Swift.min(Swift.max(values[i], 0), 1) * 255).rounded() }
            }
        }
        try IDX.write(bytes, as: .uint8, to: images, gzip: wantsGzip(images))
        try IDX.write(labels: data.y, as: folder.classNames.count <= 256 ? .uint8 : .int32, to: labels,
                      gzip: wantsGzip(labels))
        let classes = folder.classNames.enumerated().map { "\($0.offset)=\($0.element)" }.joined(separator: " ")
        print("read \(n) image\(n == 1 ? "" : "s") of \(folder.classNames.count) classes (\(classes)) from \(folder.directory)")
        print("wrote \(images) \(bytes.shape) and \(labels) [\(n)]"
              + (folder.skipped.isEmpty ? "" : "; skipped \(folder.skipped.count) unreadable file(s)"))
    }
}
