import TensorCore

/// Raw pointers of one pass, for the cells' step functions.
struct StepPointers {
    let batch: Int, units: Int, gateWidth: Int
    let x: UnsafeMutablePointer<Float>
    let gates: UnsafeMutablePointer<Float>
    /// `h` before step `t` for sample `r` is at `states + (t·B + r)·stateStride`.
    let states: UnsafeMutablePointer<Float>
    let stateStride: Int
    let cells: UnsafeMutablePointer<Float>
    /// The LSTM's `tanh(c)` after step `t` for sample `r` is at `cellTanh + (t·B + r)·U`.
    let cellTanh: UnsafeMutablePointer<Float>
    let recurrent: UnsafeMutablePointer<Float>
    let mask: UnsafeMutablePointer<Float>?
    let dH: UnsafeMutablePointer<Float>
    let dZ: UnsafeMutablePointer<Float>
    let dR: UnsafeMutablePointer<Float>
    let dhNext: UnsafeMutablePointer<Float>
    let dcNext: UnsafeMutablePointer<Float>
    /// The recurrent kernel `[U, G·U]` packed for the steps' products (forward), or its transpose
    /// `[G·U, U]` (backward); with ``stackedInput``, `[W; U]` `[F + U, G·U]`.
    let packedKernel: PackedMatrix
    /// Whether the forward product of a step is `[x_t, h_(t-1)]·[W; U]`, the whole pre-activation
    /// (no input GEMM ran before the steps).
    let stackedInput: Bool
    /// With recurrent dropout: each gate's block `[U, U]` of the recurrent kernel packed (forward),
    /// or of its transpose (backward); nil without.
    let gateKernels: [PackedMatrix]?
    /// The recurrent dropout masks `[G, B, U]`, or nil.
    let stateMasks: UnsafePointer<Float>?
    /// `[T·B, G·U]`: the dropped states of each step, rows `[h ⊙ r_1, ..., h ⊙ r_G]`.
    let droppedStates: UnsafeMutablePointer<Float>
    /// `[B, U]` backward scratch.
    let stateScratch: UnsafeMutablePointer<Float>
    let recurrentBias: UnsafePointer<Float>?
    let outputGate: GateFunction
    let gate: GateFunction
    let isa = KernelISA.current
    /// The input bias `[G·U]`, added to each row's gates in the step (where the row is in cache).
    let inputBias: UnsafePointer<Float>?
    /// In a backward pass, the steps `t < zeroGradientSteps` whose output gradient is zero (a
    /// layer without `returnSequences` has one only at its last step): their blocks of ``dH``
    /// are not filled by the layer; a cell reads them through ``outputGradient(t:rows:)``, or
    /// takes them as zero itself.
    var zeroGradientSteps = 0

    /// How many row ranges a batch is cut into: samples are independent through time, so each
    /// range runs the whole loop over the steps on its own (up to two ranges of at least 32 rows
    /// per thread, handed out as threads come free). One dispatch per pass, not per step: a step
    /// is too short (about 0.1 ms) for a barrier per step, which on a machine shared with other
    /// work costs a scheduling slice whenever one thread is not running.
    static func chunks(batch: Int, gateWidth: Int) -> Int {
        let width = ThreadPool.shared.effectiveWidth
        if width == 1 || batch * gateWidth < 32768 { return 1 }
        return Swift.max(1, Swift.min(2 * width, batch / 32))
    }

    var batchChunks: Int { Self.chunks(batch: batch, gateWidth: gateWidth) }

    /// Runs `body(chunk, rows)` for each of ``batchChunks`` row ranges (``rowRanges(batch:chunks:tile:lanes:)``),
    /// in parallel; each range's GEMMs run on its own thread.
    func parallelBatch(_ body: (Int, Range<Int>) -> Void) {
        let chunks = batchChunks, b = batch
        if chunks == 1 {
            body(0, 0..<b)
            return
        }
        let ranges = Self.rowRanges(batch: b, chunks: chunks, tile: packedKernel.rowTile,
                                    lanes: ThreadPool.shared.effectiveWidth)
        ThreadPool.shared.parallelFor(chunks) { c, _ in
            ThreadPool.withWidthLimit(1) { body(c, ranges[c]) }
        }
    }

    /// The batch's row ranges: equal ones, or ranges of whole GEMM register tiles (`tile` rows,
    /// the larger ranges first) where that leaves fewer tiles to the busiest of `lanes` threads.
    /// The threads take ranges in turn as they come free, so lane `l` runs about ranges `l`,
    /// `l + lanes`, ...; a GEMM computes a partly filled tile in full. 128 rows in 4 equal ranges
    /// of 32 are 6 tiles each on AVX2 (5 of 6 rows and one of 2), 12 per thread; in whole tiles,
    /// 36, 36, 30 and 26 rows are 6, 6, 5 and 5 tiles, 11 per thread. On AVX-512 (12 rows) the equal
    /// ranges already give each thread 6 tiles, and they balance the gates' rows better.
    static func rowRanges(batch b: Int, chunks: Int, tile: Int, lanes: Int) -> [Range<Int>] {
        let equal = (0..<chunks).map { (b * $0 / chunks)..<(b * ($0 + 1) / chunks) }
        let tiles = (b + tile - 1) / tile, each = tiles / chunks, extra = tiles % chunks
        let whole = (0..<chunks).map { c -> Range<Int> in
            let lower = c * each + Swift.min(c, extra), upper = lower + each + (c < extra ? 1 : 0)
            return Swift.min(b, lower * tile)..<Swift.min(b, upper * tile)
        }
        func busiest(_ ranges: [Range<Int>]) -> Int {
            (0..<Swift.max(1, lanes)).map { lane in
                stride(from: lane, to: ranges.count, by: Swift.max(1, lanes)).reduce(0) { $0 + (ranges[$1].count + tile - 1) / tile }
            }.max() ?? 0
        }
        return busiest(whole) < busiest(equal) ? whole : equal
    }

    init(pass: Pass, work: Workspace, units: Int, gateWidth: Int, recurrent: PackedMatrix, gateKernels: [PackedMatrix]?,
         stackedInput: Bool, inputBias: UnsafePointer<Float>?, recurrentBias: UnsafePointer<Float>?, outputGate: GateFunction, gate: GateFunction) {
        self.inputBias = inputBias
        batch = pass.batch
        self.units = units
        self.gateWidth = gateWidth
        x = pass.xh.pointer
        stateStride = pass.features + units
        gates = pass.gates.pointer
        states = pass.xh.pointer + pass.features
        cells = pass.cells.pointer
        cellTanh = pass.cellTanh.pointer
        self.recurrent = pass.recurrent.pointer
        mask = pass.masked ? pass.mask.pointer : nil
        dH = work.dH.pointer
        dZ = work.dZ.pointer
        dR = work.dR.pointer
        dhNext = work.dhNext.pointer
        dcNext = work.dcNext.pointer
        packedKernel = recurrent
        self.stackedInput = stackedInput
        self.gateKernels = gateKernels
        stateMasks = pass.stateMasks ? UnsafePointer(pass.stateMask.pointer) : nil
        droppedStates = pass.droppedStates.pointer
        stateScratch = work.stateScratch.pointer
        self.recurrentBias = recurrentBias
        self.outputGate = outputGate
        self.gate = gate
    }

    /// Step `t`'s output gradient (block `t` of ``dH``), with rows `rows` zero-filled first
    /// where the layer left them unwritten (``zeroGradientSteps``).
    @inline(__always)
    func outputGradient(t: Int, rows: Range<Int>) -> UnsafeMutablePointer<Float> {
        let dh = dH + t * batch * units
        if t < zeroGradientSteps {
            (dh + rows.lowerBound * units).update(repeating: 0, count: rows.count * units)
        }
        return dh
    }

    /// The recurrent part of step `t` for the samples `rows`: `c = h_(t-1)·U + beta·c` in rows
    /// `rows` of the step's block `c` (`[B, G·U]`); with recurrent dropout, gate by gate,
    /// `c_k = (h_(t-1) ⊙ r_k)·U_k + beta·c_k`, keeping the dropped states for the weights' gradient.
    /// With ``stackedInput`` (where the caller's `beta` is 1: `c` would hold `x_t·W`),
    /// `c = [x_t, h_(t-1)]·[W; U]`.
    @inline(__always)
    func multiplyRecurrent(t: Int, rows: Range<Int>, into c: UnsafeMutablePointer<Float>, beta: Float) {
        let (r0, g, u) = (rows.lowerBound, gateWidth, units)
        if stackedInput {
            packedKernel.multiply(m: rows.count, a: x + (t * batch + r0) * stateStride, lda: stateStride,
                                  beta: 0, c: c + r0 * g, ldc: g)
            return
        }
        guard let kernels = gateKernels, let masks = stateMasks else {
            packedKernel.multiply(m: rows.count, a: states + (t * batch + r0) * stateStride, lda: stateStride,
                                  beta: beta, c: c + r0 * g, ldc: g)
            return
        }
        let dropped = droppedStates + t * batch * g
        for r in rows {
            let h = states + (t * batch + r) * stateStride
            for k in 0..<kernels.count {
                let m = masks + (k * batch + r) * u, d = dropped + r * g + k * u
                for j in 0..<u { d[j] = h[j] * m[j] }
            }
        }
        for (k, kernel) in kernels.enumerated() {
            kernel.multiply(m: rows.count, a: dropped + r0 * g + k * u, lda: g, beta: beta, c: c + r0 * g + k * u, ldc: g)
        }
    }

    /// The gradient reaching `h_(t-1)` through the recurrent product, from the gate gradients in
    /// rows `rows` of the step's block `dz` (`[B, G·U]`): `dhNext = dz·Uᵀ`, or with recurrent
    /// dropout `Σ_k (dz_k·U_kᵀ) ⊙ r_k`, in `dhNext`'s rows.
    @inline(__always)
    func multiplyRecurrentBack(_ dz: UnsafePointer<Float>, rows: Range<Int>) {
        let (r0, g, u) = (rows.lowerBound, gateWidth, units)
        guard let kernels = gateKernels, let masks = stateMasks else {
            packedKernel.multiply(m: rows.count, a: dz + r0 * g, lda: g, beta: 0, c: dhNext + r0 * u, ldc: u)
            return
        }
        let range = (r0 * u)..<(rows.upperBound * u)
        for (k, kernel) in kernels.enumerated() {
            kernel.multiply(m: rows.count, a: dz + r0 * g + k * u, lda: g, beta: 0, c: stateScratch + r0 * u, ldc: u)
            let m = masks + k * batch * u
            if k == 0 {
                for i in range { dhNext[i] = stateScratch[i] * m[i] }
            } else {
                for i in range { dhNext[i] += stateScratch[i] * m[i] }
            }
        }
    }
}

