// The KerasInterop targets: `keras-archive` (KerasArchive.read: the zip container of a .keras
// file) and `keras-h5` (HDF5WeightsFile.read: the weights file, through libhdf5).
//
//   swift run -c release neurite-fuzz --target keras-archive --iterations 5000
//   swift run -c release neurite-fuzz --target keras-h5 --iterations 5000
//
// Both are seeded with small files made in memory by KerasInterop's own writers (no Python, no
// shared data needed). Zips are also rebuilt here around mutated members (deflated with the
// harness's encoder, with zip64 records, with deflate bombs), so that mutations reach the member
// checks behind the directory. libhdf5 is C: run `keras-h5` under AddressSanitizer too (see
// main.swift).
import Foundation
import KerasInterop

extension Runner {
    /// Tight enough that every hostile claim is refused quickly, loose enough for every seed.
    static let kerasLimits = KerasFileLimits(maxMemberBytes: 1 << 20, maxElementsPerDataset: 1 << 18,
                                             maxTotalElements: 1 << 19, maxObjects: 2000)

    func runKerasArchive(_ bytes: [UInt8]) -> Verdict {
        do {
            let archive = try KerasArchive.read(data: Data(bytes), limits: Self.kerasLimits)
            for (name, member) in [("config", archive.config), ("metadata", archive.metadata), ("weights", archive.weights)]
            where member.count > Self.kerasLimits.maxMemberBytes {
                return .finding(kind: "bad_result", detail: "\(name) has \(member.count) bytes, over the limit")
            }
            return .accepted(signature: "ok archive")
        } catch let error as KerasInteropError {
            switch error {
            case .notAZipArchive, .corruptArchive, .missingMember, .memberTooLarge:
                return .rejected(kind: Self.bucket(error), signature: Self.signature(of: error))
            default:
                return .finding(kind: "unexpected_kind", detail: "KerasArchive.read threw \(error)")
            }
        } catch {
            return .finding(kind: "foreign_error", detail: "KerasArchive.read threw \(type(of: error)): \(error)")
        }
    }

    func runKerasH5(_ bytes: [UInt8]) -> Verdict {
        let limits = Self.kerasLimits
        do {
            let file = try HDF5WeightsFile.read(data: bytes, limits: limits)
            var total = 0
            for (path, tensor) in file.datasets {
                guard tensor.shape.count <= KerasFileLimits.maxRank, tensor.shape.allSatisfy({ $0 >= 0 }) else {
                    return .finding(kind: "bad_result", detail: "dataset \(path) has shape \(tensor.shape)")
                }
                let count = tensor.shape.reduce(1, *)
                guard count == tensor.values.count, count <= limits.maxElementsPerDataset else {
                    return .finding(kind: "bad_result", detail: "dataset \(path): shape \(tensor.shape), \(tensor.values.count) values")
                }
                total += count
            }
            guard total <= limits.maxTotalElements, file.datasets.count + file.groups.count <= limits.maxObjects else {
                return .finding(kind: "bad_result", detail: "accepted \(total) elements in \(file.datasets.count) datasets")
            }
            return .accepted(signature: "ok h5 \(file.datasets.isEmpty ? "no datasets" : "datasets")")
        } catch let error as KerasInteropError {
            switch error {
            case .notHDF5, .corruptHDF5, .datasetTooLarge, .unsupportedDataset:
                return .rejected(kind: Self.bucket(error), signature: Self.signature(of: error))
            default:
                return .finding(kind: "unexpected_kind", detail: "HDF5WeightsFile.read threw \(error)")
            }
        } catch {
            return .finding(kind: "foreign_error", detail: "HDF5WeightsFile.read threw \(type(of: error)): \(error)")
        }
    }

    /// The summary table's column for an error: corrupt, unsupported or tooLarge.
    private static func bucket(_ error: KerasInteropError) -> String {
        switch error {
        case .memberTooLarge, .datasetTooLarge: return "tooLarge"
        case .unsupportedDataset: return "unsupported"
        default: return "corrupt"
        }
    }

    /// The case and its digit-free message, without the "data of N bytes" source prefix.
    private static func signature(of error: KerasInteropError) -> String {
        let text = "\(error)".replacingOccurrences(of: #"(zip|HDF5) data of \d+ bytes"#, with: "", options: .regularExpression)
        return digitFree(text)
    }
}

// MARK: - Seeds

enum KerasSeeds {
    /// Small weights files shaped like Keras 3's, written by HDF5WeightsFile.
    static func weightsFiles() throws -> [Corpus.Seed] {
        let dense = HDF5WeightsFile(
            datasets: ["layers/dense/vars/0": .init(shape: [3, 2], values: [1, 2, 3, 4, 5, 6]),
                       "layers/dense/vars/1": .init(shape: [2], values: [0.5, -0.5]),
                       "optimizer/vars/0": .init(shape: [], values: [7])],
            groups: ["layers/dense/vars": ["name": "dense"], "layers/dropout/vars": ["name": "dropout"],
                     "optimizer/vars": ["name": "adam"], "vars": ["name": "sequential"]])
        let nested = HDF5WeightsFile(
            datasets: ["layers/bidirectional/forward_layer/cell/vars/0": .init(shape: [2, 4], values: (0..<8).map(Float.init)),
                       "layers/conv2d/vars/0": .init(shape: [2, 2, 1, 2], values: (0..<8).map { -Float($0) }),
                       "layers/empty/vars/0": .init(shape: [0, 3], values: [])],
            groups: ["": ["keras_version": "3.15.1"],
                     "layers/bidirectional/forward_layer/cell/vars": ["name": "lstm_cell", "long": String(repeating: "x", count: 300)]])
        let empty = HDF5WeightsFile()
        return try [("dense.h5", dense), ("nested.h5", nested), ("empty.h5", empty)].map { name, file in
            Corpus.Seed(name: name, input: FuzzInput(bytes: [UInt8](try file.encoded())))
        }
    }

    /// `.keras` archives: KerasArchive's own (stored, ZIPFoundation), and rebuilt here deflated,
    /// with an extra member, and with zip64 records.
    static func archives() throws -> [Corpus.Seed] {
        let weights = try weightsFiles()[0].input.bytes
        let config = Array(#"{"class_name": "Sequential", "config": {"name": "sequential", "layers": []}}"#.utf8)
        let metadata = Array(#"{"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}"#.utf8)
        let own = try KerasArchive(config: Data(config), metadata: Data(metadata), weights: Data(weights)).encoded()
        let members = [ZipBuilder.Member(name: "metadata.json", content: metadata),
                       ZipBuilder.Member(name: "config.json", content: config),
                       ZipBuilder.Member(name: "model.weights.h5", content: weights)]
        var deflated = members
        for i in deflated.indices { deflated[i].deflate = true }
        let extra = members + [ZipBuilder.Member(name: "assets/", content: []),
                               ZipBuilder.Member(name: "assets/vocabulary.txt", content: Array("a\nb\n".utf8), deflate: true)]
        return [Corpus.Seed(name: "ziplib.keras", input: FuzzInput(bytes: [UInt8](own))),
                Corpus.Seed(name: "deflated.keras", input: FuzzInput(bytes: ZipBuilder.build(deflated))),
                Corpus.Seed(name: "assets.keras", input: FuzzInput(bytes: ZipBuilder.build(extra))),
                Corpus.Seed(name: "zip64.keras", input: FuzzInput(bytes: ZipBuilder.build(members, zip64: true)))]
    }
}

// MARK: - Zip building and mutations

/// A minimal zip writer for the harness: members stored or deflated (the harness's fixed-Huffman
/// encoder), optionally with zip64 extra fields and end records, sizes and checksums overridable.
enum ZipBuilder {
    struct Member {
        var name: String
        var content: [UInt8]
        var deflate = false
        /// Raw deflate data to store instead of encoding `content` (for bombs).
        var deflated: [UInt8]? = nil
        /// Header values instead of the true ones.
        var declaredSize: UInt32? = nil
        var declaredCRC: UInt32? = nil
    }

    static func build(_ members: [Member], zip64: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        var directory: [UInt8] = []
        for member in members {
            let data = member.deflated ?? (member.deflate ? Deflate.fixedHuffman(member.content) : member.content)
            let method: UInt16 = (member.deflated != nil || member.deflate) ? 8 : 0
            let crc = member.declaredCRC ?? CRC32.checksum(member.content)
            let size = member.declaredSize ?? UInt32(truncatingIfNeeded: member.content.count)
            let name = Array(member.name.utf8)
            let offset = UInt32(out.count)
            var extra: [UInt8] = []
            if zip64 {
                extra = le16(1) + le16(24) + le64(UInt64(size)) + le64(UInt64(data.count)) + le64(UInt64(offset))
            }
            out += le32(0x0403_4b50) + le16(zip64 ? 45 : 20) + le16(0) + le16(method) + le32(0) + le32(crc)
            out += zip64 ? le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) : le32(UInt32(data.count)) + le32(size)
            out += le16(UInt16(name.count)) + le16(UInt16(extra.count)) + name + extra + data
            directory += le32(0x0201_4b50) + le16(0x031E) + le16(zip64 ? 45 : 20) + le16(0) + le16(method) + le32(0) + le32(crc)
            directory += zip64 ? le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) : le32(UInt32(data.count)) + le32(size)
            directory += le16(UInt16(name.count)) + le16(UInt16(extra.count)) + le16(0) + le16(0) + le16(0) + le32(0)
            directory += (zip64 ? le32(0xFFFF_FFFF) : le32(offset)) + name + extra
        }
        let directoryOffset = out.count
        out += directory
        if zip64 {
            let record = out.count
            out += le32(0x0606_4b50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0)
            out += le64(UInt64(members.count)) + le64(UInt64(members.count)) + le64(UInt64(directory.count)) + le64(UInt64(directoryOffset))
            out += le32(0x0706_4b50) + le32(0) + le64(UInt64(record)) + le32(1)
            out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(0xFFFF) + le16(0xFFFF) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(0)
        } else {
            out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(UInt16(members.count)) + le16(UInt16(members.count))
            out += le32(UInt32(directory.count)) + le32(UInt32(directoryOffset)) + le16(0)
        }
        return out
    }

    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { littleEndian(v) }
    static func le64(_ v: UInt64) -> [UInt8] { le32(UInt32(truncatingIfNeeded: v)) + le32(UInt32(v >> 32)) }
}

/// Zip-aware mutations: header fields of the records a reader trusts, and whole archives rebuilt
/// around mutated or bomb members.
enum KerasArchiveMutations {
    static let names = ["zip_field", "zip_rebuild", "zip_bomb", "zip_names"]

    /// The offsets of every record signature in `bytes` with the field offsets worth changing.
    private static func records(_ bytes: [UInt8]) -> [(at: Int, fields: [(Int, Int)])] {
        let layouts: [UInt32: [(Int, Int)]] = [
            0x0403_4b50: [(6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)],
            0x0201_4b50: [(8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (34, 2), (42, 4)],
            0x0605_4b50: [(4, 2), (8, 2), (10, 2), (12, 4), (16, 4), (20, 2)],
            0x0606_4b50: [(24, 8), (32, 8), (40, 8), (48, 8)],
            0x0706_4b50: [(8, 8)],
        ]
        var found: [(Int, [(Int, Int)])] = []
        var i = 0
        while i + 4 <= bytes.count {
            if bytes[i] == 0x50 && bytes[i + 1] == 0x4B {
                let signature = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
                if let fields = layouts[signature] { found.append((i, fields)) }
            }
            i += 1
        }
        return found
    }

    static func mutate(_ bytes: inout [UInt8], dice: inout Dice) -> String? {
        switch dice.below(4) {
        case 0:
            let found = records(bytes)
            guard !found.isEmpty else { return nil }
            let record = dice.pick(found)
            let (offset, width) = dice.pick(record.fields)
            let at = record.at + offset
            guard at + width <= bytes.count else { return nil }
            var value: UInt64
            switch dice.below(3) {
            case 0: value = UInt64(dice.pick(Interesting.words32))
            case 1: value = dice.chance(1, in: 2) ? UInt64.max : UInt64(bytes.count) &+ UInt64(bitPattern: Int64(dice.within(-40...40)))
            default:
                var old: UInt64 = 0
                for k in 0..<width { old |= UInt64(bytes[at + k]) << UInt64(8 * k) }
                value = old &+ UInt64(bitPattern: Int64(dice.within(-64...64)))
            }
            for k in 0..<width { bytes[at + k] = UInt8(truncatingIfNeeded: value >> UInt64(8 * k)) }
            return names[0]
        case 1, 2, 3:
            // Rebuild from the seed-like members: the three Keras names with content taken from
            // the input (so mutated bytes end up inside valid, checksummed members).
            let pieces = [Array(bytes.prefix(64)), Array(bytes.dropFirst(64).prefix(256)), Array(bytes.suffix(min(bytes.count, 2048)))]
            var members = zip(["config.json", "metadata.json", "model.weights.h5"], pieces).map {
                ZipBuilder.Member(name: $0.0, content: $0.1, deflate: dice.chance(1, in: 2))
            }
            var mutation = names[1]
            if dice.chance(1, in: 3) {
                // A bomb: a run of one byte, deflated to a few bytes per 258, maybe with a small claim.
                let count = dice.pick([1000, 1 << 16, 1 << 20, (1 << 20) + 1, 3 << 20])
                let k = dice.below(3)
                let byte = dice.byte()
                members[k].content = [UInt8](repeating: byte, count: count)
                members[k].deflated = Deflate.fixedHuffmanRun(prefix: [], repeating: byte, count: count)
                if dice.chance(1, in: 2) { members[k].declaredSize = UInt32(dice.pick([0, 1, 100, 1 << 16])) }
                mutation = names[2]
            }
            if dice.chance(1, in: 4) {
                // Names: duplicate, missing, traversal, or one more member.
                switch dice.below(4) {
                case 0: members[dice.below(3)].name = members[dice.below(3)].name
                case 1: members.remove(at: dice.below(members.count))
                case 2: members[dice.below(3)].name = dice.pick(["../model.weights.h5", "/config.json", "a/../../b", "C:x", ""])
                default: members.append(ZipBuilder.Member(name: "assets/x", content: dice.bytes(dice.below(40))))
                }
                mutation = names[3]
            }
            if dice.chance(1, in: 5) {
                members[dice.below(members.count)].declaredCRC = UInt32(truncatingIfNeeded: dice.generator.next())
            }
            bytes = ZipBuilder.build(members, zip64: dice.chance(1, in: 4))
            return mutation
        default:
            return nil
        }
    }
}

/// HDF5-aware mutations: 8-byte little-endian fields (addresses and lengths in HDF5 are 8 bytes
/// in files libhdf5 writes) set to edge values, and signatures of HDF5's structures hit directly.
enum KerasH5Mutations {
    static let names = ["h5_address", "h5_signature_field"]
    private static let signatures: [[UInt8]] = [Array("OHDR".utf8), Array("TREE".utf8), Array("HEAP".utf8), Array("SNOD".utf8),
                                                Array("BTHD".utf8), Array("FRHP".utf8), Array("GCOL".utf8), Array("OCHK".utf8)]

    static func mutate(_ bytes: inout [UInt8], dice: inout Dice) -> String? {
        guard bytes.count >= 16 else { return nil }
        if dice.chance(1, in: 2) {
            let at = dice.below(bytes.count / 8) * 8
            guard at + 8 <= bytes.count else { return nil }
            let value: UInt64 = dice.pick([0, 1, UInt64.max, UInt64.max - 1, UInt64(bytes.count), UInt64(bytes.count) - 8,
                                           1 << 32, 1 << 40, UInt64(dice.below(bytes.count))])
            for k in 0..<8 { bytes[at + k] = UInt8(truncatingIfNeeded: value >> UInt64(8 * k)) }
            return names[0]
        }
        // Just after one of the structure signatures: its version, flags and first fields.
        let signature = dice.pick(signatures)
        var hits: [Int] = []
        var i = 0
        while i + 4 <= bytes.count {
            if bytes[i] == signature[0] && Array(bytes[i..<(i + 4)]) == signature { hits.append(i) }
            i += 1
        }
        guard let hit = hits.isEmpty ? nil : dice.pick(hits) else { return nil }
        let at = min(bytes.count - 1, hit + 4 + dice.below(24))
        bytes[at] = dice.chance(1, in: 2) ? dice.byte() : dice.pick(Interesting.bytes)
        return names[1]
    }
}
