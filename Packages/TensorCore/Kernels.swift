import CKernels
import Foundation

/// The instruction-set path the hand-written kernels take.
///
/// The best path the CPU supports is chosen at run time. `NEURITE_ISA=portable|avx2|avx512|neon`
/// forces one (falling back to the best supported one if the CPU lacks it), and
/// `KernelISA.withISA(_:_:)` forces one for a scope, which the tests use to check every path.
public enum KernelISA: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Plain C, auto-vectorised by the compiler (NEON on arm64, SSE2 on x86-64).
    case portable = 0
    /// x86-64 AVX2 with FMA.
    case avx2 = 1
    /// x86-64 AVX-512F with FMA.
    case avx512 = 2
    /// arm64 Advanced SIMD (NEON), hand-written with `arm_neon.h`: supported and best on every
    /// arm64 CPU (AArch64 makes it mandatory), never on x86-64. Checked against the portable path
    /// under qemu (`Tools/neon-check`), not measured natively.
    case neon = 3

    /// The name used by `NEURITE_ISA`.
    public var description: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512"
        case .neon: "neon"
        }
    }

    /// Whether this CPU can run the path.
    public var isSupported: Bool { ck_isa_supported(Int32(rawValue)) != 0 }

    /// Every path this CPU can run, slowest first.
    public static var supported: [KernelISA] { allCases.filter(\.isSupported) }

    /// The process-wide default: `NEURITE_ISA` if set and supported, else the best supported path.
    public static let processDefault: KernelISA = {
        let best = KernelISA(rawValue: ck_isa_best()) ?? .portable
        guard let name = ProcessInfo.processInfo.environment["NEURITE_ISA"]?.lowercased() else { return best }
        guard let forced = allCases.first(where: { $0.description == name }), forced.isSupported else {
            return best
        }
        return forced
    }()

    @TaskLocal private static var override: KernelISA?

    /// The path kernels started now on this task take.
    public static var current: KernelISA { override ?? processDefault }

    /// Runs `body` with kernels forced onto `isa`.
    /// - Precondition: the CPU supports `isa`.
    public static func withISA<R>(_ isa: KernelISA, _ body: () throws -> R) rethrows -> R {
        neuritePrecondition(isa.isSupported, "this CPU does not support the \(isa) kernel path")
        return try $override.withValue(isa, operation: body)
    }
}
