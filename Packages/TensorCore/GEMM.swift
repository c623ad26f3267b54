import CKernels

/// Single-precision general matrix multiply on row-major buffers:
/// `C = alpha * op(A) * op(B) + beta * C`, where `op(X)` is `X` or its transpose.
///
/// `op(A)` is `m x k`, `op(B)` is `k x n` and `C` is `m x n`. `lda`, `ldb` and `ldc` are the
/// distances between consecutive rows *as stored* (so for a transposed `A` stored as `k x m`,
/// `lda >= m`). When `beta` is 0, `C` is not read, so it may hold anything (NaN included).
///
/// The algorithm is the classic Goto/BLIS one: `B` is packed into panels of `NR` columns
/// (shared by all threads, for a range of columns of at most 16 MiB), each
/// thread packs `MC x KC` blocks of `A` into panels of `MR` rows that stay in its L2 cache,
/// and an ISA-specific micro-kernel (see `KernelISA`) multiplies one `MR x NR` register tile
/// at a time. Work is split over the shared `ThreadPool` by blocks of rows of `C` (and, when
/// there are too few, also by columns); products below about a million flops stay on the
/// calling thread.
package func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                  alpha: Float, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    neuritePrecondition(m >= 0 && n >= 0 && k >= 0, "sgemm needs non-negative sizes, got m=\(m) n=\(n) k=\(k)")
    neuritePrecondition(lda >= max(1, transposeA ? m : k), "sgemm: lda=\(lda) is too small for op(A) \(m)x\(k), transposeA=\(transposeA)")
    neuritePrecondition(ldb >= max(1, transposeB ? k : n), "sgemm: ldb=\(ldb) is too small for op(B) \(k)x\(n), transposeB=\(transposeB)")
    neuritePrecondition(ldc >= max(1, n), "sgemm: ldc=\(ldc) is too small for C \(m)x\(n)")
    if m == 0 || n == 0 { return }
    if k == 0 || alpha == 0 {
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
        }
        return
    }
    // A few rows (one image through a layer): packing B would cost more than the product.
    if m <= 4 && n * k <= 1 << 22 {
        ck_sgemm_small(KernelISA.current.rawValue, transposeA ? 1 : 0, transposeB ? 1 : 0, Int64(m), Int64(n), Int64(k),
                       alpha, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
        return
    }
    let plan = GemmPlan(m: m, n: n, k: k, isa: KernelISA.current)
    if plan.lanes > 1 && plan.tiles < plan.lanes && k >= 256 * plan.lanes {
        splitDepth(plan: plan, transposeA: transposeA, transposeB: transposeB, alpha: alpha,
                   a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    plan.run(transposeA: transposeA, transposeB: transposeB, alpha: alpha,
             a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}

/// A small C with a long inner dimension (a convolution's kernel gradient: 9 x 32 from a sum
/// over 100,000 positions) has fewer register tiles than threads, so splitting C cannot keep
/// the threads busy. Split the depth instead: each lane multiplies its own slice of K, lane 0
/// into C itself and the others into private partial products, which are then added to C.
private func splitDepth(plan: GemmPlan, transposeA: Bool, transposeB: Bool, alpha: Float,
                        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let (m, n, k, lanes) = (plan.m, plan.n, plan.k, plan.lanes)
    let partials = ScratchBuffer(count: (lanes - 1) * m * n)
    ThreadPool.shared.parallelFor(lanes) { part, _ in
        let p0 = k * part / lanes, p1 = k * (part + 1) / lanes
        let aPart = transposeA ? a + p0 * lda : a + p0
        let bPart = transposeB ? b + p0 : b + p0 * ldb
        let target = part == 0 ? c : partials.base + (part - 1) * m * n
        GemmPlan(m: m, n: n, k: p1 - p0, isa: plan.isa, lanes: 1)
            .run(transposeA: transposeA, transposeB: transposeB, alpha: alpha,
                 a: aPart, lda: lda, b: bPart, ldb: ldb,
                 beta: part == 0 ? beta : 0, c: target, ldc: part == 0 ? ldc : n)
    }
    for part in 1..<lanes {
        let partial = partials.base + (part - 1) * m * n
        for i in 0..<m {
            let row = c + i * ldc, add = partial + i * n
            for j in 0..<n { row[j] += add[j] }
        }
    }
    withExtendedLifetime(partials) {}
}

/// Block sizes and the work split of one GEMM call.
struct GemmPlan {
    let m: Int, n: Int, k: Int
    let isa: KernelISA
    let mr: Int, nr: Int
    /// Depth of a packed block: a `KC x NR` panel of B (32 KiB at NR = 32) stays in L1.
    let kc: Int
    /// Rows of A packed per block, at most: an `MC x KC` block stays in L2.
    let mc: Int
    /// The number of row blocks; see ``rowRange(block:)``.
    let rowBlocks: Int
    /// Columns of B packed at once: `K x NC` floats, at most 16 MiB. A is packed again for every
    /// range of NC columns, so a 2048 x 2048 B is packed whole (packing A twice cost 7% there).
    let nc: Int
    let lanes: Int
    /// Whether B is packed once for all threads (large products) or each task packs the panels
    /// it needs itself, saving a barrier between the two phases (small products, where the
    /// barrier would cost more than the repeated packing).
    let sharedB: Bool

    static let sharedPackingFlops = 64_000_000
    static let kcMax = 256
    static let mcMax = 192
    static let packedBBudget = 4 << 20  // floats (16 MiB)

    /// The number of MR x NR register tiles that cover C.
    var tiles: Int { ((m + mr - 1) / mr) * ((n + nr - 1) / nr) }

    init(m: Int, n: Int, k: Int, isa: KernelISA, lanes requestedLanes: Int? = nil) {
        self.m = m; self.n = n; self.k = k; self.isa = isa
        var mr: Int64 = 0, nr: Int64 = 0
        ck_sgemm_tile(isa.rawValue, &mr, &nr)
        self.mr = Int(mr); self.nr = Int(nr)
        // Equal depth blocks: 784 = 4 x 196 rather than 3 x 256 + 16, whose last thin block
        // would pay a full load and store of C for little work.
        let depthBlocks = (k + GemmPlan.kcMax - 1) / GemmPlan.kcMax
        kc = (k + depthBlocks - 1) / depthBlocks
        nc = min(GemmPlan.roundUp(n, self.nr), max(self.nr, GemmPlan.packedBBudget / k / self.nr * self.nr))
        let flops = 2 * m * n * k
        lanes = requestedLanes ?? (flops < 1_000_000 ? 1 : ThreadPool.shared.effectiveWidth)
        sharedB = flops >= GemmPlan.sharedPackingFlops
        // Balanced row blocks: as few as fit MC, rounded up to a multiple of the thread count,
        // and never more than there are row tiles.
        let rowTiles = (m + self.mr - 1) / self.mr
        var blocks = (m + GemmPlan.mcMax - 1) / GemmPlan.mcMax
        if lanes > 1 { blocks = (blocks + lanes - 1) / lanes * lanes }
        rowBlocks = max(1, min(blocks, rowTiles))
        mc = (rowTiles + rowBlocks - 1) / rowBlocks * self.mr
    }

    /// Rows of C in row block `block`: the row tiles shared out as evenly as whole tiles allow
    /// (2048 rows in 12 blocks are 14 or 15 tiles of 12 each, where equal 180-row blocks would
    /// leave a last block of 68 rows and one thread with 10% more work than the other).
    func rowRange(block: Int) -> Range<Int> {
        let rowTiles = (m + mr - 1) / mr
        let lower = rowTiles * block / rowBlocks * mr, upper = rowTiles * (block + 1) / rowBlocks * mr
        return lower..<min(upper, m)
    }

    static func roundUp(_ x: Int, _ multiple: Int) -> Int { (x + multiple - 1) / multiple * multiple }

    func run(transposeA: Bool, transposeB: Bool, alpha: Float,
             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let ncPanels = (nc + nr - 1) / nr
        // Per lane: one packed MC x KC block of A, and (without shared packing) one KC x NC slice of B.
        let laneFloats = mc * kc + (sharedB ? 0 : kc * ncPanels * nr)
        let scratch = ScratchBuffer(count: lanes * laneFloats + (sharedB ? k * ncPanels * nr : 0))
        let sharedBBase = scratch.base + lanes * laneFloats
        let pool = ThreadPool.shared

        for jc in stride(from: 0, to: n, by: nc) {
            let ncNow = min(nc, n - jc)
            let panels = (ncNow + nr - 1) / nr
            let panelStride = panels * nr  // floats per packed row of this column range
            if sharedB && !transposeB {
                // Pack all of B's columns jc..<jc+ncNow, a group of its rows per task, each row
                // read once from start to end and spread over the panels of its depth block.
                let rowsPerTask = 16, tasks = (k + rowsPerTask - 1) / rowsPerTask
                let packRows = { (task: Int, _: Int) in
                    for p in (task * rowsPerTask)..<min(k, (task + 1) * rowsPerTask) {
                        let p0 = p / kc * kc, depth = min(kc, k - p0)
                        ck_pack_row_panels(b + p * ldb + jc, Int64(ncNow), Int64(nr),
                                           sharedBBase + p0 * panelStride + (p - p0) * nr, Int64(nr * depth))
                    }
                }
                if lanes > 1 { pool.parallelFor(tasks, packRows) } else { for t in 0..<tasks { packRows(t, 0) } }
            } else if sharedB {
                // Pack all of B's columns jc..<jc+ncNow, block by block of KC rows, panel by panel.
                let depthBlocks = (k + kc - 1) / kc
                let packB = { (task: Int, _: Int) in
                    let panel = task % panels, p0 = (task / panels) * kc, depth = min(kc, k - p0)
                    packPanelB(transposed: transposeB, b: b, ldb: ldb, p0: p0, depth: depth,
                               col0: jc + panel * nr, cols: min(nr, ncNow - panel * nr),
                               into: sharedBBase + p0 * panelStride + panel * nr * depth)
                }
                if lanes > 1 { pool.parallelFor(panels * depthBlocks, packB) } else { for t in 0..<panels * depthBlocks { packB(t, 0) } }
            }

            // Split C's rows into blocks and, when there are fewer than 2 blocks per thread, its columns too.
            let splits = lanes > 1 ? min(panels, max(1, (2 * lanes + rowBlocks - 1) / rowBlocks)) : 1
            let compute = { (task: Int, lane: Int) in
                let block = task / splits, split = task % splits
                let blockRows = rowRange(block: block)
                let i0 = blockRows.lowerBound, rows = blockRows.count
                let firstPanel = panels * split / splits, endPanel = panels * (split + 1) / splits
                let aPanel = scratch.base + lane * laneFloats
                let privateB = aPanel + mc * kc
                for p0 in stride(from: 0, to: k, by: kc) {
                    let depth = min(kc, k - p0)
                    packBlockA(transposed: transposeA, a: a, lda: lda, row0: i0, rows: rows,
                               p0: p0, depth: depth, mr: mr, into: aPanel)
                    // The packed panel `panel` of this depth block lies at bBlock + panel * nr * depth.
                    let bBlock: UnsafeMutablePointer<Float>
                    if sharedB {
                        bBlock = sharedBBase + p0 * panelStride
                    } else {
                        bBlock = privateB - firstPanel * nr * depth
                        for panel in firstPanel..<endPanel {
                            packPanelB(transposed: transposeB, b: b, ldb: ldb, p0: p0, depth: depth,
                                       col0: jc + panel * nr, cols: min(nr, ncNow - panel * nr),
                                       into: bBlock + panel * nr * depth)
                        }
                    }
                    multiplyBlock(depth: depth, a: aPanel, rows: rows, b: bBlock, panels: firstPanel..<endPanel,
                                  columns: ncNow, c: c + i0 * ldc + jc, ldc: ldc, alpha: alpha,
                                  beta: p0 == 0 ? beta : 1)
                }
            }
            let tasks = rowBlocks * splits
            if lanes > 1 { pool.parallelFor(tasks, compute) } else { for t in 0..<tasks { compute(t, 0) } }
        }
        withExtendedLifetime(scratch) {}
    }

    /// The macro-kernel: `C = alpha * A * B + beta * C` for a packed `rows x depth` block of A
    /// (`a`, panels of `mr` rows) and packed panels `panels` of a depth block of B (panel `q` at
    /// `b + q * nr * depth`), into C's columns `panels.lowerBound * nr ..< columns` from `c`.
    ///
    /// Each panel of B is reused from L1 by every row panel of A. While one panel is in use, the
    /// micro-kernels fetch the next one, each its equal share, so it is not fetched all at once
    /// from the last-level cache when its turn comes.
    func multiplyBlock(depth: Int, a: UnsafePointer<Float>, rows: Int, b: UnsafePointer<Float>, panels: Range<Int>,
                       columns: Int, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        let isaCode = isa.rawValue
        let panelFloats = nr * depth
        let tilesDown = (rows + mr - 1) / mr
        let share = (panelFloats + tilesDown - 1) / tilesDown
        for panel in panels {
            let j = panel * nr, cols = min(nr, columns - j)
            let bPanel = b + panel * panelFloats
            let hasNext = panel + 1 < panels.upperBound
            var ir = 0, tile = 0
            while ir < rows {
                let start = min(tile * share, panelFloats)
                ck_sgemm_ukernel(isaCode, Int64(depth), a + ir * depth, bPanel, c + ir * ldc + j, Int64(ldc),
                                 Int64(min(mr, rows - ir)), Int64(cols), alpha, beta,
                                 bPanel + panelFloats + start, hasNext ? Int64(min(share, panelFloats - start)) : 0)
                ir += mr
                tile += 1
            }
        }
    }

    /// Packs rows `row0..<row0+rows`, depths `p0..<p0+depth` of op(A) into panels of `mr` rows:
    /// `dst[panel * mr * depth + p * mr + i]`, zero-padding the last panel.
    func packBlockA(transposed: Bool, a: UnsafePointer<Float>, lda: Int, row0: Int, rows: Int,
                            p0: Int, depth: Int, mr: Int, into dst: UnsafeMutablePointer<Float>) {
        if transposed {
            // op(A)(i, p) = A[p * lda + i]: each stored row holds one depth of every panel, so it
            // is read once, start to end, and spread over the panels (`mr` floats each, the last
            // zero-padded), as B's rows are.
            for p in 0..<depth {
                ck_pack_row_panels(a + (p0 + p) * lda + row0, Int64(rows), Int64(mr), dst + p * mr, Int64(mr * depth))
            }
            return
        }
        var ir = 0
        while ir < rows {
            let h = min(mr, rows - ir)
            let panel = dst + ir * depth
            ck_pack_transposed(a + (row0 + ir) * lda + p0, Int64(lda), Int64(h), Int64(depth), panel, Int64(mr))
            if h < mr {
                for p in 0..<depth { (panel + p * mr + h).update(repeating: 0, count: mr - h) }
            }
            ir += mr
        }
    }

    /// Packs depths `p0..<p0+depth`, columns `col0..<col0+cols` (cols <= nr) of op(B) as one
    /// panel: `dst[p * nr + j]`, zero-padding missing columns.
    func packPanelB(transposed: Bool, b: UnsafePointer<Float>, ldb: Int, p0: Int, depth: Int,
                            col0: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
        if transposed {
            // op(B)(p, j) = B[j * ldb + p]: each column of op(B) is a contiguous stored row.
            ck_pack_transposed(b + col0 * ldb + p0, Int64(ldb), Int64(cols), Int64(depth), dst, Int64(nr))
            if cols < nr {
                for p in 0..<depth { (dst + p * nr + cols).update(repeating: 0, count: nr - cols) }
            }
        } else {
            for p in 0..<depth {
                let out = dst + p * nr
                out.update(from: b + (p0 + p) * ldb + col0, count: cols)
                if cols < nr { (out + cols).update(repeating: 0, count: nr - cols) }
            }
        }
    }
}

extension Tensor {
    /// The matrix product `op(a) x op(b)` of two rank-2 tensors, where `op` transposes when asked.
    ///
    /// `Tensor.matmul(x, w)` is `[B, in] x [in, out] -> [B, out]`;
    /// `Tensor.matmul(x, transposeA: true, dy)` is `[in, B]^T`-style products for weight gradients.
    public static func matmul(_ a: Tensor, transposeA: Bool = false,
                              _ b: Tensor, transposeB: Bool = false) -> Tensor {
        neuritePrecondition(a.rank == 2 && b.rank == 2, "matmul needs rank-2 tensors, got shapes \(a.shape) and \(b.shape)")
        let m = transposeA ? a.shape[1] : a.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        let ka = transposeA ? a.shape[0] : a.shape[1], kb = transposeB ? b.shape[1] : b.shape[0]
        neuritePrecondition(ka == kb,
                     "matmul shapes do not agree: \(a.shape)\(transposeA ? "^T" : "") x \(b.shape)\(transposeB ? "^T" : "")")
        // With beta 0, sgemm writes every element of C and reads none: no zero fill first (a
        // serial pass over the product, 400 KB for a batch of 128 through a 784-unit layer).
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                Tensor(shape: [m, n]) { pc in
                    guard m > 0 && n > 0 else { return }
                    sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: ka,
                          alpha: 1, a: pa.baseAddress!, lda: a.shape[1],
                          b: pb.baseAddress!, ldb: b.shape[1],
                          beta: 0, c: pc.baseAddress!, ldc: n)
                }
            }
        }
    }

    /// `self x other` for rank-2 tensors: `[m, k] x [k, n] -> [m, n]`.
    public func matmul(_ other: Tensor) -> Tensor { Tensor.matmul(self, other) }

    /// `c = alpha * op(a) x op(b) + beta * c`, in place (BLAS `sgemm` on tensors).
    public static func gemm(_ a: Tensor, transposeA: Bool = false, _ b: Tensor, transposeB: Bool = false,
                            alpha: Float = 1, beta: Float = 0, into c: inout Tensor) {
        neuritePrecondition(a.rank == 2 && b.rank == 2 && c.rank == 2,
                     "gemm needs rank-2 tensors, got shapes \(a.shape), \(b.shape) and \(c.shape)")
        let m = transposeA ? a.shape[1] : a.shape[0], ka = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0], n = transposeB ? b.shape[0] : b.shape[1]
        neuritePrecondition(ka == kb,
                     "matmul shapes do not agree: \(a.shape)\(transposeA ? "^T" : "") x \(b.shape)\(transposeB ? "^T" : "")")
        neuritePrecondition(c.shape == [m, n], "gemm output has shape \(c.shape), expected \([m, n]) for \(a.shape) x \(b.shape)")
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: ka,
                          alpha: alpha, a: pa.baseAddress!, lda: a.shape[1],
                          b: pb.baseAddress!, ldb: b.shape[1],
                          beta: beta, c: pc.baseAddress!, ldc: n)
                }
            }
        }
    }
}
