import Datasets
import Foundation
import TensorCore
import XCTest
import _NeuriteTestSupport

/// The shared sequences folder (`<repo>/../shared/data/sequences`), or a visible skip.
func sequencesFile(_ name: String) throws -> String {
    let path = repositoryRoot().appendingPathComponent("../shared/data/sequences/" + name).standardized.path
    guard FileManager.default.fileExists(atPath: path) else {
        throw unavailable("sequence test data not found at \(path) (see shared/data/README.md)")
    }
    return path
}

/// The file's data lines split on commas, read independently of `CSVTable` (Foundation lines;
/// the shared files have no quotes).
private func naiveRows(_ path: String) throws -> [[String]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return text.split(separator: "\n", omittingEmptySubsequences: true).dropFirst()
        .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
}

final class CSVTests: XCTestCase {
    func testStocksAppleRowsInDateOrder() throws {
        let path = try sequencesFile("stocks.csv")
        let table = try CSVTable(contentsOf: path)
        XCTAssertEqual(table.columnNames, ["symbol", "date", "price"])
        let naive = try naiveRows(path)
        XCTAssertEqual(table.rowCount, naive.count)
        XCTAssertEqual(table.rows, naive)
        XCTAssertEqual(Set(try table.column("symbol")), ["MSFT", "AMZN", "IBM", "AAPL", "GOOG"])

        let apple = try table.rows(where: "symbol", equals: "AAPL")
        XCTAssertEqual(apple.rowCount, 123)
        XCTAssertEqual(try apple.column("symbol"), Array(repeating: "AAPL", count: 123))
        let prices = try apple.numericColumn("price")
        let expected = naive.filter { $0[0] == "AAPL" }.map { Double($0[2])! }
        XCTAssertEqual(prices, expected)
        XCTAssertEqual(prices.first, 25.94)   // AAPL,Jan 1 2000
        XCTAssertEqual(prices.last, 223.02)   // AAPL,Mar 1 2010

        // Dates are month by month from Jan 2000 to Mar 2010, in the file's order.
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let stamps = try apple.column("date").map { date -> Int in
            let parts = date.split(separator: " ")
            return Int(parts[2])! * 12 + months.firstIndex(of: String(parts[0]))!
        }
        XCTAssertEqual(stamps, Array(stamps[0]..<(stamps[0] + 123)))
        XCTAssertEqual(stamps[0], 2000 * 12)
        // The selection keeps the file's line numbers (header is line 1).
        let firstLine = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            .firstIndex { $0.hasPrefix("AAPL,") }! + 1
        XCTAssertEqual(apple.lineNumbers.first, firstLine)
    }

    func testSeattleWeatherNumericMatrixAndTextColumn() throws {
        let path = try sequencesFile("seattle-weather.csv")
        let table = try CSVTable(contentsOf: path)
        XCTAssertEqual(table.columnNames, ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"])
        XCTAssertEqual(table.rowCount, 1461)
        let columns = ["precipitation", "temp_max", "temp_min", "wind"]
        let x = try table.numericMatrix(columns: columns)
        XCTAssertEqual(x.shape, [1461, 4])
        let naive = try naiveRows(path)
        assertClose(x.scalars, naive.flatMap { r in (1...4).map { Double(r[$0])! } }, rtol: 1e-7, atol: 0)
        XCTAssertEqual(Array(x.scalars.prefix(4)), [0.0, 12.8, 5.0, 4.7])  // 2012/01/01,0.0,12.8,5.0,4.7
        // Counts from the data README: sun 714, fog 411, rain 259, drizzle 54, snow 23.
        let weather = try table.column("weather")
        let counts = Dictionary(weather.map { ($0, 1) }, uniquingKeysWith: +)
        XCTAssertEqual(counts, ["sun": 714, "fog": 411, "rain": 259, "drizzle": 54, "snow": 23])
        // A text column is not numeric: the error names the line and the column.
        assertDatasetError(.invalidArgument, path: path, ["line 2", "column 6", "weather", "drizzle"]) {
            try table.numericMatrix(columns: ["wind", "weather"])
        }
    }

    func testSeattleTempsWithoutFinalNewline() throws {
        let path = try sequencesFile("seattle-temps.csv")
        XCTAssertNotEqual(readBytes(path).last, UInt8(ascii: "\n"), "the file should end without a newline for this test")
        let table = try CSVTable(contentsOf: path)
        XCTAssertEqual(table.rowCount, 8759)
        let temps = try table.numericColumn("temp")
        let naive = try naiveRows(path).map { Double($0[1])! }
        XCTAssertEqual(temps, naive)
        XCTAssertEqual(temps.first, 39.4)
        XCTAssertEqual(try table.column("date").last, "2010/12/31 23:00")
        XCTAssertEqual(table.lineNumbers.last, 8760)
    }

    func testQuotingLineEndsAndLineNumbers() throws {
        let text = "name,note,value\r\n"
            + "a,\"has, comma\",1\r\n"
            + "\n"
            + "b,\"two\nlines\",2\r"
            + "c,\"say \"\"hi\"\"\",3\n"
            + "d,,4\n"
            + "\"e\",5'10\",5"
        let table = try CSVTable(text: text, name: "inline.csv")
        XCTAssertEqual(table.rows, [["a", "has, comma", "1"], ["b", "two\nlines", "2"],
                                    ["c", "say \"hi\"", "3"], ["d", "", "4"], ["e", "5'10\"", "5"]])
        XCTAssertEqual(table.lineNumbers, [2, 4, 6, 7, 8])
        XCTAssertEqual(try table.numericColumn("value"), [1, 2, 3, 4, 5])
        assertDatasetError(.invalidArgument, path: "inline.csv", ["line 7", "column 2", "empty"]) {
            try table.rows(where: "name", equals: "d").numericColumn("note")
        }
    }

    func testNoHeaderSemicolonsAndByteOrderMark() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("plain.csv")
        writeBytes([0xEF, 0xBB, 0xBF] + Array("1;2.5; -3 \n4;5e1;6\n".utf8), to: path)
        let table = try CSVTable(contentsOf: path, options: CSVOptions(delimiter: UInt8(ascii: ";"), hasHeader: false))
        XCTAssertEqual(table.columnNames, ["1", "2", "3"])
        let x = try table.numericMatrix(columns: ["3", "1"])
        XCTAssertEqual(x.shape, [2, 2])
        XCTAssertEqual(x.scalars, [-3, 1, 6, 4])
        XCTAssertEqual(try table.numericColumn("2"), [2.5, 50])
    }

    func testRaggedRowsNameLineAndColumn() throws {
        let dir = TemporaryDirectory()
        let short = dir.file("short.csv")
        writeBytes(Array("a,b,c\n1,2,3\n4,5\n".utf8), to: short)
        assertDatasetError(.corrupt, path: short, ["line 3", "column 3", "ragged", "missing"]) {
            try CSVTable(contentsOf: short)
        }
        let long = dir.file("long.csv")
        writeBytes(Array("a,b\r\n1,2\r\n3,4\r\n5,6,7\r\n".utf8), to: long)
        assertDatasetError(.corrupt, path: long, ["line 4", "column 3", "extra"]) {
            try CSVTable(contentsOf: long)
        }
    }

    func testBadCellsAndUnknownColumns() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("cells.csv")
        writeBytes(Array("x,y\n1,2\n3,abc\n5,\n7,nan\n9,1e39\n".utf8), to: path)
        let table = try CSVTable(contentsOf: path)
        XCTAssertEqual(try table.numericColumn("x"), [1, 3, 5, 7, 9])
        assertDatasetError(.invalidArgument, path: path, ["line 3", "column 2", "\"y\"", "abc", "not a number"]) {
            try table.numericColumn("y")
        }
        let tail = try table.rows(where: "x", equals: "5")
        assertDatasetError(.invalidArgument, path: path, ["line 4", "column 2", "empty"]) { try tail.numericColumn("y") }
        let nan = try table.rows(where: "x", equals: "7")
        assertDatasetError(.invalidArgument, path: path, ["line 5", "column 2", "finite"]) { try nan.numericColumn("y") }
        let huge = try table.rows(where: "x", equals: "9")
        XCTAssertEqual(try huge.numericColumn("y"), [1e39])  // a Double, but no Float32
        assertDatasetError(.invalidArgument, path: path, ["line 6", "column 2", "Float32"]) {
            try huge.numericMatrix(columns: ["x", "y"])
        }
        assertDatasetError(.invalidArgument, path: path, ["no column named \"z\"", "\"x\", \"y\""]) {
            try table.numericMatrix(columns: ["x", "z"])
        }
        assertDatasetError(.invalidArgument, path: path, ["\"Y\""]) { try table.rows(where: "Y", equals: "1") }
    }

    func testMalformedQuotes() throws {
        let dir = TemporaryDirectory()
        let open = dir.file("open.csv")
        writeBytes(Array("a,b\n1,2\n3,\"never\nclosed,4\n".utf8), to: open)
        assertDatasetError(.corrupt, path: open, ["line 3", "column 2", "unterminated"]) { try CSVTable(contentsOf: open) }
        let after = dir.file("after.csv")
        writeBytes(Array("a,b\n\"x\"y,2\n".utf8), to: after)
        assertDatasetError(.corrupt, path: after, ["line 2", "column 1", "after the closing quote"]) { try CSVTable(contentsOf: after) }
    }

    func testEmptyDuplicateNonUTF8TooLargeAndMissing() throws {
        let dir = TemporaryDirectory()
        let empty = dir.file("empty.csv")
        writeBytes([], to: empty)
        assertDatasetError(.corrupt, path: empty, ["empty"]) { try CSVTable(contentsOf: empty) }
        let blank = dir.file("blank.csv")
        writeBytes(Array("\r\n\n".utf8), to: blank)
        assertDatasetError(.corrupt, path: blank, ["empty"]) { try CSVTable(contentsOf: blank) }
        let duplicate = dir.file("duplicate.csv")
        writeBytes(Array("a,b,a\n1,2,3\n".utf8), to: duplicate)
        assertDatasetError(.corrupt, path: duplicate, ["line 1", "column 3", "duplicate", "column 1"]) { try CSVTable(contentsOf: duplicate) }
        let latin1 = dir.file("latin1.csv")
        writeBytes(Array("a,b\n1,".utf8) + [0x63, 0x61, 0x66, 0xE9] + [0x0A], to: latin1)
        assertDatasetError(.corrupt, path: latin1, ["line 2", "column 2", "UTF-8"]) { try CSVTable(contentsOf: latin1) }
        let big = dir.file("big.csv")
        writeBytes(Array(repeating: UInt8(ascii: "1"), count: 100) + [0x0A], to: big)
        assertDatasetError(.tooLarge, path: big, ["limit of 64 bytes"]) {
            try CSVTable(contentsOf: big, options: CSVOptions(maxBytes: 64))
        }
        XCTAssertEqual(try CSVTable(contentsOf: big, options: CSVOptions(maxBytes: 101)).columnNames.count, 1)
        assertDatasetError(.notFound, path: dir.file("missing.csv")) { try CSVTable(contentsOf: dir.file("missing.csv")) }
    }
}
