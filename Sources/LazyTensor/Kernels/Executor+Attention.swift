import CKernels

/// The attention kernel: one pass per (sequence, head) pair with its scores in a worker's cache.
extension Executor {
    /// Up to this many queries and keys, a head's attention runs in wk_attention_head.
    static let directAttentionLength = 64
    /// Up to this many queries, against any number of keys (a decode step's), too.
    static let directAttentionQueries = Int(WK_ATTENTION_FEW_QUERIES)
    /// With AVX2, any number of queries against up to this many keys: the head kernel's six-row
    /// tiles read kᵀ packed once (keys x head width floats: 256 KB at 1,024 x 64, L2's size);
    /// beyond it the packed GEMM's blocking pays.
    static let tiledAttentionKeys = 1024

    /// softmax(q·kᵀ·scale + mask)·v for each (sequence, head) pair, with the scores of one pair
    /// in a worker's scratch (128 x 128 floats for MiniLM: L2-resident) instead of three kernels
    /// that each write and read [B, H, T, S] through memory. The output rows go straight to
    /// [B, T, H, dv], so merging the heads afterwards is a view. A sequence is one batch entry,
    /// or, with `segments`, one of the sequences packed along T (each attends to its own keys
    /// only, and reads the mask from its corner). Grouped-query heads read their shared key
    /// and value head in place (no repeat, no copy); a causal row stops at its last visible key,
    /// so the softmax and the product with v skip the hidden ones instead of adding -inf.
    func runAttention(_ kernel: Kernel, _ planned: AttentionParameters, into out: UnsafeMutablePointer<Float>) {
        // Cached keys end where this graph's key write ends, read now: a cached plan serves
        // every length, and a replayed step's write moves with the cache's length.
        var p = planned
        if p.keyLength != nil, case let .write(_, _, _, axis, position) = kernel.node.inputs[1].op {
            p.keyLength = position.value + kernel.node.inputs[1].inputs[0].shape[axis]
        }
        let q = operand(kernel.programs[0]), k = operand(kernel.programs[1]), v = operand(kernel.programs[2])
        let mask = p.hasMask ? operand(kernel.programs[3], forBLAS: false) : nil
        let qs = kernel.programs[0].space, ks = kernel.programs[1].space, vs = kernel.programs[2].space
        let (batch, heads, t, d) = (qs[0], qs[1], qs[2], qs[3])
        let (kvHeads, dv) = (ks[1], vs[3])
        let s = Swift.min(p.keyLength ?? ks[2], ks[2])
        let group = heads / Swift.max(kvHeads, 1)
        guard batch * heads * t > 0, dv > 0 else { return }
        // Each sequence: its batch entry, its first query and key row, its query and key counts.
        var sequences: [(b: Int, row: Int, t: Int, s: Int)] = []
        if let segments = p.segments {
            var start = 0
            for n in segments { sequences.append((0, start, n, n)); start += n }
        } else {
            sequences = (0..<batch).map { ($0, 0, t, s) }
        }
        let longestT = sequences.map(\.t).max() ?? 0, longestS = sequences.map(\.s).max() ?? 0
        // kᵀ as the right operand: the same storage, the transpose flag flipped.
        let kT = GEMM.Layout(transposed: !k.layout.transposed, leadingDimension: k.layout.leadingDimension)
        // Rows of unit stride (heads split from a linear layer's output) run in one C pass per
        // head (attention.c): a few queries as dot products, more in six-row tiles with AVX2
        // (MiniLM 32 x 128's attention 12.4% -> 8.1% of a forward on Zen 3).
        let unitRows = !q.layout.transposed && !k.layout.transposed && !v.layout.transposed
        let tiled = wk_uses_avx2() != 0
        let shared = Unchecked((q, k, v, mask, out, sequences))
        let work = sequences.reduce(0) { $0 + $1.t * $1.s } * heads * (d + dv)
        let (scale, causal) = (p.scale, p.causal)
        withExtendedLifetime((q.storage, k.storage, v.storage, mask?.storage)) {
            Parallel.forEach(items: sequences.count * heads, work: work) { range in
                let (q, k, v, mask, out, sequences) = shared.value
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, wk_attention_scratch(longestT, longestS, d, dv)))
                let maskRow = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, longestS))
                defer { scores.deallocate(); maskRow.deallocate() }
                var factor = scale
                for pair in range {
                    let (sequence, h) = (sequences[pair / heads], pair % heads)
                    let (b, t, s) = (sequence.b, sequence.t, sequence.s)
                    let kvh = h / group
                    // Query row i sees keys 0 ..< s - t + i + 1 when causal (t <= s is checked
                    // when the op is built).
                    let shift = causal ? s - t : -1
                    let qBase = q.base + b * q.strides[0] + h * q.strides[1] + sequence.row * q.strides[2]
                    let kBase = k.base + b * k.strides[0] + kvh * k.strides[1] + sequence.row * k.strides[2]
                    let vBase = v.base + b * v.strides[0] + kvh * v.strides[1] + sequence.row * v.strides[2]
                    let maskBase = mask.map { $0.base + b * $0.strides[0] + h * $0.strides[1] }
                    let o = out + ((b * qs[2] + sequence.row) * heads + h) * dv
                    if unitRows && (t <= Executor.directAttentionQueries
                                    || (s <= Executor.directAttentionLength && t <= Executor.directAttentionLength)
                                    || (tiled && s <= Executor.tiledAttentionKeys)) {
                        wk_attention_head(t, s, d, dv, qBase, q.layout.leadingDimension, kBase, k.layout.leadingDimension,
                                          vBase, v.layout.leadingDimension, maskBase, mask?.strides[2] ?? 0, mask?.strides[3] ?? 0,
                                          scale, shift, scores, o, heads * dv)
                        continue
                    }
                    if s > 0 && d > 0 {
                        GEMM.gemm(m: t, n: s, k: d, a: qBase, q.layout, b: kBase, kT, c: scores, ldc: s, split: false)
                    } else {
                        scores.initialize(repeating: 0, count: t * s)
                    }
                    for row in 0..<t {
                        let r = scores + row * s
                        let visible = causal ? Swift.min(s, shift + row + 1) : s
                        wk_binary(Int32(WK_MUL.rawValue), r, 1, &factor, 0, r, visible)
                        if let mask, let maskBase {
                            let m = maskBase + row * mask.strides[2]
                            let step = mask.strides[3]
                            if step == 0 || step == 1 {
                                wk_binary(Int32(WK_ADD.rawValue), r, 1, m, step, r, visible)
                            } else {
                                wk_gather(m, step, maskRow, visible)
                                wk_binary(Int32(WK_ADD.rawValue), r, 1, maskRow, 1, r, visible)
                            }
                        }
                        wk_softmax_row(r, r, visible, 0)
                        if visible < s { (r + visible).initialize(repeating: 0, count: s - visible) }
                    }
                    if s > 0 {
                        GEMM.gemm(m: t, n: dv, k: s, a: scores, GEMM.Layout(transposed: false, leadingDimension: s), b: vBase, v.layout,
                                  c: o, ldc: heads * dv, split: false)
                    } else {
                        for row in 0..<t { (o + row * heads * dv).initialize(repeating: 0, count: dv) }
                    }
                }
            }
        }
    }
}
