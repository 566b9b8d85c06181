/// Movement operations. On a buffer they compute new strides and share the storage (no kernel,
/// no copy). On a lazy tensor they add a view node that the consumer's kernel folds into its
/// index arithmetic. A reshape that strides cannot express stays lazy the same way: it is never
/// a silent copy.
extension Tensor {
    private func normalized(_ axis: Int, rank r: Int? = nil) -> Int {
        let r = r ?? rank
        let a = axis < 0 ? axis + r : axis
        precondition(a >= 0 && a < r, "axis \(axis) out of range for rank \(r)")
        return a
    }

    private func buffer() -> (Storage, Int, [Int])? {
        if case let .buffer(s, o, st) = node.op { return (s, o, st) }
        return nil
    }

    /// Reorders the axes: result axis i is this tensor's axis `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        let order = order.map { normalized($0) }
        precondition(order.count == rank && Set(order).count == rank, "\(order) is not a permutation of \(rank) axes")
        let newShape = order.map { shape[$0] }
        if let (s, o, st) = buffer() {
            return Tensor(node: Node(.buffer(s, offset: o, strides: order.map { st[$0] }), [], shape: newShape))
        }
        return Tensor(node: Node(.view(.permute(order)), [node], shape: newShape))
    }

    /// Swaps the last two axes (a matrix transpose, batched).
    public func transposed() -> Tensor {
        precondition(rank >= 2, "transposed() needs rank 2 or more, shape is \(shape)")
        return transposed(rank - 2, rank - 1)
    }

    /// Swaps two axes.
    public func transposed(_ a: Int, _ b: Int) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(normalized(a), normalized(b))
        return permuted(order)
    }

    /// Broadcasts to `newShape` with NumPy's rules (axes of size 1 stretch; leading axes may be
    /// added). Stride 0, no copy, ever.
    public func expanded(to newShape: [Int]) -> Tensor {
        precondition(newShape.count >= rank, "cannot expand \(shape) to fewer axes \(newShape)")
        let lead = newShape.count - rank
        for (axis, size) in shape.enumerated() {
            precondition(size == newShape[axis + lead] || size == 1, "cannot broadcast \(shape) to \(newShape)")
        }
        if newShape == shape { return self }
        if let (s, o, st) = buffer() {
            var strides = [Int](repeating: 0, count: newShape.count)
            for axis in 0..<rank where shape[axis] == newShape[axis + lead] { strides[axis + lead] = st[axis] }
            return Tensor(node: Node(.buffer(s, offset: o, strides: strides), [], shape: newShape))
        }
        return Tensor(node: Node(.view(.expand), [node], shape: newShape))
    }

    /// NumPy's name for `expanded(to:)`.
    public func broadcast(to newShape: [Int]) -> Tensor { expanded(to: newShape) }

    /// Elements `range` of `axis`, every `step`-th (step may be negative: the range is walked
    /// from its upper end down).
    public func sliced(axis: Int, range: Range<Int>, step: Int = 1) -> Tensor {
        let a = normalized(axis)
        precondition(step != 0, "slice step must not be zero")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "range \(range) outside axis \(a) of size \(shape[a])")
        let count = range.isEmpty ? 0 : (range.count + Swift.abs(step) - 1) / Swift.abs(step)
        let start = step > 0 ? range.lowerBound : range.upperBound - 1
        var newShape = shape
        newShape[a] = count
        if let (s, o, st) = buffer() {
            var strides = st
            strides[a] = st[a] * step
            return Tensor(node: Node(.buffer(s, offset: count == 0 ? o : o + start * st[a], strides: strides), [], shape: newShape))
        }
        return Tensor(node: Node(.view(.slice(axis: a, start: count == 0 ? 0 : start, step: step)), [node], shape: newShape))
    }

    public func sliced(axis: Int, range: ClosedRange<Int>, step: Int = 1) -> Tensor {
        sliced(axis: axis, range: range.lowerBound..<(range.upperBound + 1), step: step)
    }

    /// Reverses an axis (a negative-stride view).
    public func flipped(axis: Int) -> Tensor { sliced(axis: axis, range: 0..<shape[normalized(axis)], step: -1) }

    /// Reinterprets the elements in row-major order with a new shape; one entry may be -1.
    /// Free when strides allow (always for contiguous tensors); otherwise lazy.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        let known = newShape.filter { $0 != -1 }.reduce(1, *)
        if let inferred = newShape.firstIndex(of: -1) {
            precondition(newShape.filter { $0 == -1 }.count == 1, "only one -1 allowed in \(newShape)")
            precondition(known > 0 && scalarCount % known == 0, "cannot reshape \(shape) to \(newShape)")
            target[inferred] = scalarCount / known
        }
        precondition(target.allSatisfy { $0 >= 0 } && target.reduce(1, *) == scalarCount,
                     "cannot reshape \(shape) (\(scalarCount) elements) to \(newShape)")
        precondition(target.count <= Tensor.maxRank, "rank \(target.count) exceeds \(Tensor.maxRank)")
        if target == shape { return self }
        if let (s, o, st) = buffer(), let strides = Layout.reshapedStrides(shape: shape, strides: st, to: target) {
            return Tensor(node: Node(.buffer(s, offset: o, strides: strides), [], shape: target))
        }
        return Tensor(node: Node(.view(.reshape), [node], shape: target))
    }

    /// One axis holding every element.
    public func flattened() -> Tensor { reshaped([scalarCount]) }

    /// Merges axes `from...` into one (PyTorch's flatten(start_dim)).
    public func flattened(from axis: Int) -> Tensor {
        let a = normalized(axis)
        return reshaped(Array(shape[..<a]) + [shape[a...].reduce(1, *)])
    }

    /// Removes an axis of size 1 (all of them when `axis` is nil).
    public func squeezed(axis: Int? = nil) -> Tensor {
        if let axis {
            let a = normalized(axis)
            precondition(shape[a] == 1, "cannot squeeze axis \(a) of size \(shape[a])")
            var s = shape; s.remove(at: a)
            return reshaped(s)
        }
        return reshaped(shape.filter { $0 != 1 })
    }

    /// Inserts an axis of size 1 at `axis` (which may equal the rank, or be negative).
    public func unsqueezed(axis: Int) -> Tensor {
        let a = normalized(axis, rank: rank + 1)
        var s = shape; s.insert(1, at: a)
        return reshaped(s)
    }
}
