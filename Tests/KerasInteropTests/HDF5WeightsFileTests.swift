import Foundation
import XCTest
import KerasInterop

final class HDF5WeightsFileTests: XCTestCase {
    /// A file shaped like a Keras 3 weights file: a 4-D kernel, a bias, a scalar, an empty
    /// dataset, a group without datasets, deep nesting and root attributes.
    static func sample() -> HDF5WeightsFile {
        HDF5WeightsFile(
            datasets: [
                "layers/conv2d/vars/0": HDF5Tensor(shape: [3, 3, 1, 4], values: (0..<36).map { Float($0) * 0.25 - 4 }),
                "layers/conv2d/vars/1": HDF5Tensor(shape: [4], values: [1, -2, .infinity, -0.0]),
                "layers/bidirectional/forward_layer/cell/vars/0": HDF5Tensor(shape: [4, 12], values: (0..<48).map { Float($0).squareRoot() }),
                "optimizer/vars/0": HDF5Tensor(shape: [], values: [42]),
                "layers/empty/vars/0": HDF5Tensor(shape: [0, 5], values: []),
            ],
            groups: [
                "": ["keras_version": "3.15.1"],
                "layers/conv2d/vars": ["name": "conv2d"],
                "layers/dropout/vars": ["name": "dropout"],
                "layers/bidirectional/forward_layer/cell/vars": ["name": "lstm_cell", "note": "ünïcödé ✓"],
                "optimizer/vars": ["name": "adam"],
                "vars": ["name": "sequential"],
            ])
    }

    /// Every group of `written` is in `read` with the same attributes; any other group `read` has
    /// is an intermediate group (no attributes) above a dataset or listed group.
    func assertSameContent(_ read: HDF5WeightsFile, _ written: HDF5WeightsFile, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(read.datasets, written.datasets, file: file, line: line)
        for (path, attributes) in written.groups {
            XCTAssertEqual(read.groups[path], attributes, "group \(path)", file: file, line: line)
        }
        let paths = Array(written.groups.keys) + Array(written.datasets.keys)
        for (path, attributes) in read.groups where written.groups[path] == nil {
            XCTAssertEqual(attributes, [:], "group \(path)", file: file, line: line)
            XCTAssertTrue(paths.contains { $0.hasPrefix(path + "/") }, "unexpected group \(path)", file: file, line: line)
        }
    }

    func testRoundTripInMemory() throws {
        let sample = Self.sample()
        let bytes = try sample.encoded()
        XCTAssertEqual(Array(bytes.prefix(4)), [0x89, 0x48, 0x44, 0x46])
        let read = try HDF5WeightsFile.read(data: bytes)
        assertSameContent(read, sample)
        XCTAssertEqual(read.groups["layers"], [:])
        XCTAssertEqual(read.groups["layers/bidirectional/forward_layer/cell"], [:])
        XCTAssertEqual(read.datasets["optimizer/vars/0"]?.shape, [])
        // The [UInt8] entry point reads the same.
        XCTAssertEqual(try HDF5WeightsFile.read(data: [UInt8](bytes)), read)
        // An empty file is a valid file.
        XCTAssertEqual(try HDF5WeightsFile.read(data: try HDF5WeightsFile().encoded()), HDF5WeightsFile())
    }

    func testWriteToPathIsAtomicAndReplacesTheFile() throws {
        let folder = try temporaryFolder()
        let path = folder.appendingPathComponent("model.weights.h5").path
        try Data("old content".utf8).write(to: URL(fileURLWithPath: path))
        try Self.sample().write(path: path)
        assertSameContent(try HDF5WeightsFile.read(path: path), Self.sample())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.weights.h5"],
                       "no temporary file left behind")
        // A folder that does not exist: an I/O error, nothing created.
        let missing = folder.appendingPathComponent("missing/model.weights.h5").path
        XCTAssertThrowsError(try Self.sample().write(path: missing)) { error in
            guard case KerasInteropError.io = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try HDF5WeightsFile.read(path: missing)) { error in
            guard case KerasInteropError.io(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains(missing), detail)
        }
    }

    func testWriterRefusesInconsistentContent() {
        func expect(_ file: HDF5WeightsFile, _ check: (KerasInteropError) -> Bool, line: UInt = #line) {
            XCTAssertThrowsError(try file.encoded(), line: line) { error in
                guard let error = error as? KerasInteropError, check(error) else { return XCTFail("\(error)", line: line) }
            }
        }
        func unsupported(_ path: String) -> (KerasInteropError) -> Bool {
            { if case .unsupportedDataset(path, _) = $0 { return true } else { return false } }
        }
        func invalid(_ path: String) -> (KerasInteropError) -> Bool {
            { if case .invalidPath(path, _) = $0 { return true } else { return false } }
        }
        expect(HDF5WeightsFile(datasets: ["a": HDF5Tensor(shape: [2, 2], values: [1, 2, 3])]), unsupported("a"))
        expect(HDF5WeightsFile(datasets: ["a": HDF5Tensor(shape: [-1], values: [])]), unsupported("a"))
        expect(HDF5WeightsFile(datasets: ["a": HDF5Tensor(shape: [Int.max, 4], values: [])]), unsupported("a"))
        expect(HDF5WeightsFile(datasets: ["a": HDF5Tensor(shape: Array(repeating: 1, count: 9), values: [1])]), unsupported("a"))
        expect(HDF5WeightsFile(datasets: ["/a": HDF5Tensor(shape: [], values: [1])]), invalid("/a"))
        expect(HDF5WeightsFile(datasets: ["a//b": HDF5Tensor(shape: [], values: [1])]), invalid("a//b"))
        expect(HDF5WeightsFile(datasets: ["a/../b": HDF5Tensor(shape: [], values: [1])]), invalid("a/../b"))
        expect(HDF5WeightsFile(groups: ["a/": [:]]), invalid("a/"))
        // A dataset where a group must be.
        expect(HDF5WeightsFile(datasets: ["a": HDF5Tensor(shape: [], values: [1]), "a/b": HDF5Tensor(shape: [], values: [2])]),
               invalid("a/b"))
        expect(HDF5WeightsFile(datasets: ["a": HDF5Tensor(shape: [], values: [1])], groups: ["a": ["name": "x"]]), invalid("a"))
        expect(HDF5WeightsFile(groups: ["g": ["": "x"]]), invalid("g"))
    }

    func testReadsTypesWrittenByH5py() throws {
        let read = try HDF5WeightsFile.read(path: try KerasReferenceFiles.folder().appendingPathComponent("types.h5").path)
        XCTAssertEqual(read.datasets["layers/dense/vars/0"], HDF5Tensor(shape: [2, 3], values: [0, 0.25, 0.5, 0.75, 1, 1.25]))
        XCTAssertEqual(read.datasets["layers/dense/vars/1"], HDF5Tensor(shape: [2], values: [-3, 7]))
        XCTAssertEqual(read.datasets["layers/dense/vars/2"], HDF5Tensor(shape: [2], values: [0.5, -2]))
        XCTAssertEqual(read.datasets["optimizer/vars/0"], HDF5Tensor(shape: [], values: [42]))
        XCTAssertEqual(read.datasets["optimizer/vars/1"], HDF5Tensor(shape: [], values: [0.001]))
        XCTAssertEqual(read.datasets["layers/empty"], HDF5Tensor(shape: [0, 4], values: []))
        XCTAssertEqual(read.datasets.count, 6)
        XCTAssertEqual(read.groups["layers/dense/vars"], ["name": "dense"])
        XCTAssertEqual(read.groups["layers/dropout/vars"], ["name": "dropout"], "fixed-length string read, float attribute ignored")
        XCTAssertEqual(read.groups["optimizer/vars"], ["name": "adam"])
        XCTAssertEqual(read.groups["layers"], [:])
        XCTAssertNil(read.groups[""], "the root has no attributes")
    }

    func testStringDatasetIsAnErrorNamingItsPath() throws {
        let path = try KerasReferenceFiles.folder().appendingPathComponent("strings.h5").path
        XCTAssertThrowsError(try HDF5WeightsFile.read(path: path)) { error in
            guard case KerasInteropError.unsupportedDataset(let where_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(where_, "layers/dense/vars/0")
            XCTAssertTrue(reason.contains("string"), reason)
            XCTAssertTrue("\(error)".contains("layers/dense/vars/0"))
        }
    }

    func testAbsurdDeclaredSizeIsRefusedBeforeAllocating() throws {
        let path = try KerasReferenceFiles.folder().appendingPathComponent("huge.h5").path
        XCTAssertThrowsError(try HDF5WeightsFile.read(path: path)) { error in
            guard case KerasInteropError.datasetTooLarge(let where_, let elements) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(where_, "layers/dense/vars/0")
            XCTAssertTrue(elements.contains("1099511627776"), elements)
        }
    }

    func testLimits() throws {
        let bytes = try Self.sample().encoded()
        func expect(_ limits: KerasFileLimits, line: UInt = #line, _ check: (KerasInteropError) -> Bool) {
            XCTAssertThrowsError(try HDF5WeightsFile.read(data: bytes, limits: limits), line: line) { error in
                guard let error = error as? KerasInteropError, check(error) else { return XCTFail("\(error)", line: line) }
            }
        }
        expect(KerasFileLimits(maxElementsPerDataset: 47)) {
            if case .datasetTooLarge("layers/bidirectional/forward_layer/cell/vars/0", _) = $0 { return true } else { return false }
        }
        expect(KerasFileLimits(maxTotalElements: 36 + 48)) {
            if case .datasetTooLarge = $0 { return true } else { return false }
        }
        expect(KerasFileLimits(maxObjects: 5)) {
            if case .corruptHDF5(let detail) = $0 { return detail.contains("more than 5 objects") } else { return false }
        }
        // The exact limits pass: 48 elements in the largest dataset, 36 + 48 + 4 + 1 in all.
        XCTAssertNoThrow(try HDF5WeightsFile.read(data: bytes, limits: KerasFileLimits(maxElementsPerDataset: 48, maxTotalElements: 89)))
    }

    func testNestingDeeperThanTheLimitIsRefused() throws {
        let deep = (0..<70).map { "g\($0)" }.joined(separator: "/")
        let bytes = try HDF5WeightsFile(datasets: [deep: HDF5Tensor(shape: [], values: [1])]).encoded()
        XCTAssertThrowsError(try HDF5WeightsFile.read(data: bytes)) { error in
            guard case KerasInteropError.corruptHDF5(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("nested deeper than 64"), detail)
        }
        let allowed = (0..<63).map { "g\($0)" }.joined(separator: "/")
        let ok = try HDF5WeightsFile.read(data: try HDF5WeightsFile(datasets: [allowed: HDF5Tensor(shape: [], values: [1])]).encoded())
        XCTAssertEqual(ok.datasets[allowed]?.values, [1])
    }

    func testNotHDF5AndTruncatedFilesThrow() throws {
        for bytes in [[], [UInt8](repeating: 7, count: 3000), Array("PK\u{3}\u{4} not hdf5".utf8)] {
            XCTAssertThrowsError(try HDF5WeightsFile.read(data: bytes)) { error in
                guard case KerasInteropError.notHDF5 = error else { return XCTFail("\(error)") }
            }
        }
        let bytes = [UInt8](try Self.sample().encoded())
        var cuts = Set([1, 7, 8, 9, 40, 96, 200, 512, 1000, 2047, 2048, bytes.count / 2, bytes.count - 1])
        for k in 1..<24 { cuts.insert(bytes.count * k / 24) }
        for cut in cuts.sorted() where cut < bytes.count {
            XCTAssertThrowsError(try HDF5WeightsFile.read(data: Array(bytes.prefix(cut))), "cut at \(cut)") { error in
                XCTAssertTrue(error is KerasInteropError, "cut at \(cut): \(error)")
            }
        }
    }

    /// Reads and writes from several threads at once: the global lock keeps libhdf5 (not
    /// thread-safe in Debian's build) consistent.
    func testConcurrentUseIsSerialised() throws {
        let bytes = try Self.sample().encoded()
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            do {
                if i % 2 == 0 {
                    if try HDF5WeightsFile.read(data: bytes).datasets != Self.sample().datasets { failures.add() }
                } else {
                    if try HDF5WeightsFile.read(data: try Self.sample().encoded()).datasets != Self.sample().datasets { failures.add() }
                }
            } catch {
                failures.add()
            }
        }
        XCTAssertEqual(failures.value, 0)
    }

    /// h5py reads what we write: same shapes, float32 values, and `name` attributes as `str`.
    func testH5pyReadsOurFile() throws {
        let folder = try temporaryFolder()
        let path = folder.appendingPathComponent("ours.h5").path
        let sample = Self.sample()
        try sample.write(path: path)
        let output = try KerasPython.run("""
            import sys, json, h5py
            out = {"datasets": {}, "groups": {}}
            with h5py.File(sys.argv[1], "r") as f:
                def visit(name, obj):
                    if isinstance(obj, h5py.Dataset):
                        out["datasets"][name] = {"shape": list(obj.shape), "dtype": str(obj.dtype),
                                                 "values": [repr(float(v)) for v in obj[()].reshape(-1)]}
                    else:
                        out["groups"][name] = {k: [type(v).__name__, str(v)] for k, v in obj.attrs.items()}
                f.visititems(visit)
                out["groups"][""] = {k: [type(v).__name__, str(v)] for k, v in f.attrs.items()}
            print(json.dumps(out))
            """, arguments: [path])
        struct Dump: Decodable {
            struct Dataset: Decodable { var shape: [Int]; var dtype: String; var values: [String] }
            var datasets: [String: Dataset]
            var groups: [String: [String: [String]]]
        }
        let dump = try JSONDecoder().decode(Dump.self, from: Data(output.utf8))
        XCTAssertEqual(Set(dump.datasets.keys), Set(sample.datasets.keys))
        for (path, tensor) in sample.datasets {
            let theirs = try XCTUnwrap(dump.datasets[path])
            XCTAssertEqual(theirs.shape, tensor.shape, path)
            XCTAssertEqual(theirs.dtype, "float32", path)
            XCTAssertEqual(theirs.values.map { Float($0) }, tensor.values.map { Optional($0) }, path)
            XCTAssertEqual(theirs.values.map { $0.hasPrefix("-") }, tensor.values.map { $0.sign == .minus }, "signs of \(path)")
        }
        for (path, attributes) in sample.groups {
            let theirs = try XCTUnwrap(dump.groups[path], path)
            XCTAssertEqual(theirs, attributes.mapValues { ["str", $0] }, path)
        }
    }

    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-h5-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }
}

/// A thread-safe counter for concurrent tests.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
