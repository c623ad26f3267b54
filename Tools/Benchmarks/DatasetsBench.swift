import Datasets
import Foundation
import TensorCore

/// PNG and JPEG decode timings for the `datasets` suite: per image, from bytes in memory and from
/// the file, to a Float32 tensor `[H, W, C]` in 0...1 (what a data pipeline asks for).
///
/// Images: four small real files from the shared test data (a baseline and a progressive JPEG, an
/// 8-bit RGB and a 16-bit interlaced PNG) and three 1024 x 1024 images made here from a seeded
/// pattern: a PNG written with `ImageEncoder`, and a baseline and a progressive JPEG written by
/// libjpeg-turbo's `cjpeg` (skipped, with a note, when `cjpeg` is not installed). The generated
/// files, and 1 x 1 images for measuring process start-up, are kept in `NEURITE_BENCH_IMAGES`
/// (default `$TMPDIR/neurite-bench-images`), where `Tools/reference/decode_reference.py` times
/// Debian's `djpeg` and `pngtopnm` on the same files.
enum DatasetsBench {
    /// The representative real files, relative to the shared data folder.
    static let realFiles = [
        "jpeg/libjpeg-turbo/testorig.jpg",      // baseline, 4:2:0, 227 x 149
        "jpeg/go/video-001.progressive.jpeg",   // progressive, 150 x 103
        "pngsuite/basn2c08.png",                // 8-bit RGB, 32 x 32
        "pngsuite/basi2c16.png",                // 16-bit RGB, Adam7 interlaced, 32 x 32
    ]

    static func run(minSeconds: Double, dataDirectory: String?) {
        var images: [(name: String, path: String)] = []
        if let shared = sharedDataFolder(near: dataDirectory) {
            images += realFiles.map { ($0, shared + "/" + $0) }
        } else {
            print("datasets decode: shared test data not found (../shared/data); real-file cases skipped")
        }
        images += generatedImages()
        for (name, path) in images {
            guard let bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else {
                print("datasets decode: cannot read \(path); skipped")
                continue
            }
            let op = ImageFormat(sniffing: bytes) == .png ? "png_decode" : "jpeg_decode"
            do {
                let shape = try ImageDecoder.decode(data: bytes).shape
                let fromMemory = try measureThrowing(minSeconds: minSeconds) { _ = try ImageDecoder.decode(data: bytes) }
                let fromFile = try measureThrowing(minSeconds: minSeconds) { _ = try ImageDecoder.decode(fileAt: path) }
                for (source, seconds) in [("memory", fromMemory), ("file", fromFile)] {
                    emit([("bench", "datasets"), ("impl", "neurite"), ("op", op), ("source", source), ("file", name),
                          ("width", shape[1]), ("height", shape[0]), ("channels", shape[2]), ("bytes", bytes.count),
                          ("ms", seconds * 1e3), ("mpix_per_s", Double(shape[0] * shape[1]) / seconds / 1e6)])
                }
            } catch {
                print("datasets decode: \(name): \(error); skipped")
            }
        }
    }

    /// The shared test data: beside the MNIST folder given with `--data`, else `../shared/data`
    /// next to the repository (found from this file's path) or the working directory.
    private static func sharedDataFolder(near mnist: String?) -> String? {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var candidates = [repository.appendingPathComponent("../shared/data").standardized.path,
                          FileManager.default.currentDirectoryPath + "/../shared/data"]
        if let mnist { candidates.insert(URL(fileURLWithPath: mnist).appendingPathComponent("..").standardized.path, at: 0) }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/" + realFiles[0]) }
    }

    /// Where generated images go (and where the reference script finds them).
    static var generatedFolder: String {
        if let folder = ProcessInfo.processInfo.environment["NEURITE_BENCH_IMAGES"], !folder.isEmpty { return folder }
        var temporary = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        while temporary.count > 1 && temporary.hasSuffix("/") { temporary.removeLast() }
        return temporary + "/neurite-bench-images"
    }

    /// Writes the 1024 x 1024 images (and the 1 x 1 start-up probes) and returns those to time.
    private static func generatedImages() -> [(name: String, path: String)] {
        let folder = generatedFolder
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let pattern = seededPattern(width: 1024, height: 1024)
            try ImageEncoder.writePNG(pattern, to: folder + "/large-rgb-1024.png")
            try ImageEncoder.writePNG(Tensor(shape: [1, 1, 3], repeating: 0.5), to: folder + "/tiny-1x1.png")
            var out = [("generated/large-rgb-1024.png", folder + "/large-rgb-1024.png")]
            guard let cjpeg = executable("cjpeg") else {
                print("datasets decode: cjpeg not found (apt-get install libjpeg-turbo-progs); generated JPEG cases skipped")
                return out
            }
            try writePPM(pattern, to: folder + "/large-rgb-1024.ppm")
            try writePPM(Tensor(shape: [1, 1, 3], repeating: 0.5), to: folder + "/tiny-1x1.ppm")
            for (name, extra) in [("large-baseline-1024.jpg", [String]()), ("large-progressive-1024.jpg", ["-progressive"])] {
                try run(cjpeg, ["-quality", "90"] + extra + ["-outfile", folder + "/" + name, folder + "/large-rgb-1024.ppm"])
                out.append(("generated/" + name, folder + "/" + name))
            }
            try run(cjpeg, ["-outfile", folder + "/tiny-1x1.jpg", folder + "/tiny-1x1.ppm"])
            return out
        } catch {
            print("datasets decode: cannot make the generated images in \(folder): \(error); skipped")
            return []
        }
    }

    /// A photo-like RGB image: smooth gradients and waves with a little seeded noise, so that it
    /// compresses about as well as a photograph (neither flat nor random).
    static func seededPattern(width: Int, height: Int) -> Tensor {
        var generator = SeededGenerator(seed: 2024)
        return Tensor(shape: [height, width, 3], unsafeUninitialized: { out in
            for y in 0..<height {
                for x in 0..<width {
                    let u = Float(x) / Float(width), v = Float(y) / Float(height)
                    let wave = 0.5 + 0.25 * Foundation.sin(u * 23 + v * 7) * Foundation.cos(v * 17 - u * 5)
                    let noise = (generator.nextUnitFloat() - 0.5) * 0.06
                    let i = 3 * (y * width + x)
                    out[i] = min(max(0.6 * u + 0.4 * wave + noise, 0), 1)
                    out[i + 1] = min(max(wave + noise, 0), 1)
                    out[i + 2] = min(max(0.7 * (1 - v) + 0.3 * wave + noise, 0), 1)
                }
            }
        })
    }

    /// A binary PPM (P6) of an RGB tensor in 0...1, rounded as `ImageEncoder` rounds, for `cjpeg`.
    private static func writePPM(_ image: Tensor, to path: String) throws {
        let (height, width) = (image.shape[0], image.shape[1])
        var bytes = Array("P6\n\(width) \(height)\n255\n".utf8)
        bytes += image.scalars.map { UInt8((min(max($0, 0), 1) * 255).rounded()) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DatasetError(.io, path: tool, "exited with status \(process.terminationStatus) for \(arguments)")
        }
    }
}
