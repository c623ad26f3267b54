import XCTest
import KerasInterop

final class LinkTests: XCTestCase {
    func testLinksAgainstLibHDF5() {
        XCTAssertTrue(KerasInterop.hdf5Version.hasPrefix("1."), KerasInterop.hdf5Version)
    }
}
