/// Scaled dot-product attention, as one kernel.
///
/// softmax(q · kᵀ · scale + mask) · v over q [B, heads, T, d], k [B, heads, S, d] and
/// v [B, heads, S, dv]; `mask` is added to the scores and may be anything that broadcasts to
/// [B, heads, T, S] (a padding mask [B, 1, 1, S], say); `scale` defaults to 1/√d. The result
/// has PyTorch's shape [B, heads, T, dv] but is a view of a buffer laid out [B, T, heads, dv],
/// so `.permuted([0, 2, 1, 3]).reshaped([B, T, heads·dv])`, which merges the heads, is free.
///
/// Written as matmul, softmax and matmul, the same computation is three kernels that write and
/// read the [B, heads, T, S] scores through memory (25 MB per MiniLM layer at 32 x 128); here
/// the scores of one (batch, head) pair stay in a worker's cache.
///
/// `segments` packs several sequences along the token axis, with no padding: q, k, v are
/// [1, heads, N, width] with N the sum of the lengths, and each sequence attends only to its
/// own tokens. `mask`, if any, then broadcasts to [1, heads, L, L] (L the longest length) and
/// each sequence reads its top-left corner (a relative position bias, say).
public func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor? = nil, scale: Float? = nil,
                                      segments: [Int]? = nil) -> Tensor {
    precondition(q.rank == 4 && k.rank == 4 && v.rank == 4,
                 "attention needs q, k, v of rank 4 [batch, heads, tokens, width], got \(q.shape), \(k.shape), \(v.shape)")
    let (b, h, t, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
    let s = k.shape[2], dv = v.shape[3]
    precondition(k.shape == [b, h, s, d], "attention: k must be [\(b), \(h), S, \(d)], got \(k.shape)")
    precondition(v.shape == [b, h, s, dv], "attention: v must be [\(b), \(h), \(s), dv], got \(v.shape)")
    var inputs = [q.node, k.node, v.node]
    if let segments {
        precondition(b == 1 && s == t && segments.allSatisfy { $0 > 0 } && segments.reduce(0, +) == t,
                     "attention: segments \(segments) must be positive lengths summing to the \(t) tokens of a batch of 1, keys as many")
    }
    if let mask {
        precondition(mask.rank <= 4, "attention: the mask must broadcast to [\(b), \(h), \(t), \(s)], got \(mask.shape)")
        let longest = segments?.max() ?? 0
        inputs.append(mask.expanded(to: segments == nil ? [b, h, t, s] : [1, h, longest, longest]).node)
    }
    let factor = scale ?? 1 / Float(d).squareRoot()
    let node = Node(.attention(scale: factor, hasMask: mask != nil, segments: segments), inputs, shape: [b, t, h, dv])
    return Tensor(node: node).permuted([0, 2, 1, 3])
}
