import CKernels

/// Elementwise functions of one argument. Raw values are the C kernels' codes.
public enum UnaryOp: Int32, Sendable, CaseIterable {
    case neg, abs, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, geluErf, geluTanh, silu, erf, reciprocal, square
    case sin, cos, hardsigmoid, hardswish, floor

    var code: Int32 { rawValue }

    /// Costly enough that a shared result is computed once and stored rather than recomputed.
    var isTranscendental: Bool {
        switch self {
        case .exp, .log, .tanh, .sigmoid, .geluErf, .geluTanh, .silu, .erf, .sin, .cos: true
        default: false
        }
    }

    var name: String { String(describing: self) }
}

/// Elementwise functions of two arguments (comparisons give 1 or 0).
public enum BinaryOp: Int32, Sendable, CaseIterable {
    case add, sub, mul, div, max, min, pow, less, lessEqual, greater, greaterEqual, equal, notEqual

    var code: Int32 { rawValue }
    var name: String { String(describing: self) }
}

/// Reductions over a set of axes.
public enum ReduceOp: Sendable, Equatable {
    case sum, mean, max, min

    var code: Int32 {
        switch self {
        case .sum, .mean: Int32(WK_SUM.rawValue)
        case .max: Int32(WK_RMAX.rawValue)
        case .min: Int32(WK_RMIN.rawValue)
        }
    }

    var identity: Float {
        switch self {
        case .sum, .mean: 0
        case .max: -.infinity
        case .min: .infinity
        }
    }
}

/// Operations that read a whole row (one pass, the row held in cache) and write a row.
public enum RowOp: Sendable, Equatable {
    case softmax, logSoftmax
    case layerNorm(eps: Float)
    case rmsNorm(eps: Float)

    var name: String {
        switch self {
        case .softmax: "softmax"
        case .logSoftmax: "logSoftmax"
        case .layerNorm: "layerNorm"
        case .rmsNorm: "rmsNorm"
        }
    }
}
