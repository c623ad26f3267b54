import CKernels

// Per-channel passes over channels-last tensors, as batch normalisation needs them: the tensor is
// viewed as a `rows x channels` matrix (channels the last axis, every other axis a row).
//
// Sums are split into chunks of a fixed number of rows, whatever the thread count, and the chunks'
// partial sums are added in order: the results are the same bits on 1 thread or 16.

extension Tensor {
    /// Rows per chunk of the per-channel sums: about 64Ki elements, a multiple of 64 rows.
    private static func channelChunkRows(_ channels: Int) -> Int {
        Swift.max(64, (65_536 / Swift.max(1, channels) + 63) / 64 * 64)
    }

    /// `rows x channels` of a tensor whose last axis holds the channels.
    private var channelMatrix: (rows: Int, channels: Int) {
        let channels = shape.last ?? 1
        return (channels == 0 ? 0 : count / channels, channels)
    }

    /// Runs `body(rows, into: partials)` per fixed chunk of rows in parallel and adds the chunks'
    /// partial sums (two arrays of `channels` doubles) in chunk order.
    private static func chunkedChannelSums(rows: Int, channels: Int,
                                           _ body: (Range<Int>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void)
        -> ([Double], [Double]) {
        let chunkRows = channelChunkRows(channels)
        let chunks = (rows + chunkRows - 1) / chunkRows
        var partial = [Double](repeating: 0, count: Swift.max(1, chunks * 2 * channels))
        partial.withUnsafeMutableBufferPointer { p in
            let base = p.baseAddress!
            ThreadPool.shared.parallelFor(chunks) { chunk, _ in
                let lo = chunk * chunkRows, hi = Swift.min(rows, lo + chunkRows)
                body(lo..<hi, base + chunk * 2 * channels, base + chunk * 2 * channels + channels)
            }
        }
        var first = [Double](repeating: 0, count: channels), second = first
        for chunk in 0..<chunks {
            for c in 0..<channels {
                first[c] += partial[chunk * 2 * channels + c]
                second[c] += partial[chunk * 2 * channels + channels + c]
            }
        }
        return (first, second)
    }

    /// The mean and the biased variance of every channel (the last axis) over all other axes, as
    /// batch normalisation takes them from an NHWC batch: `[N, H, W, C]` gives `C` of each.
    ///
    /// One pass: each channel's values are shifted by its value in the first row, so the variance
    /// `Σ d² / M - (Σ d / M)²` of the shifted values `d` does not cancel for data far from zero;
    /// sums in float over 64 rows, then in Float64. Parallel, and the same bits for any thread count.
    /// - Precondition: the tensor has at least one axis.
    public func channelMoments() -> (mean: [Double], variance: [Double]) {
        neuritePrecondition(rank >= 1, "channelMoments needs a tensor with a channel axis, got shape \(shape)")
        let (rows, channels) = channelMatrix
        guard rows > 0 else { return ([Double](repeating: .nan, count: channels), [Double](repeating: .nan, count: channels)) }
        let isa = KernelISA.current.rawValue
        return withUnsafeBufferPointer { xb in
            let x = xb.baseAddress!
            let shift = Array(xb[0..<channels])
            let (sum, squares) = shift.withUnsafeBufferPointer { sb in
                Tensor.chunkedChannelSums(rows: rows, channels: channels) { range, s, q in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * channels) { scratch in
                        ck_channel_moments(isa, x + range.lowerBound * channels, Int64(range.count), Int64(channels),
                                           sb.baseAddress!, s, q, scratch.baseAddress!)
                    }
                }
            }
            let m = Double(rows)
            var mean = [Double](repeating: 0, count: channels), variance = mean
            for c in 0..<channels {
                let d = sum[c] / m
                mean[c] = Double(shift[c]) + d
                variance[c] = Swift.max(0, squares[c] / m - d * d)
            }
            return (mean, variance)
        }
    }

    /// `Σ g` and `Σ g * (x - mean) * inverseDeviation` per channel (the last axis), in Float64,
    /// with `g` the output gradient, or with a `reluOutput` the gradient taken back through that
    /// relu (`g = reluOutput > 0 ? outputGradient : 0`): the sums the backward pass of batch
    /// normalisation (fused with a following relu) needs, in one pass. The same bits for any
    /// thread count.
    /// - Precondition: `outputGradient`, `input` (and `reluOutput`) have one shape; `mean` and
    ///   `inverseDeviation` hold one value per channel.
    public static func channelGradientSums(_ outputGradient: Tensor, _ input: Tensor, reluOutput: Tensor? = nil,
                                           mean: [Float], inverseDeviation: [Float]) -> (sum: [Double], dot: [Double]) {
        neuritePrecondition(outputGradient.shape == input.shape && input.rank >= 1 && (reluOutput?.shape ?? input.shape) == input.shape,
                            "channelGradientSums: output gradient \(outputGradient.shape), input \(input.shape) and relu output \(reluOutput?.shape ?? input.shape) differ")
        let (rows, channels) = input.channelMatrix
        neuritePrecondition(mean.count == channels && inverseDeviation.count == channels,
                            "channelGradientSums: \(mean.count) means and \(inverseDeviation.count) deviations for \(channels) channels of \(input.shape)")
        let isa = KernelISA.current.rawValue
        return outputGradient.withUnsafeBufferPointer { gb in
            input.withUnsafeBufferPointer { xb in
                withOptionalBuffer(reluOutput) { mask in
                    mean.withUnsafeBufferPointer { mb in
                        inverseDeviation.withUnsafeBufferPointer { ib in
                            chunkedChannelSums(rows: rows, channels: channels) { range, s, d in
                                let o = range.lowerBound * channels
                                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * channels) { scratch in
                                    ck_channel_gradient_sums(isa, gb.baseAddress! + o, xb.baseAddress! + o, mask.map { $0 + o },
                                                             Int64(range.count), Int64(channels), mb.baseAddress!,
                                                             ib.baseAddress!, s, d, scratch.baseAddress!)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `scale[c] * x + shift[c]` for every element `x` of channel `c` (the last axis), followed
    /// by `relu()` when `relu` is true: one parallel pass.
    /// - Precondition: `scale` and `shift` hold one value per channel.
    public func channelAffine(scale: [Float], shift: [Float], relu: Bool = false) -> Tensor {
        let (rows, channels) = channelMatrix
        neuritePrecondition(rank >= 1 && scale.count == channels && shift.count == channels,
                            "channelAffine: \(scale.count) scales and \(shift.count) shifts for shape \(shape)")
        let isa = KernelISA.current.rawValue
        return withUnsafeBufferPointer { xb in
            scale.withUnsafeBufferPointer { ab in
                shift.withUnsafeBufferPointer { bb in
                    Tensor(shape: shape) { yb in
                        ThreadPool.shared.parallelChunks(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(1, channels))) { r in
                            let o = r.lowerBound * channels
                            ck_channel_affine(isa, xb.baseAddress! + o, Int64(r.count), Int64(channels), ab.baseAddress!,
                                              bb.baseAddress!, relu ? 1 : 0, yb.baseAddress! + o)
                        }
                    }
                }
            }
        }
    }

    /// `a[c] * g + b[c] * v + d[c]` element by element for tensors `u` and `v` of one shape, per
    /// channel (the last axis), with `g = u`, or with a `reluOutput`, `g = reluOutput > 0 ? u : 0`:
    /// one parallel pass (batch normalisation's input gradient).
    /// - Precondition: `u`, `v` (and `reluOutput`) have one shape; `a`, `b`, `d` hold one value per channel.
    public static func channelAffine(_ u: Tensor, _ v: Tensor, reluOutput: Tensor? = nil, a: [Float], b: [Float],
                                     d: [Float]) -> Tensor {
        neuritePrecondition(u.shape == v.shape && u.rank >= 1 && (reluOutput?.shape ?? u.shape) == u.shape,
                            "channelAffine: shapes \(u.shape), \(v.shape) and \(reluOutput?.shape ?? u.shape) differ")
        let (rows, channels) = u.channelMatrix
        neuritePrecondition(a.count == channels && b.count == channels && d.count == channels,
                            "channelAffine: coefficient counts \(a.count), \(b.count), \(d.count) for \(channels) channels of \(u.shape)")
        return u.withUnsafeBufferPointer { ub in
            v.withUnsafeBufferPointer { vb in
                withOptionalBuffer(reluOutput) { mask in
                    Tensor(shape: u.shape) { yb in
                        channelAffineRows(ub.baseAddress!, vb.baseAddress!, mask: mask, reluScale: nil, reluShift: nil,
                                          a: a, b: b, d: d, rows: rows, channels: channels, into: yb.baseAddress!)
                    }
                }
            }
        }
    }

    /// ``channelGradientSums(_:_:reluOutput:mean:inverseDeviation:)`` through the relu of
    /// `input.channelAffine(scale: reluScale, shift: reluShift, relu: true)`, its mask recomputed
    /// from `input` instead of read from that output (the same bits: the same expression on each
    /// path), so a batch normalisation fused with a relu need not keep its output for backward.
    /// - Precondition: `outputGradient` and `input` have one shape; the arrays hold one value per channel.
    package static func channelGradientSums(_ outputGradient: Tensor, _ input: Tensor, reluScale: [Float], reluShift: [Float],
                                            mean: [Float], inverseDeviation: [Float]) -> (sum: [Double], dot: [Double]) {
        neuritePrecondition(outputGradient.shape == input.shape && input.rank >= 1,
                            "channelGradientSums: output gradient \(outputGradient.shape) and input \(input.shape) differ")
        let (rows, channels) = input.channelMatrix
        neuritePrecondition([mean.count, inverseDeviation.count, reluScale.count, reluShift.count].allSatisfy { $0 == channels },
                            "channelGradientSums: \(mean.count) means, \(inverseDeviation.count) deviations, \(reluScale.count) scales and \(reluShift.count) shifts for \(channels) channels of \(input.shape)")
        let isa = KernelISA.current.rawValue
        return outputGradient.withUnsafeBufferPointer { gb in
            input.withUnsafeBufferPointer { xb in
                reluScale.withUnsafeBufferPointer { rab in
                    reluShift.withUnsafeBufferPointer { rbb in
                        mean.withUnsafeBufferPointer { mb in
                            inverseDeviation.withUnsafeBufferPointer { ib in
                                chunkedChannelSums(rows: rows, channels: channels) { range, s, d in
                                    let o = range.lowerBound * channels
                                    withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * channels) { scratch in
                                        ck_channel_gradient_sums_relu(isa, gb.baseAddress! + o, xb.baseAddress! + o,
                                                                      rab.baseAddress!, rbb.baseAddress!, Int64(range.count),
                                                                      Int64(channels), mb.baseAddress!, ib.baseAddress!, s, d,
                                                                      scratch.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// ``channelAffine(_:_:reluOutput:a:b:d:)`` with `g = reluScale[c] * v + reluShift[c] > 0 ? u : 0`:
    /// the relu mask of `v.channelAffine(scale: reluScale, shift: reluShift, relu: true)` recomputed
    /// from `v` (see ``channelGradientSums(_:_:reluScale:reluShift:mean:inverseDeviation:)``).
    /// - Precondition: `u` and `v` have one shape; the arrays hold one value per channel.
    package static func channelAffine(_ u: Tensor, _ v: Tensor, reluScale: [Float], reluShift: [Float], a: [Float],
                                      b: [Float], d: [Float]) -> Tensor {
        let (rows, channels) = checkChannelAffine(u, v, reluScale: reluScale, reluShift: reluShift, a: a, b: b, d: d)
        return u.withUnsafeBufferPointer { ub in
            v.withUnsafeBufferPointer { vb in
                Tensor(shape: u.shape) { yb in
                    channelAffineRows(ub.baseAddress!, vb.baseAddress!, mask: nil, reluScale: reluScale, reluShift: reluShift,
                                      a: a, b: b, d: d, rows: rows, channels: channels, into: yb.baseAddress!)
                }
            }
        }
    }

    /// ``channelAffine(_:_:reluOutput:a:b:d:)`` (with `reluScale` and `reluShift`,
    /// ``channelAffine(_:_:reluScale:reluShift:a:b:d:)``) stored in `u`: written over `u`'s own
    /// storage when `u` holds the only reference to it (batch normalisation's input gradient over
    /// the output gradient it no longer needs, saving a tensor of that size), otherwise into a new
    /// one, as the returning forms do. The same bits either way.
    /// - Precondition: as for the returning forms; `reluScale` and `reluShift` come together.
    package static func channelAffine(overwriting u: inout Tensor, _ v: Tensor, reluScale: [Float]?, reluShift: [Float]?,
                                      a: [Float], b: [Float], d: [Float]) {
        guard isKnownUniquelyReferenced(&u.storage) else {
            if let reluScale, let reluShift {
                u = channelAffine(u, v, reluScale: reluScale, reluShift: reluShift, a: a, b: b, d: d)
            } else {
                neuritePrecondition(reluScale == nil && reluShift == nil, "channelAffine: a relu scale needs a relu shift")
                u = channelAffine(u, v, a: a, b: b, d: d)
            }
            return
        }
        let (rows, channels) = checkChannelAffine(u, v, reluScale: reluScale, reluShift: reluShift, a: a, b: b, d: d)
        let io = u.storage.base
        v.withUnsafeBufferPointer { vb in
            channelAffineRows(io, vb.baseAddress!, mask: nil, reluScale: reluScale, reluShift: reluShift,
                              a: a, b: b, d: d, rows: rows, channels: channels, into: io)
        }
        withExtendedLifetime(u.storage) {}
    }

    /// The checks of the `channelAffine` forms with `reluScale` and `reluShift` (both or neither);
    /// the channel matrix's rows and channels.
    private static func checkChannelAffine(_ u: Tensor, _ v: Tensor, reluScale: [Float]?, reluShift: [Float]?,
                                           a: [Float], b: [Float], d: [Float]) -> (rows: Int, channels: Int) {
        neuritePrecondition((reluScale == nil) == (reluShift == nil), "channelAffine: a relu scale needs a relu shift")
        neuritePrecondition(u.shape == v.shape && u.rank >= 1, "channelAffine: shapes \(u.shape) and \(v.shape) differ")
        let (rows, channels) = u.channelMatrix
        neuritePrecondition([a.count, b.count, d.count, reluScale?.count ?? channels, reluShift?.count ?? channels].allSatisfy { $0 == channels },
                            "channelAffine: coefficient counts \(a.count), \(b.count), \(d.count), \(reluScale?.count ?? channels), \(reluShift?.count ?? channels) for \(channels) channels of \(u.shape)")
        return (rows, channels)
    }

    /// The one parallel pass of every `channelAffine` form: `y = a[c] * g + b[c] * v + d[c]` over
    /// `rows` rows of `channels`, with `g = u` masked by `mask > 0`, or by
    /// `reluScale[c] * v + reluShift[c] > 0`, or not at all. `y` may be `u` (the kernels read each
    /// element before they write it).
    private static func channelAffineRows(_ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                                          reluScale: [Float]?, reluShift: [Float]?, a: [Float], b: [Float], d: [Float],
                                          rows: Int, channels: Int, into y: UnsafeMutablePointer<Float>) {
        let isa = KernelISA.current.rawValue
        withOptionalArray(reluScale) { rab in
            withOptionalArray(reluShift) { rbb in
                a.withUnsafeBufferPointer { ab in
                    b.withUnsafeBufferPointer { bb in
                        d.withUnsafeBufferPointer { db in
                            ThreadPool.shared.parallelChunks(rows, grain: Swift.max(1, elementwiseGrain / Swift.max(1, channels))) { r in
                                let o = r.lowerBound * channels
                                if let rab, let rbb {
                                    ck_channel_affine2_relu(isa, u + o, v + o, rab, rbb, Int64(r.count), Int64(channels),
                                                            ab.baseAddress!, bb.baseAddress!, db.baseAddress!, y + o)
                                } else {
                                    ck_channel_affine2(isa, u + o, v + o, mask.map { $0 + o }, Int64(r.count), Int64(channels),
                                                       ab.baseAddress!, bb.baseAddress!, db.baseAddress!, y + o)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `body` with the array's elements, or with nil for no array.
    private static func withOptionalArray<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let array else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    /// `body` with the tensor's storage, or with nil for no tensor.
    private static func withOptionalBuffer<R>(_ tensor: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let tensor else { return body(nil) }
        return tensor.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
