import Foundation
import Testing
@testable import LazyTensor

extension Ref {
    /// Naive double-precision NumPy matmul.
    static func matmul(_ a: Ref, _ b: Ref) -> Ref {
        let a2 = a.shape.count == 1 ? a.reshaped([1] + a.shape) : a
        let b2 = b.shape.count == 1 ? b.reshaped(b.shape + [1]) : b
        let m = a2.shape[a2.shape.count - 2], k = a2.shape.last!, n = b2.shape.last!
        let batch = Ref.broadcastShape(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2)))
        let ae = a2.broadcast(to: batch + [m, k]), be = b2.broadcast(to: batch + [k, n])
        let batches = batch.reduce(1, *)
        var out = [Double](repeating: 0, count: batches * m * n)
        for p in 0..<batches { for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for q in 0..<k { s += ae.values[(p * m + i) * k + q] * be.values[(p * k + q) * n + j] }
            out[(p * m + i) * n + j] = s
        } } }
        var shape = batch + [m, n]
        if b.shape.count == 1 { shape.removeLast() }
        if a.shape.count == 1 { shape.remove(at: shape.count - (b.shape.count == 1 ? 1 : 2)) }
        return Ref(shape: shape, values: out)
    }
}

/// matmul over a matrix of layouts: values against the double reference, and the exact number
/// of bytes packed (copied so the GEMM can read them).
@Suite struct MatmulTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let a: @Sendable () -> Tensor
        let b: @Sendable () -> Tensor
        /// Bytes the operands had to be packed into (reason .pack).
        let packed: Int
        var kernels = 1
        var testDescription: String { name }
    }

    static func r(_ shape: [Int], _ seed: UInt64) -> Tensor { Tensor.randn(shape: shape, seed: seed) }

    static let cases: [Case] = [
        Case(name: "contiguous [5,7]x[7,3]", a: { r([5, 7], 1) }, b: { r([7, 3], 2) }, packed: 0),
        Case(name: "Linear layout: x · Wᵀ with W [out, in]", a: { r([6, 8], 3) }, b: { r([4, 8], 4).transposed() }, packed: 0),
        Case(name: "both transposed", a: { r([7, 5], 5).transposed() }, b: { r([3, 7], 6).transposed() }, packed: 0),
        Case(name: "padded rows (leading dimension > columns)", a: { r([5, 10], 7).sliced(axis: 1, range: 2..<9) },
             b: { r([7, 12], 8).sliced(axis: 1, range: 0..<3) }, packed: 0),
        Case(name: "batched, contiguous", a: { r([2, 3, 4, 5], 9) }, b: { r([2, 3, 5, 6], 10) }, packed: 0),
        Case(name: "batched, weights broadcast (one merged GEMM)", a: { r([2, 3, 4, 5], 11) }, b: { r([5, 6], 12) }, packed: 0),
        Case(name: "permuted batch axes (attention QKᵀ layout)", a: { r([2, 4, 3, 5], 13).permuted([0, 2, 1, 3]) },
             b: { r([2, 6, 3, 5], 14).permuted([0, 2, 3, 1]) }, packed: 0),
        Case(name: "broadcast batch on the left", a: { r([4, 5], 15) }, b: { r([3, 5, 2], 16) }, packed: 0),
        Case(name: "stepped columns must be packed", a: { r([4, 10], 17).sliced(axis: 1, range: 0..<10, step: 2) },
             b: { r([5, 3], 18) }, packed: 4 * 5 * 4),
        Case(name: "broadcast inner axis must be packed", a: { r([4, 1], 19).expanded(to: [4, 6]) }, b: { r([6, 2], 20) },
             packed: 4 * 6 * 4),
        Case(name: "lazy reshape of a transpose is packed once", a: { r([3, 4, 2], 21).transposed().reshaped([6, 4]) },
             b: { r([4, 5], 22) }, packed: 6 * 4 * 4),
        Case(name: "vector · matrix (1-D left)", a: { r([7], 23) }, b: { r([7, 4], 24) }, packed: 0),
        Case(name: "matrix · vector (1-D right)", a: { r([4, 7], 25) }, b: { r([7], 26) }, packed: 0),
        Case(name: "transposed matrix · strided vector", a: { r([7, 4], 27).transposed() }, b: { r([14], 28).sliced(axis: 0, range: 0..<14, step: 2) },
             packed: 0),
        Case(name: "vector · vector", a: { r([9], 29) }, b: { r([9], 30) }, packed: 0),
        Case(name: "empty inner dimension gives zeros", a: { r([3, 0], 31) }, b: { r([0, 4], 32) }, packed: 0),
        Case(name: "empty outer dimension", a: { r([0, 5], 33) }, b: { r([5, 4], 34) }, packed: 0),
        Case(name: "size-1 axes everywhere", a: { r([1, 1, 1], 35) }, b: { r([1, 1, 1], 36) }, packed: 0),
        Case(name: "row and column of size 1", a: { r([1, 6], 37) }, b: { r([6, 1], 38) }, packed: 0),
        Case(name: "lazy operand gets its own kernel", a: { r([4, 6], 39) * 2 + 1 }, b: { r([6, 3], 40) }, packed: 0, kernels: 2),
    ]

    @Test(arguments: cases)
    func layout(c: Case) {
        let a = c.a(), b = c.b()
        // The reference reads the operands after the run: reading a lazy operand evaluates it.
        let (y, stats) = Stats.measure { matmul(a, b).materialized() }
        let expected = Ref.matmul(Ref(a), Ref(b))
        #expect(y.shape == expected.shape)
        let ok = close(y, expected, atol: 1e-4, rtol: 1e-5)
        #expect(ok)
        #expect(stats.copiedByReason[.pack, default: 0] == c.packed)
        #expect(stats.bytesCopied == c.packed)
        #expect(stats.kernels == c.kernels)
    }

    /// A PyTorch Linear weight mapped from disk, used as x · Wᵀ: nothing is copied.
    @Test func linearWeightIsReadInPlace() {
        let w = Tensor.randn(shape: [384, 1536], seed: 1), x = Tensor.randn(shape: [2, 16, 1536], seed: 2)
        let (y, stats) = Stats.measure { matmul(x, w.transposed()).materialized() }
        #expect(stats.bytesCopied == 0 && stats.kernels == 1 && stats.bytesAllocated == 2 * 16 * 384 * 4)
        let ok = close(y, Ref.matmul(Ref(x), Ref(w).permuted([1, 0])), atol: 1e-3, rtol: 1e-5)
        #expect(ok)
    }

    /// gelu(x · Wᵀ + b) is one kernel writing one buffer: the GEMM writes the output, the
    /// epilogue makes one pass over it.
    @Test func epilogueIsFusedIntoTheGEMM() {
        let x = Tensor.randn(shape: [8, 32], seed: 3), w = Tensor.randn(shape: [16, 32], seed: 4)
        let b = Tensor.randn(shape: [16], seed: 5), residual = Tensor.randn(shape: [8, 16], seed: 6)
        let y = (matmul(x, w.transposed()) + b + residual).gelu()
        #expect(y.plan().kernelNames == ["matmul + epilogue"])
        let (out, stats) = Stats.measure { y.materialized() }
        #expect(stats.kernels == 1 && stats.bytesAllocated == 8 * 16 * 4 && stats.bytesCopied == 0)
        let pre = Ref.zip(Ref.zip(Ref.matmul(Ref(x), Ref(w).permuted([1, 0])), Ref(b), +), Ref(residual), +)
        let ok = close(out, pre.map { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }, atol: 1e-4, rtol: 1e-5)
        #expect(ok)
    }

    /// A product used twice is not fused (it is stored once and read by both).
    @Test func sharedProductIsStoredOnce() {
        let x = Tensor.randn(shape: [4, 8], seed: 7), w = Tensor.randn(shape: [8, 8], seed: 8)
        let p = matmul(x, w)
        let y = p.relu() + p.sigmoid()
        let (out, stats) = Stats.measure { y.materialized() }
        #expect(stats.kernels == 2 && stats.bytesAllocated == 2 * 32 * 4)
        let rp = Ref.matmul(Ref(x), Ref(w))
        let ok = close(out, Ref.zip(rp.map { Swift.max(0, $0) }, rp.map { 1 / (1 + Foundation.exp(-$0)) }, +), atol: 1e-5, rtol: 1e-5)
        #expect(ok)
    }
}
