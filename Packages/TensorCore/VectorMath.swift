import CKernels

/// The vectorised element-wise kernels of `Tensor+Math` on raw buffers, for layers that apply a
/// non-linearity to slices of their own scratch space (a recurrent cell's gates, one time step at
/// a time) without making a tensor per slice.
///
/// Each call runs on the calling thread (callers split the work themselves) with `isa`, by
/// default the current `KernelISA`; a caller making thousands of short calls reads
/// `KernelISA.current` once and passes it (reading it looks up a task-local value). `x` and `y`
/// may be the same buffer. Accuracy as the `Tensor` methods.
package enum VectorMath {
    /// `y[i] = tanh(x[i])` for `i < count`.
    package static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                             isa: KernelISA = .current) {
        ck_vtanh(isa.rawValue, x, y, Int64(count))
    }

    /// `y[i] = 1 / (1 + e^-x[i])` for `i < count`.
    package static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                             isa: KernelISA = .current) {
        ck_vsigmoid(isa.rawValue, x, y, Int64(count))
    }

    /// `y[i] = e^x[i]` for `i < count`.
    package static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                             isa: KernelISA = .current) {
        ck_vexp(isa.rawValue, x, y, Int64(count))
    }
}
