import TensorCore
import XCTest

/// The kernel paths' names and values (mirrors of CKernels' `ck_isa`), and which paths each
/// architecture reports: NEON only on arm64, the AVX paths only on x86-64.
final class KernelISATests: XCTestCase {
    func testRawValuesAndNamesMatchCKernelsAndNEURITE_ISA() {
        XCTAssertEqual(KernelISA.allCases.map(\.rawValue), [0, 1, 2, 3])
        XCTAssertEqual(KernelISA.allCases.map(\.description), ["portable", "avx2", "avx512", "neon"])
    }

    func testEachArchitectureReportsOnlyItsOwnPaths() {
        XCTAssertTrue(KernelISA.portable.isSupported)
        #if arch(arm64)
        XCTAssertTrue(KernelISA.neon.isSupported, "Advanced SIMD is mandatory on arm64")
        XCTAssertEqual(KernelISA.supported, [.portable, .neon])
        #else
        XCTAssertFalse(KernelISA.neon.isSupported, "NEON reported on a CPU that is not arm64")
        XCTAssertFalse(KernelISA.supported.contains(.neon))
        #endif
        #if !arch(x86_64)
        XCTAssertFalse(KernelISA.avx2.isSupported)
        XCTAssertFalse(KernelISA.avx512.isSupported)
        #endif
        XCTAssertTrue(KernelISA.supported.contains(KernelISA.processDefault))
    }
}
