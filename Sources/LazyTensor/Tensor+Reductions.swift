/// Reductions and row operations. A reduction runs as one kernel whose elementwise prologue
/// (the chain that produced its input) is evaluated inside it; softmax and layer norm are one
/// kernel and one pass per row each, on any axis.
extension Tensor {
    func axesSet(_ axes: [Int]?, op: String) throws(TensorError) -> [Int] {
        let list = axes ?? Array(0..<rank)
        let normalized = list.map { $0 < 0 ? $0 + rank : $0 }
        try require(normalized.allSatisfy { $0 >= 0 && $0 < rank } && Set(normalized).count == normalized.count,
                    op, [shape], "axes \(list) are not distinct axes of rank \(rank)")
        return normalized.sorted()
    }

    func reduce(_ op: ReduceOp, axes: [Int]?, keepingDims: Bool) -> Tensor {
        let name = "\(op)"
        return Tensor.checked(keepingDims ? shape : []) { () throws(TensorError) in
            let axes = try axesSet(axes, op: name)
            var kept = shape
            for a in axes { kept[a] = 1 }
            if op != .sum && op != .mean {
                try require(axes.allSatisfy { shape[$0] > 0 }, name, [shape], "an empty axis has no \(op)")
            }
            let reduced = Tensor(node: Node(.reduce(op, axes: axes), [node], shape: kept))
            return keepingDims ? reduced : reduced.reshaped(shape.indices.filter { !axes.contains($0) }.map { shape[$0] })
        }
    }

    /// Sum over `axes` (all when nil).
    public func sum(axes: [Int]? = nil, keepingDims: Bool = false) -> Tensor { reduce(.sum, axes: axes, keepingDims: keepingDims) }
    public func mean(axes: [Int]? = nil, keepingDims: Bool = false) -> Tensor { reduce(.mean, axes: axes, keepingDims: keepingDims) }
    public func max(axes: [Int]? = nil, keepingDims: Bool = false) -> Tensor { reduce(.max, axes: axes, keepingDims: keepingDims) }
    public func min(axes: [Int]? = nil, keepingDims: Bool = false) -> Tensor { reduce(.min, axes: axes, keepingDims: keepingDims) }

    public func sum(axis: Int, keepingDims: Bool = false) -> Tensor { sum(axes: [axis], keepingDims: keepingDims) }
    public func mean(axis: Int, keepingDims: Bool = false) -> Tensor { mean(axes: [axis], keepingDims: keepingDims) }
    public func max(axis: Int, keepingDims: Bool = false) -> Tensor { max(axes: [axis], keepingDims: keepingDims) }
    public func min(axis: Int, keepingDims: Bool = false) -> Tensor { min(axes: [axis], keepingDims: keepingDims) }

    /// Index of the largest element along `axis` (first on ties; NaN wins), as floats.
    public func argmax(axis: Int, keepingDims: Bool = false) -> Tensor { argReduce(axis: axis, minimum: false, keepingDims: keepingDims) }
    public func argmin(axis: Int, keepingDims: Bool = false) -> Tensor { argReduce(axis: axis, minimum: true, keepingDims: keepingDims) }

    private func argReduce(axis: Int, minimum: Bool, keepingDims: Bool) -> Tensor {
        let name = minimum ? "argmin" : "argmax"
        return Tensor.checked(shape) { () throws(TensorError) in
            let a = try axesSet([axis], op: name)[0]
            try require(shape[a] > 0, name, [shape], "axis \(a) is empty")
            var kept = shape
            kept[a] = 1
            let result = Tensor(node: Node(.argReduce(minimum: minimum, axis: a), [node], shape: kept))
            return keepingDims ? result : result.squeezed(axis: a)
        }
    }

    private func rowOp(_ op: RowOp, axis: Int, weight: Tensor? = nil, bias: Tensor? = nil) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            let a = try axesSet([axis], op: op.name)[0]
            for p in [weight, bias].compactMap({ $0 }) {
                try require(p.scalarCount == shape[a], op.name, [shape, p.shape],
                            "a parameter must hold one value per element of axis \(a) (\(shape[a]))")
            }
            let inputs = [node] + [weight, bias].compactMap { $0?.reshaped([shape[a]]).node }
            return Tensor(node: Node(.row(op, axis: a, hasWeight: weight != nil, hasBias: bias != nil), inputs, shape: shape))
        }
    }

    public func softmax(axis: Int = -1) -> Tensor { rowOp(.softmax, axis: axis) }
    public func logSoftmax(axis: Int = -1) -> Tensor { rowOp(.logSoftmax, axis: axis) }

    /// (x - mean) / sqrt(var + eps) · weight + bias over `axis` (biased variance, as PyTorch).
    public func layerNorm(axis: Int = -1, eps: Float = 1e-5, weight: Tensor? = nil, bias: Tensor? = nil) -> Tensor {
        rowOp(.layerNorm(eps: eps), axis: axis, weight: weight, bias: bias)
    }

    /// x / sqrt(mean(x²) + eps) · weight over `axis`.
    public func rmsNorm(axis: Int = -1, eps: Float = 1e-6, weight: Tensor? = nil) -> Tensor {
        rowOp(.rmsNorm(eps: eps), axis: axis, weight: weight)
    }
}
