import Datasets
import Foundation
import TensorCore

/// The starting inputs of each target: real files from the shared test data, and small IDX files
/// (plain and gzip) written here, since the MNIST image files are too large to mutate quickly.
enum Corpus {
    struct Seed {
        var name: String
        var input: FuzzInput
    }

    /// The files under `folder` (recursively), sorted, so that every run starts the same way.
    private static func files(under folder: String) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return [] }
        var out: [String] = []
        while let relative = walker.nextObject() as? String {
            let path = folder + "/" + relative
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                out.append(path)
            }
        }
        return out.sorted()
    }

    static func seeds(for target: FuzzTarget, root: String) throws -> [Seed] {
        switch target {
        case .png:
            return files(under: root + "/pngsuite").compactMap { path in
                guard path.hasSuffix(".png"), let bytes = readFile(path) else { return nil }
                return Seed(name: path, input: FuzzInput(bytes: bytes))
            }
        case .jpeg:
            return files(under: root + "/jpeg").compactMap { path in
                guard let bytes = readFile(path), ImageFormat(sniffing: bytes) == .jpeg else { return nil }
                return Seed(name: path, input: FuzzInput(bytes: bytes))
            }
        case .idx:
            return try idxSeeds(root: root)
        case .kerasArchive:
            return try KerasSeeds.archives()
        case .kerasH5:
            return try KerasSeeds.weightsFiles()
        }
    }

    /// IDX files of every element type and ranks 1 to 4, plain and gzip (made by `IDX.write`), plus
    /// MNIST's real test-label file with its content known, so that it can be mutated and re-wrapped.
    private static func idxSeeds(root: String) throws -> [Seed] {
        let folder = temporaryDirectory() + "/neurite-fuzz-seeds-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let specs: [(String, IDXDataType, [Int], (Int) -> Double)] = [
            ("u8-images", .uint8, [5, 6, 4], { Double(($0 * 37) % 256) }),
            ("u8-labels", .uint8, [12], { Double($0 % 10) }),
            ("u8-rank4", .uint8, [2, 1, 3, 2], { Double($0) }),
            ("i8", .int8, [3, 3], { Double($0 * 29 % 256 - 128) }),
            ("i16", .int16, [2, 5], { Double($0 * 7919 % 65536 - 32768) }),
            ("i32", .int32, [7], { Double($0 * 1_000_003) - 3e6 }),
            ("f32", .float32, [2, 2, 2], { Double($0) * 0.375 - 1 }),
            ("f64", .float64, [3], { Double($0) / 3 }),
        ]
        var seeds: [Seed] = []
        for (name, type, shape, value) in specs {
            let values = (0..<shape.reduce(1, *)).map(value)
            let plainPath = folder + "/\(name).idx", gzipPath = folder + "/\(name).idx.gz"
            try IDX.write(values, shape: shape, as: type, to: plainPath)
            try IDX.write(values, shape: shape, as: type, to: gzipPath, gzip: true)
            guard let plain = readFile(plainPath), let gz = readFile(gzipPath) else {
                throw DatasetError(.io, path: folder, "cannot read back the seed files")
            }
            seeds.append(Seed(name: name + ".idx", input: FuzzInput(bytes: plain)))
            seeds.append(Seed(name: name + ".idx.gz", input: FuzzInput(bytes: gz, inner: plain)))
        }
        let labelsPath = root + "/mnist/t10k-labels-idx1-ubyte.gz"
        if let gz = readFile(labelsPath) {
            let labels = try IDX.read(contentsOf: labelsPath).labels()
            let plain: [UInt8] = [0, 0, 8, 1] + bigEndian(UInt32(labels.count)) + labels.map { UInt8($0) }
            seeds.append(Seed(name: labelsPath, input: FuzzInput(bytes: gz, inner: plain)))
        }
        return seeds
    }

    /// Checks the harness's own encoders against the library before fuzzing with them: gzip
    /// (stored and fixed-Huffman, with header fields), the run-length "bomb" encoder, and zlib in
    /// a PNG. A mistake there would make every rebuilt input fail for the wrong reason.
    static func selfCheck(runner: Runner, idxSeeds: [Seed]) -> [String] {
        var problems: [String] = []
        var dice = Dice(seed: 7)
        for seed in idxSeeds {
            guard let plain = seed.input.inner else { continue }
            for compressed in [false, true] {
                var header = Wrap.GzipHeader()
                if compressed { header.name = Array("x".utf8); header.extra = dice.bytes(5); header.headerCRC = true }
                let gz = Wrap.gzip(plain, compressed: compressed, header: header)
                if case .accepted = runner.run(.idx, gz, channels: nil, scaled: true) {} else {
                    problems.append("gzip (compressed: \(compressed)) of \(seed.name) is not read back")
                }
            }
        }
        let header: [UInt8] = [0, 0, 8, 1] + bigEndian(100_000)
        let data = header + [UInt8](repeating: 0, count: 100_000)
        let bomb = Wrap.gzip(deflated: Deflate.fixedHuffmanRun(prefix: header, repeating: 0, count: 100_000),
                             crc: CRC32.checksum(data), size: data.count)
        if case .accepted = runner.run(.idx, bomb, channels: nil, scaled: true) {} else {
            problems.append("the run-length deflate encoder's output is not read back")
        }
        // A 3 x 2 gray PNG whose rows use filter types 0 and 1 (Sub).
        for compressed in [false, true] {
            let raw: [UInt8] = [0, 10, 20, 30, 1, 5, 5, 5]
            var png = PNGFile.pngSignature
            for (type, body) in [("IHDR", bigEndian(3) + bigEndian(2) + [8, 0, 0, 0, 0]),
                                 ("IDAT", Wrap.zlib(raw, compressed: compressed)), ("IEND", [])] as [(String, [UInt8])] {
                let typed = Array(type.utf8) + body
                png += bigEndian(UInt32(body.count)) + typed + bigEndian(CRC32.checksum(typed))
            }
            let decoded = try? ImageDecoder.decode(data: png, scaled: false)
            if decoded?.scalars != [10, 20, 30, 5, 10, 15] {
                problems.append("zlib (compressed: \(compressed)) in a PNG is not decoded as written: \(String(describing: decoded?.scalars))")
            }
        }
        return problems
    }
}
