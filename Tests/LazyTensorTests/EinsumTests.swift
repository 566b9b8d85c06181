import Foundation
import Testing
@testable import LazyTensor

/// einsum against NumPy's answers (tools/make_fixtures.py writes them with optimize=True),
/// and the seed's two contractions as single GEMMs with no copies.
@Suite struct EinsumTests {
    struct Fixture: Decodable, Sendable, CustomTestStringConvertible {
        struct Array: Decodable, Sendable { let shape: [Int]; let values: [Double] }
        let equation: String
        let operands: [Array]
        let expected: Array
        var testDescription: String { equation }
    }

    static let fixtures: [Fixture] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/einsum.json")
        return try! JSONDecoder().decode([Fixture].self, from: Data(contentsOf: url))
    }()

    @Test(arguments: fixtures)
    func matchesNumPy(f: Fixture) {
        let ops = f.operands.map { Tensor(shape: $0.shape, scalars: $0.values.map(Float.init)) }
        let y = einsum(f.equation, ops).materialized()
        let ok = close(y, Ref(shape: f.expected.shape, values: f.expected.values), atol: 1e-4, rtol: 1e-4)
        #expect(ok, "\(f.equation): got \(y.shape) \(y.scalars.prefix(6)), expected \(f.expected.shape) \(f.expected.values.prefix(6))")
    }

    @Test func thirtyOrMoreEquations() { #expect(Self.fixtures.count >= 30) }

    /// Attention scores: one batched GEMM on the operands' own views, no copies.
    @Test func attentionScoresAreOneGEMMWithoutCopies() {
        let q = Tensor.randn(shape: [2, 12, 16, 32], seed: 1), k = Tensor.randn(shape: [2, 12, 16, 32], seed: 2)
        let y = einsum("bhtd,bhkd->bhtk", q, k)
        #expect(y.plan().kernelNames == ["matmul (batched)"])
        let (out, stats) = Stats.measure { y.materialized() }
        #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == 2 * 12 * 16 * 16 * 4)
        let ok = close(out, Ref.matmul(Ref(q), Ref(k).permuted([0, 1, 3, 2])), atol: 1e-4, rtol: 1e-5)
        #expect(ok)
    }

    /// The convolution-like contraction with a shared channel index is one GEMM, no copies.
    @Test func sharedChannelContractionIsOneGEMMWithoutCopies() {
        let x = Tensor.randn(shape: [8, 3, 5, 5], seed: 3), w = Tensor.randn(shape: [4, 3, 5, 5], seed: 4)
        let (out, stats) = Stats.measure { einsum("nchw,ochw->no", x, w).materialized() }
        #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == 8 * 4 * 4)
        let ok = close(out, Ref.matmul(Ref(x).reshaped([8, 75]), Ref(w).reshaped([4, 75]).permuted([1, 0])), atol: 1e-4, rtol: 1e-5)
        #expect(ok)
    }

    /// The seed's 'nchw,oihw->no' names the channel axes differently (c and i), so with NumPy's
    /// semantics each is summed on its own side first: two reductions and one GEMM on their
    /// contiguous results; still no copy.
    @Test func seedConvolutionLikeContraction() {
        let x = Tensor.randn(shape: [8, 3, 5, 5], seed: 5), w = Tensor.randn(shape: [4, 3, 5, 5], seed: 6)
        let (out, stats) = Stats.measure { einsum("nchw,oihw->no", x, w).materialized() }
        #expect(stats.kernels == 3 && stats.bytesCopied == 0)
        let xs = Ref(x).reduce(axes: [1], 0, +).reshaped([8, 25]), ws = Ref(w).reduce(axes: [1], 0, +).reshaped([4, 25])
        let ok = close(out, Ref.matmul(xs, ws.permuted([1, 0])), atol: 1e-4, rtol: 1e-5)
        #expect(ok)
    }

    /// A plan is parsed once per equation and shapes (the key is unique to this test, so
    /// tests running at the same time do not disturb it).
    @Test func parsedPlansAreCached() {
        let a = Tensor.randn(shape: [3, 17], seed: 7), b = Tensor.randn(shape: [17, 5], seed: 8)
        #expect(!Einsum.isCached("iq,qk->ik", shapes: [[3, 17], [17, 5]]))
        let first = einsum("iq,qk->ik", a, b).materialized().scalars
        #expect(Einsum.isCached("iq,qk->ik", shapes: [[3, 17], [17, 5]]))
        #expect(!Einsum.isCached("iq,qk->ik", shapes: [[2, 17], [17, 5]]))
        #expect(einsum("iq,qk->ik", a, b).materialized().scalars == first)
    }
}
