import CKernels
import Testing
@testable import LazyTensor

extension Ref {
    /// softmax(q·kᵀ·scale + mask)·v in doubles, over [B, H, T, d] operands.
    static func attention(_ q: Ref, _ k: Ref, _ v: Ref, mask: Ref?, scale: Double) -> Ref {
        var scores = Ref.matmul(q, k.permuted([0, 1, 3, 2])).map { $0 * scale }
        if let mask { scores = Ref.zip(scores, mask, +) }
        let p = scores.rows(axis: 3) { row in
            let m = row.max() ?? 0
            let e = row.map { Foundation.exp($0 - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        return Ref.matmul(p, v)
    }
}

/// scaledDotProductAttention: one kernel, against the double reference, over the layouts a
/// model hands it (heads split out of [B, T, H] projections by views), with and without a
/// broadcast mask, on both kernel builds. Unit-stride rows run in wk_attention_head (with AVX2
/// any number of queries over up to 1,024 keys, at baseline up to 64 queries and keys); longer
/// sequences and transposed operands take the GEMM path.
@Suite(.serialized) struct AttentionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let b: Int, h: Int, t: Int, s: Int, d: Int, dv: Int
        var mask = true
        var scale: Float? = nil
        /// q read through a transposed view (its rows not unit-stride): the GEMM path.
        var transposedQ = false
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "MiniLM-like, 16 tokens", b: 1, h: 4, t: 16, s: 16, d: 8, dv: 8),
        Case(name: "many query rows (six-row tiles; BLAS path at baseline), batch 2", b: 2, h: 3, t: 80, s: 80, d: 16, dv: 16),
        // Past MiniLM's 128: a last block of 4 rows, a last key panel of 2, dv in 16-wide tiles.
        Case(name: "130 tokens, head width 64", b: 1, h: 2, t: 130, s: 130, d: 64, dv: 64),
        Case(name: "keys past the tiles' limit (BLAS path)", b: 1, h: 1, t: 7, s: 1030, d: 8, dv: 8),
        Case(name: "head widths across every vector tail (d 43, dv 43)", b: 1, h: 2, t: 9, s: 11, d: 43, dv: 43),
        Case(name: "keys differ from queries in number, dv != d", b: 2, h: 2, t: 5, s: 9, d: 6, dv: 3),
        Case(name: "no mask, explicit scale", b: 1, h: 2, t: 7, s: 7, d: 4, dv: 4, mask: false, scale: 0.3),
        Case(name: "one query", b: 3, h: 1, t: 1, s: 6, d: 5, dv: 2),
        Case(name: "transposed q, short (BLAS path)", b: 2, h: 2, t: 6, s: 6, d: 8, dv: 8, transposedQ: true),
    ]

    @Test(arguments: cases, [false, true])
    func matchesTheReference(c: Case, baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        // Projections [B, T, H·d] with heads split out as views, as a model does.
        func heads(_ t: Int, _ width: Int, _ seed: UInt64) -> Tensor {
            Tensor.randn(shape: [c.b, t, c.h * width], seed: seed).reshaped([c.b, t, c.h, width]).permuted([0, 2, 1, 3])
        }
        let q = c.transposedQ ? Tensor.randn(shape: [c.b, c.h, c.d, c.t], seed: 1).transposed() : heads(c.t, c.d, 1)
        let k = heads(c.s, c.d, 2), v = heads(c.s, c.dv, 3)
        // A padding mask [B, 1, 1, S]: the last key of each sequence hidden.
        let mask: Tensor? = c.mask ? Tensor(shape: [c.b, 1, 1, c.s], scalars: (0..<(c.b * c.s)).map { $0 % c.s == c.s - 1 ? -1e9 : 0 }) : nil
        let (y, stats) = Stats.measure {
            scaledDotProductAttention(q, k, v, mask: mask, scale: c.scale).permuted([0, 2, 1, 3])
                .reshaped([c.b, c.t, c.h * c.dv]).materialized()
        }
        #expect(stats.kernels == 1)
        #expect(stats.bytesCopied == 0, "\(stats)")  // heads read in place, merged by a view
        let scale = Double(c.scale ?? 1 / Float(c.d).squareRoot())
        let expected = Ref.attention(Ref(q), Ref(k), Ref(v), mask: mask.map { Ref($0).broadcast(to: [c.b, c.h, c.t, c.s]) }, scale: scale)
            .permuted([0, 2, 1, 3]).reshaped([c.b, c.t, c.h * c.dv])
        let ok = close(y, expected, atol: 1e-5, rtol: 1e-4)
        #expect(ok)
    }

    /// The result has PyTorch's shape, and merging the heads is a view of the kernel's buffer:
    /// the plan has no copy in it, and evaluation makes none.
    @Test func headsMergeForFree() {
        let q = Tensor.randn(shape: [2, 3, 4, 5], seed: 4)
        let y = scaledDotProductAttention(q, q, q)
        #expect(y.shape == [2, 3, 4, 5])
        let merged = y.permuted([0, 2, 1, 3]).reshaped([2, 4, 15])
        #expect(merged.plan().kernelNames == ["attention"])
        #expect(!merged.explain().contains("copy"))
        let (out, stats) = Stats.measure { merged.materialized() }
        #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == 2 * 4 * 15 * 4)
        #expect(out.isContiguous && out.shape == [2, 4, 15])
    }
}

import Foundation

/// Sequences packed along the token axis (no padding) attend only to their own tokens, and
/// give what each gives alone; a mask is read from its corner for each sequence.
@Suite struct PackedAttentionTests {
    static func pieces(_ lengths: [Int], heads: Int, d: Int, seed: UInt64) -> Tensor {
        Tensor.randn(shape: [1, lengths.reduce(0, +), heads, d], seed: seed).permuted([0, 2, 1, 3])
    }

    @Test(arguments: [[3, 1, 5], [70, 2, 100], [1]])
    func packedEqualsEachAlone(lengths: [Int]) {
        let (heads, d) = (3, 8)
        let q = Self.pieces(lengths, heads: heads, d: d, seed: 1), k = Self.pieces(lengths, heads: heads, d: d, seed: 2)
        let v = Self.pieces(lengths, heads: heads, d: d, seed: 3)
        let longest = lengths.max()!
        let bias = Tensor.randn(shape: [1, heads, longest, longest], seed: 4)
        for mask in [nil, bias] as [Tensor?] {
            let packed = scaledDotProductAttention(q, k, v, mask: mask, segments: lengths)
            // Heads merged back ([1, N, heads, d]) is the kernel's own layout: one kernel, no copy.
            let merged = packed.permuted([0, 2, 1, 3])
            // The planned copy finds its source contiguous already: it aliases, as predicted.
            #expect(merged.plan().kernelNames == ["attention, \(lengths.count) sequences packed"])
            let (got, stats) = Stats.measure { merged.materialized().scalars }
            #expect(stats.kernels == 1 && stats.bytesCopied == 0, "\(stats)")
            var start = 0
            for n in lengths {
                let part = { (x: Tensor) in x.sliced(axis: 2, range: start..<(start + n)) }
                let alone = scaledDotProductAttention(part(q), part(k), part(v),
                                                      mask: mask?.sliced(axis: 2, range: 0..<n).sliced(axis: 3, range: 0..<n)).materialized()
                // Output [1, heads, N, d]; compare this sequence's rows.
                let mine = packed.sliced(axis: 2, range: start..<(start + n)).materialized().scalars
                let diff = zip(mine, alone.scalars).map { abs($0 - $1) }.max() ?? 0
                #expect(diff <= 1e-5, "lengths \(lengths), sequence at \(start): \(diff)")
                start += n
            }
            #expect(got.count == lengths.reduce(0, +) * heads * d)
        }
    }
}
