/// Matrix products, lowered to the BLAS on the operands' own views.
extension Tensor {
    /// NumPy's matmul: 1-D operands are promoted to a row (left) or a column (right) and the
    /// added axis removed again; batch axes broadcast.
    public func matmul(_ other: Tensor) -> Tensor { LazyTensor.matmul(self, other) }
}

public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.rank >= 1 && b.rank >= 1, "matmul needs operands of rank 1 or more, got \(a.shape) and \(b.shape)")
    let a2 = a.rank == 1 ? a.unsqueezed(axis: 0) : a
    let b2 = b.rank == 1 ? b.unsqueezed(axis: 1) : b
    let m = a2.shape[a2.rank - 2], k = a2.shape[a2.rank - 1]
    let k2 = b2.shape[b2.rank - 2], n = b2.shape[b2.rank - 1]
    precondition(k == k2, "matmul: inner dimensions differ, \(a.shape) and \(b.shape)")
    let batch = Tensor.broadcastShape(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2)))
    let ae = a2.expanded(to: batch + [m, k]), be = b2.expanded(to: batch + [k, n])
    var result = Tensor(node: Node(.matmul, [ae.node, be.node], shape: batch + [m, n]))
    if b.rank == 1 { result = result.squeezed(axis: -1) }
    if a.rank == 1 { result = result.squeezed(axis: a.rank == 1 && b.rank == 1 ? 0 : -2) }
    return result
}
