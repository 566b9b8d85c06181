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
/// `k` and `v` may have fewer heads than `q` (grouped-query attention): with Hk heads, query
/// head h reads key and value head h / (H / Hk), in place. `causal` lets query i of T see keys
/// 0 ... S - T + i: the usual causal mask when S = T, and the right one for a decode step whose
/// first S - T keys come from a cache. `mask` doubles as an additive per-head bias (ALiBi,
/// relative positions): give it shape [heads, T, S] or [1, heads, T, S].
///
/// `segments` packs several sequences along the token axis, with no padding: q, k, v are
/// [1, heads, N, width] with N the sum of the lengths, and each sequence attends only to its
/// own tokens. `mask`, if any, then broadcasts to [1, heads, L, L] (L the longest length) and
/// each sequence reads its top-left corner (a relative position bias, say).
public func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor? = nil, scale: Float? = nil,
                                      causal: Bool = false, segments: [Int]? = nil) -> Tensor {
    let guess = q.rank == 4 && v.rank == 4 ? [q.shape[0], q.shape[1], q.shape[2], v.shape[3]] : q.shape
    return Tensor.checked(guess) { () throws(TensorError) in
        let shapes = [q.shape, k.shape, v.shape] + (mask.map { [$0.shape] } ?? [])
        try require(q.rank == 4 && k.rank == 4 && v.rank == 4, "attention", shapes,
                    "q, k and v need rank 4 [batch, heads, tokens, width]")
        let (b, h, t, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
        let (hk, s, dv) = (k.shape[1], k.shape[2], v.shape[3])
        try require(k.shape[0] == b && k.shape[3] == d, "attention", shapes, "k must be [\(b), heads, S, \(d)]")
        try require(hk >= 1 && h % hk == 0, "attention", shapes, "k's \(hk) heads do not divide q's \(h)")
        try require(v.shape[0] == b && v.shape[1] == hk && v.shape[2] == s, "attention", shapes, "v must be [\(b), \(hk), \(s), dv]")
        try require(!causal || t <= s, "attention", shapes, "causal attention needs at least as many keys as queries")
        // The first keys of a cache's whole storage (what KVCache.append returns) are read in
        // place from that storage, their number taken at run time: one plan for every step.
        var inputs = [q.node, k.node, v.node]
        var keyLength: Int?
        if let kc = cachedPrefix(k), let vc = cachedPrefix(v), mask == nil, segments == nil {
            inputs = [q.node, kc, vc]
            keyLength = s
        }
        if let segments {
            try require(b == 1 && s == t && hk == h && segments.allSatisfy { $0 > 0 } && segments.reduce(0, +) == t,
                        "attention", shapes, "segments \(segments) must be positive lengths summing to the \(t) tokens of a batch of 1")
        }
        if let mask {
            let target = segments.map { [1, h, $0.max() ?? 0, $0.max() ?? 0] } ?? [b, h, t, s]
            let lead = target.count - mask.rank
            try require(mask.rank <= 4 && mask.shape.indices.allSatisfy { mask.shape[$0] == 1 || mask.shape[$0] == target[$0 + lead] },
                        "attention", shapes, "the mask must broadcast to \(target)")
            inputs.append(mask.expanded(to: target).node)
        }
        let p = AttentionParameters(scale: scale ?? 1 / Float(d).squareRoot(), hasMask: mask != nil, causal: causal,
                                    segments: segments, keyLength: keyLength)
        return Tensor(node: Node(.attention(p), inputs, shape: [b, t, h, dv])).permuted([0, 2, 1, 3])
    }
}

/// The write node whose leading positions `t` views, when `t` is such a view of a cache.
private func cachedPrefix(_ t: Tensor) -> Node? {
    guard case .view(.slice(axis: 2, start: 0, step: 1)) = t.node.op else { return nil }
    let base = t.node.inputs[0]
    guard case .write(_, _, _, axis: 2, _) = base.op else { return nil }
    return base
}
