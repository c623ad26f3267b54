import TensorCore

// Why a parser of our own rather than the mirrored packages: every error here must name the
// file, the 1-based line and the 1-based column. yaslab/CSV.swift 2.5.2 throws `CSVError`
// cases that carry no position (`cannotReadHeaderRow`, `invalidCSVFormat`...), and SwiftCSV
// 0.10.0 throws `CSVParseError.quotation(message:)` / `.generic(message:)` with only a text;
// neither says at which line or column a file went wrong. RFC 4180 is small enough to parse
// exactly in one pass over the bytes, counting lines as we go, so we do that instead of adding
// a dependency.

/// How ``CSVTable`` reads a delimited text file.
public struct CSVOptions: Sendable, Equatable {
    /// The byte between fields: `,` by default; `;` and tab are common too. Must be ASCII and
    /// neither `"`, CR nor LF.
    public var delimiter: UInt8
    /// Whether the first record names the columns. Without a header the columns are named
    /// `"1"`, `"2"`, ... (their 1-based numbers).
    public var hasHeader: Bool
    /// The largest file accepted, in bytes (256 MiB by default); a larger file is `.tooLarge`
    /// before anything is parsed. Memory use is about three times the file's size.
    public var maxBytes: Int

    /// Options for a comma-separated file with a header, up to `maxBytes` bytes.
    ///
    /// - Precondition: `delimiter` is ASCII and not `"`, CR or LF; `maxBytes >= 0`.
    public init(delimiter: UInt8 = UInt8(ascii: ","), hasHeader: Bool = true, maxBytes: Int = 256 << 20) {
        neuritePrecondition(delimiter < 0x80 && delimiter != 0x22 && delimiter != 0x0A && delimiter != 0x0D,
                            "CSVOptions: the delimiter must be an ASCII byte other than '\"', CR and LF, got \(delimiter)")
        neuritePrecondition(maxBytes >= 0, "CSVOptions: maxBytes must be >= 0, got \(maxBytes)")
        self.delimiter = delimiter
        self.hasHeader = hasHeader
        self.maxBytes = maxBytes
    }
}

/// A delimited text file (RFC 4180 CSV) as column names and string cells, row by row.
///
/// ```swift
/// let stocks = try CSVTable(contentsOf: "stocks.csv")          // symbol,date,price
/// let apple = try stocks.rows(where: "symbol", equals: "AAPL")  // file order (dates ascending)
/// let prices = try apple.numericColumn("price")                 // [Double], 123 values
/// let x = try weather.numericMatrix(columns: ["temp_max", "temp_min"])  // [rows, 2] Float32
/// ```
///
/// **Format.** Fields are separated by ``CSVOptions/delimiter``; records end with LF, CRLF or a
/// lone CR. A field that starts with `"` is quoted: it may hold delimiters, line breaks and `""`
/// (one quote), and must be followed by a delimiter or the end of the record. A quote inside an
/// unquoted field is kept as a character (as Python's `csv` does). A UTF-8 byte-order mark at
/// the start is skipped, and empty lines are skipped. Cells are kept verbatim (no trimming).
///
/// **Errors.** Every problem is a ``DatasetError`` naming the file and, where there is one, the
/// 1-based line and column (the field's number in its record): `.corrupt` for a record with
/// more or fewer fields than the header, an unterminated quote, text after a closing quote,
/// invalid UTF-8, an empty file or duplicate column names; `.tooLarge` for a file over
/// ``CSVOptions/maxBytes``; `.invalidArgument` for an unknown column name, a non-numeric, empty
/// or non-finite cell in a numeric column. Rows remember their line in the file, so an error in
/// a selection (``rows(where:equals:)``) still points at the file's line.
///
/// Reading costs one pass over the bytes and one `String` per cell.
public struct CSVTable: Sendable {
    /// The file the table was read from (nil for ``init(text:name:options:)`` without a name).
    public let path: String?
    /// The column names, in file order: the header's fields, or `"1"`, `"2"`, ... without one.
    public let columnNames: [String]
    /// The cells, one array per record, each with `columnNames.count` strings.
    public let rows: [[String]]
    /// The 1-based line where each row starts in the file.
    public let lineNumbers: [Int]

    /// Reads and parses the file at `path`.
    ///
    /// - Throws: ``DatasetError``: `.notFound`/`.io` when it cannot be read, `.tooLarge` over
    ///   `options.maxBytes`, `.corrupt` for malformed CSV (with line and column).
    public init(contentsOf path: String, options: CSVOptions = CSVOptions()) throws {
        let buffer = try FileIO.readAll(path, limit: options.maxBytes, what: "CSV file")
        self = try CSVTable.parse(buffer.bytes, path: path, options: options)
    }

    /// Parses CSV text held in memory; `name` stands for the path in errors.
    ///
    /// - Throws: ``DatasetError`` as ``init(contentsOf:options:)`` does.
    public init(text: String, name: String? = nil, options: CSVOptions = CSVOptions()) throws {
        var text = text
        let count = text.utf8.count
        if count > options.maxBytes {
            throw DatasetError(.tooLarge, path: name, "CSV text is \(count) bytes, over the limit of \(options.maxBytes) bytes")
        }
        self = try text.withUTF8 { try CSVTable.parse(UnsafeRawBufferPointer($0), path: name, options: options) }
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, path: String?, options: CSVOptions) throws -> CSVTable {
        var parser = CSVParser(bytes: bytes, path: path, delimiter: options.delimiter)
        var records = try parser.parse()
        guard let first = records.first else {
            throw DatasetError(.corrupt, path: path, "empty CSV file: no \(options.hasHeader ? "header" : "records")")
        }
        let names: [String]
        if options.hasHeader {
            names = first.fields
            var seen: [String: Int] = [:]
            for (i, name) in names.enumerated() {
                if let earlier = seen[name] {
                    throw DatasetError(.corrupt, path: path,
                                       "line \(first.line), column \(i + 1): duplicate column name \"\(name)\" (also column \(earlier + 1))")
                }
                seen[name] = i
            }
            records.removeFirst()
        } else {
            names = (1...first.fields.count).map(String.init)
        }
        for record in records where record.fields.count != names.count {
            let column = min(record.fields.count, names.count) + 1
            let what = record.fields.count < names.count
                ? "has \(record.fields.count) fields but the \(options.hasHeader ? "header" : "first record") has \(names.count): column \(column) is missing"
                : "has \(record.fields.count) fields but the \(options.hasHeader ? "header" : "first record") has \(names.count): column \(column) is extra"
            throw DatasetError(.corrupt, path: path, "line \(record.line), column \(column): ragged row, the record \(what)")
        }
        return CSVTable(path: path, columnNames: names, rows: records.map { $0.fields }, lineNumbers: records.map { $0.line })
    }

    private init(path: String?, columnNames: [String], rows: [[String]], lineNumbers: [Int]) {
        self.path = path
        self.columnNames = columnNames
        self.rows = rows
        self.lineNumbers = lineNumbers
    }

    /// The number of data rows (the header is not counted).
    public var rowCount: Int { rows.count }

    /// The 0-based position of the column named `name`.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` naming the file and the known columns.
    public func columnIndex(_ name: String) throws -> Int {
        guard let i = columnNames.firstIndex(of: name) else {
            throw DatasetError(.invalidArgument, path: path,
                               "no column named \"\(name)\"; the columns are \(columnNames.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
        return i
    }

    /// The cells of column `name`, top to bottom.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` for an unknown column.
    public func column(_ name: String) throws -> [String] {
        let c = try columnIndex(name)
        return rows.map { $0[c] }
    }

    /// The rows whose cell in column `column` equals `value` exactly, in file order, as a table
    /// with the same columns (and the rows' original line numbers). `O(rows)`.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` for an unknown column.
    public func rows(where column: String, equals value: String) throws -> CSVTable {
        let c = try columnIndex(column)
        let keep = rows.indices.filter { rows[$0][c] == value }
        return CSVTable(path: path, columnNames: columnNames, rows: keep.map { rows[$0] },
                        lineNumbers: keep.map { lineNumbers[$0] })
    }

    /// Column `name` parsed as numbers, top to bottom.
    ///
    /// Accepts what Swift's `Double(_:)` accepts (`12`, `-0.5`, `1e-3`) after trimming spaces and
    /// tabs; rejects empty cells and non-finite values (`nan`, `inf`), which would silently
    /// poison training.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` for an unknown column, or naming the line
    ///   and column of the first cell that is not a finite number.
    public func numericColumn(_ name: String) throws -> [Double] {
        let c = try columnIndex(name)
        return try rows.indices.map { try number(row: $0, column: c) }
    }

    /// The columns `columns`, in that order, as a Float32 tensor `[rowCount, columns.count]`.
    ///
    /// - Throws: ``DatasetError`` `.invalidArgument` for an unknown column, or naming the line
    ///   and column of the first cell that is not a finite number or overflows Float32.
    public func numericMatrix(columns: [String]) throws -> Tensor {
        let indices = try columns.map(columnIndex)
        var values: [Float] = []
        values.reserveCapacity(rows.count * indices.count)
        for r in rows.indices {
            for c in indices {
                let v = try number(row: r, column: c)
                let f = Float(v)
                guard f.isFinite else {
                    throw cellError(row: r, column: c, "\(v) is outside the range of Float32")
                }
                values.append(f)
            }
        }
        return Tensor(shape: [rows.count, indices.count], scalars: values)
    }

    private func number(row r: Int, column c: Int) throws -> Double {
        var cell = Substring(rows[r][c])
        while let f = cell.first, f == " " || f == "\t" { cell.removeFirst() }
        while let l = cell.last, l == " " || l == "\t" { cell.removeLast() }
        if cell.isEmpty { throw cellError(row: r, column: c, "empty cell where a number is expected") }
        guard let v = Double(cell) else {
            throw cellError(row: r, column: c, "\"\(rows[r][c].prefix(40))\" is not a number")
        }
        guard v.isFinite else { throw cellError(row: r, column: c, "\"\(cell)\" is not a finite number") }
        return v
    }

    private func cellError(row r: Int, column c: Int, _ what: String) -> DatasetError {
        DatasetError(.invalidArgument, path: path,
                     "line \(lineNumbers[r]), column \(c + 1) (\"\(columnNames[c])\"): \(what)")
    }
}

/// One pass of RFC 4180 over bytes, counting lines so every error can say where.
private struct CSVParser {
    struct Record {
        var fields: [String]
        var line: Int
    }

    let bytes: UnsafeRawBufferPointer
    let path: String?
    let delimiter: UInt8
    var position = 0
    var line = 1

    init(bytes: UnsafeRawBufferPointer, path: String?, delimiter: UInt8) {
        self.bytes = bytes
        self.path = path
        self.delimiter = delimiter
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { position = 3 }
    }

    private static let quote = UInt8(ascii: "\"")
    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    /// Consumes a line ending (CRLF, LF or lone CR) at `position`, if there is one.
    private mutating func skipLineEnd() -> Bool {
        guard position < bytes.count else { return false }
        if bytes[position] == Self.lf { position += 1; line += 1; return true }
        if bytes[position] == Self.cr {
            position += 1
            if position < bytes.count && bytes[position] == Self.lf { position += 1 }
            line += 1
            return true
        }
        return false
    }

    mutating func parse() throws -> [Record] {
        var records: [Record] = []
        while position < bytes.count {
            if skipLineEnd() { continue }  // an empty line
            let start = line
            var fields: [String] = []
            while true {
                fields.append(try field(number: fields.count + 1))
                if position < bytes.count && bytes[position] == delimiter {
                    position += 1
                    continue
                }
                _ = skipLineEnd()
                break
            }
            records.append(Record(fields: fields, line: start))
        }
        return records
    }

    /// One field starting at `position`; stops before the delimiter or line end that follows it.
    private mutating func field(number: Int) throws -> String {
        let begin = position
        guard position < bytes.count, bytes[position] == Self.quote else {
            while position < bytes.count {
                let b = bytes[position]
                if b == delimiter || b == Self.cr || b == Self.lf { break }
                position += 1
            }
            return try text(UnsafeRawBufferPointer(rebasing: bytes[begin..<position]), column: number, line: line)
        }
        let openLine = line
        position += 1
        var content: [UInt8] = []
        while true {
            guard position < bytes.count else {
                throw DatasetError(.corrupt, path: path,
                                   "line \(openLine), column \(number): unterminated quoted field (the quote opened here is never closed before the end of the file)")
            }
            let b = bytes[position]
            position += 1
            if b == Self.quote {
                if position < bytes.count && bytes[position] == Self.quote {
                    content.append(Self.quote)
                    position += 1
                    continue
                }
                break
            }
            if b == Self.lf || (b == Self.cr && !(position < bytes.count && bytes[position] == Self.lf)) { line += 1 }
            content.append(b)
        }
        if position < bytes.count {
            let b = bytes[position]
            if b != delimiter && b != Self.cr && b != Self.lf {
                throw DatasetError(.corrupt, path: path,
                                   "line \(line), column \(number): unexpected character '\(Unicode.Scalar(b))' after the closing quote of a quoted field (a quote inside a quoted field must be doubled)")
            }
        }
        return try content.withUnsafeBytes { try text($0, column: number, line: openLine) }
    }

    private func text(_ raw: UnsafeRawBufferPointer, column: Int, line: Int) throws -> String {
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw DatasetError(.corrupt, path: path, "line \(line), column \(column): the field is not valid UTF-8")
        }
        return s
    }
}
