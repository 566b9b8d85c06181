import CKernels
import Testing
@testable import LazyTensor

/// x · Wᵀ with few rows goes to wk_gemm_nt (W read in place, 3 x 4 register blocks, lanes
/// summed at the end) instead of the packed GEMM. Its edges: rows not a multiple of 3, columns not a
/// multiple of 4, K not a multiple of 8, padded leading dimensions, one and two workers; on
/// every kernel level the machine has, against the double reference.
@Suite(.serialized) struct SmallRowsGEMMTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 5, 8), (2, 4, 9), (3, 4, 8), (4, 7, 17), (5, 9, 3), (7, 13, 33), (16, 64, 384),
        (16, 1536, 96), (31, 17, 1), (32, 66, 40),
    ]

    @Test(arguments: CPU.availableLevels)
    func matchesTheReference(level: CPU.Level) {
        CPU.withLevel(level) { check() }
    }

    private func check() {
        for (i, s) in Self.shapes.enumerated() {
            #expect(s.m <= GEMM.smallRows)
            // Padded rows in both operands: leading dimensions larger than K.
            let x = Tensor.randn(shape: [s.m, s.k + 3], seed: UInt64(2 * i + 1)).sliced(axis: 1, range: 1..<(s.k + 1))
            let w = Tensor.randn(shape: [s.n, s.k + 5], seed: UInt64(2 * i + 2)).sliced(axis: 1, range: 2..<(s.k + 2))
            let (y, stats) = Stats.measure { matmul(x, w.transposed()).materialized() }
            #expect(stats.bytesCopied == 0 && stats.kernels == 1)
            let ok = close(y, Ref.matmul(Ref(x), Ref(w).permuted([1, 0])), atol: 1e-4, rtol: 1e-5)
            #expect(ok, "m \(s.m) n \(s.n) k \(s.k)")
        }
    }
}
