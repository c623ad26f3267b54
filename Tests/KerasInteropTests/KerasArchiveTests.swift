import Foundation
import XCTest
import ZIPFoundation
import KerasInterop

final class KerasArchiveTests: XCTestCase {
    static let sample = KerasArchive(config: Data(#"{"class_name": "Sequential"}"#.utf8),
                                     metadata: Data(#"{"keras_version": "3.15.1"}"#.utf8),
                                     weights: Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }))

    func testRoundTripThroughAFileAndMemory() throws {
        let folder = try temporaryFolder()
        let path = folder.appendingPathComponent("model.keras").path
        try Data("an older model".utf8).write(to: URL(fileURLWithPath: path))
        try Self.sample.write(path: path)
        XCTAssertEqual(try KerasArchive.read(path: path), Self.sample)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.keras"],
                       "no temporary file left behind")
        XCTAssertEqual(try KerasArchive.read(data: try Self.sample.encoded()), Self.sample)
        // Empty members are members.
        let empty = KerasArchive(config: Data(), metadata: Data(), weights: Data())
        XCTAssertEqual(try KerasArchive.read(data: try empty.encoded()), empty)
        XCTAssertThrowsError(try Self.sample.write(path: folder.appendingPathComponent("no/such/folder.keras").path)) { error in
            guard case KerasInteropError.io = error else { return XCTFail("\(error)") }
        }
    }

    func testReadsDeflatedMembersAndIgnoresExtraOnes() throws {
        let archive = try makeZip([("assets/", nil, .none), ("metadata.json", Self.sample.metadata, .deflate),
                                   ("config.json", Self.sample.config, .deflate),
                                   ("model.weights.h5", Self.sample.weights, .deflate),
                                   ("assets/vocabulary.txt", Data("a\nb\n".utf8), .none)])
        XCTAssertEqual(try KerasArchive.read(data: archive), Self.sample)
    }

    func testReadsFilesKerasWrote() throws {
        let folder = try KerasReferenceFiles.folder()
        let conv = try KerasArchive.read(path: folder.appendingPathComponent("conv.keras").path)
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: conv.config) as? [String: Any])
        XCTAssertEqual(config["class_name"] as? String, "Sequential")
        let metadata = try XCTUnwrap(JSONSerialization.jsonObject(with: conv.metadata) as? [String: Any])
        XCTAssertTrue((metadata["keras_version"] as? String)?.hasPrefix("3.") == true, "\(metadata)")
        let weights = try HDF5WeightsFile.read(data: conv.weights)
        XCTAssertEqual(weights.datasets["layers/conv2d/vars/0"]?.shape, [3, 3, 1, 4])
        XCTAssertEqual(weights.datasets["layers/conv2d/vars/1"]?.shape, [4])
        XCTAssertEqual(weights.datasets["layers/dense/vars/0"]?.shape, [64, 3])
        XCTAssertEqual(weights.datasets["optimizer/vars/0"], HDF5Tensor(shape: [], values: [1]), "int64 iteration counter after one step")
        XCTAssertEqual(weights.groups["layers/conv2d/vars"], ["name": "conv2d"])
        XCTAssertEqual(weights.groups["layers/dropout/vars"], ["name": "dropout"])
        XCTAssertEqual(weights.groups["optimizer/vars"], ["name": "adam"])
        XCTAssertEqual(weights.groups["vars"], ["name": "sequential"])
        XCTAssertFalse(weights.datasets.keys.contains { $0.hasPrefix("layers/dropout/") })

        let rnn = try HDF5WeightsFile.read(data: try KerasArchive.read(path: folder.appendingPathComponent("rnn.keras").path).weights)
        XCTAssertEqual(rnn.datasets["layers/bidirectional/forward_layer/cell/vars/0"]?.shape, [3, 16])
        XCTAssertEqual(rnn.datasets["layers/bidirectional/backward_layer/cell/vars/1"]?.shape, [4, 16])
        XCTAssertEqual(rnn.datasets["layers/dense/vars/0"]?.shape, [8, 2])
    }

    /// Keras loads a `.keras` file whose weights we re-encoded (config and metadata from Keras) and
    /// predicts exactly what the original predicts.
    func testKerasLoadsArchivesWithOurWeights() throws {
        let folder = try KerasReferenceFiles.folder()
        let out = try temporaryFolder()
        var pairs: [String] = []
        for name in ["conv", "rnn"] {
            let original = folder.appendingPathComponent("\(name).keras").path
            var archive = try KerasArchive.read(path: original)
            let weights = try HDF5WeightsFile.read(data: archive.weights)
            archive.weights = try weights.encoded()
            XCTAssertNotEqual(archive.weights, try KerasArchive.read(path: original).weights, "the weights really are ours")
            let ours = out.appendingPathComponent("\(name).keras").path
            try archive.write(path: ours)
            pairs += [original, ours]
            if name == "conv" {
                // The control: one changed bias must change the predictions.
                var changed = weights
                changed.datasets["layers/dense/vars/1"]!.values[0] += 1
                archive.weights = try changed.encoded()
                try archive.write(path: out.appendingPathComponent("changed.keras").path)
                pairs += [original, out.appendingPathComponent("changed.keras").path]
            }
        }
        let output = try KerasPython.run("""
            import sys, numpy as np, keras
            args = sys.argv[1:]
            for original, ours in zip(args[0::2], args[1::2]):
                a = keras.models.load_model(original)
                b = keras.models.load_model(ours)
                x = np.random.default_rng(0).random((3,) + a.input_shape[1:]).astype("float32")
                pa, pb = a.predict(x, verbose=0), b.predict(x, verbose=0)
                if ours.endswith("changed.keras"):
                    assert not np.array_equal(pa, pb)
                    print("control differs")
                    continue
                assert np.array_equal(pa, pb), (original, np.abs(pa - pb).max())
                assert [v.name for v in a.weights] == [v.name for v in b.weights]
                for va, vb in zip(a.weights, b.weights):
                    assert np.array_equal(np.asarray(va), np.asarray(vb)), va.name
                print("same", original)
            """, arguments: pairs)
        XCTAssertEqual(output.components(separatedBy: "same ").count - 1, 2, output)
        XCTAssertTrue(output.contains("control differs"), output)
    }

    // MARK: - Hostile input

    func testNotAZipArchive() {
        for bytes in [Data(), Data("hello".utf8), Data([0x89, 0x50, 0x4E, 0x47] + [UInt8](repeating: 1, count: 100)),
                      Data(repeating: 0, count: 70_000)] {
            XCTAssertThrowsError(try KerasArchive.read(data: bytes)) { error in
                guard case KerasInteropError.notAZipArchive = error else { return XCTFail("\(error)") }
            }
        }
        XCTAssertThrowsError(try KerasArchive.read(path: "/nonexistent/model.keras")) { error in
            guard case KerasInteropError.io = error else { return XCTFail("\(error)") }
        }
    }

    func testTruncatedArchivesThrow() throws {
        for method in [CompressionMethod.none, .deflate] {
            let bytes = try makeZip([("metadata.json", Self.sample.metadata, method), ("config.json", Self.sample.config, method),
                                     ("model.weights.h5", Self.sample.weights, method)])
            var cuts = Set([1, 4, 22, 30, 100, bytes.count - 22, bytes.count - 21, bytes.count - 1])
            for k in 1..<30 { cuts.insert(bytes.count * k / 30) }
            for cut in cuts.sorted() where cut < bytes.count {
                XCTAssertThrowsError(try KerasArchive.read(data: bytes.prefix(cut)), "cut at \(cut)") { error in
                    switch error as? KerasInteropError {
                    case .corruptArchive?, .notAZipArchive?: break
                    default: XCTFail("cut at \(cut): \(error)")
                    }
                }
            }
        }
    }

    func testMissingMember() throws {
        let bytes = try makeZip([("metadata.json", Self.sample.metadata, .none), ("config.json", Self.sample.config, .none)])
        XCTAssertThrowsError(try KerasArchive.read(data: bytes)) { error in
            XCTAssertEqual(error as? KerasInteropError, .missingMember("model.weights.h5"))
            XCTAssertTrue("\(error)".contains("model.weights.h5"))
        }
    }

    func testDeclaredSizeOverTheLimit() throws {
        let limits = KerasFileLimits(maxMemberBytes: 4999)
        let bytes = try Self.sample.encoded()
        XCTAssertThrowsError(try KerasArchive.read(data: bytes, limits: limits)) { error in
            XCTAssertEqual(error as? KerasInteropError, .memberTooLarge(name: "model.weights.h5", limit: 4999))
        }
        XCTAssertNoThrow(try KerasArchive.read(data: bytes, limits: KerasFileLimits(maxMemberBytes: 5000)))
    }

    /// A deflate bomb: 4 MiB of zeros (a few KiB deflated) whose headers claim 100 bytes. Inflating
    /// stops as soon as the limit is passed, whatever the header says.
    func testInflatingPastTheLimitStops() throws {
        let zeros = Data(count: 4 << 20)
        var bytes = try makeZip([("metadata.json", Self.sample.metadata, .none), ("config.json", Self.sample.config, .none),
                                 ("model.weights.h5", zeros, .deflate)])
        XCTAssertLessThan(bytes.count, 64 << 10)
        patchCentralDirectory(&bytes, member: "model.weights.h5", offset: 24, value: 100)
        XCTAssertThrowsError(try KerasArchive.read(data: bytes, limits: KerasFileLimits(maxMemberBytes: 50_000))) { error in
            XCTAssertEqual(error as? KerasInteropError, .memberTooLarge(name: "model.weights.h5", limit: 50_000))
        }
        // Within the limit, inflating more than the header says is corruption.
        XCTAssertThrowsError(try KerasArchive.read(data: bytes)) { error in
            guard case KerasInteropError.corruptArchive(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("more than the 100 bytes"), detail)
        }
    }

    func testDamagedMembersThrow() throws {
        let good = try makeZip([("metadata.json", Self.sample.metadata, .none), ("config.json", Self.sample.config, .none),
                                ("model.weights.h5", Self.sample.weights, .deflate)])
        // Deflate data cut short (the header's compressed size shrunk).
        var short = good
        let compressed = readCentralDirectory(good, member: "model.weights.h5", offset: 20)
        patchCentralDirectory(&short, member: "model.weights.h5", offset: 20, value: compressed / 2)
        XCTAssertThrowsError(try KerasArchive.read(data: short)) { error in
            guard case KerasInteropError.corruptArchive(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("model.weights.h5"), detail)
        }
        // A flipped byte in stored data: the checksum catches it.
        var flipped = try Self.sample.encoded()
        let at = try XCTUnwrap(flipped.range(of: Self.sample.config)).lowerBound + 3
        flipped[at] ^= 0x20
        XCTAssertThrowsError(try KerasArchive.read(data: flipped)) { error in
            guard case KerasInteropError.corruptArchive(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("CRC"), detail)
        }
        // An unknown compression method.
        var method = good
        patchCentralDirectory(&method, member: "config.json", offset: 10, value: 12, width: 2)
        XCTAssertThrowsError(try KerasArchive.read(data: method)) { error in
            guard case KerasInteropError.corruptArchive(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("method 12"), detail)
        }
    }

    func testDuplicateAndUnsafeNamesAreRefused() throws {
        let members = [("metadata.json", Self.sample.metadata, CompressionMethod.none), ("config.json", Self.sample.config, .none),
                       ("model.weights.h5", Self.sample.weights, .none)]
        for extra in ["config.json", "../evil", "/etc/evil", "assets/../../evil", "C:\\evil", "a\\..\\..\\evil"] {
            let bytes = try makeZip(members + [(extra, Data("x".utf8), .none)])
            XCTAssertThrowsError(try KerasArchive.read(data: bytes), extra) { error in
                guard case KerasInteropError.corruptArchive(let detail) = error else { return XCTFail("\(extra): \(error)") }
                XCTAssertTrue(detail.contains(extra), detail)
            }
        }
    }

    // MARK: - Helpers

    /// A zip built by ZIPFoundation with the given members (nil data: a directory).
    func makeZip(_ members: [(String, Data?, CompressionMethod)]) throws -> Data {
        let archive = try Archive(data: Data(), accessMode: .create)
        for (name, data, method) in members {
            let bytes = data ?? Data()
            try archive.addEntry(with: name, type: data == nil ? .directory : .file, uncompressedSize: Int64(bytes.count),
                                 compressionMethod: method) { position, size in
                bytes.subdata(in: Int(position)..<Int(position) + size)
            }
        }
        return try XCTUnwrap(archive.data)
    }

    /// The offset of `member`'s central-directory entry.
    func centralDirectoryEntry(_ bytes: Data, member: String) -> Int {
        let signature = Data([0x50, 0x4B, 0x01, 0x02])
        var search = bytes.startIndex..<bytes.endIndex
        while let found = bytes.range(of: signature, in: search) {
            let at = found.lowerBound
            let nameLength = Int(bytes[at + 28]) | Int(bytes[at + 29]) << 8
            if at + 46 + nameLength <= bytes.endIndex, bytes[(at + 46)..<(at + 46 + nameLength)] == Data(member.utf8) { return at }
            search = found.upperBound..<bytes.endIndex
        }
        XCTFail("no central-directory entry for \(member)")
        return 0
    }

    func readCentralDirectory(_ bytes: Data, member: String, offset: Int) -> Int {
        let at = centralDirectoryEntry(bytes, member: member) + offset
        return (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) }
    }

    func patchCentralDirectory(_ bytes: inout Data, member: String, offset: Int, value: Int, width: Int = 4) {
        let at = centralDirectoryEntry(bytes, member: member) + offset
        for k in 0..<width { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
    }

    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("neurite-keras-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }
}
