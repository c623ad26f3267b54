import TensorCore

/// One FASTA record: the header's first word, the rest of the header, and the sequence.
public struct FASTARecord: Sendable, Equatable {
    /// The header's first word after `>` (up to the first space or tab), e.g. `NC_001416.1`.
    public var name: String
    /// The rest of the header line after the name and the blanks that follow it ("" if none).
    public var description: String
    /// The sequence as upper-case ASCII letters (`UInt8(ascii: "A")`...), its lines joined.
    public var sequence: [UInt8]

    /// A record with the given parts.
    public init(name: String, description: String, sequence: [UInt8]) {
        self.name = name
        self.description = description
        self.sequence = sequence
    }
}

/// The letters a FASTA sequence may hold. Lower-case input is accepted and upper-cased;
/// anything else is an error naming the record, line and column.
public struct FASTAAlphabet: Sendable, Equatable {
    /// The accepted letters, upper case, as given.
    public let letters: String
    private let accepted: [Bool]  // 256 entries, indexed by the upper-cased byte

    /// DNA: `A C G T N` (the default).
    public static let dna = FASTAAlphabet("ACGTN")
    /// DNA with the IUPAC ambiguity codes: `A C G T N R Y S W K M B D H V`.
    public static let dnaWithAmbiguityCodes = FASTAAlphabet("ACGTNRYSWKMBDHV")
    /// RNA: `A C G U N`.
    public static let rna = FASTAAlphabet("ACGUN")
    /// Proteins: the 20 amino acids, `B Z J U O`, `X` (unknown) and `*` (stop).
    public static let protein = FASTAAlphabet("ACDEFGHIKLMNPQRSTVWYBZJUOX*")

    /// An alphabet of `letters` (upper-case ASCII letters, `-` or `*`).
    ///
    /// - Precondition: every character of `letters` is one of those.
    public init(_ letters: String) {
        var accepted = [Bool](repeating: false, count: 256)
        for b in letters.utf8 {
            neuritePrecondition((b >= 0x41 && b <= 0x5A) || b == 0x2D || b == 0x2A,
                                "FASTAAlphabet: letters must be upper-case ASCII letters, '-' or '*'; got \"\(letters)\"")
            accepted[Int(b)] = true
        }
        self.letters = letters
        self.accepted = accepted
    }

    /// Whether the upper-cased byte `b` is in the alphabet.
    func accepts(_ b: UInt8) -> Bool { accepted[Int(b)] }
}

/// Reading FASTA files (plain or gzip) and encoding DNA for models.
///
/// ```swift
/// let records = try FASTA.read(contentsOf: "lambda_virus.fa.gz")
/// let x = FASTA.oneHotDNA(records[0].sequence)   // [48502, 4]
/// ```
public enum FASTA {
    /// Reads every record of a FASTA file, gzip-compressed or not (told by the magic bytes
    /// 1f 8b, not by the name).
    ///
    /// The format: a record starts with a `>` header line (name = first word, description = the
    /// rest); the lines up to the next header are its sequence. Line ends may be LF or CRLF;
    /// spaces, tabs and CRs inside sequence lines and empty lines are skipped. Every other byte of
    /// a sequence line must be in `alphabet` (upper- or lower-case). A record may have an empty
    /// sequence.
    ///
    /// Costs one pass over the (decompressed) bytes; memory is the decompressed file plus the
    /// sequences. `maxBytes` bounds both the file and its decompressed size (1 GiB by default).
    ///
    /// - Throws: ``DatasetError`` naming the file: `.notFound`/`.io` when it cannot be read;
    ///   `.tooLarge` over `maxBytes`; `.corrupt` for an empty file, sequence data before the
    ///   first header, a header with no name, a header that is not UTF-8, a character outside the
    ///   alphabet (naming the record, its line and column, all 1-based), or a damaged or truncated
    ///   gzip stream.
    public static func read(contentsOf path: String, alphabet: FASTAAlphabet = .dna,
                            maxBytes: Int = 1 << 30) throws -> [FASTARecord] {
        neuritePrecondition(maxBytes >= 0, "FASTA.read: maxBytes must be >= 0, got \(maxBytes)")
        let file = try FileIO.readAll(path, limit: maxBytes, what: "FASTA file")
        if Gzip.hasMagic(file.bytes) {
            let text = try Gzip.decompress(file.bytes, path: path, limit: maxBytes)
            return try parse(text.bytes, path: path, alphabet: alphabet)
        }
        return try parse(file.bytes, path: path, alphabet: alphabet)
    }

    /// Parses FASTA text held in memory; `name` stands for the path in errors.
    ///
    /// - Throws: ``DatasetError`` `.corrupt` as ``read(contentsOf:alphabet:maxBytes:)`` does.
    public static func parse(text: String, name: String? = nil, alphabet: FASTAAlphabet = .dna) throws -> [FASTARecord] {
        var text = text
        return try text.withUTF8 { try parse(UnsafeRawBufferPointer($0), path: name, alphabet: alphabet) }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, path: String?, alphabet: FASTAAlphabet) throws -> [FASTARecord] {
        var records: [FASTARecord] = []
        var line = 0
        var position = 0
        let n = bytes.count
        while position < n {
            line += 1
            var end = position
            while end < n && bytes[end] != 0x0A { end += 1 }
            let lineStart = position
            position = end + 1
            if bytes[lineStart] == UInt8(ascii: ">") && lineStart < end {
                var stop = end
                if stop > lineStart + 1 && bytes[stop - 1] == 0x0D { stop -= 1 }
                let header = UnsafeRawBufferPointer(rebasing: bytes[(lineStart + 1)..<stop])
                guard let text = String(validating: header, as: UTF8.self) else {
                    throw DatasetError(.corrupt, path: path, "line \(line): the header of record \(records.count + 1) is not valid UTF-8")
                }
                let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
                let name = text.prefix { !isBlank($0) }
                guard !name.isEmpty else {
                    throw DatasetError(.corrupt, path: path, "line \(line): the header of record \(records.count + 1) has no name after '>'")
                }
                let description = text.dropFirst(name.count).drop(while: isBlank)
                records.append(FASTARecord(name: String(name), description: String(description), sequence: []))
                continue
            }
            var column = 0
            for i in lineStart..<end {
                column += 1
                let b = bytes[i]
                if b == 0x20 || b == 0x09 || b == 0x0D { continue }
                let upper = (b >= 0x61 && b <= 0x7A) ? b - 0x20 : b
                guard !records.isEmpty else {
                    throw DatasetError(.corrupt, path: path,
                                       "line \(line), column \(column): sequence data before the first '>' header (not a FASTA file?)")
                }
                guard alphabet.accepts(upper) else {
                    let shown = (0x21...0x7E).contains(b) ? "'\(Unicode.Scalar(b))'" : "byte 0x\(String(b, radix: 16, uppercase: true))"
                    throw DatasetError(.corrupt, path: path,
                                       "record \(records.count) (\"\(records[records.count - 1].name)\"), line \(line), column \(column): \(shown) is not in the alphabet \(alphabet.letters)")
                }
                records[records.count - 1].sequence.append(upper)
            }
        }
        guard !records.isEmpty else {
            throw DatasetError(.corrupt, path: path, n == 0 ? "empty file: no FASTA record" : "no FASTA record: the file has no '>' header line")
        }
        return records
    }

    /// The id of each base, for an embedding or sparse labels: A 0, C 1, G 2, T (or U) 3, and 4
    /// for N and any other letter (ambiguity codes). Lower case is read as upper case. `O(L)`.
    public static func baseIDs(_ sequence: [UInt8]) -> [Int] {
        sequence.map { Int(baseID($0)) }
    }

    /// One-hot rows for a DNA sequence: a Float32 tensor `[L, 4]` with columns A, C, G, T (U
    /// counts as T); N and any other letter (ambiguity codes) is a row of zeros, so "unknown"
    /// adds nothing to a convolution. Lower case is read as upper case. `O(L)`.
    public static func oneHotDNA(_ sequence: [UInt8]) -> Tensor {
        Tensor(shape: [sequence.count, 4], unsafeUninitialized: { out in
            for i in 0..<out.count { out[i] = 0 }
            for (i, b) in sequence.enumerated() {
                let id = baseID(b)
                if id < 4 { out[i * 4 + Int(id)] = 1 }
            }
        })
    }

    private static func baseID(_ b: UInt8) -> UInt8 {
        switch b | 0x20 {  // ASCII lower case
        case UInt8(ascii: "a"): 0
        case UInt8(ascii: "c"): 1
        case UInt8(ascii: "g"): 2
        case UInt8(ascii: "t"), UInt8(ascii: "u"): 3
        default: 4
        }
    }
}
