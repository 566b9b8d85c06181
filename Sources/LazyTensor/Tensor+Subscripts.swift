/// NumPy-style basic indexing: `x[0..., 1]`, `x[.ellipsis, -1]`, `x[2, .newAxis, 1..<5]`. Every
/// form is a view (strides on a buffer, a view node on a lazy tensor): no kernel, no copy.
public struct TensorIndex: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        case at(Int)
        case range(Int?, Int?, step: Int)
        case all, newAxis, ellipsis
    }
    let kind: Kind
}

/// What can stand in a subscript: integers, Swift's ranges and the `TensorIndex` values below.
public protocol TensorIndexConvertible: Sendable {
    var tensorIndex: TensorIndex { get }
}

extension TensorIndex: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { self }
}

extension TensorIndexConvertible where Self == TensorIndex {
    /// One position (negative counts from the end); the axis is dropped.
    public static func at(_ i: Int) -> TensorIndex { TensorIndex(kind: .at(i)) }
    /// Every position of the axis.
    public static var all: TensorIndex { TensorIndex(kind: .all) }
    /// A new axis of size 1.
    public static var newAxis: TensorIndex { TensorIndex(kind: .newAxis) }
    /// As many `.all` as the other indices leave axes.
    public static var ellipsis: TensorIndex { TensorIndex(kind: .ellipsis) }
    /// Positions lower ..< upper every `step`, Python's slice: nil bounds are the ends,
    /// negative bounds count from the end, a negative step walks down from `lower`.
    public static func slice(_ lower: Int?, _ upper: Int?, step: Int = 1) -> TensorIndex {
        TensorIndex(kind: .range(lower, upper, step: step))
    }
    /// Every `step`-th position.
    public static func stride(by step: Int) -> TensorIndex { TensorIndex(kind: .range(nil, nil, step: step)) }
}

extension Int: TensorIndexConvertible { public var tensorIndex: TensorIndex { .at(self) } }
extension Range<Int>: TensorIndexConvertible { public var tensorIndex: TensorIndex { .slice(lowerBound, upperBound) } }
extension ClosedRange<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(lowerBound, upperBound == -1 ? nil : upperBound + 1) }
}
extension PartialRangeFrom<Int>: TensorIndexConvertible { public var tensorIndex: TensorIndex { .slice(lowerBound, nil) } }
extension PartialRangeUpTo<Int>: TensorIndexConvertible { public var tensorIndex: TensorIndex { .slice(nil, upperBound) } }
extension PartialRangeThrough<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(nil, upperBound == -1 ? nil : upperBound + 1) }
}

extension Tensor {
    public subscript(_ indices: any TensorIndexConvertible...) -> Tensor { self[indices.map(\.tensorIndex)] }

    public subscript(_ indices: [TensorIndex]) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in try indexed(indices) }
    }

    private func indexed(_ indices: [TensorIndex]) throws(TensorError) -> Tensor {
        let ellipses = indices.filter { $0.kind == .ellipsis }.count
        try require(ellipses <= 1, "subscript", [shape], "more than one ellipsis")
        let consuming = indices.filter { $0.kind != .newAxis && $0.kind != .ellipsis }.count
        try require(consuming <= rank, "subscript", [shape], "\(consuming) indices for rank \(rank)")
        // Expand the ellipsis (or pad the end) with .all for the axes no index names.
        var full: [TensorIndex.Kind] = []
        for index in indices {
            if index.kind == .ellipsis { full += Array(repeating: .all, count: rank - consuming) } else { full.append(index.kind) }
        }
        if ellipses == 0 { full += Array(repeating: .all, count: rank - consuming) }
        var t = self
        var axis = 0
        var finalShape: [Int] = []
        for index in full {
            switch index {
            case .newAxis:
                finalShape.append(1)
            case .at(let i):
                let n = shape[axis]
                let p = i < 0 ? i + n : i
                try require(p >= 0 && p < n, "subscript", [shape], "index \(i) is out of range for axis \(axis) of size \(n)")
                t = t.sliced(axis: axis, range: p..<(p + 1))
                axis += 1
            case let .range(lower, upper, step):
                try require(step != 0, "subscript", [shape], "a step must not be zero")
                let n = shape[axis]
                func clamp(_ v: Int?, _ otherwise: Int) -> Int {
                    guard let v else { return otherwise }
                    return Swift.min(Swift.max(v < 0 ? v + n : v, 0), n)
                }
                if step > 0 {
                    let lo = clamp(lower, 0), hi = Swift.max(lo, clamp(upper, n))
                    t = t.sliced(axis: axis, range: lo..<hi, step: step)
                    finalShape.append(t.shape[axis])
                } else {
                    // Python's negative step: from `lower` (default: the last) down to, not
                    // including, `upper` (default: past the first).
                    let start = lower.map { Swift.min(Swift.max($0 < 0 ? $0 + n : $0, -1), n - 1) } ?? (n - 1)
                    let stop = upper.map { Swift.min(Swift.max($0 < 0 ? $0 + n : $0, -1), n - 1) } ?? -1
                    let range = start > stop ? (stop + 1)..<(start + 1) : 0..<0
                    // sliced walks a range from its upper end with a negative step; keep the
                    // positions start, start + step, ... > stop.
                    let count = range.isEmpty ? 0 : (range.count + (-step) - 1) / (-step)
                    let covered = count == 0 ? 0..<0 : (start - (count - 1) * (-step))..<(start + 1)
                    t = t.sliced(axis: axis, range: covered, step: step)
                    finalShape.append(count)
                }
                axis += 1
            case .all:
                finalShape.append(shape[axis])
                axis += 1
            case .ellipsis:
                break
            }
        }
        return t.reshaped(finalShape)
    }
}
