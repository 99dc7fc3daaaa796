import AmalgamCore

/// The arithmetic a merge follows between its inputs and its output (`amalgam merge --arithmetic`).
public enum MergeArithmetic: String, Sendable, CaseIterable {
    /// f32 element-wise work and f64 sums, rounded once to the output dtype: the more exact result.
    case exact
    /// mergekit 0.1.5's, in its working dtype (the config's `dtype:`, else the inputs'): with bf16 or f16
    /// every operation's result is rounded to it where torch's CPU kernels round, so that a published
    /// merge can be re-made byte for byte (docs/mergekit-differences.md lists the methods that can).
    case mergekit
}

/// Where a method rounds its intermediates: nowhere in exact arithmetic; in mergekit's, to the working
/// dtype after each operation torch would round (its CPU element-wise ops on bf16/f16 compute in f32 and
/// round each result; its sums accumulate in f32 and round once). The methods call it at those places,
/// so one implementation of each formula serves both arithmetics.
public struct Rounding: Sendable, Equatable {
    /// bf16 or f16; nil: no rounding (exact arithmetic, or a working dtype of f32).
    public let dtype: DType?
    /// Whether the merge follows mergekit's arithmetic (also where it computes in f32 whatever the dtype,
    /// as its linear does with a fused multiply-add).
    public let followsMergekit: Bool

    /// No rounding, our own order of operations.
    public static let exact = Rounding(dtype: nil, followsMergekit: false)

    /// Rounding to `dtype` when it is bf16 or f16, none otherwise.
    public init(dtype: DType?, followsMergekit: Bool = true) {
        self.dtype = dtype == .bf16 || dtype == .f16 ? dtype : nil
        self.followsMergekit = followsMergekit
    }

    /// The rounding `arithmetic` implies for a merge whose working dtype is `workingDType`.
    public init(_ arithmetic: MergeArithmetic, workingDType: DType?) {
        self.init(dtype: arithmetic == .mergekit ? workingDType : nil, followsMergekit: arithmetic == .mergekit)
    }

    /// Whether this rounds nothing.
    @inline(__always) public var isExact: Bool { dtype == nil }

    /// `x` rounded to the working dtype (round to nearest even, as torch's conversions).
    @inline(__always)
    public func callAsFunction(_ x: Float) -> Float {
        switch dtype {
        case .bf16?: return BFloat16.round(x)
        case .f16?: return Float(Float16(x))
        default: return x
        }
    }

    /// Every element of `values` rounded (nothing happens in exact arithmetic).
    public func apply(_ values: inout [Float]) {
        guard let dtype else { return }
        values.withUnsafeMutableBufferPointer { v in
            if dtype == .bf16 { for i in v.indices { v[i] = BFloat16.round(v[i]) } }
            else { for i in v.indices { v[i] = Float(Float16(v[i])) } }
        }
    }
}
