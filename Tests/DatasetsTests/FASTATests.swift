import Datasets
import Foundation
import TensorCore
import XCTest

final class FASTATests: XCTestCase {
    func testLambdaGenome() throws {
        let path = try sequencesFile("lambda_virus.fa.gz")
        XCTAssertEqual(Array(readBytes(path).prefix(2)), [0x1F, 0x8B])
        let records = try FASTA.read(contentsOf: path)
        XCTAssertEqual(records.count, 1)
        let lambda = records[0]
        XCTAssertEqual(lambda.name, "gi|9626243|ref|NC_001416.1|")
        XCTAssertEqual(lambda.description, "Enterobacteria phage lambda, complete genome")
        XCTAssertEqual(lambda.sequence.count, 48_502)
        var counts: [UInt8: Int] = [:]
        for b in lambda.sequence { counts[b, default: 0] += 1 }
        // From the data README (NCBI RefSeq NC_001416.1).
        XCTAssertEqual(counts, [UInt8(ascii: "A"): 12_334, UInt8(ascii: "C"): 11_362,
                                UInt8(ascii: "G"): 12_820, UInt8(ascii: "T"): 11_986])
        XCTAssertEqual(String(decoding: lambda.sequence.prefix(70), as: UTF8.self),
                       "GGGCGGCGACCTCGCGGGTTTTCGCTATTTATGAAAATTTTCCGGTTTAAGGCGTTTCCGTTCTTCTTCG")

        let x = FASTA.oneHotDNA(lambda.sequence)
        XCTAssertEqual(x.shape, [48_502, 4])
        let values = x.scalars
        let columnSums = (0..<4).map { c in stride(from: c, to: values.count, by: 4).reduce(Float(0)) { $0 + values[$1] } }
        XCTAssertEqual(columnSums, [12_334, 11_362, 12_820, 11_986])
        let ids = FASTA.baseIDs(lambda.sequence)
        XCTAssertEqual(Array(ids.prefix(4)), [2, 2, 2, 1])  // G G G C
        XCTAssertEqual(ids.filter { $0 == 3 }.count, 11_986)
    }

    func testPlainAndGzipGiveTheSameRecords() throws {
        let text = ">seq1 first one\nACGTN\nacgtn\r\n\n>seq2\n\n>seq3\tthird\ttabbed \nNNAC GT\n"
        let dir = TemporaryDirectory()
        let plain = dir.file("a.fasta")
        writeBytes(Array(text.utf8), to: plain)
        let packed = dir.file("a.fasta.bin")  // no .gz name: detection is by magic bytes
        writeBytes(gzipStored(Array(text.utf8)), to: packed)
        let a = try FASTA.read(contentsOf: plain)
        XCTAssertEqual(a, try FASTA.read(contentsOf: packed))
        XCTAssertEqual(a, try FASTA.parse(text: text))
        XCTAssertEqual(a.map(\.name), ["seq1", "seq2", "seq3"])
        XCTAssertEqual(a.map(\.description), ["first one", "", "third\ttabbed "])
        XCTAssertEqual(a.map { String(decoding: $0.sequence, as: UTF8.self) }, ["ACGTNACGTN", "", "NNACGT"])
    }

    func testOneHotAndIDs() {
        let seq = Array("ACGTNacgtRU".utf8)
        XCTAssertEqual(FASTA.baseIDs(seq), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 3])
        let x = FASTA.oneHotDNA(seq)
        XCTAssertEqual(x.shape, [11, 4])
        let expected: [[Float]] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0],
                                   [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 1]]
        XCTAssertEqual(x.scalars, expected.flatMap { $0 })
        XCTAssertEqual(FASTA.oneHotDNA([]).shape, [0, 4])
    }

    func testAlphabets() throws {
        let text = ">r1\nACGT\n>r2 ambiguous\nACRYGT\n"
        assertDatasetError(.corrupt, path: "amb.fa", ["record 2", "\"r2\"", "line 4", "column 3", "'R'", "ACGTN"]) {
            try FASTA.parse(text: text, name: "amb.fa")
        }
        let records = try FASTA.parse(text: text, alphabet: .dnaWithAmbiguityCodes)
        XCTAssertEqual(records[1].sequence, Array("ACRYGT".utf8))
        let protein = try FASTA.parse(text: ">p\nmkv*\n", alphabet: .protein)
        XCTAssertEqual(protein[0].sequence, Array("MKV*".utf8))
        XCTAssertEqual(try FASTA.parse(text: ">g\nAC-GT\n", alphabet: FASTAAlphabet("ACGT-"))[0].sequence, Array("AC-GT".utf8))
    }

    func testCorruptInputs() throws {
        let dir = TemporaryDirectory()
        func file(_ name: String, _ bytes: [UInt8]) -> String {
            let path = dir.file(name)
            writeBytes(bytes, to: path)
            return path
        }
        let digits = file("digits.fa", Array(">chr1 x\nACGT\nAC1T\n".utf8))
        assertDatasetError(.corrupt, path: digits, ["record 1", "\"chr1\"", "line 3", "column 3", "'1'"]) {
            try FASTA.read(contentsOf: digits)
        }
        let binary = file("binary.fa", Array(">a\nAC".utf8) + [0xFF])
        assertDatasetError(.corrupt, path: binary, ["line 2", "column 3", "0xFF"]) { try FASTA.read(contentsOf: binary) }
        let headless = file("headless.fa", Array("\nACGT\n>a\nAC\n".utf8))
        assertDatasetError(.corrupt, path: headless, ["line 2", "column 1", "before the first '>'"]) {
            try FASTA.read(contentsOf: headless)
        }
        let empty = file("empty.fa", [])
        assertDatasetError(.corrupt, path: empty, ["empty"]) { try FASTA.read(contentsOf: empty) }
        let blank = file("blank.fa", Array("\n\n".utf8))
        assertDatasetError(.corrupt, path: blank, ["no '>' header"]) { try FASTA.read(contentsOf: blank) }
        let nameless = file("nameless.fa", Array(">a\nAC\n> no name\nAC\n".utf8))
        assertDatasetError(.corrupt, path: nameless, ["line 3", "record 2", "no name"]) { try FASTA.read(contentsOf: nameless) }
        let badHeader = file("header.fa", [0x3E, 0x61, 0xC3, 0x0A, 0x41, 0x0A])
        assertDatasetError(.corrupt, path: badHeader, ["line 1", "UTF-8"]) { try FASTA.read(contentsOf: badHeader) }
        assertDatasetError(.notFound, path: dir.file("missing.fa")) { try FASTA.read(contentsOf: dir.file("missing.fa")) }
    }

    func testTruncatedGzipAndSizeLimits() throws {
        let path = try sequencesFile("lambda_virus.fa.gz")
        let bytes = readBytes(path)
        let dir = TemporaryDirectory()
        let cut = dir.file("cut.fa.gz")
        writeBytes(Array(bytes.prefix(bytes.count / 2)), to: cut)
        assertDatasetError(.corrupt, path: cut, ["truncated"]) { try FASTA.read(contentsOf: cut) }
        // The file (15,404 bytes) fits 20,000, but it inflates to about 49,000.
        assertDatasetError(.tooLarge, path: path, ["limit of 20000 bytes"]) { try FASTA.read(contentsOf: path, maxBytes: 20_000) }
        assertDatasetError(.tooLarge, path: path, ["limit of 1000 bytes"]) { try FASTA.read(contentsOf: path, maxBytes: 1000) }
        let plain = dir.file("plain.fa")
        writeBytes(Array(">a\nACGTACGT\n".utf8), to: plain)
        assertDatasetError(.tooLarge, path: plain, ["limit of 8 bytes"]) { try FASTA.read(contentsOf: plain, maxBytes: 8) }
        XCTAssertEqual(try FASTA.read(contentsOf: plain, maxBytes: 12)[0].sequence.count, 8)
    }
}
