import Foundation
import XCTest
import KerasInterop

/// Inputs `neurite-fuzz --target keras-h5` found that crashed libhdf5 1.10 (signal 11 inside the
/// library) before KerasInterop checked them first (HDF5Preflight.swift). Each must now be a
/// typed error naming what is wrong.
final class HDF5FuzzFindingsTests: XCTestCase {
    func replay(_ name: String, expecting fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("FuzzFindings/\(name)")
        let bytes = try Data(contentsOf: url)
        XCTAssertThrowsError(try HDF5WeightsFile.read(data: bytes), file: file, line: line) { error in
            guard case KerasInteropError.corruptHDF5(let detail) = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue(detail.contains(fragment), detail, file: file, line: line)
        }
    }

    /// A global heap object claiming more bytes than its collection holds (H5HG_read's memcpy).
    func testGlobalHeapObjectLargerThanItsCollection() throws {
        try replay("h5-global-heap-object-size.h5", expecting: "of the global heap collection at offset 13384 claims")
    }

    /// A `name` attribute's heap reference naming an object index that does not exist.
    func testAttributeReferringToAMissingHeapObject() throws {
        try replay("h5-global-heap-bad-reference.h5", expecting: "refers to global heap object")
    }

    /// A group's local heap with its data segment at the undefined address (H5F__accum_read).
    func testLocalHeapOutsideTheFile() throws {
        try replay("h5-local-heap-address.h5", expecting: "the local heap at offset 3448")
    }

    /// A group's symbol table message pointing its local heap at the undefined address (H5HL_protect).
    func testSymbolTableWithoutItsLocalHeap() throws {
        try replay("h5-symbol-table-heap-address.h5", expecting: "the group symbol table at offset 1848 points at no B-tree")
    }

    /// A group B-tree whose only child is at the undefined address (H5G__node_iterate).
    func testGroupBTreeChildOutsideTheFile() throws {
        try replay("h5-btree-child-address.h5", expecting: "the group B-tree node at offset 136 has child 0")
    }

    /// A `name` attribute claiming a string of billions of bytes (libhdf5 allocated and cleared
    /// that much before failing: seconds of CPU and gigabytes per read).
    func testStringAttributeClaimingAHugeLength() throws {
        let start = Date()
        try replay("h5-string-length-claim.h5", expecting: "refers to global heap object")
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }

    /// The checks do not refuse good files: every seed shape reads back, including attributes
    /// added after datasets (which land in continuation chunks of the group's header).
    func testPreflightAcceptsWellFormedFiles() throws {
        var file = HDF5WeightsFile(datasets: ["layers/dense/vars/0": HDF5Tensor(shape: [2], values: [1, 2])],
                                   groups: ["layers/dense/vars": ["name": "dense", "extra": String(repeating: "y", count: 5000)]])
        for k in 0..<8 { file.groups["layers/dense/vars"]!["a\(k)"] = "v\(k)" }
        XCTAssertEqual(try HDF5WeightsFile.read(data: try file.encoded()).groups["layers/dense/vars"], file.groups["layers/dense/vars"])
    }
}
