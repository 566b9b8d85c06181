/// Matrix products, lowered to wpack's GEMM on the operands' own views.
extension Tensor {
    /// NumPy's matmul: 1-D operands are promoted to a row (left) or a column (right) and the
    /// added axis removed again; batch axes broadcast.
    public func matmul(_ other: Tensor) -> Tensor { LazyTensor.matmul(self, other) }
}

public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let guess = Array(a.shape.dropLast()) + Array(b.shape.suffix(1))
    return Tensor.checked(guess) { () throws(TensorError) in try checkedMatmul(a, b) }
}

private func checkedMatmul(_ a: Tensor, _ b: Tensor) throws(TensorError) -> Tensor {
    try require(a.rank >= 1 && b.rank >= 1, "matmul", [a.shape, b.shape], "operands need rank 1 or more")
    let a2 = a.rank == 1 ? a.unsqueezed(axis: 0) : a
    let b2 = b.rank == 1 ? b.unsqueezed(axis: 1) : b
    let m = a2.shape[a2.rank - 2], k = a2.shape[a2.rank - 1]
    let k2 = b2.shape[b2.rank - 2], n = b2.shape[b2.rank - 1]
    try require(k == k2, "matmul", [a.shape, b.shape], "the inner dimensions differ (\(k) and \(k2))")
    let batch: [Int]
    do { batch = try Tensor.broadcast(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2)), op: "matmul") } catch {
        throw TensorError(op: "matmul", shapes: [a.shape, b.shape], reason: "the batch axes do not broadcast")
    }
    let ae = a2.expanded(to: batch + [m, k]), be = b2.expanded(to: batch + [k, n])
    var result = Tensor(node: Node(.matmul, [ae.node, be.node], shape: batch + [m, n]))
    if b.rank == 1 { result = result.squeezed(axis: -1) }
    if a.rank == 1 { result = result.squeezed(axis: a.rank == 1 && b.rank == 1 ? 0 : -2) }
    return result
}
