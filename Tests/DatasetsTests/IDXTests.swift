import _NeuriteTestSupport
import Datasets
import Foundation
import TensorCore
import XCTest

final class IDXTests: XCTestCase {
    /// Values that exercise each type's range, including both extremes.
    private func sampleValues(_ type: IDXDataType, count: Int) -> [Double] {
        let extremes: [Double]
        switch type {
        case .uint8: extremes = [0, 255, 1, 128]
        case .int8: extremes = [-128, 127, 0, -1]
        case .int16: extremes = [-32768, 32767, 0, -300]
        case .int32: extremes = [Double(Int32.min), Double(Int32.max), 16_777_217, -5]
        case .float32: extremes = [-1.5, Double(Float.greatestFiniteMagnitude), Double(Float.leastNonzeroMagnitude), 0.1.nextUp]
        case .float64: extremes = [Double.pi, -1e300, Double.leastNonzeroMagnitude, 0.1]
        }
        return (0..<count).map { i in
            if i < extremes.count {
                return type == .float32 ? Double(Float(extremes[i])) : extremes[i]
            }
            let v = Double((i * 37) % 101) - (type == .uint8 ? 0 : 50)
            return type.isInteger ? v : v / 4
        }
    }

    func testRoundTripEveryTypeAndSeveralRanksPlainAndGzip() throws {
        let dir = TemporaryDirectory()
        let shapes = [[7], [3, 4], [2, 3, 5], [2, 1, 3, 2], [1, 2, 1, 2, 1, 2, 3]]
        for type in IDXDataType.allCases {
            for shape in shapes {
                for gzip in [false, true] {
                    let values = sampleValues(type, count: shape.reduce(1, *))
                    let path = dir.file("\(type.rawValue)-\(shape.count)\(gzip ? ".gz" : "")")
                    try IDX.write(values, shape: shape, as: type, to: path, gzip: gzip)
                    let file = try IDX.read(contentsOf: path)
                    XCTAssertEqual(file.dataType, type, path)
                    XCTAssertEqual(file.shape, shape, path)
                    XCTAssertEqual(file.count, values.count, path)
                    XCTAssertEqual(file.doubleValues(), values, "\(type) \(shape) gzip \(gzip)")
                    XCTAssertEqual(file.tensor().shape, shape)
                    XCTAssertEqual(file.tensor().scalars, values.map { Float($0) }, "\(type) \(shape)")
                    let bytes = readBytes(path)
                    XCTAssertEqual(bytes.starts(with: [0x1F, 0x8B]), gzip, "gzip magic present iff requested")
                    if !gzip {
                        XCTAssertEqual(bytes.count, 4 + 4 * shape.count + values.count * type.byteWidth)
                    }
                }
            }
        }
        XCTAssertFalse(dir.contents().contains { $0.contains(".tmp") }, "no temporary files left: \(dir.contents())")
    }

    func testTensorRoundTripAndByteLayoutFollowTheSpec() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("f32.idx")
        let t = Tensor(shape: [2, 3], scalars: [1, -2, 0.5, 0, 3, 65536])
        try IDX.write(t, as: .float32, to: path)
        // Big-endian header and data, byte for byte: 00 00 0D 02, 2, 3, then 1.0f = 3F800000 ...
        XCTAssertEqual(Array(readBytes(path).prefix(20)),
                       [0, 0, 0x0D, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0x3F, 0x80, 0, 0, 0xC0, 0, 0, 0])
        XCTAssertEqual(try IDX.read(contentsOf: path).tensor(), t)

        let i16 = dir.file("i16.idx")
        try IDX.write(Tensor([-2, 258]), as: .int16, to: i16)
        XCTAssertEqual(readBytes(i16), [0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01, 0x02])
    }

    func testRank255AndRankOne() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("deep.idx.gz")
        var shape = [Int](repeating: 1, count: 255)
        shape[100] = 3
        try IDX.write([4, 5, 6], shape: shape, as: .int8, to: path, gzip: true)
        let file = try IDX.read(contentsOf: path)
        XCTAssertEqual(file.shape, shape)
        XCTAssertEqual(try file.labels(), [4, 5, 6])
    }

    func testDividedBy255MatchesCorrectlyRoundedDivision() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("u8.idx")
        // Large enough to take the parallel path, with every byte value.
        let n = 700_000
        let values = (0..<n).map { Double(($0 * 7) % 256) }
        try IDX.write(values, shape: [n], as: .uint8, to: path)
        let file = try IDX.read(contentsOf: path)
        let x = file.tensor(dividedBy: 255).scalars
        for i in stride(from: 0, to: n, by: 997) {
            XCTAssertEqual(x[i], Float(values[i]) / 255, "element \(i)")
        }
        XCTAssertEqual(x.max(), 1)
        XCTAssertEqual(x.min(), 0)
        XCTAssertEqual(file.tensor().scalars[n - 1], Float(values[n - 1]))
        XCTAssertEqual(x.count, n)
    }

    func testLabelsRejectFloatFiles() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("f.idx")
        try IDX.write(Tensor([1, 2]), as: .float32, to: path)
        assertDatasetError(.invalidArgument, path: path, ["integer"]) { try IDX.read(contentsOf: path).labels() }
        let labels = dir.file("l.idx")
        try IDX.write(labels: [3, 1, 4, 1, 5], to: labels)
        XCTAssertEqual(try IDX.read(contentsOf: labels).labels(), [3, 1, 4, 1, 5])
        try IDX.write(labels: [-70000, 70000], as: .int32, to: labels)
        XCTAssertEqual(try IDX.read(contentsOf: labels).labels(), [-70000, 70000])
    }

    func testWriterRejectsUnrepresentableValuesAndLeavesTheOldFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("keep.idx")
        try IDX.write(Tensor([1, 2, 3]), as: .uint8, to: path)
        let before = readBytes(path)
        assertDatasetError(.invalidArgument, path: path, ["element 1", "256"]) {
            try IDX.write(Tensor([1, 256, 3]), as: .uint8, to: path)
        }
        assertDatasetError(.invalidArgument, path: path, ["element 0"]) {
            try IDX.write(Tensor([0.5]), as: .int16, to: path, gzip: true)
        }
        assertDatasetError(.invalidArgument, path: path, ["element 2"]) {
            try IDX.write([0, 1, 128], shape: [3], as: .int8, to: path)
        }
        assertDatasetError(.invalidArgument, path: path, ["rank"]) { try IDX.write(Tensor(scalar: 1), as: .uint8, to: path) }
        assertDatasetError(.invalidArgument, path: path, ["dimension 1"]) {
            try IDX.write(Tensor(shape: [2, 0], scalars: []), as: .uint8, to: path)
        }
        XCTAssertEqual(readBytes(path), before, "a failed write must leave the old file untouched")
        XCTAssertEqual(dir.contents(), ["keep.idx"], "no temporary files left")
        assertDatasetError(.notFound, path: "/nonexistent-neurite/x.idx") {
            try IDX.write(Tensor([1]), as: .uint8, to: "/nonexistent-neurite/x.idx")
        }
    }

    // MARK: - Corrupt and hostile files

    /// Writes `bytes` to a fresh file in `dir` and asserts that reading it fails as described.
    private func assertRejects(_ bytes: [UInt8], in dir: TemporaryDirectory, as name: String, _ kind: DatasetError.Kind,
                               _ fragments: [String], limits: IDXLimits = .default, line: UInt = #line) {
        let path = dir.file(name)
        writeBytes(bytes, to: path)
        assertDatasetError(kind, path: path, fragments, line: line) { try IDX.read(contentsOf: path, limits: limits) }
    }

    func testHeaderErrors() {
        let dir = TemporaryDirectory()
        let good = idxHeader(type: 0x08, dims: [2, 3]) + [1, 2, 3, 4, 5, 6]
        XCTAssertNoThrow(try { writeBytes(good, to: dir.file("good")); _ = try IDX.read(contentsOf: dir.file("good")) }())
        assertRejects([], in: dir, as: "empty", .corrupt, ["too short"])
        assertRejects([0, 0, 8], in: dir, as: "three", .corrupt, ["too short"])
        assertRejects(Array("hello, world".utf8), in: dir, as: "text", .corrupt, ["magic", "byte 0"])
        assertRejects([0, 1] + good.dropFirst(2), in: dir, as: "magic", .corrupt, ["magic"])
        assertRejects([0, 0, 0x07] + good.dropFirst(3), in: dir, as: "type", .corrupt, ["type code 0x07"])
        assertRejects([0, 0, 0x0A, 1, 0, 0, 0, 1, 9], in: dir, as: "type0A", .corrupt, ["type code 0x0A"])
        assertRejects([0, 0, 8, 0, 1, 2], in: dir, as: "rank0", .corrupt, ["rank 0"])
        assertRejects(idxHeader(type: 8, dims: [2, 3]).prefix(9) + [], in: dir, as: "shortheader", .corrupt, ["header"])
        assertRejects(idxHeader(type: 8, dims: [2, 0, 3]), in: dir, as: "zerodim", .corrupt, ["dimension 1 is 0", "offset 8"])
        assertRejects(idxHeader(type: 0x0E, dims: [.max, .max, .max, .max]) + [1, 2, 3], in: dir, as: "overflow",
                      .corrupt, ["overflow"])
        assertRejects(idxHeader(type: 8, dims: [60000, 28, 28]) + [1, 2, 3], in: dir, as: "absurd", .corrupt,
                      ["claims 47040000 bytes", "only 3"])
        assertRejects(idxHeader(type: 0x0C, dims: [10]) + [UInt8](repeating: 0, count: 39), in: dir, as: "truncated",
                      .corrupt, ["truncated"])
        assertRejects(good + [0xAB], in: dir, as: "trailing", .corrupt, ["1 bytes of trailing data", "offset 18"])
    }

    func testMissingFileDirectoryAndSizeLimit() {
        let dir = TemporaryDirectory()
        assertDatasetError(.notFound, path: dir.file("absent.idx")) { try IDX.read(contentsOf: dir.file("absent.idx")) }
        assertDatasetError(.io, path: dir.path, ["directory"]) { try IDX.read(contentsOf: dir.path) }
        let big = idxHeader(type: 8, dims: [1000]) + [UInt8](repeating: 7, count: 1000)
        assertRejects(big, in: dir, as: "big", .tooLarge, ["limit of 500"], limits: IDXLimits(maxBytes: 500))
        XCTAssertEqual(try IDX.read(contentsOf: dir.file("big"), limits: IDXLimits(maxBytes: 1008)).count, 1000)
    }

    func testGzipErrors() throws {
        let dir = TemporaryDirectory()
        let source = dir.file("source.idx.gz")
        let values = (0..<5000).map { Double(($0 * 31) % 256) }
        try IDX.write(values, shape: [50, 100], as: .uint8, to: source, gzip: true)
        let gz = readBytes(source)
        XCTAssertGreaterThan(gz.count, 100)

        assertRejects(Array(gz.prefix(gz.count / 2)), in: dir, as: "half.gz", .corrupt, ["truncated"])
        assertRejects(Array(gz.dropLast(3)), in: dir, as: "notrailer.gz", .corrupt, ["truncated"])
        assertRejects([0x1F, 0x8B], in: dir, as: "magiconly.gz", .corrupt, ["truncated"])
        var badCRC = gz
        badCRC[gz.count - 6] ^= 0x40
        assertRejects(badCRC, in: dir, as: "crc.gz", .corrupt, ["CRC-32"])
        var badLength = gz
        badLength[gz.count - 3] ^= 0x01
        assertRejects(badLength, in: dir, as: "isize.gz", .corrupt, ["length"])
        var badData = gz
        badData[gz.count / 2] ^= 0xFF
        assertRejects(badData, in: dir, as: "data.gz", .corrupt, ["corrupt"])
        var badMethod = gz
        badMethod[2] = 7
        assertRejects(badMethod, in: dir, as: "method.gz", .corrupt, ["gzip"])
        assertRejects(gz + Array("junk".utf8), in: dir, as: "junk.gz", .corrupt, ["4 bytes of trailing data", "offset \(gz.count)"])
        // A gzip stream whose content is not IDX is still caught by the IDX checks.
        assertRejects(gzipStored(Array("not an idx file".utf8)), in: dir, as: "text.gz", .corrupt, ["magic"])
        XCTAssertEqual(try IDX.read(contentsOf: source).doubleValues(), values)
    }

    func testGzipBombStopsAtTheLimit() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("bomb.idx.gz")
        // 8 MiB of zeros compress to about 8 KiB: a thousand-fold expansion.
        try IDX.write(Tensor(shape: [8, 1024, 1024], repeating: 0), as: .uint8, to: path, gzip: true)
        XCTAssertLessThan(readBytes(path).count, 64 * 1024)
        assertDatasetError(.tooLarge, path: path, ["limit of 1000000"]) {
            try IDX.read(contentsOf: path, limits: IDXLimits(maxBytes: 1_000_000))
        }
        XCTAssertEqual(try IDX.read(contentsOf: path).shape, [8, 1024, 1024])
    }

    func testMultiMemberGzipWithFileNameField() throws {
        let dir = TemporaryDirectory()
        let content = idxHeader(type: 0x0B, dims: [3, 50_000]) + (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let cut = 100_003
        let twoMembers = gzipStored(Array(content[..<cut]), name: "part-one.idx") + gzipStored(Array(content[cut...]))
        let path = dir.file("two.gz")
        writeBytes(twoMembers, to: path)
        let plain = dir.file("plain.idx")
        writeBytes(content, to: plain)
        let a = try IDX.read(contentsOf: path), b = try IDX.read(contentsOf: plain)
        XCTAssertEqual(a.shape, [3, 50_000])
        XCTAssertEqual(a.dataType, .int16)
        XCTAssertEqual(a.doubleValues(), b.doubleValues())
        XCTAssertEqual(a.doubleValues()[0], Double(Int16(bitPattern: 0x0007)))
        // A truncated second member is an error, not a silently short file.
        assertRejects(Array(twoMembers.dropLast(40)), in: dir, as: "cut.gz", .corrupt, ["truncated", "member 2"])
    }

    /// Random damage to a valid file, plain or gzip, must give a result or a `DatasetError`:
    /// never a crash, a hang or another error type.
    func testRandomlyDamagedFilesNeverCrash() throws {
        let dir = TemporaryDirectory()
        var generator = SeededGenerator(seed: 2024)
        for gzip in [false, true] {
            let source = dir.file(gzip ? "source.gz" : "source")
            try IDX.write((0..<600).map { Double($0 % 200) - 100 }, shape: [4, 10, 15], as: .int16, to: source, gzip: gzip)
            let original = readBytes(source)
            for trial in 0..<150 {
                var bytes = original
                switch trial % 3 {
                case 0:  // flip a few bytes
                    for _ in 0..<(1 + trial % 4) {
                        bytes[Int(generator.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: generator.next() | 1)
                    }
                case 1:  // cut
                    bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count))))
                default:  // append
                    bytes += (0..<(1 + trial % 9)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                }
                let path = dir.file("damaged")
                writeBytes(bytes, to: path)
                do {
                    let file = try IDX.read(contentsOf: path, limits: IDXLimits(maxBytes: 1 << 20))
                    if !gzip {
                        XCTAssertEqual(file.count * file.dataType.byteWidth + 4 + 4 * file.shape.count, bytes.count)
                    }
                    XCTAssertEqual(file.tensor().shape, file.shape)
                } catch let error as DatasetError {
                    XCTAssertEqual(error.path, path)
                    XCTAssertTrue([.corrupt, .tooLarge].contains(error.kind), "\(error)")
                }
            }
        }
    }

    func testReadsRealMNISTTestFiles() throws {
        let dir = try mnistDirectory()
        let images = try IDX.read(contentsOf: dir + "/t10k-images-idx3-ubyte.gz")
        XCTAssertEqual(images.dataType, .uint8)
        XCTAssertEqual(images.shape, [10000, 28, 28])
        let raw = images.tensor()
        let mean = raw.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1) } } / Double(raw.count)
        XCTAssertEqual(mean, 33.7912, accuracy: 1e-4)
        let labels = try IDX.read(contentsOf: dir + "/t10k-labels-idx1-ubyte.gz").labels()
        XCTAssertEqual(Array(labels.prefix(10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    }

    /// Decompressing and re-writing the real files must give the uncompressed IDX files whose
    /// SHA-256s the data README lists: this checks the reader and the writer byte for byte.
    func testRewrittenMNISTMatchesTheUncompressedChecksums() throws {
        let dir = try mnistDirectory()
        let expected = [
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ]
        let out = TemporaryDirectory()
        for (name, sum) in expected {
            let file = try IDX.read(contentsOf: "\(dir)/\(name).gz")
            try IDX.write(file.tensor(), as: file.dataType, to: out.file(name))
            XCTAssertEqual(try SHA256.hexDigest(ofFile: out.file(name)), sum, name)
            XCTAssertEqual(try IDX.read(contentsOf: out.file(name)).shape, file.shape)
        }
    }
}
