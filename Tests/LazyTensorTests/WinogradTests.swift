import Testing
@testable import LazyTensor

/// Winograd (conv/winograd.c: F(4x4, 3x3), or F(2x2, 3x3) where the output is under 4 x 4),
/// taken by every 3x3, stride 1, one-group convolution with at least 8 channels in and out.
/// Its sums are rounded differently from the implicit GEMM's, so a result that differs from
/// CPU.withImplicitGEMMConvolutions's in its bits shows which algorithm ran; both are checked
/// against the reference in Double.
@Suite struct WinogradTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let x: [Int], w: [Int]
        var padding = (1, 1)
        /// The image read through a transpose (its columns strided) and the bias through a stride.
        var strided = false
        var bias = true
        /// F(4x4)'s transforms (constants up to 8) lose more bits than the direct sum: about
        /// 4e-5 of the values here, 1e-4 with 260 channels' 2340 terms.
        var tolerance = 1e-4
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "40 images of 8 x 8, 16 -> 32 channels (the digits CNN's second layer): blocks of whole images",
             x: [40, 16, 8, 8], w: [32, 16, 3, 3]),
        Case(name: "13 x 7 through a transpose, strided bias, odd output width", x: [3, 9, 7, 13], w: [11, 9, 3, 3], strided: true),
        Case(name: "no padding, odd sizes, no bias", x: [2, 8, 10, 9], w: [8, 8, 3, 3], padding: (0, 0), bias: false),
        Case(name: "padding 2, more rows than columns", x: [1, 12, 5, 6], w: [20, 12, 3, 3], padding: (2, 2)),
        Case(name: "one 30 x 29 image: blocks of tile rows, output channels in several chunks", x: [1, 24, 30, 29],
             w: [50, 24, 3, 3]),
        Case(name: "260 input channels: K in two blocks", x: [1, 260, 4, 4], w: [8, 260, 3, 3], tolerance: 3e-4),
        Case(name: "3 rows of output: F(2x2), groups of 4 tiles cut by the row's end", x: [4, 10, 3, 9], w: [9, 10, 3, 3]),
        Case(name: "2 x 2 images: F(2x2), blocks of whole images", x: [30, 8, 2, 2], w: [16, 8, 3, 3]),
    ]

    /// Each case at every level, with a residual and a ReLU as the epilogue (run on each
    /// finished block of images or tile rows): one kernel, nothing copied, close to the
    /// reference, and not the implicit GEMM's bits.
    @Test(arguments: cases)
    func matchesTheReferenceAtEveryLevel(c: Case) {
        var x = Tensor.randn(shape: c.strided ? [c.x[0], c.x[1], c.x[3], c.x[2]] : c.x, seed: 51)
        if c.strided { x = x.permuted([0, 1, 3, 2]) }
        let w = (Tensor.randn(shape: c.w, seed: 52) * 0.3).materialized()
        let b = c.bias ? (c.strided ? Tensor.randn(shape: [c.w[0], 3], seed: 53)[.all, .at(2)] : Tensor.randn(shape: [c.w[0]], seed: 53))
            : nil
        let residual = Tensor.randn(shape: conv2d(x, w, padding: c.padding).shape, seed: 54).materialized()
        // A new graph for every run: a tensor keeps what it evaluated to.
        func z() -> Tensor { (conv2d(x, w, bias: b, padding: c.padding) + residual).relu() }
        let expected = Ref.zip(Ref.conv2d(Ref(x), Ref(w), bias: b.map(Ref.init), stride: (1, 1), padding: c.padding,
                                          dilation: (1, 1), groups: 1), Ref(residual), +).map { Swift.max(0, $0) }
        // explain() names the algorithm that runs.
        let m = residual.shape[2] >= 4 && residual.shape[3] >= 4 ? 4 : 2
        #expect(z().explain().contains("by Winograd F(\(m)x\(m), 3x3)"), "\(z().explain())")
        #expect(CPU.withImplicitGEMMConvolutions { z().explain() }.contains("by implicit GEMM"))
        for level in CPU.availableLevels {
            let (out, stats) = CPU.withLevel(level) { Stats.measure { z().materialized() } }
            #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == residual.shape.reduce(1, *) * 4, "\(level)")
            let worst = zip(out.scalars, expected.values).map { Swift.abs(Double($0) - $1) / (1 + Swift.abs($1)) }.max() ?? 0
            #expect(close(out, expected, atol: c.tolerance, rtol: c.tolerance), "\(level): worst \(worst)")
            let implicit = CPU.withLevel(level) { CPU.withImplicitGEMMConvolutions { z().materialized() } }
            #expect(close(implicit, expected, atol: 1e-4, rtol: 1e-4), "\(level)")
            let differing = zip(out.scalars, implicit.scalars).filter { $0 != $1 }.count
            #expect(differing > 0, "\(level): the same bits as the implicit GEMM")
        }
    }

    /// Where Winograd does not apply (stride 2, dilation 2, two groups, fewer than 8 channels
    /// in or out, a 5x5 window) the convolution is the implicit GEMM's, bit for bit.
    @Test func otherConvolutionsTakeTheImplicitGEMM() {
        let cases: [(x: [Int], w: [Int], stride: (Int, Int), dilation: (Int, Int), groups: Int)] = [
            ([2, 8, 9, 9], [8, 8, 3, 3], (2, 2), (1, 1), 1), ([2, 8, 9, 9], [8, 8, 3, 3], (1, 1), (2, 2), 1),
            ([2, 16, 9, 9], [16, 8, 3, 3], (1, 1), (1, 1), 2), ([2, 7, 9, 9], [8, 7, 3, 3], (1, 1), (1, 1), 1),
            ([2, 8, 9, 9], [7, 8, 3, 3], (1, 1), (1, 1), 1), ([2, 8, 9, 9], [8, 8, 5, 5], (1, 1), (1, 1), 1),
        ]
        for c in cases {
            let x = Tensor.randn(shape: c.x, seed: 55), w = Tensor.randn(shape: c.w, seed: 56)
            func y() -> Tensor { conv2d(x, w, stride: c.stride, padding: (1, 1), dilation: c.dilation, groups: c.groups) }
            let chosen = y().materialized(), implicit = CPU.withImplicitGEMMConvolutions { y().materialized() }
            // Equal bits alone would not tell the direct kernel apart (no bias: the same sums).
            #expect(y().explain().contains("by implicit GEMM") && chosen.scalars == implicit.scalars, "\(c)")
        }
    }

    /// A pooled convolution: where the output's sides are multiples of 4 and the pool is 2x2 /
    /// 2 max after nothing or a ReLU (the digits CNN's pattern), Winograd applies both to each
    /// tile as it leaves the transform; otherwise the convolution's output is pooled by pieces
    /// of whole images or at the end. Every case at every level against the reference.
    struct PooledCase: Sendable, CustomTestStringConvertible {
        let name: String
        let x: [Int]
        var relu = true, isMax = true, fused = false
        var testDescription: String { name }
    }
    static let pooledCases: [PooledCase] = [
        PooledCase(name: "25 images of 8 x 8, relu, max 2x2: fused into the transform", x: [25, 16, 8, 8], fused: true),
        PooledCase(name: "12 x 12, no epilogue, max 2x2: fused", x: [3, 8, 12, 12], relu: false, fused: true),
        PooledCase(name: "10 x 10 (tiles past the edge), relu, max 2x2: pooled after", x: [2, 8, 10, 10]),
        PooledCase(name: "8 x 8, relu, average 2x2: pooled after", x: [4, 8, 8, 8], isMax: false),
    ]

    @Test(arguments: pooledCases)
    func poolsEachTileOrEachBlock(c: PooledCase) {
        let x = Tensor.randn(shape: c.x, seed: 57), w = (Tensor.randn(shape: [32, c.x[1], 3, 3], seed: 58) * 0.3).materialized()
        let b = Tensor.randn(shape: [32], seed: 59)
        func pooled() -> Tensor {
            var y = conv2d(x, w, bias: b, padding: (1, 1))
            if c.relu { y = y.relu() }
            return c.isMax ? y.maxPool2d(kernel: (2, 2)) : y.avgPool2d(kernel: (2, 2))
        }
        #expect(pooled().plan().kernelNames == [(c.relu ? "conv2d + epilogue" : "conv2d") + " + pool2d"])
        #expect(pooled().explain().contains("pooling in the transform") == c.fused, "\(pooled().explain())")
        var convolved = Ref.conv2d(Ref(x), Ref(w), bias: Ref(b), stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
        if c.relu { convolved = convolved.map { Swift.max(0, $0) } }
        let expected = Ref.pool(convolved, max: c.isMax, kernel: (2, 2), stride: (2, 2), padding: (0, 0))
        for level in CPU.availableLevels {
            let (out, stats) = CPU.withLevel(level) { Stats.measure { pooled().materialized() } }
            let plan = pooled().plan()
            #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == plan.bytesAllocated, "\(level)")
            #expect(close(out, expected, atol: 1e-4, rtol: 1e-4), "\(level)")
        }
    }

    /// A NaN in the image: every pooled output whose window reads it is NaN after the fused
    /// ReLU and pool too (Winograd spreads it further, over the tiles that read it).
    @Test func aNaNSurvivesTheFusedReLUAndPool() {
        var values = Tensor.randn(shape: [2, 8, 8, 8], seed: 60).scalars
        values[(1 * 8 + 3) * 64 + 2 * 8 + 5] = .nan
        let x = Tensor(shape: [2, 8, 8, 8], scalars: values), w = Tensor.randn(shape: [8, 8, 3, 3], seed: 61)
        let convolved = Ref.conv2d(Ref(x), Ref(w), bias: nil, stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
            .map { $0.isNaN ? $0 : Swift.max(0, $0) }
        // The reference pool skips NaNs (Swift.max): which windows hold one is found here.
        let expected = Ref.pool(convolved, max: true, kernel: (2, 2), stride: (2, 2), padding: (0, 0))
        var nans: [Int] = []
        for i in expected.values.indices {
            let (plane, y, x) = (i / 16, i % 16 / 4, i % 4)
            let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map { convolved.values[plane * 64 + (2 * y + $0.0) * 8 + 2 * x + $0.1] }
            if window.contains(where: \.isNaN) { nans.append(i) }
        }
        for level in CPU.availableLevels {
            let out = CPU.withLevel(level) { conv2d(x, w, padding: (1, 1)).relu().maxPool2d(kernel: (2, 2)).materialized() }
            #expect(!nans.isEmpty && nans.allSatisfy { out.scalars[$0].isNaN }, "\(level)")
            // Outside the tiles that read it, the values are the reference's.
            let clean = zip(out.scalars, expected.values).filter { !$0.0.isNaN && !$0.1.isNaN }
            #expect(clean.allSatisfy { Swift.abs(Double($0.0) - $0.1) <= 1e-4 * (1 + Swift.abs($0.1)) }, "\(level)")
        }
    }
}
