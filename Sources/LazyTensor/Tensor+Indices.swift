/// Integer tensors and the ops that make or use them: conversions, topK, take and gather.
/// Indices are exact at any length (int64); float32 stays the compute type, and arithmetic on
/// an integer tensor widens it first, in a kernel of its own, counted as `.convert`.
extension Tensor {
    /// The elements as `dtype`: float32 to compute with indices, int32 / int64 to use computed
    /// values as indices (truncating toward zero, as NumPy's astype). A no-op when it already is.
    public func converted(to dtype: DType) -> Tensor {
        if dtype == self.dtype { return self }
        if self.dtype.isCodedWeight && dtype != .float32 { return converted(to: .float32).converted(to: dtype) }
        guard dtype.isTensorElement else {
            return Tensor.report(TensorError(op: "convert", shapes: [shape], reason: "\(dtype) is not a tensor element type"), shape: shape)
        }
        return Tensor(node: Node(.convert, [node], shape: shape, dtype: dtype))
    }

    /// [0, 1, ..., count - 1] as integers (int64 or int32): positions, ids.
    public static func arange(_ count: Int, dtype: DType) -> Tensor {
        guard dtype != .float32 else { return arange(count) }
        return Tensor(shape: [Swift.max(count, 0)], integers: Array(0..<Swift.max(count, 0)), dtype: dtype)
    }

    /// The k largest (or, with `largest` false, smallest) elements along `axis`, in order, and
    /// their indices (int64; ties to the lower index; NaN counts as the largest, as PyTorch).
    public func topK(_ k: Int, axis: Int = -1, largest: Bool = true) -> (values: Tensor, indices: Tensor) {
        do {
            let a = try normalized(axis, op: "topK")
            try require(k >= 0 && k <= shape[a], "topK", [shape], "k = \(k) is outside 0 ... \(shape[a])")
            var out = shape
            out[a] = k
            let indices = Tensor(node: Node(.topK(k: k, axis: a, largest: largest), [node], shape: out))
            return (gather(indices, axis: a), indices)
        } catch {
            var out = shape
            if !out.isEmpty { out[out.count - 1] = Swift.max(k, 0) }
            return (Tensor.report(error, shape: out), Tensor.standIn(shape: out))
        }
    }

    /// NumPy's take: the slices of `axis` at `indices` (int32 or int64, negative counting from
    /// the end), shaped shape[..<axis] + indices.shape + shape[(axis + 1)...]. An embedding
    /// lookup is `table.take(ids, axis: 0)`. Indices are checked when the kernel runs.
    public func take(_ indices: Tensor, axis: Int = 0) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            let a = try normalized(axis, op: "take")
            try require(indices.dtype == .int32 || indices.dtype == .int64, "take", [shape, indices.shape],
                        "indices must be int32 or int64, not \(indices.dtype) (use converted(to: .int64))")
            let out = Array(shape[..<a]) + indices.shape + Array(shape[(a + 1)...])
            try require(out.count <= Tensor.maxRank, "take", [shape, indices.shape], "the result's rank exceeds \(Tensor.maxRank)")
            return Tensor(node: Node(.take(axis: a, alongAxis: false), [node, indices.node], shape: out))
        }
    }

    /// PyTorch's gather (NumPy's take_along_axis): out[i...] = self[i... with `axis` replaced by
    /// indices[i...]]. `indices` has this tensor's rank, and on every other axis at most its size.
    public func gather(_ indices: Tensor, axis: Int) -> Tensor {
        Tensor.checked(indices.shape) { () throws(TensorError) in
            let a = try normalized(axis, op: "gather")
            try require(indices.dtype == .int32 || indices.dtype == .int64, "gather", [shape, indices.shape],
                        "indices must be int32 or int64, not \(indices.dtype) (use converted(to: .int64))")
            try require(indices.rank == rank && shape.indices.allSatisfy { $0 == a || indices.shape[$0] <= shape[$0] },
                        "gather", [shape, indices.shape], "indices need rank \(rank) and at most this tensor's size off axis \(a)")
            return Tensor(node: Node(.take(axis: a, alongAxis: true), [node, indices.node], shape: indices.shape))
        }
    }
}
