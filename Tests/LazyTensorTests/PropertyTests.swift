import Foundation
import Testing
@testable import LazyTensor

/// Random shapes, random view chains and random fused expressions against the reference.
@Suite struct PropertyTests {
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// Applies one random view to both the tensor and the reference.
    static func randomView(_ t: Tensor, _ r: Ref, _ g: inout Rng) -> (Tensor, Ref) {
        let rank = t.rank
        switch g.int(6) {
        case 0 where rank >= 2:
            var order = Array(0..<rank)
            for i in stride(from: rank - 1, to: 0, by: -1) { order.swapAt(i, g.int(i + 1)) }
            return (t.permuted(order), r.permuted(order))
        case 1 where rank >= 1:
            let axis = g.int(rank), n = t.shape[axis]
            guard n >= 2 else { return (t, r) }
            let start = g.int(n), step = [1, 2, -1, 3][g.int(4)]
            if step > 0 {
                let count = (n - start + step - 1) / step
                return (t.sliced(axis: axis, range: start..<n, step: step), r.sliced(axis: axis, start: start, count: count, step: step))
            }
            return (t.sliced(axis: axis, range: 0..<(start + 1), step: -1), r.sliced(axis: axis, start: start, count: start + 1, step: -1))
        case 2:
            // merge everything, then split the count differently
            let count = t.scalarCount
            let divisors = (1...Swift.max(1, count)).filter { count % $0 == 0 }
            let d = divisors[g.int(divisors.count)]
            return (t.reshaped([d, -1]), r.reshaped([d, count / Swift.max(d, 1)]))
        case 3 where rank < 4:
            let axis = g.int(rank + 1), size = 1 + g.int(3)
            let u = t.unsqueezed(axis: axis)
            var s = u.shape; s[axis] = size
            var rs = r.shape; rs.insert(1, at: axis)
            return (u.expanded(to: s), r.reshaped(rs).broadcast(to: s))
        case 4 where rank >= 2:
            return (t.transposed(), r.permuted(Array(0..<(rank - 2)) + [rank - 1, rank - 2]))
        default:
            return (t, r)
        }
    }

    static func randomOp(_ a: Tensor, _ ra: Ref, _ b: Tensor, _ rb: Ref, _ g: inout Rng) -> (Tensor, Ref)? {
        switch g.int(7) {
        case 0: return (a.tanh(), ra.map(Foundation.tanh))
        case 1: return (a * 0.5 + 1, ra.map { $0 * 0.5 + 1 })
        case 2: return (a.relu(), ra.map { Swift.max(0, $0) })
        case 3: return (a.sigmoid(), ra.map { 1 / (1 + Foundation.exp(-$0)) })
        default:
            // broadcast-combine with b when shapes allow
            let s = a.shape, bs = b.shape
            guard bs.count <= s.count, zip(bs.reversed(), s.reversed()).allSatisfy({ $0 == $1 || $0 == 1 }) else { return nil }
            switch g.int(3) {
            case 0: return (a + b, Ref.zip(ra, rb, +))
            case 1: return (a * b, Ref.zip(ra, rb, *))
            default: return (max(a, b), Ref.zip(ra, rb, Swift.max))
            }
        }
    }

    @Test(arguments: 0..<60)
    func randomViewChainsAndFusedExpressions(seed: Int) {
        var g = Rng(state: UInt64(seed) &* 7919 &+ 13)
        let rank = 1 + g.int(4)
        let shape = (0..<rank).map { _ in 1 + g.int(5) }
        let x = Tensor.randn(shape: shape, seed: UInt64(seed))
        var t = x, r = Ref(x)
        // a view chain on the buffer: always free (a reshape strides cannot express stays lazy)
        let (_, viewStats) = Stats.measure { for _ in 0..<(1 + g.int(4)) { (t, r) = Self.randomView(t, r, &g) } }
        #expect(viewStats.kernels == 0 && viewStats.bytesAllocated == 0 && viewStats.bytesCopied == 0)
        #expect(!t.isRealized || t.sharesStorage(with: x))
        // a lazy expression with more views in between
        let other = Tensor.randn(shape: Array(t.shape.suffix(1 + g.int(t.rank))), seed: UInt64(seed) + 1000)
        var ro = Ref(other)
        var o = other
        if g.int(2) == 0, o.rank >= 1 { o = o.sliced(axis: 0, range: 0..<o.shape[0]); ro = Ref(o) }
        for _ in 0..<(1 + g.int(4)) {
            if let (nt, nr) = Self.randomOp(t, r, o, ro, &g) { t = nt; r = nr }
            if g.int(3) == 0 { (t, r) = Self.randomView(t, r, &g) }
        }
        let alreadyContiguous = t.isContiguous
        let plan = t.plan()
        let (y, stats) = Stats.measure { t.materialized() }
        #expect(y.isContiguous)
        // The plan said what would run, and that is what ran; a single-kernel plan allocates
        // exactly its output.
        #expect(stats.kernels == plan.kernelCount && stats.bytesAllocated == plan.bytesAllocated)
        if alreadyContiguous { #expect(stats.kernels == 0) }
        if plan.kernelCount == 1 { #expect(stats.bytesAllocated == y.scalarCount * 4) }
        let ok = close(y, r, atol: 2e-6, rtol: 1e-5)
        #expect(ok, "seed \(seed): \(t.explain())")
    }

    @Test(arguments: 0..<40)
    func randomReductions(seed: Int) {
        var g = Rng(state: UInt64(seed) &* 104729 &+ 7)
        let rank = 1 + g.int(4)
        let shape = (0..<rank).map { _ in 1 + g.int(6) }
        var t = Tensor.randn(shape: shape, seed: UInt64(seed) + 5000)
        var r = Ref(t)
        for _ in 0..<g.int(3) { (t, r) = Self.randomView(t, r, &g) }
        let axes = (0..<t.rank).filter { _ in g.int(2) == 0 }
        let keep = g.int(2) == 0
        let prologue = t * 2 - 1
        let rp = r.map { $0 * 2 - 1 }
        let n = Double(axes.reduce(1) { $0 * t.shape[$1] })
        let sum = prologue.sum(axes: axes, keepingDims: keep).materialized()
        let okSum = close(sum, rp.reduce(axes: axes, keep: keep, 0, +), atol: 1e-5 * n, rtol: 1e-5)
        #expect(okSum, "seed \(seed) axes \(axes)")
        let mx = prologue.max(axes: axes, keepingDims: keep).materialized()
        let okMax = close(mx, rp.reduce(axes: axes, keep: keep, -.infinity, Swift.max), atol: 0, rtol: 1.2e-7)
        #expect(okMax, "seed \(seed) axes \(axes)")
        if t.rank >= 1 {
            let axis = g.int(t.rank)
            let sm = prologue.softmax(axis: axis).materialized()
            let okSm = close(sm, rp.rows(axis: axis, softmaxRef), atol: 1e-6, rtol: 1e-5)
            #expect(okSm, "seed \(seed) softmax axis \(axis)")
        }
    }
}
