/// Operations that assemble new tensors from pieces: embedding lookup, concatenation, padding.
/// Each is one kernel that writes its output once, evaluating lazy inputs inside it.
extension Tensor {
    /// Rows of this table (shape [V, ...]) picked by `indices`, shaped `indexShape + [...]`
    /// (an embedding lookup). Every index must be in 0..<V.
    public func gatherRows(_ indices: [Int], indexShape: [Int]? = nil) -> Tensor {
        let indexShape = indexShape ?? [indices.count]
        return Tensor.checked(indexShape + Array(shape.dropFirst())) { () throws(TensorError) in
            try require(rank >= 1, "gather", [shape], "the table needs rank 1 or more")
            try require(indexShape.reduce(1, *) == indices.count, "gather", [shape],
                        "index shape \(indexShape) does not hold \(indices.count) indices")
            for i in indices { try require(i >= 0 && i < shape[0], "gather", [shape], "row index \(i) is outside 0..<\(shape[0])") }
            return Tensor(node: Node(.gather(indices: indices), [node], shape: indexShape + Array(shape.dropFirst())))
        }
    }

    /// Joins tensors along `axis`; all other axes must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        let shapes = tensors.map(\.shape)
        return checked(shapes.first ?? [0]) { () throws(TensorError) in
            try require(!tensors.isEmpty, "concatenate", [], "needs at least one tensor")
            let first = shapes[0]
            let a = axis < 0 ? axis + first.count : axis
            try require(a >= 0 && a < first.count, "concatenate", shapes, "axis \(axis) is out of range")
            for t in tensors {
                try require(t.rank == first.count && t.shape.indices.allSatisfy { $0 == a || t.shape[$0] == first[$0] },
                            "concatenate", shapes, "the shapes differ on an axis other than \(a)")
            }
            if tensors.count == 1 { return tensors[0] }
            var shape = first
            shape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
            return Tensor(node: Node(.concat(axis: a), tensors.map(\.node), shape: shape))
        }
    }

    /// Pads each axis with `widths[axis]` = (before, after) elements of `value`.
    public func padded(_ widths: [(Int, Int)], value: Float = 0) -> Tensor {
        Tensor.checked(shape) { () throws(TensorError) in
            try require(widths.count == rank, "pad", [shape], "needs one (before, after) pair per axis, \(widths.count) given")
            try require(widths.allSatisfy { $0.0 >= 0 && $0.1 >= 0 }, "pad", [shape], "widths must not be negative")
            let shape = zip(self.shape, widths).map { $0 + $1.0 + $1.1 }
            return Tensor(node: Node(.pad(widths: widths.flatMap { [$0.0, $0.1] }, value: value), [node], shape: shape))
        }
    }
}
