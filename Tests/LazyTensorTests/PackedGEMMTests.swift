import CKernels
import Foundation
import Testing
@testable import LazyTensor

/// wpack's own SGEMM (gemm/sgemm.c) at every kernel level this machine has: edges of every
/// blocking (rows not a multiple of MR, columns not of NR, last panels that AVX-512 packs 16 or
/// 32 wide: n = 64, 80, 49, 65, 31; K across several k blocks and not a multiple of 8), both operand orientations, a padded C, accumulation, one and two workers,
/// against a double reference; and the tile callbacks that carry a matmul's epilogue.
@Suite(.serialized) struct PackedGEMMTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (2, 2, 1), (5, 7, 3), (9, 49, 17), (8, 48, 192), (13, 95, 385), (37, 65, 513), (200, 100, 300), (400, 31, 9),
        (33, 1536, 40), (3, 700, 64), (41, 64, 70), (19, 80, 33),
    ]

    /// C (padded rows, so ldc > n) from the C driver directly, for every orientation.
    @Test(arguments: CPU.availableLevels)
    func matchesTheReferenceAtEveryLevel(level: CPU.Level) {
        CPU.withLevel(level) {
            for (index, s) in Self.shapes.enumerated() {
                let a = Tensor.randn(shape: [s.m * s.k], seed: UInt64(2 * index + 1)).scalars
                let b = Tensor.randn(shape: [s.k * s.n], seed: UInt64(2 * index + 2)).scalars
                let ldc = s.n + 3
                for (ta, tb, accumulate, workers) in [(false, false, false, 1), (true, false, true, 2), (false, true, false, 2),
                                                      (true, true, true, 1)] {
                    let (rsa, csa) = ta ? (1, s.m) : (s.k, 1), (rsb, csb) = tb ? (1, s.k) : (s.n, 1)
                    var c = (0..<(s.m * ldc)).map { Float($0 % 7) * 0.5 }
                    var expected = c
                    for i in 0..<s.m {
                        for j in 0..<s.n {
                            var sum = 0.0
                            for p in 0..<s.k { sum += Double(a[i * rsa + p * csa]) * Double(b[p * rsb + j * csb]) }
                            expected[i * ldc + j] = Float(sum + (accumulate ? Double(expected[i * ldc + j]) : 0))
                        }
                    }
                    Parallel.start()
                    let status = c.withUnsafeMutableBufferPointer { cp in
                        wk_sgemm(s.m, s.n, s.k, a, rsa, csa, b, rsb, csb, cp.baseAddress, ldc, accumulate ? 1 : 0, workers,
                                 nil, nil, nil)
                    }
                    #expect(status == 0)
                    let worst = zip(c, expected).map { Swift.abs($0 - $1) }.max() ?? 0
                    // The padding past n is never written.
                    #expect(worst <= 1e-4 * Float(s.k), "\(level) \(s) ta \(ta) tb \(tb) acc \(accumulate) w \(workers): \(worst)")
                }
            }
        }
    }

    /// The micro-kernel's tile width is the level's: 8, 16 and 48 floats.
    @Test func panelWidthsFollowTheLevel() {
        let expected: [CPU.Level: Int] = [.baseline: 8, .avx2: 16, .avx512: 48]
        for level in CPU.availableLevels {
            #expect(CPU.withLevel(level) { wk_sgemm_panel_width() } == expected[level])
        }
    }

    /// A Linear layer over many tokens with a bias, a residual and GELU: one kernel, one
    /// output buffer, nothing copied, and the same numbers as the reference, at every level.
    /// The epilogue runs per tile (GEMM.packedProduct's callbacks) over a [B, T] batch merged
    /// into the rows.
    @Test(arguments: CPU.availableLevels)
    func aLinearLayersEpilogueRunsPerTile(level: CPU.Level) {
        let x = Tensor.randn(shape: [3, 70, 96], seed: 1), w = Tensor.randn(shape: [130, 96], seed: 2)
        let bias = Tensor.randn(shape: [130], seed: 3), residual = Tensor.randn(shape: [3, 70, 130], seed: 4)
        let (y, stats) = CPU.withLevel(level) {
            Stats.measure { (matmul(x, w.transposed()) + bias + residual).gelu().materialized() }
        }
        #expect(stats.kernels == 1 && stats.bytesCopied == 0)
        #expect(stats.bytesAllocated == 3 * 70 * 130 * 4)
        let sum = Ref.zip(Ref.zip(Ref.matmul(Ref(x), Ref(w).permuted([1, 0])), Ref(bias), +), Ref(residual), +)
        let reference = sum.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
        #expect(close(y, reference, atol: 1e-4, rtol: 1e-4), "\(level)")
    }

    /// Transposed activations and a weight stored [K, N]: read through their strides, no pack.
    @Test func transposedOperandsAreReadInPlace() {
        let a = Tensor.randn(shape: [200, 150], seed: 5).transposed(), b = Tensor.randn(shape: [200, 90], seed: 6)
        let (y, stats) = Stats.measure { matmul(a, b).materialized() }
        #expect(stats.kernels == 1 && stats.bytesCopied == 0)
        #expect(close(y, Ref.matmul(Ref(a), Ref(b)), atol: 1e-4, rtol: 1e-4))
    }
}
