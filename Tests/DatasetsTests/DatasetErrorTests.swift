import Datasets
import XCTest

final class DatasetErrorTests: XCTestCase {
    func testDescriptionNamesThePathAndTheProblem() {
        let e = DatasetError(.corrupt, path: "/data/x.idx", "header claims 60000 items, file holds 12")
        XCTAssertEqual(e.description, "/data/x.idx: header claims 60000 items, file holds 12")
        XCTAssertEqual(DatasetError(.network, "connection refused").description, "connection refused")
        XCTAssertNotEqual(e, DatasetError(.io, path: "/data/x.idx", e.message))
    }
}
