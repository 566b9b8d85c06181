import Testing
@testable import LazyTensor

/// The examples of the tutorial the project grew from (SEED.md), except einsum and matmul,
/// which belong to the contraction work: each gives NumPy's numbers and makes no copy NumPy
/// would not make.
@Suite struct SeedTests {
    /// 1. Contiguous float32 blocks built with a shape up front, or pre-allocated.
    @Test func blocksWithAShapeUpFront() {
        let (x, stats) = Stats.measure { Tensor.randn(shape: [4, 3, 32, 32], seed: 0) }
        #expect(x.shape == [4, 3, 32, 32] && x.strides == [3072, 1024, 32, 1] && x.isContiguous)
        #expect(stats.bytesAllocated == 4 * 3 * 32 * 32 * 4 && stats.bytesCopied == 0 && stats.kernels == 0)
        #expect(Tensor.zeros(shape: [2, 3]).scalars == [Float](repeating: 0, count: 6))
        #expect(Tensor.ones(shape: [2, 3]).scalars == [Float](repeating: 1, count: 6))
        #expect(Tensor.empty(shape: [5, 7]).isContiguous)
    }

    /// 3. A different bias per batch element: x + bias.reshape(-1, 1, 1, 1).
    @Test func perBatchBiasByBroadcasting() {
        let x = Tensor.randn(shape: [4, 3, 8, 8], seed: 1), bias = Tensor(shape: [4], scalars: [1, 2, 3, 4])
        let (reshaped, viewStats) = Stats.measure { bias.reshaped([-1, 1, 1, 1]) }
        #expect(reshaped.shape == [4, 1, 1, 1] && reshaped.sharesStorage(with: bias))
        #expect(viewStats.bytesAllocated == 0 && viewStats.kernels == 0)
        let (y, stats) = Stats.measure { (x + reshaped).materialized() }
        #expect(stats.kernels == 1 && stats.bytesAllocated == x.scalarCount * 4 && stats.bytesCopied == 0)
        let ok = close(y, Ref.zip(Ref(x), Ref(bias).reshaped([4, 1, 1, 1]), +), atol: 0, rtol: 6e-8)
        #expect(ok)
    }

    /// 3. Channels-last is a view and allocates nothing; copy only on purpose.
    @Test func channelsLastIsAViewAndCopyingIsOnPurpose() {
        let x = Tensor.randn(shape: [2, 3, 4, 5], seed: 2)
        let (nhwc, stats) = Stats.measure { x.permuted([0, 2, 3, 1]) }
        #expect(stats.bytesAllocated == 0 && stats.bytesCopied == 0)
        #expect(nhwc.shape == [2, 4, 5, 3] && nhwc.strides == [60, 5, 1, 20] && !nhwc.isContiguous)
        #expect(nhwc.sharesStorage(with: x))
        let (c, copy) = Stats.measure { nhwc.contiguous() }
        #expect(c.isContiguous && !c.sharesStorage(with: x))
        #expect(copy.copiedByReason == [.userRequest: 120 * 4] && copy.kernels == 1)
        let ok = close(c, Ref(x).permuted([0, 2, 3, 1]), atol: 0, rtol: 0)
        #expect(ok)
        // Already contiguous: nothing to do, same memory.
        let (same, none) = Stats.measure { c.contiguous() }
        #expect(same.baseAddress == c.baseAddress && none.kernels == 0)
    }

    /// 4. The precondition of fast inference: contiguous float32.
    @Test func contiguityFlag() {
        let x = Tensor.randn(shape: [8, 16], seed: 3)
        #expect(x.isContiguous)
        #expect(!x.transposed().isContiguous && x.transposed().isColumnContiguous)
        #expect(x.sliced(axis: 0, range: 0..<4).isContiguous)
        #expect(!x.sliced(axis: 1, range: 0..<4).isContiguous)
    }

    /// 5. The engine fuses broadcasts and transposes into the kernel that consumes them: only
    /// the contiguous final output is written.
    @Test func onlyTheFinalOutputIsWritten() {
        let x = Tensor.randn(shape: [2, 3, 4, 5], seed: 4), b = Tensor.randn(shape: [3], seed: 5)
        let y = ((x.permuted([0, 2, 3, 1]) + b.reshaped([1, 1, 1, -1])) * 2).relu()
        let (out, stats) = Stats.measure { y.materialized() }
        #expect(stats.kernels == 1 && stats.bytesAllocated == 120 * 4 && stats.bytesCopied == 0 && stats.peakBytes == 480)
        #expect(out.isContiguous && out.shape == [2, 4, 5, 3])
        let ok = close(out, Ref.zip(Ref(x).permuted([0, 2, 3, 1]), Ref(b), +).map { Swift.max(0, $0 * 2) }, atol: 0, rtol: 6e-8)
        #expect(ok)
    }
}
