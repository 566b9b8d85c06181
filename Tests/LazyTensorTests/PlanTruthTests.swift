import Foundation
import Testing
@testable import LazyTensor

/// `plan()` (and so `explain()`) predicts exactly what evaluation records: kernels, bytes
/// allocated, bytes copied by reason. Over random graphs built from every kind of kernel, on
/// inputs laid out every way (contiguous, transposed, sliced, broadcast), the two are equal.
@Suite struct PlanTruthTests {
    typealias Rng = PropertyTests.Rng

    /// A random input of `shape`: contiguous, or a transposed / sliced / broadcast view.
    static func input(_ shape: [Int], _ g: inout Rng, seed: UInt64) -> Tensor {
        switch g.int(4) {
        case 0 where shape.count >= 2:
            var s = shape
            s.swapAt(s.count - 1, s.count - 2)
            return Tensor.randn(shape: s, seed: seed).transposed()
        case 1 where !shape.isEmpty:
            var s = shape
            s[s.count - 1] *= 2
            return Tensor.randn(shape: s, seed: seed).sliced(axis: s.count - 1, range: 0..<s[s.count - 1], step: 2)
        case 2 where !shape.isEmpty && shape[0] > 1:
            var s = shape
            s[0] = 1
            return Tensor.randn(shape: s, seed: seed).expanded(to: shape)
        default:
            return Tensor.randn(shape: shape, seed: seed)
        }
    }

    /// One random graph: a few ops of random kinds over random inputs.
    static func graph(_ g: inout Rng) -> Tensor {
        let (b, m, k, n) = (1 + g.int(3), 1 + g.int(9), 1 + g.int(12), 1 + g.int(10))
        var seed: UInt64 = 1
        func next(_ shape: [Int]) -> Tensor { seed += 1; return input(shape, &g, seed: seed) }
        switch g.int(14) {
        case 0: return (next([b, m, k]) * 2 + next([k])).tanh()
        case 1: return matmul(next([b, m, k]), next([k, n])) + next([n])
        case 2: return matmul(next([b, m, k]), next([b, k, n])).relu()
        case 3: return next([b, m, k]).sum(axes: [g.int(3)]) * 3
        case 4: return next([m, k]).layerNorm(weight: next([k]), bias: next([k]))
        case 5: return next([b, m, k]).softmax(axis: g.int(3))
        case 6:
            let h = 1 + g.int(3), hk = [1, h][g.int(2)]
            let q = next([b, h, m, 8]), kk = next([b, hk, m + g.int(3), 8])
            let v = next([b, hk, kk.shape[2], 8])
            let mask: Tensor? = g.int(2) == 0 ? next([b, 1, 1, kk.shape[2]]) : nil
            let y = scaledDotProductAttention(q, kk, v, mask: mask, causal: mask == nil && g.int(2) == 0)
            return g.int(2) == 0 ? y : y.permuted([0, 2, 1, 3]).reshaped([b, m, h * 8])
        case 7:
            let c = 1 + g.int(4)
            let x = next([b, c, 5 + g.int(4), 5 + g.int(4)])
            let kernel = [1, 3][g.int(2)], outputs = 2 + g.int(3)
            let y = conv2d(x, next([outputs, c, kernel, kernel]), bias: g.int(2) == 0 ? next([outputs]) : nil,
                           padding: (kernel / 2, kernel / 2))
            // Pooling runs inside the convolution's kernel, after its epilogue or without one.
            return [y.relu(), y.maxPool2d(kernel: (2, 2)), y.relu().avgPool2d(kernel: (2, 2))][g.int(3)]
        case 8: return Tensor.concatenate([next([m, k]), next([m, k]) * 2], axis: g.int(2)).padded([(1, 0), (0, 2)])
        case 9: return next([m, k]).take(Tensor(shape: [3], integers: [0, m - 1, m / 2]), axis: 0) + 1
        case 10: return next([m, k]).topK(Swift.min(2, k)).values
        case 11: return (next([m, k]).argmax(axis: 1) + 1) * next([m])
        case 12:
            // A convolution reads the heads merged back: a copy planned, which finds its
            // source (the attention kernel's [B, T, H, d] buffer) contiguous and aliases.
            let q = next([b, 2, m, 4])
            let merged = scaledDotProductAttention(q, q, q).permuted([0, 2, 1, 3])
            return conv2d(merged, next([3, m, 1, 1]))
        default: return next([b, m, k]).permuted([2, 0, 1])  // a strided root: a copy
        }
    }

    @Test func planMatchesWhatEvaluationRecords() {
        var g = Rng(state: 20261202)
        var checked = 0
        var reasons = Set<CopyReason>()
        var aliased = 0
        for _ in 0..<300 {
            let t = PlanTruthTests.graph(&g)
            let plan = t.plan()
            reasons.formUnion(plan.copiedByReason.keys)
            aliased += plan.kernelList.count - plan.kernelCount
            let (_, stats) = Stats.measure { t.materialized() }
            #expect(plan.kernelCount == stats.kernels, "\(plan)\n\(stats)")
            #expect(plan.bytesAllocated == stats.bytesAllocated, "\(plan)\n\(stats)")
            #expect(plan.copiedByReason == stats.copiedByReason.filter { $0.value != 0 }, "\(plan)\n\(stats)")
            #expect(plan.bytesCopied == stats.bytesCopied)
            checked += 1
        }
        #expect(checked == 300)
        // The graphs exercised every kind of copy a plan can make, and copies that alias.
        #expect(reasons == [.pack, .im2col, .reorder, .gather, .convert, .output], "\(reasons)")
        #expect(aliased > 0)
    }

    /// The two cases the issue found: attention over repeated k/v said 0 B copied where it
    /// packed, an im2col convolution 8 KB where it copied 115 KB.
    @Test func theCopiesOnceMissedAreListed() {
        let q = Tensor.randn(shape: [1, 8, 16, 16], seed: 1)
        let kv = Tensor.randn(shape: [1, 2, 16, 16], seed: 2).repeatedElements(4, axis: 1)
        let attention = scaledDotProductAttention(q, kv, kv)
        let plan = attention.plan(), text = attention.explain()
        let (_, stats) = Stats.measure { attention.materialized() }
        #expect(plan.copiedByReason == stats.copiedByReason.filter { $0.value != 0 })
        #expect(stats.copiedByReason[.pack] ?? 0 > 0)
        #expect(text.contains("pack"), "\(text)")
        // Three output channels: below the implicit GEMM's four, so a patch matrix is filled.
        let conv = conv2d(Tensor.randn(shape: [4, 8, 12, 12], seed: 3), Tensor.randn(shape: [3, 8, 3, 3], seed: 4), padding: (1, 1))
        let convPlan = conv.plan(), convText = conv.explain()
        let (_, convStats) = Stats.measure { conv.materialized() }
        #expect(convPlan.bytesCopied == convStats.bytesCopied && convStats.bytesCopied > 0)
        #expect(convPlan.bytesAllocated == convStats.bytesAllocated)
        #expect(convText.contains("im2col") && convText.contains("by patch matrix"), "\(convText)")
        // Grouped-query attention read in place instead copies nothing.
        let gqa = scaledDotProductAttention(q, Tensor.randn(shape: [1, 2, 16, 16], seed: 2), Tensor.randn(shape: [1, 2, 16, 16], seed: 5))
        #expect(gqa.permuted([0, 2, 1, 3]).plan().bytesCopied == 0)
    }
}
