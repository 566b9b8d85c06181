import Foundation
import Testing
@testable import LazyTensor

/// A preallocated cache written in place: a decode step writes only its new rows, reads the
/// earlier ones where they lie, and reuses one plan; the result equals causal attention over
/// the whole sequence at once.
@Suite struct KVCacheTests {
    let heads = 4, kvHeads = 2, d = 8, width = 32

    /// One attention layer over `x` [1, n, width] with cached keys: q from x, k and v from x.
    func step(_ x: Tensor, _ cache: KVCache, _ w: (q: Tensor, k: Tensor, v: Tensor)) -> Tensor {
        let n = x.shape[1]
        func split(_ t: Tensor, _ h: Int) -> Tensor { t.reshaped([1, n, h, d]).permuted([0, 2, 1, 3]) }
        let q = split(matmul(x, w.q), heads), k = split(matmul(x, w.k), kvHeads), v = split(matmul(x, w.v), kvHeads)
        let (keys, values) = cache.append(keys: k, values: v)
        return scaledDotProductAttention(q, keys, values, causal: true).permuted([0, 2, 1, 3]).reshaped([1, n, heads * d])
    }

    var weights: (q: Tensor, k: Tensor, v: Tensor) {
        (Tensor.randn(shape: [width, heads * d], seed: 1), Tensor.randn(shape: [width, kvHeads * d], seed: 2),
         Tensor.randn(shape: [width, kvHeads * d], seed: 3))
    }

    @Test func decodeEqualsTheWholeSequenceAtOnce() {
        let tokens = 20, prompt = 5
        let x = Tensor.randn(shape: [1, tokens, width], seed: 9)
        let w = weights
        let whole = step(x, KVCache(heads: kvHeads, capacity: tokens, headDim: d), w).materialized().scalars
        let cache = KVCache(heads: kvHeads, capacity: tokens, headDim: d)
        var rows = step(x.sliced(axis: 1, range: 0..<prompt), cache, w).materialized().scalars
        var perStep: [Stats] = []
        for t in prompt..<tokens {
            let (y, stats) = Stats.measure { step(x.sliced(axis: 1, range: t..<(t + 1)), cache, w).materialized().scalars }
            rows += y
            perStep.append(stats)
        }
        #expect(cache.length == tokens)
        let diff = zip(rows, whole).map { Swift.abs($0 - $1) }.max() ?? .infinity
        #expect(diff <= 1e-4, "\(diff)")
        // q, k, v projections, two writes, attention; the heads merge for free.
        #expect(perStep.allSatisfy { $0.kernels == 6 }, "\(perStep.map(\.kernels))")
        // Only the new rows are written into the cache: one key row and one value row per
        // kv head, whatever the length.
        let newRows = 2 * kvHeads * d * 4
        #expect(perStep.allSatisfy { $0.bytesCopied == newRows && $0.copiedByReason[.cacheWrite] == newRows }, "\(perStep.map(\.bytesCopied))")
        // The first decode step plans once; every later step reuses that plan.
        #expect(perStep.dropFirst().allSatisfy { $0.plans == 0 }, "\(perStep.map(\.plans))")
    }

    /// A step whose result is never evaluated still has its rows written: the next write runs
    /// it first.
    @Test func anUnevaluatedStepIsNotLost() {
        let x = Tensor.randn(shape: [1, 3, width], seed: 4)
        let w = weights
        let whole = step(x, KVCache(heads: kvHeads, capacity: 3, headDim: d), w).materialized()
        let cache = KVCache(heads: kvHeads, capacity: 3, headDim: d)
        _ = step(x.sliced(axis: 1, range: 0..<1), cache, w)  // built, never evaluated
        _ = step(x.sliced(axis: 1, range: 1..<2), cache, w)  // neither
        let last = step(x.sliced(axis: 1, range: 2..<3), cache, w).materialized().scalars
        let expected = whole.sliced(axis: 1, range: 2..<3).materialized().scalars
        #expect(zip(last, expected).allSatisfy { Swift.abs($0 - $1) <= 1e-4 })
        #expect(cache.keys.shape == [1, kvHeads, 3, d])
    }

    @Test func refusesOverflowAndWrongShapes() {
        let cache = KVCache(heads: 2, capacity: 4, headDim: 8)
        let error = #expect(throws: TensorError.self) {
            try Tensor.withErrors { _ = cache.append(keys: Tensor.zeros(shape: [1, 2, 5, 8]), values: Tensor.zeros(shape: [1, 2, 5, 8])) }
        }
        #expect(error?.reason == "5 new positions after 0 exceed the capacity of 4")
        #expect(throws: TensorError.self) {
            try Tensor.withErrors { _ = cache.append(keys: Tensor.zeros(shape: [1, 3, 1, 8]), values: Tensor.zeros(shape: [1, 2, 1, 8])) }
        }
        #expect(cache.length == 0)
        // A cache of no size is refused, and so is every append to it.
        #expect(throws: TensorError.self) {
            try Tensor.withErrors {
                let bad = KVCache(heads: 0, capacity: -3, headDim: 8)
                _ = bad.append(keys: Tensor.zeros(shape: [1, 1, 1, 1]), values: Tensor.zeros(shape: [1, 1, 1, 1]))
            }
        }
    }
}

/// `assign` writes a value into a view of existing storage, in place.
@Suite struct AssignmentTests {
    @Test func writesASliceInPlace() {
        let base = Tensor.zeros(shape: [3, 4])
        let (_, stats) = Stats.measure { base[1, 1...].assign(Tensor(shape: [3], scalars: [7, 8, 9])) }
        #expect(base.scalars == [0, 0, 0, 0, 0, 7, 8, 9, 0, 0, 0, 0])
        #expect(stats.kernels == 1 && stats.copiedByReason[.cacheWrite] == 12 && stats.bytesAllocated == 12, "\(stats)")
        // A lazy value is computed straight into the target, broadcast as needed.
        base[0..., 0].assign(Tensor.arange(3) * 2 + 1)
        base[2].assign(Tensor(Float(-1)))
        #expect(base.scalars == [1, 0, 0, 0, 3, 7, 8, 9, -1, -1, -1, -1])
    }

    @Test func aValueReadingItsTargetIsEvaluatedFirst() {
        let x = Tensor(shape: [5], scalars: [1, 2, 3, 4, 5])
        x[1...].assign(x[..<4])  // NumPy: x[1:] = x[:-1] gives [1, 1, 2, 3, 4]
        #expect(x.scalars == [1, 1, 2, 3, 4])
        let y = Tensor(shape: [4], scalars: [1, 2, 3, 4])
        y.assign(y.flipped(axis: 0) * 10)
        #expect(y.scalars == [40, 30, 20, 10])
    }

    @Test func refusesWhatCannotBeWritten() {
        for (target, reason) in [
            (Tensor.zeros(shape: [3]) + 1, "the target must be a view of existing storage, not a lazy result"),
            (Tensor.zeros(shape: [1, 3]).expanded(to: [2, 3]), "the target is a broadcast view: several elements share one address"),
        ] {
            let error = #expect(throws: TensorError.self) { try Tensor.withErrors { target.assign(Tensor.ones(shape: [3])) } }
            #expect(error?.reason == reason)
        }
        #expect(throws: TensorError.self) { try Tensor.withErrors { Tensor.zeros(shape: [3]).assign(Tensor.ones(shape: [4])) } }
    }
}

/// The trap the issue found: caches grown by concatenation, only the logits evaluated. Each
/// step's graph reads the previous step's caches, which that step computed and released. The
/// engine recomputes such a result once and keeps it: kernels per step stay flat instead of
/// growing with the history, and the recomputation is counted and announced by explain().
@Suite struct RecomputationTests {
    @Test func aGrowingLazyCacheIsNotRecomputedEveryStep() {
        let width = 16
        let w = Tensor.randn(shape: [width, width], seed: 1)
        var cache = matmul(Tensor.randn(shape: [1, 1, width], seed: 2), w)
        var kernels: [Int] = [], recomputed: [Int] = []
        var announced = false
        for step in 0..<12 {
            let x = Tensor.randn(shape: [1, 1, width], seed: UInt64(10 + step))
            cache = Tensor.concatenate([cache, matmul(x, w)], axis: 1)
            let q = x.reshaped([1, 1, 1, width]), kv = cache.reshaped([1, 1, step + 2, width])
            let logits = scaledDotProductAttention(q, kv, kv).sum()
            if logits.plan().recomputedKernels > 0 { announced = announced || logits.explain().contains("recomputes") }
            let (_, stats) = Stats.measure { _ = logits.materialized() }
            kernels.append(stats.kernels)
            recomputed.append(stats.recomputed)
        }
        // Without keeping, step n recomputed every concatenation before it: kernels grew with n.
        #expect(Set(kernels.dropFirst(2)).count == 1, "\(kernels)")
        // Each step recomputes the two results of the step before it (its concatenation and its
        // new row), once, and says so.
        #expect(recomputed.first == 0 && recomputed.dropFirst(2).allSatisfy { $0 == 2 }, "\(recomputed)")
        #expect(announced)
    }
}
