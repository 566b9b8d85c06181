import CKernels
import Foundation
import Testing
@testable import LazyTensor

/// Causal and grouped-query attention, and a per-head additive bias, in the one attention
/// kernel: against the double reference (keys repeated per group, a causal mask of -inf
/// aligned to the last query), on every kernel build, through the C head kernel (short
/// sequences) and the GEMM path (long ones).
@Suite(.serialized) struct CausalAttentionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let b: Int, h: Int, hk: Int, t: Int, s: Int, d: Int
        var causal = true
        var bias = false
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "causal prefill, 12 tokens", b: 1, h: 4, hk: 4, t: 12, s: 12, d: 8),
        Case(name: "causal decode step (1 query, 9 cached keys)", b: 2, h: 2, hk: 2, t: 1, s: 10, d: 8),
        Case(name: "causal chunk of 3 over 7 keys", b: 1, h: 2, hk: 1, t: 3, s: 7, d: 5),
        Case(name: "grouped-query 8 heads over 2, not causal", b: 2, h: 8, hk: 2, t: 5, s: 6, d: 16, causal: false),
        Case(name: "grouped-query causal, long (six-row tiles; BLAS path at baseline)", b: 1, h: 4, hk: 2, t: 90, s: 90, d: 16),
        Case(name: "causal prefill of 140 tokens, 9 heads over 3, d 64", b: 1, h: 9, hk: 3, t: 140, s: 140, d: 64),
        Case(name: "ALiBi-like per-head bias, causal", b: 1, h: 3, hk: 3, t: 6, s: 6, d: 4, bias: true),
        Case(name: "per-head bias, grouped, long", b: 1, h: 4, hk: 1, t: 70, s: 75, d: 8, bias: true),
        // A few queries against many keys run in the head kernel too (a decode step's shape).
        Case(name: "grouped decode step, 1 query over 300 keys, d 64", b: 1, h: 9, hk: 3, t: 1, s: 300, d: 64),
        Case(name: "3 queries over 150 keys, d 40, causal", b: 2, h: 2, hk: 1, t: 3, s: 150, d: 40),
        Case(name: "4 queries over 100 keys with a bias", b: 1, h: 2, hk: 2, t: 4, s: 100, d: 72, bias: true),
    ]

    static func reference(_ q: Ref, _ k: Ref, _ v: Ref, group: Int, causal: Bool, bias: Ref?, scale: Double) -> Ref {
        let (b, h, t, s) = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        // Keys and values repeated per query head, as a naive implementation does.
        func repeated(_ x: Ref) -> Ref {
            let shape = [x.shape[0], h, x.shape[2], x.shape[3]]
            return Ref(shape: shape, values: Ref.indices(shape).map { i in x.at([i[0], i[1] / group, i[2], i[3]]) })
        }
        var mask = Ref(shape: [b, h, t, s], values: Ref.indices([b, h, t, s]).map { i in
            causal && i[3] > s - t + i[2] ? -Double.infinity : 0
        })
        if let bias { mask = Ref.zip(mask, bias.broadcast(to: [b, h, t, s]), +) }
        return Ref.attention(q, repeated(k), repeated(v), mask: mask, scale: scale)
    }

    @Test(arguments: cases, [false, true])
    func matchesTheReference(c: Case, baseline: Bool) {
        wk_force_baseline(baseline ? 1 : 0)
        defer { wk_force_baseline(0) }
        func heads(_ n: Int, _ count: Int, _ seed: UInt64) -> Tensor {
            Tensor.randn(shape: [c.b, n, count * c.d], seed: seed).reshaped([c.b, n, count, c.d]).permuted([0, 2, 1, 3])
        }
        let q = heads(c.t, c.h, 1), k = heads(c.s, c.hk, 2), v = heads(c.s, c.hk, 3)
        let bias: Tensor? = c.bias
            ? Tensor(shape: [c.h, c.t, c.s], scalars: Ref.indices([c.h, c.t, c.s]).map { i in
                -Float(i[0] + 1) * 0.25 * Float(Swift.abs(i[2] + c.s - c.t - i[1])) })
            : nil
        let (y, stats) = Stats.measure {
            scaledDotProductAttention(q, k, v, mask: bias, causal: c.causal).permuted([0, 2, 1, 3])
                .reshaped([c.b, c.t, c.h * c.d]).materialized()
        }
        // One kernel; the shared key heads are read in place (no repeat, no pack), and the
        // heads merge for free.
        #expect(stats.kernels == 1, "\(stats)")
        #expect(stats.bytesCopied == 0, "\(stats)")
        let expected = Self.reference(Ref(q), Ref(k), Ref(v), group: c.h / c.hk, causal: c.causal,
                                      bias: bias.map { Ref($0).reshaped([1, c.h, c.t, c.s]) }, scale: 1 / Double(c.d).squareRoot())
            .permuted([0, 2, 1, 3]).reshaped([c.b, c.t, c.h * c.d])
        #expect(close(y, expected, atol: 1e-5, rtol: 1e-4))
    }

    /// A causal query never reads a later key: changing the keys and values after it leaves
    /// its output bit for bit the same.
    @Test func laterKeysAreInvisible() {
        let q = Tensor.randn(shape: [1, 2, 5, 8], seed: 1)
        let k = Tensor.randn(shape: [1, 2, 5, 8], seed: 2), v = Tensor.randn(shape: [1, 2, 5, 8], seed: 3)
        let k2 = Tensor.concatenate([k.sliced(axis: 2, range: 0..<3), Tensor.randn(shape: [1, 2, 2, 8], seed: 9)], axis: 2)
        let v2 = Tensor.concatenate([v.sliced(axis: 2, range: 0..<3), Tensor.full(shape: [1, 2, 2, 8], value: 1e6)], axis: 2)
        let a = scaledDotProductAttention(q, k, v, causal: true).sliced(axis: 2, range: 0..<3).materialized().scalars
        let b = scaledDotProductAttention(q, k2, v2, causal: true).sliced(axis: 2, range: 0..<3).materialized().scalars
        #expect(a == b)
    }

    @Test func refusesWhatItCannotDo() throws {
        let q = Tensor.zeros(shape: [1, 6, 4, 8])
        for (k, v, causal, reason) in [
            (Tensor.zeros(shape: [1, 4, 4, 8]), Tensor.zeros(shape: [1, 4, 4, 8]), false, "k's 4 heads do not divide q's 6"),
            (Tensor.zeros(shape: [1, 3, 2, 8]), Tensor.zeros(shape: [1, 3, 2, 8]), true, "causal attention needs at least as many keys as queries"),
            (Tensor.zeros(shape: [1, 3, 4, 8]), Tensor.zeros(shape: [1, 2, 4, 8]), false, "v must be [1, 3, 4, dv]"),
        ] {
            let error = #expect(throws: TensorError.self) {
                try Tensor.withErrors { scaledDotProductAttention(q, k, v, causal: causal).materialized() }
            }
            #expect(error?.op == "attention")
            #expect(error?.reason == reason)
            #expect(error?.shapes.first == [1, 6, 4, 8])
        }
    }
}
