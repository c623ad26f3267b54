import TensorCore

/// Rescales the gradients of the trainable `parameters` in place so that their joint L2 norm
/// is at most `maxNorm`, as PyTorch's `torch.nn.utils.clip_grad_norm_`, and returns the norm
/// they had before.
///
/// With `total = ‖(g₁, g₂, …)‖₂` over every element of every trainable gradient, each
/// gradient becomes `g · min(1, maxNorm / (total + 1e-6))`; below the limit nothing is written.
/// Non-trainable parameters neither count nor change. Use it between the backward pass and
/// `Optimizer.step` when the loop needs the norm (for logging, or to skip a step on a
/// non-finite norm); an optimizer's `globalClipNorm` does the same without changing the
/// gradients.
///
/// Cost: one read pass over every gradient (squares summed in `Double`), and one write pass
/// when clipping happens.
/// - Precondition: `maxNorm` is positive and finite.
/// - Returns: the global norm before clipping (`inf` or `NaN` if a gradient holds them).
@discardableResult
public func clipGradients(_ parameters: [Parameter], byGlobalNorm maxNorm: Float) -> Float {
    neuritePrecondition(maxNorm.isFinite && maxNorm > 0, "clipGradients: maxNorm must be positive and finite, got \(maxNorm)")
    var total = 0.0
    for p in parameters where p.isTrainable {
        total += p.gradient.withUnsafeBufferPointer { sumOfSquares($0, clampedTo: nil) }
    }
    let norm = total.squareRoot()
    let factor = Float(Swift.min(1, Double(maxNorm) / (norm + 1e-6)))
    if factor < 1 {
        for p in parameters where p.isTrainable {
            p.gradient.withUnsafeMutableBufferPointer { g in
                forEachChunk(g.count) { range in
                    for i in range { g[i] *= factor }
                }
            }
        }
    }
    return Float(norm)
}

/// Clamps every element of the trainable `parameters`' gradients to `-limit...limit` in place,
/// as PyTorch's `torch.nn.utils.clip_grad_value_`. Non-trainable parameters do not change.
///
/// Cost: one pass over every gradient. An optimizer's `clipValue` does the same without
/// changing the gradients.
/// - Precondition: `limit` is positive and finite.
public func clipGradients(_ parameters: [Parameter], byValue limit: Float) {
    neuritePrecondition(limit.isFinite && limit > 0, "clipGradients: limit must be positive and finite, got \(limit)")
    for p in parameters where p.isTrainable {
        p.gradient.withUnsafeMutableBufferPointer { g in
            forEachChunk(g.count) { range in
                for i in range { g[i] = clamp(g[i], limit) }
            }
        }
    }
}

/// `x` clamped to `-limit...limit` (NaN stays NaN).
@inline(__always)
func clamp(_ x: Float, _ limit: Float) -> Float {
    x > limit ? limit : (x < -limit ? -limit : x)
}

/// Σ x² over `values` (each first clamped to `-limit...limit` when `limit` is given), in
/// `Double`. Eight independent sums, combined in a fixed order, keep the pass fast and the
/// result the same on every run.
func sumOfSquares(_ values: UnsafeBufferPointer<Float>, clampedTo limit: Float?) -> Double {
    if let limit {
        return sumOfSquares(values) { clamp($0, limit) }
    }
    return sumOfSquares(values) { $0 }
}

@inline(__always)
private func sumOfSquares(_ values: UnsafeBufferPointer<Float>, _ transform: (Float) -> Float) -> Double {
    var lanes = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    let n = values.count
    @inline(__always) func square(_ k: Int) -> Double {
        let x = Double(transform(values[k]))
        return x * x
    }
    var i = 0
    while i + 8 <= n {
        lanes.0 += square(i); lanes.1 += square(i + 1)
        lanes.2 += square(i + 2); lanes.3 += square(i + 3)
        lanes.4 += square(i + 4); lanes.5 += square(i + 5)
        lanes.6 += square(i + 6); lanes.7 += square(i + 7)
        i += 8
    }
    while i < n {
        lanes.0 += square(i)
        i += 1
    }
    return ((lanes.0 + lanes.1) + (lanes.2 + lanes.3)) + ((lanes.4 + lanes.5) + (lanes.6 + lanes.7))
}

/// Writes `clamp(g, limit) · scale` into `output` (same count as `g`).
func writeClipped(_ g: UnsafeBufferPointer<Float>, scale: Float, limit: Float?,
                  into output: UnsafeMutableBufferPointer<Float>) {
    forEachChunk(g.count) { range in
        if let limit {
            for i in range { output[i] = clamp(g[i], limit) * scale }
        } else {
            for i in range { output[i] = g[i] * scale }
        }
    }
}
