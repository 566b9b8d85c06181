/// Operations that assemble new tensors from pieces: embedding lookup, concatenation, padding.
/// Each is one kernel that writes its output once, evaluating lazy inputs inside it.
extension Tensor {
    /// Rows of this table (shape [V, ...]) picked by `indices`, shaped `indexShape + [...]`
    /// (an embedding lookup). Every index must be in 0..<V.
    public func gatherRows(_ indices: [Int], indexShape: [Int]? = nil) -> Tensor {
        precondition(rank >= 1, "gatherRows needs a table of rank 1 or more")
        let indexShape = indexShape ?? [indices.count]
        precondition(indexShape.reduce(1, *) == indices.count, "index shape \(indexShape) does not hold \(indices.count) indices")
        for i in indices { precondition(i >= 0 && i < shape[0], "row index \(i) outside 0..<\(shape[0])") }
        return Tensor(node: Node(.gather(indices: indices), [node], shape: indexShape + Array(shape.dropFirst())))
    }

    /// Joins tensors along `axis`; all other axes must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate needs at least one tensor")
        let first = tensors[0].shape
        let a = axis < 0 ? axis + first.count : axis
        precondition(a >= 0 && a < first.count, "axis \(axis) out of range")
        for t in tensors {
            precondition(t.rank == first.count && t.shape.indices.allSatisfy { $0 == a || t.shape[$0] == first[$0] },
                         "cannot concatenate \(t.shape) with \(first) along axis \(a)")
        }
        var shape = first
        shape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        return Tensor(node: Node(.concat(axis: a), tensors.map(\.node), shape: shape))
    }

    /// Pads each axis with `widths[axis]` = (before, after) elements of `value`.
    public func padded(_ widths: [(Int, Int)], value: Float = 0) -> Tensor {
        precondition(widths.count == rank, "padded needs one (before, after) pair per axis")
        precondition(widths.allSatisfy { $0.0 >= 0 && $0.1 >= 0 }, "padding must not be negative")
        let shape = zip(self.shape, widths).map { $0 + $1.0 + $1.1 }
        return Tensor(node: Node(.pad(widths: widths.flatMap { [$0.0, $0.1] }, value: value), [node], shape: shape))
    }
}
