/// Tensors cut into pieces and put together again: stacking, splitting, repeating. Splits are
/// views (no copy); a stack is one concatenation kernel; a repeat is a broadcast that the
/// consuming kernel reads through its index map, so it costs a copy only when materialised.
extension Tensor {
    /// Joins tensors of one shape along a new axis `axis` (NumPy's stack).
    public static func stacked(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        let shapes = tensors.map(\.shape)
        return checked(shapes.first.map { [tensors.count] + $0 } ?? [0]) { () throws(TensorError) in
            try require(!tensors.isEmpty, "stack", [], "needs at least one tensor")
            try require(shapes.allSatisfy { $0 == shapes[0] }, "stack", shapes, "every tensor must have the same shape")
            let rank = shapes[0].count + 1
            let a = axis < 0 ? axis + rank : axis
            try require(a >= 0 && a < rank, "stack", shapes, "axis \(axis) is out of range for rank \(rank)")
            return concatenate(tensors.map { $0.unsqueezed(axis: a) }, axis: a)
        }
    }

    /// Views of consecutive pieces of `axis`, of the given sizes (which must add up to the axis).
    public func split(sizes: [Int], axis: Int = 0) -> [Tensor] {
        do {
            let a = try normalized(axis, op: "split")
            try require(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[a], "split", [shape],
                        "sizes \(sizes) do not add up to axis \(a)'s \(shape[a])")
            var start = 0
            return sizes.map { n in
                defer { start += n }
                return sliced(axis: a, range: start..<(start + n))
            }
        } catch {
            return sizes.map { n in
                var s = shape
                if !s.isEmpty { s[Swift.min(Swift.max(axis < 0 ? axis + rank : axis, 0), rank - 1)] = n }
                return Tensor.report(error, shape: s)
            }
        }
    }

    /// `count` views of nearly equal size along `axis`, as PyTorch's chunk: each
    /// ceil(n / count) long, the last shorter, fewer pieces when n is small.
    public func chunked(_ count: Int, axis: Int = 0) -> [Tensor] {
        do {
            let a = try normalized(axis, op: "chunk")
            try require(count >= 1, "chunk", [shape], "needs at least one piece, \(count) asked")
            let n = shape[a]
            let size = Swift.max(1, (n + count - 1) / count)
            let sizes = n == 0 ? [0] : stride(from: 0, to: n, by: size).map { Swift.min(size, n - $0) }
            return split(sizes: sizes, axis: a)
        } catch {
            return [Tensor.report(error, shape: shape)]
        }
    }

    /// The whole tensor repeated `counts[i]` times along axis i (PyTorch's repeat, NumPy's
    /// tile); `counts` may be longer than the rank (new leading axes).
    public func repeated(_ counts: [Int]) -> Tensor {
        let guess = counts.count >= rank ? counts.enumerated().map { i, c in
            c * (i < counts.count - rank ? 1 : shape[i - (counts.count - rank)])
        } : shape
        return Tensor.checked(guess) { () throws(TensorError) in
            try require(counts.count >= rank && counts.allSatisfy { $0 >= 0 }, "repeat", [shape],
                        "needs a count of 0 or more for each of the \(rank) axes, \(counts) given")
            try require(2 * counts.count <= Tensor.maxRank || counts.allSatisfy({ $0 == 1 }), "repeat", [shape],
                        "repeating \(counts.count) axes needs rank \(2 * counts.count), more than \(Tensor.maxRank)")
            let full = [Int](repeating: 1, count: counts.count - rank) + shape
            // [c0, d0, c1, d1, ...] by broadcasting [1, d0, 1, d1, ...], then merged pairwise.
            let interleaved = full.flatMap { [1, $0] }
            let expandedShape = zip(counts, full).flatMap { [$0, $1] }
            return reshaped(interleaved).expanded(to: expandedShape).reshaped(guess)
        }
    }

    /// Each element repeated `count` times along `axis`, next to itself (PyTorch's
    /// repeat_interleave): key heads repeated for a grouped-query layer written naively.
    public func repeatedElements(_ count: Int, axis: Int) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            let a = try normalized(axis, op: "repeat_interleave")
            try require(count >= 0, "repeat_interleave", [shape], "the count must not be negative")
            var inserted = shape
            inserted.insert(1, at: a + 1)
            var wide = inserted
            wide[a + 1] = count
            var result = shape
            result[a] *= count
            return reshaped(inserted).expanded(to: wide).reshaped(result)
        }
    }
}
