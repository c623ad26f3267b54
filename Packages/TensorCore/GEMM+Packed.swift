import CKernels

/// The right-hand operand of many matrix products, packed once into the GEMM's panel layout.
///
/// A recurrent layer multiplies every time step's state by the same recurrent kernel; `sgemm`
/// would repack that kernel into panels at every step (a 128 x 512 kernel is 64Ki floats copied
/// per step, a quarter of the step's own work at batch 64 per thread). Packing it once per batch
/// and calling ``multiply(transposeA:m:alpha:a:lda:beta:c:ldc:)`` for each step leaves only the
/// step's own rows to pack.
///
/// `multiply` runs on the calling thread, so callers split rows of C between threads themselves
/// (any number of threads may multiply with one packed matrix at once); the packed matrix is
/// read-only after `init`. Results equal `sgemm`'s for the same operands up to rounding (the same
/// micro-kernel and blocking).
package final class PackedMatrix: @unchecked Sendable {
    /// Rows of `op(B)` (the depth of the products).
    package let k: Int
    /// Columns of `op(B)` (and of C).
    package let n: Int
    /// Rows of C in one register tile (the micro-kernel's MR on this path): a caller that splits
    /// C's rows between threads at multiples of it leaves no tile partly empty but the last.
    package let rowTile: Int
    private let isa: KernelISA
    private let kc: Int, nc: Int, nr: Int
    private let buffer: ScratchBuffer
    /// Where each block of `nc` columns starts in `buffer`.
    private let blockOffsets: [Int]

    /// Packs `op(B)` (`k x n`; `B` stored `k x n`, or `n x k` when `transposed`, rows `ldb` apart).
    /// - Precondition: `k, n > 0` and `ldb` fits the stored matrix.
    package init(_ b: UnsafePointer<Float>, ldb: Int, transposed: Bool, k: Int, n: Int, isa: KernelISA = .current) {
        neuritePrecondition(k > 0 && n > 0, "PackedMatrix needs positive sizes, got k=\(k) n=\(n)")
        neuritePrecondition(ldb >= (transposed ? k : n), "PackedMatrix: ldb=\(ldb) is too small for op(B) \(k)x\(n), transposed=\(transposed)")
        let plan = GemmPlan(m: GemmPlan.mcMax, n: n, k: k, isa: isa, lanes: 1)
        self.k = k
        self.n = n
        self.isa = isa
        kc = plan.kc
        nc = plan.nc
        nr = plan.nr
        rowTile = plan.mr
        var offsets: [Int] = [], total = 0
        for jc in stride(from: 0, to: n, by: plan.nc) {
            offsets.append(total)
            total += k * GemmPlan.roundUp(Swift.min(plan.nc, n - jc), plan.nr)
        }
        blockOffsets = offsets
        buffer = ScratchBuffer(count: total)
        for (q, jc) in stride(from: 0, to: n, by: nc).enumerated() {
            let ncNow = Swift.min(nc, n - jc), panels = (ncNow + nr - 1) / nr, panelStride = panels * nr
            for p0 in stride(from: 0, to: k, by: kc) {
                let depth = Swift.min(kc, k - p0)
                for panel in 0..<panels {
                    plan.packPanelB(transposed: transposed, b: b, ldb: ldb, p0: p0, depth: depth,
                                    col0: jc + panel * nr, cols: Swift.min(nr, ncNow - panel * nr),
                                    into: buffer.base + blockOffsets[q] + p0 * panelStride + panel * nr * depth)
                }
            }
        }
    }

    /// `C = alpha · op(A) · op(B) + beta · C` for `op(A)` `m x k` (`A` stored `m x k`, or `k x m`
    /// when `transposeA`, rows `lda` apart) and this packed `op(B)`, on the calling thread.
    /// When `beta` is 0, C is not read.
    package func multiply(transposeA: Bool = false, m: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        neuritePrecondition(m >= 0 && lda >= Swift.max(1, transposeA ? m : k) && ldc >= n,
                            "PackedMatrix.multiply: m=\(m), lda=\(lda), ldc=\(ldc) do not fit op(A) \(m)x\(k) and C \(m)x\(n)")
        if m == 0 { return }
        let plan = GemmPlan(m: m, n: n, k: k, isa: isa, lanes: 1)
        let aBlock = ScratchBuffer(count: plan.mc * kc)
        for (q, jc) in stride(from: 0, to: n, by: nc).enumerated() {
            let ncNow = Swift.min(nc, n - jc), panels = (ncNow + nr - 1) / nr, panelStride = panels * nr
            for block in 0..<plan.rowBlocks {
                let blockRows = plan.rowRange(block: block)
                let i0 = blockRows.lowerBound, rows = blockRows.count
                for p0 in stride(from: 0, to: k, by: kc) {
                    let depth = Swift.min(kc, k - p0)
                    plan.packBlockA(transposed: transposeA, a: a, lda: lda, row0: i0, rows: rows, p0: p0, depth: depth,
                                    mr: plan.mr, into: aBlock.base)
                    plan.multiplyBlock(depth: depth, a: aBlock.base, rows: rows,
                                       b: buffer.base + blockOffsets[q] + p0 * panelStride, panels: 0..<panels,
                                       columns: ncNow, c: c + i0 * ldc + jc, ldc: ldc, alpha: alpha,
                                       beta: p0 == 0 ? beta : 1)
                }
            }
        }
        withExtendedLifetime(aBlock) {}
    }
}
