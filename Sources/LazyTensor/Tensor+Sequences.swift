/// Tensors made from index arithmetic: ranges and triangular masks.
extension Tensor {
    /// [0, 1, ..., count - 1] (exactly `count` values; past 2^24 they are float32's roundings).
    public static func arange(_ count: Int) -> Tensor { filled(count: Swift.max(count, 0), start: 0, step: 1) }

    /// start, start + step, ... up to but excluding end (NumPy's arange, in float32; each value
    /// is computed as start + i·step, not accumulated).
    public static func arange(_ start: Float, _ end: Float, step: Float = 1) -> Tensor {
        guard step != 0, start.isFinite, end.isFinite, step.isFinite else {
            return report(TensorError(op: "arange", shapes: [], reason: "needs finite bounds and a step other than 0"), shape: [0])
        }
        let count = Swift.max(0, Int(((Double(end) - Double(start)) / Double(step)).rounded(.up)))
        return filled(count: count, start: Double(start), step: Double(step))
    }

    private static func filled(count: Int, start: Double, step: Double) -> Tensor {
        guard validCount([count], op: "arange") != nil else { return standIn(shape: [0]) }
        let storage = Storage(allocatingByteCount: count * MemoryLayout<Float>.stride)
        let out = storage.baseAddress.assumingMemoryBound(to: Float.self)
        for i in 0..<count { out[i] = Float(start + Double(i) * step) }
        return Tensor(storage: storage, shape: [count])
    }

    /// The elements on and above diagonal `k` of the last two axes, zeros below (NumPy's
    /// triu): one fused select, no mask buffer beyond the two index ranges.
    public func upperTriangle(diagonal k: Int = 0) -> Tensor { triangle(keepAbove: true, k, op: "triu") }

    /// The elements on and below diagonal `k` of the last two axes, zeros above (NumPy's tril).
    public func lowerTriangle(diagonal k: Int = 0) -> Tensor { triangle(keepAbove: false, k, op: "tril") }

    private func triangle(keepAbove: Bool, _ k: Int, op: String) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            try require(rank >= 2, op, [shape], "needs rank 2 or more")
            let (rows, cols) = (shape[rank - 2], shape[rank - 1])
            // column - row compared with k: the whole mask is a broadcast of two aranges.
            let offset = Tensor.arange(cols).reshaped([1, cols]) - Tensor.arange(rows).reshaped([rows, 1])
            let keep = keepAbove ? offset.greaterEqual(Tensor.constant(Float(k))) : offset.lessEqual(Tensor.constant(Float(k)))
            return Tensor.select(keep, self, 0)
        }
    }

    /// [rows, cols]: `value` where column j > row i + k (hidden from row i), 0 elsewhere: an
    /// additive causal mask, for kernels that want one (attention's `causal:` flag needs none).
    public static func causalMask(rows: Int, cols: Int, diagonal k: Int = 0, value: Float = -.infinity) -> Tensor {
        let offset = arange(cols).reshaped([1, cols]) - arange(rows).reshaped([rows, 1])
        return select(offset.greater(Float(k)), constant(value), 0)
    }
}
