import Testing
@testable import LazyTensor

/// Graphs of the same structure share one plan (Stats.plans counts the misses); the cached
/// kernels run on the new graph's buffers and indices, never the first graph's.
@Suite struct PlanCacheTests {
    /// Evaluates `make()` until a run finds its plan cached (the cache is shared with tests
    /// running in parallel, which can evict an entry in between; a cache that never hits
    /// fails here all the same).
    func hit(_ make: () -> Tensor) -> (Tensor, Stats) {
        _ = make().materialized()
        var last = Stats.measure { make().materialized() }
        if last.1.plans != 0 { last = Stats.measure { make().materialized() } }
        return last
    }

    @Test func sameStructureNewValues() {
        var seed: UInt64 = 10
        let make = { () -> Tensor in
            seed += 1
            let x = Tensor.randn(shape: [3, 5], seed: seed), b = Tensor.randn(shape: [5], seed: seed + 100)
            return ((x + b).relu() * 2).softmax(axis: -1).sum(axes: [0])
        }
        let (y, stats) = hit(make)
        #expect(stats.plans == 0, "\(stats)")
        // The values are those of this call's inputs (seed as used by the last make()).
        let x = Tensor.randn(shape: [3, 5], seed: seed), b = Tensor.randn(shape: [5], seed: seed + 100)
        let expected = Ref.zip(Ref(x), Ref(b).broadcast(to: [3, 5]), +).map { Swift.max(0, $0) * 2 }
            .rows(axis: 1) { r in let m = r.max()!; let e = r.map { Foundation.exp($0 - m) }; let s = e.reduce(0, +); return e.map { $0 / s } }
            .reduce(axes: [0], 0, +)
        #expect(close(y, expected, atol: 1e-6))
    }

    @Test func constantsArePartOfThePlan() {
        let x = Tensor.randn(shape: [4, 4], seed: 1)
        _ = (x * 3).materialized()
        let (y, stats) = Stats.measure { (x * 4.25).materialized() }
        #expect(stats.plans == 1)
        #expect(y.scalars == x.scalars.map { $0 * 4.25 })
    }

    @Test func gatherTakesTheNewIndices() {
        let table = Tensor.randn(shape: [10, 3], seed: 2)
        var indices = [1, 2, 3]
        let (y, stats) = hit {
            indices = indices.map { ($0 + 4) % 10 }
            return table.gatherRows(indices) * 1
        }
        #expect(stats.plans == 0)
        let t = table.scalars
        #expect(y.scalars == indices.flatMap { Array(t[($0 * 3)..<($0 * 3 + 3)]) })
    }

    @Test func aCachedPlanKeepsNoBufferAlive() {
        weak var first: Storage?
        do {
            let x = Tensor.randn(shape: [64, 64], seed: 3)
            first = x.storage
            _ = ((x - 1.5) * x).exp().materialized()
        }
        #expect(first == nil)
    }
}

import Foundation
