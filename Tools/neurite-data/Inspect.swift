import ArgumentParser
import Datasets
import Foundation

/// `neurite-data inspect FILE...`: what each file holds, or why it is bad.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what each file holds: IDX element type and dimensions, or image format and size.",
        discussion: """
            The format is recognised by the file's first bytes, not its name. Images are decoded in \
            full, so damage past the header is found too. One line per file: good files on standard \
            output, bad ones on standard error. Exits with status 1 when any file is bad.
            """
    )

    @Argument(help: "IDX (plain or .gz), PNG or JPEG files.")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("Give at least one file to inspect.") }
    }

    func run() throws {
        var bad = 0
        for file in files {
            do {
                print("\(file): \(try Inspect.describe(file))")
            } catch let error as DatasetError {
                printError("\(file): error: \(error.message)")
                bad += 1
            } catch {
                printError("\(file): error: \(error)")
                bad += 1
            }
        }
        if bad > 0 {
            printError("neurite-data: \(bad) of \(files.count) file\(files.count == 1 ? "" : "s") could not be read")
            throw ExitCode.failure
        }
    }

    /// One line saying what `path` holds.
    static func describe(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError(.notFound, path: path, "no such file")
        }
        if isDirectory.boolValue { throw DatasetError(.invalidArgument, path: path, "is a folder, not a file") }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let type = attributes?[.type] as? FileAttributeType, type != .typeRegular {
            throw DatasetError(.invalidArgument, path: path, "is not a regular file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DatasetError(.io, path: path, "cannot open the file")
        }
        let head = [UInt8]((try? handle.read(upToCount: 8)) ?? Data())
        try? handle.close()
        if head.isEmpty { throw DatasetError(.corrupt, path: path, "empty file (0 bytes)") }

        if ImageFormat(sniffing: head) != nil {
            let info = try ImageDecoder.info(ofFileAt: path)
            _ = try ImageDecoder.decode(fileAt: path)  // the pixel data, not just the header
            let format = info.format == .png ? "PNG" : "JPEG"
            let colour = info.channels == 1 ? "gray" : "colour"
            return "\(format) image, width \(info.width), height \(info.height), "
                + "\(info.channels) channel\(info.channels == 1 ? "" : "s") (\(colour)\(info.hasAlpha ? " + alpha" : "")), "
                + "\(info.bitDepth)-bit"
        }
        let gzipped = head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B
        let idxMagic = head.count >= 2 && head[0] == 0 && head[1] == 0
        guard gzipped || idxMagic else {
            let bytes = head.prefix(4).map { String(format: "%02X", $0) }.joined(separator: " ")
            throw DatasetError(.unsupported, path: path, "not an IDX, PNG or JPEG file (it starts with \(bytes))")
        }
        let file = try IDX.read(contentsOf: path)
        return "IDX\(gzipped ? " (gzip)" : ""), \(file.dataType) elements, dimensions \(file.shape)"
    }
}
