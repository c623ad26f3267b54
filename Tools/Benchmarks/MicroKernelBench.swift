import CKernels
import TensorCore

/// The `microkernel` suite: the SGEMM micro-kernel on its own, separated from packing and threading
/// (the calling thread only) (the diagnosis behind the GEMM's next-panel prefetch; see README).
///
/// - `resident`: one packed A panel and one packed B panel, both in L1, multiplied again and
///   again: the kernel's ceiling.
/// - `block`: a 192 x 256 block of A against 1024 columns of B, panel after panel (each B panel
///   reused from L1 by every A panel), as `sgemm` runs it, rotating through 8 blocks of B so that
///   B comes from the last-level cache: once without prefetching the next panel, once with it.
enum MicroKernelBench {
    static func run(minSeconds: Double, isa: String) {
        var mr64: Int64 = 0, nr64: Int64 = 0
        let isaCode = KernelISA.current.rawValue
        ck_sgemm_tile(isaCode, &mr64, &nr64)
        let mr = Int(mr64), nr = Int(nr64)
        let kc = 256, mc = 192 / mr * mr, nc = 1024, ldc = 2048, blocks = 8
        var rng = SeededGenerator(seed: 7)
        let a = [Float]((0..<(mc * kc)).map { _ in rng.nextUnitFloat() })
        let b = [Float]((0..<(kc * nc * blocks)).map { _ in rng.nextUnitFloat() })
        var c = [Float](repeating: 0, count: mc * ldc)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    let aBase = pa.baseAddress!, bBase = pb.baseAddress!, cBase = pc.baseAddress!
                    let repeats = 2000
                    let resident = measure(minSeconds: minSeconds) {
                        for _ in 0..<repeats {
                            ck_sgemm_ukernel(isaCode, Int64(kc), aBase, bBase, cBase, Int64(ldc), mr64, nr64, 1, 1, nil, 0)
                        }
                    }
                    emit([("bench", "microkernel"), ("isa", isa), ("case", "resident"), ("mr", mr), ("nr", nr), ("kc", kc),
                          ("gflops", 2.0 * Double(mr * nr * kc * repeats) / resident / 1e9)])
                    let panelFloats = nr * kc, tilesDown = mc / mr, share = (panelFloats + tilesDown - 1) / tilesDown
                    for prefetch in [false, true] {
                        let seconds = measure(minSeconds: minSeconds) {
                            for block in 0..<blocks {
                                let bBlock = bBase + block * kc * nc
                                for panel in 0..<(nc / nr) {
                                    let bPanel = bBlock + panel * panelFloats
                                    let hasNext = prefetch && panel + 1 < nc / nr
                                    for tile in 0..<tilesDown {
                                        ck_sgemm_ukernel(isaCode, Int64(kc), aBase + tile * mr * kc, bPanel,
                                                         cBase + tile * mr * ldc + panel * nr, Int64(ldc), mr64, nr64, 1, 1,
                                                         bPanel + panelFloats + tile * share, hasNext ? Int64(share) : 0)
                                    }
                                }
                            }
                        }
                        emit([("bench", "microkernel"), ("isa", isa), ("case", "block"), ("mc", mc), ("kc", kc), ("nc", nc),
                              ("prefetch_next_panel", prefetch),
                              ("gflops", 2.0 * Double(mc * nc * kc * blocks) / seconds / 1e9)])
                    }
                }
            }
        }
    }
}
