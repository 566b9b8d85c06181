/// Movement operations. On a buffer they compute new strides and share the storage (no kernel,
/// no copy). On a lazy tensor they add a view node that the consumer's kernel folds into its
/// index arithmetic. A reshape that strides cannot express stays lazy the same way: it is never
/// a silent copy.
extension Tensor {
    /// `axis` counted from the front (negative counts from the back), checked for `op`.
    func normalized(_ axis: Int, rank r: Int? = nil, op: String) throws(TensorError) -> Int {
        let r = r ?? rank
        let a = axis < 0 ? axis + r : axis
        try require(a >= 0 && a < r, op, [shape], "axis \(axis) is out of range for rank \(r)")
        return a
    }

    private func buffer() -> (Storage, Int, [Int])? {
        if case let .buffer(s, o, st) = node.op { return (s, o, st) }
        return nil
    }

    /// Reorders the axes: result axis i is this tensor's axis `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            try require(order.count == rank, "permute", [shape], "\(order) is not a permutation of \(rank) axes")
            var axes: [Int] = []
            for a in order { axes.append(try normalized(a, op: "permute")) }
            try require(Set(axes).count == rank, "permute", [shape], "\(order) is not a permutation of \(rank) axes")
            let newShape = axes.map { shape[$0] }
            if let (s, o, st) = buffer() {
                return Tensor(node: Node(.buffer(s, offset: o, strides: axes.map { st[$0] }), [], shape: newShape, dtype: node.dtype))
            }
            return Tensor(node: Node(.view(.permute(axes)), [node], shape: newShape))
        }
    }

    /// Swaps the last two axes (a matrix transpose, batched).
    public func transposed() -> Tensor {
        guard rank >= 2 else {
            return Tensor.report(TensorError(op: "transpose", shapes: [shape], reason: "needs rank 2 or more"), shape: shape)
        }
        return transposed(rank - 2, rank - 1)
    }

    /// Swaps two axes.
    public func transposed(_ a: Int, _ b: Int) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            var order = Array(0..<rank)
            order.swapAt(try normalized(a, op: "transpose"), try normalized(b, op: "transpose"))
            return permuted(order)
        }
    }

    /// Broadcasts to `newShape` with NumPy's rules (axes of size 1 stretch; leading axes may be
    /// added). Stride 0, no copy, ever.
    public func expanded(to newShape: [Int]) -> Tensor {
        if newShape == shape { return self }
        let fits = newShape.count >= rank && newShape.count <= Tensor.maxRank && newShape.allSatisfy { $0 >= 0 }
            && shape.indices.allSatisfy { shape[$0] == newShape[$0 + newShape.count - rank] || shape[$0] == 1 }
            && Layout.count(newShape) != nil
        guard fits else {
            return Tensor.report(TensorError(op: "expand", shapes: [shape], reason: "cannot broadcast to \(newShape)"), shape: newShape)
        }
        let lead = newShape.count - rank
        if let (s, o, st) = buffer() {
            var strides = [Int](repeating: 0, count: newShape.count)
            for axis in 0..<rank where shape[axis] == newShape[axis + lead] { strides[axis + lead] = st[axis] }
            return Tensor(node: Node(.buffer(s, offset: o, strides: strides), [], shape: newShape, dtype: node.dtype))
        }
        return Tensor(node: Node(.view(.expand), [node], shape: newShape))
    }

    /// NumPy's name for `expanded(to:)`.
    public func broadcast(to newShape: [Int]) -> Tensor { expanded(to: newShape) }

    /// Elements `range` of `axis`, every `step`-th (step may be negative: the range is walked
    /// from its upper end down).
    public func sliced(axis: Int, range: Range<Int>, step: Int = 1) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in try slicedChecked(axis: axis, range: range, step: step) }
    }

    private func slicedChecked(axis: Int, range: Range<Int>, step: Int) throws(TensorError) -> Tensor {
        let a = try normalized(axis, op: "slice")
        try require(step != 0, "slice", [shape], "the step must not be zero")
        try require(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice", [shape],
                    "range \(range) is outside axis \(a) of size \(shape[a])")
        let count = range.isEmpty ? 0 : (range.count + Swift.abs(step) - 1) / Swift.abs(step)
        let start = step > 0 ? range.lowerBound : range.upperBound - 1
        var newShape = shape
        newShape[a] = count
        if let (s, o, st) = buffer() {
            var strides = st
            strides[a] = st[a] * step
            return Tensor(node: Node(.buffer(s, offset: count == 0 ? o : o + start * st[a], strides: strides), [], shape: newShape, dtype: node.dtype))
        }
        return Tensor(node: Node(.view(.slice(axis: a, start: count == 0 ? 0 : start, step: step)), [node], shape: newShape))
    }

    public func sliced(axis: Int, range: ClosedRange<Int>, step: Int = 1) -> Tensor {
        sliced(axis: axis, range: range.lowerBound..<(range.upperBound + 1), step: step)
    }

    /// Reverses an axis (a negative-stride view).
    public func flipped(axis: Int) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            let a = try normalized(axis, op: "flip")
            return sliced(axis: a, range: 0..<shape[a], step: -1)
        }
    }

    /// Reinterprets the elements in row-major order with a new shape; one entry may be -1.
    /// Free when strides allow (always for contiguous tensors); otherwise lazy.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor.checked(newShape.map { Swift.max($0, 1) }) { () throws(TensorError) in try reshapedChecked(newShape) }
    }

    private func reshapedChecked(_ newShape: [Int]) throws(TensorError) -> Tensor {
        var target = newShape
        guard let known = Layout.count(newShape.filter { $0 != -1 }) else {
            throw TensorError(op: "reshape", shapes: [shape], reason: "the element count of \(newShape) does not fit an integer")
        }
        if let inferred = newShape.firstIndex(of: -1) {
            try require(newShape.filter { $0 == -1 }.count == 1, "reshape", [shape], "only one -1 is allowed in \(newShape)")
            try require(known > 0 && scalarCount % known == 0, "reshape", [shape], "\(scalarCount) elements do not fit \(newShape)")
            target[inferred] = scalarCount / known
        }
        try require(target.allSatisfy { $0 >= 0 } && Layout.count(target) == scalarCount, "reshape", [shape],
                    "\(scalarCount) elements do not fit \(newShape)")
        try require(target.count <= Tensor.maxRank, "reshape", [shape], "rank \(target.count) exceeds \(Tensor.maxRank)")
        if target == shape { return self }
        if let (s, o, st) = buffer(), let strides = Layout.reshapedStrides(shape: shape, strides: st, to: target) {
            return Tensor(node: Node(.buffer(s, offset: o, strides: strides), [], shape: target, dtype: node.dtype))
        }
        return Tensor(node: Node(.view(.reshape), [node], shape: target))
    }

    /// One axis holding every element.
    public func flattened() -> Tensor { reshaped([scalarCount]) }

    /// Merges axes `from...` into one (PyTorch's flatten(start_dim)).
    public func flattened(from axis: Int) -> Tensor {
        Tensor.checked([scalarCount]) { () throws(TensorError) in
            let a = try normalized(axis, op: "flatten")
            return reshaped(Array(shape[..<a]) + [shape[a...].reduce(1, *)])
        }
    }

    /// Removes an axis of size 1 (all of them when `axis` is nil).
    public func squeezed(axis: Int? = nil) -> Tensor {
        if let axis {
            return Tensor.checked(shape.filter { $0 != 1 }) { () throws(TensorError) in
                let a = try normalized(axis, op: "squeeze")
                try require(shape[a] == 1, "squeeze", [shape], "axis \(a) has size \(shape[a]), not 1")
                var s = shape; s.remove(at: a)
                return reshaped(s)
            }
        }
        return reshaped(shape.filter { $0 != 1 })
    }

    /// Inserts an axis of size 1 at `axis` (which may equal the rank, or be negative).
    public func unsqueezed(axis: Int) -> Tensor {
        Tensor.checked(shape + [1]) { () throws(TensorError) in
            let a = try normalized(axis, rank: rank + 1, op: "unsqueeze")
            var s = shape; s.insert(1, at: a)
            return reshaped(s)
        }
    }
}
