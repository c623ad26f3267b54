import CKernels

// Winograd F(4x4, 3x3) convolution (CKernels/winograd.c) for stride-1 3x3 convolutions with
// enough channels that the products, not the memory traffic, bound the time: the forward pass,
// the input gradient (the same algorithm on the flipped kernel) and the kernel gradient (its
// adjoint: the output gradient's tiles transformed by `A`, products summed over the tiles).
//
// A direct 3x3 convolution spends 9 multiply-adds per output pixel, input channel and output
// channel. Winograd's minimal filtering computes a 4x4 tile of outputs from a 6x6 tile of inputs
// with 36 such products instead of 144: the input tile and the kernel are transformed
// (`V = B^T d B`, `U = G g G^T`), multiplied position by position over the channels (36 GEMMs
// of `[tiles, Cin] x [Cin, Cout]`), and the 36 sums folded back (`Y = A^T M A`). For the
// BatchNorm CNN's 13x13 -> 11x11 layer, 3x3 tiles of 4x4 cover the 11x11 output: 324 products
// per image, channel pair, against 1,089 direct ones (3.4x fewer). The price is rounding: the
// transforms multiply by up to 8 and by fractions like 1/6, so results differ from the direct
// sums by a few times Float32's rounding of the inputs' magnitudes, as in cuDNN and oneDNN.
//
// The work is split over the pool in chunks of tiles; each chunk's transformed input and
// products (36 x tiles x channels floats each) stay in the lane's L2-sized scratch, so the
// large intermediate tensors of a whole-batch Winograd never exist.

enum WinogradConvolution {
    /// Tiles per chunk: about 128 KiB of transformed input and products together per lane, a
    /// multiple of the GEMM micro-kernel's `mr` rows.
    private static func chunkTiles(inputChannels: Int, outputChannels: Int, mr: Int) -> Int {
        let perTile = 36 * (roundedChannels(inputChannels) + roundedChannels(outputChannels))
        return Swift.max(1, 32_768 / perTile / mr) * mr
    }

    /// `c` rounded up to a multiple of 16 (one vector of lanes).
    static func roundedChannels(_ c: Int) -> Int { (c + 15) / 16 * 16 }

    /// The least number of 4x4 output tiles for which ``ConvolutionAlgorithm/automatic`` takes
    /// Winograd: below it (one image through the BatchNorm CNN's 11x11 layer has 9) transforming
    /// the kernel costs more than the products save.
    static let minimumTiles = 64

    /// Whether Winograd is the shape's algorithm: a 3x3 kernel, stride 1 and no dilation, and with
    /// ``ConvolutionAlgorithm/automatic`` at least 16 input and 16 output channels (fewer leave the
    /// transforms' memory traffic larger than the products saved) and ``minimumTiles`` output
    /// tiles of 4x4; with ``ConvolutionAlgorithm/winograd`` any such shape.
    static func applies(to g: Conv2DGeometry, batch n: Int, outputHeight: Int, outputWidth: Int, inputChannels cin: Int,
                        outputChannels cout: Int) -> Bool {
        guard g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideHeight == 1 && g.strideWidth == 1
            && g.dilationHeight == 1 && g.dilationWidth == 1 && cin >= 1 && cout >= 1 else { return false }
        switch ConvolutionAlgorithm.current {
        case .winograd: return true
        case .automatic:
            return cin >= 16 && cout >= 16 && n * ((outputHeight + 3) / 4) * ((outputWidth + 3) / 4) >= minimumTiles
        case .direct, .im2col: return false
        }
    }

    /// Whether the forward convolution of `n` images of geometry `g` to `cout` channels goes
    /// through Winograd.
    static func forwardApplies(to g: Conv2DGeometry, batch n: Int, outputChannels cout: Int) -> Bool {
        applies(to: g, batch: n, outputHeight: g.outputHeight, outputWidth: g.outputWidth, inputChannels: g.channels,
                outputChannels: cout)
    }

    /// Whether the input gradient (a convolution of the output gradient, `cout` channels, with
    /// the flipped kernel, to `Cin` channels) goes through Winograd.
    static func inputGradientApplies(to g: Conv2DGeometry, batch n: Int, outputChannels cout: Int) -> Bool {
        applies(to: g, batch: n, outputHeight: g.inputHeight, outputWidth: g.inputWidth, inputChannels: cout,
                outputChannels: g.channels)
    }

    /// The transformed kernel `U = G g G^T` of `kernel` `[3, 3, Cin, Cout]`, computed in Float64,
    /// packed as the GEMM micro-kernel's B panels: for position `p` (0 ..< 36) and panel `q` of `nr`
    /// output channels (`panels` covering `Cout` rounded up to 16), `cin` rows of `nr` floats at
    /// `((p * panels + q) * cin + i) * nr` (columns past `Cout` 0). With `flipped`, of the kernel rotated by 180 degrees with `Cin` and `Cout`
    /// swapped (the input gradient's kernel), so `cin` is then the kernel's `Cout`.
    private static func transformKernel(_ kernel: UnsafePointer<Float>, kernelCin: Int, kernelCout: Int,
                                        flipped: Bool, nr: Int) -> ScratchBuffer {
        let cin = flipped ? kernelCout : kernelCin, cout = flipped ? kernelCin : kernelCout
        let panels = (roundedChannels(cout) + nr - 1) / nr
        let g: [(Double, Double, Double)] = [(1.0 / 4, 0, 0), (-1.0 / 6, -1.0 / 6, -1.0 / 6), (-1.0 / 6, 1.0 / 6, -1.0 / 6),
                                             (1.0 / 24, 1.0 / 12, 1.0 / 6), (1.0 / 24, -1.0 / 12, 1.0 / 6), (0, 0, 1)]
        let u = ScratchBuffer(count: 36 * panels * cin * nr)
        u.base.update(repeating: 0, count: 36 * panels * cin * nr)
        ThreadPool.shared.parallelChunks(cin, grain: Swift.max(1, 8192 / Swift.max(1, cout))) { inputs in
            // taps[t * cout + o] and rows[(r * 3 + b) * cout + o]: loops over o run along memory.
            var taps = [Double](repeating: 0, count: 9 * cout), rows = [Double](repeating: 0, count: 18 * cout)
            taps.withUnsafeMutableBufferPointer { t in
                rows.withUnsafeMutableBufferPointer { w in
                    for i in inputs {
                        for a in 0..<3 {
                            for b in 0..<3 {
                                let tap = t.baseAddress! + (a * 3 + b) * cout
                                if flipped {
                                    let src = kernel + ((2 - a) * 3 + (2 - b)) * kernelCin * kernelCout + i
                                    for o in 0..<cout { tap[o] = Double(src[o * kernelCout]) }
                                } else {
                                    let src = kernel + ((a * 3 + b) * kernelCin + i) * kernelCout
                                    for o in 0..<cout { tap[o] = Double(src[o]) }
                                }
                            }
                        }
                        // G g (6 x 3 per output channel), then (G g) G^T (6 x 6).
                        for r in 0..<6 {
                            let (g0, g1, g2) = g[r]
                            for b in 0..<3 {
                                let row = w.baseAddress! + (r * 3 + b) * cout
                                let t0 = t.baseAddress! + b * cout, t1 = t0 + 3 * cout, t2 = t0 + 6 * cout
                                for o in 0..<cout { row[o] = g0 * t0[o] + g1 * t1[o] + g2 * t2[o] }
                            }
                        }
                        for r in 0..<6 {
                            let w0 = w.baseAddress! + r * 3 * cout, w1 = w0 + cout, w2 = w1 + cout
                            for s in 0..<6 {
                                let (g0, g1, g2) = g[s]
                                let dst = u.base + (r * 6 + s) * panels * cin * nr + i * nr
                                for o in 0..<cout {
                                    dst[(o / nr) * cin * nr + o % nr] = Float(w0[o] * g0 + w1[o] * g1 + w2[o] * g2)
                                }
                            }
                        }
                    }
                }
            }
        }
        return u
    }

    /// `y = conv(x, kernel) + bias (+ postBias)`, then relu when `relu`, for `n` images through
    /// Winograd; `g` is a stride-1 3x3 geometry (see ``applies(to:batch:outputHeight:outputWidth:inputChannels:outputChannels:)``).
    static func forward(_ x: UnsafePointer<Float>, n: Int, kernel: UnsafePointer<Float>, cout: Int,
                        bias: UnsafePointer<Float>?, postBias: UnsafePointer<Float>?, relu: Bool,
                        geometry g: Conv2DGeometry, into y: UnsafeMutablePointer<Float>) {
        convolve(x, n: n, height: g.inputHeight, width: g.inputWidth, cin: g.channels, kernel: kernel, flipped: false,
                 cout: cout, padTop: g.padTop, padLeft: g.padLeft, outputHeight: g.outputHeight,
                 outputWidth: g.outputWidth, bias: bias, postBias: postBias, relu: relu, into: y)
    }

    /// The input gradient `[n, H, W, Cin]` (overwritten) for output gradient `dy` `[n, OH, OW, Cout]`:
    /// `dy` convolved with the flipped kernel, padded by `2 - padTop` above and `2 - padLeft` on
    /// the left (the positions outside `dy` read as zeros, so no padded copy is made).
    static func inputGradient(_ dy: UnsafePointer<Float>, n: Int, kernel: UnsafePointer<Float>, cout: Int,
                              geometry g: Conv2DGeometry, into dx: UnsafeMutablePointer<Float>) {
        convolve(dy, n: n, height: g.outputHeight, width: g.outputWidth, cin: cout, kernel: kernel, flipped: true,
                 cout: g.channels, padTop: 2 - g.padTop, padLeft: 2 - g.padLeft, outputHeight: g.inputHeight,
                 outputWidth: g.inputWidth, bias: nil, postBias: nil, relu: false, into: dx)
    }

    /// The 3x3 stride-1 correlation of `x` `[n, height, width, cin]` (zeros outside it, the
    /// output's pixel `(0, 0)` reading input pixel `(-padTop, -padLeft)`) with `kernel` (see
    /// `transformKernel` for `flipped`), into `y` `[n, outputHeight, outputWidth, cout]`.
    ///
    /// Per chunk of tiles: the input transform writes `V` (36 positions of `[tiles, cin]`), each
    /// position is packed into the micro-kernel's A panels and multiplied by the pre-packed B
    /// panels of `U` into `M` (36 positions of `[tiles, cout]`), and the output transform folds
    /// `M` into `y`. The micro-kernel is called directly: `U` is packed once per call, not once
    /// per product as a plain `sgemm` would.
    private static func convolve(_ x: UnsafePointer<Float>, n: Int, height: Int, width: Int, cin: Int,
                                 kernel: UnsafePointer<Float>, flipped: Bool, cout: Int, padTop: Int, padLeft: Int,
                                 outputHeight: Int, outputWidth: Int, bias: UnsafePointer<Float>?,
                                 postBias: UnsafePointer<Float>?, relu: Bool, into y: UnsafeMutablePointer<Float>) {
        let tilesH = (outputHeight + 3) / 4, tilesW = (outputWidth + 3) / 4
        let tiles = n * tilesH * tilesW
        guard tiles > 0 else { return }
        let isa = KernelISA.current
        var mr64: Int64 = 0, nr64: Int64 = 0
        ck_sgemm_tile(isa.rawValue, &mr64, &nr64)
        let mr = Int(mr64), nr = Int(nr64)
        let kernelCin = flipped ? cout : cin, kernelCout = flipped ? cin : cout
        let u = transformKernel(kernel, kernelCin: kernelCin, kernelCout: kernelCout, flipped: flipped, nr: nr)
        let cinP = roundedChannels(cin), coutP = roundedChannels(cout)
        let panels = (coutP + nr - 1) / nr  // as transformKernel's: M gets every lane up to coutP
        let chunk = chunkTiles(inputChannels: cin, outputChannels: cout, mr: mr)
        let chunks = (tiles + chunk - 1) / chunk
        let vStride = chunk * cinP, mStride = chunk * coutP
        let laneFloats = 36 * (vStride + mStride) + chunk * cin
        let pool = ThreadPool.shared
        let lanes = Swift.min(pool.effectiveWidth, chunks)
        let scratch = ScratchBuffer(count: lanes * laneFloats)
        let body = { (index: Int, lane: Int) in
            let tile0 = index * chunk, count = Swift.min(chunk, tiles - tile0)
            let v = scratch.base + lane * laneFloats, m = v + 36 * vStride, packedA = m + 36 * mStride
            ck_winograd43_input(isa.rawValue, x, Int64(height), Int64(width), Int64(cin), Int64(padTop), Int64(padLeft),
                                Int64(tilesH), Int64(tilesW), Int64(tile0), Int64(count), Int64(cinP), v, Int64(vStride))
            for p in 0..<36 {
                // A panels of mr tiles: packedA[ir * cin + k * mr + i] = V[p][ir + i][k], rows past count 0.
                var ir = 0
                while ir < count {
                    let h = Swift.min(mr, count - ir)
                    let panel = packedA + ir * cin
                    ck_pack_transposed(v + p * vStride + ir * cinP, Int64(cinP), Int64(h), Int64(cin), panel, Int64(mr))
                    if h < mr { for k in 0..<cin { (panel + k * mr + h).update(repeating: 0, count: mr - h) } }
                    ir += mr
                }
                let c = m + p * mStride
                for q in 0..<panels {
                    let b = u.base + (p * panels + q) * cin * nr
                    let columns = Swift.min(nr, coutP - q * nr)
                    ir = 0
                    while ir < count {
                        ck_sgemm_ukernel(isa.rawValue, Int64(cin), packedA + ir * cin, b, c + ir * coutP + q * nr,
                                         Int64(coutP), Int64(Swift.min(mr, count - ir)), Int64(columns), 1, 0, nil, 0)
                        ir += mr
                    }
                }
            }
            ck_winograd43_output(isa.rawValue, m, Int64(mStride), Int64(tile0), Int64(count), Int64(coutP), Int64(cout),
                                 Int64(tilesH), Int64(tilesW), Int64(outputHeight), Int64(outputWidth), bias, postBias,
                                 relu ? 1 : 0, y)
        }
        if lanes <= 1 {
            for index in 0..<chunks { body(index, 0) }
        } else {
            pool.parallelFor(chunks, body)
        }
        withExtendedLifetime((scratch, u)) {}
    }

    /// Whether the kernel gradient of `n` images of geometry `g` to `cout` channels goes through
    /// Winograd (the same shapes as the forward pass).
    static func kernelGradientApplies(to g: Conv2DGeometry, batch n: Int, outputChannels cout: Int) -> Bool {
        forwardApplies(to: g, batch: n, outputChannels: cout)
    }

    /// Blocks of the kernel gradient's partial sums (at most; fewer when there are fewer chunks of
    /// tiles): a fixed number, so the blocks, and the order of every sum, do not depend on the
    /// thread count, and enough that 2 to 8 threads share them evenly.
    private static let kernelGradientBlocks = 8

    /// The kernel gradient `[3, 3, Cin, Cout]` (added to `dk`) of `n` images `x` for output
    /// gradient `dy` `[n, OH, OW, Cout]`, through the adjoint of the forward pass:
    /// `dM = A dY A^T` per output tile, `dU[p] = Σ_tiles V[p]^T dM[p]` (36 GEMMs over the tiles
    /// of a block), and `dk = G^T dU G`, the last in Float64. Blocks of tiles are summed in a
    /// fixed order, so the bits do not depend on the thread count.
    static func kernelGradient(_ x: UnsafePointer<Float>, n: Int, dy: UnsafePointer<Float>, cout: Int,
                               geometry g: Conv2DGeometry, into dk: UnsafeMutablePointer<Float>) {
        let cin = g.channels, oh = g.outputHeight, ow = g.outputWidth
        let tilesH = (oh + 3) / 4, tilesW = (ow + 3) / 4
        let tiles = n * tilesH * tilesW
        guard tiles > 0 else { return }
        let isa = KernelISA.current
        var mr64: Int64 = 0, nr64: Int64 = 0
        ck_sgemm_tile(isa.rawValue, &mr64, &nr64)
        let cinP = roundedChannels(cin), coutP = roundedChannels(cout)
        let chunk = chunkTiles(inputChannels: cin, outputChannels: cout, mr: Int(mr64)) * 4
        let chunks = (tiles + chunk - 1) / chunk
        let blocks = Swift.min(chunks, kernelGradientBlocks)
        let vStride = chunk * cinP, mStride = chunk * coutP
        let laneFloats = 36 * (vStride + mStride)
        let blockFloats = 36 * cin * coutP
        let pool = ThreadPool.shared
        let lanes = Swift.min(pool.effectiveWidth, blocks)
        let scratch = ScratchBuffer(count: lanes * laneFloats)
        let partials = ScratchBuffer(count: blocks * blockFloats)
        partials.base.update(repeating: 0, count: blocks * blockFloats)
        let body = { (block: Int, lane: Int) in
            let v = scratch.base + lane * laneFloats, m = v + 36 * vStride
            let du = partials.base + block * blockFloats
            for index in (chunks * block / blocks)..<(chunks * (block + 1) / blocks) {
                let tile0 = index * chunk, count = Swift.min(chunk, tiles - tile0)
                ck_winograd43_input(isa.rawValue, x, Int64(g.inputHeight), Int64(g.inputWidth), Int64(cin), Int64(g.padTop),
                                    Int64(g.padLeft), Int64(tilesH), Int64(tilesW), Int64(tile0), Int64(count), Int64(cinP),
                                    v, Int64(vStride))
                ck_winograd43_output_adjoint(isa.rawValue, dy, Int64(oh), Int64(ow), Int64(cout), Int64(tilesH), Int64(tilesW),
                                             Int64(tile0), Int64(count), Int64(coutP), m, Int64(mStride))
                let plan = GemmPlan(m: cin, n: coutP, k: count, isa: isa, lanes: 1)
                for p in 0..<36 {
                    plan.run(transposeA: true, transposeB: false, alpha: 1, a: v + p * vStride, lda: cinP,
                             b: m + p * mStride, ldb: coutP, beta: 1, c: du + p * cin * coutP, ldc: coutP)
                }
            }
        }
        if lanes <= 1 {
            for block in 0..<blocks { body(block, 0) }
        } else {
            pool.parallelFor(blocks, body)
        }
        // dk[a][b][i][o] += Σ_{r,s} G[r][a] dU[r * 6 + s][i][o] G[s][b], blocks added in order.
        let gm: [(Double, Double, Double)] = [(1.0 / 4, 0, 0), (-1.0 / 6, -1.0 / 6, -1.0 / 6), (-1.0 / 6, 1.0 / 6, -1.0 / 6),
                                              (1.0 / 24, 1.0 / 12, 1.0 / 6), (1.0 / 24, -1.0 / 12, 1.0 / 6), (0, 0, 1)]
        let coefficients = gm.flatMap { [$0.0, $0.1, $0.2] }  // G[r][a] at r * 3 + a
        ThreadPool.shared.parallelChunks(cin, grain: Swift.max(1, 4096 / Swift.max(1, cout))) { inputs in
            // Loops over o innermost: they run along memory and vectorise.
            let du = UnsafeMutablePointer<Double>.allocate(capacity: 36 * cout)
            let half = UnsafeMutablePointer<Double>.allocate(capacity: 18 * cout)
            defer { du.deallocate(); half.deallocate() }
            for i in inputs {
                du.update(repeating: 0, count: 36 * cout)
                for block in 0..<blocks {
                    for p in 0..<36 {
                        let src = partials.base + block * blockFloats + (p * cin + i) * coutP, dst = du + p * cout
                        for o in 0..<cout { dst[o] += Double(src[o]) }
                    }
                }
                // half[r][b] = Σ_s dU[r][s] G[s][b]; then dk[a][b] += Σ_r G[r][a] half[r][b].
                half.update(repeating: 0, count: 18 * cout)
                for r in 0..<6 {
                    for s in 0..<6 {
                        let row = du + (r * 6 + s) * cout
                        for b in 0..<3 {
                            let gsb = coefficients[s * 3 + b]
                            let dst = half + (r * 3 + b) * cout
                            for o in 0..<cout { dst[o] += row[o] * gsb }
                        }
                    }
                }
                for a in 0..<3 {
                    for b in 0..<3 {
                        let dst = dk + ((a * 3 + b) * cin + i) * cout
                        for o in 0..<cout {
                            var sum = 0.0
                            for r in 0..<6 { sum += coefficients[r * 3 + a] * half[(r * 3 + b) * cout + o] }
                            dst[o] += Float(sum)
                        }
                    }
                }
            }
        }
        withExtendedLifetime((scratch, partials)) {}
    }
}
