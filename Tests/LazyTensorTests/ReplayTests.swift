import Testing
@testable import LazyTensor

/// A graph planned once and run again with new values in its buffers: the same kernels and
/// copies as a graph built anew each time, the same numbers, and no plan looked up.
@Suite struct ReplayTests {
    let heads = 4, kvHeads = 2, d = 8, width = 32

    var weights: (q: Tensor, k: Tensor, v: Tensor) {
        (Tensor.randn(shape: [width, heads * d], seed: 1), Tensor.randn(shape: [width, kvHeads * d], seed: 2),
         Tensor.randn(shape: [width, kvHeads * d], seed: 3))
    }

    /// One token's attention layer over a cache, its input a row of `table` picked by `id`.
    func step(_ table: Tensor, _ id: Tensor, _ cache: KVCache, _ w: (q: Tensor, k: Tensor, v: Tensor),
              placement: KVCache.Placement) -> Tensor {
        let x = table.take(id, axis: 0).reshaped([1, 1, width])
        func split(_ t: Tensor, _ h: Int) -> Tensor { t.reshaped([1, 1, h, d]).permuted([0, 2, 1, 3]) }
        let q = split(matmul(x, w.q), heads), k = split(matmul(x, w.k), kvHeads), v = split(matmul(x, w.v), kvHeads)
        let (keys, values) = cache.append(keys: k, values: v, placement: placement)
        return scaledDotProductAttention(q, keys, values, causal: true).reshaped([1, 1, heads * d])
    }

    @Test func readsItsBuffersAfreshEachRun() {
        let x = Tensor(shape: [4], scalars: [1, 2, 3, 4])
        let replay = Replay([(x * 2 + 1).sum()])
        #expect(replay.run()[0].scalars == [24])
        x.assign(Tensor(shape: [4], scalars: [0, 0, 0, 1]))
        let (y, stats) = Stats.measure { replay.run()[0].scalars }
        #expect(y == [6])
        #expect(stats.plans == 0 && stats.kernels == replay.plan.kernelCount && stats.kernels == 1, "\(stats)")
    }

    /// Decode steps replayed through a cache equal steps built anew, bit for bit, with the same
    /// kernels and copies, and each replay plans nothing.
    @Test func aReplayedDecodeStepEqualsAFreshGraphEachStep() {
        let tokens = 12, w = weights
        let table = Tensor.randn(shape: [50, width], seed: 5)
        let ids = (0..<tokens).map { ($0 * 7 + 3) % 50 }

        let fresh = KVCache(heads: kvHeads, capacity: tokens, headDim: d)
        var expected: [[Float]] = [], freshStats: [Stats] = []
        for id in ids {
            let (y, s) = Stats.measure {
                step(table, Tensor(shape: [1], integers: [id]), fresh, w, placement: .now).materialized().scalars
            }
            expected.append(y)
            freshStats.append(s)
        }

        let cache = KVCache(heads: kvHeads, capacity: tokens, headDim: d)
        let id = Tensor(shape: [1], integers: [0])
        let replay = Replay([step(table, id, cache, w, placement: .whenRun)])
        #expect(cache.length == 0)
        var got: [[Float]] = [], replayStats: [Stats] = []
        for token in ids {
            id.assign(integers: [token])
            let (y, s) = Stats.measure { replay.run()[0].scalars }
            cache.advance(by: 1)
            got.append(y)
            replayStats.append(s)
        }
        #expect(got == expected)
        #expect(cache.length == tokens)
        #expect(cache.keys.materialized().scalars == fresh.keys.materialized().scalars)
        #expect(replayStats.allSatisfy { $0.plans == 0 }, "\(replayStats.map(\.plans))")
        // The take, q, k, v, two writes and attention; explain agrees.
        #expect(replayStats.allSatisfy { $0.kernels == 7 && $0.kernels == replay.plan.kernelCount }, "\(replayStats.map(\.kernels))")
        // The fresh steps also count their id tensors' 8 bytes, made inside the measurement.
        #expect(zip(replayStats, freshStats.dropFirst()).allSatisfy { $0.kernels == $1.kernels && $0.bytesCopied + 8 == $1.bytesCopied },
                "\(replayStats.map(\.bytesCopied)) \(freshStats.map(\.bytesCopied))")
        let newRows = 2 * kvHeads * d * 4
        #expect(replayStats.allSatisfy { $0.copiedByReason[.cacheWrite] == newRows })
    }

    /// A replay whose cache is full is refused before anything runs: the cache and its
    /// length are as they were.
    @Test func aFullCacheIsRefusedBeforeAnythingRuns() throws {
        let w = weights, table = Tensor.randn(shape: [50, width], seed: 5)
        let cache = KVCache(heads: kvHeads, capacity: 2, headDim: d)
        let id = Tensor(shape: [1], integers: [1])
        let replay = Replay([step(table, id, cache, w, placement: .whenRun)])
        for _ in 0..<2 {
            _ = replay.run()
            cache.advance(by: 1)
        }
        let before = cache.keys.materialized().scalars
        let error = #expect(throws: TensorError.self) { try Tensor.withErrors { _ = replay.run() } }
        #expect(error?.reason == "a write of 1 rows at 2 runs past the 2 its target holds")
        #expect(throws: TensorError.self) { try Tensor.withErrors { cache.advance(by: 1) } }
        #expect(cache.length == 2 && cache.keys.materialized().scalars == before)
    }

    @Test func integersAreAssignedInPlaceOrRefused() throws {
        let ids = Tensor(shape: [2, 2], integers: [0, 0, 0, 0], dtype: .int32)
        ids.transposed().assign(integers: [1, 2, 3, 4])
        #expect(ids.integers == [1, 3, 2, 4])
        #expect(throws: TensorError.self) { try Tensor.withErrors { ids.assign(integers: [1]) } }
        #expect(throws: TensorError.self) { try Tensor.withErrors { ids.assign(integers: [1, 2, 3, 1 << 40]) } }
        #expect(throws: TensorError.self) { try Tensor.withErrors { Tensor.zeros(shape: [1]).assign(integers: [1]) } }
        #expect(ids.integers == [1, 3, 2, 4])
    }
}
