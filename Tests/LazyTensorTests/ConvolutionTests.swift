import Foundation
import Testing
@testable import LazyTensor

extension Ref {
    static func conv2d(_ x: Ref, _ w: Ref, bias: Ref?, stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int) -> Ref {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
        let wo = (wd + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
        let og = o / groups
        var out: [Double] = []
        for b in 0..<n { for oc in 0..<o { for i in 0..<ho { for j in 0..<wo {
            var s = bias?.values[oc] ?? 0
            let g = oc / og
            for ci in 0..<cg { for ki in 0..<kh { for kj in 0..<kw {
                let ih = i * stride.0 - padding.0 + ki * dilation.0, iw = j * stride.1 - padding.1 + kj * dilation.1
                if ih >= 0 && ih < h && iw >= 0 && iw < wd {
                    s += x.at([b, g * cg + ci, ih, iw]) * w.at([oc, ci, ki, kj])
                }
            } } }
            out.append(s)
        } } } }
        _ = c
        return Ref(shape: [n, o, ho, wo], values: out)
    }

    static func pool(_ x: Ref, max isMax: Bool, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) -> Ref {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ho = (h + 2 * padding.0 - kernel.0) / stride.0 + 1, wo = (w + 2 * padding.1 - kernel.1) / stride.1 + 1
        var out: [Double] = []
        for b in 0..<n { for ch in 0..<c { for i in 0..<ho { for j in 0..<wo {
            var best = -Double.infinity, sum = 0.0
            for ki in 0..<kernel.0 { for kj in 0..<kernel.1 {
                let ih = i * stride.0 - padding.0 + ki, iw = j * stride.1 - padding.1 + kj
                if ih >= 0 && ih < h && iw >= 0 && iw < w { let v = x.at([b, ch, ih, iw]); best = Swift.max(best, v); sum += v }
            } }
            out.append(isMax ? best : sum / Double(kernel.0 * kernel.1))
        } } } }
        return Ref(shape: [n, c, ho, wo], values: out)
    }
}

@Suite struct ConvolutionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let x: [Int], w: [Int]
        var stride = (1, 1), padding = (0, 0), dilation = (1, 1), groups = 1, bias = true
        /// im2col bytes copied (0 when the 1x1 path reads the input in place).
        var im2col: Int
        /// Bytes of the product reordered into NCHW when several small images share one GEMM.
        var reorder = 0
        var testDescription: String { name }
    }

    /// Convolutions with at least 4 output channels per group and a strided input take the
    /// implicit GEMM (wk_conv_gemm: patches packed from the image, nothing copied); the others
    /// fill a patch matrix.
    static let cases: [Case] = [
        Case(name: "3x3, pad 1 (the digits CNN's first layer): implicit", x: [2, 1, 8, 8], w: [16, 1, 3, 3], padding: (1, 1), im2col: 0),
        Case(name: "odd sizes, stride 2: implicit", x: [1, 3, 11, 7], w: [5, 3, 3, 2], stride: (2, 2), im2col: 0),
        Case(name: "asymmetric stride and padding: implicit", x: [2, 2, 9, 10], w: [4, 2, 3, 3], stride: (2, 1), padding: (0, 2),
             im2col: 0),
        Case(name: "groups 2, 4 channels each, dilation 2: implicit", x: [2, 8, 9, 9], w: [8, 4, 3, 3], padding: (2, 1),
             dilation: (2, 1), groups: 2, im2col: 0),
        Case(name: "a 7x7 window over a 50-wide image, stride 3 (runs across panel edges): implicit", x: [1, 2, 20, 50],
             w: [9, 2, 7, 7], stride: (3, 3), padding: (3, 3), im2col: 0),
        Case(name: "3 output channels, small images lowered together", x: [3, 2, 6, 6], w: [3, 2, 3, 3], padding: (1, 1),
             im2col: 3 * 18 * 36 * 4, reorder: 3 * 3 * 36 * 4),
        Case(name: "dilation 2", x: [1, 2, 10, 10], w: [3, 2, 3, 3], padding: (2, 2), dilation: (2, 2), im2col: 18 * 100 * 4),
        Case(name: "groups 2", x: [2, 4, 6, 6], w: [6, 2, 3, 3], padding: (1, 1), groups: 2, im2col: 2 * 2 * 18 * 36 * 4),
        Case(name: "depthwise (groups = channels)", x: [1, 3, 5, 5], w: [3, 1, 3, 3], groups: 3, bias: false, im2col: 3 * 9 * 9 * 4),
        Case(name: "1x1 reads the input in place", x: [2, 8, 5, 5], w: [4, 8, 1, 1], im2col: 0),
    ]

    /// The implicit path at every kernel level, over a transposed (strided, non-contiguous)
    /// image and a bias read with a stride, with a residual and an activation as its epilogue
    /// (run per finished piece).
    @Test(arguments: CPU.availableLevels)
    func implicitConvolutionAtEveryLevel(level: CPU.Level) {
        let x = Tensor.randn(shape: [3, 5, 13, 6], seed: 7).permuted([0, 1, 3, 2])
        let w = Tensor.randn(shape: [20, 5, 3, 3], seed: 8), b = Tensor.randn(shape: [20, 2], seed: 9)[.all, .at(1)]
        let residual = Tensor.randn(shape: [3, 20, 6, 13], seed: 10)
        let (y, stats) = CPU.withLevel(level) {
            Stats.measure { (conv2d(x, w, bias: b, padding: (1, 1)) + residual).relu().materialized() }
        }
        #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == 3 * 20 * 6 * 13 * 4)
        let expected = Ref.zip(Ref.conv2d(Ref(x), Ref(w), bias: Ref(b), stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1),
                               Ref(residual), +).map { Swift.max(0, $0) }
        #expect(close(y, expected, atol: 1e-4, rtol: 1e-5), "\(level)")
    }

    /// Many whole small images go to the epilogue a few at a time (wk_conv_gemm's `grab`): 40
    /// images of 8 x 8 over two workers, with a residual and an activation, at every level.
    @Test(arguments: CPU.availableLevels)
    func epilogueOverRunsOfImages(level: CPU.Level) {
        let x = Tensor.randn(shape: [40, 4, 8, 8], seed: 11), w = Tensor.randn(shape: [8, 4, 3, 3], seed: 12)
        let b = Tensor.randn(shape: [8], seed: 13), residual = Tensor.randn(shape: [40, 8, 8, 8], seed: 14)
        let (y, stats) = CPU.withLevel(level) {
            Stats.measure { (conv2d(x, w, bias: b, padding: (1, 1)) + residual).relu().materialized() }
        }
        #expect(stats.kernels == 1 && stats.bytesCopied == 0 && stats.bytesAllocated == 40 * 8 * 64 * 4)
        let expected = Ref.zip(Ref.conv2d(Ref(x), Ref(w), bias: Ref(b), stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1),
                               Ref(residual), +).map { Swift.max(0, $0) }
        #expect(close(y, expected, atol: 1e-4, rtol: 1e-5), "\(level)")
    }

    @Test(arguments: cases)
    func conv(c: Case) {
        let x = Tensor.randn(shape: c.x, seed: 1), w = Tensor.randn(shape: c.w, seed: 2)
        let b = c.bias ? Tensor.randn(shape: [c.w[0]], seed: 3) : nil
        let (y, stats) = Stats.measure {
            conv2d(x, w, bias: b, stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups).materialized()
        }
        let expected = Ref.conv2d(Ref(x), Ref(w), bias: b.map(Ref.init), stride: c.stride, padding: c.padding,
                                  dilation: c.dilation, groups: c.groups)
        let ok = close(y, expected, atol: 1e-4, rtol: 1e-5)
        #expect(ok)
        #expect(stats.kernels == 1)
        #expect(stats.copiedByReason[.im2col, default: 0] == c.im2col)
        #expect(stats.copiedByReason[.reorder, default: 0] == c.reorder)
        #expect(stats.bytesCopied == c.im2col + c.reorder)
    }

    /// relu(conv2d(x, w, bias)) is one kernel: bias and activation run over the output once.
    /// Many small images: the implicit GEMM lays their columns end to end so its panels span
    /// images (wk_conv_gemm's spanning path, taken where an image's positions are not whole
    /// panels: 49 at every level here, 64 at AVX-512's 48 columns). With a bias, a ReLU run as
    /// each piece's epilogue, K past one block (50 channels x 9), and a last panel part full.
    @Test(arguments: CPU.availableLevels)
    func smallImagesShareTheirPanels(level: CPU.Level) {
        for (n, c, o, side) in [(13, 50, 20, 7), (9, 3, 12, 8), (1, 4, 8, 7)] {
            let x = Tensor.randn(shape: [n, c, side, side], seed: 31), w = Tensor.randn(shape: [o, c, 3, 3], seed: 32) * 0.2
            let b = Tensor.randn(shape: [o], seed: 33)
            // 50 channels in and 20 out would take Winograd, 3 channels in the direct kernel.
            let y = CPU.withLevel(level) { CPU.withImplicitGEMMConvolutions { conv2d(x, w, bias: b, padding: (1, 1)).relu().materialized() } }
            let expected = Ref.conv2d(Ref(x), Ref(w), bias: Ref(b), stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
                .map { Swift.max($0, 0) }
            #expect(close(y, expected, atol: 1e-4, rtol: 1e-4), "\(level) n \(n) c \(c) o \(o) side \(side)")
        }
    }

    @Test func activationIsAnEpilogue() {
        let x = Tensor.randn(shape: [2, 3, 6, 6], seed: 4), w = Tensor.randn(shape: [4, 3, 3, 3], seed: 5), b = Tensor.randn(shape: [4], seed: 6)
        let y = conv2d(x, w, bias: b, padding: (1, 1)).relu()
        #expect(y.plan().kernelNames == ["conv2d + epilogue"])
        let (out, stats) = Stats.measure { y.materialized() }
        #expect(stats.kernels == 1)
        // The output alone: the implicit GEMM writes no patch matrix.
        #expect(stats.bytesAllocated == 2 * 4 * 36 * 4)
        let ok = close(out, Ref.conv2d(Ref(x), Ref(w), bias: Ref(b), stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1)
            .map { Swift.max(0, $0) }, atol: 1e-4, rtol: 1e-5)
        #expect(ok)
    }

    @Test(arguments: [(true, (2, 2), (2, 2), (0, 0)), (true, (3, 3), (2, 2), (1, 1)), (false, (2, 2), (2, 2), (0, 0)),
                      (false, (3, 3), (1, 1), (1, 1)), (true, (2, 3), (1, 2), (1, 0))])
    func pooling(isMax: Bool, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) {
        let x = Tensor.randn(shape: [2, 3, 7, 9], seed: 7)
        let y = isMax ? x.maxPool2d(kernel: kernel, stride: stride, padding: padding) : x.avgPool2d(kernel: kernel, stride: stride, padding: padding)
        let ok = close(y.materialized(), Ref.pool(Ref(x), max: isMax, kernel: kernel, stride: stride, padding: padding), atol: 1e-6, rtol: 1e-6)
        #expect(ok)
    }

    /// A pooling whose input is a convolution read by nothing else runs in the convolution's
    /// kernel: the convolution (and its epilogue) fill a scratch buffer, pooled as pieces of
    /// whole images finish (many small images), at the end where pieces are parts of images
    /// (one large image, split over the workers) or where the GEMM is not the implicit one
    /// (dilation 2: a patch matrix), and over images that share panels (7 x 7).
    struct PooledCase: Sendable, CustomTestStringConvertible {
        let name: String
        let x: [Int], w: [Int]
        var dilation = (1, 1), relu = true, isMax = true, pool = ((2, 2), (2, 2), (0, 0))
        var testDescription: String { name }
    }
    static let pooledCases: [PooledCase] = [
        PooledCase(name: "40 images of 8 x 8, relu, max 2x2: pooled by pieces", x: [40, 4, 8, 8], w: [8, 4, 3, 3]),
        PooledCase(name: "one 30 x 30 image, no epilogue, average 3x3 / 2 pad 1: pooled at the end", x: [1, 3, 30, 30],
                   w: [6, 3, 3, 3], relu: false, isMax: false, pool: ((3, 3), (2, 2), (1, 1))),
        PooledCase(name: "13 images of 7 x 7 (panels span images), relu, max 2x2", x: [13, 5, 7, 7], w: [12, 5, 3, 3]),
        PooledCase(name: "dilation 2 (a patch matrix), relu, max 3x3 / 2", x: [3, 2, 10, 10], w: [3, 2, 3, 3], dilation: (2, 2),
                   pool: ((3, 3), (2, 2), (0, 0))),
    ]

    @Test(arguments: pooledCases)
    func poolingRunsInTheConvolution(c: PooledCase) {
        for level in CPU.availableLevels {
            let x = Tensor.randn(shape: c.x, seed: 41), w = (Tensor.randn(shape: c.w, seed: 42) * 0.3).materialized(), b = Tensor.randn(shape: [c.w[0]], seed: 43)
            var conv = conv2d(x, w, bias: b, padding: (1, 1), dilation: c.dilation)
            if c.relu { conv = conv.relu() }
            let (kernel, stride, padding) = c.pool
            let y = c.isMax ? conv.maxPool2d(kernel: kernel, stride: stride, padding: padding)
                : conv.avgPool2d(kernel: kernel, stride: stride, padding: padding)
            let plan = y.plan()
            #expect(plan.kernelNames == [(c.relu ? "conv2d + epilogue" : "conv2d") + " + pool2d"])
            let (out, stats) = CPU.withLevel(level) { Stats.measure { y.materialized() } }
            #expect(stats.kernels == 1 && plan.bytesAllocated == stats.bytesAllocated && plan.bytesCopied == stats.bytesCopied,
                    "\(plan)\n\(stats)")
            // The scratch buffer of the convolution's output, then the pooled output.
            let patches = stats.copiedByReason[.im2col, default: 0] + stats.copiedByReason[.reorder, default: 0]
            #expect(stats.bytesAllocated >= (conv.shape.reduce(1, *) + y.shape.reduce(1, *)) * 4 + patches)
            var convolved = Ref.conv2d(Ref(x), Ref(w), bias: Ref(b), stride: (1, 1), padding: (1, 1), dilation: c.dilation, groups: 1)
            if c.relu { convolved = convolved.map { Swift.max(0, $0) } }
            let expected = Ref.pool(convolved, max: c.isMax, kernel: kernel, stride: stride, padding: padding)
            #expect(close(out, expected, atol: 1e-4, rtol: 1e-5), "\(level)")
        }
    }

    /// A convolution that something else reads too, or that is itself a result, keeps its own
    /// kernel: its output has to exist.
    @Test func poolingStaysApartWhereTheConvolutionIsNeeded() {
        let x = Tensor.randn(shape: [2, 3, 8, 8], seed: 44), w = Tensor.randn(shape: [4, 3, 3, 3], seed: 45)
        let conv = conv2d(x, w, padding: (1, 1)).relu()
        let pooled = conv.maxPool2d(kernel: (2, 2))
        for names in [(pooled + conv.avgPool2d(kernel: (2, 2))).plan().kernelNames, (pooled.sum() + conv.sum()).plan().kernelNames] {
            #expect(names.contains("conv2d + epilogue") && names.contains("pool2d") && !names.contains { $0.hasSuffix("+ pool2d") },
                    "\(names)")
        }
        let both = Tensor.materialize([conv, pooled])
        #expect(close(both[1], Ref.pool(Ref(both[0]), max: true, kernel: (2, 2), stride: (2, 2), padding: (0, 0)), atol: 0, rtol: 0))
    }

    /// The 2x2, stride 2 max pool's vector rows (8 and 4 outputs a step, then single ones) at
    /// every level, over a view with a plane stride of its own: exact, and a NaN in any of the
    /// four places of a window makes that output NaN (as PyTorch's max_pool2d does).
    @Test(arguments: CPU.availableLevels)
    func maxPoolRowsAtEveryLevel(level: CPU.Level) {
        // 39 wide: 19 outputs a row (8, 8, then single ones); 9 and 8 wide: 4 outputs a row,
        // two rows a step, with an odd row count (10 high) left over.
        for (h, w) in [(6, 39), (10, 9), (8, 8)] {
            var values = Tensor.randn(shape: [2, 5, h, w], seed: 9).scalars
            var nanAt: [(Int, Int, Int, Int)] = []
            for n in 0..<6 {
                let place = (n % 2, 1 + n % 3, (n * 5 + 1) % (h / 2 * 2), (n * 7 + 3) % (w / 2 * 2))
                if !nanAt.contains(where: { $0 == place }) { nanAt.append(place) }
            }
            for (b, ch, i, j) in nanAt { values[((b * 5 + ch) * h + i) * w + j] = .nan }
            let x = Tensor(shape: [2, 5, h, w], scalars: values)[.all, .slice(1, 4)]
            let y = CPU.withLevel(level) { x.maxPool2d(kernel: (2, 2)).materialized() }
            let (ho, wo) = (h / 2, w / 2)
            #expect(y.shape == [2, 3, ho, wo])
            let ref = Ref(x), out = y.scalars
            var mismatches = 0, nans = 0
            for b in 0..<2 { for ch in 0..<3 { for i in 0..<ho { for j in 0..<wo {
                let window = [ref.at([b, ch, 2 * i, 2 * j]), ref.at([b, ch, 2 * i, 2 * j + 1]),
                              ref.at([b, ch, 2 * i + 1, 2 * j]), ref.at([b, ch, 2 * i + 1, 2 * j + 1])]
                let got = Double(out[((b * 3 + ch) * ho + i) * wo + j])
                if window.contains(where: \.isNaN) {
                    nans += 1
                    if !got.isNaN { mismatches += 1 }
                } else if got != window.max()! { mismatches += 1 }
            } } } }
            #expect(nans == nanAt.count && mismatches == 0, "\(level) \(h)x\(w): \(mismatches) wrong of \(out.count)")
        }
    }

    /// Pooling a transposed view reads it through its strides.
    @Test func poolingReadsViews() {
        let x = Tensor.randn(shape: [1, 2, 6, 6], seed: 8)
        let y = x.transposed().maxPool2d(kernel: (2, 2)).materialized()
        let ok = close(y, Ref.pool(Ref(x).permuted([0, 1, 3, 2]), max: true, kernel: (2, 2), stride: (2, 2), padding: (0, 0)), atol: 0, rtol: 0)
        #expect(ok)
    }
}

/// conv2d and pooling against NumPy's answers (tools/make_fixtures.py, float64).
@Suite struct ConvolutionFixtureTests {
    struct Array: Decodable, Sendable { let shape: [Int]; let values: [Double] }
    struct Conv: Decodable, Sendable, CustomTestStringConvertible {
        let x: Array, w: Array, bias: [Double]?, stride: [Int], padding: [Int], dilation: [Int], groups: Int, expected: Array
        var testDescription: String { "x\(x.shape) w\(w.shape) s\(stride) p\(padding) d\(dilation) g\(groups)" }
    }
    struct Pool: Decodable, Sendable, CustomTestStringConvertible {
        let kind: String, kernel: [Int], stride: [Int], padding: [Int], expected: Array
        var testDescription: String { "\(kind) k\(kernel) s\(stride) p\(padding)" }
    }
    struct File: Decodable { let conv: [Conv]; let pool_input: Array; let pool: [Pool] }

    static let file: File = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/conv.json")
        return try! JSONDecoder().decode(File.self, from: Data(contentsOf: url))
    }()

    static func tensor(_ a: Array) -> Tensor { Tensor(shape: a.shape, scalars: a.values.map(Float.init)) }

    @Test(arguments: file.conv)
    func conv(c: Conv) {
        let y = conv2d(Self.tensor(c.x), Self.tensor(c.w), bias: c.bias.map { Tensor(shape: [$0.count], scalars: $0.map(Float.init)) },
                       stride: (c.stride[0], c.stride[1]), padding: (c.padding[0], c.padding[1]),
                       dilation: (c.dilation[0], c.dilation[1]), groups: c.groups).materialized()
        let ok = close(y, Ref(shape: c.expected.shape, values: c.expected.values), atol: 1e-4, rtol: 1e-5)
        #expect(ok)
    }

    @Test(arguments: file.pool)
    func pool(p: Pool) {
        let x = Self.tensor(Self.file.pool_input)
        let k = (p.kernel[0], p.kernel[1]), s = (p.stride[0], p.stride[1]), pad = (p.padding[0], p.padding[1])
        let y = (p.kind == "max" ? x.maxPool2d(kernel: k, stride: s, padding: pad) : x.avgPool2d(kernel: k, stride: s, padding: pad)).materialized()
        let ok = close(y, Ref(shape: p.expected.shape, values: p.expected.values), atol: 1e-6, rtol: 1e-6)
        #expect(ok)
    }
}
