import Testing
@testable import LazyTensor

@Suite struct SmokeTests {
    @Test func seedChain() {
        let x = Tensor.randn(shape: [2, 3, 4, 5], seed: 1)
        let b = Tensor.randn(shape: [3], seed: 2)
        let y = (x.permuted([0, 2, 3, 1]) + b.reshaped([1, 1, 1, -1])) * 2
        let z = y.relu()
        print(z.explain())
        let (r, stats) = Stats.measure { z.materialized() }
        print(stats)
        let xs = x.scalars, bs = b.scalars
        var expected: [Float] = []
        for n in 0..<2 { for h in 0..<4 { for w in 0..<5 { for c in 0..<3 {
            expected.append(Swift.max(0, (xs[((n * 3 + c) * 4 + h) * 5 + w] + bs[c]) * 2))
        } } } }
        #expect(r.scalars == expected)
        #expect(stats.kernels == 1)
        #expect(stats.bytesAllocated == 120 * 4)
        let s = x.sum(axes: [1, 3]).materialized()
        print(s.shape, s.scalars)
        let sm = x.softmax(axis: 1)
        print(sm.explain())
        print(sm.sum(axes: [1]).scalars)
    }
}
