import CKernels

/// The optimizers' update rules as fused, vectorised kernels, for the Optimizers module.
///
/// `package` access: the Optimizers module reaches CKernels' `ck_*_update` kernels only through
/// here, and they are not part of TensorCore's public API. The formulas and their exact order of
/// operations are in `ck_optim.h`; the Optimizers classes document what they mean.
///
/// Each function updates its arrays in place in one pass over memory (Adam moves 28 bytes per
/// element, so a parameter past the caches runs at memory bandwidth), on the kernel path of the
/// current `KernelISA`, read here on the calling thread. Parameters of 32Ki elements or more are
/// split over `ThreadPool.shared`. Every path and every split gives the same bits: the kernels
/// use plain IEEE operations (no fused multiply-add) and compute the remainder of a chunk with
/// the same code as its body.
///
/// - Precondition (every function): the arrays have the count of `weights` (slots that a
///   configuration does not use are passed as `nil`) and do not overlap.
package enum OptimizerKernels {
    /// The smallest chunk a rule is split into: parameters under 32Ki elements (two chunks) stay
    /// on the calling thread, where the hand-off would cost more than it saves. A chunk is about
    /// 8 us of Adam on one AVX-512 core, against about a microsecond to hand a job to a worker
    /// that is watching for it between the kernels of a step. (At 64Ki, the shallow MLP's 784 x
    /// 128 kernel, 100Ki elements and 7% of its one-thread step, ran on one thread.)
    static let grain = 1 << 14

    /// Adam and AdamW (AMSGrad when `vMax` is given), PyTorch's rule:
    /// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `s ← v` (or `s ← v̂ ← max(v̂, v)`), then
    /// `w ← w·decay − stepSize · m / (√s · inverseCorrection2 + ε)`, where the caller passes
    /// `stepSize = lr / (1 − β₁ᵗ)`, `inverseCorrection2 = 1 / √(1 − β₂ᵗ)` and
    /// `decay = 1 − lr · weightDecay` (1 for Adam: no multiply).
    package static func adam(
        weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>,
        vMax: UnsafeMutableBufferPointer<Float>?,
        beta1: Float, beta2: Float, stepSize: Float, inverseCorrection2: Float, epsilon: Float, decay: Float
    ) {
        let n = weights.count
        checkCounts(n, gradient.count, m.count, v.count, vMax?.count ?? n)
        guard n > 0 else { return }
        let args = ck_adam_args(
            w: weights.baseAddress, g: gradient.baseAddress, m: m.baseAddress, v: v.baseAddress,
            v_max: vMax?.baseAddress, beta1: beta1, beta2: beta2, step_size: stepSize,
            inv_correction2: inverseCorrection2, epsilon: epsilon, decay: decay)
        run(args, count: n, ck_adam_update)
    }

    /// RMSprop, Keras' rule (momentum when `momentumBuffer` is given, centred when
    /// `averageGradient` is given): `v ← ρv + (1−ρ)g²`, `a ← ρa + (1−ρ)g`,
    /// `δ ← lr·g / √(v − a² + ε)` (centred; else `√(v + ε)`), then `b ← μb + δ; w ← w − b`,
    /// or `w ← w − δ` without momentum.
    package static func rmsprop(
        weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        velocity: UnsafeMutableBufferPointer<Float>, momentumBuffer: UnsafeMutableBufferPointer<Float>?,
        averageGradient: UnsafeMutableBufferPointer<Float>?,
        learningRate: Float, rho: Float, momentum: Float, epsilon: Float
    ) {
        let n = weights.count
        checkCounts(n, gradient.count, velocity.count, momentumBuffer?.count ?? n, averageGradient?.count ?? n)
        guard n > 0 else { return }
        let args = ck_rmsprop_args(
            w: weights.baseAddress, g: gradient.baseAddress, v: velocity.baseAddress,
            b: momentumBuffer?.baseAddress, a: averageGradient?.baseAddress,
            lr: learningRate, rho: rho, momentum: momentum, epsilon: epsilon)
        run(args, count: n, ck_rmsprop_update)
    }

    /// Adagrad, Keras' rule: `s ← s + g²`, `w ← w − lr·g / √(s + ε)`.
    package static func adagrad(
        weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        accumulator: UnsafeMutableBufferPointer<Float>, learningRate: Float, epsilon: Float
    ) {
        let n = weights.count
        checkCounts(n, gradient.count, accumulator.count)
        guard n > 0 else { return }
        let args = ck_adagrad_args(
            w: weights.baseAddress, g: gradient.baseAddress, s: accumulator.baseAddress,
            lr: learningRate, epsilon: epsilon)
        run(args, count: n, ck_adagrad_update)
    }

    /// SGD, PyTorch's rule (dampening 0; momentum when `momentumBuffer` is given):
    /// `d ← g + weightDecay·w`, then `b ← μb + d; w ← w − lr·(nesterov ? d + μb : b)`, or
    /// `w ← w − lr·d` without momentum.
    package static func sgd(
        weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>,
        momentumBuffer: UnsafeMutableBufferPointer<Float>?,
        learningRate: Float, momentum: Float, weightDecay: Float, nesterov: Bool
    ) {
        let n = weights.count
        checkCounts(n, gradient.count, momentumBuffer?.count ?? n)
        guard n > 0 else { return }
        let args = ck_sgd_args(
            w: weights.baseAddress, g: gradient.baseAddress, b: momentumBuffer?.baseAddress,
            lr: learningRate, momentum: momentum, weight_decay: weightDecay, nesterov: nesterov ? 1 : 0)
        run(args, count: n, ck_sgd_update)
    }

    /// Calls `kernel(isa, &args, start, count)` over `0..<count` in chunks, split over the pool.
    @inline(__always)
    private static func run<Args>(_ args: Args, count: Int,
                                  _ kernel: (Int32, UnsafePointer<Args>?, Int64, Int64) -> Void) {
        let isa = KernelISA.current.rawValue
        withUnsafePointer(to: args) { a in
            ThreadPool.shared.parallelChunks(count, grain: grain) { r in
                kernel(isa, a, Int64(r.lowerBound), Int64(r.count))
            }
        }
    }

    private static func checkCounts(_ n: Int, _ counts: Int...) {
        neuritePrecondition(counts.allSatisfy { $0 == n },
                            "optimizer update: the arrays have counts \(counts), the weights \(n)")
    }
}
